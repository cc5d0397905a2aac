"""Layout checks of a figure as a reader sees it on a docs page.

:func:`layout_problems` reads a figure back (:func:`lstmkit.diagrams._geometry.measure`) and
reports the smallest text at its rendered size, text that collides with text, a node's edge or a
line, text cut off by the figure's border, wire ends that lead nowhere and wires that cross
without a hop.
"""

from __future__ import annotations

import math

from lstmkit.diagrams._geometry import Layout, Point, Wire, along, measure

__all__ = ["BORDER_PX", "COLUMN_PX", "MIN_TEXT_PX", "TOUCH_PX", "layout_problems"]

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
            if any(_inside(p, a, pad) for p in along(list(w.points), 1.0)):
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
