"""The model cache in a real browser: persistence across browser starts, integrity, quota, preload
progress, cancellation and resume (Chromium + serve.py; IndexedDB inspected and damaged from the page)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.harness import (
    CHROMIUM_FLAGS,
    REPO,
    Server,
    chromium_path,
    free_port,
    load_json,
    start_server,
    stop_server,
)

pytestmark = pytest.mark.browser

MANIFEST = load_json(REPO / "models_manifest.json")


def _built_ids() -> set[str]:
    from builder.models import read_index

    return set(read_index())


#: the models the test server serves: the built ones (task models need the training data)
#: every built model this browser can run: one that needs a real GPU (WebGPU) is never offered to headless
#: Chromium's software adapter (routing/recommend.py), so it is never cached here either
MODELS = {
    m["id"]: m
    for m in MANIFEST["models"]
    if m["id"] in _built_ids() and m.get("min_device", "wasm") != "webgpu"
}
MINILM = "all-MiniLM-L6-v2"
LLM = next(m["id"] for m in MANIFEST["models"] if "text-generation" in m["tasks"])
MIB = 1024 * 1024

CREATE = """async (options) => {
  const { HybridRouter } = await import("/hybrid-router.js");
  window.router?.terminate();
  window.router = await HybridRouter.create(options || {});
}"""

#: flips bytes in one stored chunk, or cuts a chunk short, through IndexedDB in the page (the worker's origin)
DAMAGE = """async ({ key, index, how }) => {
  const done = (r) => new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error); });
  const db = await done(indexedDB.open("hybrid-router-models"));
  const store = () => db.transaction("chunks", "readwrite").objectStore("chunks");
  const chunk = await done(store().get([key, index]));
  if (!chunk) throw new Error(`no chunk ${index} of ${key}`);
  let data = new Uint8Array(chunk.data.slice(0));
  if (how === "flip") { for (let i = 1000; i < 1064; i++) data[i] ^= 0xff; }
  else data = data.slice(0, Math.floor(data.length / 2));
  await done(store().put({ ...chunk, data: data.buffer }));
  db.close();
  return data.byteLength;
}"""


def variant_bytes(model: str, dtype: str | None = None) -> int:
    m = MODELS[model]
    files = {**m["files"], **m["variants"][dtype or m["default_dtype"]]["files"]}
    return sum(f["size"] for f in files.values())


@dataclass
class Session:
    """One browser context on the test server, with every /models/ request recorded."""

    context: Any
    page: Any
    server: Server
    requests: list[dict[str, Any]] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)

    @classmethod
    def open(
        cls, context: Any, server: Server, *, quota: int | None = None, options: dict[str, Any] | None = None
    ) -> Session:
        s = cls(context, context.pages[0] if context.pages else context.new_page(), server)

        def on_request(r: Any) -> None:
            if "/models/" in r.url:
                s.requests.append({"url": r.url, "range": r.headers.get("range"), "at": time.monotonic()})

        context.on("request", on_request)
        context.on("requestfinished", lambda r: s.finished.append(r.url) if "/models/" in r.url else None)
        s.page.on("console", lambda m: print(f"[browser {m.type}] {m.text}") if m.type == "error" else None)
        s.page.goto(server.url + "sandbox.html")
        if quota is not None:
            cdp = context.new_cdp_session(s.page)
            cdp.send("Storage.overrideQuotaForOrigin", {"origin": server.origin, "quotaSize": quota})
        s.create(options)
        return s

    def create(self, options: dict[str, Any] | None = None) -> None:
        """A new worker (the old one, with its models in memory, is terminated)."""
        self.page.evaluate(CREATE, options or {})

    def call(self, js: str, arg: Any = None) -> Any:
        return self.page.evaluate(f"async (arg) => {{ const router = window.router; {js} }}", arg)

    def error_of(self, js: str, arg: Any = None) -> dict[str, Any]:
        result: dict[str, Any] = self.call(
            f"try {{ {js}; return {{ name: 'no error' }}; }} catch (e) {{ return {{ "
            "name: e.name, message: e.message, hint: e.hint, details: e.details }; }",
            arg,
        )
        return result

    def model_urls(self, since: int = 0) -> list[str]:
        return [r["url"].split("/models/", 1)[1] for r in self.requests[since:]]

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def cache_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Its own serve.py on a fixed port: IndexedDB belongs to the origin, port included."""
    srv = start_server(tmp_path_factory.mktemp("serve-cache"), port=free_port())
    yield srv
    stop_server(srv)


