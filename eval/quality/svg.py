"""The quality-vs-cost plot as an SVG written directly (no plotting library among the pins)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from eval.quality.curves import Curve

W, H = 360, 250  # one panel
PAD_L, PAD_R, PAD_T, PAD_B = 46, 12, 34, 38
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


@dataclass(frozen=True)
class Panel:
    title: str
    subtitle: str
    curves: Sequence[tuple[str, Curve]]  # (model label, the router's curve)
    random: Curve
    default: Sequence[tuple[float, float]]  # (share, quality) at the shipped threshold, per curve


def _panel(p: Panel, x0: float, y0: float) -> list[str]:
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    qs = [q for _, c in p.curves for q in c.quality] + list(p.random.quality)
    top = min(1.0, max(qs) + 0.05)
    bottom = max(0.0, min(qs) - 0.05)

    def xy(share: float, quality: float) -> tuple[float, float]:
        return x0 + PAD_L + share * pw, y0 + PAD_T + (top - quality) / (top - bottom or 1) * ph

    out = [
        f'<text x="{x0 + PAD_L}" y="{y0 + 14}" font-weight="bold">{escape(p.title)}</text>',
        f'<text x="{x0 + PAD_L}" y="{y0 + 27}" font-size="10" fill="#555">{escape(p.subtitle)}</text>',
        f'<rect x="{x0 + PAD_L}" y="{y0 + PAD_T}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>',
    ]
    for i in range(6):
        share = i / 5
        x, _ = xy(share, bottom)
        out.append(
            f'<text x="{x:.1f}" y="{y0 + H - PAD_B + 13}" font-size="9" text-anchor="middle">'
            f"{share:.0%}</text>"
        )
        q = bottom + (top - bottom) * i / 5
        _, y = xy(0, q)
        out.append(
            f'<text x="{x0 + PAD_L - 4}" y="{y + 3:.1f}" font-size="9" text-anchor="end">{q:.0%}</text>'
        )
    out.append(
        f'<text x="{x0 + PAD_L + pw / 2}" y="{y0 + H - 8}" font-size="10" text-anchor="middle">'
        "share of prompts sent to the cloud</text>"
    )
    pts = " ".join(
        f"{xy(s, q)[0]:.1f},{xy(s, q)[1]:.1f}" for s, q in zip(p.random.share, p.random.quality, strict=True)
    )
    out.append(f'<polyline points="{pts}" fill="none" stroke="#888" stroke-dasharray="4 3"/>')
    for i, (label, c) in enumerate(p.curves):
        colour = COLOURS[i % len(COLOURS)]
        pts = " ".join(
            f"{xy(s, q)[0]:.1f},{xy(s, q)[1]:.1f}" for s, q in zip(c.share, c.quality, strict=True)
        )
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
        dx, dy = xy(*p.default[i])
        out.append(f'<circle cx="{dx:.1f}" cy="{dy:.1f}" r="4" fill="{colour}" stroke="#000"/>')
        out.append(
            f'<text x="{x0 + PAD_L + 6}" y="{y0 + PAD_T + 12 + 12 * i}" font-size="9" fill="{colour}">'
            f"{escape(label)}: APGR {c.apgr():.2f}</text>"
        )
    return out


def plot(panels: Sequence[Panel], columns: int = 2) -> str:
    rows = (len(panels) + columns - 1) // columns
    width, height = W * columns, H * rows + 22
    body = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="#fff"/>',
    ]
    for i, p in enumerate(panels):
        body += _panel(p, W * (i % columns), H * (i // columns))
    body.append(
        f'<text x="8" y="{height - 7}" font-size="10" fill="#555">'
        "solid: the prompt router at every threshold; "
        "dot: its shipped threshold; dashed: a random router</text>"
    )
    body.append("</svg>")
    return "\n".join(body) + "\n"
