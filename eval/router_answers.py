"""Router labels from the device's answers (issue 17, item 3): a label source for the learned router.

The category labels (``eval/router_data.py``) say how hard a prompt *looks*. The quality harness
(``eval/quality/``, docs/quality.md) has, for the prompts of its answer sets, whether the device chat
model's own answer passed and whether the cloud's did. Where such a verdict exists it becomes the label:

- the device's answer **passes**: ``0`` (device), whatever the cloud did: the device serves it;
- the device's answer **fails and the cloud's passes**: ``1`` (cloud): only here does the cloud buy
  quality;
- **both fail**: ``0`` (device). Sending it costs a cloud call and gains nothing the verdict can see;
  RouteLLM labels a pair by whether the strong model *wins*, and two failures are a tie, not a win;
- the cloud's verdict **not recorded** (IFEval and HumanEval here): taken to pass, as the harness's
  curves take it (an upper bound, docs/quality.md), so a failing device answer there is labelled ``1``.

Everywhere else the category labels stay. Labels are per device chat model (the answer cache is keyed by
the model, :func:`load_verdicts` reads one model's): a stronger device model passes more prompts, so more
of them get ``0`` and its router keeps more on the device.

:func:`merge` puts the two together: a category prompt with a verdict (GSM8K and HumanEval prompts are
in both) is relabelled; a verdict prompt the category set lacks is added, to its set's source (MMLU
questions join ``mmlu``; IFEval becomes a source of its own, ``ifeval``), so leave-one-source-out
holds it out with its source. Nothing here generates an answer: :func:`load_verdicts` takes the answers
already in the harness's cache (``python -m eval.quality generate`` makes more).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from eval.router_data import LabelledPrompt, normalized

CLOUD = 1
DEVICE = 0
#: the router-data source a verdict prompt joins when the category set does not have it
SOURCE_OF_SET = {"gsm8k": "gsm8k", "mmlu": "mmlu", "humaneval": "humaneval", "ifeval": "ifeval"}
#: the topic (for the router's "what drove it" centroids) of an added verdict prompt
TOPIC_OF_SET = {"gsm8k": "math", "mmlu": "expert knowledge", "humaneval": "coding", "ifeval": "everyday"}


def answer_label(device_passed: bool, cloud_passed: bool | None) -> int:
    """``CLOUD`` when the device's answer fails where the cloud's passes (an unrecorded cloud verdict,
    ``None``, counts as a pass), else ``DEVICE`` (the device passes, or both fail)."""
    if device_passed:
        return DEVICE
    return CLOUD if cloud_passed is None or cloud_passed else DEVICE


@dataclass(frozen=True, slots=True)
class AnswerVerdict:
    """One prompt of the harness's sets with the verdicts on the device model's and the cloud's answers."""

    model: str
    set: str
    id: str
    prompt: str
    device: bool
    cloud: bool | None  # None: no cloud answer recorded

    @property
    def label(self) -> int:
        return answer_label(self.device, self.cloud)

    @property
    def why(self) -> str:
        cloud = "passes" if self.cloud else "fails"
        cloud = "not recorded (taken to pass)" if self.cloud is None else cloud
        device = "passes" if self.device else "fails"
        return f"answers {self.model} on {self.id}: device {device}, cloud {cloud}"


def merge(
    category: Sequence[LabelledPrompt], verdicts: Iterable[AnswerVerdict]
) -> tuple[list[LabelledPrompt], list[bool]]:
    """The category set with every prompt that has a verdict labelled from it (same order), then the
    verdict prompts it lacks (added to ``SOURCE_OF_SET``); also, per row, whether its label is a
    verdict's. Prompts are matched on ``router_data.normalized`` text; one verdict per prompt (the first)."""
    by_text: dict[str, AnswerVerdict] = {}
    for v in verdicts:
        by_text.setdefault(normalized(v.prompt), v)
    used: set[str] = set()
    out: list[LabelledPrompt] = []
    from_answers: list[bool] = []
    for p in category:
        key = normalized(p.text)
        found = by_text.get(key)
        if found is None or key in used:
            out.append(p)
            from_answers.append(False)
            continue
        used.add(key)
        out.append(replace(p, hard=found.label, why=found.why))
        from_answers.append(True)
    for key, v in by_text.items():
        if key not in used:
            out.append(LabelledPrompt(SOURCE_OF_SET[v.set], v.prompt, v.label, TOPIC_OF_SET[v.set], v.why))
            from_answers.append(True)
    return out, from_answers


def load_verdicts(model_id: str, data: Path, sets: Sequence[str] | None = None) -> list[AnswerVerdict]:
    """The verdicts on every answer of ``model_id`` in the harness's answer cache, over every eligible
    prompt of ``sets`` (default: all four; the set loaders' eligibility: MMLU's router-training
    questions are not eligible), in each set's subset order. Needs the model built (its file's sha256
    keys the cache) and the shared data folder."""
    from eval.quality import sets as quality_sets
    from eval.quality.generate import AnswerCache, chat_models
    from eval.quality.report import verdict

    models = chat_models([model_id])
    if not models:
        raise LookupError(f"{model_id} is not a built on-device chat model (builder all --models {model_id})")
    cache = AnswerCache(models[0])
    names = list(sets or quality_sets.SETS)
    loaded = quality_sets.load(names, 1 << 30, data)  # a subset of every eligible prompt: all of them
    out = []
    for name in names:
        for item in loaded[name]:
            answer = cache.get(item.prompt, item.max_tokens)
            if answer is not None:
                passed = verdict(item, answer.text).passed
                out.append(AnswerVerdict(model_id, name, item.id, item.prompt, passed, item.cloud))
    return out


def labelled_set(
    data: Path, model_id: str, sets: Sequence[str] | None = None, *, verbose: bool = False
) -> tuple[list[LabelledPrompt], list[bool]]:
    """``router_data.load_all`` merged with ``model_id``'s verdicts (:func:`merge`)."""
    from eval import router_data

    category = router_data.load_all(data, verbose=verbose)
    verdicts = load_verdicts(model_id, data, sets)
    merged, from_answers = merge(category, verdicts)
    if verbose:
        n_cloud = sum(v.label for v in verdicts)
        print(
            f"  answers of {model_id}: {len(verdicts)} verdicts ({n_cloud} cloud, {len(verdicts) - n_cloud} "
            f"device), {len(merged) - len(category)} prompts added to the category set"
        )
    return merged, from_answers
