"""Personal data in a prompt: validated patterns plus the NER model's people, organisations and places.

Pure Python (``re``, ``ipaddress``), run on the device before anything may leave it. :func:`detect`
returns :class:`Finding` s (kind, start, end, value) that never overlap:

- ``EMAIL``: ``local@domain.tld`` (letters-only top-level domain, so ``pkg@1.2.3`` is not one);
- ``PHONE``: ``+`` / ``00`` international numbers (8-15 digits), national numbers with a leading trunk
  ``0`` (9-12 digits) and North-American ``(555) 123-4567`` / ``555-123-4567`` shapes; any 7-15 digit
  number right after a phone word ("call", "tel", "mobile", ...). Dates, prices, numbers after an
  order/invoice/reference word, and digit runs glued to other words are not phones;
- ``CARD``: 13-19 digits (plain, or in groups of 4, or Amex's 4-6-5) with a known issuer prefix and a
  valid Luhn check digit;
- ``IBAN``: the country's length and the ISO 7064 mod-97 check;
- ``IP``: IPv4 (each octet 0-255, not after a version word: "v", "version", "release", ...) and IPv6
  (validated by ``ipaddress``; at least two groups and a digit, so ``a::b`` in C++ is not one);
- ``PERSON`` / ``ORG`` / ``LOCATION``: the NER entities ``PER`` / ``ORG`` / ``LOC`` (``MISC`` is not
  personal data), shaped like :class:`hybrid_router.entities.Entity`, at or above ``min_score``.

Where findings overlap, the validated patterns win over NER (an e-mail's local part is not a person),
then the longer span. See ``eval/pii_eval.py`` for measured precision and recall.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from hybrid_router.errors import ValidationError

__all__ = [
    "IBAN_LENGTHS",
    "KINDS",
    "NER_KINDS",
    "NER_MODEL",
    "PATTERN_KINDS",
    "EntityLike",
    "Finding",
    "detect",
    "find_cards",
    "find_emails",
    "find_ibans",
    "find_ips",
    "find_patterns",
    "find_phones",
    "from_entities",
    "iban_valid",
    "luhn_valid",
    "merge",
]

PATTERN_KINDS = ("EMAIL", "IBAN", "CARD", "IP", "PHONE")  # also the order of precedence on overlaps
NER_KINDS: Mapping[str, str] = {"PER": "PERSON", "ORG": "ORG", "LOC": "LOCATION"}
KINDS = (*PATTERN_KINDS, *NER_KINDS.values())
#: the project's entity model (models_manifest.json): the detector of ``NER_KINDS`` a route names as
#: missing when no entity model is installed (not built yet, or left out of a site)
NER_MODEL = "minilm-l6-conll03-ner"


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of personal data: ``text[start:end] == value``; ``source`` is "pattern" or "ner"."""

    kind: str
    start: int
    end: int
    value: str
    source: str = "pattern"
    score: float = 1.0

    def to_wire(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "start": self.start,
            "end": self.end,
            "value": self.value,
            "source": self.source,
            "score": self.score,
        }


