"""The semantic response cache in real Chromium: the router's own embedding model (Transformers.js), its
IndexedDB store, and the real cloud (serve.py's relay -> the fault proxy -> llama-server), whose requests
are counted: an answer from the cache must send none.

One browser context for the module, so that IndexedDB outlives a reload as it does for a user.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.faults import FaultProxy
from tests.harness import RequestLog, RouterPage, with_test_chat_model

pytestmark = pytest.mark.browser

#: no names or places in them: a prompt the entity model finds one in is never stored
QUESTION = "How do I reset my password?"
PARAPHRASE = "How can I reset my password?"
OPTIONS = {"cloud": {"timeoutMs": 60000}, "cache": {"ttlMs": 3_600_000, "maxEntries": 50}}
CREATE = """async (options) => {
  const { HybridRouter } = await import("/hybrid-router.js");
  window.router = await HybridRouter.create(options);
}"""


def _ner_built(server: Any) -> bool:
    with urllib.request.urlopen(server.url + "boot.json", timeout=10) as resp:
        boot = json.load(resp)
    url = urllib.parse.urljoin(server.url + "boot.json", boot["models_manifest"])
    with urllib.request.urlopen(url, timeout=10) as resp:
        manifest = json.load(resp)
    return any("token-classification" in m["tasks"] for m in manifest["models"])


@pytest.fixture(scope="module")
def page(browser: Any, cloud_server: Any) -> Iterator[RouterPage]:
    if not _ner_built(cloud_server):
        pytest.skip("the entity model is not built: without it no prompt can be checked, so none is stored")
    context = browser.new_context()
    requests = RequestLog()
    requests.attach(context)
    tab = context.new_page()
    tab.goto(cloud_server.url + "sandbox.html")
    tab.evaluate(CREATE, with_test_chat_model(cloud_server, OPTIONS))
    rp = RouterPage(tab, requests, cloud_server, [])
    rp.call("await router.clearCache();")
    yield rp
    context.close()


def _generate(rp: RouterPage, prompt: str, **options: Any) -> dict[str, Any]:
    result: dict[str, Any] = rp.call(
        "return await router.generate(arg);",
        {"prompt": prompt, "maxTokens": 16, "temperature": 0, "route": "cloud", **options},
    )
    return result


def _relay_calls(rp: RouterPage) -> int:
    return sum(1 for u in rp.requests.urls if "/api/cloud/" in u and not u.endswith("/config"))


def test_a_paraphrase_is_answered_from_the_cache_without_a_request(
    page: RouterPage, proxy: FaultProxy
) -> None:
    first = _generate(page, QUESTION)
    assert first["route"]["target"] == "cloud" and proxy.requests() == 1
    relay = _relay_calls(page)
    hit = _generate(page, PARAPHRASE)
    route = hit["route"]
    assert route["target"] == "cache" and route["reason"] == "cache" and hit["text"] == first["text"]
    assert 0.9 <= route["cache"]["similarity"] < 1.0  # a paraphrase, not the same text
    assert route["cache"]["original"]["target"] == "cloud" and route["cache"]["original"]["cost_usd"] > 0
    assert route["cost_usd"] == 0 and hit["usage"] == {"tokens_in": 0, "tokens_out": 0}
    assert proxy.requests() == 1 and _relay_calls(page) == relay  # nothing reached the relay
    stats = page.call("return (await router.stats()).cache;")
    assert stats["hits"] == 1 and stats["hits_cloud"] == 1 and stats["stored"] == 1 and stats["persistent"]
    assert stats["saved_usd"] == pytest.approx(route["cache"]["original"]["cost_usd"])


def test_a_stream_replays_in_the_shape_of_a_live_stream(page: RouterPage, proxy: FaultProxy) -> None:
    chunks = page.call(
        """const out = [];
        for await (const c of router.stream(arg)) out.push(c);
        return out;""",
        {"prompt": PARAPHRASE, "maxTokens": 16, "temperature": 0, "route": "cloud"},
    )
    stored = _generate(page, QUESTION)["text"]
    last = chunks[-1]
    assert last["done"] is True and last["route"]["target"] == "cache" and set(last) >= {"route", "usage"}
    assert len(chunks) > 2 and "".join(c["delta"] for c in chunks[:-1]) == stored
    assert proxy.requests() == 0


def test_the_cache_survives_a_reload(page: RouterPage, proxy: FaultProxy) -> None:
    page.page.reload()
    page.page.evaluate(CREATE, with_test_chat_model(page.server, OPTIONS))
    hit = _generate(page, PARAPHRASE)
    assert hit["route"]["target"] == "cache" and hit["route"]["cache"]["original"]["target"] == "cloud"
    assert proxy.requests() == 0


def test_cache_false_bypasses_it(page: RouterPage, proxy: FaultProxy) -> None:
    fresh = _generate(page, QUESTION, cache=False)
    assert fresh["route"]["target"] == "cloud" and proxy.requests() == 1
    assert page.call("return (await router.stats()).cache.skipped;") == {"bypass": 1}


def test_a_prompt_with_personal_data_is_not_stored(page: RouterPage, proxy: FaultProxy) -> None:
    prompt = "Reply to anna.schmidt@example.com: how do I reset my password?"
    first = _generate(page, prompt)
    again = _generate(page, prompt)
    assert first["route"]["target"] == "cloud" and again["route"]["target"] == "cloud"
    assert proxy.requests() == 2
    stats = page.call("return (await router.stats()).cache;")
    assert stats["not_stored"].get("personal-data") == 2
