"""The harness's command line (docs/quality.md).

python -m eval.quality run        answers (new ones generated), verdicts, tables, curves, the plot
python -m eval.quality generate   only the device's answers (into the answer cache)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from eval.quality import sets
from eval.quality.generate import cache_root

DOCS_PLOT = sets.ROOT / "docs" / "quality-curves.svg"
TITLES = {"ifeval": "IFEval", "gsm8k": "GSM8K", "mmlu": "MMLU", "humaneval": "HumanEval"}


def _generate(args: argparse.Namespace) -> None:
    from eval.quality.generate import chat_models
    from eval.quality.runner import answers

    loaded = sets.load(args.sets, args.n, Path(args.data))
    if args.cloud_tier:  # the default cloud tier's answers only
        from eval.quality import cloud_tier

        for name in args.sets:
            got, seconds, new = cloud_tier.answers(loaded[name], threads=args.threads)
            print(f"{cloud_tier.ROW_ID} {name}: {len(got)} answers, {new} new in {seconds:.0f} s", flush=True)
        return
    for model in chat_models(args.models or None):
        for name in args.sets:
            got, seconds, new = answers(model, loaded[name], threads=args.threads)
            print(f"{model.id} {name}: {len(got)} answers, {new} new in {seconds:.0f} s", flush=True)


def _f(x: float | None) -> str:
    from eval.quality.report import pct

    return "–" if x is None else pct(x)


def _run(args: argparse.Namespace) -> None:
    from eval.quality import report
    from eval.quality.curves import router_scores
    from eval.quality.generate import AnswerCache, chat_models
    from eval.quality.runner import answers
    from eval.quality.svg import Panel, plot

    t_start = time.perf_counter()
    loaded = sets.load(args.sets, args.n, Path(args.data))
    models = chat_models(args.models or None)
    if not models:
        sys.exit(
            "error: no on-device chat model is built (./hr build, or python -m builder all --models <id>)"
        )
    quality: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    gen_seconds = 0.0
    answered: list[tuple[Any, str, list[sets.Item], dict[str, Any]]] = []
    for model in models:
        for name in args.sets:
            items = loaded[name]
            if args.no_generate:  # the answers in the cache only (a partial subset says its n)
                cache = AnswerCache(model)
                got = {i.id: a for i in items if (a := cache.get(i.prompt, i.max_tokens)) is not None}
                items = [i for i in items if i.id in got]
            else:
                got, seconds, _ = answers(model, items, threads=args.threads)
                gen_seconds += seconds
            if items:
                answered.append((model, name, items, got))
    scored = list({i.id: i for _, _, items, _ in answered for i in items}.values())
    t0 = time.perf_counter()
    scores = router_scores([i.prompt for i in scored])
    route_seconds = time.perf_counter() - t0
    by_id = dict(zip([i.id for i in scored], scores.scores, strict=True))
    for model, name, items, got in answered:
        verdicts = [report.verdict(i, got[i.id].text) for i in items]
        quality.append(
            {
                "model": model.id,
                "dtype": model.dtype,
                "set": name,
                **report.set_quality(name, items, verdicts, got),
            }
        )
        sub = dataclasses.replace(scores, scores=tuple(by_id[i.id] for i in items))
        curves.append({"model": model.id, **report.curve_rows(name, items, verdicts, sub)})
    if args.cloud_tier:
        gen_seconds += _cloud_tier_rows(args, loaded, quality)
    _print_tables(quality, curves, scores)
    panels = []
    for name in args.sets:
        rows = [c for c in curves if c["set"] == name]
        if not rows:
            continue
        recorded = rows[0]["cloud_recorded"]
        same_n = len({r["n"] for r in rows}) == 1  # else each curve's label says its n
        sub = ("cloud: GPT-4's recorded verdicts" if recorded else "cloud: assumed to pass every prompt") + (
            (f"; n={rows[0]['n']}" if same_n else "")
            + (
                "; router trained on these"
                if rows[0]["in_router_training"] > 0.5
                else "; held out from the router"
            )
        )
        panels.append(
            Panel(
                TITLES[name],
                sub,
                [(r["model"] if same_n else f"{r['model']} (n={r['n']})", r["curve"]) for r in rows],
                rows[0]["random"],
                [(r["default_share"], r["default_quality"]) for r in rows],
            )
        )
    if args.plot:
        Path(args.plot).write_text(plot(panels), encoding="utf-8")
        print(f"\nplot: {args.plot}")
    out = cache_root() / "results" / "quality.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    strip = [{k: v for k, v in c.items() if k not in ("curve", "random")} for c in curves]
    out.write_text(
        json.dumps(
            {"quality": quality, "curves": strip, "router": scores.version, "threshold": scores.threshold},
            indent=1,
            default=str,
        ),
        encoding="utf-8",
    )
    print(f"results: {out}")
    print(
        f"time: {time.perf_counter() - t_start:.0f} s in all ({gen_seconds:.0f} s generating new answers, "
        f"{route_seconds:.0f} s scoring {len(scored)} prompts with the router)"
    )


def _cloud_tier_rows(
    args: argparse.Namespace, loaded: dict[str, list[sets.Item]], quality: list[dict[str, Any]]
) -> float:
    """The default cloud tier's quality rows (``eval/quality/cloud_tier.py``); the seconds generating."""
    from eval.quality import cloud_tier, report
    from eval.quality.generate import AnswerCache

    seconds = 0.0
    for name in args.sets:
        items = loaded[name]
        if args.no_generate:
            cache = AnswerCache(cloud_tier.model())
            got = {i.id: a for i in items if (a := cache.get(i.prompt, i.max_tokens)) is not None}
        else:
            got, spent, _ = cloud_tier.answers(items, threads=args.threads)
            seconds += spent
        items = [i for i in items if i.id in got]
        if items:
            verdicts = [report.verdict(i, got[i.id].text) for i in items]
            quality.append(
                {
                    "model": cloud_tier.LABEL,
                    "dtype": "Q4_K_M",
                    "set": name,
                    **report.set_quality(name, items, verdicts, got),
                }
            )
    return seconds


