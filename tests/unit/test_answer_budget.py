"""Answers are not cut silently: each side's default output budget (the device 512, the cloud 1024), and
``finish_reason`` ("stop" / "length") on the result, the stream's last item and the route, for both
sides, whole and streamed, from the real OpenAI-compatible and Anthropic providers over MockTransport."""

from __future__ import annotations

import asyncio
import json
from contextlib import aclosing
from typing import Any

from tests.unit.fakes import FakeCloud, FakeRuntime, as_runtime, fake_manifest

from hybrid_router import wire
from hybrid_router.chat import DEFAULT_MAX_TOKENS_CLOUD, DEFAULT_MAX_TOKENS_LOCAL, ChatRequest
from hybrid_router.protocol import CallContext
from hybrid_router.providers import AnthropicProvider, OpenAICompatProvider
from hybrid_router.retry import RetryPolicy
from hybrid_router.router import Router
from hybrid_router.transport import MockTransport, Request, Response

SIMPLE = "Say hello."
LONG_REPLY = "one two three four five six seven eight nine ten"


async def no_sleep(_: float) -> None:
    return None


def router(runtime: Any = None, cloud: Any = None) -> Router:
    return Router(as_runtime(runtime or FakeRuntime()), fake_manifest(), cloud=cloud or FakeCloud())


async def last_item(r: Router, prompt: str, **kwargs: Any) -> dict[str, Any]:
    async with aclosing(r.stream(prompt, **kwargs)) as items:
        return [item async for item in items][-1]


def test_each_side_has_a_default_budget_that_fits_an_ordinary_answer() -> None:
    assert (DEFAULT_MAX_TOKENS_LOCAL, DEFAULT_MAX_TOKENS_CLOUD) == (512, 1024)
    request = ChatRequest.parse(SIMPLE)
    assert request.max_tokens is None
    assert (request.max_tokens_for("local"), request.max_tokens_for("cloud")) == (512, 1024)
    given = ChatRequest.parse(SIMPLE, max_tokens=64)
    assert (given.max_tokens_for("local"), given.max_tokens_for("cloud")) == (64, 64)
    runtime, cloud = FakeRuntime(), FakeCloud()
    r = router(runtime, cloud)
    local = asyncio.run(r.generate(SIMPLE, route="local")).route
    remote = asyncio.run(r.generate(SIMPLE, route="cloud")).route
    assert runtime.generate_calls[0].max_new_tokens == 512 and local.max_tokens == 512
    assert cloud.calls[0]["max_tokens"] == 1024 and remote.max_tokens == 1024


def test_a_device_answer_cut_at_its_budget_says_length_whole_streamed_and_on_the_wire() -> None:
    r = router(FakeRuntime(reply=LONG_REPLY))
    cut = asyncio.run(r.generate(SIMPLE, max_tokens=3, route="local"))
    assert cut.text == "one two three " and cut.finish_reason == "length"
    assert (cut.route.finish_reason, cut.route.max_tokens) == ("length", 3)
    done = asyncio.run(last_item(r, SIMPLE, max_tokens=3, route="local"))
    assert done["finish_reason"] == done["route"]["finish_reason"] == "length"
    whole = asyncio.run(r.generate(SIMPLE, max_tokens=50, route="local"))
    assert whole.finish_reason == whole.route.finish_reason == "stop"

    async def call() -> Any:
        table = dict(wire.handlers(r))
        ctx = CallContext(1, "generate", lambda message: None)
        return await table["generate"]({"prompt": SIMPLE, "max_tokens": 3, "route": "local"}, ctx)

    out = asyncio.run(call())
    assert out["finish_reason"] == out["route"]["finish_reason"] == "length"
    assert out["route"]["max_tokens"] == 3


class Unsaid(FakeRuntime):
    """A runtime that does not say how its answer ended."""

    async def generate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        out = await super().generate(*args, **kwargs)
        return {"text": out["text"], "tokens_out": out["tokens_out"]}


def test_a_device_answer_without_a_finish_reason_is_judged_by_its_budget() -> None:
    r = router(Unsaid(reply=LONG_REPLY))
    assert asyncio.run(r.generate(SIMPLE, max_tokens=3, route="local")).route.finish_reason == "length"
    assert asyncio.run(r.generate(SIMPLE, max_tokens=30, route="local")).route.finish_reason == "stop"


def _openai(finish: str) -> tuple[OpenAICompatProvider, MockTransport]:
    def handler(request: Request) -> Response:
        if request.json_body.get("stream"):
            events = [
                {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": "Cut "}}]},
                {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]},
                {
                    "id": "c",
                    "model": "m",
                    "choices": [],
                    "usage": {"prompt_tokens": 9, "completion_tokens": 2},
                },
            ]
            body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
            return Response(200, {"content-type": "text/event-stream"}, [body + b"data: [DONE]\n\n"])
        return Response(
            200,
            {"content-type": "application/json"},
            json.dumps(
                {
                    "id": "c",
                    "model": "m",
                    "choices": [{"index": 0, "message": {"content": "Cut "}, "finish_reason": finish}],
                    "usage": {"prompt_tokens": 9, "completion_tokens": 2},
                }
            ).encode(),
        )

    transport = MockTransport(handler)
    retry = RetryPolicy(sleep=no_sleep, random=lambda: 0.0)
    return OpenAICompatProvider(
        transport, model="m", base_url="https://relay.test/v1", retry=retry
    ), transport


def test_a_cloud_answer_cut_at_its_budget_says_length_whole_and_streamed() -> None:
    cloud, transport = _openai("length")
    r = router(cloud=cloud)
    whole = asyncio.run(r.generate(SIMPLE, route="cloud", max_tokens=2))
    assert whole.finish_reason == whole.route.finish_reason == "length" and whole.route.max_tokens == 2
    done = asyncio.run(last_item(r, SIMPLE, route="cloud", max_tokens=2))
    assert done["finish_reason"] == done["route"]["finish_reason"] == "length"
    assert [q.json_body["max_tokens"] for q in transport.requests] == [2, 2]
    ended, _ = _openai("stop")
    assert asyncio.run(router(cloud=ended).generate(SIMPLE, route="cloud")).route.finish_reason == "stop"


def test_an_anthropic_stream_that_hit_max_tokens_says_length() -> None:
    start = {"id": "m1", "model": "claude", "usage": {"input_tokens": 5, "output_tokens": 1}}
    text = {"type": "text_delta", "text": "Cut"}
    events = [
        ("message_start", {"type": "message_start", "message": start}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": text}),
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 2}},
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    body = "".join(f"event: {n}\ndata: {json.dumps(d)}\n\n" for n, d in events).encode()
    transport = MockTransport(lambda request: Response(200, {}, body))
    retry = RetryPolicy(sleep=no_sleep, random=lambda: 0.0)
    cloud = AnthropicProvider(transport, model="claude", base_url="https://relay.test", retry=retry)
    done = asyncio.run(last_item(router(cloud=cloud), SIMPLE, route="cloud", max_tokens=2))
    assert done["finish_reason"] == done["route"]["finish_reason"] == "length"
