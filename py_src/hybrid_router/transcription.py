"""The speech-to-text task's step: run Whisper on the device over the prepared audio, and its result.

Speech recognition always runs locally (the audio stays on the device; no cloud speech provider is
configured). The audio was made 16 kHz mono where the request entered
(:class:`~hybrid_router.requests.TranscribeRequest`, :mod:`hybrid_router.audio`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hybrid_router.errors import InferenceError
from hybrid_router.manifest import ModelEntry
from hybrid_router.requests import TranscribeRequest
from hybrid_router.route import Route
from hybrid_router.runtime import LocalRuntime, ProgressCallback

__all__ = ["TASK", "TranscribeResult", "text_of"]

TASK = "automatic-speech-recognition"


@dataclass(frozen=True)
class TranscribeResult:
    """The text of the audio (stripped of Whisper's leading space), and where it was computed."""

    text: str
    model: str
    dtype: str
    seconds: float  # the audio's duration
    route: Route

    def to_wire(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "model": self.model,
            "dtype": self.dtype,
            "seconds": round(self.seconds, 3),
            "route": self.route.to_wire(),
        }


async def text_of(
    runtime: LocalRuntime,
    entry: ModelEntry,
    dtype: str,
    request: TranscribeRequest,
    on_progress: ProgressCallback | None = None,
) -> str:
    """The text spoken in ``request.samples``."""
    raw = await runtime.transcribe(entry, dtype, request.samples, on_progress=on_progress)
    if not isinstance(raw, str):
        raise InferenceError(
            f"{entry.id} returned {type(raw).__name__} instead of text",
            model=entry.id,
            dtype=dtype,
            task=TASK,
        )
    return raw.strip()
