"""Speech to text in a real browser (Pyodide worker + Transformers.js, whisper-tiny.en) against the known
sentences espeak-ng spoke and against transformers' Whisper on torch from the same converted weights.

The bar: the browser's text equals the torch reference's after normalization (same weights, same greedy
decoding: any difference is a bug in the conversion or the bridge), and its word error rate against the
sentence espeak-ng was given is at most 0.2 (synthetic speech is not perfectly intelligible to the tiny
model; the chosen voice and rate give 0 on these sentences with the reference, see tests/speech.py).
Resampled inputs (22.05 kHz stereo, 48 kHz float) go through a different filter than the reference's
input, so for them only the word error rate bar applies.
"""

from __future__ import annotations

import base64
import io
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.harness import RouterPage
from tests.speech import SENTENCES, normalize, speak, word_error_rate

pytestmark = pytest.mark.browser
#: the module's page is a first visit: its privacy test checks the model's downloads
FRESH_PROFILE = True

MODEL = "whisper-tiny.en"
MAX_WER = 0.2


@pytest.fixture(scope="module")
def samples() -> list[tuple[np.ndarray, bytes]]:
    """(16 kHz mono float32 samples, the same as a PCM16 WAV file) per sentence."""
    return [speak(text) for text in SENTENCES]


@pytest.fixture(scope="module")
def reference(samples: list[tuple[np.ndarray, bytes]]) -> list[str]:
    """transformers' Whisper on torch, greedy, from the HF folder the ONNX files were exported from."""
    import torch
    from builder.models import source_dir
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    folder = str(source_dir(MODEL))
    processor = WhisperProcessor.from_pretrained(folder)
    model = WhisperForConditionalGeneration.from_pretrained(folder).eval()
    texts = []
    for audio, _ in samples:
        features = processor(audio, sampling_rate=16_000, return_tensors="pt").input_features
        with torch.no_grad():
            ids = model.generate(features, do_sample=False, num_beams=1)
        texts.append(processor.batch_decode(ids, skip_special_tokens=True)[0].strip())
    return texts


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def transcribe_samples(rp: RouterPage, audio: np.ndarray, **options: Any) -> dict[str, Any]:
    result: dict[str, Any] = rp.call(
        "return await router.transcribe(Float32Array.from(arg.audio), arg.options);",
        {"audio": audio.tolist(), "options": options},
    )
    return result


def transcribe_wav(rp: RouterPage, data: bytes) -> dict[str, Any]:
    result: dict[str, Any] = rp.call(
        "const bytes = Uint8Array.from(atob(arg), (c) => c.charCodeAt(0));"
        "return await router.transcribe(new Blob([bytes], { type: 'audio/wav' }));",
        _b64(data),
    )
    return result


def _wav(samples: np.ndarray, rate: int, *, channels: int = 1, float32: bool = False) -> bytes:
    """A WAV file of ``samples`` repeated over ``channels``: PCM16, or IEEE float32 (written by hand:
    Python's wave module writes integer PCM only)."""
    frames = np.repeat(samples.astype(np.float32), channels)
    if not float32:
        out = io.BytesIO()
        with wave.open(out, "wb") as w:
            w.setnchannels(channels)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(np.clip(np.round(frames * 32767), -32768, 32767).astype("<i2").tobytes())
        return out.getvalue()
    body = frames.astype("<f4").tobytes()
    fmt = (3).to_bytes(2, "little") + channels.to_bytes(2, "little") + rate.to_bytes(4, "little")
    fmt += (rate * 4 * channels).to_bytes(4, "little") + (4 * channels).to_bytes(2, "little")
    fmt += (32).to_bytes(2, "little")
    size = len(fmt).to_bytes(4, "little")
    chunks = b"fmt " + size + fmt + b"data" + len(body).to_bytes(4, "little") + body
    return b"RIFF" + (4 + len(chunks)).to_bytes(4, "little") + b"WAVE" + chunks


