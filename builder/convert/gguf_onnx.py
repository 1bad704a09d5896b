"""Dtype ``{"quantize": "gguf-blocks"}``: the fp32 decoder export with every weight put back into the GGUF's
own blocks (:mod:`.gguf_blocks`): about a quarter of the fp32 file, computing with the same weights.

Each weight is stored as its blocks (4-bit values packed two to a byte, or 8-bit values, with the blocks'
scales and offsets, fp16 where that is lossless) followed by a few standard ops that compute
``q * scale + offset`` and reshape/transpose the result into the matrix the ``MatMul`` (or the token
embedding's ``Gather``) reads. Those ops take only initializers, so ONNX Runtime's constant folding
(on at every graph optimization level, in onnxruntime-web too) computes the fp32 weights once when the
session is created: the device downloads the compact file and runs at fp32 speed. ``MatMulNBits`` would
keep the weights compact in memory, but onnxruntime-web 1.31's wasm build has no fast kernel for it: it
dequantizes on every call. Measured in Chromium (plain SIMD-threaded build, 1 thread, 8 chained 1536x1536
layers, one token; the machine busy with a training, so ratios only):

===============================  ========  ========
B as                             time      vs fp32
===============================  ========  ========
fp32 ``MatMul``                  25.5 ms   1x
MatMulNBits 4-bit, float zero     80.1 ms   3.1x
MatMulNBits 4-bit, uint8 zero    292.7 ms   11.5x
MatMulNBits 8-bit, uint8 zero    127.5 ms   5.0x
===============================  ========  ========

(accuracy_level 4, int8 activations, was no faster there; natively, onnxruntime 1.32 on x86 has fast
kernels for 4-bit with uint8 zero points only: 1.4x fp32, float zero points 39x.)

- linear layers (``/model/layers.N/{self_attn,mlp}/*_proj/MatMul``) read GGUF ``blk.N.*`` tensors, rows in
  the reference's order (llama.cpp permutes q/k rows for its rotary layout: the order is found by
  comparing with the export's weights);
- the token embedding and the tied output head (``/lm_head/MatMul``) share one blocks table: the GGUF copy
  equal to the reference's table (Q8_0).

:func:`convert` returns the proof the manifest records: the max abs difference between the weights the file
computes with (its own nodes and initializers, run in onnxruntime) and the fp32 export's (torch's) weights.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from builder.common import BuildError, log

from .gguf_blocks import Blocks, decode, pack_nibbles

__all__ = ["convert"]

_LINEAR = re.compile(r"^/model/layers\.(\d+)/(self_attn|mlp)/(q|k|v|o|gate|up|down)_proj/MatMul$")
_GGUF_NAME = {"q": "attn_q", "k": "attn_k", "v": "attn_v", "o": "attn_output"} | {
    p: f"ffn_{p}" for p in ("gate", "up", "down")
}


def _row_orders(rows: int, heads: tuple[int, ...]) -> list[tuple[str, np.ndarray]]:
    """Candidate row orders of a GGUF q/k matrix: as stored, or llama.cpp's rotary permutation undone."""
    orders = [("identity", np.arange(rows))]
    for n_head in dict.fromkeys(heads):
        if n_head and rows % (2 * n_head) == 0:
            dim = rows // n_head // 2
            # transformers' reverse_permute_weights: reshape(n_head, dim, 2, ...).swapaxes(2, 1)
            orders.append(
                (f"rotary/{n_head}", np.arange(rows).reshape(n_head, dim, 2).swapaxes(2, 1).reshape(rows))
            )
    return orders


def _match(blocks: Blocks, reference: np.ndarray, heads: tuple[int, ...]) -> tuple[Blocks, str, float]:
    """``blocks`` with rows reordered to match ``reference`` ``[N, K]``; the order's name; max abs diff."""
    w = blocks.dequantize()
    if w.shape != reference.shape:
        raise BuildError(
            f"a GGUF {blocks.gguf_type} tensor {w.shape} does not match the export's {reference.shape}",
            hint="the GGUF file and the fp32 export come from different models: rebuild the model",
        )
    scored = [
        (float(np.abs(w[order] - reference).max()), name, order)
        for name, order in _row_orders(w.shape[0], heads)
    ]
    diff, name, order = min(scored, key=lambda s: s[0])
    return blocks.rows(order), name, diff


#: byte -> (low nibble, high nibble) as floats
_NIBBLES = np.stack([np.arange(256) & 15, np.arange(256) >> 4], axis=1).astype(np.float32)


