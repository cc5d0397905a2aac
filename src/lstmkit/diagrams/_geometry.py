"""What a figure draws, measured: text boxes, node outlines and wires, read back from the SVG.

Every figure of :mod:`lstmkit.diagrams` is a small SVG document built from a few element
kinds (``<text>``, ``<rect>``, ``<circle>``, ``<ellipse>``, ``<path class="wire">``, arrowhead
``<polygon>``, plot ``<polyline>`` and ``<line>``). :func:`measure` reads such a document back
into plain geometry (text boxes from the font's advance widths, node outlines, wire polylines),
which :mod:`lstmkit.diagrams._checks` checks the way a reader sees the figure on a page.
:meth:`Canvas.layout` applies the same measurement to what a canvas has drawn.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import attrs

__all__ = ["Layout", "Shape", "TextBox", "Wire", "measure", "text_width"]

SVG_NS = "{http://www.w3.org/2000/svg}"
Point = tuple[float, float]

# Advance widths of Helvetica/Arial (and their oblique forms) in 1/1000 em, the metrics of the
# fonts the figures ask for; characters not listed count as 0.6 em, wide symbols as 1 em.
_WIDTHS = dict(
    zip(
        " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`"
        "abcdefghijklmnopqrstuvwxyz{|}~",
        [278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278]
        + [556] * 10
        + [278, 278, 584, 584, 584, 556, 1015]
        + [667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778]
        + [667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611]
        + [278, 278, 278, 469, 556, 333]
        + [556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556]
        + [556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500]
        + [334, 260, 334, 584],
        strict=True,
    )
)
_WIDTHS.update({"−": 584, "×": 584, "·": 278, "σ": 600, "⊙": 800, "⊕": 800, "…": 1000})
_WIDE = set("→←↔")
ASCENT, DESCENT = 0.76, 0.22  # of the font size, above and below the baseline


def text_width(text: str, size: float) -> float:
    """Advance width of ``text`` at ``size`` px in Helvetica/Arial."""
    return sum(1000 if c in _WIDE else _WIDTHS.get(c, 600) for c in text) * size / 1000


@attrs.frozen
class TextBox:
    """A text's ink box in figure units and its font size in figure px."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    size: float
    part: str = ""


@attrs.frozen
class Shape:
    """A node outline: ``kind`` is ``"rect"`` (x, y, width, height) or ``"ellipse"`` (cx, cy, rx, ry)."""

    kind: str
    a: float
    b: float
    c: float
    d: float
    part: str = ""

    def outline(self, step: float = 1.0) -> Iterator[Point]:
        """Points along the edge, about ``step`` apart."""
        if self.kind == "rect":
            x, y, w, h = self.a, self.b, self.c, self.d
            corners = [(x, y), (x + w, y), (x + w, y + h), (x, y + h), (x, y)]
            yield from along(corners, step)
        else:
            cx, cy, rx, ry = self.a, self.b, self.c, self.d
            n = max(16, int(2 * math.pi * max(rx, ry) / step))
            for k in range(n):
                t = 2 * math.pi * k / n
                yield cx + rx * math.cos(t), cy + ry * math.sin(t)

    def distance_to_edge(self, p: Point) -> float:
        x, y = p
        if self.kind == "rect":
            x0, y0, x1, y1 = self.a, self.b, self.a + self.c, self.b + self.d
            if x0 <= x <= x1 and y0 <= y <= y1:
                return min(x - x0, x1 - x, y - y0, y1 - y)
            dx = max(x0 - x, 0.0, x - x1)
            dy = max(y0 - y, 0.0, y - y1)
            return math.hypot(dx, dy)
        cx, cy, rx, ry = self.a, self.b, self.c, self.d
        r = math.hypot((x - cx) / rx, (y - cy) / ry)
        return abs(r - 1) * min(rx, ry)

    def bbox(self) -> tuple[float, float, float, float]:
        if self.kind == "rect":
            return self.a, self.b, self.a + self.c, self.b + self.d
        return self.a - self.c, self.b - self.d, self.a + self.c, self.b + self.d


@attrs.frozen
class Wire:
    """A drawn line: a wire (``kind="wire"``, its ends must lead somewhere; ``hops`` are where
    it jumps over another wire), a free-standing wire (``"free"``: a legend's symbol), an
    arrowhead's outline (``"arrow"``) or any other stroke (``"stroke"``: axes, plot curves)."""

    points: tuple[Point, ...]
    kind: str = "wire"
    part: str = ""
    hops: tuple[Point, ...] = ()


