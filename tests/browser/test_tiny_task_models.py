"""The task-model path in a real browser on a machine without the real task models: tiny stand-ins
(tests/tiny_task_model.py: a 1-layer BERT fine-tuned by the real ``finetune-encoder`` recipe on a few
sentences of each dataset's format, exported to ONNX fp32 and q8) answer classify, ner, zero-shot classify
with the NLI model, and rerank through the public JS client.

The real models train for about 47 minutes, so ``./hr test`` does not build them and test_task_models.py
skips without them. Here the kinds whose real model is not built get a tiny one, trained in seconds into a
temporary cache with a temporary manifest that serve.py serves (as test_fresh_build.py does); where all
four real ones are built, the module skips. ``HYBRID_ROUTER_TEST_TINY=1`` builds all four tiny ones anyway.

The tiny models answer nothing meaningful, so the tests check fidelity, not quality: the browser answers
what onnxruntime in CPython computes on the same ONNX file with the same folder's HF tokenizer
(tests/browser/task_reference.py): the same labels in the same order, the same entity spans, the same
ranking, scores within :data:`TOL`; and the route says the call ran locally on the tiny model it named.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import tiny_task_model as tiny
from tests.browser.task_reference import TASKS, Onnx, built_task_models, sigmoid
from tests.browser.test_fresh_build import built_cache
from tests.harness import RouterPage, Server, open_router_page, start_server, stop_server

pytestmark = pytest.mark.browser

#: ``1``: build and test all four tiny models even where the real ones are built
FORCE = os.environ.get("HYBRID_ROUTER_TEST_TINY", "").strip() == "1"
#: enough training for outputs that differ by more than two runtimes' rounding (a second or two a model)
STEPS, LR = 40, 1e-2
#: Transformers.js (ONNX Runtime Web) vs onnxruntime on the same file: float rounding apart (within 1e-6 here)
TOL = 1e-5

SENTIMENT = ["a great film", "the plot was very dull", "French films are fun."]
ENTITIES = [
    "Anna met Maria in Paris and London.",
    "Paul works at Globex in Berlin.",
    "The Pauls visited Acme.",
]
ZERO_SHOT = [
    ("the man plays music", ["music", "film", "animal"], None),
    ("a dog runs outside", ["animal", "food", "music", "film"], None),
    ("a cat drinks milk", ["an animal drinks", "a man sleeps"], "{}"),
]
#: Transformers.js's default hypothesis of the zero-shot pipeline
TEMPLATE = "This example is {}."
QUERY = "what does the cat drink"
DOCUMENTS = ["the dog eats a bone", "the cat drinks milk", "the man plays music", "the fish swims"]


@dataclass
class Served:
    server: Server
    models: dict[str, tuple[str, Path, str]]  # kind -> (model id, built folder, default dtype)


def tiny_kinds() -> list[str]:
    """The kinds that get a tiny model: those whose real model is not built (all with the env var)."""
    if FORCE:
        return list(tiny.KINDS)
    built = built_task_models()
    return [kind for kind in tiny.KINDS if kind not in built]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from builder.common import cache_root

    kinds = tiny_kinds()
    if not kinds:
        pytest.skip(
            "the real task models are built: test_task_models.py tests them "
            "(HYBRID_ROUTER_TEST_TINY=1 tests the tiny ones too)"
        )
    site = cache_root() / "site.json"
    if not site.is_file():
        pytest.skip("the runtime assets are not built (./hr build)")
    tmp = tmp_path_factory.mktemp("tiny-tasks")
    data = tiny.make_task_data(tmp / "data", kinds)
    wheel = tiny.make_wheel(tiny.make_task_bert(tmp / "bert"), tmp / "wheel")
    entries = [tiny.task_entry(kind, wheel, data, max_steps=STEPS, lr=LR) for kind in kinds]
    manifest = tiny.write_manifest(tmp / "manifest.json", *entries)
    cache, index = built_cache(tmp, site, wheel, data, manifest, update_manifest=True)
    models = {}
    for kind in kinds:
        mid = tiny.KINDS[kind].model_id
        models[kind] = (mid, Path(index["models"][mid]["dir"]), index["models"][mid]["default_dtype"])
    with tiny.environment(HYBRID_ROUTER_CACHE=str(cache), HYBRID_ROUTER_MANIFEST=str(manifest)):
        server = start_server(tmp)
    try:
        yield Served(server, models)
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def rp(browser: Any, served: Served) -> Iterator[RouterPage]:
    page = open_router_page(browser, served.server)
    try:
        yield page
    finally:
        page.page.context.close()


def model(served: Served, kind: str) -> tuple[str, Path, str]:
    if kind not in served.models:
        pytest.skip(
            f"the real {TASKS[kind]} model is built: test_task_models.py tests it "
            "(HYBRID_ROUTER_TEST_TINY=1 tests the tiny one too)"
        )
    return served.models[kind]


def reference(served: Served, kind: str, dtype: str) -> tuple[str, str, Onnx]:
    """The tiny model of ``kind``: its id, ``dtype`` ("default": its default one) and onnxruntime on that
    file (basic graph optimizations: as ONNX Runtime Web computes q8)."""
    mid, folder, default = model(served, kind)
    dtype = default if dtype == "default" else dtype
    return mid, dtype, Onnx(folder, dtype, fuse=False)


def assert_ran_locally_on(result: dict[str, Any], mid: str, dtype: str) -> None:
    assert result["model"] == mid and result["dtype"] == dtype
    route = result["route"]
    assert route["target"] == "local" and route["model"] == mid, route


def assert_same_scores(got: list[tuple[str, float]], expected: list[tuple[str, float]]) -> None:
    """The same labels in the same order, each score within :data:`TOL` of the reference's."""
    assert [label for label, _ in got] == [label for label, _ in expected], (got, expected)
    for (_, a), (_, b) in zip(got, expected, strict=True):
        assert math.isclose(a, b, abs_tol=TOL), (got, expected)


