"""The model cache's policy on a fake store: verification, eviction of bad entries, resume, quota, budget."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest
from tests.unit.fake_store import BASE, FILES, FakeStore, manifest

from hybrid_router.errors import ModelLoadError, StorageError, ValidationError
from hybrid_router.model_cache import FileRef, ModelCache, plan_eviction

CHUNK = 10


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        self.t += 1
        return self.t


def make(store: FakeStore | None = None, **kw: Any) -> tuple[ModelCache, FakeStore]:
    store = store or FakeStore()
    return ModelCache(manifest(), store, base_url=BASE, chunk_bytes=CHUNK, clock=Clock(), **kw), store


def key(path: str) -> str:
    return "/models/" + path


def kinds(cache: ModelCache) -> list[str]:
    return [e["kind"] for e in cache.events()]


def test_keys_resolve_to_manifest_files_only() -> None:
    cache, _ = make()
    ref = cache.resolve("/models/alpha/onnx/model.onnx")
    assert ref == FileRef(
        "alpha", "onnx/model.onnx", 45, hashlib.sha256(FILES["alpha/onnx/model.onnx"]).hexdigest()
    )
    assert cache.resolve("http://test/models/alpha/config.json") == FileRef(
        "alpha", "config.json", 18, hashlib.sha256(FILES["alpha/config.json"]).hexdigest()
    )
    assert cache.resolve("/models/alpha/generation_config.json") is None  # not in the manifest
    assert cache.resolve("/models/gamma/config.json") is None
    assert cache.resolve("https://huggingface.co/alpha/resolve/main/config.json") is None
    assert cache.resolve("http://test/vendor/ort/ort-wasm.wasm") is None
    assert [r.path for r in cache.files("alpha", "q8")] == ["config.json", "onnx/model_quantized.onnx"]


async def test_a_miss_is_fetched_verified_and_stored_in_chunks_then_read_without_the_network() -> None:
    cache, store = make()
    assert await cache.match(key("alpha/onnx/model.onnx")) == FILES["alpha/onnx/model.onnx"]
    assert store.requests == [("alpha/onnx/model.onnx", 0)]
    assert sorted(i for k, i in store.chunks if k == "alpha/onnx/model.onnx") == [
        0,
        1,
        2,
        3,
        4,
    ]  # 45 bytes / 10
    assert store.records_["alpha/onnx/model.onnx"]["complete"] is True
    assert await cache.match(key("alpha/onnx/model.onnx")) == FILES["alpha/onnx/model.onnx"]
    assert len(store.requests) == 1 and store.digests == 2  # checked when fetched and when read back
    assert await cache.match(key("alpha/nothing.json")) is None


@pytest.mark.parametrize("damage", ["flip", "truncate", "drop-chunk", "extend"])
async def test_a_damaged_entry_is_never_used_but_evicted_recorded_and_fetched_again(damage: str) -> None:
    cache, store = make()
    k = "alpha/onnx/model.onnx"
    await cache.match(key(k))
    if damage == "flip":
        chunk = bytearray(store.chunks[(k, 2)])
        chunk[3] ^= 0xFF
        store.chunks[(k, 2)] = bytes(chunk)
    elif damage == "truncate":
        store.chunks[(k, 4)] = store.chunks[(k, 4)][:2]
    elif damage == "drop-chunk":
        del store.chunks[(k, 1)]
    else:
        store.chunks[(k, 5)] = b"extra"
    assert await cache.match(key(k)) == FILES[k]
    assert store.requests == [(k, 0), (k, 0)]
    (event,) = [e for e in cache.events() if e["kind"] == "integrity"]
    assert event["model"] == "alpha" and event["file"] == "onnx/model.onnx"
    expected = {
        "flip": "corrupted",
        "truncate": "truncated",
        "drop-chunk": "missing chunks",
        "extend": "too long",
    }
    assert event["problem"].startswith(expected[damage])
    assert await cache.match(key(k)) == FILES[k] and len(store.requests) == 2  # stored whole again


async def test_bytes_from_the_server_that_differ_from_the_manifest_are_refused_and_not_stored() -> None:
    cache, store = make()
    store.server["beta/onnx/model.onnx"] = b"x" * 30
    with pytest.raises(ModelLoadError) as info:
        await cache.match(key("beta/onnx/model.onnx"))
    assert "does not match the manifest" in info.value.message and "rebuild" in info.value.hint
    assert not store.chunks and not store.records_


async def test_an_interrupted_download_resumes_from_the_stored_chunks() -> None:
    cache, store = make()
    k = "alpha/onnx/model.onnx"
    store.gate = asyncio.Event()
    store.piece = 12
    task = asyncio.ensure_future(cache.match(key(k)))
    while len(store.chunks) < 1:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    kept = await store.chunk_count(k)
    assert kept == 1 and store.records_[k]["complete"] is False
    store.gate = None
    assert await cache.match(key(k)) == FILES[k]
    assert store.requests == [(k, 0), (k, 10)]
    assert "resumed" in kinds(cache)


async def test_a_resumed_download_that_does_not_verify_is_fetched_whole() -> None:
    cache, store = make()
    k = "alpha/onnx/model.onnx"
    ref = cache.resolve(key(k))
    assert ref is not None  # a file of the manifest
    await store.put_record(
        {
            "key": k,
            "model": "alpha",
            "path": "onnx/model.onnx",
            "size": 45,
            "sha256": ref.sha256,
            "chunk_bytes": CHUNK,
            "complete": False,
            "last_used": 1.0,
        }
    )
    store.chunks[(k, 0)] = b"0123456789"  # not the file's first chunk
    assert await cache.match(key(k)) == FILES[k]
    assert store.requests == [(k, 10), (k, 0)]
    assert kinds(cache) == ["resumed", "integrity"]


async def test_a_server_that_ignores_range_starts_over() -> None:
    cache, store = make(FakeStore(honour_range=False))
    k = "alpha/onnx/model.onnx"
    ref = cache.resolve(key(k))
    assert ref is not None  # a file of the manifest
    await store.put_record(
        {
            "key": k,
            "model": "alpha",
            "path": ref.path,
            "size": ref.size,
            "sha256": ref.sha256,
            "chunk_bytes": CHUNK,
            "complete": False,
            "last_used": 1.0,
        }
    )
    store.chunks[(k, 0)] = FILES[k][:10]
    assert await cache.match(key(k)) == FILES[k]
    assert "resumed" not in kinds(cache)


async def test_no_room_under_the_quota_is_a_storage_error_and_the_bytes_still_come_back() -> None:
    cache, store = make(FakeStore(quota=1000))  # under the safety margin: nothing fits
    k = "alpha/onnx/model.onnx"
    assert await cache.match(key(k)) == FILES[k]
    assert not store.chunks and not store.records_
    (event,) = cache.events()
    assert event["kind"] == "storage" and event["error"]["name"] == "StorageError"
    assert "quota" in event["message"] and "runs from memory" in event["error"]["hint"]


async def test_a_quota_error_while_writing_keeps_the_download_and_frees_the_partial_file() -> None:
    cache, store = make(FakeStore(refuse_after=25))
    k = "alpha/onnx/model.onnx"
    assert await cache.match(key(k)) == FILES[k]
    assert not store.chunks and k not in store.records_
    (event,) = cache.events()
    assert event["kind"] == "storage" and "QuotaExceededError" in event["message"]


async def test_preload_with_no_room_raises_storage_error_and_the_model_runs_from_memory() -> None:
    cache, store = make(FakeStore(quota=1))
    with pytest.raises(StorageError) as info:
        await cache.ensure([("alpha", "fp32")], fail_on_storage=True)
    assert info.value.hint and info.value.details["files"] == ["alpha/config.json", "alpha/onnx/model.onnx"]
    requests = len(store.requests)
    # the pipeline that follows reads the bytes held in memory: no second download
    summary = await cache.ensure([("alpha", "fp32")], hold=True)
    assert summary["from_memory"] == 2 and summary["fetched"] == 0
    assert await cache.match(key("alpha/onnx/model.onnx")) == FILES["alpha/onnx/model.onnx"]
    assert len(store.requests) == requests


async def test_preload_progress_is_monotonic_and_ends_at_exactly_100() -> None:
    cache, store = make()
    events: list[dict[str, Any]] = []
    await cache.match(key("alpha/config.json"))  # one file already stored
    summary = await cache.ensure([("alpha", "fp32"), ("beta", None)], on_progress=events.append)
    totals = [e for e in events if e["status"] == "progress_total"]
    assert {e["total"] for e in totals} == {18 + 45 + 17 + 30}
    loaded = [e["loaded"] for e in totals]
    assert loaded == sorted(loaded) and loaded[-1] == totals[-1]["total"] and totals[-1]["progress"] == 100
    assert [e["progress"] for e in totals] == sorted(e["progress"] for e in totals)
    done = {(e["model"], e["file"]): e["from_cache"] for e in events if e["status"] == "done"}
    assert done == {
        ("alpha", "config.json"): True,
        ("alpha", "onnx/model.onnx"): False,
        ("beta", "config.json"): False,
        ("beta", "onnx/model.onnx"): False,
    }
    for path in ("onnx/model.onnx",):
        per_file = [e["loaded"] for e in events if e.get("file") == path and e.get("model") == "alpha"]
        assert per_file == sorted(per_file)
    assert summary["files"] == 4 and summary["from_cache"] == 1 and summary["fetched"] == 3


async def test_preload_of_a_stored_model_reads_nothing_but_hold_verifies_and_holds() -> None:
    cache, store = make()
    await cache.ensure([("beta", None)])
    digests = store.digests
    summary = await cache.ensure([("beta", None)])
    assert summary["from_cache"] == 2 and store.digests == digests  # checked when used, not here
    await cache.ensure([("beta", None)], hold=True)
    assert store.digests == digests + 2 and cache.held == ["beta/config.json", "beta/onnx/model.onnx"]
    store.chunks.clear()  # held bytes are handed out without reading the store again
    assert await cache.match(key("beta/onnx/model.onnx")) == FILES["beta/onnx/model.onnx"]
    cache.release()
    assert cache.held == []


async def test_cancelling_a_preload_cancels_the_download_and_a_second_preload_resumes() -> None:
    cache, store = make()
    store.gate = asyncio.Event()
    task = asyncio.ensure_future(cache.ensure([("alpha", "fp32")]))
    while not store.requests:
        await asyncio.sleep(0)
    for _ in range(5):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert not cache._flights and store.requests == [("alpha/config.json", 0)]  # stopped in the first file
    store.gate = None
    await cache.ensure([("alpha", "fp32")])
    assert store.requests[1:] == [("alpha/config.json", 0), ("alpha/onnx/model.onnx", 0)]


async def test_concurrent_callers_share_one_download_and_one_leaving_does_not_stop_it() -> None:
    cache, store = make()
    store.gate = asyncio.Event()
    k = key("alpha/onnx/model.onnx")
    a = asyncio.ensure_future(cache.match(k))
    b = asyncio.ensure_future(cache.match(k))
    await asyncio.sleep(0.01)
    a.cancel()
    store.gate.set()
    assert await b == FILES["alpha/onnx/model.onnx"]
    assert len(store.requests) == 1


async def test_two_tabs_on_one_store_download_a_file_once_and_the_second_reads_it_stored() -> None:
    first, store = make()
    second, _ = make(store)  # another tab: its own cache, the same IndexedDB
    store.gate = asyncio.Event()
    k = key("alpha/onnx/model.onnx")
    a = asyncio.ensure_future(first.match(k))
    b = asyncio.ensure_future(second.match(k))
    await asyncio.sleep(0.01)
    assert len(store.requests) == 1  # the second tab waits for the lock instead of downloading too
    store.gate.set()
    assert await a == await b == FILES["alpha/onnx/model.onnx"]
    assert store.requests == [("alpha/onnx/model.onnx", 0)]
    assert store.lock_log == ["alpha/onnx/model.onnx"] * 2


async def test_two_tabs_preloading_together_split_fetched_and_from_cache() -> None:
    first, store = make()
    second, _ = make(store)
    a, b = await asyncio.gather(first.ensure([("alpha", "fp32")]), second.ensure([("alpha", "fp32")]))
    assert a["files"] == b["files"] == len(store.requests)
    assert a["fetched"] + b["fetched"] == len(store.requests)  # each file fetched once
    assert a["from_cache"] + b["from_cache"] == len(store.requests)


async def test_a_tab_that_stops_waiting_for_the_lock_leaves_it_to_the_other() -> None:
    first, store = make()
    second, _ = make(store)
    store.gate = asyncio.Event()
    k = key("alpha/onnx/model.onnx")
    a = asyncio.ensure_future(first.match(k))
    b = asyncio.ensure_future(second.match(k))
    await asyncio.sleep(0.01)
    b.cancel()
    store.gate.set()
    assert await a == FILES["alpha/onnx/model.onnx"]
    with pytest.raises(asyncio.CancelledError):
        await b
    assert not store.locks["alpha/onnx/model.onnx"].locked()
    assert await second.match(k) == FILES["alpha/onnx/model.onnx"]  # read from the store
    assert store.requests == [("alpha/onnx/model.onnx", 0)]


async def test_budget_evicts_the_least_recently_used_model() -> None:
    cache, store = make(budget_bytes=70)
    await cache.ensure([("beta", None)])  # 47 bytes
    await cache.ensure([("alpha", "q8")])  # 35 bytes: beta must go
    assert {r["model"] for r in store.records_.values()} == {"alpha"}
    assert [e["model"] for e in cache.events() if e["kind"] == "evicted"] == ["beta"]
    listed = await cache.stored_models()
    assert [(m["id"], m["dtypes"], m["bytes"], m["files"]) for m in listed] == [("alpha", ["q8"], 35, 2)]


async def test_a_model_over_the_budget_is_not_stored_but_served() -> None:
    cache, store = make(budget_bytes=40)
    assert await cache.match(key("alpha/onnx/model.onnx")) == FILES["alpha/onnx/model.onnx"]
    (event,) = cache.events()
    assert event["kind"] == "storage" and "budget" in event["message"] and "budget" in event["error"]["hint"]


async def test_lowering_the_budget_evicts_at_once() -> None:
    cache, store = make()
    await cache.ensure([("beta", None)])
    await cache.ensure([("alpha", "q8")])
    result = await cache.set_budget(40)
    assert result["evicted"] == ["beta"]
    with pytest.raises(ValidationError):
        await cache.set_budget(-1)


def test_plan_eviction_takes_least_recently_used_first_and_respects_protection() -> None:
    models = [("a", 50, 3.0), ("b", 30, 1.0), ("c", 20, 2.0)]
    assert plan_eviction(models, 0, 100) == []
    assert plan_eviction(models, 10, 100) == ["b"]
    assert plan_eviction(models, 40, 100) == ["b", "c"]
    assert plan_eviction(models, 40, 100, protect=["b"]) == ["c", "a"]
    assert plan_eviction(models, 200, 100) is None


async def test_list_and_delete() -> None:
    cache, store = make()
    await cache.ensure([("alpha", "fp32"), ("alpha", "q8"), ("beta", None)])
    listed = {m["id"]: m for m in await cache.stored_models()}
    assert listed["alpha"]["dtypes"] == ["fp32", "q8"] and listed["alpha"]["bytes"] == 18 + 45 + 17
    assert listed["alpha"]["files"] == 3 and listed["beta"]["files"] == 2
    result = await cache.delete("alpha")
    assert result == {"model": "alpha", "files": 3, "bytes": 80}
    assert [m["id"] for m in await cache.stored_models()] == ["beta"]
    assert all(k[0].startswith("beta/") for k in store.chunks)
    assert kinds(cache)[-1] == "deleted"


async def test_a_stored_file_of_another_version_is_replaced() -> None:
    cache, store = make()
    k = "beta/onnx/model.onnx"
    await store.put_record(
        {
            "key": k,
            "model": "beta",
            "path": "onnx/model.onnx",
            "size": 30,
            "sha256": "f" * 64,
            "chunk_bytes": CHUNK,
            "complete": True,
            "last_used": 1.0,
        }
    )
    store.chunks[(k, 0)] = b"old" * 10
    assert await cache.match(key(k)) == FILES[k]
    assert kinds(cache) == ["stale"]
