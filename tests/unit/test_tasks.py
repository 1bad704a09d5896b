"""The task models' router methods (classify, ner, rerank) and the entity grouping, on a fake runtime."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Coroutine
from typing import Any, cast

import pytest
from tests.unit.fakes import as_runtime, fake_manifest_dict

from hybrid_router import wire
from hybrid_router.entities import group_entities, piece_offsets
from hybrid_router.errors import InferenceError, ModelLoadError, ValidationError
from hybrid_router.manifest import Manifest, ModelEntry
from hybrid_router.protocol import CallContext
from hybrid_router.router import Router

SHA = "0" * 64


def _entry(mid: str, tasks_: list[str]) -> dict[str, Any]:
    base = fake_manifest_dict()["models"][0]
    return {**base, "id": mid, "tasks": tasks_}


def manifest() -> Manifest:
    data = fake_manifest_dict()
    data["models"] += [
        _entry("sentiment", ["text-classification"]),
        _entry("nli", ["zero-shot-classification"]),
        _entry("ner", ["token-classification"]),
        _entry("reranker", ["text-ranking"]),
    ]
    return Manifest.from_dict(data)


class TaskRuntime:
    """Answers the four task calls from simple rules; records them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.tokens: list[dict[str, Any]] = []
        self.fail: BaseException | None = None

    async def text_classification(
        self, model: ModelEntry, dtype: str, texts: list[str], *, on_progress: Any = None
    ) -> list[list[tuple[str, float]]]:
        self.calls.append(("text-classification", model.id, dtype))
        if self.fail:
            raise self.fail
        good, bad = [("NEGATIVE", 0.2), ("POSITIVE", 0.8)], [("NEGATIVE", 0.9), ("POSITIVE", 0.1)]
        return [good if "good" in t else bad for t in texts]

    async def zero_shot_classification(
        self,
        model: ModelEntry,
        dtype: str,
        text: str,
        labels: list[str],
        *,
        hypothesis_template: str,
        multi_label: bool,
        on_progress: Any = None,
    ) -> list[tuple[str, float]]:
        self.calls.append(("zero-shot-classification", model.id, hypothesis_template))
        raw = [2.0 if lab in text else 0.0 for lab in labels]
        total = sum(math.exp(x) for x in raw)
        return [(lab, math.exp(x) / total) for lab, x in zip(labels, raw, strict=True)]

    async def token_classification(
        self, model: ModelEntry, dtype: str, text: str, *, on_progress: Any = None
    ) -> list[dict[str, Any]]:
        self.calls.append(("token-classification", model.id, dtype))
        return self.tokens

    async def cross_encoder_scores(
        self, model: ModelEntry, dtype: str, query: str, documents: list[str], *, on_progress: Any = None
    ) -> list[float]:
        self.calls.append(("text-ranking", model.id, dtype))
        words = set(query.lower().split())
        return [float(len(words & set(d.lower().split()))) - 1.0 for d in documents]


@pytest.fixture
def runtime() -> TaskRuntime:
    return TaskRuntime()


@pytest.fixture
def router(runtime: TaskRuntime) -> Router:
    return Router(as_runtime(runtime), manifest())


def test_classify_uses_the_classifier_and_sorts(router: Router, runtime: TaskRuntime) -> None:
    result = asyncio.run(router.classify("a good film")).to_wire()
    assert result["labels"] == [{"label": "POSITIVE", "score": 0.8}, {"label": "NEGATIVE", "score": 0.2}]
    assert result["model"] == "sentiment" and result["dtype"] == "q8"
    route = result["route"]
    assert route["target"] == "local" and route["reason"] == "task-default" and route["model"] == "sentiment"
    assert runtime.calls == [("text-classification", "sentiment", "q8")]


