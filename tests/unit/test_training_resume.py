"""An interrupted training resumes from its checkpoint and ends with the weights of a run never interrupted
(the tiny BERT of tests/tiny_task_model.py, real torch training, one thread)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from builder.convert import checkpoint, finetune
from builder.convert.recipe import Job
from tests import tiny_task_model as tiny

STEPS = 12  # 30 phrases in batches of 4: 8 batches an epoch, so the run crosses an epoch boundary


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny.make_bert(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def job(tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch) -> Job:
    data = tiny.make_data(tmp_path / "data")
    monkeypatch.setenv("HYBRID_ROUTER_DATA", str(data))
    monkeypatch.setenv("HYBRID_ROUTER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HYBRID_ROUTER_TRAIN_THREADS", "1")
    monkeypatch.setenv("HYBRID_ROUTER_CHECKPOINT_MINUTES", "0")  # a checkpoint after every step
    conversion = tiny.entry(tiny.make_wheel(model, tmp_path / "wheel"), data, max_steps=STEPS)["conversion"]
    return Job(tiny.MODEL_ID, model, model / "model.safetensors", conversion)


def interrupt_at(monkeypatch: pytest.MonkeyPatch, call: int, how: str) -> None:
    """Make the optimizer's ``call``-th step fail (``crash``) or deliver SIGINT during it (``signal``)."""
    real = finetune._optimizer

    def optimizer(model: Any, spec: Any) -> Any:
        opt = real(model, spec)
        step, calls = opt.step, [0]

        def counted(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            if calls[0] == call:
                if how == "crash":
                    raise RuntimeError("the power went out")
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl+C: the step finishes, then the training stops
            return step(*args, **kwargs)

        opt.step = counted
        return opt

    monkeypatch.setattr(finetune, "_optimizer", optimizer)


def checkpoints(cache: Path) -> list[Path]:
    return sorted((cache / "checkpoints").rglob("*.pt"))


@pytest.mark.parametrize("how", ["crash", "signal"])
def test_an_interrupted_training_resumes_to_the_same_weights(
    job: Job, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    whole = tmp_path / "whole"
    whole.mkdir()
    finetune.train(job, whole)
    cache = tmp_path / "cache"
    assert checkpoints(cache) == []  # a finished training leaves no checkpoint

    with monkeypatch.context() as m:
        interrupt_at(m, 10, how)
        with pytest.raises(RuntimeError if how == "crash" else checkpoint.Stop):
            (tmp_path / "first").mkdir()
            finetune.train(job, tmp_path / "first")
    assert len(checkpoints(cache)) == 1
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    result = finetune.train(job, resumed)
    assert result["resumed_from_steps"] == [9 if how == "crash" else 10]
    assert result["steps"] == STEPS and checkpoints(cache) == []
    assert (resumed / "model.safetensors").read_bytes() == (whole / "model.safetensors").read_bytes()
    assert "resumed_from_steps" not in json.loads((whole / finetune.TRAINING_FILE).read_text())


def test_a_checkpoint_of_another_training_plan_is_ignored(job: Job, tmp_path: Path) -> None:
    inputs = {"train": finetune.training_inputs(job.params), "source": str(job.weights), "torch": "x"}
    stray = checkpoint.path_for(job.model_id, inputs)
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"not a checkpoint")
    assert checkpoint.load(stray, total=STEPS, per_epoch=8) is None and not stray.exists()
