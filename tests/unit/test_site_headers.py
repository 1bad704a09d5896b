"""site_headers.py and serve.py's use of it: the CSP on every response (errors too), COOP/COEP, and CORS
and CORP for the embedding origins the operator allows, and only those."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
import serve
import site_headers
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from site_headers import SiteHeaders, content_security_policy, parse_origin, parse_origins

HOST = "https://shop.example"


def directives(policy: str) -> dict[str, list[str]]:
    out = {}
    for part in policy.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


def test_the_policy_is_strict() -> None:
    d = directives(content_security_policy())
    assert d["script-src"] == ["'self'", "'wasm-unsafe-eval'"]
    assert d["worker-src"] == ["'self'"] and d["style-src"] == ["'self'"] and d["object-src"] == ["'none'"]
    everything = [v for values in d.values() for v in values]
    for loose in ("'unsafe-eval'", "'unsafe-inline'", "blob:", "data:", "*", "http:", "https:"):
        assert loose not in everything, loose
    assert d["frame-ancestors"] == ["'self'"] and "report-uri" not in d


def test_a_relay_elsewhere_is_named_in_connect_src_only() -> None:
    d = directives(
        content_security_policy(connect=["https://relay.example"], report_uri="/csp", frame_ancestors=None)
    )
    assert d["connect-src"] == ["'self'", "https://relay.example"] and d["script-src"][0] == "'self'"
    assert "https://relay.example" not in d["script-src"] and "frame-ancestors" not in d
    assert d["report-uri"] == ["/csp"]


@pytest.mark.parametrize(
    ("text", "origin"),
    [
        ("https://Shop.Example/", "https://shop.example"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("https://a.example:443", "https://a.example"),
    ],
)
def test_origins_are_normalized_as_browsers_send_them(text: str, origin: str) -> None:
    assert parse_origin(text) == origin


@pytest.mark.parametrize(
    "bad", ["*", "shop.example", "https://shop.example/path", "ftp://x.example", "https://"]
)
def test_anything_but_an_origin_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not an origin"):
        parse_origin(bad)


def test_flags_and_the_environment_combine() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-isolation", action="store_true")
    site_headers.add_arguments(parser)
    args = parser.parse_args(["--embed-origin", HOST, "--csp-report-uri", "/r"])
    policy = site_headers.from_arguments(
        args, {"HYBRID_ROUTER_EMBED_ORIGINS": "http://a.test:1, http://b.test"}
    )
    assert policy.embed_origins == {HOST, "http://a.test:1", "http://b.test"} and policy.report_uri == "/r"
    with pytest.raises(SystemExit, match="not an origin"):
        site_headers.from_arguments(parser.parse_args(["--embed-origin", "*"]), {})
    assert parse_origins(["", " "]) == frozenset()


def test_cors_only_for_allowed_origins_and_never_for_the_relay() -> None:
    policy = SiteHeaders(embed_origins=frozenset({HOST}))
    allowed = policy.cors("/hybrid-router.js", HOST)
    assert allowed["Access-Control-Allow-Origin"] == HOST
    assert allowed["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert "Content-Range" in allowed["Access-Control-Expose-Headers"]
    assert policy.cors("/hybrid-router.js", "https://evil.example") == {}
    assert policy.cors("/hybrid-router.js", None) == {}
    assert policy.cors("/api/cloud/chat/completions", HOST) == {}  # the relay answers for its own origins
    answer = policy.preflight("/models/x/onnx/model.onnx", HOST)
    assert answer is not None and answer["Access-Control-Allow-Headers"].startswith("Range")
    assert policy.preflight("/models/x", "https://evil.example") is None


@pytest.fixture
def app(tmp_path: Path) -> web.Application:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    site: dict[str, Any] = {"mounts": {}, "boot": {}}
    policy = SiteHeaders(embed_origins=frozenset({HOST}), report_uri="http://127.0.0.1:9/csp")
    return serve.make_app(site, {"models": {"m": {"dir": str(tmp_path / "m")}}}, policy=policy)


async def test_serve_sends_the_policy_on_every_response(app: web.Application) -> None:
    async with TestClient(TestServer(app)) as client:
        for path in (
            "/",
            "/worker.js",
            "/hybrid-router.js",
            "/boot.json",
            "/models/m/config.json",
            "/nope.js",
        ):
            resp = await client.get(path)
            assert resp.status in (200, 404), path
            assert resp.headers["Content-Security-Policy"] == content_security_policy(
                report_uri="http://127.0.0.1:9/csp"
            )
            assert resp.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
            assert resp.headers["Cross-Origin-Opener-Policy"] == "same-origin"
            assert resp.headers["X-Content-Type-Options"] == "nosniff"


async def test_serve_answers_embedding_origins_and_only_them(app: web.Application) -> None:
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/hybrid-router.js", headers={"Origin": HOST})
        assert resp.headers["Access-Control-Allow-Origin"] == HOST
        assert (
            resp.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
            and "Origin" in resp.headers["Vary"]
        )
        other = await client.get("/hybrid-router.js", headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in other.headers
        assert other.headers["Cross-Origin-Resource-Policy"] == "same-origin"
        pre = await client.options(
            "/models/m/config.json",
            headers={
                "Origin": HOST,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "range",
            },
        )
        assert pre.status == 204 and pre.headers["Access-Control-Allow-Origin"] == HOST
        refused = await client.options(
            "/models/m/config.json",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert "Access-Control-Allow-Origin" not in refused.headers
        relay = await client.get("/api/cloud/config", headers={"Origin": HOST})
        assert "Access-Control-Allow-Origin" not in relay.headers


async def test_no_isolation_drops_coop_and_coep_only(tmp_path: Path) -> None:
    app = serve.make_app({"mounts": {}, "boot": {}}, {"models": {}}, isolation=False)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/")
        assert (
            "Cross-Origin-Embedder-Policy" not in resp.headers
            and "Cross-Origin-Opener-Policy" not in resp.headers
        )
        assert "script-src 'self' 'wasm-unsafe-eval'" in resp.headers["Content-Security-Policy"]
