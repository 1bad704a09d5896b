"""The worker survives hostile input and its own death: typed errors for malformed calls, a dead worker
rejects its pending calls with WorkerError and the next call starts a new one, a start-up signal stops
mattering once the router is up."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import RouterPage, Server, open_router_page

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def rp(browser: Any, server: Server) -> Iterator[RouterPage]:
    page = open_router_page(browser, server)
    yield page
    page.page.context.close()


def test_a_deeply_nested_argument_is_a_validation_error_and_the_worker_keeps_serving(rp: RouterPage) -> None:
    err = rp.error_of("let x = ['deep']; for (let i = 0; i < 3000; i++) x = [x]; await router.embed(x)")
    assert err["name"] == "ValidationError" and "nested" in err["message"] and err["hint"]
    huge = rp.error_of("await router.embed(Array.from({ length: 300000 }, () => 'x'))")
    assert huge["name"] == "ValidationError"
    assert rp.call("return (await router.embed(['still here'])).dims") == 384


@pytest.mark.parametrize("method", ["embed", "classify", "generate", "rerank", "transcribe", "nonsense"])
def test_raw_calls_with_wrong_shapes_get_typed_errors(rp: RouterPage, method: str) -> None:
    params = "{ texts: { nested: [1, NaN, null] }, text: 7, query: [], prompt: {}, audio: 'x', documents: 3 }"
    err = rp.error_of(f"await router.call({method!r}, {params})")
    assert err["name"] in ("ValidationError", "ProtocolError") and err["hint"]
    assert rp.call("return (await router.embed(['ok'])).dims") == 384


def test_a_worker_killed_mid_call_rejects_with_worker_error_and_the_next_call_starts_a_new_one(
    browser: Any, server: Server
) -> None:
    rp = open_router_page(browser, server)
    try:
        workers: list[Any] = list(rp.page.workers)
        assert workers, "the router's worker is visible to the page"
        rp.page.evaluate("""() => {
            window.pending = router.generate({ prompt: 'Count from one to one hundred.', maxTokens: 200 })
              .then(() => ({ name: 'no error' }), (e) => ({ name: e.name, message: e.message, hint: e.hint }));
        }""")
        rp.page.wait_for_timeout(
            500
        )  # the call is in the worker now (a wait for ordering, not a timing check)
        workers[0].evaluate("() => self.close()")
        failed = rp.page.evaluate("() => window.pending")
        assert failed["name"] == "WorkerError" and failed["hint"]
        out = rp.call(
            "const r = await router.embed(['after the crash']); return { dims: r.dims, restarts: router.restarts }"
        )
        assert out == {"dims": 384, "restarts": 1}
    finally:
        rp.page.context.close()


def test_a_start_up_signal_does_not_cancel_later_calls(browser: Any, server: Server) -> None:
    rp = open_router_page(browser, server, create=False)
    try:
        out = rp.page.evaluate("""async () => {
            const { HybridRouter } = await import("/hybrid-router.js");
            const router = await HybridRouter.create({ signal: AbortSignal.timeout(60000) });
            const controller = new AbortController();
            const early = await HybridRouter.create({ signal: controller.signal });
            controller.abort();
            const r = await early.embed(["after the start-up signal aborted"]);
            router.terminate(); early.terminate();
            return r.dims;
        }""")
        assert out == 384
    finally:
        rp.page.context.close()


def test_a_stalled_model_download_times_out_and_releases_the_file_for_the_next_try(
    browser: Any, server: Server
) -> None:
    context = browser.new_context()
    held: list[Any] = []
    context.route(
        "**/models/all-MiniLM-L6-v2/onnx/model.onnx", lambda route: held.append(route)
    )  # never answers
    page = context.new_page()
    try:
        page.goto(server.url + "sandbox.html")
        err = page.evaluate("""async () => {
            const { HybridRouter } = await import("/hybrid-router.js");
            window.router = await HybridRouter.create({ downloadIdleMs: 1500 });
            try { await router.embed(["x"], { dtype: "fp32" }); return { name: "no error" }; }
            catch (e) { return { name: e.name, message: e.message, hint: e.hint }; }
        }""")
        assert err["name"] == "ModelLoadError" and "stalled" in err["message"] and err["hint"], err
        assert held, "the download was sent and left hanging"
        context.unroute("**/models/all-MiniLM-L6-v2/onnx/model.onnx")
        # the lock on the file was released: the next call downloads it and answers
        assert page.evaluate("async () => (await router.embed(['x'], { dtype: 'fp32' })).dims") == 384
    finally:
        context.close()


#: a call that has not answered in this long is stuck (a hang detector, not a speed check)
STUCK_MS = 60_000
SETTLE = f"""(p) => Promise.race([
  p.then((v) => ({{ ok: true, value: v }}), (e) => ({{ ok: false, name: e.name, message: e.message }})),
  new Promise((resolve) => setTimeout(() => resolve({{ ok: false, name: "stuck" }}), {STUCK_MS})),
])"""


def test_a_call_cancelled_while_the_ledger_is_locked_leaves_the_lock_free(
    browser: Any, server: Server
) -> None:
    """The ledger's Web Lock is shared by every tab: a call cancelled while it waits for it must withdraw
    its request, or it takes the lock later and holds it for ever (every later call then waits; found by
    the load test)."""
    rp = open_router_page(browser, server)
    try:
        out = rp.page.evaluate(
            """async () => {
            const settle = __SETTLE__;
            await router.embed(["warm"]);
            // another tab holds the ledger: this call's bookkeeping waits for it
            let release;
            const held = new Promise((r) => { release = r; });
            await new Promise((granted) => navigator.locks.request("hybrid-router-ledger",
              () => { granted(); return held; }));
            const c = new AbortController();
            const waiting = settle(router.embed(["waits for the ledger"], { signal: c.signal }));
            await new Promise((r) => setTimeout(r, 500));  // the call is in the worker (ordering only)
            c.abort();
            const cancelled = await waiting;
            release();
            const next = await settle(router.embed(["after the cancelled one"]));
            const stats = await settle(router.stats());
            return { cancelled: cancelled.name, next: next.ok ? next.value.dims : next.name,
                     stats: stats.ok ? "ok" : stats.name };
        }""".replace("__SETTLE__", SETTLE)
        )
        assert out == {"cancelled": "AbortError", "next": 384, "stats": "ok"}, out
    finally:
        rp.page.context.close()


def test_a_model_load_outlives_its_cancelled_first_caller(browser: Any, server: Server) -> None:
    """Two calls need the chat model, which is not loaded yet (a new profile): the first is cancelled while
    the load runs; the load they share goes on and the second answers (it used to end with AbortError)."""
    rp = open_router_page(browser, server)
    try:
        out = rp.page.evaluate(
            """async () => {
            const settle = __SETTLE__;
            const c = new AbortController();
            const first = settle(router.generate({ prompt: "Say hi.", maxTokens: 2, route: "local",
              signal: c.signal, onProgress: () => c.abort() }));
            const second = settle(router.generate({ prompt: "Say hello.", maxTokens: 2, route: "local" }));
            const [a, b] = [await first, await second];
            return { first: a.ok ? "answered" : a.name, second: b.ok ? b.value.route.target : b.name,
                     message: b.message ?? null };
        }""".replace("__SETTLE__", SETTLE)
        )
        assert out["first"] == "AbortError", out
        assert out["second"] == "local", out
    finally:
        rp.page.context.close()
