"""The transcribe task through Router and its wire handler, on a fake runtime (what reaches the runtime,
the route record, typed errors, cancellation)."""

from __future__ import annotations

import asyncio
import io
import wave
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from tests.unit.fakes import FakeRuntime, _model, as_runtime, fake_manifest_dict

from hybrid_router import wire
from hybrid_router.errors import InferenceError, ModelLoadError, ValidationError
from hybrid_router.manifest import Manifest, ModelEntry
from hybrid_router.protocol import Dispatcher
from hybrid_router.router import Router

ASR = "fake-whisper"


def asr_manifest(*, with_model: bool = True) -> Manifest:
    data = fake_manifest_dict()
    if with_model:
        data["models"].append(_model(ASR, ["automatic-speech-recognition"]))
    return Manifest.from_dict(data)


@dataclass
class SpeechRuntime(FakeRuntime):
    """FakeRuntime that "transcribes" by reporting what it received."""

    heard: list[tuple[str, str, np.ndarray]] = field(default_factory=list)
    asr_fail: BaseException | None = None
    text: str = " Hello there."

    async def transcribe(
        self, model: ModelEntry, dtype: str, audio: np.ndarray, *, on_progress: Any = None
    ) -> Any:
        self.heard.append((model.id, dtype, audio))
        self._progress(model, dtype, on_progress)
        self.started.set()
        await self._wait_gate()
        if self.asr_fail is not None:
            raise self.asr_fail
        return self.text


def _wav(samples: np.ndarray, rate: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.round(samples * 32767).astype("<i2").tobytes())
    return out.getvalue()


async def test_samples_reach_the_runtime_at_16_khz_and_the_route_is_local() -> None:
    runtime = SpeechRuntime()
    events: list[dict[str, Any]] = []
    router = Router(as_runtime(runtime), asr_manifest())
    result = await router.transcribe(np.zeros(8_000, np.float32), on_progress=events.append)
    assert result.text == "Hello there." and result.model == ASR and result.dtype == "q8"
    assert result.seconds == 0.5
    model, dtype, audio = runtime.heard[0]
    assert (model, dtype) == (ASR, "q8") and audio.dtype == np.float32 and audio.shape == (8_000,)
    wire = result.to_wire()
    assert wire["route"]["target"] == "local" and wire["route"]["reason"] == "task-default"
    assert wire["route"]["model"] == ASR and wire["route"]["device"] == "wasm" and wire["route"]["ms"] >= 0
    assert events and events[0]["model"] == ASR


async def test_wav_bytes_are_decoded_and_resampled() -> None:
    runtime = SpeechRuntime()
    tone = (0.25 * np.sin(2 * np.pi * 300 * np.arange(44_100) / 44_100)).astype(np.float32)
    result = await Router(as_runtime(runtime), asr_manifest()).transcribe(_wav(tone, 44_100), dtype="fp32")
    assert result.dtype == "fp32" and result.seconds == 1.0
    assert runtime.heard[0][2].shape == (16_000,)


async def test_the_wire_handler_takes_audio_or_wav_and_refuses_both_or_neither() -> None:
    sent: list[dict[str, Any]] = []
    runtime = SpeechRuntime()
    dispatcher = Dispatcher(wire.handlers(Router(as_runtime(runtime), asr_manifest())), sent.append)
    # what a Float32Array becomes in the worker
    samples = memoryview(np.zeros(1_600, np.float32))  # type: ignore[arg-type]  # numpy declares ndarray's __buffer__ on Python 3.12+ only
    calls = [
        {"audio": samples},
        {"audio": samples, "sampling_rate": 8_000},
        {"wav": memoryview(_wav(np.zeros(800, np.float32), 8_000))},
        {"audio": samples, "wav": memoryview(b"RIFF")},
        {},
        {"wav": [1, 2, 3]},
        {"audio": samples, "language": "fr"},
    ]
    for i, params in enumerate(calls, 1):
        dispatcher.receive({"id": i, "type": "call", "method": "transcribe", "params": params})
    for _ in range(50):
        await asyncio.sleep(0)
    replies = {m["id"]: m for m in sent if m["type"] in ("result", "error")}
    assert [replies[i]["type"] for i in range(1, 4)] == ["result"] * 3
    assert [replies[i]["value"]["seconds"] for i in range(1, 4)] == [0.1, 0.2, 0.1]
    for i in range(4, 8):
        assert replies[i]["error"]["name"] == "ValidationError", replies[i]
        assert replies[i]["error"]["hint"]
    assert "language" in replies[7]["error"]["message"]


async def test_model_choice_and_missing_model() -> None:
    router = Router(as_runtime(SpeechRuntime()), asr_manifest())
    with pytest.raises(ValidationError, match="does not transcribe") as info:
        await router.transcribe([0.0] * 100, model="fake-embed")
    assert ASR in info.value.hint
    with pytest.raises(ValidationError, match="no speech recognition model"):
        await Router(as_runtime(SpeechRuntime()), asr_manifest(with_model=False)).transcribe([0.0] * 100)
    with pytest.raises(ValidationError, match="no dtype"):
        await router.transcribe([0.0] * 100, dtype="int4")


async def test_runtime_failures_are_typed() -> None:
    load = ModelLoadError("gone", model=ASR)
    with pytest.raises(ModelLoadError):
        await Router(as_runtime(SpeechRuntime(asr_fail=load)), asr_manifest()).transcribe([0.0] * 100)
    with pytest.raises(InferenceError, match="RuntimeError: boom") as info:
        await Router(as_runtime(SpeechRuntime(asr_fail=RuntimeError("boom"))), asr_manifest()).transcribe(
            [0.0] * 100
        )
    assert info.value.details["task"] == "automatic-speech-recognition"
    with pytest.raises(InferenceError, match="instead of text"):
        no_text = SpeechRuntime(text=None)  # type: ignore[arg-type]  # a runtime that answers no text
        await Router(as_runtime(no_text), asr_manifest()).transcribe([0.0] * 100)


async def test_cancellation_reaches_the_runtime_untouched() -> None:
    runtime = SpeechRuntime(gate=asyncio.Event())
    task = asyncio.ensure_future(Router(as_runtime(runtime), asr_manifest()).transcribe([0.0] * 100))
    await runtime.started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert runtime.cancelled
