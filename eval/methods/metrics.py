"""The figures of the methods measurement: accuracy, macro-F1 and a paired bootstrap for classification;
nDCG@10 and MRR@10 for ranking. Pure functions over lists."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from builder.convert.retrieval import ndcg_at_k  # the task-model build's nDCG, the same definition

__all__ = ["accuracy", "macro_f1", "mrr_at_k", "ndcg_at_k", "paired_bootstrap"]


def accuracy(gold: Sequence[str], pred: Sequence[str]) -> float:
    return sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold) if gold else 0.0


def macro_f1(gold: Sequence[str], pred: Sequence[str]) -> float:
    """The unweighted mean of each gold label's F1 (a label never predicted scores 0)."""
    labels = sorted(set(gold))
    total = 0.0
    for label in labels:
        tp = sum(g == label and p == label for g, p in zip(gold, pred, strict=True))
        fp = sum(g != label and p == label for g, p in zip(gold, pred, strict=True))
        fn = sum(g == label and p != label for g, p in zip(gold, pred, strict=True))
        total += 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return total / len(labels) if labels else 0.0


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], *, rounds: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """mean(a - b) over paired per-item scores with its 95% bootstrap interval: (mean, low, high)."""
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    n = len(diffs)
    if not n:
        return 0.0, 0.0, 0.0
    rng = random.Random(seed)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(rounds))
    return sum(diffs) / n, means[int(0.025 * rounds)], means[int(0.975 * rounds) - 1]


def mrr_at_k(ranked: Mapping[str, Sequence[str]], qrels: Mapping[str, set[str]], k: int = 10) -> float:
    """Mean reciprocal rank of the first relevant document within the top ``k`` (0 when none is)."""
    total = 0.0
    for qid, relevant in qrels.items():
        for i, d in enumerate(ranked.get(qid, [])[:k]):
            if d in relevant:
                total += 1.0 / (i + 1)
                break
    return total / max(len(qrels), 1)
