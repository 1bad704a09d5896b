"""The task models we train (sentiment, named entities, NLI / zero-shot, reranker) in a real browser: each
loads through the worker, answers the committed examples (tests/data/task_examples.json) correctly, and
gives the same labels as onnxruntime in CPython on the same ONNX file.

The models are built only where the training data is (../shared/data): elsewhere these tests skip, saying so,
and test_tiny_task_models.py runs the same path on tiny stand-ins the test build trains in seconds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.browser.task_reference import TASKS, Onnx, built_task_models
from tests.harness import REPO, RouterPage, load_json

pytestmark = pytest.mark.browser

EXAMPLES: dict[str, Any] = load_json(REPO / "tests" / "data" / "task_examples.json")
BUILT = built_task_models()


def model(kind: str) -> tuple[str, Path, str]:
    if kind not in BUILT:
        pytest.skip(
            f"the {TASKS[kind]} model is not built: the task models train from ../shared/data "
            "(set HYBRID_ROUTER_DATA and run ./hr build); test_tiny_task_models.py tests the path meanwhile"
        )
    return BUILT[kind]


# ---------------------------------------------------------------- the CPython reference (onnxruntime)


def similarity_order(text: str, labels: list[str]) -> tuple[str, list[str]]:
    """The embedding model (its default dtype, onnxruntime): the labels by cosine to the text, best first,
    as ``classify`` with labels scores them by default; and the model's id."""
    import onnxruntime as ort
    from builder.convert.recipe import onnx_file
    from builder.models import load_manifest, read_index
    from transformers import AutoTokenizer

    from hybrid_router.routing.models import EMBED, choose

    entry = choose(load_manifest(), EMBED)
    folder = Path(read_index()[entry.id]["dir"])
    tok = AutoTokenizer.from_pretrained(str(folder))
    session = ort.InferenceSession(
        str(folder / onnx_file(entry.default_dtype)), providers=["CPUExecutionProvider"]
    )
    enc = tok([text, *labels], padding=True, truncation=True, return_tensors="np")
    names = {i.name for i in session.get_inputs()}
    hidden = session.run(
        ["last_hidden_state"], {k: v.astype(np.int64) for k, v in enc.items() if k in names}
    )[0]
    mask = enc["attention_mask"][..., None].astype(np.float32)
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    return entry.id, [labels[i] for i in np.argsort(-(pooled[1:] @ pooled[0]), kind="stable")]


def _classify(rp: RouterPage, text: str, **options: Any) -> dict[str, Any]:
    result: dict[str, Any] = rp.call(
        "return await router.classify(arg.text, arg.options);", {"text": text, "options": options}
    )
    return result


# ---------------------------------------------------------------- the tests


def test_sentiment(router_page: RouterPage) -> None:
    mid, folder, dtype = model("sentiment")
    ref = Onnx(folder, dtype)
    texts = [e["text"] for e in EXAMPLES["sentiment"]]
    expected_ref = [ref.id2label[int(i)] for i in ref.logits(texts).argmax(-1)]
    for example, cpython in zip(EXAMPLES["sentiment"], expected_ref, strict=True):
        result = _classify(router_page, example["text"])
        labels = result["labels"]
        assert [x["label"] for x in labels][0] == example["label"], (example, labels)
        assert labels[0]["label"] == cpython  # Transformers.js == onnxruntime
        assert math.isclose(sum(x["score"] for x in labels), 1.0, abs_tol=1e-4)
        assert result["model"] == mid and result["dtype"] == dtype
        route = result["route"]
        assert route["target"] == "local" and route["reason"] == "task-default" and route["model"] == mid