def test_classify_with_labels_and_the_nli_model_named_is_zero_shot(
    router: Router, runtime: TaskRuntime
) -> None:
    result = asyncio.run(
        router.classify("news about sports today", labels=["politics", "sports"], model="nli")
    ).to_wire()
    assert [x["label"] for x in result["labels"]] == ["sports", "politics"]
    assert abs(sum(x["score"] for x in result["labels"]) - 1) < 1e-9
    assert result["model"] == "nli" and result["route"]["fallbacks"] == []
    assert runtime.calls == [("zero-shot-classification", "nli", "This example is {}.")]


class EmbeddingTaskRuntime(TaskRuntime):
    """The task calls of :class:`TaskRuntime` and the fake runtime's hash vectors (``embed_fail``: the
    embedding model does not load)."""

    embed_fail: BaseException | None = None

    async def feature_extraction(self, model: ModelEntry, dtype: str, texts: list[str], **kwargs: Any) -> Any:
        from tests.unit.fakes import FakeRuntime

        self.calls.append(("feature-extraction", model.id, dtype))
        if self.embed_fail:
            raise self.embed_fail
        return await FakeRuntime().feature_extraction(model, dtype, texts, **kwargs)


def test_classify_with_labels_scores_them_by_embedding_similarity_by_default() -> None:
    """The zero-shot method measured better (python -m eval.methods) is the default: no NLI call."""
    runtime = EmbeddingTaskRuntime()
    result = asyncio.run(
        Router(as_runtime(runtime), manifest()).classify("sports news", labels=["politics", "sports"])
    )
    assert (result.model, result.route.reason, result.route.fallbacks) == ("fake-embed", "task-default", ())
    assert "embedding similarity" in result.route.rule and "measured" in result.route.rule
    assert [c[0] for c in runtime.calls] == ["feature-extraction"]
    assert sorted(label for label, _ in result.labels) == ["politics", "sports"]
    assert math.isclose(sum(score for _, score in result.labels), 1.0, abs_tol=1e-6)
    # an embedding model asked for by name scores them too; the NLI model named answers by NLI
    named = asyncio.run(
        Router(as_runtime(runtime), manifest()).classify("x", labels=["a", "b"], model="fake-embed")
    )
    assert named.model == "fake-embed" and "asked for" in named.route.rule
    nli = asyncio.run(Router(as_runtime(runtime), manifest()).classify("x", labels=["a", "b"], model="nli"))
    assert nli.model == "nli" and runtime.calls[-1][0] == "zero-shot-classification"


def test_when_the_embedding_model_cannot_load_the_nli_model_scores_the_labels() -> None:
    runtime = EmbeddingTaskRuntime()
    runtime.embed_fail = ModelLoadError("fake-embed/onnx/model.onnx from the server is corrupted")
    result = asyncio.run(
        Router(as_runtime(runtime), manifest()).classify("about sports", labels=["politics", "sports"])
    )
    assert (result.model, result.route.reason) == ("nli", "fallback")
    assert [(f.model, f.error_name) for f in result.route.fallbacks] == [("fake-embed", "ModelLoadError")]
    assert [label for label, _ in result.labels] == ["sports", "politics"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"text": 3}, "text"),
        ({"text": "  "}, "text"),
        ({"text": "x", "labels": "sports"}, "labels"),
        ({"text": "x", "labels": []}, "labels"),
        ({"text": "x", "labels": ["a", "a"]}, "labels"),
        ({"text": "x", "labels": ["a"], "hypothesis_template": "no slot"}, "hypothesis_template"),
        ({"text": "x", "model": "nli"}, "model"),
    ],
)
def test_classify_refuses_bad_input(router: Router, kwargs: dict[str, Any], field: str) -> None:
    text = kwargs.pop("text")
    with pytest.raises(ValidationError) as err:
        asyncio.run(router.classify(text, **kwargs))
    assert err.value.details["field"] == field and err.value.hint


def test_runtime_failure_is_an_inference_error(router: Router, runtime: TaskRuntime) -> None:
    runtime.fail = RuntimeError("boom")
    with pytest.raises(InferenceError, match="boom"):
        asyncio.run(router.classify("x"))


