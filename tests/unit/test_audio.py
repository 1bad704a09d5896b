"""hybrid_router.audio: WAV decoding (formats written independently here), downmixing, resampling against
scipy's polyphase filter and analytic tones, and the checks of prepare()."""

from __future__ import annotations

import io
import struct
import wave
from collections.abc import Callable

import numpy as np
import pytest

from hybrid_router.audio import MAX_SECONDS, SAMPLE_RATE, decode_wav, is_wav_bytes, prepare, resample, to_mono
from hybrid_router.errors import ValidationError


def _riff(fmt: bytes, body: bytes, *, extra: bytes = b"", riff: bytes = b"RIFF") -> bytes:
    chunks = extra + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    chunks += b"data" + struct.pack("<I", len(body)) + body
    return riff + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def _fmt(tag: int, channels: int, rate: int, bits: int) -> bytes:
    block = channels * bits // 8
    return struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)


def _tone(rate: int, seconds: float = 1.0, freq: float = 440.0) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)).astype(np.float32)


def test_pcm16_written_by_the_wave_module() -> None:
    tone = _tone(16_000)
    ints = np.round(tone * 32767).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(np.stack([ints, -ints], axis=1).tobytes())
    wav = decode_wav(out.getvalue())
    assert (wav.sample_rate, wav.channels, wav.bits, wav.encoding) == (16_000, 2, 16, "pcm")
    assert wav.samples.shape == (16_000, 2) and wav.seconds == 1.0
    np.testing.assert_array_equal(wav.samples[:, 0], ints / np.float32(32768))
    np.testing.assert_array_equal(to_mono(wav.samples), np.zeros(16_000, np.float32))


@pytest.mark.parametrize(
    ("tag", "bits", "encode", "tolerance"),
    [
        (1, 8, lambda x: np.round(x * 127 + 128).astype(np.uint8).tobytes(), 1 / 100),
        (
            1,
            24,
            lambda x: b"".join(int(v).to_bytes(3, "little", signed=True) for v in np.round(x * 8388607)),
            1e-6,
        ),
        (1, 32, lambda x: np.round(x * 2147483647).astype("<i4").tobytes(), 1e-8),
        (3, 32, lambda x: x.astype("<f4").tobytes(), 0.0),
        (3, 64, lambda x: x.astype("<f8").tobytes(), 0.0),
    ],
)
def test_integer_and_float_formats(
    tag: int, bits: int, encode: Callable[[np.ndarray], bytes], tolerance: float
) -> None:
    tone = _tone(8_000, 0.25)
    wav = decode_wav(_riff(_fmt(tag, 1, 8_000, bits), encode(tone)))
    assert wav.encoding == ("pcm" if tag == 1 else "float") and wav.bits == bits
    np.testing.assert_allclose(wav.samples[:, 0], tone, atol=tolerance + 1e-7)


def test_extensible_format_other_chunks_odd_padding_and_a_streamed_data_size() -> None:
    tone = _tone(16_000, 0.1)
    ext = _fmt(0xFFFE, 1, 16_000, 32) + struct.pack("<HHI", 22, 32, 4) + struct.pack("<H", 3) + bytes(14)
    extra = b"LIST" + struct.pack("<I", 3) + b"abc" + b"\0"  # an odd-sized chunk is padded to even
    data = _riff(ext, tone.astype("<f4").tobytes(), extra=extra)
    np.testing.assert_array_equal(decode_wav(data).samples[:, 0], tone)
    # a writer that could not seek back leaves the data size at 0xFFFFFFFF: read to the end
    streamed = data[: data.index(b"data") + 4] + b"\xff\xff\xff\xff" + tone.astype("<f4").tobytes()
    np.testing.assert_array_equal(decode_wav(streamed).samples[:, 0], tone)
    # a truncated file keeps its whole frames
    assert decode_wav(data[:-6]).samples.shape == (len(tone) - 2, 1)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "not a WAV file"),
        (b"OggS" + bytes(40), "not a WAV file"),
        (b"RIFF\0\0\0\0WAVE", "no 'fmt '"),
        (_riff(_fmt(0x55, 1, 16_000, 16), bytes(8)), "not supported"),
        (_riff(_fmt(1, 1, 16_000, 12), bytes(8)), "not supported"),
        (_riff(struct.pack("<HHIIHH", 1, 2, 16_000, 0, 3, 16), bytes(8)), "inconsistent"),
    ],
)
def test_bad_wav_files_are_validation_errors(data: bytes, words: str) -> None:
    with pytest.raises(ValidationError, match=words) as info:
        prepare(data)
    assert "WAV" in info.value.hint and info.value.details["field"] == "audio"


