"""Vector index latency in a real browser (Chromium, WASM; all-MiniLM-L6-v2 fp32 embeddings).

For indexes of 100 and 1,000 items: the time to add them (embedding included), the search latency
(query embedding + exact numpy cosine over every item + top 10) next to ``embed`` of the query alone (the
difference is the index's own share), and the open and first search after a page reload (the index read
back from IndexedDB).
"""

from __future__ import annotations

import json
import os
import statistics
from typing import Any

from tests.harness import REPO, open_router_page

from bench.common import evaluate, p95, server_and_browser, table

SENTENCES: list[str] = json.loads((REPO / "tests" / "data" / "sentences.json").read_text())["sentences"]
QUERY = "How can I get back into my account?"

CREATE = """async () => {
  const { HybridRouter } = await import("/hybrid-router.js");
  window.router = await HybridRouter.create();
  await window.router.embed(["warm up"]);
}"""

ADD = """async ({ name, ids, texts }) => {
  const index = await window.router.openIndex(name);
  const t0 = performance.now();
  for (let i = 0; i < ids.length; i += 256) await index.add(ids.slice(i, i + 256), texts.slice(i, i + 256));
  return performance.now() - t0;
}"""

SEARCH = """async ({ name, query, runs }) => {
  const index = await window.router.openIndex(name);
  const search = [], embed = [];
  for (let i = 0; i < runs; i++) {
    let t0 = performance.now();
    await index.search(query, { topK: 10 });
    search.push(performance.now() - t0);
    t0 = performance.now();
    await window.router.embed([query]);
    embed.push(performance.now() - t0);
  }
  return { search, embed };
}"""

REOPEN = """async ({ name, query }) => {
  const t0 = performance.now();
  const index = await window.router.openIndex(name);
  const opened = performance.now() - t0;
  await index.search(query, { topK: 10 });
  return { opened, first: performance.now() - t0, count: index.count };
}"""


def _texts(n: int) -> list[str]:
    return [f"{SENTENCES[i % len(SENTENCES)]} (note {i})" for i in range(n)]


def run(runs: int = 20, smoke: bool = False) -> list[dict[str, Any]]:
    """``smoke``: an index of 10 items, one search."""
    rows: list[dict[str, Any]] = []
    runs = 1 if smoke else runs
    sizes = (10,) if smoke else (100, 1_000)
    with server_and_browser() as (server, browser):
        rp = open_router_page(browser, server, create=False)
        evaluate(rp.page, CREATE)
        for n in sizes:
            name = f"bench-{n}"
            texts = _texts(n)
            ms = evaluate(rp.page, ADD, {"name": name, "ids": [f"n{i}" for i in range(n)], "texts": texts})
            rows.append(
                {
                    "what": f"add {n} items (embedding included)",
                    "median_ms": ms,
                    "p95_ms": ms,
                    "n": 1,
                    "per_item_ms": ms / n,
                }
            )
            t = evaluate(rp.page, SEARCH, {"name": name, "query": QUERY, "runs": runs})
            rows.append(
                {
                    "what": f"search top 10 of {n}",
                    "median_ms": statistics.median(t["search"]),
                    "p95_ms": p95(t["search"]),
                    "n": runs,
                    "per_item_ms": None,
                }
            )
            rows.append(
                {
                    "what": "  of which embedding the query (embed alone)",
                    "median_ms": statistics.median(t["embed"]),
                    "p95_ms": p95(t["embed"]),
                    "n": runs,
                    "per_item_ms": None,
                }
            )
        rp.page.reload()
        evaluate(rp.page, CREATE)
        r = evaluate(rp.page, REOPEN, {"name": f"bench-{sizes[-1]}", "query": QUERY})
        rows.append(
            {
                "what": f"after a reload: open ({r['count']} items from IndexedDB)",
                "median_ms": r["opened"],
                "p95_ms": r["opened"],
                "n": 1,
                "per_item_ms": None,
            }
        )
        rows.append(
            {
                "what": "after a reload: open + first search",
                "median_ms": r["first"],
                "p95_ms": r["first"],
                "n": 1,
                "per_item_ms": None,
            }
        )
        rp.page.context.close()
    _print(rows)
    return rows


def _print(rows: list[dict[str, Any]]) -> None:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\nvector index (all-MiniLM-L6-v2 fp32, 384 dims), {os.cpu_count()} CPU(s), load average {load:.1f}"
    )
    table(
        [("measurement", 50), ("median ms", 10), ("p95 ms", 8), ("ms/item", 8), ("n", 4)],
        [[r["what"], r["median_ms"], r["p95_ms"], r["per_item_ms"], r["n"]] for r in rows],
        title="vector index",
    )
