"""Regularization as cell wrappers: variational (recurrent) dropout and zoneout.

Both wrap any cell and keep the cell contract, so every runner runs them
unchanged. Runners call ``step`` in inference and ``step_train`` in a training
forward pass, passing the call's ``training`` flag and ``rng`` in a
:class:`~lstmkit.protocols.StepContext` (both set ``takes_context = True`` and pass
the context on to a wrapped cell that takes one). Noise is applied only by
``step_train`` with ``context.training`` true, drawn from ``context.rng`` when given
and from the wrapper's own ``rng`` otherwise; with ``training=False`` ``step_train``
computes what ``step`` computes (the plain cell or, for zoneout with
``inference="expectation"``, its expected value) and its cache still serves an exact
``step_backward``.

* :class:`VariationalDropout` (:mod:`lstmkit.regularization.dropout`): the same dropout
  masks at every step of a sequence, kept in the state.
* :class:`Zoneout` (:mod:`lstmkit.regularization.zoneout`): units keep their previous
  value at random, afresh at every step.

Every name is importable from ``lstmkit.regularization``.
"""

from lstmkit.regularization.dropout import (
    VariationalDropout,
    VariationalStepCache,
    masked_state_class,
)
from lstmkit.regularization.zoneout import Zoneout, ZoneoutStepCache

__all__ = [
    "VariationalDropout",
    "VariationalStepCache",
    "Zoneout",
    "ZoneoutStepCache",
    "masked_state_class",
]
