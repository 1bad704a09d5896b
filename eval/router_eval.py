"""Leave-one-source-out evaluation of the learned prompt router, next to the complexity estimator.

    ./hr python -m eval.router_eval [--data ../shared/data] [--no-cache]

For each source S of ``eval/router_data.py``: everything about the model is chosen without S (the L2
strength by leave-one-source-out AUC over the other sources, the operating point on those held-out-source
scores: exactly what ``eval/train_router.py`` does with all sources), the model is fitted on the other
sources and scores S. The table gives per held-out source: its size, the AUC (sources with one class
have none), the share of everyday prompts kept local and of hard prompts sent to the cloud at that
fold's operating point, and the same for ``complexity.estimate`` at its shipped threshold (fitted on
RouteLLM's MMLU/GSM8K with another label, so those two rows are not held out for it). "all" pools the
held-out predictions: plain, and with each source weighted equally ("all, per source"). A second table
turns target cloud shares into thresholds on a reference mix (one in ten hard) of those held-out scores.
Takes about 10 minutes on 2 cores (the embeddings are cached in ``.cache/router``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "py_src"), str(ROOT)]

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
from eval import router_data, router_fit  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from hybrid_router import complexity, prompt_features  # noqa: E402
from hybrid_router.cloud_share import threshold_for_share  # noqa: E402
from hybrid_router.prompt_router import HEAD_EMBEDDING, HEAD_LEXICAL  # noqa: E402

Array = npt.NDArray[np.float64]


def held_out(
    x: Array, y: npt.NDArray[np.int_], sources: list[str], head: str
) -> tuple[Array, Array, dict[str, float]]:
    """Scores and the fold's threshold for every prompt, each from a fold that never saw its source."""
    src = np.asarray(sources)
    n_emb = x.shape[1] - len(prompt_features.LEXICAL_FEATURES)
    scores, thresholds, chosen = np.zeros(len(y)), np.zeros(len(y)), {}
    for s in router_data.PRIORITY:
        held = src == s
        train = list(src[~held])
        sel = router_fit.select(x[~held], y[~held], train, router_fit.C_GRID[head], n_emb)
        scores[held] = router_fit.fit(x[~held], y[~held], train, sel.c, n_emb).score(x[held])
        thresholds[held] = sel.threshold
        chosen[s] = sel.c
        print(
            f"  {head}: held out {s}: C {sel.c}, threshold {sel.threshold:.3f}", file=sys.stderr, flush=True
        )
    return scores, thresholds, chosen


def _auc(y: npt.NDArray[np.int_], p: Array, w: Array | None = None) -> str:
    return f"{roc_auc_score(y, p, sample_weight=w):.3f}" if 0 < y.sum() < len(y) else "-"


def _share(mask: npt.NDArray[np.bool_], of: npt.NDArray[np.bool_], w: Array | None = None) -> str:
    if not of.any():
        return "-"
    weights = np.ones(len(mask)) if w is None else w
    return f"{100 * weights[mask & of].sum() / weights[of].sum():.1f}"


def row(name: str, y: npt.NDArray[np.int_], runs: list[tuple[Array, Array]], w: Array | None = None) -> str:
    cells = [name, str(int(y.sum())), str(int((y == 0).sum()))]
    for p, t in runs:
        cloud = p >= t
        cells += [_auc(y, p, w), _share(~cloud, y == 0, w), _share(cloud, y == 1, w)]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--no-cache", action="store_true")
    args = ap.parse_args()
    prompts = router_data.load_all(args.data)
    y = np.array([p.hard for p in prompts])
    sources = [p.source for p in prompts]
    emb = router_fit.embed_prompts(prompts, None if args.no_cache else router_fit.DEFAULT_CACHE)
    lex = router_fit.lexical_matrix(prompts)
    p_emb, t_emb, _ = held_out(np.hstack([emb, lex]), y, sources, HEAD_EMBEDDING)
    p_lex, t_lex, _ = held_out(lex, y, sources, HEAD_LEXICAL)
    p_cx = np.array([complexity.estimate(p.text).score for p in prompts])
    t_cx = np.full(len(y), complexity.DEFAULT_THRESHOLD)
    runs = [(p_emb, t_emb), (p_lex, t_lex), (p_cx, t_cx)]

    heads = ("learned router", "lexical head only", "complexity.py")
    print(
        "| held-out source | hard | everyday | "
        + " | ".join(f"{h}: AUC | {h}: everyday local % | {h}: hard cloud %" for h in heads)
        + " |"
    )
    print("|---|---:|---:|" + "---:|" * (3 * len(heads)))
    src = np.asarray(sources)
    for s in router_data.PRIORITY:
        m = src == s
        print(row(s, y[m], [(p[m], t[m]) for p, t in runs]))
    print(row("all", y, runs))
    print(row("all, per source", y, runs, router_fit.sample_weights(y, sources)))
    shares(p_emb, y, sources)


def shares(scores: Array, y: npt.NDArray[np.int_], sources: list[str]) -> None:
    """A target cloud share on a reference mix built like the shipped one, from held-out scores: what
    each share means for everyday and hard prompts of that mix."""
    mix = router_fit.reference_mix(y, sources)
    ordered = sorted(float(v) for v in scores[mix])
    print(
        "\n| target cloud share | threshold | share of the mix sent | everyday kept local % | hard sent % |"
    )
    print("|---:|---:|---:|---:|---:|")
    for share in (0.1, 0.15, 0.2, 0.3, 0.4):
        t = threshold_for_share(ordered, share)
        cloud, yy = scores[mix] >= t, y[mix]
        print(
            f"| {share:.2f} | {t:.3f} | {100 * cloud.mean():.1f} | {100 * (~cloud[yy == 0]).mean():.1f} | "
            f"{100 * cloud[yy == 1].mean():.1f} |"
        )


if __name__ == "__main__":
    main()
