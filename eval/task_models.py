"""Quality of the task models we train: the standard metrics, for torch (the trained folder), the fp32
ONNX and the q8 ONNX files (onnxruntime on CPU), and how often q8 agrees with torch on the dev sets.

    ./hr python eval/task_models.py --data ../shared/data [--models ID ...] [--depth 100] [--update-manifest]

Reranking the SciFact test set (300 claims x 100 passages of up to 256 tokens) takes about 20 minutes per
ONNX dtype on 2 cores. To score a dtype elsewhere (more cores): ``--pairs-out pairs.npz --dtypes none``
writes the tokenized pairs, ``eval/score_pairs.py`` scores them with the ONNX file on that machine, and
``--scores q8=q8.npy`` here reads its logits instead of running q8 on the test pairs.

- sentiment (``text-classification``): SST-2 dev accuracy;
- NER (``token-classification``): CoNLL-2003 test (eng.testb) entity F1 (micro, exact spans, BIO as
  conlleval reads it), each word labelled by its first word piece;
- NLI (``zero-shot-classification``): SNLI test accuracy;
- reranker (``text-ranking``): SciFact test nDCG@10 of all-MiniLM-L6-v2 retrieval alone (top-``depth`` by
  cosine) and of that list reranked by the cross-encoder (fp32 and q8 ONNX; torch only on the dev queries).

Agreement (q8 vs torch, and fp32 vs torch): the share of dev examples with the same predicted label (NER: of
dev words; reranker: of dev queries with the same top document). Dev sets: SST-2 dev, CoNLL eng.testa, the
1,000 SNLI dev pairs held out from training, the 100 SciFact train claims held out from training.

Inputs are tokenized like the browser does (Transformers.js with the final [SEP] restored on truncation:
the same as Hugging Face tokenizers). ``--update-manifest`` writes each model's numbers into its manifest
entry (``metrics.eval``). Results also go to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see builder/convert/finetune.py
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "py_src"), str(ROOT)]

import numpy as np  # noqa: E402
from builder import models as bm  # noqa: E402
from builder.convert import task_data  # noqa: E402
from builder.convert.finetune import entity_f1  # noqa: E402
from builder.convert.recipe import onnx_file  # noqa: E402
from builder.convert.retrieval import cached_embeddings, embed, ndcg_at_k, top_k  # noqa: E402

Batch = dict[str, Any]
Runner = Callable[[Batch], Any]  # encoded batch -> logits (numpy)


def log(msg: str) -> None:
    print(f"  {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- runners: torch and onnxruntime


def torch_runner(folder: Path, threads: int) -> Runner:
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoModelForTokenClassification

    torch.set_num_threads(threads)
    arch = AutoConfig.from_pretrained(str(folder)).architectures[0]
    cls = AutoModelForTokenClassification if "Token" in arch else AutoModelForSequenceClassification
    model = cls.from_pretrained(str(folder)).eval()

    def run(batch: Batch) -> Any:
        with torch.inference_mode():
            return model(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits.numpy()

    return run


def onnx_runner(path: Path, threads: int) -> Runner:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # shared machine: do not spin
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}

    def run(batch: Batch) -> Any:
        return session.run(["logits"], {k: v for k, v in batch.items() if k in names})[0]

    return run


def encode_batches(
    tok: Any,
    first: Sequence[str] | Sequence[list[str]],
    second: Sequence[str] | None = None,
    *,
    max_length: int,
    batch_size: int = 32,
    words: bool = False,
) -> tuple[list[int], list[Batch], Any]:
    """Inputs sorted by length into padded numpy batches: (the items' order, the batches, the encoding)."""
    enc = tok(
        list(first),
        list(second) if second is not None else None,
        truncation=True,
        max_length=max_length,
        is_split_into_words=words,
    )
    n = len(first)
    order = sorted(range(n), key=lambda i: len(enc["input_ids"][i]))
    groups, batches = [], []
    for s in range(0, n, batch_size):
        idx = order[s : s + batch_size]
        width = max(len(enc["input_ids"][i]) for i in idx)
        batch = {
            k: np.zeros((len(idx), width), np.int64)
            for k in ("input_ids", "attention_mask", "token_type_ids")
        }
        for r, i in enumerate(idx):
            ln = len(enc["input_ids"][i])
            batch["input_ids"][r, :ln] = enc["input_ids"][i]
            batch["attention_mask"][r, :ln] = 1
            batch["token_type_ids"][r, :ln] = enc["token_type_ids"][i]
        groups.append(idx)
        batches.append(batch)
    return [i for g in groups for i in g], batches, enc


def save_pairs(path: Path, enc: Any) -> None:
    """Tokenized pairs, in order, for ``eval/score_pairs.py``: every input_ids/token_type_ids row joined,
    with the offsets where each row starts (a ragged array, without padding)."""
    ids, types = enc["input_ids"], enc["token_type_ids"]
    offsets = np.cumsum([0, *map(len, ids)]).astype(np.int64)
    np.savez_compressed(
        path,
        input_ids=np.concatenate([np.asarray(r, np.int32) for r in ids]),
        token_type_ids=np.concatenate([np.asarray(r, np.int8) for r in types]),
        offsets=offsets,
    )


def logits_of(run: Runner, batches: list[Batch]) -> list[Any]:
    return [run(b) for b in batches]


def variants(entry: Any, threads: int, only: Sequence[str] = ()) -> dict[str, Runner]:
    """torch (the trained folder) and each ONNX dtype of ``entry`` (``only`` these, when given)."""
    folder = bm.model_dir(entry)
    out = {"torch": torch_runner(bm.reference_dir(entry), threads)}
    for dtype in entry.variants:
        if not only or dtype in only:
            out[dtype] = onnx_runner(folder / onnx_file(dtype), threads)
    return out


def agreement(a: Sequence[Any], b: Sequence[Any]) -> float:
    return float(np.mean([x == y for x, y in zip(a, b, strict=True)])) if a else 0.0


# ---------------------------------------------------------------- one function per task


def eval_classifier(
    entry: Any,
    tok: Any,
    runners: dict[str, Runner],
    test: list[tuple[str, str | None, int]],
    dev: list[tuple[str, str | None, int]] | None,
    max_length: int,
) -> dict[str, Any]:
    """Accuracy on ``test`` per variant; agreement with torch on ``dev`` (``test`` when None)."""

    def predict(run: Runner, items: list[tuple[str, str | None, int]]) -> list[int]:
        second = [x[1] for x in items] if items[0][1] is not None else None
        order, batches, _ = encode_batches(tok, [x[0] for x in items], second, max_length=max_length)
        preds = np.concatenate([lg.argmax(-1) for lg in logits_of(run, batches)])
        out = [0] * len(items)
        for i, p in zip(order, preds, strict=True):
            out[i] = int(p)
        return out

    res: dict[str, Any] = {}
    dev_preds = {}
    for name, run in runners.items():
        t0 = time.perf_counter()
        preds = predict(run, test)
        res[f"{name}_accuracy"] = round(
            float(np.mean([p == x[2] for p, x in zip(preds, test, strict=True)])), 4
        )
        dev_preds[name] = predict(run, dev) if dev is not None else preds
        log(f"{entry.id} {name}: accuracy {res[f'{name}_accuracy']:.4f} ({time.perf_counter() - t0:.0f} s)")
    for name in runners:
        if name != "torch":
            res[f"{name}_torch_agreement_dev"] = round(agreement(dev_preds[name], dev_preds["torch"]), 4)
    res["test_examples"] = len(test)
    res["dev_examples"] = len(dev) if dev is not None else len(test)
    return res


def eval_ner(
    entry: Any,
    tok: Any,
    runners: dict[str, Runner],
    test: list[tuple[list[str], list[str]]],
    dev: list[tuple[list[str], list[str]]],
    max_length: int,
) -> dict[str, Any]:
    labels = [entry_label(entry, i) for i in range(len(task_data.NER_LABELS))]

    def predict(run: Runner, sents: list[tuple[list[str], list[str]]]) -> list[list[str]]:
        order, batches, enc = encode_batches(tok, [s[0] for s in sents], max_length=max_length, words=True)
        out: list[list[str]] = [[] for _ in sents]
        k = 0
        for lg in logits_of(run, batches):
            best = lg.argmax(-1)
            for row in best:
                i = order[k]
                k += 1
                tags = ["O"] * len(sents[i][0])  # words cut by truncation stay O
                prev = None
                for pos, w in enumerate(enc.word_ids(i)):
                    if w is not None and w != prev:
                        tags[w] = labels[int(row[pos])]
                    prev = w
                out[i] = tags
        return out

    res: dict[str, Any] = {}
    dev_preds = {}
    for name, run in runners.items():
        t0 = time.perf_counter()
        pred = predict(run, test)
        scores = entity_f1([s[1] for s in test], pred)
        res.update({f"{name}_{k}": round(v, 4) for k, v in scores.items()})
        dev_preds[name] = [t for sent in predict(run, dev) for t in sent]
        log(f"{entry.id} {name}: entity F1 {scores['f1']:.4f} ({time.perf_counter() - t0:.0f} s)")
    for name in runners:
        if name != "torch":
            res[f"{name}_torch_agreement_dev"] = round(agreement(dev_preds[name], dev_preds["torch"]), 4)
    res["test_sentences"] = len(test)
    res["dev_words"] = len(dev_preds["torch"])
    return res


def entry_label(entry: Any, i: int) -> str:
    config = json.loads((bm.model_dir(entry) / "config.json").read_text())
    return str(config["id2label"][str(i)])


def eval_reranker(
    entry: Any,
    tok: Any,
    runners: dict[str, Runner],
    sf: Any,
    spec: dict[str, Any],
    depth: int,
    max_length: int,
    base: Path,
    weights: Path,
    pairs_out: Path | None = None,
    scores_from: dict[str, Path] | None = None,
) -> dict[str, Any]:
    """``pairs_out``: also write the test pairs, tokenized, for ``eval/score_pairs.py`` (to score them on a
    machine with more cores); ``scores_from``: {dtype: logits file} written by it, used instead of running
    that dtype on the test pairs here (the dev queries still run here)."""
    doc_ids = list(sf.corpus)
    doc_vecs = cached_embeddings(base, weights, [sf.corpus[d] for d in doc_ids], name="scifact-corpus")
    test_q = sorted(sf.test, key=int)
    q_vecs = embed(base, [sf.queries[q] for q in test_q], desc="embed test queries")
    hits = top_k(q_vecs, doc_vecs, depth)
    first = {q: [doc_ids[j] for j in hits[i]] for i, q in enumerate(test_q)}
    res: dict[str, Any] = {
        "bi_encoder_ndcg@10": round(ndcg_at_k(first, sf.test), 4),
        "depth": depth,
        "test_queries": len(test_q),
    }
    log(f"bi-encoder alone: nDCG@10 {res['bi_encoder_ndcg@10']:.4f}")

    def rerank(
        run: Runner | None, queries: list[str], lists: dict[str, list[str]], *, given: Path | None = None
    ) -> dict[str, list[str]]:
        pairs = [(q, d) for q in queries for d in lists[q]]
        order, batches, _ = encode_batches(
            tok,
            [sf.queries[q] for q, _ in pairs],
            [sf.corpus[d] for _, d in pairs],
            max_length=max_length,
            batch_size=32,
        )
        if given is not None:
            scores = np.load(given).astype(np.float32).reshape(-1)
            if len(scores) != len(pairs):
                raise SystemExit(f"{given}: {len(scores)} scores for {len(pairs)} pairs (another --depth?)")
        else:
            assert run is not None
            scores = np.zeros(len(pairs), np.float32)
            scores[order] = np.concatenate([lg.reshape(-1) for lg in logits_of(run, batches)])
        out, k = {}, 0
        for q in queries:
            s = scores[k : k + len(lists[q])]
            k += len(lists[q])
            out[q] = [lists[q][i] for i in np.argsort(-s, kind="stable")]
        return out

    given = scores_from or {}
    if pairs_out is not None:
        queries = [sf.queries[q] for q in test_q for _ in first[q]]
        passages = [sf.corpus[d] for q in test_q for d in first[q]]
        save_pairs(pairs_out, encode_batches(tok, queries, passages, max_length=max_length)[2])
        log(f"wrote the {sum(map(len, first.values()))} test pairs, tokenized, to {pairs_out}")
        if not runners:
            return res
    for name in ("fp32", "q8"):
        if name in runners or name in given:
            t0 = time.perf_counter()
            ranked = rerank(runners.get(name), test_q, first, given=given.get(name))
            res[f"{name}_ndcg@10"] = round(ndcg_at_k(ranked, sf.test), 4)
            if name in given:
                res[f"{name}_scored_by"] = "eval/score_pairs.py"
            log(
                f"{entry.id} {name}: reranked nDCG@10 {res[f'{name}_ndcg@10']:.4f} "
                f"({time.perf_counter() - t0:.0f} s)"
            )
    # dev: the train claims held out from training (the same draw as the training's), their bi-encoder top 20
    import random

    train_q = sorted(sf.train, key=int)
    random.Random(spec["seed"]).shuffle(train_q)
    dev_q = train_q[: int(spec.get("dev_queries", 100))]
    dv = embed(base, [sf.queries[q] for q in dev_q], desc="embed dev queries")
    dev_first = {q: [doc_ids[j] for j in row] for q, row in zip(dev_q, top_k(dv, doc_vecs, 20), strict=True)}
    dev_rank = {name: rerank(run, dev_q, dev_first) for name, run in runners.items()}
    for name in runners:
        res[f"{name}_dev_ndcg@10"] = round(ndcg_at_k(dev_rank[name], {q: sf.train[q] for q in dev_q}), 4)
        if name != "torch":
            top1 = [dev_rank[name][q][0] == dev_rank["torch"][q][0] for q in dev_q]
            res[f"{name}_torch_agreement_dev"] = round(float(np.mean(top1)), 4)
    res["dev_queries"] = len(dev_q)
    return res


# ---------------------------------------------------------------- driver


def evaluate(
    entry: Any,
    data: Path,
    *,
    depth: int,
    threads: int,
    dtypes: Sequence[str] = (),
    pairs_out: Path | None = None,
    scores_from: dict[str, Path] | None = None,
) -> dict[str, Any]:
    from transformers import AutoTokenizer

    spec = dict(entry.conversion.params["train"])
    files = task_data.verified_files(spec["files"], data)
    folder = bm.model_dir(entry)
    tok = AutoTokenizer.from_pretrained(str(folder))
    max_length = int(json.loads((folder / "tokenizer_config.json").read_text())["model_max_length"])
    runners = {} if list(dtypes) == ["none"] else variants(entry, threads, dtypes)
    t0 = time.perf_counter()
    dataset = spec["dataset"]
    if dataset == "sst2":
        dev = [(s, None, y) for s, y in task_data.read_sst2(files["dev"])]
        res = eval_classifier(entry, tok, runners, dev, None, max_length)
        res["test_set"] = "SST-2 dev"
    elif dataset == "nli":
        test = task_data.read_snli(*(data / f"snli/{n}.test" for n in ("s1", "s2", "labels")))
        snli_dev = task_data.read_snli(files["snli_s1"], files["snli_s2"], files["snli_labels"])
        import random

        order = list(range(len(snli_dev)))
        random.Random(spec["seed"]).shuffle(order)
        held = [snli_dev[i] for i in order[: int(spec.get("holdout", 1000))]]
        res = eval_classifier(
            entry,
            tok,
            runners,
            [(p.a, p.b, p.label) for p in test],
            [(p.a, p.b, p.label) for p in held],
            max_length,
        )
        res["test_set"] = "SNLI test"
    elif dataset == "conll2003":
        test = task_data.read_conll(data / "conll2003" / "eng.testb")
        dev = task_data.read_conll(files["dev"])
        res = eval_ner(entry, tok, runners, test, dev, max_length)
        res["test_set"] = "CoNLL-2003 eng.testb"
    elif dataset == "scifact":
        sf = task_data.read_scifact(
            files["corpus"], files["queries"], files["qrels_train"], files["qrels_test"]
        )
        source = bm.source_folder(entry.source)
        res = eval_reranker(
            entry,
            tok,
            runners,
            sf,
            spec,
            depth,
            max_length,
            source,
            source / entry.source.weights,
            pairs_out=pairs_out,
            scores_from=scores_from,
        )
        res["test_set"] = "SciFact test (BEIR)"
    else:
        raise SystemExit(f"{entry.id}: no evaluation for dataset {dataset!r}")
    res["max_length"] = max_length
    res["minutes"] = round((time.perf_counter() - t0) / 60, 1)
    return res


def write_manifest(path: Path, results: dict[str, dict[str, Any]]) -> None:
    raw = json.loads(path.read_text(encoding="utf-8"))
    for entry in raw["models"]:
        if entry["id"] in results:
            entry["metrics"] = {**entry.get("metrics", {}), "eval": results[entry["id"]]}
    path.write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    log(f"wrote metrics.eval of {', '.join(results)} into {path}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=task_data.data_root(), help="the datasets folder")
    parser.add_argument("--models", nargs="*", help="model ids (default: every finetune-encoder model built)")
    parser.add_argument("--depth", type=int, default=100, help="bi-encoder candidates the reranker reorders")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtypes", nargs="*", default=[], help="ONNX dtypes to measure (default: all)")
    parser.add_argument("--out", type=Path, help="write the results here (JSON)")
    parser.add_argument(
        "--pairs-out",
        type=Path,
        help="reranker: write the test pairs, tokenized (.npz), "
        "for eval/score_pairs.py; with --dtypes none, only that",
    )
    parser.add_argument(
        "--scores",
        nargs="*",
        default=[],
        metavar="DTYPE=FILE",
        help="reranker: that dtype's test-pair logits from eval/score_pairs.py (.npy)",
    )
    parser.add_argument("--update-manifest", action="store_true", help="write metrics.eval into the manifest")
    parser.add_argument("--manifest", type=Path, default=bm.MANIFEST_PATH, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.data is None or not Path(args.data).is_dir():
        print(
            "error: no data folder: pass --data (../shared/data) or set HYBRID_ROUTER_DATA", file=sys.stderr
        )
        return 2
    manifest = bm.load_manifest(args.manifest)
    entries = [
        m
        for m in manifest.models
        if m.conversion.recipe == "finetune-encoder" and (not args.models or m.id in args.models)
    ]
    results = {}
    for entry in entries:
        if not (bm.model_dir(entry) / "config.json").is_file() or not bm.reference_dir(entry).is_dir():
            log(f"{entry.id}: not built (./hr build with the data): skipped")
            continue
        log(f"{entry.id}: evaluating")
        scores_from = {k: Path(v) for k, _, v in (x.partition("=") for x in args.scores)}
        results[entry.id] = evaluate(
            entry,
            Path(args.data),
            depth=args.depth,
            threads=args.threads,
            dtypes=args.dtypes,
            pairs_out=args.pairs_out,
            scores_from=scores_from,
        )
        print(json.dumps({entry.id: results[entry.id]}, indent=1), flush=True)
        if args.out:
            args.out.write_text(json.dumps(results, indent=2) + "\n")
    if args.update_manifest and results:
        write_manifest(args.manifest, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
