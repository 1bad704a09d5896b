"""A second engine: the router in Firefox ESR (Debian's ``firefox-esr``, driven over WebDriver BiDi by
puppeteer-core: tests/firefox_harness.py). The same checks as the Chromium tests, through the same task
runner (tests/site_harness.py): the static site (with its ``_headers``) started cross-origin isolated with
ONNX Runtime's threads, every local task answering with its reference's answer and no request leaving the
origin, then the same page reloaded with its server gone (the service worker and IndexedDB serve it:
one visit covers both, so the models load once); and the router embedded in a page of another origin.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import site_headers

from tests.firefox_harness import Firefox, FirefoxContext, FirefoxPage
from tests.harness import free_port, start_server, stop_server
from tests.site_harness import build_test_site, check_local_tasks, run_local_tasks, start_static

pytestmark = pytest.mark.browser

APP_READY = '#app-state[data-state="ready"], #app-state[data-state="error"]'


@pytest.fixture(scope="module")
def firefox() -> Iterator[Firefox]:
    ff = Firefox()
    yield ff
    ff.close()


@pytest.fixture
def context(firefox: Firefox) -> Iterator[FirefoxContext]:
    ctx = firefox.new_context()
    yield ctx
    ctx.close()


def open_app(context: FirefoxContext, url: str) -> FirefoxPage:
    page = context.new_page()
    page.goto(url)
    wait_ready(page)
    return page


def wait_ready(page: FirefoxPage) -> None:
    page.wait_for_selector(APP_READY, timeout=300_000)
    state = page.eval_on_selector("#app-state", "(e) => e.dataset.state")
    assert state == "ready", page.text_content("#boot-status")


def foreign(urls: list[str], *origins: str) -> list[str]:
    return [u for u in urls if not u.startswith(tuple(o + "/" for o in origins) + ("data:", "blob:"))]


def _controlled(page: FirefoxPage) -> str | None:
    result: str | None = page.evaluate("""async () => { await navigator.serviceWorker.ready;
        for (let i = 0; i < 200 && !navigator.serviceWorker.controller; i++) {
          await new Promise((r) => setTimeout(r, 50));
        }
        return navigator.serviceWorker.controller?.scriptURL ?? null; }""")
    return result


def test_firefox_boots_isolated_runs_every_local_task_and_reloads_with_the_server_gone(
    firefox: Firefox, context: FirefoxContext
) -> None:
    """One visit of the static site (with its ``_headers``: COOP/COEP and the CSP), online then offline:
    the first half is start-up and every local task, the second the reload the service worker serves."""
    assert firefox.version.startswith("firefox/"), firefox.version
    with tempfile.TemporaryDirectory() as tmp:
        site = build_test_site(Path(tmp) / "site")
        srv = start_static(site.root, headers_file=site.root / "_headers", log=Path(tmp) / "static.log")
        try:
            page = open_app(context, srv.url)
            info = page.evaluate("() => window.router.info")
            # the site's headers give SharedArrayBuffer, so ONNX Runtime runs 2 threads in Firefox too
            assert info["crossOriginIsolated"] is True and info["threads"] == 2, info
            assert info["ort"]["build"] == "plain", info["ort"]  # no WebGPU adapter in headless Firefox here
            assert _controlled(page) == srv.url + "sw.js"
            # every model the tasks use is fetched (and kept) while online; nothing leaves the origin
            check_local_tasks(run_local_tasks(page, index_name="firefox-online"))
            assert foreign(page.requests, srv.origin) == []
        finally:
            srv.stop()  # offline for real: nothing answers on that port any more
        page.reload()
        wait_ready(page)
        assert page.evaluate("() => window.router.info.crossOriginIsolated") is not None
        check_local_tasks(run_local_tasks(page, index_name="firefox-offline"))


def test_firefox_runs_the_router_embedded_in_another_origin(context: FirefoxContext) -> None:
    from tests.browser.test_embed import deploy_example

    host_port = free_port()
    host_origin = f"http://127.0.0.1:{host_port}"
    with tempfile.TemporaryDirectory() as tmp:
        router = start_server(Path(tmp), extra=[f"--embed-origin={host_origin}"])
        host = None
        try:
            host_dir = deploy_example(Path(tmp) / "embed-host", router.url)
            csp = site_headers.content_security_policy(script=[router.origin], connect=[router.origin])
            isolation = {
                "Cross-Origin-Opener-Policy": "same-origin",
                "Cross-Origin-Embedder-Policy": "require-corp",
            }
            host = start_static(
                host_dir,
                headers={"Content-Security-Policy": csp} | isolation,
                port=host_port,
                log=Path(tmp) / "host.log",
            )
            page = context.new_page()
            page.goto(host.url)
            page.wait_for_selector(
                '#router-state[data-state="ready"], #router-state[data-state="error"]', timeout=300_000
            )
            assert page.get_attribute("#router-state", "data-state") == "ready", page.text_content(
                "#router-state"
            )
            assert page.evaluate("() => crossOriginIsolated") is True
            check_local_tasks(run_local_tasks(page, index_name="firefox-embed"))
            # the runtime, wheels and models came from the router's server; nothing from anywhere else
            assert foreign(page.requests, host.origin, router.origin) == []
            assert any(u.startswith(router.origin + "/models/") for u in page.requests)
        finally:
            if host:
                host.stop()
            stop_server(router)
