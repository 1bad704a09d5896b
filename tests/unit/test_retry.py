"""The retry contract (after the OpenAI/Anthropic SDKs), with a recorded fake sleep: no real waiting."""

from __future__ import annotations

import asyncio
import email.utils
import json
from collections.abc import Callable
from typing import Any

import pytest

from hybrid_router.errors import CloudError, CloudTimeoutError, OfflineError, RateLimitError
from hybrid_router.retry import RetryPolicy, error_fields, parse_retry_after, send_with_retries
from hybrid_router.transport import Headers, MockTransport, Request, Response

URL = "https://relay.test/v1/chat/completions"
NOW = 1_750_000_000.0

OPENAI_429 = {
    "error": {
        "message": "Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM): "
        "Limit 3, Used 3, Requested 1.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}
OPENAI_400 = {
    "error": {
        "message": "Invalid value for 'temperature': must be between 0 and 2.",
        "type": "invalid_request_error",
        "param": "temperature",
        "code": "invalid_value",
    }
}
ANTHROPIC_500 = {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}


class Sleeps:
    """A fake ``sleep`` that records what was asked."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def policy(sleeps: Sleeps, *, random: float = 0.0, **kwargs: Any) -> RetryPolicy:
    return RetryPolicy(sleep=sleeps, random=lambda: random, clock=lambda: NOW, **kwargs)


def answers(*responses: Response | BaseException) -> Callable[[Request], Response]:
    """A handler giving these answers in turn (the last one repeats)."""
    queue = list(responses)

    def handler(request: Request) -> Response:
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, BaseException):
            raise item
        return Response(item.status, item.headers, item._content or b"")

    return handler


def err(status: int, body: object = None, **headers: str) -> Response:
    data = b"" if body is None else json.dumps(body).encode()
    return Response(status, {k.replace("_", "-"): v for k, v in headers.items()}, data)


async def send(transport: MockTransport, sleeps: Sleeps, *, stream: bool = False, **kw: float) -> Response:
    return await send_with_retries(
        transport,
        Request("POST", URL, json_body={}),
        stream=stream,
        policy=policy(sleeps, **kw),
        provider="openai",
        model="gpt-4o-mini",
    )


# -- the pieces ------------------------------------------------------------------------------------


def test_backoff_doubles_from_half_a_second_up_to_eight() -> None:
    p = RetryPolicy(random=lambda: 0.0)
    assert [p.backoff(n) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert p.backoff(10_000) == 8.0


def test_jitter_takes_off_up_to_a_quarter() -> None:
    assert RetryPolicy(random=lambda: 1.0).backoff(0) == 0.375
    assert RetryPolicy(random=lambda: 0.5).backoff(2) == 2.0 * 0.875


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after(Headers({"retry-after-ms": "1500"}), now=NOW) == 1.5
    assert parse_retry_after(Headers({"Retry-After": "3"}), now=NOW) == 3.0
    assert parse_retry_after(Headers({"retry-after": "2.5"}), now=NOW) == 2.5
    # milliseconds win over seconds; an unreadable ms value falls back to seconds
    assert parse_retry_after(Headers({"retry-after-ms": "200", "retry-after": "9"}), now=NOW) == 0.2
    assert parse_retry_after(Headers({"retry-after-ms": "soon", "retry-after": "9"}), now=NOW) == 9.0
    date = email.utils.formatdate(NOW + 7, usegmt=True)
    assert parse_retry_after(Headers({"retry-after": date}), now=NOW) == pytest.approx(7.0)
    assert parse_retry_after(Headers({"retry-after": "tomorrow"}), now=NOW) is None
    assert parse_retry_after(Headers(), now=NOW) is None


def test_delay_uses_the_server_value_only_when_reasonable() -> None:
    p = RetryPolicy(random=lambda: 0.0, clock=lambda: NOW)
    assert p.delay(0, Headers({"retry-after": "4"})) == 4.0
    assert p.delay(1, Headers({"retry-after": "0"})) == 1.0  # not > 0: backoff
    assert p.delay(1, Headers({"retry-after": "-3"})) == 1.0
    assert p.delay(2, Headers({"retry-after": "60"})) == 60.0
    assert p.delay(2, Headers({"retry-after": "61"})) == 2.0


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (408, {}, True),
        (409, {}, True),
        (429, {}, True),
        (500, {}, True),
        (503, {}, True),
        (529, {}, True),
        (400, {}, False),
        (401, {}, False),
        (403, {}, False),
        (404, {}, False),
        (422, {}, False),
        (400, {"x-should-retry": "true"}, True),
        (503, {"x-should-retry": "false"}, False),
        (429, {"retry-after": "61"}, False),  # asks for too long: not worth retrying
        (429, {"retry-after": "60"}, True),
    ],
)
def test_should_retry(status: int, headers: dict[str, str], expected: bool) -> None:
    assert RetryPolicy(clock=lambda: NOW).should_retry(Response(status, headers)) is expected


def test_error_fields_of_known_shapes() -> None:
    assert error_fields(OPENAI_400) == (
        OPENAI_400["error"]["message"],
        "invalid_request_error",
        "invalid_value",
    )
    assert error_fields(ANTHROPIC_500) == ("Internal server error", "api_error", None)
    llama = {
        "error": {
            "code": 400,
            "message": "the request exceeds the available context size",
            "type": "exceed_context_size_error",
        }
    }
    assert error_fields(llama) == (llama["error"]["message"], "exceed_context_size_error", "400")
    assert error_fields({"error": "plain"}) == ("plain", None, None)
    assert error_fields(["x"]) == (None, None, None)


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError):
        RetryPolicy(jitter=2)


# -- send_with_retries ---------------------------------------------------------------------------


async def test_two_retries_by_default_then_the_error() -> None:
    sleeps = Sleeps()
    transport = MockTransport(answers(err(500, ANTHROPIC_500)))
    with pytest.raises(CloudError) as info:
        await send(transport, sleeps)
    assert type(info.value) is CloudError
    assert len(transport.requests) == 3
    assert sleeps.delays == [0.5, 1.0]
    assert info.value.details["status"] == 500
    assert info.value.details["attempts"] == 3
    assert "Internal server error" in info.value.message
    assert all(r.is_closed for r in transport.responses)


async def test_500_then_success() -> None:
    sleeps = Sleeps()
    transport = MockTransport(answers(err(500), Response(200, body=b"{}")))
    response = await send(transport, sleeps)
    assert response.status == 200 and await response.aread() == b"{}"
    assert len(transport.requests) == 2 and sleeps.delays == [0.5]


async def test_429_retry_after_is_honoured_then_rate_limit_error() -> None:
    sleeps = Sleeps()
    transport = MockTransport(answers(err(429, OPENAI_429, retry_after="3", x_request_id="req_123")))
    with pytest.raises(RateLimitError) as info:
        await send(transport, sleeps)
    assert sleeps.delays == [3.0, 3.0]
    details = info.value.details
    assert (details["status"], details["retry_after"], details["attempts"]) == (429, 3.0, 3)
    assert details["error_code"] == "rate_limit_exceeded" and details["request_id"] == "req_123"
    assert "Rate limit reached" in info.value.message


async def test_retry_after_ms_is_honoured() -> None:
    sleeps = Sleeps()
    transport = MockTransport(
        answers(err(429, retry_after_ms="1500"), err(503, retry_after_ms="250"), Response(200))
    )
    await send(transport, sleeps)
    assert sleeps.delays == [1.5, 0.25]


async def test_retry_after_as_http_date() -> None:
    sleeps = Sleeps()
    date = email.utils.formatdate(NOW + 5, usegmt=True)
    await send(MockTransport(answers(err(503, retry_after=date), Response(200))), sleeps)
    assert sleeps.delays == [pytest.approx(5.0)]


async def test_too_long_retry_after_is_not_retried_and_reported() -> None:
    sleeps = Sleeps()
    transport = MockTransport(answers(err(429, OPENAI_429, retry_after="300")))
    with pytest.raises(RateLimitError) as info:
        await send(transport, sleeps)
    assert len(transport.requests) == 1 and sleeps.delays == []
    assert info.value.details["retry_after"] == 300.0


async def test_400_is_not_retried() -> None:
    sleeps = Sleeps()
    transport = MockTransport(answers(err(400, OPENAI_400)))
    with pytest.raises(CloudError) as info:
        await send(transport, sleeps)
    assert type(info.value) is CloudError
    assert len(transport.requests) == 1 and sleeps.delays == []
    assert info.value.message == "openai answered HTTP 400: " + OPENAI_400["error"]["message"]
    assert info.value.details["error_type"] == "invalid_request_error"
    assert "parameters" in info.value.hint


async def test_401_hint_points_at_the_relay_key() -> None:
    with pytest.raises(CloudError) as info:
        await send(
            MockTransport(answers(err(401, {"error": {"message": "Incorrect API key provided"}}))), Sleeps()
        )
    assert "API key" in info.value.hint and info.value.details["status"] == 401


async def test_x_should_retry_overrides_the_status() -> None:
    sleeps = Sleeps()
    transport = MockTransport(answers(err(400, x_should_retry="true"), Response(200)))
    assert (await send(transport, sleeps)).status == 200
    transport = MockTransport(answers(err(503, x_should_retry="false")))
    with pytest.raises(CloudError):
        await send(transport, sleeps)
    assert len(transport.requests) == 1


async def test_connection_errors_are_retried_then_offline() -> None:
    sleeps = Sleeps()
    transport = MockTransport(answers(ConnectionRefusedError("refused")))
    with pytest.raises(OfflineError) as info:
        await send(transport, sleeps)
    assert len(transport.requests) == 3 and sleeps.delays == [0.5, 1.0]
    assert info.value.details["attempts"] == 3 and info.value.details["provider"] == "openai"


async def test_connection_error_then_success() -> None:
    sleeps = Sleeps()
    transport = MockTransport(answers(ConnectionResetError(), Response(200, body=b"ok")))
    assert await (await send(transport, sleeps)).aread() == b"ok"
    assert len(transport.requests) == 2


async def test_timeouts_are_retried_then_cloud_timeout() -> None:
    sleeps = Sleeps()
    transport = MockTransport(answers(TimeoutError()))
    with pytest.raises(CloudTimeoutError) as info:
        await send(transport, sleeps)
    assert len(transport.requests) == 3
    assert info.value.details["attempts"] == 3


async def test_a_body_failure_without_stream_is_retried() -> None:
    sleeps = Sleeps()
    calls: list[int] = []

    def handler(request: Request) -> Response:
        calls.append(1)
        if len(calls) == 1:
            return Response(200, body=[b'{"a":', ConnectionResetError()])
        return Response(200, body=[b'{"a":', b"1}"])

    assert await (await send(MockTransport(handler), sleeps, stream=False)).aread() == b'{"a":1}'
    assert len(calls) == 2


async def test_max_retries_zero_means_one_attempt() -> None:
    sleeps = Sleeps()
    transport = MockTransport(answers(err(503)))
    with pytest.raises(CloudError):
        await send(transport, sleeps, max_retries=0)
    assert len(transport.requests) == 1 and sleeps.delays == []


async def test_cancellation_during_the_wait_propagates() -> None:
    async def sleep_forever(delay: float) -> None:
        await asyncio.Event().wait()

    transport = MockTransport(answers(err(503), Response(200)))
    retry = RetryPolicy(sleep=sleep_forever)
    task = asyncio.create_task(
        send_with_retries(transport, Request("GET", URL), stream=False, policy=retry, provider="openai")
    )
    for _ in range(5):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(transport.requests) == 1 and transport.responses[0].is_closed
