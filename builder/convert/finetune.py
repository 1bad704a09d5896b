"""Recipe ``finetune-encoder``: train a task head on a BERT encoder, then export it like ``optimum-encoder``.

The manifest entry's ``conversion`` names everything that shapes the weights (so they key the cache):
the ``task`` (optimum's: ``text-classification`` or ``token-classification``), and ``train``:

- ``dataset``: which reader and objective (:data:`DATASETS`: ``sst2``, ``conll2003``, ``nli``, ``scifact``);
- ``files``: ``{role: {"path", "sha256"}}`` relative to the data folder (checked before training);
- hyper-parameters: ``max_length``, ``batch_size``, ``epochs``, ``max_steps`` (0: epochs decide), ``lr``,
  ``warmup``, ``weight_decay``, ``freeze_embeddings``, ``train_limit`` (0: all), and the dataset's options:
  ``label_all_pieces`` (conll2003: every word piece gets its word's label, ``I-`` after the first, so that
  raw text, split into pieces the model was trained on, is labelled everywhere), ``holdout`` (nli: SNLI dev
  pairs kept out of training for the dev metric), ``title_queries``, ``negatives``, ``negatives_from``,
  ``dev_queries``, ``dev_depth`` (scifact, see :func:`prepare_scifact`);
- ``seed``, ``max_minutes`` (a safety stop: training ends there and says so in ``training.json``; the step
  budget is chosen to end well before it). The training uses every core (``HYBRID_ROUTER_TRAIN_THREADS``
  overrides it); the thread count does not key the trained folder;
- ``metric`` and ``min_metric``: the dev metric the build must reach, else it fails.

The training step is the recipe's ``reference`` step: the fine-tuned HF folder (safetensors, config with
``id2label``/``label2id``, the base model's tokenizer files byte for byte, ``training.json``) is cached in
``$CACHE/references/<id>/<key>/``, so it runs once per manifest entry. ``export`` then writes the
Transformers.js folder (:mod:`.encoder`) and copies ``training.json`` (the metric reached) into it.

Trained weights are not bit-identical across CPUs (kernels differ), so this recipe is not ``reproducible``:
the build checks the file list and the metric gate, and reports (not refuses) hashes that differ.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.common import BuildError, log, progress
from builder.progress import report, reporting

from . import checkpoint, encoder, task_data
from .recipe import Job, Recipe

# Before torch is imported: OpenMP threads that spin while waiting made a training step 7x slower on a
# shared 2-core machine (10.9 s vs 1.7 s per step at load 10); passive waiting costs nothing when idle.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
TRAINING_FILE = "training.json"

DEFAULTS: Mapping[str, Any] = {
    "max_length": 128,
    "batch_size": 32,
    "epochs": 1,
    "max_steps": 0,
    "lr": 5e-5,
    "warmup": 0.06,
    "weight_decay": 0.01,
    "freeze_embeddings": True,
    "train_limit": 0,
    "seed": 42,
    "max_minutes": 15,
    "min_metric": 0.0,
}


@dataclass
class Prepared:
    """A dataset made ready for one model: how to build it, batch it, score it, and evaluate it."""

    labels: tuple[str, ...]
    head: str  # "sequence" | "token"
    epoch: Callable[[random.Random], list[Any]]  # the training batches of one epoch, shuffled
    loss: Callable[[Any, Any], Any]  # (model, batch) -> scalar loss
    evaluate: Callable[[Any], dict[str, Any]]  # model -> {metric: value, ...}
    info: dict[str, Any] = field(default_factory=dict)  # what was trained on (sizes)


# ---------------------------------------------------------------- batching helpers


def _buckets(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Batches of indices of similar length (little padding), in random order."""
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    chunk = batch_size * 50
    batches = []
    for s in range(0, len(idx), chunk):
        part = sorted(idx[s : s + chunk], key=lambda i: lengths[i])
        batches += [part[j : j + batch_size] for j in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def _pad(rows: Sequence[Sequence[int]], value: int) -> Any:
    import torch

    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return out


def _encoded_batch(
    rows: Sequence[Sequence[int]], types: Sequence[Sequence[int]] | None, pad_id: int
) -> dict[str, Any]:
    ids = _pad(rows, pad_id)
    batch = {"input_ids": ids, "attention_mask": (_pad([[1] * len(r) for r in rows], 0))}
    batch["token_type_ids"] = _pad(types, 0) if types is not None else ids.new_zeros(ids.shape)
    return batch


def _predict(model: Any, encoded: Sequence[dict[str, Any]]) -> Iterator[Any]:
    """Logits of each batch of ``encoded`` (model in eval mode, no gradients)."""
    import torch

    model.eval()
    try:
        with torch.inference_mode():
            for batch in encoded:
                yield model(**batch).logits
    finally:
        model.train()


# ---------------------------------------------------------------- sequence classification (SST-2, NLI)


def _sequence_task(
    tok: Any,
    spec: Mapping[str, Any],
    labels: tuple[str, ...],
    train: Sequence[tuple[str, str | None, int]],
    dev: Sequence[tuple[str, str | None, int]],
    info: dict[str, Any],
) -> Prepared:
    import torch

    def encode(items: Sequence[tuple[str, str | None, int]]) -> tuple[list[list[int]], list[list[int]]]:
        a = [x[0] for x in items]
        b = [x[1] for x in items]
        enc = tok(a, b if b[0] is not None else None, truncation=True, max_length=spec["max_length"])
        return enc["input_ids"], enc["token_type_ids"]

    train_ids, train_types = encode(train)
    dev_ids, dev_types = encode(dev)
    y_train = [x[2] for x in train]
    y_dev = [x[2] for x in dev]
    lengths = [len(r) for r in train_ids]

    def epoch(rng: random.Random) -> list[Any]:
        out = []
        for b in _buckets(lengths, spec["batch_size"], rng):
            batch = _encoded_batch([train_ids[i] for i in b], [train_types[i] for i in b], tok.pad_token_id)
            out.append((batch, torch.tensor([y_train[i] for i in b])))
        return out

    def loss(model: Any, item: Any) -> Any:
        batch, y = item
        return torch.nn.functional.cross_entropy(model(**batch).logits, y)

    def evaluate(model: Any) -> dict[str, Any]:
        order = sorted(range(len(dev_ids)), key=lambda i: len(dev_ids[i]))
        groups = [order[s : s + 64] for s in range(0, len(order), 64)]
        encoded = [
            _encoded_batch([dev_ids[i] for i in g], [dev_types[i] for i in g], tok.pad_token_id)
            for g in groups
        ]
        correct = 0
        for g, logits in zip(groups, _predict(model, encoded), strict=True):
            pred = logits.argmax(-1).tolist()
            correct += sum(int(p == y_dev[i]) for p, i in zip(pred, g, strict=True))
        return {"accuracy": correct / len(dev_ids), "dev_examples": len(dev_ids)}

    return Prepared(labels, "sequence", epoch, loss, evaluate, info)


def _limit(items: list[Any], n: int, rng: random.Random) -> list[Any]:
    if n and n < len(items):
        items = list(items)
        rng.shuffle(items)
        return items[:n]
    return items


def prepare_sst2(
    tok: Any, files: Mapping[str, Path], spec: Mapping[str, Any], rng: random.Random
) -> Prepared:
    train = [(s, None, y) for s, y in task_data.read_sst2(files["train"])]
    dev = [(s, None, y) for s, y in task_data.read_sst2(files["dev"])]
    train = _limit(train, spec["train_limit"], rng)
    info = {"train": f"SST-2 train ({len(train)} phrases)", "dev": f"SST-2 dev ({len(dev)} phrases)"}
    return _sequence_task(tok, spec, task_data.SENTIMENT_LABELS, train, dev, info)


def prepare_nli(tok: Any, files: Mapping[str, Path], spec: Mapping[str, Any], rng: random.Random) -> Prepared:
    """SNLI dev minus a held-out part (the build's dev metric) + the MNLI samples; SNLI test stays unseen."""
    snli = task_data.read_snli(files["snli_s1"], files["snli_s2"], files["snli_labels"])
    mnli = [
        p
        for role in ("mnli_matched", "mnli_mismatched")
        if role in files
        for p in task_data.read_mnli_sample(files[role])
    ]
    order = list(range(len(snli)))
    random.Random(spec["seed"]).shuffle(order)
    held = int(spec.get("holdout", 1000))
    dev = [snli[i] for i in order[:held]]
    train = [snli[i] for i in order[held:]] + mnli
    train = _limit(train, spec["train_limit"], rng)
    info = {
        "train": f"SNLI dev minus {held} held out ({len(snli) - held}) + MNLI samples ({len(mnli)})",
        "dev": f"{held} held-out SNLI dev pairs",
    }
    return _sequence_task(
        tok,
        spec,
        task_data.NLI_LABELS,
        [(p.a, p.b, p.label) for p in train],
        [(p.a, p.b, p.label) for p in dev],
        info,
    )


# ---------------------------------------------------------------- token classification (CoNLL-2003)


def align_word_labels(
    word_ids: Sequence[int | None], tags: Sequence[int], *, inside: Mapping[int, int] | None = None
) -> list[int]:
    """Label the first word piece of each word; special tokens get -100 (ignored), and so do the other
    pieces, unless ``inside`` (tag -> its ``I-`` tag) is given: then they continue the word's entity, so
    that every piece the model sees in a raw text has a trained label (``label_all_pieces``)."""
    out, prev = [], None
    for w in word_ids:
        if w is None:
            out.append(-100)
        elif w != prev:
            out.append(tags[w])
        else:
            out.append(-100 if inside is None else inside[tags[w]])
        prev = w
    return out


def prepare_conll(
    tok: Any, files: Mapping[str, Path], spec: Mapping[str, Any], rng: random.Random
) -> Prepared:
    import torch

    labels = task_data.NER_LABELS
    train = _limit(task_data.read_conll(files["train"]), spec["train_limit"], rng)
    dev = task_data.read_conll(files["dev"])
    inside = {i: labels.index("I-" + t[2:]) if t != "O" else i for i, t in enumerate(labels)}

    def encode(
        sentences: Sequence[tuple[list[str], list[str]]], pieces: Mapping[int, int] | None
    ) -> tuple[list[Any], list[list[int]]]:
        enc = tok(
            [s[0] for s in sentences],
            is_split_into_words=True,
            truncation=True,
            max_length=spec["max_length"],
        )
        rows = [enc["input_ids"][i] for i in range(len(sentences))]
        tags = [
            align_word_labels(enc.word_ids(i), [labels.index(t) for t in s[1]], inside=pieces)
            for i, s in enumerate(sentences)
        ]
        return rows, tags

    train_ids, train_tags = encode(train, inside if spec.get("label_all_pieces") else None)
    dev_ids, dev_tags = encode(dev, None)  # scored per word (its first piece), as CoNLL is
    lengths = [len(r) for r in train_ids]

    def epoch(rng: random.Random) -> list[Any]:
        return [
            (
                _encoded_batch([train_ids[i] for i in b], None, tok.pad_token_id),
                _pad([train_tags[i] for i in b], -100),
            )
            for b in _buckets(lengths, spec["batch_size"], rng)
        ]

    def loss(model: Any, item: Any) -> Any:
        batch, y = item
        logits = model(**batch).logits
        return torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100
        )

    def evaluate(model: Any) -> dict[str, Any]:
        order = sorted(range(len(dev_ids)), key=lambda i: len(dev_ids[i]))
        groups = [order[s : s + 64] for s in range(0, len(order), 64)]
        encoded = [_encoded_batch([dev_ids[i] for i in g], None, tok.pad_token_id) for g in groups]
        gold, pred = [], []
        for g, logits in zip(groups, _predict(model, encoded), strict=True):
            best = logits.argmax(-1).tolist()
            for row, i in zip(best, g, strict=True):
                keep = [k for k, t in enumerate(dev_tags[i]) if t != -100]
                gold.append([labels[dev_tags[i][k]] for k in keep])
                pred.append([labels[row[k]] for k in keep])
        return {**entity_f1(gold, pred), "dev_sentences": len(dev_ids)}

    info = {
        "train": f"CoNLL-2003 eng.train ({len(train)} sentences, IOB1 -> BIO"
        + (", every word piece labelled)" if spec.get("label_all_pieces") else ")"),
        "dev": f"CoNLL-2003 eng.testa ({len(dev)} sentences)",
    }
    return Prepared(labels, "token", epoch, loss, evaluate, info)


