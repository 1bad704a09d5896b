"""The semantic response cache: how often a paraphrase is answered from it, how often the wrong answer is,
and what a hit saves, in a real browser (Chromium; the router's own embedding model, all-MiniLM-L6-v2, in
its worker).

**Accuracy** on the STS benchmark (``../shared/data/stsb``: sentence pairs scored 0-5 by people; a pair
scored >= 4 ("mostly equivalent" or better) is a *duplicate*, one the same answer serves). Every sentence
is embedded by the router's embedding model on its own ONNX file and dtype, in onnxruntime in CPython
(thousands of sentences; a 2-core machine's browser takes too long), and a sample of them by the router in
the browser (``router.embed``, the vectors the cache compares) to check they are the same (the run stops
if they differ by more than ``MAX_GAP``); then the cache's own core
(:mod:`hybrid_router.response_cache`) is run in CPython on them: each pair's first sentence is stored, the
second one asked. A *hit* is an answer from the cache; it is *right* when the stored question it matched
is the same text or a duplicate by the benchmark's scores (its own pair's, or another scored pair's), a
*false hit* otherwise (a pair of sentences no person scored counts as false). Per
threshold: precision (right / hits), recall (the duplicate pairs answered right / duplicates), false hits per
100 questions. The
default threshold is the lowest whose precision on the train split reaches :data:`TARGET_PRECISION`,
then reported on the dev split (not used to choose).

**Time**: one question answered on the device (SmolLM2, a miss: the embedding, the answer and the store)
then a paraphrase of it (a hit), whole and streamed, through ``HybridRouter.create({ cache })`` and its
IndexedDB store.

``--smoke``: a dozen hand-written pairs (no ../shared/data needed) and a 8-token answer.
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tests.harness import REPO, open_router_page, with_test_chat_model

from bench.common import evaluate, header, server_and_browser, table
from bench.embeddings import MODEL, NativeEncoder, _model_folder
from hybrid_router.response_cache import DEFAULT_SIMILARITY, best_match

STSB = REPO.parent / "shared" / "data" / "stsb"
#: a pair scored at least this (0-5) is a duplicate: "mostly equivalent" or better
DUPLICATE_SCORE = 4.0
#: the precision the default threshold must reach on the train split
TARGET_PRECISION = 0.80
#: sentences embedded in the browser too, to check the native vectors are the device's
BROWSER_SAMPLE = 64
MAX_GAP = 1e-4
THRESHOLDS = tuple(round(0.70 + 0.01 * i, 2) for i in range(30))
TRAIN_PAIRS = 1500
#: --smoke: pairs with their 0-5 score (written for the bench)
SMOKE_PAIRS = [
    ("What is the capital of France?", "What's the capital city of France?", 5.0),
    ("How do I reset my password?", "How can I reset my password?", 5.0),
    ("Write a haiku about autumn.", "Write a haiku about the autumn season.", 4.6),
    ("What is 12 times 7?", "What is 12 multiplied by 7?", 5.0),
    ("How tall is Mount Everest?", "How tall is the Eiffel Tower?", 1.0),
    ("Translate 'good morning' into Spanish.", "Translate 'good night' into Spanish.", 2.0),
    ("Who wrote Pride and Prejudice?", "Who is the author of Pride and Prejudice?", 5.0),
    ("What is the boiling point of water?", "What is the freezing point of water?", 1.5),
    ("Give me a recipe for pancakes.", "Give me a recipe for waffles.", 2.2),
    ("Explain photosynthesis simply.", "Explain photosynthesis in simple terms.", 4.8),
]
#: the timed pair: no names or places in it (a prompt the entity model finds one in is never stored)
QUESTION = "How do I reset my password?"
PARAPHRASE = "How can I reset my password?"

EMBED = """async ({ texts }) => {
  const { HybridRouter } = await import("/hybrid-router.js");
  window.router ??= await HybridRouter.create({});
  const out = [];
  for (let i = 0; i < texts.length; i += 64) {
    out.push(...(await window.router.embed(texts.slice(i, i + 64))).vectors);
  }
  return out;
}"""

TIMED = """async ({ options, question, paraphrase, maxTokens }) => {
  const { HybridRouter } = await import("/hybrid-router.js");
  window.router?.terminate();  // the embedding run's router: one worker at a time
  const router = await HybridRouter.create(options);
  await router.clearCache();
  await router.embed(["warm up"]);
  const ask = { maxTokens, route: "local" };
  await router.generate({ prompt: "Say hello.", ...ask, cache: false });  // loads the chat model
  const time = async (fn) => {
    const t0 = performance.now();
    const r = await fn();
    return [performance.now() - t0, r];
  };
  const [missMs, miss] = await time(() => router.generate({ prompt: question, ...ask }));
  const [hitMs, hit] = await time(() => router.generate({ prompt: paraphrase, ...ask }));
  const [streamMs, chunks] = await time(async () => {
    const out = [];
    for await (const c of router.stream({ prompt: paraphrase, ...ask })) out.push(c);
    return out;
  });
  const stats = (await router.stats()).cache;
  router.terminate();
  return { missMs, hitMs, streamMs, miss: miss.route, hit: hit.route, streamed: chunks.length - 1,
    replayed: chunks[chunks.length - 1].route, stats };
}"""


def _default_dtype() -> str:
    from builder.models import load_manifest

    return next(m.default_dtype for m in load_manifest().models if m.id == MODEL)


def _pairs(path: Path) -> list[tuple[str, str, float]]:
    out = []
    with path.open(encoding="utf-8") as f:
        for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) >= 7:
                out.append((row[5], row[6], float(row[4])))
    return out


def evaluate_cache(
    pairs: Sequence[tuple[str, str, float]], vectors: dict[str, np.ndarray]
) -> list[dict[str, float]]:
    """Store every pair's first sentence, ask every second one (the cache's own match), per threshold. A
    hit is right when the question it matched is the same text, or a duplicate of it by the benchmark's
    scores (its own pair's or another scored pair's); a pair of sentences no person scored counts as wrong."""
    firsts = list(dict.fromkeys(a for a, _, _ in pairs))
    rows = np.stack([vectors[a] for a in firsts]).astype(np.float32)
    scores = {(a, b): s for a, b, s in pairs} | {(b, a): s for a, b, s in pairs}
    duplicates = sum(1 for _, _, s in pairs if s >= DUPLICATE_SCORE)
    best = []  # the match of each question at any threshold: the most similar stored question
    for _, b, score in pairs:
        found = best_match(vectors[b], firsts, rows, -1.0)
        assert found is not None
        ok = found[0] == b or scores.get((found[0], b), 0.0) >= DUPLICATE_SCORE
        best.append((found[1], ok, ok and score >= DUPLICATE_SCORE))
    curve = []
    for threshold in THRESHOLDS:
        hits = sum(1 for similarity, _, _ in best if similarity >= threshold)
        right = sum(1 for similarity, ok, _ in best if similarity >= threshold and ok)
        caught = sum(1 for similarity, _, dup in best if similarity >= threshold and dup)
        curve.append(
            {
                "threshold": threshold,
                "questions": len(pairs),
                "duplicates": duplicates,
                "hits": hits,
                "right": right,
                "false": hits - right,
                "precision": right / hits if hits else 1.0,
                "recall": caught / duplicates if duplicates else 0.0,
                "false_per_100": 100.0 * (hits - right) / len(pairs),
            }
        )
    return curve


def choose(curve: Sequence[dict[str, float]]) -> float | None:
    """The lowest threshold whose precision reaches the target."""
    return next((c["threshold"] for c in curve if c["precision"] >= TARGET_PRECISION and c["hits"]), None)


def run(argv: Sequence[str] = ()) -> None:
    parser = argparse.ArgumentParser(prog="./hr bench response_cache")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--train-pairs", type=int, default=TRAIN_PAIRS)
    args = parser.parse_args(list(argv))
    header("response cache: paraphrases answered from the cache (STS benchmark), and what a hit saves")
    if args.smoke:
        splits = {"smoke": list(SMOKE_PAIRS)}
    else:
        if not STSB.is_dir():
            raise SystemExit(f"./hr bench response_cache needs the STS benchmark in {STSB} (or --smoke)")
        train = _pairs(STSB / "sts-train.csv")
        random.Random(0).shuffle(train)
        splits = {"train": train[: args.train_pairs], "dev": _pairs(STSB / "sts-dev.csv")}
    texts = sorted({t for pairs in splits.values() for a, b, _ in pairs for t in (a, b)})
    with server_and_browser() as (server, browser):
        rp = open_router_page(browser, server, create=False)
        native = NativeEncoder(_model_folder(), _default_dtype())
        vectors = dict(zip(texts, native.embed(texts), strict=True))
        sample = texts[:: max(1, len(texts) // BROWSER_SAMPLE)][:BROWSER_SAMPLE]
        browser_rows = np.asarray(evaluate(rp.page, EMBED, {"texts": sample}), np.float32)
        gap = float(np.abs(browser_rows - np.stack([vectors[t] for t in sample])).max())
        if gap > MAX_GAP:
            raise SystemExit(f"the browser's vectors differ from onnxruntime's by {gap:.2e} (> {MAX_GAP})")
        options = with_test_chat_model(server, {"cache": True})
        timed = evaluate(
            rp.page,
            TIMED,
            {
                "options": options,
                "question": QUESTION,
                "paraphrase": PARAPHRASE,
                "maxTokens": 8 if args.smoke else 48,
            },
        )
        rp.page.context.close()
    first = next(iter(splits))
    curves = {name: evaluate_cache(pairs, vectors) for name, pairs in splits.items()}
    chosen = choose(curves[first])
    print(
        f"\n{len(texts)} sentences embedded by onnxruntime (CPython) on the router's ONNX file "
        f"({_default_dtype()}); {len(sample)} of them also by the router in the browser: "
        f"largest difference {gap:.1e}"
    )
    print(f"duplicates: pairs scored >= {DUPLICATE_SCORE} of 5")
    print(
        f"threshold reaching precision {TARGET_PRECISION:.0%} on {first}: {chosen}; "
        f"the default (response_cache/policy.py DEFAULT_SIMILARITY): {DEFAULT_SIMILARITY}"
    )
    for name, curve in curves.items():
        shown = [
            c
            for c in curve
            if round(c["threshold"] * 100) % 2 == 0 or c["threshold"] in (chosen, DEFAULT_SIMILARITY)
        ]
        table(
            [
                ("threshold", 10),
                ("questions", 10),
                ("duplicates", 10),
                ("hits", 6),
                ("right", 6),
                ("false", 6),
                ("precision %", 11),
                ("recall %", 9),
                ("false/100", 9),
            ],
            [
                [
                    f"{c['threshold']:.2f}" + (" *" if c["threshold"] == DEFAULT_SIMILARITY else ""),
                    c["questions"],
                    c["duplicates"],
                    c["hits"],
                    c["right"],
                    c["false"],
                    100 * c["precision"],
                    100 * c["recall"],
                    c["false_per_100"],
                ]
                for c in shown
            ],
            title=f"response cache accuracy ({name})",
        )
    stats = timed["stats"]
    print(f"\nstats().cache: {stats}")
    print(
        f"the paraphrase: similarity {(timed['hit'].get('cache') or {}).get('similarity', 0):.3f}, "
        f"answered from the cache: {timed['hit']['target'] == 'cache'}; "
        f"stream replayed in {timed['streamed']} pieces"
    )
    table(
        [("call", 44), ("target", 8), ("ms", 9)],
        [
            ["miss: embed + answer on the device + store", timed["miss"]["target"], timed["missMs"]],
            ["hit: the paraphrase, whole", timed["hit"]["target"], timed["hitMs"]],
            ["hit: the paraphrase, streamed", timed["replayed"]["target"], timed["streamMs"]],
            [
                "time saved per hit (stats().cache.saved_ms/hits)",
                "",
                stats["saved_ms"] / max(stats["hits"], 1),
            ],
        ],
        title="response cache time",
    )
    print(f"median hit {statistics.median([timed['hitMs'], timed['streamMs']]):.1f} ms")
