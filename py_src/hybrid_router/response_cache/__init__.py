"""The semantic response cache: a repeated or paraphrased question answered from an earlier answer.

:mod:`.policy` decides (the key, a match, what is stored, eviction), :mod:`.store` keeps (the contract and
an in-memory store; IndexedDB at the browser's edge), :mod:`.cache` carries it out for the router.
"""

from hybrid_router.response_cache.cache import Hit, ResponseCache, Use, replay_pieces
from hybrid_router.response_cache.policy import (
    DEFAULT_MAX_ENTRIES,
    DEFAULT_SIMILARITY,
    DEFAULT_TTL_MS,
    CacheConfig,
    CacheKey,
    EntryMeta,
    best_match,
    cache_key,
    evictions,
    not_storable,
    question,
    skip_reason,
)
from hybrid_router.response_cache.store import MemoryResponseStore, ResponseStore, ScopeRows, StoredEntry

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_SIMILARITY",
    "DEFAULT_TTL_MS",
    "CacheConfig",
    "CacheKey",
    "EntryMeta",
    "Hit",
    "MemoryResponseStore",
    "ResponseCache",
    "ResponseStore",
    "ScopeRows",
    "StoredEntry",
    "Use",
    "best_match",
    "cache_key",
    "evictions",
    "not_storable",
    "question",
    "replay_pieces",
    "skip_reason",
]