def test_named_entities(router_page: RouterPage) -> None:
    mid, folder, dtype = model("ner")
    ref = Onnx(folder, dtype)
    for example in EXAMPLES["entities"]:
        text = example["text"]
        result = router_page.call("return await router.ner(arg);", text)
        got = [(e["text"], e["label"]) for e in result["entities"]]
        assert got == [tuple(x) for x in example["entities"]], (text, result["entities"])
        assert all(text[e["start"] : e["end"]] == e["text"] for e in result["entities"])
        assert all(0 < e["score"] <= 1 for e in result["entities"])
        spans = [(e["text"], e["label"], e["start"], e["end"]) for e in result["entities"]]
        assert spans == ref.entities(text)  # Transformers.js == onnxruntime
        assert result["model"] == mid and result["route"]["target"] == "local"


def test_zero_shot_classification(router_page: RouterPage) -> None:
    mid, folder, dtype = model("nli")
    ref = Onnx(folder, dtype)
    for example in EXAMPLES["zero_shot"]:
        result = _classify(router_page, example["text"], labels=example["labels"], model=mid)
        order = [x["label"] for x in result["labels"]]
        assert order[0] == example["label"], (example["text"], result["labels"])
        assert order == ref.zero_shot(example["text"], example["labels"])
        assert math.isclose(sum(x["score"] for x in result["labels"]), 1.0, abs_tol=1e-4)
        assert result["model"] == mid


def test_zero_shot_labels_are_scored_by_embedding_similarity_by_default(router_page: RouterPage) -> None:
    """The method measured better on label sets neither model trained on (python -m eval.methods)."""
    model("nli")  # installed, and still not the default
    for example in EXAMPLES["zero_shot"]:
        result = _classify(router_page, example["text"], labels=example["labels"])
        embedder, expected = similarity_order(example["text"], example["labels"])
        assert [x["label"] for x in result["labels"]] == expected
        assert result["model"] == embedder and result["route"]["reason"] == "task-default"
        assert "embedding similarity" in result["route"]["rule"]


def test_nli_through_zero_shot(router_page: RouterPage) -> None:
    """SNLI test premises: of an entailed and a contradicted hypothesis, the entailed one scores higher."""
    mid, folder, dtype = model("nli")
    ref = Onnx(folder, dtype)
    for example in EXAMPLES["nli"]:
        labels = [example["contradicted"], example["entailed"]]
        result = _classify(router_page, example["premise"], labels=labels, hypothesisTemplate="{}", model=mid)
        order = [x["label"] for x in result["labels"]]
        assert order[0] == example["entailed"], (example, result["labels"])
        assert order == ref.zero_shot(example["premise"], labels, "{}")


def test_rerank(router_page: RouterPage) -> None:
    mid, folder, dtype = model("rerank")
    ref = Onnx(folder, dtype)
    for example in EXAMPLES["rerank"]:
        docs = example["documents"]
        js = "return await router.rerank(arg.query, arg.documents, { topK: 2 });"
        result = router_page.call(js, example)
        results = result["results"]
        assert len(results) == 2 and results[0]["index"] == example["best"], (example["query"], results)
        assert all(r["document"] == docs[r["index"]] for r in results)
        assert results[0]["score"] >= results[1]["score"] and 0 < results[1]["score"] < 1
        cpython = ref.logits([example["query"]] * len(docs), docs)[:, 0]
        assert [r["index"] for r in results] == list(np.argsort(-cpython, kind="stable")[:2])
        assert result["model"] == mid and result["route"]["model"] == mid and result["dtype"] == dtype


def test_rerank_scores_are_the_cross_encoders_sigmoid(router_page: RouterPage) -> None:
    """fp32: the browser's scores are onnxruntime's logits through a sigmoid. (q8 only keeps the order:
    ONNX Runtime Web computes the int8 weights' MatMuls differently from native onnxruntime, about 0.2 apart
    in logit on these examples.)"""
    _, folder, _ = model("rerank")
    ref = Onnx(folder, "fp32")
    example = EXAMPLES["rerank"][0]
    result = router_page.call(
        "return await router.rerank(arg.query, arg.documents, { dtype: 'fp32' });", example
    )
    logits = ref.logits([example["query"]] * len(example["documents"]), example["documents"])[:, 0]
    for r in result["results"]:
        assert math.isclose(r["score"], 1 / (1 + math.exp(-logits[r["index"]])), abs_tol=1e-4)


