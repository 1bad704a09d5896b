"""docs/deploying.md's nginx configuration, run: the guide's ```nginx block itself (tests/guides.py reads
it, so the guide and this test cannot drift), in a real nginx (Debian's package; ./hr installs it)
started here as a foreground process on a free loopback port, with its pid, logs and temp files in a
temp folder, serving a static site as ``python -m builder site --relay /api/cloud`` writes it, with a
stand-in relay behind its ``proxy_pass``.

Checked: every file of the site (html, js, mjs, wasm, onnx, json, sw.js, the web app manifest, icons,
wheels, the Pyodide stdlib...), the directory URL, a missing file and the proxied relay carry the headers
the site's own ``_headers`` asks for (CSP, COOP/COEP, CORP, nosniff, referrer policy, caching) with a
content type the browser accepts; then the page nginx serves boots in Chromium cross-origin isolated
(several ONNX Runtime threads), answers every local task with the reference's answers, and a cloud call
goes through the relay behind nginx, with no CSP violation. nginx's add_header inheritance (a location
with an add_header of its own drops the outer ones) made an earlier version of this guide serve the
runtime without COEP: ONNX Runtime's worker was blocked and the page hung.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.guides import blocks
from tests.harness import free_port
from tests.site_harness import (
    CSP_LISTENER,
    Static,
    build_test_site,
    check_local_tasks,
    open_app,
    run_local_tasks,
    start_static,
    violations,
)
from tests.static_server import FAKE_REPLY, headers_for, read_headers_file

pytestmark = pytest.mark.browser

#: the content types a browser takes for each kind of file (module scripts and wasm are checked strictly)
CONTENT_TYPES = {
    ".html": {"text/html"},
    ".js": {"text/javascript", "application/javascript"},
    ".mjs": {"text/javascript", "application/javascript"},
    ".wasm": {"application/wasm"},
    ".json": {"application/json"},
    ".webmanifest": {"application/manifest+json"},
    ".css": {"text/css"},
    ".png": {"image/png"},
}


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if found is None:
        pytest.fail("nginx is not installed: ./hr setup (or ./hr test) installs Debian's nginx")
    return found


def guide_config() -> str:
    """The guide's one nginx block."""
    (block,) = [b for b in blocks("deploying") if b.lang == "nginx"]
    return block.code


def local_config(guide: str, *, port: int, root: Path, relay_port: int) -> str:
    """The guide's block with this machine's port, folder and relay: nothing else changed."""
    out, n = re.subn(r"^(\s*)listen 80;$", rf"\1listen 127.0.0.1:{port};", guide, flags=re.M)
    out, m = re.subn(r"^(\s*)root /srv/hybrid-router;$", rf"\1root {root};", out, flags=re.M)
    out, k = re.subn(
        r"proxy_pass http://127\.0\.0\.1:8787;", f"proxy_pass http://127.0.0.1:{relay_port};", out
    )
    assert (n, m, k) == (1, 1, 1), "the guide's nginx block no longer has the lines this test adapts"
    return out


def start_nginx(guide: str, root: Path, folder: Path, relay_port: int) -> Static:
    """nginx in the foreground (no daemon), everything it writes under ``folder``; the guide's block is
    included in its ``http`` block, as Debian's nginx.conf includes sites-enabled/."""
    folder.mkdir(parents=True)
    port = free_port()
    shutil.copyfile("/etc/nginx/mime.types", folder / "mime.types")  # the guide's `include mime.types`
    (folder / "site.conf").write_text(local_config(guide, port=port, root=root, relay_port=relay_port))
    temp = {name: folder / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    # as root (CI), nginx would hand the requests to "nobody", who cannot read pytest's 0700 folders
    user = "user root;\n" if os.geteuid() == 0 else ""
    (folder / "nginx.conf").write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'error.log'};\nevents {{ worker_connections 256; }}\n"
        "http {\n  default_type application/octet-stream;\n  access_log off;\n"
        + "".join(f"  {name}_temp_path {path};\n" for name, path in temp.items()).replace(
            "body_temp", "client_body_temp"
        )
        + "  include site.conf;\n}\n"
    )
    cmd = [
        nginx_binary(),
        "-p",
        str(folder),
        "-c",
        str(folder / "nginx.conf"),
        "-e",
        str(folder / "error.log"),
    ]
    check = subprocess.run([*cmd, "-t"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, (folder / "error.log").read_text()
        try:
            with urllib.request.urlopen(url, timeout=2):
                return Static(root, url, proc)
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.1)


def head(url: str) -> tuple[int, dict[str, str]]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return build_test_site(tmp_path_factory.mktemp("nginx-site") / "site", relay="/api/cloud")


@pytest.fixture(scope="module")
def nginx(site: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Static]:
    tmp = tmp_path_factory.mktemp("nginx")
    (tmp / "empty").mkdir()
    relay = start_static(tmp / "empty", fake_cloud=True, log=tmp / "relay.log")
    srv = start_nginx(guide_config(), site.root, tmp / "nginx", int(relay.url.rsplit(":", 1)[1].strip("/")))
    yield srv
    srv.stop()
    relay.stop()


def test_every_file_nginx_serves_has_the_sites_headers(site: Any, nginx: Static) -> None:
    rules = read_headers_file((site.root / "_headers").read_text())

    def wanted(path: str) -> dict[str, str]:  # what _headers asks for the path
        return {k.lower(): v for k, v in headers_for(rules, path).items()}

    assert {"cross-origin-embedder-policy", "content-security-policy"} <= set(wanted("/index.html"))
    paths = ["", *sorted(f.path for f in site.files)]
    kinds = {Path(p).suffix or Path(p).name for p in paths}
    assert {".html", ".js", ".mjs", ".wasm", ".onnx", ".json", ".webmanifest", ".png", ".whl"} <= kinds, kinds
    assert ".part0" in kinds  # the large model files and ONNX Runtime's asyncify wasm, in parts
    for path in paths:
        status, got = head(nginx.url + path)
        assert status == 200, path
        for name, value in wanted("/" + path).items():
            assert got.get(name) == value, (path, name, got.get(name))
        suffix = Path(path or "index.html").suffix
        if suffix in CONTENT_TYPES:
            assert got["content-type"].split(";")[0] in CONTENT_TYPES[suffix], (path, got["content-type"])
        if path:
            assert int(got["content-length"]) == (site.root / path).stat().st_size, path
    # a missing file and the relay behind the proxy are under the same policy (`always`)
    for path, status in (("no-such-file.js", 404), ("api/cloud/config", 200)):
        code, got = head(nginx.url + path)
        assert code == status and got.get("cross-origin-embedder-policy") == "require-corp", (path, got)
        assert got.get("content-security-policy") == wanted("/")["content-security-policy"]


def test_the_page_nginx_serves_is_isolated_and_answers_every_local_task(browser: Any, nginx: Static) -> None:
    context = browser.new_context()
    context.add_init_script(CSP_LISTENER)
    try:
        page = open_app(context, nginx.url)
        info = page.evaluate("() => window.router.info")
        assert info["crossOriginIsolated"] is True and info["threads"] > 1, info
        check_local_tasks(run_local_tasks(page, index_name="nginx-test"))
        page.wait_for_selector('#cloud-state[data-state="relay"]')
        out = page.evaluate(
            "async () => window.router.generate({ prompt: 'Capital of France?', route: 'cloud' })"
        )
        assert out["route"]["target"] == "cloud" and out["text"] == FAKE_REPLY
        assert violations(page) == []
    finally:
        context.close()
