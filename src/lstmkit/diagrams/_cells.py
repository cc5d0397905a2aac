"""One cell drawn from the object: LSTM (peepholes, layer normalization, projection), GRU."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from lstmkit.diagrams._canvas import Canvas, act_label

__all__ = ["CANVAS_PROVIDERS", "cell_canvas", "draw", "parts"]

GATE_SYMBOLS = {"forget": "f", "input": "i", "candidate": "g", "output": "o"}
GATE_COLUMNS = {"forget": 170, "input": 250, "candidate": 330, "output": 450}

# Highlight names standing for several parts: an alias, or a prefix for every part "name-..."
# ("peephole" is accepted, and lights nothing, on a cell without peepholes).
_ALIASES = {"update": ("forget_mul", "input_mul", "add", "cell_state")}
_FAMILIES = ("peephole", "layer_norm")


def _kind(cell: Any) -> str:
    names = {"reset", "update", "candidate"}
    if all(hasattr(cell, n) for n in names) and not hasattr(cell, "output"):
        return "gru"
    if hasattr(cell, "forget") and hasattr(cell, "candidate") and hasattr(cell, "output"):
        return "lstm" if getattr(cell, "input", None) is not None else "coupled"
    raise TypeError(
        "cell: expected an LSTMCell, a coupled LSTM cell or a GRU cell (gates forget/input/"
        f"candidate/output or reset/update/candidate), received {type(cell).__name__}"
    )


def _layer_normalized(cell: Any) -> bool:
    """``LayerNormLSTMCell``: gate products normalized by ``norm_x``/``norm_h``, ``c`` by ``norm_c``."""
    return all(getattr(cell, n, None) is not None for n in ("norm_x", "norm_h", "norm_c"))


def _proj_size(cell: Any) -> int | None:
    """``ProjectionLSTMCell``: ``h = m @ projection`` has ``proj_size`` features."""
    if getattr(cell, "projection", None) is None:
        return None
    return int(cell.proj_size)


def parts(cell: Any) -> list[str]:
    """Names :func:`draw` accepts in ``highlight`` for this cell."""
    canvas = cell_canvas(cell, 0, 0)
    names = {p for p, _ in canvas.items}
    if _kind(cell) != "gru":
        names.add("update")
    return sorted(names)


def draw(cell: Any, highlight: str | Iterable[str] | None = None) -> str:
    """Draw a cell as an SVG document.

    Parameters
    ----------
    cell : LSTMCell, coupled LSTM cell, LayerNormLSTMCell, ProjectionLSTMCell or GRU cell
        Read for its gates, their activations (a non-default one is labelled with its name),
        peepholes (one dashed line per gate that has one), layer normalization (an "LN" box on
        each gate's input and recurrent product and on the cell state's branch into the output
        activation) and recurrent projection (a ``W_hr`` box on the hidden state, labelled
        with ``proj_size``: the projected state is the output and the one fed back).
    highlight : str or iterable of str, optional
        Parts to emphasise; everything else is dimmed. Gate names (``"forget"``,
        ``"input"``, ``"candidate"``, ``"output"``, or ``"reset"``, ``"update"`` for a GRU),
        ``"cell_state"``, ``"concat"``, ``"hidden"``, ``"peephole"``, the belt operations
        ``"forget_mul"``, ``"input_mul"``, ``"add"`` or ``"update"`` for all three and the
        cell-state wires, the output path's ``"cell_activation"`` (``tanh(c)``) and
        ``"output_mul"`` (``o * tanh(c)``);
        ``"layer_norm"`` (every normalization, or one of ``"layer_norm-forget"`` ...
        ``"layer_norm-cell"``) and ``"projection"`` for the cells that have them.
        :func:`parts` lists them for a given cell.

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
    canvas = cell_canvas(cell, 0, 0)
    return canvas.render(_highlight_set(cell, canvas, highlight))


