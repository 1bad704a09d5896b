"""The quality harness's automatic verdicts (eval/quality/scorers.py) on small inline answers."""

from __future__ import annotations

import pytest
from eval.quality import scorers


@pytest.mark.parametrize(
    ("answer", "number"),
    [
        ("She sells 9 eggs at $2 each, so she makes $18 every day.", "18"),
        ("The total is 1,234.50.", "1234.50"),
        ("It drops by -3 degrees", "-3"),
        ("I cannot tell.", None),
    ],
)
def test_gsm8k_takes_the_last_number(answer: str, number: str | None) -> None:
    assert scorers.gsm8k_number(answer) == number


def test_gsm8k_compares_numbers_not_strings() -> None:
    assert scorers.gsm8k_correct("The answer is 18.0", "18")
    assert scorers.gsm8k_correct("$1,200 in all", "1200")
    assert not scorers.gsm8k_correct("18 eggs, then 19", "18")
    assert not scorers.gsm8k_correct("no number here", "18")


@pytest.mark.parametrize(
    ("answer", "letter"),
    [
        ("B. Sb", "B"),
        ("(C) resonance structures", "C"),
        ("Answer: D", "D"),
        ("D", "D"),
        ("A. African elephant\n\nThe answer is D. Indian elephant.", "A"),  # the first committed choice
        ("I think the answer is B because it is larger.", "B"),
        ("A. Invention\nB. Luck\nC. Problems\nD. Proc", None),  # the options read back: no choice
        ("Paris is the capital.", None),
        ("A lot of people think so.", None),  # "A" as an article is no choice
    ],
)
def test_mmlu_reads_the_committed_letter(answer: str, letter: str | None) -> None:
    assert scorers.mmlu_letter(answer) == letter


PROMPT = 'from typing import List\n\n\ndef add(xs: List[int]) -> int:\n    """Sum of xs."""\n'
TEST = "def check(candidate):\n    assert candidate([1, 2, 3]) == 6\n    assert candidate([]) == 0\n"


def test_humaneval_runs_a_fenced_function_against_the_tests() -> None:
    answer = "Here is the code:\n```python\ndef add(xs):\n    return sum(xs)\n```\nIt sums the list."
    program = scorers.humaneval_program(PROMPT, answer, "add")
    assert scorers.humaneval_passes(program, TEST, "add")


def test_humaneval_reads_a_body_without_def_as_the_stubs_body() -> None:
    program = scorers.humaneval_program(PROMPT, "    return sum(xs)\n", "add")
    assert scorers.humaneval_passes(program, TEST, "add")


def test_humaneval_fails_wrong_code_a_syntax_error_and_a_loop_past_the_limit() -> None:
    wrong = scorers.humaneval_program(PROMPT, "```python\ndef add(xs):\n    return 0\n```", "add")
    assert not scorers.humaneval_passes(wrong, TEST, "add")
    broken = scorers.humaneval_program(PROMPT, "```python\ndef add(xs)\n    return sum(xs)\n```", "add")
    assert not scorers.humaneval_passes(broken, TEST, "add")
    loop = scorers.humaneval_program(
        PROMPT, "```python\ndef add(xs):\n    while True:\n        pass\n```", "add"
    )
    assert not scorers.humaneval_passes(loop, TEST, "add", timeout_s=2)


def test_humaneval_code_cannot_reach_the_network() -> None:
    """A program that passes only if it can connect somewhere fails (the sandbox refuses sockets)."""
    reach = (
        "```python\ndef add(xs):\n    import socket\n"
        "    socket.create_connection(('127.0.0.1', 9), timeout=1)\n    return sum(xs)\n```"
    )
    program = scorers.humaneval_program(PROMPT, reach, "add")
    assert not scorers.humaneval_passes(program, TEST, "add")
    offline = program.replace("    socket.create_connection(('127.0.0.1', 9), timeout=1)\n", "")
    assert scorers.humaneval_passes(offline, TEST, "add")


def test_ifeval_strict_and_loose_per_instruction_and_prompt() -> None:
    ids = ["punctuation:no_comma", "change_case:english_lowercase", "detectable_format:title"]
    kwargs = [{}, {}, {"unused": None}]
    good = "<<a title>>\nall lower case and no commas here"
    v = scorers.ifeval_verdict("prompt", ids, kwargs, good)
    assert v.strict and v.loose
    assert [name for name, _, _ in v.instructions] == ids
    # a first line in bold breaks strict lower case; loose drops the first line and passes
    bolded = "**Sure**\n<<a title>>\nall lower case and no commas here"
    v = scorers.ifeval_verdict("prompt", ids[1:2], [{}], bolded.replace("**Sure**", "SURE"))
    assert not v.strict and v.loose
    v = scorers.ifeval_verdict("prompt", ids, kwargs, "No title, and a comma.")
    assert not v.strict and not v.loose
    assert [s for _, s, _ in v.instructions] == [False, False, False]
