"""The label sets of the zero-shot measurement: texts with a gold label among candidate labels that neither
method was trained on, and the retrieval set of the reranking measurement.

What the models saw: the NLI model (``minilm-l6-nli``) was fine-tuned from all-MiniLM-L6-v2 on SNLI dev
(minus 1,000 held out) and 2,000 MNLI pairs (``models_manifest.json``, its ``conversion.train.files``);
the embedding model, all-MiniLM-L6-v2, was trained by its authors on 1B sentence pairs (Reddit, S2ORC,
WikiAnswers, Stack Exchange, SNLI/MNLI, ...; none of these sets' label names). None of the sets below
is SNLI or MNLI, and :func:`check_held_out` refuses a text that is among the NLI model's training pairs.

- ``sst2``: SST-2 phrases (``sst2/dev.tsv``), labels "positive" / "negative";
- ``mmlu``: MMLU test questions (the question alone), labels MMLU's four categories by its own
  subject -> subcategory -> category table (``categories.py`` of hendrycks/test);
- ``mmlu-topics``: the same questions, labels MMLU's 17 subcategories ("physics", "law", "health", ...);
- ``flask``: FLASK instructions annotated with exactly one of its 10 domains ("Math", "Coding",
  "Culture", ...; FLASK's "-1", no domain, is left out).
- ``scifact``: SciFact test claims (BEIR) with their relevant abstracts; the reranker trained on the
  train claims only.

A sample is drawn with a fixed seed, stratified where a set has many labels (MMLU: round-robin over
subjects), so reruns score the same items.
"""

from __future__ import annotations

import csv
import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CLASSIFY_SETS",
    "MMLU_CATEGORIES",
    "MMLU_SUBCATEGORIES",
    "LabelSet",
    "check_held_out",
    "load",
    "nli_training_texts",
]

#: MMLU's subject -> subcategory (hendrycks/test, categories.py)
MMLU_SUBCATEGORIES: dict[str, str] = {
    "abstract_algebra": "math",
    "anatomy": "health",
    "astronomy": "physics",
    "business_ethics": "business",
    "clinical_knowledge": "health",
    "college_biology": "biology",
    "college_chemistry": "chemistry",
    "college_computer_science": "computer science",
    "college_mathematics": "math",
    "college_medicine": "health",
    "college_physics": "physics",
    "computer_security": "computer science",
    "conceptual_physics": "physics",
    "econometrics": "economics",
    "electrical_engineering": "engineering",
    "elementary_mathematics": "math",
    "formal_logic": "philosophy",
    "global_facts": "other",
    "high_school_biology": "biology",
    "high_school_chemistry": "chemistry",
    "high_school_computer_science": "computer science",
    "high_school_european_history": "history",
    "high_school_geography": "geography",
    "high_school_government_and_politics": "politics",
    "high_school_macroeconomics": "economics",
    "high_school_mathematics": "math",
    "high_school_microeconomics": "economics",
    "high_school_physics": "physics",
    "high_school_psychology": "psychology",
    "high_school_statistics": "math",
    "high_school_us_history": "history",
    "high_school_world_history": "history",
    "human_aging": "health",
    "human_sexuality": "culture",
    "international_law": "law",
    "jurisprudence": "law",
    "logical_fallacies": "philosophy",
    "machine_learning": "computer science",
    "management": "business",
    "marketing": "business",
    "medical_genetics": "health",
    "miscellaneous": "other",
    "moral_disputes": "philosophy",
    "moral_scenarios": "philosophy",
    "nutrition": "health",
    "philosophy": "philosophy",
    "prehistory": "history",
    "professional_accounting": "other",
    "professional_law": "law",
    "professional_medicine": "health",
    "professional_psychology": "psychology",
    "public_relations": "politics",
    "security_studies": "politics",
    "sociology": "culture",
    "us_foreign_policy": "politics",
    "virology": "health",
    "world_religions": "philosophy",
}
#: MMLU's category -> its subcategories (hendrycks/test, categories.py), named as MMLU spells them
MMLU_CATEGORIES: dict[str, tuple[str, ...]] = {
    "STEM": ("physics", "chemistry", "biology", "computer science", "math", "engineering"),
    "humanities": ("history", "philosophy", "law"),
    "social sciences": ("politics", "culture", "economics", "geography", "psychology"),
    "other (business, health, misc.)": ("other", "business", "health"),
}
#: the default size of each set's sample
CLASSIFY_SETS: dict[str, int] = {"sst2": 1000, "mmlu": 1000, "mmlu-topics": 600, "flask": 500}


@dataclass(frozen=True)
class LabelSet:
    """Texts, their gold labels, the candidate labels (in a fixed order) and where they came from."""

    name: str
    title: str
    labels: tuple[str, ...]
    texts: tuple[str, ...]
    gold: tuple[str, ...]
    source: str


