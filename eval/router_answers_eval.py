"""The router trained on the device's answers (``eval/router_answers.py``) beside the current one.

    ./hr python -m eval.router_answers_eval --model SmolLM2-135M-Instruct [--data ../shared/data]

Both routers are the same model (the embedding+lexical head, ``router_fit.select`` then ``fit``: the L2
strength by leave-one-source-out AUC, the operating point on those held-out-source scores); only the
labels differ: the current one learns the category labels, the answer-trained one the category labels
with every prompt that has a verdict of ``--model`` labelled from it (``router_answers.merge``).

1. **Leave-one-source-out as today** (``eval/router_eval.py``): for each source of ``router_data``, each
   router is chosen and fitted without that source (the answer-trained one without its verdict prompts
   either) and scores it; the truth is the category label, as in today's table.
2. **The quality curves on held-out verdicts**: the verdict prompts are few (hundreds), so they are cut
   into ``--folds`` folds stratified by set and label; for each fold both routers are chosen and fitted
   without any of its prompts (not as category prompts either: GSM8K and HumanEval are in both) and score
   it, as a real call does (the built ONNX embedding model, ``eval/quality/curves.embeddings``). Every
   verdict prompt is scored once, by routers that never saw it; APGR, CPT(50%), CPT(80%) per set and the
   operating point (each fold's own threshold), beside the shipped router (``router_model/weights.json``;
   trained on GSM8K and HumanEval, so those rows are in-sample for it).

The results also go to ``$HYBRID_ROUTER_CACHE/eval/results/router_answers-<model>.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "py_src"), str(ROOT)]

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
from eval import router_answers, router_data, router_eval, router_fit  # noqa: E402
from eval.router_data import LabelledPrompt, normalized  # noqa: E402

from hybrid_router import prompt_features  # noqa: E402
from hybrid_router.prompt_router import HEAD_EMBEDDING  # noqa: E402

Array = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int_]
TITLES = {"ifeval": "IFEval", "gsm8k": "GSM8K", "mmlu": "MMLU", "humaneval": "HumanEval"}
CLOUD = {True: "GPT-4 recorded", False: "assumed pass"}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def features(prompts: Sequence[LabelledPrompt], n_category: int, cache: Path | None) -> Array:
    """Embedding + lexical rows; the category prompts' embeddings from their own cache entry (the one
    ``train_router`` and ``router_eval`` use), the added verdict prompts' from another."""
    emb = router_fit.embed_prompts(prompts[:n_category], cache)
    if len(prompts) > n_category:
        emb = np.vstack([emb, router_fit.embed_prompts(prompts[n_category:], cache)])
    return np.hstack([emb, router_fit.lexical_matrix(prompts)])


def chosen_fit(x: Array, y: Ints, sources: Sequence[str]) -> tuple[router_fit.Linear, float, float]:
    """``train_router``'s recipe for the embedding head on the given rows: the model, its C, threshold."""
    n_emb = x.shape[1] - len(prompt_features.LEXICAL_FEATURES)
    sel = router_fit.select(x, y, sources, router_fit.C_GRID[HEAD_EMBEDDING], n_emb)
    return router_fit.fit(x, y, list(sources), sel.c, n_emb), sel.c, sel.threshold


def loso_answers(x: Array, y: Ints, sources: Sequence[str], n_category: int) -> tuple[Array, Array]:
    """Scores and thresholds of the category rows, each from the answer-labelled rows of other sources."""
    src = np.asarray(sources)
    scores, thresholds = np.zeros(n_category), np.zeros(n_category)
    for s in router_data.PRIORITY:
        train = src != s
        model, c, t = chosen_fit(x[train], y[train], list(src[train]))
        held = np.flatnonzero(src[:n_category] == s)
        scores[held], thresholds[held] = model.score(x[held]), t
        _log(f"  answers: held out {s}: C {c}, threshold {t:.3f}")
    return scores, thresholds