def persistent(playwright: Any, profile: Path) -> Any:
    return playwright.chromium.launch_persistent_context(
        str(profile), executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS
    )


#: how the test makes each kind of model load and run once; its output, to compare across starts
USE = {
    "feature-extraction": "return (await router.embed(['kept across restarts'], { model: arg })).vectors[0];",
    "text-classification": "return (await router.classify('kept across restarts', { model: arg })).labels;",
    "zero-shot-classification": "return (await router.classify('kept across restarts', "
    "{ model: arg, labels: ['memory', 'weather'] })).labels;",
    "token-classification": "return (await router.ner('Ada Lovelace lived in London.', { model: arg })).entities;",
    "text-ranking": "return (await router.rerank('kept', ['kept across restarts', 'the weather'], "
    "{ model: arg })).results;",
    "text-generation": "return (await router.generate({ prompt: 'Say hello.', maxTokens: 4, temperature: 0, "
    "route: 'local' })).text;",
    "automatic-speech-recognition": "return (await router.transcribe(new Float32Array(16000), { model: arg })).text;",
}


def use_every_model(s: Session) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mid, m in MODELS.items():
        task = next((t for t in m["tasks"] if t in USE), None)
        if task is None:  # a task this test does not know yet: at least its files go through the cache
            s.call("await router.preload([arg]);", mid)
            continue
        out[mid] = s.call(USE[task], mid)
    return out


def test_a_second_start_on_the_same_profile_loads_every_model_without_the_network(
    playwright_instance: Any, cache_server: Server, tmp_path: Path
) -> None:
    profile = tmp_path / "profile"
    first = Session.open(persistent(playwright_instance, profile), cache_server)
    try:
        before = use_every_model(first)
        fetched = set(first.model_urls())
        cached = {m["id"]: m for m in first.call("return await router.cachedModels();")}
    finally:
        first.close()
    for mid, m in MODELS.items():
        assert m["default_dtype"] in cached[mid]["dtypes"], cached
        assert f"{mid}/config.json" in fetched
    second = Session.open(persistent(playwright_instance, profile), cache_server)
    try:
        after = use_every_model(second)
        assert second.model_urls() == [], "the second start fetched model files"
        assert second.call("return await router.cacheEvents();") == []
    finally:
        second.close()
    for mid, value in before.items():
        if isinstance(value, list) and all(isinstance(x, float) for x in value):  # an embedding
            np.testing.assert_allclose(after[mid], value, atol=1e-6)
        else:
            assert after[mid] == value, mid


