"""Bi-encoder retrieval over SciFact with all-MiniLM-L6-v2 (torch, mean pooling, unit norm) and nDCG@10.

Shared by the reranker's training (hard negatives: the bi-encoder's top hits that are not relevant) and by
``eval/task_models.py`` (the first stage that the cross-encoder reranks). Corpus embeddings take minutes on
two cores, so they are cached under ``$CACHE/embeddings/`` keyed by the texts and the weights.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from builder.common import cache_root, log, progress, sha256_file

__all__ = ["cached_embeddings", "embed", "ndcg_at_k", "top_k"]


def embed(
    model_dir: Path, texts: Sequence[str], *, max_length: int = 256, batch_size: int = 32, desc: str = "embed"
) -> Any:
    """Unit-norm mean-pooled embeddings (float32, ``(n, dims)``) like sentence-transformers computes them."""
    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModel.from_pretrained(str(model_dir)).eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths: little padding
    out = np.zeros((len(texts), model.config.hidden_size), np.float32)
    with torch.inference_mode(), progress(len(texts), desc, unit="text") as bar:
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            enc = tok(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[idx] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
            bar.update(len(idx))
    return out


def cached_embeddings(
    model_dir: Path, weights: Path, texts: Sequence[str], *, name: str, max_length: int = 256
) -> Any:
    """:func:`embed`, cached in ``$CACHE/embeddings/<name>-<hash of texts, weights, max_length>.npy``."""
    import numpy as np

    h = hashlib.sha256(sha256_file(weights).encode())
    h.update(str(max_length).encode())
    for t in texts:
        h.update(t.encode() + b"\0")
    path = cache_root() / "embeddings" / f"{name}-{h.hexdigest()[:16]}.npy"
    if path.is_file():
        return np.load(path)
    log(f"bi-encoder: embedding {len(texts)} texts ({name}); cached in {path}")
    vectors = embed(model_dir, texts, max_length=max_length, desc=f"embed {name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    return vectors


def top_k(queries: Any, corpus: Any, k: int) -> Any:
    """Indices of the ``k`` most similar corpus rows per query row, best first."""
    import numpy as np

    scores = queries @ corpus.T
    part = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
    rows = np.arange(scores.shape[0])[:, None]
    return part[rows, np.argsort(-scores[rows, part], axis=1)]


def ndcg_at_k(ranked: Mapping[str, Sequence[str]], qrels: Mapping[str, set[str]], k: int = 10) -> float:
    """Mean nDCG@k with binary gains over the queries of ``qrels`` (BEIR / pytrec_eval's definition)."""
    total = 0.0
    for qid, relevant in qrels.items():
        docs = ranked.get(qid, [])[:k]
        dcg = sum(1.0 / math.log2(i + 2) for i, d in enumerate(docs) if d in relevant)
        ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), k)))
        total += dcg / ideal if ideal else 0.0
    return total / max(len(qrels), 1)