def folds(verdicts: Sequence[router_answers.AnswerVerdict], k: int, seed: int = 0) -> list[int]:
    """A fold per verdict, stratified by set and label: each stratum shuffled (seeded) and dealt out in
    turn, continuing where the previous stratum stopped, so the folds' sizes differ by one at most."""
    rng = np.random.default_rng(seed)
    strata: dict[str, list[int]] = {}
    for i, v in enumerate(verdicts):
        strata.setdefault(f"{v.set}:{v.label}", []).append(i)
    out, turn = [0] * len(verdicts), 0
    for key in sorted(strata):
        for i in rng.permutation(strata[key]):
            out[int(i)], turn = turn % k, turn + 1
    return out


def _at(scores: Array, thresholds: Array, device: Array, cloud: Array) -> tuple[float, float]:
    sent = scores >= thresholds
    return float(sent.mean()), float(np.where(sent, cloud, device).mean())


def curve_row(name: str, scores: Array, thresholds: Array, device: Array, cloud: Array) -> dict[str, Any]:
    from eval.quality.curves import curve

    c = curve(list(scores), list(device.astype(bool)), list(cloud.astype(bool)))
    share, quality = _at(scores, thresholds, device, cloud)
    return {
        "router": name,
        "apgr": c.apgr(),
        "cpt50": c.cpt(0.5),
        "cpt80": c.cpt(0.8),
        "share": share,
        "quality": quality,
        "pgr": (quality - c.device) / c.gap if c.gap > 0 else float("nan"),
        "device": c.device,
        "cloud": c.cloud,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="SmolLM2-135M-Instruct", help="the device chat model whose answers")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("--skip-loso", action="store_true", help="only the quality curves")
    args = ap.parse_args()
    t0 = time.perf_counter()
    cache = None if args.no_cache else router_fit.DEFAULT_CACHE
    category = router_data.load_all(args.data)
    verdicts = router_answers.load_verdicts(args.model, args.data)
    merged, from_answers = router_answers.merge(category, verdicts)
    n_cat = len(category)
    x = features(merged, n_cat, cache)
    y_cat = np.array([p.hard for p in category])
    y_ans = np.array([p.hard for p in merged])
    src_cat = [p.source for p in category]
    src_ans = [p.source for p in merged]
    counts = {s: sum(1 for v in verdicts if v.set == s) for s in TITLES}
    cloud_labels = {s: sum(v.label for v in verdicts if v.set == s) for s in TITLES}
    _log(f"{len(verdicts)} verdicts of {args.model}: {counts}, labelled cloud: {cloud_labels}")
    result: dict[str, Any] = {"model": args.model, "verdicts": counts, "cloud_labels": cloud_labels}

    if not args.skip_loso:
        p_cur, t_cur, _ = router_eval.held_out(x[:n_cat], y_cat, src_cat, HEAD_EMBEDDING)
        p_ans, t_ans = loso_answers(x, y_ans, src_ans, n_cat)
        print(
            "\n| held-out source | hard | everyday | current: AUC | current: everyday local % | "
            "current: hard cloud % | answer-trained: AUC | answer-trained: everyday local % | "
            "answer-trained: hard cloud % |"
        )
        print("|---|---:|---:|" + "---:|" * 6)
        src = np.asarray(src_cat)
        runs = [(p_cur, t_cur), (p_ans, t_ans)]
        for s in router_data.PRIORITY:
            m = src == s
            print(router_eval.row(s, y_cat[m], [(p[m], t[m]) for p, t in runs]))
        print(router_eval.row("all", y_cat, runs))
        weights = router_fit.sample_weights(y_cat, src_cat)
        print(router_eval.row("all, each source weighted equally", y_cat, runs, weights))
        result["loso"] = {
            "current": {"scores": p_cur.tolist(), "thresholds": t_cur.tolist()},
            "answers": {"scores": p_ans.tolist(), "thresholds": t_ans.tolist()},
        }

    result["curves"] = quality_curves(args, merged, from_answers, x, verdicts, category)
    out = router_fit_results_path(args.model)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=float), encoding="utf-8")
    _log(f"results: {out}; {time.perf_counter() - t0:.0f} s")


def router_fit_results_path(model: str) -> Path:
    from eval.quality.generate import cache_root

    return cache_root() / "results" / f"router_answers-{model}.json"


