"""The on-device chat's KV cache: a follow-up turn evaluates only its new tokens.

A chat's next prompt is the previous prompt, the answer and the new message, so the keys and values the
model computed for the previous turn are the start of the next one's. Transformers.js's ``generate``
hands them back (``return_dict_in_generate``: ``past_key_values``, a ``DynamicCache`` of ORT tensors)
and takes them again (``past_key_values``), evaluating only the input tokens the cache does not hold.

:class:`KvSlot` decides when that is safe. It holds at most one cache (bounded memory: one
conversation, the latest), keyed by what it was computed from:

- the model, dtype and device (another model or dtype drops it: its keys and values mean nothing there);
- the exact token ids it holds keys and values for (prompt + answer, the answer's last token aside: it
  was sampled but never fed back). A prompt is served from it only when its tokens *start with* those
  ids and go on beyond them; anything else is another conversation (or an edited one) and drops it.
  So a cache is never shared between conversations: a prompt that reuses it is, token for token, the
  conversation it was computed for, continued.

``take`` empties the slot: a generation owns the cache it took (Transformers.js updates it in place), so
two generations at once never share one; a generation that ends puts its new cache back (``put``), one
that fails or is cancelled disposes what it held. Whatever the slot drops is disposed (its ORT tensors
freed: GPU buffers on WebGPU) by the function it was given. Pure Python (no ``js``): tested in CPython.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CachedPrefix", "KvSlot", "Owner"]

#: what a cache was computed by: (model id, dtype, device)
Owner = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class CachedPrefix:
    """A KV cache (the JS ``DynamicCache``) and the token ids it holds keys and values for."""

    owner: Owner
    tokens: tuple[int, ...]
    cache: Any


@dataclass(slots=True)
class KvStats:
    """What the slot did since the runtime started (the bench and the tests read it)."""

    hits: int = 0
    misses: int = 0
    tokens_reused: int = 0
    dropped: int = 0


@dataclass(slots=True)
class KvSlot:
    """At most one KV cache, handed to the generation whose prompt continues it (module docstring)."""

    dispose: Callable[[Any], None]
    entry: CachedPrefix | None = None
    stats: KvStats = field(default_factory=KvStats)

    def take(self, owner: Owner, prompt: Sequence[int]) -> CachedPrefix | None:
        """The cache that ``prompt`` (its token ids, by ``owner``'s model) continues, or None. The slot is
        empty afterwards: a cache that does not serve ``prompt`` is disposed."""
        entry, self.entry = self.entry, None
        if entry is not None and serves(entry, owner, prompt):
            self.stats.hits += 1
            self.stats.tokens_reused += len(entry.tokens)
            return entry
        self.stats.misses += 1
        if entry is not None:
            self._drop(entry)
        return None

    def put(self, entry: CachedPrefix) -> None:
        """Keep ``entry`` (the cache of the generation that just ended); what the slot held is disposed."""
        old, self.entry = self.entry, entry
        if old is not None:
            self._drop(old)

    def clear(self, model: str | None = None) -> None:
        """Drop the cache (only ``model``'s when given)."""
        if self.entry is not None and (model is None or self.entry.owner[0] == model):
            old, self.entry = self.entry, None
            self._drop(old)

    def _drop(self, entry: CachedPrefix) -> None:
        self.stats.dropped += 1
        self.dispose(entry.cache)


def serves(entry: CachedPrefix, owner: Owner, prompt: Sequence[int]) -> bool:
    """Whether ``entry`` holds the first tokens of ``prompt`` for ``owner``, with at least one token of
    ``prompt`` left to evaluate (the model needs one to compute the next token's logits)."""
    n = len(entry.tokens)
    return entry.owner == owner and 0 < n < len(prompt) and tuple(prompt[:n]) == entry.tokens
