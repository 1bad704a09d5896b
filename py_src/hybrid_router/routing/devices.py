"""Where a model runs (WebGPU or wasm) and in which dtype, and when it moves from WebGPU to wasm.

- :func:`choose_device`: ``webgpu`` only with a real GPU (a software adapter does not count: it runs
  WebGPU code correctly but slower than wasm), else ``wasm``;
- :func:`choose_dtype`: the manifest's default dtype (chosen by measurement), unless the device has too
  little memory or storage for it, or a real GPU with ``shader-f16`` and an ``fp16`` variant exist;
- :class:`Devices`: the device of each model for one worker: pinned by the caller, or chosen as above,
  and demoted to wasm for good once WebGPU failed for it (:meth:`Devices.retry_on_wasm` is the rule the
  runtime asks). Transformers.js never recovers from a failed WebGPU session creation in a worker, so
  WebGPU is not even tried without an adapter: such a model is demoted at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hybrid_router.capabilities import Capabilities
from hybrid_router.errors import InferenceError, LocalError, ModelLoadError
from hybrid_router.manifest import ModelEntry

__all__ = ["DEVICES", "MEMORY_SHARE", "Devices", "choose_device", "choose_dtype", "fits_memory"]

DEVICES = ("wasm", "webgpu")
_MB = 1e6
#: a model may take at most this share of the device's memory (navigator.deviceMemory is capped at 8 GB)
MEMORY_SHARE = 0.5


def choose_device(model: ModelEntry, caps: Capabilities) -> str:
    """``webgpu`` when the device has a real GPU (a software adapter does not count), else ``wasm``.

    A model whose ``min_device`` is ``wasm`` was measured on wasm, where it is fast enough; it moves to
    WebGPU only on a real GPU. A WebGPU failure at run time moves it back (:class:`Devices`).
    """
    return "webgpu" if caps.real_gpu else "wasm"


def fits_memory(model: ModelEntry, caps: Capabilities) -> bool:
    return caps.memory_mb is None or model.memory_mb <= MEMORY_SHARE * caps.memory_mb


def choose_dtype(model: ModelEntry, caps: Capabilities, cached: Sequence[str] = ()) -> tuple[str, str]:
    """The dtype to run ``model`` in on this device, and why (``cached``: its dtypes stored whole)."""
    default = model.default_dtype
    if caps.real_gpu and caps.shader_f16 and "fp16" in model.variants:
        return "fp16", "a real GPU with shader-f16: the fp16 variant"
    smallest = min(model.variants, key=lambda d: (model.total_bytes(d), d))
    if smallest == default:
        return default, f"the manifest's default ({model.dtype_reason.split('.')[0]})"
    if not fits_memory(model, caps):
        return smallest, (
            f"{caps.device_memory_gb:g} GB of device memory: the smallest variant "
            f"({model.total_bytes(smallest) / _MB:.0f} MB)"
        )
    free = caps.storage_free
    if default not in cached and free is not None and model.total_bytes(default) > free:
        return smallest, (
            f"{free / _MB:.0f} MB of storage left: the smallest variant "
            f"({model.total_bytes(smallest) / _MB:.0f} MB instead of "
            f"{model.total_bytes(default) / _MB:.0f} MB)"
        )
    return default, "the manifest's default, chosen by measuring speed and fidelity"


class Devices:
    """The device of each model in one worker (see the module docstring). ``pinned``: the caller's
    ``create({ device })`` for every model; None: chosen per model from ``caps``."""

    def __init__(self, caps: Capabilities, pinned: str | None = None) -> None:
        self.caps = caps
        self.pinned = pinned
        self._demoted: dict[str, str] = {}
        #: each time WebGPU failed for a model and it moved to wasm: {model, error_name, message}
        self.fallbacks: list[dict[str, str]] = []

    def chosen(self, model: ModelEntry) -> str:
        """The device asked for ``model`` before any failure."""
        return self.pinned or choose_device(model, self.caps)

    def device_of(self, model: ModelEntry) -> str:
        """Where ``model`` runs now."""
        if model.id in self._demoted:
            return "wasm"
        device = self.chosen(model)
        if device == "webgpu" and not self.caps.adapter:
            self.demote(
                model,
                ModelLoadError(
                    f"{model.id}: WebGPU was asked for, but this browser offers no WebGPU adapter "
                    "(navigator.gpu.requestAdapter() returned null); it runs on wasm",
                    model=model.id,
                ),
            )
            return "wasm"
        return device

    def demote(self, model: ModelEntry, error: LocalError) -> None:
        """WebGPU failed for ``model``: it runs on wasm from now on."""
        if model.id in self._demoted:
            return
        self._demoted[model.id] = error.message
        self.fallbacks.append({"model": model.id, "error_name": error.name, "message": error.message})

    def retry_on_wasm(self, model: ModelEntry, device: str, error: BaseException) -> bool:
        """The demotion rule: a load or inference failure of ``model`` on WebGPU moves it to wasm and the
        call runs once more there (returns True, having demoted it); anything else is raised."""
        if device != "webgpu" or not isinstance(error, ModelLoadError | InferenceError):
            return False
        self.demote(model, error)
        return True

    def to_wire(self) -> list[dict[str, Any]]:
        return [dict(f) for f in self.fallbacks]
