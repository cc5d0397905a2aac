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
    "pointwise_gate",
    "reversal",
    "rolled_rnn",
    "stacked",
    "unrolled_rnn",
]


MERGES = ("concat", "sum", "mean", "mul", "none")
_MERGE_OPS = {"sum": "+", "mean": "mean", "mul": "×"}


def _module_box(cv: Canvas, part: str, cx: float, cy: float, label: str = "A") -> None:
    cv.rect(part, cx - 35, cy - 30, 70, 60, cls="module", rx=10)
    cv.text(part, cx, cy + 6, label, cls="title")


def rolled_rnn() -> str:
    """A recurrent network drawn with its loop: ``x(t)`` in, ``h(t)`` out, state fed back."""
    cv = Canvas(220, 240, "A recurrent network with its loop")
    _module_box(cv, "module", 110, 120)
    cv.wire("input", [(110, 228), (110, 150)])
    cv.text("input", 135, 225, "x(t)")
    cv.wire("output", [(110, 90), (110, 10)])
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
        cv.wire(part, [(cx, 228), (cx, 150)])
        cv.text(part, cx + 22, 225, f"x({t})")
        cv.wire(part, [(cx, 90), (cx, 10)])
        cv.text(part, cx + 22, 25, f"h({t})")
        if t < steps - 1:
            cv.wire(f"state-{t}", [(cx + 35, 120), (cx + 75, 120)])
    return cv.render(frozenset() if highlight is None else frozenset({f"step-{highlight}"}))


def chain(cell: Any | None = None, steps: int = 3) -> str:
    """The repeating module: ``steps`` copies of a cell, the middle one drawn in full.

    The other copies are drawn as boxes "A", joined to the middle one by the state lines
    (the cell state and hidden state of an LSTM, the hidden state of a GRU or plain RNN).
    With ``cell=None`` the module is a plain RNN's single ``tanh`` layer. With up to 3
    steps the figure stays legible in a 670 px column (text at least 10 px); more steps make
    it wider, and a page that fits it to its column shrinks it.
    """
    check_count(steps, "steps")
    inner = cell_canvas(cell, 0, 0) if cell is not None else _rnn_canvas()
    # The middle cell's state lines enter at x=15 and leave at x=685 of its 700-wide frame.
    ins = sorted({w[0][1] for w in inner.wires if w[0][0] == 15})
    outs = sorted({w[-1][1] for w in inner.wires if w[-1][0] == 685})
    box, gap, margin = 90, 65, 20
    left, right = steps // 2, steps - steps // 2 - 1
    ox = margin + left * (box + gap) - gap - 15 if left else 0
    width = ox + 685 + right * (box + gap) - gap + margin if right else ox + 700
    cv = Canvas(int(width), 380, f"The repeating module ({inner.title})")
    cv.embed(inner, ox, 0)
    # Three modules side by side are shown at about 3/4 size: small text is set larger.
    cv.extra_style += "text.small,tspan.sub{font-size:14px}"
    top, bottom = 45, 325  # the module's box in the frame
    lefts = [margin + k * (box + gap) for k in range(left)]
    rights = [ox + 685 + k * (box + gap) for k in range(right)]
    for k, x0 in enumerate(lefts):
        _neighbour(cv, x0, box, top, bottom, k - left)
        start = 0 if k == 0 else x0 - gap
        for y in ins:
            cv.wire("module", [(start, y), (x0, y)])
    for k, x0 in enumerate(rights):
        _neighbour(cv, x0, box, top, bottom, k + 1)
        end = width if k == right - 1 else x0 + box + gap
        for y in outs:
            cv.wire("module", [(x0 + box, y), (end, y)])
    return cv.render()


def _neighbour(cv: Canvas, x0: float, box: float, top: float, bottom: float, offset: int) -> None:
    """Another time step's module: a box "A" with its input below and its output above."""
    cx = x0 + box / 2
    t = "t" if offset == 0 else f"t{offset:+d}"
    cv.rect("module", x0, top, box, bottom - top, cls="module", rx=14)
    cv.text("module", cx, (top + bottom) / 2 + 9, "A", cls="title big")
    cv.wire("module", [(cx, 372), (cx, bottom)])
    cv.text("module", cx + 26, 368, f"x({t})")
    cv.wire("module", [(cx, top), (cx, 8)])
    cv.text("module", cx + 26, 32, f"h({t})")


