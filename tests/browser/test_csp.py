"""The strict Content-Security-Policy (site_headers.py) in Chromium: no 'unsafe-eval', no inline script or
style, no blob: workers; 'wasm-unsafe-eval' only. The app page runs every local task under it, and no
violation is seen, neither by a `securitypolicyviolation` listener in the page nor in the reports the
browser sends to `report-uri` (the worker's violations only show there: it has its own policy, from its
own response). Two deployments: serve.py (the header on every response) and the static site behind a
host that applies its `_headers` file (tests/static_server.py --headers-file), where the worker also gets
the policy. Controls show that each channel would have caught a violation: an inline script in the page,
a blob: worker, and a fetch of another origin from inside the worker are refused and reported.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import start_server, stop_server
from tests.site_harness import (
    CSP_LISTENER,
    INLINE_SCRIPT_RUNS,
    ReportCollector,
    build_test_site,
    check_local_tasks,
    open_app,
    run_local_tasks,
    start_static,
    violations,
)

pytestmark = pytest.mark.browser

FORBIDDEN = ("'unsafe-eval'", "'unsafe-inline'", "blob:", "data:", "*")


@pytest.fixture(scope="module")
def reports() -> Iterator[ReportCollector]:
    collector = ReportCollector().start()
    yield collector
    collector.stop()


@pytest.fixture(scope="module")
def csp_server(tmp_path_factory: pytest.TempPathFactory, reports: ReportCollector) -> Iterator[Any]:
    srv = start_server(tmp_path_factory.mktemp("serve-csp"), extra=["--csp-report-uri", reports.url])
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def headers_site(tmp_path_factory: pytest.TempPathFactory, reports: ReportCollector) -> Iterator[Any]:
    """The static site behind a host that applies its _headers file (with our report-uri added)."""
    tmp = tmp_path_factory.mktemp("site-csp")
    site = build_test_site(tmp / "site")
    headers = site.root / "_headers"
    text = headers.read_text()
    assert "Content-Security-Policy:" in text
    headers.unlink()  # a new file: the site's files are never written through (some are hard links)
    headers.write_text(
        "\n".join(
            line + f"; report-uri {reports.url}" if "Content-Security-Policy:" in line else line
            for line in text.splitlines()
        )
        + "\n"
    )
    srv = start_static(site.root, headers_file=headers, log=tmp / "static.log")
    yield srv
    srv.stop()


def _policy(url: str) -> str:
    with urllib.request.urlopen(url) as resp:
        result: str = resp.headers["Content-Security-Policy"]
        return result


#: a worker from a blob: URL, refused as it loads (a worker-src violation, then an error event)
BLOB_WORKER = """() => {
  const blob = new Blob(["self.postMessage(1)"], { type: "text/javascript" });
  window.__blobWorker = new Worker(URL.createObjectURL(blob));
}"""


def wait_until(condition: Any, describe: Any, timeout_s: float = 30) -> None:
    """Wait for an event the browser reports asynchronously (a violation): ``condition()`` must come true."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, describe()
        time.sleep(0.1)


def _kinds(reports: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(directive, where) of each report: "page" for a document, the script's name for a worker."""
    return {
        (
            r.get("effective-directive", ""),
            "worker.js" if r.get("document-uri", "").endswith("/worker.js") else "page",
        )
        for r in reports
    }


def _worker_fetch(page: Any, url: str) -> str:
    """Fetch another origin from inside the router's worker: its own policy (connect-src) must refuse it.
    (Not `eval`: code that Playwright evaluates in a worker is exempt from the eval check.)"""
    worker = next(w for w in page.workers if w.url.endswith("/worker.js"))
    js = """async (url) => {
      try { await fetch(url, { method: "POST", body: "{}" }); return "fetched"; } catch (e) { return e.name; }
    }"""
    return str(worker.evaluate(js, url))


@pytest.mark.parametrize("deployment", ["serve.py", "static site with _headers"])
def test_every_local_task_runs_without_a_violation(
    browser: Any, request: pytest.FixtureRequest, reports: ReportCollector, deployment: str
) -> None:
    srv = request.getfixturevalue("csp_server" if deployment == "serve.py" else "headers_site")
    for path in ("", "worker.js", "hybrid-router.js", "boot.json"):
        policy = _policy(srv.url + path)  # on every response: the worker takes the policy from its own
        assert "script-src 'self' 'wasm-unsafe-eval'" in policy and "worker-src 'self'" in policy, policy
        assert not any(word in policy.split() for word in FORBIDDEN), policy
    context = browser.new_context()
    context.add_init_script(CSP_LISTENER)
    reports.reports.clear()
    try:
        page = open_app(context, srv.url)
        results = run_local_tasks(page, index_name=f"csp-{deployment}")
        check_local_tasks(results)
        page.click("#embed")  # the page's own panels under the policy too
        page.wait_for_selector("#matrix table")
        page.click("#rerank-go")
        page.wait_for_selector("#rerank-results li")
        assert violations(page) == [], violations(page)

        # controls: each channel sees a violation when there is one
        ran = page.evaluate(INLINE_SCRIPT_RUNS)
        page.evaluate(BLOB_WORKER)  # refused as it loads: a violation, then an error event
        assert ran is False
        wait_until(
            lambda: {v["directive"] for v in violations(page)} == {"script-src-elem", "worker-src"},
            lambda: violations(page),
        )
        assert _worker_fetch(page, reports.url) == "TypeError"
        controls = {("script-src-elem", "page"), ("worker-src", "page"), ("connect-src", "worker.js")}
        got = reports.wait_for(lambda: controls <= _kinds(reports.reports))
        # the reports are the controls' and nothing else: the tasks above caused none, page or worker
        assert _kinds(got) == controls, got
    finally:
        context.close()


def test_the_webgpu_path_runs_without_a_violation(
    playwright_instance: Any, headers_site: Any, reports: ReportCollector
) -> None:
    """ONNX Runtime's WebGPU execution provider (on Chromium's software adapter: --enable-unsafe-webgpu)
    under the worker's own policy: shaders compile without eval, nothing is refused."""
    from tests.harness import launch_browser

    browser = launch_browser(playwright_instance, ["--enable-unsafe-webgpu"])
    reports.reports.clear()
    try:
        context = browser.new_context(service_workers="block")
        context.add_init_script(CSP_LISTENER)
        page = context.new_page()
        page.goto(headers_site.url + "sandbox.html")
        out = page.evaluate("""async () => { const { HybridRouter } = await import("./hybrid-router.js");
            window.router = await HybridRouter.create({ device: "webgpu" });
            const e = await window.router.embed(["a cat on a mat", "a kitten on a rug"]);
            return { device: e.route.device, fallbacks: e.route.fallbacks, dims: e.dims }; }""")
        assert out == {"device": "webgpu", "fallbacks": [], "dims": 384}, out
        assert violations(page) == []
        assert _worker_fetch(page, reports.url) == "TypeError"  # the control: this context reports too
        got = reports.wait_for(lambda: ("connect-src", "worker.js") in _kinds(reports.reports))
        assert _kinds(got) == {("connect-src", "worker.js")}, got
    finally:
        browser.close()
