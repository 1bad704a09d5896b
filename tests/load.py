"""A mixed load of real requests through a page's router, shared by the load test and ``bench/load.py``.

The page runs :data:`DRIVER`: ``requests`` jobs drawn from a seeded generator (embed, classify, NER,
local generation, cloud generation, cloud streaming; short outputs), ``concurrency`` of them in flight,
``cancel_share`` of them aborted after a random delay. Each job ends as a result, a typed error, or
``"hang"`` (no answer within ``watchdog_ms``: a failure). :func:`fault_plan` is the fault proxy's plan:
about ``rate`` of the cloud requests get one fault (429 with Retry-After, 500, reset mid-stream,
malformed events, a stall longer than the client's timeout).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: the job mix: kind and its share
MIX: tuple[tuple[str, float], ...] = (
    ("embed", 0.30),
    ("classify", 0.15),
    ("ner", 0.10),
    ("local", 0.15),
    ("cloud", 0.18),
    ("stream", 0.12),
)
LOCAL_KINDS = frozenset({"embed", "classify", "ner", "local"})
CLOUD_KINDS = frozenset({"cloud", "stream"})

#: the client's per-request cloud timeout under load, and a stall that outlasts it
CLOUD_TIMEOUT_MS = 8000
FAULTS = ("status:429:retry-after=1", "status:500", "reset-mid-stream", "malformed", "stall:12")
FAULT_WEIGHTS = (3, 3, 2, 2, 1)

DRIVER = """async (cfg) => {
  const r = window.router;
  const { ERROR_NAMES } = await import("/errors.js");
  let seed = cfg.seed >>> 0;
  const rand = () => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed / 4294967296; };
  const TEXTS = [
    "I loved every minute of this film.", "The service was slow and the food was cold.",
    "Angela Merkel met Emmanuel Macron in Paris on Tuesday.", "Is it going to rain in Seattle tomorrow?",
    "Apple opened a new office in Berlin.", "What a waste of an afternoon.",
    "The package from Amazon arrived two days early.", "Translate 'good morning' into French.",
  ];
  const pick = () => {
    const x = rand(); let acc = 0;
    for (const [kind, share] of cfg.mix) { acc += share; if (x < acc) return kind; }
    return cfg.mix[cfg.mix.length - 1][0];
  };
  const jobs = Array.from({ length: cfg.requests }, (_, i) => ({
    i, kind: pick(), text: TEXTS[Math.floor(rand() * TEXTS.length)],
    cancelAfter: rand() < cfg.cancelShare ? 1 + Math.floor(rand() * cfg.cancelMaxMs) : null,
  }));
  const run = async (job, signal) => {
    const tag = `(request ${job.i})`;
    switch (job.kind) {
      case "embed": return r.embed([job.text, tag], { signal });
      case "classify": return r.classify(job.text, { signal });
      case "ner": return r.ner(job.text, { signal });
      case "local":
        return r.generate({ prompt: `${job.text} ${tag}`, maxTokens: 3, temperature: 0, route: "local",
          signal });
      case "cloud":
        return r.generate({ prompt: `Answer in one word: ${job.text} ${tag}`, maxTokens: 4, temperature: 0,
          route: "cloud", signal });
      case "stream": {
        let text = "", last = null;
        for await (const c of r.stream({ prompt: `Answer in one word: ${job.text} ${tag}`, maxTokens: 4,
          temperature: 0, route: "cloud", signal })) {
          if (c.done) last = c; else text += c.delta;
        }
        return { ...last, text };
      }
    }
    throw new Error(`unknown kind ${job.kind}`);
  };
  const out = [];
  const one = async (job) => {
    const ctl = new AbortController();
    const timer = job.cancelAfter === null ? null : setTimeout(() => ctl.abort(), job.cancelAfter);
    const t0 = performance.now();
    let watchdog;
    const hang = new Promise((resolve) => { watchdog = setTimeout(() => resolve("hang"), cfg.watchdogMs); });
    const settled = run(job, ctl.signal).then(
      (v) => ({ ok: true, route: v.route ?? null }),
      (e) => ({ ok: false, name: e?.name ?? String(e), typed: ERROR_NAMES.includes(e?.name),
                message: String(e?.message ?? e).slice(0, 300) }));
    const res = await Promise.race([settled, hang]);
    clearTimeout(watchdog); if (timer) clearTimeout(timer);
    const ms = performance.now() - t0;
    out.push(res === "hang"
      ? { i: job.i, kind: job.kind, cancelled: job.cancelAfter !== null, hang: true, ms }
      : { i: job.i, kind: job.kind, cancelled: job.cancelAfter !== null, hang: false, ms, ...res });
  };
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: cfg.concurrency }, async () => {
    while (next < jobs.length) await one(jobs[next++]);
  }));
  return { seconds: (performance.now() - t0) / 1000, results: out.sort((a, b) => a.i - b.i),
           restarts: r.restarts };
}"""


@dataclass(frozen=True)
class LoadRun:
    seconds: float
    results: list[dict[str, Any]]
    restarts: int

    def of(self, *kinds: str) -> list[dict[str, Any]]:
        return [r for r in self.results if r["kind"] in kinds]

    @property
    def rps(self) -> float:
        return len(self.results) / self.seconds


def run_load(
    page: Any,
    *,
    requests: int,
    concurrency: int = 8,
    seed: int = 1,
    cancel_share: float = 0.08,
    cancel_max_ms: int = 400,
    watchdog_ms: int = 120_000,
    mix: Sequence[tuple[str, float]] = MIX,
) -> LoadRun:
    """Run the load in ``page`` (a Playwright page with ``window.router``)."""
    out = page.evaluate(
        DRIVER,
        {
            "requests": requests,
            "concurrency": concurrency,
            "seed": seed,
            "cancelShare": cancel_share,
            "cancelMaxMs": cancel_max_ms,
            "watchdogMs": watchdog_ms,
            "mix": [list(m) for m in mix],
        },
    )
    return LoadRun(float(out["seconds"]), list(out["results"]), int(out["restarts"]))


def fault_plan(slots: int, rate: float = 0.10, seed: int = 1) -> list[str]:
    """``slots`` proxy answers, about ``rate`` of them a fault. The first faults are one of each kind of
    :data:`FAULTS` in a seeded order (so that a run with a few dozen cloud requests meets them all), the
    rest drawn with :data:`FAULT_WEIGHTS`."""
    rng = random.Random(seed)
    first = list(FAULTS)
    rng.shuffle(first)
    plan = []
    for _ in range(slots):
        if rng.random() < rate:
            plan.append(first.pop() if first else rng.choices(FAULTS, FAULT_WEIGHTS)[0])
        else:
            plan.append("ok")
    return plan


def percentile(xs: Sequence[float], q: float) -> float:
    """Nearest rank (``nan`` for no values)."""
    if not xs:
        return math.nan
    ordered = sorted(xs)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]
