"""The registry of figures: every figure the docs show, by file name, drawn on demand.

The site's build (``docs/hooks.py``) writes each registered figure to
``docs/generated/<name>``, and the test suite checks the layout of every one of them
(legible text, no collisions, no loose wires), so a figure registered here is both published
and checked. Register a new figure next to the code that draws it::

    from lstmkit.diagrams import register_figure

    register_figure("my-cell.svg", lambda: draw(MyCell(3, 4, rng=0)))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lstmkit import activations

__all__ = ["figures", "register_figure"]

Maker = Callable[[], str]
_FIGURES: dict[str, Maker] = {}


def register_figure(name: str, make: Maker, *, replace: bool = False) -> Maker:
    """Register ``make`` (no arguments, returns an SVG document) under the file name ``name``.

    Parameters
    ----------
    name : str
        A relative file name ending in ``.svg`` (``"gru.svg"``, ``"cells/mgu.svg"``).
    make : callable
        Draws the figure when called with no arguments.
    replace : bool, default False
        Allow replacing a figure registered under the same name.

    Returns
    -------
    callable
        ``make``, so the function can be used as a decorator's body.

    Raises
    ------
    ValueError
        If ``name`` is not a relative ``.svg`` path, or is taken and ``replace`` is False.
    TypeError
        If ``make`` is not callable.
    """
    if not isinstance(name, str) or not name.endswith(".svg") or name.startswith(("/", ".")):
        raise ValueError(f"name: expected a relative file name ending in .svg, received {name!r}")
    if not callable(make):
        raise TypeError(f"make: expected a callable returning an SVG string, received {make!r}")
    if name in _FIGURES and not replace:
        raise ValueError(f"name: a figure named {name!r} is already registered")
    _FIGURES[name] = make
    return make


def figures() -> dict[str, Maker]:
    """Every registered figure by file name, plus ``activations/<name>.svg`` for every
    registered activation (a plot of it and its derivative).

    Returns
    -------
    dict of str to callable
        A copy: file name to a function of no arguments returning the SVG document.
    """
    from lstmkit.diagrams._plots import activation_plot

    out = dict(_FIGURES)
    for name in activations.available():
        out.setdefault(f"activations/{name}.svg", _bind(activation_plot, name))
    return out


def _bind(fn: Callable[[Any], str], arg: Any) -> Maker:
    return lambda: fn(arg)


# -- the figures of the docs ---------------------------------------------------------------------


def _lstm(**kw: Any) -> Any:
    from lstmkit.cells.lstm import LSTMCell

    return LSTMCell(3, 4, rng=0, **kw)


def _register_builtins() -> None:
    from lstmkit.diagrams import _cells, _figures

    draw = _cells.draw

    def cell(factory: Callable[[], Any], highlight: Any = None) -> Maker:
        return lambda: draw(factory(), highlight=highlight)

    def coupled() -> Any:
        from lstmkit.cells.coupled import CoupledLSTMCell

        return CoupledLSTMCell(3, 4, rng=0)

    def gru(**kw: Any) -> Callable[[], Any]:
        from lstmkit.cells.gru import GRUCell

        return lambda: GRUCell(3, 4, rng=0, **kw)

    def layernorm() -> Any:
        from lstmkit.cells.layernorm import LayerNormLSTMCell

        return LayerNormLSTMCell(3, 4, rng=0)

    def projection() -> Any:
        from lstmkit.cells.projection import ProjectionLSTMCell

        return ProjectionLSTMCell(3, 8, proj_size=2, rng=0)

    builtins: dict[str, Maker] = {
        "rolled.svg": _figures.rolled_rnn,
        "unrolled.svg": lambda: _figures.unrolled_rnn(4),
        "chain-rnn.svg": _figures.chain,
        "chain-lstm.svg": lambda: _figures.chain(_lstm()),
        "notation.svg": _figures.notation,
        "lstm.svg": cell(_lstm),
        "lstm-cell-state.svg": cell(_lstm, "cell_state"),
        "lstm-gate.svg": _figures.pointwise_gate,
        "lstm-forget.svg": cell(_lstm, ["forget", "concat"]),
        "lstm-input.svg": cell(_lstm, ["input", "candidate"]),
        "lstm-update.svg": cell(_lstm, "update"),
        "lstm-output.svg": cell(_lstm, ["output", "cell_activation", "output_mul", "hidden"]),
        "lstm-peephole.svg": cell(lambda: _lstm(peephole=True), "peephole"),
        "lstm-hard-sigmoid.svg": cell(
            lambda: _lstm(gate_activation="hard_sigmoid"), ["forget", "input", "output"]
        ),
        "coupled.svg": cell(coupled, "coupled"),
        "gru-olah.svg": cell(gru(update_convention="olah", reset_after=False)),
        "gru.svg": cell(gru()),
        "layernorm.svg": cell(layernorm, "layer_norm"),
        "projection.svg": cell(projection, ["projection", "hidden"]),
        "stacked.svg": lambda: _figures.stacked(2, 4),
        "bidirectional.svg": lambda: _figures.bidirectional(4, merge="concat"),
        "reversal.svg": lambda: _figures.reversal([5, 3]),
    }
    for name, make in builtins.items():
        register_figure(name, make, replace=True)
