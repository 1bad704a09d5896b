"""The build as a list of jobs, run one at a time, each in its own process, with progress and a log each.

    python -m builder all [--models ID ...]   every asset and model, in the foreground (./hr build)
    python -m builder first                   the runtime assets and the models the page needs first: the
                                              embedding model and the chat model (./hr run, before serving)
    python -m builder test                    the assets and the models made by conversion alone, not the
                                              trainings nor the bigger chat model (./hr test)
    python -m builder background [--cloud auto|none]
                                              the rest, one job at a time, writing the status file (serve.py
                                              --build-in-background starts it once it serves the page)

A job is one asset build, one model of the manifest, or the default cloud tier (llama-server compiled
and its GGUF assembled). Each runs in a process of its own (:mod:`builder.job_process`): a training
never blocks the server, and a crash ends the job, not the runner. Its output, library warnings
included, goes to ``$CACHE/logs/<job id>.log``; the terminal gets one line per step (:mod:`builder.terminal`).
A finished job is cached (the models' stamps, the llama.cpp build folder), so an interrupted runner
starts again where it stopped, and an interrupted training continues from its checkpoint.

Job states: ``queued``, ``running``, ``done``, ``failed`` (an error: see message, hint and the log),
``blocked`` (something it needs is not here, such as the training data: see the hint), ``skipped``
(not wanted here, e.g. the cloud tier when a cloud is configured).

The background runner writes ``$CACHE/build/status.json`` (atomically, about once a second while a job
runs)::

    {"runner_pid": int, "started_at": unix time, "updated_at": unix time, "finished": bool,
     "jobs": [{"id", "kind", "title", "state", "step", "detail", "progress", "eta_s", "message", "hint",
               "log"}]}

``progress`` (0..1) and ``eta_s`` (seconds) are the job's: its steps are weighed by how long they took on
a 2-core machine (:func:`model_plan`), the running step's remaining time is measured from its rate. For
a queued job ``eta_s`` counts the jobs before it too: it says when the job should be done. ``log`` is the
log's file name. serve.py serves this (less the server's paths) as ``GET /api/build/status``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .common import REPO, cache_root
from .progress import Report
from .terminal import Line, Terminal, duration

__all__ = [
    "FIRST_TASKS",
    "JobSpec",
    "JobStatus",
    "Runner",
    "all_jobs",
    "background_jobs",
    "first_jobs",
    "logs_dir",
    "main",
    "status_path",
    "jobs_for_tests",
]

#: the tasks whose models the page needs before it is worth opening: similarity and chat
FIRST_TASKS = ("feature-extraction", "text-generation")
CLOUD_JOB = "cloud-tier"
STATUS_EVERY_S = 1.0
#: how long a job may take to stop after SIGTERM (a training saves its checkpoint first)
STOP_GRACE_S = 60.0

# Expected seconds per step on a 2-core machine, from the fresh-machine run written in the README (the
# task models' training and evaluation times come from each entry's metrics.training).
ASSETS_PLAN = (("building", 15.0),)
RECIPE_PLANS: dict[str, tuple[tuple[str, float], ...]] = {
    "optimum-encoder": (("downloading", 3.0), ("extracting", 2.0), ("converting", 10.0), ("checking", 2.0)),
    "gguf-llm": (
        ("downloading", 3.0),
        ("extracting", 2.0),
        ("preparing", 30.0),
        ("converting", 30.0),
        ("checking", 3.0),
    ),
    "ct2-whisper": (
        ("downloading", 3.0),
        ("extracting", 2.0),
        ("preparing", 3.0),
        ("converting", 25.0),
        ("checking", 2.0),
    ),
}
CLOUD_PLAN = (("downloading", 60.0), ("configuring", 30.0), ("compiling", 420.0), ("assembling", 20.0))


def logs_dir() -> Path:
    return cache_root() / "logs"


def status_path() -> Path:
    return cache_root() / "build" / "status.json"


# ---------------------------------------------------------------- what a job is


@dataclass(frozen=True)
class JobSpec:
    """One job: ``target`` (``module:function``) is called with ``args`` in the job process and may return
    a message. ``ready`` is a cheap check that nothing is left to do (no process is started then);
    ``skip`` says why the job does not run here at all. ``plan``: the expected (step, seconds)."""

    id: str
    kind: str  # "assets" | "model" | "cloud"
    title: str
    target: str
    args: tuple[str, ...] = ()
    plan: tuple[tuple[str, float], ...] = ()
    ready: Callable[[], bool] | None = None
    skip: str | None = None

    @property
    def expected_s(self) -> float:
        return sum(s for _, s in self.plan)


@dataclass
class JobStatus:
    """A job's state as it runs; :meth:`wire` is what the status file and the server say about it."""

    spec: JobSpec
    state: str = "queued"
    step: str | None = None
    detail: str | None = None
    progress: float | None = None
    eta_s: float | None = None
    message: str | None = None
    hint: str | None = None
    log: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    fraction: float | None = None
    _step_at: float = 0.0
    _step_from: float = 0.0  # the step's fraction when it began (a resumed training starts half way)
    _plan_index: int = -1

    def start(self, now: float) -> None:
        self.state, self.started_at, self.progress = "running", now, 0.0
        self.eta_s = self.spec.expected_s or None

    def apply(self, report: Report, now: float) -> None:
        if report.step != self.step:
            self.step, self._step_at = report.step, now
            self._step_from = report.fraction or 0.0
            names = [name for name, _ in self.spec.plan]
            if report.step in names[max(self._plan_index, 0) :]:
                self._plan_index = names.index(report.step, max(self._plan_index, 0))
        self.detail, self.fraction = report.detail, report.fraction
        self.estimate(now)

    def estimate(self, now: float) -> None:
        """Progress and time left of the whole job, from its plan and the running step's rate."""
        if self.state != "running":
            return
        seconds = [s for _, s in self.spec.plan]
        i = self._plan_index
        before = sum(seconds[:i]) if i >= 0 else 0.0
        planned = seconds[i] if i >= 0 else 0.0
        after = sum(seconds[i + 1 :]) if i >= 0 else sum(seconds)
        elapsed = now - self._step_at if self.step is not None else 0.0
        f = self.fraction
        left: float | None
        if f is not None and f - self._step_from >= 0.005 and elapsed >= 2.0:
            left = elapsed * (1.0 - f) / (f - self._step_from)
        elif planned:  # no rate yet: the plan, less what is done of it
            left = max(planned * (1.0 - f) if f is not None else planned - elapsed, 5.0)
        else:
            left = None
        done_part = f if f is not None else (min(elapsed / planned, 0.95) if planned else 0.0)
        total = sum(seconds)
        if total:
            self.progress = max(self.progress or 0.0, min(1.0, (before + done_part * planned) / total))
            self.eta_s = (left or 0.0) + after
        else:
            self.progress = f
            self.eta_s = left

    def end(self, state: str, now: float, message: str | None = None, hint: str | None = None) -> None:
        self.state, self.ended_at, self.message, self.hint = state, now, message, hint
        self.eta_s = None
        if state == "done":
            self.progress, self.step, self.detail = 1.0, None, None
        elif state in ("skipped", "blocked"):
            self.progress = None

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.spec.id,
            "kind": "cloud"
            if self.spec.kind == "cloud"
            else "model"
            if self.spec.kind == "model"
            else "assets",
            "title": self.spec.title,
            "state": self.state,
            "step": self.step,
            "detail": self.detail,
            "progress": None if self.progress is None else round(self.progress, 4),
            "eta_s": None if self.eta_s is None else round(self.eta_s),
            "message": self.message,
            "hint": self.hint,
            "log": self.log,
        }


