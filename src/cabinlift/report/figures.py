"""Figures for a page that opens offline: the evaluate stage's PNGs as ``data:`` URIs, and the
pre-training curves drawn as inline SVG.

The SVG is text written from the numbers with fixed precision (no plotting library, no fonts
to fetch), so the same curves give the same bytes on every machine; it is meant to be inline
in an HTML page, whose parser gives it the SVG namespace (no ``xmlns`` address to name).
"""

from __future__ import annotations

import base64
import math
from html import escape
from typing import Any

#: Line colours of the convergence figure, one per lifter in order (colour-blind safe).
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
#: Size of the convergence figure and its margins (left, right, top, bottom), in px.
WIDTH, HEIGHT = 720, 360
MARGINS = (64, 150, 16, 48)
#: Space between the frame and the outermost ticks, in px.
PAD = 10


def data_uri(data: bytes, mime: str = "image/png") -> str:
    """``data`` as a ``data:`` URI, base64-encoded."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def pretrain_curves(summaries: dict[str, dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """Per model (``metrics/pretrain/<model>.json``), ``(epoch, validation MPJPE)`` at every
    validation check, the mean over the pre-training seeds that have a check at that epoch."""
    out = {}
    for model, summary in summaries.items():
        by_epoch: dict[int, list[float]] = {}
        for seed in summary.get("seeds") or []:
            for check in seed.get("history") or []:
                by_epoch.setdefault(int(check["epoch"]), []).append(float(check["val_mpjpe"]))
        out[model] = [(e, sum(v) / len(v)) for e, v in sorted(by_epoch.items())]
    return out


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (steps of 1, 2 or 5 times a power of ten) covering
    ``[lo, hi]``."""
    if hi <= lo:
        lo, hi = lo - 1.0, hi + 1.0
    raw = (hi - lo) / max(count - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < hi:
        ticks.append(round(value, 10))
    return ticks


def _num(v: float) -> str:
    return f"{v:.1f}"


def _label(v: float) -> str:
    return f"{v:g}"


def convergence_svg(curves: dict[str, list[tuple[int, float]]], names: dict[str, str],
                    title: str) -> str:
    """An SVG line chart of ``curves`` (model -> (epoch, MPJPE) points): epochs on x, MPJPE
    [mm] on y, a marker at every check (a single check is a single marker), a legend with
    ``names``. Empty string where no curve has a point."""
    points = [p for c in curves.values() for p in c]
    if not points:
        return ""
    left, right, top, bottom = MARGINS
    w, h = WIDTH - left - right, HEIGHT - top - bottom
    xt = nice_ticks(min(0, *(e for e, _ in points)), max(e for e, _ in points))
    yt = nice_ticks(min(v for _, v in points), max(v for _, v in points))

    def x(e: float) -> float:  # a marker on the last tick stays inside the frame
        return left + PAD + (e - xt[0]) / (xt[-1] - xt[0]) * (w - 2 * PAD)

    def y(v: float) -> float:
        return top + h - PAD - (v - yt[0]) / (yt[-1] - yt[0]) * (h - 2 * PAD)

    parts = [f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}" '
             'font-family="sans-serif" font-size="12">',
             f"<title>{escape(title)}</title>",
             f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#999"/>']
    for t in xt:
        parts.append(f'<line x1="{_num(x(t))}" y1="{top + h}" x2="{_num(x(t))}" '
                     f'y2="{top + h + 4}" stroke="#999"/><text x="{_num(x(t))}" '
                     f'y="{top + h + 18}" text-anchor="middle">{_label(t)}</text>')
    for t in yt:
        parts.append(f'<line x1="{left}" y1="{_num(y(t))}" x2="{left + w}" y2="{_num(y(t))}" '
                     f'stroke="#e5e5e5"/><text x="{left - 6}" y="{_num(y(t) + 4)}" '
                     f'text-anchor="end">{_label(t)}</text>')
    parts.append(f'<text x="{left + w / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
                 "pre-training epoch</text>")
    parts.append(f'<text transform="translate(16 {top + h / 2:.1f}) rotate(-90)" '
                 'text-anchor="middle">validation MPJPE [mm]</text>')
    for k, (model, curve) in enumerate(curves.items()):
        colour = COLOURS[k % len(COLOURS)]
        if len(curve) > 1:
            path = " ".join(f"{_num(x(e))},{_num(y(v))}" for e, v in curve)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                         'stroke-width="2"/>')
        for e, v in curve:
            parts.append(f'<circle cx="{_num(x(e))}" cy="{_num(y(v))}" r="4" fill="{colour}">'
                         f"<title>{escape(names.get(model, model))}: epoch {e}, "
                         f"{v:.1f} mm</title></circle>")
        ly = top + 14 + 18 * k
        parts.append(f'<circle cx="{left + w + 16}" cy="{ly - 4}" r="4" fill="{colour}"/>'
                     f'<text x="{left + w + 26}" y="{ly}">{escape(names.get(model, model))}'
                     "</text>")
    parts.append("</svg>")
    return "\n".join(parts)
