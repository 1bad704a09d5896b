"""Calibrate and evaluate the prompt-complexity estimator (py_src/hybrid_router/complexity.py).

    ./hr python eval/complexity_calibrate.py [--data ../shared/data] [--write] [--sample]

Label ("hard" = needs the cloud): RouteLLM's MMLU and GSM8K prompts where Mixtral-8x7B-Instruct (the
"small" model of that data, far stronger than our on-device SmolLM2-135M) answered wrong. Prompts listed
in routellm/*_contaminated_prompts.jsonl are excluded. A held-out split (25%, seed 0, stratified by
source and label) is never used for fitting or for the threshold. MT-Bench (Mixtral judged <= 7/10) is
an out-of-distribution check; alpaca_eval (unlabelled, CC-BY-NC: never committed) is only used to see
how often everyday instructions would be sent to the cloud.

--write   regenerates the coefficient block of complexity.py (fitted on the training split only)
--sample  rewrites tests/data/complexity_sample.jsonl from the held-out split (Apache/MIT data only)
Needs numpy, scipy and scikit-learn (calibration time only; the estimator itself is stdlib Python).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "py_src"))
from hybrid_router import complexity  # noqa: E402

MODULE = ROOT / "py_src" / "hybrid_router" / "complexity.py"
SAMPLE = ROOT / "tests" / "data" / "complexity_sample.jsonl"
SMALL, LARGE = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"
SEED, TEST_SIZE, C = 0, 0.25, 1.0
MT_BENCH_HARD_AT_MOST = 7.0
#: Shape features whose sign the fit may choose; every other (cue) feature gets a weight >= 0.
SIGNED = frozenset({"avg_word_len", "long_word_share", "sentences_log", "questions", "multiple_choice"})


@dataclass
class Item:
    source: str
    prompt: str | list[dict[str, str]]
    hard: int
    large_correct: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _contaminated(data: Path, name: str) -> set[str]:
    path = data / "routellm" / f"{name}_contaminated_prompts.jsonl"
    return {json.loads(line)["eval_prompt"].strip() for line in path.open(encoding="utf-8")}


def _responses(path: Path, source: str, skip: set[str], extra: dict[str, Any]) -> list[Item]:
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        Item(source, r["prompt"], int(r[SMALL] != "True"), int(r[LARGE] == "True"), dict(extra))
        for r in rows
        if r["prompt"].strip() not in skip
    ]


def load_routellm(data: Path) -> list[Item]:
    items = _responses(data / "routellm/gsm8k_responses.csv", "gsm8k", _contaminated(data, "gsm8k"), {})
    skip = _contaminated(data, "mmlu")
    for path in sorted((data / "routellm/mmlu_responses").glob("mmlu_*.csv")):
        items += _responses(path, "mmlu", skip, {"subject": path.stem.removeprefix("mmlu_")})
    return items


def load_mt_bench(data: Path) -> list[Item]:
    """Turn 1 as a string and turn 2 as chat messages; hard = Mixtral judged <= 7/10 on that turn."""
    d = data / "routellm"
    skip = _contaminated(data, "mt_bench")
    scores: dict[tuple[int, int], float] = {}
    for line in (d / "mt_bench_judgements.jsonl").open(encoding="utf-8"):
        j = json.loads(line)
        if j["model"] == SMALL:
            scores[(j["question_id"], j["turn"])] = float(j["score"])
    items = []
    for line in (d / "mt_bench_question.jsonl").open(encoding="utf-8"):
        q = json.loads(line)
        t1, t2 = q["turns"][:2]
        if t1.strip() in skip:
            continue
        extra = {"category": q["category"], "question_id": q["question_id"]}
        items.append(
            Item("mt_bench_t1", t1, int(scores[(q["question_id"], 1)] <= MT_BENCH_HARD_AT_MOST), None, extra)
        )
        chat = [
            {"role": "user", "content": t1},
            {"role": "assistant", "content": "(answer)"},
            {"role": "user", "content": t2},
        ]
        items.append(
            Item(
                "mt_bench_t2", chat, int(scores[(q["question_id"], 2)] <= MT_BENCH_HARD_AT_MOST), None, extra
            )
        )
    return items


def load_alpaca(data: Path) -> list[str]:
    path = data / "alpaca_eval" / "alpaca_eval.jsonl"
    return [json.loads(line)["instruction"] for line in path.open(encoding="utf-8")]


def featurize(prompt: str | list[dict[str, str]], names: list[str]) -> list[float]:
    if isinstance(prompt, str):
        feats = complexity.extract_features(prompt)
    else:
        users = [m["content"] for m in prompt if m["role"] == "user"]
        feats = complexity.extract_features(users[-1], len(users) - 1)
    return [feats[n] for n in names]


def fit(
    x: np.ndarray, y: np.ndarray, sources: np.ndarray, names: list[str]
) -> tuple[float, list[tuple[str, float, float]]]:
    """L2 logistic regression on standardised features, each source weighted equally, cue features held
    to weights >= 0 (a cue may only push towards the cloud); returns the weights in raw units."""
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / std
    sw = np.ones(len(y))
    for s in set(sources):
        sw[sources == s] = len(y) / (len(set(sources)) * (sources == s).sum())

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        m = theta[0] + z @ theta[1:]
        g = C * sw * (1 / (1 + np.exp(-m)) - y)
        value = C * np.sum(sw * (np.logaddexp(0, m) - y * m)) + 0.5 * theta[1:] @ theta[1:]
        return float(value), np.concatenate([[g.sum()], z.T @ g + theta[1:]])

    bounds = [(None, None)] + [(None, None) if n in SIGNED else (0.0, None) for n in names]
    theta = minimize(loss, np.zeros(len(names) + 1), jac=True, method="L-BFGS-B", bounds=bounds).x
    coefs = theta[1:] / std
    return round(float(theta[0]), 4), [
        (n, round(float(w), 4), round(float(m), 4)) for n, w, m in zip(names, coefs, mean, strict=True)
    ]


def cv_auc(x: np.ndarray, y: np.ndarray, sources: np.ndarray, names: list[str]) -> list[float]:
    """5-fold cross-validated AUC on the training split (for choosing features without the held-out set)."""
    strata = np.array([f"{s}:{v}" for s, v in zip(sources, y, strict=True)])
    out = []
    for a, b in StratifiedKFold(5, shuffle=True, random_state=SEED).split(x, strata):
        score = scorer(*fit(x[a], y[a], sources[a], names))
        out.append(float(roc_auc_score(y[b], [score(list(r)) for r in x[b]])))
    return out


def scorer(intercept: float, weights: list[tuple[str, float, float]]) -> Callable[[list[float]], float]:
    def score(row: list[float]) -> float:
        z = intercept + sum(w * (v - c) for (_, w, c), v in zip(weights, row, strict=True))
        return 1.0 / (1.0 + math.exp(-z))

    return score


def best_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The threshold with the best balanced accuracy (Youden's J) on the given (training) data."""
    best, best_j = 0.5, -1.0
    for t in np.unique(np.round(p, 3)):
        pred = p >= t
        j = pred[y == 1].mean() + (~pred[y == 0]).mean() - 1
        if j > best_j:
            best, best_j = float(t), float(j)
    return best


