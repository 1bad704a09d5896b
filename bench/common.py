"""What the benchmarks share: statistics, the header (command and machine), a table printer (which also
records the tables: ``./hr bench NAME --json PATH`` writes them), one serve.py + Chromium for a run, and
page calls that fail loudly after a timeout instead of waiting for ever.

Every browser benchmark runs against serve.py, so under the product's real headers (its
Content-Security-Policy included: no ``blob:`` workers, no ``eval``/``new Function``).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tests.harness import RouterPage, Server, launch_browser, open_router_page, start_server, stop_server

#: how long one page call may take before the benchmark fails (HYBRID_ROUTER_BENCH_TIMEOUT_S; seconds)
TIMEOUT_S = float(os.environ.get("HYBRID_ROUTER_BENCH_TIMEOUT_S", "900"))
#: the tables printed so far in this process: ``{"title", "columns", "rows"}`` each
TABLES: list[dict[str, Any]] = []


class BenchTimeout(RuntimeError):
    """A page call of a benchmark did not finish in time."""


def evaluate(page: Any, fn: str, arg: Any = None, *, timeout_s: float | None = None) -> Any:
    """``page.evaluate(fn, arg)`` that fails with :class:`BenchTimeout` after ``timeout_s`` (default
    :data:`TIMEOUT_S`) instead of waiting for ever (a worker that never answers, a refused script)."""
    ms = int((timeout_s or TIMEOUT_S) * 1000)
    wrapped = f"""async ([arg, ms]) => {{
      const fn = ({fn});
      let timer;
      const late = new Promise((_, reject) => {{
        timer = setTimeout(() => reject(new Error(`bench timeout: no answer after ${{ms}} ms`)), ms);
      }});
      try {{ return await Promise.race([Promise.resolve().then(() => fn(arg)), late]); }}
      finally {{ clearTimeout(timer); }}
    }}"""
    try:
        return page.evaluate(wrapped, [arg, ms])
    except Exception as exc:
        if "bench timeout:" in str(exc):
            raise BenchTimeout(f"{str(exc).splitlines()[0]}; the call: {fn.strip()[:200]}") from None
        raise


CREATE = """async (options) => {
  const { HybridRouter } = await import("/hybrid-router.js");
  const t0 = performance.now();
  window.router = await HybridRouter.create(options);
  return { ms: performance.now() - t0, info: window.router.info };
}"""


def router_page(
    browser: Any, server: Server, options: dict[str, Any] | None = None, *, timeout_s: float | None = None
) -> RouterPage:
    """A fresh browser context on the sandbox page with ``window.router`` created (failing after the
    timeout if the router never gets ready)."""
    rp = open_router_page(browser, server, create=False)
    evaluate(rp.page, CREATE, options or {}, timeout_s=timeout_s)
    return rp


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def p95(xs: Sequence[float]) -> float:
    """The nearest-rank 95th percentile (with 10-30 samples: the largest or second largest)."""
    return sorted(xs)[max(0, round(0.95 * len(xs)) - 1)]


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def header(title: str) -> None:
    """The title, the exact command, and the machine (cores, CPU, load: the machine may be shared)."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\n{title}")
    print(f"command: ./hr bench {' '.join(sys.argv[1:])}")
    print(
        f"machine: {os.cpu_count()} cores, {cpu_model()}, {platform.system()} {platform.release()}; "
        f"load average at start {load}"
    )


def table(columns: Sequence[tuple[str, int]], rows: Sequence[Sequence[Any]], title: str = "") -> None:
    """Rows under ``columns`` (name, width; the first column left-aligned); floats with one decimal.
    Recorded in :data:`TABLES` too."""
    TABLES.append({"title": title, "columns": [name for name, _ in columns], "rows": [list(r) for r in rows]})

    def cell(value: Any, width: int, first: bool) -> str:
        text = "" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)
        return f"{text:<{width}}" if first else f"{text:>{width}}"

    print(" ".join(cell(name, w, i == 0) for i, (name, w) in enumerate(columns)))
    print("-" * (sum(w for _, w in columns) + len(columns) - 1))
    for row in rows:
        print(" ".join(cell(v, w, i == 0) for i, (v, (_, w)) in enumerate(zip(row, columns, strict=True))))


def write_tables(path: Path) -> None:
    """The recorded tables as JSON (``./hr bench NAME --json PATH``; the bench tests read it)."""
    path.write_text(json.dumps(TABLES, indent=1, default=str))


def ratio(a: float | None, b: float | None) -> str:
    """``a / b`` as ``0.63x`` (empty when either is missing)."""
    return f"{a / b:.2f}x" if a and b else ""


def serve_worker_file(context: Any, origin: str, file: Path, url: str) -> None:
    """Answer ``url`` (a path) in ``context`` with ``file``'s body and the headers serve.py sends with
    ``web/worker.js`` (Content-Security-Policy, COOP/COEP, CORP): a bench's own worker, same-origin and
    served as the product serves its own (a ``blob:`` worker is refused by the CSP)."""
    body = file.read_text()

    def answer(route: Any) -> None:
        real = route.fetch(url=origin + "/worker.js")
        route.fulfill(response=real, body=body, headers={**real.headers, "content-type": "text/javascript"})

    context.route(origin + url, answer)


@contextlib.contextmanager
def server_and_browser() -> Iterator[tuple[Server, Any]]:
    """serve.py (no cloud) and a headless Chromium, both stopped on the way out."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        server = start_server(Path(tmp))
        try:
            browser = launch_browser(p)
            try:
                yield server, browser
            finally:
                browser.close()
        finally:
            stop_server(server)


#: the cloud of the cloud benchmarks: llama-server's alias for Qwen2.5-Coder-0.5B-Instruct
CLOUD_MODEL = "qwen2.5-coder-0.5b-instruct"


@contextlib.contextmanager
def cloud_server_and_browser(key: str, *, faults: bool = False) -> Iterator[tuple[Server, Any, Any]]:
    """llama-server (``CLOUD_MODEL``, with API key ``key``) behind serve.py's relay (its per-client rate
    limit off: the load comes from one client on purpose), through the fault proxy when ``faults`` (the
    third item; else None), and a headless Chromium; all stopped on the way out."""
    from builder.llama import LlamaServer, ensure_gguf, ensure_llama_server
    from playwright.sync_api import sync_playwright
    from tests.faults import FaultProxy

    ensure_llama_server()
    gguf = ensure_gguf("qwen2.5-coder-0.5b-instruct-q4_k_m")
    with (
        LlamaServer(gguf, alias=CLOUD_MODEL, extra_args=("--api-key", key)) as llama,
        tempfile.TemporaryDirectory() as tmp,
        sync_playwright() as p,
    ):
        llama.start()
        proxy = FaultProxy(llama.url).start() if faults else None
        server = start_server(
            Path(tmp),
            cloud={"base_url": proxy.url if proxy else llama.url, "model": CLOUD_MODEL, "api_key": key},
            env_extra={"HYBRID_ROUTER_RELAY_RATE_PER_MINUTE": "0"},
        )
        try:
            browser = launch_browser(p)
            try:
                yield server, browser, proxy
            finally:
                browser.close()
        finally:
            stop_server(server)
            if proxy is not None:
                proxy.stop()
