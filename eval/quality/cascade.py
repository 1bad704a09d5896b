"""Calibration of the cascade (policy ``verify: "confidence"``, docs/routing.md): does the device model's own
confidence in its answer say whether the answer passes, better than the prompt-only router?

For every cached device answer (``python -m eval.quality run`` makes them; nothing is generated here) the
answer's first ``--tokens`` tokens are decoded again greedily from the same ONNX file (CPython onnxruntime,
what the browser loads), each chosen token's log-probability taken from the step's logits, and the score
computed as the router computes it (:func:`hybrid_router.routing.cascade.confidence`). Then, per set and
over all: the AUROC of the score against the answer's verdict (0.5: no information), and both routers on
RouteLLM's curves (the cascade sends the lowest scores to the cloud; the prompt router the highest
complexity): APGR, and the hybrid's quality at a few cloud shares, each at the same share.

    ./hr python -m eval.quality.cascade [--sets gsm8k mmlu] [--tokens 16]
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from eval.quality import report, sets
from eval.quality.curves import Curve, curve, router_scores
from eval.quality.generate import AnswerCache, Generator, chat_models

from hybrid_router.routing.cascade import confidence

SHARES = (0.1, 0.2, 0.3, 0.5)


def logprobs(gen: Generator, prompt: str, tokens: int) -> list[float]:
    """The log-probabilities of the first ``tokens`` greedy tokens of ``prompt``'s answer."""
    out = []
    for nxt, logits in gen.steps(gen.prompt_ids(prompt), tokens):
        row = logits.astype(np.float64)
        top = float(row.max())
        out.append(float(row[nxt]) - (top + math.log(float(np.exp(row - top).sum()))))
    return out


def auroc(scores: Sequence[float], passed: Sequence[bool]) -> float:
    """P(a passing answer scores higher than a failing one), ties counted half; nan without both."""
    pos = [s for s, p in zip(scores, passed, strict=True) if p]
    neg = [s for s, p in zip(scores, passed, strict=True) if not p]
    if not pos or not neg:
        return float("nan")
    wins = sum((a > b) + 0.5 * (a == b) for a in pos for b in neg)
    return wins / (len(pos) * len(neg))


def quality_at(c: Curve, share: float) -> float:
    """The hybrid's quality at the largest point of the curve whose cloud share is <= ``share``."""
    best = c.quality[0]
    for s, q in zip(c.share, c.quality, strict=True):
        if s <= share + 1e-12:
            best = q
    return best


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", nargs="+", default=list(sets.SETS), choices=sets.SETS)
    p.add_argument("--n", type=int, help="prompts per set (default: sets.DEFAULT_N)")
    p.add_argument("--tokens", type=int, default=16, help="the answer's first tokens scored (verify_tokens)")
    p.add_argument("--data", default=str(sets.DEFAULT_DATA))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    loaded = sets.load(args.sets, args.n, Path(args.data))
    for model in chat_models():
        cache = AnswerCache(model)
        gen = Generator(model, threads=args.threads)
        rows: list[tuple[str, str, float, bool, bool]] = []  # set, prompt, score, device, cloud
        for name in args.sets:
            for item in loaded[name]:
                answer = cache.get(item.prompt, item.max_tokens)
                if answer is None:
                    continue  # only cached answers (run the harness first)
                conf = confidence(logprobs(gen, item.prompt, args.tokens), args.tokens)
                passed = report.verdict(item, answer.text).passed
                cloud = item.cloud if item.cloud is not None else True
                rows.append((name, item.prompt, conf.score if conf else 0.0, bool(passed), bool(cloud)))
        if not rows:
            print(f"{model.id}: no cached answers (run python -m eval.quality run first)")
            continue
        router = router_scores([r[1] for r in rows]).scores
        print(f"\n{model.id} ({model.dtype}), first {args.tokens} tokens scored, {len(rows)} cached answers")
        head = "| set | n | device | cloud | AUROC | APGR cascade | APGR router |"
        head += "".join(f" q@{s:.0%} cascade / router |" for s in SHARES)
        print(head)
        print("|" + "---|" * (7 + len(SHARES)))
        for name in [*args.sets, "all"]:
            idx = [k for k, r in enumerate(rows) if name in ("all", r[0])]
            if not idx:
                continue
            score = [rows[k][2] for k in idx]
            dev = [rows[k][3] for k in idx]
            cld = [rows[k][4] for k in idx]
            casc = curve([1.0 - s for s in score], dev, cld)  # low confidence first to the cloud
            prompt = curve([router[k] for k in idx], dev, cld)
            line = (
                f"| {name} | {len(idx)} | {np.mean(dev):.3f} | {np.mean(cld):.3f} | {auroc(score, dev):.3f} "
            )
            line += f"| {casc.apgr():.3f} | {prompt.apgr():.3f} |"
            line += "".join(f" {quality_at(casc, s):.3f} / {quality_at(prompt, s):.3f} |" for s in SHARES)
            print(line)


if __name__ == "__main__":
    main()
