import asyncio
import json
from contextlib import aclosing
from typing import Any

import numpy as np
import pytest
from tests.unit.fakes import FakeCloud, FakeRuntime, as_runtime, fake_manifest

import hybrid_router
from hybrid_router import Dispatcher, Router, wire
from hybrid_router.errors import InferenceError, PolicyError, ValidationError
from hybrid_router.routing import Policy


class Sent(list[dict[str, Any]]):
    def __call__(self, message: dict[str, Any]) -> None:
        json.dumps(message)
        self.append(message)

    def reply(self, call_id: Any) -> dict[str, Any]:
        (reply,) = [m for m in self if m["id"] == call_id and m["type"] in ("result", "error")]
        return reply


def make() -> tuple[Router, Dispatcher, Sent, FakeRuntime]:
    runtime = FakeRuntime()
    router = Router(as_runtime(runtime), fake_manifest())
    sent = Sent()
    return router, Dispatcher(wire.handlers(router), sent), sent, runtime


async def test_router_embed_runs_on_the_runtime() -> None:
    router, _, _, runtime = make()
    result = await router.embed(["a", "b"], model="fake-embed-cls", dtype="fp32")
    assert result.model == "fake-embed-cls" and result.vectors.shape[0] == 2
    assert runtime.calls[0].model == "fake-embed-cls"
    assert np.allclose(np.linalg.norm(result.vectors, axis=1), 1.0, atol=1e-6)


def test_handlers_are_the_wire_methods() -> None:
    router, _, _, _ = make()
    assert {"configure", "embed", "generate", "info", "stats", "stream", "transcribe"} <= set(
        wire.handlers(router)
    )


async def test_embed_over_the_wire_returns_vectors_and_progress() -> None:
    _, d, sent, _ = make()
    d.receive({"id": 1, "type": "call", "method": "embed", "params": {"texts": ["a", "b"], "model": None}})
    await d.drain()
    value = sent.reply(1)["value"]
    assert value["model"] == "fake-embed" and value["dtype"] == "q8"
    assert len(value["vectors"]) == 2 and len(value["vectors"][0]) == value["dims"]
    assert value["route"]["target"] == "local" and value["route"]["reason"] == "task-default"
    progress = [m for m in sent if m["type"] == "progress"]
    assert progress and progress[0]["id"] == 1 and progress[0]["event"]["model"] == "fake-embed"


async def test_embed_over_the_wire_validates_params() -> None:
    _, d, sent, runtime = make()
    d.receive({"id": 1, "type": "call", "method": "embed", "params": {"texts": []}})
    d.receive({"id": 2, "type": "call", "method": "embed", "params": {"texts": ["a", 3]}})
    d.receive({"id": 3, "type": "call", "method": "embed", "params": {"texts": "a"}})
    d.receive({"id": 4, "type": "call", "method": "embed", "params": {}})
    d.receive({"id": 5, "type": "call", "method": "embed", "params": {"text": ["a"]}})
    await d.drain()
    for call_id in range(1, 6):
        error = sent.reply(call_id)["error"]
        assert error["name"] == "ValidationError" and error["hint"], error
    assert sent.reply(5)["error"]["details"]["unknown"] == ["text"]
    assert runtime.calls == []


async def test_info_lists_the_models_and_the_version() -> None:
    router, d, sent, _ = make()
    d.receive({"id": 1, "type": "call", "method": "info", "params": {}})
    await d.drain()
    value = sent.reply(1)["value"]
    assert value["version"] == hybrid_router.__version__ == "0.1.0"
    assert [m["id"] for m in value["models"]] == ["fake-embed", "fake-embed-cls", "fake-llm"]
    assert value["cloud"] is None and value["policy"]["route"] == "auto" and "free" in value["tiers"]
    first = value["models"][0]
    assert first["tasks"] == ["feature-extraction"] and set(first["dtypes"]) == {"fp32", "q8"}
    assert first["default_dtype"] == "q8" and first["context_length"] == 256
    assert value == router.info()


def test_package_exports_are_sorted_and_present() -> None:
    assert hybrid_router.__all__ == sorted(hybrid_router.__all__)
    assert all(hasattr(hybrid_router, name) for name in hybrid_router.__all__)


SIMPLE = "Say hello."
COMPLEX = "If 3x + 7 = 22 and y = 2x - 4, compute x*y + 17/3 - 2^5 and the sum 12+45+78+91."


