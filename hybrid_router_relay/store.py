"""Where the relay keeps what it counts between requests: the rate-limit buckets and the day's spend.

:class:`RelayStore` is the interface the handler uses (``take``, ``reserve``, ``settle``); two
implementations keep the same contract (``tests/unit/test_relay_store.py`` runs one set of tests on
both):

- :class:`MemoryStore` (the default): a :class:`~.limits.RateLimiter` and a :class:`~.limits.SpendLedger`
  in this process. One relay process only; a restart forgets the day's spend.
- :class:`RedisStore` (``--store redis://host:port/db``): the same buckets and ledger in Redis, so
  every relay process sharing it shares the limits and the cap, and a restart keeps the day's spend.
  Each update is one Lua script (atomic in Redis): two processes cannot both take the last token or
  both reserve the last dollars.

The spend in Redis: ``<prefix>spent:<UTC day>`` (kept two days), and the calls in flight as a hash
``<prefix>reserved`` (id: USD) with a sorted set ``<prefix>leases`` (id: expiry). A reservation whose
process died before settling it is dropped when its lease ends (:data:`RESERVATION_LEASE_S`, an hour);
a call still streaming after that no longer holds its worst case, and is charged when it settles.
A bucket is a hash ``<prefix>bucket:<client>`` that expires once it would be full again (a full bucket
is the same as none). Times come from the relay's clock (injectable, as the in-memory ones), so the
processes' clocks should agree (NTP); a clock behind another's never refills a bucket backwards.

If Redis cannot be reached, the call is refused (503 ``relay_store_unavailable``): the relay fails closed
rather than spending without a cap.
"""

from __future__ import annotations

import datetime as dt
import time
import urllib.parse
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .errors import RelayConfigError, RelayError
from .limits import RateLimiter, Reservation, SpendLedger, next_day_seconds

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript

__all__ = ["RESERVATION_LEASE_S", "MemoryStore", "RedisStore", "RelayStore", "open_store"]

#: how long a reservation is held when its process never settles it (it died mid-call)
RESERVATION_LEASE_S = 3600.0
_SPENT_TTL_S = 2 * 86400


class RelayStore(Protocol):
    """What the relay counts between requests (every method may be called concurrently)."""

    async def take(self, key: str) -> float | None:
        """Spend one token of ``key``'s bucket: None when there was one, else seconds until there is."""
        ...

    async def reserve(self, usd: float) -> Reservation | None:
        """Hold ``usd`` for a call, or None when spent + reserved + ``usd`` would pass the daily cap."""
        ...

    async def settle(self, reservation: Reservation, usd: float | None) -> None:
        """Turn a reservation into today's spend: ``usd`` when the answer said, else the worst case
        held; settling twice changes nothing."""
        ...

    async def totals(self) -> tuple[float, float]:
        """(spent today, reserved now) in USD."""
        ...

    def seconds_to_next_day(self) -> float: ...

    async def start(self) -> None:
        """Check the store can be used (called before the relay serves)."""
        ...

    async def close(self) -> None: ...


class MemoryStore:
    """In this process: one relay process only."""

    def __init__(self, limiter: RateLimiter, ledger: SpendLedger) -> None:
        self.limiter, self.ledger = limiter, ledger

    async def take(self, key: str) -> float | None:
        return self.limiter.take(key)

    async def reserve(self, usd: float) -> Reservation | None:
        return self.ledger.reserve(usd)

    async def settle(self, reservation: Reservation, usd: float | None) -> None:
        self.ledger.settle(reservation, usd)

    async def totals(self) -> tuple[float, float]:
        return self.ledger.totals()

    def seconds_to_next_day(self) -> float:
        return self.ledger.seconds_to_next_day()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


# KEYS: the bucket. ARGV: now, tokens per second, burst, expiry (s). Answers the wait as a string
# ("-1": go), since Redis turns a Lua number into an integer.
_TAKE = """
local now, rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 't', 'u')
local tokens, updated = tonumber(b[1]), tonumber(b[2])
if tokens == nil or updated == nil then tokens, updated = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
updated = math.max(updated, now)
local wait = -1
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens), 'u', string.format('%.17g', updated))
redis.call('EXPIRE', KEYS[1], ARGV[4])
return string.format('%.17g', wait)
"""

# KEYS: today's spend, the reservations (hash id: usd), their leases (zset id: expiry).
# ARGV: now, usd, cap ("" for none), id, lease (s). Answers 1 (held) or 0 (over the cap).
_RESERVE = """
local now = tonumber(ARGV[1])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)) do
  redis.call('HDEL', KEYS[2], id)
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local reserved = 0
for _, v in ipairs(redis.call('HVALS', KEYS[2])) do reserved = reserved + tonumber(v) end
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
local usd = tonumber(ARGV[2])
if ARGV[3] ~= '' and spent + reserved + usd > tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[4], ARGV[2])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[5]), ARGV[4])
return 1
"""