def _category(subject: str) -> str:
    sub = MMLU_SUBCATEGORIES[subject]
    return next(cat for cat, subs in MMLU_CATEGORIES.items() if sub in subs)


def _sst2(data: Path, n: int, seed: int) -> LabelSet:
    rows = []
    with open(data / "sst2" / "dev.tsv", encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        rows = [(r[0].strip(), "positive" if r[1] == "1" else "negative") for r in reader if len(r) >= 2]
    rows = [r for r in rows if r[0]]
    random.Random(seed).shuffle(rows)
    rows = rows[:n]
    return LabelSet(
        "sst2",
        'SST-2 dev phrases, "positive" / "negative"',
        ("positive", "negative"),
        tuple(t for t, _ in rows),
        tuple(g for _, g in rows),
        "sst2/dev.tsv",
    )


def _mmlu_questions(data: Path, n: int, seed: int) -> list[tuple[str, str]]:
    """(question, subject), round-robin over the subjects in a seeded order of each subject's questions."""
    by_subject: dict[str, list[str]] = {}
    for path in sorted((data / "mmlu" / "test").glob("*_test.csv")):
        subject = path.name[: -len("_test.csv")]
        with open(path, encoding="utf-8", newline="") as f:
            questions = [row[0].strip() for row in csv.reader(f) if row and row[0].strip()]
        random.Random(f"{seed}:{subject}").shuffle(questions)
        by_subject[subject] = questions
    missing = set(MMLU_SUBCATEGORIES) - set(by_subject)
    if missing:
        raise SystemExit(f"error: MMLU test files missing for {sorted(missing)[:3]}...")
    out: list[tuple[str, str]] = []
    depth = 0
    while len(out) < n and any(depth < len(q) for q in by_subject.values()):
        for subject in sorted(by_subject):
            if depth < len(by_subject[subject]) and len(out) < n:
                out.append((by_subject[subject][depth], subject))
        depth += 1
    return out


def _mmlu(data: Path, n: int, seed: int) -> LabelSet:
    rows = _mmlu_questions(data, n, seed)
    return LabelSet(
        "mmlu",
        "MMLU test questions, MMLU's 4 categories",
        tuple(MMLU_CATEGORIES),
        tuple(q for q, _ in rows),
        tuple(_category(s) for _, s in rows),
        "mmlu/test/*.csv",
    )


def _mmlu_topics(data: Path, n: int, seed: int) -> LabelSet:
    rows = _mmlu_questions(data, n, seed)
    names = tuple(sorted(set(MMLU_SUBCATEGORIES.values())))
    return LabelSet(
        "mmlu-topics",
        "MMLU test questions, MMLU's 17 subcategories",
        names,
        tuple(q for q, _ in rows),
        tuple(MMLU_SUBCATEGORIES[s] for _, s in rows),
        "mmlu/test/*.csv",
    )


def _flask(data: Path, n: int, seed: int) -> LabelSet:
    rows = []
    with open(data / "flask" / "flask_evaluation.jsonl", encoding="utf-8") as f:
        for line in f:
            item = json.loads(line)
            domains = item.get("domain") or []
            # "-1": FLASK's mark for an instruction without a domain (not a label)
            if len(domains) == 1 and str(domains[0]) != "-1" and str(item.get("instruction", "")).strip():
                rows.append((str(item["instruction"]).strip(), str(domains[0])))
    domains = tuple(sorted({g for _, g in rows}))
    random.Random(seed).shuffle(rows)
    rows = rows[:n]
    return LabelSet(
        "flask",
        f"FLASK instructions with one domain, its {len(domains)} domains",
        domains,
        tuple(t for t, _ in rows),
        tuple(g for _, g in rows),
        "flask/flask_evaluation.jsonl",
    )


_LOADERS = {"sst2": _sst2, "mmlu": _mmlu, "mmlu-topics": _mmlu_topics, "flask": _flask}


def load(name: str, data: Path, n: int, seed: int = 0) -> LabelSet:
    return _LOADERS[name](data, n, seed)


def _key(text: str) -> str:
    """A sentence by its letters and digits (the NLI files are tokenized: "packages ." ~ "packages.")."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def nli_training_texts(data: Path, files: Mapping[str, Mapping[str, str]]) -> set[str]:
    """Every sentence of the NLI model's training files (a line, or each tab-separated field of one)."""
    out: set[str] = set()
    for spec in files.values():
        path = data / spec["path"]
        if path.is_file():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                out.update(k for k in map(_key, line.split("\t")) if len(k) > 12)
    return out


def check_held_out(sets: Sequence[LabelSet], seen: set[str]) -> dict[str, int]:
    """How many texts of each set are among the NLI model's training sentences (should be 0)."""
    return {s.name: sum(_key(t) in seen for t in s.texts) for s in sets}
