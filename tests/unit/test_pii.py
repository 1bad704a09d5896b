"""The personal-data detector: check digits (property tests), each pattern with hard negatives, NER merge."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hybrid_router import pii
from hybrid_router.entities import Entity
from hybrid_router.errors import ValidationError
from hybrid_router.pii import Finding, detect, iban_valid, luhn_valid


def _luhn_digit(body: str) -> str:
    for d in "0123456789":
        if luhn_valid(body + d):
            return d
    raise AssertionError("no Luhn digit")


def _iban(country: str, bban: str) -> str:
    """An IBAN with the right check digits (ISO 13616: 98 - mod 97 of BBAN + country + 00)."""
    number = int("".join(str(int(ch, 36)) for ch in bban + country + "00"))
    return f"{country}{98 - number % 97:02d}{bban}"


def kinds(text: str) -> list[tuple[str, str]]:
    return [(f.kind, f.value) for f in detect(text)]


# --- check digits ---------------------------------------------------------------------------------------


@given(st.text(alphabet=string.digits, min_size=12, max_size=18))
def test_luhn_check_digit_is_found_and_any_single_change_breaks_it(body: str) -> None:
    number = body + _luhn_digit(body)
    assert luhn_valid(number)
    for i in range(len(number)):
        for d in "0123456789":
            if d != number[i]:
                assert not luhn_valid(number[:i] + d + number[i + 1 :])


@given(st.text(alphabet=string.digits, min_size=2, max_size=18), st.integers(0, 16))
def test_luhn_detects_adjacent_transpositions_except_09(body: str, at: int) -> None:
    number = body + _luhn_digit(body)
    i = at % (len(number) - 1)
    a, b = number[i], number[i + 1]
    if a != b and {a, b} != {"0", "9"}:
        assert not luhn_valid(number[:i] + b + a + number[i + 2 :])


def test_luhn_known_numbers_and_junk() -> None:
    assert luhn_valid("4111 1111 1111 1111") and luhn_valid("378282246310005")
    assert not luhn_valid("4111 1111 1111 1112")
    assert not luhn_valid("") and not luhn_valid("abc") and not luhn_valid("١٢٣٤")  # Arabic-Indic digits


_COUNTRY_BBAN = st.sampled_from(sorted(pii.IBAN_LENGTHS)).flatmap(
    lambda c: st.tuples(
        st.just(c),
        st.text(
            alphabet=string.digits + string.ascii_uppercase,
            min_size=pii.IBAN_LENGTHS[c] - 4,
            max_size=pii.IBAN_LENGTHS[c] - 4,
        ),
    )
)


@given(_COUNTRY_BBAN)
def test_iban_round_trip_and_single_substitutions_fail(country_bban: tuple[str, str]) -> None:
    iban = _iban(*country_bban)
    assert iban_valid(iban) and iban_valid(iban.lower())
    spaced = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    assert iban_valid(spaced)
    # mod 97 catches every change of one digit to another digit, or of one letter to another letter
    # (a letter for a digit changes the length of the number it stands for: not guaranteed)
    for i in range(4, len(iban)):
        if iban[i].isdigit():
            wrong = "0" if iban[i] != "0" else "1"
        else:
            wrong = "A" if iban[i] != "A" else "B"
        assert not iban_valid(iban[:i] + wrong + iban[i + 1 :])


def test_iban_known_examples_and_wrong_lengths() -> None:
    for good in (
        "DE89 3704 0044 0532 0130 00",
        "GB82 WEST 1234 5698 7654 32",
        "NL91ABNA0417164300",
        "FR14 2004 1010 0505 0001 3M02 606",
        "CH93 0076 2011 6238 5295 7",
    ):
        assert iban_valid(good), good
    assert not iban_valid("DE89 3704 0044 0532 0130 0")  # one short
    assert not iban_valid("XX89 3704 0044 0532 0130 00")  # no such country
    assert not iban_valid("DE88 3704 0044 0532 0130 00")  # wrong check digits


# --- patterns -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Write to anna.smith@example.co.uk today.", "anna.smith@example.co.uk"),
        ("<j_doe+tag@mail.example.org>", "j_doe+tag@mail.example.org"),
        ("ends with a dot: bob@example.com.", "bob@example.com"),
    ],
)
def test_emails(text: str, value: str) -> None:
    assert kinds(text) == [("EMAIL", value)]


@pytest.mark.parametrize(
    "text", ["npm i lodash@4.17.21", "ping @anna on chat", "user@localhost", "@Override public void run()"]
)
def test_not_emails(text: str) -> None:
    assert [k for k, _ in kinds(text)] == []


@pytest.mark.parametrize(
    "number",
    [
        "+44 20 7946 0958",
        "+1-202-555-0143",
        "+49 (0)30 1234567",
        "0049 30 1234567",
        "0151 12345678",
        "030 12345678",
        "07700 900123",
        "01 23 45 67 89",
        "020-1234567",
        "(555) 123-4567",
        "555-123-4567",
        "555.123.4567",
    ],
)
def test_phones(number: str) -> None:
    assert kinds(f"You can reach her on {number} after six.") == [("PHONE", number)]


def test_a_bare_number_is_a_phone_only_after_a_phone_word() -> None:
    assert kinds("call me on 5551234") == [("PHONE", "5551234")]
    assert kinds("my mobile: 612345678 (evenings)") == [("PHONE", "612345678")]
    assert kinds("we sold 5551234 units") == []


@pytest.mark.parametrize(
    "text",
    [
        "In 2024 we moved; in 1999 we left.",
        "It costs $1,234.56, or 1 234 567 EUR for the lot.",
        "Order #123456789 and order number 0123456789 shipped.",
        "Invoice no. 0151 12345678 is overdue.",
        "Dates: 2024-01-15, 15.01.2024, 01/15/2024, 01.02.2024.",
        "Build v10.0.19041, version 1.2.3, release 2.14.0-rc1.",
        "ISBN 978-3-16-148410-0, zip 90210, pi 3.14159265, 12345678 rows.",
        "Meet at 10:30:45; the score was 3-1; 20 000 people came.",
        "A 3x3 matrix has 9 entries; 1000000 is a million.",
    ],
)
def test_hard_negatives_are_not_personal_data(text: str) -> None:
    assert kinds(text) == []


def test_cards() -> None:
    assert kinds("Visa 4111 1111 1111 1111, expires 04/27.") == [("CARD", "4111 1111 1111 1111")]
    assert kinds("amex 3782-822463-10005") == [("CARD", "3782-822463-10005")]
    assert kinds("mc 5500000000000004") == [("CARD", "5500000000000004")]
    assert kinds("Luhn fails: 4111 1111 1111 1112") == []
    assert kinds("no issuer: 1234 5678 9012 3452") == []  # Luhn-valid, but no card starts with 1
    assert kinds("odd grouping 41 1111 1111 1111 11") == []


def test_ibans_in_text() -> None:
    text = "Pay DE89 3704 0044 0532 0130 00 or GB82WEST12345698765432, not DE88370400440532013000."
    assert kinds(text) == [("IBAN", "DE89 3704 0044 0532 0130 00"), ("IBAN", "GB82WEST12345698765432")]
    assert kinds("IBAN: DE89370400440532013000ABC") == []  # glued to more characters


def test_ips() -> None:
    text = "Hosts 192.168.1.10 and 2001:db8::8a2e:370:7334 and fe80::1%eth0."
    assert kinds(text) == [("IP", "192.168.1.10"), ("IP", "2001:db8::8a2e:370:7334"), ("IP", "fe80::1%eth0")]
    assert kinds("version 1.2.3.4, 999.1.1.1, std::vector, a::b, 10:30, 00:1A:2B:3C:4D:5E") == []


# --- NER and merging ------------------------------------------------------------------------------------


def test_entities_become_findings_and_patterns_win_overlaps() -> None:
    text = "Angela Merkel (angela.merkel@example.de) met Siemens in Paris."
    entities = [
        Entity("Angela Merkel", "PER", 0, 13, 0.99),
        Entity("angela.merkel", "PER", 15, 28, 0.7),  # inside the e-mail address
        Entity("Siemens", "ORG", 45, 52, 0.95),
        Entity("Paris", "LOC", 56, 61, 0.97),
        Entity("met", "MISC", 41, 44, 0.9),  # MISC is not personal data
    ]
    found = detect(text, entities)
    assert [(f.kind, f.value, f.source) for f in found] == [
        ("PERSON", "Angela Merkel", "ner"),
        ("EMAIL", "angela.merkel@example.de", "pattern"),
        ("ORG", "Siemens", "ner"),
        ("LOCATION", "Paris", "ner"),
    ]
    assert all(text[f.start : f.end] == f.value for f in found)


def test_entities_as_wire_dicts_and_score_floor() -> None:
    text = "Ask Tom."
    low = {"text": "Tom", "label": "PER", "start": 4, "end": 7, "score": 0.3}
    assert detect(text, [low]) == []
    assert detect(text, [low], min_score=0.2) == [Finding("PERSON", 4, 7, "Tom", "ner", 0.3)]
    with pytest.raises(ValidationError):
        detect(text, [{**low, "end": 99}], min_score=0.2)


def test_merge_prefers_validated_patterns() -> None:
    card = Finding("CARD", 0, 19, "4111 1111 1111 1111")
    phone = Finding("PHONE", 0, 14, "4111 1111 1111")
    person = Finding("PERSON", 5, 9, "1111", "ner", 0.9)
    assert pii.merge([phone, person], [card]) == [card]


def test_unknown_kind_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        pii.find_patterns("x", kinds=["SSN"])
