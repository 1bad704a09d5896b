import asyncio
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest

from hybrid_router.errors import ValidationError
from hybrid_router.ledger import Ledger
from hybrid_router.route import FallbackStep, Route


@dataclass(frozen=True)
class FlatPrice:
    input_usd_per_mtok: float
    output_usd_per_mtok: float

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.input_usd_per_mtok + tokens_out * self.output_usd_per_mtok) / 1e6


class Prices:
    """gpt-x at 1/2 USD per Mtok; anything else at the default, 10/20."""

    def __init__(self) -> None:
        self.asked: list[str | None] = []

    def price_for(self, model: str | None) -> FlatPrice:
        self.asked.append(model)
        return FlatPrice(1.0, 2.0) if model == "gpt-x" else FlatPrice(10.0, 20.0)


class Calendar:
    def __init__(self) -> None:
        self.day = date(2025, 1, 1)

    def __call__(self) -> date:
        return self.day


def make(cloud_model: str | None = "gpt-x") -> tuple[Ledger, Calendar]:
    calendar = Calendar()
    return Ledger(Prices(), cloud_model=cloud_model, today=calendar), calendar


def test_a_new_ledger_is_all_zero() -> None:
    ledger, _ = make()
    assert ledger.stats() == {
        "requests": 0,
        "local": 0,
        "cloud": 0,
        "fallbacks": 0,
        "errors": 0,
        "cloud_cost_usd": 0.0,
        "saved_usd": 0.0,
        "spent_today_usd": 0.0,
        "local_share": 0.0,
        "by_task": {},
    }


def test_requests_are_counted_by_side_fallback_and_error() -> None:
    ledger, _ = make()
    ledger.record(target="local", tokens_in=10, tokens_out=5)
    ledger.record(target="cloud", tokens_in=1000, tokens_out=500, cost_usd=0.002)
    ledger.record(target="cloud", fallback=True, tokens_in=1, tokens_out=1, cost_usd=0.001)
    ledger.record(target="local", error="InferenceError")
    ledger.record(target=None, error="PolicyError")
    stats = ledger.stats()
    assert (stats["requests"], stats["local"], stats["cloud"], stats["errors"], stats["fallbacks"]) == (
        5,
        1,
        2,
        2,
        1,
    )
    assert stats["requests"] == stats["local"] + stats["cloud"] + stats["errors"]
    assert stats["cloud_cost_usd"] == pytest.approx(0.003)
    assert stats["spent_today_usd"] == pytest.approx(0.003)


def test_savings_price_local_answers_with_the_configured_cloud_model() -> None:
    ledger, _ = make("gpt-x")
    ledger.record(target="local", tokens_in=1_000_000, tokens_out=500_000)
    assert ledger.stats()["saved_usd"] == pytest.approx(1.0 + 1.0)
    ledger.cloud_model = "unknown-model"  # the table's default price then
    ledger.record(target="local", tokens_in=100_000, tokens_out=0)
    assert ledger.stats()["saved_usd"] == pytest.approx(2.0 + 1.0)
    assert ledger.prices.asked == ["gpt-x", "unknown-model"]  # type: ignore[attr-defined]  # the test's Prices


def test_failed_and_cloud_requests_save_nothing() -> None:
    ledger, _ = make()
    ledger.record(target="local", error="ModelLoadError", tokens_in=1_000_000)
    ledger.record(target="cloud", tokens_in=1_000_000, cost_usd=1.0)
    assert ledger.stats()["saved_usd"] == 0.0


def test_record_route_reads_target_fallbacks_usage_and_cost() -> None:
    ledger, _ = make()
    step = FallbackStep("local", "m", "ModelLoadError", "missing file")
    route = Route(
        "cloud", "fallback", "r", "gpt-x", tokens_in=3, tokens_out=4, cost_usd=0.5, fallbacks=(step,)
    )
    ledger.record_route(route)
    stats = ledger.stats()
    assert (stats["cloud"], stats["fallbacks"], stats["cloud_cost_usd"]) == (1, 1, 0.5)


