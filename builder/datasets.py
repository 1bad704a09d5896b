"""The dataset files the task models train on: found in a data folder, or fetched from their pinned sources.

``builder/datasets.tsv`` records each file as ``../shared/data/MANIFEST.tsv`` does: its path in the data
folder, size, sha256, the public GitHub repository and commit it comes from, its path there, its licence.
Each file a manifest entry's ``conversion.train.files`` names is looked for, in this order:

1. the data folder: ``$HYBRID_ROUTER_DATA``, else ``../shared/data`` next to the repository (our machines
   and CI have it; a user's machine does not);
2. ``$CACHE/datasets/<path>``, fetched by an earlier build;
3. fetched now from ``<mirror>/<repository>/<commit>/<source path>``, the mirror being
   ``$HYBRID_ROUTER_DATA_MIRROR`` or ``https://raw.githubusercontent.com``.

Every file is checked against the manifest's sha256 before it is used. A download goes to
``<file>.part``; an interrupted one continues with a ``Range`` request (a server that answers 200
instead starts it again), and only a complete file with the pinned sha256 takes the file's name.

Errors, by what the caller does next:

- :class:`MissingData` (a :class:`~builder.common.SkipBuild`): the file is in no folder and cannot be
  fetched (the source is unreachable, answers 404, or the file has no public copy): the model waits,
  "blocked", until someone provides the data or the network; its hint says how;
- :class:`~builder.common.BuildError`: a file's bytes are not the pinned ones (a data folder's copy or a
  download): the model's build stops; do not use that file.
"""

from __future__ import annotations

import csv
import http.client
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import REPO, BuildError, SkipBuild, cache_root, log, sha256_file
from .progress import report

__all__ = [
    "DEFAULT_MIRROR",
    "REGISTRY",
    "DatasetFile",
    "MissingData",
    "data_folder",
    "fetch",
    "mirror",
    "registry",
    "resolve",
]

REGISTRY = Path(__file__).with_name("datasets.tsv")
DEFAULT_MIRROR = "https://raw.githubusercontent.com"
#: seconds to wait for a connection or for the next bytes of a response
TIMEOUT_S = 30.0
ATTEMPTS = 3
STEP = "downloading data"
NEEDS_DATA_HINT = (
    "set HYBRID_ROUTER_DATA to a folder with a copy of the datasets (builder/datasets.tsv lists the files "
    "and their sha256), or allow this machine to reach {host}; then run ./hr run again"
)


class MissingData(SkipBuild):
    """A training file is in no data folder and cannot be fetched: the task model cannot be trained here."""


@dataclass(frozen=True)
class DatasetFile:
    """One row of ``builder/datasets.tsv``."""

    path: str
    size: int
    sha256: str
    repository: str
    commit: str
    source_path: str
    licence: str

    @property
    def fetchable(self) -> bool:
        """Whether the file has a public copy at a pinned URL (a derived file has none)."""
        return self.repository != "derived" and self.commit not in ("", "-")

    def url(self, base: str) -> str:
        return f"{base.rstrip('/')}/{self.repository}/{self.commit}/{self.source_path}"


def registry(path: Path | None = None) -> dict[str, DatasetFile]:
    """The recorded dataset files (``builder/datasets.tsv``) by their path in the data folder."""
    with open(path or REGISTRY, encoding="utf-8", newline="") as f:
        rows = csv.DictReader((line for line in f if not line.startswith("#")), delimiter="\t")
        return {
            r["path"]: DatasetFile(
                r["path"],
                int(r["bytes"]),
                r["sha256"],
                r["repository"],
                r["commit"],
                r["source_path"],
                r["licence"],
            )
            for r in rows
        }


def data_folder() -> Path | None:
    """``$HYBRID_ROUTER_DATA``, else ``../shared/data`` next to the repository; None when neither exists."""
    explicit = os.environ.get("HYBRID_ROUTER_DATA")
    path = Path(explicit) if explicit else REPO.parent / "shared" / "data"
    return path if path.is_dir() else None


def mirror() -> str:
    return os.environ.get("HYBRID_ROUTER_DATA_MIRROR", "").strip() or DEFAULT_MIRROR


def fetched_dir() -> Path:
    return cache_root() / "datasets"


def _checked(path: Path, sha256: str, *, what: str) -> Path:
    actual = sha256_file(path)
    if actual != sha256:
        raise BuildError(
            f"{what} {path.name}: sha256 {actual}, the manifest pins {sha256}",
            hint="this is not the dataset the model was trained on; use the pinned file "
            "(builder/datasets.tsv lists each file with its source and sha256)",
        )
    return path


