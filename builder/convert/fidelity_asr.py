"""Fidelity of a built Whisper folder (encoder + merged decoder ONNX) against transformers on torch.

Greedy decoding natively (onnxruntime CPU) with the generation config's rules (forced
``<|notimestamps|>``, suppressed tokens, tokens suppressed at the first step), on espeak-ng speech of
known sentences (``tests/speech.py``); each dtype's tokens are compared with ``generate`` on the
reference folder, and its word error rate with the sentences. Dtype candidates (quantized files that
are not in the manifest yet) go through :func:`compare_files`.

    python -m builder.models whisper-tiny.en --check
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hybrid_router.manifest import ModelEntry

from .recipe import onnx_file

SENTENCES = (
    "Please call Stella and ask her to bring these things with her from the store.",
    "We need more time to finish the report before Friday.",
    "Open the door and turn on the lights in the kitchen.",
    "Hybrid routing keeps simple requests on the device and sends hard ones to the cloud.",
    "The quick brown fox jumps over the lazy dog.",
)


def _session(path: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def greedy(encoder: Any, decoder: Any, features: Any, gen: dict[str, Any]) -> tuple[list[int], float, float]:
    """(tokens without the prompt and the end token, encoder seconds, decoder seconds per step)."""
    import numpy as np

    t0 = time.perf_counter()
    hidden = encoder.run(None, {"input_features": features})[0]
    t_enc = time.perf_counter() - t0
    outputs = [o.name for o in decoder.get_outputs()]
    past = {
        i.name: np.zeros((1, i.shape[1], 0, i.shape[3]), np.float32)
        for i in decoder.get_inputs()
        if i.name.startswith("past_key_values")
    }
    suppress, begin = np.array(gen["suppress_tokens"]), np.array(gen["begin_suppress_tokens"])
    step, out = [gen["decoder_start_token_id"], gen["no_timestamps_token_id"]], []
    t0 = time.perf_counter()
    for i in range(gen["max_length"] - 2):
        feeds = {
            "input_ids": np.array([step], np.int64),
            "encoder_hidden_states": hidden,
            "use_cache_branch": np.array([i > 0]),
            **past,
        }
        logits, *presents = decoder.run(None, feeds)
        scores = logits[0, -1].copy()
        scores[suppress] = -np.inf
        if i == 0:
            scores[begin] = -np.inf
        nxt = int(scores.argmax())
        names = [n.replace("present", "past_key_values") for n in outputs[1:]]
        fresh = dict(zip(names, presents, strict=True))
        # with the cache, the merged decoder returns empty cross-attention presents: keep the first ones
        past = {k: (past[k] if i > 0 and ".encoder." in k else v) for k, v in fresh.items()}
        if nxt == gen["eos_token_id"]:
            break
        out.append(nxt)
        step = [nxt]
    return out, t_enc, (time.perf_counter() - t0) / (len(out) + 1)


def compare_files(folder: Path, reference: Path, candidates: dict[str, tuple[Path, Path]]) -> dict[str, Any]:
    """Per candidate ``{name: (encoder.onnx, decoder_model_merged.onnx)}``: greedy text, whether its
    tokens equal torch's, word error rate against the sentences, size and native speed."""
    import numpy as np
    import torch
    from tests.speech import speak, word_error_rate
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    processor = WhisperProcessor.from_pretrained(str(folder))
    model = WhisperForConditionalGeneration.from_pretrained(str(reference)).eval()
    gen = json.loads((folder / "generation_config.json").read_text())
    clips = [speak(text)[0] for text in SENTENCES]
    feats = [
        processor(a, sampling_rate=16_000, return_tensors="np").input_features.astype(np.float32)
        for a in clips
    ]
    refs = []
    for f in feats:
        with torch.no_grad():
            ids = model.generate(torch.from_numpy(f), do_sample=False, num_beams=1)[0].tolist()
        refs.append([t for t in ids if t < gen["eos_token_id"]])  # drop the prompt and end tokens
    result: dict[str, Any] = {}
    for name, (enc_path, dec_path) in candidates.items():
        enc, dec = _session(enc_path), _session(dec_path)
        rows = [greedy(enc, dec, f, gen) for f in feats]
        texts = [processor.batch_decode([r[0]], skip_special_tokens=True)[0].strip() for r in rows]
        result[name] = {
            "same_tokens_as_torch": sum(r[0] == ref for r, ref in zip(rows, refs, strict=True)),
            "of": len(rows),
            "mean_wer": round(
                float(np.mean([word_error_rate(s, t) for s, t in zip(SENTENCES, texts, strict=True)])), 4
            ),
            "size_mb": round((enc_path.stat().st_size + dec_path.stat().st_size) / 1e6, 1),
            "encoder_ms": round(float(np.median([r[1] for r in rows])) * 1000, 1),
            "decoder_ms_per_token": round(float(np.median([r[2] for r in rows])) * 1000, 2),
            "texts": texts,
        }
    return result


def check_asr(
    entry: ModelEntry, folder: Path, reference: Path, dtypes: Sequence[str] | None = None
) -> dict[str, Any]:
    """Every dtype of the manifest entry (see the module docstring)."""
    files = {
        d: (folder / onnx_file(d, "encoder_model"), folder / onnx_file(d, "decoder_model_merged"))
        for d in (dtypes or entry.variants)
    }
    return compare_files(folder, reference, files)
