"""The answer sets of the quality harness: which prompts, with what reference, and the cloud's verdict.

Each set is read from the shared data folder (``../shared/data``; it exists in the repository's CI, not on a
user's machine) and cut to a deterministic subset: a seeded permutation of the eligible prompts, of which
the first ``n`` are taken (so ``--n 200`` extends the ``--n 100`` run, and the answer cache is reused).

- ``ifeval``: ``ifeval/input_data.jsonl`` (400 of IFEval's 541 prompts; the rest were kept back as a
  held-out set of the issue that asked for this harness). Prompts with an instruction that needs NLTK's
  Punkt data (``length_constraints:number_sentences``, ``change_case:capital_word_frequency``: not on the
  package registries) are left out, so every verdict is made by ``if-verifiable`` itself. No frontier
  model's answers are recorded for it: the cloud's verdict is unknown (None).
- ``gsm8k``: RouteLLM's ``gsm8k_responses.csv`` (the 1,319 test problems with GPT-4's correctness
  ``gpt-4-1106-preview``), the reference number from ``gsm8k/test.jsonl`` (after ``####``).
- ``mmlu``: RouteLLM's ``mmlu_responses/`` (GPT-4's correctness per question), the reference letter from
  ``mmlu/test/<subject>_test.csv`` (same rows, same order). The 30 questions per subject the router was
  trained on (``eval/router_data.py``) are not eligible.
- ``humaneval``: the 164 problems with their unit tests; no frontier verdict recorded (None).

RouteLLM's contaminated prompts are left out of gsm8k and mmlu (as ``eval/router_data.py`` does). Every
item says whether the learned router saw its prompt in training (``in_router_training``): gsm8k and
humaneval were part of it, ifeval and the eligible mmlu questions were not.
"""

from __future__ import annotations

import csv
import gzip
import json
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
SEED = 17
SETS = ("ifeval", "gsm8k", "mmlu", "humaneval")
#: the output budget of the device's answers per set (a multiple-choice letter needs few)
MAX_TOKENS = {"ifeval": 256, "gsm8k": 256, "mmlu": 16, "humaneval": 256}
#: IFEval instructions whose checker needs NLTK's Punkt data (not obtainable from the registries)
NEEDS_PUNKT = frozenset({"length_constraints:number_sentences", "change_case:capital_word_frequency"})
CLOUD_MODEL = "gpt-4-1106-preview"
#: prompts per set by default: what the first run could answer on a 2-core machine shared by eight busy
#: engineers (``--n`` takes more: the subsets only grow, and the answers already made are reused)
DEFAULT_N = {"ifeval": 60, "gsm8k": 60, "mmlu": 150, "humaneval": 40}


@dataclass(frozen=True)
class Item:
    """One prompt of a set: what the user sends, the reference its answer is checked against, and the
    recorded frontier model's verdict (None: none recorded)."""

    set: str
    id: str
    prompt: str
    reference: Mapping[str, Any] = field(default_factory=dict)
    cloud: bool | None = None
    in_router_training: bool = False

    @property
    def max_tokens(self) -> int:
        return MAX_TOKENS[self.set]


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def _contaminated(data: Path, name: str) -> set[str]:
    return {
        str(r["eval_prompt"]).strip()
        for r in _jsonl(data / "routellm" / f"{name}_contaminated_prompts.jsonl")
    }


def _verdict(value: str) -> bool | None:
    return {"True": True, "False": False}.get(value.strip())


def load_ifeval(data: Path) -> list[Item]:
    out = []
    for row in _jsonl(data / "ifeval" / "input_data.jsonl"):
        ids = [str(i) for i in row["instruction_id_list"]]
        if NEEDS_PUNKT & set(ids):
            continue
        ref = {"key": int(row["key"]), "instruction_id_list": ids, "kwargs": row["kwargs"]}
        out.append(Item("ifeval", f"ifeval/{row['key']}", str(row["prompt"]), ref))
    return out


def gsm8k_reference(answer: str) -> str:
    """The number after ``####`` in a GSM8K solution, without thousands separators."""
    return answer.rsplit("####", 1)[-1].strip().replace(",", "")


