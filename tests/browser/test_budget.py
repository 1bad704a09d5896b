"""The cost ledger is one per origin: two tabs share the day's spend and the counts (IndexedDB under a
Web Lock), so N tabs do not get N budgets."""

from __future__ import annotations

from typing import Any

import pytest

from tests.faults import FaultProxy
from tests.harness import open_router_page

pytestmark = pytest.mark.browser

OPTIONS = {"cloud": {"timeoutMs": 60000, "maxRetries": 0}}


def test_two_tabs_share_the_ledger_and_its_budget(browser: Any, cloud_server: Any, proxy: FaultProxy) -> None:
    first = open_router_page(browser, cloud_server, options=OPTIONS)
    try:
        page = first.page.context.new_page()  # the same profile and origin: a second tab
        page.goto(cloud_server.url + "sandbox.html")
        page.evaluate(
            """async (options) => {
            const { HybridRouter } = await import("/hybrid-router.js");
            window.router = await HybridRouter.create(options);
        }""",
            OPTIONS,
        )
        base = first.call("return await router.stats();")
        out = first.call("return await router.generate({ prompt: 'Say hi.', maxTokens: 4, route: 'cloud' });")
        assert out["route"]["target"] == "cloud" and out["route"]["cost_usd"] > 0
        seen = page.evaluate(
            "async () => { await router.generate({ prompt: 'Hi', maxTokens: 2, route: 'local' });"
            " return await router.stats(); }"
        )
        assert seen["requests"] == base["requests"] + 2  # the other tab's call is counted here too
        assert seen["spent_today_usd"] >= out["route"]["cost_usd"] - 1e-12
        # a budget that is spent in one tab is spent in the other
        page.evaluate("async () => router.configure({ dailyBudgetUSD: 0, overBudget: 'refuse' })")
        err = page.evaluate("""async () => { try {
            await router.generate({ prompt: 'Prove that there are infinitely many primes.', maxTokens: 8,
              route: 'cloud' });
            return { name: 'none' };
          } catch (e) { return { name: e.name, message: e.message }; } }""")
        assert err["name"] == "PolicyError" and "budget" in err["message"]
    finally:
        first.page.context.close()
