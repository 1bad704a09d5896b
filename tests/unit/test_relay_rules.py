"""The relay's rules as pure functions: hosts, origins, binds, settings, the bucket, the ledger, the
price table (held equal to the router's own), the usage meter; and the CLIs' refusal to start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hybrid_router_relay import (
    CloudConfig,
    RateLimiter,
    RelayConfig,
    RelayConfigError,
    RelayError,
    SpendLedger,
    check_bind,
    describe_bind,
    is_loopback_host,
)
from hybrid_router_relay.access import allowed_hosts, check_host, check_origin, client_address
from hybrid_router_relay.cli import main as relay_main
from hybrid_router_relay.config import DEFAULT_PRICES, normalize_origin
from hybrid_router_relay.limits import Prices
from hybrid_router_relay.usage import UsageMeter
from multidict import CIMultiDict

from hybrid_router.prices import CloudPrices

REPO = Path(__file__).resolve().parents[2]
TOKEN = "0123456789abcdef-token"


@dataclass
class Req:
    """What the access rules read of a request (headers case-insensitive, as aiohttp's)."""

    raw_headers: dict[str, str] = field(default_factory=dict)
    remote: str | None = "127.0.0.1"
    scheme: str = "http"

    @property
    def headers(self) -> CIMultiDict[str]:
        return CIMultiDict(self.raw_headers)


def cfg(**kw: Any) -> RelayConfig:
    return RelayConfig(port=8000, **kw)


# ------------------------------------------------------------------ Host


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "[::1]:8000", "LOCALHOST:8000"])
def test_the_loopback_names_with_the_bound_port_are_this_server(host: str) -> None:
    c = cfg()
    assert check_host(c, allowed_hosts(c), Req({"Host": host})) == host.lower()


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:8000",
        "127.0.0.1:8001",
        "127.0.0.1",
        "localhost.:8000",
        "",
        "10.0.0.5:8000",
        "127.0.0.1:8000.evil.example",
    ],
)
def test_any_other_host_is_refused_on_a_loopback_bind(host: str) -> None:
    c = cfg()
    with pytest.raises(RelayError) as err:
        check_host(c, allowed_hosts(c), Req({"Host": host} if host else {}))
    assert err.value.type == "relay_host_forbidden" and err.value.status == 403


def test_a_wildcard_bind_takes_ip_literals_and_listed_names_never_other_names() -> None:
    c = cfg(
        host="0.0.0.0",
        token=TOKEN,
        public_hosts=frozenset({"router.lan"}),
        allowed_origins=frozenset({"https://my.site"}),
    )
    hosts = allowed_hosts(c)
    for ok in ("192.168.1.5:8000", "[fe80::1]:8000", "router.lan", "router.lan:8000", "my.site"):
        assert check_host(c, hosts, Req({"Host": ok})) == ok
    for bad in ("192.168.1.5:9000", "evil.example:8000", "router.lan:9000", "1.2.3.4.evil:8000"):
        with pytest.raises(RelayError):
            check_host(c, hosts, Req({"Host": bad}))


# ------------------------------------------------------------------ Origin


def test_the_own_origin_and_listed_ones_pass_and_only_listed_ones_get_cors() -> None:
    c = cfg(allowed_origins=frozenset({"https://my.site"}))
    assert check_origin(c, "127.0.0.1:8000", Req({"Origin": "http://127.0.0.1:8000"})) is None
    assert check_origin(c, "localhost:8000", Req({"Origin": "http://localhost:8000"})) is None
    assert check_origin(c, "127.0.0.1:8000", Req({"Origin": "https://MY.site:443"})) == "https://my.site"


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://localhost:8000",
        "null",
        "garbage",
        "https://my.site.evil.example",
        "http://127.0.0.1:8000.evil.example",
    ],
)
def test_other_origins_are_refused(origin: str) -> None:
    c = cfg(allowed_origins=frozenset({"https://my.site"}))
    with pytest.raises(RelayError) as err:
        check_origin(c, "127.0.0.1:8000", Req({"Origin": origin}))
    assert err.value.type == "relay_origin_forbidden"


