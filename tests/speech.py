"""Speech samples for the transcription tests and benchmark, made with espeak-ng from known sentences.

espeak-ng (Debian package ``espeak-ng``; ``./hr test`` installs it) speaks at 22050 Hz; the sample is
resampled to 16 kHz mono PCM16 with scipy's polyphase filter, an implementation independent of the
router's own resampler (which the tests check against it). The voice and rate were chosen so that the
reference (transformers' Whisper on torch, same weights) transcribes the sentences word for word:
``en-us`` at 120 words per minute (at the default 175, "ask her to" came out "ask for to").
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np

VOICE, WPM = "en-us", 120
SENTENCES = (
    "Please call Stella and ask her to bring these things with her from the store.",
    "We need more time to finish the report before Friday.",
)


def espeak() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise RuntimeError("espeak-ng is not installed: apt-get install espeak-ng (./hr test does)")
    return path


def speak(text: str, *, rate: int = 16_000, channels: int = 1) -> tuple[np.ndarray, bytes]:
    """``text`` spoken by espeak-ng: (float32 samples in [-1, 1] at ``rate``, mono; the WAV file bytes,
    PCM16 at ``rate`` with ``channels`` identical channels)."""
    from scipy.signal import resample_poly

    wav = subprocess.run(
        [espeak(), "-v", VOICE, "-s", str(WPM), "--stdout", text], check=True, capture_output=True
    ).stdout
    with wave.open(io.BytesIO(wav)) as w:
        src_rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64) / 32768.0
    g = int(np.gcd(src_rate, rate))
    resampled = resample_poly(pcm, rate // g, src_rate // g) if src_rate != rate else pcm
    ints = np.clip(np.round(resampled * 32767.0), -32768, 32767).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(ints, channels).tobytes())
    # the samples the WAV file holds, exactly: PCM16 / 32768 (what a WAV decoder yields)
    return (ints.astype(np.float32) / np.float32(32768.0)), out.getvalue()


def write_sample(text: str, path: Path, *, rate: int = 16_000) -> Path:
    path.write_bytes(speak(text, rate=rate)[1])
    return path


def normalize(text: str) -> list[str]:
    """Words, lower case, without punctuation (Whisper adds its own capitals and commas)."""
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, on :func:`normalize`d words."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)] / max(1, len(ref))
