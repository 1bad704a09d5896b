"""The cost ledger: every finished request, today's cloud spend, and what the device saved.

Each generation (the tasks of :data:`hybrid_router.execute.LEDGER_TASKS`) is recorded once by the
executor, whether it ended in a result or an error (a cancelled call is an error named ``AbortError``; a
call refused at the wire is an error too). The device tasks (embeddings, classification, ...) are not
counted here. :meth:`Ledger.stats` gives

- ``requests``: every recorded request; ``local`` / ``cloud``: those answered by that side;
  ``errors``: those that ended in an error (so ``requests == local + cloud + errors``);
- ``fallbacks``: requests on which the other side was tried after a failure (answered or not);
- ``cloud_cost_usd``: the estimated cost of the cloud answers (the manifest's price table);
- ``saved_usd``: what the requests the device answered would have cost in the cloud, priced with the
  configured cloud model (``cloud_model``; the table's ``"default"`` when unknown or None);
- ``spent_today_usd``: the cloud spend of the current day, which the budget rule reads. It restarts
  at 0 when ``today()`` returns a new date.

``to_state()`` / ``from_state()`` turn the ledger into plain data and back, so the worker can keep it
across reloads.

**The budget holds.** Before a cloud call the executor :meth:`~Ledger.reserve` s its worst-case cost (the
prompt's tokens, plus what the provider adds around them as its usage has shown (the planner's framing
allowance), and ``max_tokens``, at the cloud model's price): a reservation that would take today's
spend plus what is already reserved past the budget is refused, so concurrent calls cannot overspend.
When the call ends the reservation is :meth:`~Ledger.release` d and the call recorded at its real cost
(a cut or stopped stream at what it received).

**One ledger per origin.** With a :class:`LedgerStore` (the browser's: IndexedDB under a Web Lock, so
every tab of the origin shares it) every change is also kept as a *delta*; :meth:`~Ledger.sync` applies
the deltas to the stored state atomically and reads back what the other tabs did, and
``async with ledger.synced():`` holds the store while a decision is made on fresh figures (the budget
check and the reservation of one call, across tabs). Without a store the ledger lives in memory.
Reservations older than :data:`RESERVATION_TTL_S` (a tab closed mid-call) expire. Pure Python, no I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from hybrid_router.errors import ValidationError
from hybrid_router.route import Route, RouteTarget

__all__ = [
    "RESERVATION_TTL_S",
    "STATE_VERSION",
    "Ledger",
    "LedgerStore",
    "MemoryLedgerStore",
    "Price",
    "PriceTable",
]

#: The version of :meth:`Ledger.to_state`'s format.
STATE_VERSION = 1
#: A reservation no call settled within this time (its tab closed) no longer counts.
RESERVATION_TTL_S = 15 * 60.0
_ids = itertools.count(1)


class Price(Protocol):
    """A model's list price (see ``manifest.CloudPrice``)."""

    def cost(self, tokens_in: int, tokens_out: int) -> float: ...


class PriceTable(Protocol):
    """Where prices come from (``Manifest`` and its ``cloud_prices`` both are one)."""

    def price_for(self, model: str | None) -> Price: ...


class LedgerStore(Protocol):
    """Where the ledgers of an origin's tabs meet: a lock every tab shares, and the state it guards."""

    def locked(self) -> AbstractAsyncContextManager[None]: ...

    async def read(self) -> dict[str, Any] | None: ...

    async def write(self, state: dict[str, Any]) -> None: ...


