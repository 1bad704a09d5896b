"""Recipe ``ct2-whisper``: a faster-whisper (CTranslate2) Whisper folder -> HF Whisper -> Transformers.js.

1. ``reference``: the CTranslate2 ``model.bin`` (:mod:`.ct2`) is mapped back onto
   ``WhisperForConditionalGeneration`` (fused QKV and cross-attention KV split, layer norms renamed, output
   projection tied to the token embedding) and saved as an fp32 HF folder with its tokenizer, feature
   extractor and a generation config rebuilt from the CTranslate2 config (suppressed tokens, alignment
   heads, ``<|notimestamps|>`` forced for English-only models). This folder is the torch reference.
2. ``export``: optimum ``automatic-speech-recognition-with-past`` (opset from the manifest); Transformers.js
   loads ``onnx/encoder_model.onnx`` and ``onnx/decoder_model_merged.onnx`` (one decoder with and without
   the KV cache). Other dtypes are derived from fp32 per file (:mod:`.quantize`): a dtype spec may hold
   ``{"encoder_model": spec, "decoder_model_merged": spec}`` or one spec for both.

The weights shipped as CTranslate2 fp16: every fp32 value is an exact fp16 value widened.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from builder.common import REPO, BuildError, log, run

from .ct2 import Ct2Model, read_ct2
from .quantize import make_dtype
from .recipe import Job, Recipe, onnx_file

#: the ONNX files Transformers.js loads for a Whisper model (WhisperForConditionalGeneration sessions)
PARTS = ("encoder_model", "decoder_model_merged")
#: the files of the exporter's output that Transformers.js reads (tokenizer, feature extractor, configs)
CONFIG_FILES = (
    "config.json",
    "generation_config.json",
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
)
ENDOFTEXT = "<|endoftext|>"


def _layers(ct2: Ct2Model, side: str) -> int:
    return len({k.split("/")[1] for k in ct2.variables if re.match(rf"{side}/layer_\d+/", k)})


def _state_dict(ct2: Ct2Model, d: int, n_enc: int, n_dec: int) -> dict[str, Any]:
    """HF Whisper parameter name -> fp32 tensor, from the CTranslate2 variables."""
    import numpy as np
    import torch

    sd: dict[str, Any] = {}

    def t(name: str) -> Any:
        return torch.from_numpy(np.ascontiguousarray(ct2.get(name)).astype(np.float32))

    def linear(dst: str, src: str) -> None:
        sd[f"{dst}.weight"], sd[f"{dst}.bias"] = t(f"{src}/weight"), t(f"{src}/bias")

    def norm(dst: str, src: str) -> None:
        sd[f"{dst}.weight"], sd[f"{dst}.bias"] = t(f"{src}/gamma"), t(f"{src}/beta")

    def split(dsts: list[str], src: str) -> None:
        """A fused projection (QKV or KV) into its parts; Whisper's key projections have no bias."""
        w, b = t(f"{src}/weight"), t(f"{src}/bias")
        for j, dst in enumerate(dsts):
            sd[f"{dst}.weight"] = w[j * d : (j + 1) * d]
            if dst.endswith("k_proj"):
                if float(b[j * d : (j + 1) * d].abs().max()) != 0.0:
                    raise BuildError(f"{src}: the key projection has a non-zero bias, which Whisper has not")
            else:
                sd[f"{dst}.bias"] = b[j * d : (j + 1) * d]

    for side, layers in (("encoder", n_enc), ("decoder", n_dec)):
        m = f"model.{side}"
        sd[f"{m}.embed_positions.weight"] = t(f"{side}/position_encodings/encodings")
        norm(f"{m}.layer_norm", f"{side}/layer_norm")
        for i in range(layers):
            hf, src = f"{m}.layers.{i}", f"{side}/layer_{i}"
            norm(f"{hf}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")
            split([f"{hf}.self_attn.{p}_proj" for p in "qkv"], f"{src}/self_attention/linear_0")
            linear(f"{hf}.self_attn.out_proj", f"{src}/self_attention/linear_1")
            norm(f"{hf}.final_layer_norm", f"{src}/ffn/layer_norm")
            linear(f"{hf}.fc1", f"{src}/ffn/linear_0")
            linear(f"{hf}.fc2", f"{src}/ffn/linear_1")
            if side == "decoder":
                norm(f"{hf}.encoder_attn_layer_norm", f"{src}/attention/layer_norm")
                linear(f"{hf}.encoder_attn.q_proj", f"{src}/attention/linear_0")
                split([f"{hf}.encoder_attn.k_proj", f"{hf}.encoder_attn.v_proj"], f"{src}/attention/linear_1")
                linear(f"{hf}.encoder_attn.out_proj", f"{src}/attention/linear_2")
    linear("model.encoder.conv1", "encoder/conv1")
    linear("model.encoder.conv2", "encoder/conv2")
    sd["model.decoder.embed_tokens.weight"] = t("decoder/embeddings/weight")
    return sd


