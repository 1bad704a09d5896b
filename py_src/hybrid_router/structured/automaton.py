"""Constrained decoding: which tokens may come next, so that the device's answer matches the schema.

Why written here rather than taken: Transformers.js 4.3.1 (the pinned version) has no structured output
or grammar support; what it has is a ``logits_processor`` option of ``generate()`` (custom processors
are appended to its own and called synchronously each step with the logits). So the grammar step is
ours, in the pure-Python core (tested in CPython), and the browser edge only applies the mask it gives.

Two levels:

- **characters**: the schema (:mod:`.schema`) is compiled into a stack machine over the characters of
  *one* JSON text: compact (no whitespace), the object's properties all present in the schema's order,
  strings without escapes. Every text it accepts is valid against the schema; a state is an immutable
  tuple (hashable: masks are memoized per state). :func:`step` feeds one character.
- **tokens**: :class:`Vocabulary` holds the tokenizer's tokens as text (byte-level BPE decoded; a token
  that is not whole UTF-8 on its own, or a special token, is never allowed, except end-of-sequence when
  the text is complete). :class:`TokenConstraint` answers "which token ids may follow this state" by
  feeding each candidate's characters: tokens are grouped by their first character, and inside a string
  a vectorized rule takes every plain token that fits the remaining length at once (the only per-token
  work there is for tokens holding a quote).
  A token is allowed when its characters can come next; whether the answer can then be finished is
  left to the single-character tokens, which a byte-level vocabulary always has (one per byte).

So that a small model cannot run on forever inside a value, decoding also bounds what the schema leaves
open: strings without ``maxLength`` end by :data:`STRING_CAP` characters, arrays without ``maxItems``
by :data:`ITEMS_CAP` items, numbers have at most 12 integer and 6 fraction digits and no exponent. Every
one of those is still valid against the schema (the caps never go below its minimums).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    from hybrid_router._lazy import numpy as np

from hybrid_router.structured.schema import (
    ArrayNode,
    BooleanNode,
    EnumNode,
    Node,
    NullNode,
    NumberNode,
    ObjectNode,
    Schema,
    StringNode,
)

__all__ = [
    "ITEMS_CAP",
    "STRING_CAP",
    "State",
    "TokenConstraint",
    "Vocabulary",
    "accepting",
    "feed",
    "start",
    "step",
]

#: the longest string the device writes where the schema sets no maxLength
STRING_CAP = 200
#: the most items the device writes where the schema sets no maxItems
ITEMS_CAP = 16
_INT_DIGITS, _FRAC_DIGITS = 12, 6
#: masks remembered per constraint (a state's mask is computed once)
_MEMO = 4096

# Stack items (tuples, so that states hash):
#   ("L", text, i)                literal text, at character i
#   ("V", node)                   a value of node, not started
#   ("S", min, max, n)            inside a string, n characters so far
#   ("N", integer, phase, i, f)   a number: phase 0 start, 1 after '-', 2 "0", 3 digits, 4 '.', 5 fraction
#   ("A", literals, i)            one of the literals (true/false, an enum's values), at character i
#   ("R", node, count, min, max)  an array after '[' (count 0) or after its count-th item
Item: TypeAlias = tuple[Any, ...]
State: TypeAlias = tuple[Item, ...]
_DIGITS = frozenset("0123456789")


def start(schema: Schema) -> State:
    """The state before the first character of an answer to ``schema``."""
    return (("V", schema.root),)


def _expand(node: Node) -> State:
    """A value of ``node`` as stack items (bottom first)."""
    if isinstance(node, ObjectNode):
        if not node.properties:
            return (("L", "{}", 0),)
        items: list[Item] = [("L", "}", 0)]
        for index in range(len(node.properties) - 1, -1, -1):
            name, sub = node.properties[index]
            key = ("{" if index == 0 else ",") + json.dumps(name, ensure_ascii=False) + ":"
            items += [("V", sub), ("L", key, 0)]
        return tuple(items)
    if isinstance(node, ArrayNode):
        high = node.max_items if node.max_items is not None else max(node.min_items, ITEMS_CAP)
        return (("R", node.items, 0, node.min_items, high), ("L", "[", 0))
    if isinstance(node, StringNode):
        high = node.max_length if node.max_length is not None else max(node.min_length, STRING_CAP)
        return (("S", node.min_length, high, 0), ("L", '"', 0))
    if isinstance(node, NumberNode):
        return (("N", node.integer, 0, 0, 0),)
    if isinstance(node, BooleanNode):
        return (("A", ("true", "false"), 0),)
    if isinstance(node, NullNode):
        return (("L", "null", 0),)
    return (("A", tuple(json.dumps(v, ensure_ascii=False) for v in node.values), 0),)


def _string_char(ch: str) -> bool:
    """A character the device may write inside a string (no quote, backslash or control character)."""
    return ch != '"' and ch != "\\" and ch >= " " and ch != "\x7f"


def _number(item: Item, ch: str) -> Item | None:
    _, integer, phase, whole, frac = item
    digit = ch in _DIGITS
    if phase in (0, 1):
        if ch == "-" and phase == 0:
            return ("N", integer, 1, 0, 0)
        if digit:
            return ("N", integer, 2 if ch == "0" else 3, 1, 0)
        return None
    if phase == 3 and digit and whole < _INT_DIGITS:
        return ("N", integer, 3, whole + 1, 0)
    if phase in (2, 3) and ch == "." and not integer:
        return ("N", integer, 4, whole, 0)
    if phase in (4, 5) and digit and frac < _FRAC_DIGITS:
        return ("N", integer, 5, whole, frac + 1)
    return None


def _complete(item: Item) -> bool:
    """Whether ``item`` may end here (the next character belongs to what follows)."""
    if item[0] == "N":
        return bool(item[2] in (2, 3, 5))
    if item[0] == "A":
        return any(len(lit) == item[2] for lit in item[1])
    return False


def step(state: State, ch: str) -> State | None:  # noqa: C901 - one branch per kind of item
    """The state after ``ch``, or None when ``ch`` cannot come next."""
    while state:
        top, rest = state[-1], state[:-1]
        kind = top[0]
        if kind == "L":
            text, i = top[1], top[2]
            if text[i] != ch:
                return None
            return rest + (("L", text, i + 1),) if i + 1 < len(text) else rest
        if kind == "V":
            state = rest + _expand(top[1])
            continue
        if kind == "S":
            low, high, count = top[1], top[2], top[3]
            if ch == '"':
                return rest if count >= low else None
            if count < high and _string_char(ch):
                return rest + (("S", low, high, count + 1),)
            return None
        if kind == "N":
            moved = _number(top, ch)
            if moved is not None:
                return rest + (moved,)
            if not _complete(top):
                return None
            state = rest
            continue
        if kind == "A":
            literals, i = top[1], top[2]
            matching = tuple(lit for lit in literals if len(lit) > i and lit[i] == ch)
            if matching:
                if all(len(lit) == i + 1 for lit in matching):
                    return rest
                return rest + (("A", matching, i + 1),)
            if not _complete(top):
                return None
            state = rest
            continue
        # "R": an array, after '[' or after an item
        node, count, low, high = top[1], top[2], top[3], top[4]
        if ch == "]" and count >= low:
            return rest
        if count == 0 and high > 0:
            state = rest + (("R", node, 1, low, high), ("V", node))
            continue
        if count > 0 and ch == "," and count < high:
            return rest + (("R", node, count + 1, low, high), ("V", node))
        return None
    return None


def feed(state: State | None, text: str) -> State | None:
    """The state after all of ``text`` (None: it cannot come next)."""
    for ch in text:
        if state is None:
            return None
        state = step(state, ch)
    return state


def accepting(state: State) -> bool:
    """Whether the text so far is a whole answer (end-of-sequence may come)."""
    for item in reversed(state):
        if not _complete(item):
            return False
    return True


# -- tokens ------------------------------------------------------------------------------------------


def _missing(node: Node, chars: frozenset[str]) -> set[str]:
    """Characters every answer to ``node`` needs that are not in ``chars`` (its keys, punctuation, and
    literal values: an enum misses what each of its values misses, when each misses some)."""
    if isinstance(node, ObjectNode):
        found = set("{}") - chars
        for name, sub in node.properties:
            found |= set(json.dumps(name, ensure_ascii=False) + ":,") - chars
            found |= _missing(sub, chars)
        return found
    if isinstance(node, ArrayNode):
        return (set("[]") - chars) | (_missing(node.items, chars) if node.min_items else set())
    if isinstance(node, EnumNode):
        each = [set(json.dumps(v, ensure_ascii=False)) - chars for v in node.values]
        return set().union(*each) if all(each) else set()
    literal = {StringNode: '"', BooleanNode: "e", NullNode: "nul"}.get(type(node), "")
    return set(literal) - chars


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet reversed: a BPE vocabulary's character -> the byte it stands for."""
    visible = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    codes = visible[:]
    extra = 0
    for byte in range(256):
        if byte not in visible:
            visible.append(byte)
            codes.append(256 + extra)
            extra += 1
    return {chr(code): byte for byte, code in zip(visible, codes, strict=True)}


