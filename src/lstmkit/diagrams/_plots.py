"""A plot of an activation and its derivative, drawn on the figures' canvas."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

import numpy as np

from lstmkit import activations
from lstmkit.diagrams._canvas import Canvas

__all__ = ["activation_plot"]

_COLOURS = {"f": "#1c7ed6", "df": "#e8590c"}


def activation_plot(activation: Any, lo: float = -5.0, hi: float = 5.0) -> str:
    """Plot ``f(z)`` (solid) and ``f'(z)`` (dashed) of an activation over ``[lo, hi]``.

    Parameters
    ----------
    activation : Activation or str
        The activation object, or a registered name.
    lo : float, default -5.0
        Left end of the range of ``z``.
    hi : float, default 5.0
        Right end of the range of ``z``; ticks every 2 (every 1 below a width of 5).

    Returns
    -------
    str
        A 360 by 220 SVG document: the curves are computed from the activation itself
        (``activation(z)`` and ``activation.grad(z, y)``), clipped to ``[-5, 5]`` vertically;
        x ticks below the plot, the value range at its left, the legend above it.
    """
    act = activations.get(activation) if isinstance(activation, str) else activation
    if not hi > lo:
        raise ValueError(f"hi: expected a number above lo={lo!r}, received {hi!r}")
    z = np.linspace(lo, hi, 401)
    y = np.asarray(act(z), dtype=float)
    dy = np.asarray(act.grad(z, y), dtype=float)
    ys = np.concatenate([y, dy])
    ys = ys[np.isfinite(ys)]
    bottom = max(float(min(ys.min(), -1.0)), -5.0)
    top = min(float(max(ys.max(), 1.0)), 5.0)
    w, h = 360, 220
    x0, x1, y0, y1 = 44.0, 340.0, 34.0, 186.0  # the plot area

    def px(v: float) -> float:
        return x0 + (v - lo) / (hi - lo) * (x1 - x0)

    def py(v: float) -> float:
        return y1 - (min(max(v, bottom), top) - bottom) / (top - bottom) * (y1 - y0)

    name = getattr(act, "name", str(act))
    cv = Canvas(w, h, f"{name} and its derivative")
    cv.add("background", '<rect width="100%" height="100%" fill="white"/>')
    grey = 'stroke="#999" stroke-width="1"'
    cv.add("axes", f'<line x1="{x0}" y1="{py(0):.1f}" x2="{x1}" y2="{py(0):.1f}" {grey}/>')
    if lo <= 0 <= hi:
        cv.add("axes", f'<line x1="{px(0):.1f}" y1="{y0}" x2="{px(0):.1f}" y2="{y1}" {grey}/>')
    cv.add("axes", f'<line x1="{x0}" y1="{y1}" x2="{x1}" y2="{y1}" stroke="#444"/>')
    step = 2 if hi - lo >= 5 else 1
    for tick in np.arange(np.ceil(lo / step) * step, hi + 1e-9, step):
        x = px(float(tick))
        cv.add("axes", f'<line x1="{x:.1f}" y1="{y1}" x2="{x:.1f}" y2="{y1 + 5}" stroke="#444"/>')
        cv.add("axes", _text(x, y1 + 19, f"{tick:g}".replace("-", "−"), 12, "middle"))
    cv.add("axes", _text(x1 + 8, y1 + 19, "z", 13, "start", italic=True))
    for v in sorted({bottom, 0.0, top}):
        cv.add("axes", _text(x0 - 6, py(v) + 4, f"{v:.3g}".replace("-", "−"), 12, "end"))
    cv.add("title", _text(x0, 20, name, 15, "start"))
    for k, (key, label, dash) in enumerate((("f", "f(z)", ""), ("df", "f′(z)", "6 4"))):
        lx = 220 + 66 * k
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        cv.add(
            "legend",
            f'<line x1="{lx}" y1="15" x2="{lx + 20}" y2="15" stroke="{_COLOURS[key]}" '
            f'stroke-width="2"{dashes}/>' + _text(lx + 24, 20, label, 13, "start", italic=True),
        )
    for key, values, dash in (("f", y, ""), ("df", dy, "6 4")):
        ok = np.isfinite(values)
        points = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in zip(z[ok], values[ok]))
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        cv.add(
            "curve",
            f'<polyline fill="none" stroke="{_COLOURS[key]}" stroke-width="2"{dashes} '
            f'points="{points}"/>',
        )
    return cv.render()


def _text(x: float, y: float, label: str, size: int, anchor: str, italic: bool = False) -> str:
    style = f"font-size:{size}px;text-anchor:{anchor}" + (";font-style:italic" if italic else "")
    return f'<text x="{x:.1f}" y="{y:.1f}" style="{style}">{escape(label)}</text>'
