"""SVG diagrams of cells and runners, drawn from the objects themselves.

The pictures follow the visual grammar of Christopher Olah's "Understanding
LSTM Networks": yellow boxes are learned layers (a gate: affine map plus
activation), pink circles are pointwise operations, arrows carry vectors,
merging lines concatenate and forking lines copy. :func:`draw` looks at a cell
(its gates, their activations and peepholes, whether it is an LSTM, a coupled
LSTM, a GRU, an Elman cell or a minimal gated unit, whether it is
layer-normalized or projects its hidden state) and draws exactly that cell, so a
swapped activation, a peephole, a normalization ("LN", blue) or a projection (``W_hr``) shows up in the figure. The other
functions draw the fixed figures of the docs: rolled and unrolled networks, the
notation, a gate on its own, stacking, bidirectional runs and variable-length reversal, and
:func:`activation_plot` plots an activation with its derivative. :func:`figures` lists every
figure the docs show by file name (the site's build writes them all, and the test suite checks
that each is legible and tidy); :func:`register_figure` adds one.

Everything is plain string building; the output is a standalone SVG document
you can write to a ``.svg`` file or embed in HTML.

Examples
--------
>>> from lstmkit import LSTMCell
>>> from lstmkit.diagrams import draw
>>> svg = draw(LSTMCell(3, 4, peephole=["forget"], rng=0), highlight="forget")
>>> svg.startswith("<svg"), 'data-part="peephole-forget"' in svg, 'data-part="peephole-input"' in svg
(True, True, False)
"""

from __future__ import annotations

from lstmkit.diagrams._conv import conv_lstm
from lstmkit.diagrams._figures import (
    bidirectional,
    chain,
    notation,
    pointwise_gate,
    reversal,
    rolled_rnn,
    stacked,
    unrolled_rnn,
)
from lstmkit.diagrams._gallery import _register_builtins, figures, register_figure
from lstmkit.diagrams._plots import activation_plot
from lstmkit.diagrams._simple_cells import draw, parts  # Elman and MGU, then _cells

# In the order of the reference page: the cell figure first, then the fixed figures.
__all__ = [
    "parts",
    "draw",
    "rolled_rnn",
    "unrolled_rnn",
    "chain",
    "notation",
    "pointwise_gate",
    "stacked",
    "bidirectional",
    "reversal",
    "activation_plot",
    "figures",
    "register_figure",
]
__all__ += ["conv_lstm"]

_register_builtins()