# ---------------------------------------------------------------- the job lists


def _raw_entries() -> dict[str, dict[str, Any]]:
    from .models import default_manifest_path

    raw = json.loads(default_manifest_path().read_text(encoding="utf-8"))
    return {m["id"]: m for m in raw["models"]}


def model_plan(raw: dict[str, Any]) -> tuple[tuple[str, float], ...]:
    """The expected steps of a model's build; a trained model's come from its recorded training."""
    recipe = raw["conversion"]["recipe"]
    if recipe == "finetune-encoder":
        t = raw.get("metrics", {}).get("training", {})
        return (
            ("preparing", 10.0),  # the reference step begins; then the data, the tokenizing
            ("downloading data", 10.0),
            ("training", 60.0 * float(t.get("train_minutes", 15.0))),
            ("evaluating", 60.0 * float(t.get("eval_minutes", 0.5))),
            ("converting", 30.0),
            ("checking", 2.0),
        )
    return RECIPE_PLANS.get(recipe, (("converting", 60.0),))


def _title(raw: dict[str, Any]) -> str:
    names = {
        "feature-extraction": "embeddings",
        "text-generation": "chat model",
        "automatic-speech-recognition": "speech to text",
        "text-classification": "sentiment",
        "token-classification": "named entities",
        "zero-shot-classification": "zero-shot",
        "text-ranking": "reranker",
    }
    return f"{raw['id']} ({names.get(raw['tasks'][0], raw['tasks'][0])})"