@dataclass
class MemoryLedgerStore:
    """A :class:`LedgerStore` in memory (tests: two ledgers on one store are two tabs)."""

    state: dict[str, Any] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def locked(self) -> AbstractAsyncContextManager[None]:
        return self.lock

    async def read(self) -> dict[str, Any] | None:
        await asyncio.sleep(0)  # as a real store would: other tasks get a turn
        return None if self.state is None else dict(self.state)

    async def write(self, state: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        self.state = dict(state)


@dataclass
class _Delta:
    """What this ledger changed since it last synced with its store."""

    totals: _Totals = field(default_factory=lambda: _Totals())
    spent: float = 0.0
    reserved: dict[str, tuple[float, float]] = field(default_factory=dict)  # id -> (usd, at)
    released: set[str] = field(default_factory=set)
    tasks: dict[str, dict[str, float]] = field(default_factory=dict)  # task -> {requests, local, saved_usd}


def _combined(first: _Delta, then: _Delta) -> _Delta:
    """Two deltas in order as one (a write that failed: its changes go back in front of the newer ones)."""
    out = _Delta()
    for name in (f.name for f in dataclasses.fields(_Totals)):
        setattr(out.totals, name, getattr(first.totals, name) + getattr(then.totals, name))
    out.spent = first.spent + then.spent
    out.reserved = {k: v for k, v in first.reserved.items() if k not in then.released}
    out.reserved.update(then.reserved)
    out.released = first.released | {k for k in then.released if k not in first.reserved}
    for part in (first, then):
        for task, row in part.tasks.items():
            into = out.tasks.setdefault(task, {})
            for name, value in row.items():
                into[name] = into.get(name, 0) + value
    return out


@dataclass
class _Totals:
    requests: int = 0
    local: int = 0
    cloud: int = 0
    fallbacks: int = 0
    errors: int = 0
    cloud_cost_usd: float = 0.0
    saved_usd: float = 0.0


class Ledger:
    """Counts requests and money; see the module docstring."""

    def __init__(
        self,
        prices: PriceTable,
        *,
        cloud_model: str | None = None,
        today: Callable[[], date] = date.today,
        store: LedgerStore | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.prices = prices
        #: The model whose price the savings are estimated with (the configured cloud model).
        self.cloud_model = cloud_model
        self._today = today
        self._now = now
        self.store = store
        self._totals = _Totals()
        self._day = today()
        self._spent = 0.0
        self._reserved: dict[str, tuple[float, float]] = {}
        self._tasks: dict[str, dict[str, float]] = {}
        self._delta = _Delta()
        self._lock = asyncio.Lock()
        #: called after every recorded request (the worker saves the state so a reload keeps the budget)
        self.listeners: list[Callable[[Ledger], None]] = []

    def cost(self, model: str | None, tokens_in: int, tokens_out: int) -> float:
        """The estimated price of a cloud call to ``model`` with that usage."""
        return self.prices.price_for(model).cost(tokens_in, tokens_out)

    def record(
        self,
        *,
        target: RouteTarget | None,
        fallback: bool = False,
        error: str | None = None,
        tokens_in: int = 0,
        tokens_out: int = 0,
        cost_usd: float = 0.0,
        task: str = "text-generation",
        saved_usd: float | None = None,
    ) -> None:
        """One finished request: the side that answered (or last tried, or None), whether a fallback
        was tried, the name of the error it ended in (None: it answered), its usage and cloud cost, its
        task, and (a device task) what the same work would have cost in the cloud (``saved_usd``; None: its
        tokens at the cloud model's price)."""
        if target not in ("local", "cloud", None):  # an answer from the response cache is not a request
            raise ValueError(f"target must be 'local', 'cloud' or None, got {target!r}")
        if not math.isfinite(cost_usd) or cost_usd < 0:
            raise ValueError(f"cost_usd must be a finite number >= 0, got {cost_usd!r}")
        if error is not None or target != "local":
            saved = 0.0
        elif saved_usd is not None:
            saved = saved_usd
        else:
            saved = self.cost(self.cloud_model, tokens_in, tokens_out)
        for tasks in (self._tasks, self._delta.tasks):
            row = tasks.setdefault(task, {"requests": 0, "local": 0, "saved_usd": 0.0})
            row["requests"] += 1
            row["local"] += int(error is None and target == "local")
            row["saved_usd"] += saved
        self._roll_day()
        for totals in (self._totals, self._delta.totals):
            totals.requests += 1
            totals.fallbacks += int(fallback)
            totals.cloud_cost_usd += cost_usd
            if error is not None:
                totals.errors += 1
            elif target == "cloud":
                totals.cloud += 1
            elif target == "local":
                totals.local += 1
                totals.saved_usd += saved
        self._spent += cost_usd
        self._delta.spent += cost_usd
        for listener in self.listeners:
            listener(self)

    def record_route(self, route: Route) -> None:
        """A request answered as ``route`` says."""
        self.record(
            target=route.target,
            fallback=bool(route.fallbacks),
            tokens_in=route.tokens_in,
            tokens_out=route.tokens_out,
            cost_usd=route.cost_usd,
        )

    def spent_today(self) -> float:
        """The cloud spend of the current day in USD."""
        self._roll_day()
        return self._spent

    def reserved_now(self) -> float:
        """What the cloud calls in flight (this tab's, and the others' as of the last sync) may still cost."""
        self._expire()
        return sum(usd for usd, _ in self._reserved.values())

    def reserve(self, usd: float, budget: float | None) -> str | None:
        """Hold ``usd`` of today's budget for a cloud call (its worst case); None when today's spend plus
        what is reserved plus ``usd`` would pass ``budget``. Release it with :meth:`release`."""
        if not math.isfinite(usd) or usd < 0:
            raise ValueError(f"a reservation must be a finite number >= 0, got {usd!r}")
        if budget is not None and self.spent_today() + self.reserved_now() + usd > budget + 1e-12:
            return None
        rid = f"r{next(_ids)}-{id(self):x}"
        self._reserved[rid] = self._delta.reserved[rid] = (usd, self._now())
        return rid

    def release(self, reservation: str | None) -> None:
        """The call is over: its reservation no longer counts (its cost is recorded with :meth:`record`)."""
        if reservation is None:
            return
        self._reserved.pop(reservation, None)
        if self._delta.reserved.pop(reservation, None) is None:
            self._delta.released.add(reservation)

    async def sync(self) -> None:
        """Apply this ledger's changes to the store and read back the others' (no store: nothing to do)."""
        async with self.synced():
            pass

    @contextlib.asynccontextmanager
    async def synced(self) -> AsyncIterator[None]:
        """Hold the store (every tab's) while the block runs: the ledger first reads what the other tabs did,
        the block decides on those figures, and its changes are stored before another tab can decide."""
        async with self._lock:
            if self.store is None:
                yield
                return
            async with self.store.locked():
                stored = await self.store.read()
                self._adopt(stored)
                try:
                    yield
                finally:
                    # what is recorded while the write is under way goes into a new delta (it used to be
                    # wiped when the write finished: the load test counted 913 of 1,000 requests)
                    written, self._delta = self._delta, _Delta()
                    merged = self._merged(stored, written)
                    await self._write(merged, written)

    async def _write(self, merged: dict[str, Any], written: _Delta) -> None:
        """Store ``merged`` (the stored state plus ``written``) while the stores are held.

        A cancelled caller (a request stopped while its record was being stored) does not stop the write:
        an IndexedDB transaction commits whether or not anyone still awaits it, so taking ``written`` back
        for the next sync would store it twice (the load test once counted 1,001 of 1,000 requests). The
        write is awaited to its end, the stores still held, and the cancellation raised after it."""
        assert self.store is not None
        write = asyncio.ensure_future(self.store.write(merged))
        interrupted = False
        while not write.done():
            try:
                await asyncio.shield(write)
            except asyncio.CancelledError:
                if not write.done():
                    interrupted = True  # the caller, not the write: it goes on and decides
            except BaseException:
                break
        if write.cancelled() or write.exception() is not None:
            self._delta = _combined(written, self._delta)  # not stored: the next sync tries
            if interrupted or write.cancelled():
                raise asyncio.CancelledError
            raise write.exception()  # type: ignore[misc]
        self._adopt(merged)
        if interrupted:
            raise asyncio.CancelledError

    def _adopt(self, stored: dict[str, Any] | None) -> None:
        """The view: the stored state with this ledger's unsynced changes on top."""
        state = self._merged(stored)
        base = Ledger.from_state(state, self.prices, today=self._today)
        self._totals, self._day, self._spent = base._totals, base._day, base._spent
        self._reserved = base._reserved
        self._tasks = base._tasks

    def _merged(self, stored: dict[str, Any] | None, delta: _Delta | None = None) -> dict[str, Any]:
        """``stored`` plus ``delta`` (default: this ledger's unsynced changes), as a state."""
        delta = self._delta if delta is None else delta
        try:
            base = Ledger.from_state(stored, self.prices, today=self._today) if stored else None
        except ValidationError:
            base = None  # unreadable: start again from this ledger's own changes
        totals = dataclasses.asdict(base._totals) if base else dataclasses.asdict(_Totals())
        for name, value in dataclasses.asdict(delta.totals).items():
            totals[name] += value
        today = self._today()
        spent = (base._spent if base and base._day == today else 0.0) + delta.spent
        reserved = {k: v for k, v in (base._reserved if base else {}).items() if k not in delta.released}
        reserved.update(delta.reserved)
        horizon = self._now() - RESERVATION_TTL_S
        tasks = {t: dict(r) for t, r in (base._tasks if base else {}).items()}
        for t, r in delta.tasks.items():
            row = tasks.setdefault(t, {"requests": 0, "local": 0, "saved_usd": 0.0})
            for name, value in r.items():
                row[name] += value
        return {
            "tasks": tasks,
            "version": STATE_VERSION,
            "totals": totals,
            "day": today.isoformat(),
            "spent_usd": spent,
            "reserved": {k: [usd, at] for k, (usd, at) in reserved.items() if at >= horizon},
        }

    def _expire(self) -> None:
        horizon = self._now() - RESERVATION_TTL_S
        for rid in [k for k, (_, at) in self._reserved.items() if at < horizon]:
            del self._reserved[rid]

    def stats(self) -> dict[str, Any]:
        """The counters and money of the module docstring, as plain data."""
        wire: dict[str, Any] = dataclasses.asdict(self._totals)
        wire["local_share"] = self._totals.local / self._totals.requests if self._totals.requests else 0.0
        wire["by_task"] = {task: dict(row) for task, row in sorted(self._tasks.items())}
        wire["spent_today_usd"] = self.spent_today()
        return wire

    def to_state(self) -> dict[str, Any]:
        """Everything the ledger knows, as JSON-able data (see :meth:`from_state`)."""
        self._roll_day()
        return {
            "version": STATE_VERSION,
            "totals": dataclasses.asdict(self._totals),
            "day": self._day.isoformat(),
            "spent_usd": self._spent,
            "reserved": {k: [usd, at] for k, (usd, at) in self._reserved.items()},
            "tasks": {task: dict(row) for task, row in self._tasks.items()},
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        prices: PriceTable,
        *,
        cloud_model: str | None = None,
        today: Callable[[], date] = date.today,
    ) -> Ledger:
        """A ledger restored from :meth:`to_state`; a spend of an earlier day is not carried over."""
        ledger = cls(prices, cloud_model=cloud_model, today=today)
        try:
            if state["version"] != STATE_VERSION:
                raise ValueError(f"version {state['version']!r} is not {STATE_VERSION}")
            totals = _Totals(**state["totals"])
            for f in dataclasses.fields(totals):
                value = getattr(totals, f.name)
                kind = int if f.type == "int" else (int, float)
                if isinstance(value, bool) or not isinstance(value, kind) or value < 0:
                    raise ValueError(f"{f.name} must be a number >= 0, got {value!r}")
                setattr(totals, f.name, float(value) if f.type == "float" else value)
            day = date.fromisoformat(state["day"])
            spent = float(state["spent_usd"])
            reserved = {
                str(k): (float(v[0]), float(v[1])) for k, v in dict(state.get("reserved") or {}).items()
            }
            tasks = {
                str(t): {
                    "requests": int(r["requests"]),
                    "local": int(r["local"]),
                    "saved_usd": float(r["saved_usd"]),
                }
                for t, r in dict(state.get("tasks") or {}).items()
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(
                f"the saved ledger state cannot be read: {type(exc).__name__}: {exc}",
                hint="Discard the saved statistics (they restart at zero).",
            ) from exc
        ledger._totals = totals
        ledger._reserved = reserved
        ledger._tasks = tasks
        if day == ledger._day:
            ledger._spent = spent
        return ledger

    def _roll_day(self) -> None:
        day = self._today()
        if day != self._day:
            self._day, self._spent = day, 0.0
