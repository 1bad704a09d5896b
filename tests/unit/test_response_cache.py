"""The semantic response cache: its policy (key, match, eviction, what is stored) and the router around it,
on the fake runtime and cloud with an in-memory store (the IndexedDB store is tested in the browser)."""

from __future__ import annotations

from contextlib import aclosing
from typing import Any

import numpy as np
import pytest
from tests.unit.fakes import FakeCloud, FakeRuntime, as_runtime, fake_manifest

from hybrid_router import Dispatcher, Router, wire
from hybrid_router.chat import ChatRequest
from hybrid_router.errors import ValidationError
from hybrid_router.response_cache import (
    CacheConfig,
    EntryMeta,
    MemoryResponseStore,
    ResponseCache,
    best_match,
    cache_key,
    evictions,
    not_storable,
    replay_pieces,
    skip_reason,
)
from hybrid_router.routing import Policy

QUESTION = "What is the capital of France?"
PARAPHRASE = "Which city is the capital of France?"
OTHER = "How do I bake bread at home?"


def key(request: ChatRequest, **changes: Any) -> str:
    parts: dict[str, Any] = {
        "route": "auto",
        "privacy": "allow-cloud",
        "embedding_model": "e",
        "local_model": "l",
        "cloud_model": "c",
    }
    return cache_key(request, **{**parts, **changes}).scope


# -- the policy ---------------------------------------------------------------------------------------


def test_config_parses_defaults_fields_and_refuses_bad_values() -> None:
    assert CacheConfig.parse(None) is None and CacheConfig.parse(False) is None
    assert CacheConfig.parse(True) == CacheConfig()
    config = CacheConfig.parse({"similarity": 0.8, "ttl_ms": 1000, "max_entries": 5, "sampled": True})
    assert config == CacheConfig(0.8, 1000, 5, True)
    for bad in (
        {"similarity": 0},
        {"similarity": 1.5},
        {"ttl_ms": -1},
        {"max_entries": 0},
        {"simlarity": 0.9},
        3,
    ):
        with pytest.raises(ValidationError):
            CacheConfig.parse(bad)


def test_the_scope_holds_what_changes_an_answer_and_not_the_question() -> None:
    base = ChatRequest.parse(QUESTION)
    same = key(base)
    assert key(ChatRequest.parse(PARAPHRASE)) == same  # the question is matched by its vector, not hashed
    assert (
        cache_key(
            base, route="auto", privacy="allow-cloud", embedding_model="e", local_model="l", cloud_model="c"
        ).question
        == QUESTION
    )
    changed = [
        key(ChatRequest.parse(QUESTION, max_tokens=16)),
        key(ChatRequest.parse(QUESTION, temperature=0)),
        key(ChatRequest.parse(QUESTION, route="cloud")),
        key(
            ChatRequest.parse(
                messages=[
                    {"role": "system", "content": "Answer in French."},
                    {"role": "user", "content": QUESTION},
                ]
            )
        ),
        key(
            ChatRequest.parse(
                messages=[
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello"},
                    {"role": "user", "content": QUESTION},
                ]
            )
        ),
        key(base, route="local"),
        key(base, privacy="local-only"),
        key(base, local_model="other"),
        key(base, cloud_model=None),
        key(base, embedding_model="other"),
    ]
    assert same not in changed and len(set(changed)) == len(changed)


def test_sampled_calls_skip_the_cache_unless_the_app_opts_in() -> None:
    assert skip_reason(ChatRequest.parse(QUESTION, temperature=0.7), CacheConfig()) == "sampled"
    assert skip_reason(ChatRequest.parse(QUESTION, temperature=0.7), CacheConfig(sampled=True)) is None
    assert skip_reason(ChatRequest.parse(QUESTION, temperature=0), CacheConfig()) is None
    assert skip_reason(ChatRequest.parse(QUESTION), CacheConfig()) is None


def test_personal_data_found_or_unchecked_and_empty_answers_are_not_storable() -> None:
    assert not_storable("Paris.", None) is None
    assert not_storable("Paris.", {"found": {}, "missing": []}) is None
    assert not_storable("Paris.", {"found": {"EMAIL": 1}, "missing": []}) == "personal-data"
    assert not_storable("Paris.", {"found": {}, "missing": ["ner:x"]}) == "unchecked"
    assert not_storable("  ", None) == "empty"