def test_no_origin_passes_only_for_local_programs_same_origin_browsers_or_token_holders() -> None:
    loop = cfg()
    assert check_origin(loop, "127.0.0.1:8000", Req()) is None  # curl on this machine
    assert (
        check_origin(loop, "127.0.0.1:8000", Req({"Sec-Fetch-Site": "same-origin"}, remote="10.1.1.1"))
        is None
    )
    for headers, remote in [
        ({}, "10.1.1.1"),
        ({"X-Forwarded-For": "1.2.3.4"}, "127.0.0.1"),
        ({"Forwarded": "for=1.2.3.4"}, "127.0.0.1"),
        ({"Sec-Fetch-Site": "cross-site"}, "127.0.0.1"),
        ({"Sec-Fetch-Site": "none"}, "127.0.0.1"),
    ]:
        with pytest.raises(RelayError):
            check_origin(loop, "127.0.0.1:8000", Req(headers, remote=remote))
    exposed = cfg(host="0.0.0.0", token=TOKEN)
    assert check_origin(exposed, "10.0.0.2:8000", Req(remote="10.1.1.1")) is None  # the token check decides


def test_the_client_key_is_the_peer_unless_a_trusted_local_proxy_forwarded_it() -> None:
    req = Req({"X-Forwarded-For": "198.51.100.1, 203.0.113.7"})
    assert client_address(cfg(), req) == "127.0.0.1"
    assert client_address(cfg(trust_forwarded=True), req) == "203.0.113.7"
    assert client_address(cfg(trust_forwarded=True), Req(req.raw_headers, remote="10.0.0.9")) == "10.0.0.9"


# ------------------------------------------------------------------ binds and settings


