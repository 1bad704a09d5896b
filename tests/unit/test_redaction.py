"""Typed placeholders: redact, restore (whole and streamed in chunks), the route-record summary."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hybrid_router import pii
from hybrid_router.entities import Entity
from hybrid_router.errors import ValidationError
from hybrid_router.pii import Finding
from hybrid_router.redaction import Redactor, StreamRestorer, redact, restore, summary

PROMPT = (
    "Hi, I'm Anna Berg. Mail anna@example.com or ANNA@example.com, call +44 20 7946 0958. "
    "Card 4111 1111 1111 1111; Anna Berg again."
)
_LAST = PROMPT.rfind("Anna Berg")
ENTITIES = [Entity("Anna Berg", "PER", 8, 17, 0.98), Entity("Anna Berg", "PER", _LAST, _LAST + 9, 0.97)]


def test_each_value_gets_one_typed_placeholder() -> None:
    found = pii.detect(PROMPT, ENTITIES)
    r = redact(PROMPT, found)
    assert r.text == (
        "Hi, I'm [PERSON_1]. Mail [EMAIL_1] or [EMAIL_1], call [PHONE_1]. Card [CARD_1]; [PERSON_1] again."
    )
    assert dict(r.mapping) == {
        "[PERSON_1]": "Anna Berg",
        "[EMAIL_1]": "anna@example.com",  # the first spelling; the same address in capitals shares it
        "[PHONE_1]": "+44 20 7946 0958",
        "[CARD_1]": "4111 1111 1111 1111",
    }
    for value in ("anna@example.com", "7946", "4111", "Anna"):
        assert value not in r.text


def test_summary_has_kinds_and_counts_only() -> None:
    r = redact(PROMPT, pii.detect(PROMPT, ENTITIES))
    assert r.summary() == {"EMAIL": 2, "CARD": 1, "PHONE": 1, "PERSON": 2}
    assert list(r.summary()) == ["EMAIL", "CARD", "PHONE", "PERSON"]  # KINDS order
    wire = str(r.to_wire())
    assert "anna" not in wire.lower() and "4111" not in wire
    assert summary([]) == {}


def test_restore_answer_and_unknown_placeholders() -> None:
    r = redact(PROMPT, pii.detect(PROMPT, ENTITIES))
    answer = "Dear [PERSON_1], we wrote to [email_1] and will call [PHONE_1]; [PHONE_7] is unknown."
    assert restore(answer, r.mapping) == (
        "Dear Anna Berg, we wrote to anna@example.com and will call +44 20 7946 0958; [PHONE_7] is unknown."
    )


def test_placeholders_already_in_the_text_are_not_reused() -> None:
    text = "Template [EMAIL_1] stays; real one: bob@example.com"
    r = redact(text, pii.detect(text))
    assert r.text == "Template [EMAIL_1] stays; real one: [EMAIL_2]"
    assert restore(r.text, r.mapping) == "Template [EMAIL_1] stays; real one: bob@example.com"


def test_a_chat_shares_one_mapping() -> None:
    messages = ["I'm bob@example.com.", "Reply to bob@example.com and cc [EMAIL_1] and amy@example.com."]
    redactor = Redactor(messages)
    out = [redactor.redact(m, pii.detect(m)) for m in messages]
    assert out == ["I'm [EMAIL_2].", "Reply to [EMAIL_2] and cc [EMAIL_1] and [EMAIL_3]."]
    assert dict(redactor.mapping) == {"[EMAIL_2]": "bob@example.com", "[EMAIL_3]": "amy@example.com"}
    assert summary(redactor.findings) == {"EMAIL": 3}


def test_bad_findings_are_validation_errors() -> None:
    with pytest.raises(ValidationError):
        redact("abc", [Finding("EMAIL", 0, 2, "ab"), Finding("PHONE", 1, 3, "bc")])
    with pytest.raises(ValidationError):
        redact("abc", [Finding("EMAIL", 0, 2, "xy")])


def test_stream_restorer_handles_a_placeholder_split_across_chunks() -> None:
    mapping = {"[EMAIL_1]": "anna@example.com", "[PERSON_12]": "Anna Berg"}
    chunks = ["Write to [EM", "AIL_", "1] now, [PERSON_1", "2]. Done [", "x] [PERS"]
    restorer = StreamRestorer(mapping)
    out = [restorer.feed(c) for c in chunks]
    assert out[0] == "Write to " and out[1] == ""  # held back while it may be a placeholder
    assert "".join(out) + restorer.flush() == "Write to anna@example.com now, Anna Berg. Done [x] [PERS"


_VALUES = st.sampled_from(
    [
        "anna@example.com",
        "bob.smith@mail.example.org",
        "+44 20 7946 0958",
        "0151 12345678",
        "4111 1111 1111 1111",
        "DE89 3704 0044 0532 0130 00",
        "192.168.1.10",
        "2001:db8::1",
    ]
)
_FILLER = st.text(alphabet="abc XYZ,.[]_!?\n", max_size=12)


@given(st.lists(st.tuples(_FILLER, _VALUES), max_size=6), _FILLER, st.lists(st.integers(1, 9), max_size=30))
def test_redact_then_restore_round_trips_whole_and_streamed(
    parts: list[tuple[str, str]], tail: str, cuts: list[int]
) -> None:
    text = "".join(f"{filler} {value} " for filler, value in parts) + tail
    r = redact(text, pii.detect(text))
    for _, value in parts:
        assert value not in r.text
    assert restore(r.text, r.mapping) == text
    # the redacted text streamed back in random chunk sizes restores to the same text
    restorer, pieces, pos = StreamRestorer(r.mapping), [], 0
    for n in cuts:
        pieces.append(restorer.feed(r.text[pos : pos + n]))
        pos += n
    pieces += [restorer.feed(r.text[pos:]), restorer.flush()]
    assert "".join(pieces) == text