def load_gsm8k(data: Path) -> list[Item]:
    gold = {
        str(r["question"]).strip(): gsm8k_reference(str(r["answer"]))
        for r in _jsonl(data / "gsm8k" / "test.jsonl")
    }
    skip = _contaminated(data, "gsm8k")
    out = []
    with (data / "routellm" / "gsm8k_responses.csv").open(encoding="utf-8", newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            prompt = row["prompt"]
            if prompt.strip() in skip or prompt.strip() not in gold:
                continue
            ref = {"answer": gold[prompt.strip()]}
            out.append(Item("gsm8k", f"gsm8k/{i}", prompt, ref, _verdict(row[CLOUD_MODEL])))
    return out


def mmlu_prompt(question: str, options: Sequence[str]) -> str:
    """RouteLLM's MMLU prompt: the question, the four options lettered, then ``Answer:``."""
    return "\n".join(
        [question, *(f"{letter}. {o}" for letter, o in zip("ABCD", options, strict=True)), "Answer:"]
    )


def load_mmlu(data: Path) -> list[Item]:
    skip = _contaminated(data, "mmlu")
    out = []
    for path in sorted((data / "routellm" / "mmlu_responses").glob("mmlu_*.csv")):
        subject = path.stem.removeprefix("mmlu_")
        with (data / "mmlu" / "test" / f"{subject}_test.csv").open(encoding="utf-8", newline="") as f:
            gold = {mmlu_prompt(r[0], r[1:5]).strip(): r[5].strip() for r in csv.reader(f) if len(r) == 6}
        with path.open(encoding="utf-8", newline="") as f:
            for i, row in enumerate(csv.DictReader(f)):
                prompt = row["prompt"]
                if prompt.strip() in skip or prompt.strip() not in gold:
                    continue
                ref = {"answer": gold[prompt.strip()], "subject": subject}
                out.append(Item("mmlu", f"mmlu/{subject}/{i}", prompt, ref, _verdict(row[CLOUD_MODEL])))
    return out


def load_humaneval(data: Path) -> list[Item]:
    out = []
    for row in _jsonl(data / "humaneval" / "HumanEval.jsonl.gz"):
        ref = {"test": row["test"], "entry_point": row["entry_point"], "prompt": row["prompt"]}
        out.append(Item("humaneval", str(row["task_id"]), str(row["prompt"]), ref))
    return out


LOADERS = {"ifeval": load_ifeval, "gsm8k": load_gsm8k, "mmlu": load_mmlu, "humaneval": load_humaneval}


def router_training(data: Path) -> tuple[set[str], set[str]]:
    """The normalized texts of the learned router's training prompts (``eval/router_data.load_all``), and
    of the MMLU ones alone (those are not eligible here)."""
    from eval.router_data import load_all, normalized

    prompts = load_all(data)
    return {normalized(p.text) for p in prompts}, {normalized(p.text) for p in prompts if p.source == "mmlu"}


def subset(items: Sequence[Item], n: int, seed: int = SEED) -> list[Item]:
    """The first ``n`` of a seeded permutation (stable: a larger ``n`` extends a smaller one)."""
    order = list(items)
    random.Random(f"{seed}:{items[0].set if items else ''}").shuffle(order)
    return order[:n]


def load(names: Sequence[str], n: int | None = None, data: Path = DEFAULT_DATA) -> dict[str, list[Item]]:
    """The subsets of ``names`` (``n`` prompts each, else ``DEFAULT_N``), each item marked with whether the
    router trained on its prompt."""
    from dataclasses import replace

    from eval.router_data import normalized

    trained, trained_mmlu = router_training(data)
    out = {}
    for name in names:
        items = LOADERS[name](data)
        if name == "mmlu":
            items = [i for i in items if normalized(i.prompt) not in trained_mmlu]
        out[name] = [
            replace(i, in_router_training=normalized(i.prompt) in trained)
            for i in subset(items, n or DEFAULT_N[name])
        ]
    return out