def test_samples_match_the_torch_reference_and_the_spoken_text(
    router_page: RouterPage, samples: list[tuple[np.ndarray, bytes]], reference: list[str]
) -> None:
    for text, (audio, _), ref in zip(SENTENCES, samples, reference, strict=True):
        result = transcribe_samples(router_page, audio)
        assert normalize(result["text"]) == normalize(ref), (result["text"], ref)
        assert word_error_rate(text, result["text"]) <= MAX_WER, (text, result["text"])
        assert result["text"] == result["text"].strip() and result["model"] == MODEL
        assert result["seconds"] == pytest.approx(len(audio) / 16_000, abs=1e-3)
        route = result["route"]
        assert route["target"] == "local" and route["model"] == MODEL and route["reason"] == "task-default"
        assert route["dtype"] == "fp32" and route["ms"] > 0 and route["cost_usd"] == 0


def test_a_wav_blob_gives_the_same_text_as_its_samples(
    router_page: RouterPage, samples: list[tuple[np.ndarray, bytes]], reference: list[str]
) -> None:
    _, wav_bytes = samples[0]
    result = transcribe_wav(router_page, wav_bytes)
    assert normalize(result["text"]) == normalize(reference[0]), result["text"]
    assert result["seconds"] == pytest.approx(len(samples[0][0]) / 16_000, abs=1e-3)


@pytest.mark.parametrize(("rate", "channels", "float32"), [(22_050, 2, False), (48_000, 1, True)])
def test_other_rates_and_formats_are_resampled(
    router_page: RouterPage, rate: int, channels: int, float32: bool
) -> None:
    audio, _ = speak(SENTENCES[0], rate=rate)
    result = transcribe_wav(router_page, _wav(audio, rate, channels=channels, float32=float32))
    assert word_error_rate(SENTENCES[0], result["text"]) <= MAX_WER, result["text"]
    assert result["seconds"] == pytest.approx(len(audio) / rate, abs=2e-3)


@pytest.mark.parametrize(
    ("js", "field"),
    [
        ("await router.transcribe('speech.wav')", "audio"),
        ("await router.transcribe(new Float32Array(0))", "audio"),
        ("await router.transcribe(new Float32Array([0.1, NaN, 0.2]))", "audio"),
        ("await router.transcribe(new Float32Array(1600), { samplingRate: 12 })", "sampling_rate"),
        ("await router.transcribe(new Float32Array(4000 * 601), { samplingRate: 4000 })", "audio"),
        ("await router.transcribe(new Blob([new Uint8Array(64).fill(7)]))", "audio"),
        # a WAV header with no data chunk, and a compressed WAV format (0x0055: MP3 in WAV)
        ("await router.transcribe(new Blob([new Uint8Array([82,73,70,70,4,0,0,0,87,65,86,69])]))", "audio"),
        (
            "const h = new DataView(new ArrayBuffer(44)); const s = 'RIFF\\0\\0\\0\\0WAVEfmt ';"
            "for (let i = 0; i < 16; i++) h.setUint8(i, s.charCodeAt(i)); h.setUint32(16, 16, true);"
            "h.setUint16(20, 0x55, true); h.setUint16(22, 1, true); h.setUint32(24, 16000, true);"
            "h.setUint16(32, 2, true); h.setUint16(34, 16, true);"
            "await router.transcribe(h.buffer)",
            "audio",
        ),
        ("await router.call('transcribe', { audio: [0.1], wav: new Uint8Array(4) })", "audio"),
        ("await router.transcribe(new Float32Array(16000), { model: 'all-MiniLM-L6-v2' })", "model"),
    ],
)
def test_bad_audio_is_a_validation_error_with_a_hint(router_page: RouterPage, js: str, field: str) -> None:
    err = router_page.error_of(js)
    assert err["name"] == "ValidationError", err
    assert err["hint"] and len(err["hint"]) > 20, err
    assert err["details"].get("field") == field, err


def test_an_aborted_transcription_rejects_and_the_worker_keeps_serving(
    router_page: RouterPage, samples: list[tuple[np.ndarray, bytes]]
) -> None:
    audio = samples[1][0]
    err = router_page.error_of(
        "const c = new AbortController();"
        "const p = router.transcribe(Float32Array.from(arg), { signal: c.signal });"
        "setTimeout(() => c.abort(), 300); await p",
        audio.tolist(),
    )
    assert err["name"] == "AbortError", err
    assert word_error_rate(SENTENCES[1], transcribe_samples(router_page, audio)["text"]) <= MAX_WER


