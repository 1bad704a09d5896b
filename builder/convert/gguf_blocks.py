"""A GGUF tensor's own quantization blocks, read exactly (no re-quantization).

Every block type here stores ``w = q * scale + offset`` for a run of ``block`` weights along a row (ggml's
``ne0``, the input features), with ``q`` a small integer, which :mod:`.gguf_onnx` writes into the ONNX file
as it is and turns back into weights with standard ops:

============  ==========================================  ===============================================
GGUF type     the block                                   q, scale, offset
============  ==========================================  ===============================================
``Q4_1``      32 weights ``d*q + m``, q in 0..15            4 bits; d; m (both fp16 in the file)
``Q4_K``      256 = 8 x 32, ``d*sc_j*q - dmin*m_j``         4 bits, block 32; d*sc_j; -dmin*m_j
``Q8_0``      32 weights ``d*q``, q int8                    8 bits (int8); d; 0
``Q5_0``      32 weights ``d*(q - 16)``, q in 0..31         8 bits; d; -16*d
``Q6_K``      256 = 16 x 16, ``d*sc_j*(q - 32)``            8 bits, block 16; d*sc_j; -32*d*sc_j
============  ==========================================  ===============================================

The scales are fp16 (times an int8/6-bit sub-scale) in the GGUF, so ``scale`` and ``offset`` are exact in
fp32, and ``q * scale + offset`` is what the GGUF's reference dequantization computes (gguf-py, which
transformers uses for the torch reference), operation for operation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["SUPPORTED", "Blocks", "decode", "pack_nibbles"]


@dataclass(frozen=True)
class Blocks:
    """One weight matrix ``w[n, k] = q[n, b, i] * scale[n, b] + offset[n, b]`` with ``k = b * block + i``."""

    q: np.ndarray  # uint8 (or int8 for Q8_0) [rows, n_blocks, block]; values < 2**bits
    scale: np.ndarray  # float32 [rows, n_blocks]
    offset: np.ndarray  # float32 [rows, n_blocks]
    bits: int
    gguf_type: str

    @property
    def block(self) -> int:
        return int(self.q.shape[2])

    @property
    def shape(self) -> tuple[int, int]:
        rows, nb, bs = self.q.shape
        return rows, nb * bs

    def rows(self, order: np.ndarray) -> Blocks:
        """The same blocks with the rows in ``order``."""
        return Blocks(self.q[order], self.scale[order], self.offset[order], self.bits, self.gguf_type)

    def dequantize(self) -> np.ndarray:
        """The float32 weights ``[rows, k]``: ``q * scale + offset``."""
        w: np.ndarray = self.q.astype(np.float32) * self.scale[..., None] + self.offset[..., None]
        return w.reshape(self.shape)


def _f16(raw: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(raw).view(np.float16).astype(np.float32)[..., 0]


def _q4_1(raw: np.ndarray, rows: int) -> Blocks:
    b = raw.reshape(rows, -1, 20)
    d, m, qs = _f16(b[..., 0:2]), _f16(b[..., 2:4]), b[..., 4:20]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1)  # element j in the low nibble of byte j, j+16 high
    return Blocks(q.astype(np.uint8), d, m, 4, "Q4_1")


def _q8_0(raw: np.ndarray, rows: int) -> Blocks:
    b = raw.reshape(rows, -1, 34)
    d = _f16(b[..., 0:2])
    q = np.ascontiguousarray(b[..., 2:34]).view(np.int8)
    return Blocks(q, d, np.zeros_like(d), 8, "Q8_0")


def _q5_0(raw: np.ndarray, rows: int) -> Blocks:
    b = raw.reshape(rows, -1, 22)
    d = _f16(b[..., 0:2])
    qh = np.ascontiguousarray(b[..., 2:6]).view(np.uint32)[..., 0]
    qs = b[..., 6:22]
    j = np.arange(16, dtype=np.uint32)
    lo = (qs & 0x0F) | (((qh[..., None] >> j) & 1) << 4).astype(np.uint8)
    hi = (qs >> 4) | (((qh[..., None] >> (j + 16)) & 1) << 4).astype(np.uint8)
    q = np.concatenate([lo, hi], axis=-1).astype(np.uint8)
    return Blocks(q, d, -16 * d, 8, "Q5_0")


def _q6_k(raw: np.ndarray, rows: int) -> Blocks:
    b = raw.reshape(rows, -1, 210)
    ql, qh = b[..., 0:128], b[..., 128:192]
    sc, d = np.ascontiguousarray(b[..., 192:208]).view(np.int8), _f16(b[..., 208:210])
    out = np.empty((*b.shape[:2], 256), np.uint8)
    for half in range(2):  # each half: 128 weights from ql[64], qh[32]
        l_, h_ = ql[..., 64 * half : 64 * half + 64], qh[..., 32 * half : 32 * half + 32]
        base = 128 * half
        out[..., base : base + 32] = (l_[..., :32] & 0x0F) | ((h_ & 3) << 4)
        out[..., base + 32 : base + 64] = (l_[..., 32:] & 0x0F) | (((h_ >> 2) & 3) << 4)
        out[..., base + 64 : base + 96] = (l_[..., :32] >> 4) | (((h_ >> 4) & 3) << 4)
        out[..., base + 96 : base + 128] = (l_[..., 32:] >> 4) | (((h_ >> 6) & 3) << 4)
    # 16 sub-blocks of 16 weights, sub-block j scaled by d * sc[j]
    scale = (d[..., None] * sc.astype(np.float32)).reshape(rows, -1)
    return Blocks(out.reshape(rows, -1, 16), scale, -32 * scale, 8, "Q6_K")


def _k4_scales(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ggml's get_scale_min_k4 for the 8 sub-blocks of a Q4_K super-block: 6-bit scales and mins."""
    sc = np.empty((*s.shape[:-1], 8), np.uint8)
    mn = np.empty_like(sc)
    sc[..., :4] = s[..., 0:4] & 63
    mn[..., :4] = s[..., 4:8] & 63
    sc[..., 4:] = (s[..., 8:12] & 0x0F) | ((s[..., 0:4] >> 6) << 4)
    mn[..., 4:] = (s[..., 8:12] >> 4) | ((s[..., 4:8] >> 6) << 4)
    return sc, mn


