"""builder.jobs: jobs run one at a time in their own processes; outcomes, logs, the status file, and the
terminal (one line per step, no library noise). The job targets are tests/fake_jobs.py."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from builder.jobs import JobSpec, JobStatus, Runner, all_jobs, background_jobs, first_jobs, jobs_for_tests
from builder.progress import Report
from builder.terminal import Line, Terminal, duration

FAKE = "tests.fake_jobs:"
WARNING_MARKS = ("Warning", "warn(", "legacy behaviour", "chatter", "Requirement already")


def run(specs: list[JobSpec], tmp_path: Path) -> tuple[Runner, str]:
    out = io.StringIO()
    runner = Runner(
        specs, Terminal(out, tty=False), logs=tmp_path / "logs", status_file=tmp_path / "status.json"
    )
    runner.run()
    return runner, out.getvalue()


def spec(name: str, *args: str, **kw: Any) -> JobSpec:
    return JobSpec(name, "model", f"fake {name}", FAKE + name, args, **kw)


def test_each_outcome_is_told_and_a_failure_does_not_stop_the_rest(tmp_path: Path) -> None:
    specs = [
        spec("fails"),
        spec("blocked"),
        spec("crashes"),
        spec("steps", "3", plan=(("training", 10.0),)),
        spec("ready", ready=lambda: True),
        spec("skipped", skip="not wanted here"),
    ]
    runner, out = run(specs, tmp_path)
    states = {j.spec.id: (j.state, j.message, j.hint) for j in runner.jobs}
    assert states["fails"] == (
        "failed",
        "the fake training did not reach its min_metric",
        "check the fake data",
    )
    assert states["blocked"][0] == "blocked" and "HYBRID_ROUTER_DATA" in str(states["blocked"][2])
    assert states["crashes"][0] == "failed" and "signal 9" in str(states["crashes"][1])
    assert "crashes.log" in str(states["crashes"][2])
    assert states["steps"] == ("done", "3 steps", None)
    assert states["ready"] == ("done", "up to date", None)  # no process was started for it
    assert states["skipped"] == ("skipped", "not wanted here", None)
    assert not (tmp_path / "logs" / "ready.log").exists()
    # the terminal names the error, the hint and the log of the failed job
    assert "error: the fake training did not reach" not in out  # the message is the line's own detail...
    assert "failed (the fake training did not reach its min_metric)" in out
    assert "hint: check the fake data" in out and f"log: {tmp_path / 'logs' / 'fails.log'}" in out
    # ... and the status file has every job in the wire shape, no path but the log's name
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["finished"] is True and [j["state"] for j in status["jobs"]] == [
        "failed",
        "blocked",
        "failed",
        "done",
        "done",
        "skipped",
    ]
    assert set(status["jobs"][0]) == {
        "id",
        "kind",
        "title",
        "state",
        "step",
        "detail",
        "progress",
        "eta_s",
        "message",
        "hint",
        "log",
    }
    assert status["jobs"][0]["log"] == "fails.log" and str(tmp_path) not in json.dumps(status)


def test_library_noise_goes_to_the_log_not_the_terminal(tmp_path: Path) -> None:
    runner, out = run([spec("chatty")], tmp_path)
    assert runner.jobs[0].state == "done"
    assert not [line for line in out.splitlines() if any(m in line for m in WARNING_MARKS)], out
    log = (tmp_path / "logs" / "chatty.log").read_text()
    for mark in (
        "might cause the trace to be incorrect",
        "legacy behaviour",
        "chatter from optimum",
        "Requirement already satisfied",
        "FutureWarning",
    ):
        assert mark in log


def test_progress_and_time_left_follow_the_plan_and_the_rate() -> None:
    plan = (("downloading", 10.0), ("training", 100.0), ("converting", 10.0))
    job = JobStatus(JobSpec("m", "model", "m", "x:y", plan=plan))
    job.start(0.0)
    assert job.progress == 0.0 and job.eta_s == 120.0  # before anything is reported: the plan's total
    job.apply(Report("downloading", "a file", 5, 10), 1.0)
    assert job.progress == pytest.approx(5 / 120) and job.eta_s == pytest.approx(5.0 + 110.0)
    job.apply(Report("training", "step 1", 0, 100), 10.0)
    job.apply(Report("training", "step 25", 25, 100), 30.0)  # 25 % in 20 s: 60 s to go, then converting
    assert job.progress == pytest.approx((10 + 25) / 120)
    assert job.eta_s == pytest.approx(60.0 + 10.0)
    job.apply(Report("converting", None), 90.0)  # no counts: the plan's estimate, never below 5 s
    job.estimate(200.0)
    assert job.eta_s == 5.0 and job.progress is not None and job.progress < 1
    job.end("done", 201.0, "built")
    # end() resets what the asserts above narrowed: mypy keeps their narrowing across the call
    assert (job.progress, job.eta_s, job.step) == (1.0, None, None)  # type: ignore[comparison-overlap]


def test_a_resumed_step_measures_its_rate_from_where_it_resumed() -> None:
    job = JobStatus(JobSpec("m", "model", "m", "x:y", plan=(("training", 100.0),)))
    job.start(0.0)
    job.apply(Report("training", None, 50, 100), 0.0)  # resumed half way
    job.apply(Report("training", None, 60, 100), 10.0)  # 10 % in 10 s
    assert job.eta_s == pytest.approx(40.0)


def test_queued_jobs_say_when_they_should_be_done() -> None:
    a = JobSpec("a", "model", "a", "x:y", plan=(("training", 60.0),))
    b = JobSpec("b", "model", "b", "x:y", plan=(("training", 120.0),))
    runner = Runner([a, b], Terminal(io.StringIO(), tty=False))
    runner.jobs[0].start(0.0)
    runner.jobs[0].eta_s = 30.0
    jobs = runner.snapshot()["jobs"]
    assert [j["eta_s"] for j in jobs] == [30, 150]


def test_the_plain_terminal_repeats_a_long_step_every_30_seconds_and_a_tty_redraws_in_place() -> None:
    now = [0.0]
    out = io.StringIO()
    term = Terminal(out, tty=False, clock=lambda: now[0])
    for t in range(0, 95, 5):  # a 90 s step, shown every 5 s
        now[0] = float(t)
        term.show(Line("[1/1]", "job", "running", "training", f"step {t}", t / 100, 90.0 - t, t))
    assert len(out.getvalue().splitlines()) == 4  # at 0, 30, 60 and 90 s
    tty = io.StringIO()
    term = Terminal(tty, tty=True, clock=lambda: now[0])
    for t, step in ((0, "downloading"), (1, "downloading"), (2, "training"), (3, "training")):
        now[0] = float(t)
        term.show(Line("[1/1]", "job", "running", step, None, None, None, t))
    term.finish(Line("[1/1]", "job", "done", detail="built"))
    text = tty.getvalue()
    assert text.count("\n") == 2  # one line per step; the last step's line becomes the job's outcome
    assert text.count("\r\033[K") == 5 and text.endswith("  [1/1] job: done (built)\n")


def test_durations_read_like_estimates() -> None:
    assert [duration(s) for s in (3, 42, 540, 4800)] == ["~5 s", "~40 s", "~9 min", "~1 h 20 min"]


def test_the_first_jobs_are_the_assets_and_the_models_the_page_needs_first() -> None:
    first = [j.id for j in first_jobs()]
    assert first == ["assets", "all-MiniLM-L6-v2", "SmolLM2-135M-Instruct"]
    rest = background_jobs("auto")
    assert [j.id for j in rest][:2] == ["whisper-tiny.en", "cloud-tier"]
    assert {j.id for j in rest[2:-1]} == {
        "minilm-l6-sst2",
        "minilm-l6-conll03-ner",
        "minilm-l6-nli",
        "minilm-l6-scifact-reranker",
    }
    # the bigger chat model: nothing uses it by default, so it is built after the task models
    assert rest[-1].id == "Qwen2.5-Coder-0.5B-Instruct"
    assert [j.id for j in all_jobs()][-1] == "Qwen2.5-Coder-0.5B-Instruct"
    trained = next(j for j in rest if j.id == "minilm-l6-sst2")
    assert dict(trained.plan)["training"] == pytest.approx(24.4 * 60)  # the recorded training time
    assert next(j for j in background_jobs("none") if j.kind == "cloud").skip is not None


def test_the_tests_build_no_training_and_not_the_bigger_chat_model() -> None:
    """./hr test builds what conversion alone makes (minutes); the trainings and Qwen are ./hr build's."""
    ids = [j.id for j in jobs_for_tests()]
    assert ids == ["assets", "all-MiniLM-L6-v2", "SmolLM2-135M-Instruct", "whisper-tiny.en"]
    assert all(j.plan and "training" not in dict(j.plan) for j in jobs_for_tests())
    assert set(ids) < {j.id for j in all_jobs()}
