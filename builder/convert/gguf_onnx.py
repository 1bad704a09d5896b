"""Dtype ``{"quantize": "gguf-blocks"}``: the fp32 decoder export with every weight put back into the GGUF's
own blocks (:mod:`.gguf_blocks`): about a quarter of the fp32 file, computing with the same weights.

Each weight is stored as its blocks (4-bit values packed two to a byte, or 8-bit values, with the blocks'
scales and offsets, fp16 where that is lossless) followed by a few standard ops that compute
``q * scale + offset`` and reshape the result into the matrix the ``MatMul`` (or the token
embedding's ``Gather``) reads (a linear layer's blocks are stored transposed, so its ``[K, N]`` matrix
needs no ``Transpose``: fewer passes over the fp32 weights). Those ops take only initializers, so ONNX
Runtime's constant folding (on at every graph optimization level, in onnxruntime-web too) computes the
fp32 weights once when the session is created: the device downloads the compact file and runs at fp32
speed. ``MatMulNBits`` would keep the weights compact in memory, but onnxruntime-web 1.31's wasm build has
no fast kernel for it: it dequantizes on every call. Measured in Chromium (plain SIMD-threaded build, 1
thread, 8 chained 1536x1536 layers, one token; the machine busy with a training, so ratios only):

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
  equal to the reference's table (Q8_0); the head reads it as ``[V, K]`` with ``FusedMatMul``'s ``transB``
  (ONNX Runtime's contrib op), so the folding has no transposed copy of the largest matrix to make.

``"matmul": "nbits"`` (Qwen2.5-Coder-0.5B: its 2 GB of fp32 weights and the folding's intermediates do not
fit a 4 GB wasm heap, ``std::bad_alloc`` in Chromium): the block types with an exact 8-bit form (Q8_0,
Q5_0, Q6_K) go to ``MatMulNBits`` as they are, the tied embedding is gathered from the head's blocks at run
time, the 4-bit ones stay folded. The session then fits, but the wasm kernel is slow (0.08 tokens/s for
that model on this machine): a form for WebGPU devices.

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
        # a weight's name (``<p>/weight``) -> the nodes that compute it; the last one's output is the weight
        # as ``[N, K]`` (``<p>/weight``) or as ``[K, N]`` (``<p>/weight_t``)
        self.nodes: dict[str, list[Any]] = {}

    def _init(self, name: str, arr: np.ndarray) -> str:
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def add(self, p: str, blocks: Blocks, *, transpose: bool) -> str:
        """Nodes computing the ``[N, K]`` weight (``[K, N]`` with ``transpose``); returns its tensor name.

        With ``transpose`` the blocks are stored transposed (``q`` as ``[n_blocks, block, N]``, the scales
        and offsets as ``[n_blocks, 1, N]``), so the nodes compute the ``[K, N]`` matrix directly: the same
        ``q * scale + offset`` per weight, with no ``Transpose`` and one ``Reshape`` less for the constant
        folding to run (each folded node is a pass over the whole fp32 weight when the session is created)."""
        h, f = self.onnx.helper.make_node, self.onnx.TensorProto.FLOAT
        n, k = blocks.shape
        nb = blocks.q.shape[1]
        if transpose and blocks.bits == 4 and n % 2:
            raise BuildError(f"{p}: {n} output features, not even", hint="keep this model's fp32 dtype")
        if transpose:  # [N, nb, block] -> [nb, block, N]; a 4-bit pair is two neighbouring columns n
            q_values = np.ascontiguousarray(blocks.q.transpose(1, 2, 0))
            grid: tuple[int, ...] = (nb, 1, n // 2, 2) if blocks.bits == 4 else (nb, 1, n)
            scale_arr = np.ascontiguousarray(blocks.scale.T).reshape(grid)
            offset_arr = np.ascontiguousarray(blocks.offset.T).reshape(grid)
            out_shape, out = [k, n], f"{p}/weight_t"
        else:
            q_values = blocks.q
            scale_arr, offset_arr = blocks.scale[..., None], blocks.offset[..., None]
            out_shape, out = [n, k], f"{p}/weight"
        nodes = []
        if blocks.bits == 4:  # a byte holds two values: a 256-entry table gives both as floats, one pass
            q = self._init(f"{p}.q4", pack_nibbles(q_values))
            lut = self._init(f"{p}.nibbles", _NIBBLES)
            nodes += [
                h("Cast", [q], [f"{p}/bytes"], to=self.onnx.TensorProto.INT32),  # Gather's indices
                h("Gather", [lut, f"{p}/bytes"], [f"{p}/pairs"], axis=0),  # [..., pairs, 2]
            ]
            values = f"{p}/pairs"
            if not transpose:
                blocks_shape = self._init(f"{p}.blocks_shape", np.array(blocks.q.shape, np.int64))
                nodes.append(h("Reshape", [values, blocks_shape], [f"{p}/values"]))
                values = f"{p}/values"
        else:
            q = self._init(f"{p}.q8", q_values)
            values = f"{p}/values"
            nodes.append(h("Cast", [q], [values], to=f))
        scale = self._init(f"{p}.scale", _lossless_f16(scale_arr))
        nodes += [
            h("Cast", [scale], [f"{p}/scale_f"], to=f),
            h("Mul", [values, f"{p}/scale_f"], [f"{p}/scaled"]),
        ]
        last = f"{p}/scaled"
        if np.any(blocks.offset):
            offset = self._init(f"{p}.offset", _lossless_f16(offset_arr))
            nodes += [
                h("Cast", [offset], [f"{p}/offset_f"], to=f),
                h("Add", [last, f"{p}/offset_f"], [f"{p}/w3"]),
            ]
            last = f"{p}/w3"
        shape = self._init(f"{p}.shape", np.array(out_shape, np.int64))
        nodes.append(h("Reshape", [last, shape], [out]))
        for i, node in enumerate(nodes):
            node.name = f"{p}/gguf{i}"
        self.nodes[f"{p}/weight"] = nodes
        return out


#: 8-bit GGUF types as ``MatMulNBits`` blocks: (added to q to make it unsigned, the zero point)
_NBITS: dict[str, tuple[int, int]] = {"Q8_0": (128, 128), "Q5_0": (0, 16), "Q6_K": (0, 32)}


def nbits_form(blocks: Blocks) -> tuple[np.ndarray, np.ndarray, int] | None:
    """``blocks`` as ``MatMulNBits`` 8-bit blocks ``w = (q - zero) * scale`` with an integer zero point, or
    None where the type has no such exact form (4-bit types: their offsets are not whole multiples of the
    scale). Returns (q as uint8 ``[N, blocks, block]``, scale ``[N, blocks]``, zero point)."""
    if blocks.gguf_type not in _NBITS:
        return None
    shift, zero = _NBITS[blocks.gguf_type]
    q = (blocks.q.astype(np.int16) + shift).astype(np.uint8)
    w = (q.astype(np.float32) - np.float32(zero)) * blocks.scale[..., None]
    if not np.array_equal(w.reshape(blocks.shape), blocks.dequantize()):
        raise BuildError(
            f"{blocks.gguf_type} blocks are not (q - {zero}) * scale",
            hint="a GGUF block decoder is wrong: this is a bug in builder/convert/gguf_blocks.py",
        )
    return np.ascontiguousarray(q), np.ascontiguousarray(blocks.scale.astype(np.float32)), zero


class _Nbits:
    """``MatMulNBits`` (com.microsoft) reading a weight's 8-bit blocks as they are: the weights stay
    compact in memory and are expanded block by block inside the kernel, on every call."""

    def __init__(self, onnx: Any) -> None:
        self.onnx = onnx
        self.initializers: list[Any] = []
        self.matmuls: dict[str, Any] = {}  # weight name -> its MatMulNBits node
        self.zero: dict[str, str] = {}

    def _init(self, name: str, arr: np.ndarray) -> str:
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def table(self, p: str, form: tuple[np.ndarray, np.ndarray, int]) -> tuple[str, str, str]:
        """The blocks' initializers (q, scale, zero points); a weight that is also read by a gather
        (the tied embedding) uses the same ones."""
        q, scale, zero = form
        n, nb, _ = q.shape
        zp = self._init(f"{p}.zero", np.full((n, nb), zero, np.uint8))
        self.zero[p] = zp
        return self._init(f"{p}.q8", q), self._init(f"{p}.scale", scale), zp

    def matmul(self, p: str, names: tuple[str, str, str], shape: tuple[int, ...], a: str, y: str) -> Any:
        """``y = a @ w.T``, ``w`` the ``[N, K]`` weight of the blocks ``names`` (shape: N, blocks, block)."""
        n, nb, block = shape
        node = self.onnx.helper.make_node(
            "MatMulNBits",
            [a, *names],
            [y],
            name=f"{p}/MatMulNBits",
            domain="com.microsoft",
            K=nb * block,
            N=n,
            bits=8,
            block_size=block,
        )
        self.matmuls[f"{p}/weight"] = node
        return node

    def gather(self, p: str, names: tuple[str, str, str], ids: str, y: str, k: int, zero: int) -> list[Any]:
        """Rows ``ids`` of the table whose blocks are ``names``, ``(q - zero) * scale``, at run time (only the
        gathered rows are expanded; the same arithmetic as the GGUF's dequantization, so exact)."""
        h = self.onnx.helper.make_node
        q, scale, _ = names
        zero_f = self._init(f"{p}.zero_f", np.array(zero, np.float32))
        axes = self._init(f"{p}.axes", np.array([-1], np.int64))
        shape = self._init(f"{p}.row_shape", np.array([0, 0, k], np.int64))
        nodes = [
            h("Gather", [q, ids], [f"{p}/rows_q"], axis=0),
            h("Cast", [f"{p}/rows_q"], [f"{p}/rows_f"], to=self.onnx.TensorProto.FLOAT),
            h("Sub", [f"{p}/rows_f", zero_f], [f"{p}/rows_c"]),
            h("Gather", [scale, ids], [f"{p}/rows_scale"], axis=0),
            h("Unsqueeze", [f"{p}/rows_scale", axes], [f"{p}/rows_scale1"]),
            h("Mul", [f"{p}/rows_c", f"{p}/rows_scale1"], [f"{p}/rows"]),
            h("Reshape", [f"{p}/rows", shape], [y]),
        ]
        for i, node in enumerate(nodes):
            node.name = f"{p}/gather{i}"
        return nodes


def _probe_nbits(onnx: Any, nbits: _Nbits, model: Any, name: str, inits: list[Any]) -> np.ndarray:
    """The ``[N, K]`` weight a ``MatMulNBits`` node of the file computes with: its product with the identity
    (each output is one weight times 1.0: exact), run in onnxruntime."""
    import onnxruntime as ort

    node = nbits.matmuls[name]
    k = next(a.i for a in node.attribute if a.name == "K")
    probe_node = onnx.helper.make_node(
        "MatMulNBits", ["eye", *node.input[1:]], ["wt"], domain="com.microsoft", name="probe"
    )
    probe_node.attribute.extend(node.attribute)
    used = set(node.input[1:])
    graph = onnx.helper.make_graph(
        [probe_node],
        "probe",
        [onnx.helper.make_tensor_value_info("eye", onnx.TensorProto.FLOAT, [k, k])],
        [onnx.helper.make_tensor_value_info("wt", onnx.TensorProto.FLOAT, None)],
        [i for i in inits if i.name in used],
    )
    probe = onnx.helper.make_model(graph, opset_imports=list(model.opset_import))
    probe.ir_version = model.ir_version
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    wt: np.ndarray = sess.run(None, {"eye": np.eye(k, dtype=np.float32)})[0]
    return np.ascontiguousarray(wt.T)


def _probe(onnx: Any, weights: _Weights, model: Any, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Run the file's own nodes and initializers for the weights ``names`` (all) in onnxruntime: the
    weights it computes with, each as ``[N, K]``."""
    import onnxruntime as ort

    names = list(weights.nodes) if names is None else names
    nodes = [n for w in names for n in weights.nodes[w]]
    used = {i for n in nodes for i in n.input}
    inits = [i for i in weights.initializers if i.name in used]
    computed = [weights.nodes[w][-1].output[0] for w in names]
    outputs = [onnx.helper.make_tensor_value_info(c, onnx.TensorProto.FLOAT, None) for c in computed]
    graph = onnx.helper.make_graph(nodes, "weights", [], outputs, inits)
    probe = onnx.helper.make_model(graph, opset_imports=list(model.opset_import))
    probe.ir_version = model.ir_version
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    arrays = sess.run(None, {})
    return {w: a.T if c.endswith("/weight_t") else a for w, c, a in zip(names, computed, arrays, strict=True)}


def _computed_diff(onnx: Any, weights: _Weights, model: Any, references: dict[str, np.ndarray]) -> float:
    """The max abs difference between the weights the file computes with and ``references``, a few
    weights at a time (a 0.5B model's weights as fp32 are 2 GB)."""
    names, diff, chunk = list(weights.nodes), 0.0, []
    for i, name in enumerate(names):
        chunk.append(name)
        if len(chunk) == 8 or i == len(names) - 1:
            for k, w in _probe(onnx, weights, model, chunk).items():
                diff = max(diff, float(np.abs(w - references[k]).max()))
            chunk = []
    return diff


def _verify(
    onnx: Any, weights: _Weights, nbits: _Nbits, model: Any, references: dict[str, np.ndarray], dst: Path
) -> float:
    """The max abs difference between the weights the file computes with and the reference's; raises when
    that is more than float rounding. Every folded weight is run; of the ``MatMulNBits`` ones the head and
    the first and last layer's (the kernel's product with the identity costs K*K*N: all of a 0.5B model's
    take minutes), the rest being held to the same formula in numpy by :func:`nbits_form`."""
    folded = {k: r for k, r in references.items() if k in weights.nodes}
    diff = _computed_diff(onnx, weights, model, folded) if folded else 0.0
    layers = sorted({int(m.group(1)) for k in nbits.matmuls if (m := re.match(r"gguf/blk\.(\d+)\.", k))})
    ends = {f"gguf/blk.{n}." for n in layers[:1] + layers[-1:]}
    for name in nbits.matmuls:
        if not name.startswith("gguf/token_embd/") and not any(name.startswith(e) for e in ends):
            continue
        w = _probe_nbits(onnx, nbits, model, name, nbits.initializers)
        diff = max(diff, float(np.abs(w - references[name]).max()))
    if diff > 1e-6 * max(float(np.abs(r).max()) for r in references.values()):
        raise BuildError(
            f"{dst.name}: the weights the file computes with differ from the reference by {diff}",
            hint="a GGUF block decoder is wrong: this is a bug in builder/convert/gguf_blocks.py",
        )
    return diff


def _tied_nodes(
    onnx: Any,
    weights: _Weights,
    nbits: _Nbits,
    blocks: Blocks,
    form: tuple[np.ndarray, np.ndarray, int] | None,
    embed: Any,
    head: Any,
) -> tuple[list[Any], list[Any]]:
    """The nodes replacing the token embedding's ``Gather`` and the tied head's ``MatMul``: both read one
    blocks table (``MatMulNBits`` and a run-time gather with ``form``, else a folded fp32 table)."""
    h = onnx.helper.make_node
    if form is not None:
        names = nbits.table("gguf/token_embd", form)
        k = blocks.shape[1]
        gather = nbits.gather("gguf/token_embd", names, embed.input[1], embed.output[0], k, form[2])
        return gather, [nbits.matmul("gguf/token_embd", names, form[0].shape, head.input[0], head.output[0])]
    table = weights.add("gguf/token_embd", blocks, transpose=False)
    # the head reads the [V, K] table as it is (transB): no fp32 Transpose of the largest matrix to fold;
    # the same products as MatMul with the transposed table (the kernel packs B either way)
    return [h("Gather", [table, embed.input[1]], list(embed.output), name=embed.name, axis=0)], [
        h(
            "FusedMatMul",
            [head.input[0], table],
            list(head.output),
            name=head.name,
            domain="com.microsoft",
            transB=1,
            alpha=1.0,
        ),
    ]


def convert(
    fp32: Path,
    gguf_file: Path,
    dst: Path,
    config: dict[str, Any],
    progress: Callable[[str], None] = log,
    *,
    matmul: str = "fold",
) -> dict[str, Any]:
    """Write ``dst`` from the fp32 export and the GGUF's blocks; return the weight-equality record.

    ``matmul``: ``"fold"``, every weight computed by constant ops (expanded to fp32 when the session is
    created); ``"nbits"``, every weight with an exact 8-bit form (Q8_0, Q5_0, Q6_K: :func:`nbits_form`)
    read by ``MatMulNBits``, the tied embedding gathered from the same blocks at run time, the 4-bit ones
    (Q4_1, Q4_K) folded: for a model whose fp32 weights do not fit a 4 GB wasm heap."""
    import onnx
    from gguf import GGUFReader

    if matmul not in ("fold", "nbits"):
        raise BuildError(f"gguf-blocks: matmul {matmul!r}", hint="use 'fold' or 'nbits' in the manifest")
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
    nbits = _Nbits(onnx)
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
    emb_form = nbits_form(emb_blocks) if matmul == "nbits" else None
    references["gguf/token_embd/weight"] = emb_ref
    types[emb_blocks.gguf_type] = 1
    max_diff = exact[0][2]
    embed_nodes, head_nodes = _tied_nodes(onnx, weights, nbits, emb_blocks, emb_form, embed, head)
    new_nodes: list[Any] = []
    drop = {table}
    for node in graph.node:
        m = _LINEAR.match(node.name)
        if node is embed or node is head:
            new_nodes += embed_nodes if node is embed else head_nodes
            continue
        if node.op_type == "Transpose" and node.input[0] == table:
            continue  # the export's transposed table for the head: the head reads the blocks' table
        if m and node.input[1] in inits:
            layer, _, proj = m.groups()
            name = f"blk.{layer}.{_GGUF_NAME[proj]}.weight"
            if name not in tensors:
                raise BuildError(
                    f"{fp32.name}: {node.name} has no GGUF tensor {name}", hint="rebuild the model"
                )
            ref = onnx.numpy_helper.to_array(inits[node.input[1]]).T  # [N, K]
            blocks, _order, diff = _match(decode(tensors[name]), ref, heads if proj in ("q", "k") else ())
            p = f"gguf/{name.removesuffix('.weight')}"
            form = nbits_form(blocks) if matmul == "nbits" else None
            if form is not None:
                names = nbits.table(p, form)
                new_nodes.append(nbits.matmul(p, names, form[0].shape, node.input[0], node.output[0]))
            else:
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
    kept = [i for i in graph.initializer if i.name not in drop] + weights.initializers + nbits.initializers
    del graph.initializer[:]
    graph.initializer.extend(kept)
    contrib = bool(nbits.matmuls) or any(n.domain == "com.microsoft" for n in head_nodes)
    if contrib and not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    onnx.save(model, str(dst))
    progress(
        f"gguf-blocks: {len(references)} weights ({types}; {len(nbits.matmuls)} read by MatMulNBits); "
        "checking the weights the file computes with"
    )
    computed_diff = _verify(onnx, weights, nbits, model, references, dst)
    return {
        "weights": len(references),
        "gguf_types": dict(sorted(types.items())),
        "matmul_nbits": len(nbits.matmuls),
        "max_abs_diff_blocks": max_diff,
        "max_abs_diff_computed": computed_diff,
        "size_bytes": dst.stat().st_size,
    }
