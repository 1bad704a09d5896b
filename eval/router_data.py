"""The labelled prompt set of the learned router: every source of ``../shared/data`` ("Prompt sets for
routing") read, labelled "hard" (1) or "everyday" (0) by the scheme below, and deduplicated so that a
prompt belongs to one source only. Used by ``eval/train_router.py`` and ``eval/router_eval.py``.

The label answers "does this prompt need a frontier model, or can SmolLM2-135M on the device serve it?":

- **hard**: code (write, debug, explain code), math beyond one arithmetic step, multi-step reasoning and
  logic puzzles, exam questions and expert or professional knowledge, long or tightly constrained
  writing (essays, reports, lesson plans, multi-part structured output);
- **everyday**: chit-chat and role-play, advice and recommendations, short or common-knowledge factual
  questions, rewriting / proofreading / summarising / translating a given text, classification-like asks
  (sentiment, category, yes/no about a given text), short casual writing (an e-mail, a poem, a tweet).

How each source's own fields map onto it:

- ``mmlu`` (RouteLLM; 30 per subject): all hard (four-option exam questions, high school to professional);
- ``gsm8k`` (RouteLLM): all hard (multi-step math word problems); ``humaneval``: all hard (code);
- ``mt_bench`` (turn 1): hard = categories math, coding, reasoning, stem, extraction, humanities;
  everyday = writing, roleplay;
- ``vicuna80``: hard = categories coding, math, fermi; everyday = generic, knowledge, roleplay,
  common-sense, counterfactual, writing;
- ``wizardlm``: hard = a technical Skill (math, code, computer science, reasoning, sciences, medicine,
  law, academic writing, complex format) with Difficulty >= 3, or any other Skill with Difficulty >= 7;
- ``self_instruct``: hard = a technical app (LeetCode, StackOverflow, GitHub, Wolfram alpha, Overleaf,
  Excel, ...) or FLASK's difficulty for the same prompt major/expert level;
- ``alpaca_eval`` (its oasst and helpful_base parts, and the 12 koala prompts FLASK lacks): labelled by
  hand, ``eval/router_labels/alpaca_eval.tsv`` (prompt hash, label, topic: no text);
- ``flask`` (what is left of it): hard = difficulty major/expert level, or a Coding/Math domain above
  simple lifestyle knowledge, or a reasoning-benchmark task (BBH, TheoremQA, LeetCode, MBPP, FOLIO, ...);
- ``handwritten``: prompts written for this project (``tests/data/router_handwritten.jsonl``, Apache-2.0).

Overlaps: FLASK holds the Vicuna, Self-Instruct, WizardLM and most Koala prompts; alpaca_eval holds the
Vicuna and Self-Instruct prompts. A prompt is kept in the first source of ``PRIORITY`` that has it
(matched on the lower-cased alphanumeric text, whole or its first ``DEDUPE_PREFIX`` characters).
FLASK's jailbreak prompts are left out (they test refusals, not capability), as are the prompts RouteLLM
lists as contaminated.
"""

from __future__ import annotations

import ast
import csv
import gzip
import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HAND_LABELS = ROOT / "eval" / "router_labels" / "alpaca_eval.tsv"
HANDWRITTEN = ROOT / "tests" / "data" / "router_handwritten.jsonl"

#: A prompt that appears in several sources stays in the first of these.
PRIORITY = (
    "handwritten",
    "vicuna80",
    "self_instruct",
    "wizardlm",
    "mt_bench",
    "humaneval",
    "gsm8k",
    "mmlu",
    "alpaca_eval",
    "flask",
)
LICENCES = {
    "handwritten": "Apache-2.0 (this project)",
    "vicuna80": "Apache-2.0",
    "self_instruct": "Apache-2.0",
    "wizardlm": "CC-BY-NC-4.0",
    "mt_bench": "Apache-2.0",
    "humaneval": "MIT",
    "gsm8k": "MIT (labels Apache-2.0)",
    "mmlu": "MIT (labels Apache-2.0)",
    "alpaca_eval": "CC-BY-NC-4.0",
    "flask": "no explicit licence",
}
#: MMLU has 14,042 questions; this many per subject (57 subjects) keep it from swamping the rest.
MMLU_PER_SUBJECT = 30
DEDUPE_PREFIX = 80
SEED = 0

#: Topics name what a prompt is about (for the router's "what drove it": similarity to topic centroids).
HARD_TOPICS = ("coding", "math", "reasoning", "expert knowledge", "long-form writing")
TOPICS = (*HARD_TOPICS, "everyday")


@dataclass(frozen=True, slots=True)
class LabelledPrompt:
    source: str
    text: str
    hard: int
    topic: str
    why: str  # the rule that gave the label, e.g. "wizardlm Skill=Math Difficulty=6"


