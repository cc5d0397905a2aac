"""Which way in time each block of a layer's output features ran, for sequence-to-one heads.

A forward runner's summary of a sequence is its output at the sequence's last valid step; a
runner that reads the sequence backwards (``Recurrent(reverse=True)``, the second half of a
:class:`~lstmkit.Bidirectional`) summarises it at step 0. :class:`~lstmkit.Sequential` uses
:func:`output_directions` to give :class:`~lstmkit.layers.FinalState` the directions of the
layer before it, and to refuse a :class:`~lstmkit.layers.LastStep` that would read a backward
direction's first step.

A layout is one of

* a tuple of ``"forward"``/``"backward"``, one per equal block of the feature axis (a
  ``Bidirectional`` with ``merge="concat"`` gives ``("forward", "backward")``);
* a string saying why the directions cannot be told apart in the features (a
  ``Bidirectional`` merged by a sum, a per-step ``Dense`` over both directions);
* ``None``: unknown or not a sequence (the model's input, a user's layer, a pooled output).
"""

from __future__ import annotations

from typing import Any

from lstmkit.layers.dense import Dense
from lstmkit.runners.bidirectional import Bidirectional
from lstmkit.runners.recurrent import Recurrent
from lstmkit.runners.stacked import Stacked

__all__ = ["BACKWARD", "DIRECTIONS", "FORWARD", "Layout", "describe_layout", "output_directions"]

FORWARD = "forward"
BACKWARD = "backward"
DIRECTIONS = (FORWARD, BACKWARD)

Layout = tuple[str, ...] | str | None


def output_directions(layer: Any, incoming: Layout = None) -> Layout:
    """The layout of ``layer``'s output, given the layout of its input.

    Parameters
    ----------
    layer : runner or layer
        ``Recurrent``, ``Bidirectional``, ``Stacked``, ``Dense`` and pooling are understood; a
        layer with a method ``output_directions(incoming)`` (such as ``Sequential``) answers
        for itself; anything else gives ``None`` (unknown).
    incoming : tuple of str, str or None
        The layout of ``layer``'s input (matters for layers applied per step, like ``Dense``).

    Returns
    -------
    tuple of str, str or None
        See the module docstring.

    Examples
    --------
    >>> from lstmkit import Bidirectional, LSTMCell
    >>> output_directions(Bidirectional(LSTMCell(3, 4, rng=0), rng=1))
    ('forward', 'backward')
    >>> output_directions(Bidirectional(LSTMCell(3, 4, rng=0), merge="sum", rng=1))
    "a Bidirectional with merge='sum'"
    """
    declared = getattr(layer, "output_directions", None)
    if callable(declared):
        return declared(incoming)
    if isinstance(layer, Recurrent):
        return (BACKWARD if layer.reverse else FORWARD,)
    if isinstance(layer, Bidirectional):
        if layer.merge != "concat":
            return f"a Bidirectional with merge={layer.merge!r}"
        first = output_directions(layer.forward_layer)
        second = output_directions(layer.backward_layer)
        assert isinstance(first, tuple) and isinstance(second, tuple)
        return first + second
    if isinstance(layer, Stacked):
        return output_directions(layer.layers[-1])
    if isinstance(layer, Dense):
        if isinstance(incoming, tuple) and len(incoming) > 1:
            return "a Dense layer applied per step to outputs of both directions"
        return incoming  # one direction (or a reason, or unknown) passes through a per-step map
    return None  # pooling, a user's layer or runner: no time axis, or unknown


def describe_layout(layout: Layout) -> str:
    """Words for a layout, for error messages."""
    if isinstance(layout, str):
        return layout
    if layout is None:
        return "an unknown layout"
    return "a layer whose outputs run " + " + ".join(layout) + " in time"
