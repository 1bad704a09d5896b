"""The load test's mix as a benchmark: requests per second and latency percentiles under faults, and what
the worker and the relay add to each request.

The same seeded mix as tests/browser/test_load.py (tests/load.py: embed, classify, NER, local and cloud
generation, cloud streaming; short outputs; some cancelled) with C in flight, in Chromium, through
serve.py's relay and the fault proxy to a real llama-server (Qwen2.5-Coder-0.5B). The proxy injects a
fault on ``--fault-rate`` of the cloud requests.

- *latency*: per kind, the answered requests, as the page's caller sees them (queueing included);
- *worker adds*: the caller's time minus the route's ``ms`` (measured inside the worker from the call's
  start): the postMessage round trip, the conversions to and from Python and the wire parsing;
- *relay adds*: for cloud calls served in one try, the route's ``ms`` minus the time the proxy spent on
  the request (llama-server's work included): the worker's fetch, the relay and its checks, the hops;
- *one-sentence embedding*: its latency as the caller sees it, idle and while a local answer streams
  (sequential calls, after the stream's first piece): what an app that searches its index while it
  answers feels. Models run in ONNX Runtime's proxy worker, so the embedding waits for at most one
  decoding step, not the whole answer.

    ./hr bench load [--requests 1000] [--concurrency 8] [--fault-rate 0.1] [--seed 7] [--smoke]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from typing import Any

from tests.harness import open_router_page
from tests.load import CLOUD_KINDS, CLOUD_TIMEOUT_MS, MIX, fault_plan, percentile, run_load

from .common import cloud_server_and_browser, header, table

KEY = "sk-bench-load"
TAG = re.compile(rb"\(request (\d+)\)")


def _pct(xs: list[float], q: float) -> float | None:
    """The ``q``th percentile, or None (an empty cell) when a kind got no request: a small run's draw."""
    return percentile(xs, q) if xs else None


def _pcts(xs: list[float]) -> tuple[float | None, float | None, float | None]:
    return _pct(xs, 50), _pct(xs, 95), _pct(xs, 99)


def run(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="./hr bench load")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--fault-rate", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--smoke", action="store_true", help="the smallest form: 24 requests, 4 in flight")
    args = parser.parse_args(argv or [])
    if args.smoke:
        args.requests, args.concurrency = 24, 4

    header(
        f"load: {args.requests} mixed requests, {args.concurrency} in flight, faults on "
        f"{args.fault_rate:.0%} of cloud requests"
    )
    with cloud_server_and_browser(KEY, faults=True) as (server, browser, proxy):
        rp = open_router_page(
            browser, server, options={"cloud": {"timeoutMs": CLOUD_TIMEOUT_MS, "maxRetries": 2}}
        )
        rp.call("""await router.embed(['warm']); await router.classify('warm'); await router.ner('warm');
            await router.generate({ prompt: 'warm', maxTokens: 2, route: 'local' });
            await router.generate({ prompt: 'warm', maxTokens: 2, route: 'cloud' });""")
        proxy.plan(*fault_plan(args.requests * 2, rate=args.fault_rate, seed=args.seed))
        load = run_load(rp.page, requests=args.requests, concurrency=args.concurrency, seed=args.seed)
        embedding = rp.page.evaluate(EMBED_WHILE_STREAMING, 3 if args.smoke else 9)
        rp.page.context.close()

    served = list(proxy.served)
    faults = Counter(
        fault.split(":")[0] + (":" + fault.split(":")[1] if fault.startswith("status") else "")
        for _, _, fault, _ in served
        if fault != "ok"
    )
    by_tag: dict[int, list[tuple[float, str]]] = {}
    for _, seconds, fault, body in served:
        m = TAG.search(body)
        if m:
            by_tag.setdefault(int(m.group(1)), []).append((seconds, fault))

    rows = []
    for kind, _ in MIX:
        done = [r for r in load.of(kind) if r.get("ok")]
        ended = Counter("ok" if r.get("ok") else r.get("name", "hang") for r in load.of(kind))
        p50, p95, p99 = _pcts([r["ms"] for r in done])
        rows.append((kind, len(load.of(kind)), len(done), p50, p95, p99, _summary(ended)))
    worker = [r["ms"] - r["route"]["ms"] for r in load.results if r.get("ok") and r.get("route")]
    relay = [
        r["route"]["ms"] - by_tag[r["i"]][0][0] * 1000
        for r in load.of(*CLOUD_KINDS)
        if r.get("ok") and len(by_tag.get(r["i"], [])) == 1 and by_tag[r["i"]][0][1] == "ok"
    ]
    print(
        f"{len(load.results)} requests in {load.seconds:.0f} s: {load.rps:.1f} requests/s; "
        f"{len(served)} reached the proxy, {sum(faults.values())} faults injected "
        f"({sum(faults.values()) / max(1, len(served)):.1%}): {dict(faults)}; "
        f"worker restarts: {load.restarts}"
    )
    table(
        [("kind", 9), ("sent", 5), ("ok", 5), ("p50 ms", 8), ("p95 ms", 8), ("p99 ms", 8), ("ended", 44)],
        rows,
    )
    table(
        [("added by", 24), ("n", 5), ("p50 ms", 8), ("p95 ms", 8), ("p99 ms", 8)],
        [
            ("the worker (all kinds)", len(worker), *_pcts(worker)),
            ("the relay (cloud, 1 try)", len(relay), *_pcts(relay)),
        ],
    )
    idle, streaming = embedding["idle"], embedding["streaming"]
    table(
        [("one-sentence embedding", 24), ("n", 5), ("p50 ms", 8), ("max ms", 8)],
        [
            ("idle", len(idle), _pct(idle, 50), max(idle, default=None)),
            (
                "while a local answer streams",
                len(streaming),
                _pct(streaming, 50),
                max(streaming, default=None),
            ),
        ],
    )
    return {
        "rps": load.rps,
        "worker": _pcts(worker),
        "relay": _pcts(relay),
        "faults": dict(faults),
        "embedding": {"idle": _pct(idle, 50), "streaming": _pct(streaming, 50)},
    }


#: ``n`` one-sentence embeddings one after the other, idle, then while a local answer streams (the
#: stream is stopped once they are done); the caller's times in ms
EMBED_WHILE_STREAMING = """async (n) => {
  const router = window.router;
  const one = async () => { const t0 = performance.now(); await router.embed(["How do I reset my password?"]);
    return performance.now() - t0; };
  const idle = [];
  for (let i = 0; i < n; i++) idle.push(await one());
  const streaming = []; const stop = new AbortController(); let started = false; let ended = false;
  const stream = (async () => {
    try {
      for await (const c of router.stream({ prompt: "Tell me a long story about a dragon who learns to sail.",
        maxTokens: 400, route: "local", signal: stop.signal })) {
        if (c.delta) started = true;
      }
    } catch (e) { if (e.name !== "AbortError") throw e; } finally { ended = true; }
  })();
  while (!started && !ended) await new Promise((r) => setTimeout(r, 10));
  for (let i = 0; i < n && !ended; i++) streaming.push(await one());
  if (streaming.length < n) throw new Error("the answer ended before the embeddings did: raise maxTokens");
  stop.abort();
  await stream;
  return { idle, streaming };
}"""


def _summary(ended: Counter[str]) -> str:
    return ", ".join(f"{k} {n}" for k, n in ended.most_common())
