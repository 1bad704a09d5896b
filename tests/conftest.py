"""The whole suite's hooks: the run's summary names the manifest's models not built here.

``./hr test`` builds the runtime assets and the models made by conversion alone (``python -m builder
test``); the four task-model trainings and the bigger chat model are built by ``./hr build``. The tests of a
model that is not built skip; this summary says which models those are and how to build them, so a skip is
never silent.

``HYBRID_ROUTER_TEST_CPU_LOG=PATH`` writes a line of JSON per test phase (setup, call, teardown): its wall
seconds and the seconds the machine's cores were busy meanwhile (``/proc/stat``, every process: run the
browser tests alone to read it as theirs); docs/testing.md's "Where the suite's time goes" was read so.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest


def _not_built() -> list[str]:
    try:
        from builder.models import built_files, load_manifest, read_index

        manifest, index = load_manifest(), read_index()
        return [m.id for m in manifest.models if m.id not in index or built_files(m) is None]
    except Exception:  # a summary line must never fail a run
        return []


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    missing = _not_built()
    if not missing:
        return
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if "not built" in str(r.longrepr)]
    terminalreporter.write_sep("-", "models not built here")
    what = (
        f"{len(skipped)} test(s) skipped for a model not built"
        if skipped
        else "not built here, and no test of this run was skipped for them"
    )
    terminalreporter.write_line(
        f"{', '.join(missing)}: {what}. `./hr build` builds "
        "every model (the four trainings about 47 min, the bigger chat model about 35 min on 2 cores); "
        "`./hr test` then runs their tests too."
    )


def _busy_seconds() -> float:
    """Seconds of CPU every core of this machine spent busy since boot (Linux; 0 elsewhere)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _phase(item: pytest.Item, phase: str) -> Iterator[None]:
    log = os.environ.get("HYBRID_ROUTER_TEST_CPU_LOG")
    if not log:
        yield
        return
    wall, busy = time.monotonic(), _busy_seconds()
    try:
        yield
    finally:
        line = {
            "test": item.nodeid,
            "phase": phase,
            "wall_s": round(time.monotonic() - wall, 2),
            "busy_s": round(_busy_seconds() - busy, 2),
        }
        with open(log, "a") as f:
            f.write(json.dumps(line) + "\n")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    return (yield from _phase(item, "setup"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    return (yield from _phase(item, "call"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    return (yield from _phase(item, "teardown"))