def test_rerank_orders_and_cuts(router: Router) -> None:
    docs = ["cats purr", "dogs bark at cats", "the weather", "dogs and cats and birds"]
    result = asyncio.run(router.rerank("dogs cats", docs, top_k=2)).to_wire()
    assert [r["index"] for r in result["results"]] == [1, 3]
    assert all(r["document"] == docs[r["index"]] for r in result["results"])
    assert result["results"][0]["score"] == pytest.approx(1 / (1 + math.exp(-1.0)))
    assert result["route"]["model"] == "reranker"
    everything = asyncio.run(router.rerank("dogs cats", docs)).to_wire()["results"]
    assert len(everything) == 4 and everything[-1]["index"] == 2


@pytest.mark.parametrize(
    ("query", "docs", "top_k"),
    [("", ["a"], None), ("q", "a", None), ("q", [], None), ("q", ["a"], 0), ("q", ["a"], 1.5)],
)
def test_rerank_refuses_bad_input(router: Router, query: Any, docs: Any, top_k: Any) -> None:
    with pytest.raises(ValidationError):
        asyncio.run(router.rerank(query, docs, top_k=top_k))


def test_handlers_on_the_wire(router: Router, runtime: TaskRuntime) -> None:
    handlers = wire.handlers(router)
    assert {"classify", "ner", "rerank"} <= set(handlers)

    class Ctx:
        progress = None

    def call(method: str, params: dict[str, Any]) -> Coroutine[Any, Any, Any]:
        """The handler's coroutine (a Handler is typed as returning an Awaitable), with Ctx standing in
        for the CallContext."""
        return cast(Coroutine[Any, Any, Any], handlers[method](params, cast(CallContext, Ctx())))

    out = asyncio.run(
        call(
            "classify",
            {
                "text": "good",
                "labels": None,
                "model": None,
                "dtype": None,
                "multi_label": False,
                "hypothesis_template": None,
            },
        )
    )
    assert out["labels"][0]["label"] == "POSITIVE"
    with pytest.raises(ValidationError, match="unknown parameter"):
        asyncio.run(call("ner", {"text": "x", "lables": 1}))


def _tok(word: str, entity: str, score: float = 0.9) -> dict[str, Any]:
    return {"word": word, "entity": entity, "score": score, "index": 0}


def test_ner_groups_pieces_into_spans(router: Router, runtime: TaskRuntime) -> None:
    text = "Angela Merkel visited São Paulo, Brazil."
    runtime.tokens = [
        _tok("angela", "B-PER"),
        _tok("mer", "I-PER"),
        _tok("##kel", "I-PER", 0.7),
        _tok("visited", "O"),
        _tok("sao", "B-LOC"),
        _tok("paulo", "I-LOC"),
        _tok(",", "O"),
        _tok("brazil", "B-LOC"),
        _tok(".", "O"),
    ]
    result = asyncio.run(router.ner(text)).to_wire()
    ents = result["entities"]
    assert [(e["text"], e["label"]) for e in ents] == [
        ("Angela Merkel", "PER"),
        ("São Paulo", "LOC"),
        ("Brazil", "LOC"),
    ]
    assert all(text[e["start"] : e["end"]] == e["text"] for e in ents)
    assert ents[0]["score"] == pytest.approx((0.9 + 0.9 + 0.7) / 3)


def test_grouping_rules() -> None:
    text = "EU and UK talks in New York"
    toks = [
        _tok("eu", "B-ORG"),
        _tok("and", "O"),
        _tok("uk", "I-LOC"),
        _tok("talks", "O"),
        _tok("in", "O"),
        _tok("new", "B-LOC"),
        _tok("york", "B-LOC"),
    ]
    ents = group_entities(text, toks)
    # I- after O starts an entity (conlleval); B- after B- of the same type starts another one
    expected = [("EU", "ORG"), ("UK", "LOC"), ("New", "LOC"), ("York", "LOC")]
    assert [(e.text, e.label) for e in ents] == expected
    # a continuation piece never starts an entity of its own, and extends the word's entity
    ents = group_entities("Johnson said", [_tok("john", "B-PER"), _tok("##son", "O"), _tok("said", "O")])
    assert [(e.text, e.start, e.end) for e in ents] == [("Johnson", 0, 7)]


