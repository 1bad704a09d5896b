"""The learned prompt router: how likely a prompt needs the cloud model, and what drove that.

A logistic regression over the prompt's all-MiniLM-L6-v2 embedding (of
:func:`hybrid_router.prompt_features.embedding_text`) and its lexical features
(:func:`hybrid_router.prompt_features.lexical_features`), fitted by ``eval/train_router.py`` on the
labelled prompt sets of ``../shared/data`` and shipped as ``router_model/weights.json`` (the worker
reads it from the package; its sha256 is in the README). Two heads:

- ``"embedding+lexical"``, used when the caller passes the embedding;
- ``"lexical"``, the fallback when there is none (the embedding model is not loaded or failed).

Each head has a default threshold (its operating point) and the sorted scores of a reference mix of
prompts, so :meth:`PromptRouter.threshold_for_share` turns a target cloud share into a threshold.
``drivers`` say what moved the score: the topic the embedding resembles most, and the lexical
features that pushed the score up or down the most.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    from hybrid_router._lazy import numpy as np

from hybrid_router import prompt_features
from hybrid_router.cloud_share import threshold_for_share
from hybrid_router.errors import ModelLoadError, ValidationError

__all__ = [
    "HEAD_EMBEDDING",
    "HEAD_LEXICAL",
    "WEIGHTS_PATH",
    "PromptRouter",
    "RouterScore",
]

WEIGHTS_PATH = Path(__file__).resolve().parent / "router_model" / "weights.json"
FORMAT = "hybrid-router/prompt-router"
FORMAT_VERSION = 1
HEAD_EMBEDDING = "embedding+lexical"
HEAD_LEXICAL = "lexical"
#: How far from unit norm an embedding may be before it is refused (the worker normalizes; q8 drifts).
_NORM_TOLERANCE = 0.05
#: Lexical contributions (logit units) smaller than this are not named as drivers.
_MIN_DRIVER = 0.15

#: Human-readable names of the lexical features, for ``drivers``.
FEATURE_LABELS: Mapping[str, str] = {
    "chars_log": "prompt length",
    "words_log": "word count",
    "lines_log": "line count",
    "avg_word_len": "average word length",
    "long_word_share": "long words",
    "sentences_log": "sentence count",
    "questions": "question marks",
    "numbers_log": "numbers",
    "math_ops_log": "math symbols",
    "code_log": "code markers",
    "reasoning_cues": "reasoning words (prove, why, step by step)",
    "constraints": "constraints (exactly, must, at least)",
    "logic_words": "logic words (not, unless, except)",
    "list_items_log": "list items",
    "multiple_choice": "multiple-choice options",
    "domain_math_logic": "math vocabulary",
    "domain_science": "science vocabulary",
    "domain_computing": "computing vocabulary",
    "domain_law": "legal vocabulary",
    "domain_medicine": "medical vocabulary",
    "prior_turns_log": "earlier turns",
    "cue_code_request": "asks for code",
    "cue_math_request": "asks for a calculation",
    "cue_long_output": "asks for long or analytical writing",
    "cue_everyday": "everyday request words",
}


@dataclass(frozen=True, slots=True)
class RouterScore:
    """``score`` in [0, 1] (higher: more likely to need the cloud), the head that made it, that head's
    default ``threshold``, what drove it, and the feature values (shown in route records)."""

    score: float
    threshold: float
    head: str
    drivers: tuple[str, ...]
    features: dict[str, float]
    version: str

    def to_wire(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "threshold": self.threshold,
            "head": self.head,
            "drivers": list(self.drivers),
            "features": dict(self.features),
            "version": self.version,
        }


@dataclass(frozen=True, slots=True)
class _Head:
    intercept: float
    lexical_weights: npt.NDArray[np.float64]
    lexical_means: npt.NDArray[np.float64]
    embedding_weights: npt.NDArray[np.float64] | None
    threshold: float
    reference_scores: tuple[float, ...]


def _floats(value: object, what: str, length: int | None = None) -> npt.NDArray[np.float64]:
    if not isinstance(value, list) or not all(isinstance(v, int | float) for v in value):
        raise ModelLoadError(f"router weights: {what} must be a list of numbers", model="prompt-router")
    array = np.asarray(value, dtype=np.float64)
    if (length is not None and array.shape != (length,)) or not np.all(np.isfinite(array)):
        raise ModelLoadError(
            f"router weights: {what} has {array.size} values, expected {length}", model="prompt-router"
        )
    return array


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ModelLoadError(f"router weights: {what} must be a finite number", model="prompt-router")
    return float(value)


def _head(raw: object, name: str, n_lexical: int, dims: int, *, embedding: bool) -> _Head:
    if not isinstance(raw, Mapping):
        raise ModelLoadError(f"router weights: no head {name!r}", model="prompt-router")
    scores = tuple(float(v) for v in _floats(raw.get("reference_scores"), f"{name}.reference_scores"))
    if not scores or list(scores) != sorted(scores):
        raise ModelLoadError(f"router weights: {name}.reference_scores must be sorted", model="prompt-router")
    return _Head(
        intercept=_number(raw.get("intercept"), f"{name}.intercept"),
        lexical_weights=_floats(raw.get("lexical_weights"), f"{name}.lexical_weights", n_lexical),
        lexical_means=_floats(raw.get("lexical_means"), f"{name}.lexical_means", n_lexical),
        embedding_weights=(
            _floats(raw.get("embedding_weights"), f"{name}.embedding_weights", dims) if embedding else None
        ),
        threshold=_number(raw.get("threshold"), f"{name}.threshold"),
        reference_scores=scores,
    )


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, z))))


@dataclass(frozen=True, eq=False)
class PromptRouter:
    """The shipped router model; build it with :meth:`load` (or :meth:`from_dict`)."""

    version: str
    dims: int
    lexical_names: tuple[str, ...]
    heads: Mapping[str, _Head]
    topic_names: tuple[str, ...]
    topic_centroids: npt.NDArray[np.float64]  # (topics, dims), unit rows

    @classmethod
    def load(cls, path: str | Path | None = None) -> PromptRouter:
        """Read the weights file (default: the one shipped in the package)."""
        where = Path(path) if path is not None else WEIGHTS_PATH
        try:
            data = json.loads(where.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(
                f"cannot read the router weights {where}: {exc}",
                hint="Rebuild them: ./hr python -m eval.train_router --data ../shared/data",
                model="prompt-router",
            ) from exc
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PromptRouter:
        if data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
            raise ModelLoadError(
                f"router weights: expected format {FORMAT} v{FORMAT_VERSION}, got "
                f"{data.get('format')!r} v{data.get('format_version')!r}",
                model="prompt-router",
            )
        names = tuple(str(n) for n in data.get("lexical_features", ()))
        if names != prompt_features.LEXICAL_FEATURES:
            raise ModelLoadError(
                "router weights: their lexical features differ from prompt_features.LEXICAL_FEATURES",
                hint="Rebuild the weights with this version of the code (eval/train_router.py).",
                model="prompt-router",
            )
        dims = int(data.get("embedding", {}).get("dims", 0))
        heads_raw = data.get("heads", {})
        heads = {
            HEAD_EMBEDDING: _head(
                heads_raw.get(HEAD_EMBEDDING), HEAD_EMBEDDING, len(names), dims, embedding=True
            ),
            HEAD_LEXICAL: _head(heads_raw.get(HEAD_LEXICAL), HEAD_LEXICAL, len(names), dims, embedding=False),
        }
        topics = data.get("topics", {})
        topic_names = tuple(str(t) for t in topics)
        centroids = np.array([_floats(topics[t], f"topics.{t}", dims) for t in topic_names]).reshape(-1, dims)
        return cls(str(data.get("version")), dims, names, heads, topic_names, centroids)

    def threshold(self, head: str = HEAD_EMBEDDING) -> float:
        """The head's default threshold (its shipped operating point)."""
        return self._head(head).threshold

    def threshold_for_share(self, cloud_share: float, head: str = HEAD_EMBEDDING) -> float:
        """The threshold at which ``cloud_share`` of the reference mix goes to the cloud."""
        return threshold_for_share(self._head(head).reference_scores, cloud_share)

    def reference_scores(self, head: str = HEAD_EMBEDDING) -> tuple[float, ...]:
        return self._head(head).reference_scores

    def score_prompt(
        self, prompt: str | Sequence[Mapping[str, Any]], embedding: npt.ArrayLike | None = None
    ) -> RouterScore:
        """:meth:`score` of a prompt string or chat messages (the last user message; ``embedding`` must
        be of ``embedding_text`` of that message)."""
        text, prior = prompt_features.router_text(prompt)
        return self.score(text, embedding, prior_turns=prior)

    def score(
        self, text: str, embedding: npt.ArrayLike | None = None, *, prior_turns: int = 0
    ) -> RouterScore:
        """Score ``text``; ``embedding`` is the model's vector of ``embedding_text(text)`` (None: the
        lexical head)."""
        if not isinstance(text, str) or not text.strip():
            raise ValidationError("the prompt is empty", field="prompt", hint="Send a non-empty prompt.")
        feats = prompt_features.lexical_features(text, prior_turns)
        x = np.fromiter(
            (feats[n] for n in self.lexical_names), dtype=np.float64, count=len(self.lexical_names)
        )
        vector = None if embedding is None else self._vector(embedding)
        name = HEAD_LEXICAL if vector is None else HEAD_EMBEDDING
        head = self.heads[name]
        lexical = head.lexical_weights * (x - head.lexical_means)
        logit = head.intercept + float(head.lexical_weights @ head.lexical_means) + float(lexical.sum())
        drivers: list[str] = []
        if vector is not None and head.embedding_weights is not None:
            meaning = float(head.embedding_weights @ vector)
            logit += meaning
            feats["embedding_logit"] = meaning
            drivers.append(self._topic_driver(vector, feats))
        feats["lexical_logit"] = float(lexical.sum())
        drivers += self._lexical_drivers(lexical)
        return RouterScore(_sigmoid(logit), head.threshold, name, tuple(drivers), feats, self.version)

    def _head(self, head: str) -> _Head:
        if head not in self.heads:
            raise ValidationError(f"unknown router head {head!r}", field="head", allowed=sorted(self.heads))
        return self.heads[head]

    def _vector(self, embedding: npt.ArrayLike) -> npt.NDArray[np.float64]:
        try:
            vector = np.asarray(embedding, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise ValidationError("the embedding must be a vector of numbers", field="embedding") from exc
        if vector.shape != (self.dims,) or not np.all(np.isfinite(vector)):
            raise ValidationError(
                f"the embedding must be {self.dims} finite numbers, got shape {vector.shape}",
                hint="Pass the all-MiniLM-L6-v2 vector (mean pooling, normalized) of embedding_text(prompt).",
                field="embedding",
            )
        norm = float(np.linalg.norm(vector))
        if abs(norm - 1.0) > _NORM_TOLERANCE:
            raise ValidationError(
                f"the embedding must have unit length, got norm {norm:.3f}",
                hint="Normalize the vector (the embeddings task does) before scoring.",
                field="embedding",
            )
        return vector / norm

    def _topic_driver(self, vector: npt.NDArray[np.float64], feats: dict[str, float]) -> str:
        sims = self.topic_centroids @ vector
        for name, sim in zip(self.topic_names, sims, strict=True):
            feats[f"similarity:{name}"] = float(sim)
        best = int(np.argmax(sims))
        return f"resembles {self.topic_names[best]} prompts (similarity {sims[best]:.2f})"

    def _lexical_drivers(self, contributions: npt.NDArray[np.float64]) -> list[str]:
        order = np.argsort(-np.abs(contributions), kind="stable")[:2]
        out = []
        for i in order:
            c = float(contributions[i])
            if abs(c) >= _MIN_DRIVER:
                name = self.lexical_names[int(i)]
                out.append(f"{FEATURE_LABELS.get(name, name)} {'+' if c > 0 else '-'}{abs(c):.2f}")
        return out
