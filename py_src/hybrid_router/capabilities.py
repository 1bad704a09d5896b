"""What the device can take, and which models fit it: pure functions over facts probed in the browser.

``web/capabilities.js`` probes the facts once in the worker (WebGPU adapter and its limits,
``navigator.deviceMemory``, ``hardwareConcurrency``, cross-origin isolation, the storage estimate,
``navigator.onLine``); :meth:`Capabilities.from_facts` reads them. A software adapter (SwiftShader,
``isFallbackAdapter``) is *not* a GPU here: it runs WebGPU code correctly but slower than wasm.

- :func:`choose_device`: ``webgpu`` only with a real adapter (and a model that may use it), else ``wasm``;
- :func:`choose_dtype`: the manifest's default dtype (chosen by measurement), unless the device has too
  little memory or storage for it, or a real GPU with ``shader-f16`` and an ``fp16`` variant exist;
- :func:`recommend`: the manifest's models for a task, filtered by GPU need, memory and storage,
  ranked, each with its reasons.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ValidationError
from .manifest import Manifest, ModelEntry

__all__ = ["Capabilities", "Recommendation", "choose_device", "choose_dtype", "recommend"]

_MB = 1e6
#: a model may take at most this share of the device's memory (navigator.deviceMemory is capped at 8 GB)
MEMORY_SHARE = 0.5


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Capabilities:
    """The device, as probed once in the worker. Unknown facts are None."""

    webgpu_api: bool = False
    adapter: bool = False
    fallback_adapter: bool = False
    shader_f16: bool = False
    max_buffer_size: int | None = None
    max_storage_buffer_binding_size: int | None = None
    adapter_info: Mapping[str, str] = field(default_factory=dict)
    device_memory_gb: float | None = None
    hardware_concurrency: int | None = None
    cross_origin_isolated: bool = False
    storage_usage: int | None = None
    storage_quota: int | None = None
    storage_persisted: bool | None = None
    online: bool | None = None

    @classmethod
    def from_facts(cls, facts: Mapping[str, Any] | None) -> Capabilities:
        """Read the probe's output (``web/capabilities.js``); anything missing or malformed is unknown."""
        f = facts or {}
        gpu = _mapping(f.get("webgpu"))
        storage = _mapping(f.get("storage"))
        raw_features = gpu.get("features")
        features = raw_features if isinstance(raw_features, list | tuple) else []
        info = _mapping(gpu.get("info"))

        def opt_int(value: Any) -> int | None:
            n = _num(value)
            return int(n) if n is not None else None

        persisted = storage.get("persisted")
        online = f.get("online")
        return cls(
            webgpu_api=bool(gpu.get("api")),
            adapter=bool(gpu.get("adapter")),
            fallback_adapter=bool(gpu.get("fallback")),
            shader_f16="shader-f16" in features,
            max_buffer_size=opt_int(gpu.get("max_buffer_size")),
            max_storage_buffer_binding_size=opt_int(gpu.get("max_storage_buffer_binding_size")),
            adapter_info={str(k): str(v) for k, v in info.items() if v},
            device_memory_gb=_num(f.get("device_memory_gb")),
            hardware_concurrency=opt_int(f.get("hardware_concurrency")),
            cross_origin_isolated=bool(f.get("cross_origin_isolated")),
            storage_usage=opt_int(storage.get("usage")),
            storage_quota=opt_int(storage.get("quota")),
            storage_persisted=persisted if isinstance(persisted, bool) else None,
            online=online if isinstance(online, bool) else None,
        )

    @property
    def real_gpu(self) -> bool:
        """A hardware WebGPU adapter (a software fallback adapter does not count)."""
        return self.adapter and not self.fallback_adapter

    @property
    def storage_free(self) -> int | None:
        if self.storage_quota is None:
            return None
        return max(0, self.storage_quota - (self.storage_usage or 0))

    @property
    def memory_mb(self) -> float | None:
        return None if self.device_memory_gb is None else self.device_memory_gb * 1024

    def with_storage(self, usage: int | None, quota: int | None,
                     persisted: bool | None = None) -> Capabilities:
        from dataclasses import replace

        return replace(self, storage_usage=usage, storage_quota=quota,
                       storage_persisted=self.storage_persisted if persisted is None else persisted)

    def to_wire(self) -> dict[str, Any]:
        gpu_kind = "real" if self.real_gpu else "fallback (software)" if self.adapter else "none"
        return {
            "webgpu": {"api": self.webgpu_api, "adapter": self.adapter, "fallback": self.fallback_adapter,
                       "real_gpu": self.real_gpu, "kind": gpu_kind, "shader_f16": self.shader_f16,
                       "max_buffer_size": self.max_buffer_size,
                       "max_storage_buffer_binding_size": self.max_storage_buffer_binding_size,
                       "info": dict(self.adapter_info)},
            "device_memory_gb": self.device_memory_gb,
            "hardware_concurrency": self.hardware_concurrency,
            "cross_origin_isolated": self.cross_origin_isolated,
            "storage": {"usage": self.storage_usage, "quota": self.storage_quota, "free": self.storage_free,
                        "persisted": self.storage_persisted},
            "online": self.online,
        }


