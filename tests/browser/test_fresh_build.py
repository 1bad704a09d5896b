"""A fresh machine's build in a real browser: a trained model whose bytes differ from the committed
manifest's record loads and runs, the browser's integrity check still refuses a corrupted file, and the
page's model panel shows a model that the background build is still training.

The trained model is the tiny BERT of tests/tiny_task_model.py, fine-tuned and exported by the real
recipe into a temporary cache whose manifest records another machine's hashes (the issue: every task
model refused as corrupted on a fresh machine). serve.py serves that cache with the runtime assets of
the shared cache (its site.json, read only) and a background build whose one job waits for the test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import tiny_task_model as tiny
from tests.harness import Server, open_router_page, start_server, stop_server

pytestmark = pytest.mark.browser

QUEUED = "tiny-still-training"


@dataclass
class Fresh:
    server: Server
    cache: Path
    model_dir: Path
    release: Path


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fresh]:
    from builder.common import cache_root

    site = cache_root() / "site.json"
    if not site.is_file():
        pytest.skip("the runtime assets are not built (./hr build)")
    tmp = tmp_path_factory.mktemp("fresh")
    data = tiny.make_data(tmp / "data")
    manifest, wheel = tiny.reference_manifest(tmp, tiny.make_bert(tmp / "bert"), data)
    raw = json.loads(manifest.read_text())
    raw["models"].append({**raw["models"][0], "id": QUEUED})  # not built: the background job "trains" it
    manifest.write_text(json.dumps(raw))
    cache, index = built_cache(
        tmp, site, wheel, data, manifest, [tiny.MODEL_ID]
    )  # a fresh build: other bytes
    model_dir = Path(index["models"][tiny.MODEL_ID]["dir"])
    release = tmp / "release"
    with tiny.environment(
        HYBRID_ROUTER_CACHE=str(cache),
        HYBRID_ROUTER_MANIFEST=str(manifest),
        FAKE_JOB_RELEASE=str(release),
        FAKE_JOB_ID=QUEUED,
    ):
        server = start_server(
            tmp, extra=["--build-in-background", "--build-jobs", "tests.fake_jobs:slow_background"]
        )
    try:
        yield Fresh(server, cache, model_dir, release)
    finally:
        release.touch()
        stop_server(server)


def write_site(shared: Path, cache: Path) -> None:
    """``site.json`` for ``cache``: the shared cache's runtime assets (served read-only from there) and this
    checkout's own ``hybrid_router`` wheel (the shared one may come from another checkout)."""
    from builder.assets import build_app_wheel

    site = json.loads(shared.read_text())
    app = build_app_wheel(cache)
    site["mounts"] = {url: path for url, path in site["mounts"].items() if not url.startswith("/app/")}
    site["mounts"][app.url] = str(app.path)
    wheels = [w for w in site["boot"]["wheels"] if not w.startswith("/app/")]
    site["boot"]["wheels"] = wheels + [app.url + p.name for p in sorted(app.path.glob("*.whl"))]
    (cache / "site.json").write_text(json.dumps(site, indent=2))


def built_cache(
    tmp: Path,
    site: Path,
    wheel: tiny.Wheel,
    data: Path,
    manifest: Path,
    ids: list[str] | None = None,
    *,
    update_manifest: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """``tmp/cache`` with the shared cache's runtime assets (:func:`write_site`), the tiny model's wheel
    seeded, and the models of ``manifest`` (all, or ``ids``) built into it by the real build, one training
    thread; the cache and the build's index."""
    import builder.models as bm

    cache = tmp / "cache"
    cache.mkdir()
    write_site(site, cache)
    tiny.seed_download(wheel, cache)
    with tiny.environment(
        HYBRID_ROUTER_CACHE=str(cache), HYBRID_ROUTER_DATA=str(data), HYBRID_ROUTER_TRAIN_THREADS="1"
    ):
        index = bm.build_models(ids, manifest_path=manifest, update_manifest=update_manifest)
    return cache, index


def served_model(fresh: Fresh) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(fresh.server.url + "models_manifest.json") as resp:
        body = json.loads(resp.read())
    return next(m for m in body["models"] if m["id"] == tiny.MODEL_ID)


CLASSIFY = "return await router.classify('a great film', { model: arg });"


def test_a_trained_model_with_other_bytes_than_the_manifest_loads_and_runs(
    browser: Any, fresh: Fresh
) -> None:
    served = served_model(fresh)
    q8 = served["variants"]["q8"]["files"]["onnx/model_quantized.onnx"]
    assert q8["sha256"] != "0" * 64  # this server's bytes, not the record of the other machine
    rp = open_router_page(browser, fresh.server)
    try:
        result = rp.call(CLASSIFY, tiny.MODEL_ID)
        assert {lab["label"] for lab in result["labels"]} == {"POSITIVE", "NEGATIVE"}
        assert result["route"]["target"] == "local" and result["route"]["model"] == tiny.MODEL_ID
        assert abs(sum(lab["score"] for lab in result["labels"]) - 1.0) < 1e-4
    finally:
        rp.page.context.close()


def test_a_corrupted_file_is_still_refused(browser: Any, fresh: Fresh) -> None:
    path = fresh.model_dir / "onnx" / "model_quantized.onnx"
    good = path.read_bytes()
    bad = bytearray(good)
    for i in range(100, 164):
        bad[i] ^= 0xFF
    path.write_bytes(bytes(bad))  # damaged on the server's disk after the build
    rp = open_router_page(browser, fresh.server)  # a new context: nothing cached yet
    try:
        err = rp.error_of(CLASSIFY, tiny.MODEL_ID)
        assert err["name"] == "ModelLoadError" and "corrupted" in err["message"], err
    finally:
        rp.page.context.close()
        path.write_bytes(good)


ROW_MATCHES = """([id, pattern]) => [...document.querySelectorAll('#models-table tr.not-built')]
  .some((tr) => tr.textContent.includes(id) && new RegExp(pattern).test(tr.textContent))"""


def test_the_model_panel_shows_a_model_still_training(browser: Any, fresh: Fresh) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(fresh.server.url)
        row = page.locator("#models-table tr.not-built", has_text=QUEUED)
        row.wait_for(timeout=120_000)
        page.wait_for_function(
            """(id) => [...document.querySelectorAll('#models-table tr.not-built')]
            .some((tr) => tr.textContent.includes(id) && /training.*left/.test(tr.textContent))""",
            arg=QUEUED,
            timeout=60_000,
        )
        text = row.text_content() or ""
        assert "not on the server yet" in text and "minutes left" in text, text
        assert "waiting for the test" in text  # the job's detail
        assert "more in the background" in (page.locator("#build-jobs").text_content() or "")
        fresh.release.touch()  # the job ends (it builds nothing): the row says the model is not built here
        page.wait_for_function(
            """(id) => [...document.querySelectorAll('#models-table tr.not-built')]
            .some((tr) => tr.textContent.includes(id) && tr.textContent.includes('not built here'))""",
            arg=QUEUED,
            timeout=60_000,
        )
    finally:
        context.close()