def _print_tables(quality: list[dict[str, Any]], curves: list[dict[str, Any]], scores: Any) -> None:
    print("\n| set | model (dtype) | n | device passes | cut at the token limit | cloud (GPT-4, recorded) |")
    print("|---|---|---:|---:|---:|---:|")
    for q in quality:
        extra = ""
        if q["set"] == "ifeval":
            extra = (
                f" (prompt strict {_f(q['prompt_strict'])}, loose {_f(q['prompt_loose'])}; "
                f"instruction strict {_f(q['instruction_strict'])}, loose {_f(q['instruction_loose'])})"
            )
        print(
            f"| {TITLES[q['set']]} | {q['model']} ({q['dtype']}) | {q['n']} | {_f(q['pass'])}{extra} | "
            f"{_f(q['cut_at_limit'])} | {_f(q['cloud'])} |"
        )
    print(f"\nrouter {scores.version}, head {scores.head}, shipped threshold {scores.threshold:.3f}\n")
    print(
        "| set | model | n | cloud verdicts | router trained on them | APGR (random 0.50) | CPT(50%) "
        "| CPT(80%) | shipped threshold: cloud share, quality, PGR |"
    )
    print("|---|---|---:|---|---:|---:|---:|---:|---|")
    for c in curves:
        print(
            f"| {TITLES[c['set']]} | {c['model']} | {c['n']} | "
            f"{'GPT-4 recorded' if c['cloud_recorded'] else 'assumed pass'} | "
            f"{_f(c['in_router_training'])} | {c['apgr']:.3f} | {_f(c['cpt50'])} | {_f(c['cpt80'])} | "
            f"{_f(c['default_share'])}, {_f(c['default_quality'])}, {c['default_pgr']:.2f} |"
        )
    for model in dict.fromkeys(c["model"] for c in curves):
        mine = [c for c in curves if c["model"] == model]
        for label, rows in (
            ("all sets", mine),
            ("recorded cloud verdicts", [c for c in mine if c["cloud_recorded"]]),
        ):
            if rows:
                n = len(rows)
                print(
                    f"| average, {label} | {model} | | | | {sum(c['apgr'] for c in rows) / n:.3f} | "
                    f"{_f(sum(c['cpt50'] for c in rows) / n)} | {_f(sum(c['cpt80'] for c in rows) / n)} | "
                    f"{_f(sum(c['default_share'] for c in rows) / n)}, "
                    f"{_f(sum(c['default_quality'] for c in rows) / n)}, "
                    f"{sum(c['default_pgr'] for c in rows) / n:.2f} |"
                )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m eval.quality",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "generate"):
        p = sub.add_parser(name)
        p.add_argument("--sets", nargs="+", default=list(sets.SETS), choices=sets.SETS)
        p.add_argument(
            "--n", type=int, help="prompts per set (a seeded, stable subset; default: sets.DEFAULT_N)"
        )
        p.add_argument("--models", nargs="*", help="chat model ids (default: every built one)")
        p.add_argument("--data", default=str(sets.DEFAULT_DATA))
        p.add_argument(
            "--cloud-tier",
            action="store_true",
            help="the default cloud tier (llama-server, Qwen2.5-Coder-0.5B-Instruct): "
            + ("a row of its own, a stand-in" if name == "run" else "its answers only"),
        )
        p.add_argument(
            "--threads", type=int, default=1, help="onnxruntime threads (default 1: a shared machine)"
        )
        if name == "run":
            p.add_argument("--plot", default=str(DOCS_PLOT), help="where the SVG goes ('' for none)")
            p.add_argument("--no-generate", action="store_true", help="only the answers already in the cache")
    args = parser.parse_args(argv)
    if not Path(args.data, "routellm").is_dir():
        sys.exit(f"error: {args.data} is not the shared data folder (no routellm/ in it); pass --data")
    {"run": _run, "generate": _generate}[args.command](args)
