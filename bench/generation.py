"""Decode speed of the on-device model in the browser against llama.cpp on the same machine.

Same prompt (chat template applied by each engine), 64 new tokens, greedy, 2 threads:

- browser: SmolLM2-135M-Instruct (fp32 ONNX) on Transformers.js (WASM) through our worker,
  ``router.stream({prompt, maxTokens: 64, route: "local"})``, timed in the page with performance.now();
- llama.cpp: ``llama-server --threads 2`` on the SmolLM2 GGUF (Q4_1) and Qwen2.5-Coder-0.5B (Q4_K_M),
  timed by its own ``timings`` (prompt cache off, so every run evaluates the prompt).

Columns: *TTFT* is the median wall time of a 1-token request seen by the caller (the page, or Python
over HTTP): prompt evaluation plus the request's overhead. *decode tok/s*: browser (tokens_out - 1) /
(T64 - T1) from the medians, llama-server its ``predicted_per_second``. *e2e tok/s*: tokens_out over
the whole 64-token request's wall time. *first text*: the first ``delta`` of the stream (the
streamer emits whole words, so it can hold more than one token).
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from tests.harness import open_router_page

from .common import header, median, server_and_browser, table

PROMPT = "Write a short story about a robot who learns to paint."
MAX_TOKENS = 64
THREADS = 2
GGUFS = ("smollm2-135m-instruct-q4_1", "qwen2.5-coder-0.5b-instruct-q4_k_m")

STREAM = """async ({ prompt, maxTokens }) => {
  const t0 = performance.now();
  let first = null, done = null;
  for await (const chunk of window.router.stream({ prompt, maxTokens, route: "local" })) {
    if (chunk.delta && first === null) first = performance.now() - t0;
    if (chunk.done) done = chunk;
  }
  return { total_ms: performance.now() - t0, first_ms: first, usage: done.usage, route: done.route };
}"""

ONE_TOKEN = """async ({ prompt }) => {
  const t0 = performance.now();
  const { route } = await window.router.generate({ prompt, maxTokens: 1, route: "local" });
  return { total_ms: performance.now() - t0, route };
}"""


def _browser(runs: int) -> list[Any]:
    with server_and_browser() as (server, browser):
        rp = open_router_page(browser, server)
        threads = rp.page.evaluate("() => window.router.info.threads")
        args = {"prompt": PROMPT, "maxTokens": MAX_TOKENS}
        rp.page.evaluate(STREAM, args)  # warm-up: loads the model, compiles the WASM kernels
        streams, ones = [], []
        for _ in range(runs):
            streams.append(rp.page.evaluate(STREAM, args))
            ones.append(rp.page.evaluate(ONE_TOKEN, args))
        rp.page.context.close()
    route = streams[-1]["route"]
    t64, t1 = median([s["total_ms"] for s in streams]), median([o["total_ms"] for o in ones])
    tokens_out = median([s["usage"]["tokens_out"] for s in streams])
    return [
        "browser: Transformers.js WASM, our worker",
        f"{route['model']} ({route['dtype']})",
        threads,
        streams[-1]["usage"]["tokens_in"],
        tokens_out,
        t1,
        median([s["first_ms"] for s in streams]),
        (tokens_out - 1) / (t64 - t1) * 1000,
        tokens_out / t64 * 1000,
        runs,
    ]


def _chat(url: str, model: str, max_tokens: int) -> tuple[dict[str, Any], float]:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "seed": 0,
        "cache_prompt": False,
    }
    req = urllib.request.Request(
        url + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=300) as resp:
        answer = json.loads(resp.read())
    return answer, (time.perf_counter() - t0) * 1000


def _llama(name: str, runs: int) -> list[Any]:
    from builder.llama import LlamaServer, ensure_gguf, ensure_llama_server
    from builder.pins_llama import GGUFS as PINS

    pin = PINS[name]
    with LlamaServer(
        ensure_gguf(name), alias=pin.alias, threads=THREADS, binary=ensure_llama_server()
    ) as srv:
        _chat(srv.url, pin.alias, MAX_TOKENS)  # warm-up
        full = [_chat(srv.url, pin.alias, MAX_TOKENS) for _ in range(runs)]
        ones = [_chat(srv.url, pin.alias, 1)[1] for _ in range(runs)]
    timings = [answer["timings"] for answer, _ in full]
    tokens_out = median([t["predicted_n"] for t in timings])
    return [
        f"llama.cpp llama-server {THREADS} threads",
        f"{pin.alias} ({name.rsplit('-', 1)[-1].upper()})",
        THREADS,
        timings[-1]["prompt_n"],
        tokens_out,
        median(ones),
        None,
        median([t["predicted_per_second"] for t in timings]),
        tokens_out / median([wall for _, wall in full]) * 1000,
        runs,
    ]


def run(runs: int = 5) -> list[list[Any]]:
    header(f"Generation speed: {MAX_TOKENS} new tokens, greedy, prompt {PROMPT!r}; medians of {runs} runs")
    rows = [_browser(runs)] + [_llama(name, runs) for name in GGUFS]  # one after the other, never at once
    table(
        [
            ("engine", 42),
            ("model (weights)", 38),
            ("threads", 7),
            ("prompt tok", 10),
            ("out tok", 7),
            ("TTFT ms", 8),
            ("first text ms", 13),
            ("decode tok/s", 12),
            ("e2e tok/s", 9),
            ("runs", 4),
        ],
        rows,
    )
    print("TTFT: a 1-token request's wall time seen by the caller; browser decode: (out - 1) / (T64 - T1).")
    return rows
