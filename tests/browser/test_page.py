"""The page as a person sees it, at a desktop's and a phone's width: a screenshot of each main view (saved
under test-results/screenshots/) whose expected elements are checked to be there, visible, inside the
viewport's width and not overlapping one another; the states boot, download, ready, offline and update
available, each shown; and the page used with the keyboard alone. Served as the static site by a plain
server (tests/site_harness.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import REPO
from tests.site_harness import CSP_LISTENER, Static, build_test_site, start_static, violations, wait_ready

pytestmark = pytest.mark.browser

SHOTS = REPO / "test-results" / "screenshots"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
#: each main view (a section of the page) and the elements a person needs in it
VIEWS = {
    "header": ("header", ["h1", "#app-state", "#net-state", "#cloud-state", "nav a[href='#chat-panel']"]),
    "start-up": ("#boot", ["#boot-bar", "#boot-status", "#downloads-summary"]),
    "models": ("#models-panel", ["#models tbody tr", "#budget-mb", "#caps-report dt"]),
    "chat": (
        "#chat-panel",
        [
            "#chat-input",
            "#chat-send",
            "#chat-stop",
            "#route-select",
            "#privacy-select",
            "#sensitive-select",
            "#max-tokens",
        ],
    ),
    "routing": ("#routing-panel", ["#routing-chart", "#routing-stats dt"]),
    "similarity": ("#embed-panel", ["#sentences", "#dtype", "#embed", "#matrix table", "#route .badge"]),
    "text-tasks": (
        "#tasks-panel",
        [
            "#classify-text",
            "#classify-labels",
            "#classify-go",
            "#classify-results li meter",
            "#ner-go",
            "#rerank-query",
            "#rerank-go",
        ],
    ),
    "speech": ("#asr-panel", ["#asr-record", "#asr-file", "#asr-cancel"]),
    "search": (
        "#search-panel",
        ["#search-docs", "#search-add", "#search-clear", "#search-query", "#search-go"],
    ),
}

LAYOUT_JS = """([section, selectors]) => {
  const vw = document.documentElement.clientWidth;
  const box = (el) => {
    const r = el.getBoundingClientRect();
    return { left: r.left, right: r.right, top: r.top + scrollY, bottom: r.bottom + scrollY, w: r.width,
             h: r.height };
  };
  const shown = (el) => {
    const s = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && s.display !== "none"
      && Number(s.opacity) > 0;
  };
  const root = document.querySelector(section);
  const elements = {};
  for (const sel of selectors) {
    const el = root.querySelector(sel) ?? (root.matches(sel) ? root : null);
    elements[sel] = el ? { shown: shown(el), ...box(el) } : null;
  }
  // the controls of the view must not overlap each other
  const kinds = "button, input, select, textarea, progress, meter, nav a, .pill";
  const controls = [...root.querySelectorAll(kinds)].filter(shown);
  const name = (el) => el.id || el.outerHTML.slice(0, 60);
  const overlaps = [];
  for (let i = 0; i < controls.length; i++) for (let j = i + 1; j < controls.length; j++) {
    const a = controls[i].getBoundingClientRect(), b = controls[j].getBoundingClientRect();
    const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
    const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
    if (w > 1 && h > 1) overlaps.push([name(controls[i]), name(controls[j])]);
  }
  const right = (el) => el.getBoundingClientRect().right;
  const wide = [...document.querySelectorAll("body *")].filter((el) => right(el) > vw + 0.5).slice(0, 5)
    .map((el) => `${el.tagName.toLowerCase()}#${el.id}.${el.className} ${Math.round(right(el))}`);
  const scrollWidth = document.documentElement.scrollWidth;
  return { vw, scrollWidth, elements, overlaps, count: controls.length, wide };
}"""


def check_view(page: Any, name: str, viewport: str) -> None:
    section, selectors = VIEWS[name]
    page.locator(section).scroll_into_view_if_needed()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(section).screenshot(path=str(SHOTS / f"{viewport}-{name}.png"))
    report = page.evaluate(LAYOUT_JS, [section, selectors])
    assert report["scrollWidth"] <= report["vw"], (
        f"{name}: the page scrolls sideways at {viewport} width: {report['wide']}"
    )
    for sel, el in report["elements"].items():
        assert el is not None, f"{name} ({viewport}): {sel} is missing"
        assert el["shown"], f"{name} ({viewport}): {sel} is not visible"
        assert el["left"] >= -0.5 and el["right"] <= report["vw"] + 0.5, (
            f"{name} ({viewport}): {sel} leaves the viewport {el}"
        )
    assert report["overlaps"] == [], f"{name} ({viewport}): overlapping controls {report['overlaps']}"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Static]]:
    built = build_test_site(tmp_path_factory.mktemp("page") / "site")
    srv = start_static(built.root, plain=True)
    yield built, srv
    srv.stop()


def _context(browser: Any, viewport: str, **options: Any) -> Any:
    phone = viewport == "phone"
    context = browser.new_context(
        viewport=VIEWPORTS[viewport],
        is_mobile=phone,
        has_touch=phone,
        device_scale_factor=2 if phone else 1,
        **options,
    )
    context.add_init_script(CSP_LISTENER)
    return context


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_each_view_and_state_at_desktop_and_phone_width(
    browser: Any, site: tuple[Any, Static], viewport: str
) -> None:
    _, srv = site
    # requests held by the test show the boot and download states for as long as it looks at them
    context = _context(browser, viewport, service_workers="block")
    held: dict[str, Any] = {}
    context.route("**/boot.json", lambda route: held.setdefault("boot", route))
    context.route("**/all-MiniLM-L6-v2/onnx/model.onnx", lambda route: held.setdefault("model", route))
    try:
        page = context.new_page()
        page.goto(srv.url)
        page.wait_for_selector('#app-state[data-state="boot"]')
        assert page.is_visible("#boot-bar") and "Starting" in page.text_content("#app-state")
        check_view(page, "start-up", viewport)
        page.screenshot(path=str(SHOTS / f"{viewport}-state-boot.png"))
        held.pop("boot").continue_()
        wait_ready(page)
        assert page.get_attribute("#cloud-state", "data-state") == "local-only"

        page.click("#embed")  # needs the embedding model, whose weights the test holds back
        page.wait_for_selector('#app-state[data-state="download"]')
        page.wait_for_selector("#download-total:not([hidden]) #download-bar")
        check_view(page, "header", viewport)
        page.screenshot(path=str(SHOTS / f"{viewport}-state-download.png"))
        held.pop("model").continue_()
        page.wait_for_selector("#matrix table")
        page.wait_for_selector('#app-state[data-state="ready"]')
        page.click("#classify-go")
        page.wait_for_selector("#classify-results li meter")
        page.wait_for_selector("#models tbody tr")
        for name in VIEWS:
            check_view(page, name, viewport)
        page.screenshot(path=str(SHOTS / f"{viewport}-state-ready.png"), full_page=True)

        context.set_offline(True)
        page.wait_for_selector('#net-state[data-state="offline"]')
        assert "local models keep working" in page.text_content("#net-state")
        check_view(page, "header", viewport)
        page.screenshot(path=str(SHOTS / f"{viewport}-state-offline.png"))
        assert violations(page) == []
    finally:
        for route in held.values():
            route.continue_()
        context.close()


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_an_update_is_shown(browser: Any, viewport: str, tmp_path: Path) -> None:
    old = build_test_site(tmp_path / "site")
    srv = start_static(old.root, plain=True)
    context = _context(browser, viewport)
    try:
        page = context.new_page()
        page.goto(srv.url)
        wait_ready(page)
        page.evaluate("async () => { await navigator.serviceWorker.ready; }")
        build_test_site(tmp_path / "site", relay="/api/cloud")  # a new version of the site
        page.reload()
        wait_ready(page)
        page.evaluate("async () => (await navigator.serviceWorker.getRegistration()).update()")
        page.wait_for_selector("#update", state="visible", timeout=120_000)
        report = page.evaluate(LAYOUT_JS, ["header", ["#update", "#update-reload", "#app-state"]])
        assert all(
            e and e["shown"] and e["right"] <= report["vw"] + 0.5 for e in report["elements"].values()
        ), report
        assert report["overlaps"] == []
        page.screenshot(path=str(SHOTS / f"{viewport}-state-update.png"))
    finally:
        context.close()
        srv.stop()


def test_the_page_works_with_the_keyboard_alone(browser: Any, site: tuple[Any, Static]) -> None:
    _, srv = site
    context = _context(browser, "desktop", service_workers="block")
    try:
        page = context.new_page()
        page.goto(srv.url)
        wait_ready(page)
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.activeElement.className") == "skip"
        page.keyboard.press("Enter")  # skip to the tools
        assert page.evaluate("() => document.activeElement.id") == "main"

        def tab_to(element_id: str, limit: int = 80) -> None:
            for _ in range(limit):
                page.keyboard.press("Tab")
                if page.evaluate("() => document.activeElement.id") == element_id:
                    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
                    assert outline != "none", f"{element_id} has no visible focus"
                    return
            raise AssertionError(f"Tab never reached #{element_id}")

        tab_to("embed")
        page.keyboard.press("Enter")
        page.wait_for_selector("#matrix table")
        tab_to("classify-go")
        page.keyboard.press("Space")
        page.wait_for_selector("#classify-results li")
        tab_to("search-add")
        page.keyboard.press("Enter")
        page.wait_for_selector("#search-route .badge")
        tab_to("search-query")
        page.keyboard.type("I forgot my login")
        page.keyboard.press("Enter")
        page.wait_for_selector("#search-results li")
        assert "password" in page.text_content("#search-results li")
    finally:
        context.close()
