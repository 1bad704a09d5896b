"""Classification and reranking by embedding similarity (no NLI / cross-encoder model installed)."""

from __future__ import annotations

import pytest
from tests.unit.fakes import FakeRuntime, as_runtime, fake_manifest

from hybrid_router.errors import ValidationError
from hybrid_router.router import Router


@pytest.fixture
def router() -> Router:
    return Router(as_runtime(FakeRuntime()), fake_manifest())


async def test_few_shot_picks_the_label_whose_examples_contain_the_text(router: Router) -> None:
    examples = {
        "sports": ["the match ended 2-1", "a late goal"],
        "cooking": ["add the salt", "bake it for an hour"],
    }
    result = await router.classify("bake it for an hour", examples=examples)
    labels = [lab for lab, _ in result.labels]
    assert labels[0] == "cooking" and set(labels) == {"sports", "cooking"}
    scores = [s for _, s in result.labels]
    assert scores == sorted(scores, reverse=True) and abs(sum(scores) - 1) < 1e-6
    assert result.route.target == "local" and "few-shot" in result.route.rule


async def test_labels_without_an_nli_model_use_embedding_similarity(router: Router) -> None:
    result = await router.classify("sports", labels=["cooking", "sports", "music"])
    assert result.labels[0][0] == "sports"  # the text is identical to that label: cosine 1
    assert "embedding similarity" in result.route.rule


async def test_rerank_without_a_cross_encoder_orders_by_cosine(router: Router) -> None:
    docs = ["alpha", "the query itself", "gamma"]
    result = await router.rerank("the query itself", docs, top_k=2)
    assert [i for i, _, _ in result.results][0] == 1 and len(result.results) == 2
    assert result.results[0][1] == pytest.approx(1.0, abs=1e-5)
    assert "bi-encoder" in result.route.rule


@pytest.mark.parametrize("bad", [[], {"a": []}, {"a": "not a list"}, "text"])
async def test_bad_examples_are_validation_errors(router: Router, bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        await router.classify("x", examples=bad)
    assert info.value.hint


async def test_rerank_by_the_embedding_model_when_asked_even_with_a_cross_encoder_installed() -> None:
    from tests.unit.fakes import fake_manifest_dict

    from hybrid_router.manifest import Manifest

    data = fake_manifest_dict()
    embedder = next(m for m in data["models"] if "feature-extraction" in m["tasks"])
    data["models"].append({**embedder, "id": "reranker", "tasks": ["text-ranking"]})
    # the fake runtime has no cross-encoder call
    router = Router(as_runtime(FakeRuntime()), Manifest.from_dict(data))
    docs = ["alpha", "the query itself", "gamma"]
    result = await router.rerank("the query itself", docs, model=embedder["id"])
    assert [i for i, _, _ in result.results][0] == 1 and result.model == embedder["id"]
    assert "embedding model asked for" in result.route.rule
    with pytest.raises(ValidationError):  # neither an embedding model nor a cross-encoder
        await router.rerank("q", docs, model="no-such-model")
