"""The Elman cell (``SimpleRNNCell``) and the minimal gated unit (``MGUCell``), drawn from the object.

:func:`draw` and :func:`parts` handle these two cells here and hand every other cell to
:mod:`lstmkit.diagrams._cells`. A cell is recognised by its gates (``GATE_NAMES``): one gate
named ``candidate`` is an Elman cell, ``forget`` and ``candidate`` an MGU, so a cell of your own
with the same gates is drawn the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lstmkit.diagrams import _cells
from lstmkit.diagrams._canvas import Canvas, act_label

__all__ = ["draw", "parts", "simple_canvas"]


def _kind(cell: Any) -> str | None:
    names = tuple(getattr(cell, "GATE_NAMES", ()))
    if names == ("candidate",) and getattr(cell, "candidate", None) is not None:
        return "simple"
    if names == ("forget", "candidate") and getattr(cell, "forget", None) is not None:
        return "mgu"
    return None


def simple_canvas(cell: Any) -> Canvas | None:
    """The figure of an Elman cell or an MGU as a :class:`Canvas`; None for any other cell."""
    kind = _kind(cell)
    if kind is None:
        return None
    title = "simple (Elman) RNN cell" if kind == "simple" else "minimal gated unit (MGU)"
    canvas = Canvas(700, 380, f"{title} ({type(cell).__name__})")
    canvas.add("module", '<rect class="module" x="80" y="45" width="540" height="280" rx="18"/>')
    if kind == "simple":
        _simple(canvas, cell)
    else:
        _mgu(canvas, cell)
    return canvas


def parts(cell: Any) -> list[str]:
    """Names :func:`draw` accepts in ``highlight`` for this cell."""
    canvas = simple_canvas(cell)
    if canvas is None:
        return _cells.parts(cell)
    return sorted({p for p, _ in canvas.items})


def draw(cell: Any, highlight: str | Iterable[str] | None = None) -> str:
    """Draw a cell as an SVG document.

    Parameters
    ----------
    cell : LSTMCell, coupled LSTM cell, LayerNormLSTMCell, ProjectionLSTMCell, GRU cell, SimpleRNNCell or MGUCell
        Read for its gates, their activations (a non-default one is labelled with its name),
        peepholes (one dashed line per gate that has one), layer normalization (an "LN" box on
        each gate's input and recurrent product and on the cell state's branch into the output
        activation) and recurrent projection (a ``W_hr`` box on the hidden state, labelled
        with ``proj_size``: the projected state is the output and the one fed back). An Elman
        cell (one gate named ``candidate``) is one layer labelled with its activation; a
        minimal gated unit (gates ``forget`` and ``candidate``) is a forget gate that scales
        the candidate's recurrent input (``f*(hU+b)`` with ``reset_after=True``, ``f*h``
        otherwise) and mixes the old state with the candidate in the cell's update convention.
    highlight : str or iterable of str, optional
        Parts to emphasise; everything else is dimmed. Gate names (``"forget"``,
        ``"input"``, ``"candidate"``, ``"output"``, or ``"reset"``, ``"update"`` for a GRU),
        ``"cell_state"``, ``"concat"``, ``"hidden"``, ``"peephole"``, the belt operations
        ``"forget_mul"``, ``"input_mul"``, ``"add"`` or ``"update"`` for all three;
        ``"layer_norm"`` (every normalization, or one of ``"layer_norm-forget"`` ...
        ``"layer_norm-cell"``) and ``"projection"`` for the cells that have them. For an MGU,
        ``"reset"`` is the forget gate acting on the candidate's input and ``"update"`` the
        mix. :func:`parts` lists them for a given cell.

    Returns
    -------
    str
        An ``<svg>`` document. Every part is a ``<g>`` with ``data-part``; highlighted
        parts carry the class ``highlight``.

    Raises
    ------
    TypeError
        If ``cell`` is not a cell this module knows how to draw.
    ValueError
        If ``highlight`` names a part the cell does not have.
    """
    canvas = simple_canvas(cell)
    if canvas is None:
        return _cells.draw(cell, highlight)
    if highlight is None:
        return canvas.render()
    wanted = [highlight] if isinstance(highlight, str) else list(highlight)
    known = {p for p, _ in canvas.items}
    for name in wanted:
        if name not in known:
            raise ValueError(
                f"highlight: expected names among {', '.join(sorted(known))}, received {name!r}"
            )
    return canvas.render(frozenset(wanted))


def _simple(cv: Canvas, cell: Any) -> None:
    """``h = act(x W + h_prev U + b)``: one layer on the concatenation, copied out twice."""
    bus = 290
    cv.wire("concat", [(15, bus), (250, bus)], arrow=False)
    cv.wire("concat", [(250, 370), (250, bus), (350, bus), (350, 235)])
    label, act = act_label(cell.candidate.activation)
    cv.layer("candidate", 350, 220, label, act, title=f"candidate: h = {act}(x W + h U + b)")
    cv.wire("hidden", [(350, 205), (350, 150), (450, 150), (450, bus), (685, bus)])
    cv.wire("hidden", [(450, 150), (450, 15)])
    cv.text("concat", 30, bus + 20, "h(t-1)")
    cv.text("concat", 270, 368, "x(t)")
    cv.text("hidden", 668, bus + 20, "h(t)")
    cv.text("hidden", 475, 22, "h(t)")


def _mgu(cv: Canvas, cell: Any) -> None:
    """One forget gate: it scales the candidate's recurrent input and mixes old and new."""
    belt, gate_y, bus = 70, 220, 290
    # "flax": h = (1 - f) * n + f * h_prev (f keeps the old state); "paper": the reverse.
    keeps_old = getattr(cell, "update_convention", "flax") != "paper"
    cv.wire("hidden", [(15, belt), (177, belt)])
    cv.wire("hidden", [(203, belt), (527, belt)])
    cv.wire("hidden", [(553, belt), (685, belt)])
    cv.text("hidden", 30, belt - 10, "h(t-1)")
    cv.text("hidden", 668, belt - 10, "h(t)")
    cv.wire("hidden", [(600, belt), (600, 12)])
    cv.text("hidden", 625, 22, "h(t)")
    cv.wire("concat", [(100, belt), (100, bus), (190, bus)], arrow=False)
    cv.wire("concat", [(140, 370), (140, bus)], arrow=False)
    cv.wire("concat", [(140, 340), (430, 340), (430, gate_y + 15)])
    cv.text("concat", 160, 368, "x(t)")
    for name, cx in (("forget", 190), ("candidate", 430)):
        label, act = act_label(getattr(cell, name).activation)
        if name == "forget":
            cv.wire(name, [(cx, bus), (cx, gate_y + 15)])
        cv.layer(name, cx, gate_y, label, act)
    # Reset: f also scales the candidate's recurrent input.
    cv.wire("reset", [(212, gate_y), (357, gate_y)])
    cv.text("reset", 290, gate_y - 8, "f")
    cv.wire("hidden", [(370, belt), (370, gate_y - 13)])
    cv.op("reset", 370, gate_y, "×")
    cv.wire("reset", [(370, gate_y + 13), (370, 300), (430, 300)], arrow=False)
    after = bool(getattr(cell, "reset_after", False))
    cv.text("reset", 395, 265, "f*(hU+b)" if after else "f*h", cls="small")
    # Update: f (or 1 - f) scales the old state on the belt, the other factor the candidate.
    cv.wire("forget", [(190, gate_y - 15), (190, 150)], arrow=False)
    cv.text("forget", 202, 185, "f")
    if keeps_old:
        cv.wire("update", [(190, 150), (190, belt + 13)])
        cv.wire("update", [(190, 150), (446, 150)], arrow=False)
        cv.op("update", 470, 150, "1−")
        cv.wire("update", [(494, 150), (590, 150), (590, 180), (553, 180)])
        cv.text("update", 470, 130, "1 - f", cls="small")
    else:
        cv.wire("update", [(190, 150), (190, 123)])
        cv.op("update", 190, 110, "1−")
        cv.text("update", 225, 130, "1 - f", cls="small")
        cv.wire("update", [(190, 97), (190, belt + 13)])
        cv.wire("update", [(190, 150), (590, 150), (590, 180), (553, 180)])
    cv.op("update", 190, belt, "×")
    cv.wire("candidate", [(430, gate_y - 15), (430, 180), (527, 180)])
    cv.text("candidate", 480, 198, "n")
    cv.op("update", 540, 180, "×")
    cv.wire("update", [(540, 167), (540, belt + 13)])
    cv.op("add", 540, belt, "+")
