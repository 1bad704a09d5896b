"""Typed placeholders for personal data: redact a prompt before the cloud sees it, restore the answer.

- :func:`redact` replaces each :class:`~hybrid_router.pii.Finding` by ``[KIND_n]`` (``[EMAIL_1]``,
  ``[PERSON_2]``): the same value (compared case-insensitively, and for numbers by their digits) gets the
  same placeholder, numbered per kind in order of first appearance, skipping numbers the text already
  uses literally; it returns the text and the mapping placeholder -> original;
- :class:`Redactor` does that across the messages of one chat (one mapping for all of them);
- :func:`restore` puts the originals back into a text (the cloud's answer); unknown placeholders stay;
- :class:`StreamRestorer` does the same for an answer streamed in chunks, holding back the end of a chunk
  while it may be the start of a placeholder (``"... [EMA"`` + ``"IL_1] ..."``);
- :func:`summary`: kinds and counts for the route record, never the values.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from hybrid_router.errors import ValidationError
from hybrid_router.pii import KINDS, Finding

__all__ = ["PLACEHOLDER", "Redaction", "Redactor", "StreamRestorer", "redact", "restore", "summary"]

#: ``[KIND_n]``; kinds are matched case-insensitively on the way back (a model may re-case them).
PLACEHOLDER = re.compile(r"\[(" + "|".join(KINDS) + r")_(\d{1,6})\]", re.IGNORECASE)
_LONGEST = max(len(k) for k in KINDS) + len("[_999999]")
_PARTIAL = re.compile(r"\[(?:[A-Za-z]*(?:_\d{0,6})?)?$")


@dataclass(frozen=True, slots=True)
class Redaction:
    """The redacted ``text``, ``mapping`` placeholder -> original value, and the findings replaced."""

    text: str
    mapping: Mapping[str, str]
    findings: tuple[Finding, ...]

    def summary(self) -> dict[str, int]:
        return summary(self.findings)

    def to_wire(self) -> dict[str, Any]:
        """For the route record: kinds and counts only (no values, no placeholders' originals)."""
        return {"redacted": self.summary()}


def _canonical(f: Finding) -> str:
    if f.kind in ("PHONE", "CARD"):
        return re.sub(r"\D", "", f.value)
    if f.kind == "IBAN":
        return f.value.replace(" ", "").upper()
    return " ".join(f.value.split()).casefold()


def _checked(text: str, findings: Sequence[Finding]) -> list[Finding]:
    ordered = sorted(findings, key=lambda f: f.start)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b.start < a.end:
            raise ValidationError(
                f"findings overlap ({a.kind} {a.start}..{a.end} and {b.kind} {b.start}..{b.end})",
                hint="Merge the findings first (pii.merge or pii.detect).",
                field="findings",
            )
    for f in ordered:
        if not 0 <= f.start < f.end <= len(text) or text[f.start : f.end] != f.value:
            raise ValidationError(
                f"a {f.kind} finding ({f.start}..{f.end}) does not match the text", field="findings"
            )
    return ordered


class Redactor:
    """Placeholders shared by several texts (the messages of one chat): the same value gets the same
    placeholder in every text. ``texts`` are all the texts that will be redacted (or sent): numbers of
    placeholders written in them literally are not used."""

    def __init__(self, texts: Iterable[str] = ()) -> None:
        self._taken = {(m.group(1).upper(), int(m.group(2))) for t in texts for m in PLACEHOLDER.finditer(t)}
        self._names: dict[tuple[str, str], str] = {}
        self._counters: Counter[str] = Counter()
        self._mapping: dict[str, str] = {}
        self._findings: list[Finding] = []

    @property
    def mapping(self) -> Mapping[str, str]:
        """Placeholder -> original value, for everything redacted so far."""
        return MappingProxyType(dict(self._mapping))

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(self._findings)

    def redact(self, text: str, findings: Sequence[Finding]) -> str:
        """``text`` with every finding replaced by its placeholder (findings must not overlap: use
        :func:`hybrid_router.pii.merge`)."""
        ordered = _checked(text, findings)
        self._taken |= {(m.group(1).upper(), int(m.group(2))) for m in PLACEHOLDER.finditer(text)}
        parts: list[str] = []
        pos = 0
        for f in ordered:
            parts += [text[pos : f.start], self._name(f)]
            pos = f.end
        parts.append(text[pos:])
        self._findings += ordered
        return "".join(parts)

    def _name(self, f: Finding) -> str:
        key = (f.kind, _canonical(f))
        if key not in self._names:
            self._counters[f.kind] += 1
            while (f.kind, self._counters[f.kind]) in self._taken:
                self._counters[f.kind] += 1
            self._names[key] = f"[{f.kind}_{self._counters[f.kind]}]"
            self._mapping[self._names[key]] = f.value
        return self._names[key]


def redact(text: str, findings: Sequence[Finding]) -> Redaction:
    """``text`` with every finding replaced by its placeholder (findings must not overlap: use
    :func:`hybrid_router.pii.merge`); one text, see :class:`Redactor` for several."""
    redactor = Redactor([text])
    redacted = redactor.redact(text, findings)
    return Redaction(redacted, redactor.mapping, redactor.findings)


def _lookup(mapping: Mapping[str, str]) -> dict[str, str]:
    return {k.upper(): v for k, v in mapping.items()}


def restore(text: str, mapping: Mapping[str, str]) -> str:
    """``text`` with each placeholder of ``mapping`` replaced by its original value."""
    table = _lookup(mapping)
    return PLACEHOLDER.sub(lambda m: table.get(m.group().upper(), m.group()), text)


@dataclass
class StreamRestorer:
    """Restores placeholders in a streamed answer: ``feed`` each chunk, emit what it returns, then emit
    ``flush()`` at the end. Together they equal ``restore`` of the whole answer."""

    mapping: Mapping[str, str]
    _held: str = field(default="", init=False)
    _table: dict[str, str] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._table = _lookup(self.mapping)

    def feed(self, chunk: str) -> str:
        text = self._held + chunk
        cut = len(text)
        start = text.rfind("[", max(0, len(text) - _LONGEST))
        if start >= 0 and _PARTIAL.match(text, start) and "]" not in text[start:]:
            cut = start  # may still become a placeholder: wait for the next chunk
        self._held = text[cut:]
        return PLACEHOLDER.sub(lambda m: self._table.get(m.group().upper(), m.group()), text[:cut])

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held


def summary(findings: Sequence[Finding]) -> dict[str, int]:
    """``{kind: count}`` of the findings, in ``KINDS`` order (for the route record: no values)."""
    counts = Counter(f.kind for f in findings)
    return {k: counts[k] for k in KINDS if counts[k]}