def test_a_corrupted_or_truncated_entry_is_detected_evicted_and_fetched_again(
    browser: Any, cache_server: Server
) -> None:
    s = Session.open(browser.new_context(), cache_server)
    try:
        texts = ["The cache must never hand over damaged bytes.", "A second sentence."]
        embed = "return (await router.embed(arg, { dtype: 'q8' })).vectors;"
        reference = np.asarray(s.call(embed, texts))
        onnx, tokenizer = f"{MINILM}/onnx/model_quantized.onnx", f"{MINILM}/tokenizer.json"
        assert MODELS[MINILM]["variants"]["q8"]["files"]["onnx/model_quantized.onnx"]["size"] > 2 * 8 * MIB
        s.page.evaluate(DAMAGE, {"key": onnx, "index": 2, "how": "flip"})
        s.page.evaluate(DAMAGE, {"key": tokenizer, "index": 0, "how": "truncate"})
        s.create()  # a new worker: nothing in memory any more
        mark = len(s.requests)
        vectors = np.asarray(s.call(embed, texts))
        np.testing.assert_allclose(vectors, reference, atol=1e-6)
        assert sorted(s.model_urls(mark)) == sorted([onnx, tokenizer])  # fetched again, nothing else
        events = s.call("return await router.cacheEvents();")
        problems = {f"{e['model']}/{e['file']}": e["problem"] for e in events if e["kind"] == "integrity"}
        assert problems[onnx].startswith("corrupted") and problems[tokenizer].startswith("truncated"), events
        s.create()
        mark = len(s.requests)
        np.testing.assert_allclose(np.asarray(s.call(embed, texts)), reference, atol=1e-6)
        assert s.model_urls(mark) == []  # stored whole again
    finally:
        s.close()


def test_a_quota_too_small_is_a_storage_error_with_a_hint_and_the_task_still_answers(
    browser: Any, cache_server: Server
) -> None:
    s = Session.open(browser.new_context(), cache_server, quota=20_000_000)
    try:
        err = s.error_of("await router.preload(['all-MiniLM-L6-v2'], { dtype: 'q8' })")
        assert err["name"] == "StorageError", err
        assert "storage" in err["hint"].lower() and "memory" in err["hint"], err
        assert f"{MINILM}/onnx/model_quantized.onnx" in err["details"]["files"]
        mark = len(s.requests)
        result = s.call("return await router.embed(['still answers'], { dtype: 'q8' });")
        assert len(result["vectors"][0]) == 384 and result["route"]["target"] == "local"
        assert s.model_urls(mark) == []  # the preloaded bytes ran from memory
        s.create()  # a fresh worker: the implicit load reports the storage failure and still answers
        events = s.call(
            "const events = []; const r = await router.embed(['again'], { dtype: 'q8', "
            "onProgress: (e) => events.push(e) }); return { dims: r.dims, events };"
        )
        assert events["dims"] == 384
        storage = [e for e in events["events"] if e.get("status") == "cache-event" and e["kind"] == "storage"]
        assert storage and storage[0]["error"]["name"] == "StorageError" and storage[0]["error"]["hint"]
        listed = s.call("return await router.cachedModels();")
        assert all("q8" not in m["dtypes"] for m in listed)
    finally:
        s.close()


def test_preload_progress_is_monotonic_and_reaches_exactly_100(browser: Any, cache_server: Server) -> None:
    s = Session.open(browser.new_context(), cache_server)
    try:
        got = s.call(
            "const events = []; const summary = await router.preload(['all-MiniLM-L6-v2'], "
            "{ dtype: 'q8', onProgress: (e) => events.push(e) }); return { events, summary };"
        )
        events, total = got["events"], variant_bytes(MINILM, "q8")
        overall = [e for e in events if e["status"] == "progress_total"]
        loaded = [e["loaded"] for e in overall]
        percent = [e["progress"] for e in overall]
        assert loaded == sorted(loaded) and percent == sorted(percent)
        assert {e["total"] for e in overall} == {total}
        assert overall[-1]["progress"] == 100 and overall[-1]["loaded"] == total and loaded[0] == 0
        assert len(overall) >= 5  # a figure along the way, not just the end
        files = {**MODELS[MINILM]["files"], **MODELS[MINILM]["variants"]["q8"]["files"]}
        done = {e["file"] for e in events if e["status"] == "done"}
        assert done == set(files)
        for name in files:
            per_file = [e["loaded"] for e in events if e.get("file") == name]
            assert per_file == sorted(per_file) and per_file[-1] == files[name]["size"]
        assert got["summary"]["bytes"] == total and got["summary"]["fetched"] == len(files)
        again = s.call(
            "const events = []; await router.preload(['all-MiniLM-L6-v2'], "
            "{ dtype: 'q8', onProgress: (e) => events.push(e) }); return events;"
        )
        assert [e["progress"] for e in again if e["status"] == "progress_total"][-1] == 100
        assert all(e["from_cache"] for e in again if e["status"] == "done")
    finally:
        s.close()


