"""Every figure the package can draw is legible and tidy on the docs page.

The figures are discovered, not listed: the figure registry (``diagrams.figures()``), what the
docs build writes (``docs/hooks.py``), every public figure function with its defaults, and
``diagrams.draw`` of every registered component class the diagrams know how to draw. Each is read
back from its SVG (:mod:`lstmkit.diagrams._geometry`) and checked as a reader at a 1280 px window
sees it: the docs column is about 670 px wide and a wider figure is scaled down to it.
"""

from __future__ import annotations

import importlib.util
import inspect
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from lstmkit import GRUCell, config, diagrams
from lstmkit.diagrams._checks import COLUMN_PX, layout_problems
from lstmkit.diagrams._geometry import Layout, measure

ROOT = Path(__file__).resolve().parent.parent
SVG = "{http://www.w3.org/2000/svg}"
NOT_FIGURES = {"draw", "parts", "figures", "register_figure", "activation_plot"}


def _hooks():
    spec = importlib.util.spec_from_file_location("lstmkit_docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _registered_cells():
    """``(name, cell)`` for every registered component that diagrams.draw can draw."""
    out = []
    for name in config.registered():
        cls = config._BY_NAME[name].cls
        cell = None
        for extra in ({}, {"kernel_size": 3}, {"proj_size": 2}):
            try:
                cell = cls(3, 4, rng=0, **extra)
                break
            except Exception:  # not a cell taking (input_size, hidden_size, ...)
                continue
        if cell is None:
            continue
        try:
            diagrams.parts(cell)
        except TypeError:  # a component the diagrams do not draw (a runner, a layer)
            continue
        out.append((name, cell))
    return out


def _figure_functions():
    out = []
    for name in diagrams.__all__:
        fn = getattr(diagrams, name)
        if name in NOT_FIGURES or not callable(fn):
            continue
        params = inspect.signature(fn).parameters.values()
        if all(p.default is not p.empty for p in params):
            out.append(name)
    return out


def test_every_docs_figure_is_legible_and_tidy(tmp_path):
    hooks = _hooks()
    written = [p for p in hooks.generate_figures(tmp_path) if p.suffix == ".svg"]
    registered = set(diagrams.figures()) | set(hooks.docs_figures())
    assert {p.relative_to(tmp_path).as_posix() for p in written} == registered
    assert len(written) >= 20
    report = {
        p.relative_to(tmp_path).as_posix(): layout_problems(p.read_text(encoding="utf-8"))
        for p in written
    }
    assert {name: probs for name, probs in report.items() if probs} == {}


@pytest.mark.parametrize("name", sorted(diagrams.figures()))
def test_registered_figure(name):
    assert layout_problems(diagrams.figures()[name]()) == []


@pytest.mark.parametrize("name", _figure_functions())
def test_figure_function_with_its_defaults(name):
    assert layout_problems(getattr(diagrams, name)()) == []


@pytest.mark.parametrize("name,cell", _registered_cells(), ids=lambda v: str(v)[:20])
def test_every_drawable_registered_cell(name, cell):
    assert layout_problems(diagrams.draw(cell)) == []
    assert layout_problems(diagrams.draw(cell, highlight=diagrams.parts(cell)[0])) == []
    try:
        chain = diagrams.chain(cell)
    except TypeError:  # drawn by a module that has not registered with CANVAS_PROVIDERS
        return
    assert layout_problems(chain) == []


@pytest.mark.parametrize("merge", ["concat", "sum", "mean", "mul", "none"])
def test_bidirectional_merges(merge):
    svg = diagrams.bidirectional(3, merge=merge)
    assert layout_problems(svg) == []
    ops = {g for g in ("+", "mean", "×") if f'data-op="{g}"' in svg}
    assert ops == ({"sum": {"+"}, "mean": {"mean"}, "mul": {"×"}}.get(merge, set()))
    assert "⊕" not in svg
    with pytest.raises(ValueError, match="merge"):
        diagrams.bidirectional(3, merge="avg")


def test_chain_text_is_legible_at_the_column_width():
    for svg in (diagrams.chain(), diagrams.chain(diagrams_lstm())):
        lay = measure(svg)
        scale = min(1.0, COLUMN_PX / lay.width)
        assert min(t.size for t in lay.texts) * scale >= 10
        # The neighbouring modules are full boxes "A", and the state lines reach them.
        assert sum(1 for t in lay.texts if t.text == "A") == 2
        assert layout_problems(lay) == []


def diagrams_lstm():
    from lstmkit import LSTMCell

    return LSTMCell(3, 4, rng=0)


# -- the GRU's reset branch ----------------------------------------------------------------------


def _source(lay: Layout, wire, seen=()):
    """Where the line through ``wire`` comes from, following junctions backwards:
    ``"border"``, ``"gate"`` (a layer box) or ``"op"`` (a pointwise operation)."""
    start = wire.points[0]
    x, y = start
    if min(x, y, lay.width - x, lay.height - y) <= 16:
        return "border"
    for s in lay.shapes:
        if s.distance_to_edge(start) <= 2.5 and s.part != "module":
            return "op" if s.kind == "ellipse" else "gate"
    seen = (*seen, wire)
    for w in lay.wires:
        if w.kind != "wire" or w in seen:
            continue
        pts = w.points
        if any(_dist_segment(start, a, b) <= 1.0 for a, b in zip(pts, pts[1:])):
            return _source(lay, w, seen)
    return "nothing"


def _dist_segment(p, a, b):
    (x, y), (ax, ay), (bx, by) = p, a, b
    dx, dy = bx - ax, by - ay
    n2 = dx * dx + dy * dy or 1e-12
    t = max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / n2))
    return math.hypot(x - ax - t * dx, y - ay - t * dy)


