"""AnthropicProvider on MockTransport, with the Messages API's documented wire shapes
(https://docs.anthropic.com/en/api/messages and /en/docs/build-with-claude/streaming)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from hybrid_router.chat import ChatMessage
from hybrid_router.errors import CloudError, RateLimitError
from hybrid_router.providers import ANTHROPIC_VERSION, AnthropicProvider, Completion, Delta, Usage
from hybrid_router.retry import RetryPolicy
from hybrid_router.transport import MockTransport, Request, Response

BASE = "https://relay.test/anthropic"


def chat(messages: list[dict[str, Any]]) -> list[ChatMessage]:
    return [ChatMessage(m["role"], m["content"]) for m in messages]


MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello"},
    {"role": "assistant", "content": "Hello."},
    {"role": "system", "content": "Answer in French."},
    {"role": "user", "content": "Again"},
]

MESSAGE = {
    "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "Bonjour"}, {"type": "text", "text": " !"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 20,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 5,
        "output_tokens": 4,
        "service_tier": "standard",
    },
}

#: one server-sent event: its name and its JSON data
SSEEvent = tuple[str, dict[str, Any]]

STREAM: list[SSEEvent] = [
    (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY",
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": "claude-sonnet-4-5-20250929",
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 25,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": 1,
                },
            },
        },
    ),
    (
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ),
    ("ping", {"type": "ping"}),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Bon"}},
    ),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "jour 🥐"}},
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 15},
        },
    ),
    ("message_stop", {"type": "message_stop"}),
]
OVERLOADED: SSEEvent = (
    "error",
    {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
)


def sse(events: list[SSEEvent]) -> bytes:
    return "".join(
        f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n" for name, data in events
    ).encode()


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def make(
    handler: Callable[[Request], Any], *, api_key: str | None = None, sleeps: Sleeps | None = None
) -> tuple[AnthropicProvider, MockTransport]:
    transport = MockTransport(handler)
    retry = RetryPolicy(sleep=sleeps or Sleeps(), random=lambda: 0.0)
    provider = AnthropicProvider(
        transport, model="claude-sonnet-4-5", base_url=BASE, api_key=api_key, retry=retry
    )
    return provider, transport


def ok(body: Any) -> Callable[[Request], Response]:
    return lambda request: Response(200, {}, body)


async def collect(provider: AnthropicProvider) -> tuple[list[str], Completion]:
    items = [item async for item in provider.stream(chat(MESSAGES))]
    final = items[-1]
    assert isinstance(final, Completion) and all(isinstance(i, Delta) for i in items[:-1])
    return [i.text for i in items[:-1] if isinstance(i, Delta)], final


async def test_request_shape_without_key() -> None:
    provider, transport = make(ok(json.dumps(MESSAGE).encode()))
    await provider.complete(chat(MESSAGES), temperature=0.5, stop=["END"])
    request = transport.requests[0]
    assert request.url == BASE + "/v1/messages"
    assert request.json_body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "messages": [
            {"role": "user", "content": "Say hello"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Again"},
        ],
        "system": "You are terse.\n\nAnswer in French.",
        "temperature": 0.5,
        "stop_sequences": ["END"],
    }
    assert request.headers["anthropic-version"] == ANTHROPIC_VERSION == "2023-06-01"
    assert "x-api-key" not in request.headers and "authorization" not in request.headers


async def test_key_header_only_when_given_and_max_tokens_passed() -> None:
    provider, transport = make(ok(json.dumps(MESSAGE).encode()), api_key="sk-ant-test")
    await provider.complete(chat(MESSAGES[1:2]), max_tokens=50)
    request = transport.requests[0]
    assert request.headers["x-api-key"] == "sk-ant-test"
    assert request.json_body["max_tokens"] == 50 and "system" not in request.json_body


async def test_complete_reads_text_usage_and_stop_reason() -> None:
    provider, _ = make(ok(json.dumps(MESSAGE).encode()))
    completion = await provider.complete(chat(MESSAGES))
    assert completion == Completion(
        text="Bonjour !",
        usage=Usage(25, 4),
        model="claude-sonnet-4-5-20250929",
        finish_reason="stop",
        raw_id="msg_013Zva2CMHLNnXjNJJKqJ2EF",
    )


async def test_max_tokens_stop_reason_is_length() -> None:
    provider, _ = make(ok(json.dumps({**MESSAGE, "stop_reason": "max_tokens"}).encode()))
    assert (await provider.complete(chat(MESSAGES))).finish_reason == "length"


async def test_error_body_and_overloaded_retried() -> None:
    body = json.dumps(
        {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"},
            "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
        }
    ).encode()
    sleeps = Sleeps()
    provider, transport = make(
        lambda r: Response(529, {"request-id": "req_011CSHoEeqs5C35K2UUqR7Fy"}, body), sleeps=sleeps
    )
    with pytest.raises(CloudError) as info:
        await provider.complete(chat(MESSAGES))
    assert len(transport.requests) == 3 and sleeps.delays == [0.5, 1.0]
    assert info.value.message == "anthropic answered HTTP 529: Overloaded"
    assert info.value.details["error_type"] == "overloaded_error"
    assert info.value.details["request_id"] == "req_011CSHoEeqs5C35K2UUqR7Fy"


async def test_rate_limit_with_retry_after() -> None:
    body = json.dumps(
        {
            "type": "error",
            "error": {"type": "rate_limit_error", "message": "Number of request tokens has exceeded"},
        }
    ).encode()
    sleeps = Sleeps()
    provider, _ = make(lambda r: Response(429, {"retry-after": "12"}, body), sleeps=sleeps)
    with pytest.raises(RateLimitError) as info:
        await provider.complete(chat(MESSAGES))
    assert sleeps.delays == [12.0, 12.0] and info.value.details["retry_after"] == 12.0


async def test_stream_deltas_then_completion_with_usage_from_start_and_delta() -> None:
    provider, transport = make(ok(sse(STREAM)))
    texts, completion = await collect(provider)
    assert transport.requests[0].json_body["stream"] is True
    assert texts == ["Bon", "jour 🥐"]
    assert completion == Completion(
        text="Bonjour 🥐",
        usage=Usage(25, 15),
        model="claude-sonnet-4-5-20250929",
        finish_reason="stop",
        raw_id="msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY",
    )


async def test_stream_split_into_tiny_chunks() -> None:
    data = sse(STREAM)
    provider, _ = make(ok([data[i : i + 3] for i in range(0, len(data), 3)]))
    texts, completion = await collect(provider)
    assert "".join(texts) == "Bonjour 🥐" and completion.usage == Usage(25, 15)


async def test_stream_skips_thinking_and_unknown_events() -> None:
    events: list[SSEEvent] = [
        STREAM[0],
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "hmm"},
            },
        ),
        ("future_event", {"type": "future_event", "x": 1}),
        *STREAM[3:],
    ]
    provider, _ = make(ok(sse(events)))
    texts, _ = await collect(provider)
    assert texts == ["Bon", "jour 🥐"]


async def test_stream_error_event_mid_stream() -> None:
    provider, transport = make(ok(sse([*STREAM[:4], OVERLOADED])))
    with pytest.raises(CloudError) as info:
        await collect(provider)
    assert "Overloaded" in info.value.message
    assert info.value.details["error_type"] == "overloaded_error"
    assert info.value.details["received_deltas"] == 1 and info.value.details["received_chars"] == 3
    assert len(transport.requests) == 1


async def test_stream_without_message_stop_is_cut_short() -> None:
    provider, _ = make(ok(sse(STREAM[:-1])))
    with pytest.raises(CloudError) as info:
        await collect(provider)
    assert "message_stop" in info.value.message and info.value.details["received_deltas"] == 2


async def test_stream_malformed_event_json() -> None:
    provider, _ = make(ok(sse(STREAM[:2]) + b"event: content_block_delta\ndata: {'type': oops}\n\n"))
    with pytest.raises(CloudError) as info:
        await collect(provider)
    assert "not valid JSON" in info.value.message and "Anthropic Messages" in info.value.hint


async def test_stream_connection_reset_is_a_cloud_error_not_retried() -> None:
    sleeps = Sleeps()
    provider, transport = make(ok([sse(STREAM[:4]), ConnectionResetError("reset")]), sleeps=sleeps)
    with pytest.raises(CloudError) as info:
        await collect(provider)
    assert type(info.value) is CloudError
    assert len(transport.requests) == 1 and sleeps.delays == []
    assert info.value.details["received_chars"] == 3 and info.value.details["cause"] == "OfflineError"


async def test_cancellation_closes_the_response() -> None:
    finalized: list[bool] = []

    async def body() -> AsyncIterator[bytes]:
        try:
            yield sse(STREAM[:4])
            await asyncio.Event().wait()
        finally:
            finalized.append(True)

    provider, transport = make(ok(body()))
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in provider.stream(chat(MESSAGES)):
            first.set()

    task = asyncio.create_task(consume())
    await first.wait()
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert transport.responses[0].is_closed and finalized == [True]