def _rnn_canvas() -> Canvas:
    cv = Canvas(700, 380, "plain RNN cell")
    cv.rect("module", 80, 45, 540, 280, cls="module", rx=18)
    cv.wire("concat", [(15, 290), (250, 290)], arrow=False)
    cv.wire("concat", [(250, 370), (250, 290), (350, 290), (350, 235)])
    cv.layer("layer", 350, 220, "tanh", "tanh")
    cv.wire("hidden", [(350, 205), (350, 150), (450, 150), (450, 290), (685, 290)])
    cv.wire("hidden", [(450, 150), (450, 12)])
    cv.text("concat", 40, 310, "h(t-1)")
    cv.text("concat", 270, 368, "x(t)")
    cv.text("hidden", 662, 310, "h(t)")
    cv.text("hidden", 472, 22, "h(t)")
    return cv


def notation() -> str:
    """The five symbols: layer, pointwise operation, vector transfer, concatenate, copy."""
    cv = Canvas(700, 130, "Notation")
    cv.layer("layer", 70, 50, "σ", "sigmoid")
    cv.text("layer", 70, 110, "layer", cls="small")
    cv.op("pointwise", 210, 50, "×")
    cv.text("pointwise", 210, 110, "pointwise op", cls="small")
    cv.wire("transfer", [(300, 50), (390, 50)], free=True)
    cv.text("transfer", 345, 110, "vector transfer", cls="small")
    cv.wire("concatenate", [(440, 30), (480, 30), (480, 50), (530, 50)], free=True)
    cv.wire("concatenate", [(440, 70), (480, 70), (480, 50)], arrow=False, free=True)
    cv.text("concatenate", 485, 110, "concatenate", cls="small")
    cv.wire("copy", [(570, 50), (610, 50), (610, 30), (660, 30)], free=True)
    cv.wire("copy", [(610, 50), (610, 70), (660, 70)], free=True)
    cv.text("copy", 615, 110, "copy", cls="small")
    return cv.render()


def pointwise_gate() -> str:
    """A gate on its own: a sigmoid layer whose output scales a vector pointwise.

    The layer reads ``[h(t-1), x(t)]``; its output ``s``, between 0 and 1, multiplies the
    vector ``v`` passing by: 0 lets nothing through, 1 everything.
    """
    cv = Canvas(420, 220, "A gate: a sigmoid layer and a pointwise multiplication")
    cv.wire("vector", [(15, 50), (197, 50)])
    cv.text("vector", 40, 40, "v")
    cv.op("multiply", 210, 50, "×")
    cv.wire("vector", [(223, 50), (405, 50)])
    cv.text("vector", 370, 40, "s ⊙ v")
    cv.layer("layer", 210, 130, "σ", "sigmoid")
    cv.wire("layer", [(210, 115), (210, 63)])
    cv.text("layer", 222, 95, "s")
    cv.wire("inputs", [(15, 180), (210, 180), (210, 145)])
    cv.wire("inputs", [(150, 212), (150, 180)], arrow=False)
    cv.text("inputs", 45, 170, "h(t-1)")
    cv.text("inputs", 172, 208, "x(t)")
    return cv.render()


def stacked(layers: int = 2, steps: int = 3) -> str:
    """``Stacked``: each layer's output sequence is the next layer's input sequence."""
    check_count(layers, "layers")
    check_count(steps, "steps")
    height = 90 * layers + 100
    cv = Canvas(110 * steps + 60, height, f"{layers} stacked layers over {steps} steps")
    for layer in range(layers):
        cy = 90 * (layers - layer) + 5
        for t in range(steps):
            cx = 70 + 110 * t
            part = f"layer-{layer}"
            _module_box(cv, part, cx, cy, f"L{layer}")
            start = height - 8 if layer == 0 else cy + 60
            cv.wire(part, [(cx, start), (cx, cy + 30)])
            if t < steps - 1:
                cv.wire(part, [(cx + 35, cy), (cx + 75, cy)])
    top = 90 + 5 - 30
    for t in range(steps):
        cx = 70 + 110 * t
        cv.text("input", cx + 22, height - 10, f"x({t})")
        cv.wire("output", [(cx, top), (cx, 8)])
    return cv.render()


