"""The quality harness's answer sets (eval/quality/sets.py), its answer cache and its generation loop.

The loaders read ``../shared/data`` (in the repository's CI, not on users' machines: those tests skip
without it); the generation test needs the built SmolLM2 (it skips while it is not built)."""

from __future__ import annotations

from pathlib import Path

import pytest
from eval.quality import sets
from eval.quality.generate import Answer, AnswerCache, ChatModel, chat_models

DATA = sets.DEFAULT_DATA
needs_data = pytest.mark.skipif(not (DATA / "routellm").is_dir(), reason="../shared/data is not here")


def _items(n: int) -> list[sets.Item]:
    return [sets.Item("gsm8k", f"gsm8k/{i}", f"prompt {i}", {"answer": str(i)}, True) for i in range(n)]


def test_a_larger_subset_extends_a_smaller_one_and_is_seeded() -> None:
    items = _items(50)
    small, large = sets.subset(items, 10), sets.subset(items, 30)
    assert large[:10] == small
    assert sets.subset(items, 10) == small  # the same on every run
    assert sets.subset(items, 10, seed=1) != small
    assert [i.id for i in small] != [i.id for i in items[:10]]  # shuffled, not the file's head


def test_mmlu_prompt_and_gsm8k_reference_follow_the_sources() -> None:
    assert sets.mmlu_prompt("Q?", ["w", "x", "y", "z"]) == "Q?\nA. w\nB. x\nC. y\nD. z\nAnswer:"
    assert sets.gsm8k_reference("She makes 9 * 2 = <<9*2=18>>18 dollars.\n#### 1,018") == "1018"


def test_the_answer_cache_is_keyed_by_model_file_prompt_and_budget(tmp_path: Path) -> None:
    model = ChatModel("m", tmp_path, "q4", tmp_path / "model.onnx", "ab" * 32)
    cache = AnswerCache(model, root=tmp_path)
    cache.put("hello", 16, Answer("hi", 2, "stop", 0.1))
    again = AnswerCache(model, root=tmp_path)  # read back from disk
    assert again.get("hello", 16) == Answer("hi", 2, "stop", 0.1)
    assert again.get("hello", 32) is None and again.get("hello!", 16) is None
    other = ChatModel("m", tmp_path, "q4", tmp_path / "model.onnx", "cd" * 32)
    assert AnswerCache(other, root=tmp_path).get("hello", 16) is None


@needs_data
def test_the_sets_load_with_references_and_the_clouds_verdicts() -> None:
    ifeval = sets.load_ifeval(DATA)
    assert len(ifeval) > 300
    assert not any(sets.NEEDS_PUNKT & set(i.reference["instruction_id_list"]) for i in ifeval)
    gsm8k = sets.load_gsm8k(DATA)
    assert len(gsm8k) > 1300 and all(i.cloud is not None for i in gsm8k)
    assert all(float(str(i.reference["answer"])) == float(str(i.reference["answer"])) for i in gsm8k)
    assert 0.8 < sum(bool(i.cloud) for i in gsm8k) / len(gsm8k) < 0.95  # GPT-4's known accuracy
    humaneval = sets.load_humaneval(DATA)
    assert len(humaneval) == 164 and all("def check" in str(i.reference["test"]) for i in humaneval)


@pytest.mark.skipif(not chat_models(["SmolLM2-135M-Instruct"]), reason="SmolLM2 is not built")
def test_batched_greedy_answers_equal_one_at_a_time() -> None:
    """The harness answers in batches (left-padded, masked); the browser answers one prompt at a time."""
    from eval.quality.generate import Generator

    generator = Generator(chat_models(["SmolLM2-135M-Instruct"])[0])
    prompts = ["What is the capital of France?", "Write a haiku about the sea.", "Name a colour."]
    batched = generator.answer_batch(prompts, 12)
    alone = [generator.answer(p, 12) for p in prompts]
    assert [a.text for a in batched] == [a.text for a in alone]
    assert "Paris" in alone[0].text and alone[0].finish_reason == "stop"
    assert alone[1].finish_reason == "length" and alone[1].tokens == 12