def make_hybrid(**kwargs: Any) -> tuple[Router, Dispatcher, Sent, FakeRuntime, FakeCloud]:
    runtime = kwargs.pop("runtime", FakeRuntime())
    cloud = kwargs.pop("cloud", FakeCloud())
    router = Router(runtime, fake_manifest(), cloud=cloud, **kwargs)
    sent = Sent()
    return router, Dispatcher(wire.handlers(router), sent), sent, runtime, cloud


async def test_generate_over_the_wire_returns_text_route_usage_and_progress() -> None:
    _, d, sent, _, cloud = make_hybrid()
    d.receive({"id": 1, "type": "call", "method": "generate", "params": {"prompt": SIMPLE, "max_tokens": 8}})
    await d.drain()
    value = sent.reply(1)["value"]
    assert value["text"] == "Hello from the device." and value["route"]["target"] == "local"
    assert value["usage"] == {"tokens_in": value["route"]["tokens_in"], "tokens_out": 4}
    assert [m["event"]["model"] for m in sent if m["type"] == "progress"][0] == "fake-llm"
    assert cloud.calls == []


async def test_stream_over_the_wire_sends_deltas_as_chunks_then_the_final_result() -> None:
    _, d, sent, _, _ = make_hybrid()
    d.receive({"id": 2, "type": "call", "method": "stream", "params": {"prompt": COMPLEX}})
    await d.drain()
    chunks = [m["value"] for m in sent if m["type"] == "chunk"]
    assert "".join(c["delta"] for c in chunks) == "Hello from the cloud." and all(m["id"] == 2 for m in sent)
    final = sent.reply(2)["value"]
    assert final["done"] is True and final["route"]["target"] == "cloud" and final["usage"]["tokens_out"] == 5
    # the final reply comes after every chunk
    assert sent.index(sent.reply(2)) > max(i for i, m in enumerate(sent) if m["type"] == "chunk")


async def test_cancelling_a_stream_over_the_wire_interrupts_the_device_and_is_counted() -> None:
    runtime = FakeRuntime(gate=asyncio.Event(), gate_texts=False, gate_after=1)
    router, d, sent, _, cloud = make_hybrid(runtime=runtime)
    d.receive({"id": 3, "type": "call", "method": "stream", "params": {"prompt": SIMPLE}})
    await runtime.started.wait()
    while not any(m["type"] == "chunk" for m in sent):
        await asyncio.sleep(0)
    d.receive({"id": 3, "type": "cancel"})
    await d.drain()
    assert sent.reply(3)["error"]["name"] == "AbortError"
    assert runtime.cancelled and cloud.calls == []
    assert router.stats()["errors"] == 1


async def test_stats_over_the_wire_count_requests_and_money() -> None:
    router, d, sent, _, _ = make_hybrid()
    await router.generate(SIMPLE)
    await router.generate(COMPLEX)
    with pytest.raises(ValidationError):
        await router.generate(SIMPLE, max_tokens=0)
    d.receive({"id": 4, "type": "call", "method": "stats", "params": {}})
    await d.drain()
    stats = sent.reply(4)["value"]
    assert (stats["requests"], stats["local"], stats["cloud"], stats["errors"]) == (3, 1, 1, 1)
    assert stats["cloud_cost_usd"] == pytest.approx((40 * 1.0 + 5 * 2.0) / 1e6)  # fake-gpt's price
    assert stats["saved_usd"] > 0 and stats == router.stats()


async def test_configure_changes_the_policy_checks_it_and_refuses_unknown_keys() -> None:
    router, d, sent, _, cloud = make_hybrid()
    d.receive(
        {
            "id": 5,
            "type": "call",
            "method": "configure",
            "params": {"privacy": "local-only", "daily_budget_usd": 2},
        }
    )
    d.receive({"id": 6, "type": "call", "method": "configure", "params": {"route": "cloud"}})
    d.receive({"id": 7, "type": "call", "method": "configure", "params": {"budget": 1}})
    await d.drain()
    assert sent.reply(5)["value"]["policy"]["privacy"] == "local-only"
    assert sent.reply(5)["value"]["policy"]["daily_budget_usd"] == 2.0
    assert sent.reply(6)["error"]["name"] == "PolicyError" and sent.reply(6)["error"]["hint"]
    assert sent.reply(7)["error"]["name"] == "ValidationError"
    assert router.policy == Policy(
        privacy="local-only", daily_budget_usd=2.0
    )  # refused changes left no trace
    result = await router.generate(COMPLEX)
    assert result.route.reason == "privacy" and cloud.calls == []


