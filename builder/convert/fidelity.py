"""Fidelity of the built ONNX folders against the torch reference, natively (onnxruntime on CPU).

- feature-extraction: cosine of each dtype's pooled, normalized vectors vs sentence-transformers on the
  reference folder, tokenizing the way Transformers.js does (``model_max_length`` from tokenizer_config.json,
  truncation by cutting the tail, so a long input loses its final [SEP]: ``_tokenize_like_transformers_js``);
- text-generation: greedy tokens of each dtype's ONNX (KV cache) vs transformers' ``generate`` on torch,
  and teacher-forced top-1 agreement of quantized candidates vs fp32 (:func:`compare_candidates`).

    python -m builder.convert.fidelity [MODEL_ID ...]
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hybrid_router.manifest import Manifest, ModelEntry

from .recipe import onnx_file

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A fast auburn fox leaps above a sleepy hound.",
    "Stock markets fell sharply after the central bank raised interest rates.",
    "How do I reset my password?",
    "Le chat est sur la table.",
    # > 256 word pieces: exercises truncation
    " ".join(
        f"Sentence number {i} talks about routing requests between devices and the cloud." for i in range(30)
    ),
]
PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain what a CPU does in two sentences.",
]


def _session(path: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _tokenize_like_transformers_js(folder: Path, texts: Sequence[str], *, keep_sep: bool) -> tuple[Any, Any]:
    """ids and attention mask as Transformers.js 4.3 makes them: encode, cut to model_max_length, pad right.

    ``keep_sep`` instead truncates like Hugging Face tokenizers (the last kept token becomes [SEP]).
    """
    import numpy as np
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_truncation()  # the packaged tokenizer.json says 128: Transformers.js ignores it, so do we
    tok.no_padding()
    max_len = json.loads((folder / "tokenizer_config.json").read_text())["model_max_length"]
    rows = []
    for text in texts:
        ids = tok.encode(text).ids
        if len(ids) > max_len:
            ids = ids[: max_len - 1] + [ids[-1]] if keep_sep else ids[:max_len]
        rows.append(ids)
    width = max(len(r) for r in rows)
    ids = np.zeros((len(rows), width), np.int64)
    mask = np.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return ids, mask


def check_encoder(entry: ModelEntry, folder: Path, reference: Path) -> dict[str, Any]:
    import numpy as np
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(reference), device="cpu")
    ref = st.encode(SENTENCES, normalize_embeddings=True)
    n_tokens = [len(st.tokenizer(s)["input_ids"]) for s in SENTENCES]
    result: dict[str, Any] = {"tokens": n_tokens, "st_max_seq_length": st.max_seq_length}
    for dtype in entry.variants:
        sess = _session(folder / onnx_file(dtype))
        names = {i.name for i in sess.get_inputs()}
        for mode, keep_sep in (("transformers.js", False), ("hf-truncation", True)):
            ids, mask = _tokenize_like_transformers_js(folder, SENTENCES, keep_sep=keep_sep)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            t0 = time.perf_counter()
            hidden = sess.run(None, {k: v for k, v in feeds.items() if k in names})[0]
            ms = (time.perf_counter() - t0) * 1000
            m = mask[..., None].astype(np.float32)
            vec = (hidden * m).sum(1) / m.sum(1)
            vec /= np.linalg.norm(vec, axis=1, keepdims=True)
            cos = (vec * ref).sum(1)
            result[f"{dtype}/{mode}"] = {
                "cos": [round(float(c), 6) for c in cos],
                "min": round(float(cos.min()), 6),
                "batch_ms": round(ms, 1),
            }
    return result


def _greedy_onnx(sess: Any, config: dict[str, Any], prompt_ids: list[int], n: int) -> tuple[list[int], float]:
    """Greedy decoding with the KV cache inputs of an optimum text-generation-with-past export."""
    import numpy as np

    n_kv = config.get("num_key_value_heads", config["num_attention_heads"])
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    past = {
        i.name: np.zeros((1, n_kv, 0, head_dim), np.float32)
        for i in sess.get_inputs()
        if i.name.startswith("past_key_values")
    }
    ids, out, pos = list(prompt_ids), [], 0
    step_ids = ids
    t_first = 0.0
    for _ in range(n):
        length = pos + len(step_ids)
        feeds = {
            "input_ids": np.array([step_ids], np.int64),
            "attention_mask": np.ones((1, length), np.int64),
            "position_ids": np.arange(pos, length, dtype=np.int64)[None],
            **past,
        }
        logits, *presents = sess.run(None, feeds)
        names = [o.name for o in sess.get_outputs()][1:]
        past = {n.replace("present", "past_key_values"): v for n, v in zip(names, presents, strict=True)}
        nxt = int(logits[0, -1].argmax())
        out.append(nxt)
        pos, step_ids = length, [nxt]
        if not t_first:
            t_first = time.perf_counter()
        if nxt == config.get("eos_token_id"):
            break
    decode_s = time.perf_counter() - t_first
    return out, (len(out) - 1) / decode_s if decode_s > 0 else 0.0


def _chat_ids(tok: Any, prompt: str) -> list[int]:
    ids: list[int] = tok.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True
    )
    return ids


def check_llm(entry: ModelEntry, folder: Path, reference: Path, n_tokens: int = 32) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = json.loads((folder / "config.json").read_text())
    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(reference), dtype=torch.float32)
    result: dict[str, Any] = {}
    refs = []
    for prompt in PROMPTS:
        ids = _chat_ids(tok, prompt)
        with torch.no_grad():
            x = torch.tensor([ids])
            gen = model.generate(
                x, attention_mask=torch.ones_like(x), max_new_tokens=n_tokens, do_sample=False
            )
        refs.append((ids, gen[0, len(ids) :].tolist()))
    for dtype in entry.variants:
        sess = _session(folder / onnx_file(dtype))
        rows = []
        for prompt, (ids, ref) in zip(PROMPTS, refs, strict=True):
            got, tps = _greedy_onnx(sess, config, ids, n_tokens)
            same = next(
                (i for i, (a, b) in enumerate(zip(got, ref, strict=False)) if a != b), min(len(got), len(ref))
            )
            rows.append(
                {
                    "prompt": prompt,
                    "same_prefix": same,
                    "torch_tokens": len(ref),
                    "onnx_tokens": len(got),
                    "tokens_per_s": round(tps, 1),
                    "text": tok.decode(got, skip_special_tokens=True),
                }
            )
        result[dtype] = rows
    return result


def compare_candidates(
    folder: Path, candidates: Sequence[Path], texts: Sequence[str] | None = None
) -> dict[str, Any]:
    """Teacher-forced top-1 agreement and KL of ``candidates`` (ONNX files) vs the folder's fp32 model, on
    three short chats, or on ``texts`` (plain text, e.g. a held-out paragraph)."""
    import numpy as np
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    chats = [
        [
            {"role": "user", "content": "What is the capital of France?"},
            {
                "role": "assistant",
                "content": "The capital of France is Paris. It is known for the Eiffel Tower.",
            },
        ],
        [
            {"role": "user", "content": "Explain photosynthesis briefly."},
            {
                "role": "assistant",
                "content": "Photosynthesis is how green plants use sunlight, water and carbon "
                "dioxide to make glucose and oxygen.",
            },
        ],
        [
            {"role": "user", "content": "Write a Python function that adds two numbers."},
            {"role": "assistant", "content": "def add(a, b):\n    return a + b"},
        ],
    ]
    if texts is None:
        seqs = [np.array(tok.apply_chat_template(t), np.int64) for t in chats]
    else:
        seqs = [np.array(tok(t)["input_ids"], np.int64) for t in texts]
    config = json.loads((folder / "config.json").read_text())

    def logits(path: Path) -> list[Any]:
        sess = _session(path)
        n_kv = config.get("num_key_value_heads", config["num_attention_heads"])
        hd = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
        outs = []
        for ids in seqs:
            feeds = {
                "input_ids": ids[None],
                "attention_mask": np.ones((1, len(ids)), np.int64),
                "position_ids": np.arange(len(ids), dtype=np.int64)[None],
            }
            for i in sess.get_inputs():
                if i.name.startswith("past_key_values"):
                    feeds[i.name] = np.zeros((1, n_kv, 0, hd), np.float32)
            outs.append(sess.run(["logits"], feeds)[0][0])
        return outs

    def log_softmax(x: Any) -> Any:
        x = x - x.max(-1, keepdims=True)
        return x - np.log(np.exp(x).sum(-1, keepdims=True))

    base = logits(folder / onnx_file("fp32"))
    result = {}
    for path in candidates:
        outs = logits(path)
        agree = np.concatenate([a.argmax(-1) == b.argmax(-1) for a, b in zip(outs, base, strict=True)]).mean()
        kl = np.concatenate(
            [
                (np.exp(log_softmax(b)) * (log_softmax(b) - log_softmax(a))).sum(-1)
                for a, b in zip(outs, base, strict=True)
            ]
        ).mean()
        result[path.name] = {
            "top1_agreement": round(float(agree), 4),
            "mean_kl": round(float(kl), 4),
            "size_mb": round(path.stat().st_size / 1e6, 1),
        }
    return result


def check_models(manifest: Manifest, ids: Sequence[str] | None = None) -> dict[str, Any]:
    from builder.models import model_dir, source_dir

    results = {}
    for entry in [manifest.model(i) for i in ids] if ids else manifest.models:
        folder, reference = model_dir(entry), source_dir(entry.id, manifest)
        if "feature-extraction" in entry.tasks:
            results[entry.id] = check_encoder(entry, folder, reference)
        elif "text-generation" in entry.tasks:
            results[entry.id] = check_llm(entry, folder, reference)
        elif "automatic-speech-recognition" in entry.tasks:
            from .fidelity_asr import check_asr

            results[entry.id] = check_asr(entry, folder, reference)
        else:
            continue
        print(json.dumps({entry.id: results[entry.id]}, indent=1), flush=True)
    return results


if __name__ == "__main__":
    from builder.models import load_manifest

    check_models(load_manifest(), sys.argv[1:] or None)