class EntityLike(Protocol):
    """What :func:`from_entities` reads (:class:`hybrid_router.entities.Entity` has it)."""

    @property
    def text(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def score(self) -> float: ...


# --- check digits ---------------------------------------------------------------------------------------


def luhn_valid(number: str) -> bool:
    """The Luhn (mod 10) check of a digit string (spaces and dashes ignored); False for non-digits."""
    digits = number.replace(" ", "").replace("-", "")
    if not digits.isdigit() or not digits.isascii() or len(digits) < 2:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


#: IBAN length per country (SWIFT IBAN registry).
IBAN_LENGTHS: Mapping[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def iban_valid(iban: str) -> bool:
    """Country length and mod-97 check of an IBAN (spaces ignored, any case)."""
    compact = iban.replace(" ", "").upper()
    if not compact.isascii() or not compact.isalnum() or IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    if not compact[2:4].isdigit():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


# --- patterns -------------------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![\w.+%-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-]|\.\w)"
)


def find_emails(text: str) -> list[Finding]:
    return [Finding("EMAIL", m.start(), m.end(), m.group()) for m in _EMAIL.finditer(text)]


_CARD = re.compile(r"(?<![\w.,/-])\d(?:\d|[ -](?=\d)){11,22}\d(?![\w-]|[.,/]\d)")
#: (prefix range, allowed lengths) of the card issuers (Visa, Mastercard, Amex, Discover, JCB, Diners,
#: UnionPay, Maestro).
_ISSUERS: tuple[tuple[int, int, tuple[int, ...]], ...] = (
    (4, 4, (13, 16, 19)),
    (51, 55, (16,)),
    (2221, 2720, (16,)),
    (34, 34, (15,)),
    (37, 37, (15,)),
    (6011, 6011, (16, 19)),
    (644, 649, (16, 19)),
    (65, 65, (16, 19)),
    (3528, 3589, (16, 19)),
    (300, 305, (14, 16, 19)),
    (36, 36, (14, 16, 19)),
    (38, 39, (14, 16, 19)),
    (62, 62, (16, 17, 18, 19)),
    (50, 50, (12, 13, 14, 15, 16, 17, 18, 19)),
    (56, 58, (12, 13, 14, 15, 16, 17, 18, 19)),
)
_CARD_GROUPS = {(4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4), (4, 4, 4, 1), (4, 4, 4, 2), (4, 4, 4, 3)}


def _known_issuer(digits: str) -> bool:
    for low, high, lengths in _ISSUERS:
        width = len(str(low))
        if low <= int(digits[:width]) <= high and len(digits) in lengths:
            return True
    return False


def find_cards(text: str) -> list[Finding]:
    out = []
    for m in _CARD.finditer(text):
        raw = m.group()
        separators = {ch for ch in raw if not ch.isdigit()}
        digits = re.sub(r"\D", "", raw)
        if len(separators) > 1 or not 13 <= len(digits) <= 19:
            continue
        if separators and tuple(len(g) for g in re.split(r"[ -]", raw)) not in _CARD_GROUPS:
            continue
        if _known_issuer(digits) and luhn_valid(digits):
            out.append(Finding("CARD", m.start(), m.end(), raw))
    return out


_IBAN = re.compile(r"(?<!\w)[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){10,30}", re.ASCII)


def _cut(candidate: str, length: int) -> int:
    """The end (in ``candidate``) of its first ``length`` non-space characters, 0 if it is shorter."""
    taken = 0
    for i, ch in enumerate(candidate):
        taken += ch != " "
        if taken == length:
            return i + 1
    return 0


def find_ibans(text: str) -> list[Finding]:
    """IBANs, compact or in groups; a candidate is cut to its country's length before it is checked."""
    out = []
    pos = 0
    while (m := _IBAN.search(text, pos)) is not None:
        candidate = m.group()
        end = _cut(candidate, IBAN_LENGTHS.get(candidate[:2].upper(), 0))
        # valid, and not glued to more characters (a longer word is not this IBAN)
        if end and not candidate[end : end + 1].isalnum() and iban_valid(candidate[:end]):
            out.append(Finding("IBAN", m.start(), m.start() + end, candidate[:end]))
            pos = m.start() + end
        else:
            pos = m.start() + 1
    return out


_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV4_VERSION = re.compile(
    r"\b(?:v|version|ver|release|build|firmware|update|upgrade|patch|rev)\.?\s?$", re.IGNORECASE
)
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%\w+(?:[.-]\w+)*)?(?![\w:])")


def find_ips(text: str) -> list[Finding]:
    out = []
    for m in _IPV4.finditer(text):
        if _IPV4_VERSION.search(text[max(0, m.start() - 12) : m.start()]):
            continue
        try:
            ipaddress.IPv4Address(m.group())
        except ValueError:
            continue
        out.append(Finding("IP", m.start(), m.end(), m.group()))
    for m in _IPV6.finditer(text):
        value = m.group()
        groups = [g for g in value.split("%")[0].split(":") if g]
        if len(groups) < 2 or not any(ch.isdigit() for ch in value.split("%")[0]):
            continue
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            continue
        out.append(Finding("IP", m.start(), m.end(), value))
    return out


_PHONE = re.compile(
    r"(?<![\w+.,/-])\+?(?:\(\d{1,5}\)|\d)(?:\d|[ ./-]\(?(?=\d)|\) ?|\(0\) ?){5,26}(?<=\d)(?![\w-]|[.,/]\d)"
)
_PHONE_WORDS = re.compile(
    r"\b(?:phone|tel|telephone|mobile|cell|call|calling|fax|whats ?app|sms|text me|ring|dial|landline|"
    r"hotline|contact|reach|number is|no\.? is)\W{0,4}(?:\w+\W{1,3}){0,3}$",
    re.IGNORECASE,
)
_NOT_PHONE_WORDS = re.compile(
    r"(?:\b(?:order|invoice|account|acct|ref|reference|id|serial|isbn|sku|ticket|case|tracking|"
    r"transaction|customer|booking|confirmation|policy|part|model|po)|#)\W{0,4}(?:(?:no|number|nr|num)\W{0,3})?$",
    re.IGNORECASE,
)
_DATE = re.compile(r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}")
_NANP = re.compile(r"(?:\+?1[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}")
_CURRENCY = re.compile(r"[$€£¥₹]\s?$|(?:usd|eur|gbp)\s?$", re.IGNORECASE)
_AFTER_PRICE = re.compile(
    r"^\s?(?:[€$£%]|eur|usd|gbp|dollars?|euros?|pounds?|percent|km|kg|mb|gb)\b", re.IGNORECASE
)


