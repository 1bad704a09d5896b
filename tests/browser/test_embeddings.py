"""Embeddings in a real browser (Pyodide worker + Transformers.js) against sentence-transformers on torch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.harness import REPO, RouterPage, load_json, open_router_page

pytestmark = pytest.mark.browser

SENTENCES: list[str] = load_json(REPO / "tests" / "data" / "sentences.json")["sentences"]
MODEL = "all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """The reference implementation: sentence-transformers on torch, from the same packaged weights."""
    from builder.models import source_dir
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(source_dir(MODEL)), device="cpu")
    return np.asarray(model.encode(SENTENCES, normalize_embeddings=True, batch_size=8), dtype=np.float64)


def _embed(rp: RouterPage, texts: list[str], dtype: str) -> dict[str, Any]:
    result: dict[str, Any] = rp.call(
        "return await router.embed(arg.texts, { dtype: arg.dtype });", {"texts": texts, "dtype": dtype}
    )
    return result


@pytest.mark.parametrize(("dtype", "min_cos"), [("fp32", 0.9999), ("q8", 0.999)])
def test_vectors_match_sentence_transformers(
    router_page: RouterPage, reference: np.ndarray, dtype: str, min_cos: float
) -> None:
    assert len(SENTENCES) >= 30
    result = _embed(router_page, SENTENCES, dtype)
    vectors = np.asarray(result["vectors"], dtype=np.float64)
    assert vectors.shape == reference.shape == (len(SENTENCES), 384)
    assert result["dims"] == 384 and result["model"] == MODEL
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cos = (vectors * reference).sum(axis=1)
    worst = int(cos.argmin())
    assert cos.min() >= min_cos, (
        f"{dtype}: sentence {worst} {SENTENCES[worst][:60]!r} has cosine {cos[worst]:.6f}"
    )
    route = result["route"]
    assert route["target"] == "local" and route["model"] == MODEL and route["ms"] > 0
    assert route["reason"]


def test_order_is_kept_and_batches_agree(router_page: RouterPage, reference: np.ndarray) -> None:
    picked = [5, 0, 12, 30]
    result = _embed(router_page, [SENTENCES[i] for i in picked], "fp32")
    cos = (np.asarray(result["vectors"]) * reference[picked]).sum(axis=1)
    assert cos.min() >= 0.9999


@pytest.mark.parametrize("bad", ["a plain string", [1, 2], [], ["ok", None], {"texts": ["x"]}])
def test_bad_input_is_a_typed_error_and_the_worker_keeps_serving(router_page: RouterPage, bad: Any) -> None:
    err = router_page.error_of("await router.embed(arg)", bad)
    assert err["name"] == "ValidationError", err
    assert err["hint"] and len(err["hint"]) > 10
    after = _embed(router_page, ["still alive?"], "fp32")
    assert len(after["vectors"]) == 1 and len(after["vectors"][0]) == 384


def test_unknown_model_is_a_typed_error(router_page: RouterPage) -> None:
    err = router_page.error_of("await router.embed(['x'], { model: 'no-such-model' })")
    assert err["name"] in ("ValidationError", "ModelLoadError"), err
    assert "all-MiniLM-L6-v2" in err["hint"] + err["message"]


def test_an_aborted_call_rejects_with_abort_error(router_page: RouterPage) -> None:
    err = router_page.error_of(
        "const c = new AbortController(); c.abort(); await router.embed(['x'], { signal: c.signal })"
    )
    assert err["name"] == "AbortError"
    err = router_page.error_of(
        "const c = new AbortController(); const p = router.embed(arg, { signal: c.signal }); c.abort(); await p",
        SENTENCES,
    )
    assert err["name"] == "AbortError"
    assert len(_embed(router_page, ["after abort"], "fp32")["vectors"]) == 1


def test_boot_reports_progress_to_ready(router_page: RouterPage) -> None:
    steps = [e.get("step") for e in router_page.boot_events if e.get("stage") == "boot"]
    assert steps[0] == "config" and steps[-1] == "ready"
    fractions = [e["progress"] for e in router_page.boot_events if e.get("stage") == "boot"]
    assert fractions == sorted(fractions) and fractions[-1] == 1


def test_terminate_rejects_pending_calls(browser: Any, server: Any) -> None:
    rp = open_router_page(browser, server)
    try:
        err = rp.error_of("const p = router.embed(arg); router.terminate(); await p", SENTENCES)
        assert err["name"] == "AbortError" and err["details"].get("reason") == "terminated"
        err = rp.error_of("await router.embed(['x'])")
        assert err["name"] == "AbortError"
    finally:
        rp.page.context.close()


def test_boot_and_embedding_stay_on_the_local_server(browser: Any, server: Any) -> None:
    """Privacy: every request the browser makes (page and worker) goes to our own server."""
    rp = open_router_page(browser, server, fresh=True)  # a first visit: the downloads are what it checks
    try:
        _embed(rp, ["private text that must not leave the device", "second"], "fp32")
        _embed(rp, ["private text that must not leave the device"], "q8")
        urls = rp.requests.urls
        # the recorder sees the worker's requests too: otherwise this test would prove nothing
        assert any(u.endswith("pyodide.asm.wasm") for u in urls), urls
        assert any("/models/all-MiniLM-L6-v2/" in u and u.endswith(".onnx") for u in urls), urls
        assert rp.requests.foreign(server.origin) == []
    finally:
        rp.page.context.close()


def test_few_shot_classification_matches_numpy_on_the_reference_vectors(router_page: RouterPage) -> None:
    """classify(text, { examples }) = softmax(cosine to the example centroids / 0.05), as numpy computes it
    on sentence-transformers vectors."""
    from builder.models import source_dir
    from sentence_transformers import SentenceTransformer

    examples = {
        "weather": ["It will rain tomorrow.", "A sunny and warm afternoon."],
        "finance": ["The stock fell by five percent.", "Interest rates are going up."],
    }
    text = "Expect heavy snow and strong winds tonight."
    got = router_page.call(
        "return await router.classify(arg.text, { examples: arg.examples });",
        {"text": text, "examples": examples},
    )
    model = SentenceTransformer(str(source_dir(MODEL)), device="cpu")

    def vec(xs: list[str]) -> np.ndarray:
        return np.asarray(model.encode(xs, normalize_embeddings=True), dtype=np.float64)

    q = vec([text])[0]
    cents = [vec(v).mean(axis=0) for v in examples.values()]
    cos = np.array([c @ q / np.linalg.norm(c) for c in cents]) / 0.05
    probs = np.exp(cos - cos.max()) / np.exp(cos - cos.max()).sum()
    expected = dict(zip(examples, probs, strict=True))
    assert got["labels"][0]["label"] == "weather"
    for item in got["labels"]:
        assert item["score"] == pytest.approx(expected[item["label"]], abs=1e-3)
    assert got["route"]["target"] == "local" and "few-shot" in got["route"]["rule"]
