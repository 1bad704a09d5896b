"""The guides' code, run: each runnable guide's JavaScript (tests/guides.py) as a module of a page of the
static site (with a stand-in relay on its origin), under the site's CSP; it must finish without an error
and print what the guide says it prints."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.guides import RUNNABLE, runnable_js
from tests.site_harness import CSP_LISTENER, Static, build_test_site, start_static, violations

pytestmark = pytest.mark.browser

#: what each guide's code prints, line by line (regular expressions, in order)
EXPECTED = {
    "quick-start": [
        r"^booting: ",
        r"^embedded 2 sentences in 384 dimensions on the local side$",
        r"^generate: local ",
        r"^stream: local, \d+ tokens$",
        r"^search: Reset your password",
    ],
    "routing": [
        r"^auto: local by ",
        r"^explicit cloud: cloud stand-in-cloud-model$",
        r"^local-only refuses the cloud: PolicyError$",
        r"^free tier: local$",
        r"^stats: 4 requests, 2 local, 1 cloud$",
    ],  # the refused one counts as a request,
    "offline": [
        r"^preload: 100%$",
        r"^cached: all-MiniLM-L6-v2 \d+ MB",
        r"^storage: \d+ MB used of \d+ MB$",
        r"^service worker: registered$",
    ],
    "errors": [
        r"^a string instead of a list: ValidationError \(.+\)$",
        r"^an unknown option: ValidationError",
        r"^the cloud under local-only: PolicyError",
        r"^a cancelled call: AbortError",
    ],
}
RUNNER = """const name = new URL(location.href).searchParams.get("guide");
try {
  await import(`./guide-${name}.js`);
  document.body.dataset.done = "ok";
} catch (e) {
  document.body.dataset.error = `${e.name}: ${e.message}`;
  document.body.dataset.done = "error";
}
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Static]:
    tmp = tmp_path_factory.mktemp("guides")
    built = build_test_site(tmp / "site", relay="/api/cloud")
    root = built.root
    meta = re.search(r'<meta http-equiv="Content-Security-Policy"[^>]*>', (root / "index.html").read_text())
    assert meta is not None
    (root / "guide-run.js").write_text(RUNNER)
    (root / "guide.html").write_text(
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{meta.group(0)}'
        '<title>guide</title><script type="module" src="guide-run.js"></script>'
        "</head><body></body></html>\n"
    )
    for guide in EXPECTED:
        (root / f"guide-{guide}.js").write_text(runnable_js(guide))
    srv = start_static(root, fake_cloud=True, log=tmp / "static.log")
    yield srv
    srv.stop()


def test_every_runnable_guide_is_run_here() -> None:
    """A guide whose ```js blocks run (tests/guides.py RUNNABLE) needs its expected lines here."""
    assert set(EXPECTED) == set(RUNNABLE), (sorted(EXPECTED), RUNNABLE)


@pytest.mark.parametrize("guide", list(EXPECTED))
def test_the_guides_code_runs_and_prints_what_it_says(browser: Any, site: Static, guide: str) -> None:
    context = browser.new_context()
    context.add_init_script(CSP_LISTENER)
    printed: list[str] = []
    try:
        page = context.new_page()
        page.on(
            "console", lambda m: printed.append(m.text) if m.type == "log" else print(f"[browser] {m.text}")
        )
        if guide == "offline":  # its code asks for the service worker: let the app register it first
            page.goto(site.url)
            page.wait_for_selector('#app-state[data-state="ready"]', timeout=180_000)
            page.evaluate("async () => { await navigator.serviceWorker.ready; }")
        page.goto(f"{site.url}guide.html?guide={guide}")
        page.wait_for_selector("body[data-done]", state="attached", timeout=300_000)
        assert page.get_attribute("body", "data-done") == "ok", page.get_attribute("body", "data-error")
        lines = [line for line in printed if not line.startswith("[py]")]
        patterns = iter(EXPECTED[guide])
        want: str | None = next(patterns)
        for line in lines:  # each expected line, in order (the first boot line may repeat)
            assert want is not None  # the loop is left as soon as the last one matched
            if re.search(want, line):
                want = next(patterns, None)
                if want is None:
                    break
        assert want is None, f"{guide}: nothing printed matched {want!r}; printed: {lines}"
        assert violations(page) == []
    finally:
        context.close()
