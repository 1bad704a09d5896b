"""Where a model runs (WebGPU or wasm) and in which dtype, and when it moves from WebGPU to wasm.

- :func:`choose_device`: ``webgpu`` only with a real GPU (a software adapter does not count: it runs
  WebGPU code correctly but slower than wasm), else ``wasm``;
- :func:`choose_dtype`: the manifest's default dtype (chosen by measurement), unless the device has too
  little memory or storage for it, or a real GPU with ``shader-f16`` and an ``fp16`` variant exist; a chat
  model on a phone-class device (:func:`phone_class`) takes its largest variant under
  :data:`PHONE_CHAT_BYTES`;
- :func:`phone_class`: whether the device is phone-class (memory at most :data:`PHONE_MEMORY_GB`, or unknown;
  or free storage under :data:`PHONE_STORAGE_BYTES`), and why;
- :func:`choose_ort_runtime`: which ONNX Runtime Web build the worker loads, and whether models run in
  ONNX Runtime's proxy worker (off the Python worker's thread) or in the Python worker itself;
- :class:`Devices`: the device of each model for one worker: pinned by the caller, or chosen as above,
  and demoted to wasm for good once WebGPU failed for it (:meth:`Devices.retry_on_wasm` is the rule the
  runtime asks). Transformers.js never recovers from a failed WebGPU session creation in a worker, so
  WebGPU is not even tried without an adapter: such a model is demoted at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hybrid_router.capabilities import Capabilities
from hybrid_router.errors import InferenceError, LocalError, ModelLoadError
from hybrid_router.manifest import ModelEntry

__all__ = [
    "DEVICES",
    "MEMORY_SHARE",
    "ORT_BUILDS",
    "PHONE_CHAT_BYTES",
    "PHONE_MEMORY_GB",
    "PHONE_STORAGE_BYTES",
    "Devices",
    "OrtRuntime",
    "choose_device",
    "choose_dtype",
    "choose_ort_runtime",
    "fits_memory",
    "phone_class",
    "uses_webgpu",
]

DEVICES = ("wasm", "webgpu")
_MB = 1e6
#: a model may take at most this share of the device's memory (navigator.deviceMemory is capped at 8 GB)
MEMORY_SHARE = 0.5
#: a device reporting at most this much memory (``navigator.deviceMemory``, GB) is phone-class
PHONE_MEMORY_GB = 4.0
#: ... and so is one with less free storage than this (a chat model could not be kept)
PHONE_STORAGE_BYTES = 1_000_000_000
#: a phone-class device's chat model downloads less than this (the seed: a phone with 3 GB of memory should
#: use models under 300 MB; a desktop can take a few GB)
PHONE_CHAT_BYTES = 300_000_000
_CHAT = "text-generation"


def phone_class(caps: Capabilities) -> tuple[bool, str]:
    """Whether the device is phone-class, and why, as a phrase ("2 GB of device memory (phone-class: ...)").

    Unknown memory (Firefox and Safari do not report ``navigator.deviceMemory``) counts as phone-class: a
    0.5B chat model needs about 2.5 GB, which such a device may not have.
    """
    mem, free = caps.device_memory_gb, caps.storage_free
    if mem is None:
        return True, "device memory unknown (this browser does not report it): treated as phone-class"
    if mem <= PHONE_MEMORY_GB:
        return True, f"{mem:g} GB of device memory (phone-class: {PHONE_MEMORY_GB:g} GB or less)"
    if free is not None and free < PHONE_STORAGE_BYTES:
        return True, (
            f"{free / _MB:.0f} MB of free storage (phone-class: under {PHONE_STORAGE_BYTES / _MB:.0f} MB)"
        )
    cores = f", {caps.hardware_concurrency} cores" if caps.hardware_concurrency else ""
    isolated = caps.cross_origin_isolated
    threads = ", cross-origin isolated" if isolated else ", not cross-origin isolated (one thread)"
    room = f", {free / _MB:.0f} MB of free storage" if free is not None else ""
    return False, f"{mem:g} GB of device memory{cores}{threads}{room} (desktop-class)"


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
    dtype, why = _measured_dtype(model, caps, cached)
    if _CHAT not in model.tasks or model.total_bytes(dtype) < PHONE_CHAT_BYTES:
        return dtype, why
    phone, device = phone_class(caps)
    under = [d for d in model.variants if model.total_bytes(d) < PHONE_CHAT_BYTES]
    if not phone or not under:
        return dtype, why  # a phone with no variant under the limit: the chat choice says it does not fit
    best = max(under, key=lambda d: (model.total_bytes(d), d))
    return best, (
        f"{device}: the largest variant under {PHONE_CHAT_BYTES / _MB:.0f} MB "
        f"({model.total_bytes(best) / _MB:.0f} MB instead of {model.total_bytes(dtype) / _MB:.0f} MB)"
    )


def _measured_dtype(model: ModelEntry, caps: Capabilities, cached: Sequence[str]) -> tuple[str, str]:
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


#: ONNX Runtime Web's builds (builder/pins.py ``ORT_BUILDS``): ``plain`` runs the wasm execution provider
#: only (14.3 MB; faster there: no asyncify instrumentation), ``asyncify`` (26.9 MB) and ``jspi`` (16.8 MB,
#: needs JS Promise Integration) the WebGPU one too
ORT_BUILDS = ("plain", "asyncify", "jspi")


@dataclass(frozen=True)
class OrtRuntime:
    """The ONNX Runtime Web build this worker loads, whether it runs in ONNX Runtime's proxy worker, and why.

    ``proxy``: sessions are created and run in a worker of ONNX Runtime's own (``env.wasm.proxy``), so a
    model's computation never holds the Python worker's thread: messages, cloud answers and cancellations
    are handled while it runs, and an embedding waits for one decoding step, not a whole generation.
    """

    build: str
    proxy: bool
    reason: str

    def to_wire(self) -> dict[str, Any]:
        return {"build": self.build, "proxy": self.proxy, "reason": self.reason}


def uses_webgpu(caps: Capabilities, pinned: str | None = None) -> bool:
    """Whether any model of this worker may run on WebGPU: the caller asked for it and the browser offers
    an adapter (a software one too: asked for), or nothing is pinned and the device has a real GPU."""
    if pinned is not None:
        return pinned == "webgpu" and caps.adapter
    return caps.real_gpu


def choose_ort_runtime(caps: Capabilities, pinned: str | None = None) -> OrtRuntime:
    """The ONNX Runtime build and where it runs, for a worker whose models :func:`choose_device` places
    (``pinned``: the caller's ``create({ device })``).

    - WebGPU in use: ``jspi`` where the browser has JS Promise Integration, else ``asyncify``; in the
      Python worker (ONNX Runtime's proxy worker cannot hand GPU tensors back, so the KV cache could not
      stay on the GPU between decoding steps).
    - Otherwise the ``plain`` build, which runs the wasm execution provider only, faster; in ONNX Runtime's
      proxy worker where this worker may start one from a same-origin file, else in the Python worker.
    """
    if uses_webgpu(caps, pinned):
        why = "WebGPU was asked for" if pinned else "a real GPU"
        if caps.jspi:
            return OrtRuntime(
                "jspi",
                False,
                f"{why}: the JSPI build (WebGPU and wasm; the browser has JS Promise Integration)",
            )
        return OrtRuntime("asyncify", False, f"{why}: the asyncify build (WebGPU and wasm; no JSPI here)")
    if not caps.nested_workers:
        return OrtRuntime(
            "plain", False, "no WebGPU: the plain wasm build, in this worker (it cannot start workers)"
        )
    if not caps.same_origin_runtime:
        return OrtRuntime(
            "plain",
            False,
            "no WebGPU: the plain wasm build, in this worker (the runtime is on another origin, and a "
            "worker made from it would be a blob:, which the Content-Security-Policy refuses)",
        )
    return OrtRuntime("plain", True, "no WebGPU: the plain wasm build, in ONNX Runtime's proxy worker")


class Devices:
    """The device of each model in one worker (see the module docstring). ``pinned``: the caller's
    ``create({ device })`` for every model; None: chosen per model from ``caps``."""

    def __init__(self, caps: Capabilities, pinned: str | None = None) -> None:
        self.caps = caps
        self.pinned = pinned
        #: the ONNX Runtime build every model of this worker runs on, and where
        self.runtime = choose_ort_runtime(caps, pinned)
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