def _q4_k(raw: np.ndarray, rows: int) -> Blocks:
    b = raw.reshape(rows, -1, 144)
    d, dmin, qs = _f16(b[..., 0:2]), _f16(b[..., 2:4]), b[..., 16:144]
    sc, mn = _k4_scales(b[..., 4:16])
    q = np.empty((*b.shape[:2], 8, 32), np.uint8)
    for chunk in range(4):  # 32 bytes -> sub-block 2c (low nibbles) and 2c+1 (high nibbles)
        bytes_ = qs[..., 32 * chunk : 32 * chunk + 32]
        q[..., 2 * chunk, :] = bytes_ & 0x0F
        q[..., 2 * chunk + 1, :] = bytes_ >> 4
    scale = (d[..., None] * sc.astype(np.float32)).reshape(rows, -1)
    offset = -(dmin[..., None] * mn.astype(np.float32)).reshape(rows, -1)
    return Blocks(q.reshape(rows, -1, 32), scale, offset, 4, "Q4_K")


_DECODERS = {"Q4_1": _q4_1, "Q8_0": _q8_0, "Q5_0": _q5_0, "Q6_K": _q6_k, "Q4_K": _q4_k}
#: the GGUF block types :func:`decode` reads
SUPPORTED = tuple(_DECODERS)


def decode(tensor: Any) -> Blocks:
    """The blocks of a ``gguf.GGUFReader`` tensor (2-D, one of :data:`SUPPORTED`)."""
    kind = tensor.tensor_type.name
    if kind not in _DECODERS:
        raise ValueError(f"GGUF tensor {tensor.name} is {kind}: only {list(SUPPORTED)} are read exactly")
    rows = int(tensor.shape[1]) if len(tensor.shape) > 1 else 1
    raw = np.asarray(tensor.data, dtype=np.uint8)
    return _DECODERS[kind](raw, rows)


def pack_nibbles(q: np.ndarray) -> np.ndarray:
    """4-bit values ``[..., block]`` -> bytes ``[..., block/2]``: element 2i in the low nibble of byte i,
    2i+1 in its high nibble (unpacked in the ONNX file by a byte -> (low, high) table, in order)."""
    return np.ascontiguousarray((q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8))
