"""The drawing surface shared by every figure: named parts, Olah's shapes, the stylesheet."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

from lstmkit import activations
from lstmkit.activations import Activation
from lstmkit.diagrams._geometry import Layout, measure, text_width

STYLE = """
.module{fill:#dfeedd;stroke:#6b8f62;stroke-width:1.5}
.layer rect{fill:#ffd966;stroke:#5c4b00;stroke-width:1.5}
.op circle,.op ellipse{fill:#f6c8c8;stroke:#8a3b3b;stroke-width:1.5}
.wire{fill:none;stroke:#222;stroke-width:2}
.arrow{fill:#222}
.peephole .wire{stroke-dasharray:5 4;stroke:#3b5bdb}
text{font-family:Helvetica,Arial,sans-serif;font-size:15px;fill:#111;text-anchor:middle}
text.small{font-size:12px}
text.big{font-size:26px}
text.label,tspan.it{font-style:italic}
tspan.up{font-style:normal}
tspan.sub{font-size:11px}
.highlight .wire{stroke:#d9480f;stroke-width:3.5}
.highlight .arrow{fill:#d9480f}
.highlight rect{fill:#ff922b;stroke:#c92a2a;stroke-width:3}
.highlight circle,.highlight ellipse{fill:#ff8787;stroke:#c92a2a;stroke-width:3}
.dim{opacity:0.35}
"""

# Only added to figures that hold a normalization box, so the other figures stay as they were.
# Written after STYLE, so the highlight colours are repeated with a more specific selector.
NORM_STYLE = """
.norm rect{fill:#d0ebff;stroke:#1864ab;stroke-width:1.5}
.highlight .norm rect{fill:#ff922b;stroke:#c92a2a;stroke-width:3}
"""

# Pretty labels for the built-in activations everyone knows, keyed by the objects themselves
# (activations compare by identity): any other activation, even one of your own named "sigmoid",
# shows its own name.
SYMBOLS: dict[Activation, str] = {
    activations.sigmoid: "σ",
    activations.tanh: "tanh",
    activations.hard_sigmoid: "σ_hard",
}


Point = tuple[float, float]
HOP_RADIUS = 5.0


class Canvas:
    """Collects SVG elements, each tagged with the named part of the figure it belongs to.

    Besides the SVG text of each element (``items``), the canvas keeps the polyline of every
    wire it has drawn, so a later wire that crosses an earlier one jumps over it with a small
    arc (a *hop*), and :meth:`layout` reads back the geometry of everything drawn (text boxes,
    node outlines, wire ends) for the figure checks of :mod:`lstmkit.diagrams._geometry`.
    """

    def __init__(self, width: int, height: int, title: str) -> None:
        self.width, self.height, self.title = width, height, title
        self.items: list[tuple[str, str]] = []
        self.extra_style = ""
        self.wires: list[list[Point]] = []

    def add(self, part: str, element: str) -> None:
        self.items.append((part, element))

    def wire(
        self,
        part: str,
        points: Sequence[tuple[float, float]],
        arrow: bool = True,
        free: bool = False,
    ) -> None:
        """A line through ``points``, with an arrowhead at its end unless ``arrow`` is False.

        It hops over every wire drawn before it that it crosses. ``free`` marks a wire that
        stands on its own (a legend's symbol), whose ends need not touch anything.
        """
        pts = [(float(x), float(y)) for x, y in points]
        d = "M" + _xy(pts[0])
        for a, b in zip(pts, pts[1:]):
            for c in self._hops(a, b):
                ux, uy = _unit(a, b)
                p0 = (c[0] - HOP_RADIUS * ux, c[1] - HOP_RADIUS * uy)
                p1 = (c[0] + HOP_RADIUS * ux, c[1] + HOP_RADIUS * uy)
                sweep = 1 if ux > 0 or uy > 0 else 0
                d += f" L{_xy(p0)} A{HOP_RADIUS:g},{HOP_RADIUS:g} 0 0 {sweep} {_xy(p1)}"
            d += " L" + _xy(b)
        self.wires.append(pts)
        head = arrowhead(pts[-2], pts[-1]) if arrow else ""
        cls = "wire free" if free else "wire"
        self.add(part, f'<path class="{cls}" d="{d}"/>{head}')

    def _hops(self, a: Point, b: Point) -> list[Point]:
        """Where segment ``ab`` crosses an earlier wire's segment, away from all their ends."""
        room = HOP_RADIUS + 3
        out = []
        for other in self.wires:
            for c, d in zip(other, other[1:]):
                p = _cross(a, b, c, d, room)
                if p is not None:
                    out.append(p)
        return sorted(out, key=lambda p: (p[0] - a[0]) ** 2 + (p[1] - a[1]) ** 2)

    def rect(
        self,
        part: str,
        x: float,
        y: float,
        width: float,
        height: float,
        *,
        cls: str = "",
        rx: float = 4,
        style: str = "",
    ) -> None:
        """A plain rectangle (a module, a sequence element): class ``cls`` or inline ``style``."""
        attrs = f' class="{cls}"' if cls else ""
        attrs += f' style="{style}"' if style else ""
        self.add(
            part,
            f'<rect{attrs} x="{x:g}" y="{y:g}" width="{width:g}" height="{height:g}" rx="{rx:g}"/>',
        )

    def layer(
        self,
        part: str,
        cx: float,
        cy: float,
        label: str,
        activation: str = "",
        title: str = "",
        math: bool = False,
    ) -> float:
        """A yellow layer box; ``math`` sets ``label`` as a formula (``W_hr``: W, subscript hr).

        Returns half the box's width, so wires can start at its side.
        """
        if len(label) > 9:  # keep boxes from overlapping; the full name stays in the title
            label = label[:8] + "…"
        small = ' class="small"' if len(label) > 4 and not math else ""
        size = 12 if small else 15
        inner, plain = math_markup(label) if math else (escape(label), label)
        w = max(44, round(text_width(plain, size)) + 16)
        act = f' data-activation="{escape(activation)}"' if activation else ""
        self.add(
            part,
            f'<g class="layer"{act}><title>{escape(part)}: {escape(title or activation or label)}'
            f"</title>"
            f'<rect x="{cx - w / 2:g}" y="{cy - 15:g}" width="{w}" height="30" rx="4"/>'
            f'<text x="{cx:g}" y="{cy + 5:g}"{small}>{inner}</text></g>',
        )
        return w / 2

    def norm(self, part: str, cx: float, cy: float, of: str, title: str) -> None:
        """A small "LN" box: layer normalization (learned gain, optional bias) of ``of``."""
        self.extra_style = NORM_STYLE
        self.add(
            part,
            f'<g class="norm" data-norm="{escape(of)}"><title>{escape(title)}</title>'
            f'<rect x="{cx - 14:g}" y="{cy - 10:g}" width="28" height="20" rx="3"/>'
            f'<text class="small" x="{cx:g}" y="{cy + 4:g}">LN</text></g>',
        )

    def op(self, part: str, cx: float, cy: float, label: str) -> float:
        """A pink pointwise operation: a circle (radius 13, or wider for a wider label) or,
        for labels longer than two characters, an ellipse. Returns its half width."""
        half = op_half_width(label)
        shape = (
            f'<circle cx="{cx:g}" cy="{cy:g}" r="{half:g}"/>'
            if len(label) <= 2
            else f'<ellipse cx="{cx:g}" cy="{cy:g}" rx="{half:g}" ry="13"/>'
        )
        self.add(
            part,
            f'<g class="op" data-op="{escape(label)}">{shape}'
            f'<text x="{cx:g}" y="{cy + 5:g}">{escape(label)}</text></g>',
        )
        return half

    def text(
        self, part: str, x: float, y: float, label: str, cls: str = "label", anchor: str = ""
    ) -> None:
        """Text centred at ``x`` (or anchored ``"start"``/``"end"``) on baseline ``y``.

        With the class ``label`` (the default) the text is set as a formula, like every label
        of a figure: letters italic, digits and signs upright, ``-`` as a minus sign, ``_x`` or
        ``_{xy}`` as a subscript.
        """
        inner = math_markup(label)[0] if "label" in cls.split() else escape(label)
        extra = f' style="text-anchor:{anchor}"' if anchor else ""
        self.add(part, f'<text class="{cls}" x="{x:g}" y="{y:g}"{extra}>{inner}</text>')

    def embed(self, other: Canvas, dx: float, dy: float) -> None:
        """Draw everything of ``other``, shifted by ``(dx, dy)``, keeping its parts."""
        for part, element in other.items:
            self.add(part, f'<g transform="translate({dx:g},{dy:g})">{element}</g>')
        self.wires += [[(x + dx, y + dy) for x, y in w] for w in other.wires]
        self.extra_style = self.extra_style or other.extra_style

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
            f"<title>{escape(self.title)}</title><style>{STYLE}{self.extra_style}</style>"
            + "".join(body)
            + "</svg>"
        )

    def layout(self) -> Layout:
        """The geometry of what has been drawn: text boxes, node outlines, wires and hops."""
        return measure(self.render())


def op_half_width(label: str) -> float:
    """Half the width of the shape :meth:`Canvas.op` draws for ``label``."""
    w = text_width(label, 15)
    return max(13, math.ceil(w / 2 + 6)) if len(label) <= 2 else max(24, math.ceil(w / 2 + 12))


def _xy(p: Point) -> str:
    return f"{round(p[0], 2):g},{round(p[1], 2):g}"


def _unit(a: Point, b: Point) -> Point:
    dx, dy = b[0] - a[0], b[1] - a[1]
    n = max((dx * dx + dy * dy) ** 0.5, 1e-9)
    return dx / n, dy / n


def _cross(a: Point, b: Point, c: Point, d: Point, room: float) -> Point | None:
    """Where ``ab`` crosses ``cd`` at least ``room`` from all four ends, else None."""
    (ax, ay), (bx, by), (cx, cy), (dx, dy) = a, b, c, d
    den = (bx - ax) * (dy - cy) - (by - ay) * (dx - cx)
    if abs(den) < 1e-9:
        return None
    t = ((cx - ax) * (dy - cy) - (cy - ay) * (dx - cx)) / den
    u = ((cx - ax) * (by - ay) - (cy - ay) * (bx - ax)) / den
    la = ((bx - ax) ** 2 + (by - ay) ** 2) ** 0.5
    lc = ((dx - cx) ** 2 + (dy - cy) ** 2) ** 0.5
    if room < t * la < la - room and room < u * lc < lc - room:
        return ax + t * (bx - ax), ay + t * (by - ay)
    return None


_TOKEN = re.compile(r"_\{([^}]*)\}|_([A-Za-z0-9]+)|([A-Za-zα-ωΑ-Ω]+)|([^A-Za-zα-ωΑ-Ω_]+)")


def math_markup(label: str) -> tuple[str, str]:
    """``(svg, plain)``: ``label`` set as a formula in ``<tspan>`` runs, and its plain text.

    Letters are italic and everything else upright; ``-`` becomes a minus sign; ``_x`` and
    ``_{xy}`` are subscripts (one- and two-letter ones italic, longer ones upright words).
    """
    out, plain = [], []
    for m in _TOKEN.finditer(label):
        sub = m.group(1) if m.group(1) is not None else m.group(2)
        if sub is not None:
            cls = "sub it" if len(sub) <= 2 else "sub up"
            out.append(f'<tspan class="{cls}" dy="4">{escape(sub)}</tspan><tspan dy="-4"></tspan>')
            plain.append(sub)
        elif m.group(3):
            out.append(f'<tspan class="it">{escape(m.group(3))}</tspan>')
            plain.append(m.group(3))
        else:
            text = m.group(4).replace("-", "−")
            out.append(f'<tspan class="up">{escape(text)}</tspan>')
            plain.append(text)
    return "".join(out), "".join(plain)


def arrowhead(p0: tuple[float, float], p1: tuple[float, float]) -> str:
    (x0, y0), (x1, y1) = p0, p1
    dx, dy = x1 - x0, y1 - y0
    n = max((dx * dx + dy * dy) ** 0.5, 1e-9)
    ux, uy = dx / n, dy / n
    bx, by = x1 - 9 * ux, y1 - 9 * uy
    pts = [(x1, y1), (bx - 4.5 * uy, by + 4.5 * ux), (bx + 4.5 * uy, by - 4.5 * ux)]
    return '<polygon class="arrow" points="' + " ".join(f"{x:g},{y:g}" for x, y in pts) + '"/>'


def act_label(activation: Any) -> tuple[str, str]:
    """``(label, name)``: the built-in's symbol, or the activation's own name."""
    if isinstance(activation, Activation):
        return SYMBOLS.get(activation, activation.name), activation.name
    name = str(activation)
    return name, name


def check_count(value: Any, argument: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{argument}: expected a positive int, received {value!r}")
