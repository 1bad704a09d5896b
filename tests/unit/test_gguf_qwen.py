"""The second chat model, Qwen2.5-Coder-0.5B-Instruct, from its GGUF's own blocks
(builder/convert/gguf_onnx.py with ``"matmul": "nbits"``).

Its fp32 weights (2 GB) expanded by constant folding do not fit a 4 GB wasm heap, so the 8-bit block types
(Q8_0, Q5_0, Q6_K) are read by ``MatMulNBits`` as they are, and the tied embedding is gathered from the
same Q8_0 blocks at run time; the 4-bit ones (Q4_K) stay folded. Checked here:

- on random blocks: ``MatMulNBits`` computes exactly the GGUF's dequantized weights (its product with the
  identity), the run-time gather exactly its rows; a 4-bit type has no such 8-bit form;
- on the built model (when built): the weights the file computes with equal the reference's safetensors
  (first and last layer, the embedding and the head), its greedy output equals transformers on torch, and
  its teacher-forced top-1 agreement with fp32 (torch, the same weights) on a held-out text is >= 99.5%.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builder.convert.gguf_blocks import decode
from builder.convert.gguf_onnx import _Nbits, _probe, _probe_nbits, _Weights, nbits_form
from tests.unit.test_gguf_blocks import HELD_OUT, random_tensor

MODEL = "Qwen2.5-Coder-0.5B-Instruct"


def _model(onnx: Any) -> Any:
    model = onnx.helper.make_model(
        onnx.helper.make_graph([], "g", [], []),
        opset_imports=[onnx.helper.make_opsetid("", 17), onnx.helper.make_opsetid("com.microsoft", 1)],
    )
    model.ir_version = 8
    return model


@pytest.mark.parametrize("kind", ["Q8_0", "Q5_0", "Q6_K"])
def test_matmul_nbits_computes_the_blocks_weights_exactly(kind: str) -> None:
    import onnx

    blocks = decode(random_tensor(kind, rows=6, n_blocks=2, seed=3))
    form = nbits_form(blocks)
    assert form is not None
    nbits = _Nbits(onnx)
    names = nbits.table("w", form)
    nbits.matmul("w", names, form[0].shape, "a", "y")
    got = _probe_nbits(onnx, nbits, _model(onnx), "w/weight", nbits.initializers)
    assert np.array_equal(got, blocks.dequantize())


def test_the_run_time_gather_returns_the_blocks_rows_exactly() -> None:
    import onnx
    import onnxruntime as ort

    blocks = decode(random_tensor("Q8_0", rows=7, n_blocks=2, seed=4))
    form = nbits_form(blocks)
    assert form is not None
    nbits = _Nbits(onnx)
    names = nbits.table("t", form)
    nodes = nbits.gather("t", names, "ids", "rows", blocks.shape[1], form[2])
    graph = onnx.helper.make_graph(
        nodes,
        "g",
        [onnx.helper.make_tensor_value_info("ids", onnx.TensorProto.INT64, [1, None])],
        [onnx.helper.make_tensor_value_info("rows", onnx.TensorProto.FLOAT, None)],
        nbits.initializers,
    )
    model = _model(onnx)
    model.graph.CopyFrom(graph)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ids = np.array([[6, 0, 3, 3]], np.int64)
    got = sess.run(None, {"ids": ids})[0]
    assert np.array_equal(got, blocks.dequantize()[ids])


@pytest.mark.parametrize("kind", ["Q4_1", "Q4_K"])
def test_4_bit_types_have_no_exact_8_bit_form(kind: str) -> None:
    assert nbits_form(decode(random_tensor(kind))) is None


# ---------------------------------------------------------------- the built model


@pytest.fixture(scope="module")
def built() -> tuple[Any, Path, Path]:
    from builder.models import load_manifest, model_dir, reference_dir

    manifest = load_manifest()
    if MODEL not in manifest.ids:
        pytest.fail(f"the manifest has no {MODEL}")
    entry = manifest.model(MODEL)
    folder, reference = model_dir(entry), reference_dir(entry)
    if not (folder / "onnx" / "model_q4.onnx").exists() or not (reference / "model.safetensors").exists():
        pytest.skip(f"{MODEL} is not built here (python -m builder all --models {MODEL} builds it)")
    return entry, folder, reference


def _computed_weights(folder: Path, wanted: set[str]) -> dict[str, np.ndarray]:
    """The weights ``wanted`` as the built file computes with them: its folded nodes run in onnxruntime,
    its MatMulNBits nodes times the identity."""
    import onnx

    model = onnx.load(str(folder / "onnx" / "model_q4.onnx"))
    weights, nbits = _Weights(onnx), _Nbits(onnx)
    weights.initializers = nbits.initializers = list(model.graph.initializer)
    for node in model.graph.node:  # the file's own weight nodes, as written
        if node.op_type == "MatMulNBits":
            nbits.matmuls[node.name.rsplit("/", 1)[0] + "/weight"] = node
        elif node.name.startswith("gguf/") and "/gguf" in node.name and node.op_type != "Transpose":
            weights.nodes.setdefault(node.name.rsplit("/gguf", 1)[0] + "/weight", []).append(node)
    assert not any(n.op_type == "MatMul" and n.name == "/lm_head/MatMul" for n in model.graph.node)
    folded = [w for w in wanted if w in weights.nodes]
    out = _probe(onnx, weights, model, folded) if folded else {}
    for w in wanted - set(folded):
        out[w] = _probe_nbits(onnx, nbits, model, w, nbits.initializers)
    return out


def test_the_built_file_computes_with_the_references_weights(built: tuple[Any, Path, Path]) -> None:
    from safetensors.numpy import load_file

    entry, folder, reference = built
    config = json.loads((folder / "config.json").read_text())
    assert "onnx/model.onnx" not in entry.files  # the 2 GB fp32 is only the build's intermediate
    assert (folder / "onnx" / "model_q4.onnx").stat().st_size < 600e6
    ref = load_file(str(reference / "model.safetensors"))
    names = {"ffn_down": "mlp.down_proj", "ffn_up": "mlp.up_proj", "ffn_gate": "mlp.gate_proj"}
    names |= {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj"}
    names |= {"attn_output": "self_attn.o_proj"}
    layers = (0, config["num_hidden_layers"] - 1)
    wanted = {f"gguf/blk.{layer}.{g}/weight" for layer in layers for g in names} | {"gguf/token_embd/weight"}
    computed = _computed_weights(folder, wanted)
    # the head (MatMulNBits over output.weight's Q8_0 blocks) and the tied embedding: the reference's table
    assert np.array_equal(computed["gguf/token_embd/weight"], ref["model.embed_tokens.weight"])
    for layer in layers:
        for gguf_name, hf_name in names.items():
            got = computed[f"gguf/blk.{layer}.{gguf_name}/weight"]
            assert np.array_equal(got, ref[f"model.layers.{layer}.{hf_name}.weight"]), (layer, gguf_name)


def test_the_gathered_embedding_rows_are_the_references(built: tuple[Any, Path, Path]) -> None:
    import onnx
    import onnxruntime as ort
    from safetensors.numpy import load_file

    _, folder, reference = built
    model = onnx.load(str(folder / "onnx" / "model_q4.onnx"))
    nodes = [n for n in model.graph.node if n.name.startswith("gguf/token_embd/gather")]
    assert len(nodes) == 7
    used = {i for n in nodes for i in n.input}
    ids, rows = nodes[0].input[1], nodes[-1].output[0]
    graph = onnx.helper.make_graph(
        nodes,
        "embedding",
        [onnx.helper.make_tensor_value_info(ids, onnx.TensorProto.INT64, [1, None])],
        [onnx.helper.make_tensor_value_info(rows, onnx.TensorProto.FLOAT, None)],
        [i for i in model.graph.initializer if i.name in used],
    )
    probe = onnx.helper.make_model(graph, opset_imports=list(model.opset_import))
    probe.ir_version = model.ir_version
    sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    table = load_file(str(reference / "model.safetensors"))["model.embed_tokens.weight"]
    some = np.array([[0, 1, 151643, 151645, 9707, len(table) - 1]], np.int64)
    assert np.array_equal(sess.run(None, {ids: some})[0], table[some])


def test_the_built_file_answers_like_torch(built: tuple[Any, Path, Path]) -> None:
    from builder.convert import fidelity

    entry, folder, reference = built
    rows = fidelity.check_llm(entry, folder, reference, n_tokens=24)["q4"]
    for row in rows:
        assert row["same_prefix"] == min(row["torch_tokens"], row["onnx_tokens"]), row
        assert row["onnx_tokens"] == row["torch_tokens"], row


def test_teacher_forced_top1_agrees_with_fp32_torch(built: tuple[Any, Path, Path]) -> None:
    """fp32 does not ship for this model: the fp32 side is torch on the reference (the same weights)."""
    import onnxruntime as ort
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, folder, reference = built
    tok = AutoTokenizer.from_pretrained(str(folder))
    ids = np.array(tok(HELD_OUT)["input_ids"], np.int64)
    model = AutoModelForCausalLM.from_pretrained(str(reference), dtype=torch.float32).eval()
    with torch.no_grad():
        base = model(torch.tensor(ids[None])).logits[0].numpy()
    del model
    config = json.loads((folder / "config.json").read_text())
    sess = ort.InferenceSession(str(folder / "onnx" / "model_q4.onnx"), providers=["CPUExecutionProvider"])
    hd = config["hidden_size"] // config["num_attention_heads"]
    feeds: dict[str, np.ndarray] = {
        "input_ids": ids[None],
        "attention_mask": np.ones((1, len(ids)), np.int64),
        "position_ids": np.arange(len(ids), dtype=np.int64)[None],
    }
    for i in sess.get_inputs():
        if i.name.startswith("past_key_values"):
            feeds[i.name] = np.zeros((1, config["num_key_value_heads"], 0, hd), np.float32)
    got = sess.run(["logits"], feeds)[0][0]
    assert len(ids) > 60
    assert float((got.argmax(-1) == base.argmax(-1)).mean()) >= 0.995
