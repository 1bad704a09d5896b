"""The response cache's policy, pure: the configuration, the key of a request, a match, what may be
stored, and what is evicted.

**The key.** A request is looked up by two things:

- its *scope*, an exact hash (sha256 of canonical JSON) of everything besides the question that changes the
  answer: the cache format's version, the embedding model, the device's and the cloud's generation models,
  the side constraints (the call's ``route``, else the policy's; ``privacy``), every field of the request
  other than its messages (``max_tokens``, ``temperature``, ``route``, and any later one such as a schema or
  tools, taken field by field), and the conversation around the question (system prompt and earlier
  turns, verbatim);
- its *question*, the last user message, by its embedding (the router's on-device embedding model,
  all-MiniLM-L6-v2): a stored entry of the same scope whose vector has a cosine similarity of at least
  ``similarity`` with the question's answers it (the most similar one).

**Sampled calls.** A call with ``temperature`` > 0 asked for a different answer each time: it is neither
looked up nor stored unless the cache was configured with ``sampled: True``. A call without
``temperature`` (the device's greedy decoding, the cloud's default) is cached.

**Never stored**: a prompt in which personal data was found, or which could not be checked for it (a
detector did not run, e.g. the entity model is not installed: names would go unchecked), by the route's
``sensitive`` record or, where the routing did not look, the same check made for the cache
(:mod:`hybrid_router.pii`); an empty answer.

**Eviction**: an entry older than ``ttl_ms`` is neither served nor kept; beyond ``max_entries`` the least
recently used entries (their last hit, else their creation) go first.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    from hybrid_router._lazy import numpy as np

from hybrid_router import validation
from hybrid_router.chat import ChatRequest
from hybrid_router.errors import ValidationError

__all__ = [
    "CACHE_VERSION",
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_SIMILARITY",
    "DEFAULT_TTL_MS",
    "CacheConfig",
    "CacheKey",
    "EntryMeta",
    "best_match",
    "cache_key",
    "evictions",
    "not_storable",
    "question",
    "skip_reason",
]

#: the format of keys and entries (a new one makes the old entries unreachable)
CACHE_VERSION = 1
#: the cosine similarity a stored question needs to answer a new one, chosen on precision by
#: ``./hr bench response_cache`` (docs/measurements.md#response-cache)
DEFAULT_SIMILARITY = 0.95
#: one week
DEFAULT_TTL_MS = 7 * 24 * 3600 * 1000
DEFAULT_MAX_ENTRIES = 1000
MAX_MAX_ENTRIES = 100_000
_KEYS = ("similarity", "ttl_ms", "max_entries", "sampled")

Vector: TypeAlias = "npt.NDArray[np.float32]"


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """How the cache behaves (``create({ cache: {...} })``); see the module docstring."""

    similarity: float = DEFAULT_SIMILARITY
    ttl_ms: int = DEFAULT_TTL_MS
    max_entries: int = DEFAULT_MAX_ENTRIES
    sampled: bool = False

    @classmethod
    def parse(cls, value: object) -> CacheConfig | None:
        """``None`` / ``False``: no cache; ``True``: the defaults; an object of the fields (snake_case)."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if not isinstance(value, Mapping):
            raise ValidationError(
                f"cache must be true, false or an object, got {validation.type_name(value)}",
                hint="Pass cache: { similarity, ttlMs, maxEntries, sampled }, or true for the defaults.",
                field="cache",
            )
        validation.known_keys(value, _KEYS, where="cache")
        similarity = value.get("similarity", DEFAULT_SIMILARITY)
        if (
            isinstance(similarity, bool)
            or not isinstance(similarity, int | float)
            or not math.isfinite(similarity)
            or not 0 < similarity <= 1
        ):
            raise ValidationError(
                f"cache.similarity must be a number in (0, 1], got {similarity!r}",
                hint=f"Pass a cosine similarity such as {DEFAULT_SIMILARITY} (1: the same question only).",
                field="cache.similarity",
            )
        sampled = value.get("sampled", False)
        if not isinstance(sampled, bool):
            raise ValidationError(
                f"cache.sampled must be true or false, got {validation.type_name(sampled)}",
                field="cache.sampled",
            )
        return cls(
            similarity=float(similarity),
            ttl_ms=validation.positive_int(
                value.get("ttl_ms", DEFAULT_TTL_MS), "cache.ttl_ms", maximum=2**53
            ),
            max_entries=validation.positive_int(
                value.get("max_entries", DEFAULT_MAX_ENTRIES), "cache.max_entries", maximum=MAX_MAX_ENTRIES
            ),
            sampled=sampled,
        )

    def to_wire(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class CacheKey:
    """A request's ``scope`` (exact) and ``question`` (matched by its embedding)."""

    scope: str
    question: str


@dataclass(frozen=True, slots=True)
class EntryMeta:
    """What eviction reads of an entry: its id, when it was stored and last used (ms since the epoch)."""

    id: str
    created_ms: float
    used_ms: float


def question(request: ChatRequest) -> str:
    """The last user message: what the embedding compares."""
    return request.scored[0]


def _plain(value: Any) -> Any:
    """``value`` as JSON-able data, the same for equal values (tuples as lists, dataclasses by fields)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        to_wire = getattr(value, "to_wire", None)
        return _plain(to_wire() if callable(to_wire) else dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def cache_key(
    request: ChatRequest,
    *,
    route: str,
    privacy: str,
    embedding_model: str,
    local_model: str | None,
    cloud_model: str | None,
) -> CacheKey:
    """The key of ``request`` (see the module docstring); ``route`` is the call's, else the policy's."""
    messages = list(request.messages)
    last = max(i for i, m in enumerate(messages) if m.role == "user")
    context = [
        m.to_wire() if i != last else {"role": "user", "content": None} for i, m in enumerate(messages)
    ]
    fields = {
        f.name: _plain(getattr(request, f.name)) for f in dataclasses.fields(request) if f.name != "messages"
    }
    scope = {
        "version": CACHE_VERSION,
        "embedding_model": embedding_model,
        "models": {"local": local_model, "cloud": cloud_model},
        "side": {"route": route, "privacy": privacy},
        "request": fields,
        "context": context,
    }
    text = json.dumps(scope, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return CacheKey(hashlib.sha256(text.encode()).hexdigest(), messages[last].content)


def skip_reason(request: ChatRequest, config: CacheConfig) -> str | None:
    """Why this call neither reads nor fills the cache (None: it may): ``"tools"`` for a call with tools
    (its answer depends on what the tools return, which the key does not hold)."""
    if request.tools:
        return "tools"
    if request.temperature is not None and request.temperature > 0 and not config.sampled:
        return "sampled"
    return None


def not_storable(text: str, sensitive: Mapping[str, Any] | None) -> str | None:
    """Why an answer is not stored (None: it may be): ``"personal-data"`` when the prompt holds personal
    data, ``"unchecked"`` when it could not be checked for it (a detector did not run: the entity model is
    not installed or failed) (``sensitive``: the route's record, or the cache's own check in the same
    shape), ``"empty"`` for an empty answer."""
    if sensitive and sensitive.get("found"):
        return "personal-data"
    if sensitive and sensitive.get("missing"):
        return "unchecked"
    if not text.strip():
        return "empty"
    return None


def best_match(
    query: Vector, ids: Sequence[str], vectors: Vector, threshold: float
) -> tuple[str, float] | None:
    """The id of the row of ``vectors`` most similar to ``query`` (cosine), if it reaches ``threshold``."""
    if not ids:
        return None
    q = np.asarray(query, dtype=np.float32).reshape(-1)
    rows = np.asarray(vectors, dtype=np.float32).reshape(len(ids), -1)
    if rows.shape[1] != q.shape[0]:
        return None
    norms = np.linalg.norm(rows, axis=1) * max(float(np.linalg.norm(q)), 1e-12)
    scores = rows @ q / np.maximum(norms, 1e-12)
    best = int(np.argmax(scores))
    score = float(scores[best])
    return (ids[best], min(score, 1.0)) if score >= threshold else None


def evictions(entries: Sequence[EntryMeta], *, now_ms: float, config: CacheConfig) -> list[str]:
    """The ids to delete: the expired ones, then the least recently used beyond ``max_entries``."""
    expired = [e.id for e in entries if now_ms - e.created_ms >= config.ttl_ms]
    gone = set(expired)
    alive = sorted((e for e in entries if e.id not in gone), key=lambda e: (e.used_ms, e.created_ms, e.id))
    extra = len(alive) - config.max_entries
    return expired + [e.id for e in alive[: max(extra, 0)]]
