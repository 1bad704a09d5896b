"""Quality against cost in RouteLLM's terms, for a router that sends a prompt to the cloud when its score
reaches a threshold.

At a threshold ``t`` every prompt with ``score >= t`` is answered by the cloud and scored by the cloud's
verdict, the rest by the device's: the hybrid's quality against the share sent to the cloud (one point
per distinct score, from all-device to all-cloud). With ``Q_d`` the device's quality alone and ``Q_c``
the cloud's, the performance gap recovered at a point is ``PGR = (Q - Q_d) / (Q_c - Q_d)``; **APGR** is
the area under PGR over the cloud share (0.5 for a random router, 1 for a perfect one); **CPT(x%)** the
least cloud share at which PGR reaches ``x``% (a random router needs ``x``%).

:func:`router_scores` scores prompts the way a real call does: the shipped prompt router
(:class:`hybrid_router.prompt_router.PromptRouter`, the ``embedding+lexical`` head and its threshold), on
the all-MiniLM-L6-v2 vector of ``embedding_text(prompt)`` from the built ONNX file the browser loads
(onnxruntime, tokenized as Transformers.js does).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from eval.quality.generate import cache_root

EMBED_MODEL = "all-MiniLM-L6-v2"


@dataclass(frozen=True)
class Curve:
    """Cloud share and hybrid quality at each threshold (ascending share), the two ends, and the
    thresholds (``inf``: nothing to the cloud)."""

    share: tuple[float, ...]
    quality: tuple[float, ...]
    thresholds: tuple[float, ...]
    device: float
    cloud: float

    @property
    def gap(self) -> float:
        return self.cloud - self.device

    def pgr(self) -> npt.NDArray[np.float64]:
        q = np.asarray(self.quality)
        return (q - self.device) / self.gap if self.gap > 0 else np.full_like(q, np.nan)

    def apgr(self) -> float:
        """Area under PGR over the cloud share (the step curve's points joined linearly)."""
        pgr, share = self.pgr(), np.asarray(self.share)
        return float(np.sum((pgr[1:] + pgr[:-1]) / 2 * np.diff(share))) if self.gap > 0 else float("nan")

    def cpt(self, fraction: float) -> float:
        """The least cloud share at which PGR reaches ``fraction`` (nan when the gap is not positive)."""
        if self.gap <= 0:
            return float("nan")
        pgr = self.pgr()
        hits = np.nonzero(pgr >= fraction - 1e-12)[0]
        return float(self.share[int(hits[0])]) if hits.size else 1.0

    def at(self, threshold: float) -> tuple[float, float]:
        """(cloud share, quality) at ``threshold``."""
        point = (self.share[0], self.quality[0])
        for t, s, q in zip(self.thresholds, self.share, self.quality, strict=True):
            if t >= threshold:  # thresholds descend: the last one reached sends every score >= threshold
                point = (s, q)
        return point


def curve(scores: Sequence[float], device: Sequence[bool], cloud: Sequence[bool]) -> Curve:
    """The curve of a router with ``scores`` over prompts with the device's and the cloud's verdicts."""
    s = np.asarray(scores, np.float64)
    d = np.asarray(device, np.float64)
    c = np.asarray(cloud, np.float64)
    n = len(s)
    if n == 0 or not (len(d) == len(c) == n):
        raise ValueError("scores, device and cloud verdicts must be non-empty and of one length")
    order = np.argsort(-s, kind="stable")
    gain = np.cumsum((c - d)[order])  # quality gained by sending the top-k scores to the cloud
    base = float(d.mean())
    share, quality, thresholds = [0.0], [base], [float("inf")]
    for k in range(1, n + 1):
        if k < n and s[order[k]] == s[order[k - 1]]:
            continue  # a threshold cannot split equal scores
        share.append(k / n)
        quality.append(base + float(gain[k - 1]) / n)
        thresholds.append(float(s[order[k - 1]]))
    return Curve(tuple(share), tuple(quality), tuple(thresholds), base, float(c.mean()))


def random_curve(device: Sequence[bool], cloud: Sequence[bool], points: int = 11) -> Curve:
    """A router that sends a random share: quality moves linearly from the device's to the cloud's."""
    qd, qc = float(np.mean(device)), float(np.mean(cloud))
    shares = np.linspace(0, 1, points)
    thresholds = tuple(float(1 - x) for x in shares)
    return Curve(
        tuple(map(float, shares)), tuple(float(qd + x * (qc - qd)) for x in shares), thresholds, qd, qc
    )


# --- the router's scores, as a real call computes them ------------------------------------------------------


def _embed_onnx(folder: Path, dtype: str, texts: Sequence[str], batch: int = 16) -> npt.NDArray[np.float64]:
    import onnxruntime as ort
    from builder.convert.fidelity import _tokenize_like_transformers_js
    from builder.convert.recipe import onnx_file

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(folder / onnx_file(dtype)), opts, providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}
    out = np.zeros((len(texts), 0))
    order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), i))
    rows: dict[int, npt.NDArray[np.float64]] = {}
    for start in range(0, len(order), batch):
        idx = order[start : start + batch]
        ids, mask = _tokenize_like_transformers_js(folder, [texts[i] for i in idx], keep_sep=False)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = sess.run(None, {k: v for k, v in feeds.items() if k in names})[0]
        m = mask[..., None].astype(np.float64)
        vec = (hidden * m).sum(1) / m.sum(1)
        vec /= np.linalg.norm(vec, axis=1, keepdims=True)
        for i, v in zip(idx, vec, strict=True):
            rows[i] = v
    out = np.stack([rows[i] for i in range(len(texts))]) if texts else out
    return out


