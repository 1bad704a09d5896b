"""The static site as an offline app (PWA) in Chromium: loaded once online, then reloaded offline
(``context.set_offline(True)``): the service worker serves the page and the runtime, the models come
from IndexedDB, every local task answers (checked against its reference), and a cloud-only call fails
with an OfflineError and its hint. The manifest passes Chromium's installability checks. An update:
the site rebuilt as a new version is announced on the page, taken on reload, and the caches of the old
version are gone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import CHROMIUM_FLAGS, chromium_path
from tests.site_harness import (
    CSP_LISTENER,
    Static,
    build_test_site,
    check_local_tasks,
    open_app,
    run_local_tasks,
    start_static,
    violations,
)
from tests.static_server import FAKE_REPLY

pytestmark = pytest.mark.browser


def controlled(page: Any) -> str | None:
    """The script URL of the service worker controlling ``page`` once it is ready (None: none)."""
    result: str | None = page.evaluate("""async () => { await navigator.serviceWorker.ready;
        for (let i = 0; i < 200 && !navigator.serviceWorker.controller; i++) {
          await new Promise((r) => setTimeout(r, 50));
        }
        return navigator.serviceWorker.controller?.scriptURL ?? null; }""")
    return result


def precached(page: Any) -> dict[str, str | None]:
    """The service worker's precache: URL path -> the revision it was stored under."""
    result: dict[str, str | None] = page.evaluate("""async () => {
        const names = (await caches.keys()).filter((n) => n.includes("precache"));
        const out = {};
        for (const name of names) for (const req of await (await caches.open(name)).keys()) {
          const url = new URL(req.url);
          out[url.pathname] = url.searchParams.get("__WB_REVISION__");
        }
        return out; }""")
    return result


@pytest.fixture(scope="module")
def pwa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Static]]:
    tmp = tmp_path_factory.mktemp("pwa")
    site = build_test_site(tmp / "site", relay="/api/cloud")
    srv = start_static(site.root, fake_cloud=True, log=tmp / "static.log")
    yield site, srv
    srv.stop()