def normalized(text: str) -> str:
    """Lower-cased alphanumerics only (FLASK writes some newlines as a literal backslash-n, and puts
    "Input:" before a Self-Instruct input)."""
    text = text.replace("\\n", "\n").replace("\nInput:", "\n")
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def prompt_key(text: str) -> str:
    """A short stable id of a prompt (the hand labels are keyed by it, so no text is committed)."""
    return hashlib.sha256(normalized(text).encode()).hexdigest()[:16]


def _jsonl(path: Path) -> Iterator[dict[str, object]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def _contaminated(data: Path, name: str) -> set[str]:
    path = data / "routellm" / f"{name}_contaminated_prompts.jsonl"
    return {str(r["eval_prompt"]).strip() for r in _jsonl(path)}


# --- the sources ----------------------------------------------------------------------------------------


def load_mmlu(data: Path) -> list[LabelledPrompt]:
    skip = _contaminated(data, "mmlu")
    rng = random.Random(SEED)
    out = []
    for path in sorted((data / "routellm" / "mmlu_responses").glob("mmlu_*.csv")):
        with path.open(encoding="utf-8", newline="") as f:
            prompts = [r["prompt"] for r in csv.DictReader(f) if r["prompt"].strip() not in skip]
        subject = path.stem.removeprefix("mmlu_")
        for p in rng.sample(prompts, min(MMLU_PER_SUBJECT, len(prompts))):
            out.append(LabelledPrompt("mmlu", p, 1, "expert knowledge", f"mmlu {subject}: exam question"))
    return out


def load_gsm8k(data: Path) -> list[LabelledPrompt]:
    skip = _contaminated(data, "gsm8k")
    with (data / "routellm" / "gsm8k_responses.csv").open(encoding="utf-8", newline="") as f:
        prompts = [r["prompt"] for r in csv.DictReader(f) if r["prompt"].strip() not in skip]
    return [LabelledPrompt("gsm8k", p, 1, "math", "gsm8k: math word problem") for p in prompts]


def load_humaneval(data: Path) -> list[LabelledPrompt]:
    rows = _jsonl(data / "humaneval" / "HumanEval.jsonl.gz")
    return [LabelledPrompt("humaneval", str(r["prompt"]), 1, "coding", "humaneval: code") for r in rows]


MT_BENCH = {
    "math": (1, "math"),
    "coding": (1, "coding"),
    "reasoning": (1, "reasoning"),
    "stem": (1, "expert knowledge"),
    "extraction": (1, "long-form writing"),
    "humanities": (1, "expert knowledge"),
    "writing": (0, "everyday"),
    "roleplay": (0, "everyday"),
}


def load_mt_bench(data: Path) -> list[LabelledPrompt]:
    skip = _contaminated(data, "mt_bench")
    out = []
    for q in _jsonl(data / "routellm" / "mt_bench_question.jsonl"):
        text, category = str(q["turns"][0]), str(q["category"])  # type: ignore[index]
        if text.strip() in skip:
            continue
        hard, topic = MT_BENCH[category]
        out.append(LabelledPrompt("mt_bench", text, hard, topic, f"mt_bench category={category}"))
    return out


VICUNA = {"coding": (1, "coding"), "math": (1, "math"), "fermi": (1, "reasoning")}


def load_vicuna(data: Path) -> list[LabelledPrompt]:
    out = []
    for q in _jsonl(data / "vicuna80" / "question.jsonl"):
        category = str(q["category"])
        hard, topic = VICUNA.get(category, (0, "everyday"))
        out.append(
            LabelledPrompt("vicuna80", str(q["turns"][0]), hard, topic, f"vicuna category={category}")  # type: ignore[index]
        )
    return out


WIZARD_TECHNICAL = {
    "Math": "math",
    "Code Generation": "coding",
    "Code Debug": "coding",
    "Computer Science": "coding",
    "Reasoning": "reasoning",
    "Physics": "expert knowledge",
    "Chemistry": "expert knowledge",
    "Biology": "expert knowledge",
    "Medicine": "expert knowledge",
    "Law": "expert knowledge",
    "Academic Writing": "long-form writing",
    "Complex Format": "coding",
}


def load_wizardlm(data: Path) -> list[LabelledPrompt]:
    out = []
    for r in _jsonl(data / "wizardlm_testset" / "WizardLM_testset.jsonl"):
        skill, difficulty = str(r["Skill"]), int(str(r["Difficulty"]))
        technical = skill in WIZARD_TECHNICAL
        hard = int(difficulty >= (3 if technical else 7))
        if not hard:
            topic = "everyday"
        elif technical:
            topic = WIZARD_TECHNICAL[skill]
        else:
            topic = "long-form writing" if skill in ("Writting", "Literature") else "expert knowledge"
        why = f"wizardlm Skill={skill} Difficulty={difficulty}"
        out.append(LabelledPrompt("wizardlm", str(r["Instruction"]), hard, topic, why))
    return out


SELF_INSTRUCT_TECHNICAL = {
    "Leetcode": "coding",
    "StackOverflow": "coding",
    "GeeksforGeeks": "coding",
    "w3schools": "coding",
    "Github": "coding",
    "Wolfram alpha": "math",
    "(Wolfram alpha)?": "math",
    "Overleaf": "coding",
    "MS Excel": "coding",
    "Google Sheet": "coding",
    "Google Sheets": "coding",
    "Sudoku": "reasoning",
    "Semantic Scholar": "expert knowledge",
    "Explainpaper": "expert knowledge",
    "https://abcnotation.com/": "coding",
    "Markdown": "coding",
}
FLASK_HARD_LEVELS = ("major level knowledge", "expert level knowledge")


def self_instruct_text(instruction: str, given: str) -> str:
    return f"{instruction}\n\n{given}" if given.strip() else instruction


def _flask_rows(data: Path) -> list[dict[str, object]]:
    return list(_jsonl(data / "flask" / "flask_evaluation.jsonl"))


def load_self_instruct(data: Path) -> list[LabelledPrompt]:
    flask_level = {}
    for r in _flask_rows(data):
        if r["task"] == "Self-instruct":
            flask_level[normalized(str(r["instruction"]))[:DEDUPE_PREFIX]] = str(r["difficulty"])
    out = []
    for r in _jsonl(data / "self_instruct_user" / "user_oriented_instructions.jsonl"):
        app = str(r["motivation_app"])
        instruction = str(r["instruction"])
        level = flask_level.get(normalized(instruction)[:DEDUPE_PREFIX], "?")
        technical = app in SELF_INSTRUCT_TECHNICAL
        hard = int(technical or level in FLASK_HARD_LEVELS)
        topic = SELF_INSTRUCT_TECHNICAL.get(app, "expert knowledge") if hard else "everyday"
        text = self_instruct_text(instruction, str(r["instances"][0]["input"]))  # type: ignore[index]
        why = f"self_instruct app={app} flask_difficulty={level}"
        out.append(LabelledPrompt("self_instruct", text, hard, topic, why))
    return out


def read_hand_labels(path: Path = HAND_LABELS) -> dict[str, tuple[int, str]]:
    """``prompt_key -> (hard, topic)`` from the committed TSV (key, hard, topic, dataset)."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("key\t"):
            continue
        key, hard, topic, _ = line.split("\t")
        out[key] = (int(hard), topic)
    return out


def load_alpaca_eval(
    data: Path, *, hand_labels: dict[str, tuple[int, str]] | None = None
) -> list[LabelledPrompt]:
    """The oasst, helpful_base and koala parts (vicuna and selfinstruct are their own sources), labelled
    from the hand-label file; koala prompts without a hand label are FLASK's (they stay in ``flask``)."""
    labels = read_hand_labels() if hand_labels is None else hand_labels
    out = []
    for r in _jsonl(data / "alpaca_eval" / "alpaca_eval.jsonl"):
        part = str(r["dataset"])
        if part in ("vicuna", "selfinstruct"):
            continue
        text = str(r["instruction"])
        if (label := labels.get(prompt_key(text))) is not None:
            out.append(
                LabelledPrompt("alpaca_eval", text, label[0], label[1], f"alpaca_eval {part}: by hand")
            )
        elif part != "koala":
            raise KeyError(f"alpaca_eval {part} prompt {prompt_key(text)} has no hand label in {HAND_LABELS}")
    return out


FLASK_HARD_TASKS = frozenset(
    {
        "Bbh",
        "Leetcode",
        "theoremqa",
        "Agieval - math (amc + aime)",
        "Prm800k",
        "Gsm8k",
        "Mbpp",
        "Humaneval",
        "Concode",
        "Folio",
        "Mmlu",
        "Finqa",
        "Bigbench: chinese remainder theorem",
        "Bigbench: checkmate in one",
        "Bigbench: cs algorithms",
        "Bigbench: autodebugging",
        "Bigbench: semantic parsing spider",
        "Bigbench: semantic parsing in context sparc",
    }
)
FLASK_EXCLUDED_TASKS = frozenset({"jailbreak_llms"})


def flask_label(task: str, difficulty: str, domains: list[str]) -> tuple[int, str]:
    coding, math = "Coding" in domains, "Math" in domains
    above_simple = difficulty not in ("simple lifestyle knowledge", "-1")
    if task in FLASK_HARD_TASKS or difficulty in FLASK_HARD_LEVELS or (above_simple and (coding or math)):
        if coding:
            return 1, "coding"
        if math:
            return 1, "math"
        return 1, "reasoning" if task in FLASK_HARD_TASKS else "expert knowledge"
    return 0, "everyday"


def load_flask(data: Path) -> list[LabelledPrompt]:
    out = []
    for r in _flask_rows(data):
        task, difficulty = str(r["task"]), str(r["difficulty"])
        if task in FLASK_EXCLUDED_TASKS:
            continue
        domains = r["domain"] if isinstance(r["domain"], list) else ast.literal_eval(str(r["domain"]))
        hard, topic = flask_label(task, difficulty, [str(d) for d in domains])
        text = str(r["instruction"]).replace("\\n", "\n")
        why = f"flask task={task} difficulty={difficulty} domain={'/'.join(map(str, domains))}"
        out.append(LabelledPrompt("flask", text, hard, topic, why))
    return out


def load_handwritten(path: Path = HANDWRITTEN) -> list[LabelledPrompt]:
    return [
        LabelledPrompt("handwritten", str(r["prompt"]), int(str(r["hard"])), str(r["topic"]), "handwritten")
        for r in _jsonl(path)
    ]


LOADERS = {
    "handwritten": lambda data: load_handwritten(),
    "vicuna80": load_vicuna,
    "self_instruct": load_self_instruct,
    "wizardlm": load_wizardlm,
    "mt_bench": load_mt_bench,
    "humaneval": load_humaneval,
    "gsm8k": load_gsm8k,
    "mmlu": load_mmlu,
    "alpaca_eval": load_alpaca_eval,
    "flask": load_flask,
}


# --- dedupe ---------------------------------------------------------------------------------------------

#: Word n-grams compared between prompts; two prompts are the same when this share of the shorter one's
#: n-grams is in the other (FLASK adds "Input:" before Self-Instruct inputs, alpaca_eval reformats some).
SHINGLE = 4
SAME_IF_CONTAINED = 0.6
#: Shorter prompts share 4-grams by chance ("What is the capital of ..."): they must match exactly.
MIN_SHINGLES = 6


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.replace("\\n", " ").lower())


