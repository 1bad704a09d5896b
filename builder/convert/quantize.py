"""Derive a dtype's ONNX file from the fp32 export, by the method the manifest names.

A dtype spec is the manifest's ``conversion.dtypes[<dtype>]`` object:

- ``{}``: fp32, the export itself;
- ``{"quantize": "weight-only-int8", "gather": "int8"|"int8t"|"fp16"|"none", "keep_fp32": [name parts],
  "fp16": [name parts]}`` (:mod:`.weight_only_int8`; MatMul nodes whose name contains a ``keep_fp32``
  string stay fp32, those matching an ``fp16`` string are stored fp16, the others int8);
- ``{"quantize": "matmul-nbits", "block_size": 32, "accuracy_level": 4, "gather": "fp16"}``: 4-bit
  ``MatMulNBits`` (symmetric), then the token embedding compressed like weight-only-int8's ``gather``;
- ``{"quantize": "dynamic-int8", "per_channel": true}``: onnxruntime's dynamic int8 (``MatMulInteger``).

(``{"quantize": "gguf-blocks"}`` is not a re-quantization of the fp32 file: the ``gguf-llm`` recipe writes it
from the GGUF's own blocks, :mod:`.gguf_onnx`.)
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from builder.common import BuildError

from .weight_only_int8 import weight_only_int8

METHODS = ("weight-only-int8", "matmul-nbits", "dynamic-int8")


def make_dtype(fp32: Path, dst: Path, spec: Mapping[str, Any]) -> None:
    """Write ``dst`` (a quantized copy of ``fp32``) as ``spec`` says."""
    method = spec.get("quantize")
    if method == "weight-only-int8":
        weight_only_int8(
            fp32,
            dst,
            gather=spec.get("gather", "int8"),
            keep=tuple(spec.get("keep_fp32", ())),
            half=tuple(spec.get("fp16", ())),
        )
    elif method == "matmul-nbits":
        with tempfile.TemporaryDirectory(dir=dst.parent) as tmp:
            mid = Path(tmp) / "nbits.onnx"
            matmul_nbits(
                fp32, mid, block_size=spec.get("block_size", 32), accuracy_level=spec.get("accuracy_level")
            )
            weight_only_int8(mid, dst, gather=spec.get("gather", "fp16"), matmul=False)
    elif method == "dynamic-int8":
        dynamic_int8(fp32, dst, per_channel=spec.get("per_channel", True))
    else:
        raise BuildError(
            f"unknown quantization {method!r} in the manifest",
            hint=f"conversion.dtypes.<dtype>.quantize must be one of {list(METHODS)} (or absent for fp32)",
        )


def matmul_nbits(src: Path, dst: Path, *, block_size: int = 32, accuracy_level: int | None = None) -> None:
    """4-bit symmetric ``MatMulNBits`` for every MatMul with a constant weight."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    q = MatMulNBitsQuantizer(
        model=onnx.load(str(src)), block_size=block_size, is_symmetric=True, accuracy_level=accuracy_level
    )
    q.process()
    onnx.save(q.model.model, str(dst))


def dynamic_int8(src: Path, dst: Path, *, per_channel: bool = True) -> None:
    """onnxruntime's dynamic int8 (QInt8 weights, QUInt8 activations), like Transformers.js's script."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(src),
        str(dst),
        per_channel=per_channel,
        weight_type=QuantType.QInt8,
        extra_options={"EnableSubgraph": True, "MatMulConstBOnly": True},
    )
