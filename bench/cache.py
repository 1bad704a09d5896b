"""First load of a model from the network vs from the model cache (IndexedDB), in a real browser.

For each model and dtype, ``runs`` times: a fresh browser profile starts the router and makes the
first call (download, sha256 check, store in 8 MiB chunks, pipeline creation, one inference); then the
browser is closed and started again on the same profile and port, and the same first call is timed
again (read the chunks back, sha256 check, pipeline creation, one inference). Timed in the page with
performance.now() from the call to its answer; the router's start-up is not included. The columns
also give the bytes fetched from /models/ during the call (0 from the cache) and the cache's own share:
``preload`` of the model on a fresh profile (network only, no pipeline).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from tests.harness import CHROMIUM_FLAGS, REPO, chromium_path, free_port, load_json, start_server, stop_server

from .common import evaluate, header, median, table

MANIFEST = load_json(REPO / "models_manifest.json")
#: (model, dtype, the first call that loads it)
CASES = [
    ("all-MiniLM-L6-v2", "fp32", "await router.embed(['first call'], { dtype: 'fp32', onProgress })"),
    ("all-MiniLM-L6-v2", "q8", "await router.embed(['first call'], { dtype: 'q8', onProgress })"),
    ("whisper-tiny.en", "fp32", "await router.transcribe(new Float32Array(16000), { onProgress })"),
    (
        "SmolLM2-135M-Instruct",
        "fp32",
        "await router.generate({ prompt: 'Hi', maxTokens: 1, route: 'local', onProgress })",
    ),
]

CREATE = """async () => {
  const { HybridRouter } = await import("/hybrid-router.js");
  window.router = await HybridRouter.create();
}"""


def _timed(page: Any, js: str) -> tuple[float, float]:
    """The call's ms, and the ms the cache spent fetching or reading and checking the files."""
    got = evaluate(
        page,
        f"""async () => {{
      const router = window.router, events = [], onProgress = (e) => events.push(e);
      const t0 = performance.now(); {js}; const ms = performance.now() - t0;
      const files_ms = events.filter((e) => e.status === 'done').reduce((s, e) => s + (e.ms || 0), 0);
      return {{ ms, files_ms }};
    }}""",
    )
    return float(got["ms"]), float(got["files_ms"])


def _session(playwright: Any, profile: Path, url: str, js: str) -> tuple[float, float, int]:
    """One browser start on ``profile``: the first call's ms, the files' share, the bytes from /models/."""
    context = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS
    )
    fetched: list[int] = []

    def on_response(response: Any) -> None:
        if "/models/" in response.url:
            fetched.append(int(response.headers.get("content-length") or 0))

    context.on("response", on_response)
    try:
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(url + "sandbox.html")
        evaluate(page, CREATE)
        return (*_timed(page, js), sum(fetched))
    finally:
        context.close()


def _variant_mb(model: str, dtype: str) -> float:
    m = next(x for x in MANIFEST["models"] if x["id"] == model)
    files = {**m["files"], **m["variants"][dtype]["files"]}
    total: int = sum(f["size"] for f in files.values())
    return total / 1e6


def run(runs: int = 3, models: tuple[str, ...] | None = None, smoke: bool = False) -> list[list[Any]]:
    """``smoke``: one run of the smallest case (all-MiniLM-L6-v2 q8)."""
    from playwright.sync_api import sync_playwright

    if smoke:
        runs, models = 1, ("all-MiniLM-L6-v2",)
    header("First load of a model: from the network vs from the model cache (Chromium, WASM)")
    rows: list[list[Any]] = []
    known = {m["id"] for m in MANIFEST["models"]}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        server = start_server(Path(tmp), port=free_port())
        try:
            for model, dtype, js in CASES:
                if model not in known or (models and model not in models) or (smoke and dtype != "q8"):
                    continue
                network: list[float] = []
                cached: list[float] = []
                net_files: list[float] = []
                cache_files: list[float] = []
                preload: list[float] = []
                fetched_net = fetched_cache = 0
                for i in range(runs):
                    profile = Path(tmp) / f"profile-{model}-{dtype}-{i}"
                    ms, files_ms, fetched_net = _session(p, profile, server.url, js)
                    network.append(ms)
                    net_files.append(files_ms)
                    ms, files_ms, fetched_cache = _session(p, profile, server.url, js)
                    cached.append(ms)
                    cache_files.append(files_ms)
                    shutil.rmtree(profile, ignore_errors=True)
                    ms, _, _ = _session(
                        p,
                        profile,
                        server.url,
                        f"await router.preload([{{ id: '{model}', dtype: '{dtype}' }}])",
                    )
                    preload.append(ms)
                    shutil.rmtree(profile, ignore_errors=True)
                rows.append(
                    [
                        f"{model} {dtype}",
                        _variant_mb(model, dtype),
                        median(network),
                        median(net_files),
                        median(cached),
                        median(cache_files),
                        median(preload),
                        fetched_net / 1e6,
                        fetched_cache / 1e6,
                        runs,
                    ]
                )
        finally:
            stop_server(server)
    table(
        [
            ("model", 28),
            ("MB", 6),
            ("network ms", 11),
            ("files", 7),
            ("cache ms", 9),
            ("files", 7),
            ("preload ms", 11),
            ("net MB", 7),
            ("cache MB", 9),
            ("n", 3),
        ],
        rows,
        title="model cache",
    )
    print(
        "network / cache ms: the first call after start-up (median), of which 'files': fetching "
        "(download, sha256, store) or reading back (IndexedDB, sha256) the model's files; the rest is "
        "pipeline creation and one inference. preload: download + sha256 + store only. net / cache MB: "
        "bytes fetched from /models/ during the call."
    )
    return rows
