"""The device's chat model: chosen per device (phone-class or desktop) over the manifest's text-generation
models, or named by a call or the policy; the route and ``info()`` say which and why.

The manifests are built here (sizes as the real ones: SmolLM2-135M q4 ~100 MB / fp32 541 MB, 1 GB of memory;
Qwen2.5-Coder-0.5B q4 ~490 MB, ~2.5 GB of memory), so the tests hold whatever the real manifest lists.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.fakes import FakeCloud, FakeRuntime, as_runtime

from hybrid_router.capabilities import Capabilities, merged_facts
from hybrid_router.errors import ModelLoadError, ModelNotReadyError, ValidationError
from hybrid_router.manifest import Manifest
from hybrid_router.router import Router
from hybrid_router.routing import Devices, choose_dtype
from hybrid_router.routing.recommend import choose_chat_model, recommend

SMOL = "SmolLM2-135M-Instruct"
QWEN = "Qwen2.5-Coder-0.5B-Instruct"
MB = 1_000_000
GB = 1_000_000_000
_SHA = "0" * 64


def _model(
    mid: str, tasks: list[str], memory_mb: int, variants: dict[str, int], default: str
) -> dict[str, Any]:
    return {
        "id": mid,
        "tasks": tasks,
        "hf_id": f"test/{mid}",
        "license": "apache-2.0",
        "context_length": 8192 if "text-generation" in tasks else 256,
        "memory_mb": memory_mb,
        "min_device": "wasm",
        "default_dtype": default,
        "dtype_reason": "measured.",
        "source": {
            "kind": "pypi",
            "package": "w",
            "version": "1",
            "sha256": _SHA,
            "path": mid,
            "weights": "m",
            "weights_sha256": _SHA,
        },
        "conversion": {"recipe": "test"},
        "files": {"config.json": {"size": 1000, "sha256": _SHA}},
        "variants": {
            dtype: {"files": {f"onnx/model_{dtype}.onnx": {"size": size, "sha256": _SHA}}}
            for dtype, size in variants.items()
        },
        "pooling": "mean" if "feature-extraction" in tasks else None,
        "normalize": True if "feature-extraction" in tasks else None,
    }


def smol(**variants: int) -> dict[str, Any]:
    return _model(SMOL, ["text-generation"], 1000, variants or {"fp32": 541 * MB, "q4": 100 * MB}, "q4")


def qwen(**variants: int) -> dict[str, Any]:
    return _model(QWEN, ["text-generation"], 2500, variants or {"fp32": 1976 * MB, "q4": 490 * MB}, "q4")


def manifest(*models: dict[str, Any], not_built: list[dict[str, Any]] | None = None) -> Manifest:
    embed = _model("embed", ["feature-extraction"], 250, {"fp32": 90 * MB}, "fp32")
    listed = list(models) if models else [smol(), qwen()]
    data: dict[str, Any] = {"schema": 1, "models": [embed, *listed]}
    if not_built is not None:
        data["not_built"] = not_built
    return Manifest.from_dict(data)


def caps(memory: float | None, *, free: int | None = 50 * GB, cores: int = 8) -> Capabilities:
    facts: dict[str, Any] = {"device_memory_gb": memory, "hardware_concurrency": cores}
    if free is not None:
        facts["storage"] = {"usage": 0, "quota": free}
    return Capabilities.from_facts(facts)


DESKTOP = caps(8)
PHONE = caps(4)


def test_a_desktop_gets_the_05b_model_when_it_fits() -> None:
    choice = choose_chat_model(manifest(), DESKTOP)
    assert choice.model is not None and choice.model.id == QWEN
    assert choice.dtype == "q4" and not choice.phone and choice.named is None
    assert "desktop-class" in choice.reason and "largest chat model that fits" in choice.reason
    assert "8 GB of device memory, 8 cores, not cross-origin isolated (one thread)" in choice.reason


def test_a_desktop_gets_smollm2_where_the_05b_model_is_not_in_this_deployment() -> None:
    """The served manifest lists a model the server has not built under not_built: never chosen."""
    building = [{"id": QWEN, "tasks": ["text-generation"], "state": "running", "progress": 0.5}]
    m = manifest(smol(), not_built=building)
    choice = choose_chat_model(m, DESKTOP)
    assert choice.model is not None and choice.model.id == SMOL
    with pytest.raises(ModelNotReadyError) as info:
        choose_chat_model(m, DESKTOP, named=QWEN)
    assert info.value.details["model"] == QWEN


def test_a_desktop_gets_smollm2_when_the_bigger_model_does_not_fit_its_memory() -> None:
    big = _model(QWEN, ["text-generation"], 5000, {"q4": 490 * MB}, "q4")
    choice = choose_chat_model(manifest(smol(), big), DESKTOP)
    assert choice.model is not None and choice.model.id == SMOL
    assert f"{QWEN} does not fit" in choice.reason and "5000 MB of memory" in choice.reason


def test_a_phone_gets_a_chat_model_under_300_mb_and_says_why() -> None:
    choice = choose_chat_model(manifest(), PHONE)
    assert choice.model is not None and choice.model.id == SMOL and choice.dtype == "q4"
    assert choice.phone and "4 GB of device memory (phone-class" in choice.reason
    assert f"{QWEN} does not fit" in choice.reason and "300 MB a phone-class device takes" in choice.reason


def test_little_storage_makes_a_device_phone_class() -> None:
    choice = choose_chat_model(manifest(), caps(8, free=600 * MB))
    assert choice.model is not None and choice.model.id == SMOL and choice.phone
    assert "600 MB of free storage (phone-class" in choice.reason


def test_unknown_memory_counts_as_phone_class() -> None:
    choice = choose_chat_model(manifest(), Capabilities())
    assert choice.model is not None and choice.model.id == SMOL
    assert "device memory unknown" in choice.reason


def test_a_phone_with_no_chat_model_under_300_mb_gets_no_local_chat_and_why() -> None:
    only_fp32 = smol(fp32=541 * MB)
    only_fp32["default_dtype"] = "fp32"
    choice = choose_chat_model(manifest(only_fp32), caps(2))
    assert choice.model is None and choice.dtype is None
    assert choice.reason.startswith("no local chat: no chat model fits this device (2 GB of device memory")
    assert "541 MB" in choice.reason


def test_a_phone_takes_the_largest_variant_under_300_mb_of_a_chat_model() -> None:
    three = smol(fp32=541 * MB, q8=180 * MB, q4=100 * MB)
    three["default_dtype"] = "fp32"
    entry = manifest(three).model(SMOL)
    dtype, why = choose_dtype(entry, PHONE)
    assert dtype == "q8" and "largest variant under 300 MB" in why
    assert choose_dtype(entry, DESKTOP)[0] == "fp32"  # a desktop keeps the measured default
    assert choose_chat_model(manifest(three), PHONE).dtype == "q8"


def test_a_call_or_the_policy_names_the_model() -> None:
    m = manifest()
    named = choose_chat_model(m, DESKTOP, named=SMOL)
    assert named.model is not None and named.model.id == SMOL and named.named == "call"
    assert "named by the call's model option" in named.reason
    by_policy = choose_chat_model(m, DESKTOP, named=SMOL, by="policy")
    assert by_policy.named == "policy" and "the policy's chat_model" in by_policy.reason


def test_an_unknown_or_unfit_model_is_a_validation_error_with_a_hint() -> None:
    with pytest.raises(ValidationError) as unknown:
        choose_chat_model(manifest(), DESKTOP, named="gpt-17")
    assert unknown.value.details["field"] == "model" and SMOL in (unknown.value.hint or "")
    with pytest.raises(ValidationError) as not_chat:
        choose_chat_model(manifest(), DESKTOP, named="embed")
    assert "does not generate text" in not_chat.value.message
    with pytest.raises(ValidationError) as unfit:
        choose_chat_model(manifest(), PHONE, named=QWEN, by="policy")
    assert "does not fit this device" in unfit.value.message and "300 MB" in unfit.value.message
    assert unfit.value.details["field"] == "chat_model" and f"Name one that fits ({SMOL})" in (
        unfit.value.hint or ""
    )


def test_recommend_puts_the_device_chat_model_first_and_marks_the_unfit() -> None:
    phone = recommend(manifest(), PHONE, "text-generation")
    assert [(r.model, r.usable) for r in phone] == [(SMOL, True), (QWEN, False)]
    assert phone[0].reasons[0].startswith("the device's chat model:")
    assert any("300 MB a phone-class device takes" in why for why in phone[1].reasons)
    desktop = recommend(manifest(), DESKTOP, "text-generation")
    assert [(r.model, r.usable) for r in desktop] == [(QWEN, True), (SMOL, True)]


def router(m: Manifest, device: Capabilities, **kwargs: Any) -> tuple[Router, FakeRuntime]:
    runtime = FakeRuntime()
    return Router(as_runtime(runtime), m, devices=Devices(device), **kwargs), runtime


async def test_the_route_names_the_chosen_model_dtype_and_why() -> None:
    r, runtime = router(manifest(), DESKTOP)
    result = await r.generate("What is the capital of France?", route="local")
    assert (result.route.model, result.route.dtype) == (QWEN, "q4")
    assert runtime.generate_calls[-1].model == QWEN
    assert result.route.chat_model is not None and result.route.chat_model["model"] == QWEN
    assert "largest chat model that fits" in result.route.chat_model["why"]
    assert r.info()["chat"]["model"] == QWEN and r.info()["chat"]["device_class"] == "desktop"


async def test_a_call_names_the_model_for_generate_stream_and_the_dry_run() -> None:
    r, runtime = router(manifest(), DESKTOP)
    result = await r.generate("Hi there", route="local", model=SMOL)
    assert result.route.model == SMOL and runtime.generate_calls[-1].model == SMOL
    assert result.route.chat_model is not None and result.route.chat_model["named"] == "call"
    items = [item async for item in r.stream("Hi there", route="local", model=SMOL)]
    assert items[-1]["route"]["model"] == SMOL and runtime.generate_calls[-1].model == SMOL
    dry = await r.route("Hi there", route="local", model=SMOL)
    assert dry["model"] == SMOL and dry["dtype"] == "q4" and dry["chat_model"]["named"] == "call"
    with pytest.raises(ValidationError):
        await r.generate("Hi there", model="gpt-17")


async def test_the_policy_names_the_model_and_configure_checks_it_at_once() -> None:
    r, runtime = router(manifest(), PHONE)
    with pytest.raises(ValidationError) as unfit:
        r.configure(chat_model=QWEN)
    assert "does not fit this device" in unfit.value.message
    assert r.policy.chat_model is None  # nothing changed
    r.configure(chat_model=SMOL)
    result = await r.generate("Hi there", route="local")
    assert result.route.model == SMOL and result.route.chat_model is not None
    assert result.route.chat_model["named"] == "policy"
    desktop, _ = router(manifest(), DESKTOP)
    per_call = await desktop.generate("Hi there", route="local", policy={"chat_model": SMOL})
    assert per_call.route.model == SMOL


async def test_no_local_chat_sends_the_request_to_the_cloud_and_the_route_says_why() -> None:
    only_fp32 = smol(fp32=541 * MB)
    only_fp32["default_dtype"] = "fp32"
    r, runtime = router(manifest(only_fp32), caps(2), cloud=FakeCloud())
    result = await r.generate("What is the capital of France?")
    assert result.route.target == "cloud" and result.route.reason == "local-unavailable"
    assert "no chat model fits this device (2 GB of device memory" in result.route.rule
    assert not runtime.generate_calls
    alone, _ = router(manifest(only_fp32), caps(2))
    with pytest.raises(ModelLoadError) as failed:
        await alone.generate("What is the capital of France?")
    assert "no chat model fits this device" in failed.value.message


async def test_the_chat_model_is_chosen_again_when_the_server_builds_one() -> None:
    r, _ = router(manifest(smol()), DESKTOP)
    assert r.info()["chat"]["model"] == SMOL
    r.use_manifest(manifest())
    assert r.info()["chat"]["model"] == QWEN


def test_simulated_capabilities_override_the_probe_and_say_so() -> None:
    probed = {"device_memory_gb": 8, "storage": {"usage": 10, "quota": 50 * GB}, "hardware_concurrency": 2}
    facts = merged_facts(probed, {"device_memory_gb": 2, "storage": {"quota": 500 * MB}})
    device = Capabilities.from_facts(facts)
    assert device.device_memory_gb == 2 and device.storage_quota == 500 * MB and device.storage_usage == 10
    assert device.simulated == ("device_memory_gb", "storage.quota")
    assert device.to_wire()["simulated"] == ["device_memory_gb", "storage.quota"]
    assert merged_facts(probed, None) == probed


async def test_the_response_cache_keeps_the_answers_of_each_chat_model_apart() -> None:
    """A call or a policy that names another chat model is not answered with another model's answer."""
    from hybrid_router.response_cache import CacheConfig, MemoryResponseStore, ResponseCache

    store = MemoryResponseStore()
    cache = ResponseCache(CacheConfig(similarity=0.9), store)
    runtime = FakeRuntime()
    ner = _model("ner", ["token-classification"], 150, {"q8": 24 * MB}, "q8")  # answers get checked, so kept
    m = manifest(smol(), qwen(), ner)
    r = Router(as_runtime(runtime), m, devices=Devices(DESKTOP), response_cache=cache)
    first = await r.generate("What is the capital of France?", route="local")
    assert first.route.model == QWEN
    again = await r.generate("What is the capital of France?", route="local")
    assert again.route.target == "cache"  # the same model: the cache answers
    named = await r.generate("What is the capital of France?", route="local", model=SMOL)
    assert named.route.target == "local" and named.route.model == SMOL
    r.configure(chat_model=SMOL)  # the policy's model: the call's own params do not say it
    by_policy = await r.generate("What is the capital of France?", route="local")
    assert by_policy.route.target == "local" and by_policy.route.model == SMOL  # not Qwen's cached answer
