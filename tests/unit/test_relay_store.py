"""The relay's store of rate limits and spend (hybrid_router_relay/store.py): the in-memory one and the
Redis one pass the same contract tests (a real ``redis-server``, Debian's, started here on a free port
with nothing saved to disk), then what only Redis does: another store on the same server sees the same
spend (a restart), a reservation whose process died lapses, an unreachable server refuses the call."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hybrid_router_relay import RelayConfig, RelayConfigError, RelayError
from hybrid_router_relay.limits import next_day_seconds
from hybrid_router_relay.store import RESERVATION_LEASE_S, MemoryStore, RedisStore, RelayStore, open_store

T0 = 1_700_005_800.0  # 2023-11-14 23:50 UTC: the next day is closer than a lease


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class RedisServer:
    """A ``redis-server`` process of this test's own (not the system's service)."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def redis_binary() -> str:
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if found is None:
        pytest.fail("redis-server is not installed: ./hr setup (or ./hr test) installs Debian's redis-server")
    return found


def start_redis(folder: Path) -> RedisServer:
    port = free_port()
    process = subprocess.Popen(
        [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        + ["--dir", str(folder), "--daemonize", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(64).startswith(b"+PONG"):
                    return RedisServer(port, process)
        except OSError:
            time.sleep(0.05)
    process.kill()
    pytest.fail(f"redis-server did not answer on port {port}")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(tmp_path)
    try:
        yield server
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)


Factory = Callable[..., RelayStore]


@pytest.fixture(params=["memory", "redis"])
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Factory]:
    """Stores of one kind, all sharing one clock ``now[0]`` (and, for Redis, one server)."""
    made: list[RelayStore] = []
    server = start_redis(tmp_path) if request.param == "redis" else None

    def make(
        now: list[float], *, per_minute: float = 0, burst: int = 1, daily_usd: float | None = None
    ) -> RelayStore:
        url = server.url if server is not None else None
        store = open_store(url, per_minute=per_minute, burst=burst, daily_usd=daily_usd, clock=lambda: now[0])
        made.append(store)
        return store

    try:
        yield make
    finally:
        for store in made:
            await store.close()
        if server is not None:
            server.process.terminate()
            server.process.wait(timeout=10)


# ------------------------------------------------------------------ the contract, both stores


async def test_the_bucket_allows_a_burst_then_the_rate_and_says_when(make_store: Factory) -> None:
    now = [T0]
    store = make_store(now, per_minute=30, burst=3)
    await store.start()
    assert [await store.take("a") for _ in range(3)] == [None, None, None]
    assert await store.take("a") == pytest.approx(2.0)  # 30/min: a token every 2 s
    assert await store.take("b") is None  # buckets are per client
    now[0] += 2.0
    assert await store.take("a") is None and await store.take("a") == pytest.approx(2.0)
    now[0] += 600.0  # long idle: back to a full burst, never more
    assert [await store.take("a") for _ in range(4)][3] == pytest.approx(2.0)
    assert await make_store(now, per_minute=0, burst=1).take("x") is None  # off


async def test_the_ledger_reserves_settles_and_starts_again_each_utc_day(make_store: Factory) -> None:
    now = [T0]
    store = make_store(now, daily_usd=1.0)
    first = await store.reserve(0.6)
    assert first is not None and await store.reserve(0.6) is None  # the first is still in flight
    assert await store.totals() == pytest.approx((0.0, 0.6))
    await store.settle(first, 0.1)
    assert await store.totals() == pytest.approx((0.1, 0.0))
    second = await store.reserve(0.6)
    assert second is not None
    await store.settle(second, None)  # no usage: charged the worst case
    await store.settle(second, 0.0)  # settling twice changes nothing
    assert await store.totals() == pytest.approx((0.7, 0.0))
    assert await store.reserve(0.5) is None
    assert store.seconds_to_next_day() == pytest.approx(next_day_seconds(now[0]))
    in_flight = await store.reserve(0.3)
    assert in_flight is not None
    now[0] += store.seconds_to_next_day()  # a new UTC day: the spend starts again ...
    assert await store.totals() == pytest.approx((0.0, 0.3))  # ... a call in flight keeps its hold
    assert await store.reserve(0.8) is None and await store.reserve(0.7) is not None


async def test_no_cap_still_counts_the_spend(make_store: Factory) -> None:
    store = make_store([T0], daily_usd=None)
    held = await store.reserve(1e9)
    assert held is not None
    await store.settle(held, 2.5)
    assert await store.totals() == pytest.approx((2.5, 0.0))


async def test_concurrent_reservations_never_pass_the_cap(make_store: Factory) -> None:
    store = make_store([T0], daily_usd=5.0)
    held = await asyncio.gather(*(store.reserve(1.0) for _ in range(40)))
    granted = [r for r in held if r is not None]
    assert len(granted) == 5
    await asyncio.gather(*(store.settle(r, None) for r in granted))
    assert await store.totals() == pytest.approx((5.0, 0.0))


async def test_concurrent_takes_never_pass_the_burst(make_store: Factory) -> None:
    now = [T0]
    store = make_store(now, per_minute=1, burst=4)
    waits = await asyncio.gather(*(store.take("c") for _ in range(30)))
    assert sum(w is None for w in waits) == 4


# ------------------------------------------------------------------ what only Redis does


async def test_stores_sharing_one_redis_share_the_cap_and_the_buckets(redis_server: RedisServer) -> None:
    now = [T0]
    stores = [
        RedisStore(redis_server.url, per_minute=1, burst=4, daily_usd=5.0, clock=lambda: now[0])
        for _ in range(3)
    ]  # three relay processes' views of one server
    try:
        held = await asyncio.gather(*(stores[i % 3].reserve(1.0) for i in range(40)))
        assert sum(r is not None for r in held) == 5
        waits = await asyncio.gather(*(stores[i % 3].take("c") for i in range(30)))
        assert sum(w is None for w in waits) == 4
    finally:
        for store in stores:
            await store.close()


async def test_a_new_store_on_the_same_redis_keeps_the_days_spend_and_buckets(
    redis_server: RedisServer,
) -> None:
    now = [T0]
    first = RedisStore(redis_server.url, per_minute=1, burst=2, daily_usd=1.0, clock=lambda: now[0])
    held = await first.reserve(0.9)
    assert held is not None
    await first.settle(held, 0.9)
    assert await first.take("a") is None and await first.take("a") is None
    await first.close()  # the relay process stopped
    again = RedisStore(redis_server.url, per_minute=1, burst=2, daily_usd=1.0, clock=lambda: now[0])
    try:
        assert await again.totals() == pytest.approx((0.9, 0.0))
        assert await again.reserve(0.2) is None and await again.reserve(0.1) is not None
        assert await again.take("a") == pytest.approx(60.0)  # the same bucket, still empty
    finally:
        await again.close()


async def test_a_reservation_never_settled_lapses_after_its_lease(redis_server: RedisServer) -> None:
    now = [T0]
    dead = RedisStore(redis_server.url, per_minute=0, burst=1, daily_usd=1.0, clock=lambda: now[0])
    assert await dead.reserve(1.0) is not None
    await dead.close()  # its process died mid-call: never settled
    live = RedisStore(redis_server.url, per_minute=0, burst=1, daily_usd=1.0, clock=lambda: now[0])
    try:
        assert await live.reserve(0.5) is None
        now[0] += RESERVATION_LEASE_S + 1
        assert await live.totals() == pytest.approx((0.0, 0.0))
        assert await live.reserve(0.5) is not None
    finally:
        await live.close()


async def test_an_unreachable_redis_refuses_to_start_and_refuses_calls() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    store = RedisStore(url, per_minute=60, burst=1, daily_usd=1.0)
    try:
        with pytest.raises(RelayConfigError, match="cannot be reached"):
            await store.start()
        with pytest.raises(RelayError) as refused:
            await store.reserve(0.1)
        assert refused.value.status == 503 and refused.value.type == "relay_store_unavailable"
        with pytest.raises(RelayError):
            await store.take("a")
    finally:
        await store.close()


def test_the_store_setting_comes_from_the_flag_or_the_environment() -> None:
    env = {"HYBRID_ROUTER_CLOUD_BASE_URL": "http://127.0.0.1:9/v1", "HYBRID_ROUTER_CLOUD_MODEL": "m"}
    assert RelayConfig.from_env(env).store is None
    assert RelayConfig.from_env({**env, "HYBRID_ROUTER_RELAY_STORE": "memory"}).store is None
    url = "redis://127.0.0.1:6390/2"
    assert RelayConfig.from_env({**env, "HYBRID_ROUTER_RELAY_STORE": url}).store == url
    with pytest.raises(RelayConfigError, match="redis://"):
        RelayConfig.from_env({**env, "HYBRID_ROUTER_RELAY_STORE": "postgres://db/1"})
    assert isinstance(open_store(None, per_minute=1, burst=1, daily_usd=None), MemoryStore)
    assert isinstance(open_store(url, per_minute=1, burst=1, daily_usd=None), RedisStore)