def test_cost_uses_the_price_table() -> None:
    ledger, _ = make()
    assert ledger.cost("gpt-x", 1_000_000, 1_000_000) == pytest.approx(3.0)
    assert ledger.cost(None, 1_000_000, 0) == pytest.approx(10.0)


def test_the_daily_spend_restarts_on_a_new_day_but_the_totals_do_not() -> None:
    ledger, calendar = make()
    ledger.record(target="cloud", cost_usd=0.25)
    ledger.record(target="cloud", cost_usd=0.25)
    assert ledger.spent_today() == pytest.approx(0.5)
    calendar.day = date(2025, 1, 2)
    assert ledger.spent_today() == 0.0
    ledger.record(target="cloud", cost_usd=0.1)
    assert ledger.spent_today() == pytest.approx(0.1)
    assert ledger.stats()["cloud_cost_usd"] == pytest.approx(0.6)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"target": "edge"},
        {"target": "cloud", "cost_usd": -1.0},
        {"target": "cloud", "cost_usd": float("nan")},
    ],
)
def test_bad_records_are_refused_and_not_counted(kwargs: dict[str, Any]) -> None:
    ledger, _ = make()
    with pytest.raises(ValueError):
        ledger.record(**kwargs)
    assert ledger.stats()["requests"] == 0


def test_state_round_trips_through_json() -> None:
    ledger, calendar = make()
    ledger.record(target="local", tokens_in=10, tokens_out=10)
    ledger.record(target="cloud", fallback=True, cost_usd=0.3)
    ledger.record(target=None, error="PolicyError")
    state = json.loads(json.dumps(ledger.to_state()))
    restored = Ledger.from_state(state, Prices(), cloud_model="gpt-x", today=calendar)
    assert restored.stats() == ledger.stats()


def test_a_restored_state_of_an_earlier_day_keeps_totals_but_not_the_spend() -> None:
    ledger, calendar = make()
    ledger.record(target="cloud", cost_usd=0.3)
    state = ledger.to_state()
    calendar.day = date(2025, 1, 5)
    restored = Ledger.from_state(state, Prices(), today=calendar)
    assert restored.spent_today() == 0.0 and restored.stats()["cloud_cost_usd"] == pytest.approx(0.3)


