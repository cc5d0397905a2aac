"""The convolutional LSTM figure: the LSTM's cell-state lane fed by convolution boxes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from xml.sax.saxutils import escape

from lstmkit.diagrams import _cells
from lstmkit.diagrams._canvas import Canvas, act_label
from lstmkit.diagrams._gallery import register_figure

__all__ = ["CONV_PARTS", "conv_canvas", "conv_lstm"]

# Convolution boxes: violet, so they read apart from the yellow learned gates.
CONV_STYLE = """
.conv rect{fill:#e5dbff;stroke:#5f3dc4;stroke-width:1.5}
.highlight .conv rect{fill:#ff922b;stroke:#c92a2a;stroke-width:3}
"""

#: The parts :func:`conv_lstm` can highlight.
CONV_PARTS = (
    "input_conv",
    "recurrent_conv",
    "bias",
    "forget",
    "input",
    "candidate",
    "output",
    "cell_state",
    "hidden",
)


def _conv_box(cv: Canvas, part: str, cx: float, cy: float, label: str, title: str) -> None:
    cv.add(
        part,
        f'<g class="conv"><title>{escape(part)}: {escape(title)}</title>'
        f'<rect x="{cx - 48:g}" y="{cy - 17:g}" width="96" height="34" rx="4"/>'
        f'<text x="{cx:g}" y="{cy + 5:g}">{escape(label)}</text></g>',
    )


def _kernel_text(cell: Any) -> str:
    size = "×".join(str(k) for k in cell.kernel_size)
    dilation = "" if all(d == 1 for d in cell.dilation) else f", dilation {cell.dilation}"
    return f"{size}, {cell.padding}{dilation}"


def conv_lstm(cell: Any, highlight: str | Iterable[str] | None = None) -> str:
    """Draw a :class:`~lstmkit.ConvLSTMCell`: its two convolutions, four gates and state lanes.

    The input convolution ``W * x(t)`` (labelled with the cell's kernel size, padding and
    dilation) and the recurrent convolution ``U * h(t-1)`` ("same" padding) each produce the
    four gates' pre-activations at once (``4·filters`` channels); the gate boxes show each
    gate's own activation; the rest is the LSTM's cell-state update, elementwise on feature maps.

    Parameters
    ----------
    cell : ConvLSTMCell
    highlight : str or iterable of str, optional
        Parts to emphasise (the others are dimmed), from :data:`CONV_PARTS`.

    Raises
    ------
    TypeError
        ``cell`` has no convolutional gates.
    ValueError
        A highlighted part that the figure does not have.
    """
    cv = conv_canvas(cell)
    if cv is None:
        raise TypeError(f"cell: expected a ConvLSTMCell, received {type(cell).__name__}")
    wanted = frozenset([highlight] if isinstance(highlight, str) else highlight or ())
    unknown = sorted(wanted - set(CONV_PARTS))
    if unknown:
        raise ValueError(f"highlight: unknown parts {unknown}; expected some of {CONV_PARTS}")
    return cv.render(wanted)


def conv_canvas(cell: Any) -> Canvas | None:
    """The figure of a cell with convolutional gates as a :class:`Canvas`; None for any other."""
    gates = getattr(cell, "gates", None)
    if not isinstance(gates, dict) or not all(hasattr(g, "kernel_size") for g in gates.values()):
        return None
    if set(gates) != {"forget", "input", "candidate", "output"}:
        return None
    cv = Canvas(780, 340, f"A convolutional LSTM cell ({cell.filters} filters)")
    cv.extra_style = CONV_STYLE

    # the two convolutions and the bias: all four gates' pre-activations in one map
    cv.text("input_conv", 50, 290, "x(t)")
    cv.wire("input_conv", [(15, 300), (132, 300)])
    _conv_box(cv, "input_conv", 180, 300, "W * x(t)", f"input convolution, {_kernel_text(cell)}")
    cv.text("input_conv", 180, 333, _kernel_text(cell), cls="small")
    cv.text("recurrent_conv", 55, 220, "h(t-1)")
    cv.wire("recurrent_conv", [(15, 230), (132, 230)])
    kernel = "×".join(str(k) for k in cell.kernel_size)
    _conv_box(cv, "recurrent_conv", 180, 230, "U * h", f"recurrent convolution, {kernel}, same")
    cv.wire("input_conv", [(228, 300), (290, 300), (290, 278)])
    cv.wire("recurrent_conv", [(228, 230), (290, 230), (290, 252)])
    cv.op("bias", 290, 265, "+b")
    cv.wire("bias", [(303, 265), (340, 265), (340, 215), (620, 215)], arrow=False)

    # the four gates, each with its own activation
    xs = {"forget": 380, "input": 460, "candidate": 540, "output": 620}
    for name, gx in xs.items():
        label, act_name = act_label(gates[name].activation)
        cv.wire(name, [(gx, 215), (gx, 187)])
        cv.layer(name, gx, 172, label, act_name, title=f"{name} gate, {act_name}")
        cv.text(name, gx + 26, 205, name[0] if name != "candidate" else "g", cls="small")

    # the cell-state lane and the hidden state, elementwise on feature maps
    cv.text("cell_state", 55, 40, "c(t-1)")
    cv.wire("cell_state", [(15, 50), (367, 50)])
    cv.op("cell_state", 380, 50, "×")
    cv.wire("cell_state", [(393, 50), (527, 50)])
    cv.op("cell_state", 540, 50, "+")
    cv.wire("cell_state", [(553, 50), (765, 50)])
    cv.text("cell_state", 740, 40, "c(t)")
    cv.wire("forget", [(380, 157), (380, 63)])
    cv.wire("input", [(460, 157), (460, 110), (527, 110)])
    cv.wire("candidate", [(540, 157), (540, 123)])
    cv.op("candidate", 540, 110, "×")
    cv.wire("candidate", [(540, 97), (540, 63)])
    label, act_name = act_label(cell.cell_activation)
    cv.wire("hidden", [(690, 50), (690, 96)])
    cv.op("hidden", 690, 110, label)
    cv.wire("hidden", [(690, 124), (690, 159)])
    cv.wire("output", [(643, 172), (677, 172)])
    cv.op("hidden", 690, 172, "×")
    cv.wire("hidden", [(690, 185), (690, 265), (765, 265)])
    cv.text("hidden", 740, 255, "h(t)")
    return cv


# draw() and chain() draw these cells too.
_cells.CANVAS_PROVIDERS.append(conv_canvas)


def _convlstm_figure() -> str:
    from lstmkit.cells.convlstm import ConvLSTMCell

    return conv_lstm(ConvLSTMCell((16, 16, 1), 8, 3, rng=0))


register_figure("convlstm.svg", _convlstm_figure, replace=True)