@pytest.mark.parametrize("src", [8_000, 11_025, 22_050, 44_100, 48_000])
def test_resample_matches_scipy_and_the_analytic_tone(src: int) -> None:
    from scipy.signal import resample_poly

    x = (_tone(src, 1.0, 440.0) + _tone(src, 1.0, 3000.0)).astype(np.float32)
    y = resample(x, src, SAMPLE_RATE)
    assert len(y) == len(x) * SAMPLE_RATE // src and y.dtype == np.float32
    g = np.gcd(src, SAMPLE_RATE)
    ref = resample_poly(x.astype(np.float64), SAMPLE_RATE // g, src // g)
    edge = 400  # both filters see zeros past the ends
    np.testing.assert_allclose(y[edge:-edge], ref[edge : len(y) - edge], atol=2e-3)
    t = np.arange(len(y)) / SAMPLE_RATE
    exact = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.5 * np.sin(2 * np.pi * 3000 * t)
    np.testing.assert_allclose(y[edge:-edge], exact[edge:-edge], atol=1e-4)


def test_resample_removes_what_the_new_rate_cannot_hold() -> None:
    y = resample(_tone(22_050, 1.0, 9_000.0), 22_050, SAMPLE_RATE)  # above the new Nyquist (8 kHz)
    assert np.abs(y[400:-400]).max() < 1e-3


def test_prepare_accepts_buffers_lists_and_arrays() -> None:
    tone = _tone(SAMPLE_RATE, 0.5)
    # a JS Float32Array arrives in Python as a memoryview
    from_buffer = prepare(memoryview(tone))  # type: ignore[arg-type]  # numpy declares ndarray's __buffer__ on Python 3.12+ only
    np.testing.assert_array_equal(from_buffer, tone)
    np.testing.assert_array_equal(prepare(tone.tolist()), tone)
    np.testing.assert_array_equal(prepare(tone.astype(np.float64)), tone)
    assert len(prepare(_tone(48_000, 0.5), sampling_rate=48_000)) == SAMPLE_RATE // 2
    not_wav = memoryview(tone)  # type: ignore[arg-type]  # numpy declares ndarray's __buffer__ on Python 3.12+ only
    assert is_wav_bytes(b"RIFF") and is_wav_bytes(memoryview(b"RIFF")) and not is_wav_bytes(not_wav)


@pytest.mark.parametrize(
    ("audio", "rate", "field", "words"),
    [
        ([], SAMPLE_RATE, "audio", "no samples"),
        ([0.1, float("nan")], SAMPLE_RATE, "audio", "NaN"),
        ("speech.wav", SAMPLE_RATE, "audio", "got string"),
        ([0.1, "x"], SAMPLE_RATE, "audio", "got array"),
        (np.zeros((2, 2), np.float32), SAMPLE_RATE, "audio", "1-D"),
        ([0.0] * 10, 12, "sampling_rate", "between"),
        ([0.0] * 10, True, "sampling_rate", "between"),
        (np.zeros(4_000 * (MAX_SECONDS + 1), np.float32), 4_000, "audio", "limit"),
    ],
)
def test_prepare_refuses_bad_audio(audio: object, rate: object, field: str, words: str) -> None:
    with pytest.raises(ValidationError, match=words) as info:
        prepare(audio, rate)
    assert info.value.details["field"] == field and info.value.hint


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (_riff(_fmt(1, 1, 16_000, 16)[:10], b"\0" * 8), "header needs 16"),  # a truncated 'fmt ' chunk
        (_riff(_fmt(1, 200, 16_000, 16), b"\0" * 400), "200 channels"),
        (_riff(_fmt(1, 1, 1_000_000, 16), b"\0" * 400), "between 4000 and 384000"),
        (_riff(_fmt(1, 1, 4_000, 8), b"\0" * (4_000 * (MAX_SECONDS + 1))), "more than the limit"),
    ],
)
def test_the_header_is_bounded_before_the_samples_are_decoded(data: bytes, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        decode_wav(data)


def test_an_odd_rate_resamples_in_bounded_memory() -> None:
    import tracemalloc

    samples = _tone(191_999, 0.25)
    tracemalloc.start()
    try:
        out = resample(samples, 191_999)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64e6  # the exact ratio would tabulate 16,000 phases (over a gigabyte of filter)
    assert abs(len(out) - 0.25 * SAMPLE_RATE) <= 1
    expected = 0.5 * np.sin(2 * np.pi * 440.0 * np.arange(len(out)) / SAMPLE_RATE)
    # the nearest ratio with few phases: a timing error of parts per million, 1% of the amplitude at most
    assert np.max(np.abs(out[200:-200] - expected[200:-200])) < 5e-3