def entity_f1(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, float]:
    """Micro span F1 over BIO sequences (seqeval's default mode, conlleval's counting)."""
    tp = n_gold = n_pred = 0
    for g, p in zip(gold, pred, strict=True):
        gs, ps = task_data.spans_of(g), task_data.spans_of(p)
        tp += len(gs & ps)
        n_gold += len(gs)
        n_pred += len(ps)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"f1": f1, "precision": precision, "recall": recall}


# ---------------------------------------------------------------- cross-encoder reranker (SciFact)


def prepare_scifact(
    tok: Any,
    files: Mapping[str, Path],
    spec: Mapping[str, Any],
    rng: random.Random,
    *,
    base: Path,
    weights: Path,
) -> Prepared:
    """Groups of (query, 1 relevant + ``negatives`` hard negatives), scored by one logit, softmax loss.

    Queries: SciFact train claims (``dev_queries`` of them held out for the build's dev metric) and,
    with ``title_queries`` > 0, that many corpus titles as pseudo-queries for their own abstract (documents
    relevant to a test query are never used). Hard negatives: the bi-encoder's top ``negatives_from``.
    """
    import numpy as np
    import torch

    from .retrieval import cached_embeddings, ndcg_at_k, top_k

    sf = task_data.read_scifact(files["corpus"], files["queries"], files["qrels_train"], files["qrels_test"])
    doc_ids = list(sf.corpus)
    doc_vecs = cached_embeddings(base, weights, [sf.corpus[d] for d in doc_ids], name="scifact-corpus")
    test_docs = set().union(*sf.test.values())
    train_q = sorted(sf.train, key=int)
    random.Random(spec["seed"]).shuffle(train_q)
    n_dev = int(spec.get("dev_queries", 100))
    dev_q, fit_q = train_q[:n_dev], train_q[n_dev:]
    q_vecs = cached_embeddings(base, weights, [sf.queries[q] for q in train_q], name="scifact-train-queries")
    q_index = {q: i for i, q in enumerate(train_q)}
    depth = int(spec.get("negatives_from", 30))
    hits = top_k(q_vecs, doc_vecs, depth)
    allowed = [i for i, d in enumerate(doc_ids) if d not in test_docs]

    # (query text, positive doc text, candidate negative texts)
    groups: list[tuple[str, str, list[str]]] = []
    for q in fit_q:
        negs = [sf.corpus[doc_ids[j]] for j in hits[q_index[q]] if doc_ids[j] not in sf.train[q]]
        groups += [(sf.queries[q], sf.corpus[d], negs) for d in sorted(sf.train[q])]
    n_titles = int(spec.get("title_queries", 0))
    if n_titles:
        pick = random.Random(spec["seed"] + 1).sample(allowed, min(n_titles, len(allowed)))
        titles = [sf.titles[doc_ids[j]] for j in pick]
        t_vecs = cached_embeddings(base, weights, titles, name="scifact-titles")
        t_hits = top_k(t_vecs, doc_vecs[allowed], depth + 1)
        for row, j in enumerate(pick):
            negs = [sf.bodies[doc_ids[allowed[k]]] for k in t_hits[row] if allowed[k] != j][:depth]
            groups.append((sf.titles[doc_ids[j]], sf.bodies[doc_ids[j]], negs))
    n_neg = int(spec.get("negatives", 3))
    max_len = spec["max_length"]
    per_step = max(1, spec["batch_size"] // (1 + n_neg))  # queries per step

    def encode(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
        return dict(
            tok(
                [a for a, _ in pairs],
                [b for _, b in pairs],
                truncation="only_second",
                max_length=max_len,
                padding=True,
                return_tensors="pt",
            )
        )

    def epoch(rng: random.Random) -> list[Any]:
        order = list(range(len(groups)))
        rng.shuffle(order)
        out = []
        for s in range(0, len(order), per_step):
            pairs = []
            for g in order[s : s + per_step]:
                query, pos, negs = groups[g]
                pairs += [(query, pos)] + [(query, n) for n in rng.sample(negs, min(n_neg, len(negs)))]
            out.append((pairs, 1 + n_neg))
        return out

    def loss(model: Any, item: Any) -> Any:
        pairs, size = item
        logits = model(**encode(pairs)).logits.reshape(-1, size)
        return torch.nn.functional.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long))

    def evaluate(model: Any) -> dict[str, Any]:
        depth_eval = int(spec.get("dev_depth", 20))
        qrels = {q: sf.train[q] for q in dev_q}
        first = {q: [doc_ids[j] for j in hits[q_index[q]][:depth_eval]] for q in dev_q}
        pairs = [(sf.queries[q], sf.corpus[d]) for q in dev_q for d in first[q]]
        encoded = [encode(pairs[s : s + 32]) for s in range(0, len(pairs), 32)]
        scores = np.concatenate([lg.reshape(-1).numpy() for lg in _predict(model, encoded)])
        reranked, k = {}, 0
        for q in dev_q:
            s = scores[k : k + len(first[q])]
            k += len(first[q])
            reranked[q] = [first[q][i] for i in np.argsort(-s, kind="stable")]
        return {
            "ndcg@10": ndcg_at_k(reranked, qrels),
            "bi_encoder_ndcg@10": ndcg_at_k(first, qrels),
            "dev_queries": len(dev_q),
            "dev_depth": depth_eval,
        }

    info = {
        "train": f"SciFact train claims ({len(fit_q)}) with their relevant abstracts"
        + (f" + {n_titles} corpus titles as pseudo-queries" if n_titles else "")
        + f", {n_neg} hard negatives each from the bi-encoder's top {depth}",
        "dev": f"{len(dev_q)} held-out SciFact train claims, bi-encoder top "
        f"{spec.get('dev_depth', 20)} reranked",
        "groups": len(groups),
    }
    return Prepared(("relevance",), "sequence", epoch, loss, evaluate, info)


