"""Where the response cache keeps its entries: the :class:`ResponseStore` contract and an in-memory one.

The browser's store is IndexedDB (``web/response-cache-store.js``, reached through
:mod:`hybrid_router.browser.response_store_idb`): it survives reloads and every tab of the origin shares
it. :class:`MemoryResponseStore` serves where there is none (CPython, a browser without IndexedDB).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    from hybrid_router._lazy import numpy as np

from hybrid_router.response_cache.policy import EntryMeta

__all__ = ["MemoryResponseStore", "ResponseStore", "ScopeRows", "StoredEntry"]

Vector: TypeAlias = "npt.NDArray[np.float32]"


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """One stored answer: its key (``scope``, the question's ``vector``), when it was stored and last used
    (ms since the epoch), and the answer as the call returned it (text, finish reason, route on the wire)."""

    id: str
    scope: str
    vector: Vector
    created_ms: float
    used_ms: float
    text: str
    finish_reason: str | None
    route: dict[str, Any]

    @property
    def meta(self) -> EntryMeta:
        return EntryMeta(self.id, self.created_ms, self.used_ms)


@dataclass(frozen=True, slots=True)
class ScopeRows:
    """The entries of one scope, as the match reads them: ids, one row of ``vectors`` each, creation times."""

    ids: list[str]
    vectors: Vector
    created_ms: list[float]


class ResponseStore(Protocol):
    """The storage edge: no policy (:mod:`hybrid_router.response_cache.policy` decides)."""

    #: False: the entries are lost with the worker
    persistent: bool

    async def scope(self, scope: str) -> ScopeRows: ...

    async def get(self, entry_id: str) -> StoredEntry | None: ...

    async def put(self, entry: StoredEntry) -> None: ...

    async def touch(self, entry_id: str, used_ms: float) -> None: ...

    async def catalog(self) -> list[EntryMeta]: ...

    async def delete(self, ids: list[str]) -> None: ...

    async def clear(self) -> None: ...


@dataclass
class MemoryResponseStore:
    """A :class:`ResponseStore` in a dict (lost with the process)."""

    persistent: bool = False
    entries: dict[str, StoredEntry] = field(default_factory=dict)

    async def scope(self, scope: str) -> ScopeRows:
        rows = [e for e in self.entries.values() if e.scope == scope]
        dims = rows[0].vector.shape[0] if rows else 0
        vectors = np.stack([e.vector for e in rows]) if rows else np.zeros((0, dims), np.float32)
        return ScopeRows([e.id for e in rows], vectors.astype(np.float32), [e.created_ms for e in rows])

    async def get(self, entry_id: str) -> StoredEntry | None:
        return self.entries.get(entry_id)

    async def put(self, entry: StoredEntry) -> None:
        self.entries[entry.id] = entry

    async def touch(self, entry_id: str, used_ms: float) -> None:
        entry = self.entries.get(entry_id)
        if entry is not None:
            from dataclasses import replace

            self.entries[entry_id] = replace(entry, used_ms=used_ms)

    async def catalog(self) -> list[EntryMeta]:
        return [e.meta for e in self.entries.values()]

    async def delete(self, ids: list[str]) -> None:
        for entry_id in ids:
            self.entries.pop(entry_id, None)

    async def clear(self) -> None:
        self.entries.clear()
