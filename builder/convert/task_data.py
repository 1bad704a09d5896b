"""The public datasets the task models train and are evaluated on (``../shared/data``), read into plain lists.

The folder is found through ``HYBRID_ROUTER_DATA`` or at ``../shared/data`` next to the repository; it is not
on a user's machine, where the files are fetched from their pinned public sources (:mod:`builder.datasets`).
Every file the training reads is named in the manifest with its sha256 and checked first
(:func:`verified_files`). Pure Python (no torch): the evaluation script and the tests use it too.

Formats (see ``../shared/data/README.md``):

- ``sst2/{train,dev}.tsv``: ``sentence<TAB>label`` with a header; label 1 = positive;
- ``conll2003/eng.{train,testa,testb}``: ``token POS chunk NER`` per line, blank line between sentences,
  ``-DOCSTART-`` lines; NER tags are IOB1 (``I-X`` opens an entity unless it continues one of the same type,
  ``B-X`` only separates two adjacent entities of one type): :func:`iob1_to_bio` converts them;
- ``snli/{s1,s2,labels}.{dev,test}``: premise, hypothesis, label, one per line (tokenised text);
- ``nli_samples_textfooler/mnli_{matched,mismatched}``: ``label<TAB>premise<TAB>hypothesis`` (1,000 each;
  its ``snli`` file is drawn from SNLI test, so it is never used for training);
- ``scifact/beir/``: ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``,
  ``qrels/{train,test}.tsv`` (BEIR).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder import datasets
from builder.common import BuildError, sha256_file
from builder.datasets import MissingData

__all__ = [
    "NER_LABELS",
    "NLI_LABELS",
    "SENTIMENT_LABELS",
    "MissingData",
    "Pair",
    "data_root",
    "iob1_to_bio",
    "read_conll",
    "read_mnli_sample",
    "read_scifact",
    "read_snli",
    "read_sst2",
    "spans_of",
    "verified_files",
]

SENTIMENT_LABELS = ("NEGATIVE", "POSITIVE")
NER_LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
NLI_LABELS = ("entailment", "neutral", "contradiction")


def data_root() -> Path | None:
    """``$HYBRID_ROUTER_DATA``, else ``../shared/data`` next to the repository; None when neither exists."""
    return datasets.data_folder()


def verified_files(files: Mapping[str, Mapping[str, Any]], root: Path | None = None) -> dict[str, Path]:
    """``{role: {"path", "sha256"}}`` -> ``{role: absolute path}``, every file's sha256 checked.

    With ``root``, the files must be in that folder (:class:`MissingData` when one is absent); without, they
    come from the data folder or are fetched from their pinned sources (:func:`builder.datasets.resolve`).
    BuildError when a file's bytes are not the pinned ones.
    """
    if root is None:
        return datasets.resolve(files)
    out = {}
    for role, spec in files.items():
        path = root / spec["path"]
        if not path.is_file():
            raise MissingData(f"{path} is missing", hint=f"the {role} file of the dataset must be at {path}")
        actual = sha256_file(path)
        if actual != spec["sha256"]:
            raise BuildError(
                f"{path}: sha256 {actual}, the manifest pins {spec['sha256']}",
                hint="this is not the dataset the model was trained on; use the pinned file "
                "(builder/datasets.tsv lists them)",
            )
        out[role] = path
    return out


# ---------------------------------------------------------------- sentiment


def read_sst2(path: Path) -> list[tuple[str, int]]:
    """(sentence, label) pairs; label 1 = positive."""
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader)
        if header[:2] != ["sentence", "label"]:
            raise BuildError(f"{path}: expected the header 'sentence<TAB>label', got {header}")
        for row in reader:
            if len(row) >= 2:
                rows.append((row[0].strip(), int(row[1])))
    return rows


# ---------------------------------------------------------------- named entities


def iob1_to_bio(tags: Sequence[str]) -> list[str]:
    """IOB1 tags (CoNLL-2003) -> BIO: every entity starts with ``B-``."""
    out = []
    prev = "O"
    for tag in tags:
        if tag.startswith("I-") and prev[2:] != tag[2:]:
            out.append("B-" + tag[2:])
        else:
            out.append(tag)
        prev = tag
    return out


def read_conll(path: Path) -> list[tuple[list[str], list[str]]]:
    """Sentences of a CoNLL-2003 file as (tokens, BIO tags); ``-DOCSTART-`` lines are dropped."""
    sentences: list[tuple[list[str], list[str]]] = []
    tokens: list[str] = []
    tags: list[str] = []

    def flush() -> None:
        if tokens:
            sentences.append((list(tokens), iob1_to_bio(tags)))
        tokens.clear()
        tags.clear()

    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if not parts or parts[0] == "-DOCSTART-":
                flush()
                continue
            tokens.append(parts[0])
            tags.append(parts[-1])
    flush()
    return sentences


def spans_of(tags: Sequence[str]) -> set[tuple[int, int, str]]:
    """Entity spans ``(start, end_exclusive, type)`` of a BIO sequence, read like conlleval/seqeval: an
    ``I-X`` that does not continue an ``X`` entity starts one."""
    spans = set()
    start, kind = -1, ""
    for i, tag in enumerate([*tags, "O"]):
        boundary = tag == "O" or tag.startswith("B-") or tag[2:] != kind
        if boundary and start >= 0:
            spans.add((start, i, kind))
            start, kind = -1, ""
        if tag != "O" and (start < 0):
            start, kind = i, tag[2:]
    return spans


# ---------------------------------------------------------------- NLI


@dataclass(frozen=True)
class Pair:
    """Two texts and a label (an NLI pair, or a query and a passage)."""

    a: str
    b: str
    label: int


def read_snli(s1: Path, s2: Path, labels: Path) -> list[Pair]:
    """SNLI from e-SNLI's parallel files; labels mapped to :data:`NLI_LABELS` indices."""
    a = s1.read_text(encoding="utf-8").splitlines()
    b = s2.read_text(encoding="utf-8").splitlines()
    y = labels.read_text(encoding="utf-8").splitlines()
    if not len(a) == len(b) == len(y):
        raise BuildError(f"SNLI files of different lengths: {len(a)}, {len(b)}, {len(y)}")
    return [
        Pair(p.strip(), h.strip(), NLI_LABELS.index(lab.strip())) for p, h, lab in zip(a, b, y, strict=True)
    ]