def test_cancelling_a_preload_stops_the_download_and_the_next_one_resumes(
    browser: Any, cache_server: Server
) -> None:
    s = Session.open(browser.new_context(), cache_server)
    default = MODELS[LLM]["default_dtype"]  # what a preload without a dtype downloads
    big = max(
        ((p, f["size"]) for p, f in MODELS[LLM]["variants"][default]["files"].items()), key=lambda x: x[1]
    )
    assert big[1] > 64 * MIB
    try:
        err = s.error_of(
            """const c = new AbortController();
            await router.preload([arg.model], { signal: c.signal,
              onProgress: (e) => { if (e.file === arg.file && e.loaded > 32 * 2 ** 20) c.abort(); } });""",
            {"model": LLM, "file": big[0]},
        )
        assert err["name"] == "AbortError", err
        mark = len(s.requests)
        time.sleep(2.0)
        assert len(s.requests) == mark, f"requests after the abort: {s.model_urls(mark)}"
        cut = [u for u in s.model_urls() if u == f"{LLM}/{big[0]}"]
        assert cut and f"{LLM}/{big[0]}" not in [u.split("/models/", 1)[1] for u in s.finished]  # cut off
        partial = next(m for m in s.call("return await router.cachedModels();") if m["id"] == LLM)
        assert partial["partial_files"] == 1 and partial["dtypes"] == []
        got = s.call(
            "const events = []; await router.preload([arg], { onProgress: (e) => events.push(e) }); "
            "return events;",
            LLM,
        )
        resumed = [r for r in s.requests[mark:] if r["url"].endswith(big[0])]
        assert len(resumed) == 1 and resumed[0]["range"], resumed
        start = int(resumed[0]["range"].split("=")[1].rstrip("-"))
        assert start >= 3 * 8 * MIB and start % (8 * MIB) == 0
        overall = [e for e in got if e["status"] == "progress_total"]
        assert overall[-1]["progress"] == 100 and overall[-1]["loaded"] == variant_bytes(LLM)
        assert any(e["kind"] == "resumed" for e in s.call("return await router.cacheEvents();"))
        listed = next(m for m in s.call("return await router.cachedModels();") if m["id"] == LLM)
        assert listed["partial_files"] == 0 and listed["dtypes"] == [default]
        s.create()  # and it loads from the cache, verified
        mark = len(s.requests)
        s.call(USE["text-generation"])
        assert s.model_urls(mark) == []
    finally:
        s.close()


def test_two_tabs_loading_the_same_model_download_each_file_once(browser: Any, cache_server: Server) -> None:
    s = Session.open(browser.new_context(), cache_server)
    try:
        tab2 = s.context.new_page()
        tab2.goto(cache_server.url + "sandbox.html")
        tab2.evaluate(CREATE, {})
        start = "window.loading = router.preload([{ id: 'all-MiniLM-L6-v2', dtype: 'q8' }]);"
        s.call(start)
        tab2.evaluate(f"async () => {{ const router = window.router; {start} }}")
        wait = "const r = await window.loading; return r;"
        first = s.call(wait)
        second = tab2.evaluate(f"async () => {{ {wait} }}")
        urls = s.model_urls()
        q8 = MODELS[MINILM]["variants"]["q8"]["files"]
        expected = {f"{MINILM}/{p}" for p in [*MODELS[MINILM]["files"], *q8]}
        assert sorted(urls) == sorted(expected)  # each file fetched once, by one of the two tabs
        assert first["files"] == second["files"] == len(expected)
        # what one tab fetched, the other read from IndexedDB (it waited for the file's lock)
        assert first["fetched"] + second["fetched"] == len(expected)
        assert first["from_cache"] + second["from_cache"] == len(expected)
        (m,) = s.call("return await router.cachedModels();")
        assert m["bytes"] == variant_bytes(MINILM, "q8") and m["partial_files"] == 0
        assert s.call("return await router.cacheEvents();") == []
    finally:
        s.close()


