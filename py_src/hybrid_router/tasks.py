"""The text tasks of the task models: classification (a classifier, or zero-shot with an NLI model), named
entities and reranking. Each validates its input, runs on the device, and records the route.

These tasks always run locally (like embeddings): the models are small, the texts stay on the device, and
no cloud provider speaks these tasks. Which model answers:

- ``classify(text)``: the manifest's first ``text-classification`` model (the sentiment classifier), or
  ``model``; ``classify(text, labels=[...])``: zero-shot over those labels with the first
  ``zero-shot-classification`` (NLI) model: Transformers.js's pipeline, hypothesis ``"This example is {}."``;
- ``ner(text)``: the first ``token-classification`` model; spans with character offsets
  (:mod:`hybrid_router.entities`);
- ``rerank(query, documents)``: the first ``text-ranking`` model (a cross-encoder: one relevance logit per
  (query, document) pair); ``score`` is the logit's sigmoid, results best first.

Results: ``{"labels": [{"label", "score"}], ...}``, ``{"entities": [{"text", "label", "start", "end",
"score"}], ...}``, ``{"results": [{"index", "score", "document"}], ...}``, each with ``model``, ``dtype`` and
``route``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from hybrid_router import validation
from hybrid_router.entities import Entity, group_entities
from hybrid_router.errors import HybridRouterError, InferenceError, ValidationError
from hybrid_router.local.runtime import LocalRuntime, ProgressCallback
from hybrid_router.manifest import Manifest, ModelEntry
from hybrid_router.route import REASON_TASK_DEFAULT, Route

__all__ = [
    "CLASSIFY",
    "NER",
    "RERANK",
    "ZERO_SHOT",
    "ClassifyResult",
    "NerResult",
    "RerankResult",
    "classify",
    "ner",
    "rerank",
    "task_model",
]

CLASSIFY = "text-classification"
ZERO_SHOT = "zero-shot-classification"
NER = "token-classification"
RERANK = "text-ranking"
#: Transformers.js's default hypothesis for zero-shot classification.
HYPOTHESIS_TEMPLATE = "This example is {}."
MAX_LABELS = 32
MAX_DOCUMENTS = 256

_T = TypeVar("_T")


@dataclass(frozen=True, eq=False)
class ClassifyResult:
    labels: list[tuple[str, float]]  # best first
    model: str
    dtype: str
    route: Route

    def to_wire(self) -> dict[str, Any]:
        return {"labels": [{"label": lab, "score": s} for lab, s in self.labels], "model": self.model,
                "dtype": self.dtype, "route": self.route.to_wire()}


@dataclass(frozen=True, eq=False)
class NerResult:
    entities: list[Entity]
    model: str
    dtype: str
    route: Route

    def to_wire(self) -> dict[str, Any]:
        return {"entities": [e.to_wire() for e in self.entities], "model": self.model, "dtype": self.dtype,
                "route": self.route.to_wire()}


@dataclass(frozen=True, eq=False)
class RerankResult:
    results: list[tuple[int, float, str]]  # (index in documents, score, document), best first
    model: str
    dtype: str
    route: Route

    def to_wire(self) -> dict[str, Any]:
        return {"results": [{"index": i, "score": s, "document": d} for i, s, d in self.results],
                "model": self.model, "dtype": self.dtype, "route": self.route.to_wire()}


def task_model(manifest: Manifest, task: str, model_id: str | None = None) -> ModelEntry:
    """``model_id`` if it is a ``task`` model of the manifest, else the manifest's first one."""
    candidates = manifest.for_task(task)
    names = ", ".join(m.id for m in candidates) or "(none)"
    if model_id is None:
        if not candidates:
            raise ValidationError(
                f"the models manifest has no {task} model",
                hint=f"Add a model with the task {task!r} to models_manifest.json and build it "
                "(./hr build; the task models train from ../shared/data).",
                task=task,
            )
        return candidates[0]
    for entry in candidates:
        if entry.id == model_id:
            return entry
    known = model_id in manifest.ids
    raise ValidationError(
        f"model {model_id!r} " + (f"cannot do {task}" if known else "is not in the manifest"),
        hint=f"Use a {task} model ({names}), or leave model unset for the default.",
        field="model",
        model=model_id,
        task=task,
    )


async def _run(
    call: Callable[[], Awaitable[_T]], entry: ModelEntry, dtype: str, task: str, what: str,
    clock: Callable[[], float],
) -> tuple[_T, Route]:
    started = clock()
    try:
        value = await call()
    except HybridRouterError:
        raise
    except Exception as exc:  # CancelledError is a BaseException: it passes through untouched
        raise InferenceError(f"{entry.id} failed on {what}: {type(exc).__name__}: {exc}",
                             model=entry.id, dtype=dtype, task=task) from exc
    ms = (clock() - started) * 1000.0
    rule = f"{task} runs on the device"
    route = Route(target="local", reason=REASON_TASK_DEFAULT, rule=rule, model=entry.id, ms=ms, dtype=dtype)
    return value, route


