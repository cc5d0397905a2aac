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
from lstmkit.diagrams._gallery import register_figure

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
    cv.text("concat", 40, bus + 20, "h(t-1)")
    cv.text("concat", 270, 368, "x(t)")
    cv.text("hidden", 668, bus + 20, "h(t)")
    cv.text("hidden", 475, 22, "h(t)")


def _mgu(cv: Canvas, cell: Any) -> None:
    """One forget gate: it scales the candidate's recurrent input and mixes old and new."""
    belt, gate_y, bus = 70, 220, 290
    # "flax": h = (1 - f) * n + f * h_prev (f keeps the old state); "paper": the reverse.
    keeps_old = getattr(cell, "update_convention", "flax") != "paper"
    cv.wire("hidden", [(15, belt), (237, belt)])
    cv.wire("hidden", [(263, belt), (527, belt)])
    cv.wire("hidden", [(553, belt), (685, belt)])
    cv.text("hidden", 40, belt - 10, "h(t-1)")
    cv.text("hidden", 668, belt - 10, "h(t)")
    cv.wire("hidden", [(600, belt), (600, 12)])
    cv.text("hidden", 625, 22, "h(t)")
    # h(t-1) leaves the top line before any product, and meets x(t) on the way to the gate.
    cv.wire("concat", [(110, belt), (110, bus), (250, bus)], arrow=False)
    cv.wire("concat", [(140, 370), (140, bus)], arrow=False)
    cv.wire("concat", [(140, 340), (430, 340), (430, gate_y + 15)])
    cv.text("concat", 160, 368, "x(t)")
    for name, cx in (("forget", 250), ("candidate", 430)):
        label, act = act_label(getattr(cell, name).activation)
        if name == "forget":
            cv.wire(name, [(cx, bus), (cx, gate_y + 15)])
        cv.layer(name, cx, gate_y, label, act, math="_" in label)
    cv.text("forget", 262, 190, "f")
    cv.wire("forget", [(250, gate_y - 15), (250, 140)], arrow=False)
    # Reset: f also scales h(t-1) (or its recurrent product) on the way into the candidate.
    cv.wire("reset", [(250, 185), (170, 185), (170, 163)])
    cv.wire("reset", [(110, 150), (157, 150)])
    cv.op("reset", 170, 150, "×")
    cv.wire("reset", [(183, 150), (330, 150), (330, 310), (430, 310)], arrow=False)
    after = bool(getattr(cell, "reset_after", False))
    cv.text("reset", 380, 302, "f ⊙ (hU + b)" if after else "f ⊙ h")
    # Update: f (or 1 - f) scales the old state on the top line, the other factor the candidate.
    if keeps_old:
        cv.wire("update", [(250, 140), (250, belt + 13)])
        cv.wire("update", [(250, 140), (355, 140)])
        cv.op("update", 370, 140, "1−")
        cv.text("update", 370, 118, "1 - f")
        cv.wire("update", [(385, 140), (490, 140), (490, 157)])
    else:
        cv.wire("update", [(250, 140), (250, 125)])
        cv.op("update", 250, 110, "1−")
        cv.text("update", 290, 114, "1 - f")
        cv.wire("update", [(250, 95), (250, belt + 13)])
        cv.wire("update", [(250, 140), (490, 140), (490, 157)])
    cv.op("update", 250, belt, "×")
    cv.wire("candidate", [(430, gate_y - 15), (430, 170), (477, 170)])
    cv.text("candidate", 455, 162, "n")
    cv.op("update", 490, 170, "×")
    cv.wire("update", [(503, 170), (540, 170), (540, belt + 13)])
    cv.op("add", 540, belt, "+")


_cells.CANVAS_PROVIDERS.append(simple_canvas)  # chain() draws these cells too


def _simple_rnn_figure() -> str:
    from lstmkit.cells.simple import SimpleRNNCell

    return draw(SimpleRNNCell(3, 4, rng=0))


def _mgu_figure(highlight: Any = None, **kw: Any) -> Any:
    def make() -> str:
        from lstmkit.cells.mgu import MGUCell

        return draw(MGUCell(3, 4, rng=0, **kw), highlight=highlight)

    return make


register_figure("simple-rnn.svg", _simple_rnn_figure, replace=True)
register_figure("mgu.svg", _mgu_figure(highlight=["forget", "reset", "update"]), replace=True)
register_figure(
    "mgu-paper.svg", _mgu_figure(reset_after=False, update_convention="paper"), replace=True
)
