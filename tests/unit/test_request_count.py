"""Every request of a task is counted in the ledger exactly once, however it ends: answered, refused at
the wire, failed, cancelled while running, cancelled before its handler began, refused as busy.
(The load test in the browser checks the same sum under faults: the ledger's count equals the requests.)"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.unit.fakes import FakeRuntime, as_runtime, fake_manifest
from tests.unit.test_protocol import Sent

from hybrid_router import wire
from hybrid_router.errors import ABORT_ERROR
from hybrid_router.protocol import Dispatcher
from hybrid_router.router import Router


def make(runtime: FakeRuntime | None = None, max_in_flight: int = 64) -> tuple[Router, Dispatcher, Sent]:
    router = Router(as_runtime(runtime or FakeRuntime()), fake_manifest())
    sent = Sent()
    d = Dispatcher(
        wire.handlers(router), sent, max_in_flight=max_in_flight, on_unstarted=wire.unstarted(router)
    )
    return router, d, sent


def counted(router: Router) -> dict[str, int]:
    stats = router.stats()
    return {task: row["requests"] for task, row in stats["by_task"].items()}


async def test_answered_and_refused_calls_are_counted_once_each() -> None:
    router, d, sent = make()
    d.receive({"id": 1, "type": "call", "method": "embed", "params": {"texts": ["a", "b"]}})
    d.receive({"id": 2, "type": "call", "method": "embed", "params": {"texts": ["a"], "colour": "red"}})
    d.receive({"id": 3, "type": "call", "method": "embed", "params": {"texts": 7}})
    d.receive({"id": 4, "type": "call", "method": "generate", "params": {"prompt": "hi", "max_tokens": -1}})
    d.receive(
        {"id": 5, "type": "call", "method": "generate", "params": {"prompt": "Say hi.", "max_tokens": 4}}
    )
    d.receive({"id": 6, "type": "call", "method": "stats", "params": {}})  # not a task: not counted
    await d.drain()
    assert sent.reply(1)["type"] == "result" and sent.reply(5)["type"] == "result"
    assert [sent.reply(i)["error"]["name"] for i in (2, 3, 4)] == ["ValidationError"] * 3
    assert counted(router) == {"feature-extraction": 3, "text-generation": 2}
    assert router.stats()["requests"] == 5


async def test_a_failing_model_is_counted_once_not_at_the_wire_and_again_in_the_executor() -> None:
    router, d, sent = make(FakeRuntime(fail=RuntimeError("the model broke")))
    d.receive({"id": 1, "type": "call", "method": "embed", "params": {"texts": ["a"]}})
    await d.drain()
    assert sent.reply(1)["error"]["name"] == "InferenceError"
    assert counted(router) == {"feature-extraction": 1}


async def test_cancelled_while_running_and_before_starting_are_both_counted() -> None:
    runtime = FakeRuntime(gate=asyncio.Event())
    router, d, sent = make(runtime)
    d.receive({"id": 1, "type": "call", "method": "embed", "params": {"texts": ["a"]}})
    await runtime.started.wait()
    d.receive({"id": 1, "type": "cancel"})
    # a cancel right behind its call: the handler never begins (the dispatcher still hears of it)
    d.receive({"id": 2, "type": "call", "method": "classify", "params": {"text": "x", "labels": ["a", "b"]}})
    d.receive({"id": 2, "type": "cancel"})
    await d.drain()
    assert sent.reply(1)["error"]["name"] == ABORT_ERROR and sent.reply(2)["error"]["name"] == ABORT_ERROR
    assert counted(router) == {"feature-extraction": 1, "text-classification": 1}
    assert router.stats()["errors"] == 2


async def test_calls_refused_as_busy_are_counted() -> None:
    runtime = FakeRuntime(gate=asyncio.Event())
    router, d, sent = make(runtime, max_in_flight=2)
    for i in range(5):
        d.receive({"id": i, "type": "call", "method": "embed", "params": {"texts": [f"t{i}"]}})
    assert [sent.reply(i)["error"]["name"] for i in (2, 3, 4)] == ["BusyError"] * 3
    assert runtime.gate is not None
    runtime.gate.set()
    await d.drain()
    assert counted(router) == {"feature-extraction": 5}


async def test_index_calls_count_as_vector_search() -> None:
    from hybrid_router.vector_index import MemoryIndexStore

    router = Router(as_runtime(FakeRuntime()), fake_manifest(), index_store=MemoryIndexStore())
    sent = Sent()
    d = Dispatcher(wire.handlers(router), sent, on_unstarted=wire.unstarted(router))
    calls: list[tuple[str, dict[str, Any]]] = [
        ("index_add", {"name": "n", "ids": ["a"], "texts": ["alpha"]}),
        ("index_search", {"name": "n", "query": "alpha"}),
        ("index_search", {"name": "n", "query": "alpha", "top_k": "ten"}),  # refused: counted too
    ]
    for i, (method, params) in enumerate(calls):
        d.receive({"id": i, "type": "call", "method": method, "params": params})
        await d.drain()
    assert sent.reply(2)["type"] == "error"
    assert counted(router) == {"vector-search": 3}
