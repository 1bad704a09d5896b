"""Decode speed of the on-device model in the browser against llama.cpp on the same machine, and what the
KV cache saves a chat's later turns.

Same prompt (chat template applied by each engine), 64 new tokens, greedy, 2 threads:

- browser: SmolLM2-135M-Instruct (fp32 ONNX) on Transformers.js (WASM) through our worker,
  ``router.stream({prompt, maxTokens: 64, route: "local"})``, timed in the page with performance.now();
- llama.cpp: ``llama-server --threads 2`` on the SmolLM2 GGUF (Q4_1: the weights the ONNX was made
  from) and Qwen2.5-Coder-0.5B (Q4_K_M), timed by its own ``timings`` (prompt cache off, so every run
  evaluates the prompt); two builds: the portable one the cloud tier runs (``GGML_NATIVE=OFF``) and one
  for this CPU's own vector extensions (``GGML_NATIVE=ON``, built here on first use, cached apart).

Columns: *TTFT* is the median wall time of a 1-token request seen by the caller (the page, or Python
over HTTP): prompt evaluation plus the request's overhead. *decode tok/s*: browser (tokens_out - 1) /
(T64 - T1) from the medians, llama-server its ``predicted_per_second``. *e2e tok/s*: tokens_out over
the whole 64-token request's wall time. *first text*: the first ``delta`` of the stream (the
streamer emits whole words, so it can hold more than one token). The ratios: the browser against the
best llama.cpp build on the same GGUF.

Multi-turn: a five-turn chat through our worker (each turn ``router.stream({messages, maxTokens})``
with the answers so far); the time to the first text of each turn, with the prompt tokens the runtime
served from its KV cache (``route.tokens_cached``), and the last turn once more after another
conversation dropped the cache (the whole conversation evaluated again).
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from .common import evaluate, header, median, ratio, router_page, server_and_browser, table

PROMPT = "Write a short story about a robot who learns to paint."
MAX_TOKENS = 64
THREADS = 2
GGUFS = ("smollm2-135m-instruct-q4_1", "qwen2.5-coder-0.5b-instruct-q4_k_m")
#: the GGUF the browser's model was converted from (and llama-server's name for it): the ratios compare on it
SAME_WEIGHTS = GGUFS[0]
PINS_ALIAS = "smollm2-135m-instruct"
TURNS = [
    "What is the capital of France?",
    "What is it famous for?",
    "Name three museums there.",
    "Which one is the oldest?",
    "What can I see there in one afternoon?",
]
TURN_TOKENS = 32

STREAM = """async ({ prompt, messages, maxTokens }) => {
  const t0 = performance.now();
  let first = null, done = null, text = "";
  const request = messages ? { messages, maxTokens, route: "local" } : { prompt, maxTokens, route: "local" };
  for await (const chunk of window.router.stream(request)) {
    if (chunk.delta && first === null) first = performance.now() - t0;
    if (chunk.delta) text += chunk.delta;
    if (chunk.done) done = chunk;
  }
  return { total_ms: performance.now() - t0, first_ms: first, usage: done.usage, route: done.route, text };
}"""

ONE_TOKEN = """async ({ prompt }) => {
  const t0 = performance.now();
  const { route } = await window.router.generate({ prompt, maxTokens: 1, route: "local" });
  return { total_ms: performance.now() - t0, route };
}"""


def _browser(page: Any, runs: int, max_tokens: int) -> list[Any]:
    threads = evaluate(page, "() => window.router.info.threads")
    args = {"prompt": PROMPT, "maxTokens": max_tokens}
    evaluate(page, STREAM, args)  # warm-up: loads the model, compiles the WASM kernels
    streams, ones = [], []
    for _ in range(runs):
        streams.append(evaluate(page, STREAM, args))
        ones.append(evaluate(page, ONE_TOKEN, args))
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
        (tokens_out - 1) / (t64 - t1) * 1000 if t64 > t1 else None,
        tokens_out / t64 * 1000,
        runs,
    ]


def _turns(page: Any, runs: int, turns: list[str], max_tokens: int) -> list[list[Any]]:
    """The chat of ``turns``, ``runs`` times (another conversation first, so each starts cold); then the
    last turn again after another conversation (no cache)."""
    other = {"prompt": "Say hi.", "maxTokens": 2}
    first: list[list[float]] = [[] for _ in turns]
    cached: list[Any] = [None] * len(turns)
    tokens_in = [0] * len(turns)
    fresh: list[float] = []
    for _ in range(runs):
        evaluate(page, STREAM, other)
        history: list[dict[str, str]] = []
        for i, question in enumerate(turns):
            history.append({"role": "user", "content": question})
            out = evaluate(page, STREAM, {"messages": history, "maxTokens": max_tokens})
            first[i].append(out["first_ms"])
            cached[i] = out["route"].get("tokens_cached")
            tokens_in[i] = out["route"]["tokens_in"]
            history.append({"role": "assistant", "content": out["text"]})
        evaluate(page, STREAM, other)  # drops the cache
        again = evaluate(page, STREAM, {"messages": history[:-1], "maxTokens": max_tokens})
        fresh.append(again["first_ms"])
    rows = [[f"turn {i + 1}", tokens_in[i], cached[i], median(first[i]), runs] for i in range(len(turns))]
    rows.append([f"turn {len(turns)}, cache dropped first", tokens_in[-1], 0, median(fresh), runs])
    return rows


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


def _llama(name: str, runs: int, max_tokens: int, *, native: bool, binary: Any) -> list[Any]:
    from builder.llama import LlamaServer, ensure_gguf
    from builder.pins_llama import GGUFS as PINS

    pin = PINS[name]
    with LlamaServer(ensure_gguf(name), alias=pin.alias, threads=THREADS, binary=binary) as srv:
        _chat(srv.url, pin.alias, max_tokens)  # warm-up
        full = [_chat(srv.url, pin.alias, max_tokens) for _ in range(runs)]
        ones = [_chat(srv.url, pin.alias, 1)[1] for _ in range(runs)]
    timings = [answer["timings"] for answer, _ in full]
    tokens_out = median([t["predicted_n"] for t in timings])
    build = "native (GGML_NATIVE=ON)" if native else "portable"
    return [
        f"llama.cpp {build}, {THREADS} threads",
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


def _llama_binaries(smoke: bool) -> tuple[list[tuple[bool, Any]], list[str]]:
    """(native?, binary) of each llama.cpp build to measure, and notes on the ones left out. Smoke: only
    what is built (the native build takes minutes); else both, the native one built here if missing."""
    from builder.llama import binary_path, ensure_llama_server, is_built

    found: list[tuple[bool, Any]] = []
    notes: list[str] = []
    for native in (False, True):
        label = "native (GGML_NATIVE=ON)" if native else "portable"
        if smoke and not is_built(native):
            notes.append(f"llama.cpp {label}: skipped, not built (./hr python -m builder.llama --native)")
            continue
        if not smoke and not is_built(native):
            print(f"building llama.cpp {label} for this benchmark (once, a few minutes; cached after)")
        found.append((native, binary_path(native) if smoke else ensure_llama_server(native=native)))
    return found, notes


def _ggufs(smoke: bool) -> tuple[list[str], list[str]]:
    """The GGUFs to measure llama.cpp on: all (assembled here if missing); smoke: the first one that is
    assembled, the browser model's own weights first."""
    from builder.llama import ensure_gguf, gguf_path

    if not smoke:
        return list(GGUFS), []
    names = [name for name in GGUFS if gguf_path(name).is_file()][:1]
    for name in names:
        ensure_gguf(name)  # checks it
    return names, [] if names else ["llama.cpp: skipped, no GGUF is assembled (./hr python -m builder.llama)"]


