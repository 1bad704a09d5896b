"""The relay app against a fake upstream that records every request: each attack is refused with a typed
JSON error and the upstream saw nothing; the allowed calls go through with the key added."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from hybrid_router_relay import Limits, Prices, RateLimiter, SpendLedger
from tests.unit.relay_helpers import (
    BODY,
    CHAT,
    KEY,
    MESSAGES,
    MODEL,
    Relay,
    raw_request,
    running_relay,
    with_limits,
)

EMBED = "https://embed.example"
TOKEN = "a-long-enough-relay-token-0123456789"


def assert_typed(payload: dict[str, Any], kind: str) -> None:
    error = payload["error"]
    assert error["type"] == kind and error["message"] and error["hint"], payload
    text = json.dumps(payload)
    assert KEY not in text and "/v1" not in text


async def refused(relay: Relay, response: aiohttp.ClientResponse, status: int, kind: str) -> None:
    assert response.status == status, await response.text()
    assert response.headers["Content-Type"].startswith("application/json")
    assert_typed(await response.json(), kind)
    assert relay.fake.requests == [], "the upstream received a refused request"


# ------------------------------------------------------------------ what works


async def test_a_same_origin_call_is_forwarded_with_the_key_and_nothing_else() -> None:
    async with running_relay() as relay:
        resp = await relay.post(**{"Cookie": "session=1", "X-Custom": "1", "x-stainless-retry-count": "0"})
        assert resp.status == 200 and (await resp.json())["choices"][0]["message"]["content"]
        assert "Access-Control-Allow-Origin" not in resp.headers  # same origin: no CORS needed
        (seen,) = relay.fake.requests
        assert seen.raw_path == "/v1/chat/completions" and seen.json() == BODY
        assert seen.headers["Authorization"] == f"Bearer {KEY}"
        assert seen.headers["x-stainless-retry-count"] == "0"
        assert not {"Cookie", "X-Custom", "Origin"} & set(seen.headers)


async def test_a_missing_max_tokens_is_set_to_the_cap_and_the_model_filled_in() -> None:
    async with running_relay(limits=with_limits(max_tokens=100)) as relay:
        resp = await relay.post({"messages": [{"role": "user", "content": "hi"}]})
        assert resp.status == 200
        assert relay.fake.requests[0].json() == {
            "messages": [{"role": "user", "content": "hi"}],
            "model": MODEL,
            "max_tokens": 100,
        }


async def test_a_stream_comes_back_chunk_by_chunk_with_the_retry_headers() -> None:
    async with running_relay() as relay:
        body = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
        resp = await relay.post(body, Accept="text/event-stream")
        assert resp.status == 200 and resp.headers["Content-Type"] == "text/event-stream"
        assert resp.headers["x-request-id"] == "fake-req-1"
        text = (await resp.read()).decode()
        assert text.rstrip().endswith("data: [DONE]") and text.count("data:") >= 10
        assert relay.fake.requests[0].headers["Accept"] == "text/event-stream"


async def test_the_anthropic_kind_posts_to_messages_with_its_key_header() -> None:
    async with running_relay(kind="anthropic") as relay:
        resp = await relay.post(BODY, path=MESSAGES, **{"anthropic-version": "2023-06-01"})
        assert resp.status == 200 and (await resp.json())["type"] == "message"
        (seen,) = relay.fake.requests
        assert seen.raw_path == "/v1/messages" and seen.headers["x-api-key"] == KEY
        assert seen.headers["anthropic-version"] == "2023-06-01" and "Authorization" not in seen.headers
        resp = await relay.post(BODY, path=CHAT)  # the other kind's endpoint is not forwarded
        assert resp.status == 404 and len(relay.fake.requests) == 1


async def test_a_listed_embed_origin_gets_cors_on_the_answer_and_the_preflight() -> None:
    async with running_relay(allowed_origins=frozenset({EMBED})) as relay:
        pre = await relay.client.options(
            CHAT,
            headers={
                "Origin": EMBED,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, x-stainless-os, x-evil",
            },
        )
        assert pre.status == 204
        assert pre.headers["Access-Control-Allow-Origin"] == EMBED
        assert "POST" in pre.headers["Access-Control-Allow-Methods"]
        assert pre.headers["Access-Control-Allow-Headers"] == "content-type, x-stainless-os"
        resp = await relay.post(Origin=EMBED)
        assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == EMBED
        assert "retry-after" in resp.headers["Access-Control-Expose-Headers"]
        assert resp.headers["Vary"] == "Origin"
        config = await relay.client.get("/api/cloud/config", headers={"Origin": EMBED})
        assert config.headers["Access-Control-Allow-Origin"] == EMBED


async def test_a_foreign_preflight_gets_no_cors() -> None:
    async with running_relay(allowed_origins=frozenset({EMBED})) as relay:
        pre = await relay.client.options(
            CHAT, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
        )
        await refused(relay, pre, 403, "relay_origin_forbidden")
        assert "Access-Control-Allow-Origin" not in pre.headers


async def test_the_config_names_the_model_and_never_the_key_or_the_upstream() -> None:
    async with running_relay() as relay:
        resp = await relay.client.get("/api/cloud/config")
        config = await resp.json()
        assert config == {
            "available": True,
            "kind": "openai",
            "model": MODEL,
            "label": "a fake",
            "base_url": "/api/cloud",
            "has_key": True,
        }
        assert str(relay.fake_port) not in json.dumps(config)
        foreign = await relay.client.get("/api/cloud/config", headers={"Host": "evil.example"})
        assert foreign.status == 403


async def test_a_local_program_without_origin_may_call_a_loopback_relay() -> None:
    async with running_relay() as relay:
        resp = await relay.client.post(
            CHAT, data=json.dumps(BODY), headers={"Content-Type": "application/json"}
        )
        assert resp.status == 200
        same = await relay.client.post(
            CHAT,
            data=json.dumps(BODY),
            headers={"Content-Type": "application/json", "Sec-Fetch-Site": "same-origin"},
        )
        assert same.status == 200 and len(relay.fake.requests) == 2


# ------------------------------------------------------------------ attacks: refused, nothing forwarded


@pytest.mark.parametrize(
    "headers, status, kind",
    [
        ({"Origin": "https://evil.example"}, 403, "relay_origin_forbidden"),
        ({"Origin": "null"}, 403, "relay_origin_forbidden"),
        ({"Origin": "http://127.0.0.1:1"}, 403, "relay_origin_forbidden"),  # another local port
        ({"Origin": "http://evil.example", "Host": "evil.example"}, 403, "relay_host_forbidden"),  # rebinding
        (
            {"Host": "evil.example:{port}", "Origin": "http://evil.example:{port}"},
            403,
            "relay_host_forbidden",
        ),
        ({"Host": "127.0.0.1:1"}, 403, "relay_host_forbidden"),
        ({"Content-Type": "text/plain"}, 415, "relay_unsupported_media_type"),  # a "simple request"
        ({"Content-Type": "application/x-www-form-urlencoded"}, 415, "relay_unsupported_media_type"),
        ({"Content-Type": "multipart/form-data; boundary=x"}, 415, "relay_unsupported_media_type"),
        ({"Content-Encoding": "gzip"}, 415, "relay_unsupported_media_type"),
        ({"Origin": None, "X-Forwarded-For": "203.0.113.9"}, 403, "relay_origin_forbidden"),  # via a proxy
        ({"Origin": None, "Sec-Fetch-Site": "cross-site"}, 403, "relay_origin_forbidden"),
    ],
)
async def test_a_call_from_elsewhere_is_refused(
    headers: dict[str, str | None], status: int, kind: str
) -> None:
    async with running_relay() as relay:
        sent = relay.headers()
        for name, value in headers.items():
            if value is None:
                sent.pop(name, None)
            else:
                sent[name] = value.format(port=relay.port)
        resp = await relay.client.post(CHAT, data=json.dumps(BODY), headers=sent)
        await refused(relay, resp, status, kind)


@pytest.mark.parametrize(
    "target",
    [
        "/api/cloud/..%2f..%2fadmin%2fkeys",
        "/api/cloud/../../admin/keys",
        "/api/cloud/chat/completions%3Fapi-version=1",
        "/api/cloud/chat/completions?api-version=1",
        "/api/cloud/chat%2Fcompletions",
        "/api/cloud/chat%252fcompletions",
        "/api/cloud/chat/%63ompletions",
        "/api/cloud/./chat/completions",
        "/api/cloud/x/../chat/completions",
        "/api/cloud//chat/completions",
        "/api/cloud/chat/completions/",
        "/api/cloud/chat/completions%00",
        "/api/cloud/chat/completions;x",
        "/api/cloud/fine_tuning/jobs",
        "/api/cloud/v1/models",
        "/api/cloud/files",
        "/api/cloud/v1/messages",
        "/api/cloud",
        "http://evil.example/api/cloud/chat/completions",
    ],
)
async def test_every_path_trick_is_refused(target: str) -> None:
    async with running_relay() as relay:
        answer = await raw_request(
            relay.port, target, headers=relay.headers(), body=json.dumps(BODY).encode()
        )
        assert 400 <= answer.status < 500, answer
        if answer.headers.get("content-type", "").startswith("application/json"):
            assert_typed(answer.json(), answer.json()["error"]["type"])
        assert relay.fake.requests == []


@pytest.mark.parametrize(
    "body, kind",
    [
        ({**BODY, "model": "gpt-4o"}, "relay_model_not_allowed"),
        ({**BODY, "model": ["a"]}, "relay_model_not_allowed"),
        ({**BODY, "max_tokens": 4097}, "relay_max_tokens_over_cap"),
        ({**BODY, "max_completion_tokens": 100000}, "relay_max_tokens_over_cap"),
        ({**BODY, "max_tokens": 0}, "relay_bad_json"),
        ({**BODY, "max_tokens": True}, "relay_bad_json"),
        ({**BODY, "max_tokens": "9"}, "relay_bad_json"),
        ({**BODY, "n": 8}, "relay_field_not_allowed"),
        ({**BODY, "tools": [{"type": "function"}]}, "relay_field_not_allowed"),
        ({**BODY, "service_tier": "priority"}, "relay_field_not_allowed"),
        ({**BODY, "web_search_options": {}}, "relay_field_not_allowed"),
        ({**BODY, "stream": "yes"}, "relay_bad_json"),
        ({"model": MODEL, "messages": []}, "relay_bad_json"),
        ([BODY], "relay_bad_json"),
        ("just text", "relay_bad_json"),
    ],
)
async def test_a_body_asking_for_more_than_allowed_is_refused(body: Any, kind: str) -> None:
    async with running_relay() as relay:
        await refused(relay, await relay.post(body), 400, kind)


async def test_the_last_duplicate_key_is_the_one_checked_and_forwarded() -> None:
    async with running_relay() as relay:
        raw = (
            b'{"model": "'
            + MODEL.encode()
            + b'", "model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}'
        )
        resp = await relay.client.post(CHAT, data=raw, headers=relay.headers())
        await refused(relay, resp, 400, "relay_model_not_allowed")  # re-serialized: no parser differential


async def test_an_anthropic_body_over_the_cap_or_naming_another_model_is_refused() -> None:
    async with running_relay(kind="anthropic") as relay:
        await refused(
            relay,
            await relay.post({**BODY, "max_tokens": 5000}, path=MESSAGES),
            400,
            "relay_max_tokens_over_cap",
        )
        await refused(
            relay,
            await relay.post({**BODY, "model": "claude-opus-4"}, path=MESSAGES),
            400,
            "relay_model_not_allowed",
        )
        await refused(
            relay, await relay.post({**BODY, "tools": []}, path=MESSAGES), 400, "relay_field_not_allowed"
        )


async def test_an_oversized_body_is_refused_declared_or_chunked() -> None:
    async with running_relay(limits=with_limits(max_body_bytes=4096)) as relay:
        big = {**BODY, "messages": [{"role": "user", "content": "x" * 5000}]}
        await refused(relay, await relay.post(big), 413, "relay_body_too_large")

        async def chunks() -> Any:
            for _ in range(10):
                yield b" " * 1000

        resp = await relay.client.post(CHAT, data=chunks(), headers=relay.headers())  # no Content-Length
        await refused(relay, resp, 413, "relay_body_too_large")


async def test_a_get_on_the_endpoint_is_refused() -> None:
    async with running_relay() as relay:
        resp = await relay.client.get(CHAT, headers={"Origin": relay.origin})
        await refused(relay, resp, 405, "relay_method_not_allowed")
        assert resp.headers["Allow"] == "POST"


async def test_the_token_is_required_when_configured_and_never_forwarded() -> None:
    async with running_relay(token=TOKEN) as relay:
        await refused(relay, await relay.post(), 401, "relay_token_required")
        await refused(
            relay,
            await relay.post(Authorization="Bearer wrong-token-of-some-length"),
            401,
            "relay_token_invalid",
        )
        await refused(relay, await relay.post(Authorization=f"Basic {TOKEN}"), 401, "relay_token_required")
        resp = await relay.post(Authorization=f"Bearer {TOKEN}", Origin="https://evil.example")
        await refused(relay, resp, 403, "relay_origin_forbidden")  # a token does not open other origins
        ok = await relay.post(Authorization=f"Bearer {TOKEN}")
        assert ok.status == 200
        assert relay.fake.requests[0].headers["Authorization"] == f"Bearer {KEY}"
        bare = await relay.client.post(
            CHAT,
            data=json.dumps(BODY),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {TOKEN}",
                "X-Forwarded-For": "1.2.3.4",
            },
        )
        assert bare.status == 200  # no Origin, from anywhere: the token decides


async def test_a_client_over_its_rate_gets_429_with_retry_after() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=2, clock=lambda: now[0])
    async with running_relay(app_options={"limiter": limiter}) as relay:
        assert (await relay.post()).status == 200 and (await relay.post()).status == 200
        resp = await relay.post()
        assert resp.status == 429 and resp.headers["Retry-After"] == "1"
        assert resp.headers["retry-after-ms"] == "1000" and "x-should-retry" not in resp.headers
        assert_typed(await resp.json(), "relay_rate_limited")
        assert len(relay.fake.requests) == 2
        now[0] += 1.0
        assert (await relay.post()).status == 200


PRICES = Prices.from_mapping({"default": {"input_usd_per_mtok": 1.0, "output_usd_per_mtok": 100.0}})


async def test_the_spend_cap_reserves_the_worst_case_and_settles_from_the_usage() -> None:
    ledger = SpendLedger(daily_usd=0.01)
    async with running_relay(
        prices=PRICES, app_options={"ledger": ledger}, limits=with_limits(max_tokens=60)
    ) as relay:
        assert (await relay.post()).status == 200
        assert ledger.reserved == 0 and ledger.spent == pytest.approx(PRICES.price_for(MODEL).cost(11, 9))
        # worst case of this one: 5 KB in at $1/M + 60 out at $100/M = $0.011, over what is left
        over = await relay.post(
            {**BODY, "max_tokens": 60, "messages": [{"role": "user", "content": "x" * 5000}]}
        )
        assert over.status == 402 and len(relay.fake.requests) == 1
        assert_typed(await over.json(), "relay_spend_cap_reached")


async def test_a_call_whose_worst_case_passes_the_cap_is_refused_before_forwarding() -> None:
    ledger = SpendLedger(daily_usd=0.001)  # one call's worst case: 4096 tokens at $100/M = $0.41
    async with running_relay(prices=PRICES, app_options={"ledger": ledger}) as relay:
        resp = await relay.post()
        await refused(relay, resp, 402, "relay_spend_cap_reached")
        assert resp.headers["x-should-retry"] == "false" and int(resp.headers["Retry-After"]) > 0


async def test_calls_in_flight_hold_their_reservation_so_concurrent_calls_cannot_pass_the_cap() -> None:
    ledger = SpendLedger(daily_usd=0.015)  # room for one worst case (100 out at $100/M = $0.01) at a time
    async with running_relay(
        prices=PRICES, app_options={"ledger": ledger}, limits=with_limits(max_tokens=100)
    ) as relay:
        relay.fake.plan("stall-mid-stream:30")
        first = await relay.post({**BODY, "max_tokens": 100, "stream": True})
        assert first.status == 200
        await first.content.readany()  # the first call is in flight, its worst case reserved
        second = await relay.post({**BODY, "max_tokens": 100})
        assert second.status == 402
        first.close()  # stopped mid-stream without usage: charged its worst case
        for _ in range(200):
            if ledger.reserved == 0:
                break
            await asyncio.sleep(0.05)
        assert ledger.reserved == 0 and ledger.spent > 0.01
        assert (await relay.post({**BODY, "max_tokens": 10})).status == 200


async def test_an_upstream_error_passes_its_status_and_retry_headers_with_a_scrubbed_message() -> None:
    async with running_relay() as relay:
        relay.fake.plan("status:429:retry-after=3", "status:503", "leak-secrets")
        limited = await relay.post()
        assert limited.status == 429 and limited.headers["retry-after"] == "3"
        assert (await limited.json())["error"]["type"] == "injected_fault"
        unavailable = await relay.post()
        assert (
            unavailable.status == 503 and "x-should-retry" not in unavailable.headers
        )  # retried by the page
        leaked = await relay.post()
        assert leaked.status == 401
        text = await leaked.text()
        assert KEY not in text and str(relay.fake_port) not in text and "127.0.0.1" not in text
        assert_typed(json.loads(text), "relay_upstream_auth")


async def test_an_unreachable_upstream_is_a_502_naming_no_host() -> None:
    async with running_relay(base_url="http://127.0.0.1:9/v1") as relay:
        resp = await relay.post()
        assert resp.status == 502
        body = await resp.text()
        assert "127.0.0.1" not in body and ":9" not in body
        assert_typed(json.loads(body), "relay_upstream_unreachable")


async def test_a_connection_dropped_before_any_answer_is_tried_once_more() -> None:
    async with running_relay() as relay:
        relay.fake.plan("drop")
        assert (await relay.post()).status == 200 and len(relay.fake.requests) == 2
        relay.fake.plan("drop", "drop")
        resp = await relay.post()
        assert resp.status == 502 and len(relay.fake.requests) == 4  # once more, not forever
        assert_typed(await resp.json(), "relay_upstream_unreachable")


async def test_no_cloud_configured_is_a_503_that_is_not_retried() -> None:
    async with running_relay(base_url="") as relay:
        resp = await relay.post()
        await refused(relay, resp, 503, "relay_not_configured")
        assert resp.headers["x-should-retry"] == "false"


# ------------------------------------------------------------------ the stream breaks after it began


async def test_an_upstream_reset_mid_stream_aborts_the_client_connection() -> None:
    async with running_relay() as relay:
        relay.fake.plan("reset-mid-stream")
        resp = await relay.post({**BODY, "stream": True})
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()


async def test_a_cut_stream_is_never_ended_cleanly_nor_followed_by_a_second_response() -> None:
    async with running_relay() as relay:
        relay.fake.plan("reset-mid-stream")
        body = json.dumps({**BODY, "stream": True}).encode()
        answer = await raw_request(relay.port, CHAT, headers=relay.headers(), body=body)
        assert answer.status == 200 and answer.headers["transfer-encoding"] == "chunked"
        assert not answer.complete, "the cut answer ended with a terminating chunk"
        assert answer.raw.count(b"HTTP/1.1") == 1 and b"relay_upstream" not in answer.raw
        assert b"data:" in answer.body  # what had arrived was passed on


async def test_an_upstream_stalling_past_the_read_timeout_mid_stream_aborts_the_client() -> None:
    async with running_relay(limits=with_limits(read_timeout_s=0.3)) as relay:
        relay.fake.plan("stall-mid-stream:30")
        resp = await relay.post({**BODY, "stream": True})
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()


async def test_a_client_going_away_closes_the_upstream_request() -> None:
    async with running_relay() as relay:
        relay.fake.plan("stall-mid-stream:30")
        resp = await relay.post({**BODY, "stream": True})
        await resp.content.readany()
        resp.close()
        for _ in range(200):
            if "client-closed" in relay.fake.events:
                break
            await asyncio.sleep(0.05)
        assert "client-closed" in relay.fake.events, relay.fake.events


async def test_a_stream_that_ends_well_is_charged_its_usage() -> None:
    ledger = SpendLedger(daily_usd=None)
    async with running_relay(prices=PRICES, app_options={"ledger": ledger}) as relay:
        resp = await relay.post({**BODY, "stream": True, "stream_options": {"include_usage": True}})
        await resp.read()
        words = len(relay.fake.words)
        assert ledger.spent == pytest.approx(PRICES.price_for(MODEL).cost(11, words))


def test_limits_defaults_are_documented() -> None:
    assert Limits() == Limits(
        max_body_bytes=1 << 20,
        max_tokens=4096,
        rate_per_minute=60.0,
        burst=30,
        daily_usd=None,
        connect_timeout_s=10.0,
        read_timeout_s=120.0,
    )
