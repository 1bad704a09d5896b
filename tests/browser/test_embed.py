"""The router embedded in someone else's site (examples/embed-host/) in Chromium: the host page, on another
origin (port), loads our client from serve.py and starts our worker through its own one-line worker file;
serve.py lets that origin in (--embed-origin) and no other. With and without cross-origin isolation on
the host, under the host's own strict CSP, every local task answers (checked against its reference), and
the example's own search form works with the keyboard.
"""

from __future__ import annotations

import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import site_headers

from tests.harness import REPO, RequestLog, Server, free_port, start_server, stop_server
from tests.site_harness import (
    CSP_LISTENER,
    Static,
    _reference_vectors,
    check_local_tasks,
    run_local_tasks,
    start_static,
    violations,
)

pytestmark = pytest.mark.browser

EXAMPLE = REPO / "examples" / "embed-host"
PLACEHOLDER = "http://127.0.0.1:8000/"  # the router URL the example ships with
HELP = [
    "How do I reset my password?",
    "Where is my order? Tracking your parcel.",
    "Returning an item for a refund.",
    "Changing the delivery address of an order.",
]
HOST_PORTS = {
    "plain": free_port(),
    "isolated": free_port(),
    "not allowed": free_port(),
    "static": free_port(),
}


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    allowed = [f"--embed-origin=http://127.0.0.1:{HOST_PORTS[k]}" for k in ("plain", "isolated")]
    srv = start_server(tmp_path_factory.mktemp("router"), extra=allowed)
    yield srv
    stop_server(srv)


def deploy_example(out: Path, router_url: str) -> Path:
    """The example as its operator would deploy it: the router's URL written in its two places."""
    shutil.copytree(EXAMPLE, out)
    for name in ("router-config.js", "hybrid-router-worker.js"):
        path = out / name
        assert PLACEHOLDER in path.read_text()
        path.write_text(path.read_text().replace(PLACEHOLDER, router_url))
    return out


@pytest.fixture(scope="module")
def host_dir(tmp_path_factory: pytest.TempPathFactory, router: Server) -> Path:
    return deploy_example(tmp_path_factory.mktemp("host") / "embed-host", router.url)


def host_headers(router: Server, isolated: bool) -> dict[str, str]:
    """The host's own policy: strict, naming the router's origin for scripts and fetches."""
    csp = site_headers.content_security_policy(script=[router.origin], connect=[router.origin])
    headers = {"Content-Security-Policy": csp}
    if isolated:
        headers |= {
            "Cross-Origin-Opener-Policy": "same-origin",
            "Cross-Origin-Embedder-Policy": "require-corp",
        }
    return headers


@pytest.fixture
def host(request: pytest.FixtureRequest, host_dir: Path, router: Server, tmp_path: Path) -> Iterator[Static]:
    kind = request.param
    srv = start_static(
        host_dir,
        headers=host_headers(router, kind == "isolated"),
        port=HOST_PORTS[kind],
        log=tmp_path / "host.log",
    )
    yield srv
    srv.stop()


def _open(browser: Any, host: Static) -> tuple[Any, Any, RequestLog]:
    context = browser.new_context()
    context.add_init_script(CSP_LISTENER)
    requests = RequestLog()
    requests.attach(context)
    page = context.new_page()
    page.on(
        "console", lambda m: print(f"[browser {m.type}] {m.text}") if m.type in ("error", "warning") else None
    )
    page.goto(host.url)
    page.wait_for_selector(
        '#router-state[data-state="ready"], #router-state[data-state="error"]', timeout=180_000
    )
    return context, page, requests


