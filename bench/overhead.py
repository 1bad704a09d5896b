"""What the router costs on top of Transformers.js, in a real browser (Chromium, WASM backend).

(a) decision overhead in the worker: ``route.decision_ms`` of local 1-token generate calls after
    warm-up (request checks, token count with the local tokenizer, complexity estimate, rules);
(b) end to end: the same request through our worker (``router.embed`` / ``router.generate``) and
    straight to Transformers.js in a plain module worker on the same page (``bench/plain-worker.js``,
    set up as web/worker.js sets up Transformers.js: same server URLs, offline, same thread count),
    both timed in the page with performance.now() around the call, alternating one call of each.

The plain worker is served from the page's own origin with the headers serve.py gives ``web/worker.js``
(the browser context answers its URL with that file's body and the real response's headers): the page's
Content-Security-Policy allows only same-origin workers (``worker-src 'self'``), so a ``blob:`` worker,
as this benchmark once used, is refused and the benchmark waited for ever.
"""

from __future__ import annotations

import json
from typing import Any

from tests.harness import REPO

from .common import evaluate, header, median, p95, router_page, serve_worker_file, server_and_browser, table
from .generation import PROMPT

#: everyday sentences of the test set (10-100 characters: no padding to the 256-token window, no truncation)
SENTENCES = [
    s
    for s in json.loads((REPO / "tests" / "data" / "sentences.json").read_text())["sentences"]
    if 10 <= len(s) <= 100
]
LONG_PROMPT = " ".join(SENTENCES[:12]) + " Summarize the sentences above in one line."
DECISION_CALLS = 30  # with the short prompt; a third of that with the long one (each call evaluates it)
WARMUP = 1
GEN_TOKENS = 16
EMBED_MODEL, GEN_MODEL = "all-MiniLM-L6-v2", "SmolLM2-135M-Instruct"

#: the plain worker's file, and the same-origin URL the page loads it from
PLAIN_WORKER = REPO / "bench" / "plain-worker.js"
PLAIN_URL = "/__bench__/plain-worker.js"

START_PLAIN = """async (url) => {
  const boot = await (await fetch("/boot.json")).json();
  const worker = new Worker(url, { type: "module", name: "plain-transformers-js" });
  const pending = new Map();
  worker.onerror = (e) => {
    for (const { reject } of pending.values()) reject(new Error(`plain worker: ${e.message}`));
  };
  let next = 0;
  worker.onmessage = ({ data }) => {
    const { resolve, reject } = pending.get(data.id);
    pending.delete(data.id);
    data.error ? reject(new Error(data.error)) : resolve(data.value);
  };
  window.plain = (op, args) => new Promise((resolve, reject) => {
    const id = ++next;
    pending.set(id, { resolve, reject });
    worker.postMessage({ ...args, op, id });
  });
  const { threads, ort } = window.router.info;
  return window.plain("setup", { origin: location.origin, boot, threads, ortBuild: ort?.build });
}"""

DECISIONS = """async ({ prompt, calls }) => {
  const out = [];
  for (let i = 0; i < calls; i++) {
    const { route } = await window.router.generate({ prompt, maxTokens: 1, route: "local" });
    out.push({ decision_ms: route.decision_ms, ms: route.ms, tokens_in: route.tokens_in });
  }
  return out;
}"""

#: one call of each side per round (ours first), after `warmup` rounds; `what` is embed or generate
PAIRED = """async ({ what, args, runs, warmup }) => {
  const ours = what === "embed"
    ? () => window.router.embed(args.texts, { model: args.model, dtype: "fp32" })
    : () => window.router.generate({ prompt: args.prompt, maxTokens: args.maxTokens, route: "local" });
  const direct = () => window.plain(what, args);
  const timed = async (f) => {
    const t0 = performance.now();
    const value = await f();
    return [performance.now() - t0, value];
  };
  const times = { ours: [], direct: [] };
  let last = {};
  for (let i = 0; i < warmup + runs; i++) {
    const [a, va] = await timed(ours);
    const [b, vb] = await timed(direct);
    if (i >= warmup) { times.ours.push(a); times.direct.push(b); }
    last = { ours: va, direct: vb };
  }
  const same = what === "embed"
    ? last.ours.vectors.every((v, i) => v.every((x, j) => Math.abs(x - last.direct.vectors[i][j]) < 1e-5))
    : last.ours.text === last.direct.text;
  return { ...times, same, tokens_out: last.ours.usage?.tokens_out };
}"""


