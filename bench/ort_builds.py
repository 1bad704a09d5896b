"""ONNX Runtime Web's builds side by side, in one page: the plain SIMD-threaded build (wasm execution
provider only), the asyncify build and the JSPI build (both also carry the WebGPU one), on the wasm
execution provider, through the product's own worker (worker.js under serve.py's headers: the
Content-Security-Policy, cross-origin isolation).

One Chromium page starts the worker once per build (the init option ``ortBuild`` pins it; everything else
is what the device would get: ONNX Runtime's proxy worker here), rounds interleaved (plain, asyncify,
jspi, plain, ...) so that a change in the machine's load hits every build alike. Per build and round:
one sentence (median of ``runs`` calls), a batch of 32 sentences (median of ``runs``), and SmolLM2's
greedy decode speed (64 new tokens, from the first streamed piece to the last). Times are the page's
(``performance.now()`` around the call), after a warm-up call. ``x plain``: the build's time over the
plain build's (1.00x: as fast; above: slower).

    ./hr bench ort_builds [--runs N] [--smoke]
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from tests.harness import REPO, open_router_page

from .common import header, median, server_and_browser, table

SENTENCES: list[str] = json.loads((REPO / "tests" / "data" / "sentences.json").read_text())["sentences"]
ONE = ["How do I reset my password?"]
BUILDS = ("plain", "asyncify", "jspi")
PROMPT = "Write a short story about a lighthouse keeper."

#: the page's side: a worker of our own per build, spoken to with the wire protocol (docs/ARCHITECTURE.md)
CLIENT = """() => {
  window.ortBench = {
    async start(build) {
      const worker = new Worker("/worker.js", { type: "module", name: "bench-" + build });
      const pending = new Map(); let next = 1;
      const info = await new Promise((resolve, reject) => {
        worker.onmessage = (e) => {
          const m = e.data;
          if (m.id === null || m.id === undefined) {
            if (m.type === "ready") resolve(m.info);
            if (m.type === "fatal") reject(new Error(m.error.name + ": " + m.error.message));
            return;
          }
          const call = pending.get(m.id);
          if (!call) return;
          if (m.type === "chunk") call.onChunk?.(m.value);
          else if (m.type === "result") { pending.delete(m.id); call.resolve(m.value); }
          else if (m.type === "error") {
            pending.delete(m.id);
            call.reject(new Error(m.error.name + ": " + m.error.message));
          }
        };
        worker.onerror = (e) => reject(new Error("worker error: " + e.message));
        worker.postMessage({ type: "init", options: { ortBuild: build } });
      });
      const call = (method, params, onChunk) => new Promise((resolve, reject) => {
        const id = next++;
        pending.set(id, { resolve, reject, onChunk });
        worker.postMessage({ id, type: "call", method, params });
      });
      return { worker, info, call };
    },
  };
}"""

MEASURE = """async ({ build, one, batch, runs, prompt, maxTokens }) => {
  const t0 = performance.now();
  const w = await window.ortBench.start(build);
  const boot = performance.now() - t0;
  try {
    const timed = async (texts) => {
      await w.call("embed", { texts });  // warm-up (the first call loads the model)
      const times = [];
      for (let i = 0; i < runs; i++) {
        const s = performance.now();
        await w.call("embed", { texts });
        times.push(performance.now() - s);
      }
      return times;
    };
    const single = await timed(one);
    const batched = await timed(batch);
    await w.call("generate", { prompt: "Hi", max_tokens: 2, route: "local", temperature: 0 });
    let first = null; let pieces = 0;
    const final = await w.call("stream", { prompt, max_tokens: maxTokens, route: "local", temperature: 0 },
      () => { pieces++; if (first === null) first = performance.now(); });
    const end = performance.now();
    const tokens = final.route.tokens_out;
    return { ort: w.info.ort, boot, single, batched, tokens, pieces,
      tps: first !== null && tokens > 1 ? (tokens - 1) / ((end - first) / 1000) : null };
  } finally {
    w.worker.terminate();
  }
}"""


def _sizes(origin: str) -> dict[str, int]:
    """The served size of each build's .wasm (what a device downloads for it)."""
    with urllib.request.urlopen(origin + "/boot.json") as resp:
        boot = json.load(resp)
    sizes = {}
    for name, files in boot["ort"].get("builds", {}).items():
        req = urllib.request.Request(origin + files["wasm"], method="HEAD")
        with urllib.request.urlopen(req) as resp:
            sizes[name] = int(resp.headers["Content-Length"])
    return sizes


def run(runs: int = 5, smoke: bool = False) -> dict[str, Any]:
    rounds = 1 if smoke else 2
    runs = 1 if smoke else runs
    builds = BUILDS[:2] if smoke else BUILDS
    max_tokens = 4 if smoke else 64
    batch = (SENTENCES * 2)[:32]
    header(
        f"ONNX Runtime Web builds side by side in one page (wasm execution provider; all-MiniLM-L6-v2 fp32, "
        f"SmolLM2-135M-Instruct greedy, {max_tokens} new tokens); {rounds} rounds, medians of {runs} calls"
    )
    results: dict[str, list[dict[str, Any]]] = {b: [] for b in builds}
    with server_and_browser() as (server, browser):
        sizes = _sizes(server.origin)
        rp = open_router_page(browser, server, create=False)
        rp.page.evaluate(CLIENT)
        for _ in range(rounds):
            for build in builds:
                out = rp.page.evaluate(
                    MEASURE,
                    {
                        "build": build,
                        "one": ONE,
                        "batch": batch,
                        "runs": runs,
                        "prompt": PROMPT,
                        "maxTokens": max_tokens,
                    },
                )
                if out["ort"]["build"] != build:
                    raise RuntimeError(f"the worker ran {out['ort']} instead of the {build} build")
                results[build].append(out)
        rp.page.context.close()

    def med(build: str, key: str) -> float:
        return median([t for r in results[build] for t in r[key]])

    def tps(build: str) -> float | None:
        xs = [r["tps"] for r in results[build] if r["tps"] is not None]
        return median(xs) if xs else None

    def rel(value: float | None, base: float | None) -> str:
        return f"{value / base:.2f}x" if value and base else ""

    rows = []
    for build in builds:
        rows.append(
            [
                build,
                f"{sizes.get(build, 0) / 1e6:.1f}",
                "yes" if results[build][0]["ort"]["proxy"] else "no",
                ", ".join(f"{t:.1f}" for t in (median(r["single"]) for r in results[build])),
                med(build, "single"),
                rel(med(build, "single"), med("plain", "single")),
                med(build, "batched"),
                rel(med(build, "batched"), med("plain", "batched")),
                tps(build),
                rel(tps("plain"), tps(build)),
            ]
        )
    table(
        [
            ("build", 9),
            ("wasm MB", 8),
            ("proxy", 6),
            ("1 sentence per round ms", 24),
            ("1 sent. ms", 10),
            ("x plain", 8),
            ("batch 32 ms", 11),
            ("x plain", 8),
            ("decode tok/s", 12),
            ("x plain", 8),
        ],
        rows,
    )
    return {b: {"single": med(b, "single"), "batch": med(b, "batched"), "tps": tps(b)} for b in builds}
