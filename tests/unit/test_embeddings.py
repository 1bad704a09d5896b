import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from tests.unit.fakes import FakeRuntime, as_runtime, fake_manifest, fake_manifest_dict, fake_vector

from hybrid_router.embeddings import EmbedResult
from hybrid_router.errors import InferenceError, ModelLoadError, ValidationError
from hybrid_router.manifest import Manifest, ModelEntry
from hybrid_router.router import Router
from hybrid_router.routing import EMBED, choose


async def embed(
    runtime: FakeRuntime,
    manifest: Manifest,
    texts: Any,
    *,
    model_id: Any = None,
    dtype: Any = None,
    on_progress: Any = None,
    clock: Callable[[], float] = time.perf_counter,
) -> EmbedResult:
    """One embedding call through the router (its request checked, planned, run, routed)."""
    router = Router(as_runtime(runtime), manifest, clock=clock)
    return await router.embed(texts, model=model_id, dtype=dtype, on_progress=on_progress)


def embedding_model(manifest: Manifest, model_id: str | None = None) -> ModelEntry:
    return choose(manifest, EMBED, model_id)


def ticking_clock(step: float = 0.25) -> Callable[[], float]:
    now = [100.0]

    def clock() -> float:
        now[0] += step
        return now[0]

    return clock


async def test_embed_returns_unit_float32_vectors_in_the_order_of_the_texts() -> None:
    runtime = FakeRuntime()
    texts = ["first", "second", "third"]
    result = await embed(runtime, fake_manifest(), texts)
    assert isinstance(result, EmbedResult)
    assert result.vectors.dtype == np.float32 and result.vectors.shape == (3, result.dims)
    assert np.allclose(np.linalg.norm(result.vectors, axis=1), 1.0, atol=1e-6)
    for row, text in zip(result.vectors, texts, strict=True):
        expected = fake_vector(text, "fake-embed")
        assert np.allclose(row, expected / np.linalg.norm(expected), atol=1e-6)
    assert runtime.calls[0].texts == texts


async def test_the_default_is_the_first_embedding_model_with_its_default_dtype_and_settings() -> None:
    runtime = FakeRuntime()
    result = await embed(runtime, fake_manifest(), ["a"])
    call = runtime.calls[0]
    assert (call.model, call.dtype, call.pooling, call.normalize) == ("fake-embed", "q8", "mean", True)
    assert (result.model, result.dtype) == ("fake-embed", "q8")


async def test_model_and_dtype_can_be_chosen() -> None:
    runtime = FakeRuntime()
    result = await embed(runtime, fake_manifest(), ["a"], model_id="fake-embed-cls", dtype="fp32")
    call = runtime.calls[0]
    assert (call.model, call.dtype, call.pooling, call.normalize) == ("fake-embed-cls", "fp32", "cls", False)
    assert (result.model, result.dtype, result.route.model, result.route.dtype) == (
        "fake-embed-cls",
        "fp32",
        "fake-embed-cls",
        "fp32",
    )
    assert np.allclose(np.linalg.norm(result.vectors, axis=1), 1.0, atol=1e-6)


async def test_route_records_a_local_task_default_decision_and_the_latency() -> None:
    result = await embed(FakeRuntime(), fake_manifest(), ["a"], clock=ticking_clock(0.25))
    route = result.route
    assert (route.target, route.reason, route.model) == ("local", "task-default", "fake-embed")
    assert route.rule == "embeddings run on the device"
    assert route.ms == pytest.approx(250.0)
    assert route.cost_usd == 0.0 and route.fallbacks == ()


async def test_progress_events_reach_the_callback() -> None:
    events: list[dict[str, Any]] = []
    runtime = FakeRuntime(
        progress_events=[{"status": "initiate", "file": "a"}, {"status": "done", "file": "a"}]
    )
    await embed(runtime, fake_manifest(), ["a"], on_progress=events.append)
    assert [e["status"] for e in events] == ["initiate", "done"] and events[0]["model"] == "fake-embed"


async def test_to_wire_is_plain_json_with_the_documented_keys() -> None:
    result = await embed(FakeRuntime(), fake_manifest(), ["a", "b"])
    wire = result.to_wire()
    assert set(wire) == {"vectors", "dims", "model", "dtype", "route"}
    assert len(wire["vectors"]) == 2 and len(wire["vectors"][0]) == wire["dims"] == result.dims
    assert all(type(x) is float for x in wire["vectors"][0])
    assert wire["route"]["target"] == "local"
    assert json.loads(json.dumps(wire)) == wire