@attrs.frozen
class Layout:
    """Everything a figure draws, in its own units (``width`` by ``height``)."""

    width: float
    height: float
    texts: tuple[TextBox, ...]
    shapes: tuple[Shape, ...]
    wires: tuple[Wire, ...]


def along(points: list[Point], step: float) -> Iterator[Point]:
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        n = max(1, int(math.hypot(x1 - x0, y1 - y0) / step))
        for k in range(n + 1):
            yield x0 + (x1 - x0) * k / n, y0 + (y1 - y0) * k / n


# -- reading the SVG back --------------------------------------------------------------------------


def _number(value: str | None, default: float = 0.0) -> float:
    if value is None:
        return default
    m = re.match(r"\s*(-?[\d.]+(?:e-?\d+)?)", value)
    return float(m.group(1)) if m else default


def _style_sizes(root: ET.Element) -> tuple[dict[str, float], str]:
    """Font size per text class (``""``: plain text) and the default anchor, from ``<style>``."""
    css = "".join("".join(s.itertext()) for s in root.iter(SVG_NS + "style"))
    sizes: dict[str, float] = {}
    anchor = "start"
    for selector, body in re.findall(r"([^{}]+)\{([^}]*)\}", css):
        for sel in selector.split(","):
            sel = sel.strip()
            m = re.fullmatch(r"(?:text|tspan)?(?:\.([\w-]+))?", sel)
            if not m or (not sel.startswith(("text", "tspan")) and not m.group(1)):
                continue
            if not m:
                continue
            size = re.search(r"font-size:\s*([\d.]+)px", body)
            if size:
                sizes[m.group(1) or ""] = float(size.group(1))
            a = re.search(r"text-anchor:\s*(\w+)", body)
            if a and not m.group(1):
                anchor = a.group(1)
    return sizes, anchor


def _transform(attr: str | None) -> tuple[float, float, float]:
    """``(dx, dy, scale)`` of a ``translate(...) scale(...)`` attribute (the only ones used)."""
    dx = dy = 0.0
    s = 1.0
    if attr:
        t = re.search(r"translate\(\s*(-?[\d.]+)[ ,]+(-?[\d.]+)\s*\)", attr)
        if t:
            dx, dy = float(t.group(1)), float(t.group(2))
        k = re.search(r"scale\(\s*([\d.]+)\s*\)", attr)
        if k:
            s = float(k.group(1))
    return dx, dy, s


def _path_points(d: str, hops: list[Point] | None = None) -> list[list[Point]]:
    """Subpaths of an ``M``/``L``/``A`` path (an arc counts as a straight hop to its end,
    and the middle of its chord is appended to ``hops``)."""
    subpaths: list[list[Point]] = []
    tokens = re.findall(r"[MLAmla]|-?[\d.]+(?:e-?\d+)?", d)
    k = 0
    cmd = "M"
    while k < len(tokens):
        if tokens[k] in "MLAmla":
            cmd = tokens[k]
            k += 1
            continue
        if cmd in "Aa":
            x, y = float(tokens[k + 5]), float(tokens[k + 6])
            k += 7
            if hops is not None and subpaths:
                px, py = subpaths[-1][-1]
                hops.append(((px + x) / 2, (py + y) / 2))
        else:
            x, y = float(tokens[k]), float(tokens[k + 1])
            k += 2
        if cmd in "ml":
            px, py = subpaths[-1][-1] if subpaths else (0.0, 0.0)
            x, y = px + x, py + y
        if cmd in "Mm":
            subpaths.append([(x, y)])
            cmd = "L" if cmd == "M" else "l"
        else:
            subpaths[-1].append((x, y))
    return subpaths