def test_offsets_survive_unknown_pieces_and_odd_spacing() -> None:
    text = "Visit  ☃☃ Zürich\tnow"
    # the pipeline drops [UNK] (a special token): the next piece is found further on
    assert piece_offsets(text, ["visit", "zurich", "now"]) == [(0, 5), (10, 16), (17, 20)]
    assert piece_offsets("abc", ["xyz"]) == [None]


def test_offsets_match_the_reference_tokenizer() -> None:
    """Our offsets equal those of the Hugging Face tokenizer of all-MiniLM-L6-v2 (when it is built)."""
    from builder.common import BuildError
    from builder.models import source_dir

    try:
        folder = source_dir("all-MiniLM-L6-v2")
    except BuildError:
        pytest.skip("all-MiniLM-L6-v2 is not built (./hr build): no reference tokenizer")
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_padding()  # the packaged tokenizer.json pads to 128
    tok.no_truncation()
    texts = [
        "Dr. Émilie O'Neil-Smith moved to Köln (Germany) in 2019, working for the U.N.!",
        "naïve café owners in Zürich don't pay €5 for 'ÅÄÖ' snacks",
    ]
    for text in texts:
        enc = tok.encode(text, add_special_tokens=False)
        pieces = [t for t in enc.tokens if t != "[UNK]"]
        expected = [o for t, o in zip(enc.tokens, enc.offsets, strict=True) if t != "[UNK]"]
        assert piece_offsets(text, pieces) == expected


class BrokenTaskModels(TaskRuntime):
    """The NLI model and the cross-encoder cannot load (their files fail the integrity check); the
    embedding model works (the fake runtime's hash vectors)."""

    async def zero_shot_classification(self, *args: Any, **kwargs: Any) -> list[tuple[str, float]]:
        raise ModelLoadError("nli/onnx/model_quantized.onnx from the server is corrupted")

    async def cross_encoder_scores(self, *args: Any, **kwargs: Any) -> list[float]:
        raise ModelLoadError("reranker/onnx/model_quantized.onnx from the server is corrupted")

    async def feature_extraction(self, model: ModelEntry, dtype: str, texts: list[str], **kwargs: Any) -> Any:
        from tests.unit.fakes import FakeRuntime

        return await FakeRuntime().feature_extraction(model, dtype, texts, **kwargs)


def test_a_task_model_that_cannot_load_falls_back_to_the_embedding_model() -> None:
    router = Router(as_runtime(BrokenTaskModels()), manifest())
    labelled = asyncio.run(router.classify("a text about sports", labels=["politics", "sports"]))
    route = labelled.route  # the broken NLI model is not the first choice: it is never tried
    assert route.target == "local" and route.reason == "task-default" and route.model == "fake-embed"
    assert route.fallbacks == () and "embedding similarity" in route.rule
    assert sorted(label for label, _ in labelled.labels) == ["politics", "sports"]
    ranked = asyncio.run(router.rerank("dogs cats", ["cats", "dogs and cats", "rain"]))
    assert ranked.route.reason == "fallback" and ranked.model == "fake-embed"
    assert [f.error_name for f in ranked.route.fallbacks] == ["ModelLoadError"]
    assert sorted(i for i, _, _ in ranked.results) == [0, 1, 2]


def test_a_task_model_asked_for_by_name_fails_with_its_own_error() -> None:
    router = Router(as_runtime(BrokenTaskModels()), manifest())
    with pytest.raises(ModelLoadError, match="corrupted"):
        asyncio.run(router.classify("x", labels=["a", "b"], model="nli"))
