"""Every benchmark in bench/ runs once in its smallest form, so that none rots unnoticed.

Each runs as a user runs it (``./hr bench NAME --smoke``, here ``python -m bench NAME --smoke --json
PATH``) in a process of its own, two at a time (a benchmark's page waits on its calls a good part of the
time; the first test starts them all, each test checks its own): it must finish (a page call that hangs
fails the benchmark after ``HYBRID_ROUTER_BENCH_TIMEOUT_S``; the whole run is stopped after
``RUN_TIMEOUT_S``), exit 0 and print
its tables, whose rows must be sane: as wide as the header, named, with finite numbers. No timing is
asserted (speed lives in the benchmarks themselves). What a benchmark needs that is not built here (the
cloud tier, the speech model, espeak-ng) skips it, saying so; ``./hr test`` builds all of it.
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.harness import REPO

pytestmark = pytest.mark.browser

#: the benchmarks ``./hr bench`` offers (read from bench/__main__.py, which runs when imported)
BENCHES: tuple[str, ...] = next(
    ast.literal_eval(node.value)
    for node in ast.parse((REPO / "bench" / "__main__.py").read_text()).body
    if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "BENCHES"
)
#: the smallest form of each
ARGS: dict[str, list[str]] = {name: ["--smoke"] for name in BENCHES}
RUN_TIMEOUT_S = 420
CALL_TIMEOUT_S = 180
#: how many benchmark processes run at once
AT_ONCE = 2


def _missing(name: str) -> str | None:
    """What ``name`` needs that is not built here (None: nothing)."""
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
    missing = sorted(needs - built)
    return ", ".join(missing) or None


#: the benchmark processes running now (stopped with their process group when the module ends)
_RUNNING: set[subprocess.Popen[str]] = set()
_LOCK = threading.Lock()


def _run(name: str, tmp_path: Path) -> tuple[str, list[dict[str, Any]]]:
    out = tmp_path / f"{name}.json"
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
    with _LOCK:
        _RUNNING.add(proc)
    try:
        stdout, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, _ = proc.communicate()
        pytest.fail(f"./hr bench {name} --smoke did not finish in {RUN_TIMEOUT_S} s:\n{stdout[-4000:]}")
    finally:
        with _LOCK:
            _RUNNING.discard(proc)
    assert proc.returncode == 0, f"./hr bench {name} failed ({proc.returncode}):\n{stdout[-6000:]}"
    tables: list[dict[str, Any]] = json.loads(out.read_text()) if out.is_file() else []
    return stdout, tables


def _check_rows(name: str, tables: list[dict[str, Any]]) -> None:
    assert tables, f"{name} printed no table"
    for t in tables:
        where = f"{name}: table {t['title'] or t['columns']}"
        assert t["rows"], f"{where} has no rows"
        for row in t["rows"]:
            assert len(row) == len(t["columns"]), (where, row)
            assert isinstance(row[0], str) and row[0].strip(), (where, row)
            numbers = [v for v in row[1:] if isinstance(v, int | float) and not isinstance(v, bool)]
            assert all(math.isfinite(v) for v in numbers), (where, row)
        assert any(isinstance(v, int | float) and v > 0 for row in t["rows"] for v in row[1:]), (
            f"{where}: no measurement in any row"
        )


def _table(tables: list[dict[str, Any]], title: str) -> dict[str, Any]:
    return next(t for t in tables if t["title"] == title)


@pytest.fixture(scope="module")
def bench_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[tuple[str, list[dict[str, Any]]]]]]:
    """The runs of the benchmarks this session selected that can run here, :data:`AT_ONCE` at a time."""
    names = [
        str(item.callspec.params["name"])
        for item in request.session.items
        if isinstance(item, pytest.Function) and item.module is request.module and hasattr(item, "callspec")
    ]
    pool = ThreadPoolExecutor(max_workers=AT_ONCE, thread_name_prefix="bench")
    runs = {
        name: pool.submit(_run, name, tmp_path_factory.mktemp(name)) for name in names if not _missing(name)
    }
    try:
        yield runs
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # runs not started yet never start
        with _LOCK:
            for proc in list(_RUNNING):  # the session was stopped: so are they
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.parametrize("name", BENCHES)
def test_bench_runs_in_its_smallest_form(
    name: str, bench_runs: dict[str, Future[tuple[str, list[dict[str, Any]]]]]
) -> None:
    missing = _missing(name)
    if missing:
        pytest.skip(f"./hr bench {name} needs {missing}, not built here")
    stdout, tables = bench_runs[name].result()
    _check_rows(name, tables)
    if name == "generation":
        runs = _table(tables, "generation")["rows"]
        assert runs[0][0].startswith("browser") and runs[0][7] and runs[0][7] > 0  # decode tok/s
        from bench.generation import GGUFS
        from builder.llama import gguf_path, is_built

        for native, label in ((False, "portable"), (True, "native")):
            has_row = any(label in str(r[0]) for r in runs[1:])
            if is_built(native) and any(gguf_path(name).is_file() for name in GGUFS):
                assert has_row, (label, runs)
            else:  # skipped, and said so
                assert not has_row and "skipped" in stdout and "not" in stdout, stdout[-2000:]
        turns = _table(tables, "multi-turn")["rows"]
        assert turns[0][2] == 0 and turns[1][2] > 0, turns  # turn 2 came from the KV cache
        assert turns[-1][2] == 0, turns  # the same turn after the cache was dropped
    if name == "embeddings":
        embeds = [r for r in _table(tables, "embeddings")["rows"] if str(r[0]).startswith("embed")]
        assert len(embeds) == 2 and all(r[5] and r[5] > 0 for r in embeds), embeds  # native ms
        assert "max |browser - native|" in stdout
    if name == "startup":
        rows = {r[0]: r for r in _table(tables, "start-up")["rows"]}
        later = next(r for label, r in rows.items() if label.startswith("ours: later"))
        # the later visit booted from the memory snapshot and the stored packages (web/boot-cache.js)
        assert later[4] == "hit/hit", rows
        assert "was not stored" not in stdout, stdout[-2000:]
    if name == "overhead":
        assert len(_table(tables, "end to end")["rows"]) == 3
        assert "the two answers differ" not in stdout, stdout[-2000:]
