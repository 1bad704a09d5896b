"""The page as a person meets it, at a desktop's (1280x800) and a phone's (390x844) width, in real Chromium.

- Chat first: the chat input is above the fold at both widths (before and after start-up), the skip link
  lands in it; model management and start-up details come after the tools.
- Every panel used once (chat, routing, similarity, classify, entities, rerank, speech, search, models):
  after each, the page does not scroll sideways at 390 px and the routing panel shows as many requests
  as the router's ``stats()`` (the chart is live whatever the panel); the chat box keeps the newest
  message and its whole route record (or its error) in view; a cut answer says so.
- Tap targets of at least 24 px at 390 px, and accessible names that name their model or row.
- Answers rendered as sanitised Markdown (a code fence becomes ``<pre><code>``, script and styles never).
- A model still being built (a real serve.py whose background build's job is a fake that waits): the
  task answers with a ``ModelNotReadyError`` carrying its progress, and its button is disabled and says so.
- No request the server cannot answer (no 404: ``config.json`` on the development server,
  ``/api/build/status`` on the static site), no CSP violation.

Screenshots of each state (start-up, download, ready, every panel used, an error, a model building,
offline, an update) at both widths are written under the test's temporary folder (the path is printed).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import REPO, Server, start_server, stop_server
from tests.site_harness import (
    CSP_LISTENER,
    EMBEDDING_MODEL,
    Static,
    build_test_site,
    start_static,
    violations,
    wait_ready,
)

pytestmark = pytest.mark.browser

VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
SENTIMENT = "minilm-l6-sst2"
ENTITIES = "minilm-l6-conll03-ner"

#: the page's width against its content's, and the elements that stick out (to name them in a failure)
SIDEWAYS_JS = """() => {
  const vw = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll("body *")].filter((el) => el.getBoundingClientRect().right > vw + 0.5)
    .slice(0, 6).map((el) => `${el.tagName.toLowerCase()}#${el.id}.${el.className} ${Math.round(el.getBoundingClientRect().right)}`);
  return { scrollWidth: document.documentElement.scrollWidth, clientWidth: vw, wide };
}"""

#: every visible control smaller than 24 x 24 CSS px (WCAG 2.5.8), with its size
SMALL_TARGETS_JS = """() => [...document.querySelectorAll("a[href], button, input, select, textarea, summary")]
  .filter((el) => { const s = getComputedStyle(el), r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && r.right > 0 && r.bottom > -scrollY; })
  .map((el) => ({ el: `${el.tagName.toLowerCase()}#${el.id} ${(el.textContent || "").trim().slice(0, 24)}`,
    w: el.getBoundingClientRect().width, h: el.getBoundingClientRect().height }))
  .filter((t) => t.w < 24 || t.h < 24)"""

#: the chat box: scrolled to its end, the last message's route record (or error) inside its visible box
CHAT_JS = """() => {
  const log = document.getElementById("chat-log");
  const box = log.getBoundingClientRect();
  const last = log.lastElementChild, why = last?.querySelector(".why");
  const r = (why ?? last).getBoundingClientRect();
  return { atEnd: log.scrollHeight - log.scrollTop - log.clientHeight <= 1,
    whyInside: r.top >= box.top - 1 && r.bottom <= box.bottom + 1, why: why?.textContent ?? "",
    error: why?.classList.contains("error") ?? false, messages: log.children.length,
    plain: last?.querySelector(".answer")?.classList.contains("plain") ?? null };
}"""

#: what the routing panel shows against what the router counts
ROUTING_JS = """async () => {
  const stats = await window.router.stats();
  const dd = [...document.querySelectorAll("#routing-stats dt")].find((dt) => dt.textContent === "requests");
  return { shown: Number(dd?.nextElementSibling?.textContent ?? -1), counted: stats.requests,
    chart: document.getElementById("routing-chart").getAttribute("aria-label") };
}"""

#: the page's status and error texts, and whether each panel's buttons are enabled (printed on a failure)
STATUS_JS = """() => Object.fromEntries([...document.querySelectorAll(
  "#app-state, #boot-status, [id$='-error'], [id$='-route'], [id$='-state'], #search-count, button[id]")]
  .map((el) => [el.id, el.tagName === "BUTTON" ? (el.disabled ? "disabled" : "enabled")
    : (el.dataset.state ?? "") + " " + (el.textContent ?? "").trim().slice(0, 160)]))"""
#: a button's accessible name as the page gives it (aria-label, else its text)
BUTTON_NAMES_JS = """() => [...document.querySelectorAll("button")]
  .filter((b) => b.getBoundingClientRect().width > 0)
  .map((b) => (b.getAttribute("aria-label") || b.textContent || "").trim())"""


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("screenshots")
    print(f"screenshots of the page: {folder}")
    return folder


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Static]]:
    built = build_test_site(tmp_path_factory.mktemp("page") / "site")
    srv = start_static(built.root, plain=True)
    yield built, srv
    srv.stop()


def _context(browser: Any, viewport: str = "desktop", **options: Any) -> Any:
    phone = viewport == "phone"
    context = browser.new_context(
        viewport=VIEWPORTS[viewport],
        is_mobile=phone,
        has_touch=phone,
        device_scale_factor=2 if phone else 1,
        **options,
    )
    context.add_init_script(CSP_LISTENER)
    # the page's waits are for models' answers, queued behind what the worker runs (a chat model's load, a
    # transcription): on a machine that runs two test workers on two cores, seconds become tens of seconds
    context.set_default_timeout(180_000)
    return context


def _failed_responses(context: Any) -> list[str]:
    """Every response of the context (page and workers) with an error status, as it comes."""
    failed: list[str] = []
    context.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    return failed


def _width(page: Any, viewport: str) -> None:
    page.set_viewport_size(VIEWPORTS[viewport])


def _shoot(page: Any, shots: Path, name: str, *, full: bool = False) -> None:
    for viewport in VIEWPORTS:
        _width(page, viewport)
        page.screenshot(path=str(shots / f"{viewport}-{name}.png"), full_page=full, timeout=120_000)


def _no_sideways_scroll(page: Any, after: str) -> None:
    report = page.evaluate(SIDEWAYS_JS)
    assert report["scrollWidth"] <= report["clientWidth"], (
        f"after {after}: the page scrolls sideways at {report['clientWidth']} px: {report['wide']}"
    )


def _chat_input_above_the_fold(page: Any) -> None:
    for viewport, size in VIEWPORTS.items():
        _width(page, viewport)
        page.evaluate("() => scrollTo(0, 0)")
        box = page.locator("#chat-input").bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= size["height"], (viewport, box)
        title = page.locator("#chat-panel h2").bounding_box()
        assert title and title["y"] < box["y"], (viewport, title)


def _routing_is_live(page: Any, after: str) -> dict[str, Any]:
    """The routing panel redraws once a call has ended: it soon shows what the router counted. (Polled with
    evaluate: wait_for_function evals its text, which the page's policy refuses. The wait allows 120 s: on
    a loaded machine the redraw's own call to the worker can queue behind the boot cache's packing; a panel
    that is not live never catches up.)"""
    deadline = time.monotonic() + 120
    while True:
        routing = dict(page.evaluate(ROUTING_JS))
        if routing["shown"] == routing["counted"]:
            return routing
        if time.monotonic() > deadline:
            raise AssertionError(
                f"after {after}: the routing panel shows {routing['shown']}, stats() {routing['counted']}"
            )
        page.wait_for_timeout(100)


def _send(page: Any, text: str) -> dict[str, Any]:
    before = page.locator("#chat-log .msg").count()
    page.fill("#chat-input", text)
    page.click("#chat-send")
    page.wait_for_selector(
        f"#chat-log .msg:nth-child({before + 2}) .why:is(.error, :has(.badge))", timeout=180_000
    )
    page.wait_for_selector("#chat-send:not([disabled])")
    return dict(page.evaluate(CHAT_JS))


def test_chat_first_and_every_panel_used_at_both_widths(
    browser: Any, site: tuple[Any, Static], shots: Path, tmp_path: Path
) -> None:
    from tests.speech import SENTENCES as SPOKEN
    from tests.speech import write_sample

    _, srv = site
    context = _context(browser, service_workers="block")
    failed = _failed_responses(context)
    try:
        page = context.new_page()
        # SmolLM2 named: the device's own choice here (8 GB) is the largest chat model built (docs/models.md)
        page.goto(srv.url + "?chatModel=SmolLM2-135M-Instruct")
        _chat_input_above_the_fold(page)  # while the router starts
        _width(page, "desktop")
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.activeElement.className") == "skip"
        page.keyboard.press("Enter")
        assert page.evaluate("() => document.activeElement.id") == "chat-input"
        wait_ready(page)
        _chat_input_above_the_fold(page)
        order = page.evaluate("() => [...document.querySelectorAll('main > section')].map((s) => s.id)")
        assert order[0] == "chat-panel" and order[-2:] == ["models-panel", "boot"], order
        _shoot(page, shots, "ready")

        # every panel once, at the phone's width
        _width(page, "phone")
        _routing_is_live(page, "start-up")
        # a cut answer says so (read defensively: the route records finish_reason where the side said it)
        probe = page.evaluate(
            "async () => await window.router.generate({ prompt: 'Count from 1 to 50.', maxTokens: 6, route: 'local' })"
        )
        page.fill("#max-tokens", "6")
        chat = _send(page, "Count from 1 to 50.")
        assert chat["atEnd"] and chat["whyInside"] and not chat["error"], chat
        assert chat["plain"] is False, (
            "the answer was not rendered as Markdown (marked + DOMPurify not loaded)"
        )
        cut = (probe.get("finish_reason") or (probe.get("route") or {}).get("finish_reason")) == "length"
        assert ("cut at the length limit" in chat["why"]) == cut, (probe, chat["why"])
        page.fill("#max-tokens", "")
        _no_sideways_scroll(page, "a chat message")
        _routing_is_live(page, "a chat message")

        page.click("#embed")
        page.wait_for_selector("#matrix table")
        page.wait_for_selector("#embed:not([disabled])")
        _no_sideways_scroll(page, "similarity")
        _routing_is_live(page, "similarity")

        page.fill("#classify-labels", "billing, hardware, shipping")
        page.click("#classify-go")
        page.wait_for_selector("#classify-route .badge")
        _no_sideways_scroll(page, "classify")
        _routing_is_live(page, "classify")

        if page.is_enabled("#ner-go"):
            page.click("#ner-go")
            page.wait_for_selector("#ner-route .badge, #ner-error:not(:empty)")
        else:  # not built here: the button says why
            assert page.text_content("#ner-state"), "the entities button is disabled without a word"
        _no_sideways_scroll(page, "entities")
        _routing_is_live(page, "entities")

        page.click("#rerank-go")
        page.wait_for_selector("#rerank-route .badge")
        _no_sideways_scroll(page, "rerank")
        _routing_is_live(page, "rerank")

        page.set_input_files("#asr-file", str(write_sample(SPOKEN[1], tmp_path / "speech.wav")))
        page.wait_for_selector("#asr-route .badge, #asr-error:not(:empty)", timeout=180_000)
        assert page.text_content("#asr-error") == "", page.text_content("#asr-error")
        _no_sideways_scroll(page, "speech")
        _routing_is_live(page, "speech")

        page.click("#search-add")
        page.wait_for_selector("#search-route .badge")
        page.fill("#search-query", "I forgot my login")
        page.click("#search-go")
        page.wait_for_selector("#search-results li button.link")
        page.click("#search-results li button.link >> nth=0")
        page.wait_for_selector("#search-go:not([disabled])")
        _no_sideways_scroll(page, "search")
        _routing_is_live(page, "search")

        page.click("#budget-form button")
        page.wait_for_selector("#budget-status:has-text('no budget')")
        page.click("#downloads-summary")
        _no_sideways_scroll(page, "the model panel")
        routing = _routing_is_live(page, "every panel")
        assert routing["counted"] >= 8, routing
        tasks = page.evaluate(
            "() => [...document.querySelectorAll('#routing-tasks meter')].map((m) => m.getAttribute('aria-label'))"
        )
        assert tasks and all(re.match(r"^[\w-]+: \d+% on the device$", t or "") for t in tasks), tasks
        for viewport in VIEWPORTS:
            _width(page, viewport)
            _no_sideways_scroll(page, f"every panel ({viewport})")
        _shoot(page, shots, "every-panel-used", full=True)
        for viewport in VIEWPORTS:  # and each panel on its own, readable at its size
            _width(page, viewport)
            for section in page.evaluate(
                "() => [...document.querySelectorAll('main > section')].map((s) => s.id)"
            ):
                page.locator(f"#{section}").screenshot(
                    path=str(shots / f"{viewport}-every-panel-used-{section}.png"), timeout=120_000
                )

        # tap targets and accessible names, at the phone's width
        _width(page, "phone")
        assert page.evaluate(SMALL_TARGETS_JS) == []
        names = page.evaluate(BUTTON_NAMES_JS)
        repeated = sorted({n for n in names if names.count(n) > 1})
        assert repeated == [], f"buttons with the same accessible name: {repeated}"
        for action in ("Download", "Delete"):
            assert page.get_by_role("button", name=f"{action} {EMBEDDING_MODEL}").count() == 1
        assert page.get_by_role("table", name=re.compile("^Models")).count() == 1
        assert page.get_by_role("row", name=re.compile(EMBEDDING_MODEL)).count() >= 1
        assert page.get_by_role("table", name="requests by task").count() == 1

        # an error keeps the new message and the error in view
        page.select_option("#route-select", "cloud")
        error = _send(page, "Hello there, who are you?")
        assert error["error"] and error["atEnd"] and error["whyInside"], error
        page.select_option("#route-select", "auto")
        _no_sideways_scroll(page, "an error")
        _routing_is_live(page, "an error")
        page.locator("#chat-panel").scroll_into_view_if_needed()
        _shoot(page, shots, "error")

        assert violations(page) == []
        assert failed == [], f"requests the server could not answer: {failed}"
    except Exception:  # what the page showed when it failed: a screenshot and its status and error texts
        if context.pages:
            with contextlib.suppress(Exception):
                context.pages[0].screenshot(path=str(shots / "failure.png"), full_page=True, timeout=30_000)
                print("the page when the test failed:", context.pages[0].evaluate(STATUS_JS))
        raise
    finally:
        context.close()


MARKDOWN = """Here is the function:

