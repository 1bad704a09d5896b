"""The vector index in a real browser: scores and order against numpy on sentence-transformers vectors
(all-MiniLM-L6-v2 on torch, same weights), add/replace/remove, typed errors, and persistence in IndexedDB
across a page reload (same browser context, so the same origin's storage; a new worker reads it back)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.harness import REPO, RouterPage, load_json, open_router_page

pytestmark = pytest.mark.browser

SENTENCES: list[str] = load_json(REPO / "tests" / "data" / "sentences.json")["sentences"]
IDS = [f"s{i}" for i in range(len(SENTENCES))]
QUERIES = [
    "How can I get back into my account?",
    "a fox and a dog",
    "interest rates and the economy",
    "Le chat est sur la table.",
]
MODEL = "all-MiniLM-L6-v2"
#: fp32 embeddings match sentence-transformers to cosine >= 0.9999 (test_embeddings): scores agree to this
SCORE_TOL = 2e-4


@pytest.fixture(scope="module")
def st_model() -> Any:
    from builder.models import source_dir
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(source_dir(MODEL)), device="cpu")


def reference(st_model: Any, texts: list[str], queries: list[str]) -> np.ndarray:
    """Cosine of every query against every text, from sentence-transformers' unit vectors."""
    docs = st_model.encode(texts, normalize_embeddings=True, batch_size=8).astype(np.float64)
    qs = st_model.encode(queries, normalize_embeddings=True).astype(np.float64)
    return np.asarray(qs @ docs.T)


@pytest.fixture(scope="module")
def index_page(browser: Any, server: Any) -> Iterator[RouterPage]:
    rp = open_router_page(browser, server)  # a fresh context: empty IndexedDB
    yield rp
    rp.page.context.close()


def search(rp: RouterPage, name: str, query: str, top_k: int) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = rp.call(
        "const index = await router.openIndex(arg.name);"
        "const hits = await index.search(arg.query, { topK: arg.k });"
        "return { hits: [...hits], route: hits.route };",
        {"name": name, "query": query, "k": top_k},
    )["hits"]
    return result


def check_against(hits: list[dict[str, Any]], scores: np.ndarray, ids: list[str], texts: list[str]) -> None:
    """``hits`` are the best of ``scores`` (over ``ids``) in order, with the same scores and texts."""
    order = np.argsort(-scores, kind="stable")[: len(hits)]
    for rank, hit in enumerate(hits):
        ref = order[rank]
        # two items whose reference scores are closer than the tolerance may swap: compare scores then
        if hit["id"] != ids[ref]:
            assert abs(scores[ids.index(hit["id"])] - scores[ref]) <= 2 * SCORE_TOL, (rank, hit, ids[ref])
        at = ids.index(hit["id"])
        assert hit["score"] == pytest.approx(scores[at], abs=SCORE_TOL), hit
        assert hit["text"] == texts[at]


def test_add_search_remove_against_numpy(index_page: RouterPage, st_model: Any) -> None:
    rp = index_page
    opened = rp.call(
        "const index = await router.openIndex('docs');"
        "const out = await index.add(arg.ids, arg.texts);"
        "return { out, index: { name: index.name, model: index.model, dims: index.dims,"
        " count: index.count, persistent: index.persistent } };",
        {"ids": IDS, "texts": SENTENCES},
    )
    assert opened["out"]["added"] == len(SENTENCES) and opened["out"]["count"] == len(SENTENCES)
    assert opened["out"]["route"]["target"] == "local" and opened["out"]["route"]["model"] == MODEL
    assert opened["index"]["model"] == MODEL and opened["index"]["persistent"] is True
    scores = reference(st_model, SENTENCES, QUERIES)
    for q, query in enumerate(QUERIES):
        hits = search(rp, "docs", query, 5)
        assert len(hits) == 5
        check_against(hits, scores[q], IDS, SENTENCES)
    everything = search(rp, "docs", QUERIES[0], 1000)
    assert len(everything) == len(SENTENCES)
    assert [h["score"] for h in everything] == sorted((h["score"] for h in everything), reverse=True)

    gone = [h["id"] for h in search(rp, "docs", QUERIES[0], 3)]
    removed = rp.call(
        "const index = await router.openIndex('docs'); return await index.remove(arg);", [*gone, "no-such-id"]
    )
    assert removed == {"removed": 3, "missing": ["no-such-id"], "count": len(SENTENCES) - 3}
    kept = [i for i, item in enumerate(IDS) if item not in gone]
    hits = search(rp, "docs", QUERIES[0], 5)
    assert not {h["id"] for h in hits} & set(gone)
    check_against(hits, scores[0][kept], [IDS[i] for i in kept], [SENTENCES[i] for i in kept])


def test_adding_a_known_id_replaces_its_text(index_page: RouterPage, st_model: Any) -> None:
    rp = index_page
    texts = ["Cats sleep most of the day.", "The train leaves at noon."]
    rp.call("const index = await router.openIndex('pets'); await index.add(['a', 'b'], arg);", texts)
    out = rp.call(
        "const index = await router.openIndex('pets');"
        "return await index.add(['b'], ['Dogs love long walks in the park.']);"
    )
    assert (out["added"], out["replaced"], out["count"]) == (0, 1, 2)
    hits = search(rp, "pets", "a dog going for a walk", 2)
    final = [texts[0], "Dogs love long walks in the park."]
    check_against(hits, reference(st_model, final, ["a dog going for a walk"])[0], ["a", "b"], final)
    assert hits[0]["id"] == "b"


@pytest.mark.parametrize(
    ("js", "field"),
    [
        ("await router.openIndex('')", "name"),
        ("const i = await router.openIndex('bad'); await i.add(['a', 'a'], ['x', 'y'])", "ids[1]"),
        ("const i = await router.openIndex('bad'); await i.add(['a'], ['x', 'y'])", "texts"),
        ("const i = await router.openIndex('bad'); await i.add('a', 'x')", "ids"),
        ("const i = await router.openIndex('bad'); await i.search('q', { topK: 0 })", "top_k"),
        ("const i = await router.openIndex('bad'); await i.search(42)", "query"),
        ("await router.openIndex('docs', { model: 'whisper-tiny.en' })", "model"),
    ],
)
def test_bad_calls_are_validation_errors(index_page: RouterPage, js: str, field: str) -> None:
    err = index_page.error_of(js)
    assert err["name"] == "ValidationError", err
    assert err["hint"] and err["details"].get("field") == field, err


def test_the_index_survives_a_page_reload(index_page: RouterPage) -> None:
    rp = index_page
    before = {q: search(rp, "docs", q, 5) for q in QUERIES}
    count = rp.call("return (await router.openIndex('docs')).count;")
    rp.page.reload()  # the same context and origin: a new page, a new worker, the same IndexedDB
    rp.page.evaluate("""async () => {
        const { HybridRouter } = await import("/hybrid-router.js");
        window.router = await HybridRouter.create();
    }""")
    assert rp.call("return await router.listIndexes();") == ["bad", "docs", "pets"]
    assert rp.call("return (await router.openIndex('docs')).count;") == count
    for query, hits in before.items():
        again = search(rp, "docs", query, 5)
        assert [h["id"] for h in again] == [h["id"] for h in hits]
        assert [h["score"] for h in again] == pytest.approx([h["score"] for h in hits], abs=1e-6)
    rp.call("await (await router.openIndex('pets')).drop();")
    assert rp.call("return await router.listIndexes();") == ["bad", "docs"]
    assert rp.requests.foreign(rp.server.origin) == []