@pytest.mark.parametrize(
    "state",
    [
        {},
        {"version": 99, "totals": {}, "day": "2025-01-01", "spent_usd": 0},
        {"version": 1, "totals": {"requests": -1}, "day": "2025-01-01", "spent_usd": 0},
        {"version": 1, "totals": {"requests": "3"}, "day": "2025-01-01", "spent_usd": 0},
        {"version": 1, "totals": {"bogus": 1}, "day": "2025-01-01", "spent_usd": 0},
        {"version": 1, "totals": {}, "day": "yesterday", "spent_usd": 0},
    ],
)
def test_an_unreadable_state_is_a_validation_error(state: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        Ledger.from_state(state, Prices())
    assert info.value.hint


def test_listeners_hear_every_recorded_request_and_state_round_trips() -> None:
    from hybrid_router.ledger import Ledger

    class Prices:
        def price_for(self, model: str | None) -> object:
            class P:
                def cost(self, tin: int, tout: int) -> float:
                    return (tin + tout) * 1e-6

            return P()

    ledger = Ledger(Prices(), cloud_model="m")  # type: ignore[arg-type]  # a duck-typed price table
    heard: list[dict[str, object]] = []
    ledger.listeners.append(lambda current: heard.append(current.to_state()))
    ledger.record(target="cloud", tokens_in=10, tokens_out=5, cost_usd=0.5)
    ledger.record(target="local", tokens_in=3, tokens_out=2)
    assert len(heard) == 2
    restored = Ledger.from_state(heard[-1], Prices(), cloud_model="m")  # type: ignore[arg-type]  # duck-typed
    assert restored.stats()["requests"] == 2 and restored.spent_today() == 0.5


class SlowStore:
    """A shared store whose writes wait for ``gate`` (as IndexedDB's do: other tasks run meanwhile)."""

    def __init__(self, *, fail: bool = False) -> None:
        from hybrid_router.ledger import MemoryLedgerStore

        self.inner = MemoryLedgerStore()
        self.gate = asyncio.Event()
        self.fail = fail

    def locked(self) -> Any:
        return self.inner.locked()

    async def read(self) -> dict[str, Any] | None:
        return await self.inner.read()

    async def write(self, state: dict[str, Any]) -> None:
        await self.gate.wait()
        if self.fail:
            raise OSError("the disk is full")
        await self.inner.write(state)


async def _record_during_a_write(store: SlowStore, ledger: Ledger) -> Ledger:
    ledger.record(target="local", task="embeddings")
    syncing = asyncio.create_task(ledger.sync())
    while not store.inner.lock.locked() or store.gate.is_set():
        await asyncio.sleep(0)
    for _ in range(3):
        await asyncio.sleep(0)  # the sync is waiting in its write now
    ledger.record(target="cloud", cost_usd=0.25, tokens_in=1, tokens_out=1)  # recorded meanwhile
    rid = ledger.reserve(0.5, budget=None)
    store.gate.set()
    try:
        await syncing
    finally:
        ledger.release(rid)
    return ledger


async def test_a_request_recorded_while_the_ledger_is_being_written_is_kept() -> None:
    store = SlowStore()
    ledger = await _record_during_a_write(store, Ledger(Prices(), store=store))
    assert ledger.stats()["requests"] == 2  # the view
    await ledger.sync()
    assert store.inner.state is not None
    stored = Ledger.from_state(store.inner.state, Prices())
    assert stored.stats()["requests"] == 2 and stored.spent_today() == pytest.approx(0.25)
    assert stored.stats()["by_task"]["embeddings"]["requests"] == 1
    assert store.inner.state["reserved"] == {}  # the reservation made during the write, released


async def test_a_failed_write_keeps_every_change_for_the_next_sync() -> None:
    store = SlowStore(fail=True)
    ledger = Ledger(Prices(), store=store)
    with pytest.raises(OSError):
        await _record_during_a_write(store, ledger)
    assert store.inner.state is None  # nothing was written
    store.fail = False
    await ledger.sync()
    assert store.inner.state is not None
    stored = Ledger.from_state(store.inner.state, Prices())
    assert stored.stats()["requests"] == 2 and stored.spent_today() == pytest.approx(0.25)
    assert store.inner.state["reserved"] == {}


class CommittingStore(SlowStore):
    """IndexedDB's way: once a write has started, it commits whether or not its caller still awaits it."""

    async def write(self, state: dict[str, Any]) -> None:
        await asyncio.shield(super().write(state))


async def test_a_sync_cancelled_during_its_write_stores_the_record_once() -> None:
    store = CommittingStore()
    ledger = Ledger(Prices(), store=store)
    ledger.record(target="local", task="embeddings")
    syncing = asyncio.create_task(ledger.sync())
    while not store.inner.lock.locked() or store.gate.is_set():
        await asyncio.sleep(0)
    for _ in range(3):
        await asyncio.sleep(0)  # the sync is waiting in its write now
    syncing.cancel()  # the request whose record this is was stopped
    for _ in range(3):
        await asyncio.sleep(0)
    store.gate.set()
    with pytest.raises(asyncio.CancelledError):
        await syncing
    for _ in range(5):
        await asyncio.sleep(0)  # the write commits (nobody awaits it any more)
    assert store.inner.state is not None
    assert Ledger.from_state(store.inner.state, Prices()).stats()["requests"] == 1
    await ledger.sync()  # the next sync, by the next request
    assert store.inner.state is not None
    assert Ledger.from_state(store.inner.state, Prices()).stats()["requests"] == 1
    assert ledger.stats()["requests"] == 1
