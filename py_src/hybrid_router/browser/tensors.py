"""What the Transformers.js runtime does with JS values: tensors to numpy, the reference truncation fix,
a turn for the event loop between decoding steps, freeing ORT buffers, errors in one line. Inside Pyodide
only: the JS halves are in ``web/py-bridge.js`` (the module ``hybrid_router_js``; not ``run_js``, which is
``eval`` and refused by the site's Content-Security-Policy).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
else:
    from hybrid_router._lazy import numpy as np

from .jsinterop import destroy, js_object

__all__ = [
    "dispose",
    "ints",
    "message",
    "released_when_settled",
    "restore_final_special_token",
    "tensor_to_numpy",
    "yield_between_steps",
]


def message(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def ints(tensor: Any) -> np.ndarray:
    return np.asarray(tensor.data.to_py(), dtype=np.int64).reshape(tensor.dims.to_py())


def restore_final_special_token(input_ids: Any, sep_id: Any, mask: np.ndarray) -> None:
    """Rows cut by truncation end in a content token instead of ``sep_id``: make it ``sep_id`` again."""
    if not isinstance(sep_id, int) or mask.size == 0:
        return
    import hybrid_router_js

    ids = ints(input_ids)
    width = ids.shape[1]
    rows = [int(r) * width + width - 1 for r in np.nonzero((mask[:, -1] == 1) & (ids[:, -1] != sep_id))[0]]
    if rows:  # BigInt64Array elements can only be set from JS (a Python int arrives as a Number)
        set_ids = hybrid_router_js.setBigInts
        try:
            set_ids(input_ids, js_object(rows), sep_id)
        finally:
            destroy(set_ids)


def yield_between_steps(pipe: Any) -> None:
    """Let the worker's event loop run before every decoding step.

    ONNX Runtime WASM's generation loop never gives the worker a turn between tokens, so without this
    the streamed pieces (and a cancel message from the page) would only be handled after the last token:
    no streaming and no interruption. One macrotask per step (a MessageChannel message) is enough.
    """
    import hybrid_router_js

    install = hybrid_router_js.yieldBetweenSteps
    try:
        install(pipe)
    finally:
        destroy(install)


def dispose(tensors: Any) -> None:
    """Free the ORT buffers of a model's output tensors (a JS object of Tensors)."""
    if tensors is None:
        return
    for key in tensors.object_keys():
        value = getattr(tensors, key)
        if hasattr(value, "dispose"):
            value.dispose()
        destroy(value)


def released_when_settled(release: Callable[[], None]) -> Callable[[asyncio.Future[Any]], None]:
    """A done-callback for a JS call left running after a cancel: free its proxies once it settles (and
    retrieve its outcome, so that asyncio does not report it as never retrieved)."""

    def done(future: asyncio.Future[Any]) -> None:
        release()
        if not future.cancelled():
            future.exception()

    return done


def tensor_to_numpy(tensor: Any) -> np.ndarray:
    dims = tensor.dims.to_py()
    data = tensor.data.to_py()  # a copy into Python memory
    return np.asarray(data, dtype=np.float32).reshape(dims)
