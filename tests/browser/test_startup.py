"""A later start of the router boots from what the first one stored (web/boot-cache.js): the memory snapshot
of a booted interpreter and the Python packages with their bytecode, both in Cache Storage under keys made
of the Pyodide build and our package's hash; and a stored entry that is broken is dropped and the start goes
on as a first start does. Each test uses one browser profile across browser restarts (the same origin and
port: the session's server), a copy of the profile one first visit made (checked once, in the module's
fixture). How fast that is lives in ``./hr bench startup``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import BOOT_CACHE, CHROMIUM_FLAGS, RequestLog, Server, chromium_path

pytestmark = pytest.mark.browser

SENTENCE = "How do I reset my password?"

VISIT = f"""async (sentence) => {{
  const {{ HybridRouter }} = await import("/hybrid-router.js");
  window.router = await HybridRouter.create();
  const t0 = performance.now();
  const {{ vectors }} = await window.router.embed([sentence]);
  const callMs = performance.now() - t0;
  // what the boot cache holds as the call is answered (the worker stores nothing while a call runs)
  const stored = (await (await caches.open("{BOOT_CACHE}")).keys()).map((r) => r.url);
  return {{ boot: window.router.info.bootCache, timings: window.router.info.timings, vector: vectors[0],
    ours: window.router.info.snapshotModules, callMs, stored }};
}}"""
#: web/worker.js PACK_DELAY_MS: the boot cache's work waits until no call has been in flight for this long
PACK_DELAY_MS = 2000

#: the worker stores the packages and makes the snapshot after ready: wait for both entries
STORED = f"""async () => {{
  for (let i = 0; i < 900; i++) {{
    const urls = (await (await caches.open("{BOOT_CACHE}")).keys()).map((r) => r.url);
    const has = (kind) => urls.some((u) => u.includes(`/${{kind}}-`));
    if (has("site-packages") && has("snapshot")) return urls;
    await new Promise((r) => setTimeout(r, 200));
  }}
  return [];
}}"""

#: the stored packages' bundle header (web/boot-cache.js readBundle): the count of files
HEADER = f"""async () => {{
  const cache = await caches.open("{BOOT_CACHE}");
  const request = (await cache.keys()).find((r) => r.url.includes("/site-packages-"));
  const bytes = new Uint8Array(await (await cache.match(request)).arrayBuffer());
  const view = new DataView(bytes.buffer);
  return JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + view.getUint32(4, true))));
}}"""

#: replace each stored entry: the snapshot with junk behind a snapshot's magic number, under a sha256 that
#: matches it (only Pyodide's restore can tell); the packages cut short under their old sha256 (the check tells)
BREAK = f"""async () => {{
  const cache = await caches.open("{BOOT_CACHE}");
  const hex = async (b) => Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", b)),
    (x) => x.toString(16).padStart(2, "0")).join("");
  for (const request of await cache.keys()) {{
    const old = await cache.match(request);
    const header = "x-hybrid-router-sha256";
    if (request.url.includes("/snapshot-")) {{
      const junk = new Uint8Array(24 << 20).fill(7);  // a snapshot's magic number, then junk
      new DataView(junk.buffer).setUint32(0, 1886286592, true);
      await cache.put(request, new Response(junk, {{ headers: {{ [header]: await hex(junk) }} }}));
    }} else {{
      const cut = (await old.arrayBuffer()).slice(0, 1000);
      await cache.put(request, new Response(cut, {{ headers: {{ [header]: old.headers.get(header) }} }}));
    }}
  }}
}}"""


class Profile:
    """One browser profile, restarted for each visit."""

    def __init__(self, playwright: Any, path: Path, server: Server) -> None:
        self.playwright, self.path, self.server = playwright, path, server

    def visit(self, *after: str) -> tuple[dict[str, Any], list[Any], RequestLog]:
        context = self.playwright.chromium.launch_persistent_context(
            str(self.path), executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS
        )
        requests = RequestLog()
        requests.attach(context)
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.on(
                "console",
                lambda m: print(f"[browser {m.type}] {m.text}") if m.type in ("error", "warning") else None,
            )
            page.goto(self.server.url + "sandbox.html")
            result: dict[str, Any] = page.evaluate(VISIT, SENTENCE)
            return result, [page.evaluate(js) for js in after], requests
        finally:
            context.close()


def _first_visit(profile: Profile) -> list[float]:
    first, (stored,), _ = profile.visit(STORED)
    assert first["boot"]["snapshot"] == "miss" and first["boot"]["site"] == "miss", first["boot"]
    assert first["ours"] == 0  # nothing restored: the worker imports our package itself
    # the packing and the snapshot (seconds of CPU) waited for the page's call: the embedding, whose first
    # model load outlasts the quiet time here, was answered with nothing stored yet
    if first["callMs"] > PACK_DELAY_MS:
        assert first["stored"] == [], (first["callMs"], first["stored"])
    assert any("/snapshot-" in u for u in stored) and any("/site-packages-" in u for u in stored), stored
    vector: list[float] = first["vector"]
    return vector


@pytest.fixture(scope="module")
def visited(
    playwright_instance: Any, server: Server, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[float]]:
    """A profile after one first visit (its entries stored), and the embedding that visit computed."""
    first = Profile(playwright_instance, tmp_path_factory.mktemp("startup") / "profile", server)
    return first.path, _first_visit(first)


@pytest.fixture
def profile(
    playwright_instance: Any, server: Server, tmp_path: Path, visited: tuple[Path, list[float]]
) -> Iterator[Profile]:
    """A copy of the first visit's profile (the browser that made it is closed)."""
    shutil.copytree(visited[0], tmp_path / "profile", symlinks=True)
    yield Profile(playwright_instance, tmp_path / "profile", server)


