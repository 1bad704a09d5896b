"""The model cache's store in the browser: ``web/idb-store.js`` (IndexedDB, SHA-256, downloads) from Python.

One of the edge modules that touch ``js``/``pyodide`` (import it only inside Pyodide). It implements
:class:`~hybrid_router.model_cache.CacheStore`; the bytes stay JS ``Uint8Array`` handles, never copied
into Python. Browser errors are translated here: a quota refusal becomes
:class:`~hybrid_router.model_cache.StoreFull`, a failed download a ``ModelLoadError``, any other
IndexedDB failure a ``StorageError``; cancelling a download aborts its fetch, then re-raises.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import js
from pyodide.ffi import JsException, create_proxy

from ..errors import ModelLoadError, StorageError
from ..model_cache import Download, StoreFull
from .jsinterop import js_error_name, js_error_text, js_object, storage_error

__all__ = ["IdbStore"]


def _storage_error(what: str, exc: BaseException) -> StorageError:
    return storage_error(
        "model cache",
        what,
        exc,
        hint="IndexedDB failed (private browsing or a browser setting may block it); "
        "models still run from memory. Clear this site's data if it persists.",
    )


class IdbStore:
    """:class:`~hybrid_router.model_cache.CacheStore` over a ``ModelStore`` of ``web/idb-store.js``."""

    def __init__(self, js_store: Any, *, idle_ms: int | None = None) -> None:
        self._js = js_store
        #: a download that receives nothing this long is aborted as stalled (None: the store's 30 s)
        self.idle_ms = idle_ms

    async def records(self) -> list[dict[str, Any]]:
        try:
            rows = await self._js.records()
        except JsException as exc:
            raise _storage_error("list its files", exc) from exc
        return list(rows.to_py())

    async def get_record(self, key: str) -> dict[str, Any] | None:
        try:
            row = await self._js.getRecord(key)
        except JsException as exc:
            raise _storage_error(f"read {key}", exc) from exc
        return None if row is None else dict(row.to_py())

    async def put_record(self, record: dict[str, Any]) -> None:
        try:
            await self._js.putRecord(js_object(record))
        except JsException as exc:
            if js_error_name(exc) == "QuotaExceededError":
                raise StoreFull(
                    ": ".join(x for x in ("QuotaExceededError", js_error_text(exc)) if x)
                ) from exc
            raise _storage_error(f"write {record.get('key')}", exc) from exc

    async def delete(self, key: str) -> None:
        try:
            await self._js.delete(key)
        except JsException as exc:
            raise _storage_error(f"delete {key}", exc) from exc

    async def chunk_count(self, key: str) -> int:
        try:
            return int(await self._js.chunkCount(key))
        except JsException as exc:
            raise _storage_error(f"count the chunks of {key}", exc) from exc

    async def read(self, key: str, size: int, chunk_bytes: int) -> Any:
        try:
            return await self._js.read(key)
        except JsException as exc:
            raise _storage_error(f"read {key}", exc) from exc

    def length(self, data: Any) -> int:
        return int(data.byteLength)

    def view(self, data: Any, start: int, end: int) -> Any:
        return data.subarray(start, end)

    async def digest(self, data: Any) -> str:
        return str(await self._js.digest(data))

    async def estimate(self) -> dict[str, Any]:
        result = await self._js.estimate()
        return {"usage": int(result.usage), "quota": int(result.quota)}

    @contextlib.asynccontextmanager
    async def exclusive(self, key: str) -> AsyncIterator[None]:
        controller = js.AbortController.new()
        try:
            release = await self._js.lock(key, js_object({"signal": controller.signal}))
        except asyncio.CancelledError:
            controller.abort()  # withdraws the request, or releases the lock if it was just granted
            raise
        except JsException as exc:
            raise _storage_error(f"take the lock on {key}", exc) from exc
        try:
            yield
        finally:
            release()

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
        controller = js.AbortController.new()
        callback = create_proxy(lambda n: on_bytes(int(n)))
        options = js_object(
            {
                "key": key,
                "start": start,
                "size": size,
                "chunkBytes": chunk_bytes,
                "store": store,
                "signal": controller.signal,
                "onBytes": callback,
                "parts": [{"url": u, "size": n} for u, n in parts],
                **({"idleMs": self.idle_ms} if self.idle_ms else {}),
            }
        )
        try:
            result = await self._js.download(url, options)
        except asyncio.CancelledError:
            controller.abort()
            raise
        except JsException as exc:
            status = getattr(getattr(exc, "js_error", None), "status", None)
            raise ModelLoadError(
                f"could not download {key}: {js_error_name(exc)}: {js_error_text(exc)}",
                hint="Check that the server is running and reachable (models are served by serve.py); "
                "a download that stopped resumes where it left off.",
                url=url,
                status=status if isinstance(status, int) else None,
            ) from exc
        finally:
            callback.destroy()
        error = result.storeError
        return Download(
            data=result.data,
            length=int(result.length),
            store_error=None if error is None else str(error),
            restarted=bool(result.restarted),
            part_lengths=tuple(int(n) for n in result.partLengths),
        )