def test_offline_reload_boots_and_every_local_task_answers(browser: Any, pwa: tuple[Any, Static]) -> None:
    site, srv = pwa
    context = browser.new_context()
    context.add_init_script(CSP_LISTENER)
    responses: list[Any] = []
    try:
        page = open_app(context, srv.url)
        assert controlled(page) == srv.url + "sw.js"
        online_ready_ms = page.evaluate("() => window.router.info.timings.ready")
        check_local_tasks(run_local_tasks(page))  # online: the models go into IndexedDB
        cloud = page.evaluate(
            "async () => window.router.generate({ prompt: 'Capital of France?', route: 'cloud' })"
        )
        assert cloud["route"]["target"] == "cloud" and cloud["text"] == FAKE_REPLY

        context.set_offline(True)
        context.on("response", lambda r: responses.append(r))
        page.reload()
        page.wait_for_selector('#app-state[data-state="ready"]', timeout=180_000)
        offline_ready_ms = page.evaluate("() => window.router.info.timings.ready")
        print(
            f"worker ready: {online_ready_ms} ms online (first load), {offline_ready_ms} ms offline (reload)"
        )
        if page.evaluate("() => navigator.onLine"):
            # Chromium 150 under Playwright 1.65: a page reloaded from its service worker while the
            # context is offline reads navigator.onLine === true (seen 2026-12-03; a real disconnected
            # browser reads false). Apply the same emulation to the new document through CDP: the page
            # gets the `offline` event, which the page and the JS client follow.
            cdp = context.new_cdp_session(page)
            cdp.send("Network.enable")
            cdp.send(
                "Network.emulateNetworkConditions",
                {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
            )
        try:  # the pill follows navigator.onLine and its events
            page.wait_for_selector('#net-state[data-state="offline"]', timeout=15_000)
        except Exception:
            raise AssertionError(
                f"the page says {page.get_attribute('#net-state', 'data-state')!r}; "
                f"navigator.onLine is {page.evaluate('() => navigator.onLine')}"
            ) from None
        assert controlled(page) == srv.url + "sw.js"
        check_local_tasks(run_local_tasks(page, index_name="offline"))
        # nothing came from the network: every response was the service worker's
        assert responses and all(r.from_service_worker for r in responses), [
            r.url for r in responses if not r.from_service_worker
        ]
        assert any(r.url.endswith("pyodide.asm.wasm") for r in responses)

        err = page.evaluate("""async () => { const t0 = performance.now();
            try {
              await window.router.generate({ prompt: 'Capital of France?', route: 'cloud' });
              return { name: 'no error' };
            }
            catch (e) { return { name: e.name, hint: e.hint, ms: performance.now() - t0 }; } }""")
        print(f"offline cloud call failed in {err.get('ms', 0):.0f} ms: {err}")
        assert err["name"] == "OfflineError", err
        assert "local models keep working" in err["hint"]
        assert violations(page) == []
    finally:
        context.close()


def test_the_manifest_passes_chromiums_installability_checks(
    playwright_instance: Any, pwa: tuple[Any, Static], tmp_path: Path
) -> None:
    """In a profile of its own: an incognito context (new_context) is never installable."""
    _, srv = pwa
    context = playwright_instance.chromium.launch_persistent_context(
        tmp_path / "profile", executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS
    )
    try:
        page = open_app(context, srv.url)
        controlled(page)
        cdp = context.new_cdp_session(page)
        assert cdp.send("Page.getInstallabilityErrors")["installabilityErrors"] == []
        manifest = cdp.send("Page.getAppManifest")
        assert manifest["errors"] == [] and manifest["url"] == srv.url + "manifest.webmanifest"
        parsed = json.loads(manifest["data"])
        assert {i["sizes"] for i in parsed["icons"]} >= {"192x192", "512x512"}
    finally:
        context.close()


def test_a_new_version_is_announced_and_taken_on_reload(browser: Any, tmp_path: Path) -> None:
    old = build_test_site(tmp_path / "site", relay="/api/cloud")
    srv = start_static(old.root, fake_cloud=True, log=tmp_path / "static.log")
    context = browser.new_context()
    try:
        page = open_app(context, srv.url)
        controlled(page)
        assert old.version in page.text_content("#version")
        before = precached(page)
        relay_caches = page.evaluate(
            "async () => (await caches.keys()).filter((n) => n.includes('relay-config'))"
        )
        assert relay_caches == [f"hybrid-router-relay-config-{old.version}"]
        assert page.is_hidden("#update")

        new = build_test_site(tmp_path / "site", relay=None)  # the operator rebuilds the same folder
        assert new.version != old.version
        page.reload()
        page.evaluate("async () => (await navigator.serviceWorker.getRegistration()).update()")
        page.wait_for_selector("#update", state="visible", timeout=120_000)
        assert "new version" in page.text_content("#update")
        assert old.version in page.text_content("#version")  # still the old one until the reload
        with page.expect_navigation():
            page.click("#update-reload")
        page.wait_for_selector('#app-state[data-state="ready"]', timeout=180_000)
        assert new.version in page.text_content("#version")
        assert page.get_attribute("#cloud-state", "data-state") == "local-only"
        after = precached(page)
        boot_revision = {f.path: f.sha256[:16] for f in new.files}["boot.json"]
        assert after["/boot.json"] == boot_revision != before["/boot.json"]
        # unchanged content-hashed files were kept, not fetched again; the old relay cache is gone
        assert all(after[p] == before[p] for p in before if p.startswith("/assets/"))
        assert (
            page.evaluate("async () => (await caches.keys()).filter((n) => n.includes('relay-config'))") == []
        )
    finally:
        context.close()
        srv.stop()