def _model_ready(model_id: str) -> Callable[[], bool]:
    def ready() -> bool:
        from .models import built_files, load_manifest, read_index

        return model_id in read_index() and built_files(load_manifest().model(model_id)) is not None

    return ready


def model_job(raw: dict[str, Any]) -> JobSpec:
    return JobSpec(
        raw["id"],
        "model",
        _title(raw),
        "builder.jobs:build_model_job",
        (raw["id"],),
        model_plan(raw),
        _model_ready(raw["id"]),
    )


def assets_job() -> JobSpec:
    return JobSpec(
        "assets",
        "assets",
        "runtime assets (Pyodide, Transformers.js, ONNX Runtime Web, wheels)",
        "builder.jobs:build_assets_job",
        plan=ASSETS_PLAN,
    )


def cloud_job(skip: str | None = None) -> JobSpec:
    def ready() -> bool:
        from .llama import cloud_tier_built

        return cloud_tier_built()

    return JobSpec(
        CLOUD_JOB,
        "cloud",
        "default cloud tier (llama-server + Qwen2.5-Coder-0.5B-Instruct)",
        "builder.jobs:build_cloud_job",
        plan=CLOUD_PLAN,
        ready=ready,
        skip=skip,
    )


def _is_first(raw: dict[str, Any], entries: Sequence[dict[str, Any]]) -> bool:
    """The first model of the manifest for one of :data:`FIRST_TASKS`."""
    for task in FIRST_TASKS:
        first = next((e for e in entries if task in e["tasks"]), None)
        if first is not None and first["id"] == raw["id"]:
            return True
    return False


def first_jobs() -> list[JobSpec]:
    entries = list(_raw_entries().values())
    return [assets_job(), *(model_job(e) for e in entries if _is_first(e, entries))]


def _is_alternate(raw: dict[str, Any], entries: Sequence[dict[str, Any]]) -> bool:
    """Another model for a task the page already has a first model for (a bigger chat model): nothing
    uses it by default, so it is built last, after the task models."""
    return not _is_first(raw, entries) and any(t in FIRST_TASKS for t in raw["tasks"])


def background_jobs(cloud: str = "auto") -> list[JobSpec]:
    """Everything :func:`first_jobs` leaves: the other conversions first (quick), then the cloud tier,
    then the trainings (long), in manifest order, then the alternates (:func:`_is_alternate`)."""
    every = list(_raw_entries().values())
    entries = [e for e in every if not _is_first(e, every) and not _is_alternate(e, every)]
    quick = [model_job(e) for e in entries if e["conversion"]["recipe"] != "finetune-encoder"]
    trained = [model_job(e) for e in entries if e["conversion"]["recipe"] == "finetune-encoder"]
    alternates = [model_job(e) for e in every if _is_alternate(e, every)]
    skip = None
    if cloud == "none":
        skip = "not wanted: the server runs with --cloud none"
    elif os.environ.get("HYBRID_ROUTER_CLOUD_BASE_URL", "").strip():
        skip = "not needed: a cloud is configured (HYBRID_ROUTER_CLOUD_BASE_URL)"
    return [*quick, cloud_job(skip), *trained, *alternates]


