"""``python -m eval.methods``: each task's methods measured on sets they never trained on.

    ./hr python -m eval.methods [--sets sst2 mmlu mmlu-topics flask scifact] [--n N] [--depth 20]
                                [--threads 1] [--data ../shared/data] [--out results.json]

Zero-shot classification: the NLI model against embedding similarity, every item scored by the router's
own step for each method; accuracy and macro-F1 per set, with a paired bootstrap interval of the accuracy
difference. Reranking: the cross-encoder against the bi-encoder alone over the bi-encoder's top
``--depth`` of the SciFact corpus per test claim; nDCG@10 and MRR@10. Prints a table and writes the
figures, the models, their dtypes and the command as JSON (``--out``, default
``$CACHE/eval/results/methods.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from eval.methods import metrics, sets
from eval.methods.onnx_runtime import OnnxRuntime

ALL_SETS = [*sets.CLASSIFY_SETS, "scifact"]


def log(msg: str) -> None:
    print(f"  {msg}", file=sys.stderr, flush=True)


def _models() -> tuple[Any, dict[str, Path], dict[str, str]]:
    """The manifest, each built model's folder and the dtype the router loads it in by default."""
    from builder.models import load_manifest, read_index

    index = read_index()
    manifest = load_manifest()
    folders = {k: Path(v["dir"]) for k, v in index.items()}
    dtypes = {m.id: str(index.get(m.id, {}).get("default_dtype") or m.default_dtype) for m in manifest.models}
    return manifest, folders, dtypes


def _classify_set(
    rt: OnnxRuntime, label_set: sets.LabelSet, nli: Any, embedder: Any, dtypes: dict[str, str]
) -> dict[str, Any]:
    from hybrid_router import similarity, text_tasks
    from hybrid_router.requests import ClassifyRequest

    requests = [ClassifyRequest.parse(t, labels=list(label_set.labels)) for t in label_set.texts]
    template = requests[0].hypothesis_template
    t0 = time.perf_counter()
    rt.embed_all(embedder, dtypes[embedder.id], [*label_set.texts, *label_set.labels])
    t_embed = time.perf_counter() - t0
    rt.pairs_all(
        nli,
        dtypes[nli.id],
        [(t, template.replace("{}", lab, 1)) for t in label_set.texts for lab in label_set.labels],
    )
    t_nli = time.perf_counter() - t0 - t_embed
    runtime = rt.as_runtime()

    async def predict() -> tuple[list[str], list[str]]:
        by_nli, by_sim = [], []
        for req in requests:
            by_nli.append((await text_tasks.zero_shot_labels(runtime, nli, dtypes[nli.id], req))[0][0])
            by_sim.append(
                (await similarity.label_similarity(runtime, embedder, dtypes[embedder.id], req))[0][0]
            )
        return by_nli, by_sim

    by_nli, by_sim = asyncio.run(predict())
    gold = list(label_set.gold)
    right_nli = [float(g == p) for g, p in zip(gold, by_nli, strict=True)]
    right_sim = [float(g == p) for g, p in zip(gold, by_sim, strict=True)]
    diff, low, high = metrics.paired_bootstrap(right_nli, right_sim)
    out = {
        "set": label_set.name,
        "title": label_set.title,
        "source": label_set.source,
        "n": len(gold),
        "labels": list(label_set.labels),
        "hypothesis_template": template,
        "nli": {"accuracy": metrics.accuracy(gold, by_nli), "macro_f1": metrics.macro_f1(gold, by_nli)},
        "similarity": {
            "accuracy": metrics.accuracy(gold, by_sim),
            "macro_f1": metrics.macro_f1(gold, by_sim),
        },
        "accuracy_nli_minus_similarity": {"mean": diff, "ci95": [low, high]},
        "only_nli_right": int(sum(a > b for a, b in zip(right_nli, right_sim, strict=True))),
        "only_similarity_right": int(sum(b > a for a, b in zip(right_nli, right_sim, strict=True))),
        "majority_class": max(gold.count(lab) for lab in set(gold)) / len(gold),
        "seconds": {"embed": round(t_embed, 1), "nli": round(t_nli, 1)},
    }
    out["better"] = "nli" if out["nli"]["macro_f1"] > out["similarity"]["macro_f1"] else "similarity"
    return out


