"""Capabilities and the device choice in a real browser: no adapter, SwiftShader's software adapter, and
a WebGPU failure falling back to wasm (recorded in the route)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import RouterPage, Server, launch_browser, open_router_page

pytestmark = pytest.mark.browser

MINILM = "all-MiniLM-L6-v2"
EMBED_Q8 = "return await router.embed(['which device?'], { dtype: 'q8' });"


@pytest.fixture(scope="module")
def webgpu_browser(playwright_instance: Any) -> Iterator[Any]:
    """Chromium with WebGPU enabled: with no GPU here it offers SwiftShader's software adapter."""
    b = launch_browser(playwright_instance, ["--enable-unsafe-webgpu"])
    yield b
    b.close()


def _close(rp: RouterPage) -> None:
    rp.page.context.close()


def test_the_report_covers_gpu_memory_cores_isolation_storage_and_network(router_page: RouterPage) -> None:
    caps = router_page.call("return await router.capabilities();")
    assert caps["webgpu"]["real_gpu"] is False  # no GPU on the test machine
    assert (
        caps["hardware_concurrency"] >= 1 and caps["cross_origin_isolated"] is True and caps["online"] is True
    )
    assert caps["device_memory_gb"] is None or caps["device_memory_gb"] > 0
    assert caps["storage"]["quota"] > 0 and caps["storage"]["usage"] >= 0 and caps["cache"] is True
    assert caps["choices"][MINILM] == {**caps["choices"][MINILM], "device": "wasm", "dtype": "fp32"}
    recs = router_page.call("return await router.recommendModels({ task: 'feature-extraction' });")
    assert recs[0]["model"] == MINILM and recs[0]["usable"] and recs[0]["reasons"]
    err = router_page.error_of("await router.recommendModels({ task: 'painting' })")
    assert err["name"] == "ValidationError"


def test_a_software_fallback_adapter_counts_as_no_gpu(webgpu_browser: Any, server: Server) -> None:
    rp = open_router_page(webgpu_browser, server)
    try:
        gpu = rp.call("return (await router.capabilities()).webgpu;")
        assert gpu["adapter"] is True and gpu["fallback"] is True and gpu["real_gpu"] is False, gpu
        assert gpu["max_buffer_size"] > 0 and gpu["kind"] == "fallback (software)"
        assert rp.call(EMBED_Q8)["route"]["device"] == "wasm"
    finally:
        _close(rp)


def test_webgpu_runs_when_asked_for_on_the_software_adapter(webgpu_browser: Any, server: Server) -> None:
    rp = open_router_page(webgpu_browser, server, options={"device": "webgpu"})
    try:
        result = rp.call(EMBED_Q8)
        assert result["route"]["device"] == "webgpu" and len(result["vectors"][0]) == 384
    finally:
        _close(rp)


def test_a_webgpu_failure_falls_back_to_wasm_and_the_route_says_so(browser: Any, server: Server) -> None:
    rp = open_router_page(browser, server, options={"device": "webgpu"})  # no adapter: WebGPU cannot load
    try:
        result = rp.call(EMBED_Q8)
        assert result["route"]["device"] == "wasm" and len(result["vectors"][0]) == 384
        caps = rp.call("return await router.capabilities();")
        (fallback,) = caps["device_fallbacks"]
        assert fallback["model"] == MINILM and fallback["error_name"] == "ModelLoadError"
        assert caps["choices"][MINILM]["device"] == "wasm"
    finally:
        _close(rp)
