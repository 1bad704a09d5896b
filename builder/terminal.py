"""The build's progress on the terminal: one line per job step.

On a terminal (a TTY) the line of the running step is redrawn in place about once a second, and a new
line starts when the step changes. Elsewhere (a CI log, a pipe) each step gets a plain line, and a long
step another one every :data:`PLAIN_EVERY_S` seconds, so that no line stands for long without news.
A failed job prints its error, the hint and where its log is.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

__all__ = ["Line", "Terminal", "duration"]

PLAIN_EVERY_S = 30.0
REDRAW_S = 1.0


def duration(seconds: float) -> str:
    """``~9 min``, ``~40 s``, ``~1 h 20 min``: an estimate as a person says it."""
    s = max(0, round(seconds))
    if s < 60:
        return f"~{max(5, 5 * round(s / 5))} s"
    minutes = round(s / 60)
    if minutes < 60:
        return f"~{minutes} min"
    return f"~{minutes // 60} h {minutes % 60} min"


@dataclass(frozen=True)
class Line:
    """What one job's line says."""

    position: str  # "[3/6]"
    job: str
    state: str
    step: str | None = None
    detail: str | None = None
    progress: float | None = None
    eta_s: float | None = None
    elapsed_s: float = 0.0

    def text(self) -> str:
        head = f"  {self.position} {self.job}: "
        if self.state != "running":
            return head + self.state + (f" ({self.detail})" if self.detail else "")
        parts = [self.step or "starting"]
        if self.detail:
            parts.append(self.detail)
        tail = []
        if self.progress is not None:
            tail.append(f"{100 * self.progress:.0f}%")
        tail.append(f"{duration(self.eta_s)} left" if self.eta_s is not None else f"{self.elapsed_s:.0f} s")
        return head + " ".join(parts) + " · " + " · ".join(tail)


class Terminal:
    """Draws :class:`Line`\\ s on ``stream`` (stderr by default)."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        width: int = 160,
    ) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.clock = clock
        self.width = width
        self.key: tuple[str, str | None] | None = None
        self.open = False  # a TTY line is drawn and not ended
        self.drawn_at = -1e9

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def _end_line(self) -> None:
        if self.open:
            self._write("\n")
            self.open = False

    def show(self, line: Line) -> None:
        """The running job's line: a new one when its step changed, else redrawn or repeated when due."""
        now = self.clock()
        key = (line.job, line.step)
        changed = key != self.key
        due = now - self.drawn_at >= (REDRAW_S if self.tty else PLAIN_EVERY_S)
        if not changed and not due:
            return
        self.key, self.drawn_at = key, now
        text = line.text()
        if self.tty:
            if changed:
                self._end_line()
            self._write("\r\033[K" + text[: self.width])
            self.open = True
        else:
            self._write(text + "\n")

    def finish(
        self, line: Line, *, error: str | None = None, hint: str | None = None, log: str | None = None
    ) -> None:
        """The job's last line; for a failure (or a block) its error, hint and log below it."""
        if self.tty:
            self._write("\r\033[K")
            self.open = False
        self._write(line.text() + "\n")
        for label, value in (("error", error), ("hint", hint), ("log", log)):
            if value:
                self._write(f"      {label}: {value}\n")
        self.key = None

    def note(self, text: str) -> None:
        """A line of its own (ends a line being redrawn first)."""
        self._end_line()
        self._write(text + "\n")
        self.key = None