def _is_phone(value: str, before: str, after: str) -> bool:
    digits = re.sub(r"\D", "", value)
    if _DATE.fullmatch(value) or _CURRENCY.search(before) or _AFTER_PRICE.match(after):
        return False
    if _NOT_PHONE_WORDS.search(before):
        return False
    if value.startswith("+") or value.startswith("00"):
        return 8 <= len(digits) - (2 if value.startswith("00") else 0) <= 15
    if _PHONE_WORDS.search(before):
        return 7 <= len(digits) <= 15
    if _NANP.fullmatch(value):
        return True
    return value.startswith(("0", "(0")) and 9 <= len(digits) <= 12 and not value.startswith("00")


def find_phones(text: str) -> list[Finding]:
    out = []
    for m in _PHONE.finditer(text):
        value = m.group().rstrip(" ./-")
        if _is_phone(value, text[max(0, m.start() - 40) : m.start()], text[m.end() : m.end() + 12]):
            out.append(Finding("PHONE", m.start(), m.start() + len(value), value))
    return out


_FINDERS = {
    "EMAIL": find_emails,
    "IBAN": find_ibans,
    "CARD": find_cards,
    "IP": find_ips,
    "PHONE": find_phones,
}


def find_patterns(text: str, kinds: Iterable[str] = PATTERN_KINDS) -> list[Finding]:
    """Every pattern finding of ``kinds`` (may overlap; :func:`merge` resolves that)."""
    out: list[Finding] = []
    for kind in kinds:
        if kind not in _FINDERS:
            raise ValidationError(
                f"unknown personal-data kind {kind!r}", field="kinds", allowed=list(_FINDERS)
            )
        out += _FINDERS[kind](text)
    return out


# --- NER and merging ------------------------------------------------------------------------------------


def _field(entity: EntityLike | Mapping[str, Any], name: str) -> Any:
    return entity[name] if isinstance(entity, Mapping) else getattr(entity, name)


def from_entities(
    entities: Iterable[EntityLike | Mapping[str, Any]],
    text: str | None = None,
    *,
    min_score: float = 0.5,
    labels: Collection[str] = tuple(NER_KINDS),
) -> list[Finding]:
    """Findings of the NER entities with ``labels`` (of PER / ORG / LOC) scored at least ``min_score``
    (others dropped). With ``text``, the value is ``text[start:end]`` (offsets are checked against it)."""
    out = []
    for e in entities:
        label = str(_field(e, "label"))
        kind = NER_KINDS.get(label) if label in labels else None
        score = float(_field(e, "score"))
        if kind is None or score < min_score:
            continue
        start, end = int(_field(e, "start")), int(_field(e, "end"))
        if not 0 <= start < end or (text is not None and end > len(text)):
            raise ValidationError(f"entity offsets {start}..{end} are outside the text", field="entities")
        value = text[start:end] if text is not None else str(_field(e, "text"))
        out.append(Finding(kind, start, end, value, "ner", score))
    return out


def _rank(f: Finding) -> tuple[int, int, int, float]:
    kind = PATTERN_KINDS.index(f.kind) if f.kind in PATTERN_KINDS else len(PATTERN_KINDS)
    return (0 if f.source == "pattern" else 1, kind, -(f.end - f.start), -f.score)


def merge(*groups: Sequence[Finding]) -> list[Finding]:
    """All findings without overlaps, in text order: patterns before NER, then the order of
    ``PATTERN_KINDS``, then the longer span, then the higher score."""
    taken: list[Finding] = []
    for f in sorted((f for g in groups for f in g), key=lambda f: (*_rank(f), f.start)):
        if all(f.end <= t.start or f.start >= t.end for t in taken):
            taken.append(f)
    return sorted(taken, key=lambda f: f.start)


def detect(
    text: str,
    entities: Iterable[EntityLike | Mapping[str, Any]] = (),
    *,
    min_score: float = 0.5,
    labels: Collection[str] = tuple(NER_KINDS),
) -> list[Finding]:
    """The personal data in ``text``: patterns plus the NER ``entities`` of it (those with ``labels``),
    merged."""
    if not isinstance(text, str):
        raise ValidationError(f"text must be a string, not {type(text).__name__}", field="text")
    return merge(find_patterns(text), from_entities(entities, text, min_score=min_score, labels=labels))
