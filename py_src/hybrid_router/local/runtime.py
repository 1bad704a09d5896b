"""``LocalRuntime``: what the router needs from an on-device runtime, and nothing more.

The browser implementation is :mod:`hybrid_router.local.transformers_js` (Transformers.js through
Pyodide); unit tests use a fake. The router is handed a runtime, it never imports one.

Contract of every method:

- it is async and cancellable: on ``asyncio.CancelledError`` it stops (aborting the JS side where it
  can) and re-raises;
- it loads the model on first use, reporting download events through ``on_progress`` (the
  Transformers.js union tagged by ``status``, with ``model`` and ``dtype`` keys added);
- it raises :class:`~hybrid_router.errors.ModelLoadError` when the model cannot be loaded and
  :class:`~hybrid_router.errors.InferenceError` when it fails while running; anything else it raises
  is wrapped as ``InferenceError`` by the caller.

Token counting and generation join this protocol when the router needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from hybrid_router.manifest import ModelEntry

__all__ = ["LocalRuntime", "ProgressCallback"]

#: Receives one progress event (a plain dict) per call; must not block.
ProgressCallback = Callable[[dict[str, Any]], None]


class LocalRuntime(Protocol):
    """An on-device model runner."""

    async def feature_extraction(
        self,
        model: ModelEntry,
        dtype: str,
        texts: list[str],
        *,
        pooling: str,
        normalize: bool,
        on_progress: ProgressCallback | None = None,
    ) -> npt.NDArray[np.float32]:
        """One pooled embedding per text, in order: float32 of shape ``(len(texts), dims)``.

        ``pooling`` is ``"mean"`` or ``"cls"`` (from the manifest); ``dtype`` one of ``model.dtypes``.
        """
        ...
