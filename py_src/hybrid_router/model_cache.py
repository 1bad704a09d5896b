"""The model cache's policy: which file belongs to which model, what is verified, stored, resumed, evicted.

Transformers.js asks the cache for every model file (``env.customCache.match(key)``); the keys are
paths like ``/models/<model id>/onnx/model.onnx``. :class:`ModelCache` answers with the file's bytes
only after checking them against the manifest's size and sha256, whether they come from the store or
from the network:

- a stored file is read, measured and hashed before it is used; a corrupted or truncated entry is
  evicted, recorded as an ``integrity`` event and fetched again;
- one tab (or worker) at a time checks and fetches a given file (:meth:`CacheStore.exclusive`): two tabs
  opened together download each file once, and the second reads it from the store;
- a download resumes from the chunks already stored (a ``Range`` request) and is verified as a whole;
  a resumed download that does not verify is fetched once more from the start; bytes from the server
  that do not match the manifest are a :class:`~hybrid_router.errors.ModelLoadError`;
- a file the manifest lists in parts (a static site: hosts limit the size of one file) is fetched part
  after part and joined as it arrives (a resumed one from the part that holds its first missing byte);
  each part is checked against its size and sha256 in the manifest (an error names the part that is
  wrong), then the joined file against the file's sha256;
- before a download, the storage estimate and the optional byte budget are checked; the least
  recently used models are evicted to make room; when there is no room (or the store refuses with a
  quota error) the file is not stored, a :class:`~hybrid_router.errors.StorageError` is recorded
  with a hint, and the bytes are still handed over, so the model runs from memory.

The bytes themselves never enter Python: the store hands out opaque handles (a JS ``Uint8Array`` in
the browser, ``bytes`` in tests) and hashes them itself. The store is the platform edge
(:mod:`hybrid_router.browser.store_idb` over IndexedDB; a dict in tests), described by :class:`CacheStore`.

Events are plain dicts ``{"kind", "model", "file", "message", "at", ...}`` with ``kind`` one of
``integrity`` (a stored entry failed its check and was evicted), ``stale`` (a stored entry belongs to
another version of the model), ``storage`` (not stored: ``error`` holds the StorageError's wire form),
``evicted`` (least recently used, to make room), ``resumed`` (a download went on from stored chunks)
and ``deleted``. The newest are kept (:meth:`ModelCache.events`) and sent to ``on_event`` listeners.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from .cache_store import (
    CacheStore,
    Download,
    FileRecord,
    FileRef,
    PreloadProgress,
    ProgressFn,
    StoreFull,
    plan_eviction,
)
from .errors import ModelLoadError, StorageError, ValidationError
from .manifest import Manifest, PartInfo

__all__ = [
    "CHUNK_BYTES",
    "CacheStore",
    "Download",
    "FileRef",
    "ModelCache",
    "FileRecord",
    "StoreFull",
    "plan_eviction",
]

#: Files are stored in records of this size (the last one shorter), so a download can resume.
CHUNK_BYTES = 8 * 1024 * 1024
#: Room left free under the browser's quota, for the store's own overhead.
QUOTA_MARGIN = 4 * 1024 * 1024
_MB = 1e6

Handle = Any  # the bytes of one file, as the store hands them out (opaque here)
EventFn = Callable[[dict[str, Any]], None]


@dataclass
class _Flight:
    """One fetch of one file, shared by every caller that needs it at the same time."""

    task: asyncio.Task[Handle]
    listeners: list[Callable[[int], None]] = field(default_factory=list)
    waiters: int = 0


class ModelCache:
    """Verified, chunked, resumable model files over a :class:`CacheStore`.

    ``base_url`` is where the server serves the folders (``http://host/models/``): keys are its path
    plus ``<model>/<file>``. ``budget_bytes`` (None: no budget) caps what the cache keeps, evicting
    the least recently used models first. ``clock`` gives seconds since the epoch (``last_used``).
    """

    def __init__(
        self,
        manifest: Manifest,
        store: CacheStore,
        *,
        base_url: str,
        budget_bytes: int | None = None,
        chunk_bytes: int = CHUNK_BYTES,
        clock: Callable[[], float] = time.time,
        max_events: int = 200,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        if chunk_bytes <= 0:
            raise ValueError("chunk_bytes must be positive")
        self.manifest = manifest
        self.store = store
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._base_path = urlsplit(self.base_url).path
        self.chunk_bytes = chunk_bytes
        self.budget_bytes = _budget(budget_bytes)
        self._clock = clock
        self._timer = timer
        self._events: deque[dict[str, Any]] = deque(maxlen=max_events)
        self._listeners: list[EventFn] = []
        self._hot: dict[str, Handle] = {}
        self._flights: dict[str, _Flight] = {}
        #: where each file's bytes last came from: "store" (verified from IndexedDB) or "network"
        self._came_from: dict[str, str] = {}

    # --- what the keys mean

    def resolve(self, key: str) -> FileRef | None:
        """The manifest file a cache key (a path or URL under ``base_url``) names, else None."""
        path = unquote(urlsplit(str(key)).path)
        if not path.startswith(self._base_path):
            return None
        model_id, _, rel = path[len(self._base_path) :].partition("/")
        entry = next((m for m in self.manifest.models if m.id == model_id), None)
        info = entry.files.get(rel) if entry is not None else None
        return None if info is None else FileRef(model_id, rel, info.size, info.sha256, info.parts)

    def files(self, model_id: str, dtype: str | None = None) -> list[FileRef]:
        """Every file one load of ``model_id`` in ``dtype`` (default dtype when None) reads."""
        variant = self.manifest.model(model_id).variant(dtype)
        return [FileRef(model_id, p, f.size, f.sha256, f.parts) for p, f in variant.files.items()]

    def url(self, ref: FileRef) -> str:
        return self.base_url + ref.key

    def part_url(self, ref: FileRef, part: PartInfo) -> str:
        return f"{self.base_url}{ref.model}/{part.path}"

    # --- events

    def events(self) -> list[dict[str, Any]]:
        """The newest cache events, oldest first."""
        return list(self._events)

    def add_listener(self, listener: EventFn) -> Callable[[], None]:
        """Call ``listener(event)`` for every new event; returns the function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    @contextlib.contextmanager
    def listening(self, listener: EventFn | None) -> Iterator[list[dict[str, Any]]]:
        """Collect the events raised inside the block (and pass them to ``listener``)."""
        seen: list[dict[str, Any]] = []

        def on_event(event: dict[str, Any]) -> None:
            seen.append(event)
            if listener is not None:
                listener(event)

        remove = self.add_listener(on_event)
        try:
            yield seen
        finally:
            remove()

    def _record(self, kind: str, ref: FileRef | None, message: str, **extra: Any) -> dict[str, Any]:
        event = {
            "kind": kind,
            "model": ref.model if ref else extra.pop("model", None),
            "file": ref.path if ref else None,
            "message": message,
            "at": self._clock(),
            **extra,
        }
        self._events.append(event)
        for listener in list(self._listeners):
            listener(event)
        return event

    # --- Transformers.js's hook

    async def match(self, key: str) -> Handle | None:
        """The verified bytes of the manifest file ``key`` names (read or fetched), else None.

        Bytes held by :meth:`ensure` (``hold=True``) are handed out without reading them again.
        """
        ref = self.resolve(key)
        if ref is None:
            return None
        if ref.key in self._hot:
            return self._hot[ref.key]
        return await self._obtain(ref, None)

    def release(self, refs: Iterable[FileRef] | None = None) -> None:
        """Drop the bytes held in memory (all of them when ``refs`` is None)."""
        if refs is None:
            self._hot.clear()
        for ref in refs or ():
            self._hot.pop(ref.key, None)

    @property
    def held(self) -> list[str]:
        return sorted(self._hot)

    # --- preloading

    async def ensure(
        self,
        models: Sequence[tuple[str, str | None]],
        *,
        on_progress: ProgressFn | None = None,
        hold: bool = False,
        fail_on_storage: bool = False,
    ) -> dict[str, Any]:
        """Make the files of each ``(model, dtype)`` available: stored (and verified when held).

        ``hold``: read and verify every file now and keep its bytes for the loads that follow
        (:meth:`match` hands them out; :meth:`release` drops them). Without it, files already stored
        whole are counted done without reading them (they are checked when used) and the rest are
        fetched and stored. Progress: per-file events (``initiate``, ``progress``, ``done`` with
        ``from_cache`` and ``ms``, the time to fetch or read and check it) and ``progress_total`` with
        the bytes done over the manifest's total, ending at exactly 100; cache events as
        ``{"status": "cache-event", "kind", ...}``. Files that could not be stored are held in memory
        either way; with ``fail_on_storage`` their StorageError is raised at the end.
        """
        refs: dict[str, FileRef] = {}
        for model_id, dtype in models:
            for ref in self.files(model_id, dtype):
                refs.setdefault(ref.key, ref)
        progress = PreloadProgress(refs, on_progress)
        progress.overall(force=True)
        summary: dict[str, Any] = {
            "files": len(refs),
            "bytes": progress.total,
            "from_cache": 0,
            "from_memory": 0,
            "fetched": 0,
        }

        def forward(event: dict[str, Any]) -> None:
            if on_progress is not None:
                on_progress({"status": "cache-event", **event})

        with self.listening(forward) as seen:
            for ref in refs.values():
                started = self._timer()
                progress.file(ref, "initiate", 0)
                if ref.key in self._hot:  # verified earlier and held (e.g. it could not be stored)
                    progress.file(ref, "done", ref.size, from_cache=False, from_memory=True)
                    summary["from_memory"] += 1
                    continue
                cached = await self._stored_whole(ref)
                if cached and not hold:
                    progress.file(ref, "done", ref.size, from_cache=True)
                    summary["from_cache"] += 1
                    continue
                data = await self._obtain(ref, functools.partial(progress.file, ref, "progress"))
                mine = {e["kind"] for e in seen if e["file"] == ref.path and e["model"] == ref.model}
                failed = "storage" in mine
                # stored here before, or by another tab while this one waited for the file's lock
                cached = self._came_from.get(ref.key) == "store"
                if hold or failed:
                    self._hot[ref.key] = data
                progress.file(
                    ref,
                    "done",
                    ref.size,
                    from_cache=cached,
                    stored=not failed,
                    ms=round((self._timer() - started) * 1000, 1),
                )
                summary["from_cache" if cached else "fetched"] += 1
        storage = [e for e in seen if e["kind"] == "storage"]
        summary["events"] = seen
        if storage and fail_on_storage:
            first = storage[0]["error"]
            raise StorageError(
                first["message"],
                hint=first["hint"],
                models=sorted({m for m, _ in models}),
                files=[f"{e['model']}/{e['file']}" for e in storage],
            )
        return summary

    # --- listing and deleting

    async def stored_models(self) -> list[dict[str, Any]]:
        """Stored models: ``{id, dtypes (complete ones), bytes, files, partial_bytes, last_used, known}``."""
        by_model: dict[str, list[FileRecord]] = {}
        for rec in await self._records():
            by_model.setdefault(rec.model, []).append(rec)
        out = []
        for model_id, recs in sorted(by_model.items()):
            whole = {r.path: r for r in recs if r.complete}
            known = model_id in self.manifest.ids
            dtypes = []
            if known:
                for dtype, variant in self.manifest.model(model_id).variants.items():
                    if all(p in whole and whole[p].sha256 == f.sha256 for p, f in variant.files.items()):
                        dtypes.append(dtype)
            out.append(
                {
                    "id": model_id,
                    "dtypes": dtypes,
                    "bytes": sum(r.size for r in whole.values()),
                    "files": len(whole),
                    "partial_files": len(recs) - len(whole),
                    "last_used": max(r.last_used for r in recs),
                    "known": known,
                }
            )
        return out

    async def delete(self, model_id: object) -> dict[str, Any]:
        """Delete every stored file of ``model_id`` (and drop its bytes held in memory)."""
        if not isinstance(model_id, str) or not model_id:
            raise ValidationError("deleteModel needs a model id", hint="Pass the id of a cached model.")
        recs = [r for r in await self._records() if r.model == model_id]
        for rec in recs:
            await self.store.delete(rec.key)
            self._hot.pop(rec.key, None)
        freed = sum(r.size for r in recs if r.complete)
        if recs:
            self._record(
                "deleted",
                None,
                f"{model_id}: {len(recs)} file(s), {freed / _MB:.1f} MB deleted",
                model=model_id,
                bytes=freed,
            )
        return {"model": model_id, "files": len(recs), "bytes": freed}

    async def set_budget(self, budget_bytes: object) -> dict[str, Any]:
        """Change the byte budget; evicts least recently used models at once if the cache is over it."""
        self.budget_bytes = _budget(budget_bytes)
        evicted: list[str] = []
        if self.budget_bytes is not None:
            plan = plan_eviction(await self._usage_by_model(), 0, self.budget_bytes) or []
            for model_id in plan:
                await self._evict(model_id, "over the new budget")
            evicted = plan
        return {"budget_bytes": self.budget_bytes, "evicted": evicted}

    # --- internals

    async def _records(self) -> list[FileRecord]:
        return [r for r in (FileRecord.from_dict(d) for d in await self.store.records()) if r is not None]

    async def _usage_by_model(self) -> list[tuple[str, int, float]]:
        usage: dict[str, tuple[int, float]] = {}
        for r in await self._records():
            stored, last = usage.get(r.model, (0, 0.0))
            usage[r.model] = (stored + (r.size if r.complete else 0), max(last, r.last_used))
        return [(m, b, t) for m, (b, t) in usage.items()]

    async def _stored_whole(self, ref: FileRef) -> bool:
        rec = FileRecord.from_dict(await self.store.get_record(ref.key) or {})
        return rec is not None and rec.complete and rec.matches(ref)

    async def _obtain(self, ref: FileRef, on_bytes: Callable[[int], None] | None) -> Handle:
        """The verified bytes of ``ref``; concurrent callers share one read or fetch."""
        flight = self._flights.get(ref.key)
        if flight is None:
            flight = _Flight(asyncio.get_running_loop().create_task(self._fetch_verified(ref)))
            self._flights[ref.key] = flight
            flight.task.add_done_callback(functools.partial(self._land, ref.key, flight))
        if on_bytes is not None:
            flight.listeners.append(on_bytes)
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task)
        except asyncio.CancelledError:
            if flight.waiters == 1 and not flight.task.done():
                flight.task.cancel()  # the last one waiting: stop the download (the store aborts the fetch)
                self._land(ref.key, flight)  # a caller that comes next starts afresh
            raise
        finally:
            flight.waiters -= 1
            if on_bytes is not None and on_bytes in flight.listeners:
                flight.listeners.remove(on_bytes)

    def _land(self, key: str, flight: _Flight, _task: object = None) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]

    def _progress_of(self, ref: FileRef) -> Callable[[int], None]:
        def on_bytes(n: int) -> None:
            flight = self._flights.get(ref.key)
            for listener in list(flight.listeners if flight else ()):
                listener(n)

        return on_bytes

    async def _fetch_verified(self, ref: FileRef) -> Handle:
        # Another tab may be downloading this very file into the same store: take turns, so the file is
        # fetched and written once and the second one reads it stored (its check below passes).
        async with self.store.exclusive(ref.key):
            return await self._fetch_verified_held(ref)

    async def _fetch_verified_held(self, ref: FileRef) -> Handle:
        rec = FileRecord.from_dict(await self.store.get_record(ref.key) or {})
        if rec is not None and not rec.matches(ref):
            self._record(
                "stale",
                ref,
                f"{ref.key}: the stored file is another version "
                f"({rec.size} bytes, sha256 {rec.sha256[:12]}…); fetching the manifest's",
            )
            await self.store.delete(ref.key)
            rec = None
        if rec is not None and rec.complete:
            data = await self.store.read(ref.key, rec.size, rec.chunk_bytes)
            problem = await self._check(ref, data)
            if problem is None:
                await self._touch(rec)
                self._progress_of(ref)(ref.size)
                self._came_from[ref.key] = "store"
                return data
            message = f"{ref.key}: the stored copy is {problem}; evicted and fetched again"
            self._record("integrity", ref, message, problem=problem)
            await self.store.delete(ref.key)
            rec = None
        self._came_from[ref.key] = "network"
        return await self._download(ref, rec)

    async def _check(self, ref: FileRef, data: Handle | None) -> str | None:
        """None when ``data`` is the manifest's file, else what is wrong with it."""
        if data is None:
            return "missing chunks"
        length = self.store.length(data)
        if length != ref.size:
            return (
                f"truncated ({length} of {ref.size} bytes)"
                if length < ref.size
                else f"too long ({length} of {ref.size} bytes)"
            )
        digest = await self.store.digest(data)
        if digest == ref.sha256:
            return None
        return f"corrupted (sha256 {digest[:12]}… instead of {ref.sha256[:12]}…)"

    async def _download(self, ref: FileRef, partial: FileRecord | None) -> Handle:
        start = 0
        if partial is not None and partial.chunk_bytes == self.chunk_bytes:
            start = min(await self.store.chunk_count(ref.key) * self.chunk_bytes, ref.size)
            if ref.size and start >= ref.size:  # every chunk is there but the record was never completed
                start = max(0, ref.size - 1) // self.chunk_bytes * self.chunk_bytes
        elif partial is not None:
            await self.store.delete(ref.key)
        store = await self._make_room(ref, ref.size - start)
        if store:
            store = await self._put(ref, complete=False)
        parts = [(self.part_url(ref, p), p.size) for p in ref.parts]
        for attempt in (0, 1):
            result = await self.store.download(
                self.url(ref),
                ref.key,
                start=start,
                size=ref.size,
                chunk_bytes=self.chunk_bytes,
                store=store,
                on_bytes=self._progress_of(ref),
                **({"parts": parts} if parts else {}),
            )
            if start and not result.restarted and attempt == 0:
                self._record(
                    "resumed",
                    ref,
                    f"{ref.key}: resumed at {start / _MB:.1f} MB of {ref.size / _MB:.1f} MB (Range request)",
                    start=start,
                )
            # in parts: each part against its size and sha256 first (the error then names it), then the whole
            bad = await self._bad_part(ref, result) if ref.parts else None
            problem = bad[2] if bad is not None else await self._check(ref, result.data)
            if problem is None:
                break
            await self.store.delete(ref.key)
            if start == 0 or attempt == 1:
                if bad is not None:
                    raise self._part_error(ref, *bad)
                raise ModelLoadError(
                    f"{ref.key} from the server is {problem}: it does not match the manifest",
                    hint="The served model folder differs from models_manifest.json: rebuild the models "
                    "(./hr build) and restart the server.",
                    model=ref.model,
                    file=ref.path,
                    url=self.url(ref),
                )
            self._record(
                "integrity",
                ref,
                f"{ref.key}: the resumed download is {problem}; fetching it whole",
                problem=problem,
            )
            start = 0
            store = store and await self._put(ref, complete=False)
        if result.store_error is not None:
            await self._not_stored(ref, f"the browser refused to store it ({result.store_error})")
        elif store and await self._put(ref, complete=True):
            return result.data
        with contextlib.suppress(StoreFull):
            await self.store.delete(ref.key)  # free what the partial file took
        return result.data

    async def _bad_part(self, ref: FileRef, result: Download) -> tuple[int, PartInfo, str] | None:
        """The first part of a file served in parts that is not the manifest's: (index, part, problem)."""
        lengths = result.part_lengths or tuple(p.size for p in ref.parts)
        if len(lengths) != len(ref.parts):
            return None  # a store that does not say: the whole file's check stands alone
        offset = 0
        for i, (part, got) in enumerate(zip(ref.parts, lengths, strict=True)):
            if got != part.size:
                return (
                    i,
                    part,
                    f"{'truncated' if got < part.size else 'too long'} ({got} of {part.size} bytes)",
                )
            digest = await self.store.digest(self.store.view(result.data, offset, offset + part.size))
            if digest != part.sha256:
                return i, part, f"corrupted (sha256 {digest[:12]}… instead of {part.sha256[:12]}…)"
            offset += got
        return None

    def _part_error(self, ref: FileRef, index: int, part: PartInfo, problem: str) -> ModelLoadError:
        return ModelLoadError(
            f"{ref.model}/{part.path} (part {index + 1} of {len(ref.parts)} of {ref.key}) from the "
            f"server is {problem}: it does not match the site's models manifest",
            hint="Deploy the site folder that python -m builder site wrote as it is: every part "
            "and models_manifest.json together (a part changed, cut short or left out of an "
            "upload is refused); rebuild the site if a file in it was edited.",
            model=ref.model,
            file=ref.path,
            part=part.path,
            url=self.part_url(ref, part),
        )

    async def _make_room(self, ref: FileRef, need: int) -> bool:
        """Whether ``need`` more bytes may be stored, after evicting least recently used models."""
        estimate = await self.store.estimate()
        usage, quota = int(estimate.get("usage") or 0), int(estimate.get("quota") or 0)
        usage_by_model = await self._usage_by_model()
        ours = sum(b for _, b, _ in usage_by_model)
        # capacity for our files: what we hold plus what the browser has left, and the budget if one is set
        capacity = ours + quota - usage - QUOTA_MARGIN if quota else None
        limits = [c for c in (capacity, self.budget_bytes) if c is not None]
        if not limits:
            return True
        plan = plan_eviction(usage_by_model, need, min(limits), protect=[ref.model])
        if plan is None:
            budget = self.budget_bytes
            by_budget = budget is not None and budget == min(limits)
            why = (
                f"the cache budget of {(budget or 0) / _MB:.1f} MB"
                if by_budget
                else f"the browser's storage quota ({(quota - usage) / _MB:.1f} MB free of "
                f"{quota / _MB:.1f} MB)"
            )
            await self._not_stored(ref, f"{need / _MB:.1f} MB do not fit in {why}", budget=by_budget)
            return False
        for model_id in plan:
            await self._evict(model_id, f"to make room for {ref.key}")
        return True

    async def _evict(self, model_id: str, why: str) -> None:
        recs = [r for r in await self._records() if r.model == model_id]
        for rec in recs:
            await self.store.delete(rec.key)
        self._record(
            "evicted",
            None,
            f"{model_id} evicted (least recently used) {why}",
            model=model_id,
            bytes=sum(r.size for r in recs if r.complete),
        )

    async def _not_stored(self, ref: FileRef, why: str, budget: bool = False) -> None:
        hint = (
            "Raise the cache budget or delete cached models; the model runs from memory meanwhile."
            if budget
            else "Free storage for this site (delete cached models or other site data) or allow it more "
            "space; the model runs from memory meanwhile and is downloaded again next time."
        )
        error = StorageError(f"{ref.key} was not stored: {why}", hint=hint, model=ref.model, file=ref.path)
        self._record("storage", ref, error.message, error=error.to_wire())

    async def _put(self, ref: FileRef, *, complete: bool) -> bool:
        rec = FileRecord(
            ref.key, ref.model, ref.path, ref.size, ref.sha256, self.chunk_bytes, complete, self._clock()
        )
        try:
            await self.store.put_record(rec.to_dict())
        except StoreFull as exc:
            await self._not_stored(ref, f"the browser refused to store it ({exc})")
            return False
        return True

    async def _touch(self, rec: FileRecord) -> None:
        with contextlib.suppress(StoreFull):
            await self.store.put_record({**rec.to_dict(), "last_used": self._clock()})


def _budget(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValidationError(
            f"the cache budget must be a number of bytes or null, got {value!r}",
            hint="Pass budgetBytes as a non-negative number (e.g. 500e6), or null.",
        )
    return int(value)