def measure(svg: str) -> Layout:
    """Read an SVG document back into its text boxes, node outlines and lines.

    Parameters
    ----------
    svg : str
        A document as drawn by :mod:`lstmkit.diagrams` (or any SVG made of the same element
        kinds, with ``translate``/``scale`` transforms only).

    Returns
    -------
    Layout
    """
    root = ET.fromstring(svg)
    view = root.get("viewBox")
    if view:
        _, _, width, height = (float(v) for v in view.replace(",", " ").split())
    else:
        width, height = _number(root.get("width")), _number(root.get("height"))
    sizes, default_anchor = _style_sizes(root)
    texts: list[TextBox] = []
    shapes: list[Shape] = []
    wires: list[Wire] = []

    def walk(el: ET.Element, dx: float, dy: float, s: float, part: str) -> None:
        tag = el.tag.removeprefix(SVG_NS)
        tx, ty, ts = _transform(el.get("transform"))
        dx, dy, s = dx + tx * s, dy + ty * s, s * ts
        part = el.get("data-part", part)

        def pt(x: float, y: float) -> Point:
            return dx + s * x, dy + s * y

        classes = (el.get("class") or "").split()
        if tag == "text":
            texts.extend(_text_boxes(el, sizes, default_anchor, pt, s, part))
            return
        if tag in ("title", "style", "desc"):
            return
        if tag == "rect" and el.get("width") not in (None, "100%"):
            x, y = pt(_number(el.get("x")), _number(el.get("y")))
            shapes.append(
                Shape(
                    "rect", x, y, s * _number(el.get("width")), s * _number(el.get("height")), part
                )
            )
        elif tag in ("circle", "ellipse"):
            cx, cy = pt(_number(el.get("cx")), _number(el.get("cy")))
            rx = _number(el.get("r") or el.get("rx"))
            ry = _number(el.get("r") or el.get("ry"))
            shapes.append(Shape("ellipse", cx, cy, s * rx, s * ry, part))
        elif tag == "path":
            kind = "wire" if "wire" in classes else "stroke"
            kind = "free" if "free" in classes else kind
            hops: list[Point] = []
            for sub in _path_points(el.get("d", ""), hops):
                if len(sub) > 1:
                    wires.append(
                        Wire(
                            tuple(pt(x, y) for x, y in sub),
                            kind,
                            part,
                            tuple(pt(x, y) for x, y in hops),
                        )
                    )
        elif tag in ("polygon", "polyline"):
            nums = [float(v) for v in re.findall(r"-?[\d.]+", el.get("points", ""))]
            pts = [pt(a, b) for a, b in zip(nums[::2], nums[1::2])]
            if tag == "polygon":
                pts.append(pts[0])
            wires.append(Wire(tuple(pts), "arrow" if tag == "polygon" else "stroke", part))
        elif tag == "line":
            a = pt(_number(el.get("x1")), _number(el.get("y1")))
            b = pt(_number(el.get("x2")), _number(el.get("y2")))
            wires.append(Wire((a, b), "stroke", part))
        for child in el:
            walk(child, dx, dy, s, part)

    walk(root, 0.0, 0.0, 1.0, "")
    return Layout(width, height, tuple(texts), tuple(shapes), tuple(wires))


def _text_boxes(
    el: ET.Element, sizes: dict[str, float], default_anchor: str, pt: object, s: float, part: str
) -> list[TextBox]:
    """One box per ``<text>``: the runs of its ``<tspan>`` children laid end to end."""
    assert callable(pt)

    def size_of(node: ET.Element, inherited: float) -> float:
        style = node.get("style") or ""
        m = re.search(r"font-size:\s*([\d.]+)px", style)
        if m:
            return float(m.group(1))
        if node.get("font-size"):
            return _number(node.get("font-size"))
        for cls in (node.get("class") or "").split():
            if cls in sizes:
                return sizes[cls]
        return inherited

    size = size_of(el, sizes.get("", 16.0))
    anchor = el.get("text-anchor") or default_anchor
    m = re.search(r"text-anchor:\s*(\w+)", el.get("style") or "")
    anchor = m.group(1) if m else anchor
    runs: list[tuple[str, float, float]] = []  # (text, size, baseline shift)
    if el.text:
        runs.append((el.text, size, 0.0))
    shift = 0.0
    for span in el:
        span_size = size_of(span, size)
        shift += _number(span.get("dy"))
        if span.text:
            runs.append((span.text, span_size, shift))
        if span.tail:
            runs.append((span.tail, size, shift))
    label = "".join(r[0] for r in runs)
    if not label.strip():
        return []
    width = sum(text_width(t, z) for t, z, _ in runs)
    x, y = _number(el.get("x")), _number(el.get("y"))
    x0 = {"middle": x - width / 2, "end": x - width}.get(anchor, x)
    top = min(y + sh - ASCENT * z for _, z, sh in runs)
    bottom = max(y + sh + DESCENT * z for _, z, sh in runs)
    (ax, ay), (bx, by) = pt(x0, top), pt(x0 + width, bottom)
    return [TextBox(label, ax, ay, bx, by, s * min(z for _, z, _ in runs), part)]
