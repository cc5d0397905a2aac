"""Feed-forward layers and :class:`Sequential`, which chains runners and heads.

A model for the adding problem reads like the maths::

    model = Sequential(Recurrent(LSTMCell(2, 32)), LastStep(), Dense(32, 1))
    y = model(x, lengths=lengths)                       # inference, (batch, 1)
    y, cache = model.forward(x, lengths=lengths)        # training
    dx, d_init = model.backward(cache, dy)              # accumulates parameter gradients

Feed-forward layers (:class:`Dense` in :mod:`lstmkit.layers.dense`; :class:`LastStep` and
:class:`MeanPool` in :mod:`lstmkit.layers.pooling`; :class:`FinalState`, each direction's
final output, in :mod:`lstmkit.layers.final_state`) share a small contract (the
:class:`~lstmkit.protocols.Layer` protocol): ``layer(x, lengths=None) -> y``,
``layer.forward(x, lengths=None, training=True) -> (y, cache)`` and
``layer.backward(cache, dy) -> dx``. :class:`Sequential` is in
:mod:`lstmkit.layers.sequential`; every name is importable from ``lstmkit.layers``.

Examples
--------
>>> import numpy as np
>>> from lstmkit import Dense, LSTMCell, Recurrent, Sequential
>>> from lstmkit.layers import LastStep
>>> model = Sequential(Recurrent(LSTMCell(2, 4, rng=0)), LastStep(), Dense(4, 1, rng=1))
>>> model(np.ones((3, 5, 2)), lengths=[5, 2, 1]).shape
(3, 1)
"""

from lstmkit.layers.dense import Dense, DenseCache
from lstmkit.layers.final_state import FinalState
from lstmkit.layers.pooling import LastStep, MeanPool
from lstmkit.layers.sequential import Sequential, SequentialCache

__all__ = [
    "Dense",
    "DenseCache",
    "FinalState",
    "LastStep",
    "MeanPool",
    "Sequential",
    "SequentialCache",
]