def _highlight_set(cell: Any, canvas: Canvas, highlight: Any) -> frozenset[str]:
    if highlight is None:
        return frozenset()
    wanted = [highlight] if isinstance(highlight, str) else list(highlight)
    known = {p for p, _ in canvas.items}
    out: set[str] = set()
    for name in wanted:
        if _kind(cell) != "gru" and name in _ALIASES:
            out.update(_ALIASES[name])
        elif name == "peephole" or (name in _FAMILIES and name in known):
            out.update(p for p in known if p.startswith(name))
        elif name in known:
            out.add(name)
        else:
            raise ValueError(
                f"highlight: expected names among {', '.join(parts(cell))}, received {name!r}"
            )
    return frozenset(out)


# Functions ``cell -> Canvas | None`` tried before the cells drawn here, so a module drawing other
# cells (append its function) makes them drawable by ``chain`` too.
CANVAS_PROVIDERS: list[Callable[[Any], Canvas | None]] = []


def cell_canvas(cell: Any, ox: float, oy: float) -> Canvas:
    """The cell's figure as a :class:`Canvas` (not rendered), for :func:`draw` and ``chain``."""
    for provider in CANVAS_PROVIDERS:
        provided = provider(cell)
        if provided is not None:
            return provided
    kind = _kind(cell)
    title = {
        "lstm": "LSTM cell",
        "coupled": "LSTM cell with coupled forget and input gates",
        "gru": "GRU cell",
    }[kind]
    layer_norm = kind != "gru" and _layer_normalized(cell)
    proj = _proj_size(cell) if kind != "gru" else None
    extras = ["layer normalization"] if layer_norm else []
    if proj is not None:
        extras.append(f"a recurrent projection to {proj} units")
    if extras:
        title += (", " if kind == "coupled" else " with ") + " and ".join(extras)
    canvas = Canvas(700, 380, f"{title} ({type(cell).__name__})")
    canvas.add("module", '<rect class="module" x="80" y="45" width="540" height="280" rx="18"/>')
    if kind == "gru":
        _gru(canvas, cell)
    else:
        _lstm(canvas, cell, coupled=kind == "coupled", layer_norm=layer_norm, proj=proj)
    return canvas