def _shingles(text: str) -> set[str]:
    words = _words(text)
    if len(words) < SHINGLE:
        return {" ".join(words)}
    return {" ".join(words[i : i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}


def dedupe(groups: Iterable[list[LabelledPrompt]]) -> tuple[list[LabelledPrompt], Counter[str]]:
    """The prompts in ``PRIORITY`` order, each kept only in the first source that has it; also the count
    dropped per source. Within a source only exact repeats are dropped (whitespace aside); across
    sources a prompt is a repeat when ``SAME_IF_CONTAINED`` of the shorter one's word ``SHINGLE``-grams
    are in the other (both with at least ``MIN_SHINGLES`` of them), or its normalized text is the same."""
    index: dict[str, list[int]] = {}  # shingle -> ids of kept prompts of earlier sources
    sizes: list[int] = []
    seen_norm: set[str] = set()
    kept: list[LabelledPrompt] = []
    dropped: Counter[str] = Counter()
    for group in groups:
        mine: set[str] = set()
        pending: list[tuple[int, set[str], str]] = []
        for p in group:
            exact, norm, grams = " ".join(p.text.split()), normalized(p.text), _shingles(p.text)
            if not norm or exact in mine or norm in seen_norm or _seen(grams, index, sizes):
                dropped[p.source] += 1
                continue
            mine.add(exact)
            pending.append((len(kept), grams, norm))
            kept.append(p)
            sizes.append(len(grams))
        for i, grams, norm in pending:  # visible to later sources only
            seen_norm.add(norm)
            if len(grams) >= MIN_SHINGLES:
                for g in grams:
                    index.setdefault(g, []).append(i)
    return kept, dropped


def _seen(grams: set[str], index: dict[str, list[int]], sizes: list[int]) -> bool:
    if len(grams) < MIN_SHINGLES:
        return False
    hits: Counter[int] = Counter()
    for g in grams:
        hits.update(index.get(g, ()))
    return any(n >= SAME_IF_CONTAINED * min(len(grams), sizes[i]) for i, n in hits.items())


def load_all(data: Path, *, verbose: bool = False) -> list[LabelledPrompt]:
    """Every source, labelled and deduplicated, in ``PRIORITY`` order (deterministic)."""
    if not (data / "routellm").is_dir():
        raise FileNotFoundError(f"{data} is not the shared data folder (no routellm/ in it); pass --data")
    prompts, dropped = dedupe(LOADERS[name](data) for name in PRIORITY)
    if verbose:
        counts = Counter((p.source, p.hard) for p in prompts)
        for name in PRIORITY:
            print(
                f"  {name:14} {counts[(name, 1)]:5d} hard {counts[(name, 0)]:5d} everyday"
                f"   ({dropped[name]} dropped as duplicates of an earlier source)"
            )
    return prompts
