"""The response cache's store in the browser: ``web/response-cache-store.js`` (IndexedDB) from Python in
the worker.

One of the edge modules that touch ``js``/``pyodide`` (import it only inside Pyodide). It implements
:class:`~hybrid_router.response_cache.ResponseStore`; a scope's vectors cross the boundary as one
Float32Array. Browser errors become :class:`~hybrid_router.errors.StorageError` (the cache counts them and
the call goes on without it). Every JS proxy made for a call is destroyed before it returns.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import js

if TYPE_CHECKING:
    import numpy as np
else:
    from hybrid_router._lazy import numpy as np
from pyodide.ffi import JsException, to_js

from ..errors import StorageError
from ..response_cache import EntryMeta, ScopeRows, StoredEntry
from .jsinterop import destroy, js_object, storage_error

__all__ = ["IdbResponseStore"]


def _storage_error(what: str, exc: JsException) -> StorageError:
    return storage_error(
        "response cache",
        what,
        exc,
        hint="IndexedDB failed (private browsing or a browser setting may block it); answers are not cached.",
        full_hint="Browser storage is full: clear the response cache or delete cached models.",
    )


class IdbResponseStore:
    """:class:`~hybrid_router.response_cache.ResponseStore` over ``web/response-cache-store.js``."""

    persistent = True

    def __init__(self, js_store: Any) -> None:
        self._js = js_store

    @classmethod
    async def open(cls) -> IdbResponseStore:
        """Open the database through ``web/response-cache-store.js`` (imported by ``web/py-bridge.js``)."""
        import hybrid_router_js

        try:
            return cls(await hybrid_router_js.openResponseCacheStore())
        except JsException as exc:
            raise _storage_error("open its database", exc) from exc

    async def scope(self, scope: str) -> ScopeRows:
        try:
            rows = await self._js.scope(scope)
        except JsException as exc:
            raise _storage_error("read its entries", exc) from exc
        try:
            ids = [str(i) for i in rows.ids.to_py()]
            created = [float(c) for c in rows.created_ms.to_py()]
            dims = int(rows.dims)
            flat = np.frombuffer(rows.vectors.to_bytes(), dtype="<f4").astype(np.float32)
        finally:
            destroy(rows)
        return ScopeRows(ids, flat.reshape(len(ids), dims), created)

    async def get(self, entry_id: str) -> StoredEntry | None:
        try:
            row = await self._js.get(entry_id)
        except JsException as exc:
            raise _storage_error("read an entry", exc) from exc
        if row is None:
            return None
        try:
            vector = np.frombuffer(row.vector.to_bytes(), dtype="<f4").astype(np.float32)
            reason = row.finish_reason
            return StoredEntry(
                id=str(row.id),
                scope=str(row.scope),
                vector=vector,
                created_ms=float(row.created_ms),
                used_ms=float(row.used_ms),
                text=str(row.text),
                finish_reason=None if reason is None else str(reason),
                route=json.loads(str(row.route_json)),
            )
        finally:
            destroy(row)

    async def put(self, entry: StoredEntry) -> None:
        flat = np.ascontiguousarray(entry.vector, dtype="<f4")
        raw = to_js(flat.tobytes())
        floats = js.Float32Array.new(raw.buffer, raw.byteOffset, flat.size)
        record = js_object(
            {
                "id": entry.id,
                "scope": entry.scope,
                "created_ms": entry.created_ms,
                "used_ms": entry.used_ms,
                "text": entry.text,
                "finish_reason": entry.finish_reason,
                "route_json": json.dumps(entry.route),
            }
        )
        record.vector = floats
        try:
            await self._js.put(record)
        except JsException as exc:
            raise _storage_error("store an answer", exc) from exc
        finally:
            destroy(record, raw, floats)

    async def touch(self, entry_id: str, used_ms: float) -> None:
        try:
            await self._js.touch(entry_id, used_ms)
        except JsException as exc:
            raise _storage_error("mark an entry used", exc) from exc

    async def catalog(self) -> list[EntryMeta]:
        try:
            rows = await self._js.catalog()
        except JsException as exc:
            raise _storage_error("list its entries", exc) from exc
        try:
            return [
                EntryMeta(str(r["id"]), float(r["created_ms"]), float(r["used_ms"])) for r in rows.to_py()
            ]
        finally:
            destroy(rows)

    async def delete(self, ids: list[str]) -> None:
        js_ids = to_js(ids)
        try:
            await self._js.delete(js_ids)
        except JsException as exc:
            raise _storage_error(f"delete {len(ids)} entries", exc) from exc
        finally:
            destroy(js_ids)

    async def clear(self) -> None:
        try:
            await self._js.clear()
        except JsException as exc:
            raise _storage_error("clear its entries", exc) from exc
