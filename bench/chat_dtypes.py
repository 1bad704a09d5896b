"""The chat models' dtypes side by side in one page: what each downloads, how long it takes to load, and
how fast it decodes, with the greedy text each produces.

SmolLM2-135M-Instruct's ``q4`` holds the GGUF's own blocks and is expanded to fp32 by ONNX Runtime's
constant folding when the session is created (builder/convert/gguf_onnx.py); ``fp32`` is the plain export.
Qwen2.5-Coder-0.5B-Instruct's ``q4`` (where built) holds its GGUF's blocks too, the 8-bit ones read by
``MatMulNBits`` as they are (its fp32 weights would not fit a 4 GB wasm heap); it has no fp32 to compare.
Both load in a plain Transformers.js worker (``bench/dtype-worker.js``: set up as web/worker.js sets it
up, the plain ONNX Runtime build, the router's thread count, served from the page's origin under the
product's headers), rounds interleaved (fp32, q4, fp32, q4, ...), a fresh worker for each load:

- *download MB*: what one visit downloads for that dtype (the manifest's files);
- *load ms*: ``from_pretrained`` (reading the files over loopback, so almost no network time, plus
  creating the session, which for q4 includes the constant folding);
- *first token ms*: a 1-token answer; *decode tok/s*: (tokens - 1) over the 64-token answer's time minus
  the 1-token answer's;
- *same text*: the greedy answer equals the same model's other dtype's (the weights are equal, so it must).

At a given bandwidth the download dominates a first visit: the *first visit at 50 Mbit/s* column adds the
download time at that rate to the load time.
"""

from __future__ import annotations

from typing import Any

from tests.harness import REPO

from .common import evaluate, header, median, router_page, serve_worker_file, server_and_browser, table
from .generation import PROMPT

MODEL = "SmolLM2-135M-Instruct"
DTYPES = ("fp32", "q4")
#: the second chat model, one row beside SmolLM2's where the manifest has it (not in the suite's --smoke)
BIGGER = ("Qwen2.5-Coder-0.5B-Instruct", "q4")
MAX_TOKENS = 64
MBIT_S = 50
WORKER = REPO / "bench" / "dtype-worker.js"
WORKER_URL = "/__bench__/dtype-worker.js"

START = """async (url) => {
  const boot = await (await fetch("/boot.json")).json();
  const worker = new Worker(url, { type: "module", name: "chat-dtypes" });
  const pending = new Map();
  worker.onerror = (e) => {
    for (const { reject } of pending.values()) reject(new Error(`dtype worker: ${e.message}`));
  };
  let next = 0;
  worker.onmessage = ({ data }) => {
    const { resolve, reject } = pending.get(data.id);
    pending.delete(data.id);
    data.error ? reject(new Error(data.error)) : resolve(data.value);
  };
  window.dtypeWorker = worker;
  window.dtypeCall = (op, args) => new Promise((resolve, reject) => {
    const id = ++next;
    pending.set(id, { resolve, reject });
    worker.postMessage({ ...args, op, id });
  });
  return window.dtypeCall("setup", { origin: location.origin, boot, threads: window.router.info.threads });
}"""

ROUND = """async ({ model, dtype, prompt, maxTokens }) => {
  const { load_ms } = await window.dtypeCall("load", { model, dtype });
  const one = await window.dtypeCall("generate", { prompt, maxTokens: 1 });
  const whole = await window.dtypeCall("generate", { prompt, maxTokens });
  await window.dtypeCall("dispose", {});
  window.dtypeWorker.terminate();
  return { load_ms, first_ms: one.ms, whole_ms: whole.ms, tokens: whole.tokens, text: whole.text };
}"""


def run(runs: int = 2, smoke: bool = False) -> dict[str, Any]:
    from builder.models import load_manifest

    runs = 1 if smoke else runs
    max_tokens = 4 if smoke else MAX_TOKENS
    manifest = load_manifest()
    entry = manifest.model(MODEL)
    rounds = [(MODEL, d) for d in DTYPES if d in entry.variants]
    if not smoke and BIGGER[0] in manifest.ids and BIGGER[1] in manifest.model(BIGGER[0]).variants:
        rounds.append(BIGGER)
    header(
        f"chat models: {', '.join(f'{m} {d}' for m, d in rounds)} in one page, {runs} interleaved round(s), "
        f"{max_tokens} tokens"
    )
    results: dict[tuple[str, str], list[dict[str, Any]]] = {r: [] for r in rounds}
    with server_and_browser() as (server, browser):
        rp = router_page(browser, server)
        serve_worker_file(rp.page.context, server.origin, WORKER, WORKER_URL)
        for _ in range(runs):
            for model, dtype in rounds:
                setup = evaluate(rp.page, START, WORKER_URL)
                args = {"model": model, "dtype": dtype, "prompt": PROMPT, "maxTokens": max_tokens}
                results[(model, dtype)].append({**evaluate(rp.page, ROUND, args), **setup})
        rp.page.context.close()
    texts = {r: rs[-1]["text"] for r, rs in results.items()}
    rows = []
    for (model, dtype), rs in results.items():
        mb = manifest.model(model).total_bytes(dtype) / 1e6
        load, first, whole = (median([r[k] for r in rs]) for k in ("load_ms", "first_ms", "whole_ms"))
        tokens = rs[-1]["tokens"]
        decode = (tokens - 1) / (whole - first) * 1000 if tokens > 1 and whole - first > 1 else 0.0
        first_visit_s = mb * 8 / MBIT_S + load / 1000
        same = all(t == texts[(model, dtype)] for (m, _), t in texts.items() if m == model)
        rows.append(
            [
                f"{model} {dtype}",
                round(mb, 1),
                float(round(load)),
                float(round(first)),
                decode,
                first_visit_s,
                same,
            ]
        )
    table(
        [
            ("model dtype", 34),
            ("download MB", 12),
            ("load ms", 9),
            ("first token ms", 15),
            ("decode tok/s", 13),
            (f"first visit at {MBIT_S} Mbit/s, s", 30),
            ("same text", 9),
        ],
        rows,
        title=f"chat models by dtype ({results[rounds[0]][-1]['ort']}, cross-origin isolated: "
        f"{results[rounds[0]][-1]['crossOriginIsolated']})",
    )
    return {"results": {f"{m} {d}": rs for (m, d), rs in results.items()}}