def resolve(files: Mapping[str, Mapping[str, Any]], folder: Path | None = None) -> dict[str, Path]:
    """``{role: {"path", "sha256"}}`` -> ``{role: path of a verified copy}``, fetching what is missing.

    ``folder`` defaults to :func:`data_folder`. Raises :class:`MissingData` or BuildError (see above).
    """
    base = folder if folder is not None else data_folder()
    known = registry()
    out: dict[str, Path] = {}
    wanted: list[tuple[str, str, str]] = []  # (role, path, sha256) still to fetch
    for role, spec in files.items():
        rel, sha256 = str(spec["path"]), str(spec["sha256"])
        here = base / rel if base is not None else None
        if here is not None and here.is_file():
            out[role] = _checked(here, sha256, what="the data folder's")
        elif (cached := fetched_dir() / rel).is_file():
            out[role] = _checked(cached, sha256, what="the fetched")
        else:
            wanted.append((role, rel, sha256))
    if wanted:
        entries = [_registered(known, rel, sha256, base) for _, rel, sha256 in wanted]
        total = sum(e.size for e in entries)
        done = 0
        for (role, _, _), entry in zip(wanted, entries, strict=True):
            out[role] = fetch(entry, fetched_dir() / entry.path, offset=done, total=total)
            done += entry.size
    return out


def _where(base: Path | None) -> str:
    if base is not None:
        return f"in the data folder {base}"
    explicit = os.environ.get("HYBRID_ROUTER_DATA")
    if explicit:
        return f"in any data folder (HYBRID_ROUTER_DATA={explicit} is not a folder)"
    return "in any data folder (HYBRID_ROUTER_DATA is unset and ../shared/data is not next to the repository)"


def _registered(known: Mapping[str, DatasetFile], rel: str, sha256: str, base: Path | None) -> DatasetFile:
    where = _where(base)
    entry = known.get(rel)
    if entry is None:
        raise MissingData(
            f"{rel} is not {where}, and builder/datasets.tsv records no source for it",
            hint="set HYBRID_ROUTER_DATA to a folder holding it",
        )
    if entry.sha256 != sha256:  # the manifest wants other bytes than the recorded source has
        raise MissingData(
            f"{rel} (sha256 {sha256}) is not {where}, and builder/datasets.tsv records a source only for "
            f"another version of it (sha256 {entry.sha256})",
            hint="set HYBRID_ROUTER_DATA to a folder holding the file the manifest pins",
        )
    if not entry.fetchable:
        raise MissingData(
            f"{rel} is not {where}, and it has no public copy to fetch (it is {entry.source_path})",
            hint="set HYBRID_ROUTER_DATA to a folder with a copy of the datasets (../shared/data on our "
            "machines; builder/datasets.tsv lists the files and their sha256)",
        )
    return entry


def fetch(entry: DatasetFile, dest: Path, *, offset: int = 0, total: int | None = None) -> Path:
    """Download ``entry`` into ``dest`` (resuming a ``.part`` left by an interrupted try); check its sha256.

    ``offset``/``total``: where this file's bytes fall in a larger download, for the progress reports.
    """
    url = entry.url(mirror())
    host = urllib.parse.urlsplit(url).netloc or url
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    log(f"fetching {entry.path} ({entry.size / 1e6:.1f} MB, {entry.licence}) from {url}")
    report(STEP, entry.path, offset, total or entry.size)
    last: str = "no attempt"
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(0.5 * attempt)
        try:
            _download(url, part, entry, offset, total or entry.size)
        except urllib.error.HTTPError as exc:
            if exc.code in (403, 404, 410):
                raise MissingData(
                    f"{entry.path}: its source answered HTTP {exc.code} ({url})",
                    hint=NEEDS_DATA_HINT.format(host=host),
                ) from exc
            last = f"HTTP {exc.code}"
            continue
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            last = str(getattr(exc, "reason", None) or exc) or type(exc).__name__
            continue
        if part.stat().st_size >= entry.size:
            break
        last = f"the response ended after {part.stat().st_size} of {entry.size} bytes"
    else:
        raise MissingData(
            f"{entry.path}: cannot download it from {host} ({last})", hint=NEEDS_DATA_HINT.format(host=host)
        )
    actual = sha256_file(part)
    if actual != entry.sha256 or part.stat().st_size != entry.size:
        size = part.stat().st_size
        part.unlink()
        raise BuildError(
            f"{entry.path}: the copy downloaded from {url} has sha256 {actual} ({size} bytes); "
            f"pinned: {entry.sha256} ({entry.size} bytes)",
            hint="the source served other bytes than were pinned: they are not used. Set HYBRID_ROUTER_DATA "
            "to a folder with the pinned files (builder/datasets.tsv lists them)",
        )
    part.replace(dest)
    log(f"{entry.path}: sha256 ok")
    return dest


def _download(url: str, part: Path, entry: DatasetFile, offset: int, total: int) -> None:
    """One try: continue ``part`` from its size (``Range``), or start it again when the server says 200."""
    have = part.stat().st_size if part.is_file() else 0
    if have >= entry.size:  # complete but unchecked, or too long: start again rather than trust it
        part.unlink()
        have = 0
    headers = {"User-Agent": "hybrid-router-build"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as resp:
        resumed = resp.status == 206 and str(resp.headers.get("Content-Range", "")).startswith(
            f"bytes {have}-"
        )
        if not resumed:
            have = 0
        with open(part, "ab" if resumed else "wb") as out:
            while chunk := resp.read(1 << 16):
                out.write(chunk)
                have += len(chunk)
                report(STEP, entry.path, offset + have, total)
