"""Build the learned prompt router's weights from the data, deterministically.

    ./hr python -m eval.train_router [--data ../shared/data] [--out PATH] [--no-cache] [--check]

1. the labelled prompt set (``eval/router_data.py``: labelling scheme, dedupe);
2. features: the all-MiniLM-L6-v2 embedding of ``prompt_features.embedding_text`` (torch, one thread;
   cached in ``.cache/router/`` unless ``--no-cache``) and ``prompt_features.lexical_features``;
3. per head (``embedding+lexical``, ``lexical``): the L2 strength with the best leave-one-source-out AUC,
   the operating point on those held-out-source scores (``router_fit.choose_threshold``), and the
   reference mix for the cloud-share calibration (1,000 prompts, one in ten hard) scored by them;
4. the final fit on every source; topic centroids (for the "what drove it" line);
5. ``py_src/hybrid_router/router_model/weights.json`` (numbers rounded to 6 significant digits, keys in a
   fixed order, no timestamps: the same data gives the same bytes), and its sha256.

``--check`` rebuilds into memory and compares with the committed file instead of writing it.
``--answers MODEL`` trains on the device's answers (``eval/router_answers.py``): every prompt with a
verdict of that device chat model in the quality harness's cache labelled "cloud" when its answer fails
where the cloud's passes, "device" otherwise; the category labels elsewhere.
``--test-sample`` also writes ``tests/data/router_handwritten_embeddings.npy``: the float16 embeddings of
the handwritten prompts (``tests/data/router_handwritten.jsonl``), so the unit tests need no model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "py_src"), str(ROOT)]

import numpy as np  # noqa: E402
from eval import router_answers, router_data, router_fit  # noqa: E402

from hybrid_router import prompt_features  # noqa: E402
from hybrid_router.prompt_router import FORMAT, FORMAT_VERSION, HEAD_EMBEDDING, HEAD_LEXICAL, WEIGHTS_PATH  # noqa: E402

SIGNIFICANT = 6
TEST_EMBEDDINGS = ROOT / "tests" / "data" / "router_handwritten_embeddings.npy"


def _r(x: float) -> float:
    return float(f"{float(x):.{SIGNIFICANT}g}")


def _rl(values: Any) -> list[float]:
    return [_r(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]


def build(data: Path, cache: Path | None, answers: str | None = None) -> dict[str, Any]:
    prompts = router_data.load_all(data, verbose=True)
    n_category, labels = len(prompts), "eval/router_data.py"
    if answers:
        verdicts = router_answers.load_verdicts(answers, data)
        prompts, _ = router_answers.merge(prompts, verdicts)
        labels += f" and eval/router_answers.py ({len(verdicts)} verdicts on {answers}'s answers)"
        print(f"  {answers}: {len(verdicts)} verdicts, {len(prompts) - n_category} prompts added")
    y = np.array([p.hard for p in prompts])
    sources = [p.source for p in prompts]
    emb = router_fit.embed_prompts(prompts[:n_category], cache)  # the category set's cache entry
    if len(prompts) > n_category:
        emb = np.vstack([emb, router_fit.embed_prompts(prompts[n_category:], cache)])
    lex = router_fit.lexical_matrix(prompts)
    matrices = {HEAD_EMBEDDING: np.hstack([emb, lex]), HEAD_LEXICAL: lex}
    mix = router_fit.reference_mix(y, sources)
    heads: dict[str, Any] = {}
    for name, x in matrices.items():
        n_emb = x.shape[1] - lex.shape[1]
        sel = router_fit.select(x, y, sources, router_fit.C_GRID[name], n_emb)
        model = router_fit.fit(x, y, sources, sel.c, n_emb)
        heads[name] = {
            "c": sel.c,
            "loso_auc_by_c": {str(c): _r(a) for c, a in sel.auc_by_c.items()},
            "intercept": _r(model.intercept),
            **({"embedding_weights": _rl(model.weights[:n_emb])} if n_emb else {}),
            "lexical_weights": _rl(model.weights[n_emb:]),
            "lexical_means": _rl(model.means[n_emb:]),
            "threshold": _r(sel.threshold),
            "reference_scores": sorted(_rl(sel.scores[mix])),
        }
        print(
            f"{name}: C {sel.c} (leave-one-source-out AUC by C: "
            + ", ".join(f"{c}: {a:.3f}" for c, a in sel.auc_by_c.items())
            + f"), threshold {sel.threshold:.3f}"
        )
    topics = {}
    weights = router_fit.sample_weights(y, sources)
    for topic in router_data.TOPICS:
        rows = np.array([p.topic == topic for p in prompts])
        centre = (emb[rows] * weights[rows, None]).sum(axis=0)
        topics[topic] = _rl(centre / np.linalg.norm(centre))
    counts = Counter((p.source, p.hard) for p in prompts)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "version": f"minilm-lr-{len(prompt_features.LEXICAL_FEATURES)}lex-s{router_data.SEED}"
        + (f"-answers-{answers}" if answers else ""),
        "about": (
            "Learned prompt router (hybrid_router.prompt_router): logistic regression, z = intercept + "
            "embedding_weights . e + lexical_weights . x (raw units); built by eval/train_router.py"
        ),
        "embedding": {
            "model": "all-MiniLM-L6-v2",
            "dims": int(emb.shape[1]),
            "pooling": "mean",
            "normalize": True,
            "max_tokens": router_fit.MAX_TOKENS,
            "text": "prompt_features.embedding_text(router_text(prompt))",
        },
        "lexical_features": list(prompt_features.LEXICAL_FEATURES),
        "heads": heads,
        "topics": topics,
        "reference_mix": {
            "size": int(len(mix)),
            "hard_share": router_fit.MIX_HARD_SHARE,
            "how": "drawn from the labelled set (numpy default_rng(0), every source equally likely within "
            "a class), each prompt scored by the model trained without its source",
        },
        "training": {
            "prompts": len(prompts),
            "per_source": {
                s: {"hard": counts[(s, 1)], "everyday": counts[(s, 0)]}
                for s in dict.fromkeys([*router_data.PRIORITY, *sources])
            },
            "labels": labels,
        },
    }


def serialize(model: dict[str, Any]) -> bytes:
    return (json.dumps(model, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=WEIGHTS_PATH)
    ap.add_argument("--no-cache", action="store_true", help="recompute the embeddings (no .cache/router)")
    ap.add_argument("--check", action="store_true", help="compare with --out instead of writing it")
    ap.add_argument("--test-sample", action="store_true", help=f"also write {TEST_EMBEDDINGS.name}")
    ap.add_argument("--answers", metavar="MODEL", help="label from this device chat model's answers too")
    args = ap.parse_args()
    if args.test_sample:
        texts = [prompt_features.embedding_text(p.text) for p in router_data.load_handwritten()]
        np.save(TEST_EMBEDDINGS, router_fit.embed_texts(texts, cache=None).astype(np.float16))
        print(f"wrote {TEST_EMBEDDINGS.relative_to(ROOT)} ({len(texts)} prompts)")
    blob = serialize(build(args.data, None if args.no_cache else router_fit.DEFAULT_CACHE, args.answers))
    digest = hashlib.sha256(blob).hexdigest()
    if args.check:
        same = args.out.is_file() and args.out.read_bytes() == blob
        print(
            f"rebuilt {len(blob)} bytes, sha256 {digest}: "
            f"{'IDENTICAL to' if same else 'DIFFERS from'} {args.out}"
        )
        sys.exit(0 if same else 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(blob)
    print(f"wrote {args.out}: {len(blob)} bytes, sha256 {digest}")


if __name__ == "__main__":
    main()
