"""Cold start, model load and embedding latency in a real browser (Chromium, WASM backend), against
native onnxruntime on the same ONNX file.

Each browser row is measured inside the page with performance.now(), on a fresh browser context (empty
HTTP cache and model store) for the "cold" rows and on the same context for the "warm" ones. The native
rows run the very ONNX file the browser downloads (the build's ``onnx/model.onnx`` or
``model_quantized.onnx``) with onnxruntime in CPython, 2 intra-op threads (the browser's thread count
here; threads that sleep rather than spin, as the browser's do: on a shared 2-core machine spinning
threads were slower), timed around tokenization (``tokenizers``, the same tokenizer.json, padded and
truncated to 256), the session runs on the router's own batches (``hybrid_router.embeddings.batches``:
texts of similar length together, so one long text does not pad the short ones) and mean pooling and
normalization in numpy: the same work as a browser call without the worker's round trip.
``browser / native``: the native time over the browser's (1.00x: as fast).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from tests.harness import REPO, open_router_page

from bench.common import CREATE, evaluate, header, median, p95, ratio, server_and_browser, table

SENTENCES: list[str] = json.loads((REPO / "tests" / "data" / "sentences.json").read_text())["sentences"]
MODEL = "all-MiniLM-L6-v2"
ONNX_FILES = {"fp32": "onnx/model.onnx", "q8": "onnx/model_quantized.onnx"}
NATIVE_THREADS = 2
ONE = ["How do I reset my password?"]

TIMED = """async ({ texts, dtype, runs }) => {
  const times = [];
  let vectors = null;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    vectors = (await window.router.embed(texts, { dtype })).vectors;
    times.push(performance.now() - t0);
  }
  return { times, vectors };
}"""


class NativeEncoder:
    """all-MiniLM-L6-v2 in onnxruntime (CPython): tokenize, run, mean-pool, normalize."""

    def __init__(self, folder: Path, dtype: str, threads: int = NATIVE_THREADS) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(folder / ONNX_FILES[dtype]), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(256)
        self.tokenizer.enable_padding()

    def embed(self, texts: list[str]) -> np.ndarray:
        """The router's batches of similar length, each as one session run."""
        from hybrid_router.embeddings import batches

        out = np.zeros((len(texts), 0), dtype=np.float32)
        for picked in batches([len(t) for t in texts]):
            vectors = self._run([texts[i] for i in picked])
            if out.shape[1] == 0:
                out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
            out[picked] = vectors
        return out

    def _run(self, texts: list[str]) -> np.ndarray:
        encoded = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self.session.run(None, {k: v for k, v in feeds.items() if k in self.inputs})[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        out: np.ndarray = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out

    def timed(self, texts: list[str], runs: int) -> tuple[list[float], np.ndarray]:
        self.embed(texts)  # warm-up
        times, vectors = [], np.zeros(0)
        for _ in range(runs):
            t0 = time.perf_counter()
            vectors = self.embed(texts)
            times.append((time.perf_counter() - t0) * 1000)
        return times, vectors


def _model_folder() -> Path:
    from builder.models import read_index

    return Path(read_index()[MODEL]["dir"])


def _row(what: str, dtype: str, times: list[float], native: float | None = None) -> list[Any]:
    med = median(times)
    return [what, dtype, med, p95(times), len(times), native, ratio(native, med)]


def run(runs: int = 10, smoke: bool = False) -> list[list[Any]]:
    runs = 1 if smoke else runs
    dtypes = ("fp32",) if smoke else ("fp32", "q8")
    batch = (SENTENCES * 2)[:32]
    header(
        f"Embeddings ({MODEL}): the browser (Chromium, WASM, our worker) against native onnxruntime "
        f"(CPython, {NATIVE_THREADS} threads) on the same ONNX file; medians of {runs} runs"
    )
    folder = _model_folder()
    rows: list[list[Any]] = []
    agreement: list[str] = []
    with server_and_browser() as (server, browser):
        for dtype in dtypes:
            native = NativeEncoder(folder, dtype)
            rp = open_router_page(browser, server, create=False)  # fresh context: cold HTTP cache
            created = evaluate(rp.page, CREATE, {})
            if dtype == "fp32":
                timings = created["info"]["timings"]
                rows.append(["cold start (worker created -> ready)", "-", created["ms"], None, 1, None, ""])
                rows.append(
                    [
                        f"  of which Pyodide runtime {timings['pyodide']} ms, packages "
                        f"{timings['packages'] - timings['pyodide']} ms",
                        "-",
                        None,
                        None,
                        1,
                        None,
                        "",
                    ]
                )
            load = evaluate(rp.page, TIMED, {"texts": ["warm up"], "dtype": dtype, "runs": 1})
            rows.append(_row("model load + first call (cold cache)", dtype, load["times"]))
            for label, texts in (("embed 1 sentence", ONE), ("embed 32 sentences", batch)):
                got = evaluate(rp.page, TIMED, {"texts": texts, "dtype": dtype, "runs": runs})
                native_times, vectors = native.timed(texts, runs)
                rows.append(_row(label, dtype, got["times"], median(native_times)))
                diff = float(np.abs(np.asarray(got["vectors"], dtype=np.float32) - vectors).max())
                agreement.append(f"{label} {dtype}: max |browser - native| = {diff:.1e}")
            rp.page.context.close()
        if not smoke:
            rp = open_router_page(browser, server, create=False)
            evaluate(rp.page, CREATE, {})
            rp.page.reload()
            warm = evaluate(rp.page, CREATE, {})
            rows.append(["warm start (HTTP cache) -> ready", "-", warm["ms"], warm["ms"], 1, None, ""])
            rp.page.context.close()
    table(
        [
            ("measurement", 48),
            ("dtype", 5),
            ("median ms", 10),
            ("p95 ms", 8),
            ("n", 4),
            ("native ms", 9),
            ("browser/native", 14),
        ],
        rows,
        title="embeddings",
    )
    print(
        "native: onnxruntime in CPython on the same ONNX file, tokenization and pooling included; "
        "browser/native: speed of the browser relative to native (native ms / browser ms)."
    )
    for line in agreement:
        print(f"check: {line}")
    return rows
