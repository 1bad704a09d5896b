"""One build job in its own process: ``python -m builder.job_process EVENTS_FD MODULE:FUNCTION [ARG ...]``.

The job runner (:mod:`builder.jobs`) starts it with stdout and stderr going to the job's log file, so
everything the libraries print (torch's TracerWarnings, transformers' notices, optimum's and pip's
chatter) lands there and not on the terminal. What the runner needs comes back on the pipe ``EVENTS_FD``,
one JSON object a line:

- ``{"type": "report", "step", "detail", "done", "total"}``: a progress report
  (:func:`builder.progress.report`), at most one every :data:`MIN_INTERVAL_S` unless the step changes;
- ``{"type": "result", "state": "done" | "blocked" | "failed", "message", "hint"}``: the outcome, last.
  ``blocked`` is a :class:`~builder.common.SkipBuild` (something the job needs is not here, e.g. the
  training data); ``failed`` any other error. A process that ends without a result crashed.

A job whose runner went away (killed, or stopped without waiting) finds the pipe closed: its reports
become no-ops instead of a ``BrokenPipeError``, and a training saves its checkpoint at the end of its
step and stops (:func:`builder.convert.checkpoint.request_stop`); other work runs to its end, so what it
built is cached for the next run. SIGINT and SIGTERM stop a training the same way
(:func:`builder.convert.checkpoint.stop_on_signals`); the process then exits with status 130.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import json
import logging
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from typing import IO, Any

from .common import BuildError, SkipBuild
from .convert.checkpoint import Stop, request_stop
from .progress import Report, receiving

MIN_INTERVAL_S = 0.5


class Events:
    """Writes the JSON lines to the runner; reports are thinned to one per :data:`MIN_INTERVAL_S`."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.last_step: str | None = None
        self.last_at = 0.0
        self.pending: Report | None = None
        self.closed = False  # the runner's end of the pipe is gone

    def send(self, obj: dict[str, Any]) -> None:
        if self.closed:
            return
        try:
            self.out.write(json.dumps(obj) + "\n")
            self.out.flush()
        except OSError as exc:  # BrokenPipeError: nobody reads; the work goes on to a point it can keep
            if exc.errno not in (errno.EPIPE, errno.EBADF):
                raise
            self.closed = True
            print("the job runner is gone: stopping at the next checkpoint", file=sys.stderr, flush=True)
            request_stop()

    def report(self, report: Report) -> None:
        now = time.monotonic()
        complete = report.total is not None and report.done is not None and report.done >= report.total
        if report.step != self.last_step or complete or now - self.last_at >= MIN_INTERVAL_S:
            self.send(report.to_json())
            self.last_step, self.last_at, self.pending = report.step, now, None
        else:
            self.pending = report

    def flush(self) -> None:
        if self.pending is not None:
            self.send(self.pending.to_json())
            self.pending = None


def resolve(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    fn: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return fn


def run(events: Events, target: str, args: list[str]) -> int:
    """Run the job; send its result; the exit status is 0 unless it failed."""
    try:
        with receiving(events.report):
            message = resolve(target)(*args)
        events.flush()
        events.send(
            {"type": "result", "state": "done", "message": message if isinstance(message, str) else None}
        )
        return 0
    except Stop as exc:  # asked to stop: a checkpoint is saved, the next run resumes
        print(f"stopped: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        return 130
    except SkipBuild as exc:
        print(f"blocked: {exc}", file=sys.stderr)
        events.send({"type": "result", "state": "blocked", "message": exc.message, "hint": exc.hint or None})
        return 0
    except BuildError as exc:
        traceback.print_exc()
        events.send({"type": "result", "state": "failed", "message": exc.message, "hint": exc.hint or None})
        return 1
    except Exception as exc:
        traceback.print_exc()
        events.send(
            {"type": "result", "state": "failed", "message": f"{type(exc).__name__}: {exc}", "hint": None}
        )
        return 1


def main(argv: list[str]) -> int:
    fd, target, *args = argv
    # every library warning once per place, into the log (stderr is the log file); logging too
    warnings.simplefilter("default")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    out = os.fdopen(int(fd), "w", encoding="utf-8")
    try:
        return run(Events(out), target, args)
    finally:
        with contextlib.suppress(OSError):  # a broken pipe with a line still buffered
            out.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