def _lossless_f16(a: np.ndarray) -> np.ndarray:
    """``a`` as fp16 where that loses nothing (the GGUF's own scales), else float32."""
    with np.errstate(over="ignore"):
        h = a.astype(np.float16)
    return h if np.array_equal(h.astype(np.float32), a) else a.astype(np.float32)


class _Weights:
    """Adds a weight's blocks and the constant nodes that compute it to a graph under construction."""

    def __init__(self, onnx: Any) -> None:
        self.onnx = onnx
        self.initializers: list[Any] = []
        self.nodes: dict[str, list[Any]] = {}  # weight output -> the nodes that compute it

    def _init(self, name: str, arr: np.ndarray) -> str:
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def add(self, p: str, blocks: Blocks, *, transpose: bool) -> str:
        """Nodes computing the ``[N, K]`` weight (``[K, N]`` with ``transpose``); returns its tensor name."""
        h, f = self.onnx.helper.make_node, self.onnx.TensorProto.FLOAT
        n, k = blocks.shape
        nodes = []
        if blocks.bits == 4:  # a byte holds two values: a 256-entry table gives both as floats, one pass
            q = self._init(f"{p}.q4", pack_nibbles(blocks.q))
            lut = self._init(f"{p}.nibbles", _NIBBLES)
            blocks_shape = self._init(f"{p}.blocks_shape", np.array(blocks.q.shape, np.int64))
            nodes += [
                h("Cast", [q], [f"{p}/bytes"], to=self.onnx.TensorProto.INT32),  # Gather's indices
                h("Gather", [lut, f"{p}/bytes"], [f"{p}/pairs"], axis=0),  # [N, nb, block/2, 2]
                h("Reshape", [f"{p}/pairs", blocks_shape], [f"{p}/values"]),
            ]
        else:
            q = self._init(f"{p}.q8", blocks.q)
            nodes.append(h("Cast", [q], [f"{p}/values"], to=f))
        scale = self._init(f"{p}.scale", _lossless_f16(blocks.scale[..., None]))
        nodes += [
            h("Cast", [scale], [f"{p}/scale_f"], to=f),
            h("Mul", [f"{p}/values", f"{p}/scale_f"], [f"{p}/scaled"]),
        ]
        last = f"{p}/scaled"
        if np.any(blocks.offset):
            offset = self._init(f"{p}.offset", _lossless_f16(blocks.offset[..., None]))
            nodes += [
                h("Cast", [offset], [f"{p}/offset_f"], to=f),
                h("Add", [last, f"{p}/offset_f"], [f"{p}/w3"]),
            ]
            last = f"{p}/w3"
        shape = self._init(f"{p}.shape", np.array([n, k], np.int64))
        nodes.append(h("Reshape", [last, shape], [f"{p}/weight"]))
        out = f"{p}/weight"
        if transpose:
            nodes.append(h("Transpose", [out], [f"{p}/weight_t"], perm=[1, 0]))
            out = f"{p}/weight_t"
        for i, node in enumerate(nodes):
            node.name = f"{p}/gguf{i}"
        self.nodes[f"{p}/weight"] = nodes
        return out


def _probe(onnx: Any, weights: _Weights, model: Any) -> dict[str, np.ndarray]:
    """Run the file's own weight nodes and initializers in onnxruntime: the weights it computes with."""
    import onnxruntime as ort

    nodes = [n for ns in weights.nodes.values() for n in ns if n.op_type != "Transpose"]
    outputs = [onnx.helper.make_tensor_value_info(w, onnx.TensorProto.FLOAT, None) for w in weights.nodes]
    graph = onnx.helper.make_graph(nodes, "weights", [], outputs, weights.initializers)
    probe = onnx.helper.make_model(graph, opset_imports=list(model.opset_import))
    probe.ir_version = model.ir_version
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return dict(zip(weights.nodes, sess.run(None, {}), strict=True))


