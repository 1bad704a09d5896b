"""Classification and reranking with the embedding model alone.

Used when the manifest has no NLI (zero-shot) or cross-encoder model installed, and for few-shot
classification by examples:

- ``classify(text, labels=[...])``: each label (a name or a short description) is embedded; the scores are
  a softmax over the cosine similarities divided by :data:`TEMPERATURE`;
- ``classify(text, examples={label: [texts]})``: each label is the normalized centroid of its examples'
  embeddings; same scoring;
- ``rerank(query, documents)``: documents ordered by cosine similarity to the query; ``score`` is the cosine.

The route record names the embedding model and says in its rule that similarity decided.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import numpy as np

from hybrid_router import embeddings, validation
from hybrid_router.errors import ValidationError
from hybrid_router.local.runtime import LocalRuntime, ProgressCallback
from hybrid_router.manifest import Manifest
from hybrid_router.tasks import MAX_DOCUMENTS, MAX_LABELS, ClassifyResult, RerankResult

__all__ = ["TEMPERATURE", "classify_by_examples", "classify_by_labels", "rerank_by_similarity"]

#: cosine similarities of sentence embeddings differ by tenths: sharpen them into probabilities
TEMPERATURE = 0.05
MAX_EXAMPLES = 256


def _softmax(scores: np.ndarray) -> np.ndarray:
    z = scores / TEMPERATURE
    z = np.exp(z - z.max())
    return z / z.sum()


async def _vectors(runtime: LocalRuntime, manifest: Manifest, texts: list[str],
                   on_progress: ProgressCallback | None,
                   clock: Callable[[], float]) -> embeddings.EmbedResult:
    return await embeddings.embed(runtime, manifest, texts, on_progress=on_progress, clock=clock)


def _ranked(names: list[str], centroids: np.ndarray, query: np.ndarray) -> list[tuple[str, float]]:
    probs = _softmax(centroids @ query)
    order = np.argsort(-probs, kind="stable")
    return [(names[i], float(probs[i])) for i in order]


async def classify_by_labels(runtime: LocalRuntime, manifest: Manifest, text: str, labels: object, *,
                             on_progress: ProgressCallback | None = None,
                             clock: Callable[[], float] = time.perf_counter) -> ClassifyResult:
    names = validation.texts(labels, field="labels", max_items=MAX_LABELS, max_chars=200)
    if len(set(names)) != len(names):
        raise ValidationError("labels must be distinct",
                              hint='Pass each label once, e.g. ["sports", "politics"].', field="labels")
    result = await _vectors(runtime, manifest, [text, *names], on_progress, clock)
    ranked = _ranked(names, result.vectors[1:], result.vectors[0])
    route = result.route.replace(rule="no zero-shot (NLI) model is installed: the labels were scored by "
                                 f"embedding similarity with {result.model}")
    return ClassifyResult(ranked, result.model, result.dtype, route)


async def classify_by_examples(runtime: LocalRuntime, manifest: Manifest, text: str, examples: object, *,
                               on_progress: ProgressCallback | None = None,
                               clock: Callable[[], float] = time.perf_counter) -> ClassifyResult:
    if not isinstance(examples, Mapping) or not examples:
        raise ValidationError("examples must be an object mapping each label to a list of example texts",
                              hint='For example { positive: ["great!", "loved it"], negative: ["awful"] }.',
                              field="examples", got=validation.type_name(examples))
    if len(examples) > MAX_LABELS:
        raise ValidationError(f"at most {MAX_LABELS} labels", hint="Merge or drop some labels.",
                              field="examples")
    names = [str(k) for k in examples]
    groups = [validation.texts(v, field=f"examples[{k!r}]", max_items=MAX_EXAMPLES)
              for k, v in examples.items()]
    flat = [t for g in groups for t in g]
    result = await _vectors(runtime, manifest, [text, *flat], on_progress, clock)
    vectors, start, centroids = result.vectors[1:], 0, []
    for group in groups:
        c = vectors[start:start + len(group)].mean(axis=0)
        centroids.append(c / max(float(np.linalg.norm(c)), 1e-12))
        start += len(group)
    ranked = _ranked(names, np.stack(centroids), result.vectors[0])
    route = result.route.replace(rule=f"few-shot: nearest centroid of {len(flat)} examples, "
                                 f"embedded with {result.model}")
    return ClassifyResult(ranked, result.model, result.dtype, route)


async def rerank_by_similarity(runtime: LocalRuntime, manifest: Manifest, query: str, documents: object,
                               top_k: int | None, *, model_id: str | None = None, dtype: str | None = None,
                               on_progress: ProgressCallback | None = None,
                               clock: Callable[[], float] = time.perf_counter) -> RerankResult:
    """``documents`` by cosine similarity to ``query`` (a bi-encoder): where no cross-encoder is installed,
    or when ``model_id`` names an embedding model."""
    docs = validation.texts(documents, field="documents", max_items=MAX_DOCUMENTS)
    k = len(docs) if top_k is None else validation.positive_int(top_k, "top_k")
    result = await embeddings.embed(runtime, manifest, [query, *docs], model_id=model_id, dtype=dtype,
                                    on_progress=on_progress, clock=clock)
    scores = result.vectors[1:] @ result.vectors[0]
    order = np.argsort(-scores, kind="stable")[:k]
    why = "the embedding model asked for" if model_id is not None else "no cross-encoder is installed"
    route = result.route.replace(rule=f"{why}: documents ranked by embedding similarity with {result.model} "
                                 "(bi-encoder)")
    ranked = [(int(i), float(scores[i]), docs[i]) for i in order]
    return RerankResult(ranked, result.model, result.dtype, route)
