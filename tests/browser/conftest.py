"""Real-browser fixtures (see tests/harness.py): one serve.py and one Chromium per session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.faults import FaultProxy
from tests.harness import (
    REPO,
    RouterPage,
    Server,
    WarmProfile,
    launch_browser,
    load_json,
    open_router_page,
    start_server,
    stop_server,
    warm_models,
)

__all__ = ["REPO", "RouterPage", "load_json", "open_router_page"]

CLOUD_MODEL = "qwen2.5-coder-0.5b-instruct"
#: a key the relay adds upstream: the tests check that the page never sees it
RELAY_KEY = "sk-test-relay-key-never-in-the-page"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("serve"))
    srv.warm = WarmProfile(srv, tmp_path_factory.mktemp("warm"), warm_models(srv))
    yield srv
    stop_server(srv)
    srv.warm.remove()


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_instance: Any) -> Iterator[Any]:
    b = launch_browser(playwright_instance)
    yield b
    b.close()


@pytest.fixture(scope="module")
def router_page(request: pytest.FixtureRequest, browser: Any, server: Server) -> Iterator[RouterPage]:
    """The module's page, on a returning user's profile unless the module sets FRESH_PROFILE (a first
    visit: its downloads are what it checks)."""
    rp = open_router_page(browser, server, fresh=getattr(request.module, "FRESH_PROFILE", False))
    yield rp
    rp.page.context.close()


# --- the cloud side: a real llama-server (Qwen2.5-Coder-0.5B-Instruct), behind the fault proxy, behind serve.py


@pytest.fixture(scope="session")
def llama() -> Iterator[Any]:
    from builder.llama import LlamaServer, ensure_gguf, ensure_llama_server

    ensure_llama_server()
    with LlamaServer(
        ensure_gguf("qwen2.5-coder-0.5b-instruct-q4_k_m"),
        alias=CLOUD_MODEL,
        # --jinja: the model's own chat template, which renders tools and tool rounds (test_tools.py); the
        # pinned llama-server has it on by default, said here so a pin without that default still works
        extra_args=("--api-key", RELAY_KEY, "--jinja"),
    ) as server:  # only the relay knows the key
        server.start()
        yield server


@pytest.fixture(scope="session")
def fault_proxy(llama: Any) -> Iterator[FaultProxy]:
    proxy = FaultProxy(llama.url).start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def cloud_server(tmp_path_factory: pytest.TempPathFactory, fault_proxy: FaultProxy) -> Iterator[Server]:
    srv = start_server(
        tmp_path_factory.mktemp("serve-cloud"),
        cloud={
            "base_url": fault_proxy.url,
            "model": CLOUD_MODEL,
            "api_key": RELAY_KEY,
            "label": "Qwen2.5-Coder-0.5B-Instruct on llama-server (test cloud)",
        },
    )
    srv.warm = WarmProfile(srv, tmp_path_factory.mktemp("warm-cloud"), warm_models(srv))
    yield srv
    stop_server(srv)
    srv.warm.remove()


@pytest.fixture
def proxy(fault_proxy: FaultProxy) -> FaultProxy:
    """The fault proxy with an empty plan (every request forwarded) at the start of a test."""
    fault_proxy.plan()
    return fault_proxy