def all_jobs(ids: Sequence[str] | None = None) -> list[JobSpec]:
    """The assets and the manifest's models (``ids`` only, when given): what ``./hr build`` makes, the
    alternates (:func:`_is_alternate`) last."""
    entries = _raw_entries()
    every = list(entries.values())
    chosen = [entries[i] for i in ids] if ids else every
    ordered = sorted(chosen, key=lambda e: _is_alternate(e, every))  # stable: manifest order otherwise
    return [assets_job(), *(model_job(e) for e in ordered)]


def jobs_for_tests() -> list[JobSpec]:
    """What ``./hr test`` builds before its tests: the assets and every model made by conversion alone,
    in manifest order (the embedding model, the chat model, whisper-tiny.en: about 2 minutes on a fresh
    2-core machine), not the trainings (about 47 minutes) nor the alternates (:func:`_is_alternate`: the
    bigger chat model's conversion, about 35 minutes). The tests of a model that is not built skip, and the
    run's summary names them and ``./hr build``; the task-model path (a training, its export, the browser
    loading and running it) is tested on a tiny model trained in seconds (``tests/tiny_task_model.py``).
    Whatever ``./hr build`` has built is tested too."""
    every = list(_raw_entries().values())
    return [
        assets_job(),
        *(
            model_job(e)
            for e in every
            if e["conversion"]["recipe"] != "finetune-encoder" and not _is_alternate(e, every)
        ),
    ]


# ---------------------------------------------------------------- the targets (run in the job process)


def build_assets_job() -> str:
    from .assets import build_assets

    build_assets()
    return "ready"


def build_model_job(model_id: str) -> str:
    from .models import build_model, built_files, load_manifest, locked, write_index

    manifest = load_manifest()
    entry = manifest.model(model_id)
    t0 = time.monotonic()
    with locked():
        was_built = built_files(entry) is not None
        build_model(entry)
        write_index(manifest)
    return "up to date" if was_built else f"built in {time.monotonic() - t0:.0f} s"


def build_cloud_job() -> str:
    from .llama import ensure_gguf, ensure_llama_server
    from .pins_llama import DEFAULT_GGUF

    ensure_llama_server()
    ensure_gguf(DEFAULT_GGUF)
    return "llama-server and its model are ready"


# ---------------------------------------------------------------- the runner


def _die_with_parent() -> None:  # in the child, between fork and exec
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Stopped(Exception):
    """The runner got SIGTERM: it stops its job (which saves what it can) and exits."""


