"""Start-up to ready, timed in the page around ``HybridRouter.create()`` (Chromium, serve.py's real headers).

Each round: a fresh browser profile makes the first visit (nothing cached: the runtime comes from the
server, the worker installs the Python packages from their files and, once ready, stores them with their
bytecode and makes a memory snapshot of the booted interpreter: web/boot-cache.js); then the browser is
closed and started again on the same profile (same origin and port), ``later`` times: each of those visits
boots from the snapshot and the stored packages, with the browser's HTTP cache as a returning user has it
(the runtime's files are served immutable; without that cache a later visit took about twice as long, its
imports most of all: V8 keeps the code it compiled for a cached script or wasm module). In the same run and
the
same rounds, the baseline: bare Pyodide + numpy + Transformers.js in a plain module worker
(``bench/bare-worker.js``: loadPyodide, loadPackage numpy, ``import numpy``, the Transformers.js module),
timed from ``new Worker`` to its answer, on a fresh profile and on later visits too. The ratio column is
each row against the bare first visit.

The bare worker is not one of serve.py's files: Playwright answers its URL (``serve_worker_file``), and a
browser context with a route sends every request through Playwright and has its HTTP cache turned off
(Playwright's rule). So the bare visits run that way, and so do two more visits of ours per round, the
rows to compare with them: a first visit on another fresh profile (``Playwright route on``; it is also the
reference for the embedding check) and one later visit (``HTTP cache off``: how this bench measured every
later visit before 2026-12-05 03:00).

The second table splits our visits into the worker's phases (``info.timings``: ms since the worker's boot
began; ``worker`` is the worker's own start before that; each is a ``hr:NAME`` performance mark in the
worker too): the stored snapshot read and checked (``snapshot-read``), the Python runtime (``pyodide``:
from the snapshot on a later visit), the packages (``packages``: the stored bundle written into the file
system on a later visit), Transformers.js configured, our package imported (on a later visit its modules
come imported in the snapshot; numpy is imported 500 ms after ready: hybrid_router/_lazy.py), the router
started, ready. After the last visit of each round, one embedding is compared with the first visit's (the
same router, restored).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from tests.harness import CHROMIUM_FLAGS, REPO, chromium_path, free_port, start_server, stop_server

from .common import evaluate, header, median, ratio, serve_worker_file, table

BARE_WORKER = REPO / "bench" / "bare-worker.js"
BARE_URL = "/__bench__/bare-worker.js"
#: the worker's phases (web/worker.js marks: ms since its boot began)
PHASES = (
    "worker",
    "snapshot-read",
    "pyodide",
    "packages",
    "transformers",
    "import",
    "start",
    "ready",
)
SENTENCE = "How do I reset my password?"

CREATE = """async () => {
  const { HybridRouter } = await import("/hybrid-router.js");
  const t0 = performance.now();
  window.router = await HybridRouter.create();
  const ms = performance.now() - t0;
  const info = window.router.info;
  return { ms, timings: info.timings, boot: info.bootCache || {} };
}"""

BARE = """async (url) => {
  const t0 = performance.now();
  const worker = new Worker(url, { type: "module", name: "bare-pyodide" });
  const answer = await new Promise((resolve, reject) => {
    worker.onmessage = ({ data }) => data.error ? reject(new Error(data.error)) : resolve(data);
    worker.onerror = (e) => reject(new Error(`bare worker: ${e.message}`));
    worker.postMessage(null);
  });
  worker.terminate();
  return { ms: performance.now() - t0, timings: answer.timings };
}"""

#: the worker stores the packages and makes the snapshot after ready: wait for both entries
STORED = """async () => {
  for (let i = 0; i < 600; i++) {
    const names = (await (await caches.open("hybrid-router-boot-v1")).keys()).map((r) => r.url);
    const has = (kind) => names.some((u) => u.includes(`/${kind}-`));
    if (has("site-packages") && has("snapshot")) return names.length;
    await new Promise((r) => setTimeout(r, 200));
  }
  return 0;
}"""

EMBED = f"""async () => (await window.router.embed([{SENTENCE!r}])).vectors[0]"""


def _visit(
    playwright: Any,
    profile: Path,
    origin: str,
    js: str,
    arg: Any = None,
    *,
    after: str = "",
    route: bool = False,
) -> Any:
    """One browser start on ``profile``: the sandbox page, ``js`` evaluated (and ``after``, if given);
    ``route``: the bare worker's URL answered by Playwright (which turns the context's HTTP cache off)."""
    context = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS
    )
    try:
        if route:
            serve_worker_file(context, origin, BARE_WORKER, BARE_URL)
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(origin + "/sandbox.html")
        result = evaluate(page, js, arg)
        if after:
            result = {**result, "after": evaluate(page, after)}
        return result
    finally:
        context.close()


def run(runs: int = 3, later: int = 3, smoke: bool = False) -> None:
    """``runs`` rounds of a first visit and ``later`` visits on its profile (and the baseline's);
    ``smoke``: one round, one later visit."""
    from playwright.sync_api import sync_playwright

    if smoke:
        runs, later = 1, 1
    header(
        f"Start-up to ready (HybridRouter.create), {runs} round(s): a first visit on a fresh profile, then "
        f"{later} later visit(s) on it; the baseline (bare Pyodide + numpy + Transformers.js) alike"
    )
    ours: dict[str, list[dict[str, Any]]] = {"first": [], "routed": [], "later": [], "uncached": []}
    bare: dict[str, list[dict[str, Any]]] = {"first": [], "later": []}
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        server = start_server(Path(tmp), port=free_port())
        origin = server.origin
        try:
            for i in range(runs):
                profile = Path(tmp) / f"bare-{i}"  # the baseline first: the rounds interleave the two
                bare["first"].append(_visit(p, profile, origin, BARE, BARE_URL, route=True))
                bare["later"] += [
                    _visit(p, profile, origin, BARE, BARE_URL, route=True) for _ in range(later)
                ]
                shutil.rmtree(profile, ignore_errors=True)

                profile = Path(tmp) / f"ours-{i}"
                first = _visit(p, profile, origin, CREATE, after=STORED)
                if not first["after"]:
                    notes.append(f"round {i + 1}: the boot cache was not stored after the first visit")
                ours["first"].append(first)
                if not smoke:  # as the bare later visits: no HTTP cache
                    ours["uncached"].append(_visit(p, profile, origin, CREATE, route=True))
                visits = [_visit(p, profile, origin, CREATE) for _ in range(later - 1)]
                visits.append(_visit(p, profile, origin, CREATE, after=EMBED if not smoke else ""))
                ours["later"] += visits
                if not smoke:  # a fresh profile again, as the bare visits run: with the route
                    fresh = _visit(p, Path(tmp) / f"fresh-{i}", origin, CREATE, after=EMBED, route=True)
                    ours["routed"].append(fresh)
                    reference = fresh["after"]
                    same = max(abs(a - b) for a, b in zip(reference, visits[-1]["after"], strict=True))
                    print(f"round {i + 1}: max |embedding after a later visit - a fresh one| = {same:.2e}")
                shutil.rmtree(profile, ignore_errors=True)
        finally:
            stop_server(server)

    base = median([r["ms"] for r in bare["first"]])

    def row(label: str, results: list[dict[str, Any]], cached: bool) -> list[Any]:
        ms = [r["ms"] for r in results]
        boots = {f"{r['boot'].get('snapshot', '-')}/{r['boot'].get('site', '-')}" for r in results if cached}
        cache = ", ".join(sorted(boots))
        return [label, median(ms), min(ms), max(ms), cache, ratio(median(ms), base), len(ms)]

    print("\nready after (ms, timed in the page); boot cache: snapshot/packages (hit, miss, corrupt, off)")
    table(
        [("visit", 56), ("median", 7), ("min", 7), ("max", 7), ("boot cache", 10), ("vs bare", 7), ("n", 3)],
        [
            row("ours: first visit (fresh profile)", ours["first"], True),
            *(
                [row("ours: first visit, Playwright route on", ours["routed"], True)]
                if ours["routed"]
                else []
            ),
            row("ours: later visit (same profile)", ours["later"], True),
            *([row("ours: later visit, HTTP cache off", ours["uncached"], True)] if ours["uncached"] else []),
            row("bare Pyodide+numpy+Transformers.js: first", bare["first"], False),
            row("bare Pyodide+numpy+Transformers.js: later, HTTP cache off", bare["later"], False),
        ],
        title="start-up",
    )
    print("\nour worker's phases (median ms since its boot began; worker: its own start before that)")
    phases = [("first visit", ours["first"]), ("later visit", ours["later"])]
    phases += [("later, HTTP cache off", ours["uncached"])] if ours["uncached"] else []
    table(
        [("visit", 22), *((name, max(8, len(name) + 1)) for name in PHASES)],
        [
            [label, *(median([float(r["timings"].get(name, 0)) for r in results]) for name in PHASES)]
            for label, results in phases
        ],
        title="phases",
    )
    for note in notes:
        print(f"note: {note}")
