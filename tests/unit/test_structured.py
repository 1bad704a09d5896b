"""Structured output's pure core: the schema subset, the validator, the constraint automaton (characters and
tokens over small vocabularies) and partial values."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from hybrid_router.chat import ChatMessage
from hybrid_router.errors import ValidationError
from hybrid_router.structured import Schema, TokenConstraint, Vocabulary, check_text, partial_value
from hybrid_router.structured.automaton import ITEMS_CAP, STRING_CAP, State, accepting, feed, start
from hybrid_router.structured.prompts import instructed, repair

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 12},
        "age": {"type": "integer"},
        "height": {"type": "number"},
        "tags": {"type": "array", "items": {"enum": ["red", "green"]}, "minItems": 1, "maxItems": 2},
        "admin": {"type": "boolean"},
        "note": {"type": "null"},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}


def schema(value: Any = None) -> Schema:
    return Schema.parse(PERSON if value is None else value)


# -- the subset --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad, keyword",
    [
        ({"type": "string", "pattern": "^a"}, "pattern"),
        ({"type": "string", "format": "email"}, "format"),
        ({"type": "number", "minimum": 0}, "minimum"),
        ({"anyOf": [{"type": "string"}]}, "anyOf"),
        ({"$ref": "#/defs/x"}, "$ref"),
        ({"type": "object", "properties": {"a": {"type": "string", "pattern": "x"}}}, "pattern"),
        ({"type": "array", "items": {"type": "integer"}, "uniqueItems": True}, "uniqueItems"),
    ],
)
def test_a_keyword_outside_the_subset_is_refused_with_where_and_a_hint(bad: Any, keyword: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Schema.parse(bad)
    assert keyword in caught.value.message and caught.value.details["field"].endswith(keyword)
    assert "docs/api.md" in caught.value.hint


@pytest.mark.parametrize(
    "bad",
    [
        "not a schema",
        {"type": ["string", "null"]},
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]},
        {"type": "string", "minLength": 5, "maxLength": 2},
        {"type": "array"},
        {"type": "object", "additionalProperties": {"type": "string"}},
        {"enum": []},
        {"type": "integer", "enum": ["a"]},
        {"enum": [{"a": 1}]},
        {"description": "no type"},
        {"type": "string", "maxLength": -1},
    ],
)
def test_a_malformed_schema_is_a_validation_error(bad: Any) -> None:
    with pytest.raises(ValidationError):
        Schema.parse(bad)


def test_annotations_enum_and_const_are_accepted() -> None:
    parsed = Schema.parse({"title": "T", "description": "d", "type": "string", "enum": ["a", "b"]})
    assert check_text('"a"', parsed).ok and not check_text('"c"', parsed).ok
    assert check_text("3", Schema.parse({"const": 3})).ok


# -- the validator -----------------------------------------------------------------------------------


def test_a_valid_object_has_no_errors_and_its_value() -> None:
    text = '{"name": "Ada", "age": 36, "tags": ["red"], "admin": false, "note": null, "height": 1.7}'
    result = check_text(text, schema())
    assert result.ok and result.value["name"] == "Ada"


@pytest.mark.parametrize(
    "value, says",
    [
        ({"age": 3}, "missing the required property 'name'"),
        ({"name": "", "age": 3}, "at least 1 characters"),
        ({"name": "x" * 13, "age": 3}, "at most 12 characters"),
        ({"name": "a", "age": 3.5}, "$.age must be an integer"),
        ({"name": "a", "age": True}, "$.age must be an integer"),
        ({"name": "a", "age": 1, "height": "tall"}, "$.height must be a number"),
        ({"name": "a", "age": 1, "tags": []}, "at least 1 items"),
        ({"name": "a", "age": 1, "tags": ["red", "red", "red"]}, "at most 2 items"),
        ({"name": "a", "age": 1, "tags": ["blue"]}, '$.tags[0] must be one of "red", "green"'),
        ({"name": "a", "age": 1, "admin": "yes"}, "$.admin must be true or false"),
        ({"name": "a", "age": 1, "note": 0}, "$.note must be null"),
        ({"name": "a", "age": 1, "extra": 0}, "'extra', which the schema does not allow"),
        ([], "$ must be an object"),
    ],
)
def test_each_violation_is_named_with_its_place(value: Any, says: str) -> None:
    result = check_text(json.dumps(value), schema())
    assert not result.ok and any(says in e for e in result.errors), result.errors


def test_text_that_is_not_json_says_so_and_a_code_fence_is_read_through() -> None:
    assert "not valid JSON" in check_text('{"name": ', schema()).errors[0]
    assert check_text('```json\n{"name": "a", "age": 1}\n```', schema()).ok


def test_an_integer_valued_float_is_an_integer_and_enum_compares_as_json() -> None:
    assert check_text('{"name": "a", "age": 2.0}', schema()).ok
    assert check_text("1.0", Schema.parse({"enum": [1]})).ok
    assert not check_text("true", Schema.parse({"enum": [1]})).ok


# -- the character automaton -------------------------------------------------------------------------


def accepts(s: Schema, text: str) -> bool:
    state = feed(start(s), text)
    return state is not None and accepting(state)


def test_the_automaton_accepts_the_compact_answer_in_schema_order_only() -> None:
    good = '{"name":"Ada","age":-36,"height":1.75,"tags":["red","green"],"admin":true,"note":null}'
    assert accepts(schema(), good) and check_text(good, schema()).ok
    assert not accepts(schema(), '{"age":36,"name":"Ada"}')  # another order
    assert not accepts(schema(), '{ "name":"Ada"')  # whitespace
    assert feed(start(schema()), '{"name":""') is None  # minLength 1
    assert feed(start(schema()), '{"name":"' + "x" * 13) is None  # maxLength 12
    assert feed(start(schema()), '{"name":"a\\') is None  # no escapes
    assert feed(start(schema()), '{"name":"a","age":1.5') is None  # an integer
    assert feed(start(schema()), '{"name":"a","age":01') is None  # no leading zero
    assert feed(start(schema()), '{"name":"a","age":1,"height":1,"tags":[]') is None  # minItems 1
    prefix = '{"name":"a","age":1,"height":1,"tags":["red","red"'
    assert feed(start(schema()), prefix + ",") is None  # maxItems 2
    assert not accepting(feed(start(schema()), '{"name":"a"') or ())


def test_decoding_caps_bound_what_the_schema_leaves_open_and_stay_valid() -> None:
    s = Schema.parse({"type": "array", "items": {"type": "string"}})
    assert feed(start(s), "[" + '"a",' * (ITEMS_CAP - 1) + '"a"') is not None
    assert feed(start(s), "[" + '"a",' * ITEMS_CAP) is None
    assert feed(start(s), '["' + "x" * STRING_CAP + '"]') == ()
    assert feed(start(s), '["' + "x" * (STRING_CAP + 1)) is None
    longer = Schema.parse({"type": "string", "minLength": STRING_CAP + 5})
    assert accepts(longer, '"' + "x" * (STRING_CAP + 5) + '"')


def test_enums_with_a_prefix_of_another_value_both_work() -> None:
    s = Schema.parse({"type": "array", "items": {"enum": [1, 12, "a"]}})
    assert accepts(s, "[1,12,1]") and accepts(s, '["a",12]')
    assert not accepts(s, "[123]") and not accepts(s, '["b"]')


def random_valid_text(rng: random.Random) -> str:
    tags = rng.sample(["red", "green"], rng.randint(1, 2))
    name = "".join(rng.choice("abc xyz") for _ in range(rng.randint(1, 12)))
    value = {
        "name": name,
        "age": rng.randint(-999, 999),
        "height": round(rng.uniform(-10, 10), rng.randint(1, 6)),
        "tags": tags,
        "admin": rng.random() < 0.5,
        "note": None,
    }
    return json.dumps(value, separators=(",", ":"))


def test_every_compact_valid_answer_is_accepted() -> None:
    rng = random.Random(7)
    for _ in range(200):
        text = random_valid_text(rng)
        assert accepts(schema(), text), text


# -- tokens ------------------------------------------------------------------------------------------

EOS = 0
TOKENS: tuple[str | None, ...] = (
    None,  # 0: end of sequence
    None,  # 1: a special token (never allowed)
    "{",
    '{"',
    "}",
    '"',
    '":',
    '",',
    '"}',
    "name",
    "age",
    "Ada",
    " Lovelace",
    "1",
    "12",
    ",",
    "true",
    "tr",
    "ue",
    "a\\",
    "\n",
    '"age":',
    '"}\n',
)


def vocabulary() -> Vocabulary:
    return Vocabulary(TOKENS, (EOS,))


def names(ids: Any) -> list[str]:
    return sorted("<eos>" if i == EOS else str(TOKENS[i]) for i in ids)


SMALL = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 5}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


def test_the_tokens_allowed_at_each_step_of_an_answer() -> None:
    constraint = TokenConstraint(Schema.parse(SMALL), vocabulary())
    state: State | None = constraint.start()
    steps = [
        ("{", ["{", '{"']),
        ('"', ['"']),
        ("name", ["name"]),
        ('":', ['"', '":']),  # '"' then ':' may come later; '":' closes the key
        # the string opens: its first character may be anything plain (':' and '}' too), or it ends
        ('"', ['"', '",', '":', '"}']),
        ("Ada", ['"', '",', ",", "1", "12", "Ada", "age", "name", "tr", "true", "ue", "{", '{"', "}"]),
        # 3 of 5 characters written: 2 more at most ('{"' is '{' and the closing quote)
        ('",', ['"', '",', ",", "1", "12", "tr", "ue", "{", '{"', "}"]),
        ('"age":', ['"', '"age":']),
        ("12", ["1", "12"]),
        ("}", ["1", "12", "}"]),
        ("<eos>", ["<eos>"]),
    ]
    for taken, expected in steps:
        assert state is not None
        allowed = names(constraint.allowed(state))
        assert allowed == sorted(expected), (taken, allowed)
        token = EOS if taken == "<eos>" else TOKENS.index(taken)
        state = constraint.advance(state, token)
    assert state == ()


def test_inside_a_string_the_remaining_length_bounds_the_tokens() -> None:
    constraint = TokenConstraint(Schema.parse(SMALL), vocabulary())
    state = feed(constraint.start(), '{"name":"Ada')
    assert state is not None
    allowed = names(constraint.allowed(state))
    assert "Ada" not in allowed and "12" in allowed and "1" in allowed  # 3 + 3 > 5; 3 + 2 fits
    assert " Lovelace" not in allowed and "a\\" not in allowed and "\n" not in allowed
    assert '",' in allowed and '"}' not in allowed  # the object goes on with "age"


def test_a_mask_covers_the_whole_logits_row_and_refuses_special_tokens() -> None:
    constraint = TokenConstraint(Schema.parse({"type": "boolean"}), vocabulary())
    mask = constraint.mask(constraint.start(), len(TOKENS) + 3)  # a model row wider than the vocabulary
    assert names(mask.nonzero()[0]) == ["tr", "true"] and not mask[len(TOKENS) :].any()
    state = constraint.advance(constraint.start(), TOKENS.index("tr"))
    assert state is not None and names(constraint.allowed(state)) == ["ue"]
    assert constraint.advance(constraint.start(), 1) is None  # a special token
    assert constraint.advance(constraint.start(), EOS) is None  # not yet whole


def test_greedy_decoding_under_the_mask_always_gives_a_valid_answer() -> None:
    """Whatever a model prefers, each masked greedy pick leads to a valid answer (random preferences),
    over a vocabulary that, as a byte-level one does, holds every single character too."""
    s = Schema.parse(SMALL)
    tokens = TOKENS + tuple('{}":,-0123456789agemnx')
    constraint = TokenConstraint(s, Vocabulary(tokens, (EOS,)))
    rng = random.Random(3)
    for _ in range(50):
        prefs = [rng.random() for _ in tokens]
        state: State | None = constraint.start()
        text = ""
        for _ in range(200):
            assert state is not None
            mask = constraint.mask(state, len(tokens))
            # a model that loves closing: once allowed, end-of-sequence wins
            token = EOS if mask[EOS] else max((p, i) for i, p in enumerate(prefs) if mask[i])[1]
            if token == EOS:
                break
            text += str(tokens[token])
            state = constraint.advance(state, token)
        assert check_text(text, s).ok, text


def test_a_byte_level_vocabulary_is_decoded_and_half_characters_are_never_allowed() -> None:
    vocab = Vocabulary.from_byte_level(["<s>", "Ġhello", "Ċ", "Ã©", "Ã"], special=[0], eos_ids=[0])
    assert vocab.texts == (None, " hello", "\n", "é", None)


# -- partial values and prompts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, value",
    [
        ("", None),
        ("{", {}),
        ('{"name":"Ad', {"name": "Ad"}),
        ('{"name":"Ada","age":3', {"name": "Ada", "age": 3}),
        ('{"name":"Ada","ag', {"name": "Ada"}),
        ('{"name":"Ada","age":', {"name": "Ada"}),
        ('{"a":[1,2', {"a": [1, 2]}),
        ('{"a":{"b":tru', {"a": {}}),
        ('{"a":"x\\', {"a": "x"}),
        ('[{"a":1},{"a"', [{"a": 1}, {}]),
    ],
)
def test_partial_values_of_unfinished_text(text: str, value: Any) -> None:
    assert partial_value(text) == value


def test_the_schema_is_added_to_the_system_message_and_the_repair_shows_the_errors() -> None:
    s = Schema.parse(SMALL)
    alone = instructed((ChatMessage("user", "Who?"),), s)
    assert alone[0].role == "system" and s.to_json() in alone[0].content
    kept = instructed((ChatMessage("system", "Be brief."), ChatMessage("user", "Who?")), s)
    assert len(kept) == 2 and kept[0].content.startswith("Be brief.")
    again = repair(kept, '{"name":1}', ["$.name must be a string, got integer"])
    assert [m.role for m in again[-2:]] == ["assistant", "user"]
    assert "$.name must be a string" in again[-1].content


def test_characters_no_token_writes_are_named_before_any_decoding() -> None:
    vocab = Vocabulary(TOKENS + tuple('{}":,[]ab'), (EOS,))
    rare = {"type": "object", "properties": {"a": {"enum": ["\U0001d504", "\U0001d505b"]}}}
    assert TokenConstraint(Schema.parse(rare), vocab).unwritable == "\U0001d504\U0001d505"
    one_writable = {"type": "object", "properties": {"a": {"enum": ["\U0001d504", "ab"]}}}
    assert TokenConstraint(Schema.parse(one_writable), vocab).unwritable == ""  # "ab" can be written
    key = {"type": "object", "properties": {"\u00e9t\u00e9": {"type": "string"}}}
    assert TokenConstraint(Schema.parse(key), vocab).unwritable == "\u00e9"  # "t" is in "true"
    optional = {"type": "array", "items": {"enum": ["\U0001d504"]}}  # minItems 0: [] is an answer
    assert TokenConstraint(Schema.parse(optional), vocab).unwritable == ""
    assert TokenConstraint(Schema.parse(SMALL), vocab).unwritable == ""