def test_transcription_stays_on_the_local_server(router_page: RouterPage) -> None:
    """Privacy: every request of this module's page and its worker went to our own server."""
    urls = router_page.requests.urls
    assert any(u.endswith("/onnx/decoder_model_merged.onnx") and MODEL in u for u in urls), urls
    assert router_page.requests.foreign(router_page.server.origin) == []


def test_the_page_transcribes_a_file_and_the_microphone(
    playwright_instance: Any, server: Any, tmp_path: Path
) -> None:
    """The transcription panel: a WAV file picked in the file input, then a recording from Chromium's fake
    microphone (fed the same speech at 48 kHz), which MediaRecorder encodes as webm/Opus and the client
    decodes with the page's OfflineAudioContext before the worker transcribes it."""
    from tests.harness import CHROMIUM_FLAGS, chromium_path

    wav = tmp_path / "speech.wav"
    wav.write_bytes(_wav(speak(SENTENCES[1], rate=48_000)[0], 48_000))
    browser = playwright_instance.chromium.launch(
        executable_path=chromium_path(),
        headless=True,
        args=[
            *CHROMIUM_FLAGS,
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}%noloop",
        ],
    )
    try:
        page = browser.new_context(permissions=["microphone"]).new_page()
        page.goto(server.url)
        # functions, not expressions: Playwright compiles an expression with eval, which the page's CSP refuses
        page.wait_for_function("() => !document.getElementById('asr-file').disabled", timeout=120_000)
        page.set_input_files("#asr-file", str(wav))
        done = (
            "() => (document.getElementById('asr-route').textContent + "
            "document.getElementById('asr-error').textContent).length > 0"
        )
        page.wait_for_function(done, timeout=300_000)
        assert page.inner_text("#asr-error") == ""
        assert word_error_rate(SENTENCES[1], page.inner_text("#asr-text")) <= MAX_WER
        assert "local" in page.inner_text("#asr-route") and MODEL in page.inner_text("#asr-route")
        assert page.is_enabled("#asr-record")
        page.evaluate("document.getElementById('asr-route').textContent = ''")
        page.click("#asr-record")
        page.wait_for_timeout(int(len(speak(SENTENCES[1])[0]) / 16) + 1500)  # the whole sentence, in ms
        page.click("#asr-record")
        page.wait_for_function(done, timeout=300_000)
        assert page.inner_text("#asr-error") == ""
        heard = page.inner_text("#asr-text")
        assert word_error_rate(SENTENCES[1], heard) <= MAX_WER, heard
    finally:
        browser.close()


def test_q8_transcribes_like_fp32(
    router_page: RouterPage, samples: list[tuple[np.ndarray, bytes]], reference: list[str]
) -> None:
    """The smaller variant ships only because it transcribes identically (see the manifest's dtype_reason)."""
    for (audio, _), ref in zip(samples, reference, strict=True):
        result = transcribe_samples(router_page, audio, dtype="q8")
        assert result["dtype"] == "q8" and result["route"]["dtype"] == "q8"
        assert normalize(result["text"]) == normalize(ref), (result["text"], ref)


def test_audio_over_30_s_is_transcribed_in_overlapping_windows(router_page: RouterPage) -> None:
    """Whisper hears 30 s at a time: longer audio goes through 30 s windows with 5 s of overlap, merged by
    the pipeline on their common tokens. Words at the seams may change, so only the word error rate bar
    applies. (The sentences differ: the merge can drop a phrase repeated across a seam.)"""
    from builder.convert.fidelity_asr import SENTENCES as DISTINCT

    gap = np.zeros(24_000, np.float32)  # 1.5 s of silence between the sentences
    audio = np.concatenate([part for text in DISTINCT for part in (speak(text)[0], gap)])
    assert len(audio) > 32 * 16_000
    result = transcribe_samples(router_page, audio)
    assert word_error_rate(" ".join(DISTINCT), result["text"]) <= MAX_WER, result["text"]
    assert result["seconds"] == pytest.approx(len(audio) / 16_000, abs=1e-3)