def bidirectional(steps: int = 4, merge: str = "concat") -> str:
    """``Bidirectional``: a forward and a backward layer read the sequence; outputs merge.

    Parameters
    ----------
    steps : int, default 4
        Time steps drawn.
    merge : {"concat", "sum", "mean", "mul", "none"}, default "concat"
        As ``Bidirectional.merge``: ``"concat"`` joins the two output lines into one (Olah's
        concatenation), ``"sum"``, ``"mean"`` and ``"mul"`` draw that pointwise operation,
        ``"none"`` leaves the two outputs apart.
    """
    check_count(steps, "steps")
    if merge not in MERGES:
        raise ValueError(f"merge: expected one of {', '.join(MERGES)}, received {merge!r}")
    height = 340
    cv = Canvas(140 * steps + 20, height, f"Bidirectional layer over {steps} steps ({merge})")
    fwd_y, bwd_y = 230, 130
    columns = [70 + 140 * t for t in range(steps)]
    for t, cx in enumerate(columns):
        _module_box(cv, "forward", cx, fwd_y, "→")
        _module_box(cv, "backward", cx, bwd_y, "←")
        if t < steps - 1:
            cv.wire("forward", [(cx + 35, fwd_y), (cx + 105, fwd_y)])
            cv.wire("backward", [(cx + 105, bwd_y), (cx + 35, bwd_y)])
    for t, cx in enumerate(columns):
        # x(t) feeds both directions; the backward copy's line jumps the forward state line.
        cv.wire("input", [(cx, height - 8), (cx, fwd_y + 30)])
        cv.text("input", cx + 22, height - 10, f"x({t})")
        cv.wire(
            "input", [(cx, 290), (cx - 60, 290), (cx - 60, 180), (cx - 20, 180), (cx - 20, 160)]
        )
        # The forward output climbs past the backward row to meet the backward output.
        fwd = [(cx + 20, fwd_y - 30), (cx + 20, 180), (cx + 55, 180), (cx + 55, 60)]
        if merge == "none":
            cv.wire("merge", fwd[:-1] + [(cx + 55, 8)])
            cv.wire("merge", [(cx, bwd_y - 30), (cx, 8)])
            cv.text("merge", cx + 12, 30, "←", cls="small")
            cv.text("merge", cx + 67, 30, "→", cls="small")
        elif merge == "concat":
            # Olah's concatenation: two lines merge into one.
            cv.wire("merge", fwd + [(cx, 60)], arrow=False)
            cv.wire("merge", [(cx, bwd_y - 30), (cx, 8)])
        else:
            label = _MERGE_OPS[merge]
            cv.wire("merge", [(cx, bwd_y - 30), (cx, 73)])
            half = cv.op("merge", cx, 60, label)
            cv.wire("merge", fwd + [(cx + half, 60)])
            cv.wire("merge", [(cx, 47), (cx, 8)])
        if merge != "none":
            cv.text("merge", cx + 22, 22, f"y({t})")
    return cv.render()


def reversal(lengths: Sequence[int] = (5, 3)) -> str:
    """How the backward direction reverses each padded sequence within its own length."""
    lengths = [int(n) for n in lengths]
    if not lengths or min(lengths) < 1:
        raise ValueError(
            f"lengths: expected a non-empty sequence of positive ints, received {lengths}"
        )
    steps = max(lengths)
    row_gap = 64  # between a sequence's row and its reversed row: two brackets and an arrow
    block = 36 + row_gap + 36 + 30
    cv = Canvas(
        60 * steps + 200, block * len(lengths) + 10, "Reversal within each sequence's length"
    )
    for b, n in enumerate(lengths):
        y0 = 15 + block * b
        bottom = y0 + 36 + row_gap
        cv.text("label", 70, y0 + 23, f"sequence {b}", cls="small")
        cv.text("label", 70, bottom + 23, "reversed", cls="small")
        centres = [150 + 60 * t + 25 for t in range(steps)]
        for t in range(steps):
            x = 150 + 60 * t
            valid = t < n
            part = "valid" if valid else "padding"
            fill = "#ffd966" if valid else "#eeeeee"
            for y, label in (
                (y0, f"x{t}" if valid else "pad"),
                (bottom, f"x{n - 1 - t}" if valid else "pad"),
            ):
                cv.rect(part, x, y, 50, 36, style=f"fill:{fill};stroke:#555")
                cv.text(part, x + 25, y + 23, label, cls="small")
            if not valid:  # padding stays where it is
                cv.wire("padding", [(x + 25, y0 + 36), (x + 25, bottom)])
        # The first n steps are gathered, turned around as one block and laid back down.
        upper, lower = y0 + 36 + 12, bottom - 12
        mid = (centres[0] + centres[n - 1]) / 2
        if n > 1:
            for c in centres[:n]:
                cv.wire("valid", [(c, y0 + 36), (c, upper)], arrow=False)
                cv.wire("valid", [(c, lower), (c, bottom)])
            cv.wire("valid", [(centres[0], upper), (centres[n - 1], upper)], arrow=False)
            cv.wire("valid", [(centres[0], lower), (centres[n - 1], lower)], arrow=False)
            cv.wire("valid", [(mid, upper), (mid, lower)], arrow=False)
        else:
            cv.wire("valid", [(mid, y0 + 36), (mid, bottom)])
        cv.text("valid", mid - 8, (upper + lower) / 2 + 5, f"reverse first {n}", "small", "end")
    return cv.render()