def _rerank(rt: OnnxRuntime, data: Path, manifest: Any, dtypes: dict[str, str], depth: int) -> dict[str, Any]:
    from builder.convert import task_data
    from builder.convert.retrieval import cached_embeddings, top_k
    from builder.models import source_folder

    from hybrid_router import similarity, text_tasks
    from hybrid_router.requests import RerankRequest
    from hybrid_router.routing.models import EMBED, RERANK, choose

    ranker, embedder = choose(manifest, RERANK), choose(manifest, EMBED)
    spec = dict(ranker.conversion.params["train"])
    files = task_data.verified_files(spec["files"], data)
    sf = task_data.read_scifact(files["corpus"], files["queries"], files["qrels_train"], files["qrels_test"])
    doc_ids = list(sf.corpus)
    source = source_folder(embedder.source)
    # the first stage (candidates from the whole corpus): the same weights' torch embeddings, cached by the
    # reranker's training; fp32 ONNX equals them to cosine 1.000000. Both methods then order the same lists.
    corpus = cached_embeddings(
        source, source / embedder.source.weights, [sf.corpus[d] for d in doc_ids], name="scifact-corpus"
    )
    test_q = sorted(sf.test, key=int)
    queries = [sf.queries[q] for q in test_q]
    t0 = time.perf_counter()
    rt.embed_all(embedder, dtypes[embedder.id], queries)
    runtime = rt.as_runtime()
    q_vecs = asyncio.run(
        runtime.feature_extraction(embedder, dtypes[embedder.id], queries, pooling="mean", normalize=True)
    )
    hits = top_k(q_vecs, corpus, depth)
    lists = {q: [doc_ids[j] for j in hits[i]] for i, q in enumerate(test_q)}
    rt.embed_all(embedder, dtypes[embedder.id], sorted({sf.corpus[d] for ds in lists.values() for d in ds}))
    t_embed = time.perf_counter() - t0
    rt.pairs_all(ranker, dtypes[ranker.id], [(sf.queries[q], sf.corpus[d]) for q in test_q for d in lists[q]])
    t_cross = time.perf_counter() - t0 - t_embed

    async def rank() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        by_cross, by_bi = {}, {}
        for q in test_q:
            req = RerankRequest.parse(sf.queries[q], [sf.corpus[d] for d in lists[q]])
            crossed = await text_tasks.cross_encoder_ranking(runtime, ranker, dtypes[ranker.id], req)
            bi = await similarity.similarity_ranking(runtime, embedder, dtypes[embedder.id], req)
            by_cross[q] = [lists[q][i] for i, _, _ in crossed]
            by_bi[q] = [lists[q][i] for i, _, _ in bi]
        return by_cross, by_bi

    by_cross, by_bi = asyncio.run(rank())
    qrels = {q: sf.test[q] for q in test_q}

    def per_query(ranked: dict[str, list[str]]) -> list[float]:
        return [metrics.ndcg_at_k({q: ranked[q]}, {q: qrels[q]}) for q in test_q]

    diff, low, high = metrics.paired_bootstrap(per_query(by_cross), per_query(by_bi))
    out = {
        "set": "scifact",
        "title": f"SciFact test claims, the bi-encoder's top {depth} of 5,183 abstracts",
        "n": len(test_q),
        "depth": depth,
        "recall_at_depth": sum(bool(set(lists[q]) & qrels[q]) for q in test_q) / len(test_q),
        "cross_encoder": {
            "ndcg@10": metrics.ndcg_at_k(by_cross, qrels),
            "mrr@10": metrics.mrr_at_k(by_cross, qrels),
        },
        "bi_encoder": {"ndcg@10": metrics.ndcg_at_k(by_bi, qrels), "mrr@10": metrics.mrr_at_k(by_bi, qrels)},
        "ndcg@10_cross_minus_bi": {"mean": diff, "ci95": [low, high]},
        "models": {
            "cross_encoder": f"{ranker.id} ({dtypes[ranker.id]})",
            "bi_encoder": f"{embedder.id} ({dtypes[embedder.id]})",
        },
        "seconds": {"embed": round(t_embed, 1), "cross_encoder": round(t_cross, 1)},
    }
    out["better"] = (
        "cross-encoder" if out["cross_encoder"]["ndcg@10"] > out["bi_encoder"]["ndcg@10"] else "bi-encoder"
    )
    return out


