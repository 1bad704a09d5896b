"""The GGUF's own blocks in an ONNX file (builder/convert/gguf_blocks.py, gguf_onnx.py).

- every block type decodes to exactly what gguf-py's dequantization (the torch reference's, through
  transformers) computes, on random blocks;
- the constant ops written into the file compute exactly those weights in onnxruntime;
- on the built chat model (when built): the q4 file is a quarter of fp32, the weights it computes with equal
  the reference's safetensors, its greedy output equals transformers on torch, and its teacher-forced top-1
  agreement with fp32 on a held-out text is >= 99.5%.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builder.convert.gguf_blocks import SUPPORTED, Blocks, decode, pack_nibbles
from builder.convert.gguf_onnx import _probe, _Weights

#: bytes per block and weights per block of each GGUF type, and where its fp16 fields are
LAYOUT = {
    "Q4_1": (20, 32, (0, 2)),
    "Q8_0": (34, 32, (0,)),
    "Q5_0": (22, 32, (0,)),
    "Q6_K": (210, 256, (208,)),
    "Q4_K": (144, 256, (0, 2)),
}


class _Tensor:
    """What decode() reads of a gguf.GGUFReader tensor."""

    def __init__(self, kind: str, raw: np.ndarray, rows: int, cols: int) -> None:
        from gguf import GGMLQuantizationType

        self.tensor_type = GGMLQuantizationType[kind]
        self.name = f"random.{kind}"
        self.shape = [cols, rows]  # ggml order: ne0 (the row length) first
        self.data = raw


def random_tensor(kind: str, rows: int = 5, n_blocks: int = 3, seed: int = 0) -> _Tensor:
    size, per_block, halves = LAYOUT[kind]
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, (rows, n_blocks, size), dtype=np.uint8)
    for off in halves:  # finite scales, as a real file has (random bytes could be inf/nan)
        vals = rng.normal(0, 0.02, (rows, n_blocks)).astype(np.float16)
        raw[..., off : off + 2] = vals.view(np.uint8).reshape(rows, n_blocks, 2)
    return _Tensor(kind, raw.reshape(rows, -1), rows, n_blocks * per_block)


def test_every_supported_type_has_a_layout() -> None:
    assert set(SUPPORTED) == set(LAYOUT)


@pytest.mark.parametrize("kind", sorted(LAYOUT))
def test_blocks_decode_exactly_like_gguf_py(kind: str) -> None:
    from gguf.quants import dequantize

    t = random_tensor(kind)
    blocks = decode(t)
    expected = dequantize(t.data, t.tensor_type)
    assert blocks.shape == expected.shape
    assert np.array_equal(blocks.dequantize(), expected)  # bit for bit: the same operations
    assert blocks.q.max() < 2**blocks.bits if blocks.q.dtype == np.uint8 else True


def test_a_type_without_an_exact_mapping_is_refused() -> None:
    t = random_tensor("Q4_1")
    from gguf import GGMLQuantizationType

    t.tensor_type = GGMLQuantizationType.Q2_K
    with pytest.raises(ValueError, match="Q2_K"):
        decode(t)


def test_nibbles_pack_two_values_a_byte_low_first() -> None:
    q = np.array([[[1, 2, 15, 0]]], np.uint8)
    assert pack_nibbles(q).tolist() == [[[0x21, 0x0F]]]


@pytest.mark.parametrize("kind", sorted(LAYOUT))
@pytest.mark.parametrize("transpose", [False, True])
def test_the_files_constant_ops_compute_the_blocks_weights(kind: str, transpose: bool) -> None:
    import onnx

    blocks = decode(random_tensor(kind, rows=4, n_blocks=2, seed=1))
    weights = _Weights(onnx)
    out = weights.add("w", blocks, transpose=transpose)
    assert out == ("w/weight_t" if transpose else "w/weight")
    model = onnx.helper.make_model(onnx.helper.make_graph([], "g", [], []))
    model.ir_version = 8
    got = _probe(onnx, weights, model)["w/weight"]
    assert np.array_equal(got, blocks.dequantize())
    # a linear layer's [K, N] comes straight from its transposed blocks: nothing to transpose when folding
    ops = [n.op_type for n in weights.nodes["w/weight"]]
    assert "Transpose" not in ops and ops.count("Reshape") == (1 if transpose else 1 + (blocks.bits == 4))


def test_offsets_are_stored_only_where_a_type_has_them() -> None:
    import onnx

    weights = _Weights(onnx)
    weights.add("w", decode(random_tensor("Q8_0")), transpose=False)
    assert not any(i.name.endswith(".offset") for i in weights.initializers)
    scale = next(i for i in weights.initializers if i.name == "w.scale")
    assert scale.data_type == onnx.TensorProto.FLOAT16  # the GGUF's fp16 scales, losslessly


def test_row_reordering_keeps_blocks_together() -> None:
    blocks = decode(random_tensor("Q4_1", rows=4))
    order = np.array([2, 0, 3, 1])
    assert np.array_equal(blocks.rows(order).dequantize(), blocks.dequantize()[order])
    assert isinstance(blocks.rows(order), Blocks)


# ---------------------------------------------------------------- the built chat model

MODEL = "SmolLM2-135M-Instruct"
HELD_OUT = (
    "The lighthouse keeper climbed the spiral stairs every evening at dusk. From the gallery he could "
    "see the fishing boats returning, their lamps swinging over the grey water, and the gulls settling "
    "on the rocks. "
    "He wrote the weather in a small leather book: wind from the north-east, a light swell, visibility good. "
    "In winter the storms came without warning, and he would stay awake until morning, trimming the wick."
)


@pytest.fixture(scope="module")
def built() -> tuple[Any, Path, Path]:
    from builder.models import load_manifest, model_dir, reference_dir

    entry = load_manifest().model(MODEL)
    if "q4" not in entry.variants:
        pytest.fail("the manifest's chat model has no q4 (gguf-blocks) variant")
    folder, reference = model_dir(entry), reference_dir(entry)
    if not (folder / "onnx" / "model_q4.onnx").exists():
        pytest.skip(f"{MODEL} is not built here (./hr build builds it)")
    return entry, folder, reference


def test_the_built_file_is_a_fifth_of_fp32_and_computes_with_the_references_weights(
    built: tuple[Any, Path, Path],
) -> None:
    import onnx
    from safetensors.numpy import load_file

    _, folder, reference = built
    q4, fp32 = folder / "onnx" / "model_q4.onnx", folder / "onnx" / "model.onnx"
    assert q4.stat().st_size * 5 < fp32.stat().st_size
    model = onnx.load(str(q4))
    weights = _Weights(onnx)
    weights.initializers = list(model.graph.initializer)
    for node in model.graph.node:  # the file's own weight nodes, as written
        if node.name.startswith("gguf/") and "/gguf" in node.name and node.op_type != "Transpose":
            weights.nodes.setdefault(node.name.rsplit("/gguf", 1)[0] + "/weight", []).append(node)
    assert not any(n.op_type == "MatMulNBits" for n in model.graph.node)
    computed = _probe(onnx, weights, model)
    ref = load_file(str(reference / "model.safetensors"))
    config = json.loads((folder / "config.json").read_text())
    assert len(computed) == 1 + 7 * config["num_hidden_layers"]
    assert np.array_equal(computed["gguf/token_embd/weight"], ref["model.embed_tokens.weight"])
    names = {"ffn_down": "mlp.down_proj", "ffn_up": "mlp.up_proj", "ffn_gate": "mlp.gate_proj"}
    names |= {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj"}
    names |= {"attn_output": "self_attn.o_proj"}
    for layer in (0, config["num_hidden_layers"] - 1):
        for gguf_name, hf_name in names.items():
            got = computed[f"gguf/blk.{layer}.{gguf_name}/weight"]
            assert np.array_equal(got, ref[f"model.layers.{layer}.{hf_name}.weight"]), (layer, gguf_name)


def test_the_built_file_answers_like_torch_and_agrees_with_fp32(built: tuple[Any, Path, Path]) -> None:
    from builder.convert import fidelity

    entry, folder, reference = built
    rows = fidelity.check_llm(entry, folder, reference, n_tokens=24)["q4"]
    for row in rows:
        assert row["same_prefix"] == min(row["torch_tokens"], row["onnx_tokens"]), row
        assert row["onnx_tokens"] == row["torch_tokens"], row
    agreement = fidelity.compare_candidates(folder, [folder / "onnx" / "model_q4.onnx"], texts=[HELD_OUT])
    assert agreement["model_q4.onnx"]["top1_agreement"] >= 0.995
