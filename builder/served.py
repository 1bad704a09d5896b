"""What the build hands to the server, re-read whenever the build changes it (no restart needed).

- :class:`BuiltModels`: ``$CACHE/models/index.json`` and each built folder's stamp: where every built
  model is, and the files it holds with the sizes and sha256s *of this build*. The served manifest
  (:func:`served_manifest`) describes those files, not the committed manifest's: the committed hashes are
  the record of one reference build, and trained weights differ from machine to machine (a converted
  model's bytes are checked against the committed ones when it is built, so for it both agree).
- :class:`BuildStatus`: ``$CACHE/build/status.json`` (written by :mod:`builder.jobs`) as the page may see
  it: the server's paths taken out, a ``version`` that changes with it, and the jobs of a runner that
  died told as such.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BuildStatus", "BuiltModels", "page_text", "served_manifest"]

#: the fields of a job on the wire (``GET /api/build/status``)
JOB_FIELDS = ("id", "kind", "title", "state", "step", "detail", "progress", "eta_s", "message", "hint")
#: the fields of a ``not_built`` entry of the served manifest
NOT_BUILT_FIELDS = ("id", "tasks", "state", "step", "progress", "eta_s", "message", "hint")
UNFINISHED = ("queued", "running")
NOT_BUILT_HINT = (
    "not built on this server: run ./hr build (the task models train where their datasets are, or can be "
    "fetched; see README)"
)

_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])/[^\s'\"()\[\]{},;]+")


def page_text(text: str | None) -> str | None:
    """``text`` with every absolute path of the server replaced by its file name (the page may know that a
    log is called ``minilm-l6-sst2.log``, not where the server keeps it)."""
    if text is None:
        return None

    def name(match: re.Match[str]) -> str:
        path = match.group(0)
        core = path.rstrip(".:")  # the end of a sentence is not part of the path
        return (Path(core).name or core) + path[len(core) :]

    return _ABSOLUTE_PATH.sub(name, text)


class _Watched:
    """A JSON file read again only when its size or modification time changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int] | None = None
        self._data: Any = None

    def read(self) -> Any:
        try:
            st = self.path.stat()
        except OSError:
            self._seen, self._data = None, None
            return None
        if (st.st_mtime_ns, st.st_size) != self._seen:
            try:
                self._data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):  # written as we read (the build replaces it atomically: rare)
                return self._data
            self._seen = (st.st_mtime_ns, st.st_size)
        return self._data


@dataclass(frozen=True)
class Built:
    """One built model: its folder and its files as built here (``{path: {"size", "sha256"}}``)."""

    dir: Path
    files: Mapping[str, Mapping[str, Any]]


class BuiltModels:
    """The built models of ``index.json``, with their stamps' files, re-read when the build writes it."""

    def __init__(self, index: Path | Mapping[str, Any]) -> None:
        """``index``: the path of ``index.json``, or its content (a fixed set of models, for tests)."""
        self._index = _Watched(index) if isinstance(index, Path) else None
        self._fixed = None if isinstance(index, Path) else dict(index)
        self._stamps: dict[str, _Watched] = {}

    def current(self) -> dict[str, Built]:
        index = (self._index.read() if self._index is not None else self._fixed) or {"models": {}}
        out = {}
        for mid, info in dict(index.get("models", {})).items():
            folder = Path(info["dir"])
            stamp_path = folder.with_name(folder.name + ".stamp.json")
            stamp = self._stamps.setdefault(str(stamp_path), _Watched(stamp_path))
            files = (stamp.read() or {}).get("files")
            out[mid] = Built(folder, files if isinstance(files, dict) else {})
        return out


def _with_built_files(
    entry: Mapping[str, Any], files: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any] | None:
    """``entry`` listing ``files`` (split into shared and per-dtype files); None when they do not fit."""
    from hybrid_router.manifest import FileInfo

    from .common import BuildError
    from .models import split_variants

    dtypes = list(entry["variants"])
    names = set(entry["files"]).union(*(v["files"] for v in entry["variants"].values()))
    if set(files) != names:  # built for another version of the entry: the browser would miss files
        print(
            f"warning: {entry['id']}: the built folder's files are not the manifest's "
            f"({sorted(set(files) ^ names)[:4]} differ); not served (rebuild it: ./hr build)",
            file=sys.stderr,
        )
        return None
    try:
        common, own = split_variants(
            {p: FileInfo(int(f["size"]), str(f["sha256"])) for p, f in files.items()}, dtypes
        )
    except (BuildError, KeyError, TypeError, ValueError) as exc:
        print(
            f"warning: {entry['id']}: its built files do not fit the manifest ({exc}); not served",
            file=sys.stderr,
        )
        return None
    variants = {d: {**entry["variants"][d], "files": own[d]} for d in dtypes}
    return {**entry, "files": common, "variants": variants}