def test_best_match_takes_the_most_similar_at_or_over_the_threshold() -> None:
    rows = np.array([[1, 0, 0], [0.8, 0.6, 0], [0, 0, 1]], np.float32)
    found = best_match(np.array([1, 0.1, 0], np.float32), ["a", "b", "c"], rows, 0.9)
    assert found is not None and found[0] == "a" and found[1] == pytest.approx(0.995, abs=1e-3)
    assert best_match(np.array([0, 1, 0], np.float32), ["a", "b", "c"], rows, 0.9) is None
    found = best_match(np.array([0, 1, 0], np.float32), ["a", "b", "c"], rows, 0.5)
    assert found is not None and found[0] == "b" and found[1] == pytest.approx(0.6)
    assert best_match(np.array([1, 0], np.float32), ["a", "b", "c"], rows, 0.1) is None  # other dims
    assert best_match(np.array([1, 0, 0], np.float32), [], np.zeros((0, 3), np.float32), 0.1) is None


def test_eviction_drops_the_expired_then_the_least_recently_used() -> None:
    config = CacheConfig(ttl_ms=100, max_entries=2)
    entries = [
        EntryMeta("old", 0, 50),
        EntryMeta("a", 60, 60),
        EntryMeta("b", 70, 90),
        EntryMeta("c", 80, 80),
    ]
    assert evictions(entries, now_ms=100, config=config) == ["old", "a"]
    assert evictions(entries[1:3], now_ms=100, config=config) == []


def test_replay_pieces_join_back_to_the_text() -> None:
    text = "Paris is the capital.\n\n- one  two"
    pieces = replay_pieces(text)
    assert "".join(pieces) == text and len(pieces) == 7


# -- the router with a cache --------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000_000.0

    def __call__(self) -> float:
        return self.ms


def make(
    config: CacheConfig | None = None,
    *,
    runtime: FakeRuntime | None = None,
    cloud: FakeCloud | None = None,
    ner: bool = True,
    policy: Policy | None = None,
) -> tuple[Router, FakeRuntime, FakeCloud, MemoryResponseStore, Clock]:
    clock = Clock()
    store = MemoryResponseStore()
    vectors = {
        QUESTION: np.array([1, 0, 0, 0, 0, 0, 0, 0], np.float32),
        PARAPHRASE: np.array([0.95, 0.31, 0, 0, 0, 0, 0, 0], np.float32),
        OTHER: np.array([0, 0, 1, 0, 0, 0, 0, 0], np.float32),
    }
    runtime = runtime or FakeRuntime(recorded=vectors, people=("alice",))
    cloud = cloud or FakeCloud()
    cache = ResponseCache(config or CacheConfig(similarity=0.9), store, now_ms=clock)
    router = Router(
        as_runtime(runtime), fake_manifest(ner=ner), cloud=cloud, policy=policy, response_cache=cache
    )
    return router, runtime, cloud, store, clock


async def test_a_paraphrase_is_answered_from_the_cache_with_the_similarity_and_the_original_route() -> None:
    router, runtime, _, store, _ = make()
    first = await router.generate(QUESTION, route="cloud")
    assert first.route.target == "cloud" and len(store.entries) == 1
    calls = len(runtime.generate_calls)
    hit = await router.generate(PARAPHRASE, route="cloud")
    assert hit.text == first.text and hit.route.target == "cache" and hit.route.reason == "cache"
    assert hit.route.cache is not None and hit.route.cache["similarity"] == pytest.approx(0.95, abs=0.01)
    assert (
        hit.route.cache["original"]["target"] == "cloud"
        and hit.route.cache["original"] == first.route.to_wire()
    )
    assert hit.route.cost_usd == 0 and hit.usage == {"tokens_in": 0, "tokens_out": 0}
    assert len(router.cloud.calls) == 1 and len(runtime.generate_calls) == calls  # type: ignore[union-attr]
    stats = router.stats()["cache"]
    assert (stats["lookups"], stats["hits"], stats["misses"], stats["stored"]) == (2, 1, 1, 1)
    assert stats["hits_cloud"] == 1 and stats["saved_usd"] == pytest.approx((40 * 1.0 + 5 * 2.0) / 1e6)
    assert router.stats()["requests"] == 1  # the hit ran nowhere: the ledger counts the one real request


async def test_a_different_question_or_scope_misses() -> None:
    router, runtime, cloud, store, _ = make()
    await router.generate(QUESTION)
    other = await router.generate(OTHER)
    assert other.route.target == "local"
    longer = await router.generate(QUESTION, max_tokens=3)  # another budget: another answer
    assert longer.route.target == "local" and len(store.entries) == 3


async def test_cache_false_bypasses_and_sampled_calls_are_skipped() -> None:
    router, runtime, _, store, _ = make()
    await router.generate(QUESTION)
    bypassed = await router.generate(QUESTION, cache=False)
    sampled = await router.generate(QUESTION, temperature=0.8)
    assert bypassed.route.target == "local" and sampled.route.target == "local" and len(store.entries) == 1
    assert router.stats()["cache"]["skipped"] == {"bypass": 1, "sampled": 1}
    with pytest.raises(ValidationError):
        await router.generate(QUESTION, cache="yes")
    opted, *_ = make(CacheConfig(similarity=0.9, sampled=True))
    await opted.generate(QUESTION, temperature=0.8)
    assert (await opted.generate(QUESTION, temperature=0.8)).route.target == "cache"