_BYTES = _byte_decoder()


@dataclass(frozen=True)
class Vocabulary:
    """A tokenizer's tokens as the text each adds (None: never allowed) and its end-of-sequence ids."""

    texts: tuple[str | None, ...]
    eos_ids: tuple[int, ...]
    lengths: npt.NDArray[np.int64] = field(init=False, repr=False)
    #: tokens made only of string characters (ids, and their lengths)
    plain_ids: npt.NDArray[np.int64] = field(init=False, repr=False)
    plain_lengths: npt.NDArray[np.int64] = field(init=False, repr=False)
    #: tokens whose first non-string character is a quote: (id, characters before it)
    quoted: tuple[tuple[int, int], ...] = field(init=False, repr=False)
    #: token ids by their first character
    by_first: dict[str, npt.NDArray[np.int64]] = field(init=False, repr=False)
    #: every character some token writes
    chars: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        lengths = np.array([len(t) if t else 0 for t in self.texts], dtype=np.int64)
        plain: list[int] = []
        quoted: list[tuple[int, int]] = []
        firsts: dict[str, list[int]] = {}
        for index, text in enumerate(self.texts):
            if not text:
                continue
            firsts.setdefault(text[0], []).append(index)
            cut = next((k for k, ch in enumerate(text) if not _string_char(ch)), len(text))
            if cut == len(text):
                plain.append(index)
            elif text[cut] == '"':
                quoted.append((index, cut))
        ids = np.array(plain, dtype=np.int64)
        object.__setattr__(self, "lengths", lengths)
        object.__setattr__(self, "plain_ids", ids)
        object.__setattr__(self, "plain_lengths", lengths[ids])
        object.__setattr__(self, "quoted", tuple(quoted))
        object.__setattr__(self, "by_first", {ch: np.array(v, dtype=np.int64) for ch, v in firsts.items()})
        object.__setattr__(self, "chars", frozenset("".join(t for t in self.texts if t)))

    @classmethod
    def from_byte_level(
        cls, tokens: Sequence[str], *, special: Iterable[int], eos_ids: Iterable[int]
    ) -> Vocabulary:
        """A byte-level BPE vocabulary (GPT-2, SmolLM2: ``Ġ`` for a space) by id; ``special`` ids
        (chat markers, padding) are never allowed."""
        skip = set(special)
        texts: list[str | None] = []
        for index, token in enumerate(tokens):
            texts.append(None if index in skip else _decode_byte_level(token))
        return cls(tuple(texts), tuple(eos_ids))

    def __len__(self) -> int:
        return len(self.texts)

    def text_of(self, token: int) -> str:
        """The text ``token`` adds ("" for a special token or one out of range)."""
        return (self.texts[token] or "") if 0 <= token < len(self.texts) else ""