@dataclass
class Runner:
    """Runs jobs one after another; shows them on ``terminal``; writes ``status_file`` when given."""

    specs: Sequence[JobSpec]
    terminal: Terminal = field(default_factory=Terminal)
    logs: Path = field(default_factory=logs_dir)
    status_file: Path | None = None
    clock: Callable[[], float] = time.monotonic
    jobs: list[JobStatus] = field(init=False)
    _written_at: float = field(init=False, default=-1e9)
    _started_at: float = field(init=False, default_factory=time.time)

    def __post_init__(self) -> None:
        self.jobs = [JobStatus(s) for s in self.specs]

    def run(self) -> bool:
        """Every job, in order; True when each one is done, blocked or skipped (none failed or stopped)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        self._write(force=True)
        try:
            for i, job in enumerate(self.jobs, 1):
                self._run_job(job, f"[{i}/{len(self.jobs)}]")
        finally:
            self._write(force=True, finished=True)
        return not any(j.state in ("failed", "queued") for j in self.jobs)  # queued: it was stopped

    def _line(self, job: JobStatus, position: str) -> Line:
        detail = job.detail if job.state == "running" else job.message
        elapsed = self.clock() - job.started_at if job.started_at is not None else 0.0
        return Line(position, job.spec.title, job.state, job.step, detail, job.progress, job.eta_s, elapsed)

    def _run_job(self, job: JobStatus, position: str) -> None:
        spec = job.spec
        if spec.skip is not None:
            job.end("skipped", self.clock(), spec.skip)
        elif spec.ready is not None and spec.ready():
            job.end("done", self.clock(), "up to date")
        else:
            self._spawn(job, position)
        log_path = self.logs / f"{spec.id}.log"
        failed = job.state in ("failed", "blocked")
        self.terminal.finish(
            self._line(job, position),
            error=None,
            hint=job.hint if failed else None,
            log=str(log_path) if job.state == "failed" else None,
        )
        self._write(force=True)

    def _spawn(self, job: JobStatus, position: str) -> None:
        spec = job.spec
        log_path = self.logs / f"{spec.id}.log"
        job.log = log_path.name
        job.start(self.clock())
        self._write(force=True)
        self.terminal.show(self._line(job, position))
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(REPO / "py_src"), str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
        }
        read_fd, write_fd = os.pipe()
        with open(log_path, "a", encoding="utf-8") as log:
            when = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"\n===== {when} {spec.title}: {spec.target} {' '.join(spec.args)}\n")
            log.flush()
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "builder.job_process", str(write_fd), spec.target, *spec.args],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    pass_fds=(write_fd,),
                    cwd=REPO,
                    env=env,
                    preexec_fn=_die_with_parent,
                )
            finally:
                os.close(write_fd)
        result: dict[str, Any] | None = None
        with os.fdopen(read_fd, "rb", buffering=0) as events:
            try:
                result = self._follow(job, position, events)
                rc = proc.wait()
            except BaseException:
                # the pipe stays open meanwhile: the job's last reports must not meet a broken pipe
                self._stop(proc, events)
                job.end("queued", self.clock(), "interrupted: the next run continues it")
                raise
        if result is not None:
            job.end(str(result["state"]), self.clock(), result.get("message"), result.get("hint"))
        elif rc == 130:
            job.end("queued", self.clock(), "stopped: the next run continues it")
        else:
            how = f"signal {-rc}" if rc < 0 else f"exit status {rc}"
            job.end(
                "failed",
                self.clock(),
                f"the job's process ended with {how} before it finished",
                f"see its log, {log_path.name}, in the cache's logs folder",
            )
        if job.state == "failed" and job.hint is None:
            job.hint = f"see its log, {log_path.name}, in the cache's logs folder"

    def _follow(self, job: JobStatus, position: str, events: IO[bytes]) -> dict[str, Any] | None:
        """Read the job's events until its process closes the pipe; keep the terminal and status fresh."""
        buf, result = b"", None
        fd = events.fileno()
        while True:
            readable, _, _ = select.select([fd], [], [], 1.0)
            if readable:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return result
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for raw in lines:
                    event = json.loads(raw)
                    if event.get("type") == "result":
                        result = event
                    elif event.get("type") == "report":
                        job.apply(
                            Report(event["step"], event.get("detail"), event.get("done"), event.get("total")),
                            self.clock(),
                        )
            job.estimate(self.clock())
            self.terminal.show(self._line(job, position))
            self._write()

    def _stop(self, proc: subprocess.Popen[bytes], events: IO[bytes]) -> None:
        """Tell the job to stop (a training finishes its step and saves its checkpoint; a job that got the
        terminal's Ctrl+C too takes this SIGTERM as the same request), reading its pipe until it exits;
        kill it if it has not after :data:`STOP_GRACE_S`."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):  # a second signal must not cut the wait short
                signal.signal(sig, signal.SIG_IGN)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        fd, reading = events.fileno(), True
        while proc.poll() is None and time.monotonic() < deadline:
            if not reading:
                time.sleep(0.1)
            elif select.select([fd], [], [], 0.1)[0]:
                reading = bool(os.read(fd, 1 << 16))  # what it reports now is not shown: it is stopping
        if proc.poll() is None:
            proc.kill()
        proc.wait()

    def snapshot(self, *, finished: bool = False) -> dict[str, Any]:
        jobs = [j.wire() for j in self.jobs]
        ahead = 0.0  # a queued job is done when the ones before it are, and then itself
        for job, wire in zip(self.jobs, jobs, strict=True):
            if job.state == "running":
                ahead += job.eta_s or 0.0
            elif job.state == "queued" and job.spec.skip is None:
                ahead += job.spec.expected_s
                wire["eta_s"] = round(ahead) if job.spec.expected_s else None
        return {
            "runner_pid": os.getpid(),
            "started_at": self._started_at,
            "updated_at": time.time(),
            "finished": finished,
            "jobs": jobs,
        }

    def _write(self, *, force: bool = False, finished: bool = False) -> None:
        if self.status_file is None or (not force and self.clock() - self._written_at < STATUS_EVERY_S):
            return
        self._written_at = self.clock()
        self.status_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.status_file.with_name(f".{self.status_file.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.snapshot(finished=finished), indent=1))
        tmp.replace(self.status_file)

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for j in self.jobs:
            counts[j.state] = counts.get(j.state, 0) + 1
        return ", ".join(f"{n} {state}" for state, n in counts.items())


@contextlib.contextmanager
def _single_runner(path: Path) -> Iterator[bool]:
    """True when this process is the only background runner of the cache (the lock is held meanwhile)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


