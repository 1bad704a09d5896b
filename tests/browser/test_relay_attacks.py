"""The relay attacked for real: serve.py (with its relay) -> the fault proxy, which records every request
-> llama-server. Each attack is refused with a typed JSON error and the proxy saw nothing; a same-origin
stream goes through. Forged requests come from Python (they set any header they like); the cross-origin
and DNS-rebinding attempts come from Chromium itself (``--host-resolver-rules`` points evil.example at
127.0.0.1, which is what a rebinding attacker's DNS does).
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.faults import FaultProxy
from tests.harness import Server, launch_browser

from .conftest import CLOUD_MODEL, RELAY_KEY

pytestmark = pytest.mark.browser

CHAT = "/api/cloud/chat/completions"
BODY = {"model": CLOUD_MODEL, "messages": [{"role": "user", "content": "Say OK."}], "max_tokens": 8}


def _send(
    server: Server, target: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    port = urlsplit(server.url).port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("POST", target, body=body, headers={"Host": f"127.0.0.1:{port}", **headers})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _browser_headers(server: Server) -> dict[str, str]:
    return {"Origin": server.origin, "Content-Type": "application/json"}


ATTACKS = [
    ("cross-origin POST", CHAT, BODY, {"Origin": "https://evil.example"}, 403, "relay_origin_forbidden"),
    (
        "foreign Host (DNS rebinding)",
        CHAT,
        BODY,
        {"Host": "evil.example", "Origin": "http://evil.example"},
        403,
        "relay_host_forbidden",
    ),
    (
        "text/plain simple request",
        CHAT,
        BODY,
        {"Content-Type": "text/plain"},
        415,
        "relay_unsupported_media_type",
    ),
    (
        "encoded dot segments",
        "/api/cloud/..%2f..%2fadmin%2fkeys",
        BODY,
        {},
        404,
        "relay_endpoint_not_allowed",
    ),
    ("query injection", "/api/cloud/chat/completions%3Fx=1", BODY, {}, 404, "relay_endpoint_not_allowed"),
    ("double encoding", "/api/cloud/chat%252fcompletions", BODY, {}, 404, "relay_endpoint_not_allowed"),
    ("another endpoint", "/api/cloud/fine_tuning/jobs", BODY, {}, 404, "relay_endpoint_not_allowed"),
    ("the models list", "/api/cloud/v1/models", BODY, {}, 404, "relay_endpoint_not_allowed"),
    ("a model override", CHAT, {**BODY, "model": "gpt-4o"}, {}, 400, "relay_model_not_allowed"),
    ("max_tokens over the cap", CHAT, {**BODY, "max_tokens": 100_000}, {}, 400, "relay_max_tokens_over_cap"),
    (
        "an oversized body",
        CHAT,
        {**BODY, "messages": [{"role": "user", "content": "x" * (1 << 20)}]},
        {},
        413,
        "relay_body_too_large",
    ),
]


@pytest.mark.parametrize("what, target, body, headers, status, kind", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_an_attack_is_refused_and_nothing_reaches_the_upstream(
    cloud_server: Server,
    proxy: FaultProxy,
    what: str,
    target: str,
    body: Any,
    headers: dict[str, str],
    status: int,
    kind: str,
) -> None:
    got, resp_headers, raw = _send(
        cloud_server, target, json.dumps(body).encode(), {**_browser_headers(cloud_server), **headers}
    )
    assert got == status, raw[:300]
    error = json.loads(raw)["error"]
    assert error["type"] == kind and error["hint"], error
    assert RELAY_KEY not in raw.decode() and str(urlsplit(proxy.url).port) not in raw.decode()
    assert proxy.requests() == 0, proxy.describe()


def test_a_same_origin_stream_goes_through_the_relay(cloud_server: Server, proxy: FaultProxy) -> None:
    body = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
    got, headers, raw = _send(
        cloud_server,
        CHAT,
        json.dumps(body).encode(),
        {**_browser_headers(cloud_server), "Accept": "text/event-stream"},
    )
    assert got == 200 and headers["content-type"].startswith("text/event-stream")
    text = raw.decode()
    assert text.rstrip().endswith("data: [DONE]") and '"usage"' in text
    for _ in range(100):  # the proxy logs "done" just after its last write: let its thread get there
        if proxy.saw("done"):
            break
        time.sleep(0.05)
    assert proxy.requests() == 1 and proxy.events[0][2] == "/v1/chat/completions" and proxy.saw("done")


def test_a_page_on_another_origin_cannot_call_the_relay(
    browser: Any, cloud_server: Server, proxy: FaultProxy
) -> None:
    other = cloud_server.url.replace("127.0.0.1", "localhost")  # same server, another origin
    before = cloud_server.log.read_text().count("relay refused")
    # an attacker's page has no policy of ours: without bypass_csp, our page's CSP (connect-src 'self')
    # would stop these fetches in the browser before the relay could refuse them
    context = browser.new_context(bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(other + "sandbox.html")
        result = page.evaluate(
            """async ([url, body]) => {
            const out = {};
            try {
              const r = await fetch(url, { method: "POST", body,
                                           headers: { "Content-Type": "application/json" } });
              out.cors = r.status;
            } catch (e) { out.cors = e.name; }
            try {  // a "simple request": sent without a preflight, the answer unreadable
              const simple = await fetch(url, { method: "POST", mode: "no-cors",
                                                headers: { "Content-Type": "text/plain" }, body });
              out.simple = simple.type;
            } catch (e) { out.simple = e.name; }  // COEP: the answer's CORP header blocks it outright
            return out;
        }""",
            [cloud_server.url.rstrip("/") + CHAT, json.dumps(BODY)],
        )
        assert result["cors"] == "TypeError" and result["simple"] in ("opaque", "TypeError"), result
        assert proxy.requests() == 0, proxy.describe()
        refusals = cloud_server.log.read_text().count("relay refused")
        assert refusals >= before + 2, (
            "the preflight and the simple request reached the relay and were refused"
        )
    finally:
        context.close()


@pytest.fixture
def rebinding_browser(playwright_instance: Any) -> Iterator[Any]:
    b = launch_browser(playwright_instance, ["--host-resolver-rules=MAP evil.example 127.0.0.1"])
    yield b
    b.close()


def test_a_dns_rebinding_page_is_refused_by_host(
    rebinding_browser: Any, cloud_server: Server, proxy: FaultProxy
) -> None:
    port = urlsplit(cloud_server.url).port
    context = rebinding_browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"http://evil.example:{port}/sandbox.html")  # "evil.example" now resolves to us
        result = page.evaluate(
            """async (body) => {
            const r = await fetch("/api/cloud/chat/completions", {
              method: "POST", headers: { "Content-Type": "application/json" }, body });
            return { status: r.status, body: await r.json() };
        }""",
            json.dumps(BODY),
        )
        assert result["status"] == 403 and result["body"]["error"]["type"] == "relay_host_forbidden", result
        assert proxy.requests() == 0, proxy.describe()
    finally:
        context.close()
