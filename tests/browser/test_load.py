"""Load with faults: 1,000 mixed requests (embed, classify, NER, local and cloud generation, cloud
streaming; some cancelled) with 8 in flight, through the real worker, the real relay and a real
llama-server behind the fault proxy, which injects a fault on about 10% of the cloud requests.

Every request ends in a result or a typed error (none hangs), the worker never dies, every local request
that was not cancelled answers, the ledger counts exactly the requests made, and the daily budget (set so
that the run reaches it) is never exceeded."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.faults import FaultProxy
from tests.harness import RouterPage, Server, open_router_page, start_server, stop_server
from tests.load import CLOUD_KINDS, CLOUD_TIMEOUT_MS, FAULTS, LOCAL_KINDS, MIX, fault_plan, run_load

from .conftest import CLOUD_MODEL, RELAY_KEY

pytestmark = pytest.mark.browser

REQUESTS = 1000
#: the relay's per-client rate limit is lifted here: the load comes from one client on purpose
RELAY_ENV = {"HYBRID_ROUTER_RELAY_RATE_PER_MINUTE": "0"}


@pytest.fixture(scope="module")
def load_server(tmp_path_factory: pytest.TempPathFactory, fault_proxy: FaultProxy) -> Iterator[Server]:
    srv = start_server(
        tmp_path_factory.mktemp("serve-load"),
        cloud={"base_url": fault_proxy.url, "model": CLOUD_MODEL, "api_key": RELAY_KEY},
        env_extra=RELAY_ENV,
    )
    yield srv
    stop_server(srv)


def _built_mix() -> tuple[list[tuple[str, float]], str]:
    """The mix, less the task models not built here (./hr test does not train them: ./hr build does), and
    the warm-up calls of what is left."""
    from builder.models import read_index

    built = set(read_index())
    needs = {"classify": "minilm-l6-sst2", "ner": "minilm-l6-conll03-ner"}
    mix = [(kind, share) for kind, share in MIX if needs.get(kind, "") in built or kind not in needs]
    total = sum(share for _, share in mix)
    mix = [(kind, share / total) for kind, share in mix]
    kinds = {kind for kind, _ in mix}
    warm = "await router.embed(['warm']);"
    warm += " await router.classify('warm');" if "classify" in kinds else ""
    warm += " await router.ner('warm');" if "ner" in kinds else ""
    return mix, warm + " await router.generate({ prompt: 'warm', maxTokens: 2, route: 'local' });"


def test_a_thousand_mixed_requests_under_faults(browser: Any, load_server: Server, proxy: FaultProxy) -> None:
    mix, warm = _built_mix()
    rp: RouterPage = open_router_page(
        browser, load_server, options={"cloud": {"timeoutMs": CLOUD_TIMEOUT_MS, "maxRetries": 2}}
    )
    try:
        # warm every model once (first loads are not what this measures), then price one cloud call
        rp.call(warm)
        probe = rp.call(
            "return await router.generate({ prompt: 'Answer in one word: hi', maxTokens: 4, temperature: 0,"
            " route: 'cloud' });"
        )
        assert probe["route"]["target"] == "cloud" and probe["route"]["cost_usd"] > 0
        before = rp.call("return await router.stats();")
        budget = before["spent_today_usd"] + 120 * probe["route"]["cost_usd"]
        rp.call("await router.configure({ dailyBudgetUSD: arg, overBudget: 'refuse' });", budget)
        proxy.plan(*fault_plan(2000, rate=0.10, seed=7))

        run = run_load(rp.page, requests=REQUESTS, concurrency=8, seed=7, mix=mix)
        after = rp.call("return await router.stats();")
        print(
            f"{REQUESTS} requests in {run.seconds:.0f} s ({run.rps:.1f}/s);",
            dict(Counter((r["kind"], "ok" if r.get("ok") else r.get("name", "hang")) for r in run.results)),
        )
        faults = Counter(fault for _, _, fault, _ in proxy.served if fault != "ok")
        print(f"proxy: {len(proxy.served)} cloud requests, faults {dict(faults)}")
        print(f"budget ${budget:.6f}, spent ${after['spent_today_usd']:.6f}")

        assert len(run.results) == REQUESTS
        assert [r["i"] for r in run.results if r["hang"]] == []  # nothing hangs
        untyped = [r for r in run.results if not r.get("ok") and not r.get("typed")]
        assert untyped == [], untyped[:5]
        assert not [r for r in run.results if r.get("name") in ("WorkerError", "InternalError")]
        assert run.restarts == 0  # the worker never died
        # every local request that was not cancelled answered, on the device
        local = [r for r in run.of(*LOCAL_KINDS) if not r["cancelled"]]
        failed = [r for r in local if not r["ok"]]
        assert failed == [], failed[:5]
        assert all(r["route"]["target"] == "local" for r in local)
        # the cloud: answered from the cloud, or a typed error; the faults and the budget both happened
        cloud = run.of(*CLOUD_KINDS)
        assert all(r["route"]["target"] == "cloud" for r in cloud if r["ok"])
        assert sum(1 for r in cloud if r["ok"]) >= 30
        assert set(faults) == set(FAULTS) and sum(faults.values()) >= 0.05 * len(proxy.served)
        refused = [r for r in cloud if r.get("name") == "PolicyError" and "budget" in r["message"]]
        assert refused, "the budget was set to be reached during the run"
        assert after["spent_today_usd"] <= budget + 1e-12
        # the ledger counts exactly the requests made (cancelled, refused and failed ones too)
        assert after["requests"] - before["requests"] == REQUESTS
        assert sum(t["requests"] for t in after["by_task"].values()) == after["requests"]
        # the worker still serves
        assert len(rp.call("return (await router.embed(['still here'])).vectors;")) == 1
    finally:
        rp.page.context.close()