@pytest.fixture
def reference(visited: tuple[Path, list[float]]) -> list[float]:
    return visited[1]


#: the stored packages cut short (their last file loses its end) under a sha256 that matches the cut bytes:
#: only reading the bundle can tell
CUT_BUNDLE = f"""async () => {{
  const cache = await caches.open("{BOOT_CACHE}");
  const hex = async (b) => Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", b)),
    (x) => x.toString(16).padStart(2, "0")).join("");
  const request = (await cache.keys()).find((r) => r.url.includes("/site-packages-"));
  const cut = (await (await cache.match(request)).arrayBuffer()).slice(0, -100);
  await cache.put(request, new Response(cut, {{ headers: {{ "x-hybrid-router-sha256": await hex(cut) }} }}));
}}"""


def test_a_later_visit_boots_from_the_snapshot_and_the_stored_packages(
    profile: Profile, reference: list[float]
) -> None:
    later, (header,), requests = profile.visit(HEADER)
    assert later["boot"] == {"snapshot": "hit", "site": "hit"}, later["boot"]
    # our package's modules came imported in the snapshot (numpy, taken on first use, is not in it)
    assert later["ours"] > 40, later["ours"]
    # the packages came from the stored archive: no package file or wheel was asked for
    fetched = [u for u in requests.urls if u.endswith(".whl")]
    assert fetched == [], fetched
    # the restored interpreter runs the same router: the same embedding
    assert later["vector"] == pytest.approx(reference, abs=1e-6)
    assert all(k in later["timings"] for k in ("pyodide", "packages", "import", "start", "ready"))
    # the packages came as one bundle of files (web/boot-cache.js readBundle), not a tar
    assert header["files"] > 100, header


def test_a_broken_boot_cache_is_dropped_and_the_start_goes_on_as_a_first_one(
    profile: Profile, reference: list[float]
) -> None:
    profile.visit(BREAK)  # a visit that starts from the good entries, then breaks them
    broken, (stored,), requests = profile.visit(STORED)
    assert broken["boot"]["snapshot"] == "corrupt" and broken["boot"]["site"] == "corrupt", broken["boot"]
    assert any(u.endswith(".whl") for u in requests.urls)  # installed from the package files
    assert broken["vector"] == pytest.approx(reference, abs=1e-6)
    assert len(stored) == 2, stored  # made and stored again
    again, _, _ = profile.visit()
    assert again["boot"] == {"snapshot": "hit", "site": "hit"}, again["boot"]
    assert again["vector"] == pytest.approx(reference, abs=1e-6)


def test_a_bundle_that_passes_its_check_but_is_cut_is_dropped(
    profile: Profile, reference: list[float]
) -> None:
    profile.visit(CUT_BUNDLE)
    cut, (stored,), requests = profile.visit(STORED)
    assert cut["boot"] == {"snapshot": "hit", "site": "corrupt", "detail": cut["boot"].get("detail")}, cut[
        "boot"
    ]
    assert "cut short" in cut["boot"]["detail"], cut["boot"]
    assert any(u.endswith(".whl") for u in requests.urls)  # installed from the package files
    assert cut["vector"] == pytest.approx(reference, abs=1e-6)
    assert len(stored) == 2, stored  # stored again
    again, _, _ = profile.visit()
    assert again["boot"] == {"snapshot": "hit", "site": "hit"}, again["boot"]
    assert again["vector"] == pytest.approx(reference, abs=1e-6)