def _lstm(cv: Canvas, cell: Any, coupled: bool, layer_norm: bool, proj: int | None) -> None:
    # A normalization or projection box below the gates needs room: the gates move up.
    belt, bus = 90, 290
    gate_y = 205 if layer_norm or proj is not None else 220
    # Cell state: the conveyor belt along the top.
    cv.wire("cell_state", [(15, belt), (155, belt)])
    cv.wire("cell_state", [(185, belt), (315, belt)])
    cv.wire("cell_state", [(345, belt), (685, belt)])
    cv.text("cell_state", 45, belt - 10, "c(t-1)")
    cv.text("cell_state", 668, belt - 10, "c(t)")
    if layer_norm:
        _normalized_inputs(cv, cell, gate_y, bus)
    else:
        # Inputs: h(t-1) and x(t) are concatenated, then copied into every gate.
        cv.wire("concat", [(15, bus), (140, bus)], arrow=False)
        cv.wire("concat", [(140, 370), (140, bus)], arrow=False)
        cv.wire("concat", [(140, bus), (450, bus)], arrow=False)
        cv.text("concat", 45, bus + 20, "h(t-1)")
        cv.text("concat", 160, 368, "x(t)")
    half = {}
    for name, cx in GATE_COLUMNS.items():
        gate = getattr(cell, name, None)
        if gate is None:
            continue
        label, act = act_label(gate.activation)
        if not layer_norm:
            cv.wire(name, [(cx, bus), (cx, gate_y + 15)])
        half[name] = cv.layer(name, cx, gate_y, label, act, math="_" in label)
        if getattr(gate, "p", None) is not None:
            cv.wire(f"peephole-{name}", _peephole_route(name, cx, half[name], belt, gate_y))
    # Forget: f multiplies the old cell state on the belt.
    cv.wire("forget", [(170, gate_y - 15), (170, belt + 13)])
    cv.text("forget", 182, 165, GATE_SYMBOLS["forget"])
    cv.op("forget_mul", 170, belt, "×")
    # Input and candidate: i * g is written onto the belt.
    if coupled:
        cv.wire("coupled", [(170, 150), (235, 150)])
        cv.op("coupled", 250, 150, "1−")
        cv.text("coupled", 250, 185, "1 - f", cls="label coupled-label")
        cv.wire("coupled", [(265, 150), (317, 150)])
    else:
        cv.wire("input", [(250, gate_y - 15), (250, 150), (317, 150)])
        cv.text("input", 262, gate_y - 30, GATE_SYMBOLS["input"])
    cv.wire("candidate", [(330, gate_y - 15), (330, 163)])
    cv.text("candidate", 342, gate_y - 30, GATE_SYMBOLS["candidate"])
    cv.op("input_mul", 330, 150, "×")
    cv.wire("input_mul", [(330, 137), (330, belt + 13)])
    cv.op("add", 330, belt, "+")
    # Output: o gates cell_activation(c) (of LN(c) when normalized) into the new hidden state.
    out_label, out_act = act_label(cell.cell_activation)
    out_label = out_label if len(out_label) <= 6 else out_act[:6]
    if layer_norm:
        cv.wire("cell_activation", [(540, belt), (540, 112)])
        cv.norm(
            "layer_norm-cell",
            540,
            122,
            of="c",
            title=f"layer_norm-cell: LN(c(t); gain_c, bias_c) feeds {out_act}; "
            "c(t) itself goes on unnormalized",
        )
        cv.wire("cell_activation", [(540, 132), (540, 147)])
        act_y = 160
    else:
        cv.wire("cell_activation", [(540, belt), (540, 137)])
        act_y = 150
    cv.op("cell_activation", 540, act_y, out_label)
    cv.wire("cell_activation", [(540, act_y + 13), (540, gate_y - 13)])
    cv.wire("output", [(450 + half["output"], gate_y), (527, gate_y)])
    cv.text("output", 490, gate_y - 8, GATE_SYMBOLS["output"])
    cv.op("output_mul", 540, gate_y, "×")
    if proj is None:
        cv.wire("hidden", [(540, gate_y + 13), (540, bus), (685, bus)])
    else:
        # LSTMP: m = o * tanh(c) is projected, h = m @ W_hr; h is the output and is fed back.
        hidden = getattr(cell, "hidden_size", None)
        sizes = f"{hidden} → {proj} units" if hidden is not None else f"{proj} units"
        cv.wire("projection", [(540, gate_y + 13), (540, 240)])
        cv.text("projection", 556, 234, "m")
        cv.layer("projection", 540, 255, "W_hr", title=f"h = m @ W_hr, {sizes}", math=True)
        cv.text("projection", 488, 259, f"proj {proj}", cls="small")
        cv.wire("hidden", [(540, 270), (540, bus), (685, bus)])
    cv.wire("hidden", [(600, bus), (600, 12)])
    cv.text("hidden", 668, bus + 20, "h(t)")
    cv.text("hidden", 625, 22, "h(t)")


def _peephole_route(
    name: str, cx: float, half: float, belt: float, gate_y: float
) -> list[tuple[float, float]]:
    """Forget and input look at c(t-1), so their lines leave the belt before the forget
    product; the output gate looks at c(t), after the addition."""
    if name == "forget":
        return [(135, belt), (135, gate_y), (cx - half, gate_y)]
    if name == "input":
        return [(120, belt), (120, 120), (cx - 14, 120), (cx - 14, gate_y - 15)]
    return [(cx - 14, belt), (cx - 14, gate_y - 15)]


def _normalized_inputs(cv: Canvas, cell: Any, gate_y: float, bus: float) -> None:
    """LayerNormLSTMCell: each gate adds LN(x @ W) and LN(h @ U), so x and h run apart."""
    x_bus, ln_y = bus + 20, 255
    cv.wire("concat", [(15, bus), (434, bus)], arrow=False)
    cv.wire("concat", [(140, 370), (140, x_bus), (466, x_bus)], arrow=False)
    cv.text("concat", 45, bus + 20, "h(t-1)")
    cv.text("concat", 160, 368, "x(t)")
    for name, cx in GATE_COLUMNS.items():
        if getattr(cell, name, None) is None:
            continue
        hx, xx = cx - 16, cx + 16
        cv.wire(name, [(hx, bus), (hx, ln_y + 10)])
        cv.wire(name, [(xx, x_bus), (xx, ln_y + 10)])  # hops over the h(t-1) line
        part = f"layer_norm-{name}"
        cv.norm(part, hx, ln_y, of="h", title=f"{part}: LN(h(t-1) @ U_{name}; gain_h)")
        cv.norm(part, xx, ln_y, of="x", title=f"{part}: LN(x(t) @ W_{name}; gain_x)")
        cv.wire(name, [(hx, ln_y - 10), (hx, gate_y + 15)])
        cv.wire(name, [(xx, ln_y - 10), (xx, gate_y + 15)])
    cv.text(
        "layer_norm",
        400,
        352,
        "LN(x @ W) + LN(h @ U) + b in each gate; LN(c) before the output activation",
        cls="small",
    )


