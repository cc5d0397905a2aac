"""SVG diagrams of cells and runners, drawn from the objects themselves.

The pictures follow the visual grammar of Christopher Olah's "Understanding
LSTM Networks": yellow boxes are learned layers (a gate: affine map plus
activation), pink circles are pointwise operations, arrows carry vectors,
merging lines concatenate and forking lines copy. :func:`draw` looks at a cell
(its gates, their activations and peepholes, whether it is an LSTM, a coupled
LSTM or a GRU) and draws exactly that cell, so a swapped activation or a
peephole shows up in the figure. The other functions draw the fixed figures
of the docs: rolled and unrolled networks, the notation, stacking,
bidirectional runs and variable-length reversal.

Everything is plain string building; the output is a standalone SVG document
you can write to a ``.svg`` file or embed in HTML.

Examples
--------
>>> from lstmkit import LSTMCell
>>> from lstmkit.diagrams import draw
>>> svg = draw(LSTMCell(3, 4, peephole=["forget"], rng=0), highlight="forget")
>>> svg.startswith("<svg"), 'data-part="peephole-forget"' in svg, 'data-part="peephole-input"' in svg
(True, True, False)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from xml.sax.saxutils import escape

__all__ = [
    "bidirectional",
    "chain",
    "draw",
    "notation",
    "parts",
    "reversal",
    "rolled_rnn",
    "stacked",
    "unrolled_rnn",
]

_STYLE = """
.module{fill:#dfeedd;stroke:#6b8f62;stroke-width:1.5}
.layer rect{fill:#ffd966;stroke:#5c4b00;stroke-width:1.5}
.op circle,.op ellipse{fill:#f6c8c8;stroke:#8a3b3b;stroke-width:1.5}
.wire{fill:none;stroke:#222;stroke-width:2}
.arrow{fill:#222}
.peephole .wire{stroke-dasharray:5 4;stroke:#3b5bdb}
text{font-family:Helvetica,Arial,sans-serif;font-size:15px;fill:#111;text-anchor:middle}
text.small{font-size:12px}
text.label{font-style:italic}
.highlight .wire{stroke:#d9480f;stroke-width:3.5}
.highlight .arrow{fill:#d9480f}
.highlight rect{fill:#ff922b;stroke:#c92a2a;stroke-width:3}
.highlight circle,.highlight ellipse{fill:#ff8787;stroke:#c92a2a;stroke-width:3}
.dim{opacity:0.35}
"""

# Pretty labels for the activations everyone knows; any other activation shows its own name.
_SYMBOLS = {"sigmoid": "σ", "tanh": "tanh", "hard_sigmoid": "σ_hard"}


class _Canvas:
    """Collects SVG elements, each tagged with the named part of the figure it belongs to."""

    def __init__(self, width: int, height: int, title: str) -> None:
        self.width, self.height, self.title = width, height, title
        self.items: list[tuple[str, str]] = []

    def add(self, part: str, element: str) -> None:
        self.items.append((part, element))

    def wire(self, part: str, points: Sequence[tuple[float, float]], arrow: bool = True) -> None:
        d = "M" + " L".join(f"{x:g},{y:g}" for x, y in points)
        head = _arrowhead(points[-2], points[-1]) if arrow else ""
        self.add(part, f'<path class="wire" d="{d}"/>{head}')

    def layer(self, part: str, cx: float, cy: float, label: str, activation: str = "") -> None:
        if len(label) > 9:  # keep boxes from overlapping; the full name stays in the title
            label = label[:8] + "…"
        small = ' class="small"' if len(label) > 4 else ""
        w = max(44, (7 if small else 9) * len(label) + 14)
        act = f' data-activation="{escape(activation)}"' if activation else ""
        self.add(
            part,
            f'<g class="layer"{act}><title>{escape(part)}: {escape(activation or label)}</title>'
            f'<rect x="{cx - w / 2:g}" y="{cy - 15:g}" width="{w}" height="30" rx="4"/>'
            f'<text x="{cx:g}" y="{cy + 5:g}"{small}>{escape(label)}</text></g>',
        )

    def op(self, part: str, cx: float, cy: float, label: str) -> None:
        shape = (
            f'<circle cx="{cx:g}" cy="{cy:g}" r="13"/>'
            if len(label) <= 2
            else f'<ellipse cx="{cx:g}" cy="{cy:g}" rx="24" ry="13"/>'
        )
        self.add(
            part,
            f'<g class="op" data-op="{escape(label)}">{shape}'
            f'<text x="{cx:g}" y="{cy + 5:g}">{escape(label)}</text></g>',
        )

    def text(self, part: str, x: float, y: float, label: str, cls: str = "label") -> None:
        self.add(part, f'<text class="{cls}" x="{x:g}" y="{y:g}">{escape(label)}</text>')

    def render(self, highlight: frozenset[str] = frozenset()) -> str:
        body = []
        for part, element in self.items:
            cls = f"part part-{part}"
            if highlight:
                cls += " highlight" if part in highlight else " dim"
            if part == "peephole" or part.startswith("peephole-"):
                cls += " peephole"
            body.append(f'<g class="{cls}" data-part="{part}">{element}</g>')
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {self.width} {self.height}" '
            f'width="{self.width}" height="{self.height}" role="img">'
            f"<title>{escape(self.title)}</title><style>{_STYLE}</style>" + "".join(body) + "</svg>"
        )


def _arrowhead(p0: tuple[float, float], p1: tuple[float, float]) -> str:
    (x0, y0), (x1, y1) = p0, p1
    dx, dy = x1 - x0, y1 - y0
    n = max((dx * dx + dy * dy) ** 0.5, 1e-9)
    ux, uy = dx / n, dy / n
    bx, by = x1 - 9 * ux, y1 - 9 * uy
    pts = [(x1, y1), (bx - 4.5 * uy, by + 4.5 * ux), (bx + 4.5 * uy, by - 4.5 * ux)]
    return '<polygon class="arrow" points="' + " ".join(f"{x:g},{y:g}" for x, y in pts) + '"/>'


def _act_label(activation: Any) -> tuple[str, str]:
    name = getattr(activation, "name", str(activation))
    return _SYMBOLS.get(name, name), name


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


_ALIASES = {"update": ("forget_mul", "input_mul", "add")}


def parts(cell: Any) -> list[str]:
    """Names :func:`draw` accepts in ``highlight`` for this cell."""
    canvas = _cell_canvas(cell, 0, 0)
    names = {p for p, _ in canvas.items}
    if _kind(cell) != "gru":
        names.add("update")
    return sorted(names)


def draw(cell: Any, highlight: str | Iterable[str] | None = None) -> str:
    """Draw a cell as an SVG document.

    Parameters
    ----------
    cell : LSTMCell, coupled LSTM cell or GRU cell
        Read for its gates, their activations (a non-default one is labelled with its name)
        and peepholes (one dashed line per gate that has one).
    highlight : str or iterable of str, optional
        Parts to emphasise; everything else is dimmed. Gate names (``"forget"``,
        ``"input"``, ``"candidate"``, ``"output"``, or ``"reset"``, ``"update"`` for a GRU),
        ``"cell_state"``, ``"concat"``, ``"hidden"``, ``"peephole"``, the belt operations
        ``"forget_mul"``, ``"input_mul"``, ``"add"`` or ``"update"`` for all three.
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
    canvas = _cell_canvas(cell, 0, 0)
    return canvas.render(_highlight_set(cell, canvas, highlight))


def _highlight_set(cell: Any, canvas: _Canvas, highlight: Any) -> frozenset[str]:
    if highlight is None:
        return frozenset()
    wanted = [highlight] if isinstance(highlight, str) else list(highlight)
    known = {p for p, _ in canvas.items}
    out: set[str] = set()
    for name in wanted:
        if _kind(cell) != "gru" and name in _ALIASES:
            out.update(_ALIASES[name])
        elif name == "peephole":
            out.update(p for p in known if p.startswith("peephole"))
        elif name in known:
            out.add(name)
        else:
            raise ValueError(
                f"highlight: expected names among {', '.join(parts(cell))}, received {name!r}"
            )
    return frozenset(out)


def _cell_canvas(cell: Any, ox: float, oy: float) -> _Canvas:
    kind = _kind(cell)
    title = {
        "lstm": "LSTM cell",
        "coupled": "LSTM cell with coupled forget and input gates",
        "gru": "GRU cell",
    }[kind]
    canvas = _Canvas(700, 380, f"{title} ({type(cell).__name__})")
    canvas.add("module", '<rect class="module" x="80" y="45" width="540" height="280" rx="18"/>')
    if kind == "gru":
        _gru(canvas, cell)
    else:
        _lstm(canvas, cell, coupled=kind == "coupled")
    return canvas


def _lstm(cv: _Canvas, cell: Any, coupled: bool) -> None:
    belt, gate_y, bus = 90, 220, 290
    # Cell state: the conveyor belt along the top.
    cv.wire("cell_state", [(15, belt), (155, belt)])
    cv.wire("cell_state", [(185, belt), (315, belt)])
    cv.wire("cell_state", [(345, belt), (685, belt)])
    cv.text("cell_state", 30, belt - 10, "c(t-1)")
    cv.text("cell_state", 668, belt - 10, "c(t)")
    # Inputs: h(t-1) and x(t) are concatenated, then copied into every gate.
    cv.wire("concat", [(15, bus), (140, bus)], arrow=False)
    cv.wire("concat", [(140, 370), (140, bus)], arrow=False)
    cv.wire("concat", [(140, bus), (450, bus)], arrow=False)
    cv.text("concat", 30, bus + 20, "h(t-1)")
    cv.text("concat", 160, 368, "x(t)")
    cols = {"forget": 170, "input": 250, "candidate": 330, "output": 450}
    sym = {"forget": "f", "input": "i", "candidate": "g", "output": "o"}
    for name, cx in cols.items():
        gate = getattr(cell, name, None)
        if gate is None:
            continue
        label, act = _act_label(gate.activation)
        cv.wire(name, [(cx, bus), (cx, gate_y + 15)])
        cv.layer(name, cx, gate_y, label, act)
        if getattr(gate, "p", None) is not None:
            # Forget and input look at c(t-1), the output gate at c(t).
            px = cx - 22
            cv.wire(f"peephole-{name}", [(px, belt), (px, gate_y - 15)])
    # Forget: f multiplies the old cell state on the belt.
    cv.wire("forget", [(170, gate_y - 15), (170, belt + 13)])
    cv.text("forget", 182, 165, sym["forget"])
    cv.op("forget_mul", 170, belt, "×")
    # Input and candidate: i * g is written onto the belt.
    if coupled:
        cv.wire("coupled", [(170, 150), (226, 150)])
        cv.op("coupled", 250, 150, "1−")
        cv.text("coupled", 250, 185, "1 - f", cls="small coupled-label")
        cv.wire("coupled", [(274, 150), (317, 150)])
    else:
        cv.wire("input", [(250, gate_y - 15), (250, 150), (317, 150)])
        cv.text("input", 262, 190, sym["input"])
    cv.wire("candidate", [(330, gate_y - 15), (330, 163)])
    cv.text("candidate", 342, 190, sym["candidate"])
    cv.op("input_mul", 330, 150, "×")
    cv.wire("input_mul", [(330, 137), (330, belt + 13)])
    cv.op("add", 330, belt, "+")
    # Output: o gates cell_activation(c) into the new hidden state.
    out_label, out_act = _act_label(cell.cell_activation)
    cv.wire("output", [(540, belt), (540, 137)])
    cv.op("output", 540, 150, out_label if len(out_label) <= 6 else out_act[:6])
    cv.wire("output", [(540, 163), (540, gate_y - 13)])
    cv.wire("output", [(450 + 26, gate_y), (527, gate_y)])
    cv.text("output", 490, gate_y - 8, sym["output"])
    cv.op("output", 540, gate_y, "×")
    cv.wire("hidden", [(540, gate_y + 13), (540, bus), (685, bus)])
    cv.wire("hidden", [(600, bus), (600, 15)])
    cv.text("hidden", 668, bus + 20, "h(t)")
    cv.text("hidden", 625, 22, "h(t)")


def _gru(cv: _Canvas, cell: Any) -> None:
    belt, gate_y, bus = 70, 220, 290
    # The hidden state runs along the top; the update gate z decides how much of it to keep.
    # update_convention "pytorch": h = (1 - z) * n + z * h_prev (z keeps the old state);
    # "olah", as in his figure: h = (1 - z) * h_prev + z * n.
    keeps_old = getattr(cell, "update_convention", "pytorch") != "olah"
    cv.wire("hidden", [(15, belt), (177, belt)])
    cv.wire("hidden", [(203, belt), (527, belt)])
    cv.wire("hidden", [(553, belt), (685, belt)])
    cv.text("hidden", 30, belt - 10, "h(t-1)")
    cv.text("hidden", 668, belt - 10, "h(t)")
    cv.wire("hidden", [(600, belt), (600, 12)])
    cv.text("hidden", 625, 22, "h(t)")
    cv.wire("concat", [(100, belt), (100, bus), (270, bus)], arrow=False)
    cv.wire("concat", [(140, 370), (140, bus)], arrow=False)
    cv.wire("concat", [(140, 340), (430, 340), (430, gate_y + 15)])
    cv.text("concat", 160, 368, "x(t)")
    for name, cx in (("update", 190), ("reset", 270), ("candidate", 430)):
        label, act = _act_label(getattr(cell, name).activation)
        if name != "candidate":
            cv.wire(name, [(cx, bus), (cx, gate_y + 15)])
        cv.layer(name, cx, gate_y, label, act)
    # Reset: r * h(t-1) is concatenated with x(t) to feed the candidate.
    cv.wire("reset", [(296, gate_y), (357, gate_y)])
    cv.text("reset", 322, gate_y - 8, "r")
    cv.wire("hidden", [(370, belt), (370, gate_y - 13)])
    cv.op("reset", 370, gate_y, "×")
    cv.wire("reset", [(370, gate_y + 13), (370, 300), (430, 300)], arrow=False)
    # reset_after (PyTorch, Keras): r scales the recurrent product h @ U + b_hn, not h itself.
    after = bool(getattr(cell, "reset_after", False))
    cv.text("reset", 395, 265, "r*(hU+b)" if after else "r*h", cls="small")
    # Update: z (or 1 - z) scales the old state on the belt, the other factor the candidate.
    cv.wire("update", [(190, gate_y - 15), (190, 150)], arrow=False)
    cv.text("update", 202, 185, "z")
    if keeps_old:
        cv.wire("update", [(190, 150), (190, belt + 13)])
        cv.wire("update", [(190, 150), (446, 150)], arrow=False)
        cv.op("update", 470, 150, "1−")
        cv.wire("update", [(494, 150), (590, 150), (590, 180), (553, 180)])
        cv.text("update", 470, 130, "1 - z", cls="small")
    else:
        cv.wire("update", [(190, 150), (190, 123)])
        cv.op("update", 190, 110, "1−")
        cv.text("update", 225, 130, "1 - z", cls="small")
        cv.wire("update", [(190, 97), (190, belt + 13)])
        cv.wire("update", [(190, 150), (590, 150), (590, 180), (553, 180)])
    cv.op("update", 190, belt, "×")
    cv.wire("candidate", [(430, gate_y - 15), (430, 180), (527, 180)])
    cv.text("candidate", 480, 198, "n")
    cv.op("update", 540, 180, "×")
    cv.wire("update", [(540, 167), (540, belt + 13)])
    cv.op("add", 540, belt, "+")


# -- fixed figures ------------------------------------------------------------------------------


def _module_box(cv: _Canvas, part: str, cx: float, cy: float, label: str = "A") -> None:
    cv.add(
        part,
        f'<rect class="module" x="{cx - 35:g}" y="{cy - 30:g}" width="70" height="60" rx="10"/>',
    )
    cv.text(part, cx, cy + 6, label, cls="title")


def rolled_rnn() -> str:
    """A recurrent network drawn with its loop: ``x(t)`` in, ``h(t)`` out, state fed back."""
    cv = _Canvas(220, 240, "A recurrent network with its loop")
    _module_box(cv, "module", 110, 120)
    cv.wire("input", [(110, 225), (110, 150)])
    cv.text("input", 135, 225, "x(t)")
    cv.wire("output", [(110, 90), (110, 20)])
    cv.text("output", 135, 25, "h(t)")
    cv.wire("loop", [(145, 130), (185, 130), (185, 60), (130, 60), (130, 90)])
    return cv.render()


def unrolled_rnn(steps: int = 4, highlight: int | None = None) -> str:
    """The same network unrolled over ``steps`` time steps; ``highlight`` marks one step."""
    _check_count(steps, "steps")
    cv = _Canvas(110 * steps + 60, 240, f"A recurrent network unrolled over {steps} steps")
    for t in range(steps):
        cx = 70 + 110 * t
        part = f"step-{t}"
        _module_box(cv, part, cx, 120)
        cv.wire(part, [(cx, 225), (cx, 150)])
        cv.text(part, cx + 22, 225, f"x({t})")
        cv.wire(part, [(cx, 90), (cx, 20)])
        cv.text(part, cx + 22, 25, f"h({t})")
        if t < steps - 1:
            cv.wire(f"state-{t}", [(cx + 35, 120), (cx + 75, 120)])
    return cv.render(frozenset() if highlight is None else frozenset({f"step-{highlight}"}))


def chain(cell: Any | None = None, steps: int = 3) -> str:
    """The repeating module: ``steps`` copies of a cell, the middle one drawn in full.

    With ``cell=None`` the module is a plain RNN's single ``tanh`` layer.
    """
    _check_count(steps, "steps")
    inner = _cell_canvas(cell, 0, 0) if cell is not None else _rnn_canvas()
    scale = 0.5
    w = int(700 * scale)
    cv = _Canvas(w * steps + 40, int(380 * scale) + 20, f"The repeating module ({inner.title})")
    mid = steps // 2
    for t in range(steps):
        x0 = 20 + w * t
        if t == mid:
            body = "".join(e for _, e in inner.items)
            cv.add("module", f'<g transform="translate({x0},10) scale({scale})">{body}</g>')
        else:
            cv.add(
                "module",
                f'<g transform="translate({x0},10) scale({scale})">'
                '<rect class="module" x="80" y="45" width="540" height="280" rx="18"/>'
                '<text x="350" y="195" style="font-size:40px">A</text></g>',
            )
            cv.add(
                "module",
                f'<g transform="translate({x0},10) scale({scale})">'
                '<path class="wire" d="M15,290 L80,290 M620,290 L685,290 M350,370 L350,325 '
                'M350,45 L350,0"/></g>',
            )
    return cv.render()


def _rnn_canvas() -> _Canvas:
    cv = _Canvas(700, 380, "plain RNN cell")
    cv.add("module", '<rect class="module" x="80" y="45" width="540" height="280" rx="18"/>')
    cv.wire("concat", [(15, 290), (250, 290)], arrow=False)
    cv.wire("concat", [(250, 370), (250, 290), (350, 290), (350, 235)])
    cv.layer("layer", 350, 220, "tanh", "tanh")
    cv.wire("hidden", [(350, 205), (350, 150), (450, 150), (450, 290), (685, 290)])
    cv.wire("hidden", [(450, 150), (450, 15)])
    cv.text("concat", 30, 310, "h(t-1)")
    cv.text("concat", 270, 368, "x(t)")
    cv.text("hidden", 668, 310, "h(t)")
    return cv


def notation() -> str:
    """The five symbols: layer, pointwise operation, vector transfer, concatenate, copy."""
    cv = _Canvas(700, 130, "Notation")
    cv.layer("layer", 70, 50, "σ", "sigmoid")
    cv.text("layer", 70, 110, "layer", cls="small")
    cv.op("pointwise", 210, 50, "×")
    cv.text("pointwise", 210, 110, "pointwise op", cls="small")
    cv.wire("transfer", [(300, 50), (390, 50)])
    cv.text("transfer", 345, 110, "vector transfer", cls="small")
    cv.wire("concatenate", [(440, 30), (480, 30), (480, 50), (530, 50)])
    cv.wire("concatenate", [(440, 70), (480, 70), (480, 50)], arrow=False)
    cv.text("concatenate", 485, 110, "concatenate", cls="small")
    cv.wire("copy", [(570, 50), (610, 50), (610, 30), (660, 30)])
    cv.wire("copy", [(610, 50), (610, 70), (660, 70)])
    cv.text("copy", 615, 110, "copy", cls="small")
    return cv.render()


def stacked(layers: int = 2, steps: int = 3) -> str:
    """``Stacked``: each layer's output sequence is the next layer's input sequence."""
    _check_count(layers, "layers")
    _check_count(steps, "steps")
    cv = _Canvas(110 * steps + 60, 90 * layers + 100, f"{layers} stacked layers over {steps} steps")
    for layer in range(layers):
        cy = 90 * (layers - layer) + 5
        for t in range(steps):
            cx = 70 + 110 * t
            part = f"layer-{layer}"
            _module_box(cv, part, cx, cy, f"L{layer}")
            cv.wire(part, [(cx, cy + 60), (cx, cy + 30)])
            if t < steps - 1:
                cv.wire(part, [(cx + 35, cy), (cx + 75, cy)])
    for t in range(steps):
        cx = 70 + 110 * t
        cv.text("input", cx + 22, 90 * layers + 90, f"x({t})")
        cv.wire("output", [(cx, 35), (cx, 8)])
    return cv.render()


def bidirectional(steps: int = 4) -> str:
    """``Bidirectional``: a forward and a backward layer read the sequence; outputs merge."""
    _check_count(steps, "steps")
    cv = _Canvas(110 * steps + 60, 330, f"Bidirectional layer over {steps} steps")
    for t in range(steps):
        cx = 70 + 110 * t
        _module_box(cv, "forward", cx, 220, "→")
        _module_box(cv, "backward", cx, 120, "←")
        cv.wire("input", [(cx, 315), (cx, 250)])
        cv.text("input", cx + 22, 315, f"x({t})")
        cv.op("merge", cx, 45, "⊕")
        cv.wire("input", [(cx, 280), (cx - 48, 280), (cx - 48, 135), (cx - 35, 135)])
        cv.wire("merge", [(cx + 35, 205), (cx + 48, 205), (cx + 48, 45), (cx + 13, 45)])
        cv.wire("merge", [(cx, 90), (cx, 58)])
        if t < steps - 1:
            cv.wire("forward", [(cx + 35, 220), (cx + 75, 220)])
            cv.wire("backward", [(cx + 75, 120), (cx + 35, 120)])
    return cv.render()


def reversal(lengths: Sequence[int] = (5, 3)) -> str:
    """How the backward direction reverses each padded sequence within its own length."""
    lengths = [int(n) for n in lengths]
    if not lengths or min(lengths) < 1:
        raise ValueError(
            f"lengths: expected a non-empty sequence of positive ints, received {lengths}"
        )
    steps = max(lengths)
    cv = _Canvas(
        60 * steps + 200, 130 * len(lengths) + 30, "Reversal within each sequence's length"
    )
    for b, n in enumerate(lengths):
        y0 = 20 + 130 * b
        cv.text("label", 70, y0 + 25, f"sequence {b}", cls="small")
        cv.text("label", 70, y0 + 95, "reversed", cls="small")
        for t in range(steps):
            x = 150 + 60 * t
            valid = t < n
            part = "valid" if valid else "padding"
            fill = "#ffd966" if valid else "#eeeeee"
            for row, label in (
                (0, f"x{t}" if valid else "pad"),
                (70, f"x{n - 1 - t}" if valid else "pad"),
            ):
                cv.add(
                    part,
                    f'<rect x="{x:g}" y="{y0 + row:g}" width="50" height="36" rx="4" '
                    f'style="fill:{fill};stroke:#555"/>',
                )
                cv.text(part, x + 25, y0 + row + 23, label, cls="small")
            if valid:
                cv.wire("valid", [(x + 25, y0 + 38), (150 + 60 * (n - 1 - t) + 25, y0 + 68)])
    return cv.render()


def _check_count(value: Any, argument: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{argument}: expected a positive int, received {value!r}")