@pytest.mark.parametrize("host", ["plain", "isolated"], indirect=True)
def test_the_host_page_runs_every_local_task(browser: Any, host: Static, router: Server) -> None:
    isolated = host.url.endswith(f":{HOST_PORTS['isolated']}/")
    context, page, requests = _open(browser, host)
    try:
        assert page.get_attribute("#router-state", "data-state") == "ready", page.text_content(
            "#router-state"
        )
        assert page.evaluate("() => crossOriginIsolated") is isolated
        # the worker is the host's own file, which imported ours from the router's server
        assert [w.url for w in page.workers] == [host.url + "hybrid-router-worker.js"]
        info = page.evaluate("() => window.router.info")
        assert (
            info["crossOriginIsolated"] is isolated and info["threads"] == 1
        )  # ORT's files are cross-origin
        results = run_local_tasks(page, index_name="embed-test")
        check_local_tasks(results)
        # the example's own form, with the keyboard only
        page.focus("#question")
        page.fill("#question", "I forgot my login")
        page.keyboard.press("Enter")
        page.wait_for_selector("#answers li")
        ref = _reference_vectors(["I forgot my login"])[0] @ _reference_vectors(HELP).T
        assert page.text_content("#answers li").startswith(HELP[int(np.argmax(ref))])
        page.wait_for_selector("#mood:not(:empty)")
        assert violations(page) == []
        # the runtime, wheels and models came from the router; nothing from anywhere else
        elsewhere = [u for u in requests.urls if not u.startswith((host.origin + "/", router.origin + "/"))]
        assert elsewhere == [], elsewhere
        assert any(u.startswith(router.origin + "/models/") for u in requests.urls)
        assert any(u == router.origin + "/worker.js" for u in requests.urls)
    finally:
        context.close()


@pytest.mark.parametrize("host", ["not allowed"], indirect=True)
def test_an_origin_the_operator_did_not_allow_is_refused(browser: Any, host: Static, router: Server) -> None:
    req = urllib.request.Request(router.url + "hybrid-router.js", headers={"Origin": host.origin})
    with urllib.request.urlopen(req) as resp:
        assert resp.headers.get("Access-Control-Allow-Origin") is None
        assert resp.headers["Cross-Origin-Resource-Policy"] == "same-origin"
    context, page, _ = _open(browser, host)
    try:
        assert page.get_attribute("#router-state", "data-state") == "error"
        assert "TypeError" in page.text_content("#router-state")  # the browser refused the module (CORS)
    finally:
        context.close()


@pytest.mark.parametrize("host", ["plain"], indirect=True)
def test_without_a_same_origin_worker_file_the_error_says_what_to_do(
    browser: Any, host: Static, router: Server
) -> None:
    context, page, _ = _open(browser, host)
    try:
        err = page.evaluate(
            """async (router) => {
            const { HybridRouter } = await import(router + "hybrid-router.js");
            try { await HybridRouter.create({ baseUrl: router }); return { name: "no error" }; }
            catch (e) { return { name: e.name, message: e.message, hint: e.hint }; } }""",
            router.url,
        )
        assert err["name"] == "WorkerError", err
        assert "workerUrl" in err["hint"] and f'import "{router.url}worker.js"' in err["hint"]
    finally:
        context.close()


def test_a_static_copy_of_the_router_can_be_embedded_too(browser: Any, tmp_path: Path) -> None:
    """The router as a static site on a host that sends CORS for the embedding origin (a CDN, say):
    the same snippet, the models manifest of that build, every local task."""
    from tests.site_harness import build_test_site

    host_origin = f"http://127.0.0.1:{HOST_PORTS['static']}"
    site = build_test_site(tmp_path / "router-site")
    cors = {
        "Access-Control-Allow-Origin": host_origin,
        "Cross-Origin-Resource-Policy": "cross-origin",
        "Access-Control-Allow-Headers": "Range",
        "Access-Control-Expose-Headers": "Content-Length, Content-Range",
    }
    router = start_static(site.root, headers=cors, log=tmp_path / "router.log")
    host_dir = deploy_example(tmp_path / "embed-host", router.url)
    host = start_static(
        host_dir,
        headers={
            "Content-Security-Policy": site_headers.content_security_policy(
                script=[router.origin], connect=[router.origin]
            )
        },
        port=HOST_PORTS["static"],
        log=tmp_path / "host.log",
    )
    context, page, requests = _open(browser, host)
    try:
        assert page.get_attribute("#router-state", "data-state") == "ready", page.text_content(
            "#router-state"
        )
        check_local_tasks(run_local_tasks(page, index_name="embed-static"))
        assert violations(page) == []
        assert any(u.startswith(router.origin + "/models-") for u in requests.urls)
    finally:
        context.close()
        host.stop()
        router.stop()