```rust
fn main() { println!("<b>hi</b>"); }
```

- **bold** and `code`
<script>window.__mdRan = true</script><img src="x" onerror="window.__mdRan = true"><p style="color:red">styled</p>
[a link](https://example.com)"""


def test_answers_are_rendered_as_sanitised_markdown(
    browser: Any, site: tuple[Any, Static], shots: Path
) -> None:
    _, srv = site
    context = _context(browser, service_workers="block")
    try:
        page = context.new_page()
        page.goto(srv.url)
        out = page.evaluate(
            """async (text) => {
            const { markdownRenderer, showMarkdown } = await import("./markdown.js");
            const render = await markdownRenderer();
            // as the chat shows an answer: a message in the chat box (its screenshot shows the code readable)
            const message = Object.assign(document.createElement("div"), { className: "msg assistant" });
            const box = Object.assign(document.createElement("div"), { className: "answer" });
            message.append(box);
            document.getElementById("chat-log").append(message);
            showMarkdown(box, text, render);
            return { loaded: render !== null, code: box.querySelector("pre > code")?.textContent ?? null,
              lang: box.querySelector("pre > code")?.className ?? null, strong: box.querySelector("li strong")?.textContent,
              scripts: box.querySelectorAll("script, img, [style], [onerror]").length,
              link: box.querySelector("a")?.getAttribute("rel"), ran: window.__mdRan === true,
              text: box.textContent };
        }""",
            MARKDOWN,
        )
        assert out["loaded"], "marked and DOMPurify did not load from boot.json's markdown URLs"
        assert out["code"] == 'fn main() { println!("<b>hi</b>"); }\n' and "rust" in out["lang"], out
        assert out["strong"] == "bold" and out["scripts"] == 0 and not out["ran"], out
        assert out["link"] == "noopener noreferrer"
        assert "<script>" in out["text"], out  # HTML in an answer is shown as text, never parsed
        pre = page.evaluate(
            "() => { const s = getComputedStyle(document.querySelector('#chat-log pre'));"
            " return [s.whiteSpace, s.overflowX, s.fontFamily, s.color, s.backgroundColor]; }"
        )
        assert pre[0] == "pre" and pre[1] == "auto" and "mono" in pre[2] and pre[3] != pre[4], pre
        for viewport in VIEWPORTS:
            _width(page, viewport)
            _no_sideways_scroll(page, f"a Markdown answer ({viewport})")
            page.locator("#chat-log").screenshot(path=str(shots / f"{viewport}-markdown-answer.png"))
        assert violations(page) == []
    finally:
        context.close()


# ------------------------------------------------------------------ a model still being built


@pytest.fixture(scope="module")
def building(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """serve.py with a background build whose one job (a fake: it waits for the test) is the sentiment
    model's training; the entity model has no job (not built on this server); the embedding model is the
    shared cache's real one."""
    from builder.common import cache_root

    from tests.browser.test_fresh_build import write_site

    shared = cache_root()
    index = json.loads((shared / "models" / "index.json").read_text())
    if EMBEDDING_MODEL not in index.get("models", {}) or not (shared / "site.json").is_file():
        pytest.skip("the embedding model and the runtime assets are not built (./hr build)")
    tmp = tmp_path_factory.mktemp("building")
    cache = tmp / "cache"
    (cache / "models").mkdir(parents=True)
    write_site(shared / "site.json", cache)
    (cache / "models" / "index.json").write_text(
        json.dumps({"models": {EMBEDDING_MODEL: index["models"][EMBEDDING_MODEL]}})
    )
    raw = json.loads((REPO / "models_manifest.json").read_text())
    raw["models"] = [m for m in raw["models"] if m["id"] in (EMBEDDING_MODEL, SENTIMENT, ENTITIES)]
    manifest = tmp / "models_manifest.json"
    manifest.write_text(json.dumps(raw))
    release = tmp / "release"
    server = start_server(
        tmp,
        extra=["--build-in-background", "--build-jobs", "tests.fake_jobs:slow_background"],
        env_extra={
            "HYBRID_ROUTER_CACHE": str(cache),
            "HYBRID_ROUTER_MANIFEST": str(manifest),
            "FAKE_JOB_RELEASE": str(release),
            "FAKE_JOB_ID": SENTIMENT,
        },
    )
    try:
        yield server
    finally:
        release.touch()
        stop_server(server)


def test_a_task_whose_model_is_being_built_says_so(browser: Any, building: Server, shots: Path) -> None:
    context = _context(browser)
    failed = _failed_responses(context)
    asked: list[str] = []
    context.on("request", lambda r: asked.append(r.url))
    try:
        page = context.new_page()
        page.goto(building.url)
        wait_ready(page)
        page.wait_for_selector("#classify-state:has-text('training')", timeout=60_000)
        state = page.text_content("#classify-state") or ""
        assert SENTIMENT in state and "still being built on the server: training (" in state, state
        assert "minutes left" in state and "labels" in state, state
        assert page.is_disabled("#classify-go")  # nothing answers sentiment until it is built
        page.fill("#classify-labels", "billing, hardware")
        assert page.is_enabled("#classify-go")  # your own labels do: by embedding similarity
        assert "embedding similarity" in (page.text_content("#classify-state") or "")
        page.fill("#classify-labels", "")
        assert page.is_disabled("#classify-go") and page.is_disabled("#ner-go")
        assert "not built on this server" in (page.text_content("#ner-state") or "")
        assert page.get_attribute("#classify-go", "aria-describedby") == "classify-state"

        # the call itself: a typed error with the progress and what to do meanwhile
        error = page.evaluate(
            """async (text) => { try { await window.router.classify(text); return null; }
            catch (e) { return { name: e.name, message: e.message, hint: e.hint, details: e.details }; } }""",
            "The battery died after two days.",
        )
        assert error and error["name"] == "ModelNotReadyError", error
        assert error["details"]["model"] == SENTIMENT and error["details"]["state"] == "running", error
        assert 0 < error["details"]["progress"] < 1 and error["details"]["eta_s"] > 0, error
        assert "still being built" in error["message"] and "manifest has no" not in error["message"]
        assert "labels" in error["hint"], error
        entities = page.evaluate(
            "async () => { try { await window.router.ner('Paris'); } catch (e) { return [e.name, e.message]; } }"
        )
        assert entities[0] == "ModelNotReadyError" and "not built" in entities[1], entities

        page.locator("#tasks-panel").scroll_into_view_if_needed()
        for viewport in VIEWPORTS:
            _width(page, viewport)
            _no_sideways_scroll(page, f"a model being built ({viewport})")
            page.locator("#classify-state").scroll_into_view_if_needed()
            page.screenshot(path=str(shots / f"{viewport}-model-building.png"))
        assert any(u.endswith("/api/build/status") for u in asked)  # followed while something is pending
        assert not any(u.endswith("/config.json") for u in asked)  # the development server has none
        assert failed == [], f"requests the server could not answer: {failed}"
    finally:
        context.close()


# ------------------------------------------------------------------ start-up, download, offline, update


class Gate:
    """A route handler that holds the requests it sees until ``release()``, then lets every one through."""

    def __init__(self) -> None:
        self.open = False
        self.held: list[Any] = []

    def __call__(self, route: Any) -> None:
        if self.open:
            route.continue_()
        else:
            self.held.append(route)

    def release(self) -> None:
        self.open = True
        for route in self.held:
            route.continue_()
        self.held.clear()


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_start_up_download_and_offline_states(
    browser: Any, site: tuple[Any, Static], viewport: str, shots: Path
) -> None:
    _, srv = site
    # requests held by the test show the boot and download states for as long as it looks at them
    context = _context(browser, viewport, service_workers="block")
    boot, model = Gate(), Gate()  # boot.json: the worker's and the page's (Markdown)
    context.route("**/boot.json", boot)
    context.route("**/all-MiniLM-L6-v2/onnx/model.onnx", model)
    try:
        page = context.new_page()
        page.goto(srv.url)
        page.wait_for_selector('#app-state[data-state="boot"]')
        assert "Starting" in page.text_content("#app-state")
        box = page.locator("#chat-input").bounding_box()
        assert box and box["y"] + box["height"] <= VIEWPORTS[viewport]["height"]  # chat first, even now
        page.screenshot(path=str(shots / f"{viewport}-state-boot.png"))
        page.locator("#boot").scroll_into_view_if_needed()
        assert page.is_visible("#boot-bar")
        page.screenshot(path=str(shots / f"{viewport}-state-boot-details.png"))
        boot.release()
        wait_ready(page)
        assert page.get_attribute("#cloud-state", "data-state") == "local-only"

        page.click("#embed")  # needs the embedding model, whose weights the test holds back
        page.wait_for_selector('#app-state[data-state="download"]')
        page.wait_for_selector("#download-total:not([hidden]) #download-bar")
        page.evaluate("() => scrollTo(0, 0)")
        page.screenshot(path=str(shots / f"{viewport}-state-download.png"))
        model.release()
        page.wait_for_selector("#matrix table")
        page.wait_for_selector('#app-state[data-state="ready"]')
        _no_sideways_scroll(page, "a download")

        context.set_offline(True)
        page.wait_for_selector('#net-state[data-state="offline"]')
        assert "local models keep working" in page.text_content("#net-state")
        page.screenshot(path=str(shots / f"{viewport}-state-offline.png"))
        assert violations(page) == []
    finally:
        boot.release()
        model.release()
        context.close()


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_an_update_is_shown(browser: Any, viewport: str, tmp_path: Path, shots: Path) -> None:
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
        for sel in ("#update", "#update-reload", "#app-state"):
            box = page.locator(sel).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= VIEWPORTS[viewport]["width"], sel
        _no_sideways_scroll(page, "an update")
        page.screenshot(path=str(shots / f"{viewport}-state-update.png"))
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
        page.keyboard.press("Enter")  # skip to the chat
        assert page.evaluate("() => document.activeElement.id") == "chat-input"

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
        tab_to("classify-labels")
        page.keyboard.type("billing, hardware")
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