def metrics(y: np.ndarray, p: np.ndarray, t: float) -> dict[str, float]:
    pred = p >= t
    tp = float((pred & (y == 1)).sum())
    out = {
        "n": len(y),
        "hard%": 100 * y.mean(),
        "acc": (pred == (y == 1)).mean(),
        "majority_acc": max(y.mean(), 1 - y.mean()),
        "prec": tp / max(pred.sum(), 1),
        "recall": tp / max((y == 1).sum(), 1),
        "cloud%": 100 * pred.mean(),
    }
    out["auc"] = roc_auc_score(y, p) if 0 < y.sum() < len(y) else float("nan")
    return out


def table(rows: list[tuple[str, dict[str, float]]]) -> None:
    cols = ["n", "hard%", "auc", "acc", "majority_acc", "prec", "recall", "cloud%"]
    print(f"{'':34}" + "".join(f"{c:>13}" for c in cols))
    for name, m in rows:
        print(f"{name:34}" + "".join(f"{m[c]:13.3f}" if c != "n" else f"{int(m[c]):13d}" for c in cols))


def write_block(
    version: str, threshold: float, intercept: float, weights: list[tuple[str, float, float]], summary: str
) -> None:
    lines = [
        "# BEGIN GENERATED by eval/complexity_calibrate.py --write: do not edit by hand.",
        summary,
        f'VERSION = "{version}"',
        f"DEFAULT_THRESHOLD = {threshold}",
        f"INTERCEPT = {intercept}",
        "#: (feature, weight per unit, centre): the centre is the training mean.",
        "WEIGHTS: tuple[tuple[str, float, float], ...] = (",
    ]
    lines += [f'    ("{n}", {w}, {c}),' for n, w, c in weights] + [")", "# END GENERATED"]
    text = MODULE.read_text(encoding="utf-8")
    new = re.sub(r"# BEGIN GENERATED.*?# END GENERATED", lambda _: "\n".join(lines), text, flags=re.DOTALL)
    MODULE.write_text(new, encoding="utf-8")


