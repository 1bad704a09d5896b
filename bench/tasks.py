"""Local text tasks in a real browser (Chromium, WASM): latency and throughput of each task model.

For each task whose model is built (sentiment ``classify``, zero-shot ``classify`` with labels, ``ner``,
``rerank`` by the cross-encoder) and for the embedding fallbacks (few-shot ``classify`` by example
centroids, ``rerank`` by the bi-encoder): the first call (model load from the server + the call), then
the median and p95 of one call on a short text, and the throughput over a run of different texts
(texts/s; for rerank, passages/s). Each model runs at its manifest default dtype.

    ./hr bench tasks [--runs N]
"""

from __future__ import annotations

import json
from typing import Any

from tests.harness import REPO, open_router_page

from bench.common import header, median, p95, server_and_browser, table

_ALL: list[str] = json.loads((REPO / "tests" / "data" / "sentences.json").read_text())["sentences"]
SENTENCES = [s for s in _ALL if len(s) > 20]
SHORT = "The plot was dull and the acting was painfully bad."
LABELS = ["cinema", "politics", "sport"]
EXAMPLES = {
    "account": ["I cannot log in", "reset my password", "my account is locked"],
    "billing": ["I was charged twice", "where is my invoice", "refund my payment"],
}
QUERY = "How do vaccines train the immune system?"

#: (name, task, JS body of one call on `arg` (a text), JS body over the texts `arg` returning their count)
CASES: list[tuple[str, str, str, str]] = [
    (
        "classify (sentiment model)",
        "text-classification",
        "await router.classify(arg);",
        "for (const t of arg) await router.classify(t); return arg.length;",
    ),
    (
        "classify zero-shot, 3 labels (NLI model)",
        "zero-shot-classification",
        f"await router.classify(arg, {{ labels: {json.dumps(LABELS)} }});",
        f"for (const t of arg) await router.classify(t, {{ labels: {json.dumps(LABELS)} }}); "
        "return arg.length;",
    ),
    (
        "classify few-shot, 2 x 3 examples (embeddings)",
        "feature-extraction",
        f"await router.classify(arg, {{ examples: {json.dumps(EXAMPLES)} }});",
        f"for (const t of arg) await router.classify(t, {{ examples: {json.dumps(EXAMPLES)} }}); "
        "return arg.length;",
    ),
    (
        "ner",
        "token-classification",
        "await router.ner(arg);",
        "for (const t of arg) await router.ner(t); return arg.length;",
    ),
    (
        "rerank 10 passages (cross-encoder)",
        "text-ranking",
        f"await router.rerank({json.dumps(QUERY)}, Array(10).fill(arg));",
        f"await router.rerank({json.dumps(QUERY)}, arg); return arg.length;",
    ),
    (
        "rerank 10 passages (bi-encoder)",
        "feature-extraction",
        f"await router.rerank({json.dumps(QUERY)}, Array(10).fill(arg), {{ model: 'all-MiniLM-L6-v2' }});",
        f"await router.rerank({json.dumps(QUERY)}, arg, {{ model: 'all-MiniLM-L6-v2' }}); return arg.length;",
    ),
]

TIME = """async ({ body, arg, runs }) => {
  const router = window.router;
  const f = new Function("router", "arg", `return (async () => { ${body} })();`);
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await f(router, arg);
    times.push(performance.now() - t0);
  }
  return times;
}"""

THROUGHPUT = """async ({ body, arg }) => {
  const f = new Function("router", "arg", `return (async () => { ${body} })();`);
  const t0 = performance.now();
  const n = await f(window.router, arg);
  return { ms: performance.now() - t0, n };
}"""


def _built_tasks() -> set[str]:
    from builder.models import load_manifest, read_index

    built = set(read_index())
    return {task for entry in load_manifest().models for task in entry.tasks if entry.id in built}


def run(runs: int = 20) -> list[dict[str, Any]]:
    tasks = _built_tasks()
    rows: list[dict[str, Any]] = []
    header(f"local text tasks in Chromium (WASM, each model at its default dtype), {runs} runs per median")
    with server_and_browser() as (server, browser):
        rp = open_router_page(browser, server)
        for name, task, one, many in CASES:
            if task not in tasks:
                print(f"skipped {name}: no {task} model is built (./hr build with the data)")
                continue
            (first,) = rp.page.evaluate(TIME, {"body": one, "arg": SHORT, "runs": 1})
            times = rp.page.evaluate(TIME, {"body": one, "arg": SHORT, "runs": runs})
            batch = rp.page.evaluate(THROUGHPUT, {"body": many, "arg": SENTENCES})
            rows.append(
                {
                    "what": name,
                    "first_ms": first,
                    "median_ms": median(times),
                    "p95_ms": p95(times),
                    "per_s": batch["n"] / batch["ms"] * 1000,
                }
            )
        rp.page.context.close()
    print(
        f"one call: a {len(SHORT.split())}-word text; throughput: {len(SENTENCES)} texts of "
        f"{min(map(len, SENTENCES))}-{max(map(len, SENTENCES))} characters "
        "(rerank: as the passages of one query); first: model load from the server + the call"
    )
    table(
        [("task", 48), ("first ms", 9), ("median ms", 10), ("p95 ms", 8), ("items/s", 8)],
        [(r["what"], r["first_ms"], r["median_ms"], r["p95_ms"], r["per_s"]) for r in rows],
    )
    return rows
