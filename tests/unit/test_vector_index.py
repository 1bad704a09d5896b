"""hybrid_router.vector_index on fake embeddings: exact cosine search against numpy, upsert/remove,
persistence through the store (a reopen reads it back), typed errors, and the wire handlers."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from tests.unit.fakes import FakeRuntime, as_runtime, fake_manifest, fake_vector

from hybrid_router import wire
from hybrid_router.errors import StorageError, ValidationError
from hybrid_router.protocol import Dispatcher
from hybrid_router.router import Router
from hybrid_router.vector_index import IndexMeta, IndexStore, MemoryIndexStore, VectorIndex

WORDS = [
    f"document number {i} about {topic}"
    for i, topic in enumerate(
        ["cats", "dogs", "routing", "the cloud", "numpy", "speech", "music", "rain"] * 5
    )
]


class RoutedIndexes:
    """The router's index calls as the tests make them: ``add`` and ``search`` carry their route."""

    def __init__(self, router: Router) -> None:
        self.router = router

    async def add(self, name: Any, ids: Any, texts: Any) -> dict[str, Any]:
        return await self.router.index_add(name, ids, texts)

    async def search(self, name: Any, query: Any, top_k: Any = 10) -> dict[str, Any]:
        return await self.router.index_search(name, query, top_k)

    async def remove(self, name: Any, ids: Any) -> dict[str, Any]:
        return await self.router.index_remove(name, ids)

    async def drop(self, name: Any) -> dict[str, Any]:
        return await self.router.index_drop(name)

    async def open(self, name: Any, model: Any = None) -> VectorIndex:
        return await self.router.indexes.open(name, model)

    async def names(self) -> list[str]:
        return await self.router.indexes.names()

    def info(self, index: VectorIndex) -> dict[str, Any]:
        return self.router.indexes.info(index)


def make(store: IndexStore | None = None) -> tuple[RoutedIndexes, Router, Any]:
    store = store if store is not None else MemoryIndexStore()
    router = Router(as_runtime(FakeRuntime()), fake_manifest(), index_store=store)
    return RoutedIndexes(router), router, store


def unit(v: np.ndarray) -> np.ndarray:
    result: np.ndarray = v / np.linalg.norm(v, axis=-1, keepdims=True)
    return result


async def test_search_matches_numpy_brute_force() -> None:
    indexes, _, _ = make()
    ids = [f"d{i}" for i in range(len(WORDS))]
    out = await indexes.add("docs", ids, WORDS)
    assert out["added"] == len(WORDS) and out["count"] == len(WORDS) and out["route"]["target"] == "local"
    matrix = unit(np.stack([fake_vector(t, "fake-embed") for t in WORDS]).astype(np.float64))
    for query in ["cats and dogs", WORDS[7], "something else entirely"]:
        result = await indexes.search("docs", query, top_k=5)
        q = unit(fake_vector(query, "fake-embed").astype(np.float64))
        expected = matrix @ q
        best = np.argsort(-expected, kind="stable")[:5]
        assert [r["id"] for r in result["results"]] == [ids[i] for i in best]
        np.testing.assert_allclose([r["score"] for r in result["results"]], expected[best], atol=1e-6)
        assert [r["text"] for r in result["results"]] == [WORDS[i] for i in best]
    exact = await indexes.search("docs", WORDS[3], top_k=1)
    assert exact["results"][0]["id"] == "d3" and exact["results"][0]["score"] == pytest.approx(1.0, abs=1e-6)


async def test_upsert_replaces_and_remove_forgets() -> None:
    indexes, _, store = make()
    await indexes.add("n", ["a", "b", "c"], ["alpha", "beta", "gamma"])
    out = await indexes.add("n", ["b", "d"], ["BETA", "delta"])
    assert (out["added"], out["replaced"], out["count"]) == (1, 1, 4)
    hits = (await indexes.search("n", "BETA", top_k=4))["results"]
    assert hits[0] == {"id": "b", "score": pytest.approx(1.0, abs=1e-6), "text": "BETA"}
    removed = await indexes.remove("n", ["a", "zzz"])
    assert removed == {"removed": 1, "missing": ["zzz"], "count": 3}
    assert {h["id"] for h in (await indexes.search("n", "alpha", top_k=10))["results"]} == {"b", "c", "d"}
    assert sorted(store.items["n"]) == ["b", "c", "d"] and store.items["n"]["b"][0] == "BETA"


async def test_a_reopened_index_reads_the_store_back() -> None:
    first, _, store = make()
    await first.add("kept", ["x", "y", "z"], ["one", "two", "three"])
    await first.remove("kept", ["y"])
    before = await first.search("kept", "two", top_k=3)
    second, _, _ = make(store)  # a new worker: nothing in memory, the same storage
    info = second.info(await second.open("kept"))
    assert info == {"name": "kept", "model": "fake-embed", "dims": 8, "count": 2, "persistent": False}
    after = await second.search("kept", "two", top_k=3)
    assert after["results"] == before["results"]
    assert await second.names() == ["kept"]
    await second.drop("kept")
    assert await second.names() == [] and store.metas == {}


