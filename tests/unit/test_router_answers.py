"""The router's label source from the device's answers (eval/router_answers.py), on inline verdicts."""

from __future__ import annotations

import pytest
from eval.router_answers import CLOUD, DEVICE, AnswerVerdict, answer_label, merge
from eval.router_data import LabelledPrompt


@pytest.mark.parametrize(
    ("device", "cloud", "label"),
    [
        (True, True, DEVICE),  # both pass: the device serves it
        (True, False, DEVICE),  # only the device passes
        (True, None, DEVICE),
        (False, True, CLOUD),  # the device fails where the cloud passes: the one case the cloud buys
        (False, False, DEVICE),  # both fail: a cloud call would gain nothing
        (False, None, CLOUD),  # no cloud verdict recorded: taken to pass (the harness's upper bound)
    ],
)
def test_the_label_is_the_device_failing_where_the_cloud_passes(
    device: bool, cloud: bool | None, label: int
) -> None:
    assert answer_label(device, cloud) == label
    assert AnswerVerdict("m", "gsm8k", "gsm8k/1", "p", device, cloud).label == label


def _v(set_: str, prompt: str, device: bool, cloud: bool | None, model: str = "SmolLM2") -> AnswerVerdict:
    return AnswerVerdict(model, set_, f"{set_}/x", prompt, device, cloud)


CATEGORY = [
    LabelledPrompt("handwritten", "Say hi to my friend.", 0, "everyday", "handwritten"),
    LabelledPrompt("gsm8k", "Tom has 3 apples and buys 4 more. How many?", 1, "math", "gsm8k: word problem"),
    LabelledPrompt("gsm8k", "A train leaves at 3 pm at 60 mph. When does it arrive?", 1, "math", "gsm8k"),
    LabelledPrompt("mmlu", "Which planet is largest?\nA. Mars\nB. Jupiter", 1, "expert knowledge", "mmlu"),
]


def test_merge_relabels_prompts_with_a_verdict_and_keeps_the_rest() -> None:
    verdicts = [
        # the same prompt as the category set's, spelled with other whitespace and case
        _v("gsm8k", "tom has 3 apples  and buys 4 more.  How many?", True, True),
    ]
    merged, from_answers = merge(CATEGORY, verdicts)
    assert [p.text for p in merged] == [p.text for p in CATEGORY]  # nothing added, the order kept
    assert [p.hard for p in merged] == [0, 0, 1, 1]  # the device passed it: relabelled everyday
    assert from_answers == [False, True, False, False]
    assert merged[1].source == "gsm8k" and merged[1].topic == "math"
    assert merged[1].why.startswith("answers SmolLM2 on gsm8k/x: device passes, cloud passes")
    assert merged[2] == CATEGORY[2] and merged[0] == CATEGORY[0]


def test_merge_adds_verdict_prompts_the_category_set_lacks_to_their_source() -> None:
    verdicts = [
        _v("ifeval", "Write a poem about rain in exactly 3 lines.", False, None),
        _v("mmlu", "What is 2+2?\nA. 3\nB. 4", False, False),
        _v("mmlu", "Which planet is largest?\nA. Mars\nB. Jupiter", False, True),
    ]
    merged, from_answers = merge(CATEGORY, verdicts)
    assert len(merged) == len(CATEGORY) + 2
    assert merged[3].hard == CLOUD and from_answers[3]  # the MMLU question in both: relabelled in place
    added = merged[len(CATEGORY) :]
    assert [(p.source, p.hard, p.topic) for p in added] == [
        ("ifeval", CLOUD, "everyday"),  # the device fails, no cloud verdict: the cloud
        ("mmlu", DEVICE, "expert knowledge"),  # both fail: the device
    ]
    assert from_answers[len(CATEGORY) :] == [True, True]
    assert "cloud not recorded (taken to pass)" in added[0].why


def test_merge_takes_one_verdict_per_prompt() -> None:
    text = "Tom has 3 apples and buys 4 more. How many?"
    merged, _ = merge(CATEGORY, [_v("gsm8k", text, False, True), _v("gsm8k", text, True, True)])
    assert len(merged) == len(CATEGORY)
    assert merged[1].hard == CLOUD  # the first verdict


def test_labels_follow_the_device_model() -> None:
    text = "Tom has 3 apples and buys 4 more. How many?"
    weak, _ = merge(CATEGORY, [_v("gsm8k", text, False, True, "SmolLM2")])
    strong, _ = merge(CATEGORY, [_v("gsm8k", text, True, True, "Qwen")])
    assert weak[1].hard == CLOUD and strong[1].hard == DEVICE  # a model that passes keeps it
    assert "Qwen" in strong[1].why
