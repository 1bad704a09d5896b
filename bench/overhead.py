"""What the router costs on top of Transformers.js, in a real browser (Chromium, WASM backend).

(a) decision overhead in the worker: ``route.decision_ms`` of local 1-token generate calls after
    warm-up (request checks, token count with the local tokenizer, complexity estimate, rules);
(b) end to end: the same request through our worker (``router.embed`` / ``router.generate``) and
    straight to Transformers.js in a plain module worker on the same page (a Blob URL, set up as
    web/worker.js sets up Transformers.js: same server URLs, offline, same thread count), both timed
    in the page with performance.now() around the call, alternating one call of each.
"""

from __future__ import annotations

import json
from typing import Any

from tests.harness import REPO, open_router_page

from .common import header, median, p95, server_and_browser, table
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

#: the plain worker: Transformers.js only, set up like web/worker.js. A Blob URL worker cannot resolve
#: the path-only localModelPath against its own (blob:) URL: its fetch resolves against the page's, and
#: Transformers.js's Cache Storage (keyed by that path) is off; it only matters while loading.
PLAIN_WORKER = """
let tjs = null;
const pipes = {};
const pipe = (task, model) => pipes[model] ??= tjs.pipeline(task, model, { dtype: "fp32", device: "wasm" });
const ops = {
  async setup({ origin, boot, threads }) {
    const abs = (url) => new URL(url, origin).href;
    tjs = await import(abs(boot.transformers.url));
    tjs.env.allowRemoteModels = false;
    tjs.env.allowLocalModels = true;
    tjs.env.localModelPath = new URL(abs(boot.models_url)).pathname;
    tjs.env.backends.onnx.wasm.wasmPaths = { mjs: abs(boot.ort.mjs), wasm: abs(boot.ort.wasm) };
    tjs.env.backends.onnx.wasm.numThreads = threads;
    tjs.env.useBrowserCache = false;
    const fetchHere = tjs.env.fetch;
    tjs.env.fetch = (url, init) => fetchHere(new URL(url, origin).href, init);
    return { crossOriginIsolated: self.crossOriginIsolated, threads: tjs.env.backends.onnx.wasm.numThreads };
  },
  async embed({ model, texts }) {
    const out = await (await pipe("feature-extraction", model))(texts, { pooling: "mean", normalize: true });
    try { return { vectors: out.tolist() }; } finally { out.dispose(); }
  },
  async generate({ model, prompt, maxTokens }) {
    const out = await (await pipe("text-generation", model))([{ role: "user", content: prompt }],
      { max_new_tokens: maxTokens, do_sample: false, return_full_text: false });
    return { text: out[0].generated_text.at(-1).content };
  },
};
self.onmessage = async ({ data }) => {
  try { self.postMessage({ id: data.id, value: await ops[data.op](data) }); }
  catch (e) { self.postMessage({ id: data.id, error: String(e && e.stack || e) }); }
};
"""

START_PLAIN = """async (source) => {
  const boot = await (await fetch("/boot.json")).json();
  const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  const worker = new Worker(url, { type: "module", name: "plain-transformers-js" });
  const pending = new Map();
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
  return window.plain("setup", { origin: location.origin, boot, threads: window.router.info.threads });
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


def run(runs: int = 10) -> dict[str, Any]:
    header(
        f"Router overhead in the browser: (a) {DECISION_CALLS} + {DECISION_CALLS // 3} calls, (b) paired "
        f"calls after {WARMUP} warm-up pair(s); prompt {PROMPT!r}"
    )
    with server_and_browser() as (server, browser):
        rp = open_router_page(browser, server)
        page = rp.page
        info = page.evaluate("() => window.router.info")
        plain = page.evaluate(START_PLAIN, PLAIN_WORKER)
        print(
            f"browser: our worker {info['threads']} thread(s), cross-origin isolated "
            f"{info['crossOriginIsolated']}; plain worker {plain['threads']} thread(s), "
            f"cross-origin isolated {plain['crossOriginIsolated']}"
        )

        page.evaluate(DECISIONS, {"prompt": PROMPT, "calls": 2})  # warm-up: loads the model
        decisions = []
        for label, prompt, n in (
            ("short prompt", PROMPT, DECISION_CALLS),
            ("long prompt", LONG_PROMPT, DECISION_CALLS // 3),
        ):
            calls = page.evaluate(DECISIONS, {"prompt": prompt, "calls": n})
            ds = [c["decision_ms"] for c in calls]
            share = median([c["decision_ms"] / c["ms"] * 100 for c in calls])
            decisions.append(
                [
                    f"decision_ms, {label} ({calls[0]['tokens_in']} tokens)",
                    median(ds),
                    p95(ds),
                    median([c["ms"] for c in calls]),
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
                f"generate {GEN_TOKENS} tokens ({GEN_MODEL} fp32)",
                "generate",
                {"model": GEN_MODEL, "prompt": PROMPT, "maxTokens": GEN_TOKENS},
                max(3, runs // 2),
            ),
        ]
        paired, notes = [], []
        for label, what, args, n in cases:
            r = page.evaluate(PAIRED, {"what": what, "args": args, "runs": n, "warmup": WARMUP})
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
            if r.get("tokens_out") is not None and r["tokens_out"] != GEN_TOKENS:
                notes.append(f"{label}: our worker generated {r['tokens_out']} tokens")
        page.context.close()

    print("\n(a) decision overhead in the worker (decision_ms; request ms: the 1-token call's route.ms)")
    table(
        [("measurement", 46), ("median ms", 9), ("p95 ms", 7), ("request ms", 10), ("share", 6), ("n", 3)],
        decisions,
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
    )
    for note in notes:
        print(f"note: {note}")
    return {"decisions": decisions, "paired": paired, "notes": notes}
