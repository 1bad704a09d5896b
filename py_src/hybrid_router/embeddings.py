"""The embedding task: validate, run on the device, check and normalize, record the route.

Embeddings always run locally (they are cheap on the device and the texts stay private). The vectors
are returned with unit L2 norm whatever the model or runtime did, so a dot product is a cosine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hybrid_router import validation
from hybrid_router.errors import HybridRouterError, InferenceError
from hybrid_router.local.runtime import LocalRuntime, ProgressCallback
from hybrid_router.manifest import Manifest, ModelEntry
from hybrid_router.route import REASON_TASK_DEFAULT, Route

__all__ = ["TASK", "EmbedResult", "embed", "embedding_model"]

TASK = "feature-extraction"
_RULE = "embeddings run on the device"


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


def embedding_model(manifest: Manifest, model_id: str | None = None) -> ModelEntry:
    """``model_id`` if it is an embedding model of the manifest, else the manifest's first one."""
    return manifest.choose(TASK, model_id, kind="embedding", does="compute embeddings")


async def embed(
    runtime: LocalRuntime,
    manifest: Manifest,
    texts: Sequence[str],
    *,
    model_id: str | None = None,
    dtype: str | None = None,
    on_progress: ProgressCallback | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> EmbedResult:
    """Embed ``texts`` with ``model_id`` (default: the manifest's first embedding model) on the device.

    The arguments are checked at run time too (they often come from the page). Raises
    ``ValidationError`` for bad arguments, what the runtime raises for load and inference
    failures (anything unexpected as ``InferenceError``); cancellation propagates untouched.
    """
    items = validation.texts(texts)
    entry = embedding_model(manifest, validation.optional_str(model_id, "model"))
    resolved = entry.variant(validation.optional_str(dtype, "dtype")).dtype
    started = clock()
    try:
        raw = await runtime.feature_extraction(
            entry,
            resolved,
            items,
            # A manifest entry without pooling still has to give one vector per text.
            pooling=entry.pooling if entry.pooling not in (None, "none") else "mean",
            normalize=True if entry.normalize is None else entry.normalize,
            on_progress=on_progress,
        )
    except HybridRouterError:
        raise
    except Exception as exc:  # CancelledError is a BaseException: it passes through untouched
        raise InferenceError(
            f"{entry.id} failed on {len(items)} text(s): {type(exc).__name__}: {exc}",
            model=entry.id,
            dtype=resolved,
            task=TASK,
        ) from exc
    ms = (clock() - started) * 1000.0
    vectors = _unit_rows(_checked(raw, len(items), entry.id, resolved))
    route = Route(
        target="local", reason=REASON_TASK_DEFAULT, rule=_RULE, model=entry.id, ms=ms, dtype=resolved
    )
    return EmbedResult(
        vectors=vectors, dims=int(vectors.shape[1]), model=entry.id, dtype=resolved, route=route
    )


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
