"""Capabilities, device/dtype choice and recommendations: pure functions over probed facts."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.fake_store import BASE, FakeStore, manifest

from hybrid_router import wire
from hybrid_router.capabilities import Capabilities
from hybrid_router.errors import StorageError, ValidationError
from hybrid_router.manifest import Manifest
from hybrid_router.model_cache import ModelCache
from hybrid_router.model_manager import ModelManager, adapt_manifest
from hybrid_router.protocol import CallContext, Handler
from hybrid_router.router import Router
from hybrid_router.routing import Devices, choose_device, choose_dtype
from hybrid_router.routing.devices import ORT_BUILDS, choose_ort_runtime
from hybrid_router.routing.recommend import recommend

GB = 1024**3
SWIFTSHADER = {
    "api": True,
    "adapter": True,
    "fallback": True,
    "features": ["float32-filterable"],
    "max_buffer_size": GB,
    "info": {"vendor": "google", "architecture": "swiftshader"},
}
REAL_GPU = {
    "api": True,
    "adapter": True,
    "fallback": False,
    "features": ["shader-f16", "timestamp-query"],
    "max_buffer_size": 4 * GB,
    "max_storage_buffer_binding_size": 2 * GB,
    "info": {"vendor": "nvidia"},
}


def facts(
    gpu: dict[str, Any] | None = None, memory: float | None = 8, free: int | None = 10 * GB, **extra: Any
) -> dict[str, Any]:
    storage = {"usage": 0, "quota": free, "persisted": False} if free is not None else {}
    return {
        "webgpu": gpu or {"api": True, "adapter": False},
        "device_memory_gb": memory,
        "hardware_concurrency": 4,
        "cross_origin_isolated": True,
        "storage": storage,
        "online": True,
        **extra,
    }


def big_manifest() -> Manifest:
    """alpha with an fp32 (default, large) and q8 variant, a GPU-only model, and an 8 GB model."""
    m = manifest()
    alpha = m.model("alpha")
    import dataclasses

    gpu_only = dataclasses.replace(m.model("beta"), id="gpu-only", min_device="webgpu")
    huge = dataclasses.replace(m.model("beta"), id="huge", memory_mb=8000)
    return dataclasses.replace(m, models=(alpha, m.model("beta"), gpu_only, huge))


def test_a_software_fallback_adapter_is_not_a_gpu() -> None:
    caps = Capabilities.from_facts(facts(SWIFTSHADER))
    assert caps.adapter and caps.fallback_adapter and not caps.real_gpu and not caps.shader_f16
    assert caps.to_wire()["webgpu"]["kind"] == "fallback (software)"
    assert choose_device(manifest().model("alpha"), caps) == "wasm"
    real = Capabilities.from_facts(facts(REAL_GPU))
    assert real.real_gpu and real.shader_f16 and real.max_buffer_size == 4 * GB
    assert choose_device(manifest().model("alpha"), real) == "webgpu"
    none = Capabilities.from_facts(facts())
    assert not none.adapter and none.to_wire()["webgpu"]["kind"] == "none"


RUNTIME = {"jspi": False, "nested_workers": True, "same_origin_runtime": True}


@pytest.mark.parametrize(
    ("gpu", "runtime", "pinned", "build", "proxy"),
    [
        # no GPU (or only a software adapter): the plain wasm build, in ONNX Runtime's proxy worker
        (None, RUNTIME, None, "plain", True),
        (SWIFTSHADER, RUNTIME, None, "plain", True),
        (REAL_GPU, RUNTIME, "wasm", "plain", True),
        # WebGPU asked for without an adapter: every model is demoted to wasm at once
        (None, RUNTIME, "webgpu", "plain", True),
        # the proxy worker needs a worker that may start workers, from a same-origin file
        (None, {**RUNTIME, "nested_workers": False}, None, "plain", False),
        (None, {**RUNTIME, "same_origin_runtime": False}, None, "plain", False),
        # WebGPU in use: a build with the WebGPU execution provider, in this worker (GPU tensors stay there)
        (REAL_GPU, RUNTIME, None, "asyncify", False),
        (REAL_GPU, {**RUNTIME, "jspi": True}, None, "jspi", False),
        (SWIFTSHADER, {**RUNTIME, "jspi": True}, "webgpu", "jspi", False),
    ],
)
def test_the_onnx_runtime_build_follows_the_device(
    gpu: dict[str, Any] | None, runtime: dict[str, bool], pinned: str | None, build: str, proxy: bool
) -> None:
    caps = Capabilities.from_facts(facts(gpu, runtime=runtime))
    choice = choose_ort_runtime(caps, pinned)
    assert (choice.build, choice.proxy) == (build, proxy), choice.reason
    assert choice.build in ORT_BUILDS and choice.reason
    assert Devices(caps, pinned=pinned).runtime == choice
    # whichever build is loaded can run every model where the routing places it
    model = manifest().model("alpha")
    device = Devices(caps, pinned=pinned).device_of(model)
    assert device == "wasm" or choice.build != "plain"
    assert caps.to_wire()["runtime"] == {k: runtime.get(k, False) for k in RUNTIME}


def test_without_the_runtime_facts_models_run_in_the_worker() -> None:
    """An older worker.js (no ``runtime`` facts): nothing says the proxy worker can start: not used."""
    choice = choose_ort_runtime(Capabilities.from_facts(facts()))
    assert (choice.build, choice.proxy) == ("plain", False)


def test_malformed_or_missing_facts_are_unknown() -> None:
    caps = Capabilities.from_facts({"webgpu": "yes", "device_memory_gb": "8", "storage": None, "online": 1})
    assert caps == Capabilities()
    assert Capabilities.from_facts(None).storage_free is None


def test_dtype_is_the_measured_default_unless_memory_or_storage_say_otherwise() -> None:
    alpha = manifest().model("alpha")  # default fp32 (63 bytes), q8 35 bytes
    assert choose_dtype(alpha, Capabilities.from_facts(facts()))[0] == "fp32"
    low_storage = Capabilities.from_facts(facts(free=40))
    dtype, why = choose_dtype(alpha, low_storage)
    assert dtype == "q8" and "storage" in why
    assert choose_dtype(alpha, low_storage, cached=["fp32"])[0] == "fp32"  # already stored: no download
    import dataclasses

    heavy = dataclasses.replace(alpha, memory_mb=3000)
    dtype, why = choose_dtype(heavy, Capabilities.from_facts(facts(memory=4)))
    assert dtype == "q8" and "memory" in why


def test_recommend_filters_by_gpu_memory_and_storage_and_ranks_with_reasons() -> None:
    m = big_manifest()
    caps = Capabilities.from_facts(facts(SWIFTSHADER, memory=8))
    recs = {r.model: r for r in recommend(m, caps, "feature-extraction")}
    assert not recs["gpu-only"].usable and "software adapter" in " ".join(recs["gpu-only"].reasons)
    assert not recs["huge"].usable and "memory" in " ".join(recs["huge"].reasons)
    assert recs["alpha"].usable and recs["beta"].usable
    ordered = [r.model for r in recommend(m, caps, "feature-extraction")]
    assert ordered[:2] == ["alpha", "beta"] and set(ordered[2:]) == {"gpu-only", "huge"}
    cached = [r.model for r in recommend(m, caps, "feature-extraction", cached={"beta": ["fp32"]})]
    assert cached[0] == "beta"  # no download beats manifest order
    with_gpu = {
        r.model: r for r in recommend(m, Capabilities.from_facts(facts(REAL_GPU)), "feature-extraction")
    }
    assert with_gpu["gpu-only"].usable and with_gpu["gpu-only"].device == "webgpu"
    wire = with_gpu["alpha"].to_wire()
    assert set(wire) >= {"model", "usable", "device", "dtype", "download_bytes", "cached", "reasons"}
    with pytest.raises(ValidationError):
        recommend(m, caps, "translation")


def test_adapt_manifest_sets_each_default_dtype_for_the_device() -> None:
    adapted, choices = adapt_manifest(manifest(), Capabilities.from_facts(facts(free=40)))
    assert adapted.model("alpha").default_dtype == "q8" and choices["alpha"]["dtype"] == "q8"
    assert adapted.model("beta").default_dtype == "fp32" and choices["beta"]["device"] == "wasm"


class Ctx(CallContext):
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        super().__init__(1, "preload", lambda m: self.events.append(m["event"]))


async def test_manager_wire_methods() -> None:
    store = FakeStore()
    cache = ModelCache(manifest(), store, base_url=BASE, chunk_bytes=10)
    mgr = ModelManager(
        manifest(),
        cache,
        Capabilities.from_facts(facts()),
        estimate=lambda: _const({"usage": 5, "quota": 100}),
        devices=Devices(Capabilities.from_facts(facts())),
    )
    h = manager_handlers(mgr)
    ctx = Ctx()
    summary = await h["preload"]({"models": ["beta", {"id": "alpha", "dtype": "q8"}]}, ctx)
    assert summary["models"] == [{"id": "beta", "dtype": "fp32"}, {"id": "alpha", "dtype": "q8"}]
    assert ctx.events[-1] == {"status": "progress_total", "loaded": 82, "total": 82, "progress": 100.0}
    listed = await h["cached_models"]({}, ctx)
    assert [m["id"] for m in listed] == ["alpha", "beta"]
    caps = await h["capabilities"]({}, ctx)
    assert (
        caps["storage"] == {"usage": 5, "quota": 100, "free": 95, "persisted": False}
        and caps["cache"] is True
    )
    recs = await h["recommend_models"]({"task": "feature-extraction"}, ctx)
    assert {r["model"]: r["cached"] for r in recs} == {
        "alpha": False,
        "beta": True,
    }  # alpha's default fp32 is not
    assert (await h["delete_model"]({"model": "beta"}, ctx))["files"] == 2
    assert [e["kind"] for e in await h["cache_events"]({}, ctx)] == ["deleted"]
    assert (await h["configure_cache"]({"budget_bytes": 0}, ctx))["evicted"] == ["alpha"]
    bad: dict[str, Any]
    for bad in (
        {"models": []},
        {"models": ["nope"]},
        {"models": ["alpha"], "dtype": "int3"},
        {"modelz": ["a"]},
    ):
        with pytest.raises(ValidationError):
            await h["preload"](bad, ctx)
    assert mgr.devices is not None and mgr.devices.device_of(mgr.manifest.model("alpha")) == "wasm"


def manager_handlers(mgr: ModelManager) -> dict[str, Handler]:
    """The model-management wire methods of a router built on ``mgr``."""
    from tests.unit.fakes import FakeRuntime, as_runtime

    handlers = wire.handlers(Router(as_runtime(FakeRuntime()), mgr.manifest, models=mgr))
    return {name: handlers[name] for name in wire.MODEL_METHODS}


async def test_without_indexeddb_the_cache_methods_say_so() -> None:
    mgr = ModelManager(manifest(), None, Capabilities.from_facts(facts()))
    h = manager_handlers(mgr)
    assert await h["cached_models"]({}, Ctx()) == []
    with pytest.raises(StorageError):
        await h["preload"]({"models": ["alpha"]}, Ctx())


async def _const(value: dict[str, Any]) -> dict[str, Any]:
    return value


async def test_the_router_serves_the_manager_methods_and_fills_route_device() -> None:
    from tests.unit.fakes import FakeRuntime, as_runtime, fake_manifest

    from hybrid_router import Dispatcher

    m = fake_manifest()
    gpu = Capabilities.from_facts(facts(REAL_GPU))
    mgr = ModelManager(m, None, gpu, devices=Devices(gpu))
    router = Router(as_runtime(FakeRuntime()), m, models=mgr)
    handlers = wire.handlers(router)
    assert {"preload", "cached_models", "delete_model", "capabilities", "recommend_models"} <= set(handlers)
    sent: list[dict[str, Any]] = []
    dispatcher = Dispatcher(handlers, sent.append)
    dispatcher.receive({"id": 1, "type": "call", "method": "embed", "params": {"texts": ["a"]}})
    await dispatcher.drain()
    (reply,) = [x for x in sent if x["type"] == "result"]
    assert reply["value"]["route"]["device"] == "webgpu"
    # without a manager: the tasks only
    assert set(wire.handlers(Router(as_runtime(FakeRuntime()), m))) < set(handlers)
