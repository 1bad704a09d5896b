"""builder/site.py on a small fake build (CPython, no browser): the static site's layout, its
content-hashed names, boot.json, the precache list, the page's policy, the models manifest of this build,
reproducibility, and that it never writes into a folder that is not one of its sites nor through its
hard links into the cache. (The real build in a real browser: tests/browser/test_static_site.py.)"""

from __future__ import annotations

import hashlib
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import site_headers
from builder.common import BuildError
from builder.site import (
    HOST_FILE_LIMIT,
    NOT_PRECACHED,
    PART_BYTES,
    build_site,
    content_hash,
    relay_origin,
    relay_urls,
    split_file,
)

from hybrid_router.manifest import FileInfo, Manifest

REPO = Path(__file__).resolve().parents[2]
MODEL = "all-MiniLM-L6-v2"
RUNTIME = {  # mount URL -> files of a fake runtime folder
    "/vendor/pyodide/0.27.7-k1/": [
        "pyodide.mjs",
        "pyodide.asm.js",
        "pyodide.asm.wasm",
        "python_stdlib.zip",
        "pyodide-lock.json",
        "numpy-2.0.2-cp312-cp312-pyodide_2024_0_wasm32.whl",
    ],
    "/vendor/transformers/4.3.1-k2/": ["transformers.js"],
    "/vendor/ort/1.31.0-dev-k3/": [
        "ort-wasm-simd-threaded.mjs",
        "ort-wasm-simd-threaded.wasm",
        "ort-wasm-simd-threaded.asyncify.mjs",
        "ort-wasm-simd-threaded.asyncify.wasm",
        "ort-wasm-simd-threaded.jspi.mjs",
        "ort-wasm-simd-threaded.jspi.wasm",
    ],
    "/vendor/wheels/k4/": ["transformers_js_py-0.19.10-py3-none-any.whl"],
    "/app/k5/": ["hybrid_router-0.1.0-py3-none-any.whl"],
    "/vendor/workbox/7.4.1-k6/": [
        "workbox-core.prod.js",
        "workbox-routing.prod.js",
        "workbox-strategies.prod.js",
        "workbox-precaching.prod.js",
    ],
}
MODEL_FILES = [
    "config.json",
    "tokenizer.json",
    "training.json",
    "onnx/model.onnx",
    "onnx/model_quantized.onnx",
]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def fake(tmp_path: Path) -> dict[str, Any]:
    """A build cache's worth of inputs: runtime folders, one built model, the repository's manifest."""
    mounts = {}
    for url, names in RUNTIME.items():
        folder = tmp_path / "cache" / url.strip("/").replace("/", "-")
        folder.mkdir(parents=True)
        for name in names:
            (folder / name).write_text(f"{url}{name}\n")
        (folder / ".complete").write_text("stamp")  # the cache's stamp: not part of the site
        mounts[url] = str(folder)
    assets = {
        "mounts": mounts,
        "boot": {
            "pyodide": {
                "index_url": "/vendor/pyodide/0.27.7-k1/",
                "version": "0.27.7",
                "packages": ["numpy"],
                "python": "3.12.7",
            },
            "transformers": {"url": "/vendor/transformers/4.3.1-k2/transformers.js", "version": "4.3.1"},
            "ort": {
                "mjs": "/vendor/ort/1.31.0-dev-k3/ort-wasm-simd-threaded.mjs",
                "wasm": "/vendor/ort/1.31.0-dev-k3/ort-wasm-simd-threaded.wasm",
                "version": "1.31.0-dev",
                "builds": {
                    name: {
                        "mjs": f"/vendor/ort/1.31.0-dev-k3/ort-wasm-simd-threaded{suffix}.mjs",
                        "wasm": f"/vendor/ort/1.31.0-dev-k3/ort-wasm-simd-threaded{suffix}.wasm",
                    }
                    for name, suffix in (("plain", ""), ("asyncify", ".asyncify"), ("jspi", ".jspi"))
                },
                "default": "plain",
            },
            "wheels": [
                "/vendor/wheels/k4/transformers_js_py-0.19.10-py3-none-any.whl",
                "/app/k5/hybrid_router-0.1.0-py3-none-any.whl",
            ],
        },
        "workbox": [f"/vendor/workbox/7.4.1-k6/{n}" for n in RUNTIME["/vendor/workbox/7.4.1-k6/"]],
    }
    model = tmp_path / "cache" / "models" / MODEL / "key"
    for name in MODEL_FILES:
        (model / name).parent.mkdir(parents=True, exist_ok=True)
        (model / name).write_text(f"this machine's {name}\n")
    files = {n: FileInfo((model / n).stat().st_size, sha(model / n)) for n in MODEL_FILES}
    raw = json.loads((REPO / "models_manifest.json").read_text())
    return {
        "assets": assets,
        "built": {MODEL: (model, ["fp32", "q8"], files)},
        "raw_manifest": raw,
        "model_dir": model,
    }


