"""Speech to text latency in a real browser (Chromium, WASM): whisper-tiny.en on espeak-ng speech.

Rows: model load + first transcription on a fresh context (the model comes from the server), then warm
transcriptions of each sample as a 16 kHz Float32Array and as a 48 kHz WAV file (decoded and resampled
in the worker), with the real-time factor (latency / audio duration; < 1 is faster than real time), and
the first transcription after a page reload (the model comes from the browser's cache).
Timed inside the page with performance.now(); the machine and its load are printed with the table.
"""

from __future__ import annotations

import base64
import os
import statistics
from typing import Any

from tests.harness import open_router_page
from tests.speech import SENTENCES, speak

from bench.common import evaluate, p95, server_and_browser, table

CREATE = """async () => {
  const { HybridRouter } = await import("/hybrid-router.js");
  window.router = await HybridRouter.create();
  return window.router.info;
}"""

TIMED = """async ({ samples, wav, runs }) => {
  const audio = samples ? Float32Array.from(samples)
    : new Blob([Uint8Array.from(atob(wav), (c) => c.charCodeAt(0))]);
  const times = [];
  let text = "";
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    text = (await window.router.transcribe(audio)).text;
    times.push(performance.now() - t0);
  }
  return { times, text };
}"""


def _row(what: str, seconds: float, times: list[float], text: str = "") -> dict[str, Any]:
    median = statistics.median(times)
    return {
        "what": what,
        "audio_s": seconds,
        "median_ms": median,
        "p95_ms": p95(times),
        "n": len(times),
        "rtf": median / 1000 / seconds,
        "text": text,
    }


def run(runs: int = 5, smoke: bool = False) -> list[dict[str, Any]]:
    """``smoke``: one clip, one run of each row, no reload."""
    rows: list[dict[str, Any]] = []
    runs = 1 if smoke else runs
    clips = [(text, *speak(text)) for text in (SENTENCES[:1] if smoke else SENTENCES)]
    with server_and_browser() as (server, browser):
        rp = open_router_page(browser, server, create=False)  # fresh context: nothing cached
        info = evaluate(rp.page, CREATE)
        first_text, first_samples, _ = clips[0]
        seconds = len(first_samples) / 16_000
        cold = evaluate(rp.page, TIMED, {"samples": first_samples.tolist(), "wav": None, "runs": 1})
        rows.append(_row("model load + first transcription (from the server)", seconds, cold["times"]))
        for text, samples, _ in clips:
            seconds = len(samples) / 16_000
            warm = evaluate(rp.page, TIMED, {"samples": samples.tolist(), "wav": None, "runs": runs})
            label = f"Float32Array 16 kHz: {text[:28]}..."
            rows.append(_row(label, seconds, warm["times"], warm["text"]))
            wav48 = base64.b64encode(speak(text, rate=48_000)[1]).decode()
            warm = evaluate(rp.page, TIMED, {"samples": None, "wav": wav48, "runs": runs})
            rows.append(_row("  same as a 48 kHz WAV Blob", seconds, warm["times"], warm["text"]))
        if not smoke:
            rp.page.reload()
            evaluate(rp.page, CREATE)
            again = evaluate(rp.page, TIMED, {"samples": first_samples.tolist(), "wav": None, "runs": 1})
            label = "after a reload: load + first (browser cache)"
            rows.append(_row(label, len(first_samples) / 16_000, again["times"]))
        rp.page.context.close()
    _print(rows, info)
    return rows


def _print(rows: list[dict[str, Any]], info: dict[str, Any]) -> None:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\nwhisper-tiny.en fp32, Transformers.js {info.get('transformers')}, "
        f"{info.get('threads')} thread(s), {os.cpu_count()} CPU(s), load average {load:.1f}"
    )
    table(
        [("measurement", 54), ("audio s", 7), ("median ms", 10), ("p95 ms", 8), ("RTF", 5), ("n", 3)],
        [
            [r["what"], round(r["audio_s"], 2), r["median_ms"], r["p95_ms"], round(r["rtf"], 2), r["n"]]
            for r in rows
        ],
        title="transcribe",
    )
    texts = sorted({r["text"] for r in rows if r["text"]})
    print("texts: " + " | ".join(texts))
