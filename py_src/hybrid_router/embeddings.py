"""The embedding task's step: run the model on the device, check and normalize its output.

Embeddings always run locally (they are cheap on the device and the texts stay private). The vectors
are returned with unit L2 norm whatever the model or runtime did, so a dot product is a cosine. The
request is checked where it enters (:class:`~hybrid_router.requests.EmbedRequest`), the model chosen by
the routing, the route issued by the executor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    from hybrid_router._lazy import numpy as np

from hybrid_router.errors import InferenceError
from hybrid_router.manifest import ModelEntry
from hybrid_router.route import Route
from hybrid_router.runtime import LocalRuntime, ProgressCallback

__all__ = ["BATCH", "BATCH_CHARS", "TASK", "EmbedResult", "batches", "vectors"]

TASK = "feature-extraction"
#: texts per model call; a call is padded to its longest text, so texts are batched by length
BATCH = 32
#: characters per model call (a few long texts go together, not 32 of them)
BATCH_CHARS = 32_000


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
    """Unit-norm embeddings of ``texts`` by ``entry`` on the device, checked (one finite row per text), in
    the order of ``texts``.

    The texts go to the model in batches of similar length (at most :data:`BATCH` texts and about
    :data:`BATCH_CHARS` characters each): a batch is padded to its longest text, so one long text among
    short ones multiplies the work, and 1,024 long texts in one batch would not fit in memory. What the
    runtime raises passes through (the executor types anything unexpected); cancellation propagates.
    """
    out: npt.NDArray[np.float32] | None = None
    for picked in batches([len(t) for t in texts]):
        raw = await runtime.feature_extraction(
            entry,
            dtype,
            [texts[i] for i in picked],
            # A manifest entry without pooling still has to give one vector per text.
            pooling=entry.pooling if entry.pooling not in (None, "none") else "mean",
            normalize=True if entry.normalize is None else entry.normalize,
            on_progress=on_progress,
        )
        rows = _unit_rows(_checked(raw, len(picked), entry.id, dtype))
        if out is None:
            out = np.empty((len(texts), rows.shape[1]), np.float32)
        elif rows.shape[1] != out.shape[1]:
            raise InferenceError(
                f"{entry.id} returned vectors of {rows.shape[1]} and {out.shape[1]} dims",
                model=entry.id,
                dtype=dtype,
                task=TASK,
            )
        out[picked] = rows
    assert out is not None  # texts is never empty (checked where the request entered)
    return out


def batches(lengths: Sequence[int], size: int = BATCH, chars: int = BATCH_CHARS) -> list[list[int]]:
    """Indices of the texts, shortest first, cut into batches of at most ``size`` texts whose padded size
    (count x longest) stays within about ``chars`` characters (a single longer text is a batch alone).
    Texts that fit in one batch go together in their own order."""
    if len(lengths) <= size and len(lengths) * max(lengths, default=1) <= chars:
        return [list(range(len(lengths)))]
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    out: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (len(current) == size or (len(current) + 1) * max(lengths[i], 1) > chars):
            out.append(current)
            current = []
        current.append(i)
    if current:
        out.append(current)
    return out


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