def run(runs: int = 5, smoke: bool = False) -> list[list[Any]]:
    max_tokens = 8 if smoke else MAX_TOKENS
    runs = 1 if smoke else runs
    turns = TURNS[:2] if smoke else TURNS
    turn_tokens = 4 if smoke else TURN_TOKENS
    header(f"Generation speed: {max_tokens} new tokens, greedy, prompt {PROMPT!r}; medians of {runs} runs")
    binaries, notes = _llama_binaries(smoke)
    names, more = _ggufs(smoke)
    notes += more
    with server_and_browser() as (server, browser):
        rp = router_page(browser, server)
        rows = [_browser(rp.page, runs, max_tokens)]
        turn_rows = _turns(rp.page, runs, turns, turn_tokens)
        rp.page.context.close()
    for name in names:  # one after the other, never at once
        for native, binary in binaries:
            rows.append(_llama(name, runs, max_tokens, native=native, binary=binary))
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
        title="generation",
    )
    print("TTFT: a 1-token request's wall time seen by the caller; browser decode: (out - 1) / (T64 - T1).")
    same = [r for r in rows[1:] if r[1].startswith(PINS_ALIAS)]
    if same:
        best = max(same, key=lambda r: r[7] or 0)
        browser_row = rows[0]
        print(
            f"browser / best llama.cpp on the same weights ({best[0]}): decode "
            f"{ratio(browser_row[7], best[7])}, e2e {ratio(browser_row[8], best[8])}, "
            f"TTFT {ratio(best[5], browser_row[5])} (as speed: llama's time / the browser's)"
        )
    for note in notes:
        print(f"note: {note}")
    print(f"\nMulti-turn chat on the device: {len(turns)} turns of up to {turn_tokens} tokens each")
    table(
        [("turn", 34), ("prompt tok", 10), ("from KV cache", 13), ("first text ms", 13), ("runs", 4)],
        turn_rows,
        title="multi-turn",
    )
    print(
        f"turn {len(turns)} vs turn 1, time to first text: {ratio(turn_rows[-2][3], turn_rows[0][3])}; "
        f"turn {len(turns)} with the cache vs re-evaluated: {ratio(turn_rows[-2][3], turn_rows[-1][3])}"
    )
    return rows + turn_rows
