"""The methods measurement (eval/methods): its figures on small inline rankings, MMLU's category table, and
the zero-shot scoring it runs the router's step on (Transformers.js's pipeline) on given logits."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import numpy as np
import pytest
from eval.methods import metrics, sets
from eval.methods.onnx_runtime import Loaded, OnnxRuntime
from tests.unit.fakes import fake_manifest

from hybrid_router import text_tasks
from hybrid_router.manifest import ModelEntry
from hybrid_router.requests import ClassifyRequest


def test_accuracy_and_macro_f1() -> None:
    gold = ["a", "a", "a", "b"]
    assert metrics.accuracy(gold, ["a", "a", "a", "a"]) == 0.75
    # a: P 3/4 R 1 -> F1 6/7; b never predicted -> 0
    assert metrics.macro_f1(gold, ["a", "a", "a", "a"]) == pytest.approx((6 / 7) / 2)
    assert metrics.macro_f1(gold, gold) == 1.0


def test_ranking_figures() -> None:
    qrels = {"q1": {"d1"}, "q2": {"d9"}}
    ranked = {"q1": ["d2", "d1", "d3"], "q2": ["d1", "d2"]}
    assert metrics.mrr_at_k(ranked, qrels) == pytest.approx((1 / 2 + 0) / 2)
    assert metrics.ndcg_at_k(ranked, qrels) == pytest.approx((1 / math.log2(3)) / 2)


def test_the_paired_bootstrap_brackets_the_difference() -> None:
    a, b = [1.0] * 60 + [0.0] * 40, [1.0] * 40 + [0.0] * 60
    mean, low, high = metrics.paired_bootstrap(a, b)
    assert mean == pytest.approx(0.2) and low < 0.2 < high and low > 0


def test_every_mmlu_subject_has_one_of_mmlus_four_categories() -> None:
    assert len(sets.MMLU_SUBCATEGORIES) == 57
    assert set(sets.MMLU_SUBCATEGORIES.values()) == {
        s for subs in sets.MMLU_CATEGORIES.values() for s in subs
    }
    assert len(set(sets.MMLU_SUBCATEGORIES.values())) == 17


def _runtime_with_logits(tmp_path: Path, logits: dict[str, list[float]]) -> tuple[OnnxRuntime, ModelEntry]:
    """An OnnxRuntime whose NLI 'model' (entailment 0, neutral 1, contradiction 2) has answered ``logits``
    per hypothesis already: no ONNX file is run."""
    entry = fake_manifest().models[0]
    (tmp_path / "onnx").mkdir()
    (tmp_path / "config.json").write_text(
        json.dumps({"label2id": {"ENTAILMENT": 0, "neutral": 1, "contradiction": 2}})
    )
    rt = OnnxRuntime({entry.id: tmp_path})
    path = tmp_path / "onnx" / "model_quantized.onnx"
    rt._loaded[(entry.id, "q8")] = Loaded(entry, "q8", path, None, None, 256, frozenset(), "")
    for hypothesis, row in logits.items():
        rt._logits[(entry.id, "q8", "the text", hypothesis)] = np.asarray(row, np.float32)
    return rt, entry


def test_zero_shot_is_transformers_js_pipeline(tmp_path: Path) -> None:
    rt, entry = _runtime_with_logits(
        tmp_path,
        {"It is about {cats}.": [0.0, 0.0, 0.0], "It is about dogs.": [2.0, 0.0, 1.0]},
    )
    # the label goes in the first {} only, as String.replace does; single-label: softmax over entailment
    request = ClassifyRequest.parse(
        "the text", labels=["{cats}", "dogs"], hypothesis_template="It is about {}."
    )
    got = asyncio.run(text_tasks.zero_shot_labels(rt.as_runtime(), entry, "q8", request))
    e = math.exp(2.0)
    assert [label for label, _ in got] == ["dogs", "{cats}"]
    assert got[0][1] == pytest.approx(e / (e + 1)) and got[1][1] == pytest.approx(1 / (e + 1))
    # multi_label: per label, softmax of (contradiction, entailment)
    multi = ClassifyRequest.parse(
        "the text", labels=["{cats}", "dogs"], hypothesis_template="It is about {}.", multi_label=True
    )
    each = dict(asyncio.run(text_tasks.zero_shot_labels(rt.as_runtime(), entry, "q8", multi)))
    assert each["dogs"] == pytest.approx(math.exp(2.0) / (math.exp(2.0) + math.exp(1.0)))
    assert each["{cats}"] == pytest.approx(0.5)