def embeddings(texts: Sequence[str]) -> npt.NDArray[np.float64]:
    """Unit vectors of ``texts`` from the built embedding model's default dtype (each cached on disk,
    keyed by the built model and the text)."""
    from builder.models import read_index

    entry = read_index()[EMBED_MODEL]
    folder, dtype = Path(entry["dir"]), str(entry["default_dtype"])
    where = cache_root() / "embeddings" / f"{entry['key']}-{dtype}"
    paths = [where / f"{hashlib.sha256(t.encode()).hexdigest()[:24]}.npy" for t in texts]
    missing = sorted({i for i, p in enumerate(paths) if not p.is_file()})
    if missing:
        where.mkdir(parents=True, exist_ok=True)
        for i, vector in zip(missing, _embed_onnx(folder, dtype, [texts[i] for i in missing]), strict=True):
            np.save(paths[i], vector)
    return np.stack([np.asarray(np.load(p), np.float64) for p in paths])


@dataclass(frozen=True)
class RouterScores:
    scores: tuple[float, ...]
    threshold: float  # the head's shipped operating point (what the default policy uses)
    head: str
    version: str


def router_scores(prompts: Sequence[str]) -> RouterScores:
    from hybrid_router.prompt_features import embedding_text, router_text
    from hybrid_router.prompt_router import PromptRouter

    router = PromptRouter.load()
    texts = [router_text(p) for p in prompts]
    vectors = embeddings([embedding_text(t) for t, _ in texts])
    scored = [router.score(t, v, prior_turns=prior) for (t, prior), v in zip(texts, vectors, strict=True)]
    heads = {s.head for s in scored}
    if len(heads) != 1:
        raise RuntimeError(f"the router scored with several heads: {heads}")
    return RouterScores(tuple(s.score for s in scored), scored[0].threshold, heads.pop(), router.version)


def to_json(c: Curve) -> dict[str, object]:
    out: dict[str, object] = json.loads(
        json.dumps(
            {
                "share": c.share,
                "quality": c.quality,
                "device": c.device,
                "cloud": c.cloud,
                "apgr": c.apgr(),
                "cpt50": c.cpt(0.5),
                "cpt80": c.cpt(0.8),
            }
        )
    )
    return out