def _gru(cv: Canvas, cell: Any) -> None:
    belt, gate_y, bus = 70, 220, 290
    # The hidden state runs along the top; the update gate z decides how much of it to keep.
    # update_convention "pytorch": h = (1 - z) * n + z * h_prev (z keeps the old state);
    # "olah", as in his figure: h = (1 - z) * h_prev + z * n.
    keeps_old = getattr(cell, "update_convention", "pytorch") != "olah"
    cv.wire("hidden", [(15, belt), (237, belt)])
    cv.wire("hidden", [(263, belt), (527, belt)])
    cv.wire("hidden", [(553, belt), (685, belt)])
    cv.text("hidden", 40, belt - 10, "h(t-1)")
    cv.text("hidden", 668, belt - 10, "h(t)")
    cv.wire("hidden", [(600, belt), (600, 12)])
    cv.text("hidden", 625, 22, "h(t)")
    # h(t-1) leaves the top line before any product, and meets x(t) on the way to the gates.
    cv.wire("concat", [(110, belt), (110, bus), (250, bus)], arrow=False)
    cv.wire("concat", [(140, 370), (140, bus)], arrow=False)
    cv.wire("concat", [(140, 340), (430, 340), (430, gate_y + 15)])
    cv.text("concat", 160, 368, "x(t)")
    for name, cx in (("reset", 170), ("update", 250), ("candidate", 430)):
        label, act = act_label(getattr(cell, name).activation)
        if name != "candidate":
            cv.wire(name, [(cx, bus), (cx, gate_y + 15)])
        cv.layer(name, cx, gate_y, label, act, math="_" in label)
    # Reset: r * h(t-1), with h(t-1) taken from the line into the gates, is concatenated with
    # x(t) to feed the candidate.
    cv.wire("reset", [(170, gate_y - 15), (170, 163)])
    cv.text("reset", 182, 190, "r")
    cv.wire("reset", [(110, 150), (157, 150)])
    cv.op("reset", 170, 150, "×")
    cv.wire("reset", [(183, 150), (330, 150), (330, 310), (430, 310)], arrow=False)
    # reset_after (PyTorch, Keras): r scales the recurrent product h @ U + b_hn, not h itself.
    after = bool(getattr(cell, "reset_after", False))
    cv.text("reset", 380, 302, "r ⊙ (hU + b)" if after else "r ⊙ h")
    # Update: z (or 1 - z) scales the old state on the top line, the other factor the candidate.
    cv.text("update", 262, 190, "z")
    cv.wire("update", [(250, gate_y - 15), (250, 140)], arrow=False)
    if keeps_old:
        cv.wire("update", [(250, 140), (250, belt + 13)])
        cv.wire("update", [(250, 140), (355, 140)])
        cv.op("update", 370, 140, "1−")
        cv.text("update", 370, 118, "1 - z")
        cv.wire("update", [(385, 140), (490, 140), (490, 157)])
    else:
        cv.wire("update", [(250, 140), (250, 125)])
        cv.op("update", 250, 110, "1−")
        cv.text("update", 290, 114, "1 - z")
        cv.wire("update", [(250, 95), (250, belt + 13)])
        cv.wire("update", [(250, 140), (490, 140), (490, 157)])
    cv.op("update", 250, belt, "×")
    cv.wire("candidate", [(430, gate_y - 15), (430, 170), (477, 170)])
    cv.text("candidate", 455, 162, "n")
    cv.op("update", 490, 170, "×")
    cv.wire("update", [(503, 170), (540, 170), (540, belt + 13)])
    cv.op("add", 540, belt, "+")
