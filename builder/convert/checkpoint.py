"""Training checkpoints: an interrupted training continues where it stopped instead of starting over.

A checkpoint holds everything the next steps depend on: the model's and the optimizer's state, the step
reached, the random state the current epoch's batches were drawn from, torch's random state (dropout),
the running loss and the training time spent so far (the ``max_minutes`` cap counts all of it). Resuming
from it gives the same weights as a run that was never interrupted (same machine, same thread count).

It lives in ``$CACHE/checkpoints/<model id>/<key>.pt``, the key hashing what the trained weights depend
on, so it never changes what keys the trained folder; it is written atomically every
``$HYBRID_ROUTER_CHECKPOINT_MINUTES`` (default 5) and when the training is asked to stop, and removed
once the training has finished. A stop is asked by SIGINT or SIGTERM (the job runner forwards the one it
gets; the kernel sends SIGTERM when the runner dies) or by :func:`request_stop` (the job process calls it
when its runner's pipe is gone): the current step finishes, the checkpoint is saved, :class:`Stop` is
raised. Only a second SIGINT (Ctrl+C pressed again) stops at once, without saving; a SIGTERM after the
first request is the same request again (the runner forwarding the Ctrl+C the job got too).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from builder.common import cache_root, key_of, log

FORMAT = 1
DEFAULT_MINUTES = 5.0


def every_s() -> float:
    """Seconds between two checkpoints (``HYBRID_ROUTER_CHECKPOINT_MINUTES``; 0: after every step)."""
    raw = os.environ.get("HYBRID_ROUTER_CHECKPOINT_MINUTES", "").strip()
    return max(0.0, float(raw) * 60) if raw else DEFAULT_MINUTES * 60


def path_for(model_id: str, inputs: Any) -> Path:
    """Where the checkpoint of a training of ``model_id`` on ``inputs`` (what its weights depend on) goes."""
    plain = json.loads(json.dumps(inputs, default=dict))  # the manifest's frozen mappings, as plain JSON
    return cache_root() / "checkpoints" / model_id / f"{key_of(plain)}.pt"


@dataclass
class State:
    """What a training saves and resumes from (``epoch_rng``: the Python random state the current
    epoch's batches were drawn from)."""

    step: int
    total: int
    per_epoch: int
    model: dict[str, Any]
    optimizer: dict[str, Any]
    torch_rng: Any
    epoch_rng: Any
    running_loss: float
    train_s: float
    train_cpu_s: float
    resumed_from: list[int] = field(default_factory=list)


def save(path: Path, state: State) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save({"format": FORMAT, **state.__dict__}, tmp)
    tmp.replace(path)


def load(path: Path, *, total: int, per_epoch: int) -> State | None:
    """The checkpoint at ``path`` if it belongs to a training of this shape, else None (and it is removed)."""
    import torch

    if not path.is_file():
        return None
    try:
        raw = torch.load(path, map_location="cpu", weights_only=False)  # our own file, written by save()
        if raw.pop("format", None) != FORMAT:
            raise ValueError("another checkpoint format")
        state = State(**raw)
    except Exception as exc:  # a checkpoint that cannot be read is not worth a failed build: start over
        log(f"ignoring the unreadable checkpoint {path.name}: {exc}")
        path.unlink(missing_ok=True)
        return None
    if (state.total, state.per_epoch) != (total, per_epoch) or not 0 < state.step < total:
        log(f"ignoring the checkpoint {path.name}: it belongs to another training plan")
        path.unlink(missing_ok=True)
        return None
    return state


def remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()


class Stop(Exception):
    """The training was asked to stop (SIGINT/SIGTERM) and saved a checkpoint: the next build resumes it."""


#: set by :func:`request_stop`: every training of this process stops at its next step
_stop_event = threading.Event()


def request_stop() -> None:
    """Ask the running training (if any, now or later in this process) to save and stop after its step."""
    _stop_event.set()


@dataclass
class Schedule:
    """When to save: every ``every`` seconds of training, and at once when a stop is requested."""

    every: float
    last: float = field(default_factory=time.monotonic)
    stop_requested: bool = False

    def due(self) -> bool:
        if _stop_event.is_set():
            self.stop_requested = True
        return self.stop_requested or time.monotonic() - self.last >= self.every

    def saved(self) -> None:
        self.last = time.monotonic()


@contextlib.contextmanager
def stop_on_signals(schedule: Schedule) -> Iterator[None]:
    """SIGINT and SIGTERM ask the training to stop at the end of the current step (main thread only); a
    second SIGINT stops it at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def ask(signum: int, frame: FrameType | None) -> None:
        if schedule.stop_requested and signum == signal.SIGINT:  # Ctrl+C again: stop now, unsaved
            raise KeyboardInterrupt
        schedule.stop_requested = True

    previous = {s: signal.signal(s, ask) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