def build(out: Path, fake: dict[str, Any], **kw: Any) -> Any:
    return build_site(
        out, assets=fake["assets"], built=fake["built"], raw_manifest=fake["raw_manifest"], **kw
    )


class _Inline(HTMLParser):
    """Collects what a strict CSP would refuse in a page: inline scripts, style attributes and elements."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "script":
            self._in_script = "src" not in names
        if tag == "style" or "style" in names or any(n.startswith("on") for n in names):
            self.found.append(f"<{tag} {attrs}>")

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.found.append(f"inline script: {data.strip()[:40]}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False


def test_the_layout(tmp_path: Path, fake: dict[str, Any]) -> None:
    site = build(tmp_path / "site", fake)
    root = site.root
    listed = {f["path"]: f for f in json.loads((root / "build.json").read_text())["files"]}
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert on_disk == set(listed) | {"build.json"}
    for path, entry in listed.items():
        assert (root / path).stat().st_size == entry["size"] and sha(root / path) == entry["sha256"], path
    # the runtime under content-hashed folder names: the name changes exactly when the content does
    folders = {Path(p).parent.as_posix() for p in listed if p.startswith("assets/")}
    assert len(folders) == len(RUNTIME)
    for folder in folders:
        content = {
            Path(p).name: e["sha256"] for p, e in listed.items() if Path(p).parent.as_posix() == folder
        }
        assert folder.endswith("-" + content_hash(content)) and all(
            listed[f"{folder}/{n}"]["immutable"] for n in content
        )
        assert ".complete" not in content
    boot = json.loads((root / "boot.json").read_text())
    for url in [
        boot["pyodide"]["index_url"] + "pyodide.asm.wasm",
        boot["transformers"]["url"],
        boot["ort"]["mjs"],
        boot["ort"]["wasm"],
        *(u for b in boot["ort"]["builds"].values() for u in b.values()),
        *boot["wheels"],
        boot["models_manifest"],
    ]:
        assert not url.startswith("/") and (root / url).is_file(), url  # relative: any path prefix works
    assert boot["cloud_config"] is None and "cloud_base_url" not in boot  # local-only
    model_file = root / boot["models_url"] / MODEL / "onnx" / "model.onnx"
    assert model_file.read_text() == "this machine's onnx/model.onnx\n"
    config = json.loads((root / "config.json").read_text())
    assert config == {
        "version": site.version,
        "relay": None,
        "mode": "local-only",
        "service_worker": "sw.js",
        "workbox": "7.4.1",
    }
    for extra in ("manifest.webmanifest", "icons/icon-192.png", "icons/icon-512.png", "app.js", "worker.js"):
        assert (root / extra).is_file(), extra


def test_the_pages_carry_the_policy_and_nothing_inline(tmp_path: Path, fake: dict[str, Any]) -> None:
    root = build(tmp_path / "site", fake).root
    page = (root / "index.html").read_text()
    policy = site_headers.content_security_policy(frame_ancestors=None)
    assert f'<meta http-equiv="Content-Security-Policy" content="{policy}">' in page
    for html in root.glob("*.html"):
        parser = _Inline()
        parser.feed(html.read_text())
        assert parser.found == [], (html.name, parser.found)
    headers = (root / "_headers").read_text()
    assert f"Content-Security-Policy: {site_headers.content_security_policy(frame_ancestors=None)}" in headers
    assert "Cross-Origin-Embedder-Policy: require-corp" in headers and "/assets/*" in headers


def test_the_service_worker_precaches_all_but_the_models_and_the_webgpu_runtimes(
    tmp_path: Path, fake: dict[str, Any]
) -> None:
    site = build(tmp_path / "site", fake)
    text = (site.root / "sw.js").read_text()
    first = text.split("\n", 1)[0]
    assert first.startswith("self.__HYBRID_ROUTER_BUILD = {")
    build_info = json.loads(text[len("self.__HYBRID_ROUTER_BUILD = ") : text.index("};") + 1])
    assert text.endswith((REPO / "web" / "sw.js").read_text())
    boot = json.loads((site.root / "boot.json").read_text())
    urls = {e["url"]: e["revision"] for e in build_info["precache"]}
    # ONNX Runtime's WebGPU builds: fetched (and then cached) only by a device that uses WebGPU
    webgpu = {u for name in ("asyncify", "jspi") for u in boot["ort"]["builds"][name].values()}
    assert len(webgpu) == 4 and build_info["on_demand"] == sorted(webgpu)
    expected = (
        {f.path for f in site.files}
        - NOT_PRECACHED
        - {f.path for f in site.files if f.path.startswith(boot["models_url"])}
        - webgpu
    )
    assert set(urls) == expected
    assert boot["ort"]["builds"]["plain"] == {"mjs": boot["ort"]["mjs"], "wasm": boot["ort"]["wasm"]}
    assert {"index.html", "boot.json", "config.json", "models_manifest.json", boot["ort"]["wasm"]} <= set(
        urls
    )
    by_path = {f.path: f for f in site.files}
    for url, revision in urls.items():  # hashed URLs need no revision; the others carry their content's
        assert revision == (None if by_path[url].immutable else by_path[url].sha256[:16]), url
    assert build_info["version"] == site.version and build_info["workbox"][0].startswith(
        "assets/workbox-7.4.1-"
    )


def test_the_models_manifest_describes_this_builds_files(tmp_path: Path, fake: dict[str, Any]) -> None:
    root = build(tmp_path / "site", fake, dtypes=["all"]).root
    manifest = json.loads((root / "models_manifest.json").read_text())
    assert [m["id"] for m in manifest["models"]] == [MODEL]  # only what the site carries
    entry = manifest["models"][0]
    _, _, files = fake["built"][MODEL]
    assert entry["files"]["training.json"] == files["training.json"].to_dict()
    assert entry["variants"]["fp32"]["files"] == {"onnx/model.onnx": files["onnx/model.onnx"].to_dict()}
    assert entry["variants"]["q8"]["files"] == {
        "onnx/model_quantized.onnx": files["onnx/model_quantized.onnx"].to_dict()
    }


def test_the_same_inputs_give_the_same_site_and_a_change_a_new_version(
    tmp_path: Path, fake: dict[str, Any]
) -> None:
    a = build(tmp_path / "a", fake)
    b = build(tmp_path / "b", fake)
    assert a.version == b.version
    assert (a.root / "build.json").read_text() == (b.root / "build.json").read_text()
    c = build(tmp_path / "c", fake, relay="https://relay.example/api/cloud")
    assert c.version != a.version
    boot = json.loads((c.root / "boot.json").read_text())
    assert boot["cloud_config"] == "https://relay.example/api/cloud/config"
    assert boot["cloud_base_url"] == "https://relay.example/api/cloud"
    assert "connect-src 'self' https://relay.example;" in (c.root / "index.html").read_text()
    assert json.loads((c.root / "config.json").read_text())["mode"] == "cloud-relay"


def test_relay_urls() -> None:
    assert relay_urls(None) == (None, None)
    assert relay_urls("/api/cloud/") == ("/api/cloud/config", "/api/cloud")
    assert (
        relay_origin("/api/cloud") is None
        and relay_origin("https://r.example:8443/x") == "https://r.example:8443"
    )
    with pytest.raises(BuildError, match="not a URL"):
        relay_urls("ftp://relay.example/api")


def test_it_replaces_its_own_sites_only_and_never_writes_through(
    tmp_path: Path, fake: dict[str, Any]
) -> None:
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_text("precious")
    with pytest.raises(BuildError, match="not a site built here"):
        build(other, fake)
    assert (other / "holiday.jpg").read_text() == "precious"
    source = fake["model_dir"] / "onnx" / "model.onnx"
    before = source.read_text()
    first = build(tmp_path / "site", fake)
    again = build(tmp_path / "site", fake, relay="/api/cloud")  # replaces the site built there
    assert (
        again.root == first.root
        and json.loads((again.root / "config.json").read_text())["relay"] == "/api/cloud"
    )
    assert source.read_text() == before
    boot = json.loads((again.root / "boot.json").read_text())
    linked = again.root / boot["models_url"] / MODEL / "onnx" / "model.onnx"
    assert linked.stat().st_ino == source.stat().st_ino  # a hard link on this file system: no copy


def test_split_file_writes_parts_that_join_into_the_file(tmp_path: Path) -> None:
    src = tmp_path / "model.onnx"
    src.write_bytes(bytes(range(256)) * 40)  # 10240 bytes
    parts = split_file(src, tmp_path / "out" / "model.onnx", 3000)
    assert [(p.name, n) for p, n, _ in parts] == [
        ("model.onnx.part0", 3000),
        ("model.onnx.part1", 3000),
        ("model.onnx.part2", 3000),
        ("model.onnx.part3", 1240),
    ]
    assert b"".join(p.read_bytes() for p, _, _ in parts) == src.read_bytes()
    assert all(sha(p) == digest for p, _, digest in parts)
    assert not (tmp_path / "out" / "model.onnx").exists()


def test_model_files_over_the_part_size_are_written_in_parts_the_manifest_lists(
    tmp_path: Path, fake: dict[str, Any]
) -> None:
    model_dir = fake["model_dir"]
    big = model_dir / "onnx" / "model.onnx"
    big.write_bytes(bytes(range(256)) * 10)  # 2560 bytes, over a part size of 1000
    _, dtypes, files = fake["built"][MODEL]
    files["onnx/model.onnx"] = FileInfo(2560, sha(big))
    site = build(tmp_path / "site", fake, part_bytes=1000)
    root = site.root
    manifest = json.loads((root / "models_manifest.json").read_text())
    info = manifest["models"][0]["variants"]["fp32"]["files"]["onnx/model.onnx"]
    assert info["size"] == 2560 and info["sha256"] == sha(big)
    assert [(p["path"], p["size"]) for p in info["parts"]] == [
        ("onnx/model.onnx.part0", 1000),
        ("onnx/model.onnx.part1", 1000),
        ("onnx/model.onnx.part2", 560),
    ]
    models = json.loads((root / "boot.json").read_text())["models_url"]
    folder = root / models / MODEL
    assert not (folder / "onnx" / "model.onnx").exists()  # only its parts are served
    assert b"".join((folder / p["path"]).read_bytes() for p in info["parts"]) == big.read_bytes()
    assert all(sha(folder / p["path"]) == p["sha256"] for p in info["parts"])
    assert "parts" not in manifest["models"][0]["files"]["config.json"]  # small files stay whole
    listed = {f["path"] for f in json.loads((root / "build.json").read_text())["files"]}
    assert {f"{models}{MODEL}/{p['path']}" for p in info["parts"]} <= listed
    Manifest.from_dict(manifest)  # what the worker reads
    # another part size is another layout: another immutable models URL
    other = build(tmp_path / "other", fake, part_bytes=2000).root
    assert json.loads((other / "boot.json").read_text())["models_url"] != models


def test_a_runtime_wasm_over_the_hosts_limit_is_written_in_parts_boot_json_lists(
    tmp_path: Path, fake: dict[str, Any]
) -> None:
    folder = Path(fake["assets"]["mounts"]["/vendor/ort/1.31.0-dev-k3/"])
    wasm = folder / "ort-wasm-simd-threaded.asyncify.wasm"
    wasm.write_bytes(b"\0asm" + bytes(HOST_FILE_LIMIT))  # just over the limit
    site = build(tmp_path / "site", fake)
    assert max(f.size for f in site.files) <= HOST_FILE_LIMIT
    assert max(p.stat().st_size for p in site.root.rglob("*") if p.is_file()) <= HOST_FILE_LIMIT
    boot = json.loads((site.root / "boot.json").read_text())
    asyncify = boot["ort"]["builds"]["asyncify"]
    parts = asyncify["wasm_parts"]
    assert [p["size"] for p in parts] == [PART_BYTES, HOST_FILE_LIMIT + 4 - PART_BYTES]
    assert b"".join((site.root / p["url"]).read_bytes() for p in parts) == wasm.read_bytes()
    assert all(sha(site.root / p["url"]) == p["sha256"] for p in parts)
    assert (
        "wasm_parts" not in boot["ort"]["builds"]["plain"]
        and "wasm_parts" not in boot["ort"]["builds"]["jspi"]
    )
    # the service worker caches the parts on first use: not precached
    sw = (site.root / "sw.js").read_text()
    build_info = json.loads(sw[sw.index("{") : sw.index("};\n") + 1])
    precached = {e["url"] for e in build_info["precache"]}
    assert not {p["url"] for p in parts} & precached
    assert {p["url"] for p in parts} <= set(build_info["on_demand"])


def test_the_parts_of_a_built_model_are_kept_and_linked_into_the_next_site(tmp_path: Path) -> None:
    from builder.site import _split_cached

    src = tmp_path / "model.onnx"
    src.write_bytes(bytes(range(256)) * 8)  # 2048 bytes
    first = _split_cached(src, sha(src), tmp_path / "a" / "model.onnx", 1000, tmp_path / "parts")
    again = _split_cached(src, sha(src), tmp_path / "b" / "model.onnx", 1000, tmp_path / "parts")
    assert [(p.name, n, h) for p, n, h in first] == [(p.name, n, h) for p, n, h in again]
    assert [n for _, n, _ in again] == [1000, 1000, 48]
    assert all(a.stat().st_ino == b.stat().st_ino for (a, _, _), (b, _, _) in zip(first, again, strict=True))
    assert b"".join(p.read_bytes() for p, _, _ in again) == src.read_bytes()


def test_two_builds_splitting_one_file_at_once_keep_the_first_ones_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two site builds (two test workers) split the same model at once: the second to finish keeps the
    first one's folder, which the first is linking its site's parts from, instead of removing it."""
    import builder.site as site

    src = tmp_path / "model.onnx"
    src.write_bytes(bytes(range(256)) * 8)
    real_split = site.split_file
    linked: list[tuple[Path, int, str]] = []
    other: list[bool] = []

    def split_while_another_build_finishes(s: Path, dest: Path, part_bytes: int) -> Any:
        if not other:  # the other build: splits, publishes the folder and links from it first
            other.append(True)
            linked.extend(
                site._split_cached(s, sha(s), tmp_path / "a" / "model.onnx", 1000, tmp_path / "parts")
            )
        return real_split(s, dest, part_bytes)

    monkeypatch.setattr(site, "split_file", split_while_another_build_finishes)
    mine = site._split_cached(src, sha(src), tmp_path / "b" / "model.onnx", 1000, tmp_path / "parts")
    assert [(p.name, n, h) for p, n, h in mine] == [(p.name, n, h) for p, n, h in linked]
    # both sites link the one folder that stayed, and nothing of the dropped one is left
    assert all(a.stat().st_ino == b.stat().st_ino for (a, _, _), (b, _, _) in zip(linked, mine, strict=True))
    assert [f.name for f in (tmp_path / "parts").iterdir()] == [f"{sha(src)}-1000"]
