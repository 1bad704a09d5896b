"""A real first build through the job runner, in a fresh cache: the tiny task model (tests/tiny_task_model.py)
downloaded (from a seeded download folder), trained, exported by optimum to ONNX, quantized and checked.
The libraries' warnings (torch's TracerWarnings, the exporters' notices) land in the job's log; the
terminal shows only the job's lines."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from builder.jobs import Runner, all_jobs
from builder.terminal import Terminal
from tests import tiny_task_model as tiny

pytestmark = pytest.mark.slow


def test_a_first_build_keeps_library_warnings_in_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tiny.make_bert(tmp_path / "bert")
    data = tiny.make_data(tmp_path / "data")
    manifest, wheel = tiny.reference_manifest(tmp_path, model, data)
    cache = tmp_path / "fresh-cache"
    tiny.seed_download(wheel, cache)
    for name, value in {
        "HYBRID_ROUTER_CACHE": cache,
        "HYBRID_ROUTER_DATA": data,
        "HYBRID_ROUTER_MANIFEST": manifest,
        "HYBRID_ROUTER_TRAIN_THREADS": 1,
    }.items():
        monkeypatch.setenv(name, str(value))
    specs = [j for j in all_jobs() if j.kind == "model"]
    out = io.StringIO()
    runner = Runner(specs, Terminal(out, tty=False), logs=cache / "logs")
    assert runner.run(), out.getvalue()
    assert [j.state for j in runner.jobs] == ["done"]
    terminal = out.getvalue()
    assert "tiny-sentiment" in terminal and "training" in terminal and "converting" in terminal
    noisy = [line for line in terminal.splitlines() if "warn" in line.lower() or "Tracer" in line]
    assert noisy == [], terminal
    log = (cache / "logs" / "tiny-sentiment.log").read_text()
    assert "Warning" in log  # the exporters did warn: it went here
    assert "differ from the manifest's hashes" in log  # trained weights: this machine's bytes, accepted
    index = json.loads((cache / "models" / "index.json").read_text())
    assert "tiny-sentiment" in index["models"]
