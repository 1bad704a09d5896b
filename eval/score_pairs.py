"""Score tokenized (query, passage) pairs with an ONNX cross-encoder in onnxruntime (CPU), for
``eval/task_models.py --scores``: the reranker's SciFact test evaluation is 30,000 pairs of up to 256
tokens, so it can be run on a machine with more cores. Needs only numpy and onnxruntime.

    python eval/score_pairs.py MODEL.onnx PAIRS.npz OUT.npy [--threads N] [--batch 64]

PAIRS.npz comes from ``eval/task_models.py --pairs-out`` (input_ids, token_type_ids joined, offsets);
OUT.npy holds one logit per pair, in the pairs' order.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np


def score(model: Path, pairs: Path, *, threads: int, batch: int) -> np.ndarray:
    import onnxruntime as ort

    data = np.load(pairs)
    ids, types, offsets = data["input_ids"], data["token_type_ids"], data["offsets"]
    lengths = np.diff(offsets)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    out = np.zeros(len(lengths), np.float32)
    order = np.argsort(lengths, kind="stable")  # similar lengths together: little padding
    t0 = time.perf_counter()
    for s in range(0, len(order), batch):
        rows = order[s : s + batch]
        width = int(lengths[rows].max())
        feed = {
            k: np.zeros((len(rows), width), np.int64)
            for k in ("input_ids", "attention_mask", "token_type_ids")
        }
        for r, i in enumerate(rows):
            a, b = offsets[i], offsets[i + 1]
            feed["input_ids"][r, : b - a] = ids[a:b]
            feed["token_type_ids"][r, : b - a] = types[a:b]
            feed["attention_mask"][r, : b - a] = 1
        out[rows] = session.run(["logits"], {k: v for k, v in feed.items() if k in names})[0].reshape(-1)
        if s // batch % 50 == 0:
            done = s + len(rows)
            print(
                f"  {done}/{len(order)} pairs, {done / (time.perf_counter() - t0):.0f} pairs/s",
                file=sys.stderr,
                flush=True,
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("pairs", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    logits = score(args.model, args.pairs, threads=args.threads, batch=args.batch)
    np.save(args.out, logits)
    print(f"  {len(logits)} pairs scored in {time.perf_counter() - t0:.0f} s -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