def to_hf(job: Job, dest: Path) -> None:
    """The CTranslate2 folder ``job.source`` as an fp32 HF Whisper folder in ``dest``."""
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizerFast,
    )

    ct2 = read_ct2(job.weights)
    if ct2.spec != "WhisperSpec":
        raise BuildError(
            f"{job.weights}: a {ct2.spec} model, not Whisper", hint="fix source.path in the manifest"
        )
    ct2cfg = json.loads((job.source / "config.json").read_text())
    n_enc, n_dec = _layers(ct2, "encoder"), _layers(ct2, "decoder")
    vocab, d = ct2.get("decoder/embeddings/weight").shape
    tok = WhisperTokenizerFast(
        tokenizer_file=str(job.source / "tokenizer.json"),
        unk_token=ENDOFTEXT,
        bos_token=ENDOFTEXT,
        eos_token=ENDOFTEXT,
        pad_token=ENDOFTEXT,
    )
    tid = tok.convert_tokens_to_ids
    multilingual = vocab >= 51865
    if multilingual:
        raise BuildError(
            f"{job.model_id}: multilingual Whisper is not handled by this recipe yet",
            hint="add the language and task tokens to the generation config here",
        )
    eot = tid(ENDOFTEXT)
    cfg = WhisperConfig(
        vocab_size=vocab,
        num_mel_bins=ct2.get("encoder/conv1/weight").shape[1],
        encoder_layers=n_enc,
        decoder_layers=n_dec,
        encoder_attention_heads=int(ct2.get("encoder/num_heads")),
        decoder_attention_heads=int(ct2.get("decoder/num_heads")),
        d_model=d,
        encoder_ffn_dim=ct2.get("encoder/layer_0/ffn/linear_0/weight").shape[0],
        decoder_ffn_dim=ct2.get("decoder/layer_0/ffn/linear_0/weight").shape[0],
        max_source_positions=ct2.get("encoder/position_encodings/encodings").shape[0],
        max_target_positions=ct2.get("decoder/position_encodings/encodings").shape[0],
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=tid("<|startoftranscript|>"),
        suppress_tokens=ct2cfg["suppress_ids"],
        begin_suppress_tokens=ct2cfg["suppress_ids_begin"],
        tie_word_embeddings=True,
    )
    model = WhisperForConditionalGeneration(cfg).eval()
    missing, unexpected = model.load_state_dict(_state_dict(ct2, d, n_enc, n_dec), strict=False)
    if [m for m in missing if m != "proj_out.weight"] or unexpected:
        raise BuildError(
            f"{job.model_id}: weights do not map onto Whisper: missing {missing}, extra {unexpected}"
        )
    model.tie_weights()
    gen = GenerationConfig.from_model_config(model.config)
    no_timestamps = tid("<|notimestamps|>")
    extra = {
        "alignment_heads": ct2cfg["alignment_heads"],
        "suppress_tokens": ct2cfg["suppress_ids"],
        "begin_suppress_tokens": ct2cfg["suppress_ids_begin"],
        "no_timestamps_token_id": no_timestamps,
        "prev_sot_token_id": tid("<|startofprev|>"),
        "is_multilingual": False,
        "max_initial_timestamp_index": 50,
        "max_length": cfg.max_target_positions,
        "return_timestamps": False,
        "forced_decoder_ids": [[1, no_timestamps]],
    }
    for key, value in extra.items():
        setattr(gen, key, value)  # GenerationConfig.update() ignores unknown keys
    gen._from_model_config = False  # else the extra keys are dropped when the file is read back
    model.generation_config = gen
    log(f"{job.model_id}: CTranslate2 -> HF Whisper fp32 ({n_enc}+{n_dec} layers, d={d}, vocab {vocab})")
    model.save_pretrained(str(dest), safe_serialization=True)
    tok.save_pretrained(str(dest))
    WhisperFeatureExtractor(feature_size=cfg.num_mel_bins).save_pretrained(str(dest))