def _scores(pairs: object, entry: ModelEntry, dtype: str, task: str) -> list[tuple[str, float]]:
    try:
        out = [(str(label), float(score)) for label, score in pairs]  # type: ignore[attr-defined]
    except (TypeError, ValueError) as exc:
        raise InferenceError(f"{entry.id} returned labels in an unexpected shape", model=entry.id,
                             dtype=dtype, task=task) from exc
    if not out or not all(math.isfinite(s) for _, s in out):
        raise InferenceError(f"{entry.id} returned no labels or non-finite scores", model=entry.id,
                             dtype=dtype, task=task,
                             hint="Try another dtype (fp32 is the most robust).")
    return sorted(out, key=lambda p: -p[1])


async def classify(
    runtime: LocalRuntime, manifest: Manifest, text: object, *, labels: object = None,
    model_id: str | None = None, dtype: str | None = None, multi_label: bool = False,
    hypothesis_template: str | None = None, on_progress: ProgressCallback | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> ClassifyResult:
    """The labels of ``text`` with their scores, best first: the classifier's own labels, or, when
    ``labels`` are given, zero-shot over them (scores sum to 1 unless ``multi_label``)."""
    item = validation.text(text)
    model_id = validation.optional_str(model_id, "model")
    if labels is None:
        entry = task_model(manifest, CLASSIFY, model_id)
        resolved = entry.variant(validation.optional_str(dtype, "dtype")).dtype
        raw, route = await _run(
            lambda: runtime.text_classification(entry, resolved, [item], on_progress=on_progress),
            entry, resolved, CLASSIFY, "1 text", clock)
        rows = list(raw)
        if len(rows) != 1:
            raise InferenceError(f"{entry.id} returned {len(rows)} results for 1 text", model=entry.id)
        return ClassifyResult(_scores(rows[0], entry, resolved, CLASSIFY), entry.id, resolved, route)
    names = validation.texts(labels, field="labels", max_items=MAX_LABELS, max_chars=200)
    if len(set(names)) != len(names) or not all(n.strip() for n in names):
        raise ValidationError("labels must be distinct, non-empty strings",
                              hint='Pass the candidate labels once each, e.g. ["sports", "politics"].',
                              field="labels")
    template = validation.optional_str(hypothesis_template, "hypothesis_template") or HYPOTHESIS_TEMPLATE
    if "{}" not in template:
        raise ValidationError("hypothesis_template must contain {} (where the label goes)",
                              hint='For example "This text is about {}."', field="hypothesis_template")
    entry = task_model(manifest, ZERO_SHOT, model_id)
    resolved = entry.variant(validation.optional_str(dtype, "dtype")).dtype
    pairs, route = await _run(
        lambda: runtime.zero_shot_classification(entry, resolved, item, names, hypothesis_template=template,
                                                 multi_label=bool(multi_label), on_progress=on_progress),
        entry, resolved, ZERO_SHOT, f"1 text and {len(names)} labels", clock)
    scored = _scores(pairs, entry, resolved, ZERO_SHOT)
    if sorted(n for n, _ in scored) != sorted(names):
        raise InferenceError(f"{entry.id} did not score exactly the labels asked for", model=entry.id)
    return ClassifyResult(scored, entry.id, resolved, route)


async def ner(
    runtime: LocalRuntime, manifest: Manifest, text: object, *, model_id: str | None = None,
    dtype: str | None = None, on_progress: ProgressCallback | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> NerResult:
    """The named entities of ``text`` (PER, ORG, LOC, MISC for the CoNLL model), in text order."""
    item = validation.text(text)
    entry = task_model(manifest, NER, validation.optional_str(model_id, "model"))
    resolved = entry.variant(validation.optional_str(dtype, "dtype")).dtype
    tokens, route = await _run(
        lambda: runtime.token_classification(entry, resolved, item, on_progress=on_progress),
        entry, resolved, NER, "1 text", clock)
    try:
        entities = group_entities(item, list(tokens))
    except (KeyError, TypeError, ValueError) as exc:
        raise InferenceError(f"{entry.id} returned tokens in an unexpected shape: {exc}",
                             model=entry.id) from exc
    return NerResult(entities, entry.id, resolved, route)


async def rerank(
    runtime: LocalRuntime, manifest: Manifest, query: object, documents: object, *, top_k: object = None,
    model_id: str | None = None, dtype: str | None = None, on_progress: ProgressCallback | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> RerankResult:
    """``documents`` ordered by relevance to ``query`` (the best ``top_k``, all when None)."""
    q = validation.text(query, "query")
    docs = validation.texts(documents, field="documents", max_items=MAX_DOCUMENTS)
    k = len(docs) if top_k is None else validation.positive_int(top_k, "top_k")
    entry = task_model(manifest, RERANK, validation.optional_str(model_id, "model"))
    resolved = entry.variant(validation.optional_str(dtype, "dtype")).dtype
    raw, route = await _run(
        lambda: runtime.cross_encoder_scores(entry, resolved, q, docs, on_progress=on_progress),
        entry, resolved, RERANK, f"{len(docs)} documents", clock)
    logits = [float(x) for x in raw]
    if len(logits) != len(docs) or not all(math.isfinite(x) for x in logits):
        raise InferenceError(f"{entry.id} returned {len(logits)} scores for {len(docs)} documents",
                             model=entry.id, dtype=resolved, task=RERANK)
    order = sorted(range(len(docs)), key=lambda i: -logits[i])[:k]
    return RerankResult([(i, _sigmoid(logits[i]), docs[i]) for i in order], entry.id, resolved, route)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))

