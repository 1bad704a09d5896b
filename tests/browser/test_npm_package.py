"""The client's npm package: ``python -m builder package`` makes the tarball (``npm pack``), a fresh copy of
examples/bundler-app installs it (with TypeScript and esbuild from their pinned tarballs, offline),
type-checks against its declarations (``tsc --noEmit``; a wrong call must fail), bundles it with esbuild
(the worker bundled as its own entry, next to the page's bundle), and the bundled page runs in Chromium:
its own dist/worker.js, the runtime and models from the configured base URL, every local task checked.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
import site_headers
from builder import pins
from builder.package import CLIENT, WORKER, build_package, tool_tarball

from tests.harness import REPO, RequestLog, free_port
from tests.site_harness import (
    CSP_LISTENER,
    build_test_site,
    check_local_tasks,
    run_local_tasks,
    start_static,
    violations,
)

pytestmark = pytest.mark.browser

EXAMPLE = REPO / "examples" / "bundler-app"
PLACEHOLDER = "http://127.0.0.1:8000/"


def npm(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["npm", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_package(tmp_path_factory.mktemp("pkg"))


def test_the_tarball_holds_the_client_the_worker_and_their_types(tarball: Path) -> None:
    with tarfile.open(tarball) as tar:
        names = {n.removeprefix("package/") for n in tar.getnames()}
        # extractfile: None only for a member that is not a file; these two are
        manifest = json.load(tar.extractfile("package/package.json"))  # type: ignore[arg-type]
        types = tar.extractfile("package/types/hybrid-router.d.ts").read().decode()  # type: ignore[union-attr]
    assert set(CLIENT) | set(WORKER) | {"package.json", "README.md", "types/hybrid-router.d.ts"} <= names
    assert not {"app.js", "index.html", "sw.js"} & names  # the page is not part of the package
    assert manifest["type"] == "module" and manifest["exports"]["."]["types"] == "./types/hybrid-router.d.ts"
    assert manifest["exports"]["./worker"] == "./worker.js"
    for name in (
        "class HybridRouter",
        "class VectorIndex",
        "export type Route",
        "export type EmbedResult",
        "requestPersistence",
        "ERROR_NAMES",
        "HybridRouterError",
        "baseUrl?: string | URL",
    ):
        assert name in types, name
    for method in (
        "embed",
        "classify",
        "ner",
        "rerank",
        "transcribe",
        "generate",
        "stream",
        "openIndex",
        "preload",
        "capabilities",
        "configure",
        "stats",
        "terminate",
    ):
        assert f"    {method}(" in types, method


def test_install_typecheck_bundle_and_run(browser: Any, tarball: Path, tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(EXAMPLE, app)
    config = app / "src" / "config.ts"
    app_port = free_port()
    app_origin = f"http://127.0.0.1:{app_port}"

    # the runtime: the static site on a host that lets the app's origin in
    site = build_test_site(tmp_path / "runtime")
    cors = {
        "Access-Control-Allow-Origin": app_origin,
        "Cross-Origin-Resource-Policy": "cross-origin",
        "Access-Control-Allow-Headers": "Range",
        "Access-Control-Expose-Headers": "Content-Length, Content-Range",
    }
    runtime = start_static(site.root, headers=cors, log=tmp_path / "runtime.log")
    config.write_text(config.read_text().replace(PLACEHOLDER, runtime.url))

    tools = [tool_tarball(pins.TYPESCRIPT_NPM), tool_tarball(pins.ESBUILD_NPM)]
    done = npm(["install", "--offline", "--no-audit", "--no-fund", str(tarball), *map(str, tools)], app)
    assert done.returncode == 0, done.stderr
    assert json.loads((app / "package.json").read_text())["dependencies"]["hybrid-router"].endswith(".tgz")

    checked = npm(["run", "typecheck"], app)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # the declarations are real types: a wrong call does not type-check
    (app / "src" / "wrong.ts").write_text(
        'import { HybridRouter } from "hybrid-router";\n'
        'const r = await HybridRouter.create();\nawait r.embed("not a list");\n'
        'await r.rerank("q", [1, 2]);\nexport {};\n'
    )
    wrong = npm(["run", "typecheck"], app)
    errors = [line for line in wrong.stdout.splitlines() if ": error TS" in line]
    assert wrong.returncode != 0 and errors, wrong.stdout
    assert {line.split(",")[0] for line in errors} == {"src/wrong.ts(3", "src/wrong.ts(4"}, errors
    (app / "src" / "wrong.ts").unlink()

    built = npm(["run", "build"], app)
    assert built.returncode == 0, built.stderr
    worker = (app / "dist" / "worker.js").read_text()
    # one file: the worker's modules are inside (no import of ./idb-store.js etc. left), Pyodide is not
    assert (
        "hybrid_router_js" in worker and "hybrid-router-models" in worker and "./idb-store.js" not in worker
    )
    assert "loadPyodide" not in (app / "dist" / "main.js").read_text()

    csp = site_headers.content_security_policy(script=[runtime.origin], connect=[runtime.origin])
    page_server = start_static(
        app, headers={"Content-Security-Policy": csp}, port=app_port, log=tmp_path / "app.log"
    )
    context = browser.new_context()
    context.add_init_script(CSP_LISTENER)
    requests = RequestLog()
    requests.attach(context)
    try:
        page = context.new_page()
        page.on(
            "console",
            lambda m: print(f"[browser {m.type}] {m.text}") if m.type in ("error", "warning") else None,
        )
        page.goto(page_server.url)
        page.wait_for_selector('#status[data-state="ready"], #status[data-state="error"]', timeout=180_000)
        assert page.get_attribute("#status", "data-state") == "ready", page.text_content("#status")
        # the bundle's worker (and, once ready, the throwaway interpreter it starts from the same bundle to
        # store a snapshot for the next visit: web/boot-cache.js)
        assert {w.url for w in page.workers} == {page_server.url + "dist/worker.js"}
        check_local_tasks(run_local_tasks(page, index_name="npm-test"))
        assert violations(page) == []
        # the client and worker came from the bundle; the runtime and models from the base URL
        assert not [
            u
            for u in requests.urls
            if u.startswith(runtime.origin) and u.endswith((".js",)) and "/assets/" not in u
        ], requests.urls
        assert runtime.url + "boot.json" in requests.urls
        assert any(u.startswith(runtime.origin + "/models-") for u in requests.urls)
        assert all(u.startswith((page_server.origin + "/", runtime.origin + "/")) for u in requests.urls)
    finally:
        context.close()
        page_server.stop()
        runtime.stop()
