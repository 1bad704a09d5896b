"""OpenAICompatProvider on MockTransport, with the wire shapes of OpenAI and llama.cpp's llama-server.

The fixtures follow the documented shapes: OpenAI's API reference for ``chat.completion`` and
``chat.completion.chunk`` (with ``stream_options.include_usage``: a last chunk with ``"choices": []``),
and llama-server's ``to_json_oaicompat_chat[_stream]`` in ``tools/server/server-task.cpp`` (first delta
``content: null``, an empty-delta chunk with the finish reason, then the usage chunk with ``timings``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from hybrid_router.chat import ChatMessage
from hybrid_router.errors import CloudError, CloudTimeoutError, RateLimitError
from hybrid_router.providers import Completion, Delta, OpenAICompatProvider, Usage
from hybrid_router.retry import RetryPolicy
from hybrid_router.transport import MockTransport, Request, Response

BASE = "https://relay.test/openai/v1"


def chat(messages: list[dict[str, Any]]) -> list[ChatMessage]:
    return [ChatMessage(m["role"], m["content"]) for m in messages]


MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]

OPENAI_COMPLETION = {
    "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
    "object": "chat.completion",
    "created": 1741570283,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello!", "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 19,
        "completion_tokens": 3,
        "total_tokens": 22,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": "fp_06737a9306",
}

TIMINGS = {
    "cache_n": 0,
    "prompt_n": 21,
    "prompt_ms": 41.2,
    "prompt_per_token_ms": 1.96,
    "prompt_per_second": 509.7,
    "predicted_n": 9,
    "predicted_ms": 70.8,
    "predicted_per_token_ms": 7.87,
    "predicted_per_second": 127.1,
}

LLAMA_COMPLETION = {
    "choices": [
        {
            "finish_reason": "length",
            "index": 0,
            "message": {"role": "assistant", "content": "Hello! How can I help"},
        }
    ],
    "created": 1760000000,
    "model": "smollm2-135m-instruct",
    "system_fingerprint": "b6700-1a2b3c4d",
    "object": "chat.completion",
    "usage": {
        "completion_tokens": 9,
        "prompt_tokens": 21,
        "total_tokens": 30,
        "prompt_tokens_details": {"cached_tokens": 0},
    },
    "id": "chatcmpl-4nZ1zQ2xY",
    "timings": TIMINGS,
}


def openai_chunk(
    content: str | None = None,
    *,
    role: bool = False,
    finish: str | None = None,
    usage: dict[str, Any] | None = None,
    choices: bool = True,
) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if role:
        delta["role"] = "assistant"
    if content is not None:
        delta["content"] = content
    return {
        "id": "chatcmpl-123",
        "object": "chat.completion.chunk",
        "created": 1694268190,
        "model": "gpt-4o-mini-2024-07-18",
        "service_tier": "default",
        "system_fingerprint": "fp_44709d6fcb",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        if choices
        else [],
        "usage": usage,
    }


OPENAI_STREAM = [
    openai_chunk("", role=True),
    openai_chunk("Hel"),
    openai_chunk("lo "),
    openai_chunk("wörld 🎉"),
    openai_chunk(finish="stop"),
    openai_chunk(
        choices=False,
        usage={
            "prompt_tokens": 19,
            "completion_tokens": 4,
            "total_tokens": 23,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
    ),
]


def llama_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "choices": [{"finish_reason": finish, "index": 0, "delta": delta}],
        "created": 1760000000,
        "id": "chatcmpl-4nZ1zQ2xY",
        "model": "smollm2-135m-instruct",
        "system_fingerprint": "b6700-1a2b3c4d",
        "object": "chat.completion.chunk",
    }


LLAMA_STREAM = [
    llama_chunk({"role": "assistant", "content": None}),
    llama_chunk({"content": "Hello"}),
    llama_chunk({"content": "!"}),
    llama_chunk({}, finish="stop"),
    {
        "choices": [],
        "created": 1760000000,
        "id": "chatcmpl-4nZ1zQ2xY",
        "model": "smollm2-135m-instruct",
        "system_fingerprint": "b6700-1a2b3c4d",
        "object": "chat.completion.chunk",
        "usage": {
            "completion_tokens": 2,
            "prompt_tokens": 21,
            "total_tokens": 23,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
        "timings": TIMINGS,
    },
]


def sse(events: list[dict[str, Any]], *, done: bool = True) -> bytes:
    text = "".join(f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events)
    return (text + ("data: [DONE]\n\n" if done else "")).encode()


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def make(
    handler: Callable[[Request], Any], *, api_key: str | None = None, sleeps: Sleeps | None = None
) -> tuple[OpenAICompatProvider, MockTransport]:
    transport = MockTransport(handler)
    retry = RetryPolicy(sleep=sleeps or Sleeps(), random=lambda: 0.0)
    provider = OpenAICompatProvider(
        transport, model="gpt-4o-mini", base_url=BASE + "/", api_key=api_key, retry=retry, timeout=30
    )
    return provider, transport


def ok_json(payload: object) -> Callable[[Request], Response]:
    return lambda request: Response(200, {"content-type": "application/json"}, json.dumps(payload).encode())


def ok_stream(body: Any) -> Callable[[Request], Response]:
    return lambda request: Response(200, {"content-type": "text/event-stream"}, body)


async def collect(provider: OpenAICompatProvider, **kwargs: Any) -> tuple[list[str], Completion]:
    items = [item async for item in provider.stream(chat(MESSAGES), **kwargs)]
    assert all(isinstance(i, Delta) for i in items[:-1]) and isinstance(items[-1], Completion)
    return [i.text for i in items[:-1] if isinstance(i, Delta)], items[-1]


# -- requests --------------------------------------------------------------------------------------


async def test_complete_request_shape_without_key() -> None:
    provider, transport = make(ok_json(OPENAI_COMPLETION))
    await provider.complete(chat(MESSAGES), max_tokens=64, temperature=0.2, stop=["\n\n"])
    request = transport.requests[0]
    assert (request.method, request.url) == ("POST", BASE + "/chat/completions")
    assert request.json_body == {
        "model": "gpt-4o-mini",
        "messages": MESSAGES,
        "max_tokens": 64,
        "temperature": 0.2,
        "stop": ["\n\n"],
    }
    assert "authorization" not in request.headers  # the relay adds the key in the browser
    assert request.headers["content-type"] == "application/json"
    assert request.timeout == 30


async def test_key_sent_as_bearer_when_given_and_timeout_per_call() -> None:
    provider, transport = make(ok_json(OPENAI_COMPLETION), api_key="sk-test")
    await provider.complete(chat(MESSAGES), timeout=5)
    assert transport.requests[0].headers["Authorization"] == "Bearer sk-test"
    assert transport.requests[0].timeout == 5


async def test_stream_request_asks_for_usage() -> None:
    provider, transport = make(ok_stream(sse(OPENAI_STREAM)))
    await collect(provider)
    body = transport.requests[0].json_body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert transport.requests[0].headers["accept"] == "text/event-stream"


# -- non-streaming answers -------------------------------------------------------------------------


async def test_complete_reads_text_usage_and_ids() -> None:
    provider, _ = make(ok_json(OPENAI_COMPLETION))
    completion = await provider.complete(chat(MESSAGES))
    assert completion == Completion(
        text="Hello!",
        usage=Usage(19, 3),
        model="gpt-4o-mini-2024-07-18",
        finish_reason="stop",
        raw_id="chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
    )


async def test_complete_llama_server_with_timings() -> None:
    provider, _ = make(ok_json(LLAMA_COMPLETION))
    completion = await provider.complete(chat(MESSAGES))
    assert (completion.text, completion.usage, completion.finish_reason) == (
        "Hello! How can I help",
        Usage(21, 9),
        "length",
    )


async def test_complete_without_usage_reports_none() -> None:
    payload = {**OPENAI_COMPLETION}
    del payload["usage"]
    provider, _ = make(ok_json(payload))
    assert (await provider.complete(chat(MESSAGES))).usage is None


async def test_complete_not_json_is_a_cloud_error_with_hint() -> None:
    provider, _ = make(lambda r: Response(200, {"content-type": "text/html"}, b"<html>Bad gateway</html>"))
    with pytest.raises(CloudError) as info:
        await provider.complete(chat(MESSAGES))
    assert "not valid JSON" in info.value.message and "<html>" in info.value.message
    assert "OpenAI chat completions" in info.value.hint


async def test_complete_wrong_shape_is_a_cloud_error() -> None:
    provider, _ = make(ok_json({"object": "list", "data": []}))
    with pytest.raises(CloudError) as info:
        await provider.complete(chat(MESSAGES))
    assert "unexpected shape" in info.value.message and info.value.details["malformed"]


async def test_error_body_is_surfaced_and_400_not_retried() -> None:
    body = {
        "error": {
            "message": "Incorrect API key provided: sk-abc***. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    provider, transport = make(
        lambda r: Response(401, {"content-type": "application/json"}, json.dumps(body).encode())
    )
    with pytest.raises(CloudError) as info:
        await provider.complete(chat(MESSAGES))
    assert "Incorrect API key provided" in info.value.message
    assert info.value.details["error_code"] == "invalid_api_key" and info.value.details["status"] == 401
    assert len(transport.requests) == 1


async def test_500_then_success_and_429_rate_limit() -> None:
    answers = [
        Response(500, body=b'{"error":{"message":"The server had an error"}}'),
        Response(200, body=json.dumps(OPENAI_COMPLETION).encode()),
    ]
    sleeps = Sleeps()
    provider, transport = make(lambda r: answers.pop(0), sleeps=sleeps)
    assert (await provider.complete(chat(MESSAGES))).text == "Hello!"
    assert len(transport.requests) == 2 and sleeps.delays == [0.5]

    sleeps = Sleeps()
    provider, transport = make(lambda r: Response(429, {"retry-after": "2"}, b"{}"), sleeps=sleeps)
    with pytest.raises(RateLimitError) as info:
        await provider.complete(chat(MESSAGES))
    assert sleeps.delays == [2.0, 2.0] and info.value.details["retry_after"] == 2.0


async def test_timeout_becomes_cloud_timeout_after_retries() -> None:
    def handler(request: Request) -> Response:
        raise TimeoutError

    provider, transport = make(handler)
    with pytest.raises(CloudTimeoutError) as info:
        await provider.complete(chat(MESSAGES))
    assert len(transport.requests) == 3
    assert info.value.details["provider"] == "openai" and info.value.details["model"] == "gpt-4o-mini"


# -- streaming -------------------------------------------------------------------------------------


async def test_stream_openai_deltas_then_completion_with_usage() -> None:
    provider, _ = make(ok_stream(sse(OPENAI_STREAM)))
    texts, completion = await collect(provider)
    assert texts == ["Hel", "lo ", "wörld 🎉"]
    assert completion == Completion(
        text="Hello wörld 🎉",
        usage=Usage(19, 4),
        model="gpt-4o-mini-2024-07-18",
        finish_reason="stop",
        raw_id="chatcmpl-123",
    )


@pytest.mark.parametrize("size", [1, 5, 64, 100_000])
async def test_stream_any_chunking_gives_the_same_result(size: int) -> None:
    provider, _ = make(ok_stream(split(sse(OPENAI_STREAM), size)))
    texts, completion = await collect(provider)
    assert "".join(texts) == "Hello wörld 🎉" and completion.usage == Usage(19, 4)


async def test_stream_llama_server_with_null_content_and_timings() -> None:
    provider, _ = make(ok_stream(sse(LLAMA_STREAM)))
    texts, completion = await collect(provider)
    assert texts == ["Hello", "!"]
    assert (completion.text, completion.usage, completion.model, completion.finish_reason) == (
        "Hello!",
        Usage(21, 2),
        "smollm2-135m-instruct",
        "stop",
    )


async def test_stream_without_usage_chunk() -> None:
    provider, _ = make(ok_stream(sse(OPENAI_STREAM[:-1])))
    _, completion = await collect(provider)
    assert completion.usage is None and completion.text == "Hello wörld 🎉"


async def test_stream_error_event_mid_stream() -> None:
    error = {
        "error": {
            "message": "The server had an error while processing your request.",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    provider, transport = make(ok_stream(sse([*OPENAI_STREAM[:3], error], done=False)))
    received: list[str] = []
    with pytest.raises(CloudError) as info:
        async for item in provider.stream(chat(MESSAGES)):
            if isinstance(item, Delta):
                received.append(item.text)
    assert received == ["Hel", "lo "]
    assert "The server had an error" in info.value.message
    assert info.value.details["error_type"] == "server_error"
    assert info.value.details["received_deltas"] == 2 and info.value.details["received_chars"] == 6
    assert len(transport.requests) == 1 and transport.responses[0].is_closed


async def test_stream_malformed_json_is_a_cloud_error_with_hint() -> None:
    body = sse(OPENAI_STREAM[:2], done=False) + b'data: {"id": "chatcmpl-123", "choices": [\n\n'
    provider, _ = make(ok_stream(body))
    with pytest.raises(CloudError) as info:
        await collect(provider)
    assert type(info.value) is CloudError
    assert "stream event that is not valid JSON" in info.value.message
    assert "OpenAI chat completions" in info.value.hint
    assert info.value.details["stage"] == "stream" and info.value.details["received_chars"] == 3


async def test_stream_connection_reset_mid_stream_is_not_retried() -> None:
    body = [sse(OPENAI_STREAM[:3], done=False), ConnectionResetError("Connection reset by peer")]
    sleeps = Sleeps()
    provider, transport = make(ok_stream(body), sleeps=sleeps)
    received: list[str] = []
    with pytest.raises(CloudError) as info:
        async for item in provider.stream(chat(MESSAGES)):
            if isinstance(item, Delta):
                received.append(item.text)
    error = info.value
    assert type(error) is CloudError  # not OfflineError: part of the answer was delivered
    assert received == ["Hel", "lo "]
    assert len(transport.requests) == 1 and sleeps.delays == []
    assert error.details["received_deltas"] == 2 and error.details["received_chars"] == 6
    assert error.details["cause"] == "OfflineError" and error.details["stage"] == "stream"
    assert "not retried" in error.hint
    assert transport.responses[0].is_closed


async def test_stream_ended_early_is_a_cloud_error() -> None:
    provider, _ = make(ok_stream(sse(OPENAI_STREAM[:3], done=False)))
    with pytest.raises(CloudError) as info:
        await collect(provider)
    assert "ended before" in info.value.message and info.value.details["received_deltas"] == 2


async def test_stream_500_then_success_is_retried_before_the_body() -> None:
    answers = [Response(502, body=b"Bad Gateway"), Response(200, body=sse(OPENAI_STREAM))]
    provider, transport = make(lambda r: answers.pop(0))
    texts, _ = await collect(provider)
    assert "".join(texts) == "Hello wörld 🎉" and len(transport.requests) == 2


async def test_stream_rate_limited_before_the_body() -> None:
    provider, transport = make(lambda r: Response(429, {"retry-after-ms": "100"}, b"{}"))
    with pytest.raises(RateLimitError):
        await collect(provider)
    assert len(transport.requests) == 3


async def test_cancellation_closes_the_response_and_propagates() -> None:
    finalized: list[bool] = []

    async def body() -> AsyncIterator[bytes]:
        try:
            yield sse(OPENAI_STREAM[:2], done=False)
            await asyncio.Event().wait()  # the server goes quiet
        finally:
            finalized.append(True)

    provider, transport = make(ok_stream(body()))
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


async def test_stopping_early_closes_the_response() -> None:
    finalized: list[bool] = []

    async def body() -> AsyncIterator[bytes]:
        try:
            for event in OPENAI_STREAM:
                yield sse([event], done=False)
        finally:
            finalized.append(True)

    provider, transport = make(ok_stream(body()))
    async with contextlib.aclosing(provider.stream(chat(MESSAGES))) as stream:
        async for item in stream:
            if isinstance(item, Delta):
                break
    assert transport.responses[0].is_closed and finalized == [True]