def test_delete_and_list(browser: Any, cache_server: Server) -> None:
    s = Session.open(browser.new_context(), cache_server)
    try:
        s.call("await router.preload([{ id: 'all-MiniLM-L6-v2', dtype: 'q8' }]);")
        (m,) = s.call("return await router.cachedModels();")
        assert m["id"] == MINILM and m["dtypes"] == ["q8"] and m["bytes"] == variant_bytes(MINILM, "q8")
        assert m["files"] == len(MODELS[MINILM]["files"]) + 1 and m["last_used"] > 0
        deleted = s.call("return await router.deleteModel('all-MiniLM-L6-v2');")
        assert deleted["files"] == m["files"] and deleted["bytes"] == m["bytes"]
        assert s.call("return await router.cachedModels();") == []
        err = s.error_of("await router.preload(['no-such-model'])")
        assert err["name"] == "ValidationError" and MINILM in err["hint"]
    finally:
        s.close()


ROW_SAYS = """([id, text]) => [...document.querySelectorAll('#models-table tr')]
  .some((tr) => tr.textContent.includes(id) && tr.textContent.includes(text))"""


def test_the_page_downloads_lists_and_deletes_a_model_and_reports_the_device(
    browser: Any, cache_server: Server
) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(cache_server.url)
        row = page.locator("#models-table tr", has_text=MINILM)
        row.wait_for(timeout=120_000)
        assert "not cached" in row.inner_text()
        report = page.locator("#caps-report").inner_text()
        facts = ("WebGPU", "device memory", "CPU cores", "cross-origin isolated", "storage", "online", MINILM)
        for fact in facts:
            assert fact in report, report
        row.locator("select").select_option("q8")
        row.locator("button", has_text="Download").click()
        page.wait_for_function(ROW_SAYS, arg=[MINILM, "q8 ·"], timeout=120_000)
        assert f"{variant_bytes(MINILM, 'q8') / 1e6:.1f} MB" in row.inner_text()
        row.locator("button", has_text="Delete").click()
        page.wait_for_function(ROW_SAYS, arg=[MINILM, "not cached"])
        assert "deleted" in page.locator("#cache-events").inner_text()
    finally:
        context.close()


def test_a_byte_budget_evicts_the_least_recently_used_model(browser: Any, cache_server: Server) -> None:
    asr = next((m for m in MODELS if "automatic-speech-recognition" in MODELS[m]["tasks"]), None)
    if asr is None:
        pytest.skip("no second model small enough for this test in the manifest")
    small, large = variant_bytes(MINILM, "q8"), variant_bytes(asr)
    s = Session.open(browser.new_context(), cache_server, options={"cacheBudgetBytes": small + large - 1})
    try:
        s.call("await router.preload([{ id: 'all-MiniLM-L6-v2', dtype: 'q8' }]);")
        s.call("await router.preload([arg]);", asr)  # both do not fit: the least recently used one goes
        assert [m["id"] for m in s.call("return await router.cachedModels();")] == [asr]
        evicted = [e for e in s.call("return await router.cacheEvents();") if e["kind"] == "evicted"]
        assert [e["model"] for e in evicted] == [MINILM]
        result = s.call("return await router.configureCache({ budgetBytes: 1000 });")
        assert result["evicted"] == [asr] and s.call("return await router.cachedModels();") == []
        err = s.error_of("await router.preload([{ id: 'all-MiniLM-L6-v2', dtype: 'q8' }])")
        assert err["name"] == "StorageError" and "budget" in err["message"] and "budget" in err["hint"]
    finally:
        s.close()