def run(runs: int = 10, smoke: bool = False) -> dict[str, Any]:
    calls = 2 if smoke else DECISION_CALLS
    gen_tokens = 4 if smoke else GEN_TOKENS
    runs = 1 if smoke else runs
    header(
        f"Router overhead in the browser: (a) {calls} + {max(1, calls // 3)} calls, (b) paired "
        f"calls after {WARMUP} warm-up pair(s); prompt {PROMPT!r}"
    )
    with server_and_browser() as (server, browser):
        rp = router_page(browser, server)
        page = rp.page
        serve_worker_file(page.context, server.origin, PLAIN_WORKER, PLAIN_URL)
        info = evaluate(page, "() => window.router.info")
        plain = evaluate(page, START_PLAIN, PLAIN_URL)
        print(
            f"browser: our worker {info['threads']} thread(s), cross-origin isolated "
            f"{info['crossOriginIsolated']}, ONNX Runtime {(info.get('ort') or {}).get('build', 'default')}; "
            "plain worker "
            f"{plain['threads']} thread(s), cross-origin isolated {plain['crossOriginIsolated']}, "
            f"ONNX Runtime {plain['ort']}"
        )

        evaluate(page, DECISIONS, {"prompt": PROMPT, "calls": 2})  # warm-up: loads the model
        decisions = []
        for label, prompt, n in (
            ("short prompt", PROMPT, calls),
            ("long prompt", LONG_PROMPT, max(1, calls // 3)),
        ):
            made = evaluate(page, DECISIONS, {"prompt": prompt, "calls": n})
            ds = [c["decision_ms"] for c in made]
            share = median([c["decision_ms"] / c["ms"] * 100 for c in made])
            decisions.append(
                [
                    f"decision_ms, {label} ({made[0]['tokens_in']} tokens)",
                    median(ds),
                    p95(ds),
                    median([c["ms"] for c in made]),
                    f"{share:.1f}%",
                    len(ds),
                ]
            )

        batch = (SENTENCES * 2)[:32]
        cases = [  # label, method, arguments, timed pairs (generation: half, it is the slow one)
            (
                f"embed 1 sentence ({EMBED_MODEL} fp32)",
                "embed",
                {"model": EMBED_MODEL, "texts": ["How do I reset my password?"]},
                runs,
            ),
            (
                f"embed 32 sentences ({EMBED_MODEL} fp32)",
                "embed",
                {"model": EMBED_MODEL, "texts": batch},
                runs,
            ),
            (
                f"generate {gen_tokens} tokens ({GEN_MODEL} fp32)",
                "generate",
                {"model": GEN_MODEL, "prompt": PROMPT, "maxTokens": gen_tokens},
                runs if smoke else max(3, runs // 2),
            ),
        ]
        paired, notes = [], []
        for label, what, args, n in cases:
            r = evaluate(page, PAIRED, {"what": what, "args": args, "runs": n, "warmup": WARMUP})
            ours, direct = median(r["ours"]), median(r["direct"])
            paired.append(
                [
                    label,
                    ours,
                    p95(r["ours"]),
                    direct,
                    p95(r["direct"]),
                    ours - direct,
                    f"{(ours - direct) / direct * 100:+.1f}%",
                    p95(r["ours"]) - p95(r["direct"]),
                    n,
                ]
            )
            if not r["same"]:
                notes.append(f"{label}: the two answers differ (last call)")
            if r.get("tokens_out") is not None and r["tokens_out"] != gen_tokens:
                notes.append(f"{label}: our worker generated {r['tokens_out']} tokens")
        page.context.close()

    print("\n(a) decision overhead in the worker (decision_ms; request ms: the 1-token call's route.ms)")
    table(
        [("measurement", 46), ("median ms", 9), ("p95 ms", 7), ("request ms", 10), ("share", 6), ("n", 3)],
        decisions,
        title="decision overhead",
    )
    print("\n(b) end to end, timed in the page: our worker against Transformers.js in a plain worker")
    table(
        [
            ("request", 46),
            ("ours med", 8),
            ("ours p95", 8),
            ("plain med", 9),
            ("plain p95", 9),
            ("+ms med", 7),
            ("+% med", 7),
            ("+ms p95", 7),
            ("n", 3),
        ],
        paired,
        title="end to end",
    )
    for note in notes:
        print(f"note: {note}")
    return {"decisions": decisions, "paired": paired, "notes": notes}
