"""The static site (python -m builder site DIR) in Chromium, served by hosts that know nothing about it:
Python's own http.server (no header of ours at all), the same with COOP/COEP (ONNX Runtime then gets
threads), and a site whose relay sits on its origin (the page says the cloud is reachable and a cloud
call goes through it). Every local task runs and is checked against its reference (tests/site_harness.py),
under the page's Content-Security-Policy (a <meta>: the host sends none) with no violation.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.harness import RequestLog
from tests.site_harness import (
    CSP_LISTENER,
    INLINE_SCRIPT_RUNS,
    SENTENCES,
    Static,
    _reference_vectors,
    build_test_site,
    check_local_tasks,
    open_app,
    run_local_tasks,
    start_static,
    violations,
)
from tests.static_server import FAKE_REPLY

pytestmark = pytest.mark.browser

ISOLATION = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}


@pytest.fixture(scope="module")
def local_site(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return build_test_site(tmp_path_factory.mktemp("site") / "local-only")


@pytest.fixture(scope="module")
def plain(local_site: Any) -> Iterator[Static]:
    srv = start_static(local_site.root, plain=True)
    yield srv
    srv.stop()


def _headers(url: str) -> dict[str, str]:
    with urllib.request.urlopen(url) as resp:
        return {k.lower(): v for k, v in resp.headers.items()}


def test_a_plain_static_server_runs_every_local_task(browser: Any, plain: Static) -> None:
    # the host adds nothing: no CSP, no isolation, no CORS (what a bare static host sends)
    sent = _headers(plain.url + "index.html") | _headers(plain.url + "worker.js")
    assert not {
        "content-security-policy",
        "cross-origin-opener-policy",
        "cross-origin-embedder-policy",
    } & set(sent)
    context = browser.new_context()
    context.add_init_script(CSP_LISTENER)
    requests = RequestLog()
    requests.attach(context)
    try:
        page = open_app(context, plain.url)
        info = page.evaluate("() => window.router.info")
        assert (
            info["crossOriginIsolated"] is False and info["threads"] == 1
        )  # one ORT thread without isolation
        results = run_local_tasks(page)
        check_local_tasks(results)
        # the page says it is local-only (this site was built without a relay) and online
        assert page.get_attribute("#cloud-state", "data-state") == "local-only"
        assert "local only" in page.text_content("#cloud-state")
        assert page.get_attribute("#net-state", "data-state") == "online"
        assert violations(page) == []
        # the policy is in force although the host sent none: it is in the page (a <meta>)
        ran = page.evaluate(INLINE_SCRIPT_RUNS)
        assert ran is False
        assert [v["directive"] for v in violations(page)] == ["script-src-elem"]
        # every request stayed on the static server (runtime, wheels, models: all from the folder)
        assert requests.foreign(plain.origin) == []
        # a model's weights (a big file comes in parts: .onnx.part1, ...)
        assert any("/models-" in u and re.search(r"\.onnx(\.part\d+)?$", u) for u in requests.urls), (
            requests.urls
        )
    finally:
        context.close()


def test_the_site_folder_is_what_build_json_says(local_site: Any, plain: Static) -> None:
    """What a host serves is the folder as built: every file listed with its size and hash, and the
    content-hashed runtime URLs served as they are."""
    listed = json.loads((local_site.root / "build.json").read_text())
    assert listed["version"] == local_site.version
    boot = json.loads((local_site.root / "boot.json").read_text())
    for url in [boot["pyodide"]["index_url"] + "pyodide.asm.wasm", boot["ort"]["wasm"], *boot["wheels"]]:
        with urllib.request.urlopen(plain.url + url) as resp:
            size = int(resp.headers["Content-Length"])
        entry = next(f for f in listed["files"] if f["path"] == url)
        assert entry["size"] == size == (local_site.root / url).stat().st_size and entry["immutable"]


def test_isolation_headers_give_onnx_runtime_threads(browser: Any, local_site: Any, tmp_path: Path) -> None:
    """The same folder behind a host that sends COOP/COEP (as the site's _headers asks): cross-origin
    isolated, so ONNX Runtime runs several threads; the embeddings are the same."""
    srv = start_static(local_site.root, headers=ISOLATION, log=tmp_path / "static.log")
    context = browser.new_context()
    context.add_init_script(CSP_LISTENER)
    try:
        page = open_app(context, srv.url)
        info = page.evaluate("() => window.router.info")
        assert info["crossOriginIsolated"] is True and info["threads"] > 1, info
        got = page.evaluate("async (texts) => (await window.router.embed(texts)).vectors", SENTENCES)
        cos = (np.asarray(got) * _reference_vectors(SENTENCES)).sum(axis=1)
        assert cos.min() >= 0.999
        assert "cross-origin isolated" in page.text_content("#boot-info")
        assert violations(page) == []
    finally:
        context.close()
        srv.stop()


def test_a_site_with_a_relay_says_so_and_reaches_the_cloud(browser: Any, tmp_path: Path) -> None:
    """Built with --relay /api/cloud (the operator's relay behind the same origin): the page names the
    cloud, and a cloud-routed generation goes through the relay."""
    site = build_test_site(tmp_path / "relay-site", relay="/api/cloud")
    assert json.loads((site.root / "config.json").read_text())["mode"] == "cloud-relay"
    srv = start_static(site.root, fake_cloud=True, log=tmp_path / "static.log")
    context = browser.new_context()
    context.add_init_script(CSP_LISTENER)
    try:
        page = open_app(context, srv.url)
        page.wait_for_selector('#cloud-state[data-state="relay"]')
        assert "stand-in provider" in page.text_content("#cloud-state")
        out = page.evaluate(
            "async () => window.router.generate({ prompt: 'Capital of France?', route: 'cloud' })"
        )
        assert out["route"]["target"] == "cloud" and out["text"] == FAKE_REPLY
        assert violations(page) == []
    finally:
        context.close()
        srv.stop()


def test_a_relay_on_its_own_origin(browser: Any, tmp_path: Path) -> None:
    """Built with --relay https://<another origin>/api/cloud: the real relay (relay.py) lets the site's
    origin in (--allow-origin), the page's CSP names the relay's origin, and a cloud call goes through it
    to the provider (the stand-in of tests/static_server.py, behind the relay)."""
    import os
    import subprocess
    import sys
    import time

    from tests.harness import REPO, free_port
    from tests.static_server import FAKE_MODEL

    provider = start_static(tmp_path, fake_cloud=True, log=tmp_path / "provider.log")  # the upstream API
    site_port, relay_port = free_port(), free_port()
    env = {
        **os.environ,
        "HYBRID_ROUTER_CLOUD_KIND": "openai",
        "HYBRID_ROUTER_CLOUD_MODEL": FAKE_MODEL,
        "HYBRID_ROUTER_CLOUD_BASE_URL": provider.url + "api/cloud",
        "HYBRID_ROUTER_CLOUD_API_KEY": "sk-test",
    }
    relay = subprocess.Popen(
        [
            sys.executable,
            "relay.py",
            "--port",
            str(relay_port),
            "--allow-origin",
            f"http://127.0.0.1:{site_port}",
        ],
        cwd=REPO,
        env=env,
        stdout=open(tmp_path / "relay.log", "wb"),
        stderr=subprocess.STDOUT,
    )
    relay_url = f"http://127.0.0.1:{relay_port}/api/cloud"
    site = build_test_site(tmp_path / "site", relay=relay_url)
    assert f"connect-src 'self' http://127.0.0.1:{relay_port};" in (site.root / "index.html").read_text()
    srv = start_static(site.root, plain=True, port=site_port)
    context = browser.new_context()
    context.add_init_script(CSP_LISTENER)
    try:
        deadline = time.monotonic() + 30
        while True:  # the relay is up once it answers
            try:
                urllib.request.urlopen(relay_url + "/config", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline and relay.poll() is None, (
                    tmp_path / "relay.log"
                ).read_text()
                time.sleep(0.2)
        page = open_app(context, srv.url)
        page.wait_for_selector('#cloud-state[data-state="relay"]')
        out = page.evaluate(
            "async () => window.router.generate({ prompt: 'Capital of France?', route: 'cloud' })"
        )
        assert out["route"]["target"] == "cloud" and out["text"] == FAKE_REPLY
        assert violations(page) == []
    finally:
        context.close()
        srv.stop()
        relay.terminate()
        relay.wait(10)
        provider.stop()


# ------------------------------------------------------------------ hosts with a per-file limit

#: the model the parts test serves in parts: every default site has the chat model in parts too (its q4 file is
#: over the 24 MiB part size), and its tasks answer there (the site tests above); this one is the smallest
#: model with a file of 10 parts or more at 8 MiB, so the three loads below stay short
MODEL = "all-MiniLM-L6-v2"
TEXTS = ["The static site serves this model in parts.", "A host with a per-file limit takes it."]
EMBED_JS = """async (texts) => (await window.router.embed(texts)).vectors"""
PRELOAD_JS = """async ({ id, file }) => {
  const seen = [];
  await window.router.preload([id], { onProgress: (e) => {
    if (e.file === file && e.status === "progress") seen.push(e.loaded);
  } });
  return seen;
}"""
# a worker of the site's own, started as bench/ort_builds.py does, on ONNX Runtime's asyncify build (what a
# device with WebGPU and without JSPI loads): the static site serves its wasm in parts
ASYNCIFY_JS = """async (texts) => {
  const worker = new Worker("worker.js", { type: "module", name: "asyncify" });
  try {
    return await new Promise((resolve, reject) => {
      worker.onmessage = (e) => {
        const m = e.data;
        if (m.type === "fatal") reject(new Error(m.error.name + ": " + m.error.message));
        if (m.type === "ready") {
          worker.postMessage({ id: 1, type: "call", method: "embed",
            params: { texts, model: null, dtype: null } });
          m.info.ort && (worker.__ort = m.info.ort);
        }
        if (m.id === 1 && m.type === "result") resolve({ vectors: m.value.vectors, ort: worker.__ort });
        if (m.id === 1 && m.type === "error") reject(new Error(m.error.name + ": " + m.error.message));
      };
      worker.postMessage({ type: "init", options: { ortBuild: "asyncify" } });
    });
  } finally { worker.terminate(); }
}"""
TAMPERED_JS = """async (id) => {
  await window.router.deleteModel(id);
  try { await window.router.preload([id]); return null; }
  catch (e) { return { name: e.name, message: e.message, hint: e.hint }; }
}"""


def test_the_default_site_has_no_file_over_the_hosts_limit(local_site: Any) -> None:
    """Cloudflare Pages takes files up to 25 MiB: the default site (each model in its default dtype) has
    none larger; the large model files and ONNX Runtime's asyncify wasm are there in parts."""
    from builder.site import HOST_FILE_LIMIT

    root = local_site.root
    sizes = {p.relative_to(root).as_posix(): p.stat().st_size for p in root.rglob("*") if p.is_file()}
    largest = max(sizes, key=lambda p: sizes[p])
    assert sizes[largest] <= HOST_FILE_LIMIT, (largest, sizes[largest])
    assert any(".onnx.part" in p for p in sizes) and any(".asyncify.wasm.part" in p for p in sizes)
    manifest = json.loads((root / "models_manifest.json").read_text())
    assert all(list(m["variants"]) == [m["default_dtype"]] for m in manifest["models"])


def test_a_site_in_parts_answers_as_the_whole_files_do_and_refuses_a_tampered_part(
    browser: Any, tmp_path: Path
) -> None:
    """A model from a site in small parts (8 MiB, served by a plain http.server): the download counts bytes
    across the parts, the vectors equal those from a site of whole files, ONNX Runtime's asyncify build
    loads from its parts, and a part changed on the host is refused with a ModelLoadError naming it."""
    from builder.site import build_site

    whole = build_site(tmp_path / "whole", models=[MODEL], part_bytes=2**40)
    parted = build_site(tmp_path / "parted", models=[MODEL], part_bytes=8 * 2**20)
    (entry,) = json.loads((parted.root / "models_manifest.json").read_text())["models"]
    name = next(iter(entry["variants"][entry["default_dtype"]]["files"]))
    info = entry["variants"][entry["default_dtype"]]["files"][name]
    assert name.endswith(".onnx") and len(info["parts"]) >= 10
    assert not any(".onnx.part" in f.path for f in whole.files)
    vectors = {}
    for label, site in (("whole", whole), ("parted", parted)):
        srv = start_static(site.root, plain=True, log=tmp_path / f"{label}.log")
        context = browser.new_context()
        try:
            page = open_app(context, srv.url)
            if label == "parted":
                seen = page.evaluate(PRELOAD_JS, {"id": MODEL, "file": name})
                assert seen == sorted(seen) and seen[-1] == info["size"]
                assert any(2 * 8 * 2**20 < n < info["size"] for n in seen)  # counted across the parts
            vectors[label] = page.evaluate(EMBED_JS, TEXTS)
            if label == "parted":
                out = page.evaluate(ASYNCIFY_JS, TEXTS)
                assert out["ort"]["build"] == "asyncify"
                assert np.allclose(out["vectors"], vectors[label], atol=1e-5)
                # a part changed on the host (a new file: the site's parts are hard links into the cache)
                part = parted.root / json.loads((parted.root / "boot.json").read_text())["models_url"]
                part = part / MODEL / info["parts"][2]["path"]
                data = bytearray(part.read_bytes())
                data[1000] ^= 0xFF
                part.unlink()
                part.write_bytes(bytes(data))
                err = page.evaluate(TAMPERED_JS, MODEL)
                assert err is not None and err["name"] == "ModelLoadError", err
                assert f"part 3 of {len(info['parts'])}" in err["message"] and "corrupted" in err["message"]
                assert info["parts"][2]["path"] in err["message"] and "every part" in err["hint"]
        finally:
            context.close()
            srv.stop()
    assert len(vectors["whole"]) == len(TEXTS) and vectors["parted"] == vectors["whole"]
