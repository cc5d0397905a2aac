"""The drawing surface shared by every figure: named parts, Olah's shapes, the stylesheet."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

from lstmkit import activations
from lstmkit.activations import Activation

STYLE = """
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


class Canvas:
    """Collects SVG elements, each tagged with the named part of the figure it belongs to."""

    def __init__(self, width: int, height: int, title: str) -> None:
        self.width, self.height, self.title = width, height, title
        self.items: list[tuple[str, str]] = []
        self.extra_style = ""

    def add(self, part: str, element: str) -> None:
        self.items.append((part, element))

    def wire(self, part: str, points: Sequence[tuple[float, float]], arrow: bool = True) -> None:
        d = "M" + " L".join(f"{x:g},{y:g}" for x, y in points)
        head = arrowhead(points[-2], points[-1]) if arrow else ""
        self.add(part, f'<path class="wire" d="{d}"/>{head}')

    def layer(
        self,
        part: str,
        cx: float,
        cy: float,
        label: str,
        activation: str = "",
        title: str = "",
    ) -> None:
        if len(label) > 9:  # keep boxes from overlapping; the full name stays in the title
            label = label[:8] + "…"
        small = ' class="small"' if len(label) > 4 else ""
        w = max(44, (7 if small else 9) * len(label) + 14)
        act = f' data-activation="{escape(activation)}"' if activation else ""
        self.add(
            part,
            f'<g class="layer"{act}><title>{escape(part)}: {escape(title or activation or label)}'
            f"</title>"
            f'<rect x="{cx - w / 2:g}" y="{cy - 15:g}" width="{w}" height="30" rx="4"/>'
            f'<text x="{cx:g}" y="{cy + 5:g}"{small}>{escape(label)}</text></g>',
        )

    def norm(self, part: str, cx: float, cy: float, of: str, title: str) -> None:
        """A small "LN" box: layer normalization (learned gain, optional bias) of ``of``."""
        self.extra_style = NORM_STYLE
        self.add(
            part,
            f'<g class="norm" data-norm="{escape(of)}"><title>{escape(title)}</title>'
            f'<rect x="{cx - 14:g}" y="{cy - 10:g}" width="28" height="20" rx="3"/>'
            f'<text class="small" x="{cx:g}" y="{cy + 4:g}">LN</text></g>',
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
            f"<title>{escape(self.title)}</title><style>{STYLE}{self.extra_style}</style>"
            + "".join(body)
            + "</svg>"
        )


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