def write_sample(items: list[Item], per_cell: int) -> None:
    """A small, attributed, balanced sample of held-out prompts (routellm: Apache-2.0; MMLU/GSM8K: MIT)."""
    rng = random.Random(SEED)
    out = []
    for source in ("mmlu", "gsm8k", "mt_bench_t1"):
        for hard in (1, 0):
            cell = [it for it in items if it.source == source and it.hard == hard]
            n = per_cell if source != "mt_bench_t1" else per_cell // 2
            out += rng.sample(cell, min(n, len(cell)))
    SAMPLE.parent.mkdir(parents=True, exist_ok=True)
    with SAMPLE.open("w", encoding="utf-8") as f:
        for it in out:
            f.write(
                json.dumps(
                    {
                        "source": it.source.removesuffix("_t1"),
                        "prompt": it.prompt,
                        "hard": it.hard,
                        **it.extra,
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
    print(f"wrote {len(out)} prompts to {SAMPLE.relative_to(ROOT)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--write", action="store_true", help="regenerate the coefficient block in complexity.py")
    ap.add_argument("--sample", action="store_true", help="rewrite tests/data/complexity_sample.jsonl")
    args = ap.parse_args()
    names = [n for n in complexity.FEATURE_NAMES if n != "prior_turns_log"]  # turns: a documented prior

    items = load_routellm(args.data)
    strata = [f"{it.source}:{it.hard}" for it in items]
    train, test = train_test_split(items, test_size=TEST_SIZE, random_state=SEED, stratify=strata)
    xtr = np.array([featurize(it.prompt, names) for it in train])
    ytr, str_ = np.array([it.hard for it in train]), np.array([it.source for it in train])
    xte = np.array([featurize(it.prompt, names) for it in test])
    yte = np.array([it.hard for it in test])

    folds = cv_auc(xtr, ytr, str_, names)
    print(f"5-fold CV AUC on the training split: {statistics.mean(folds):.3f} (min {min(folds):.3f})")
    intercept, weights = fit(xtr, ytr, str_, names)
    score = scorer(intercept, weights)
    threshold = round(best_threshold(ytr, np.array([score(list(r)) for r in xtr])), 3)
    pte = np.array([score(list(r)) for r in xte])
    b_int, b_w = fit(xtr[:, [0]], ytr, str_, names[:1])
    b_score = scorer(b_int, b_w)
    b_thr = round(best_threshold(ytr, np.array([b_score([r[0]]) for r in xtr])), 3)
    bte = np.array([b_score([r[0]]) for r in xte])

    print(
        f"label: hard = Mixtral-8x7B wrong; train {len(train)}, held-out {len(test)} (seed {SEED}); "
        f"threshold {threshold} (best balanced accuracy on train)\n"
    )
    rows = [
        ("held-out, all (features)", metrics(yte, pte, threshold)),
        ("held-out, all (length only)", metrics(yte, bte, b_thr)),
    ]
    for source in ("mmlu", "gsm8k"):
        mask = np.array([it.source == source for it in test])
        rows += [
            (f"held-out, {source} (features)", metrics(yte[mask], pte[mask], threshold)),
            (f"held-out, {source} (length only)", metrics(yte[mask], bte[mask], b_thr)),
        ]
    helps = np.array([it.hard == 0 or it.large_correct == 1 for it in test])
    rows.append(("held-out, 'cloud helps' label *", metrics(yte[helps], pte[helps], threshold)))

    mt = load_mt_bench(args.data)
    for source in ("mt_bench_t1", "mt_bench_t2"):
        sub = [it for it in mt if it.source == source]
        y = np.array([it.hard for it in sub])
        p = np.array([complexity_score(it.prompt, intercept, weights) for it in sub])
        rows.append((f"{source} (OOD, score<=7 hard)", metrics(y, p, threshold)))
    table(rows)
    print("* hard = Mixtral wrong and GPT-4 right vs. Mixtral right (both-wrong prompts dropped)")
    ptr = np.array([score(list(r)) for r in xtr])
    acc_t = max(np.unique(np.round(ptr, 3)), key=lambda t: float(((ptr >= t) == (ytr == 1)).mean()))
    m_acc = metrics(yte, pte, float(acc_t))
    print(
        f"for comparison, the accuracy-maximising threshold on train ({acc_t:.3f}) gives held-out accuracy "
        f"{m_acc['acc']:.3f} (majority {m_acc['majority_acc']:.3f}), recall {m_acc['recall']:.3f}\n"
    )

    t1 = [it for it in mt if it.source == "mt_bench_t1"]
    cats = sorted({it.extra["category"] for it in t1})

    def scores_of(category: str) -> list[float]:
        return [
            complexity_score(it.prompt, intercept, weights) for it in t1 if it.extra["category"] == category
        ]

    print(
        "MT-Bench turn 1, mean score by category: "
        + ", ".join(f"{c} {statistics.mean(scores_of(c)):.2f}" for c in cats)
    )
    alpaca = [complexity_score(p, intercept, weights) for p in load_alpaca(args.data)]
    q = statistics.quantiles(alpaca, n=10)
    print(
        f"alpaca_eval ({len(alpaca)} everyday instructions, unlabelled): "
        f"{100 * np.mean(np.array(alpaca) >= threshold):.1f}% "
        f"at or above the threshold; score deciles {', '.join(f'{v:.2f}' for v in q)}"
    )
    print(
        "held-out MMLU+GSM8K score deciles: "
        f"{', '.join(f'{v:.2f}' for v in statistics.quantiles(pte, n=10))}\n"
    )

    print("weights (per raw unit; contribution = w * (x - centre)):")
    for n, w, c in sorted(weights, key=lambda t: -abs(t[1])):
        print(f"  {n:20} {w:+8.4f}  centre {c:8.4f}")
    print(
        f"  intercept {intercept:+.4f}; length-only: {b_w[0][1]:+.4f} * (chars_log - {b_w[0][2]}), "
        f"intercept {b_int:+.4f}, threshold {b_thr}"
    )

    all_m = rows[0][1]
    version = f"lexical-lr-{len(names)}f-s{SEED}"
    summary = (
        f"# Fitted on {len(train)} RouteLLM MMLU+GSM8K prompts (hard = Mixtral-8x7B wrong); held-out "
        f"{len(test)}: AUC {all_m['auc']:.3f}\n# (length only {rows[1][1]['auc']:.3f}), accuracy "
        f"{all_m['acc']:.3f} at the threshold (precision {all_m['prec']:.3f}, "
        f"recall {all_m['recall']:.3f});\n# MMLU AUC {rows[2][1]['auc']:.3f} (length only "
        f"{rows[3][1]['auc']:.3f}), GSM8K {rows[4][1]['auc']:.3f} (length only {rows[5][1]['auc']:.3f})."
    )
    current = (complexity.INTERCEPT, list(complexity.WEIGHTS), complexity.DEFAULT_THRESHOLD)
    if args.write:
        write_block(version, threshold, intercept, weights, summary)
        print(f"\nwrote the coefficient block of {MODULE.relative_to(ROOT)}")
    else:
        same = current == (intercept, weights, threshold)
        print(
            f"\ncomplexity.py coefficients {'match' if same else 'DIFFER from'} this fit (--write to update)"
        )
    if args.sample:
        write_sample(test + [it for it in mt if it.source == "mt_bench_t1"], per_cell=8)
    with using(intercept, weights):
        timing(test)


@contextmanager
def using(intercept: float, weights: list[tuple[str, float, float]]) -> Iterator[None]:
    """Run complexity.estimate with these coefficients (the committed ones may be out of date)."""
    saved = complexity.INTERCEPT, complexity.WEIGHTS
    complexity.INTERCEPT, complexity.WEIGHTS = intercept, tuple(weights)
    try:
        yield
    finally:
        complexity.INTERCEPT, complexity.WEIGHTS = saved


def complexity_score(
    prompt: str | list[dict[str, str]], intercept: float, weights: list[tuple[str, float, float]]
) -> float:
    with using(intercept, weights):
        return complexity.estimate(prompt).score


def timing(items: list[Item]) -> None:
    prompts = [it.prompt for it in items[:2000]]
    times = []
    for p in prompts:
        t0 = time.perf_counter()
        complexity.estimate(p)
        times.append(time.perf_counter() - t0)
    chars = statistics.median(len(p) for p in prompts if isinstance(p, str))
    p99 = statistics.quantiles(times, n=100)[98]
    print(
        f"estimate() in CPython: median {1e6 * statistics.median(times):.0f} us, p99 {1e6 * p99:.0f} us, "
        f"max {1e6 * max(times):.0f} us over {len(times)} held-out prompts (median {chars:.0f} chars)"
    )


if __name__ == "__main__":
    main()