def quality_curves(
    args: argparse.Namespace,
    merged: Sequence[LabelledPrompt],
    from_answers: Sequence[bool],
    x: Array,
    verdicts: Sequence[router_answers.AnswerVerdict],
    category: Sequence[LabelledPrompt],
) -> list[dict[str, Any]]:
    from eval.quality.curves import embeddings, router_scores

    n_cat = len(category)
    y_ans = np.array([p.hard for p in merged])
    src_ans = np.asarray([p.source for p in merged])
    keys = np.array([normalized(p.text) for p in merged])
    fold_of = folds(verdicts, args.folds)
    v_keys = [normalized(v.prompt) for v in verdicts]
    # the verdict prompts' rows as a real call computes them: the built ONNX embedding model's vectors
    texts = [prompt_features.router_text(v.prompt)[0] for v in verdicts]
    xv = np.hstack(
        [
            embeddings([prompt_features.embedding_text(t) for t in texts]),
            router_fit.lexical_matrix([LabelledPrompt("", t, 0, "", "") for t in texts]),
        ]
    )
    n = len(verdicts)
    scores = {"answer-trained": np.zeros(n), "current, refitted": np.zeros(n)}
    thresholds = {k: np.zeros(n) for k in scores}
    for f in range(args.folds):
        held = np.array([fo == f for fo in fold_of])
        out_keys = {v_keys[i] for i in np.flatnonzero(held)}
        keep = ~np.isin(keys, list(out_keys))
        for name, rows, y in (
            ("answer-trained", np.flatnonzero(keep), y_ans),
            ("current, refitted", np.flatnonzero(keep[:n_cat]), np.array([p.hard for p in category])),
        ):
            model, c, t = chosen_fit(x[rows], y[rows], list(src_ans[rows]))
            scores[name][held], thresholds[name][held] = model.score(xv[held]), t
            _log(f"  fold {f}: {name}: {int(held.sum())} held out, C {c}, threshold {t:.3f}")
    shipped = router_scores([v.prompt for v in verdicts])
    scores["current, shipped"] = np.asarray(shipped.scores)
    thresholds["current, shipped"] = np.full(n, shipped.threshold)
    device = np.array([v.device for v in verdicts], np.float64)
    cloud = np.array([True if v.cloud is None else v.cloud for v in verdicts], np.float64)
    sets = np.array([v.set for v in verdicts])
    table: list[dict[str, Any]] = []
    for s in TITLES:
        m = sets == s
        if m.any():
            for name in ("current, shipped", "current, refitted", "answer-trained"):
                r = curve_row(name, scores[name][m], thresholds[name][m], device[m], cloud[m])
                table.append(
                    {
                        "set": s,
                        "n": int(m.sum()),
                        "cloud_recorded": bool(
                            all(v.cloud is not None for v, mm in zip(verdicts, m, strict=True) if mm)
                        ),
                        **r,
                    }
                )
    _print_curves(table)
    return table


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{100 * x:.1f}%"


def _print_curves(rows: Sequence[dict[str, Any]]) -> None:
    print(
        "\n| set | n | cloud verdicts | router | APGR (random 0.50) | CPT(50%) | CPT(80%) | "
        "its threshold: cloud share, quality, PGR |"
    )
    print("|---|---:|---|---|---:|---:|---:|---|")
    for r in rows:
        print(
            f"| {TITLES[r['set']]} | {r['n']} | {CLOUD[r['cloud_recorded']]} | {r['router']} | "
            f"{r['apgr']:.3f} | {_pct(r['cpt50'])} | {_pct(r['cpt80'])} | "
            f"{_pct(r['share'])}, {_pct(r['quality'])}, {r['pgr']:.2f} |"
        )
    for label, recorded_only in (("all sets", False), ("recorded cloud verdicts", True)):
        for name in dict.fromkeys(r["router"] for r in rows):
            mine = [r for r in rows if r["router"] == name and (r["cloud_recorded"] or not recorded_only)]
            if mine:
                m = {k: sum(r[k] for r in mine) / len(mine) for k in ("apgr", "cpt50", "cpt80", "share")}
                m |= {k: sum(r[k] for r in mine) / len(mine) for k in ("quality", "pgr")}
                print(
                    f"| average, {label} | | | {name} | {m['apgr']:.3f} | {_pct(m['cpt50'])} | "
                    f"{_pct(m['cpt80'])} | {_pct(m['share'])}, {_pct(m['quality'])}, {m['pgr']:.2f} |"
                )


if __name__ == "__main__":
    main()