async def test_a_prompt_with_personal_data_is_never_stored() -> None:
    router, _, _, store, _ = make()
    await router.generate("Write to alice@example.com about the meeting")
    await router.generate("What did Alice say about the plan?")  # a name, found by the entity model
    assert store.entries == {} and router.stats()["cache"]["not_stored"] == {"personal-data": 2}
    # the routing's own record counts too (sensitive: local, found)
    strict, *_ = make(policy=Policy(sensitive="local"))
    await strict.generate("Call me at +44 20 7946 0958 tomorrow")
    assert strict.response_cache is not None and strict.response_cache.stats()["not_stored"] == {
        "personal-data": 1
    }


async def test_without_the_entity_model_a_prompt_cannot_be_checked_and_is_not_stored() -> None:
    router, _, _, store, _ = make(ner=False)
    await router.generate(QUESTION)
    assert store.entries == {} and router.stats()["cache"]["not_stored"] == {"unchecked": 1}


async def test_entries_expire_after_ttl_and_the_least_recently_used_go_beyond_max_entries() -> None:
    router, _, _, store, clock = make(CacheConfig(similarity=0.9, ttl_ms=10_000, max_entries=2))
    await router.generate(QUESTION)
    clock.ms += 10_000
    assert (await router.generate(QUESTION)).route.target == "local"  # expired: answered again
    assert len(store.entries) == 1  # the expired entry went when the new one was stored
    clock.ms += 1
    await router.generate(OTHER)
    clock.ms += 1
    assert (await router.generate(QUESTION)).route.target == "cache"  # QUESTION is now the most recent
    clock.ms += 1
    await router.generate("A third question about something else entirely")
    assert len(store.entries) == 2 and router.stats()["cache"]["evicted"] == 2
    assert (await router.generate(QUESTION)).route.target == "cache"  # OTHER was the least recently used


async def test_a_stream_replays_a_hit_in_the_shape_of_a_live_stream() -> None:
    router, _, _, _, _ = make()

    async def run(prompt: str) -> list[dict[str, Any]]:
        async with aclosing(router.stream(prompt)) as items:
            return [item async for item in items]

    live = await run(QUESTION)
    replay = await run(PARAPHRASE)
    assert replay[-1]["done"] is True and replay[-1]["route"]["target"] == "cache"
    assert "".join(i["delta"] for i in replay[:-1]) == "".join(i["delta"] for i in live[:-1])
    assert len(replay) > 2 and set(replay[-1]) == set(live[-1])
    assert replay[-1]["route"]["cache"]["original"]["target"] == "local"


async def test_a_failing_store_or_embedding_never_fails_the_call() -> None:
    class Broken(MemoryResponseStore):
        async def scope(self, scope: str) -> Any:
            raise OSError("disk gone")

        async def put(self, entry: Any) -> None:
            raise OSError("disk gone")

    router, runtime, _, _, _ = make()
    assert router.response_cache is not None
    router.response_cache.store = Broken()
    assert (await router.generate(QUESTION)).route.target == "local"
    assert router.stats()["cache"]["errors"] == 2
    runtime.fail = RuntimeError("no embedding model")
    assert (await router.generate(OTHER)).route.target == "local"
    assert router.stats()["cache"]["skipped"] == {"unavailable": 1}


async def test_the_wire_takes_cache_per_call_and_clears_the_cache() -> None:
    router, *_, store, _ = make()
    sent: list[dict[str, Any]] = []
    d = Dispatcher(wire.handlers(router), sent.append)
    d.receive({"id": 1, "type": "call", "method": "generate", "params": {"prompt": QUESTION}})
    d.receive({"id": 2, "type": "call", "method": "generate", "params": {"prompt": QUESTION, "cache": False}})
    await d.drain()
    d.receive({"id": 3, "type": "call", "method": "stream", "params": {"prompt": PARAPHRASE}})
    await d.drain()
    d.receive({"id": 4, "type": "call", "method": "cache_clear", "params": {}})
    await d.drain()
    replies = {m["id"]: m["value"] for m in sent if m["type"] == "result"}
    assert replies[1]["route"]["target"] == "local" and replies[2]["route"]["target"] == "local"
    assert replies[3]["route"]["target"] == "cache" and replies[4] == {"cleared": 1} and store.entries == {}


async def test_without_a_cache_stats_say_so_and_nothing_changes() -> None:
    router = Router(as_runtime(FakeRuntime()), fake_manifest())
    assert (await router.generate(QUESTION, cache=False)).route.target == "local"
    assert router.stats()["cache"] is None and await router.cache_clear() == {"cleared": 0}