def _trained_on(model_id: str) -> str | None:
    """What the manifest says a trained model learned from (its ``metrics.training.trained_on``)."""
    from builder.models import default_manifest_path

    raw = json.loads(default_manifest_path().read_text(encoding="utf-8"))
    entry = next((m for m in raw["models"] if m["id"] == model_id), {})
    found = entry.get("metrics", {}).get("training", {}).get("trained_on")
    return str(found) if found else None


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def table(result: dict[str, Any]) -> str:
    """The figures as Markdown tables (the ones docs/models.md shows)."""
    lines = []
    if result["classify"]:
        lines += [
            "| label set | n | labels | NLI accuracy | NLI macro-F1 | similarity accuracy "
            "| similarity macro-F1 | accuracy NLI − similarity (95% CI) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in result["classify"]:
            d = r["accuracy_nli_minus_similarity"]
            lines.append(
                f"| {r['title']} | {r['n']:,} | {len(r['labels'])} | {_pct(r['nli']['accuracy'])} | "
                f"{_pct(r['nli']['macro_f1'])} | {_pct(r['similarity']['accuracy'])} | "
                f"{_pct(r['similarity']['macro_f1'])} | {100 * d['mean']:+.1f} ({100 * d['ci95'][0]:+.1f} to "
                f"{100 * d['ci95'][1]:+.1f}) |"
            )
        s = result["summary"]
        lines.append(
            f"| **mean over the sets** | | | {_pct(s['nli_accuracy'])} | {_pct(s['nli_macro_f1'])} | "
            f"{_pct(s['similarity_accuracy'])} | {_pct(s['similarity_macro_f1'])} | |"
        )
    if result.get("rerank"):
        r = result["rerank"]
        d = r["ndcg@10_cross_minus_bi"]
        lines += [
            "",
            "| retrieval set | n | nDCG@10 cross-encoder | nDCG@10 bi-encoder | MRR@10 cross-encoder | "
            "MRR@10 bi-encoder | nDCG@10 difference (95% CI) |",
            "|---|---|---|---|---|---|---|",
            f"| {r['title']} | {r['n']} | {r['cross_encoder']['ndcg@10']:.3f} | "
            f"{r['bi_encoder']['ndcg@10']:.3f} | {r['cross_encoder']['mrr@10']:.3f} | "
            f"{r['bi_encoder']['mrr@10']:.3f} | {d['mean']:+.3f} "
            f"({d['ci95'][0]:+.3f} to {d['ci95'][1]:+.3f}) |",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from builder.common import cache_root
    from builder.convert import task_data

    from hybrid_router.routing.models import EMBED, ZERO_SHOT, choose

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sets", nargs="*", default=ALL_SETS, choices=ALL_SETS)
    parser.add_argument("--n", type=int, help="items per classification set (default: each set's own size)")
    parser.add_argument("--depth", type=int, default=20, help="bi-encoder candidates the reranker reorders")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=task_data.data_root(), help="the datasets folder")
    parser.add_argument("--out", type=Path, default=None, help="the JSON result (default under $CACHE/eval)")
    args = parser.parse_args(argv)
    if args.data is None or not Path(args.data).is_dir():
        print(
            "error: no data folder: pass --data (../shared/data) or set HYBRID_ROUTER_DATA", file=sys.stderr
        )
        return 2
    data = Path(args.data)
    manifest, folders, dtypes = _models()
    needed = [choose(manifest, EMBED)]
    if any(s in sets.CLASSIFY_SETS for s in args.sets):
        needed.append(choose(manifest, ZERO_SHOT))
    missing = [m.id for m in needed if m.id not in folders]
    if missing:
        print(f"error: not built: {', '.join(missing)} (./hr build)", file=sys.stderr)
        return 2
    rt = OnnxRuntime(folders, threads=args.threads, cache=cache_root() / "eval" / "methods")
    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "command": "./hr python -m eval.methods " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "classify": [],
        "rerank": None,
    }
    loaded = [
        sets.load(name, data, args.n or sets.CLASSIFY_SETS[name], args.seed)
        for name in args.sets
        if name in sets.CLASSIFY_SETS
    ]
    if loaded:
        nli, embedder = choose(manifest, ZERO_SHOT), choose(manifest, EMBED)
        result["models"] = {
            "nli": f"{nli.id} ({dtypes[nli.id]})",
            "similarity": f"{embedder.id} ({dtypes[embedder.id]})",
        }
        files = dict(nli.conversion.params["train"]["files"])
        result["held_out"] = {
            "nli_trained_on": _trained_on(nli.id),
            "texts_among_its_training_sentences": sets.check_held_out(
                loaded, sets.nli_training_texts(data, files)
            ),
        }
        if any(result["held_out"]["texts_among_its_training_sentences"].values()):
            log(f"warning: set texts among the NLI model's training data: {result['held_out']}")
    for label_set in loaded:
        log(f"{label_set.name}: {len(label_set.texts)} texts x {len(label_set.labels)} labels")
        row = _classify_set(rt, label_set, nli, embedder, dtypes)
        result["classify"].append(row)
        nli_acc, sim_acc = _pct(row["nli"]["accuracy"]), _pct(row["similarity"]["accuracy"])
        log(f"{label_set.name}: NLI {nli_acc}, similarity {sim_acc}")
    if result["classify"]:
        rows = result["classify"]
        result["summary"] = {
            f"{m}_{k}": sum(r[m][k] for r in rows) / len(rows)
            for m in ("nli", "similarity")
            for k in ("accuracy", "macro_f1")
        }
        s = result["summary"]
        result["summary"]["better"] = "nli" if s["nli_macro_f1"] > s["similarity_macro_f1"] else "similarity"
    if "scifact" in args.sets:
        log(f"scifact: reranking the bi-encoder's top {args.depth} per test claim")
        result["rerank"] = _rerank(rt, data, manifest, dtypes, args.depth)
    result["truncated_inputs"] = rt.truncated
    result["threads"] = args.threads
    result["minutes"] = round((time.perf_counter() - t0) / 60, 1)
    out = args.out or cache_root() / "eval" / "results" / "methods.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(table(result))
    print(f"\n{result['command']}  ({result['minutes']} min; written to {out})")
    return 0
