from collections.abc import Callable
from typing import Any

import pytest

from hybrid_router import validation
from hybrid_router.errors import ValidationError


def _fails(fn: Callable[..., object], *args: Any, **kwargs: Any) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        fn(*args, **kwargs)
    err = info.value
    assert err.hint and err.hint != ValidationError.default_hint, "every check gives a specific hint"
    return err


def test_texts_accepts_a_list_of_strings_and_returns_a_new_list() -> None:
    given = ["a", "b"]
    out = validation.texts(given)
    assert out == ["a", "b"] and out is not given
    assert validation.texts(("x",)) == ["x"]


def test_texts_accepts_empty_strings() -> None:
    assert validation.texts(["", "b"]) == ["", "b"]


@pytest.mark.parametrize(
    ("value", "got"), [(None, "null"), (3, "number"), ({"a": 1}, "object"), ("abc", "string")]
)
def test_texts_refuses_what_is_not_an_array(value: object, got: str) -> None:
    err = _fails(validation.texts, value)
    assert err.details["field"] == "texts" and err.details["got"] == got


def test_a_single_string_gets_the_wrap_it_hint() -> None:
    err = _fails(validation.texts, "hello")
    assert "[" in err.hint


def test_texts_refuses_an_empty_list() -> None:
    err = _fails(validation.texts, [])
    assert err.details["field"] == "texts" and "empty" in err.message


def test_texts_refuses_a_non_string_item_and_says_which() -> None:
    err = _fails(validation.texts, ["a", "b", 3])
    assert err.details == {"field": "texts[2]", "got": "number", "index": 2}


def test_texts_refuses_too_many_items() -> None:
    err = _fails(validation.texts, ["a"] * 4, max_items=3)
    assert err.details["limit"] == 3 and err.details["count"] == 4
    assert "3" in err.hint
    assert validation.texts(["a"] * 3, max_items=3) == ["a"] * 3
    _fails(validation.texts, ["a"] * (validation.MAX_TEXTS + 1))


def test_texts_refuses_a_text_that_is_too_long() -> None:
    err = _fails(validation.texts, ["ok", "x" * 11], max_chars=10)
    assert err.details["index"] == 1 and err.details["limit"] == 10


def test_the_field_name_is_used_in_messages_and_details() -> None:
    err = _fails(validation.texts, [], field="documents")
    assert err.details["field"] == "documents" and "documents" in err.message


def test_optional_str() -> None:
    assert validation.optional_str(None, "model") is None
    assert validation.optional_str("m", "model") == "m"
    assert _fails(validation.optional_str, 5, "model").details == {"field": "model", "got": "number"}
    assert _fails(validation.optional_str, "", "model").details == {"field": "model"}


def test_choice() -> None:
    assert validation.choice("q8", ("fp32", "q8"), "dtype") == "q8"
    err = _fails(validation.choice, "fp16", ("q8", "fp32"), "dtype")
    assert err.details["allowed"] == ["fp32", "q8"] and "fp32" in err.hint
    _fails(validation.choice, None, ("q8",), "dtype")


def test_positive_int() -> None:
    assert validation.positive_int(3, "n") == 3
    assert validation.positive_int(4.0, "n") == 4
    for bad in (0, -1, 2.5, True, "3", None):
        assert _fails(validation.positive_int, bad, "n").details["field"] == "n"
    assert validation.positive_int(10, "n", maximum=10) == 10
    assert _fails(validation.positive_int, 11, "n", maximum=10).details["limit"] == 10


def test_known_keys() -> None:
    validation.known_keys({"texts": [], "model": None}, ("texts", "model"), where="embed")
    err = _fails(validation.known_keys, {"text": ["a"]}, ("texts", "model"), where="embed")
    assert err.details["unknown"] == ["text"] and "texts" in err.hint
