"""The learned prompt router with its shipped weights, on the committed handwritten prompts (no data, no
model: their embeddings are committed as float16, which also stands in for the worker's q8 drift)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hybrid_router import prompt_features
from hybrid_router.cloud_share import share_at
from hybrid_router.errors import ModelLoadError, ValidationError
from hybrid_router.prompt_features import EMBED_HEAD_CHARS, EMBED_TAIL_CHARS, embedding_text, router_text
from hybrid_router.prompt_router import HEAD_EMBEDDING, HEAD_LEXICAL, WEIGHTS_PATH, PromptRouter, RouterScore

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def router() -> PromptRouter:
    return PromptRouter.load()


@pytest.fixture(scope="module")
def handwritten() -> tuple[list[dict[str, Any]], np.ndarray]:
    rows = [json.loads(line) for line in (DATA / "router_handwritten.jsonl").read_text().splitlines()]
    vectors = np.load(DATA / "router_handwritten_embeddings.npy").astype(np.float64)
    return rows, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _auc(pos: list[float], neg: list[float]) -> float:
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


def test_shipped_weights_load(router: PromptRouter) -> None:
    assert router.dims == 384
    assert router.lexical_names == prompt_features.LEXICAL_FEATURES
    assert router.topic_names[-1] == "everyday" and len(router.topic_names) == 6
    for head in (HEAD_EMBEDDING, HEAD_LEXICAL):
        assert 0.0 < router.threshold(head) < 1.0
        assert len(router.reference_scores(head)) == 1000


def test_hard_prompts_score_higher(
    router: PromptRouter, handwritten: tuple[list[dict[str, Any]], np.ndarray]
) -> None:
    # These prompts are part of the training data (in-sample): a sanity check, not an evaluation (see
    # eval/router_eval.py for the leave-one-source-out figures).
    rows, vectors = handwritten
    scores = [router.score(r["prompt"], v).score for r, v in zip(rows, vectors, strict=True)]
    lexical = [router.score(r["prompt"]).score for r in rows]
    hard = [r["hard"] == 1 for r in rows]

    def auc(values: list[float]) -> float:
        pairs = list(zip(values, hard, strict=True))
        return _auc([v for v, h in pairs if h], [v for v, h in pairs if not h])

    assert auc(scores) > 0.9
    assert auc(lexical) > 0.8


def test_the_issue_examples(
    router: PromptRouter, handwritten: tuple[list[dict[str, Any]], np.ndarray]
) -> None:
    rows, vectors = handwritten
    by_prompt = {r["prompt"]: v for r, v in zip(rows, vectors, strict=True)}
    code = "Write a function to generate cryptographically secure random numbers."
    plus = "What is 7 plus 5?"
    high, low = router.score(code, by_prompt[code]), router.score(plus, by_prompt[plus])
    # the complexity estimator ranked these the other way round (issue 13: 0.117 vs 0.215); "7 plus 5"
    # sits near the threshold (it resembles math prompts), so only the order and the code prompt's side
    # are asserted
    assert high.score > low.score
    assert high.score >= high.threshold
    assert high.drivers[0].startswith("resembles coding prompts")


def test_score_shape_and_determinism(
    router: PromptRouter, handwritten: tuple[list[dict[str, Any]], np.ndarray]
) -> None:
    rows, vectors = handwritten
    first = router.score(rows[0]["prompt"], vectors[0])
    assert first == router.score(rows[0]["prompt"], vectors[0].tolist())
    assert isinstance(first, RouterScore) and first.head == HEAD_EMBEDDING and 0.0 <= first.score <= 1.0
    assert first.version == router.version
    assert set(prompt_features.LEXICAL_FEATURES) <= set(first.features)
    assert {"embedding_logit", "lexical_logit", "similarity:coding"} <= set(first.features)
    assert all(isinstance(v, float) and math.isfinite(v) for v in first.features.values())
    assert first.drivers and all(isinstance(d, str) and d for d in first.drivers)
    wire = first.to_wire()
    assert json.loads(json.dumps(wire)) == {**wire, "drivers": list(first.drivers)}
    fallback = router.score(rows[0]["prompt"])
    assert fallback.head == HEAD_LEXICAL and "embedding_logit" not in fallback.features


def test_small_embedding_drift_moves_the_score_little(
    router: PromptRouter, handwritten: tuple[list[dict[str, Any]], np.ndarray]
) -> None:
    # The worker's q8 embeddings differ from sentence-transformers' by ~1e-3 per component.
    rows, vectors = handwritten
    rng = np.random.default_rng(0)
    for r, v in zip(rows[:20], vectors[:20], strict=True):
        noisy = v + rng.normal(0, 1e-3, v.shape)
        assert abs(router.score(r["prompt"], noisy).score - router.score(r["prompt"], v).score) < 0.01


def test_chat_messages_use_the_last_user_message(router: PromptRouter) -> None:
    chat: list[dict[str, Any]] = [
        {"role": "user", "content": "Hi!"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": [{"type": "text", "text": "Prove that 17 is prime."}]},
    ]
    assert router_text(chat) == ("Prove that 17 is prime.", 1)
    scored = router.score_prompt(chat)
    assert scored.features["prior_turns_log"] == pytest.approx(math.log(2))
    assert scored == router.score("Prove that 17 is prime.", prior_turns=1)


@pytest.mark.parametrize(
    "embedding",
    [np.zeros(10), np.full(384, np.nan), np.ones(384), "not a vector"],
)
def test_bad_embeddings_are_validation_errors(router: PromptRouter, embedding: Any) -> None:
    with pytest.raises(ValidationError) as err:
        router.score("Hello", embedding)
    assert err.value.details["field"] == "embedding"


def test_bad_prompts_are_validation_errors(router: PromptRouter) -> None:
    for bad in ("", "   ", 42, [{"role": "assistant", "content": "x"}], ["not a message"]):
        with pytest.raises(ValidationError):
            router.score_prompt(bad)  # type: ignore[arg-type]  # bad on purpose
    with pytest.raises(ValidationError):
        router.threshold("nope")


def test_embedding_text_cuts_long_prompts_to_head_and_tail() -> None:
    short = "  What is the capital of France?  "
    assert embedding_text(short) == short.strip()
    long = "A" * 5000 + "Now summarize the text above in one line."
    cut = embedding_text(long)
    assert len(cut) == EMBED_HEAD_CHARS + EMBED_TAIL_CHARS + len("\n...\n")
    assert cut.startswith("A" * EMBED_HEAD_CHARS) and cut.endswith(
        "Now summarize the text above in one line."
    )
    assert embedding_text(long) == cut  # a pure function: the worker computes the same string


def test_target_cloud_share_hits_the_reference_mix(router: PromptRouter) -> None:
    # The tolerance the calibration promises on its own mix: 1 / len(mix) (0.1 percentage points).
    for head in (HEAD_EMBEDDING, HEAD_LEXICAL):
        scores = router.reference_scores(head)
        previous = math.inf
        for share in (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.9, 1.0):
            t = router.threshold_for_share(share, head)
            assert abs(share_at(scores, t) - share) <= 1 / len(scores)
            assert t <= previous
            previous = t


def test_broken_weights_are_model_load_errors(tmp_path: Path) -> None:
    data = json.loads(WEIGHTS_PATH.read_text())
    with pytest.raises(ModelLoadError):
        PromptRouter.from_dict({**data, "format_version": 99})
    with pytest.raises(ModelLoadError):
        PromptRouter.from_dict({**data, "lexical_features": data["lexical_features"][:-1]})
    broken = json.loads(json.dumps(data))
    broken["heads"][HEAD_EMBEDDING]["embedding_weights"] = [0.0] * 3
    with pytest.raises(ModelLoadError):
        PromptRouter.from_dict(broken)
    (tmp_path / "w.json").write_text("{not json")
    with pytest.raises(ModelLoadError):
        PromptRouter.load(tmp_path / "w.json")
