"""The embedding task's step: run the model on the device, check and normalize its output.

Embeddings always run locally (they are cheap on the device and the texts stay private). The vectors
are returned with unit L2 norm whatever the model or runtime did, so a dot product is a cosine. The
request is checked where it enters (:class:`~hybrid_router.requests.EmbedRequest`), the model chosen by
the routing, the route issued by the executor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hybrid_router.errors import InferenceError
from hybrid_router.manifest import ModelEntry
from hybrid_router.route import Route
from hybrid_router.runtime import LocalRuntime, ProgressCallback

__all__ = ["TASK", "EmbedResult", "vectors"]

TASK = "feature-extraction"


@dataclass(frozen=True, eq=False)
class EmbedResult:
    """Unit-norm float32 vectors of shape ``(n, dims)``, in the order of the texts."""

    vectors: npt.NDArray[np.float32]
    dims: int
    model: str
    dtype: str
    route: Route

    def to_wire(self) -> dict[str, Any]:
        return {
            "vectors": self.vectors.tolist(),
            "dims": self.dims,
            "model": self.model,
            "dtype": self.dtype,
            "route": self.route.to_wire(),
        }


async def vectors(
    runtime: LocalRuntime,
    entry: ModelEntry,
    dtype: str,
    texts: Sequence[str],
    on_progress: ProgressCallback | None = None,
) -> npt.NDArray[np.float32]:
    """Unit-norm embeddings of ``texts`` by ``entry`` on the device, checked (one finite row per text).

    What the runtime raises passes through (the executor types anything unexpected); cancellation
    propagates untouched.
    """
    raw = await runtime.feature_extraction(
        entry,
        dtype,
        list(texts),
        # A manifest entry without pooling still has to give one vector per text.
        pooling=entry.pooling if entry.pooling not in (None, "none") else "mean",
        normalize=True if entry.normalize is None else entry.normalize,
        on_progress=on_progress,
    )
    return _unit_rows(_checked(raw, len(texts), entry.id, dtype))


def _checked(raw: object, count: int, model: str, dtype: str) -> npt.NDArray[np.float32]:
    """The runtime's output as float32 ``(count, dims)`` with finite values, else ``InferenceError``."""
    try:
        array = np.asarray(raw, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InferenceError(
            f"{model} returned something that is not an array of numbers ({type(raw).__name__})",
            model=model,
            dtype=dtype,
            task=TASK,
        ) from exc
    if array.ndim != 2 or array.shape[0] != count or array.shape[1] == 0:
        raise InferenceError(
            f"{model} returned an array of shape {array.shape} for {count} text(s), expected ({count}, dims)",
            hint="The model or its pooling setting does not match the manifest; rebuild the model.",
            model=model,
            dtype=dtype,
            task=TASK,
            shape=list(array.shape),
        )
    if not np.isfinite(array).all():
        raise InferenceError(
            f"{model} returned non-finite values (NaN or infinity)",
            hint="Try another dtype (fp32 is the most robust) or the cloud route.",
            model=model,
            dtype=dtype,
            task=TASK,
        )
    return array


def _unit_rows(array: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(array.astype(np.float64), axis=1, keepdims=True)  # float64: no overflow
    # An all-zero row has no direction: it stays zero rather than becoming NaN.
    norms[norms == 0] = 1.0
    unit: npt.NDArray[np.float32] = (array / norms).astype(np.float32, copy=False)
    return unit