def _reset_cells():
    cells = [
        GRUCell(3, 4, update_convention=convention, reset_after=after, rng=0)
        for convention in ("olah", "pytorch")
        for after in (False, True)
    ]
    # Any other registered cell drawn with a reset product (a minimal gated unit, say).
    cells += [c for _, c in _registered_cells() if "reset" in diagrams.parts(c)]
    return cells


@pytest.mark.parametrize("cell", _reset_cells(), ids=lambda c: type(c).__name__)
def test_reset_multiplies_h_before_any_product(cell):
    lay = measure(diagrams.draw(cell))
    (reset_mul,) = [s for s in lay.shapes if s.part == "reset" and s.kind == "ellipse"]
    # The two wires ending on the reset product: r from its gate, and h(t-1).
    ends = [
        w for w in lay.wires if w.kind == "wire" and reset_mul.distance_to_edge(w.points[-1]) <= 2.5
    ]
    assert len(ends) == 2
    sources = [_source(lay, w) for w in ends]
    # One input comes from a gate; h(t-1) is traced back to the border it enters at, through
    # no pointwise operation.
    assert sorted(sources) == ["border", "gate"]


@pytest.mark.parametrize("reset_after", [False, True])
def test_gru_labels(reset_after):
    lay = measure(diagrams.draw(GRUCell(3, 4, reset_after=reset_after, rng=0)))
    labels = {t.text for t in lay.texts}
    assert ("r ⊙ (hU + b)" if reset_after else "r ⊙ h") in labels and "1 − z" in labels


# -- the checker itself catches each kind of problem -------------------------------------------


def _svg(body: str, width: int = 300, height: int = 200) -> str:
    from lstmkit.diagrams._canvas import STYLE

    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}"><style>{STYLE}</style>{body}</svg>'
    )


def test_checker_flags_small_text_after_scaling():
    ok = _svg('<text x="150" y="100">label</text>', width=670)
    assert layout_problems(ok) == []
    shrunk = _svg('<text x="150" y="100">label</text>', width=1340)  # shown at half size
    assert any("under 10 px" in p for p in layout_problems(shrunk))


def test_checker_flags_overlaps():
    two = _svg('<text x="100" y="100">h(t-1)</text><text x="110" y="102">x(t)</text>')
    assert any("overlaps text" in p for p in layout_problems(two))
    edge = _svg(
        '<rect x="40" y="60" width="60" height="40"/><text x="100" y="85">long label</text>'
    )
    assert any("edge of a rect" in p for p in layout_problems(edge))
    on_wire = _svg('<path class="wire" d="M0,95 L300,95"/><text x="150" y="100">m</text>')
    assert any("touches a wire" in p for p in layout_problems(on_wire))
    cut = _svg('<text x="5" y="100">c(t-1)</text>')
    assert any("cut off" in p for p in layout_problems(cut))


def test_checker_flags_loose_wires_and_crossings():
    loose = _svg('<path class="wire" d="M0,100 L150,100"/>')
    assert any("touching no node" in p for p in layout_problems(loose))
    node = _svg('<path class="wire" d="M0,100 L137,100"/><circle cx="150" cy="100" r="13"/>')
    assert layout_problems(node) == []
    cross = _svg('<path class="wire" d="M0,100 L300,100"/><path class="wire" d="M150,0 L150,200"/>')
    assert any("without a hop" in p for p in layout_problems(cross))
    # The canvas draws the hop itself when a wire crosses an earlier one.
    from lstmkit.diagrams._canvas import Canvas

    cv = Canvas(300, 200, "hop")
    cv.wire("a", [(0, 100), (300, 100)])
    cv.wire("b", [(150, 0), (150, 200)])
    assert layout_problems(cv.render()) == []
    assert len(cv.layout().wires) >= 2


def test_register_figure_checks_its_arguments():
    with pytest.raises(ValueError, match="name"):
        diagrams.register_figure("figure.png", diagrams.notation)
    with pytest.raises(TypeError, match="make"):
        diagrams.register_figure("x.svg", "not callable")
    with pytest.raises(ValueError, match="already registered"):
        diagrams.register_figure("gru.svg", diagrams.notation)


def test_activation_plot_of_a_users_activation():
    from lstmkit import activations

    cube_root = activations.Activation(
        "cube_root", lambda z: np.cbrt(z), lambda z: 1 / (3 * np.cbrt(z) ** 2 + 1e-12)
    )
    svg = diagrams.activation_plot(cube_root)
    assert layout_problems(svg) == []
    texts = [t.text for t in measure(svg).texts]
    assert "cube_root" in texts
    assert {"−4", "−2", "0", "2", "4"} <= set(texts)  # x ticks
    # The curve is the function itself: its points lie on cbrt(z).
    root = ET.fromstring(svg)
    (curve, _) = [p for p in root.iter(SVG + "polyline")]
    xy = [tuple(map(float, p.split(","))) for p in curve.get("points").split()]
    assert len(xy) == 401 and xy[0][1] > xy[-1][1]  # rising: y goes up the page
    with pytest.raises(ValueError, match="hi"):
        diagrams.activation_plot(cube_root, lo=1.0, hi=1.0)
