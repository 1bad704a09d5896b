"""What the device's work would have cost in the cloud, and the ledger counting every task."""

from __future__ import annotations

import asyncio

import pytest
from tests.unit.fakes import as_runtime
from tests.unit.test_tasks import TaskRuntime, manifest

from hybrid_router import savings
from hybrid_router.requests import ClassifyRequest, EmbedRequest, RerankRequest
from hybrid_router.router import Router


class FlatPrice:
    """$1 per million tokens in, $2 per million out: easy sums."""

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * 1.0 + tokens_out * 2.0) / 1e6


def test_every_device_task_has_a_price_with_a_source() -> None:
    for task in (
        "feature-extraction",
        "vector-search",
        "automatic-speech-recognition",
        "text-classification",
        "zero-shot-classification",
        "token-classification",
        "text-ranking",
    ):
        assert savings.TASK_PRICES[task].source


def test_measure_counts_text_items_and_audio() -> None:
    work = savings.measure(EmbedRequest.parse(["abcd", "efgh"]))
    assert (work.chars, work.items, work.tokens) == (8, 0, 2)
    ranked = savings.measure(RerankRequest.parse("query", ["doc one", "doc two", "three"]))
    assert ranked.items == 3 and ranked.chars == len("query") + 7 + 7 + 5
    labelled = savings.measure(ClassifyRequest.parse("some text", labels=["a", "bb"]))
    assert labelled.items == 2 and labelled.chars == 9 + 3


def test_embeddings_priced_per_token() -> None:
    usd = savings.cloud_equivalent_usd("feature-extraction", savings.Measure(chars=4_000_000), FlatPrice())
    assert usd == pytest.approx(1_000_000 * 0.02 / 1e6)


def test_speech_priced_per_minute() -> None:
    usd = savings.cloud_equivalent_usd(
        "automatic-speech-recognition", savings.Measure(seconds=90), FlatPrice()
    )
    assert usd == pytest.approx(1.5 * 0.006)


def test_llm_tasks_priced_as_the_prompt_they_replace() -> None:
    work = savings.Measure(chars=400, items=5)  # 100 tokens, 5 documents
    usd = savings.cloud_equivalent_usd("text-ranking", work, FlatPrice())
    assert usd == pytest.approx(((80 + 100) * 1.0 + 5 * 3 * 2.0) / 1e6)
    ner = savings.cloud_equivalent_usd("token-classification", savings.Measure(chars=400), FlatPrice())
    assert ner == pytest.approx(((100 + 100) * 1.0 + 50 * 2.0) / 1e6)


def test_unknown_task_saves_nothing() -> None:
    assert savings.cloud_equivalent_usd("text-generation", savings.Measure(chars=999), FlatPrice()) == 0.0


def test_the_ledger_counts_every_task_and_its_savings() -> None:
    router = Router(as_runtime(TaskRuntime()), manifest())
    asyncio.run(router.classify("a good film"))
    asyncio.run(router.classify("sports news", labels=["sports", "politics"]))
    asyncio.run(router.rerank("cats", ["about cats", "about dogs"]))
    asyncio.run(router.rerank("cats", ["cats again", "dogs"]))
    stats = router.stats()
    by_task = stats["by_task"]
    assert by_task["text-classification"]["requests"] == 2  # a zero-shot call is a classify request
    assert by_task["text-ranking"]["requests"] == 2 and by_task["text-ranking"]["local"] == 2
    assert stats["requests"] == 4 and stats["local"] == 4 and stats["local_share"] == 1.0
    assert all(row["saved_usd"] > 0 for row in by_task.values())
    assert stats["saved_usd"] == pytest.approx(sum(row["saved_usd"] for row in by_task.values()))


def test_a_failed_device_task_is_counted_without_savings() -> None:
    runtime = TaskRuntime()
    runtime.fail = RuntimeError("boom")
    router = Router(as_runtime(runtime), manifest())
    with pytest.raises(Exception, match="boom"):
        asyncio.run(router.classify("x"))
    row = router.stats()["by_task"]["text-classification"]
    assert row == {"requests": 1, "local": 0, "saved_usd": 0.0}


def test_task_counts_survive_the_saved_state() -> None:
    router = Router(as_runtime(TaskRuntime()), manifest())
    asyncio.run(router.classify("a good film"))
    state = router.ledger.to_state()
    again = type(router.ledger).from_state(state, router.ledger.prices)
    assert again.stats()["by_task"] == router.stats()["by_task"]
