"""What the model cache stands on: the store's contract and the records it keeps, the eviction plan, the
preload progress figure. Pure Python; :mod:`hybrid_router.model_cache` is the policy over them, and the
browser's store is :mod:`hybrid_router.browser.store_idb`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from .manifest import PartInfo

__all__ = ["CacheStore", "Download", "FileRecord", "FileRef", "PreloadProgress", "StoreFull", "plan_eviction"]

Handle = Any  # the bytes of one file, as the store hands them out (opaque here)
ProgressFn = Callable[[dict[str, Any]], None]
EventFn = Callable[[dict[str, Any]], None]


class StoreFull(Exception):
    """Raised by a store when the browser refuses a write for lack of quota (QuotaExceededError)."""


@dataclass(frozen=True)
class Download:
    """What :meth:`CacheStore.download` returns: the file's bytes (all of them, stored chunks included)."""

    data: Handle
    length: int
    #: the store refused a write (quota): the bytes are complete but the file is not stored
    store_error: str | None = None
    #: the server ignored the Range request: the download started over from byte 0
    restarted: bool = False
    #: a file served in parts: the bytes each part's response held, in order (the parts before the first
    #: one fetched, whose bytes came from the store, count as their manifest size)
    part_lengths: tuple[int, ...] = ()


class CacheStore(Protocol):
    """The byte-level storage (IndexedDB in the browser). Records are plain dicts (see FileRecord)."""

    async def records(self) -> list[dict[str, Any]]: ...

    async def get_record(self, key: str) -> dict[str, Any] | None: ...

    async def put_record(self, record: dict[str, Any]) -> None:
        """Write one file record; raises :class:`StoreFull` on a quota error."""
        ...

    async def delete(self, key: str) -> None:
        """Delete one file: its record and all its chunks."""
        ...

    async def chunk_count(self, key: str) -> int:
        """How many chunks of ``key`` are stored (they are written in order, from chunk 0)."""
        ...

    async def read(self, key: str, size: int, chunk_bytes: int) -> Handle | None:
        """The stored chunks of ``key`` joined, or None when one is missing; not checked here."""
        ...

    def length(self, data: Handle) -> int: ...

    def view(self, data: Handle, start: int, end: int) -> Handle:
        """Bytes ``[start, end)`` of ``data``, without a copy (one part of a file served in parts)."""
        ...

    async def digest(self, data: Handle) -> str:
        """The lowercase hex sha256 of ``data``."""
        ...

    async def download(
        self,
        url: str,
        key: str,
        *,
        start: int,
        size: int,
        chunk_bytes: int,
        store: bool,
        on_bytes: Callable[[int], None],
        parts: Sequence[tuple[str, int]] = (),
    ) -> Download:
        """Fetch ``url`` from byte ``start`` (a Range request; the chunks before it are read from the
        store), storing each full chunk as it arrives when ``store``. ``on_bytes(n)`` reports the bytes
        held so far (``start`` included), across every part. Cancelling the task aborts the request.

        ``parts``: the file is served in parts, ``(url, size)`` in order (``url`` is then not fetched):
        each is fetched whole, from the one that holds byte ``start`` on, and their bytes are joined
        as they arrive (:attr:`Download.part_lengths` says how many each one held)."""
        ...

    async def estimate(self) -> dict[str, Any]:
        """``{"usage": bytes, "quota": bytes}`` (``navigator.storage.estimate()``)."""
        ...

    def exclusive(self, key: str) -> AbstractAsyncContextManager[None]:
        """Hold ``key`` against every other user of the same storage (other tabs and workers of the
        origin: Web Locks in the browser) while one of them checks, downloads and stores it. Cancelling
        the wait withdraws the request."""
        ...


@dataclass(frozen=True)
class FileRef:
    """One file of the manifest: where it is stored (``key``) and what it must be."""

    model: str
    path: str
    size: int
    sha256: str
    #: served in these parts (empty: served whole)
    parts: tuple[PartInfo, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.model}/{self.path}"


@dataclass(frozen=True)
class FileRecord:
    """What the store keeps about one file (its bytes live in chunks ``[key, 0..n)``)."""

    key: str
    model: str
    path: str
    size: int
    sha256: str
    chunk_bytes: int
    complete: bool
    last_used: float

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FileRecord | None:
        """The record, or None for one this version cannot read (it is then treated as missing)."""
        try:
            return cls(
                key=str(d["key"]),
                model=str(d["model"]),
                path=str(d["path"]),
                size=int(d["size"]),
                sha256=str(d["sha256"]),
                chunk_bytes=int(d["chunk_bytes"]),
                complete=bool(d["complete"]),
                last_used=float(d.get("last_used") or 0.0),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "model": self.model,
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
            "chunk_bytes": self.chunk_bytes,
            "complete": self.complete,
            "last_used": self.last_used,
        }

    def matches(self, ref: FileRef) -> bool:
        return self.size == ref.size and self.sha256 == ref.sha256


def plan_eviction(
    models: Iterable[tuple[str, int, float]], need: int, capacity: int, protect: Iterable[str] = ()
) -> list[str] | None:
    """Which models to evict, least recently used first, so that ``need`` more bytes fit in ``capacity``.

    ``models``: ``(id, stored bytes, last used)``. Protected models are never chosen. Returns ``[]``
    when it fits already, None when it cannot fit even with every unprotected model evicted.
    """
    items = list(models)
    used = sum(b for _, b, _ in items)
    if used + need <= capacity:
        return []
    keep = set(protect)
    plan: list[str] = []
    for mid, stored, _ in sorted((m for m in items if m[0] not in keep), key=lambda m: (m[2], m[0])):
        plan.append(mid)
        used -= stored
        if used + need <= capacity:
            return plan
    return None


@dataclass
class PreloadProgress:
    """The overall figure of one ``ensure``: bytes done over bytes in total, never going back."""

    files: dict[str, FileRef]
    emit: ProgressFn | None
    done: dict[str, int] = field(default_factory=dict)
    _last: float = -1.0

    @property
    def total(self) -> int:
        return sum(f.size for f in self.files.values())

    def file(self, ref: FileRef, status: str, loaded: int, **extra: Any) -> None:
        loaded = max(self.done.get(ref.key, 0), min(loaded, ref.size))
        self.done[ref.key] = loaded
        if self.emit is None:
            return
        pct = 100.0 if ref.size == 0 else 100.0 * loaded / ref.size
        self.emit(
            {
                "status": status,
                "model": ref.model,
                "file": ref.path,
                "loaded": loaded,
                "total": ref.size,
                "progress": pct,
                **extra,
            }
        )
        self.overall(force=status != "progress")

    def overall(self, force: bool = False) -> None:
        total = self.total
        loaded = sum(self.done.values())
        pct = 100.0 if total == 0 else 100.0 * loaded / total
        if self.emit is not None and (force or pct - self._last >= 0.5 or loaded == total):
            self._last = pct
            self.emit({"status": "progress_total", "loaded": loaded, "total": total, "progress": pct})
