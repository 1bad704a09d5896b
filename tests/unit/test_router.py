import json
from typing import Any

import numpy as np
from tests.unit.fakes import FakeRuntime, fake_manifest

import hybrid_router
from hybrid_router import Dispatcher, Router


class Sent(list[dict[str, Any]]):
    def __call__(self, message: dict[str, Any]) -> None:
        json.dumps(message)
        self.append(message)

    def reply(self, call_id: Any) -> dict[str, Any]:
        (reply,) = [m for m in self if m["id"] == call_id and m["type"] in ("result", "error")]
        return reply


def make() -> tuple[Router, Dispatcher, Sent, FakeRuntime]:
    runtime = FakeRuntime()
    router = Router(runtime, fake_manifest())
    sent = Sent()
    return router, Dispatcher(router.handlers(), sent), sent, runtime


async def test_router_embed_runs_on_the_runtime():
    router, _, _, runtime = make()
    result = await router.embed(["a", "b"], model="fake-embed-cls", dtype="fp32")
    assert result.model == "fake-embed-cls" and result.vectors.shape[0] == 2
    assert runtime.calls[0].model == "fake-embed-cls"
    assert np.allclose(np.linalg.norm(result.vectors, axis=1), 1.0, atol=1e-6)


def test_handlers_are_the_wire_methods():
    router, _, _, _ = make()
    assert set(router.handlers()) == {"embed", "info"}


async def test_embed_over_the_wire_returns_vectors_and_progress():
    _, d, sent, _ = make()
    d.receive({"id": 1, "type": "call", "method": "embed", "params": {"texts": ["a", "b"], "model": None}})
    await d.drain()
    value = sent.reply(1)["value"]
    assert value["model"] == "fake-embed" and value["dtype"] == "q8"
    assert len(value["vectors"]) == 2 and len(value["vectors"][0]) == value["dims"]
    assert value["route"]["target"] == "local" and value["route"]["reason"] == "task-default"
    progress = [m for m in sent if m["type"] == "progress"]
    assert progress and progress[0]["id"] == 1 and progress[0]["event"]["model"] == "fake-embed"


async def test_embed_over_the_wire_validates_params():
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


async def test_info_lists_the_models_and_the_version():
    router, d, sent, _ = make()
    d.receive({"id": 1, "type": "call", "method": "info", "params": {}})
    await d.drain()
    value = sent.reply(1)["value"]
    assert value["version"] == hybrid_router.__version__ == "0.1.0"
    assert [m["id"] for m in value["models"]] == ["fake-embed", "fake-embed-cls", "fake-llm"]
    first = value["models"][0]
    assert first["tasks"] == ["feature-extraction"] and set(first["dtypes"]) == {"fp32", "q8"}
    assert first["default_dtype"] == "q8" and first["context_length"] == 256
    assert value == router.info()


def test_package_exports_are_sorted_and_present():
    assert hybrid_router.__all__ == sorted(hybrid_router.__all__)
    assert all(hasattr(hybrid_router, name) for name in hybrid_router.__all__)