def served_manifest(
    manifest: Mapping[str, Any],
    built: Mapping[str, Mapping[str, Mapping[str, Any]]],
    jobs: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The manifest as the server serves it.

    ``built``: model id -> its files as built here (sizes, sha256). Only those models are listed, with
    those files, so that the router never chooses a model it cannot download and the browser's integrity
    checks compare against the bytes this server has. Every other model is in ``not_built`` with its state
    from ``jobs`` (the build status, by job id): ``{"id", "tasks", "state", "step", "progress", "eta_s",
    "message", "hint"}``.
    """
    jobs = jobs or {}
    models, missing = [], []
    for entry in manifest["models"]:
        files = built.get(entry["id"])
        served = _with_built_files(entry, files) if files else None
        if served is not None:
            models.append(served)
        else:
            missing.append(entry)
    out = {**manifest, "models": models}
    if missing:
        out["not_built"] = [_not_built(e, jobs.get(e["id"])) for e in missing]
    return out


def _not_built(entry: Mapping[str, Any], job: Mapping[str, Any] | None) -> dict[str, Any]:
    base = {"id": entry["id"], "tasks": list(entry["tasks"])}
    if job is None or job.get("state") == "done":  # done but not in the index: it is not servable
        return {
            **base,
            "state": "skipped",
            "step": None,
            "progress": None,
            "eta_s": None,
            "message": "not built on this server",
            "hint": NOT_BUILT_HINT,
        }
    return {**base, **{k: job.get(k) for k in NOT_BUILT_FIELDS if k not in base}}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")  # a zombie has ended
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return sys.platform != "linux"  # no /proc entry on Linux: gone


class BuildStatus:
    """The background build's status for the page (``GET /api/build/status``).

    ``since``: when this server started its own runner; a status file older than that, from a runner that
    is gone, is the last run's: until the new runner writes, the build is reported pending with no jobs.
    """

    def __init__(
        self, path: Path, *, since: float | None = None, alive: Callable[[int], bool] = _alive
    ) -> None:
        self._file = _Watched(path)
        self.since = since
        self._alive = alive
        self._last: str | None = None
        self.version = 0

    def _jobs(self) -> tuple[bool, list[dict[str, Any]]]:
        raw = self._file.read()
        if not isinstance(raw, dict):
            return self.since is not None, []
        runner_alive = self._alive(int(raw.get("runner_pid", 0) or 0)) if raw.get("runner_pid") else False
        fresh = self.since is None or float(raw.get("started_at", 0)) >= self.since - 1.0
        if not raw.get("finished") and not runner_alive and not fresh:
            return True, []  # the last run's file: the new runner has not written yet
        jobs = []
        for job in raw.get("jobs", []):
            if job.get("kind") not in ("model", "cloud"):
                continue
            wire = {k: job.get(k) for k in JOB_FIELDS}
            if wire["state"] in UNFINISHED and not raw.get("finished") and not runner_alive:
                wire.update(_orphaned(job))
            for k in ("title", "detail", "message", "hint"):
                wire[k] = page_text(wire[k])
            jobs.append(wire)
        return any(j["state"] in UNFINISHED for j in jobs), jobs

    def snapshot(self) -> dict[str, Any]:
        """``{"pending", "version", "jobs"}``; ``version`` grows by one whenever the rest changes."""
        pending, jobs = self._jobs()
        body = json.dumps([pending, jobs], sort_keys=True)
        if body != self._last:
            self._last, self.version = body, self.version + 1
        return {"pending": pending, "version": self.version, "jobs": jobs}

    def job(self, job_id: str) -> dict[str, Any] | None:
        return next((j for j in self.snapshot()["jobs"] if j["id"] == job_id), None)

    def by_id(self) -> dict[str, dict[str, Any]]:
        return {j["id"]: j for j in self.snapshot()["jobs"]}


def _orphaned(job: Mapping[str, Any]) -> dict[str, Any]:
    """A job its runner left unfinished (the runner's process is gone)."""
    log = job.get("log")
    if job.get("state") == "running":
        return {
            "state": "failed",
            "eta_s": None,
            "message": "the background build stopped before this job finished",
            "hint": "restart ./hr run: finished jobs are kept and this one continues"
            + (f" (its log: {log} in the cache's logs folder)" if log else ""),
        }
    return {
        "state": "blocked",
        "eta_s": None,
        "message": "the background build stopped before this job ran",
        "hint": "restart ./hr run: finished jobs are kept and the rest continues",
    }
