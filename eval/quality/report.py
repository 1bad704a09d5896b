"""Verdicts on every answer, the quality table per set and model, and the curves of the prompt router.

The cloud side's verdicts: GPT-4's (``gpt-4-1106-preview``, recorded by RouteLLM) on gsm8k and mmlu.
ifeval and humaneval have no recorded frontier answers: on their curves the cloud is taken to pass every
prompt (an upper bound, named as such in every table), so APGR there measures how well the router finds
the prompts the device fails.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eval.quality import curves as C
from eval.quality import scorers
from eval.quality.generate import Answer
from eval.quality.sets import Item


@dataclass(frozen=True)
class Verdict:
    passed: bool
    detail: Mapping[str, Any] = field(default_factory=dict)


def verdict(item: Item, answer: str) -> Verdict:
    """The automatic verdict on the device's ``answer`` to ``item`` (ifeval: strict, prompt level)."""
    ref = item.reference
    if item.set == "gsm8k":
        return Verdict(
            scorers.gsm8k_correct(answer, str(ref["answer"])), {"got": scorers.gsm8k_number(answer)}
        )
    if item.set == "mmlu":
        return Verdict(scorers.mmlu_correct(answer, str(ref["answer"])), {"got": scorers.mmlu_letter(answer)})
    if item.set == "humaneval":
        program = scorers.humaneval_program(str(ref["prompt"]), answer, str(ref["entry_point"]))
        return Verdict(scorers.humaneval_passes(program, str(ref["test"]), str(ref["entry_point"])))
    if item.set == "ifeval":
        v = scorers.ifeval_verdict(item.prompt, ref["instruction_id_list"], ref["kwargs"], answer)
        return Verdict(v.strict, {"loose": v.loose, "instructions": v.instructions})
    raise ValueError(f"unknown set {item.set!r}")


def cloud_verdicts(items: Sequence[Item]) -> tuple[list[bool], bool]:
    """The cloud's verdict per item, and whether they are recorded (False: assumed to pass)."""
    recorded = all(i.cloud is not None for i in items)
    return [bool(i.cloud) if recorded else True for i in items], recorded


def pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f}%"


def set_quality(
    name: str, items: Sequence[Item], verdicts: Sequence[Verdict], got: Mapping[str, Answer]
) -> dict[str, Any]:
    """The device's figures on one set (ifeval: the four IFEval metrics)."""
    n = len(items)
    row: dict[str, Any] = {
        "n": n,
        "pass": sum(v.passed for v in verdicts) / n,
        "cut_at_limit": sum(got[i.id].finish_reason == "length" for i in items) / n,
        "mean_tokens": sum(got[i.id].tokens for i in items) / n,
    }
    if name == "ifeval":
        instr = [x for v in verdicts for x in v.detail["instructions"]]
        row.update(
            prompt_strict=row["pass"],
            prompt_loose=sum(bool(v.detail["loose"]) for v in verdicts) / n,
            instruction_strict=sum(s for _, s, _ in instr) / len(instr),
            instruction_loose=sum(lo for _, _, lo in instr) / len(instr),
        )
    cloud, recorded = cloud_verdicts(items)
    row["cloud"] = sum(cloud) / n if recorded else None
    return row


def curve_rows(
    name: str, items: Sequence[Item], verdicts: Sequence[Verdict], scores: C.RouterScores
) -> dict[str, Any]:
    cloud, recorded = cloud_verdicts(items)
    device = [v.passed for v in verdicts]
    c = C.curve(scores.scores, device, cloud)
    r = C.random_curve(device, cloud)
    share, quality = c.at(scores.threshold)
    pgr = (quality - c.device) / c.gap if c.gap > 0 else float("nan")
    return {
        "set": name,
        "n": len(items),
        "cloud_recorded": recorded,
        "curve": c,
        "random": r,
        "device": c.device,
        "cloud": c.cloud,
        "apgr": c.apgr(),
        "cpt50": c.cpt(0.5),
        "cpt80": c.cpt(0.8),
        "random_apgr": r.apgr(),
        "default_share": share,
        "default_quality": quality,
        "default_pgr": pgr,
        "in_router_training": sum(i.in_router_training for i in items) / len(items),
    }
