"""A stopped build keeps its training: ``python -m builder`` (the runner) is signalled, or killed, while
its job process trains the tiny task model (tests/tiny_task_model.py, real torch, one thread); the job
finishes its step, saves its checkpoint and exits (no ``BrokenPipeError`` on its progress pipe), and
the next run resumes the training at the saved step: the steps before it are not trained again
(``training.json``'s ``resumed_from_steps``, the job log's "resuming the training at step N").

``SIGTERM`` is what a service manager or ``docker stop`` sends; ``SIGINT`` is ``kill -INT`` of the
runner alone (not the terminal's Ctrl+C, which reaches the job too); ``SIGKILL`` leaves the job without
its runner: its pipe is broken and the kernel sends it SIGTERM (PR_SET_PDEATHSIG). ``serve.py
--build-in-background`` (what ./hr run serves with) passes its SIGTERM on to its background runner.
(./hr's part, passing SIGTERM/SIGINT on to the builder, is the shell function forward_signals.)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from builder.common import cache_root
from builder.jobs import JobSpec, all_jobs
from tests import tiny_task_model as tiny
from tests.harness import free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
#: more than the first run (slowed down) reaches before it is signalled
STEPS = 400


def model_jobs() -> list[JobSpec]:
    """The runner's job list here (``--jobs``): the manifest's models only, no runtime assets."""
    return [j for j in all_jobs() if j.kind == "model"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("stop")
    model = tiny.make_bert(tmp / "bert")
    data = tiny.make_data(tmp / "data")
    manifest, wheel = tiny.reference_manifest(tmp, model, data)
    raw = json.loads(manifest.read_text())
    raw["models"][0]["conversion"]["train"]["max_steps"] = STEPS
    manifest.write_text(json.dumps(raw, indent=2))
    return {"manifest": manifest, "wheel": wheel, "data": data}


#: a sitecustomize for the first run's processes: each optimizer step takes 0.6 s more, as a real model's
#: step does (the reranker's took seconds), so every step reports on the job's pipe (reports are thinned
#: to one per 0.5 s) and a report is due after the signal, before the step ends; the tiny model's steps
#: take milliseconds and would mostly stop before one is
SLOW_STEPS = """
import time
import builder.convert.finetune as finetune

_real = finetune._optimizer


def _slow(model, spec):
    opt = _real(model, spec)
    step = opt.step

    def slow_step(*args, **kwargs):
        time.sleep(0.6)
        return step(*args, **kwargs)

    opt.step = slow_step
    return opt