@pytest.mark.parametrize("texts", [[], "a", ["a", 1], None])
async def test_bad_texts_are_refused_before_the_runtime_runs(texts: Any) -> None:
    runtime = FakeRuntime()
    with pytest.raises(ValidationError):
        await embed(runtime, fake_manifest(), texts)
    assert runtime.calls == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"model_id": "fake-llm"}, "model"),
        ({"model_id": "missing"}, "model"),
        ({"model_id": 3}, "model"),
        ({"dtype": "fp16"}, None),
        ({"dtype": ""}, "dtype"),
    ],
)
async def test_bad_model_or_dtype_is_a_validation_error(kwargs: dict[str, Any], field: str | None) -> None:
    runtime = FakeRuntime()
    with pytest.raises(ValidationError) as info:
        await embed(runtime, fake_manifest(), ["a"], **kwargs)
    if field:
        assert info.value.details["field"] == field
    assert runtime.calls == []


async def test_a_model_that_is_not_an_embedder_says_so_and_lists_the_embedders() -> None:
    with pytest.raises(ValidationError) as info:
        await embed(FakeRuntime(), fake_manifest(), ["a"], model_id="fake-llm")
    assert "does not compute embeddings" in info.value.message
    assert "fake-embed" in info.value.hint and "fake-llm" not in info.value.hint


def test_embedding_model_without_any_embedder_in_the_manifest() -> None:
    data = fake_manifest_dict()
    data["models"] = [m for m in data["models"] if "feature-extraction" not in m["tasks"]]
    with pytest.raises(ValidationError, match="no embedding model"):
        embedding_model(Manifest.from_dict(data))


async def test_unexpected_runtime_errors_are_wrapped_as_inference_errors() -> None:
    boom = RuntimeError("device lost")
    with pytest.raises(InferenceError) as info:
        await embed(FakeRuntime(fail=boom), fake_manifest(), ["a"])
    assert info.value.__cause__ is boom
    assert "device lost" in info.value.message and info.value.details["model"] == "fake-embed"


async def test_router_errors_from_the_runtime_pass_through_unwrapped() -> None:
    err = ModelLoadError("404 on model.onnx")
    with pytest.raises(ModelLoadError) as info:
        await embed(FakeRuntime(fail=err), fake_manifest(), ["a"])
    assert info.value is err


async def test_cancellation_propagates_untouched() -> None:
    runtime = FakeRuntime(gate=asyncio.Event())
    task = asyncio.create_task(embed(runtime, fake_manifest(), ["a"]))
    await runtime.started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled() and runtime.cancelled


async def test_a_cancelled_error_raised_by_the_runtime_is_not_wrapped() -> None:
    with pytest.raises(asyncio.CancelledError):
        await embed(FakeRuntime(fail=asyncio.CancelledError()), fake_manifest(), ["a"])


@pytest.mark.parametrize(
    "output",
    [
        np.zeros((1, 8), dtype=np.float32),  # one row for two texts
        np.zeros((2, 3, 8), dtype=np.float32),  # token embeddings: pooling missing
        np.zeros((2, 0), dtype=np.float32),
        [["a", "b"], ["c", "d"]],
    ],
)
async def test_a_wrong_output_shape_is_an_inference_error(output: object) -> None:
    with pytest.raises(InferenceError):
        await embed(FakeRuntime(output=output), fake_manifest(), ["a", "b"])


async def test_non_finite_output_is_an_inference_error() -> None:
    output = np.ones((1, 4), dtype=np.float32)
    output[0, 2] = np.nan
    with pytest.raises(InferenceError, match="non-finite"):
        await embed(FakeRuntime(output=output), fake_manifest(), ["a"])


async def test_float64_output_is_returned_as_unit_float32_and_zero_rows_stay_zero() -> None:
    output = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float64)
    result = await embed(FakeRuntime(output=output), fake_manifest(), ["a", "b"])
    assert result.vectors.dtype == np.float32
    assert np.allclose(result.vectors, [[0.6, 0.8], [0.0, 0.0]])
    assert result.dims == 2


async def test_many_long_texts_go_to_the_model_in_bounded_batches_and_come_back_in_order() -> None:
    from hybrid_router.embeddings import BATCH, BATCH_CHARS

    texts = [("word " * (1 + (i * 37) % 5000))[: 1 + (i * 37) % 20000] for i in range(1024)]
    runtime = FakeRuntime()
    result = await embed(runtime, fake_manifest(), texts)
    assert len(runtime.calls) > 1024 // BATCH
    for call in runtime.calls:
        longest = max(len(t) for t in call.texts)
        assert len(call.texts) <= BATCH and (len(call.texts) == 1 or len(call.texts) * longest <= BATCH_CHARS)
    assert sorted(t for c in runtime.calls for t in c.texts) == sorted(texts)
    for row, text in zip(result.vectors, texts, strict=True):
        expected = fake_vector(text, "fake-embed")
        assert np.allclose(row, expected / np.linalg.norm(expected), atol=1e-6)
