"""What a figure draws, measured: text boxes, node outlines and wires, read back from the SVG.

Every figure of :mod:`lstmkit.diagrams` is a small SVG document built from a few element
kinds (``<text>``, ``<rect>``, ``<circle>``, ``<ellipse>``, ``<path class="wire">``, arrowhead
``<polygon>``, plot ``<polyline>`` and ``<line>``). :func:`measure` reads such a document back
into plain geometry (text boxes from the font's advance widths, node outlines, wire polylines),
and :func:`layout_problems` checks it the way a reader sees it on a page: the smallest text at
its rendered size, text that collides with text, a node's edge or a line, text cut off by the
figure's border, and wire ends that lead nowhere. :meth:`Canvas.layout` applies the same
measurement to what a canvas has drawn.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import attrs

__all__ = ["Layout", "Shape", "TextBox", "Wire", "layout_problems", "measure"]

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
            yield from _along(corners, step)
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


def _along(points: list[Point], step: float) -> Iterator[Point]:
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


# -- the checks -------------------------------------------------------------------------------------

COLUMN_PX = 670.0  # the docs' text column at a 1280 px wide window
MIN_TEXT_PX = 10.0
BORDER_PX = 16.0  # a wire ending this close to the figure's edge leaves the figure
TOUCH_PX = 2.5  # a wire end this close to a node's edge or another wire touches it


def _inside(p: Point, box: tuple[float, float, float, float], pad: float) -> bool:
    x, y = p
    x0, y0, x1, y1 = box
    return x0 - pad < x < x1 + pad and y0 - pad < y < y1 + pad


def _segment_distance(p: Point, a: Point, b: Point) -> float:
    (x, y), (ax, ay), (bx, by) = p, a, b
    dx, dy = bx - ax, by - ay
    n2 = dx * dx + dy * dy
    t = 0.0 if n2 == 0 else max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / n2))
    return math.hypot(x - ax - t * dx, y - ay - t * dy)


def layout_problems(
    svg: str | Layout,
    column_px: float = COLUMN_PX,
    min_text_px: float = MIN_TEXT_PX,
    display_px: float | None = None,
) -> list[str]:
    """What a reader of the page would trip over in a figure; an empty list when nothing.

    Parameters
    ----------
    svg : str or Layout
        The figure.
    column_px : float, default 670
        Width of the page column the figure is shown in; a wider figure is scaled down to it.
    min_text_px : float, default 10
        Smallest legible text height (font size) as rendered.
    display_px : float, optional
        Width the page shows the figure at, when it sets one; else its own width.

    Returns
    -------
    list of str
        One sentence per problem: text below ``min_text_px`` as rendered; text overlapping
        other text, a node's edge or a line; text cut off by the border; a wire end touching
        neither a node, another wire nor the figure's border.
    """
    lay = measure(svg) if isinstance(svg, str) else svg
    shown = lay.width if display_px is None else display_px
    scale = min(1.0, column_px / lay.width, shown / lay.width)
    out: list[str] = []
    for t in lay.texts:
        if t.size * scale < min_text_px - 1e-6:
            out.append(
                f"text {t.text!r} is {t.size * scale:.1f} px as shown "
                f"({t.size:g} px scaled by {scale:.2f}), under {min_text_px:g} px"
            )
        if t.x0 < -0.5 or t.y0 < -0.5 or t.x1 > lay.width + 0.5 or t.y1 > lay.height + 0.5:
            out.append(f"text {t.text!r} is cut off by the figure's border")
    boxes = [(t, (t.x0, t.y0, t.x1, t.y1)) for t in lay.texts]
    for i, (t, a) in enumerate(boxes):
        for u, b in boxes[i + 1 :]:
            if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                out.append(f"text {t.text!r} overlaps text {u.text!r}")
        for shape in lay.shapes:
            if any(_inside(p, a, 1.0) for p in shape.outline()):
                out.append(f"text {t.text!r} overlaps the edge of a {shape.kind} ({shape.part})")
        for w in lay.wires:
            pad = 2.0 if w.kind != "stroke" else 1.0
            if any(_inside(p, a, pad) for p in _along(list(w.points), 1.0)):
                what = {"wire": "a wire", "arrow": "an arrowhead"}.get(w.kind, "a line")
                out.append(f"text {t.text!r} touches {what} ({w.part})")
    lines = [w for w in lay.wires if w.kind == "wire"]
    for w in lines:
        for end in (w.points[0], w.points[-1]):
            x, y = end
            if min(x, y, lay.width - x, lay.height - y) <= BORDER_PX:
                continue
            if any(s.distance_to_edge(end) <= TOUCH_PX for s in lay.shapes):
                continue
            if any(
                _segment_distance(end, a, b) <= TOUCH_PX
                for other in lines
                if other is not w
                for a, b in zip(other.points, other.points[1:])
            ):
                continue
            out.append(f"wire ({w.part}) ends at ({x:g}, {y:g}), touching no node, wire or border")
    out.extend(_crossings(lines))
    return out


def _crossing(a: Point, b: Point, c: Point, d: Point) -> Point | None:
    """Where segments ``ab`` and ``cd`` cross, away from all four ends; None if they do not."""
    (ax, ay), (bx, by), (cx, cy), (dx, dy) = a, b, c, d
    den = (bx - ax) * (dy - cy) - (by - ay) * (dx - cx)
    if abs(den) < 1e-9:
        return None
    t = ((cx - ax) * (dy - cy) - (cy - ay) * (dx - cx)) / den
    u = ((cx - ax) * (by - ay) - (cy - ay) * (bx - ax)) / den
    la, lc = math.hypot(bx - ax, by - ay), math.hypot(dx - cx, dy - cy)
    margin = TOUCH_PX + 0.5
    if margin < t * la < la - margin and margin < u * lc < lc - margin:
        return ax + t * (bx - ax), ay + t * (by - ay)
    return None


def _crossings(lines: list[Wire]) -> list[str]:
    """Wires that cross each other with neither jumping over the other."""
    out = []
    for i, w in enumerate(lines):
        for v in lines[i + 1 :]:
            for a, b in zip(w.points, w.points[1:]):
                for c, d in zip(v.points, v.points[1:]):
                    p = _crossing(a, b, c, d)
                    if p is None:
                        continue
                    hopped = any(math.dist(p, h) <= TOUCH_PX for h in w.hops + v.hops)
                    if not hopped:
                        out.append(
                            f"wires ({w.part}) and ({v.part}) cross at "
                            f"({p[0]:g}, {p[1]:g}) without a hop"
                        )
    return out
