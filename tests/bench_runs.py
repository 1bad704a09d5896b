"""The benchmarks' smoke runs of a test session (tests/browser/test_benches.py checks them): each benchmark
as a user runs it (``./hr bench NAME --smoke``, here ``python -m bench NAME --smoke --json PATH``) in a
process of its own, with its own server and browser.

They run in the background of the browser session, from its first test on (tests/browser/conftest.py
starts them and moves the benchmarks' tests to the end of the run): the browser tests leave part of the
cores idle while their pages wait on calls, which the benchmark processes fill. One runs at a time beside
other tests, two at a time when the session runs nothing but benchmarks.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.harness import REPO

#: the benchmarks ``./hr bench`` offers (read from bench/__main__.py, which runs when imported)
BENCHES: tuple[str, ...] = next(
    ast.literal_eval(node.value)
    for node in ast.parse((REPO / "bench" / "__main__.py").read_text()).body
    if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "BENCHES"
)
#: the smallest form of each
ARGS: dict[str, list[str]] = {name: ["--smoke"] for name in BENCHES}
#: a benchmark process's limit, from its start (a page call that hangs fails it sooner: CALL_TIMEOUT_S)
RUN_TIMEOUT_S = 420
CALL_TIMEOUT_S = 180

#: (stdout, the printed tables) of a finished run
Result = tuple[str, list[dict[str, Any]]]


class BenchFailed(AssertionError):
    """A benchmark process that failed, or ran past :data:`RUN_TIMEOUT_S`; the message has its output."""


def missing(name: str) -> str | None:
    """What benchmark ``name`` needs that is not built here (None: nothing)."""
    from builder.llama import cloud_tier_built
    from builder.models import read_index

    built = set(read_index())
    needs = {"SmolLM2-135M-Instruct", "all-MiniLM-L6-v2"} if name not in ("relay_load",) else set()
    if name == "transcribe":
        needs = {"whisper-tiny.en"}
        if shutil.which("espeak-ng") is None:
            return "espeak-ng"
    if name in ("load", "workload") and not cloud_tier_built():
        return "the default cloud tier (llama-server and its GGUF)"
    if name in ("load", "workload"):  # their mix calls every task's model
        from builder.models import load_manifest

        needs = {entry.id for entry in load_manifest().models}
    lacking = sorted(needs - built)
    return ", ".join(lacking) or None


class BenchRuns:
    """The smoke runs of ``names`` (those that can run here), ``at_once`` at a time, started on creation.
    :meth:`result` waits for one; :meth:`stop` kills what still runs (a stopped session)."""

    def __init__(self, names: list[str], tmp: Path, at_once: int) -> None:
        self._running: set[subprocess.Popen[str]] = set()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=at_once, thread_name_prefix="bench")
        self.runs: dict[str, Future[Result]] = {
            name: self._pool.submit(self._run, name, tmp / name) for name in names if not missing(name)
        }

    def result(self, name: str) -> Result:
        return self.runs[name].result()

    def _run(self, name: str, tmp: Path) -> Result:
        tmp.mkdir(parents=True, exist_ok=True)
        out = tmp / f"{name}.json"
        env = {**os.environ, "HYBRID_ROUTER_BENCH_TIMEOUT_S": str(CALL_TIMEOUT_S)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench", name, *ARGS[name], "--json", str(out)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its server and browser too: stopped with it on a timeout
        )
        with self._lock:
            self._running.add(proc)
        try:
            stdout, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, _ = proc.communicate()
            raise BenchFailed(
                f"./hr bench {name} --smoke did not finish in {RUN_TIMEOUT_S} s:\n{stdout[-4000:]}"
            ) from None
        finally:
            with self._lock:
                self._running.discard(proc)
        if proc.returncode != 0:
            raise BenchFailed(f"./hr bench {name} failed ({proc.returncode}):\n{stdout[-6000:]}")
        tables: list[dict[str, Any]] = json.loads(out.read_text()) if out.is_file() else []
        return stdout, tables

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)  # runs not started yet never start
        with self._lock:
            for proc in list(self._running):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
