"""A model built in the background reaches a page that is already open: its router is told (a ``change``
event), the task's route moves to the new model, and no reload or server restart is needed.

The server runs a background build whose one job waits for the test; meanwhile the test writes the built
folder of the pending model the way ``builder.models`` does (a copy of a tiny trained classifier, its
stamp and ``index.json``), then lets the job finish.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import tiny_task_model as tiny
from tests.browser.test_fresh_build import Fresh, built_cache
from tests.harness import open_router_page, start_server, stop_server

pytestmark = pytest.mark.browser

LATE = "tiny-built-later"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fresh]:
    from builder.common import cache_root

    site = cache_root() / "site.json"
    if not site.is_file():
        pytest.skip("the runtime assets are not built (./hr build)")
    tmp = tmp_path_factory.mktemp("late")
    data = tiny.make_data(tmp / "data")
    manifest, wheel = tiny.reference_manifest(tmp, tiny.make_bert(tmp / "bert"), data)
    raw = json.loads(manifest.read_text())
    raw["models"].append({**raw["models"][0], "id": LATE})
    manifest.write_text(json.dumps(raw))
    cache, index = built_cache(tmp, site, wheel, data, manifest, [tiny.MODEL_ID])
    release = tmp / "release"
    with tiny.environment(
        HYBRID_ROUTER_CACHE=str(cache),
        HYBRID_ROUTER_MANIFEST=str(manifest),
        FAKE_JOB_RELEASE=str(release),
        FAKE_JOB_ID=LATE,
    ):
        server = start_server(
            tmp, extra=["--build-in-background", "--build-jobs", "tests.fake_jobs:slow_background"]
        )
    try:
        yield Fresh(server, cache, Path(index["models"][tiny.MODEL_ID]["dir"]), release)
    finally:
        release.touch()
        stop_server(server)


def finish_building(fresh: Fresh) -> None:
    """The background build's output for LATE: its folder (the trained classifier's files), stamp, index."""
    built = fresh.model_dir
    folder = fresh.cache / "models" / LATE / built.name
    shutil.copytree(built, folder)
    shutil.copyfile(
        built.with_name(built.name + ".stamp.json"), folder.with_name(folder.name + ".stamp.json")
    )
    index_path = fresh.cache / "models" / "index.json"
    index = json.loads(index_path.read_text())
    index["models"][LATE] = {**index["models"][tiny.MODEL_ID], "dir": str(folder)}
    tmp = index_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(index))
    tmp.replace(index_path)
    fresh.release.touch()


def test_a_model_built_in_the_background_reaches_an_open_page(browser: Any, fresh: Fresh) -> None:
    rp = open_router_page(browser, fresh.server)
    try:
        rp.page.evaluate("""() => { window.changes = [];
            router.addEventListener('change', (e) => window.changes.push(e.detail)); }""")
        before = rp.error_of("await router.classify('a great film', { model: arg })", LATE)
        # in the served manifest's not_built list while its job runs: says so, never "not in the manifest"
        assert before["name"] == "ModelNotReadyError", before
        assert before["details"]["model"] == LATE and before["details"]["state"] in ("queued", "running")
        finish_building(fresh)
        rp.page.wait_for_function("() => window.changes.some((c) => c.kind === 'models')", timeout=120_000)
        changes = rp.page.evaluate("() => window.changes")
        assert any(LATE in c.get("models", []) for c in changes)
        after = rp.call("return await router.classify('a great film', { model: arg });", LATE)
        assert after["route"]["model"] == LATE and {x["label"] for x in after["labels"]} == {
            "POSITIVE",
            "NEGATIVE",
        }
    finally:
        rp.page.context.close()