# KEYS: today's spend, the reservations, their leases. ARGV: id, usd spent, expiry of the day's key (s).
_SETTLE = """
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('INCRBYFLOAT', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""

# KEYS: today's spend, the reservations, their leases. ARGV: now. Answers {spent, reserved} as strings.
_TOTALS = """
local reserved = 0
local live = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. ARGV[1], '+inf')
for _, id in ipairs(live) do reserved = reserved + tonumber(redis.call('HGET', KEYS[2], id) or '0') end
return {redis.call('GET', KEYS[1]) or '0', string.format('%.17g', reserved)}
"""


def _unavailable(exc: Exception) -> RelayError:
    return RelayError(
        503,
        "relay_store_unavailable",
        "the relay's shared store (Redis) cannot be reached",
        hint="Retry in a little while; the operator checks the Redis server named by "
        f"HYBRID_ROUTER_RELAY_STORE ({type(exc).__name__}).",
        headers={"Retry-After": "5"},
    )


class RedisStore:
    """In Redis (``redis://host:port/db``, ``rediss://`` for TLS, ``unix:///path.sock?db=N``): shared by
    every relay process using the same server and ``prefix``."""

    def __init__(
        self,
        url: str,
        *,
        per_minute: float,
        burst: int,
        daily_usd: float | None,
        prefix: str = "hybrid_router_relay:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        import redis.asyncio as aioredis  # only a relay with --store needs the package

        self.url = url
        self.rate = per_minute / 60.0
        self.burst = max(1, burst)
        self.daily_usd = daily_usd
        self.prefix = prefix
        self._clock = clock
        self._redis = aioredis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
        self._take = self._redis.register_script(_TAKE)
        self._reserve = self._redis.register_script(_RESERVE)
        self._settle = self._redis.register_script(_SETTLE)
        self._totals = self._redis.register_script(_TOTALS)

    def _day_keys(self) -> list[str]:
        day = dt.datetime.fromtimestamp(self._clock(), dt.UTC).date().isoformat()
        return [f"{self.prefix}spent:{day}", f"{self.prefix}reserved", f"{self.prefix}leases"]

    async def take(self, key: str) -> float | None:
        if self.rate <= 0:
            return None
        expiry = max(1, int(self.burst / self.rate) + 1)  # by then the bucket is full: the same as none
        args = [repr(self._clock()), repr(self.rate), str(self.burst), str(expiry)]
        wait = float(await self._call(self._take, [f"{self.prefix}bucket:{key}"], args))
        return None if wait < 0 else wait

    async def reserve(self, usd: float) -> Reservation | None:
        ident = uuid.uuid4().hex
        cap = "" if self.daily_usd is None else repr(float(self.daily_usd))
        args = [repr(self._clock()), repr(float(usd)), cap, ident, repr(RESERVATION_LEASE_S)]
        held = await self._call(self._reserve, self._day_keys(), args)
        return Reservation(usd, ident=ident) if int(held) == 1 else None

    async def settle(self, reservation: Reservation, usd: float | None) -> None:
        if reservation.settled:
            return
        reservation.settled = True
        spent = reservation.usd if usd is None else usd
        args = [reservation.ident, repr(float(spent)), str(_SPENT_TTL_S)]
        await self._call(self._settle, self._day_keys(), args)

    async def totals(self) -> tuple[float, float]:
        spent, reserved = await self._call(self._totals, self._day_keys(), [repr(self._clock())])
        return float(spent), float(reserved)

    def seconds_to_next_day(self) -> float:
        return next_day_seconds(self._clock())

    async def start(self) -> None:
        try:
            await self._redis.ping()
        except Exception as exc:
            raise RelayConfigError(
                f"the relay's store {_shown(self.url)} cannot be reached: {type(exc).__name__}: {exc}",
                hint="Start Redis there or fix HYBRID_ROUTER_RELAY_STORE (--store redis://host:port/db).",
            ) from exc

    async def close(self) -> None:
        await self._redis.aclose()

    async def _call(self, script: AsyncScript, keys: list[str], args: Sequence[str | int]) -> Any:
        from redis.exceptions import RedisError

        try:
            return await script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc


def _shown(url: str) -> str:
    """The URL without its password."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def open_store(
    url: str | None,
    *,
    per_minute: float,
    burst: int,
    daily_usd: float | None,
    clock: Callable[[], float] = time.time,
) -> RelayStore:
    """The store a setting names: None or ``memory`` in this process, ``redis://…`` in Redis."""
    name = (url or "memory").strip()
    scheme = urllib.parse.urlsplit(name).scheme or name
    if scheme == "memory":
        return MemoryStore(RateLimiter(per_minute, burst, clock=clock), SpendLedger(daily_usd, clock=clock))
    if scheme in ("redis", "rediss", "unix"):
        return RedisStore(name, per_minute=per_minute, burst=burst, daily_usd=daily_usd, clock=clock)
    raise RelayConfigError(
        f"the relay store {_shown(name)!r} is not one the relay knows",
        hint="Use memory (the default: one process) or redis://host:port/db (shared by every process).",
    )
