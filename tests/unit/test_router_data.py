"""The router's labelled prompt set: the committed parts always; the rest only with ../shared/data."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from eval import router_data
from eval.router_data import LabelledPrompt, dedupe

DATA = Path(
    os.environ.get("HYBRID_ROUTER_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data")
)
needs_data = pytest.mark.skipif(
    not (DATA / "routellm").is_dir(),
    reason=f"needs the shared data folder at {DATA} (not on a user's machine)",
)


def test_handwritten_prompts_are_labelled() -> None:
    rows = router_data.load_handwritten()
    assert len(rows) >= 100
    assert {p.topic for p in rows} <= set(router_data.TOPICS)
    assert all((p.hard == 1) == (p.topic in router_data.HARD_TOPICS) for p in rows)
    assert len({p.text for p in rows}) == len(rows)


def test_hand_labels_have_no_text() -> None:
    labels = router_data.read_hand_labels()
    assert len(labels) >= 300
    assert all(len(k) == 16 and int(k, 16) >= 0 for k in labels)
    assert {t for _, t in labels.values()} <= set(router_data.TOPICS)


def test_dedupe_keeps_a_prompt_in_its_first_source_only() -> None:
    a = [
        LabelledPrompt(
            "vicuna80", "Implement a queue data structure using two stacks in Python.", 1, "coding", ""
        )
    ]
    b = [
        LabelledPrompt(
            "flask", "Implement a queue data structure using two stacks in Python.\nInput: -", 1, "coding", ""
        ),
        LabelledPrompt("flask", "What is the capital of Australia?", 0, "everyday", ""),
    ]
    c = [LabelledPrompt("alpaca_eval", "What is the capital of Austria?", 0, "everyday", "")]
    kept, dropped = dedupe([a, b, c])
    assert [p.source for p in kept] == ["vicuna80", "flask", "alpaca_eval"]  # short prompts: exact only
    assert dropped == Counter({"flask": 1})


@needs_data
def test_the_labelled_set_from_the_data() -> None:
    prompts = router_data.load_all(DATA)
    counts = Counter((p.source, p.hard) for p in prompts)
    assert {p.source for p in prompts} == set(router_data.PRIORITY)
    assert sum(p.hard for p in prompts) > 3000 and sum(1 - p.hard for p in prompts) > 1000
    assert counts[("mmlu", 0)] == counts[("gsm8k", 0)] == counts[("humaneval", 0)] == 0
    texts = [" ".join(p.text.split()) for p in prompts]
    assert len(set(texts)) == len(texts)  # no prompt twice
    assert router_data.load_all(DATA) == prompts  # deterministic
