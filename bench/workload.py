"""The seed's workload through the real worker and a real cloud: what share is served on the device, what
share of the hard prompts reaches the cloud, what it costs against sending everything to the cloud, and
how long the router takes to decide.

Per 100 requests: 35 embeddings, 15 classifications, 10 entity extractions, 10 reranks, 20 everyday
generations and 10 hard prompts (so about one in ten is hard), shuffled with a seed, 4 in flight, the
default policy (``route: "auto"``). Generation prompts are drawn from the router's labelled prompt set
(eval/router_data.py: every source of ``--data``, labelled hard or everyday by its documented scheme), or
without the data folder from tests/data/router_handwritten.jsonl. The shipped router was trained on these
sources, so these shares are in-sample: the out-of-sample figures are eval/router_eval.py's
leave-one-source-out table (README). The cloud is llama-server (Qwen2.5-Coder-0.5B) behind serve.py's
relay, priced as the ledger prices it.

    ./hr bench workload [--requests 300] [--data ../shared/data] [--seed 3]
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

from tests.harness import REPO
from tests.load import percentile

from .common import cloud_server_and_browser, evaluate, header, router_page, table

KEY = "sk-bench-workload"
SHARES = (("embed", 35), ("classify", 15), ("ner", 10), ("rerank", 10), ("everyday", 20), ("hard", 10))
MAX_PROMPT_CHARS = 1500

TEXTS = [
    "The new update made the app much faster.",
    "Our flight from Chicago was delayed by three hours.",
    "Marie Curie worked at the University of Paris.",
    "I can't believe how good the soup was.",
    "Please send the invoice to the accounts team at Siemens.",
    "The battery died after one day; very disappointing.",
]
DOCS = [
    "Rain is expected in the afternoon with clearing skies by evening.",
    "The central bank raised interest rates by a quarter point.",
    "A recipe for tomato soup needs tomatoes, onion, garlic and stock.",
    "The football match ended in a draw after extra time.",
]

DRIVER = """async (jobs) => {
  const r = window.router;
  const out = [];
  let next = 0;
  const t0 = performance.now();
  const one = async (job) => {
    const started = performance.now();
    try {
      let v;
      if (job.kind === "embed") v = await r.embed([job.text]);
      else if (job.kind === "classify") v = await r.classify(job.text);
      else if (job.kind === "ner") v = await r.ner(job.text);
      else if (job.kind === "rerank") v = await r.rerank(job.text, job.docs);
      else v = await r.generate({ prompt: job.text, maxTokens: 8, temperature: 0 });
      out.push({ ...job, text: undefined, ok: true, ms: performance.now() - started, route: v.route });
    } catch (e) {
      out.push({ ...job, text: undefined, ok: false, name: e.name, message: e.message,
                 ms: performance.now() - started });
    }
  };
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (next < jobs.length) await one(jobs[next++]);
  }));
  return { seconds: (performance.now() - t0) / 1000, results: out, stats: await r.stats() };
}"""


def prompts(data: Path | None) -> tuple[list[str], list[str], str]:
    """Everyday and hard generation prompts, and where they came from."""
    if data is not None and (data / "routellm").is_dir():
        from eval.router_data import load_all

        labelled = [p for p in load_all(data) if len(p.text) <= MAX_PROMPT_CHARS]
        return (
            [p.text for p in labelled if not p.hard],
            [p.text for p in labelled if p.hard],
            f"the labelled prompt set of {data} ({len(labelled)} prompts)",
        )
    rows = [
        json.loads(line) for line in (REPO / "tests/data/router_handwritten.jsonl").read_text().splitlines()
    ]
    return (
        [r["prompt"] for r in rows if not r["hard"]],
        [r["prompt"] for r in rows if r["hard"]],
        "tests/data/router_handwritten.jsonl (no data folder)",
    )


def jobs(n: int, everyday: list[str], hard: list[str], seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    kinds = [k for k, share in SHARES for _ in range(share)]
    out: list[dict[str, Any]] = []
    for i in range(n):
        # fewer than one mix's worth (the smoke form): one of each kind's stretch, so every kind is there
        kind = kinds[i % len(kinds)] if n >= len(kinds) else kinds[i * len(kinds) // n]
        text = (
            rng.choice(everyday)
            if kind == "everyday"
            else rng.choice(hard)
            if kind == "hard"
            else rng.choice(TEXTS)
        )
        out.append({"i": i, "kind": kind, "text": text, "docs": DOCS})
    rng.shuffle(out)
    return out


def run(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="./hr bench workload")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seed", type=int, default=3)
    default_data = REPO.parent / "shared" / "data"
    parser.add_argument("--data", type=Path, default=default_data if default_data.is_dir() else None)
    parser.add_argument("--smoke", action="store_true", help="the smallest form: 10 requests")
    args = parser.parse_args(argv or [])
    if args.smoke:
        args.requests = 10
    everyday, hard, source = prompts(args.data)
    work = jobs(args.requests, everyday, hard, args.seed)

    header(f"workload: {args.requests} requests in the seed's mix, 4 in flight, the default policy")
    print(f"generation prompts: {source}")
    with cloud_server_and_browser(KEY) as (server, browser, _):
        rp = router_page(browser, server, {"cloud": {"timeoutMs": 60000}})
        evaluate(
            rp.page,
            """async () => { const router = window.router;  // a model not built here: its calls fail below
            const warm = (call) => call().catch((e) => console.warn(`warm-up: ${e.name}: ${e.message}`));
            await warm(() => router.embed(['warm'])); await warm(() => router.classify('warm'));
            await warm(() => router.ner('warm')); await warm(() => router.rerank('warm', ['a', 'b']));
            await warm(() => router.generate({ prompt: 'warm', maxTokens: 2, route: 'local' })); }""",
        )
        base = evaluate(rp.page, "() => window.router.stats()")
        out = evaluate(rp.page, DRIVER, work)
        rp.page.context.close()

    results = out["results"]
    stats = out["stats"]
    requests = stats["requests"] - base["requests"]
    local = stats["local"] - base["local"]
    cost = stats["cloud_cost_usd"] - base["cloud_cost_usd"]
    saved = stats["saved_usd"] - base["saved_usd"]
    gens = [r for r in results if r["kind"] in ("everyday", "hard") and r["ok"]]
    hard_cloud = [r for r in gens if r["kind"] == "hard" and r["route"]["target"] == "cloud"]
    easy_local = [r for r in gens if r["kind"] == "everyday" and r["route"]["target"] == "local"]
    n_hard = sum(1 for r in gens if r["kind"] == "hard")
    n_easy = sum(1 for r in gens if r["kind"] == "everyday")
    decision = [r["route"]["decision_ms"] for r in gens]
    local_gen_ms = [r["ms"] for r in gens if r["route"]["target"] == "local"]
    failed = Counter(r.get("name") for r in results if not r["ok"])
    print(f"{len(results)} requests in {out['seconds']:.0f} s; failed: {dict(failed) or 'none'}")
    rows = []
    for kind, _ in SHARES:
        mine = [r for r in results if r["kind"] == kind and r["ok"]]
        on = sum(1 for r in mine if r["route"]["target"] == "local")
        rows.append((kind, len(mine), on, len(mine) - on, percentile([r["ms"] for r in mine], 50)))
    table([("kind", 10), ("ok", 5), ("local", 6), ("cloud", 6), ("p50 ms", 8)], rows, title="workload")
    all_cloud = cost + saved
    summary = {
        "local_share": local / requests if requests else 0.0,
        "hard_to_cloud": len(hard_cloud) / n_hard if n_hard else 0.0,
        "everyday_local": len(easy_local) / n_easy if n_easy else 0.0,
        "cost_usd": cost,
        "all_cloud_usd": all_cloud,
        "decision_ms_p50": percentile(decision, 50),
        "decision_ms_p95": percentile(decision, 95),
        "local_generation_ms_p50": percentile(local_gen_ms, 50),
    }
    print(
        f"served locally: {summary['local_share']:.1%} of {requests} requests (the ledger); "
        f"hard prompts to the cloud: {len(hard_cloud)}/{n_hard} ({summary['hard_to_cloud']:.1%}); "
        f"everyday prompts kept local: {len(easy_local)}/{n_easy} ({summary['everyday_local']:.1%})"
    )
    print(
        f"cost: ${cost:.6f} in the cloud against ${all_cloud:.6f} all-cloud "
        f"({(cost / all_cloud if all_cloud else 0):.1%}; the device's work priced by savings.TASK_PRICES)"
    )
    print(
        f"decision time (generations): median {summary['decision_ms_p50']:.1f} ms, "
        f"p95 {summary['decision_ms_p95']:.1f} ms; a local answer (8 tokens): median "
        f"{summary['local_generation_ms_p50']:.0f} ms"
    )
    return summary
