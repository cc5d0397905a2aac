"""PyTorch's ``nn.RNN`` / ``nn.RNNCell`` layout for :class:`~lstmkit.SimpleRNNCell` (used by
:mod:`lstmkit.interop.torch`).

PyTorch computes ``h' = nonlinearity(W_ih x + b_ih + W_hh h + b_hh)`` with ``weight_ih (H, I)``,
``weight_hh (H, H)`` and ``nonlinearity`` ``"tanh"`` or ``"relu"``. Transposed, they are the
cell's one gate's ``W`` and ``U``; lstmkit keeps the sum of the two biases as ``b`` (exported as
``bias_ih``, with zeros in ``bias_hh``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lstmkit import activations
from lstmkit.cells.simple import SimpleRNNCell
from lstmkit.gate import Gate

__all__ = ["NONLINEARITIES", "rnn_cell", "rnn_problems"]

#: PyTorch's ``nonlinearity`` names and the lstmkit activations they are.
NONLINEARITIES = {"tanh": activations.tanh, "relu": activations.relu}


def rnn_cell(
    w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any, nonlinearity: str, dt: np.dtype[Any]
) -> SimpleRNNCell:
    """A :class:`~lstmkit.SimpleRNNCell` holding one direction of one layer's weights."""
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(
            f"module: nonlinearity {nonlinearity!r} is not one of {sorted(NONLINEARITIES)}"
        )
    H, n_in = w_ih.shape
    cell = SimpleRNNCell(n_in, H, activation=NONLINEARITIES[nonlinearity], dtype=dt, rng=0)
    zeros = np.zeros(H, dt)
    bias = (zeros if b_ih is None else b_ih) + (zeros if b_hh is None else b_hh)
    cell.candidate.set_weights(
        W=np.ascontiguousarray(w_ih.T), U=np.ascontiguousarray(w_hh.T), b=bias.astype(dt)
    )
    return cell


def rnn_problems(cell: SimpleRNNCell, path: str) -> tuple[str | None, list[str]]:
    """``("rnn_tanh" or "rnn_relu", [])``, or ``(None, [what PyTorch cannot express])``.

    The activation is recognised by the object: an activation of your own named "tanh" is not
    PyTorch's tanh.
    """
    if type(cell.candidate) is not Gate:
        return None, [
            f"{path}.candidate: a {type(cell.candidate).__name__} (PyTorch's RNN computes a "
            "plain Gate's affine map)"
        ]
    act = cell.candidate.activation
    for name, builtin in NONLINEARITIES.items():
        if act is builtin:
            return f"rnn_{name}", []
    own = getattr(act, "name", repr(act))
    builtin_name = any(b.name == own for b in activations.BUILTINS)
    mine = (
        f"your own Activation, not lstmkit's built-in {own}; "
        if act not in activations.BUILTINS and builtin_name
        else ""
    )
    return None, [
        f"{path}.candidate: activation {own!r} ({mine}nn.RNN's nonlinearity is tanh or relu)"
    ]