def _decode_byte_level(token: str) -> str | None:
    try:
        return bytes(_BYTES[ch] for ch in token).decode("utf-8")
    except (KeyError, UnicodeDecodeError):
        return None  # not whole UTF-8 alone (half a character), or not byte-level at all


class TokenConstraint:
    """The tokens allowed after each state of one schema's answers, over one vocabulary (memoized)."""

    def __init__(self, schema: Schema, vocabulary: Vocabulary) -> None:
        self.schema = schema
        self.vocabulary = vocabulary
        self._memo: dict[State, npt.NDArray[np.int64]] = {}
        #: characters the schema's answers must contain that no token writes (an answer would stop short)
        self.unwritable = "".join(sorted(_missing(schema.root, vocabulary.chars)))

    def start(self) -> State:
        return start(self.schema)

    def allowed(self, state: State) -> npt.NDArray[np.int64]:
        """The token ids that may follow ``state`` (sorted): end-of-sequence only once the answer is whole."""
        found = self._memo.get(state)
        if found is None:
            if len(self._memo) >= _MEMO:
                self._memo.clear()
            found = self._memo[state] = np.unique(np.concatenate(list(self._allowed(state))))
        return found

    def _allowed(self, state: State) -> Iterable[npt.NDArray[np.int64]]:
        vocab = self.vocabulary
        yield np.array(vocab.eos_ids if accepting(state) else (), dtype=np.int64)
        if not state:
            return
        top = state[-1]
        if top[0] == "S":
            low, high, count = top[1], top[2], top[3]
            yield vocab.plain_ids[vocab.plain_lengths <= high - count]
            texts = vocab.texts
            closes = [
                token
                for token, before in vocab.quoted
                if low <= count + before <= high
                and feed(state[:-1], (texts[token] or "")[before + 1 :]) is not None
            ]
            yield np.array(closes, dtype=np.int64)
            return
        for first, ids in vocab.by_first.items():
            after = step(state, first)
            if after is None:
                continue
            rests = ((t, (vocab.texts[t] or "")[1:]) for t in ids)
            yield np.array([t for t, rest in rests if feed(after, rest) is not None], dtype=np.int64)

    def advance(self, state: State, token: int) -> State | None:
        """The state after ``token`` (None: it was not allowed; end-of-sequence keeps the state)."""
        if token in self.vocabulary.eos_ids:
            return state if accepting(state) else None
        text = self.vocabulary.texts[token] if 0 <= token < len(self.vocabulary) else None
        return feed(state, text) if text else None

    def mask(self, state: State, size: int) -> npt.NDArray[np.bool_]:
        """A boolean mask over ``size`` logits: True where the token may come next."""
        allowed = self.allowed(state)
        out = np.zeros(size, dtype=np.bool_)
        out[allowed[allowed < size]] = True
        return out
