"""The app's icons (web/icons/*.png), drawn here so that they can be re-made: ``python -m builder.icons``.

A rounded square in the page's accent colour with two discs, the device (green) and the cloud (violet),
joined by a bar: the router between them. The maskable icon fills its whole square (the platform cuts
its own shape) and keeps the motif inside the central 80% safe zone. Pure numpy + zlib: no imaging library.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "web" / "icons"
ACCENT, LOCAL, CLOUD, WHITE = (0x2F, 0x6F, 0xED), (0x12, 0x80, 0x5C), (0x7A, 0x3F, 0xF2), (0xFF, 0xFF, 0xFF)
SIZES = {"icon-192.png": (192, False), "icon-512.png": (512, False), "icon-maskable-512.png": (512, True)}


def _png(rgba: np.ndarray) -> bytes:
    height, width, _ = rgba.shape
    raw = b"".join(b"\x00" + rgba[y].tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def draw(size: int, maskable: bool, supersample: int = 4) -> np.ndarray:
    """The icon as an RGBA array of ``size`` x ``size``."""
    n = size * supersample
    y, x = (np.mgrid[0:n, 0:n] + 0.5) / n  # pixel centres in [0, 1]
    rgb = np.zeros((n, n, 3), np.float64)
    alpha = np.zeros((n, n), np.float64)

    def paint(mask: np.ndarray, colour: tuple[int, int, int]) -> None:
        rgb[mask] = colour
        alpha[mask] = 1.0

    if maskable:
        paint(np.ones((n, n), bool), ACCENT)
        scale, centre = 0.62, 0.5
    else:
        radius, inset = 0.2, 0.04  # a rounded square
        qx, qy = (
            np.clip(x, inset + radius, 1 - inset - radius),
            np.clip(y, inset + radius, 1 - inset - radius),
        )
        paint((x - qx) ** 2 + (y - qy) ** 2 <= radius**2, ACCENT)
        scale, centre = 0.8, 0.5

    def disc(cx: float, cy: float, r: float) -> np.ndarray:
        inside: np.ndarray = (x - (centre + (cx - 0.5) * scale)) ** 2 + (
            y - (centre + (cy - 0.5) * scale)
        ) ** 2 <= (r * scale) ** 2
        return inside

    bar = (np.abs(y - centre) <= 0.045 * scale) & (np.abs(x - centre) <= 0.22 * scale)
    paint(bar, WHITE)
    paint(disc(0.27, 0.5, 0.17), WHITE)
    paint(disc(0.27, 0.5, 0.12), LOCAL)
    paint(disc(0.73, 0.5, 0.17), WHITE)
    paint(disc(0.73, 0.5, 0.12), CLOUD)
    paint(disc(0.5, 0.5, 0.07), WHITE)
    # average each supersample block: smooth edges
    rgba = np.concatenate([rgb * alpha[..., None], alpha[..., None]], axis=2)
    rgba = rgba.reshape(size, supersample, size, supersample, 4).mean(axis=(1, 3))
    colour = np.where(rgba[..., 3:] > 0, rgba[..., :3] / np.maximum(rgba[..., 3:], 1e-9), 0)
    out = np.concatenate([colour, rgba[..., 3:] * 255], axis=2)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (size, maskable) in SIZES.items():
        (OUT / name).write_bytes(_png(draw(size, maskable)))
        print(f"wrote {OUT / name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