DATASETS: Mapping[str, Callable[..., Prepared]] = {
    "sst2": prepare_sst2,
    "conll2003": prepare_conll,
    "nli": prepare_nli,
    "scifact": prepare_scifact,
}


# ---------------------------------------------------------------- the training step


def train_spec(params: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest's ``conversion.train`` with the defaults filled in."""
    spec = {**DEFAULTS, **dict(params.get("train", {}))}
    if spec.get("dataset") not in DATASETS:
        raise BuildError(
            f"conversion.train.dataset must be one of {sorted(DATASETS)}, got {spec.get('dataset')!r}"
        )
    return spec


def _schedule(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def _optimizer(model: Any, spec: Mapping[str, Any]) -> Any:
    import torch

    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(p)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": spec["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=spec["lr"],
    )


@dataclass(frozen=True)
class _Run:
    """What the steps of a training did (over every interrupted and resumed part of it)."""

    done: int
    total: int
    per_epoch: int
    stopped_early: bool
    train_s: float
    train_cpu_s: float
    resumed_from: list[int]
    checkpoint: Path


def _train_steps(
    job: Job, spec: Mapping[str, Any], model: Any, prepared: Prepared, rng: random.Random, *, budget_s: float
) -> _Run:
    """The optimizer steps, resumed from a checkpoint where an earlier try left one; saves checkpoints."""
    import torch

    epoch_rng = rng.getstate()
    batches = prepared.epoch(rng)
    per_epoch = len(batches)
    total = int(spec["max_steps"]) or int(math.ceil(per_epoch * float(spec["epochs"])))
    epochs = math.ceil(total / per_epoch)
    warmup = int(total * float(spec["warmup"]))
    opt = _optimizer(model, spec)
    base_lrs = [g["lr"] for g in opt.param_groups]
    inputs = {"train": training_inputs(job.params), "source": str(job.weights), "torch": torch.__version__}
    ckpt_path = checkpoint.path_for(job.model_id, inputs)
    state = checkpoint.load(ckpt_path, total=total, per_epoch=per_epoch)
    first, running, before_s, before_cpu, resumed = 0, 0.0, 0.0, 0.0, []
    if state is not None:
        model.load_state_dict(state.model)
        opt.load_state_dict(state.optimizer)
        rng.setstate(state.epoch_rng)
        epoch_rng, batches = state.epoch_rng, prepared.epoch(rng)  # the current epoch's batches again
        torch.set_rng_state(state.torch_rng)
        first, running = state.step, state.running_loss
        before_s, before_cpu = state.train_s, state.train_cpu_s
        resumed = [*state.resumed_from, state.step]
        log(f"{job.model_id}: resuming the training at step {first}/{total} from its checkpoint")
    log(
        f"{job.model_id}: training {total} steps ({total / per_epoch:.2f} epochs of {per_epoch} batches, "
        f"{prepared.info['train']}); stops at {spec['max_minutes']} minutes at most"
    )
    done, stopped_early = first, False
    t_train, cpu_train = time.monotonic(), time.process_time()
    deadline = t_train + budget_s - before_s
    schedule = checkpoint.Schedule(checkpoint.every_s())

    def save() -> None:
        checkpoint.save(
            ckpt_path,
            checkpoint.State(
                done,
                total,
                per_epoch,
                model.state_dict(),
                opt.state_dict(),
                torch.get_rng_state(),
                epoch_rng,
                running,
                before_s + time.monotonic() - t_train,
                before_cpu + time.process_time() - cpu_train,
                resumed,
            ),
        )
        schedule.saved()

    bar = None if reporting() else progress(total, f"train {job.model_id}", unit="step")
    with checkpoint.stop_on_signals(schedule):
        for step in range(first, total):
            if step and step % per_epoch == 0:
                epoch_rng = rng.getstate()
                batches = prepared.epoch(rng)
            scale = _schedule(step, total, warmup)
            for g, lr in zip(opt.param_groups, base_lrs, strict=True):
                g["lr"] = lr * scale
            loss = prepared.loss(model, batches[step % per_epoch])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            done += 1
            value = float(loss.detach())
            running = 0.98 * running + 0.02 * value if step else value
            where = f"epoch {step // per_epoch + 1}/{epochs}, step {step % per_epoch + 1}/{per_epoch}"
            report("training", f"{where}, loss {running:.3f}", done, total)
            if bar is not None:
                bar.set_postfix(loss=f"{running:.3f}", refresh=False)
                bar.update(1)
            if time.monotonic() > deadline:
                stopped_early = True
                log(f"{job.model_id}: reached max_minutes ({spec['max_minutes']}) after {done}/{total} steps")
                break
            if done < total and schedule.due():
                save()
                if schedule.stop_requested:
                    raise checkpoint.Stop(
                        f"{job.model_id}: training stopped at step {done}/{total}; "
                        "its checkpoint is saved and the next build resumes it"
                    )
    if bar is not None:
        bar.close()
    return _Run(
        done,
        total,
        per_epoch,
        stopped_early,
        before_s + time.monotonic() - t_train,
        before_cpu + time.process_time() - cpu_train,
        resumed,
        ckpt_path,
    )


def train(job: Job, dest: Path) -> dict[str, Any]:
    """Fine-tune the source encoder as ``job.params["train"]`` says; write the HF folder into ``dest``."""
    import numpy as np
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
        AutoTokenizer,
    )
    from transformers.utils import logging as hf_logging

    spec = train_spec(job.params)
    files = task_data.verified_files(spec["files"])
    started = time.monotonic()
    threads = train_threads()
    torch.set_num_threads(threads)
    random.seed(spec["seed"])
    np.random.seed(spec["seed"])
    torch.manual_seed(spec["seed"])
    rng = random.Random(spec["seed"])
    tok = AutoTokenizer.from_pretrained(str(job.source))
    report("preparing", f"{job.model_id}: tokenizing the training data")
    extra = {"base": job.source, "weights": job.weights} if spec["dataset"] == "scifact" else {}
    prepared = DATASETS[spec["dataset"]](tok, files, spec, rng, **extra)
    labels = prepared.labels
    cls = AutoModelForTokenClassification if prepared.head == "token" else AutoModelForSequenceClassification
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "newly initialized: classifier.*" is the point here
    try:
        model = cls.from_pretrained(
            str(job.source),
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={n: i for i, n in enumerate(labels)},
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    if spec["freeze_embeddings"]:
        model.base_model.embeddings.word_embeddings.weight.requires_grad_(False)
    model.train()
    run = _train_steps(
        job,
        spec,
        model,
        prepared,
        rng,
        budget_s=60.0 * float(spec["max_minutes"]) - (time.monotonic() - started),
    )
    done, total, per_epoch, stopped_early = run.done, run.total, run.per_epoch, run.stopped_early
    train_s, train_cpu_s = run.train_s, run.train_cpu_s
    report("evaluating", f"{job.model_id} on {prepared.info['dev']}")
    t_eval = time.monotonic()
    metrics = prepared.evaluate(model)
    metric_name = spec.get("metric") or next(iter(metrics))
    reached = float(metrics[metric_name])
    model.save_pretrained(str(dest), safe_serialization=True)
    for name in TOKENIZER_FILES:  # the base model's tokenizer, byte for byte
        if (job.source / name).exists():
            shutil.copyfile(job.source / name, dest / name)
    result = {
        "dataset": spec["dataset"],
        "trained_on": prepared.info["train"],
        "dev": prepared.info["dev"],
        "metric": metric_name,
        "value": round(reached, 4),
        "dev_metrics": _rounded(metrics),
        "steps": done,
        "planned_steps": total,
        "epochs": round(done / per_epoch, 3),
        "stopped_early": stopped_early,
        "seed": spec["seed"],
        "threads": threads,
        "train_minutes": round(train_s / 60, 2),
        "train_cpu_minutes": round(train_cpu_s / 60, 2),
        "eval_minutes": round((time.monotonic() - t_eval) / 60, 2),
        "total_minutes": round((time.monotonic() - started) / 60, 2),
        "torch": torch.__version__,
        **({"resumed_from_steps": run.resumed_from} if run.resumed_from else {}),
    }
    (dest / TRAINING_FILE).write_text(json.dumps(result, indent=2) + "\n")
    log(
        f"{job.model_id}: {metric_name} {reached:.4f} on {prepared.info['dev']} after {done} steps "
        f"in {train_s / 60:.1f} min"
    )
    if reached < float(spec["min_metric"]):
        raise BuildError(
            f"{job.model_id}: {metric_name} {reached:.4f} is below the manifest's min_metric "
            f"{spec['min_metric']}",
            hint="the training did not reach the quality the manifest asks for: check the data files and "
            "the hyper-parameters (and that max_minutes did not cut it short)",
        )
    checkpoint.remove(run.checkpoint)
    return result


def train_threads() -> int:
    """Torch threads for a training: ``HYBRID_ROUTER_TRAIN_THREADS``, else every core of this machine."""
    explicit = os.environ.get("HYBRID_ROUTER_TRAIN_THREADS", "").strip()
    if explicit:
        return max(1, int(explicit))
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def _rounded(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}


def reference(job: Job, dest: Path) -> None:
    train(job, dest)


def export(job: Job, reference_dir: Path, out: Path) -> None:
    encoder.export(job, reference_dir, out)
    shutil.copyfile(reference_dir / TRAINING_FILE, out / TRAINING_FILE)


#: bump when the training code changes what it trains (it keys the trained folder, with the ``train`` params)
TRAIN_REVISION = 1


def training_inputs(conversion: Mapping[str, Any]) -> dict[str, Any]:
    """What the trained weights depend on: the head (``task``), ``train`` and the training code's revision
    (not the export's dtypes: changing a quantization re-exports without retraining)."""
    train = {k: v for k, v in dict(conversion.get("train") or {}).items() if k != "threads"}
    return {"task": conversion.get("task"), "train": train, "revision": TRAIN_REVISION}


RECIPE = Recipe(
    name="finetune-encoder",
    export=export,
    reference=reference,
    tools=encoder.RECIPE.tools,
    reproducible=False,
    reference_inputs=training_inputs,
    reference_tools=("torch", "transformers", "tokenizers", "numpy"),
)
