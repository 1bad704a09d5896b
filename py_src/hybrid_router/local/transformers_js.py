"""The on-device runtime in the browser: Transformers.js, reached through Pyodide's JS interop.

This is one of the few modules that touch ``js``/``pyodide`` (see docs/ARCHITECTURE.md); the router
only sees the :class:`~hybrid_router.local.runtime.LocalRuntime` protocol it implements. Import it only
inside Pyodide.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np
from pyodide.ffi import JsException, create_proxy  # type: ignore[import-not-found]

from ..errors import InferenceError, ModelLoadError
from ..manifest import ModelEntry

ProgressFn = Callable[[dict[str, Any]], None]


def _message(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


class TransformersJsRuntime:
    """Pipelines of Transformers.js, created once per (task, model, dtype, device) and reused.

    ``tjs`` is the module proxy returned by ``transformers_js_py.import_transformers_js``.
    Concurrent first calls for the same pipeline share one load.
    """

    def __init__(self, tjs: Any, *, device: str = "wasm") -> None:
        self._tjs = tjs
        self.device = device
        self._pipelines: dict[tuple[str, str, str, str], asyncio.Future[Any]] = {}

    @property
    def loaded(self) -> list[dict[str, str]]:
        return [{"task": t, "model": m, "dtype": d, "device": dev}
                for (t, m, d, dev), fut in self._pipelines.items() if fut.done() and not fut.exception()]

    async def _pipeline(self, task: str, model: ModelEntry, dtype: str, on_progress: ProgressFn | None) -> Any:
        key = (task, model.id, dtype, self.device)
        fut = self._pipelines.get(key)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            self._pipelines[key] = fut
            try:
                fut.set_result(await self._load(task, model, dtype, on_progress))
            except BaseException as exc:
                del self._pipelines[key]
                fut.set_exception(exc)
                fut.exception()  # mark retrieved: waiters re-raise it below
                raise
        return await asyncio.shield(fut)

    async def _load(self, task: str, model: ModelEntry, dtype: str, on_progress: ProgressFn | None) -> Any:
        def progress(event: Any) -> None:
            if on_progress is not None:
                data = event.to_py() if hasattr(event, "to_py") else dict(event)
                on_progress({**data, "model": model.id, "dtype": dtype})

        callback = create_proxy(progress)
        try:
            return await self._tjs.pipeline(task, model.id, {"dtype": dtype, "device": self.device,
                                                              "progress_callback": callback})
        except JsException as exc:
            raise ModelLoadError(
                f"could not load {model.id} ({dtype}) for {task}: {_message(exc)}",
                hint="Check that the model is built (./hr build) and served under /models/; "
                "reload the page if the cache was cleared.",
                model=model.id, dtype=dtype, task=task,
            ) from exc
        finally:
            callback.destroy()

    async def feature_extraction(self, model: ModelEntry, dtype: str, texts: list[str], *, pooling: str,
                                 normalize: bool, on_progress: ProgressFn | None = None) -> np.ndarray:
        pipe = await self._pipeline("feature-extraction", model, dtype, on_progress)
        try:
            output = await pipe(list(texts), {"pooling": pooling, "normalize": normalize})
            return np.asarray(output.to_numpy(), dtype=np.float32)
        except JsException as exc:
            raise InferenceError(f"{model.id} failed on {len(texts)} text(s): {_message(exc)}",
                                 model=model.id, dtype=dtype, task="feature-extraction") from exc