def _part_spec(spec: dict[str, Any], part: str) -> dict[str, Any] | None:
    """The quantization spec of one ONNX file: per part when the dtype names parts, else shared."""
    if any(p in spec for p in PARTS):
        value = spec.get(part)
        return dict(value) if value is not None else None
    return dict(spec)


def export_reproducibly(src: Path, out: Path, *, task: str, opset: int) -> None:
    """optimum's exporter in a child process with a fixed ``PYTHONHASHSEED``.

    Merging the two decoders (without and with the KV cache) names each shared weight after one of its
    two copies, chosen in set order: with Python's random string hashing the merged file differs from
    run to run (measured: same graph, different initializer names). A fixed seed makes it byte-stable.
    """
    code = (
        "import sys; from pathlib import Path; from builder.convert.encoder import export_onnx; "
        "export_onnx(Path(sys.argv[1]), Path(sys.argv[2]), task=sys.argv[3], opset=int(sys.argv[4]))"
    )
    path = os.pathsep.join([str(REPO), str(REPO / "py_src"), os.environ.get("PYTHONPATH", "")])
    run(
        [sys.executable, "-c", code, str(src), str(out), task, str(opset)],
        cwd=REPO,
        env={"PYTHONHASHSEED": "0", "PYTHONPATH": path.rstrip(os.pathsep)},
    )


def export(job: Job, reference: Path, out: Path) -> None:
    params = job.params
    (out / "onnx").mkdir(parents=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        exported = Path(tmp)
        log(f"{job.model_id}: optimum export ({params['task']}, opset {params['opset']}; child process)")
        export_reproducibly(reference, exported, task=params["task"], opset=params["opset"])
        for part in PARTS:
            if not (exported / f"{part}.onnx").is_file():
                raise BuildError(
                    f"{job.model_id}: the exporter wrote no {part}.onnx",
                    hint="the task must be automatic-speech-recognition-with-past",
                )
            shutil.move(exported / f"{part}.onnx", out / onnx_file("fp32", part))
        for name in CONFIG_FILES:
            shutil.copyfile(exported / name, out / name)
    for dtype, raw in job.dtypes.items():
        if dtype == "fp32":
            continue
        for part in PARTS:
            spec = _part_spec(dict(raw), part)
            if spec is None:  # this part stays fp32: Transformers.js takes a per-part dtype for it
                continue
            log(f"{job.model_id}: {dtype} {part} ({spec.get('quantize')})")
            make_dtype(out / onnx_file("fp32", part), out / onnx_file(dtype, part), spec)
    if "fp32" not in job.dtypes:
        for part in PARTS:
            (out / onnx_file("fp32", part)).unlink()


RECIPE = Recipe(
    name="ct2-whisper",
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
        "tokenizers",
        "safetensors",
    ),
)
