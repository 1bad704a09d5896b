"""The response cache: looks a request up by its key, answers a hit with its stored answer and a route
that says so, stores what may be stored, evicts, and counts (:meth:`ResponseCache.stats`).

The router asks it around a generation (:meth:`~hybrid_router.router.Router.generate`, ``stream``): the
policy is :mod:`.policy`, the storage :mod:`.store` (passed in). The cache never fails a call: a store or
an embedding that fails counts as an ``error`` and the call runs as if there were no cache.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    from hybrid_router._lazy import numpy as np

from hybrid_router.response_cache.policy import CacheConfig, CacheKey, best_match, evictions, not_storable
from hybrid_router.response_cache.store import ResponseStore, StoredEntry
from hybrid_router.route import REASON_CACHE, Route

__all__ = ["Hit", "ResponseCache", "Use", "replay_pieces"]

Vector: TypeAlias = "npt.NDArray[np.float32]"
Embed = Callable[[str], Awaitable[Vector]]
#: what a cloud call with that usage costs: (model, tokens_in, tokens_out) -> USD
Cost = Callable[[str | None, int, int], float]


@dataclass(frozen=True, slots=True)
class Hit:
    """A stored answer that serves the request, and how similar its question was."""

    entry: StoredEntry
    similarity: float


@dataclass(frozen=True, slots=True)
class Use:
    """One call's use of the cache: its key, the question's vector (None: not embedded), the hit."""

    key: CacheKey
    vector: Vector | None
    hit: Hit | None = None


def _now_ms() -> float:
    return time.time() * 1000.0


def replay_pieces(text: str) -> list[str]:
    """A stored answer as stream pieces: one per word with the space before it (a live stream's shape)."""
    pieces: list[str] = []
    word = ""
    for char in text:
        if char.isspace() and word.strip():
            pieces.append(word)
            word = ""
        word += char
    if word:
        pieces.append(word)
    return pieces


class ResponseCache:
    """The cache of one router (see the module docstring); ``now_ms`` is the wall clock (entries outlive the
    worker, so their times are absolute)."""

    def __init__(
        self, config: CacheConfig, store: ResponseStore, *, now_ms: Callable[[], float] = _now_ms
    ) -> None:
        self.config = config
        self.store = store
        self.now_ms = now_ms
        self._counts: Counter[str] = Counter()
        self._skipped: Counter[str] = Counter()
        self._not_stored: Counter[str] = Counter()
        self._saved_usd = 0.0
        self._saved_ms = 0.0

    async def lookup(self, key: CacheKey, embed: Embed) -> Use:
        """The question embedded and matched within its scope (never raises but for a cancel)."""
        try:
            vector = np.asarray(await embed(key.question), dtype=np.float32).reshape(-1)
        except Exception:  # no embedding model, or it failed: the call runs without the cache
            self.skip("unavailable")
            return Use(key, None)
        self._counts["lookups"] += 1
        try:
            hit = await self._match(key, vector)
        except Exception:
            self._counts["errors"] += 1
            hit = None
        self._counts["hits" if hit is not None else "misses"] += 1
        return Use(key, vector, hit)

    async def _match(self, key: CacheKey, vector: Vector) -> Hit | None:
        rows = await self.store.scope(key.scope)
        now = self.now_ms()
        fresh = [i for i, created in enumerate(rows.created_ms) if now - created < self.config.ttl_ms]
        if not fresh:
            return None
        found = best_match(vector, [rows.ids[i] for i in fresh], rows.vectors[fresh], self.config.similarity)
        if found is None:
            return None
        entry = await self.store.get(found[0])
        if entry is None:  # another tab evicted it meanwhile
            return None
        await self.store.touch(entry.id, now)
        return Hit(entry, found[1])

    def answer(self, hit: Hit, *, ms: float, cost: Cost) -> Route:
        """The route of an answer served from the cache (and its saving counted): target ``"cache"``,
        ``cache``: the similarity, the threshold, the entry's age and the original route."""
        original = hit.entry.route
        saved_usd = 0.0
        if original.get("target") == "cloud":
            saved_usd = cost(
                original.get("model"),
                int(original.get("tokens_in") or 0),
                int(original.get("tokens_out") or 0),
            )
        self._saved_usd += saved_usd
        self._saved_ms += max(float(original.get("ms") or 0.0) - ms, 0.0)
        self._counts[f"hits_{original.get('target', 'local')}"] += 1
        age_ms = max(self.now_ms() - hit.entry.created_ms, 0.0)
        rule = (
            f"a question {hit.similarity:.3f} similar (>= {self.config.similarity:g}) was answered "
            f"{_age(age_ms)} ago by {original.get('target')} ({original.get('model')}): "
            "its answer is replayed from the response cache"
        )
        return Route(
            target="cache",
            reason=REASON_CACHE,
            rule=rule,
            model=original.get("model"),
            ms=ms,
            finish_reason=hit.entry.finish_reason,
            max_tokens=original.get("max_tokens"),
            cache={
                "similarity": hit.similarity,
                "threshold": self.config.similarity,
                "age_ms": age_ms,
                "saved_usd": saved_usd,
                "original": original,
            },
        )

    async def keep(
        self,
        use: Use,
        *,
        text: str,
        finish_reason: str | None,
        route: Mapping[str, Any],
        sensitive: Mapping[str, Any] | None,
    ) -> str | None:
        """Store the answer of a missed lookup, then evict; the reason it was not stored, or None."""
        reason = "unembedded" if use.vector is None else not_storable(text, sensitive)
        if reason is not None:
            self._not_stored[reason] += 1
            return reason
        assert use.vector is not None
        now = self.now_ms()
        entry = StoredEntry(
            id=uuid.uuid4().hex,
            scope=use.key.scope,
            vector=use.vector,
            created_ms=now,
            used_ms=now,
            text=text,
            finish_reason=finish_reason,
            route=dict(route),
        )
        try:
            await self.store.put(entry)
            self._counts["stored"] += 1
            gone = evictions(await self.store.catalog(), now_ms=now, config=self.config)
            if gone:
                await self.store.delete(gone)
                self._counts["evicted"] += len(gone)
        except asyncio.CancelledError:
            raise
        except Exception:
            self._counts["errors"] += 1
            self._not_stored["error"] += 1
            return "error"
        return None

    def skip(self, reason: str) -> None:
        """A call that neither read nor filled the cache, and why (``bypass``: ``cache: false``)."""
        self._skipped[reason] += 1

    async def clear(self) -> int:
        """Delete every entry; how many there were."""
        count = len(await self.store.catalog())
        await self.store.clear()
        return count

    def stats(self) -> dict[str, Any]:
        """This worker's counts since it started: lookups, hits (by the side that first answered), misses,
        stored, not stored (by reason), skipped (by reason), evicted, errors, and what the hits saved: the
        cloud's price of the cloud answers they replayed (``saved_usd``) and the time (``saved_ms``, the
        original answer's time less the hit's)."""
        c = self._counts
        return {
            "enabled": True,
            "persistent": bool(getattr(self.store, "persistent", False)),
            "config": self.config.to_wire(),
            "lookups": c["lookups"],
            "hits": c["hits"],
            "hits_local": c["hits_local"],
            "hits_cloud": c["hits_cloud"],
            "misses": c["misses"],
            "hit_rate": c["hits"] / c["lookups"] if c["lookups"] else 0.0,
            "stored": c["stored"],
            "not_stored": dict(self._not_stored),
            "skipped": dict(self._skipped),
            "evicted": c["evicted"],
            "errors": c["errors"],
            "saved_usd": self._saved_usd,
            "saved_ms": self._saved_ms,
        }


def _age(ms: float) -> str:
    seconds = ms / 1000.0
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
