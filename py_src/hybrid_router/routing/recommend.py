"""Which models suit this device for a task: usable ones first, best first, each with its reasons.

Pure functions over the probed :class:`~hybrid_router.capabilities.Capabilities`, the manifest and what
the model cache holds; the device and dtype of each candidate come from :mod:`.devices`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hybrid_router.capabilities import Capabilities
from hybrid_router.errors import ValidationError
from hybrid_router.manifest import Manifest, ModelEntry
from hybrid_router.routing.devices import choose_device, choose_dtype, fits_memory

__all__ = ["Recommendation", "recommend"]

_MB = 1e6


@dataclass(frozen=True)
class Recommendation:
    """One model for a task on this device: usable or not, where and how it would run, and why."""

    model: str
    task: str
    usable: bool
    device: str
    dtype: str
    download_bytes: int
    cached: bool
    memory_mb: int
    score: float
    reasons: tuple[str, ...]

    def to_wire(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "task": self.task,
            "usable": self.usable,
            "device": self.device,
            "dtype": self.dtype,
            "download_bytes": self.download_bytes,
            "cached": self.cached,
            "memory_mb": self.memory_mb,
            "score": round(self.score, 3),
            "reasons": list(self.reasons),
        }


def _assess(
    model: ModelEntry, task: str, caps: Capabilities, cached_dtypes: Sequence[str], rank: int
) -> Recommendation:
    reasons: list[str] = []
    usable = True
    score = 1.0 - 0.01 * rank  # the manifest lists a task's default model first
    if model.min_device == "webgpu" and not caps.real_gpu:
        usable = False
        reasons.append(
            "needs a real GPU (WebGPU); this device has "
            + ("only a software adapter" if caps.adapter else "no WebGPU adapter")
        )
    if not fits_memory(model, caps):
        usable = False
        reasons.append(
            f"needs about {model.memory_mb} MB of memory; this device reports "
            f"{caps.device_memory_gb:g} GB (a model may take at most half)"
        )
    elif caps.memory_mb is not None:
        reasons.append(f"about {model.memory_mb} MB of memory of the device's {caps.device_memory_gb:g} GB")
    device = choose_device(model, caps)
    dtype, why = choose_dtype(model, caps, cached_dtypes)
    reasons.append(f"{dtype} on {device}: {why}")
    cached = dtype in cached_dtypes
    download = 0 if cached else model.total_bytes(dtype)
    free = caps.storage_free
    if cached:
        score += 0.5
        reasons.append("already cached on this device: no download")
    elif free is not None and download > free:
        score -= 0.4
        reasons.append(
            f"{download / _MB:.0f} MB download does not fit the {free / _MB:.0f} MB of storage "
            "left: it would run from memory and download again next time"
        )
    else:
        reasons.append(
            f"{download / _MB:.0f} MB to download"
            + (f" ({free / _MB:.0f} MB of storage left)" if free is not None else "")
        )
    score -= min(0.3, download / 2e9)  # a smaller download ranks higher
    if device == "webgpu":
        score += 0.1
    return Recommendation(
        model.id,
        task,
        usable,
        device,
        dtype,
        download,
        cached,
        model.memory_mb,
        score if usable else score - 10,
        tuple(reasons),
    )


def recommend(
    manifest: Manifest,
    caps: Capabilities,
    task: str | None = None,
    cached: Mapping[str, Sequence[str]] | None = None,
) -> list[Recommendation]:
    """The models for ``task`` (every model when None), usable ones first, best first.

    ``cached``: model id -> its dtypes stored whole in the model cache.
    """
    if task is not None and not any(task in m.tasks for m in manifest.models):
        known = sorted({t for m in manifest.models for t in m.tasks})
        raise ValidationError(
            f"no model of the manifest does {task!r}",
            hint=f"Use one of the tasks: {', '.join(known)}.",
            field="task",
        )
    out: list[Recommendation] = []
    for m in manifest.models:
        for t in m.tasks:
            if task is None or t == task:
                rank = [x.id for x in manifest.for_task(t)].index(m.id)
                out.append(_assess(m, t, caps, (cached or {}).get(m.id, ()), rank))
    return sorted(out, key=lambda r: (-r.usable, -r.score, r.model))