_stopping = False


def _on_signal(signum: int, frame: Any) -> None:
    """SIGTERM raises :class:`Stopped`, SIGINT KeyboardInterrupt: once. The runner then stops its job and
    waits for it; a second signal (Ctrl+C reaches the runner both from the terminal and through ./hr)
    must not cut that wait short."""
    global _stopping
    if _stopping:
        return
    _stopping = True
    raise Stopped if signum == signal.SIGTERM else KeyboardInterrupt


def main(what: str, argv: Sequence[str] = ()) -> int:
    """``python -m builder all|first|background ...``: run that job list; 1 when a job failed."""
    parser = argparse.ArgumentParser(prog=f"python -m builder {what}")
    parser.add_argument("--models", nargs="*", default=None, help="only these model ids (all)")
    parser.add_argument(
        "--cloud", choices=["auto", "none"], default="auto", help="the cloud tier (background)"
    )
    parser.add_argument(
        "--jobs",
        default=None,
        metavar="MODULE:FUNCTION",
        help="another job list (tests): a function returning JobSpecs",
    )
    args = parser.parse_args(list(argv))
    if args.jobs:
        from .job_process import resolve

        specs: list[JobSpec] = list(resolve(args.jobs)())
    elif what == "first":
        specs = first_jobs()
    elif what == "background":
        specs = background_jobs(args.cloud)
    elif what == "test":
        specs = jobs_for_tests()
    else:
        specs = all_jobs(args.models)
    terminal = Terminal()
    global _stopping
    _stopping = False
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _on_signal)
    t0 = time.monotonic()
    background = what == "background"
    with (
        _single_runner(status_path().with_name("runner.lock"))
        if background
        else contextlib.nullcontext(True) as alone
    ):
        if not alone:
            terminal.note(
                "  another background build of this cache is running: this server shows its progress"
            )
            return 0
        runner = Runner(specs, terminal, status_file=status_path() if background else None)
        label = "background build" if background else "build"
        terminal.note(f"  {label}: {len(specs)} jobs, one at a time (each one's log: {logs_dir()}/<job>.log)")
        try:
            ok = runner.run()
        except (KeyboardInterrupt, Stopped):
            terminal.note(f"  {label} interrupted: the next run continues where it stopped")
            return 130
    terminal.note(f"  {label} finished in {duration(time.monotonic() - t0)[1:]}: {runner.summary()}")
    return 0 if ok else 1
