"""The fixed figures of the docs: runners, the notation, stacking, bidirectional runs, reversal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lstmkit.diagrams._canvas import Canvas, check_count
from lstmkit.diagrams._cells import cell_canvas

__all__ = [
    "bidirectional",
    "chain",
    "notation",
    "reversal",
    "rolled_rnn",
    "stacked",
    "unrolled_rnn",
]


def _module_box(cv: Canvas, part: str, cx: float, cy: float, label: str = "A") -> None:
    cv.add(
        part,
        f'<rect class="module" x="{cx - 35:g}" y="{cy - 30:g}" width="70" height="60" rx="10"/>',
    )
    cv.text(part, cx, cy + 6, label, cls="title")


def rolled_rnn() -> str:
    """A recurrent network drawn with its loop: ``x(t)`` in, ``h(t)`` out, state fed back."""
    cv = Canvas(220, 240, "A recurrent network with its loop")
    _module_box(cv, "module", 110, 120)
    cv.wire("input", [(110, 225), (110, 150)])
    cv.text("input", 135, 225, "x(t)")
    cv.wire("output", [(110, 90), (110, 20)])
    cv.text("output", 135, 25, "h(t)")
    cv.wire("loop", [(145, 130), (185, 130), (185, 60), (130, 60), (130, 90)])
    return cv.render()


def unrolled_rnn(steps: int = 4, highlight: int | None = None) -> str:
    """The same network unrolled over ``steps`` time steps; ``highlight`` marks one step."""
    check_count(steps, "steps")
    cv = Canvas(110 * steps + 60, 240, f"A recurrent network unrolled over {steps} steps")
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
    check_count(steps, "steps")
    inner = cell_canvas(cell, 0, 0) if cell is not None else _rnn_canvas()
    scale = 0.5
    w = int(700 * scale)
    cv = Canvas(w * steps + 40, int(380 * scale) + 20, f"The repeating module ({inner.title})")
    cv.extra_style = inner.extra_style
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


def _rnn_canvas() -> Canvas:
    cv = Canvas(700, 380, "plain RNN cell")
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
    cv = Canvas(700, 130, "Notation")
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
    check_count(layers, "layers")
    check_count(steps, "steps")
    cv = Canvas(110 * steps + 60, 90 * layers + 100, f"{layers} stacked layers over {steps} steps")
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
    check_count(steps, "steps")
    cv = Canvas(110 * steps + 60, 330, f"Bidirectional layer over {steps} steps")
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
    cv = Canvas(60 * steps + 200, 130 * len(lengths) + 30, "Reversal within each sequence's length")
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
