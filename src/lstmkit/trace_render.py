"""Pictures of a trace as SVG and HTML text, with no dependency beyond NumPy.

Every function returns a string (a ``str`` subclass): write it to a file, put it in a web page,
or let a Jupyter notebook display it (it has ``_repr_html_``). Values are NumPy arrays, e.g.
from :func:`lstmkit.trace.trace`; NaN (a step past a sequence's end) is drawn blank.

* :func:`text_html` and :func:`text_svg`: text coloured per character by one unit's value
  (the figures of Karpathy, Johnson and Fei-Fei 2015).
* :func:`heatmap_svg`: units (rows) over time (columns).
* :func:`saturation_svg`: per unit, the fraction of steps a gate is left-saturated (< 0.1)
  against right-saturated (> 0.9), one dot per unit (their figure 3).
* :func:`scatter_svg` and :func:`lines_svg`: a value against a feature, values over time.

Examples
--------
>>> import numpy as np
>>> from lstmkit.trace_render import text_html
>>> html = text_html("ab", np.array([-1.0, 1.0]))
>>> html.startswith("<div"), "background:rgb(" in html
(True, True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "color",
    "heatmap_svg",
    "lines_svg",
    "saturation_svg",
    "scatter_svg",
    "text_html",
    "text_svg",
]

Array = NDArray[Any]
FONT = "font-family:monospace;font-size:12px"
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


class Rendered(str):
    """An SVG or HTML string that a notebook displays as a picture."""

    def _repr_html_(self) -> str:
        return str(self)


def _clean(text: str) -> str:
    """``text`` escaped for XML, characters XML forbids replaced by U+FFFD."""
    ok = "".join(
        ch
        if ch in "\t\n\r"
        or 0x20 <= ord(ch) < 0xD800
        or 0xE000 <= ord(ch) <= 0xFFFD
        or ord(ch) > 0xFFFF
        else "\ufffd"
        for ch in text
    )
    return escape(ok, quote=True)


def _as_values(values: Any, argument: str, ndim: int) -> Array:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"{argument}: expected a {ndim}-D array, received shape {arr.shape}")
    return arr


def _range(values: Array, vmin: float | None, vmax: float | None) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    lo = (
        float(finite.min()) if vmin is None and finite.size else (vmin if vmin is not None else 0.0)
    )
    hi = (
        float(finite.max()) if vmax is None and finite.size else (vmax if vmax is not None else 1.0)
    )
    if hi <= lo:  # a constant: centre it
        lo, hi = lo - 1.0, hi + 1.0
    return lo, hi


def color(value: float, vmin: float = -1.0, vmax: float = 1.0) -> str:
    """A diverging colour: blue at ``vmin``, white half way, red at ``vmax``; NaN is light grey."""
    if not np.isfinite(value):
        return "rgb(238,238,238)"
    u = min(max((value - vmin) / (vmax - vmin) if vmax > vmin else 0.5, 0.0), 1.0) * 2 - 1
    if u < 0:  # white -> blue (33, 102, 172)
        r, g, b = 255 + u * (255 - 33), 255 + u * (255 - 102), 255 + u * (255 - 172)
    else:  # white -> red (178, 24, 43)
        r, g, b = 255 - u * (255 - 178), 255 - u * (255 - 24), 255 - u * (255 - 43)
    return f"rgb({round(r)},{round(g)},{round(b)})"


def text_html(
    text: str,
    values: Any,
    *,
    vmin: float | None = -1.0,
    vmax: float | None = 1.0,
    title: str = "",
) -> Rendered:
    """Text with each character's background coloured by its value.

    Parameters
    ----------
    text : str
        ``len(text)`` characters.
    values : ndarray, shape (len(text),)
        One value per character (NaN: no colour).
    vmin, vmax : float or None
        Values drawn fully blue and fully red (None: the data's range).
    title : str
        A caption above the text.

    Returns
    -------
    str
        A ``<div>`` holding a ``<pre>``; hovering a character shows its value.
    """
    v = _as_values(values, "values", 1)
    if v.shape[0] != len(text):
        raise ValueError(
            f"values: expected {len(text)} values (one per character), received {v.shape[0]}"
        )
    lo, hi = _range(v, vmin, vmax)
    parts = []
    for ch, value in zip(text, v):
        shown = "\u21b5\n" if ch == "\n" else ch
        parts.append(
            f'<span style="background:{color(value, lo, hi)}" title="{value:.3f}">'
            f"{_clean(shown)}</span>"
        )
    caption = f'<div class="lstmkit-trace-title">{_clean(title)}</div>' if title else ""
    return Rendered(
        f'<div class="lstmkit-trace">{caption}<pre style="line-height:1.35;white-space:pre;'
        f'overflow-x:auto">{"".join(parts)}</pre></div>'
    )


def text_svg(
    text: str,
    values: Any,
    *,
    vmin: float | None = -1.0,
    vmax: float | None = 1.0,
    title: str = "",
    char_width: float = 7.3,
    line_height: float = 16.0,
) -> Rendered:
    """:func:`text_html` as a standalone SVG (a monospace grid, one rectangle per character)."""
    v = _as_values(values, "values", 1)
    if v.shape[0] != len(text):
        raise ValueError(
            f"values: expected {len(text)} values (one per character), received {v.shape[0]}"
        )
    lo, hi = _range(v, vmin, vmax)
    lines = text.split("\n")
    top = 20.0 if title else 4.0
    width = 8 + char_width * max([len(line) + 1 for line in lines] + [10])
    height = top + line_height * len(lines) + 4
    out = [f'<text x="4" y="14" style="{FONT}">{_clean(title)}</text>'] if title else []
    k = 0
    for row, line in enumerate(lines):
        y = top + row * line_height
        for col, ch in enumerate(line + ("\n" if row < len(lines) - 1 else "")):
            x = 4 + col * char_width
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{char_width:.1f}" height="{line_height:.1f}" '
                f'fill="{color(v[k], lo, hi)}"><title>{v[k]:.3f}</title></rect>'
            )
            if ch not in " \n":
                out.append(
                    f'<text x="{x:.1f}" y="{y + line_height - 4:.1f}" style="{FONT}">{_clean(ch)}</text>'
                )
            k += 1
    return _svg(width, height, out)


def _svg(width: float, height: float, body: list[str]) -> Rendered:
    return Rendered(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}">' + "".join(body) + "</svg>"
    )


def heatmap_svg(
    values: Any,
    *,
    row_labels: Sequence[str] | None = None,
    column_labels: Sequence[str] | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    title: str = "",
    cell: float = 9.0,
) -> Rendered:
    """Rows (units) against columns (steps), coloured by value.

    Parameters
    ----------
    values : ndarray, shape (rows, columns)
        E.g. ``trace.gates["forget"][0].T`` (units x time) for one sequence.
    row_labels, column_labels : sequence of str, optional
        Shown left of each row and under each column (e.g. the input characters).
    vmin, vmax : float or None
        The colour scale's ends (None: the data's range).
    """
    v = _as_values(values, "values", 2)
    rows, cols = v.shape
    lo, hi = _range(v, vmin, vmax)
    left, top = 44.0, 22.0 if title else 6.0
    # Labels as tall as a cell (at least 10 px), so bigger cells give readable labels.
    label_style = f"font-family:monospace;font-size:{max(10.0, cell):g}px"
    out = [f'<text x="4" y="14" style="{FONT}">{_clean(title)}</text>'] if title else []
    for r in range(rows):
        y = top + r * cell
        if row_labels is not None:
            out.append(
                f'<text x="{left - 4}" y="{y + cell - 1:.1f}" text-anchor="end" '
                f'style="{label_style}">{_clean(str(row_labels[r]))}</text>'
            )
        for c in range(cols):
            out.append(
                f'<rect x="{left + c * cell:.1f}" y="{y:.1f}" width="{cell}" height="{cell}" '
                f'fill="{color(v[r, c], lo, hi)}"/>'
            )
    if column_labels is not None:
        y = top + rows * cell + max(12.0, cell + 2)
        for c, label in enumerate(column_labels[:cols]):
            shown = "\u21b5" if label == "\n" else label
            out.append(
                f'<text x="{left + c * cell + cell / 2:.1f}" y="{y:.1f}" text-anchor="middle" '
                f'style="{label_style}">{_clean(str(shown))}</text>'
            )
    legend_y = top + rows * cell + max(28.0, cell + 18)
    out.append(
        f'<text x="{left}" y="{legend_y:.1f}" style="{FONT}">'
        f'<tspan fill="{color(lo, lo, hi)}">\u25a0</tspan> {lo:.2f}  '
        f'<tspan fill="{color(hi, lo, hi)}">\u25a0</tspan> {hi:.2f}</text>'
    )
    return _svg(left + cols * cell + 8, legend_y + 8, out)


def _tick(value: float, span: float) -> str:
    """A tick label with as many decimals as the axis span needs."""
    decimals = 0 if span >= 20 else 1 if span >= 2 else 2 if span >= 0.2 else 3
    return f"{value:.{decimals}f}"


class _Axes:
    """A plot area mapping data to pixels, with ticks and labels."""

    def __init__(
        self,
        xlim: tuple[float, float],
        ylim: tuple[float, float],
        size: tuple[float, float] = (360, 260),
    ) -> None:
        self.x0, self.x1 = xlim
        self.y0, self.y1 = ylim
        self.left, self.top, self.w, self.h = 64.0, 26.0, float(size[0]), float(size[1])

    def px(self, x: float, y: float) -> tuple[float, float]:
        u = (x - self.x0) / (self.x1 - self.x0) if self.x1 > self.x0 else 0.5
        w = (y - self.y0) / (self.y1 - self.y0) if self.y1 > self.y0 else 0.5
        return self.left + u * self.w, self.top + (1 - w) * self.h

    def frame(self, title: str, xlabel: str, ylabel: str) -> list[str]:
        L, T, W, H = self.left, self.top, self.w, self.h
        out = [
            f'<rect x="{L}" y="{T}" width="{W}" height="{H}" fill="none" stroke="#444"/>',
            f'<text x="{L}" y="16" style="{FONT}">{_clean(title)}</text>',
            f'<text x="{L + W / 2}" y="{T + H + 34}" text-anchor="middle" style="{FONT}">'
            f"{_clean(xlabel)}</text>",
            f'<text x="14" y="{T + H / 2}" text-anchor="middle" style="{FONT}" '
            f'transform="rotate(-90 14 {T + H / 2})">{_clean(ylabel)}</text>',
        ]
        for k in range(5):
            xv = self.x0 + k * (self.x1 - self.x0) / 4
            yv = self.y0 + k * (self.y1 - self.y0) / 4
            x, _ = self.px(xv, self.y0)
            _, y = self.px(self.x0, yv)
            out.append(
                f'<line x1="{x:.1f}" y1="{T + H}" x2="{x:.1f}" y2="{T + H + 4}" stroke="#444"/>'
            )
            out.append(
                f'<text x="{x:.1f}" y="{T + H + 16}" text-anchor="middle" style="{FONT}">'
                f"{_tick(xv, self.x1 - self.x0)}</text>"
            )
            out.append(f'<line x1="{L - 4}" y1="{y:.1f}" x2="{L}" y2="{y:.1f}" stroke="#444"/>')
            out.append(
                f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end" style="{FONT}">{_tick(yv, self.y1 - self.y0)}</text>'
            )
        return out

    def size(self) -> tuple[float, float]:
        return self.left + self.w + 150, self.top + self.h + 44

    def legend(self, names: Sequence[str]) -> list[str]:
        x = self.left + self.w + 12
        return [
            f'<circle cx="{x + 5}" cy="{self.top + 10 + 18 * k}" r="4" fill="{PALETTE[k % 6]}"/>'
            f'<text x="{x + 14}" y="{self.top + 14 + 18 * k}" style="{FONT}">{_clean(n)}</text>'
            for k, n in enumerate(names)
        ]


def saturation_svg(
    fractions: Mapping[str, tuple[Any, Any]],
    *,
    title: str = "",
    low: float = 0.1,
    high: float = 0.9,
) -> Rendered:
    """The saturation plot: per gate, one dot per unit at (left-saturated, right-saturated).

    Parameters
    ----------
    fractions : mapping of gate name to (left, right)
        ``left[u]``: fraction of steps with the unit's value below ``low``; ``right[u]``: above
        ``high`` (see :func:`lstmkit.trace_analysis.saturation`).
    """
    ax = _Axes((0.0, 1.0), (0.0, 1.0), size=(260, 260))
    out = ax.frame(
        title, f"fraction left-saturated (< {low})", f"fraction right-saturated (> {high})"
    )
    x0, y0 = ax.px(0, 1)
    x1, y1 = ax.px(1, 0)
    out.append(
        f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}" stroke="#bbb" stroke-dasharray="4 3"/>'
    )
    for k, (left, right) in enumerate(fractions.values()):
        for lv, rv in zip(np.asarray(left, float), np.asarray(right, float)):
            if np.isfinite(lv) and np.isfinite(rv):
                x, y = ax.px(lv, rv)
                out.append(
                    f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{PALETTE[k % 6]}" '
                    f'fill-opacity="0.7"/>'
                )
    out += ax.legend(list(fractions))
    return _svg(*ax.size(), out)


def scatter_svg(
    x: Any, y: Any, *, title: str = "", xlabel: str = "", ylabel: str = "", means: bool = True
) -> Rendered:
    """Points ``(x[k], y[k])``; with ``means``, the mean of ``y`` for each distinct ``x`` as a line."""
    xs, ys = _as_values(x, "x", 1), _as_values(y, "y", 1)
    if xs.shape != ys.shape:
        raise ValueError(f"y: expected {xs.shape[0]} values like x, received {ys.shape[0]}")
    ok = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[ok], ys[ok]
    ax = _Axes(
        _range(xs, None, None) if xs.size else (0, 1), _range(ys, None, None) if ys.size else (0, 1)
    )
    out = ax.frame(title, xlabel, ylabel)
    for a, b in zip(xs, ys):
        px, py = ax.px(a, b)
        out.append(
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2" fill="{PALETTE[0]}" fill-opacity="0.25"/>'
        )
    if means and xs.size:
        levels = np.unique(xs)
        pts = [ax.px(v, float(ys[xs == v].mean())) for v in levels]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
        out.append(
            f'<polyline points="{path}" fill="none" stroke="{PALETTE[1]}" stroke-width="2"/>'
        )
        out.append(
            f'<text x="{ax.left + ax.w + 12}" y="{ax.top + 14}" style="{FONT}" '
            f'fill="{PALETTE[1]}">mean per x</text>'
        )
    return _svg(*ax.size(), out)


def lines_svg(
    series: Mapping[str, Any],
    *,
    title: str = "",
    xlabel: str = "step",
    ylabel: str = "",
    marks: Sequence[float] = (),
) -> Rendered:
    """Each series over its index, one colour each; ``marks`` draws vertical dashed lines."""
    data = {name: _as_values(v, f"series[{name!r}]", 1) for name, v in series.items()}
    n = max([len(v) for v in data.values()] + [1])
    values = np.concatenate([v for v in data.values()] + [np.zeros(0)])
    ax = _Axes((0.0, float(max(n - 1, 1))), _range(values, None, None) if values.size else (0, 1))
    out = ax.frame(title, xlabel, ylabel)
    for m in marks:
        x, _ = ax.px(m, ax.y0)
        out.append(
            f'<line x1="{x:.1f}" y1="{ax.top}" x2="{x:.1f}" y2="{ax.top + ax.h}" stroke="#888" '
            f'stroke-dasharray="4 3"/>'
        )
    for k, v in enumerate(data.values()):
        pts = [ax.px(t, val) for t, val in enumerate(v) if np.isfinite(val)]
        if pts:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{PALETTE[k % 6]}" stroke-width="1.5"/>'
            )
    out += ax.legend(list(data))
    return _svg(*ax.size(), out)
