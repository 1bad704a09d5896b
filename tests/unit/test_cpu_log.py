"""tests/cpu_log.py: a run's per-phase lines summed by module, and the table it prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.cpu_log import by_module, main


def _write(path: Path, lines: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + "\n")
    return path


def test_phases_and_files_are_summed_by_module(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _write(
        tmp_path / "a.jsonl",
        [
            {"test": "tests/browser/test_x.py::test_one", "phase": "setup", "wall_s": 2.0, "busy_s": 3.0},
            {"test": "tests/browser/test_x.py::test_one", "phase": "call", "wall_s": 4.0, "busy_s": 7.0},
            {"test": "tests/unit/test_y.py::test_two[p]", "phase": "call", "wall_s": 1.0, "busy_s": 1.0},
        ],
    )
    b = _write(
        tmp_path / "b.jsonl",
        [{"test": "tests/unit/test_y.py::test_three", "phase": "teardown", "wall_s": 1.0, "busy_s": 0.5}],
    )
    assert by_module([a, b]) == {"tests/browser/test_x.py": (6.0, 10.0), "tests/unit/test_y.py": (2.0, 1.5)}
    assert main([str(a), str(b)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[1].split() == ["6.0", "10.0", "1.67", "tests/browser/test_x.py"]  # the busiest first
    assert rows[-1].split()[:3] == ["8.0", "11.5", "1.44"]


def test_no_path_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage" in capsys.readouterr().err