def choose_device(model: ModelEntry, caps: Capabilities) -> str:
    """``webgpu`` when the device has a real GPU (a software adapter does not count), else ``wasm``.

    A model whose ``min_device`` is ``wasm`` was measured on wasm, where it is fast enough; it moves to
    WebGPU only on a real GPU. A WebGPU failure at run time moves it back (see the runtime).
    """
    return "webgpu" if caps.real_gpu else "wasm"


def _fits_memory(model: ModelEntry, caps: Capabilities) -> bool:
    return caps.memory_mb is None or model.memory_mb <= MEMORY_SHARE * caps.memory_mb


def choose_dtype(model: ModelEntry, caps: Capabilities, cached: Sequence[str] = ()) -> tuple[str, str]:
    """The dtype to run ``model`` in on this device, and why (``cached``: its dtypes stored whole)."""
    default = model.default_dtype
    if caps.real_gpu and caps.shader_f16 and "fp16" in model.variants:
        return "fp16", "a real GPU with shader-f16: the fp16 variant"
    smallest = min(model.variants, key=lambda d: (model.total_bytes(d), d))
    if smallest == default:
        return default, f"the manifest's default ({model.dtype_reason.split('.')[0]})"
    if not _fits_memory(model, caps):
        return smallest, (f"{caps.device_memory_gb:g} GB of device memory: the smallest variant "
                          f"({model.total_bytes(smallest) / _MB:.0f} MB)")
    free = caps.storage_free
    if default not in cached and free is not None and model.total_bytes(default) > free:
        return smallest, (f"{free / _MB:.0f} MB of storage left: the smallest variant "
                          f"({model.total_bytes(smallest) / _MB:.0f} MB instead of "
                          f"{model.total_bytes(default) / _MB:.0f} MB)")
    return default, "the manifest's default, chosen by measuring speed and fidelity"


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
        return {"model": self.model, "task": self.task, "usable": self.usable, "device": self.device,
                "dtype": self.dtype, "download_bytes": self.download_bytes, "cached": self.cached,
                "memory_mb": self.memory_mb, "score": round(self.score, 3), "reasons": list(self.reasons)}


def _assess(model: ModelEntry, task: str, caps: Capabilities, cached_dtypes: Sequence[str],
            rank: int) -> Recommendation:
    reasons: list[str] = []
    usable = True
    score = 1.0 - 0.01 * rank  # the manifest lists a task's default model first
    if model.min_device == "webgpu" and not caps.real_gpu:
        usable = False
        reasons.append("needs a real GPU (WebGPU); this device has " +
                       ("only a software adapter" if caps.adapter else "no WebGPU adapter"))
    if not _fits_memory(model, caps):
        usable = False
        reasons.append(f"needs about {model.memory_mb} MB of memory; this device reports "
                       f"{caps.device_memory_gb:g} GB (a model may take at most half)")
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
        reasons.append(f"{download / _MB:.0f} MB download does not fit the {free / _MB:.0f} MB of storage "
                       "left: it would run from memory and download again next time")
    else:
        reasons.append(f"{download / _MB:.0f} MB to download" +
                       (f" ({free / _MB:.0f} MB of storage left)" if free is not None else ""))
    score -= min(0.3, download / 2e9)  # a smaller download ranks higher
    if device == "webgpu":
        score += 0.1
    return Recommendation(model.id, task, usable, device, dtype, download, cached, model.memory_mb,
                          score if usable else score - 10, tuple(reasons))


def recommend(manifest: Manifest, caps: Capabilities, task: str | None = None,
              cached: Mapping[str, Sequence[str]] | None = None) -> list[Recommendation]:
    """The models for ``task`` (every model when None), usable ones first, best first.

    ``cached``: model id -> its dtypes stored whole in the model cache.
    """
    if task is not None and not any(task in m.tasks for m in manifest.models):
        known = sorted({t for m in manifest.models for t in m.tasks})
        raise ValidationError(f"no model of the manifest does {task!r}",
                              hint=f"Use one of the tasks: {', '.join(known)}.", field="task")
    out: list[Recommendation] = []
    for m in manifest.models:
        for t in m.tasks:
            if task is None or t == task:
                rank = [x.id for x in manifest.for_task(t)].index(m.id)
                out.append(_assess(m, t, caps, (cached or {}).get(m.id, ()), rank))
    return sorted(out, key=lambda r: (-r.usable, -r.score, r.model))
