"""Relay processes sharing one Redis (``python relay.py --store redis://…``, real processes, a real
``redis-server``) in front of the fake upstream (tests/fake_upstream.py, a fake named as one: it records
every call it receives): under concurrent calls to both, the upstream never receives more than the daily
cap's worth; a relay started again on the same Redis keeps the day's spend; the rate limit is shared."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from tests.fake_upstream import FakeUpstream
from tests.unit.relay_helpers import BODY, CHAT, MODEL
from tests.unit.test_relay_store import RedisServer, free_port, redis_server  # noqa: F401 (a fixture)

REPO = Path(__file__).resolve().parents[2]
#: every output token costs $1, input is free: a call asking 9 tokens reserves $9 and the fake's answer
#: (9 completion tokens) settles $9, so a $45 cap is exactly five calls
PRICES = {"default": {"input_usd_per_mtok": 0, "output_usd_per_mtok": 1_000_000}}
CALL = {**BODY, "max_tokens": 9}


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[FakeUpstream, int]]:
    fake = FakeUpstream()
    server = TestServer(fake.app())
    await server.start_server()
    try:
        yield fake, server.port or 0
    finally:
        await server.close()


@contextmanager
def relay_process(
    store: str, upstream_port: int, folder: Path, *flags: str, wait: bool = True
) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """``python relay.py --store STORE`` on a free port; stopped (SIGTERM) on leaving."""
    port = free_port()
    prices = folder / "prices.json"
    prices.write_text(json.dumps(PRICES))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HYBRID_ROUTER_RELAY_", "HYBRID_ROUTER_CLOUD_"))
    }
    env.update(
        HYBRID_ROUTER_CLOUD_BASE_URL=f"http://127.0.0.1:{upstream_port}/v1",
        HYBRID_ROUTER_CLOUD_MODEL=MODEL,
        HYBRID_ROUTER_CLOUD_API_KEY="sk-fake",
        PYTHONPATH=f"{REPO}:{REPO / 'py_src'}",
    )
    command = [sys.executable, str(REPO / "relay.py"), "--port", str(port), "--store", store]
    process = subprocess.Popen(
        [*command, "--prices", str(prices), *flags],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        if wait:
            _wait_listening(port, process)
        yield port, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_listening(port: int, process: subprocess.Popen[str]) -> None:
    import socket

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out = process.stdout.read() if process.stdout else ""
            pytest.fail(f"the relay exited ({process.returncode}): {out[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"the relay did not listen on {port}")


async def call(session: aiohttp.ClientSession, port: int) -> int:
    origin = f"http://127.0.0.1:{port}"
    async with session.post(
        origin + CHAT, json=CALL, headers={"Origin": origin, "Content-Type": "application/json"}
    ) as resp:
        await resp.read()
        return resp.status


async def test_two_relays_on_one_redis_never_pass_the_daily_cap_together(
    redis_server: RedisServer,  # noqa: F811
    upstream: tuple[FakeUpstream, int],
    tmp_path: Path,
) -> None:
    fake, fake_port = upstream
    cap = ("--daily-usd", "45", "--rate-per-minute", "0")
    with (
        relay_process(redis_server.url, fake_port, tmp_path, *cap) as (a, _),
        relay_process(redis_server.url, fake_port, tmp_path, *cap) as (b, _),
    ):
        async with aiohttp.ClientSession() as session:
            statuses = await asyncio.gather(*(call(session, (a, b)[i % 2]) for i in range(24)))
            assert statuses.count(200) == 5 and statuses.count(402) == 19, statuses
            assert len(fake.requests) == 5  # $45 of $9 calls, across both processes
            assert {await call(session, a), await call(session, b)} == {402}
    assert len(fake.requests) == 5


async def test_two_relays_in_memory_each_allow_the_whole_cap(
    upstream: tuple[FakeUpstream, int], tmp_path: Path
) -> None:
    """Why the store exists: without it, two processes together spend twice the cap."""
    fake, fake_port = upstream
    cap = ("--daily-usd", "45", "--rate-per-minute", "0")
    with (
        relay_process("memory", fake_port, tmp_path, *cap) as (a, _),
        relay_process("memory", fake_port, tmp_path, *cap) as (b, _),
    ):
        async with aiohttp.ClientSession() as session:
            statuses = await asyncio.gather(*(call(session, (a, b)[i % 2]) for i in range(24)))
    assert statuses.count(200) == 10 and len(fake.requests) == 10


async def test_a_relay_started_again_on_the_same_redis_keeps_the_days_spend(
    redis_server: RedisServer,  # noqa: F811
    upstream: tuple[FakeUpstream, int],
    tmp_path: Path,
) -> None:
    fake, fake_port = upstream
    cap = ("--daily-usd", "27", "--rate-per-minute", "0")
    async with aiohttp.ClientSession() as session:
        with relay_process(redis_server.url, fake_port, tmp_path, *cap) as (port, _):
            assert [await call(session, port) for _ in range(2)] == [200, 200]
        # stopped, and a new one started on the same Redis: $18 of $27 already spent today
        with relay_process(redis_server.url, fake_port, tmp_path, *cap) as (port, _):
            assert [await call(session, port) for _ in range(2)] == [200, 402]
        with relay_process(redis_server.url, fake_port, tmp_path, *cap) as (port, _):
            assert await call(session, port) == 402
    assert len(fake.requests) == 3


async def test_two_relays_on_one_redis_share_a_clients_rate_limit(
    redis_server: RedisServer,  # noqa: F811
    upstream: tuple[FakeUpstream, int],
    tmp_path: Path,
) -> None:
    fake, fake_port = upstream
    rate = ("--rate-per-minute", "0.01", "--burst", "3")  # three calls, then one every 100 minutes
    with (
        relay_process(redis_server.url, fake_port, tmp_path, *rate) as (a, _),
        relay_process(redis_server.url, fake_port, tmp_path, *rate) as (b, _),
    ):
        async with aiohttp.ClientSession() as session:
            statuses = await asyncio.gather(*(call(session, (a, b)[i % 2]) for i in range(10)))
    assert statuses.count(200) == 3 and statuses.count(429) == 7 and len(fake.requests) == 3


async def test_a_relay_whose_redis_is_not_there_does_not_start(
    upstream: tuple[FakeUpstream, int], tmp_path: Path
) -> None:
    _, fake_port = upstream
    url = f"redis://127.0.0.1:{free_port()}/0"
    with relay_process(url, fake_port, tmp_path, wait=False) as (_, process):
        out, _ = process.communicate(timeout=60)
    assert process.returncode == 2 and "cannot be reached" in out and "Traceback" not in out
