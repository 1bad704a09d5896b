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

from tests.harness import REPO

from bench.common import evaluate, header, median, p95, router_page, server_and_browser, table

_ALL: list[str] = json.loads((REPO / "tests" / "data" / "sentences.json").read_text())["sentences"]
SENTENCES = [s for s in _ALL if len(s) > 20]
SHORT = "The plot was dull and the acting was painfully bad."
LABELS = ["cinema", "politics", "sport"]
EXAMPLES = {
    "account": ["I cannot log in", "reset my password", "my account is locked"],
    "billing": ["I was charged twice", "where is my invoice", "refund my payment"],
}
QUERY = "How do vaccines train the immune system?"
NLI_MODEL = "minilm-l6-nli"

#: (name, task, the call's kind: see CALL)
CASES: list[tuple[str, str, str]] = [
    ("classify (sentiment model)", "text-classification", "sentiment"),
    ("classify, 3 labels (embedding similarity, the default)", "feature-extraction", "labels"),
    ("classify zero-shot, 3 labels (NLI model, named)", "zero-shot-classification", "zero-shot"),
    ("classify few-shot, 2 x 3 examples (embeddings)", "feature-extraction", "few-shot"),
    ("ner", "token-classification", "ner"),
    ("rerank 10 passages (cross-encoder)", "text-ranking", "rerank"),
    ("rerank 10 passages (bi-encoder)", "feature-extraction", "rerank-bi"),
]

#: one call of a kind on one text, and a run over many texts (rerank: the texts as one query's passages);
#: a switch, not code sent as text: the page's Content-Security-Policy refuses eval and new Function
CALL = f"""
const LABELS = {json.dumps(LABELS)}, EXAMPLES = {json.dumps(EXAMPLES)}, QUERY = {json.dumps(QUERY)};
const NLI = {json.dumps(NLI_MODEL)};
const one = (router, kind, text) => {{
  if (kind === "sentiment") return router.classify(text);
  if (kind === "labels") return router.classify(text, {{ labels: LABELS }});
  if (kind === "zero-shot") return router.classify(text, {{ labels: LABELS, model: NLI }});
  if (kind === "few-shot") return router.classify(text, {{ examples: EXAMPLES }});
  if (kind === "ner") return router.ner(text);
  if (kind === "rerank") return router.rerank(QUERY, Array(10).fill(text));
  return router.rerank(QUERY, Array(10).fill(text), {{ model: "all-MiniLM-L6-v2" }});
}};
const many = async (router, kind, texts) => {{
  if (kind === "rerank") await router.rerank(QUERY, texts);
  else if (kind === "rerank-bi") await router.rerank(QUERY, texts, {{ model: "all-MiniLM-L6-v2" }});
  else for (const t of texts) await one(router, kind, t);
  return texts.length;
}};
"""

TIME = (
    """async ({ kind, arg, runs }) => {"""
    + CALL
    + """
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await one(window.router, kind, arg);
    times.push(performance.now() - t0);
  }
  return times;
}"""
)

THROUGHPUT = (
    """async ({ kind, arg }) => {"""
    + CALL
    + """
  const t0 = performance.now();
  const n = await many(window.router, kind, arg);
  return { ms: performance.now() - t0, n };
}"""
)


def _built_tasks() -> set[str]:
    from builder.models import load_manifest, read_index

    built = set(read_index())
    return {
        task
        for entry in load_manifest().models
        for task in entry.tasks
        # an NLI model lists text-classification too, but never answers a classification without labels
        if entry.id in built
        and not (task == "text-classification" and "zero-shot-classification" in entry.tasks)
    }


def run(runs: int = 20, smoke: bool = False) -> list[dict[str, Any]]:
    """``smoke``: one run of each call, 3 texts for the throughput."""
    tasks = _built_tasks()
    runs = 1 if smoke else runs
    texts = SENTENCES[:3] if smoke else SENTENCES
    rows: list[dict[str, Any]] = []
    header(f"local text tasks in Chromium (WASM, each model at its default dtype), {runs} runs per median")
    with server_and_browser() as (server, browser):
        rp = router_page(browser, server)
        for name, task, kind in CASES:
            if task not in tasks:
                print(f"skipped {name}: no {task} model is built (./hr build with the data)")
                continue
            (first,) = evaluate(rp.page, TIME, {"kind": kind, "arg": SHORT, "runs": 1})
            times = evaluate(rp.page, TIME, {"kind": kind, "arg": SHORT, "runs": runs})
            batch = evaluate(rp.page, THROUGHPUT, {"kind": kind, "arg": texts})
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
        f"one call: a {len(SHORT.split())}-word text; throughput: {len(texts)} texts of "
        f"{min(map(len, texts))}-{max(map(len, texts))} characters "
        "(rerank: as the passages of one query); first: model load from the server + the call"
    )
    table(
        [("task", 56), ("first ms", 9), ("median ms", 10), ("p95 ms", 8), ("items/s", 8)],
        [(r["what"], r["first_ms"], r["median_ms"], r["p95_ms"], r["per_s"]) for r in rows],
        title="tasks",
    )
    return rows
