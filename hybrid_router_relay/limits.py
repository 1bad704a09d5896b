"""How much a client may ask: a token bucket per client, and an optional daily spend cap.

- :class:`RateLimiter`: a token bucket per client key (``burst`` requests at once, refilled at
  ``per_minute``); :meth:`RateLimiter.take` answers None (go) or the seconds until the next token
  (the ``Retry-After``). Idle full buckets are dropped when there are many, so memory stays bounded.
- :class:`SpendLedger`: the USD spent today (UTC). A call's worst-case cost is *reserved* before it is
  forwarded (refused when spent + reserved + cost would pass the cap), then *settled* at the cost of
  the usage in the answer; an answer without usage (a cut or stopped stream) keeps its worst case, an
  error status costs nothing. In memory: a restart forgets the day's spend (``.store.RedisStore`` keeps
  both in Redis, shared by every relay process).
- :class:`Prices`: list prices from ``models_manifest.json``'s ``cloud_prices`` (USD per million
  tokens), matched as ``hybrid_router.prices.CloudPrices.price_for`` does (a unit test holds them equal):
  the exact name, else the longest listed name it starts with followed by ``-``, ``:`` or ``@``, else
  ``default``.

The bucket is written here rather than taken from a library: ``aiolimiter`` makes callers wait instead
of answering "no, retry in N s" and keeps no per-client buckets; ``limits`` counts fixed or moving
windows (no bucket) and brings storage back-ends we do not need. Clocks are injectable: no test sleeps.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from .errors import RelayConfigError

__all__ = ["Price", "Prices", "RateLimiter", "Reservation", "SpendLedger", "next_day_seconds"]

_SEPARATORS = ("-", ":", "@")


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input_usd_per_mtok: float
    output_usd_per_mtok: float

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.input_usd_per_mtok + tokens_out * self.output_usd_per_mtok) / 1_000_000


@dataclass(frozen=True)
class Prices:
    """The price table (names lower-cased); empty prices everything at 0."""

    entries: Mapping[str, Price] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_file(cls, path: Path) -> Prices:
        """``cloud_prices`` of a manifest (or a file holding just that mapping)."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RelayConfigError(
                f"the price table {path} could not be read: {exc}",
                hint="Point HYBRID_ROUTER_RELAY_PRICES (--prices) at models_manifest.json or a JSON file "
                '{"default": {"input_usd_per_mtok": ..., "output_usd_per_mtok": ...}, ...}.',
            ) from exc
        table = raw.get("cloud_prices", raw) if isinstance(raw, Mapping) else None
        return cls.from_mapping(table, where=str(path))

    @classmethod
    def from_mapping(cls, table: object, *, where: str = "cloud_prices") -> Prices:
        hint = 'Each entry is {"input_usd_per_mtok": number >= 0, "output_usd_per_mtok": number >= 0}.'
        if not isinstance(table, Mapping) or "default" not in {str(k).lower() for k in table}:
            raise RelayConfigError(f"{where}: a price table needs a 'default' entry", hint=hint)
        entries: dict[str, Price] = {}
        for name, entry in table.items():
            values = [entry.get(k) if isinstance(entry, Mapping) else None for k in _PRICE_KEYS]
            if not all(_is_price(v) for v in values):
                raise RelayConfigError(f"{where}: the price of {name!r} is not two numbers >= 0", hint=hint)
            entries[str(name).strip().lower()] = Price(float(values[0]), float(values[1]))  # type: ignore[arg-type]
        return cls(MappingProxyType(entries))

    def price_for(self, model: str) -> Price:
        if not self.entries:
            return Price(0.0, 0.0)
        name = model.strip().lower()
        if name in self.entries:
            return self.entries[name]
        prefixes = [
            k
            for k in self.entries
            if k != "default" and name.startswith(k) and name[len(k) : len(k) + 1] in _SEPARATORS
        ]
        return self.entries[max(prefixes, key=len)] if prefixes else self.entries["default"]


_PRICE_KEYS = ("input_usd_per_mtok", "output_usd_per_mtok")


def _is_price(value: object) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    )


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets per client key; ``per_minute <= 0`` turns limiting off."""

    def __init__(
        self,
        per_minute: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(1, burst)
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str) -> float | None:
        """Spend one token of ``key``'s bucket: None when there was one, else seconds until there is."""
        if not self.enabled:
            return None
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            self._evict(now)
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / self.rate

    def _evict(self, now: float) -> None:
        if len(self._buckets) < self._max_keys:
            return
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.updated) * self.rate >= self.burst]
        for key in full:  # a full bucket is the same as no bucket
            del self._buckets[key]
        while len(self._buckets) >= self._max_keys:  # still too many: drop the least recently used
            del self._buckets[min(self._buckets, key=lambda k: self._buckets[k].updated)]


def next_day_seconds(now: float) -> float:
    """Seconds from ``now`` (a Unix time) to the next UTC midnight, at least 1."""
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    midnight = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), dt.UTC)
    return max(1.0, midnight.timestamp() - now)


@dataclass
class Reservation:
    """One call's worst case, held until :meth:`SpendLedger.settle`."""

    usd: float
    settled: bool = False
    #: the store's name for it (``RedisStore``: its entry among the calls in flight)
    ident: str = ""


class SpendLedger:
    """Today's spend (UTC) against ``daily_usd`` (None: no cap, but still counted)."""

    def __init__(self, daily_usd: float | None, *, clock: Callable[[], float] = time.time) -> None:
        self.daily_usd = daily_usd
        self._clock = clock
        self._day = self._today()
        self.spent = 0.0
        self.reserved = 0.0

    def _today(self) -> dt.date:
        return dt.datetime.fromtimestamp(self._clock(), dt.UTC).date()

    def _roll(self) -> None:
        today = self._today()
        if today != self._day:
            self._day, self.spent = today, 0.0  # calls in flight keep their reservations

    def seconds_to_next_day(self) -> float:
        return next_day_seconds(self._clock())

    def totals(self) -> tuple[float, float]:
        """(spent today, reserved now) in USD."""
        self._roll()
        return self.spent, self.reserved

    def reserve(self, usd: float) -> Reservation | None:
        """Hold ``usd`` for a call, or None when that would pass the cap."""
        self._roll()
        if self.daily_usd is not None and self.spent + self.reserved + usd > self.daily_usd:
            return None
        self.reserved += usd
        return Reservation(usd)

    def settle(self, reservation: Reservation, usd: float | None) -> None:
        """Turn a reservation into spend: ``usd`` when the answer said, else the worst case held."""
        if reservation.settled:
            return
        reservation.settled = True
        self._roll()
        self.reserved = max(0.0, self.reserved - reservation.usd)
        self.spent += reservation.usd if usd is None else usd
