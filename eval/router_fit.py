"""Training pieces of the learned router, shared by ``eval/train_router.py`` and ``eval/router_eval.py``.

- :func:`embed_prompts`: all-MiniLM-L6-v2 vectors of each prompt's ``embedding_text`` (torch on one
  thread, mean pooling, unit norm: what sentence-transformers computes), cached by the texts' hash;
- :func:`lexical_matrix`: ``prompt_features.lexical_features`` of each prompt;
- :func:`fit`: an L2 logistic regression on standardized features (embedding and/or lexical), each source
  given the same total weight and then both classes the same total weight, returned in raw units
  (``z = intercept + w . x``) so the worker needs no standardization;
- :func:`choose_threshold`: the operating point, from out-of-fold scores of the training data only.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from eval.router_data import LabelledPrompt

from hybrid_router import prompt_features

Array = npt.NDArray[np.float64]
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = ROOT / ".cache" / "router"
#: L2 strength (inverse) of the logistic regression, on standardized features; chosen before the
#: leave-one-source-out runs (sklearn's default) and not tuned on them.
C = 1.0
MAX_TOKENS = 256


def embedding_model_dir() -> Path:
    from builder.models import source_dir

    return source_dir("all-MiniLM-L6-v2")


def _embed(model_dir: Path, texts: Sequence[str], batch_size: int = 32) -> npt.NDArray[np.float32]:
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(1)  # the same numbers on every run, and the machine is shared
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModel.from_pretrained(str(model_dir)).eval()
    order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), i))
    out = np.zeros((len(texts), model.config.hidden_size), np.float32)
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            enc = tok(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=MAX_TOKENS,
                return_tensors="pt",
            )
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[idx] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
    return out


def embed_texts(texts: Sequence[str], cache: Path | None = DEFAULT_CACHE) -> npt.NDArray[np.float32]:
    """Unit-norm embeddings of ``texts`` (already ``embedding_text``-cut); cached in ``cache`` (None: not)."""
    model_dir = embedding_model_dir()
    h = hashlib.sha256((model_dir / "model.safetensors").read_bytes())
    for t in texts:
        h.update(t.encode() + b"\0")
    path = None if cache is None else cache / f"embeddings-{h.hexdigest()[:16]}.npy"
    if path is not None and path.is_file():
        return np.load(path)
    print(f"embedding {len(texts)} prompts with {model_dir.name} (one thread; a few minutes)", flush=True)
    vectors = _embed(model_dir, texts)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, vectors)
        tmp.replace(path)
    return vectors


def embed_prompts(prompts: Sequence[LabelledPrompt], cache: Path | None = DEFAULT_CACHE) -> Array:
    texts = [prompt_features.embedding_text(p.text) for p in prompts]
    return embed_texts(texts, cache).astype(np.float64)


def lexical_matrix(prompts: Sequence[LabelledPrompt]) -> Array:
    names = prompt_features.LEXICAL_FEATURES
    rows = [prompt_features.lexical_features(p.text) for p in prompts]
    return np.array([[r[n] for n in names] for r in rows], dtype=np.float64)


def sample_weights(y: npt.NDArray[np.int_], sources: Sequence[str]) -> Array:
    """Each source the same total weight, then hard and everyday the same total weight (mean 1)."""
    src = np.asarray(sources)
    w = np.zeros(len(y))
    for s in sorted(set(sources)):
        w[src == s] = 1.0 / (src == s).sum()
    for label in (0, 1):
        w[y == label] *= 0.5 / w[y == label].sum()
    return w * len(y)


@dataclass(frozen=True)
class Linear:
    """``sigmoid(intercept + weights . x)`` in raw feature units, plus the training means (for drivers)."""

    intercept: float
    weights: Array
    means: Array

    def logit(self, x: Array) -> Array:
        return np.asarray(self.intercept + x @ self.weights, dtype=np.float64)

    def score(self, x: Array) -> Array:
        return np.asarray(1.0 / (1.0 + np.exp(-self.logit(x))), dtype=np.float64)


def fit(
    x: Array, y: npt.NDArray[np.int_], sources: Sequence[str], c: float = C, embedding_dims: int = 0
) -> Linear:
    """The first ``embedding_dims`` columns (the embedding) share one scale, so the penalty is the same
    in every direction of the embedding space and a near-constant component cannot get a huge weight
    (which would make the score jump with the worker's ~1e-3 embedding drift); the lexical columns are
    standardized one by one."""
    from sklearn.linear_model import LogisticRegression

    mean, std = x.mean(axis=0), x.std(axis=0)
    std = np.where(std > 1e-9, std, 1.0)
    if embedding_dims:
        std[:embedding_dims] = np.sqrt(np.mean(x[:, :embedding_dims].var(axis=0)))
    lr = LogisticRegression(C=c, max_iter=5000, tol=1e-6)
    lr.fit((x - mean) / std, y, sample_weight=sample_weights(y, sources))
    coef = lr.coef_[0] / std
    return Linear(float(lr.intercept_[0] - coef @ mean), coef, mean)


def out_of_fold(
    x: Array,
    y: npt.NDArray[np.int_],
    sources: Sequence[str],
    folds: int = 5,
    seed: int = 0,
    embedding_dims: int = 0,
) -> Array:
    """Scores of each row by a model fitted without its fold (folds stratified by source and label)."""
    from sklearn.model_selection import StratifiedKFold

    strata = np.array([f"{s}:{v}" for s, v in zip(sources, y, strict=True)])
    out = np.zeros(len(y))
    src = np.asarray(sources)
    for a, b in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, strata):
        out[b] = fit(x[a], y[a], list(src[a]), embedding_dims=embedding_dims).score(x[b])
    return out


def choose_threshold(scores: Array, y: npt.NDArray[np.int_], sources: Sequence[str]) -> float:
    """The score threshold that maximizes the smaller of (everyday kept local, hard sent to the cloud),
    each a per-source weighted share (``sample_weights``), on out-of-fold training scores."""
    w = sample_weights(y, sources)
    best, best_value = 0.5, -1.0
    for t in np.unique(np.round(scores, 3)):
        cloud = scores >= t
        local_share = w[(y == 0) & ~cloud].sum() / w[y == 0].sum()
        cloud_share = w[(y == 1) & cloud].sum() / w[y == 1].sum()
        if min(local_share, cloud_share) > best_value:
            best, best_value = float(t), float(min(local_share, cloud_share))
    return best


#: The L2 strengths tried for each head; the one with the best leave-one-source-out AUC is used.
C_GRID = {
    "embedding+lexical": (0.0001, 0.0003, 0.001, 0.003),
    "lexical": (0.0001, 0.0003, 0.001, 0.003, 0.01),
}


def weighted_auc(y: npt.NDArray[np.int_], scores: Array, sources: Sequence[str]) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, scores, sample_weight=sample_weights(y, sources)))


def loso_scores(
    x: Array, y: npt.NDArray[np.int_], sources: Sequence[str], c: float, embedding_dims: int = 0
) -> Array:
    """Each row scored by a model fitted on every other source."""
    src = np.asarray(sources)
    out = np.zeros(len(y))
    for s in sorted(set(sources)):
        held = src == s
        model = fit(x[~held], y[~held], list(src[~held]), c, embedding_dims)
        out[held] = model.score(x[held])
    return out


@dataclass(frozen=True)
class Selection:
    c: float
    threshold: float
    scores: Array  # leave-one-source-out scores at ``c``
    auc_by_c: dict[float, float]


def select(
    x: Array, y: npt.NDArray[np.int_], sources: Sequence[str], grid: Sequence[float], embedding_dims: int = 0
) -> Selection:
    """C by leave-one-source-out AUC (each source weighted equally) over ``grid``, and the threshold
    (:func:`choose_threshold`) on those held-out-source scores. Uses only the data it is given."""
    runs = {c: loso_scores(x, y, sources, c, embedding_dims) for c in grid}
    aucs = {c: weighted_auc(y, s, sources) for c, s in runs.items()}
    best = max(grid, key=lambda c: (aucs[c], -c))
    return Selection(best, choose_threshold(runs[best], y, sources), runs[best], aucs)


#: The reference mix for the cloud-share calibration: "typical traffic", mostly everyday prompts.
MIX_SIZE = 1000
MIX_HARD_SHARE = 0.1


def reference_mix(y: npt.NDArray[np.int_], sources: Sequence[str], seed: int = 0) -> npt.NDArray[np.int_]:
    """Row indices of the mix: ``MIX_SIZE`` prompts, ``MIX_HARD_SHARE`` of them hard, drawn without
    replacement so that every source is equally likely within each class."""
    rng = np.random.default_rng(seed)
    w = sample_weights(y, sources)
    picks = []
    for label, n in ((1, round(MIX_SIZE * MIX_HARD_SHARE)), (0, MIX_SIZE - round(MIX_SIZE * MIX_HARD_SHARE))):
        rows = np.flatnonzero(y == label)
        p = w[rows] / w[rows].sum()
        picks.append(np.sort(rng.choice(rows, size=n, replace=False, p=p)))
    return np.concatenate(picks)
