"""Recipe ``gguf-llm``: a GGUF chat model -> HF fp32 folder (the reference) -> Transformers.js folder.

1. ``reference``: transformers dequantizes the GGUF into fp32 safetensors (re-tying input/output embeddings
   where the GGUF split them), then :func:`.gguf_tokenizer.repair_tokenizer` fixes its tokenizer and writes
   the chat template. This folder stays in the cache: it is the torch reference for the ONNX files.
2. ``export``: optimum ``text-generation-with-past`` (KV cache inputs/outputs), opset from the manifest;
   other dtypes are derived from fp32: ``{"quantize": "gguf-blocks"}`` puts the GGUF's own blocks back
   (:mod:`.gguf_onnx`, exact; ``"matmul": "nbits"`` reads the 8-bit ones with ``MatMulNBits`` instead of
   expanding them to fp32 when the session starts), the other methods re-quantize (:mod:`.quantize`).
   fp32 need not ship: without it in the dtypes it is only the intermediate the others are made from.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from builder.common import BuildError, log

from . import gguf_onnx
from .encoder import export_onnx
from .gguf_tokenizer import repair_tokenizer
from .quantize import make_dtype
from .recipe import Job, Recipe, onnx_file

_BITS = {
    "F32": 32,
    "F16": 16,
    "BF16": 16,
    "Q8_0": 8,
    "Q6_K": 6,
    "Q5_0": 5,
    "Q5_1": 5,
    "Q5_K": 5,
    "Q4_0": 4,
    "Q4_1": 4,
    "Q4_K": 4,
}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def _retie_embeddings(model: Any, gguf_file: Path) -> None:
    """Some GGUFs store a separate output.weight for a model trained with tied embeddings (Qwen2.5-0.5B:
    token_embd Q5_0 + output Q8_0 of one tensor). Re-tie them, keeping the more precise copy."""
    import torch
    from gguf import GGUFReader

    emb, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    if model.config.tie_word_embeddings or emb.shape != head.shape:
        return
    rel = float((emb - head).norm() / head.norm())
    if rel >= 0.1:
        return
    types = {t.name: t.tensor_type.name for t in GGUFReader(str(gguf_file)).tensors}
    with torch.no_grad():
        if _BITS.get(types.get("output.weight", ""), 0) > _BITS.get(types.get("token_embd.weight", ""), 0):
            emb.copy_(head)
    model.config.tie_word_embeddings = True
    model.tie_weights()
    log(f"re-tied input/output embeddings (relative difference {rel:.4f})")


def to_hf(job: Job, dest: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = job.weights
    log(f"{job.model_id}: GGUF -> HF fp32 ({gguf.name})")
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    _retie_embeddings(model, gguf)
    model.save_pretrained(str(dest), safe_serialization=True)
    tok.save_pretrained(str(dest))
    (dest / "chat_template.jinja").unlink(missing_ok=True)  # the repaired tokenizer_config.json carries it
    log(f"{job.model_id}: tokenizer repaired ({repair_tokenizer(gguf, dest)} pre-tokenizer)")


def export(job: Job, reference: Path, out: Path) -> None:
    params = job.params
    for dtype, spec in job.dtypes.items():
        if spec.get("gather") == "int8":
            raise BuildError(
                f"{job.model_id}: dtype {dtype}: gather 'int8' (per-row DequantizeLinear -> Gather) crashes "
                "onnxruntime-web 1.31 in decoders",
                hint="use gather 'fp16' or 'int8t' in the manifest",
            )
    (out / "onnx").mkdir(parents=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        exported = Path(tmp)
        log(f"{job.model_id}: optimum export ({params['task']}, opset {params['opset']})")
        export_onnx(reference, exported, task=params["task"], opset=params["opset"])
        shutil.move(exported / "model.onnx", out / onnx_file("fp32"))
        external = exported / "model.onnx_data"
        if external.exists():
            shutil.move(external, out / "onnx" / "model.onnx_data")
        for name in ("config.json", "generation_config.json"):
            shutil.copyfile(exported / name, out / name)
    if (
        out / "onnx" / "model.onnx_data"
    ).exists():  # fp32 over protobuf's 2 GB: Transformers.js must fetch it
        cfg = json.loads((out / "config.json").read_text())
        cfg["transformers.js_config"] = {"use_external_data_format": {"model.onnx": True}}
        (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    for name in TOKENIZER_FILES:
        shutil.copyfile(reference / name, out / name)
    config = json.loads((out / "config.json").read_text())
    for dtype, spec in job.dtypes.items():
        if dtype == "fp32":
            continue
        log(f"{job.model_id}: {dtype} ({spec.get('quantize')})")
        if spec.get("quantize") == "gguf-blocks":  # the GGUF's own blocks, not a re-quantization
            record = gguf_onnx.convert(
                out / onnx_file("fp32"),
                job.weights,
                out / onnx_file(dtype),
                config,
                matmul=spec.get("matmul", "fold"),
            )
            log(f"{job.model_id}: {dtype} weights equal the reference's: {json.dumps(record)}")
        else:
            make_dtype(out / onnx_file("fp32"), out / onnx_file(dtype), spec)
    if "fp32" not in job.dtypes:  # only the intermediate the other dtypes were made from
        (out / onnx_file("fp32")).unlink()
        (out / "onnx" / "model.onnx_data").unlink(missing_ok=True)
        cfg = json.loads((out / "config.json").read_text())
        if cfg.pop("transformers.js_config", None) is not None:
            (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")


RECIPE = Recipe(
    name="gguf-llm",
    # 2: a linear layer's blocks stored transposed, the tied head reading the table with transB: no
    # Transpose to fold when the session is created
    revision=2,
    reference=to_hf,
    export=export,
    tools=(
        "torch",
        "transformers",
        "optimum",
        "optimum-onnx",
        "onnx",
        "onnxruntime",
        "numpy",
        "gguf",
        "tokenizers",
        "safetensors",
    ),
)