async def test_an_index_emptied_then_reopened_opens_empty_and_takes_new_rows() -> None:
    first, _, store = make()
    await first.add("gone", ["x"], ["one"])
    await first.remove("gone", ["x"])
    second, _, _ = make(store)
    assert second.info(await second.open("gone"))["count"] == 0
    assert (await second.add("gone", ["y"], ["two"]))["count"] == 1
    # the browser's store hands back a flat, empty array for an empty index
    empty = VectorIndex(IndexMeta("e", "m", 4), [], [], np.zeros(0, np.float32))
    assert len(empty) == 0
    empty.upsert(["a"], ["alpha"], np.ones((1, 4), np.float32))
    assert len(empty) == 1


async def test_ties_are_ordered_by_id_and_top_k_is_capped_by_size() -> None:
    index = VectorIndex(IndexMeta("t", "m", 2))
    index.upsert(["b", "a", "c"], ["x", "x", "y"], np.array([[1, 0], [1, 0], [0, 1]], np.float32))
    hits = index.search(np.array([1, 0], np.float32), 2)
    assert [h.id for h in hits] == ["a", "b"]
    assert [h.id for h in index.search(np.array([1, 0], np.float32), 50)] == ["a", "b", "c"]
    assert VectorIndex(IndexMeta("e", "m")).search(np.ones(2, np.float32), 3) == []


async def test_the_model_is_fixed_when_the_index_is_created() -> None:
    indexes, _, _ = make()
    await indexes.open("m", "fake-embed-cls")
    await indexes.add("m", ["a"], ["text"])
    assert (await indexes.open("m")).meta.model == "fake-embed-cls"
    with pytest.raises(ValidationError, match="holds vectors of fake-embed-cls") as info:
        await indexes.open("m", "fake-embed")
    assert info.value.details["field"] == "model"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda ix: ix.add("", ["a"], ["t"]), "name"),
        (lambda ix: ix.add(None, ["a"], ["t"]), "name"),
        (lambda ix: ix.add("n", "a", ["t"]), "ids"),
        (lambda ix: ix.add("n", ["a", "a"], ["t", "u"]), "ids[1]"),
        (lambda ix: ix.add("n", [""], ["t"]), "ids[0]"),
        (lambda ix: ix.add("n", [1], ["t"]), "ids[0]"),
        (lambda ix: ix.add("n", ["a", "b"], ["t"]), "texts"),
        (lambda ix: ix.search("n", 42), "query"),
        (lambda ix: ix.search("n", "q", top_k=0), "top_k"),
        (lambda ix: ix.search("n", "q", top_k=5000), "top_k"),
        (lambda ix: ix.remove("n", []), "ids"),
    ],
)
async def test_bad_calls_are_validation_errors(call: Any, field: str) -> None:
    indexes, _, store = make()
    with pytest.raises(ValidationError) as info:
        await call(indexes)
    assert info.value.details["field"] == field and info.value.hint
    assert store.metas == {}  # nothing was created by a refused call


class FailingStore(MemoryIndexStore):
    async def put(self, name: str, ids: list[str], texts: list[str], vectors: Any) -> None:
        raise StorageError("quota", hint="free space")


async def test_a_failed_write_changes_nothing_in_memory() -> None:
    indexes, _, _ = make(FailingStore())
    with pytest.raises(StorageError):
        await indexes.add("n", ["a"], ["alpha"])
    assert len(await indexes.open("n")) == 0


async def test_the_wire_handlers() -> None:
    router = Router(as_runtime(FakeRuntime()), fake_manifest(), index_store=MemoryIndexStore())
    sent: list[dict[str, Any]] = []
    d = Dispatcher(wire.handlers(router), sent.append)
    calls = [
        ("index_open", {"name": "w"}),
        ("index_add", {"name": "w", "ids": ["a", "b"], "texts": ["alpha", "beta"]}),
        ("index_search", {"name": "w", "query": "beta", "top_k": 1}),
        ("index_remove", {"name": "w", "ids": ["a"]}),
        ("index_list", {}),
        ("index_search", {"name": "w", "query": "beta", "topK": 1}),
        ("index_drop", {"name": "w"}),
    ]
    for i, (method, params) in enumerate(calls, 1):
        d.receive({"id": i, "type": "call", "method": method, "params": params})
        for _ in range(30):
            await asyncio.sleep(0)
    replies = {m["id"]: m for m in sent if m["type"] in ("result", "error")}
    assert replies[1]["value"]["count"] == 0 and replies[1]["value"]["model"] == "fake-embed"
    assert replies[2]["value"]["added"] == 2
    assert replies[3]["value"]["results"][0]["id"] == "b"
    assert replies[4]["value"]["count"] == 1
    assert replies[5]["value"] == {"names": ["w"]}
    assert replies[6]["error"]["name"] == "ValidationError" and "topK" in replies[6]["error"]["message"]
    assert replies[7]["value"] == {"dropped": "w"}
