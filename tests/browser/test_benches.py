"""Every benchmark in bench/ runs once in its smallest form, so that none rots unnoticed.

Each runs as a user runs it (``./hr bench NAME --smoke``) in a process of its own, in the background of
the browser session from its first test on (tests/bench_runs.py; these tests run last and check what the
runs left): it must finish (a page call that hangs fails the benchmark after
``HYBRID_ROUTER_BENCH_TIMEOUT_S``; a whole run is stopped after ``RUN_TIMEOUT_S``), exit 0 and print its
tables, whose rows must be sane: as wide as the header, named, with finite numbers. No timing is asserted
(speed lives in the benchmarks themselves). What a benchmark needs that is not built here (the cloud tier,
the speech model, espeak-ng) skips it, saying so; ``./hr test`` builds all of it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

from tests.bench_runs import BENCHES, BenchRuns, missing

from .conftest import bench_names

pytestmark = pytest.mark.browser


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
def smoke_runs(
    request: pytest.FixtureRequest, bench_runs: BenchRuns | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BenchRuns]:
    """The session's background runs; on a pytest-xdist worker, this module's own (two at a time)."""
    if bench_runs is not None:
        yield bench_runs
        return
    own = BenchRuns(
        bench_names(request.session.items),
        tmp_path_factory.mktemp("bench"),
        at_once=2,
    )
    try:
        yield own
    finally:
        own.stop()


@pytest.mark.parametrize("name", BENCHES)
def test_bench_runs_in_its_smallest_form(name: str, smoke_runs: BenchRuns) -> None:
    lacking = missing(name)
    if lacking:
        pytest.skip(f"./hr bench {name} needs {lacking}, not built here")
    stdout, tables = smoke_runs.result(name)
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
