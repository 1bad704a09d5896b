"""Nothing waits behind the device's compute: models run in ONNX Runtime's proxy worker, off the Python
worker's thread, from the ONNX Runtime build meant for the device (the plain wasm build without WebGPU).

Ordering, not timing: while a model runs, a message, a cancellation and a cloud answer are each handled
and answered before it ends. The cloud is a real llama-server behind the relay (tests/browser/conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import RouterPage, Server, open_router_page

pytestmark = pytest.mark.browser

CLOUD_OPTIONS = {"cloud": {"timeoutMs": 120_000, "maxRetries": 0}}


@pytest.fixture(scope="module")
def rp(browser: Any, cloud_server: Server) -> Iterator[RouterPage]:
    page = open_router_page(browser, cloud_server, options=CLOUD_OPTIONS)
    page.call(
        "await router.embed(['warm']); await router.generate({ prompt: 'Hi', maxTokens: 2, route: 'local' });"
    )
    yield page
    page.page.context.close()


def test_without_webgpu_the_plain_build_runs_in_onnx_runtimes_proxy_worker(rp: RouterPage) -> None:
    ort = rp.call("return router.info.ort;")
    assert ort["build"] == "plain" and ort["proxy"] is True, ort
    assert "proxy worker" in ort["reason"]
    wasm = [u for u in rp.requests.urls if u.endswith(".wasm") and "/ort/" in u]
    assert wasm and all(u.endswith("/ort-wasm-simd-threaded.wasm") for u in wasm), wasm  # never asyncify


def test_a_message_a_cancellation_and_a_cloud_answer_are_handled_while_a_local_answer_streams(
    rp: RouterPage, proxy: Any
) -> None:
    order = rp.call(
        """const order = []; let asked = false; const waits = [];
        for await (const c of router.stream({ prompt: arg, maxTokens: 160, route: "local" })) {
          if (c.delta && !asked) {
            asked = true;
            waits.push(router.embed(["while it streams"]).then((r) => order.push("embed " + r.dims)));
            const stop = new AbortController();
            waits.push(router.embed(["cancelled"], { signal: stop.signal })
              .then(() => order.push("not cancelled"), (e) => order.push("cancel " + e.name)));
            stop.abort();
            waits.push(router.generate({ prompt: "Say yes.", maxTokens: 4, route: "cloud" })
              .then((r) => order.push("cloud " + r.route.target)));
          }
          if (c.done) order.push("generation done " + c.route.target);
        }
        await Promise.all(waits);
        return order;""",
        "Tell me a long story about a dragon who learns to sail.",
    )
    done = order.index("generation done local")
    for event in ("embed 384", "cancel AbortError", "cloud cloud"):
        assert event in order and order.index(event) < done, order


def test_a_cloud_answer_and_a_cancellation_are_handled_during_one_long_model_call(
    rp: RouterPage, proxy: Any
) -> None:
    """One embedding call over a large batch is a single ONNX Runtime run (seconds long): in the Python
    worker's thread it would hold every other message until it ended; in the proxy worker it does not."""
    order = rp.call(
        """const order = [];
        const texts = Array.from({ length: 48 }, (_, i) => `text ${i}: ` + "a rather long sentence ".repeat(30));
        const long = router.embed(texts).then((r) => order.push("long embedding " + r.vectors.length));
        const stop = new AbortController();
        const cancelled = router.embed(["queued behind it"], { signal: stop.signal })
          .then(() => order.push("not cancelled"), (e) => order.push("cancel " + e.name));
        const cloud = await router.generate({ prompt: "Say yes.", maxTokens: 4, route: "cloud" });
        order.push("cloud " + cloud.route.target);
        stop.abort();
        await Promise.all([long, cancelled]);
        return order;""",
    )
    assert order[-1] == "long embedding 48", order
    assert order[:2] == ["cloud cloud", "cancel AbortError"], order
