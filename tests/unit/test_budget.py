"""The daily budget holds: worst cases are reserved before a cloud call, concurrent calls and other tabs
cannot overspend, and a cut or stopped stream is charged for what it received."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import pytest
from tests.unit.fakes import FakeCloud, FakeRuntime, as_runtime, fake_manifest

from hybrid_router.chat import ChatRequest
from hybrid_router.errors import CloudError
from hybrid_router.ledger import Ledger, MemoryLedgerStore
from hybrid_router.router import Router
from hybrid_router.routing import Policy

COMPLEX = "If 3x + 7 = 22 and y = 2x - 4, compute x*y + 17/3 - 2^5 and the sum 12+45+78+91."


def router(cloud: FakeCloud, budget: float, store: MemoryLedgerStore | None = None) -> Router:
    m = fake_manifest()
    return Router(
        as_runtime(FakeRuntime()),
        m,
        cloud=cloud,
        policy=Policy(daily_budget_usd=budget),
        ledger=Ledger(m, cloud_model=cloud.model, store=store),
    )


async def worst_case(r: Router) -> float:
    plan = await r.planner.generation(ChatRequest.parse(COMPLEX, max_tokens=100), Policy(), r.ledger)
    return plan.cloud_worst_usd


async def test_ten_concurrent_calls_at_a_budget_of_two_send_two_to_the_cloud() -> None:
    gate = asyncio.Event()
    cloud = FakeCloud(gate=gate)
    probe = router(FakeCloud(), 1.0)
    worst = await worst_case(probe)
    r = router(cloud, 2.5 * worst)
    calls = [asyncio.create_task(r.generate(COMPLEX, max_tokens=100)) for _ in range(10)]
    await cloud.started.wait()
    for _ in range(50):
        await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*calls)
    targets = [x.route.target for x in results]
    assert targets.count("cloud") == 2 and len(cloud.calls) == 2
    assert {x.route.reason for x in results if x.route.target == "local"} == {"budget"}
    assert r.ledger.spent_today() <= 2.5 * worst and r.ledger.reserved_now() == 0


async def test_a_stopped_stream_is_charged_for_what_it_received() -> None:
    cloud = FakeCloud(reply=" ".join(f"w{i}" for i in range(40)), usage=None)
    r = router(cloud, 1.0)
    async with aclosing(r.stream(COMPLEX, route="cloud")) as items:
        got = 0
        async for _ in items:
            got += 1
            if got == 30:
                break
    stats = r.stats()
    assert stats["errors"] == 1 and stats["cloud_cost_usd"] > 0
    assert r.ledger.spent_today() == pytest.approx(stats["cloud_cost_usd"]) and r.ledger.reserved_now() == 0


async def test_a_cut_stream_is_charged_too() -> None:
    cloud = FakeCloud(fail=CloudError("reset mid-stream", status=None), fail_after=12, usage=None)
    r = router(cloud, 1.0)
    with pytest.raises(CloudError):
        async with aclosing(r.stream(COMPLEX, route="cloud")) as items:
            async for _ in items:
                pass
    stats = r.stats()
    assert stats["errors"] == 1 and stats["requests"] == 1  # recorded once
    assert stats["cloud_cost_usd"] > 0 and r.ledger.reserved_now() == 0


async def test_two_tabs_share_one_budget() -> None:
    store = MemoryLedgerStore()
    probe = router(FakeCloud(), 1.0)
    worst = await worst_case(probe)
    gate = asyncio.Event()
    first_cloud, second_cloud = FakeCloud(gate=gate), FakeCloud()
    tab_a = router(first_cloud, 1.5 * worst, store)
    tab_b = router(second_cloud, 1.5 * worst, store)
    a = asyncio.create_task(tab_a.generate(COMPLEX, max_tokens=100))
    await first_cloud.started.wait()  # tab A holds its worst case in the shared store
    b = await tab_b.generate(COMPLEX, max_tokens=100)
    assert b.route.target == "local" and b.route.reason == "budget" and second_cloud.calls == []
    gate.set()
    assert (await a).route.target == "cloud"
    await tab_b.ledger.sync()
    assert tab_b.stats()["requests"] == 2 and tab_b.stats()["cloud"] == 1  # the origin's totals
    spent = tab_a.ledger.spent_today()
    assert spent > 0 and tab_b.ledger.spent_today() == pytest.approx(spent)


async def test_a_worst_case_allows_for_the_prompt_tokens_the_cloud_adds() -> None:
    """The provider's usage counts more prompt tokens than the request's own (its chat template, a system
    prompt): the first worst case allows FRAMING_TOKENS for it, later ones the most seen so far."""
    from hybrid_router.planner import FRAMING_MARGIN, FRAMING_TOKENS

    cloud = FakeCloud(usage=(600, 5))
    r = router(cloud, 10.0)
    request = ChatRequest.parse(COMPLEX, max_tokens=100)
    first = await r.planner.generation(request, Policy(), r.ledger)
    own = first.cloud_tokens_in - first.cloud_framing_tokens
    assert first.cloud_framing_tokens == FRAMING_TOKENS and own > 0
    assert first.cloud_worst_usd == pytest.approx(r.ledger.cost(cloud.model, own + FRAMING_TOKENS, 100))
    assert own + FRAMING_TOKENS < 600  # this provider adds more than the default allows
    await r.generate(COMPLEX, max_tokens=100, route="cloud")
    charged = r.ledger.spent_today()
    assert charged == pytest.approx(r.ledger.cost(cloud.model, 600, 5))
    later = await r.planner.generation(request, Policy(), r.ledger)
    seen = r.planner.framing_seen
    assert seen is not None and 600 - 2 * own < seen < 600  # the usage less the call's own count
    assert later.cloud_framing_tokens == seen + FRAMING_MARGIN
    assert later.cloud_worst_usd >= charged  # the worst case now covers what such a call costs


async def test_concurrent_calls_to_a_cloud_that_adds_framing_stay_within_the_budget() -> None:
    cloud = FakeCloud(usage=(600, 5))
    probe = router(FakeCloud(usage=(600, 5)), 10.0)
    await probe.generate(COMPLEX, max_tokens=100, route="cloud")
    one_call = probe.ledger.spent_today()
    budget = 3.5 * one_call
    r = router(cloud, budget)
    for _ in range(3):  # waves of concurrent calls: the first learns the framing, the budget holds throughout
        await asyncio.gather(*(r.generate(COMPLEX, max_tokens=5) for _ in range(6)))
        assert r.ledger.spent_today() <= budget + 1e-12
        assert r.ledger.reserved_now() == 0
    assert 1 <= len(cloud.calls) <= 3  # some reached the cloud, never more than the budget pays for
