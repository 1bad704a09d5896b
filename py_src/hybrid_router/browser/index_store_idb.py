"""The vector index's store in the browser: ``web/index-store.js`` (IndexedDB) from Python in the worker.

One of the edge modules that touch ``js``/``pyodide`` (import it only inside Pyodide). It implements
:class:`~hybrid_router.vector_index.IndexStore`; vectors cross the boundary as one Float32Array per call.
Browser errors become :class:`~hybrid_router.errors.StorageError` (a full disk says so in its hint).
Every JS proxy made for a call is destroyed before it returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import js

if TYPE_CHECKING:
    import numpy as np
else:
    from hybrid_router._lazy import numpy as np
from pyodide.ffi import JsException, to_js

from ..errors import StorageError
from ..vector_index import IndexMeta, StoredIndex, Vectors
from .jsinterop import destroy, js_object, storage_error

__all__ = ["IdbIndexStore"]


def _storage_error(what: str, exc: JsException) -> StorageError:
    return storage_error(
        "vector index store",
        what,
        exc,
        hint="IndexedDB failed (private browsing or a browser setting may block it); "
        "the index keeps working in memory until the page is closed.",
        full_hint="Browser storage is full: drop indexes you no longer need or delete cached models.",
    )


class IdbIndexStore:
    """:class:`~hybrid_router.vector_index.IndexStore` over an ``IndexStore`` of ``web/index-store.js``."""

    persistent = True

    def __init__(self, js_store: Any) -> None:
        self._js = js_store

    @classmethod
    async def open(cls) -> IdbIndexStore:
        """Open the database through ``web/index-store.js`` (imported by ``web/py-bridge.js``)."""
        import hybrid_router_js

        try:
            return cls(await hybrid_router_js.openIndexStore())
        except JsException as exc:
            raise _storage_error("open its database", exc) from exc

    async def load(self, name: str) -> StoredIndex | None:
        try:
            row = await self._js.load(name)
        except JsException as exc:
            raise _storage_error(f"read the index {name!r}", exc) from exc
        if row is None:
            return None
        try:
            meta = row.meta.to_py()
            dims = meta.get("dims")
            ids, texts = list(row.ids.to_py()), list(row.texts.to_py())
            flat = np.frombuffer(row.vectors.to_bytes(), dtype="<f4").astype(np.float32)
        finally:
            destroy(row)
        vectors = flat.reshape(len(ids), int(dims or 0)) if ids else np.zeros((0, int(dims or 0)), np.float32)
        return StoredIndex(IndexMeta(str(meta["name"]), str(meta["model"]), dims), ids, texts, vectors)

    async def save_meta(self, meta: IndexMeta) -> None:
        data = js_object(meta.to_dict())
        try:
            await self._js.saveMeta(data)
        except JsException as exc:
            raise _storage_error(f"save the index {meta.name!r}", exc) from exc
        finally:
            destroy(data)

    async def put(self, name: str, ids: list[str], texts: list[str], vectors: Vectors) -> None:
        flat = np.ascontiguousarray(vectors, dtype="<f4")
        js_ids, js_texts, raw = to_js(ids), to_js(texts), to_js(flat.tobytes())
        floats = js.Float32Array.new(raw.buffer, raw.byteOffset, flat.size)
        try:
            await self._js.put(name, js_ids, js_texts, floats)
        except JsException as exc:
            raise _storage_error(f"write {len(ids)} item(s) of {name!r}", exc) from exc
        finally:
            destroy(js_ids, js_texts, raw, floats)

    async def delete(self, name: str, ids: list[str]) -> None:
        js_ids = to_js(ids)
        try:
            await self._js.delete(name, js_ids)
        except JsException as exc:
            raise _storage_error(f"delete {len(ids)} item(s) of {name!r}", exc) from exc
        finally:
            destroy(js_ids)

    async def drop(self, name: str) -> None:
        try:
            await self._js.drop(name)
        except JsException as exc:
            raise _storage_error(f"drop the index {name!r}", exc) from exc

    async def names(self) -> list[str]:
        try:
            keys = await self._js.names()
        except JsException as exc:
            raise _storage_error("list its indexes", exc) from exc
        try:
            return [str(k) for k in keys.to_py()]
        finally:
            destroy(keys)