def test_configure_from_python() -> None:
    router, _, _, _, _ = make_hybrid()
    assert router.configure(tier="free").tier == "free"
    with pytest.raises(PolicyError):
        router.configure(route="cloud")
    with pytest.raises(ValidationError):
        router.configure(colour="blue")
    assert router.policy.tier == "free" and router.policy.route == "auto"


async def test_generate_over_the_wire_refuses_unknown_params_and_records_the_error() -> None:
    router, d, sent, runtime, _ = make_hybrid()
    d.receive({"id": 8, "type": "call", "method": "generate", "params": {"prompt": SIMPLE, "maxTokens": 5}})
    await d.drain()
    error = sent.reply(8)["error"]
    assert error["name"] == "ValidationError" and error["details"]["unknown"] == ["maxTokens"]
    assert runtime.generate_calls == [] and router.stats()["errors"] == 1


async def test_a_local_failure_over_the_wire_is_served_by_the_cloud_with_the_chain() -> None:
    runtime = FakeRuntime(generate_fail=InferenceError("out of memory"))
    _, d, sent, _, _ = make_hybrid(runtime=runtime)
    d.receive({"id": 9, "type": "call", "method": "generate", "params": {"prompt": SIMPLE}})
    await d.drain()
    route = sent.reply(9)["value"]["route"]
    assert route["target"] == "cloud" and route["reason"] == "fallback"
    assert route["fallbacks"] == [
        {"target": "local", "model": "fake-llm", "error_name": "InferenceError", "message": "out of memory"}
    ]


def test_info_describes_the_cloud_and_the_policy() -> None:
    router, _, _, _, _ = make_hybrid(cloud_label="llama-server on this machine", policy=Policy(tier="free"))
    info = router.info()
    assert info["cloud"] == {
        "kind": "fake-cloud",
        "model": "fake-gpt",
        "label": "llama-server on this machine",
    }
    assert info["policy"]["tier"] == "free"
    unlabelled, _, _, _, _ = make_hybrid()
    assert unlabelled.info()["cloud"]["label"] == "fake-cloud (fake-gpt)"
    json.dumps(info)


async def test_router_stream_and_generate_from_python() -> None:
    router, _, _, _, _ = make_hybrid()
    async with aclosing(router.stream(messages=[{"role": "user", "content": SIMPLE}], max_tokens=2)) as items:
        collected = [item async for item in items]
    assert collected[:-1] == [{"delta": "Hello "}, {"delta": "from "}] and collected[-1]["done"] is True
    result = await router.generate(COMPLEX, route="local", temperature=0.5)
    assert result.route.reason == "explicit" and result.route.target == "local"


async def test_one_call_at_a_time_per_model_and_a_cancelled_call_leaves_the_queue() -> None:
    gate = asyncio.Event()
    runtime = FakeRuntime(gate=gate)
    router = Router(as_runtime(runtime), fake_manifest())
    first = asyncio.create_task(router.embed(["a"]))
    await runtime.started.wait()
    queued = asyncio.create_task(router.embed(["b"]))
    third = asyncio.create_task(router.embed(["c"]))
    for _ in range(20):
        await asyncio.sleep(0)
    assert [c.texts for c in runtime.calls] == [["a"]]  # the others wait for the model
    queued.cancel()
    gate.set()
    await first
    await third
    assert [c.texts for c in runtime.calls] == [["a"], ["c"]]
    assert queued.cancelled()


async def test_calls_over_the_in_flight_cap_are_refused_with_busy_error() -> None:
    gate = asyncio.Event()
    runtime = FakeRuntime(gate=gate)
    sent = Sent()
    d = Dispatcher(wire.handlers(Router(as_runtime(runtime), fake_manifest())), sent, max_in_flight=2)
    for i in (1, 2, 3):
        d.receive({"id": i, "type": "call", "method": "embed", "params": {"texts": [str(i)]}})
    await asyncio.sleep(0)
    assert sent.reply(3)["error"]["name"] == "BusyError" and sent.reply(3)["error"]["hint"]
    gate.set()
    await d.drain()
    assert sent.reply(1)["type"] == sent.reply(2)["type"] == "result"
