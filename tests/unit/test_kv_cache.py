"""The on-device chat's KV-cache slot (hybrid_router.browser.kv_cache): which prompt may reuse a cache,
and that every cache it lets go is disposed. The browser half (Transformers.js past_key_values, equal
answers) is tests/browser/test_generation.py."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from typing import Any

from tests.unit.fakes import FakeCloud, FakeRuntime, fake_manifest, generate_with, stream_with

from hybrid_router.browser.kv_cache import CachedPrefix, KvSlot
from hybrid_router.routing import Policy

SMOL = ("SmolLM2-135M-Instruct", "fp32", "wasm")


class FakeCache:
    """Stands in for a JS DynamicCache: only its disposal is observed."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"FakeCache({self.name})"


def slot() -> tuple[KvSlot, list[Any]]:
    disposed: list[Any] = []
    return KvSlot(dispose=disposed.append), disposed


def test_a_follow_up_prompt_takes_the_cache_of_the_turn_it_continues() -> None:
    kv, disposed = slot()
    first = CachedPrefix(SMOL, (1, 2, 3, 4), FakeCache("turn 1"))
    kv.put(first)
    assert kv.take(SMOL, (1, 2, 3, 4, 5, 6)) is first
    assert kv.entry is None  # taken: a second generation at the same time cannot use it too
    assert kv.take(SMOL, (1, 2, 3, 4, 5, 6)) is None
    assert disposed == []  # the taker owns it now
    assert (kv.stats.hits, kv.stats.misses, kv.stats.tokens_reused) == (1, 1, 4)


def test_another_conversation_drops_the_cache_and_disposes_it() -> None:
    kv, disposed = slot()
    cache = FakeCache("a")
    kv.put(CachedPrefix(SMOL, (1, 2, 3), cache))
    assert kv.take(SMOL, (1, 2, 9, 9)) is None  # shares a start, but is not a continuation
    assert disposed == [cache] and kv.entry is None


def test_a_prompt_equal_to_or_shorter_than_the_cache_is_not_served() -> None:
    for prompt in [(1, 2, 3), (1, 2), ()]:  # nothing would be left to evaluate, or the cache holds more
        kv, disposed = slot()
        cache = FakeCache("a")
        kv.put(CachedPrefix(SMOL, (1, 2, 3), cache))
        assert kv.take(SMOL, prompt) is None
        assert disposed == [cache]


def test_another_model_dtype_or_device_drops_the_cache() -> None:
    for owner in [
        ("Qwen2.5-Coder-0.5B-Instruct", "fp32", "wasm"),
        ("SmolLM2-135M-Instruct", "q4", "wasm"),
        ("SmolLM2-135M-Instruct", "fp32", "webgpu"),
    ]:
        kv, disposed = slot()
        cache = FakeCache("a")
        kv.put(CachedPrefix(SMOL, (1, 2, 3), cache))
        assert kv.take(owner, (1, 2, 3, 4)) is None
        assert disposed == [cache]


def test_put_keeps_one_cache_and_disposes_the_one_it_replaces() -> None:
    kv, disposed = slot()
    a, b = FakeCache("a"), FakeCache("b")
    kv.put(CachedPrefix(SMOL, (1,), a))
    kv.put(CachedPrefix(SMOL, (7, 8), b))  # e.g. two conversations generated at the same time
    assert disposed == [a] and kv.entry is not None and kv.entry.cache is b


def test_clear_drops_only_the_named_models_cache() -> None:
    kv, disposed = slot()
    cache = FakeCache("a")
    kv.put(CachedPrefix(SMOL, (1, 2), cache))
    kv.clear("another-model")
    assert disposed == [] and kv.entry is not None
    kv.clear(SMOL[0])
    assert disposed == [cache] and kv.entry is None


# ---------------------------------------------------------------- the count reaches the route


class CachingRuntime(FakeRuntime):
    """A fake runtime that says it served 7 prompt tokens from its KV cache."""

    async def generate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {**await super().generate(*args, **kwargs), "tokens_cached": 7}


def _parts(runtime: Any) -> dict[str, Any]:
    return {
        "runtime": runtime,
        "manifest": fake_manifest(),
        "cloud": FakeCloud(),
        "policy": Policy(),
        "ledger": None,
    }


def test_the_prompt_tokens_served_from_the_cache_are_in_the_route() -> None:
    async def main() -> None:
        params = {"prompt": "Say hello.", "route": "local"}
        whole = await generate_with(params, **_parts(CachingRuntime()))
        assert whole.route.target == "local" and whole.route.tokens_cached == 7
        assert whole.to_wire()["route"]["tokens_cached"] == 7
        async with aclosing(stream_with(params, **_parts(CachingRuntime()))) as chunks:
            items = [item async for item in chunks]
        assert items[-1]["done"] and items[-1]["route"]["tokens_cached"] == 7
        plain = await generate_with(params, **_parts(FakeRuntime()))  # a runtime that does not say: 0
        assert plain.route.tokens_cached == 0
        cloud = await generate_with({"prompt": "Say hello.", "route": "cloud"}, **_parts(CachingRuntime()))
        assert cloud.route.target == "cloud" and cloud.route.tokens_cached == 0

    asyncio.run(main())
