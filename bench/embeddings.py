"""Cold start, model load and embedding latency, in a real browser (Chromium, WASM backend).

Each row is measured inside the page with performance.now(), on a fresh browser context (empty HTTP
cache and Cache Storage) for the "cold" rows and on the same context for the "warm" ones.
"""

from __future__ import annotations

import json
from typing import Any

from tests.harness import REPO, open_router_page

from bench.common import median, p95, server_and_browser

SENTENCES: list[str] = json.loads((REPO / "tests" / "data" / "sentences.json").read_text())["sentences"]

CREATE = """async () => {
  const { HybridRouter } = await import("/hybrid-router.js");
  const t0 = performance.now();
  window.router = await HybridRouter.create();
  return { ms: performance.now() - t0, info: window.router.info };
}"""

TIMED = """async ({ texts, dtype, runs }) => {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await window.router.embed(texts, { dtype });
    times.push(performance.now() - t0);
  }
  return times;
}"""


def run(runs: int = 10) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    batch = (SENTENCES * 2)[:32]
    with server_and_browser() as (server, browser):
        for dtype in ("fp32", "q8"):
            rp = open_router_page(browser, server, create=False)  # fresh context: cold HTTP cache
            created = rp.page.evaluate(CREATE)
            if dtype == "fp32":
                rows.append(
                    {
                        "what": "cold start (worker created -> ready)",
                        "dtype": "-",
                        "median_ms": created["ms"],
                        "p95_ms": created["ms"],
                        "n": 1,
                    }
                )
                timings = created["info"]["timings"]
                rows.append(
                    {
                        "what": f"  of which Pyodide runtime {timings['pyodide']} ms, packages "
                        f"{timings['packages'] - timings['pyodide']} ms",
                        "dtype": "-",
                        "median_ms": None,
                        "p95_ms": None,
                        "n": 1,
                    }
                )
            load = rp.page.evaluate(TIMED, {"texts": ["warm up"], "dtype": dtype, "runs": 1})
            rows.append(
                {
                    "what": "model load + first call (cold cache)",
                    "dtype": dtype,
                    "median_ms": load[0],
                    "p95_ms": load[0],
                    "n": 1,
                }
            )
            for label, texts in (
                ("embed 1 sentence", ["How do I reset my password?"]),
                ("embed 32 sentences", batch),
            ):
                times = rp.page.evaluate(TIMED, {"texts": texts, "dtype": dtype, "runs": runs})
                rows.append(
                    {
                        "what": label,
                        "dtype": dtype,
                        "median_ms": median(times),
                        "p95_ms": p95(times),
                        "n": runs,
                    }
                )
            rp.page.context.close()
        rp = open_router_page(browser, server, create=False)
        rp.page.evaluate(CREATE)
        rp.page.reload()
        warm = rp.page.evaluate(CREATE)
        rows.append(
            {
                "what": "warm start (HTTP cache) -> ready",
                "dtype": "-",
                "median_ms": warm["ms"],
                "p95_ms": warm["ms"],
                "n": 1,
            }
        )
        rp.page.context.close()
    _print(rows)
    return rows


def _print(rows: list[dict[str, Any]]) -> None:
    print(f"\n{'measurement':<48} {'dtype':>5} {'median ms':>10} {'p95 ms':>8} {'n':>4}")
    print("-" * 80)
    for r in rows:
        med = "" if r["median_ms"] is None else f"{r['median_ms']:.1f}"
        p95 = "" if r["p95_ms"] is None else f"{r['p95_ms']:.1f}"
        print(f"{r['what']:<48} {r['dtype']:>5} {med:>10} {p95:>8} {r['n']:>4}")
