"""The cost ledger's store in the browser: ``web/state-store.js`` (IndexedDB, and a Web Lock every tab of
the origin shares), as a :class:`~hybrid_router.ledger.LedgerStore`. Inside Pyodide only."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from .jsinterop import destroy

__all__ = ["LOCK", "IdbLedgerStore"]

KEY = "ledger"
#: the Web Lock of the origin's ledger
LOCK = "hybrid-router-ledger"


class IdbLedgerStore:
    def __init__(self, js_store: Any) -> None:
        self._js = js_store

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        release = await self._js.lock(LOCK)
        try:
            yield
        finally:
            release()
            destroy(release)

    async def read(self) -> dict[str, Any] | None:
        text = await self._js.get(KEY)
        try:
            state = json.loads(text) if text else None
        except ValueError:
            return None  # unreadable: the ledger starts again from what it holds
        return state if isinstance(state, dict) else None

    async def write(self, state: dict[str, Any]) -> None:
        await self._js.put(KEY, json.dumps(state))
