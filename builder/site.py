"""The static site: one folder any static file host serves as it is (no serve.py, no special headers).

    python -m builder site DIR [--relay URL] [--models ID ...] [--dtypes DTYPE ... | all]
                               [--part-bytes N]         (./hr build --site DIR builds first)

By default the site holds every built model in the dtype the default policy loads (the manifest's
``default_dtype``); ``--models``/``--dtypes`` choose others (``--dtypes all``: every built dtype). It says
the site's size, each file over :data:`HOST_FILE_LIMIT` (hosts such as Cloudflare Pages refuse them) and,
as warnings, each model and dtype of the manifest left out and why (not built yet, not the default dtype,
or not chosen by ``--models``/``--dtypes``).

No file of the site is larger than :data:`HOST_FILE_LIMIT`: a model file larger than ``--part-bytes``
(:data:`PART_BYTES` by default) is written as parts ``<file>.part0``, ``.part1``, ... that the site's
models manifest lists with their sizes and sha256 (the model cache fetches them, joins them and checks
each part and the whole); a runtime file over the limit (ONNX Runtime's asyncify build, 25.6 MiB, which
only a device with WebGPU and without JS Promise Integration loads) is split the same way, and boot.json
lists its parts (py-bridge.js joins them into ONNX Runtime's ``wasmBinary``).

Layout of ``DIR``::

    index.html, app.js, *.js, style.css   the page, the client and the worker (stable names, revalidated)
    manifest.webmanifest, icons/          the web app manifest and its icons (installable PWA)
    sw.js                                 the service worker: Workbox precaching of everything but models
    config.json                           what the page is told: version, relay URL or local-only
    boot.json                             what the worker boots from (URLs relative to boot.json)
    models_manifest.json                  the models of this site, with the sizes and sha256 of its files
    build.json                            every file of the site: size, sha256, immutable or not
    _headers                              the same headers for hosts that read such a file (Netlify,
                                          Cloudflare Pages): CSP, COOP/COEP, caching
    assets/<name>-<version>-<hash>/       the runtime: Pyodide + wheels, Transformers.js, ONNX Runtime,
                                          our wheels, Workbox; <hash> is of the folder's content, so
                                          these URLs are immutable (cache them for a year)
    models-<hash>/<model id>/<file>       the model files (the cache checks each against the manifest),
                                          a large one as <file>.part0, .part1, ... (see above)

The page carries its Content-Security-Policy in a ``<meta>`` (a host without header support still
enforces it); ``_headers`` has it as a header too. Model files are hard links into the build cache where
the file system allows (no copy of hundreds of MB), copies otherwise; the folder is written next to
``DIR`` and moved into place at the end, so existing files (and the cache behind a hard link) are never
written through.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hybrid_router.manifest import FileInfo, Manifest, PartInfo

from . import pins
from .common import REPO, BuildError, atomic_dir, cache_root, log, sha256_file

WEB = REPO / "web"
#: files of web/ that are not part of the site
WEB_EXCLUDED = frozenset({"sw.js"})
#: where index.html takes the site's Content-Security-Policy
CSP_MARKER = "<!-- site:csp -->"
#: the file that marks a folder as one of ours (the build refuses to replace any other folder)
BUILD_FILE = "build.json"
#: the largest file some static hosts take (Cloudflare Pages: 25 MiB); larger ones are named
HOST_FILE_LIMIT = 25 * 2**20
#: model and runtime files larger than this are written in parts of this size (the last one shorter)
PART_BYTES = 24 * 2**20
#: ``--dtypes all``: every built dtype of each model
ALL_DTYPES = "all"
#: files the service worker leaves to the network (models live in IndexedDB; these describe the site)
NOT_PRECACHED = frozenset({"sw.js", "_headers", BUILD_FILE})


@dataclass(frozen=True)
class SiteFile:
    path: str  # relative to the site, "/"-separated
    size: int
    sha256: str
    immutable: bool


@dataclass
class Site:
    """What was written: the folder, its version and every file."""

    root: Path
    version: str
    relay: str | None
    files: list[SiteFile] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "relay": self.relay,
            "files": [
                {"path": f.path, "size": f.size, "sha256": f.sha256, "immutable": f.immutable}
                for f in sorted(self.files, key=lambda f: f.path)
            ],
        }


def content_hash(entries: Mapping[str, str]) -> str:
    """A short hash of a folder's content: its files' names and sha256."""
    h = hashlib.sha256()
    for name in sorted(entries):
        h.update(f"{name}\0{entries[name]}\n".encode())
    return h.hexdigest()[:12]


def split_file(src: Path, dest: Path, part_bytes: int) -> list[tuple[Path, int, str]]:
    """``src`` written as ``dest.part0``, ``dest.part1``, ... of ``part_bytes`` each (the last one shorter):
    ``(part file, size, sha256)`` in order. The parts are new files (a slice cannot be a hard link)."""
    if part_bytes <= 0:
        raise BuildError(f"--part-bytes {part_bytes}: must be positive", hint=f"e.g. {PART_BYTES}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    out: list[tuple[Path, int, str]] = []
    with src.open("rb") as f:
        while piece := f.read(part_bytes):
            part = dest.with_name(f"{dest.name}.part{len(out)}")
            part.write_bytes(piece)
            out.append((part, len(piece), hashlib.sha256(piece).hexdigest()))
    return out


def _split_cached(
    src: Path, sha256: str, dest: Path, part_bytes: int, cache: Path | None
) -> list[tuple[Path, int, str]]:
    """:func:`split_file`, through ``cache`` (``<cache>/<sha256>-<part_bytes>/``) where given: the parts
    of a file are written once and hard-linked into every site built after (no copy, no hashing)."""
    if cache is None:
        return split_file(src, dest, part_bytes)
    folder = cache / f"{sha256}-{part_bytes}"
    index = folder / "parts.json"
    if not index.is_file():  # another build splitting the same file at once keeps its folder (same bytes)
        with atomic_dir(folder, keep_existing=True) as tmp:
            made = split_file(src, tmp / "file", part_bytes)
            (tmp / "parts.json").write_text(json.dumps([[p.name, n, h] for p, n, h in made]))
    out = []
    for name, size, digest in json.loads(index.read_text()):
        part = dest.with_name(dest.name + name.removeprefix("file"))
        _place(folder / name, part)
        out.append((part, size, digest))
    return out


def _place(src: Path, dest: Path) -> None:
    """``dest`` with ``src``'s bytes: a hard link where possible (the site never writes into its files)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def relay_urls(relay: str | None) -> tuple[str | None, str | None]:
    """(the relay's config URL, its base URL) as boot.json holds them; (None, None) for local-only.

    ``relay`` is the relay's mount (``https://relay.example/api/cloud``, or ``/api/cloud`` behind the same
    origin): the router reads ``<relay>/config`` and posts to ``<relay>/<endpoint>``."""
    if not relay:
        return None, None
    parts = urlsplit(relay)
    if parts.scheme not in ("", "http", "https") or (parts.scheme and not parts.netloc) or parts.query:
        raise BuildError(
            f"--relay {relay!r}: not a URL", hint="e.g. --relay https://relay.example.com/api/cloud"
        )
    base = relay.rstrip("/")
    return base + "/config", base


