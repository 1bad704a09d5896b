"""Real-browser fixtures (see tests/harness.py): one serve.py and one Chromium per session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import (
    REPO,
    RouterPage,
    Server,
    launch_browser,
    load_json,
    open_router_page,
    start_server,
    stop_server,
)

__all__ = ["REPO", "RouterPage", "load_json", "open_router_page"]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("serve"))
    yield srv
    stop_server(srv)


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
def router_page(browser: Any, server: Server) -> Iterator[RouterPage]:
    rp = open_router_page(browser, server)
    yield rp
    rp.page.context.close()