def classify(rp: RouterPage, text: str, **options: Any) -> dict[str, Any]:
    result: dict[str, Any] = rp.call(
        "return await router.classify(arg.text, arg.options);", {"text": text, "options": options}
    )
    return result


# ---------------------------------------------------------------- the tests


def test_the_tiny_vocabulary_covers_the_inputs(served: Served) -> None:
    """Every word of the inputs is in the vocabulary: no input reaches the model as [UNK]."""
    from transformers import AutoTokenizer

    _, folder, _ = next(iter(served.models.values()))
    tok = AutoTokenizer.from_pretrained(str(folder))
    texts = [*SENTIMENT, *ENTITIES, QUERY, *DOCUMENTS]
    for text, labels, template in ZERO_SHOT:
        texts += [text, *((template or TEMPLATE).replace("{}", label) for label in labels)]
    assert [t for t in texts if tok.unk_token_id in tok(t)["input_ids"]] == []


@pytest.mark.parametrize("dtype", ["default", "fp32"])
def test_classify_with_the_sentiment_model(served: Served, rp: RouterPage, dtype: str) -> None:
    mid, dtype, ref = reference(served, "sentiment", dtype)
    for text in SENTIMENT:
        result = classify(rp, text, model=mid, dtype=dtype)
        assert_same_scores([(x["label"], x["score"]) for x in result["labels"]], ref.labels(text))
        assert_ran_locally_on(result, mid, dtype)


@pytest.mark.parametrize("dtype", ["default", "fp32"])
def test_named_entities(served: Served, rp: RouterPage, dtype: str) -> None:
    mid, dtype, ref = reference(served, "ner", dtype)
    found = 0
    for text in ENTITIES:
        result = rp.call(
            "return await router.ner(arg.text, arg.options);",
            {"text": text, "options": {"model": mid, "dtype": dtype}},
        )
        expected = ref.entity_list(text)
        got = [(e["text"], e["label"], e["start"], e["end"]) for e in result["entities"]]
        assert got == [(e.text, e.label, e.start, e.end) for e in expected], text
        for e, r in zip(result["entities"], expected, strict=True):
            assert math.isclose(e["score"], r.score, abs_tol=TOL), (text, e, r)
        assert_ran_locally_on(result, mid, dtype)
        found += len(got)
    assert found, "the tiny NER model labels no word of these texts: the comparison would show nothing"


@pytest.mark.parametrize("dtype", ["default", "fp32"])
def test_zero_shot_classification_with_the_nli_model(served: Served, rp: RouterPage, dtype: str) -> None:
    mid, dtype, ref = reference(served, "nli", dtype)
    for text, labels, template in ZERO_SHOT:
        options: dict[str, Any] = {"labels": labels, "model": mid, "dtype": dtype}
        if template is not None:
            options["hypothesisTemplate"] = template
        result = classify(rp, text, **options)
        expected = ref.zero_shot_scores(text, labels, template or TEMPLATE)
        assert_same_scores([(x["label"], x["score"]) for x in result["labels"]], expected)
        assert_ran_locally_on(result, mid, dtype)


@pytest.mark.parametrize("dtype", ["default", "fp32"])
def test_rerank(served: Served, rp: RouterPage, dtype: str) -> None:
    mid, dtype, ref = reference(served, "rerank", dtype)
    docs = DOCUMENTS
    result = rp.call(
        "return await router.rerank(arg.query, arg.documents, arg.options);",
        {"query": QUERY, "documents": docs, "options": {"model": mid, "dtype": dtype}},
    )
    scores = sigmoid(ref.logits([QUERY] * len(docs), docs)[:, 0])
    expected = [(str(i), float(scores[i])) for i in sorted(range(len(docs)), key=lambda i: -scores[i])]
    got = [(str(r["index"]), r["score"]) for r in result["results"]]
    assert_same_scores(got, expected)
    assert all(r["document"] == docs[r["index"]] for r in result["results"])
    assert_ran_locally_on(result, mid, dtype)
