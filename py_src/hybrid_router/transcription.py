"""The speech-to-text task: prepare the audio, run Whisper on the device, record the route.

Speech recognition always runs locally (the audio stays on the device; no cloud speech provider is
configured). The audio is a WAV file or float samples, made 16 kHz mono by :mod:`hybrid_router.audio`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hybrid_router import audio as audio_mod
from hybrid_router import validation
from hybrid_router.errors import HybridRouterError, InferenceError
from hybrid_router.local.runtime import LocalRuntime, ProgressCallback
from hybrid_router.manifest import Manifest, ModelEntry
from hybrid_router.route import REASON_TASK_DEFAULT, Route

__all__ = ["TASK", "TranscribeResult", "speech_model", "transcribe"]

TASK = "automatic-speech-recognition"
_RULE = "speech recognition runs on the device (the audio never leaves it)"


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


def speech_model(manifest: Manifest, model_id: str | None = None) -> ModelEntry:
    """``model_id`` if it is a speech recognition model of the manifest, else the manifest's first one."""
    return manifest.choose(TASK, model_id, kind="speech recognition", does="transcribe speech")


async def transcribe(
    runtime: LocalRuntime,
    manifest: Manifest,
    audio: object,
    *,
    sampling_rate: object = audio_mod.SAMPLE_RATE,
    model_id: str | None = None,
    dtype: str | None = None,
    on_progress: ProgressCallback | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> TranscribeResult:
    """The text spoken in ``audio``: WAV bytes, or float samples at ``sampling_rate`` (default 16 kHz).

    Raises ``ValidationError`` for bad audio or arguments, what the runtime raises for load and inference
    failures (anything unexpected as ``InferenceError``); cancellation propagates untouched.
    """
    entry = speech_model(manifest, validation.optional_str(model_id, "model"))
    resolved = entry.variant(validation.optional_str(dtype, "dtype")).dtype
    started = clock()
    samples = audio_mod.prepare(audio, sampling_rate)
    try:
        raw = await runtime.transcribe(entry, resolved, samples, on_progress=on_progress)
    except HybridRouterError:
        raise
    except Exception as exc:  # CancelledError is a BaseException: it passes through untouched
        raise InferenceError(
            f"{entry.id} failed on {audio_mod.duration_s(samples):.1f} s of audio: "
            f"{type(exc).__name__}: {exc}",
            model=entry.id,
            dtype=resolved,
            task=TASK,
        ) from exc
    if not isinstance(raw, str):
        raise InferenceError(
            f"{entry.id} returned {type(raw).__name__} instead of text",
            model=entry.id,
            dtype=resolved,
            task=TASK,
        )
    ms = (clock() - started) * 1000.0
    device = getattr(runtime, "device", None)
    route = Route(
        target="local", reason=REASON_TASK_DEFAULT, rule=_RULE, model=entry.id, ms=ms, dtype=resolved,
        device=device if isinstance(device, str) else None,
    )
    return TranscribeResult(
        text=raw.strip(), model=entry.id, dtype=resolved, seconds=audio_mod.duration_s(samples), route=route
    )