def relay_origin(relay: str | None) -> str | None:
    """The relay's origin when it is on another one (the page's connect-src must name it)."""
    parts = urlsplit(relay or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def site_manifest(
    raw: dict[str, Any], built: Mapping[str, tuple[Sequence[str], Mapping[str, FileInfo]]]
) -> dict[str, Any]:
    """The models manifest of a site: only ``built`` models, each with the files as this build made them
    (trained weights differ by machine: the cache checks what it downloads against what is served)."""
    from .models import split_variants

    out = dict(raw)
    out["models"] = []
    for entry in raw["models"]:
        if entry["id"] not in built:
            continue
        dtypes, files = built[entry["id"]]
        common, own = split_variants(files, dtypes)
        variants = {d: {**entry.get("variants", {}).get(d, {}), "files": own[d]} for d in dtypes}
        default = entry.get("default_dtype")
        site_entry = {**entry, "files": common, "variants": variants}
        if default not in variants:  # its default dtype was left out: the first one kept stands in
            site_entry["default_dtype"] = dtypes[0]
        out["models"].append(site_entry)
    Manifest.from_dict(out)  # the worker must be able to read it
    return out


def _built_models(ids: Sequence[str] | None) -> dict[str, tuple[Path, list[str], dict[str, FileInfo]]]:
    """model id -> (built folder, dtypes, files as stamped by the model build)."""
    from .models import read_index

    index = read_index()
    missing = [i for i in ids or () if i not in index]
    if missing:
        raise BuildError(
            f"not built: {', '.join(missing)}", hint="run ./hr build first (it builds the models)"
        )
    out = {}
    for mid in ids or list(index):
        folder = Path(index[mid]["dir"])
        stamp = json.loads(folder.with_name(folder.name + ".stamp.json").read_text())
        files = {p: FileInfo(f["size"], f["sha256"]) for p, f in stamp["files"].items()}
        out[mid] = (folder, list(index[mid]["dtypes"]), files)
    return out


Built = Mapping[str, tuple[Path, list[str], dict[str, FileInfo]]]


def select(
    raw: Mapping[str, Any],
    built: Built,
    *,
    models: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
) -> tuple[dict[str, tuple[Path, list[str], dict[str, FileInfo]]], list[str]]:
    """What of ``built`` goes on the site, and a line for each model or dtype of the manifest ``raw`` that
    is left out, saying why. ``models``: only these (None: every built one); ``dtypes``: only these
    (``["all"]``: every built one; None: the one the default policy loads, the manifest's
    ``default_dtype``, or the first built one where that is not built)."""
    from .models import dtype_of

    kept: dict[str, tuple[Path, list[str], dict[str, FileInfo]]] = {}
    left: list[str] = []
    for entry in raw["models"]:
        mid = entry["id"]
        if models is not None and mid not in models:
            left.append(f"{mid}: not in the chosen set (--models)")
            continue
        if mid not in built:
            left.append(f"{mid}: not built yet (./hr build builds it)")
            continue
        folder, have, files = built[mid]
        left += [
            f"{mid} {d}: not built yet (./hr build builds it)"
            for d in entry.get("variants", {})
            if d not in have
        ]
        if dtypes is None:
            default = entry.get("default_dtype")
            chosen = [default if default in have else have[0]] if have else []
            why = "not the default policy's dtype (--dtypes all keeps every built one)"
            if have and default not in have:
                left.append(f"{mid} {default} (its default): not built yet, {have[0]} stands in")
        else:
            chosen = [d for d in have if ALL_DTYPES in dtypes or d in dtypes]
            why = "not in the chosen set (--dtypes)"
        left += [f"{mid} {d}: {why}" for d in have if d not in chosen]
        if not chosen:
            left.append(
                f"{mid}: none of its built dtypes ({', '.join(have)}) is in the chosen set (--dtypes)"
            )
            continue
        own = {p: f for p, f in files.items() if dtype_of(p, have) in (None, *chosen)}
        kept[mid] = (folder, chosen, own)
    return kept, left


class _Writer:
    """Writes the site's files into ``root`` and records each one."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, SiteFile] = {}

    def add(self, rel: str, src: Path, *, immutable: bool, sha256: str | None = None) -> None:
        _place(src, self.root / rel)
        self.files[rel] = SiteFile(rel, src.stat().st_size, sha256 or sha256_file(src), immutable)

    def text(self, rel: str, text: str, *, immutable: bool = False) -> None:
        dest = self.root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode("utf-8")
        dest.write_bytes(data)
        self.files[rel] = SiteFile(rel, len(data), hashlib.sha256(data).hexdigest(), immutable)

    def json(self, rel: str, data: Any) -> None:
        self.text(rel, json.dumps(data, indent=2) + "\n")


def _copy_runtime(w: _Writer, name: str, folder: Path, split: dict[str, list[dict[str, Any]]]) -> str:
    """Copy a runtime folder to ``assets/<name>-<content hash>/``; return that URL (relative, ends in /).

    A WebAssembly file over :data:`HOST_FILE_LIMIT` is written in parts: ``split[its URL]`` lists them."""
    files = {
        p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")
    }
    url = f"assets/{name}-{content_hash(files)}/"
    for fname, digest in files.items():
        src = folder / fname
        if fname.endswith(".wasm") and src.stat().st_size > HOST_FILE_LIMIT:
            split[url + fname] = []
            for part, size, sha in split_file(src, w.root / url / fname, PART_BYTES):
                rel = url + part.name
                w.files[rel] = SiteFile(rel, size, sha, True)
                split[url + fname].append({"url": rel, "size": size, "sha256": sha})
            continue
        w.add(url + fname, src, immutable=True, sha256=digest)
    return url


def _runtime(w: _Writer, assets: dict[str, Any]) -> dict[str, Any]:
    """The runtime files into assets/, and boot.json's runtime part with their new URLs."""
    boot = assets["boot"]
    mounts = {url: Path(path) for url, path in assets["mounts"].items()}
    moved: dict[str, str] = {}
    split: dict[str, list[dict[str, Any]]] = {}
    for url, folder in mounts.items():
        # /vendor/pyodide/0.27.7-<key>/ -> pyodide-0.27.7; /vendor/wheels/<key>/ -> wheels; /app/<key>/ -> app
        parts = url.strip("/").split("/")
        name = parts[1] if parts[0] == "vendor" else "app"
        if parts[0] == "vendor" and "-" in parts[2]:
            name += "-" + parts[2].split("-")[0]
        moved[url] = _copy_runtime(w, name, folder, split)

    def at(url: str) -> str:
        for old, new in moved.items():
            if url.startswith(old):
                return new + url[len(old) :]
        raise BuildError(
            f"{url}: not in any built folder", hint="rebuild the assets: ./hr python -m builder assets"
        )

    def build(files: Mapping[str, str]) -> dict[str, Any]:
        # a wasm in parts: boot.json lists them (py-bridge.js joins them into ONNX Runtime's wasmBinary)
        out: dict[str, Any] = {k: at(u) for k, u in files.items()}
        if out.get("wasm") in split:
            out["wasm_parts"] = split[out["wasm"]]
        return out

    ort = boot["ort"]
    if at(ort["wasm"]) in split:
        raise BuildError(
            f"{ort['wasm']}: ONNX Runtime's default build is over {HOST_FILE_LIMIT >> 20} MiB",
            hint="every device loads the default build whole: choose a smaller one in builder/pins.py",
        )
    return {
        "pyodide": {**boot["pyodide"], "index_url": at(boot["pyodide"]["index_url"])},
        "transformers": {**boot["transformers"], "url": at(boot["transformers"]["url"])},
        "ort": {
            **ort,
            "mjs": at(ort["mjs"]),
            "wasm": at(ort["wasm"]),
            "builds": {n: build(b) for n, b in ort.get("builds", {}).items()},
        },
        "wheels": [at(u) for u in boot["wheels"]],
        "workbox": [at(u) for u in assets["workbox"]],
        **({"markdown": {k: at(u) for k, u in boot["markdown"].items()}} if "markdown" in boot else {}),
    }


def _models(
    w: _Writer, built: Built, part_bytes: int, part_cache: Path | None = None
) -> tuple[str, dict[str, dict[str, FileInfo]]]:
    """The model files into ``models-<hash>/`` (those over ``part_bytes`` in parts, kept in ``part_cache``);
    returns that URL and each model's files as the site serves them (with their parts), for the site's
    models manifest."""

    def parted(f: FileInfo) -> bool:
        return f.size > part_bytes

    entries = {
        f"{mid}/{p}": f"{f.sha256} {part_bytes if parted(f) else 0}"  # the layout is part of the content
        for mid, (_, _, files) in built.items()
        for p, f in files.items()
    }
    base = f"models-{content_hash(entries)}/"
    served: dict[str, dict[str, FileInfo]] = {}
    for mid, (folder, _, files) in built.items():
        served[mid] = {}
        for rel, info in files.items():
            if not parted(info):
                w.files[base + f"{mid}/{rel}"] = SiteFile(base + f"{mid}/{rel}", info.size, info.sha256, True)
                _place(folder / rel, w.root / base / mid / rel)
                served[mid][rel] = info
                continue
            parts = []
            dest = w.root / base / mid / rel
            for part, size, sha in _split_cached(folder / rel, info.sha256, dest, part_bytes, part_cache):
                path = f"{rel.rpartition('/')[0]}/{part.name}".lstrip("/")
                w.files[base + f"{mid}/{path}"] = SiteFile(base + f"{mid}/{path}", size, sha, True)
                parts.append(PartInfo(path, size, sha))
            served[mid][rel] = FileInfo(info.size, info.sha256, tuple(parts))
    return base, served


def headers_file(csp: str, *, isolation: bool, models_url: str) -> str:
    """``_headers`` (Netlify / Cloudflare Pages syntax): the policy and the caching of the site.

    The models' rule names their folder (``/models-<hash>/*``): a bare ``/models-*`` would also match
    ``/models-panel.js``, a file of the page that must be revalidated, not cached for a year."""
    common = [
        f"Content-Security-Policy: {csp}",
        "X-Content-Type-Options: nosniff",
        "Referrer-Policy: no-referrer",
        "Cross-Origin-Resource-Policy: same-origin",
    ]
    if isolation:
        common += ["Cross-Origin-Opener-Policy: same-origin", "Cross-Origin-Embedder-Policy: require-corp"]
    lines = [
        "/*",
        *(f"  {h}" for h in common),
        "  Cache-Control: no-cache",
        "",
        "/assets/*",
        "  Cache-Control: public, max-age=31536000, immutable",
        "",
        f"/{models_url}*",
        "  Cache-Control: public, max-age=31536000, immutable",
        "",
    ]
    return "\n".join(lines)


def _on_demand(ort: Mapping[str, Any]) -> list[str]:
    """The ONNX Runtime builds only a device with WebGPU loads (asyncify, jspi): not precached (every
    device would download them), but cached by the service worker the first time they are used (a wasm
    in parts: its parts, the files the site has)."""
    default = {ort["mjs"], ort["wasm"]}
    urls = set()
    for b in ort.get("builds", {}).values():
        urls |= (
            {b["mjs"], *(p["url"] for p in b["wasm_parts"])} if "wasm_parts" in b else {b["mjs"], b["wasm"]}
        )
    return sorted(urls - default)


def _service_worker(
    runtime: dict[str, Any],
    precache: list[dict[str, Any]],
    version: str,
    relay_config: str | None,
    on_demand: Sequence[str] = (),
) -> str:
    build = {
        "version": version,
        "workbox": runtime["workbox"],
        "precache": precache,
        "on_demand": list(on_demand),
        "relay_config": relay_config,
    }
    template = (WEB / "sw.js").read_text(encoding="utf-8")
    return f"self.__HYBRID_ROUTER_BUILD = {json.dumps(build, indent=1)};\n{template}"


def build_site(
    out: Path,
    *,
    relay: str | None = None,
    models: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    isolation_headers: bool = True,
    part_bytes: int = PART_BYTES,
    assets: dict[str, Any] | None = None,
    built: Built | None = None,
    raw_manifest: dict[str, Any] | None = None,
) -> Site:
    """Write the static site into ``out`` (replacing a site built there before; refusing any other folder).

    ``models``/``dtypes``: only these (default: every built model in its default dtype, see
    :func:`select`); what is left out is logged as warnings. ``part_bytes``: model files larger than this
    are written in parts (:data:`PART_BYTES`, under the hosts' :data:`HOST_FILE_LIMIT`).
    ``assets`` (site.json's content), ``built`` (model id -> folder, dtypes, files) and ``raw_manifest``
    default to the build cache's and the repository's; the tests pass their own."""
    import site_headers

    from .assets import build_assets

    out = out.resolve()
    if out.exists() and any(out.iterdir()) and not (out / BUILD_FILE).is_file():
        raise BuildError(
            f"{out} exists and is not a site built here (no {BUILD_FILE})", hint="give an empty or new folder"
        )
    assets = assets if assets is not None else build_assets()
    if raw_manifest is None:
        raw_manifest = json.loads((REPO / "models_manifest.json").read_text(encoding="utf-8"))
    # the build cache's models: their parts are kept in the cache too (tests pass their own files)
    part_cache = cache_root() / "site-parts" if built is None else None
    built, left_out = select(
        raw_manifest, built if built is not None else _built_models(models), models=models, dtypes=dtypes
    )
    if not built:
        raise BuildError(
            "no models are built" + (" of the chosen ones" if models or dtypes else ""),
            hint="run ./hr build first"
            + (", or choose others (--models, --dtypes)" if models or dtypes else ""),
        )
    config_url, base_url = relay_urls(relay)
    with atomic_dir(out) as tmp:
        tmp.chmod(0o755)
        w = _Writer(tmp)
        runtime = _runtime(w, assets)
        models_url, served = _models(w, built, part_bytes, part_cache)
        csp = site_headers.content_security_policy(
            connect=[o for o in [relay_origin(relay)] if o], frame_ancestors=None
        )
        for path in sorted(WEB.rglob("*")):
            rel = path.relative_to(WEB).as_posix()
            if not path.is_file() or rel in WEB_EXCLUDED or "__pycache__" in rel:
                continue
            if rel.endswith(".html"):
                page = path.read_text(encoding="utf-8")
                meta = f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
                w.text(rel, page.replace(CSP_MARKER, meta) if CSP_MARKER in page else page)
            else:
                w.add(rel, path, immutable=False)
        boot = {
            **{k: v for k, v in runtime.items() if k != "workbox"},
            "models_manifest": "models_manifest.json",
            "models_url": models_url,
            "cloud_config": config_url,
        }
        if base_url:
            boot["cloud_base_url"] = base_url
        w.json("boot.json", boot)
        w.json(
            "models_manifest.json",
            site_manifest(raw_manifest, {m: (d, served[m]) for m, (_, d, _) in built.items()}),
        )
        w.text("_headers", headers_file(csp, isolation=isolation_headers, models_url=models_url))
        # the version: everything the page and the worker run, less config.json (which names it)
        shell = {
            f.path: f.sha256
            for f in w.files.values()
            if f.path not in NOT_PRECACHED and not f.path.startswith(models_url)
        }
        version = content_hash(shell)
        w.json(
            "config.json",
            {
                "version": version,
                "relay": relay or None,
                "mode": "cloud-relay" if relay else "local-only",
                "service_worker": "sw.js",
                "workbox": pins.WORKBOX_VERSION,
            },
        )
        on_demand = _on_demand(runtime["ort"])
        precache = [
            {"url": f.path, "revision": None if f.immutable else f.sha256[:16]}
            for f in sorted(w.files.values(), key=lambda f: f.path)
            if f.path not in NOT_PRECACHED and f.path not in on_demand and not f.path.startswith(models_url)
        ]
        w.text("sw.js", _service_worker(runtime, precache, version, config_url, on_demand))
        site = Site(out, version, relay or None, list(w.files.values()))
        w.json(BUILD_FILE, site.to_dict())
    log(summary(site, left_out))
    return site


def summary(site: Site, left_out: Sequence[str]) -> str:
    """What ``python -m builder site`` says of the site it wrote: its size, the files too large for hosts
    with a per-file limit, what was left out and why."""
    total = sum(f.size for f in site.files)
    lines = [
        f"static site {site.version} in {site.root}: {len(site.files)} files, {total / 1e6:.1f} MB "
        f"({'relay ' + site.relay if site.relay else 'local-only'})"
    ]
    large = sorted((f for f in site.files if f.size > HOST_FILE_LIMIT), key=lambda f: -f.size)
    if large:
        lines.append(
            f"  {len(large)} files over {HOST_FILE_LIMIT >> 20} MiB (a host with a per-file limit, such as "
            "Cloudflare Pages, refuses them):"
        )
        lines += [f"    {f.path} ({f.size / 2**20:.1f} MiB)" for f in large]
    lines += [f"  warning: left out: {line}" for line in left_out]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m builder site", description=__doc__.split("\n")[0])
    parser.add_argument(
        "dir", type=Path, help="the folder to write (replaced if it holds a site built before)"
    )
    parser.add_argument(
        "--relay",
        default=None,
        metavar="URL",
        help="the cloud relay's URL (e.g. https://relay.example.com/api/cloud, or /api/cloud on "
        "the same origin); without it the site runs local-only",
    )
    parser.add_argument(
        "--models", nargs="*", default=None, help="only these model ids (default: every built one)"
    )
    parser.add_argument(
        "--dtypes",
        nargs="*",
        default=None,
        metavar="DTYPE",
        help="only these dtypes of each model, e.g. q8, or 'all' (default: the one the default policy loads, "
        "each model's default_dtype); a model with none of them is left out, one whose default dtype is "
        "left out gets the first one kept as its default",
    )
    parser.add_argument(
        "--part-bytes",
        type=int,
        default=PART_BYTES,
        metavar="N",
        help=f"write model files larger than N bytes in parts of N bytes (default {PART_BYTES}, "
        f"{PART_BYTES >> 20} MiB: hosts such as Cloudflare Pages take files up to "
        f"{HOST_FILE_LIMIT >> 20} MiB)",
    )
    parser.add_argument(
        "--no-isolation-headers",
        action="store_true",
        help="leave COOP/COEP out of _headers (for hosts whose other pages must not be isolated)",
    )
    args = parser.parse_args(argv)
    try:
        build_site(
            args.dir,
            relay=args.relay,
            models=args.models,
            dtypes=args.dtypes,
            isolation_headers=not args.no_isolation_headers,
            part_bytes=args.part_bytes,
        )
    except BuildError as exc:
        print(f"\nbuild failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
