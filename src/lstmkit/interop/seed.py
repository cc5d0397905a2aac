"""The seed LSTM's weight layout: column vectors and one matrix per gate over ``[h_prev; x]``.

The seed LSTM is the original single-class NumPy LSTM this project grew from. It stored, for
each gate ``k`` in ``f, i, C, o``, a matrix ``Wk`` of shape ``(hidden, hidden + input)`` applied
to the column vector ``np.vstack((h_prev, x))`` (hidden state first) and a bias ``bk`` of shape
``(hidden, 1)``::

    f_t = sigmoid(Wf @ [h_prev; x] + bf)      # and i_t, o_t alike
    C~  = tanh(WC @ [h_prev; x] + bC)

lstmkit's gate computes ``x @ W + h @ U + b`` with row vectors, so ``Wk = [U.T | W.T]``: the first
``hidden`` columns are the recurrent weights, the rest the input weights, both transposed.

Examples
--------
>>> import numpy as np
>>> from lstmkit.interop.seed import from_seed, to_seed
>>> rng = np.random.default_rng(0)
>>> seed = {f"W{k}": rng.standard_normal((5, 5 + 3)) for k in "fiCo"}
>>> seed.update({f"b{k}": np.zeros((5, 1)) for k in "fiCo"})
>>> cell = from_seed(seed)
>>> cell.input_size, cell.hidden_size
(3, 5)
>>> bool(np.array_equal(to_seed(cell)["WC"], seed["WC"]))
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lstmkit import activations
from lstmkit.cells.lstm import LSTMCell
from lstmkit.module import check_dtype

__all__ = ["SEED_GATES", "from_seed", "to_seed"]

#: The seed's gate letters and the matching lstmkit gate names.
SEED_GATES = {"f": "forget", "i": "input", "C": "candidate", "o": "output"}


def _get(weights: Any, key: str) -> Any:
    if isinstance(weights, Mapping):
        if key not in weights:
            raise ValueError(f"weights: missing {key!r}; expected Wf, Wi, WC, Wo, bf, bi, bC, bo")
        return weights[key]
    if not hasattr(weights, key):
        raise ValueError(f"weights: the object has no attribute {key!r}; expected the seed's LSTM")
    return getattr(weights, key)


def from_seed(weights: Any, *, dtype: Any = np.float64) -> LSTMCell:
    """Build an :class:`~lstmkit.LSTMCell` holding the seed's weights.

    Parameters
    ----------
    weights : mapping or object
        ``Wf, Wi, WC, Wo`` of shape ``(hidden, hidden + input)`` and ``bf, bi, bC, bo`` of shape
        ``(hidden, 1)`` (or ``(hidden,)``), as keys of a mapping or attributes of the seed's
        ``LSTM`` object.
    dtype : float32 or float64, default float64

    Returns
    -------
    LSTMCell
        Sigmoid gates, tanh candidate and cell activation, no peepholes (the seed's cell); every
        weight and bias is replaced, so the default forget bias of 1.0 does not apply.

    Raises
    ------
    ValueError
        A missing entry, inconsistent shapes or non-finite values.
    TypeError
        An entry that is not a real-valued array.
    """
    dt = check_dtype(dtype)
    arrays = {}
    for letter in SEED_GATES:
        for prefix in ("W", "b"):
            key = prefix + letter
            value = np.asarray(_get(weights, key))
            if value.dtype.kind not in "fiu":
                raise TypeError(
                    f"weights[{key!r}]: expected real numbers, received dtype {value.dtype}"
                )
            if not np.all(np.isfinite(value)):
                raise ValueError(f"weights[{key!r}]: has non-finite values")
            arrays[key] = value
    wf = arrays["Wf"]
    if wf.ndim != 2 or wf.shape[1] <= wf.shape[0]:
        raise ValueError(
            f"weights['Wf']: expected shape (hidden, hidden + input), received {wf.shape}"
        )
    H, n_in = wf.shape[0], wf.shape[1] - wf.shape[0]
    for letter in SEED_GATES:
        if arrays["W" + letter].shape != (H, H + n_in):
            raise ValueError(
                f"weights['W{letter}']: expected shape ({H}, {H + n_in}), received {arrays['W' + letter].shape}"
            )
        if arrays["b" + letter].shape not in ((H, 1), (H,)):
            raise ValueError(
                f"weights['b{letter}']: expected shape ({H}, 1), received {arrays['b' + letter].shape}"
            )
    cell = LSTMCell(n_in, H, dtype=dt, rng=0)
    for letter, name in SEED_GATES.items():
        w = arrays["W" + letter]
        cell.gates[name].set_weights(
            W=np.ascontiguousarray(w[:, H:].T, dtype=dt),  # columns after the first H see x
            U=np.ascontiguousarray(w[:, :H].T, dtype=dt),  # the first H columns see h_prev
            b=arrays["b" + letter].reshape(H).astype(dt),
        )
    return cell


def to_seed(cell: LSTMCell) -> dict[str, NDArray[Any]]:
    """The seed's ``{"Wf": ..., "bf": ..., ...}`` for a cell the seed can express.

    Returns
    -------
    dict of str to ndarray
        ``W*`` of shape ``(hidden, hidden + input)``, ``b*`` of shape ``(hidden, 1)``.

    Raises
    ------
    ValueError
        The cell has peepholes or activations other than the seed's sigmoid/tanh.
    TypeError
        ``cell`` is not an :class:`~lstmkit.LSTMCell`.
    """
    if type(cell) is not LSTMCell:
        raise TypeError(f"cell: expected an LSTMCell, received {type(cell).__name__}")
    problems = [f"peephole on the {n} gate" for n, g in cell.gates.items() if g.p is not None]
    for name, gate in cell.gates.items():
        want = activations.tanh if name == "candidate" else activations.sigmoid
        if gate.activation is not want:
            problems.append(
                f"{name} activation {gate.activation.name!r} (the seed uses {want.name})"
            )
    if cell.cell_activation is not activations.tanh:
        problems.append(f"cell_activation {cell.cell_activation.name!r} (the seed uses tanh)")
    if problems:
        raise ValueError("cell: the seed's layout cannot express " + "; ".join(problems))
    out: dict[str, NDArray[Any]] = {}
    for letter, name in SEED_GATES.items():
        gate = cell.gates[name]
        out["W" + letter] = np.hstack([gate.U.value.T, gate.W.value.T])
        out["b" + letter] = gate.b.value[:, None].copy()
    return out