def read_mnli_sample(path: Path) -> list[Pair]:
    """TextFooler's MNLI samples: ``label<TAB>premise<TAB>hypothesis``."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        label, premise, hypothesis = line.split("\t")[:3]
        out.append(Pair(premise.strip(), hypothesis.strip(), NLI_LABELS.index(label.strip())))
    return out


# ---------------------------------------------------------------- SciFact (BEIR)


@dataclass(frozen=True)
class SciFact:
    corpus: dict[str, str]  # doc id -> "title. text"
    titles: dict[str, str]
    bodies: dict[str, str]
    queries: dict[str, str]
    train: dict[str, set[str]]  # query id -> relevant doc ids
    test: dict[str, set[str]]


def _qrels(path: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            qid, did, score = line.split("\t")
            if int(score) > 0:
                out.setdefault(qid, set()).add(did)
    return out


def _jsonl(path: Path) -> Iterable[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def read_scifact(corpus: Path, queries: Path, train: Path, test: Path) -> SciFact:
    titles, bodies = {}, {}
    for doc in _jsonl(corpus):
        titles[doc["_id"]] = doc.get("title", "").strip()
        bodies[doc["_id"]] = doc.get("text", "").strip()
    joined = {d: passage(titles[d], bodies[d]) for d in titles}
    qs = {q["_id"]: q["text"].strip() for q in _jsonl(queries)}
    return SciFact(joined, titles, bodies, qs, _qrels(train), _qrels(test))


def passage(title: str, text: str) -> str:
    """A document as both models see it: the title, then the abstract (BEIR's convention)."""
    return f"{title} {text}".strip() if title else text