def convert(
    fp32: Path, gguf_file: Path, dst: Path, config: dict[str, Any], progress: Callable[[str], None] = log
) -> dict[str, Any]:
    """Write ``dst`` from the fp32 export and the GGUF's blocks; return the weight-equality record."""
    import onnx
    from gguf import GGUFReader

    heads = (int(config.get("num_attention_heads", 0)), int(config.get("num_key_value_heads", 0)))
    model = onnx.load(str(fp32))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    tensors = {t.name: t for t in GGUFReader(str(gguf_file)).tensors}
    embed = next((n for n in graph.node if n.op_type == "Gather" and n.input[0] in inits), None)
    head = next((n for n in graph.node if n.name == "/lm_head/MatMul"), None)
    if embed is None or head is None:
        raise BuildError(
            f"{fp32.name}: no token-embedding Gather or /lm_head/MatMul",
            hint="the gguf-blocks dtype expects optimum's text-generation-with-past export of a decoder",
        )
    table = embed.input[0]
    references: dict[str, np.ndarray] = {}
    types: dict[str, int] = {}
    max_diff = 0.0
    weights = _Weights(onnx)
    # the embedding's blocks: the GGUF copy equal to the reference's (re-tied) table, the more precise first
    emb_ref = onnx.numpy_helper.to_array(inits[table])
    candidates = [
        _match(decode(tensors[n]), emb_ref, ())
        for n in ("output.weight", "token_embd.weight")
        if n in tensors
    ]
    exact = [c for c in candidates if c[2] <= 1e-6 * float(np.abs(emb_ref).max())]
    if not exact:
        raise BuildError(
            f"{fp32.name}: no GGUF tensor equals the export's token embedding",
            hint="the gguf-blocks dtype needs the reference's embedding to come from the GGUF: keep fp32",
        )
    emb_blocks = exact[0][0]
    emb_table = weights.add("gguf/token_embd", emb_blocks, transpose=False)
    references["gguf/token_embd/weight"] = emb_ref
    types[emb_blocks.gguf_type] = 1
    max_diff = exact[0][2]
    head_t = f"{emb_table}_t"
    new_nodes: list[Any] = []
    drop = {table}
    for node in graph.node:
        m = _LINEAR.match(node.name)
        if node is embed:
            new_nodes.append(
                onnx.helper.make_node(
                    "Gather", [emb_table, embed.input[1]], list(embed.output), name=embed.name, axis=0
                )
            )
        elif node is head:
            new_nodes.append(
                onnx.helper.make_node(
                    "Transpose", [emb_table], [head_t], name=f"{head.name}/transpose", perm=[1, 0]
                )
            )
            new_nodes.append(
                onnx.helper.make_node("MatMul", [head.input[0], head_t], list(head.output), name=head.name)
            )
        elif node.op_type == "Transpose" and node.input[0] == table:
            continue  # the export's transposed table for the head: the head transposes the blocks' table
        elif m and node.input[1] in inits:
            layer, _, proj = m.groups()
            name = f"blk.{layer}.{_GGUF_NAME[proj]}.weight"
            if name not in tensors:
                raise BuildError(
                    f"{fp32.name}: {node.name} has no GGUF tensor {name}", hint="rebuild the model"
                )
            ref = onnx.numpy_helper.to_array(inits[node.input[1]]).T  # [N, K]
            blocks, _order, diff = _match(decode(tensors[name]), ref, heads if proj in ("q", "k") else ())
            p = f"gguf/{name.removesuffix('.weight')}"
            w_t = weights.add(p, blocks, transpose=True)
            new_nodes.append(
                onnx.helper.make_node("MatMul", [node.input[0], w_t], list(node.output), name=node.name)
            )
            drop.add(node.input[1])
            references[f"{p}/weight"] = ref
            types[blocks.gguf_type] = types.get(blocks.gguf_type, 0) + 1
            max_diff = max(max_diff, diff)
        else:
            new_nodes.append(node)
    # the weight nodes first (topological order: they read initializers only)
    all_nodes = [n for ns in weights.nodes.values() for n in ns] + new_nodes
    del graph.node[:]
    graph.node.extend(all_nodes)
    kept = [i for i in graph.initializer if i.name not in drop] + weights.initializers
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.save(model, str(dst))
    progress(f"gguf-blocks: {len(references)} weights ({types}); checking the weights the file computes with")
    computed = _probe(onnx, weights, model)
    computed_diff = max(float(np.abs(computed[k] - ref).max()) for k, ref in references.items())
    if computed_diff > 1e-6 * max(float(np.abs(r).max()) for r in references.values()):
        raise BuildError(
            f"{dst.name}: the weights the file computes with differ from the reference by {computed_diff}",
            hint="a GGUF block decoder is wrong: this is a bug in builder/convert/gguf_blocks.py",
        )
    return {
        "weights": len(references),
        "gguf_types": dict(sorted(types.items())),
        "max_abs_diff_blocks": max_diff,
        "max_abs_diff_computed": computed_diff,
        "size_bytes": dst.stat().st_size,
    }
