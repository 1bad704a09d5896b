"""Generation with the real OpenAI-compatible provider over MockTransport (retries, SSE, failures)."""

import json
from contextlib import aclosing
from typing import Any

import pytest
from tests.unit.fakes import FakeRuntime, fake_manifest, generate_with, stream_with

from hybrid_router.chat import DEFAULT_MAX_TOKENS_CLOUD
from hybrid_router.errors import CloudError
from hybrid_router.ledger import Ledger
from hybrid_router.providers import OpenAICompatProvider
from hybrid_router.retry import RetryPolicy
from hybrid_router.routing import Policy
from hybrid_router.transport import MockTransport, Request, Response

COMPLEX = "If 3x + 7 = 22 and y = 2x - 4, compute x*y + 17/3 - 2^5 and the sum 12+45+78+91."


class Prices:
    class _Price:
        def cost(self, tokens_in: int, tokens_out: int) -> float:
            return (tokens_in * 0.15 + tokens_out * 0.60) / 1e6

    def price_for(self, model: str | None) -> Any:
        return self._Price()


async def no_sleep(_: float) -> None:
    return None


def provider(handler: Any) -> tuple[OpenAICompatProvider, MockTransport]:
    transport = MockTransport(handler)
    retry = RetryPolicy(sleep=no_sleep, random=lambda: 0.0)
    return OpenAICompatProvider(
        transport, model="gpt-4o-mini", base_url="https://relay.test/v1", retry=retry
    ), transport


def kwargs(cloud: OpenAICompatProvider, runtime: FakeRuntime, ledger: Ledger) -> dict[str, Any]:
    return {
        "runtime": runtime,
        "manifest": fake_manifest(),
        "cloud": cloud,
        "policy": Policy(),
        "ledger": ledger,
    }


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"


def chunk(content: str | None, finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "c1",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}],
    }


async def test_a_complex_prompt_streams_from_the_provider_with_usage_and_cost() -> None:
    def handler(request: Request) -> Response:
        body = sse(
            chunk("Two "),
            chunk("answers."),
            chunk(None, "stop"),
            {
                "id": "c1",
                "model": "gpt-4o-mini",
                "choices": [],
                "usage": {"prompt_tokens": 30, "completion_tokens": 2},
            },
        )
        return Response(200, {"content-type": "text/event-stream"}, [body])

    cloud, transport = provider(handler)
    runtime, ledger = FakeRuntime(), Ledger(Prices())
    async with aclosing(stream_with({"prompt": COMPLEX}, **kwargs(cloud, runtime, ledger))) as chunks:
        items = [item async for item in chunks]
    *deltas, done = items
    assert [d["delta"] for d in deltas] == ["Two ", "answers."]
    assert done["route"]["target"] == "cloud" and done["usage"] == {"tokens_in": 30, "tokens_out": 2}
    assert done["route"]["cost_usd"] == pytest.approx((30 * 0.15 + 2 * 0.60) / 1e6)
    assert transport.requests[0].json_body["max_tokens"] == DEFAULT_MAX_TOKENS_CLOUD  # the cloud's default
    assert done["finish_reason"] == done["route"]["finish_reason"] == "stop"
    assert done["route"]["max_tokens"] == DEFAULT_MAX_TOKENS_CLOUD
    assert runtime.generate_calls == []


async def test_an_unreachable_relay_is_retried_then_the_device_answers() -> None:
    def handler(request: Request) -> Response:
        raise ConnectionRefusedError("connection refused")

    cloud, transport = provider(handler)
    runtime, ledger = FakeRuntime(), Ledger(Prices())
    result = await generate_with({"prompt": COMPLEX}, **kwargs(cloud, runtime, ledger))
    assert len(transport.requests) == 3  # the first attempt and 2 retries
    assert (result.route.target, result.route.reason) == ("local", "fallback")
    assert result.route.fallbacks[0].error_name == "OfflineError"
    assert ledger.stats()["fallbacks"] == 1 and ledger.stats()["cloud_cost_usd"] == 0.0


async def test_a_server_error_after_retries_falls_back_but_a_bad_key_does_not() -> None:
    statuses = {"code": 500}

    def handler(request: Request) -> Response:
        return Response(
            statuses["code"],
            {"content-type": "application/json"},
            json.dumps({"error": {"message": "nope"}}).encode(),
        )

    cloud, transport = provider(handler)
    runtime, ledger = FakeRuntime(), Ledger(Prices())
    result = await generate_with({"prompt": COMPLEX}, **kwargs(cloud, runtime, ledger))
    assert result.route.target == "local" and result.route.fallbacks[0].message.startswith(
        "openai answered HTTP 500"
    )
    statuses["code"] = 401
    with pytest.raises(CloudError) as info:
        await generate_with({"prompt": COMPLEX}, **kwargs(cloud, runtime, ledger))
    assert info.value.details["status"] == 401
    assert len(runtime.generate_calls) == 1  # only the first request reached the device


async def test_a_stream_cut_after_text_is_an_error_not_a_fallback() -> None:
    def handler(request: Request) -> Response:
        return Response(
            200,
            {"content-type": "text/event-stream"},
            [b"data: " + json.dumps(chunk("Half ")).encode() + b"\n\n", ConnectionResetError()],
        )

    cloud, _ = provider(handler)
    runtime, ledger = FakeRuntime(), Ledger(Prices())
    received: list[dict[str, Any]] = []
    with pytest.raises(CloudError) as info:
        async with aclosing(stream_with({"prompt": COMPLEX}, **kwargs(cloud, runtime, ledger))) as chunks:
            async for item in chunks:
                received.append(item)
    assert received == [{"delta": "Half "}] and info.value.details["received_deltas"] == 1
    assert runtime.generate_calls == [] and ledger.stats()["errors"] == 1
