"""The cost ledger's store in the browser: ``web/state-store.js`` (IndexedDB, and a Web Lock every tab of
the origin shares), as a :class:`~hybrid_router.ledger.LedgerStore`. Inside Pyodide only."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import js

from .jsinterop import destroy, js_object

__all__ = ["LOCK", "IdbLedgerStore"]

KEY = "ledger"
#: the Web Lock of the origin's ledger
LOCK = "hybrid-router-ledger"


class IdbLedgerStore:
    def __init__(self, js_store: Any) -> None:
        self._js = js_store

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        controller = js.AbortController.new()
        try:
            release = await self._js.lock(LOCK, js_object({"signal": controller.signal}))
        except asyncio.CancelledError:
            # a request left waiting would take the lock later and hold it for ever: every tab's next
            # request would wait on it (found by the load test: cancelled calls wedged the worker)
            controller.abort()  # withdraws the request, or releases the lock if it was just granted
            raise
        try:
            yield
        finally:
            release()
            destroy(release, controller)

    async def read(self) -> dict[str, Any] | None:
        text = await self._js.get(KEY)
        try:
            state = json.loads(text) if text else None
        except ValueError:
            return None  # unreadable: the ledger starts again from what it holds
        return state if isinstance(state, dict) else None

    async def write(self, state: dict[str, Any]) -> None:
        await self._js.put(KEY, json.dumps(state))
