"""Classification and reranking with the embedding model alone: the steps the routing picks where no task
model is installed, where the task model failed, and for few-shot classification by examples.

- labels (a name or a short description each) are embedded; the scores are a softmax over the cosine
  similarities divided by :data:`TEMPERATURE`;
- examples: each label is the normalized centroid of its examples' embeddings; same scoring;
- rerank: documents ordered by cosine similarity to the query; ``score`` is the cosine (a bi-encoder).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    from hybrid_router._lazy import numpy as np

from hybrid_router import embeddings
from hybrid_router.manifest import ModelEntry
from hybrid_router.requests import ClassifyRequest, RerankRequest
from hybrid_router.runtime import LocalRuntime, ProgressCallback
from hybrid_router.text_tasks import Labels, Ranking

__all__ = ["TEMPERATURE", "example_labels", "label_similarity", "similarity_ranking"]

#: cosine similarities of sentence embeddings differ by tenths: sharpen them into probabilities
TEMPERATURE = 0.05

Vectors: TypeAlias = "npt.NDArray[np.float32]"


def _ranked(names: list[str], centroids: Vectors, query: Vectors) -> Labels:
    z = (centroids @ query) / TEMPERATURE
    z = np.exp(z - z.max())
    probs = z / z.sum()
    order = np.argsort(-probs, kind="stable")
    return [(names[i], float(probs[i])) for i in order]


async def label_similarity(
    runtime: LocalRuntime,
    entry: ModelEntry,
    dtype: str,
    request: ClassifyRequest,
    on_progress: ProgressCallback | None = None,
) -> Labels:
    """Zero-shot by embedding similarity: the text against each label."""
    names = list(request.labels or ())
    vectors = await embeddings.vectors(runtime, entry, dtype, [request.text, *names], on_progress)
    return _ranked(names, vectors[1:], vectors[0])


async def example_labels(
    runtime: LocalRuntime,
    entry: ModelEntry,
    dtype: str,
    request: ClassifyRequest,
    on_progress: ProgressCallback | None = None,
) -> Labels:
    """Few-shot: the text against each label's centroid of example embeddings."""
    groups = request.examples or ()
    flat = [text for _, texts in groups for text in texts]
    vectors = await embeddings.vectors(runtime, entry, dtype, [request.text, *flat], on_progress)
    rows, start, centroids = vectors[1:], 0, []
    for _, texts in groups:
        c = rows[start : start + len(texts)].mean(axis=0)
        centroids.append(c / max(float(np.linalg.norm(c)), 1e-12))
        start += len(texts)
    return _ranked([name for name, _ in groups], np.stack(centroids), vectors[0])


async def similarity_ranking(
    runtime: LocalRuntime,
    entry: ModelEntry,
    dtype: str,
    request: RerankRequest,
    on_progress: ProgressCallback | None = None,
) -> Ranking:
    """The documents by cosine similarity to the query (the best ``top_k``)."""
    docs = list(request.documents)
    vectors = await embeddings.vectors(runtime, entry, dtype, [request.query, *docs], on_progress)
    scores = vectors[1:] @ vectors[0]
    order = np.argsort(-scores, kind="stable")[: request.k]
    return [(int(i), float(scores[i]), docs[i]) for i in order]
