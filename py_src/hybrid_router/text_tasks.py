"""The task models' steps on the device: classification (a classifier, or zero-shot with an NLI model),
named entities and cross-encoder reranking; and their results.

Each step runs its model through the runtime and checks what comes back; the request was checked where
it entered (:mod:`hybrid_router.requests`), the model and the way to run chosen by the routing
(:func:`~hybrid_router.routing.models.classify_plan`, :func:`~hybrid_router.routing.models.rerank_plan`),
and the route is issued by the executor. These tasks always run locally: the models are small, the texts
stay on the device, and no cloud provider speaks these tasks.

- classifier: every label of the sentiment classifier with its probability;
- zero-shot: Transformers.js's zero-shot pipeline over the request's labels (one NLI pass per label);
- NER: spans with character offsets (:mod:`hybrid_router.entities`);
- cross-encoder: one relevance logit per (query, document); ``score`` is its sigmoid, best first.

Results: ``{"labels": [{"label", "score"}], ...}``, ``{"entities": [{"text", "label", "start", "end",
"score"}], ...}``, ``{"results": [{"index", "score", "document"}], ...}``, each with ``model``, ``dtype`` and
``route``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hybrid_router.entities import Entity, group_entities
from hybrid_router.errors import InferenceError
from hybrid_router.manifest import ModelEntry
from hybrid_router.requests import ClassifyRequest, NerRequest, RerankRequest
from hybrid_router.route import Route
from hybrid_router.runtime import LocalRuntime, ProgressCallback

__all__ = [
    "ClassifyResult",
    "NerResult",
    "RerankResult",
    "classifier_labels",
    "cross_encoder_ranking",
    "entities",
    "zero_shot_labels",
]

Labels = list[tuple[str, float]]
#: (index in documents, score, document), best first
Ranking = list[tuple[int, float, str]]


@dataclass(frozen=True, eq=False)
class ClassifyResult:
    labels: Labels  # best first
    model: str
    dtype: str
    route: Route

    def to_wire(self) -> dict[str, Any]:
        return {
            "labels": [{"label": lab, "score": s} for lab, s in self.labels],
            "model": self.model,
            "dtype": self.dtype,
            "route": self.route.to_wire(),
        }


@dataclass(frozen=True, eq=False)
class NerResult:
    entities: list[Entity]
    model: str
    dtype: str
    route: Route

    def to_wire(self) -> dict[str, Any]:
        return {
            "entities": [e.to_wire() for e in self.entities],
            "model": self.model,
            "dtype": self.dtype,
            "route": self.route.to_wire(),
        }


@dataclass(frozen=True, eq=False)
class RerankResult:
    results: Ranking
    model: str
    dtype: str
    route: Route

    def to_wire(self) -> dict[str, Any]:
        return {
            "results": [{"index": i, "score": s, "document": d} for i, s, d in self.results],
            "model": self.model,
            "dtype": self.dtype,
            "route": self.route.to_wire(),
        }


def _scores(pairs: object, entry: ModelEntry, dtype: str, task: str) -> Labels:
    try:
        out = [(str(label), float(score)) for label, score in pairs]  # type: ignore[attr-defined]
    except (TypeError, ValueError) as exc:
        raise InferenceError(
            f"{entry.id} returned labels in an unexpected shape", model=entry.id, dtype=dtype, task=task
        ) from exc
    if not out or not all(math.isfinite(s) for _, s in out):
        raise InferenceError(
            f"{entry.id} returned no labels or non-finite scores",
            model=entry.id,
            dtype=dtype,
            task=task,
            hint="Try another dtype (fp32 is the most robust).",
        )
    return sorted(out, key=lambda p: -p[1])


async def classifier_labels(
    runtime: LocalRuntime,
    entry: ModelEntry,
    dtype: str,
    request: ClassifyRequest,
    on_progress: ProgressCallback | None = None,
) -> Labels:
    """The classifier's own labels of ``request.text``, best first."""
    rows = list(await runtime.text_classification(entry, dtype, [request.text], on_progress=on_progress))
    if len(rows) != 1:
        raise InferenceError(f"{entry.id} returned {len(rows)} results for 1 text", model=entry.id)
    return _scores(rows[0], entry, dtype, "text-classification")


async def zero_shot_labels(
    runtime: LocalRuntime,
    entry: ModelEntry,
    dtype: str,
    request: ClassifyRequest,
    on_progress: ProgressCallback | None = None,
) -> Labels:
    """``request.labels`` scored by the NLI model (sum to 1 unless ``multi_label``), best first."""
    names = list(request.labels or ())
    pairs = await runtime.zero_shot_classification(
        entry,
        dtype,
        request.text,
        names,
        hypothesis_template=request.hypothesis_template,
        multi_label=request.multi_label,
        on_progress=on_progress,
    )
    scored = _scores(pairs, entry, dtype, "zero-shot-classification")
    if sorted(n for n, _ in scored) != sorted(names):
        raise InferenceError(f"{entry.id} did not score exactly the labels asked for", model=entry.id)
    return scored


async def entities(
    runtime: LocalRuntime,
    entry: ModelEntry,
    dtype: str,
    request: NerRequest,
    on_progress: ProgressCallback | None = None,
) -> list[Entity]:
    """The named entities of ``request.text`` (PER, ORG, LOC, MISC for the CoNLL model), in text order."""
    tokens = await runtime.token_classification(entry, dtype, request.text, on_progress=on_progress)
    try:
        return group_entities(request.text, list(tokens))
    except (KeyError, TypeError, ValueError) as exc:
        raise InferenceError(
            f"{entry.id} returned tokens in an unexpected shape: {exc}", model=entry.id
        ) from exc


async def cross_encoder_ranking(
    runtime: LocalRuntime,
    entry: ModelEntry,
    dtype: str,
    request: RerankRequest,
    on_progress: ProgressCallback | None = None,
) -> Ranking:
    """The documents by the cross-encoder's relevance to the query (the best ``top_k``)."""
    docs = list(request.documents)
    raw = await runtime.cross_encoder_scores(entry, dtype, request.query, docs, on_progress=on_progress)
    logits = [float(x) for x in raw]
    if len(logits) != len(docs) or not all(math.isfinite(x) for x in logits):
        raise InferenceError(
            f"{entry.id} returned {len(logits)} scores for {len(docs)} documents",
            model=entry.id,
            dtype=dtype,
            task="text-ranking",
        )
    order = sorted(range(len(docs)), key=lambda i: -logits[i])[: request.k]
    return [(i, _sigmoid(logits[i]), docs[i]) for i in order]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
