"""Weight-only int8: shrink an ONNX file's weights while keeping fp32 math (Transformers.js dtype ``q8``).

- MatMul weights (2-D fp32 initializers) -> int8, symmetric, one scale per output column, expanded at run
  time by a standard ``DequantizeLinear(axis=1)``. Unlike dynamic int8 (``MatMulInteger``) activations stay
  fp32, which is why MiniLM keeps cosine >= 0.999 against torch where dynamic per-tensor int8 gets 0.946.
- Token-embedding tables (``Gather`` on a 2-D table of > 1000 rows), by ``gather``:
  ``int8`` one scale per row; ``int8t`` one scale for the table; ``fp16`` fp16 + ``Cast``; ``none`` as is.
  Use ``fp16`` or ``int8t`` for decoders: a per-axis ``DequantizeLinear`` feeding a ``Gather`` crashes
  onnxruntime-web 1.31 there.
- ``keep``: MatMuls left fp32 by node name. For all-MiniLM-L6-v2 the attention value and output projections
  carry most of the error on long inputs: all int8 gave cosine 0.9986 on a 256-token input (23.6 MB), keeping
  those 12 matrices fp32 gives 0.99906 (28.9 MB); keeping the FFN outputs instead: 0.99921 at 34.2 MB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

GATHER_MODES = ("int8", "int8t", "fp16", "none")


def _all_nodes(graph: Any) -> Any:
    """Nodes of the graph and of its If/Loop subgraphs (merged decoders keep weights in the outer graph)."""
    import onnx

    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _all_nodes(attr.g)
            for sub in attr.graphs:
                yield from _all_nodes(sub)


def _int8(w: Any, axis: int | None) -> tuple[Any, Any, Any]:
    """Symmetric int8 of ``w``: one scale per index of ``axis`` (one for the tensor when None)."""
    import numpy as np

    if axis is None:
        scale = np.array(np.abs(w).max() / 127.0, np.float32)
        return np.clip(np.round(w / scale), -127, 127).astype(np.int8), scale, np.array(0, np.int8)
    reduce = tuple(a for a in range(w.ndim) if a != axis)
    scale = (np.abs(w).max(axis=reduce) / 127.0).astype(np.float32)
    scale[scale == 0] = 1.0
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale, np.zeros_like(scale, dtype=np.int8)


def _targets(
    graph: Any,
    inits: dict[str, Any],
    *,
    gather: str,
    matmul: bool,
    keep: tuple[str, ...],
    half: tuple[str, ...] = (),
) -> dict[str, str]:
    """Weight name -> how to store it (``int8:1``, ``int8:0``, ``int8:tensor``, ``fp16``), in graph order."""
    import onnx

    def fp32_matrix(name: str) -> bool:
        t = inits.get(name)
        return t is not None and t.data_type == onnx.TensorProto.FLOAT and len(t.dims) == 2

    gather_mode = {"int8": "int8:0", "int8t": "int8:tensor", "fp16": "fp16"}.get(gather)
    out: dict[str, str] = {}
    for node in _all_nodes(graph):
        if node.op_type == "MatMul" and matmul and len(node.input) == 2 and fp32_matrix(node.input[1]):
            if any(k in node.name for k in half):
                out.setdefault(node.input[1], "fp16")
            elif not any(k in node.name for k in keep):
                out.setdefault(node.input[1], "int8:1")
        elif node.op_type == "Gather" and gather_mode and fp32_matrix(node.input[0]):
            if inits[node.input[0]].dims[0] > 1000:
                out.setdefault(node.input[0], gather_mode)
    return out


def weight_only_int8(
    src: Path,
    dst: Path,
    *,
    gather: str = "int8",
    matmul: bool = True,
    keep: tuple[str, ...] = (),
    half: tuple[str, ...] = (),
) -> int:
    """Write ``dst`` from ``src``; return how many weight tensors were compressed.

    ``keep``: MatMul nodes whose name contains one of these strings keep their fp32 weight;
    ``half``: MatMul nodes whose name contains one of these store it as fp16 (+ ``Cast``), the rest int8.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    if gather not in GATHER_MODES:
        raise ValueError(f"gather must be one of {GATHER_MODES}, got {gather!r}")
    model = onnx.load(str(src))
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    done: dict[str, str] = {}
    new_nodes = []
    for name, mode in _targets(graph, inits, gather=gather, matmul=matmul, keep=keep, half=half).items():
        w = numpy_helper.to_array(inits[name]).astype(np.float32)
        graph.initializer.remove(inits[name])
        if mode == "fp16":
            graph.initializer.append(numpy_helper.from_array(w.astype(np.float16), f"{name}_fp16"))
            node = helper.make_node(
                "Cast", [f"{name}_fp16"], [f"{name}_f32"], to=onnx.TensorProto.FLOAT, name=f"{name}_Cast"
            )
        else:
            axis = None if mode == "int8:tensor" else int(mode.split(":")[1])
            ins = [f"{name}_q8", f"{name}_scale", f"{name}_zp"]
            graph.initializer.extend(
                numpy_helper.from_array(a, n) for a, n in zip(_int8(w, axis), ins, strict=True)
            )
            attrs: dict[str, Any] = {} if axis is None else {"axis": axis}  # node attributes, not make_node's
            node = helper.make_node(
                "DequantizeLinear",
                ins,
                [f"{name}_dq"],
                name=f"{name}_DequantizeLinear",
                **attrs,
            )
        new_nodes.append(node)
        done[name] = node.output[0]
    # one weight may feed several nodes (tied embeddings: Gather + the lm_head MatMul)
    for node in _all_nodes(graph):
        for i, name in enumerate(node.input):
            if name in done:
                node.input[i] = done[name]
    for node in reversed(new_nodes):
        graph.node.insert(0, node)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return len(done)
