"""Which model serves a request: the one place a task's model is chosen.

- :func:`choose`: the model a call names (it must do the task), else the task's default: the manifest's
  first model for it. Every task goes through it (embeddings, generation, speech, the task models).
- :func:`classify_plan` / :func:`rerank_plan`: classification and reranking have two ways to run, and the
  first choice is the one measured better (``python -m eval.methods``, docs/models.md#which-method-answers).
  Without labels, the sentiment classifier. Zero-shot labels: embedding similarity
  (:data:`ZERO_SHOT_METHOD`), with the NLI model as the second way; the NLI model alone when the call
  names it (``model``). Reranking: the cross-encoder, with the bi-encoder (embedding cosine) as the second
  way. Where the first choice's model is not installed, the other answers; where it is installed but
  cannot load or run, the second answers instead (:mod:`hybrid_router.routing.fallback`), and the route's
  fallbacks name the error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from hybrid_router.build_watch import not_ready
from hybrid_router.errors import ValidationError
from hybrid_router.manifest import Manifest, ModelEntry

__all__ = [
    "ASR",
    "CLASSIFY",
    "EMBED",
    "GENERATE",
    "NER",
    "RERANK",
    "SEARCH",
    "ZERO_SHOT",
    "ZERO_SHOT_METHOD",
    "Method",
    "choose",
    "classify_plan",
    "rerank_plan",
    "single",
]

EMBED = "feature-extraction"
GENERATE = "text-generation"
ASR = "automatic-speech-recognition"
CLASSIFY = "text-classification"
ZERO_SHOT = "zero-shot-classification"
NER = "token-classification"
RERANK = "text-ranking"
SEARCH = "vector-search"

#: task -> (what such a model is called, what it does): for the messages of a wrong model choice
_NAMES: Mapping[str, tuple[str, str]] = {
    EMBED: ("embedding", "compute embeddings"),
    GENERATE: ("text-generation", "generate text"),
    ASR: ("speech recognition", "transcribe speech"),
    CLASSIFY: ("text-classification", "classify text"),
    ZERO_SHOT: ("zero-shot (NLI)", "classify text over labels"),
    NER: ("named-entity", "find named entities"),
    RERANK: ("reranking (cross-encoder)", "rerank documents"),
}
#: the rule sentence of a task with one way to run
_RULES: Mapping[str, str] = {
    EMBED: "embeddings run on the device",
    ASR: "speech recognition runs on the device (the audio never leaves it)",
    NER: f"{NER} runs on the device",
    SEARCH: "vector search runs on the device (the index and its texts stay in this browser)",
}
#: the task models this project trains (they exist only where their datasets were)
_TRAINED = frozenset({CLASSIFY, ZERO_SHOT, NER, RERANK})
#: how zero-shot labels are scored unless the call names a model: "similarity" (the embedding model) or
#: "zero-shot" (the NLI model). Measured (python -m eval.methods, docs/models.md#which-method-answers): on
#: four label sets neither model trained on (SST-2, MMLU's categories and subjects, FLASK's domains)
#: embedding similarity classified better than minilm-l6-nli on every set (macro-F1, accuracy).
ZERO_SHOT_METHOD = "similarity"
#: what answers a task while its model is not built yet (a task with a fallback of its own never asks)
_MEANWHILE: Mapping[str, str] = {
    CLASSIFY: "Meanwhile, pass your own labels (e.g. labels: ['positive', 'negative']): they are scored "
    "by embedding similarity with the embedding model, or give examples for a few-shot classification.",
}


def choose(manifest: Manifest, task: str, model_id: str | None = None) -> ModelEntry:
    """``model_id`` if it is a ``task`` model of the manifest, else the task's default (its first).

    A wrong or missing model is a ``ValidationError`` that lists the right ones.
    """
    kind, does = _NAMES.get(task, (task, f"do {task}"))
    candidates = manifest.for_task(task)
    if model_id is None:
        if candidates:
            return candidates[0]
        for coming in manifest.not_built_for(task):  # the manifest has it: the server has not built it yet
            raise not_ready(coming, task, kind, _MEANWHILE.get(task))
        where = (
            "; the task models train from their datasets: see the model panel or ./hr build"
            if task in _TRAINED
            else ""
        )
        raise ValidationError(
            f"the models manifest has no {kind} model",
            hint=f"Add a model with the task '{task}' to models_manifest.json and build it "
            f"(./hr build){where}.",
            task=task,
        )
    for entry in candidates:
        if entry.id == model_id:
            return entry
    for coming in manifest.not_built_for(task):
        if coming.id == model_id:
            raise not_ready(coming, task, kind)
    names = ", ".join(m.id for m in candidates) or "(none)"
    problem = f"does not {does}" if model_id in manifest.ids else "is not in the manifest"
    raise ValidationError(
        f"model {model_id!r} {problem}",
        hint=f"Use {'an' if kind[0] in 'aeiou' else 'a'} {kind} model ({names}), or leave model unset "
        "for the default.",
        field="model",
        model=model_id,
        task=task,
    )


@dataclass(frozen=True, slots=True)
class Method:
    """One way to serve a classification or a reranking: ``kind`` (``classifier``, ``zero-shot``,
    ``similarity``, ``examples``, ``cross-encoder``, ``bi-encoder``), its model, and the rule sentence that
    says why it answers."""

    kind: str
    model: ModelEntry
    rule: str


def single(manifest: Manifest, task: str, model_id: str | None = None) -> tuple[Method, ...]:
    """The one way to run a task that has no fallback (embeddings, speech, entities; a vector search runs
    on its index's embedding model)."""
    entry = choose(manifest, EMBED if task == SEARCH else task, model_id)
    return (Method(task, entry, _RULES.get(task, f"{task} runs on the device")),)


def _similarity(manifest: Manifest, kind: str, rule: str, model_id: str | None = None) -> Method:
    entry = choose(manifest, EMBED, model_id)
    return Method(kind, entry, rule.format(model=entry.id))


def _classifiers(manifest: Manifest) -> Manifest:
    """The manifest less its NLI models, for a classification without labels: an NLI model is a text
    classifier too, but its labels (entailment, neutral, contradiction) answer no such call. (While the
    sentiment model was still training, the NLI model answered sentiment questions with them.)"""
    return dataclasses.replace(
        manifest,
        models=tuple(m for m in manifest.models if ZERO_SHOT not in m.tasks),
        not_built=tuple(m for m in manifest.not_built if ZERO_SHOT not in m.tasks),
    )


def classify_plan(
    manifest: Manifest, *, labels: bool, examples: int, model_id: str | None
) -> tuple[Method, ...]:
    """The ways to classify, first choice first (``labels``: zero-shot over given labels; ``examples``:
    how many example texts a few-shot call gave, 0 for none; ``model_id``: the model the call names)."""
    if examples:
        return (
            _similarity(
                manifest,
                "examples",
                f"few-shot: nearest centroid of {examples} examples, embedded with {{model}}",
            ),
        )
    if not labels:
        entry = choose(_classifiers(manifest) if model_id is None else manifest, CLASSIFY, model_id)
        return (Method("classifier", entry, f"{CLASSIFY} runs on the device"),)
    embedders = {m.id for m in manifest.for_task(EMBED)}
    if model_id in embedders - {m.id for m in manifest.for_task(ZERO_SHOT)}:
        return (
            _similarity(
                manifest,
                "similarity",
                "the labels were scored by embedding similarity with {model} (asked for)",
                model_id,
            ),
        )
    if model_id is not None:  # a model asked for by name answers or fails: no silent substitute
        return (
            Method("zero-shot", choose(manifest, ZERO_SHOT, model_id), f"{ZERO_SHOT} runs on the device"),
        )
    if not manifest.for_task(ZERO_SHOT):
        return (
            _similarity(
                manifest,
                "similarity",
                "no zero-shot (NLI) model is installed: the labels were "
                "scored by embedding similarity with {model}",
            ),
        )
    by_nli = Method("zero-shot", choose(manifest, ZERO_SHOT), f"{ZERO_SHOT} runs on the device")
    if not embedders:
        return (by_nli,)
    similar = _similarity(
        manifest,
        "similarity",
        "the labels were scored by embedding similarity with {model} "
        "(measured better than the NLI model: docs/models.md#which-method-answers)",
    )
    return (similar, by_nli) if ZERO_SHOT_METHOD == "similarity" else (by_nli, similar)


def rerank_plan(manifest: Manifest, *, model_id: str | None) -> tuple[Method, ...]:
    """The ways to rerank, first choice first: the cross-encoder, or the bi-encoder (embedding cosine)
    where none is installed or ``model_id`` names an embedding model."""
    embedders = {m.id for m in manifest.for_task(EMBED)}
    rankers = {m.id for m in manifest.for_task(RERANK)}
    if model_id in embedders - rankers:
        return (
            _similarity(
                manifest,
                "bi-encoder",
                "the embedding model asked for: documents ranked by "
                "embedding similarity with {model} (bi-encoder)",
                model_id,
            ),
        )
    if model_id is None and not rankers:
        return (
            _similarity(
                manifest,
                "bi-encoder",
                "no cross-encoder is installed: documents ranked by "
                "embedding similarity with {model} (bi-encoder)",
            ),
        )
    entry = choose(manifest, RERANK, model_id)
    first = Method("cross-encoder", entry, f"{RERANK} runs on the device")
    if model_id is not None or not embedders:
        return (first,)
    return first, _similarity(
        manifest, "bi-encoder", "documents ranked by embedding similarity with {model} (bi-encoder)"
    )