def test_bad_calls_are_validation_errors(router_page: RouterPage) -> None:
    err = router_page.error_of("await router.classify(42)")
    assert err["name"] == "ValidationError" and err["hint"]
    err = router_page.error_of("await router.rerank('q', 'not a list')")
    assert err["name"] == "ValidationError" and err["details"]["field"] == "documents"
    err = router_page.error_of("await router.ner('')")
    assert err["name"] == "ValidationError"


def test_task_models_stay_on_the_local_server(router_page: RouterPage) -> None:
    model("sentiment")
    _classify(router_page, "a private sentence about my health")
    assert router_page.requests.foreign(router_page.server.origin) == []


def test_the_page_panels_classify_mark_entities_and_rerank(browser: Any, server: Any) -> None:
    """The text-task panel of the page (web/text-tasks.js): each button answers with the model's result,
    checked against onnxruntime on the same files, and shows the route record."""
    for kind in ("sentiment", "ner", "nli", "rerank"):
        model(kind)
    page = browser.new_context().new_page()
    try:
        page.goto(server.url)
        # functions, not expressions: Playwright compiles an expression with eval, which the page's CSP refuses
        page.wait_for_function("() => !document.getElementById('rerank-go').disabled", timeout=120_000)

        def run(prefix: str) -> None:
            page.evaluate(f"document.getElementById('{prefix}-route').textContent = ''")
            page.click(f"#{prefix}-go")
            page.wait_for_function(
                f"() => (document.getElementById('{prefix}-route').textContent + "
                f"document.getElementById('{prefix}-error').textContent).length > 0",
                timeout=300_000,
            )
            assert page.inner_text(f"#{prefix}-error") == ""
            assert "local" in page.inner_text(f"#{prefix}-route")

        def listed(prefix: str) -> list[tuple[float, str]]:
            rows = page.eval_on_selector_all(
                f"#{prefix}-results li", "(lis) => lis.map((li) => li.textContent)"
            )
            return [(float(r.split(" ", 1)[0]), r.split(" ", 1)[1].strip()) for r in rows]

        text = page.input_value("#classify-text")
        run("classify")  # no labels: the sentiment model
        sentiment = Onnx(model("sentiment")[1], model("sentiment")[2])
        best = sentiment.id2label[int(sentiment.logits([text])[0].argmax())]
        assert listed("classify")[0][1] == best and model("sentiment")[0] in page.inner_text(
            "#classify-route"
        )

        labels = ["battery life", "customer service", "the weather"]
        page.fill("#classify-labels", ", ".join(labels))
        run("classify")  # your labels: scored by embedding similarity (the measured better method)
        embedder, expected = similarity_order(text, labels)
        assert [label for _, label in listed("classify")] == expected
        assert embedder in page.inner_text("#classify-route")
        assert abs(sum(score for score, _ in listed("classify")) - 1) < 0.01

        run("ner")
        marks = page.eval_on_selector_all(
            "#ner-output mark",
            "(ms) => ms.map((m) => [m.firstChild.textContent, m.querySelector('small').textContent])",
        )
        ner = Onnx(model("ner")[1], model("ner")[2])
        assert [tuple(m) for m in marks] == [
            (t, label) for t, label, _, _ in ner.entities(page.input_value("#ner-text"))
        ]
        assert ("Paris", "LOC") in [tuple(m) for m in marks]

        run("rerank")
        query = page.input_value("#rerank-query")
        docs = [d.strip() for d in page.input_value("#rerank-docs").split("\n") if d.strip()]
        rr = Onnx(model("rerank")[1], model("rerank")[2])
        order = np.argsort(-rr.logits([query] * len(docs), docs)[:, 0], kind="stable")
        assert [doc for _, doc in listed("rerank")] == [docs[i] for i in order]
        assert "fractures" in listed("rerank")[0][1]
    finally:
        page.context.close()
