"""Named-entity spans from per-word-piece predictions: character offsets into the original text, BIO grouping.

Transformers.js's token-classification pipeline gives one prediction per word piece (``{"word": "##son",
"entity": "I-PER", "score", "index"}``) without character offsets, and no aggregation that keeps them.
This module finds where each piece is in the text, the way a BERT uncased tokenizer read it (lower case,
accents stripped, whitespace and control characters skipped), and groups the pieces into entities:

- a piece starting with ``##`` belongs to the word before it: it extends that word's entity whatever its
  own label (a word is never split between two entities);
- ``B-X`` starts an entity, ``I-X`` continues an ``X`` entity (and starts one after ``O`` or another type,
  as conlleval reads IOB), ``O`` ends it;
- an entity's score is the mean of its pieces' scores; its text is the original text between its offsets.

Pieces the tokenizer could not map (``[UNK]``, which the pipeline drops as a special token) are skipped
over by searching for the next piece a little further on. Pure Python: unit-tested in CPython.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Entity", "group_entities", "piece_offsets"]

#: How far (in normalized characters) to look for a piece that is not where the previous one ended.
_SEARCH_WINDOW = 64


@dataclass(frozen=True, slots=True)
class Entity:
    text: str
    label: str
    start: int  # character offset of the first character in the original text
    end: int  # offset just after the last character
    score: float

    def to_wire(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "label": self.label,
            "start": self.start,
            "end": self.end,
            "score": self.score,
        }


def _normalized(text: str, *, lowercase: bool) -> tuple[str, list[int]]:
    """The text as an uncased BERT tokenizer compares it, and the original index of each of its characters.

    Whitespace and control characters become spaces (they separate pieces and never match one).
    """
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        if ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf") or ch in ("\x00", "\ufffd"):
            chars.append(" ")
            origin.append(i)
            continue
        form = ch.lower() if lowercase else ch
        if lowercase:  # BertNormalizer(strip_accents = lowercase): NFD, drop combining marks
            form = "".join(c for c in unicodedata.normalize("NFD", form) if unicodedata.category(c) != "Mn")
        for c in form:
            chars.append(c)
            origin.append(i)
    return "".join(chars), origin


def piece_offsets(
    text: str, pieces: Sequence[str], *, lowercase: bool = True
) -> list[tuple[int, int] | None]:
    """``(start, end)`` in ``text`` of each word piece (``##`` continuation marks allowed), None where a piece
    cannot be found (it is then skipped over)."""
    norm, origin = _normalized(text, lowercase=lowercase)
    out: list[tuple[int, int] | None] = []
    pos = 0
    for piece in pieces:
        body = piece[2:] if piece.startswith("##") and len(piece) > 2 else piece
        if lowercase:
            body = body.lower()
        while pos < len(norm) and norm[pos] == " ":
            pos += 1
        at = pos if norm.startswith(body, pos) else norm.find(body, pos, pos + _SEARCH_WINDOW + len(body))
        if not body or at < 0:
            out.append(None)
            continue
        out.append((origin[at], origin[at + len(body) - 1] + 1))
        pos = at + len(body)
    return out


def group_entities(text: str, tokens: Sequence[Mapping[str, Any]], *, lowercase: bool = True) -> list[Entity]:
    """Entities of ``text`` from the pipeline's per-piece predictions (``word``, ``entity``, ``score``), in
    text order; ``tokens`` must list every piece in order (the pipeline's ``ignore_labels: []``)."""
    offsets = piece_offsets(text, [str(t["word"]) for t in tokens], lowercase=lowercase)
    entities: list[Entity] = []
    current: dict[str, Any] | None = None  # label, start, end, scores

    def close() -> None:
        nonlocal current
        if current is not None:
            start, end = current["start"], current["end"]
            score = sum(current["scores"]) / len(current["scores"])
            entities.append(Entity(text[start:end], current["label"], start, end, score))
        current = None

    for token, where in zip(tokens, offsets, strict=True):
        if where is None:
            continue
        label, score = str(token["entity"]), float(token["score"])
        if str(token["word"]).startswith("##") and len(str(token["word"])) > 2:
            if current is not None:  # the rest of a word follows its first piece
                current["end"] = max(current["end"], where[1])
                current["scores"].append(score)
            continue
        kind = label[2:] if label[:2] in ("B-", "I-") else None
        if kind is None:
            close()
        elif label.startswith("B-") or current is None or current["label"] != kind:
            close()
            current = {"label": kind, "start": where[0], "end": where[1], "scores": [score]}
        else:
            current["end"] = where[1]
            current["scores"].append(score)
    close()
    return entities
