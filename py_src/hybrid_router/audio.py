"""Audio for speech recognition: WAV decoding, downmixing and resampling to 16 kHz mono float32.

Pure Python + numpy, so it runs the same in the worker and under CPython's unit tests. WAV is parsed here
rather than in the page: a worker has no ``AudioContext``, the stdlib ``wave`` module reads integer PCM
only (no float32 WAV, which is what browsers' recorders and most tools write), and one implementation
tested in CPython beats two.

- :func:`decode_wav`: RIFF/WAVE (also RF64-style "unknown size" data chunks), PCM 8/16/24/32-bit integer,
  IEEE float 32/64, ``WAVE_FORMAT_EXTENSIBLE``; any channel count and sample rate.
- :func:`to_mono`: the mean of the channels.
- :func:`resample`: band-limited (Kaiser-windowed sinc) resampling, any rate to any rate; the
  anti-aliasing cutoff follows the lower rate.
- :func:`prepare`: the one entry point: WAV bytes or float samples (at ``sampling_rate``) -> 16 kHz mono
  float32, checked (non-empty, finite, at most :data:`MAX_SECONDS`), each failure a ``ValidationError``
  with a hint.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    from hybrid_router._lazy import numpy as np

from hybrid_router.errors import ValidationError
from hybrid_router.validation import type_name

__all__ = [
    "MAX_SECONDS",
    "SAMPLE_RATE",
    "WavAudio",
    "decode_wav",
    "duration_s",
    "is_wav_bytes",
    "prepare",
    "resample",
    "to_mono",
]

#: What Whisper's feature extractor expects.
SAMPLE_RATE = 16_000
#: The longest input accepted (10 minutes): longer recordings are split by the caller.
MAX_SECONDS = 600
#: Accepted input sample rates (telephone to studio); outside this a rate is more likely a mistake.
MIN_RATE, MAX_RATE = 4_000, 384_000
#: The most channels a WAV file may declare (7.1 surround is 8).
MAX_CHANNELS = 8
#: The resampler's memory bound: filter table entries, and input values one matrix product reads.
_MAX_BANK = 1 << 20

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
_HINT_WAV = (
    "Pass a WAV file (PCM 8/16/24/32-bit or float32/64, any rate and channel count) or a Float32Array "
    "of 16 kHz mono samples; decode other formats (mp3, ogg, webm) with AudioContext.decodeAudioData first."
)

Samples: TypeAlias = "npt.NDArray[np.float32]"


@dataclass(frozen=True, eq=False)
class WavAudio:
    """Decoded WAV: ``samples`` float32 of shape ``(frames, channels)`` in [-1, 1]."""

    samples: Samples
    sample_rate: int
    channels: int
    bits: int
    encoding: str  # "pcm" (integer) or "float"

    @property
    def seconds(self) -> float:
        return int(self.samples.shape[0]) / self.sample_rate


def _bad_wav(message: str, **details: Any) -> ValidationError:
    return ValidationError(f"audio: {message}", hint=_HINT_WAV, field="audio", **details)


def _chunks(data: bytes) -> dict[bytes, tuple[int, int]]:
    """``{chunk id: (offset, size)}`` of a RIFF/WAVE file (the first of each id)."""
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RF64") or data[8:12] != b"WAVE":
        head = data[:4].decode("latin-1") if data else ""
        raise _bad_wav(f"not a WAV file (it starts with {head!r}, a WAV file with 'RIFF....WAVE')")
    found: dict[bytes, tuple[int, int]] = {}
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        start = pos + 8
        if cid == b"data" and (size == 0xFFFFFFFF or start + size > len(data)):
            size = len(data) - start  # streamed or truncated writer: take what is there
        found.setdefault(cid, (start, size))
        pos = start + size + (size & 1)  # chunks are padded to an even size
    return found


def decode_wav(data: bytes | bytearray | memoryview) -> WavAudio:
    """Decode a WAV file into float32 samples in [-1, 1] (see the module docstring for what is read)."""
    raw = bytes(data)
    chunks = _chunks(raw)
    if b"fmt " not in chunks or b"data" not in chunks:
        raise _bad_wav("the WAV file has no " + ("'fmt '" if b"fmt " not in chunks else "'data'") + " chunk")
    off, size = chunks[b"fmt "]
    if size < 16 or off + 16 > len(raw):
        raise _bad_wav(f"the 'fmt ' chunk is {min(size, len(raw) - off)} bytes, a WAV header needs 16")
    tag, channels, rate, _, block, bits = struct.unpack_from("<HHIIHH", raw, off)
    if tag == _EXTENSIBLE and size >= 40 and off + 26 <= len(raw):
        tag = struct.unpack_from("<H", raw, off + 24)[0]  # the sub-format GUID starts with the format tag
    encoding = {_PCM: "pcm", _FLOAT: "float"}.get(tag)
    supported = {"pcm": (8, 16, 24, 32), "float": (32, 64)}
    if encoding is None or bits not in supported[encoding]:
        raise _bad_wav(
            f"WAV format {tag:#06x} with {bits}-bit samples is not supported",
            format_tag=tag,
            bits=bits,
        )
    width = bits // 8
    if channels < 1 or block != channels * width:
        raise _bad_wav(f"inconsistent WAV header ({channels} channels, block {block}, {bits} bits)")
    if channels > MAX_CHANNELS:
        raise _bad_wav(
            f"the WAV file declares {channels} channels, more than {MAX_CHANNELS}", channels=channels
        )
    _rate(rate)  # before decoding: a rate out of range is refused without reading the samples
    start, length = chunks[b"data"]
    frames = length // block
    if frames / rate > MAX_SECONDS:
        raise _too_long(frames / rate)
    body = raw[start : start + frames * block]
    return WavAudio(_samples(body, encoding, width).reshape(frames, channels), rate, channels, bits, encoding)


def _samples(body: bytes, encoding: str, width: int) -> Samples:
    if encoding == "float":
        return np.frombuffer(body, "<f4" if width == 4 else "<f8").astype(np.float32)
    if width == 1:  # 8-bit WAV is unsigned
        return ((np.frombuffer(body, np.uint8).astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    if width == 3:
        b = np.frombuffer(body, np.uint8).reshape(-1, 3).astype(np.int32)
        ints = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8  # sign-extend 24 bits
        return (ints / float(1 << 23)).astype(np.float32)
    ints = np.frombuffer(body, "<i2" if width == 2 else "<i4")
    return (ints / float(1 << (8 * width - 1))).astype(np.float32)


def to_mono(samples: npt.NDArray[Any]) -> Samples:
    """``(frames, channels)`` (or already 1-D) -> ``(frames,)``, the mean of the channels."""
    if samples.ndim == 1:
        return samples.astype(np.float32, copy=False)
    mono: Samples = samples.mean(axis=1, dtype=np.float64).astype(np.float32)
    return mono


def resample(
    x: npt.NDArray[Any], src_rate: int, dst_rate: int = SAMPLE_RATE, *, half_width: int = 32
) -> Samples:
    """``x`` (1-D) from ``src_rate`` to ``dst_rate`` by Kaiser-windowed sinc interpolation (polyphase).

    Output sample ``n`` sits at input time ``t = n * src / dst`` and is ``sum_k x[k] * h(t - k)`` over the
    inputs within ``half_width`` periods of the lower rate, ``h`` a sinc cut at 0.95 of the lower Nyquist
    frequency under a Kaiser window (beta 8). With ``g = gcd(src, dst)`` the fractional part of ``t`` takes
    only ``dst / g`` values: the filter is tabulated once per phase, and the outputs of one phase are one
    matrix-vector product over a strided view of the input. Deterministic.

    Memory stays bounded whatever the rates: when ``dst / g`` phases would make the filter table larger
    than :data:`_MAX_BANK` entries (an odd rate such as 191,999 Hz has 16,000 phases), the ratio is
    replaced by the nearest one with few enough phases (a timing error of a few parts per million), and
    the products run over blocks of outputs.
    """
    signal = np.asarray(x, dtype=np.float64)
    if src_rate == dst_rate:
        return signal.astype(np.float32)
    scale = min(1.0, dst_rate / src_rate)  # < 1 when downsampling: wider filter, lower cutoff
    cutoff = 0.95 * scale
    reach = int(math.ceil(half_width / scale))
    taps = np.arange(-reach + 1, reach + 1)
    ratio = Fraction(dst_rate, src_rate)
    max_phases = max(1, _MAX_BANK // len(taps))
    if ratio.numerator > max_phases:  # src/dst with a bounded denominator: that denominator is `up`
        ratio = 1 / Fraction(src_rate, dst_rate).limit_denominator(max_phases)
    up, down = ratio.numerator, ratio.denominator
    n_out = len(signal) * up // down
    phases = np.arange(up)[:, None] / up - taps[None, :]  # t - k for each phase and tap
    bank = cutoff * np.sinc(cutoff * phases) * _kaiser(phases, reach, 8.0)
    padded = np.concatenate([np.zeros(reach), signal, np.zeros(reach + 1)])
    # row b + 1 of `windows` holds the inputs b - reach + 1 .. b + reach (the padding shifts them by reach)
    windows = np.lib.stride_tricks.sliding_window_view(padded, len(taps))
    out = np.empty(n_out, dtype=np.float64)
    # outputs n0, n0 + up, n0 + 2 up, ... share the phase (n0 * down) % up; their base steps by `down`
    block = max(1, _MAX_BANK // len(taps))  # outputs per product: the rows it copies stay bounded
    for n0 in range(min(up, n_out)):
        first = n0 * down // up + 1
        count = (n_out - 1 - n0) // up + 1
        phase = bank[n0 * down % up]
        for i in range(0, count, block):
            m = min(block, count - i)
            rows = windows[first + i * down : first + (i + m - 1) * down + 1 : down]
            out[n0 + i * up : n0 + (i + m) * up : up] = rows @ phase
    return out.astype(np.float32)


def _kaiser(dist: npt.NDArray[np.float64], reach: int, beta: float) -> npt.NDArray[np.float64]:
    """The Kaiser window evaluated at offsets ``dist`` for a window spanning ``[-reach, reach]``."""
    ratio = np.clip(dist / reach, -1.0, 1.0)
    window: npt.NDArray[np.float64] = np.i0(beta * np.sqrt(1.0 - ratio**2)) / np.i0(beta)
    return window


def _float_samples(audio: object) -> Samples:
    """Float samples from a buffer of float32 (a JS Float32Array arrives as a memoryview) or numbers."""
    if isinstance(audio, memoryview) and audio.format in ("f", "<f", "=f"):
        return np.frombuffer(audio.tobytes(), dtype="<f4").astype(np.float32)
    if isinstance(audio, memoryview) and audio.format in ("d", "<d", "=d"):
        return np.frombuffer(audio.tobytes(), dtype="<f8").astype(np.float32)
    if isinstance(audio, np.ndarray):
        if audio.ndim != 1 or audio.dtype.kind not in "fiu":
            raise ValidationError(
                f"audio must be a 1-D array of samples, got shape {audio.shape} of {audio.dtype}",
                hint="Pass mono samples (mix the channels down first), or a WAV file.",
                field="audio",
            )
        return audio.astype(np.float32)
    if isinstance(audio, list | tuple) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in audio
    ):
        return np.asarray(audio, dtype=np.float32)
    raise ValidationError(
        f"audio must be a Float32Array of samples or a WAV file, got {type_name(audio)}",
        hint=_HINT_WAV,
        field="audio",
        got=type_name(audio),
    )


def _rate(value: object) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not MIN_RATE <= value <= MAX_RATE:
        raise ValidationError(
            f"sampling_rate must be a whole number of Hz between {MIN_RATE} and {MAX_RATE}, got {value!r}",
            hint="Pass the rate the samples were recorded at (e.g. 16000, 44100 or 48000).",
            field="sampling_rate",
            got=type_name(value),
        )
    return value


def is_wav_bytes(audio: object) -> bool:
    """Bytes-like input (read as a WAV file) rather than float samples."""
    if isinstance(audio, bytes | bytearray):
        return True
    return isinstance(audio, memoryview) and audio.format in ("B", "b", "c")


def prepare(audio: object, sampling_rate: object = SAMPLE_RATE) -> Samples:
    """16 kHz mono float32 samples from WAV bytes or float samples at ``sampling_rate`` (see the module)."""
    if is_wav_bytes(audio):
        wav = decode_wav(audio)  # type: ignore[arg-type]
        rate, mono = _rate(wav.sample_rate), to_mono(wav.samples)
    else:
        rate, mono = _rate(sampling_rate), _float_samples(audio)
    if mono.size == 0:
        raise ValidationError(
            "audio has no samples",
            hint="Record or pick some audio first; skip the call when there is nothing to transcribe.",
            field="audio",
        )
    seconds = mono.size / rate
    if seconds > MAX_SECONDS:
        raise _too_long(seconds)
    if not np.isfinite(mono).all():
        raise ValidationError(
            "audio contains NaN or infinite samples",
            hint="Samples must be finite numbers in [-1, 1]; check how the audio was decoded.",
            field="audio",
        )
    return resample(mono, rate, SAMPLE_RATE)


def _too_long(seconds: float) -> ValidationError:
    return ValidationError(
        f"audio is {seconds:.0f} s long, more than the limit of {MAX_SECONDS} s",
        hint=f"Split the recording into pieces of at most {MAX_SECONDS // 60} minutes.",
        field="audio",
        seconds=round(seconds, 1),
        limit=MAX_SECONDS,
    )


def duration_s(samples: Sequence[float] | Samples) -> float:
    """Seconds of 16 kHz audio."""
    return len(samples) / SAMPLE_RATE