finetune._optimizer = _slow
"""


def start_build(
    cache: Path, setup: dict[str, Any], *, slow: Path | None = None, serve: bool = False
) -> subprocess.Popen[str]:
    """``python -m builder all`` on the tiny model; ``serve``: ``serve.py --build-in-background`` instead
    (its background runner builds it), on a free port, the runtime assets of this machine's build."""
    env = {
        **os.environ,
        "HYBRID_ROUTER_CACHE": str(cache),
        "HYBRID_ROUTER_DATA": str(setup["data"]),
        "HYBRID_ROUTER_MANIFEST": str(setup["manifest"]),
        "HYBRID_ROUTER_TRAIN_THREADS": "1",
        "HYBRID_ROUTER_CHECKPOINT_MINUTES": "60",  # no checkpoint on a timer: only the one the stop saves
        "PYTHONPATH": os.pathsep.join([*([str(slow)] if slow else []), str(REPO / "py_src"), str(REPO)]),
    }
    jobs = "tests.unit.test_build_stop:model_jobs"
    cmd = [sys.executable, "-m", "builder", "all", "--jobs", jobs]
    if serve:
        shutil.copyfile(cache_root() / "site.json", cache / "site.json")  # serve.py serves the assets
        cmd = [sys.executable, "serve.py", "--port", str(free_port()), "--cloud", "none"]
        cmd += ["--build-in-background", "--build-jobs", jobs]
    return subprocess.Popen(
        cmd,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(condition: Any, what: str, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def job_pid(parent: int) -> int:
    """The job process under ``parent`` (the runner's child, or serve.py's grandchild)."""
    for child in Path(f"/proc/{parent}/task/{parent}/children").read_text().split():
        if b"builder.job_process" in Path(f"/proc/{child}/cmdline").read_bytes():
            return int(child)
        with contextlib.suppress(AssertionError):
            return job_pid(int(child))
    raise AssertionError(f"no job process under {parent}")


def gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status  # a zombie has exited


@pytest.mark.parametrize(
    ("sig", "serve"),
    [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGKILL, False), (signal.SIGTERM, True)],
    ids=["SIGTERM", "SIGINT", "SIGKILL", "serve.py-SIGTERM"],
)
def test_a_signalled_build_saves_the_training_and_the_next_run_resumes_it(
    tmp_path: Path, setup: dict[str, Any], sig: signal.Signals, serve: bool
) -> None:
    if serve and not (cache_root() / "site.json").is_file():
        pytest.skip("the runtime assets are not built here (./hr build): serve.py needs them")
    cache = tmp_path / "cache"
    tiny.seed_download(setup["wheel"], cache)
    log = cache / "logs" / f"{tiny.MODEL_ID}.log"
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "sitecustomize.py").write_text(SLOW_STEPS)
    build = start_build(cache, setup, slow=slow, serve=serve)

    def training_started() -> bool:
        assert build.poll() is None, build.communicate()[0]
        return log.is_file() and f"training {STEPS} steps" in log.read_text()

    wait_for(training_started, "the training")
    job = job_pid(build.pid)
    time.sleep(1.5)  # a step or two in
    build.send_signal(sig)
    out, _ = build.communicate(timeout=120)
    wait_for(lambda: gone(job), "the job process to end", 120)
    text = log.read_text()
    assert "BrokenPipeError" not in text and "Traceback" not in text, text
    assert "stopped: tiny-sentiment: training stopped at step" in text, text
    if sig != signal.SIGKILL:
        assert "interrupted: the next run continues" in out, out
        assert build.returncode == (0 if serve else 130), out
    (saved,) = (cache / "checkpoints").rglob("*.pt")
    import torch

    step = int(torch.load(saved, map_location="cpu", weights_only=False)["step"])
    assert 0 < step < STEPS

    again = start_build(cache, setup)
    out, _ = again.communicate(timeout=600)
    assert again.returncode == 0, out
    assert f"resuming the training at step {step}/{STEPS}" in log.read_text()
    (record,) = (cache / "models" / tiny.MODEL_ID).rglob("training.json")
    result = json.loads(record.read_text())
    assert result["resumed_from_steps"] == [step] and result["steps"] == STEPS, result
    assert list((cache / "checkpoints").rglob("*.pt")) == []  # a finished training removes its checkpoint


CHILD = """
import signal, sys, time
got = []
signal.signal(signal.SIGTERM, lambda s, f: got.append("TERM"))
signal.signal(signal.SIGINT, lambda s, f: got.append("INT"))
print("ready", flush=True)
deadline = time.monotonic() + 30
while not got and time.monotonic() < deadline:
    time.sleep(0.02)
time.sleep(0.5)  # still stopping when the wait of ./hr is cut short: it must wait on
print("child got", got, flush=True)
sys.exit(130 if got else 0)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_hr_passes_a_signal_on_to_the_build_and_waits_for_it(sig: signal.Signals) -> None:
    """./hr's forward_signals (what ./hr build, test and run start the builder with): bash would act on a
    signal only once its foreground child ended, so a SIGTERM to ./hr never reached the builder."""
    text = (REPO / "hr").read_text()
    function = text[text.index("forward_signals() {") :].split("\n}\n", 1)[0] + "\n}\n"
    script = f"set -euo pipefail\n{function}forward_signals \"{sys.executable}\" -c '{CHILD}'\n"
    # as from a terminal: SIGINT at its default (a pytest-xdist worker ignores it, and a shell started with a
    # signal ignored cannot trap it)
    hr = subprocess.Popen(
        ["bash", "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )
    assert hr.stdout is not None and hr.stdout.readline() == "ready\n"
    hr.send_signal(sig)
    out, _ = hr.communicate(timeout=60)
    assert out == f"child got ['{sig.name.removeprefix('SIG')}']\n" and hr.returncode == 130