@pytest.mark.parametrize(
    "host, loopback",
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("", False),
        ("::", False),
        ("192.168.1.5", False),
        ("my.host", False),
    ],
)
def test_loopback_binds(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_a_non_loopback_bind_needs_a_token_long_enough_to_be_one() -> None:
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", TOKEN)
    for host, token in [("0.0.0.0", None), ("", None), ("192.168.1.5", ""), ("0.0.0.0", "short")]:
        with pytest.raises(RelayConfigError) as err:
            check_bind(host, token)
        assert "HYBRID_ROUTER_RELAY_TOKEN" in err.value.hint


def test_the_start_up_message_shows_the_real_bind() -> None:
    assert describe_bind("0.0.0.0", 8000) == ("0.0.0.0:8000 (every interface)", "http://127.0.0.1:8000/")
    assert describe_bind("192.168.1.5", 80) == ("192.168.1.5:80", "http://192.168.1.5:80/")
    assert describe_bind("::1", 8000) == ("[::1]:8000", "http://[::1]:8000/")


def test_settings_come_from_the_environment_and_flags_win() -> None:
    env = {
        "HYBRID_ROUTER_CLOUD_BASE_URL": "https://api.example/v1/",
        "HYBRID_ROUTER_CLOUD_MODEL": "m",
        "HYBRID_ROUTER_CLOUD_API_KEY": "k",
        "HYBRID_ROUTER_RELAY_ALLOWED_ORIGINS": "https://a.example, http://b:81",
        "HYBRID_ROUTER_RELAY_MAX_TOKENS": "512",
        "HYBRID_ROUTER_RELAY_RATE_PER_MINUTE": "0",
        "HYBRID_ROUTER_RELAY_DAILY_USD": "2.5",
        "HYBRID_ROUTER_RELAY_TOKEN": TOKEN,
    }
    c = RelayConfig.from_env(env, host="0.0.0.0", port=9)
    assert c.cloud.upstream_url == "https://api.example/v1/chat/completions" and c.token == TOKEN
    assert c.allowed_origins == {"https://a.example", "http://b:81"} and c.limits.max_tokens == 512
    assert c.limits.rate_per_minute == 0 and c.limits.daily_usd == 2.5 and c.prices.entries
    assert TOKEN not in repr(c) and "'k'" not in repr(c)
    import argparse

    flags = argparse.Namespace(max_tokens=64, allow_origin=["https://c.example"], token=None)
    c2 = RelayConfig.from_args(flags, env, host="0.0.0.0", port=9)
    assert c2.limits.max_tokens == 64 and c2.allowed_origins == {"https://c.example"}


@pytest.mark.parametrize(
    "env",
    [
        {"HYBRID_ROUTER_CLOUD_KIND": "gemini"},
        {"HYBRID_ROUTER_CLOUD_BASE_URL": "ftp://x"},
        {"HYBRID_ROUTER_CLOUD_BASE_URL": "https://user:sk-1@api.example/v1"},
        {"HYBRID_ROUTER_CLOUD_BASE_URL": "https://api.example/v1?x=1"},
        {"HYBRID_ROUTER_RELAY_ALLOWED_ORIGINS": "https://a.example/path"},
        {"HYBRID_ROUTER_RELAY_ALLOWED_ORIGINS": "*"},
        {"HYBRID_ROUTER_RELAY_MAX_TOKENS": "lots"},
        {"HYBRID_ROUTER_RELAY_BURST": "-1"},
        {"HYBRID_ROUTER_RELAY_PUBLIC_HOSTS": "evil/.."},
        {"HYBRID_ROUTER_RELAY_DAILY_USD": "1", "HYBRID_ROUTER_RELAY_PRICES": "/nonexistent.json"},
    ],
)
def test_bad_settings_are_refused_with_a_hint(env: dict[str, str]) -> None:
    with pytest.raises(RelayConfigError) as err:
        RelayConfig.from_env(env)
    assert err.value.hint


def test_origins_are_normalized() -> None:
    assert normalize_origin("HTTPS://My.Site:443/") == "https://my.site"
    assert normalize_origin("http://[::1]:3000") == "http://[::1]:3000"


def test_the_public_config_never_holds_the_key_or_the_upstream() -> None:
    cloud = CloudConfig("openai", "https://secret-host.example/v1", "sk-x", "m", "label")
    assert "sk-x" not in json.dumps(cloud.public()) and "secret-host" not in json.dumps(cloud.public())
    assert cloud.secrets() == (
        "sk-x",
        "https://secret-host.example/v1",
        "secret-host.example",
        "secret-host.example",
    )


# ------------------------------------------------------------------ the CLIs refuse to start


def test_the_relay_cli_refuses_a_non_loopback_bind_without_a_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HYBRID_ROUTER_RELAY_TOKEN", raising=False)
    monkeypatch.setenv("HYBRID_ROUTER_CLOUD_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("HYBRID_ROUTER_CLOUD_MODEL", "m")
    assert relay_main(["--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "without an access token" in err and "hint:" in err


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYBRID_ROUTER_RELAY_")}
    env.update(
        {
            "HYBRID_ROUTER_CLOUD_BASE_URL": "http://127.0.0.1:9/v1",
            "HYBRID_ROUTER_CLOUD_MODEL": "m",
            "PYTHONPATH": f"{REPO}:{REPO / 'py_src'}",
            **extra,
        }
    )
    return env


@pytest.mark.parametrize("script", ["relay.py", "serve.py"])
def test_the_scripts_exit_2_on_a_non_loopback_bind_without_a_token(script: str) -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / script), "--host", "0.0.0.0", "--port", "1"],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2, out.stderr
    assert "without an access token" in out.stderr and "HYBRID_ROUTER_RELAY_TOKEN" in out.stderr


def test_the_relay_cli_needs_a_cloud() -> None:
    env = {k: v for k, v in _clean_env().items() if not k.startswith("HYBRID_ROUTER_CLOUD_")}
    out = subprocess.run(
        [sys.executable, str(REPO / "relay.py")], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and "no cloud provider is configured" in out.stderr


# ------------------------------------------------------------------ the bucket, the ledger, the prices


def test_the_bucket_allows_a_burst_then_the_rate_and_says_when() -> None:
    now = [100.0]
    limiter = RateLimiter(per_minute=30, burst=3, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [None, None, None]
    assert limiter.take("a") == pytest.approx(2.0)  # 30/min: a token every 2 s
    assert limiter.take("b") is None  # buckets are per client
    now[0] += 2.0
    assert limiter.take("a") is None and limiter.take("a") == pytest.approx(2.0)
    assert RateLimiter(per_minute=0, burst=1).take("x") is None  # off


def test_the_buckets_stay_bounded() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=1, clock=lambda: now[0], max_keys=50)
    for i in range(500):
        limiter.take(f"client-{i}")
        now[0] += 0.001
    assert len(limiter._buckets) <= 50


def test_the_ledger_reserves_settles_and_starts_again_each_utc_day() -> None:
    now = [1_700_000_000.0]
    ledger = SpendLedger(daily_usd=1.0, clock=lambda: now[0])
    first = ledger.reserve(0.6)
    assert first is not None and ledger.reserve(0.6) is None  # the first is still in flight
    ledger.settle(first, 0.1)
    assert ledger.spent == pytest.approx(0.1) and ledger.reserved == 0
    second = ledger.reserve(0.6)
    assert second is not None
    ledger.settle(second, None)  # no usage: charged the worst case
    ledger.settle(second, 0.0)  # settling twice changes nothing
    assert ledger.spent == pytest.approx(0.7)
    assert ledger.reserve(0.5) is None
    now[0] += ledger.seconds_to_next_day()
    assert ledger.reserve(0.5) is not None


def test_the_relay_prices_models_as_the_router_does() -> None:
    manifest = json.loads(DEFAULT_PRICES.read_text())
    ours, theirs = Prices.from_file(DEFAULT_PRICES), CloudPrices.from_dict(manifest["cloud_prices"])
    names = [
        *manifest["cloud_prices"],
        "gpt-4o-mini-2024-07-18",
        "GPT-4O",
        "claude-sonnet-4@x",
        "unknown",
        "gpt-4o-minix",
        "claude-3-5-haiku:latest",
        "",
    ]
    for name in names:
        want = theirs.price_for(name)
        got = ours.price_for(name)
        assert (got.input_usd_per_mtok, got.output_usd_per_mtok) == (
            want.input_usd_per_mtok,
            want.output_usd_per_mtok,
        ), name


# ------------------------------------------------------------------ the usage meter


def _feed(meter: UsageMeter, data: bytes, step: int) -> tuple[int, int] | None:
    for i in range(0, len(data), step):
        meter.feed(data[i : i + step])
    return meter.finish()


@pytest.mark.parametrize("step", [1, 7, 4096])
def test_usage_is_read_from_streams_split_anywhere(step: int) -> None:
    openai = (
        b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n'
        b'data: {"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":34}}\n\ndata: [DONE]\n\n'
    )
    assert _feed(UsageMeter("openai", "text/event-stream"), openai, step) == (12, 34)
    anthropic = (
        b'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":5,'
        b'"cache_read_input_tokens":2,"output_tokens":1}}}\n\n'
        b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":40}}\n\n'
    )
    assert _feed(UsageMeter("anthropic", "text/event-stream; charset=utf-8"), anthropic, step) == (7, 40)


def test_usage_of_whole_answers_and_of_answers_without_it() -> None:
    body = json.dumps({"usage": {"prompt_tokens": 3, "completion_tokens": 4}}).encode()
    assert _feed(UsageMeter("openai", "application/json"), body, 5) == (3, 4)
    assert _feed(UsageMeter("openai", "text/event-stream"), b'data: {"choices":[]}\n\n', 3) is None
    big = UsageMeter("openai", "application/json", limit=10)
    assert _feed(big, body, 5) is None  # over the meter's limit: unknown, charged the worst case
