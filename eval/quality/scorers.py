"""Automatic verdicts on one answer: pure functions (HumanEval's runs the tests in a subprocess).

- :func:`gsm8k_number` / :func:`gsm8k_correct`: the answer's final number against the reference;
- :func:`mmlu_letter` / :func:`mmlu_correct`: the option the answer commits to first;
- :func:`humaneval_program` / :func:`humaneval_passes`: the answer's code with the problem's unit tests,
  run by a separate Python with a time limit, no network (a network namespace of its own where
  ``unshare`` works, and a socket module that refuses to connect in any case) and a memory limit;
- :func:`ifeval_verdict`: ``if-verifiable``'s IFEval checkers, strict and loose, per instruction and for
  the whole prompt.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?")


def gsm8k_number(text: str) -> str | None:
    """The last number in ``text`` (GSM8K's usual rule), without ``$`` and thousands separators."""
    found = _NUMBER.findall(text)
    if not found:
        return None
    value = found[-1].replace("$", "").replace(",", "").rstrip(".")
    return value or None


def gsm8k_correct(text: str, reference: str) -> bool:
    got = gsm8k_number(text)
    if got is None:
        return False
    try:
        return abs(float(got) - float(reference.replace(",", ""))) < 1e-6
    except ValueError:
        return False


_LEADING = re.compile(r"^\W*(?:[Aa]nswer\s*(?:is)?\s*:?\s*)?\(?([ABCD])(?:[.):]|\s*$|\s*\n)")
_STATED = re.compile(r"\b[Aa]nswer\s+is\s*:?\s*\(?([ABCD])\b")
_OPTION_LINE = re.compile(r"^\s*\(?([ABCD])[.)]\s", re.MULTILINE)


def mmlu_letter(text: str) -> str | None:
    """The option the answer commits to: a leading letter ("B. 4", "(C)", "Answer: D"), else "the answer
    is X". An answer that lists three or more of the options back is no choice (None)."""
    if len(set(_OPTION_LINE.findall(text))) >= 3:
        return None
    m = _LEADING.match(text.strip())
    if m:
        return m.group(1).upper()
    m = _STATED.search(text)
    return m.group(1).upper() if m else None


def mmlu_correct(text: str, reference: str) -> bool:
    return mmlu_letter(text) == reference.strip().upper()


_FENCED = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)


def humaneval_program(prompt: str, answer: str, entry_point: str) -> str:
    """The program to test: the answer's code (its first fenced block that defines ``entry_point``, else its
    first block, else the whole answer) after the problem's prompt (its imports and helpers). A block that
    defines the function replaces the prompt's stub; one that does not is read as the stub's body."""
    blocks = _FENCED.findall(answer)
    code = next((b for b in blocks if f"def {entry_point}" in b), blocks[0] if blocks else answer)
    if re.search(rf"^\s*def\s+{re.escape(entry_point)}\s*\(", code, re.MULTILINE):
        return f"{prompt}\n    pass\n\n{code}\n"
    return f"{prompt}{code}\n"


#: run before the program: no sockets (the tests need none), whatever namespace the process is in
_GUARD = """
import socket as _s
def _refuse(*a, **k):
    raise OSError("network is disabled in the HumanEval sandbox")
_s.socket.connect = _refuse
_s.create_connection = _refuse
del _s, _refuse
"""


@functools.cache
def _can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _limits() -> None:  # in the child, before exec
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    os.setsid()


def humaneval_passes(program: str, test: str, entry_point: str, timeout_s: float = 10.0) -> bool:
    """Whether ``program`` passes the problem's ``check`` within ``timeout_s`` (a fresh ``python -I`` in an
    empty temporary folder)."""
    source = f"{_GUARD}\n{program}\n\n{test}\n\ncheck({entry_point})\n"
    with tempfile.TemporaryDirectory(prefix="humaneval-") as tmp:
        path = os.path.join(tmp, "program.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(source)
        cmd = [sys.executable, "-I", path]
        if _can_unshare():
            cmd = ["unshare", "-rn", *cmd]
        try:
            done = subprocess.run(
                cmd,
                cwd=tmp,
                capture_output=True,
                timeout=timeout_s,
                env={"PATH": os.defpath},
                preexec_fn=_limits,  # noqa: PLW1509 (no threads in the harness)
            )
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0


@dataclass(frozen=True)
class IFEvalVerdict:
    """Per instruction (strict, loose), and the prompt-level verdicts (every instruction followed)."""

    instructions: tuple[tuple[str, bool, bool], ...]

    @property
    def strict(self) -> bool:
        return all(s for _, s, _ in self.instructions)

    @property
    def loose(self) -> bool:
        return all(loose for _, _, loose in self.instructions)


def ifeval_verdict(
    prompt: str, instruction_ids: Sequence[str], kwargs: Sequence[Mapping[str, Any]], answer: str
) -> IFEvalVerdict:
    """``if-verifiable``'s IFEval checkers on ``answer`` (kwargs as ``input_data.jsonl`` gives them)."""
    from if_verifiable import IFEvalSample, evaluate_output_for_sample
    from langdetect import DetectorFactory

    DetectorFactory.seed = 0  # the language checks sample: the same verdict on every run

    clean = [{k: v for k, v in kw.items() if v is not None} for kw in kwargs]
    sample = IFEvalSample(key=0, prompt=prompt, instruction_id_list=list(instruction_ids), kwargs=clean)
    results, _ = evaluate_output_for_sample("ifeval", sample, answer)
    return IFEvalVerdict(tuple((r.instruction_id, bool(r.strict_pass), bool(r.loose_pass)) for r in results))
