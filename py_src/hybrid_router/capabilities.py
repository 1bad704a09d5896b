"""What the device can take: the facts probed in the browser, as one frozen value.

``web/capabilities.js`` probes the facts once in the worker (WebGPU adapter and its limits,
``navigator.deviceMemory``, ``hardwareConcurrency``, cross-origin isolation, the storage estimate,
``navigator.onLine``, what ONNX Runtime's builds need: JS Promise Integration, nested workers, the
runtime's files on the worker's origin); :meth:`Capabilities.from_facts` reads them. A software adapter
(SwiftShader, ``isFallbackAdapter``) is *not* a GPU here: it runs WebGPU code correctly but slower than
wasm. A caller may override probed facts (``create({ capabilities })``, for tests and for an app that
knows its device better than the browser says): :func:`merged_facts`, and the value says which
(:attr:`Capabilities.simulated`). What the routing makes of them (device, dtype, ONNX Runtime build,
recommendations, the chat model) is in :mod:`hybrid_router.routing.devices` and
:mod:`hybrid_router.routing.recommend`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Capabilities", "merged_facts"]

#: the facts that are objects of their own: an override of one of them changes only the keys it names
_NESTED = ("webgpu", "storage", "runtime")


def merged_facts(probed: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The probe's facts with ``overrides`` over them (keys as the probe writes them: ``device_memory_gb``,
    ``hardware_concurrency``, ``storage: {usage, quota}``, ...); ``simulated`` lists the overridden ones."""
    facts = dict(probed)
    if not overrides:
        return facts
    simulated: list[str] = []
    for key, value in overrides.items():
        if key in _NESTED and isinstance(value, Mapping):
            facts[key] = {**_mapping(facts.get(key)), **value}
            simulated += [f"{key}.{k}" for k in value]
        else:
            facts[key] = value
            simulated.append(str(key))
    facts["simulated"] = sorted(simulated)
    return facts


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
    #: WebAssembly JS Promise Integration (``WebAssembly.Suspending``): ONNX Runtime's jspi build runs
    jspi: bool = False
    #: this worker may start workers (ONNX Runtime's proxy worker)
    nested_workers: bool = False
    #: Transformers.js and ONNX Runtime's loaders are on the worker's origin (a worker made from another
    #: origin's file would be a blob:, which the Content-Security-Policy refuses)
    same_origin_runtime: bool = False
    #: the facts a caller overrode instead of the probe's (:func:`merged_facts`)
    simulated: tuple[str, ...] = ()

    @classmethod
    def from_facts(cls, facts: Mapping[str, Any] | None) -> Capabilities:
        """Read the probe's output (``web/capabilities.js``); anything missing or malformed is unknown."""
        f = facts or {}
        gpu = _mapping(f.get("webgpu"))
        storage = _mapping(f.get("storage"))
        runtime = _mapping(f.get("runtime"))
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
            jspi=runtime.get("jspi") is True,
            nested_workers=runtime.get("nested_workers") is True,
            same_origin_runtime=runtime.get("same_origin_runtime") is True,
            simulated=tuple(str(k) for k in f.get("simulated") or () if isinstance(k, str)),
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

    def with_storage(
        self, usage: int | None, quota: int | None, persisted: bool | None = None
    ) -> Capabilities:
        from dataclasses import replace

        return replace(
            self,
            storage_usage=usage,
            storage_quota=quota,
            storage_persisted=self.storage_persisted if persisted is None else persisted,
        )

    def to_wire(self) -> dict[str, Any]:
        gpu_kind = "real" if self.real_gpu else "fallback (software)" if self.adapter else "none"
        return {
            "webgpu": {
                "api": self.webgpu_api,
                "adapter": self.adapter,
                "fallback": self.fallback_adapter,
                "real_gpu": self.real_gpu,
                "kind": gpu_kind,
                "shader_f16": self.shader_f16,
                "max_buffer_size": self.max_buffer_size,
                "max_storage_buffer_binding_size": self.max_storage_buffer_binding_size,
                "info": dict(self.adapter_info),
            },
            "device_memory_gb": self.device_memory_gb,
            "hardware_concurrency": self.hardware_concurrency,
            "cross_origin_isolated": self.cross_origin_isolated,
            "storage": {
                "usage": self.storage_usage,
                "quota": self.storage_quota,
                "free": self.storage_free,
                "persisted": self.storage_persisted,
            },
            "online": self.online,
            "runtime": {
                "jspi": self.jspi,
                "nested_workers": self.nested_workers,
                "same_origin_runtime": self.same_origin_runtime,
            },
            "simulated": list(self.simulated),
        }
