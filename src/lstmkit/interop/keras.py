"""Keras weight lists for LSTM, GRU and SimpleRNN layers, without needing Keras.

A Keras recurrent layer's ``get_weights()`` is ``[kernel, recurrent_kernel, bias]``, row-vector
matrices like lstmkit's, with the gates side by side along the last axis:

* **LSTM**, gates ``i, f, c, o``: ``kernel (input, 4H)``, ``recurrent_kernel (H, 4H)``,
  ``bias (4H,)``. Keras' ``recurrent_activation`` (default sigmoid) is lstmkit's gate activation
  and its ``activation`` (default tanh) both the candidate and the cell activation.
* **GRU**, gates ``z, r, h`` (update, reset, candidate): ``kernel (input, 3H)``,
  ``recurrent_kernel (H, 3H)``. With ``reset_after=True`` (the Keras 2.3+ default) ``bias`` is
  ``(2, 3H)``: row 0 the input biases, row 1 the recurrent biases, and the candidate's recurrent
  bias sits inside the reset product (lstmkit's ``GRUCell.recurrent_bias``); with
  ``reset_after=False`` it is ``(3H,)``. Keras' GRU computes ``h = z * h_prev + (1 - z) * h~``,
  lstmkit's ``update_convention="pytorch"``.
* **SimpleRNN**: ``kernel (input, H)``, ``recurrent_kernel (H, H)``, ``bias (H,)`` are the ``W``,
  ``U`` and ``b`` of :class:`~lstmkit.SimpleRNNCell`'s one gate; Keras' ``activation`` (default
  tanh) is the gate's activation.

Activation names given to the importers are Keras 3 names, as in the layer's settings: each is
the built-in lstmkit activation that declares that Keras name
(:attr:`lstmkit.activations.Activation.keras`); an :class:`~lstmkit.Activation` object is used as
it is. The exporters recognise an activation by the object, never by name, and write the Keras
name it declares; an activation without one, or one of your own that merely shares a built-in's
name, is refused. Keras 3 redefined ``hard_sigmoid`` as ``relu6(x + 3) / 6``, which lstmkit does
not have, so the name ``"hard_sigmoid"`` is refused; lstmkit's ``hard_sigmoid`` is Keras 2's
``clip(0.2 x + 0.5, 0, 1)``: pass the object ``lstmkit.activations.hard_sigmoid`` for a Keras 2
model (it is not exported, Keras 3 has no name for it).

Examples
--------
>>> import numpy as np
>>> from lstmkit.interop.keras import from_keras_lstm, to_keras_lstm
>>> rng = np.random.default_rng(0)
>>> kernel, recurrent, bias = rng.normal(size=(3, 8)), rng.normal(size=(2, 8)), rng.normal(size=8)
>>> cell = from_keras_lstm([kernel, recurrent, bias])
>>> bool(np.array_equal(cell.forget.W.value, kernel[:, 2:4]))   # blocks i, f, c, o
True
>>> [w.shape for w in to_keras_lstm(cell)]
[(3, 8), (2, 8), (8,)]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lstmkit import activations
from lstmkit.cells.gru import GRUCell
from lstmkit.cells.lstm import LSTMCell
from lstmkit.cells.simple import SimpleRNNCell
from lstmkit.gate import Gate
from lstmkit.module import check_dtype

__all__ = [
    "KERAS_GRU_ORDER",
    "KERAS_LSTM_ORDER",
    "from_keras_gru",
    "from_keras_lstm",
    "from_keras_simple_rnn",
    "keras_config",
    "to_keras_gru",
    "to_keras_lstm",
    "to_keras_simple_rnn",
]

Array = NDArray[Any]

#: lstmkit gate names in Keras' block order.
KERAS_LSTM_ORDER = ("input", "forget", "candidate", "output")
KERAS_GRU_ORDER = ("update", "reset", "candidate")


def _weight_list(weights: Any) -> list[Array]:
    """Check a Keras ``[kernel, recurrent_kernel(, bias)]`` list: real, finite arrays.

    Shapes are the caller's to check (dense and convolutional layers differ).
    """
    if (
        isinstance(weights, (str, bytes))
        or not isinstance(weights, Sequence)
        or len(weights) not in (2, 3)
    ):
        raise TypeError(
            "weights: expected a list [kernel, recurrent_kernel, bias] (or [kernel, recurrent_kernel] "
            f"for use_bias=False), received {type(weights).__name__}"
        )
    out = []
    for name, value in zip(("kernel", "recurrent_kernel", "bias"), weights):
        arr = np.asarray(value)
        if arr.dtype.kind not in "fiu":
            raise TypeError(f"weights ({name}): expected real numbers, received dtype {arr.dtype}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"weights ({name}): has non-finite values")
        out.append(arr)
    return out


def _arrays(
    weights: Any, gates: int, bias_shapes: list[tuple[int, ...]]
) -> tuple[Array, Array, Array | None]:
    """Check ``[kernel, recurrent_kernel(, bias)]``; ``bias_shapes`` use ``-1`` for ``gates * H``."""
    out = _weight_list(weights)
    kernel, recurrent = out[0], out[1]
    if recurrent.ndim != 2 or recurrent.shape[1] != gates * recurrent.shape[0]:
        raise ValueError(
            f"weights (recurrent_kernel): expected shape (units, {gates} * units), received {recurrent.shape}"
        )
    H = recurrent.shape[0]
    if kernel.ndim != 2 or kernel.shape[1] != gates * H:
        raise ValueError(
            f"weights (kernel): expected shape (input, {gates * H}), received {kernel.shape}"
        )
    bias = out[2] if len(out) == 3 else None
    allowed = [tuple(gates * H if n == -1 else n for n in shape) for shape in bias_shapes]
    if bias is not None and bias.shape not in allowed:
        expected = " or ".join(str(s) for s in allowed)
        raise ValueError(f"weights (bias): expected shape {expected}, received {bias.shape}")
    return kernel, recurrent, bias


def _dtype(dtype: Any, kernel: Array) -> np.dtype[Any]:
    if dtype is not None:
        return check_dtype(dtype)
    return kernel.dtype if kernel.dtype in (np.float32, np.float64) else np.dtype(np.float32)


def from_keras_lstm(
    weights: Sequence[Any],
    *,
    activation: Any = "tanh",
    recurrent_activation: Any = "sigmoid",
    dtype: Any = None,
) -> LSTMCell:
    """Build an :class:`~lstmkit.LSTMCell` from a Keras LSTM's ``[kernel, recurrent_kernel, bias]``.

    Parameters
    ----------
    weights : list of ndarray
        ``kernel (input, 4H)``, ``recurrent_kernel (H, 4H)``, ``bias (4H,)`` (omit the bias for
        ``use_bias=False``).
    activation, recurrent_activation : str or Activation
        The Keras layer's settings (candidate and cell activation; gate activation): Keras 3
        names, or Activation objects used as they are.
    dtype : float32 or float64, optional
        Defaults to the kernel's dtype (float32 for anything else).

    Raises
    ------
    ValueError
        Inconsistent shapes or non-finite values; TypeError for non-numeric arrays.
    """
    kernel, recurrent, bias = _arrays(weights, 4, [(-1,)])
    dt = _dtype(dtype, kernel)
    H = recurrent.shape[0]
    activation = _from_keras_name(activation, "activation")
    recurrent_activation = _from_keras_name(recurrent_activation, "recurrent_activation")
    cell = LSTMCell(
        kernel.shape[0],
        H,
        gate_activation=recurrent_activation,
        candidate_activation=activation,
        cell_activation=activation,
        dtype=dt,
        rng=0,
    )
    bias = np.zeros(4 * H) if bias is None else bias
    for k, name in enumerate(KERAS_LSTM_ORDER):
        cols = slice(k * H, (k + 1) * H)
        cell.gates[name].set_weights(
            W=np.ascontiguousarray(kernel[:, cols], dtype=dt),
            U=np.ascontiguousarray(recurrent[:, cols], dtype=dt),
            b=np.ascontiguousarray(bias[cols], dtype=dt),
        )
    return cell


def from_keras_gru(
    weights: Sequence[Any],
    *,
    reset_after: bool | None = None,
    activation: Any = "tanh",
    recurrent_activation: Any = "sigmoid",
    dtype: Any = None,
) -> GRUCell:
    """Build a :class:`~lstmkit.GRUCell` from a Keras GRU's ``[kernel, recurrent_kernel, bias]``.

    Parameters
    ----------
    weights : list of ndarray
        ``kernel (input, 3H)``, ``recurrent_kernel (H, 3H)``, and ``bias`` of shape ``(2, 3H)``
        (``reset_after=True``) or ``(3H,)`` (``reset_after=False``).
    reset_after : bool, optional
        The Keras layer's setting; inferred from the bias shape when None (required without a bias).
    activation, recurrent_activation : str or Activation
        Candidate activation; update and reset gate activation: Keras 3 names, or Activation
        objects used as they are.
    dtype : float32 or float64, optional

    Returns
    -------
    GRUCell
        With ``update_convention="pytorch"`` (Keras' ``h = z * h_prev + (1 - z) * h~``).
    """
    kernel, recurrent, bias = _arrays(weights, 3, [(-1,), (2, -1)])
    if reset_after is None:
        if bias is None:
            raise ValueError(
                "reset_after: cannot infer it without a bias; pass reset_after=True or False"
            )
        reset_after = bias.ndim == 2
    elif bias is not None and (bias.ndim == 2) != reset_after:
        raise ValueError(
            f"weights (bias): shape {bias.shape} does not fit reset_after={reset_after}"
        )
    dt = _dtype(dtype, kernel)
    H = recurrent.shape[0]
    activation = _from_keras_name(activation, "activation")
    recurrent_activation = _from_keras_name(recurrent_activation, "recurrent_activation")
    cell = GRUCell(
        kernel.shape[0],
        H,
        reset_after=reset_after,
        update_convention="pytorch",
        gate_activation=recurrent_activation,
        candidate_activation=activation,
        dtype=dt,
        rng=0,
    )
    if bias is None:
        bias = np.zeros((2, 3 * H) if reset_after else 3 * H)
    b_in, b_rec = (bias[0], bias[1]) if reset_after else (bias, np.zeros(3 * H))
    for k, name in enumerate(KERAS_GRU_ORDER):
        cols = slice(k * H, (k + 1) * H)
        # The candidate's recurrent bias is scaled by the reset gate, so it stays separate.
        b = b_in[cols] if name == "candidate" else b_in[cols] + b_rec[cols]
        cell.gates[name].set_weights(
            W=np.ascontiguousarray(kernel[:, cols], dtype=dt),
            U=np.ascontiguousarray(recurrent[:, cols], dtype=dt),
            b=np.ascontiguousarray(b, dtype=dt),
        )
    if reset_after:
        assert cell.recurrent_bias is not None
        cell.recurrent_bias.assign(np.ascontiguousarray(b_rec[2 * H :], dtype=dt), argument="bias")
    return cell


def _from_keras_name(value: Any, argument: str) -> Any:
    """The activation a Keras layer setting means: a Keras 3 name, or an Activation as it is."""
    if not isinstance(value, str):
        return value  # an Activation object (anything else is refused by the cell)
    for act in activations.BUILTINS:
        if act.keras == value:
            return act
    known = sorted(a.keras for a in activations.BUILTINS if a.keras is not None)
    hint = (
        "; Keras 3's hard_sigmoid is relu6(x + 3) / 6, which lstmkit does not have (for a "
        "Keras 2 model's clip(0.2 x + 0.5, 0, 1) pass lstmkit.activations.hard_sigmoid)"
        if value == "hard_sigmoid"
        else ""
    )
    raise ValueError(
        f"{argument}: Keras activation {value!r} has no exact lstmkit counterpart; expected one "
        f"of {', '.join(known)} or an Activation object{hint}"
    )


def _keras_name(act: Any, where: str, problems: list[str]) -> str | None:
    """The Keras 3 name ``act`` declares (its ``keras`` field), or None after adding a problem."""
    name = getattr(act, "keras", None)
    if name is not None:
        return str(name)
    own = getattr(act, "name", repr(act))
    if act is activations.hard_sigmoid:
        problems.append(
            f"{where} {own!r} (lstmkit's is Keras 2's clip(0.2 x + 0.5, 0, 1); Keras 3's "
            "hard_sigmoid is relu6(x + 3) / 6, a different function)"
        )
    elif act in activations.BUILTINS:
        problems.append(f"{where} {own!r} (Keras 3 defines no activation computing it)")
    elif any(b.name == own for b in activations.BUILTINS):
        problems.append(
            f"{where} {own!r}: your own Activation, not lstmkit's built-in {own} "
            f"(declare keras= on it, or use activations.{own})"
        )
    else:
        problems.append(f"{where} {own!r} (not a Keras activation; declare keras= on it)")
    return None


def keras_config(cell: LSTMCell | GRUCell | SimpleRNNCell) -> dict[str, Any]:
    """The Keras layer settings matching ``cell``: ``units``, ``activation``, ``recurrent_activation``
    (and ``reset_after`` for a GRU; only ``units`` and ``activation`` for a SimpleRNN), or a
    ValueError naming what Keras cannot express.

    Activations are recognised by the object and written under the Keras name they declare
    (:attr:`lstmkit.activations.Activation.keras`).
    """
    problems = []
    if type(cell) is SimpleRNNCell:
        return _simple_rnn_config(cell)
    gate_names: tuple[str, ...]
    if type(cell) is LSTMCell:
        gate_names = ("input", "forget", "output")
        problems += [
            f"a peephole on the {n} gate" for n, g in cell.gates.items() if g.p is not None
        ]
        if cell.cell_activation is not cell.candidate.activation:
            problems.append(
                f"cell_activation {cell.cell_activation.name!r} differing from the candidate's "
                f"{cell.candidate.activation.name!r} (Keras uses one activation for both)"
            )
        extra: dict[str, Any] = {}
    elif type(cell) is GRUCell:
        gate_names = ("update", "reset")
        if cell.update_convention != "pytorch":
            problems.append(
                f"update_convention={cell.update_convention!r} (Keras weighs h_prev by z)"
            )
        extra = {"reset_after": bool(cell.reset_after)}
    else:
        raise TypeError(
            f"cell: expected an LSTMCell, GRUCell or SimpleRNNCell, received {type(cell).__name__}"
        )
    gate_acts = [cell.gates[n].activation for n in gate_names]
    if not all(a is gate_acts[0] for a in gate_acts):
        problems.append(
            "different activations on the gates "
            f"({', '.join(f'{n}={a.name}' for n, a in zip(gate_names, gate_acts))}); Keras has one recurrent_activation"
        )
    activation = _keras_name(cell.candidate.activation, "candidate activation", problems)
    recurrent = _keras_name(gate_acts[0], f"{gate_names[0]} gate activation", problems)
    if problems:
        raise ValueError("cell: Keras cannot express " + "; ".join(problems))
    return {
        "units": int(cell.hidden_size),
        "activation": activation,
        "recurrent_activation": recurrent,
        **extra,
    }


def to_keras_lstm(cell: LSTMCell) -> list[Array]:
    """``[kernel (input, 4H), recurrent_kernel (H, 4H), bias (4H,)]`` for ``keras.layers.LSTM``.

    Use :func:`keras_config` for the matching layer settings. Raises ValueError for what Keras
    cannot express (peepholes, mixed gate activations, a cell activation unlike the candidate's).
    """
    if type(cell) is not LSTMCell:
        raise TypeError(f"cell: expected an LSTMCell, received {type(cell).__name__}")
    keras_config(cell)
    gates = [cell.gates[n] for n in KERAS_LSTM_ORDER]
    return [
        np.concatenate([g.W.value for g in gates], axis=1),
        np.concatenate([g.U.value for g in gates], axis=1),
        np.concatenate([g.b.value for g in gates]),
    ]


def to_keras_gru(cell: GRUCell) -> list[Array]:
    """``[kernel (input, 3H), recurrent_kernel (H, 3H), bias]`` for ``keras.layers.GRU``.

    ``bias`` is ``(2, 3H)`` for ``reset_after=True`` (the update and reset biases go in the input
    row, the recurrent row holds zeros there and ``recurrent_bias`` for the candidate) and
    ``(3H,)`` for ``reset_after=False``.
    """
    if type(cell) is not GRUCell:
        raise TypeError(f"cell: expected a GRUCell, received {type(cell).__name__}")
    keras_config(cell)
    gates = [cell.gates[n] for n in KERAS_GRU_ORDER]
    kernel = np.concatenate([g.W.value for g in gates], axis=1)
    recurrent = np.concatenate([g.U.value for g in gates], axis=1)
    b_in = np.concatenate([g.b.value for g in gates])
    if not cell.reset_after:
        return [kernel, recurrent, b_in]
    assert cell.recurrent_bias is not None
    b_rec = np.zeros_like(b_in)
    b_rec[2 * cell.hidden_size :] = cell.recurrent_bias.value
    return [kernel, recurrent, np.stack([b_in, b_rec])]


# -- SimpleRNN ------------------------------------------------------------------------------------


def from_keras_simple_rnn(
    weights: Sequence[Any], *, activation: Any = "tanh", dtype: Any = None
) -> SimpleRNNCell:
    """Build a :class:`~lstmkit.SimpleRNNCell` from a Keras SimpleRNN's weight list.

    Parameters
    ----------
    weights : list of ndarray
        ``kernel (input, H)``, ``recurrent_kernel (H, H)``, ``bias (H,)`` (omit the bias for
        ``use_bias=False``).
    activation : str or Activation, default "tanh"
        The Keras layer's ``activation``: a Keras 3 name, or an Activation object used as it is.
    dtype : float32 or float64, optional
        Defaults to the kernel's dtype (float32 for anything else).

    Raises
    ------
    ValueError
        Inconsistent shapes, non-finite values, or an activation lstmkit does not have;
        TypeError for non-numeric arrays.
    """
    kernel, recurrent, bias = _arrays(weights, 1, [(-1,)])
    dt = _dtype(dtype, kernel)
    H = recurrent.shape[0]
    act = _from_keras_name(activation, "activation")
    cell = SimpleRNNCell(kernel.shape[0], H, activation=act, dtype=dt, rng=0)
    cell.candidate.set_weights(
        W=np.ascontiguousarray(kernel, dtype=dt),
        U=np.ascontiguousarray(recurrent, dtype=dt),
        b=np.zeros(H, dt) if bias is None else np.ascontiguousarray(bias, dtype=dt),
    )
    return cell


def _simple_rnn_config(cell: SimpleRNNCell) -> dict[str, Any]:
    problems: list[str] = []
    if type(cell.candidate) is not Gate:
        problems.append(
            f"a {type(cell.candidate).__name__} as the gate (Keras computes a plain affine map)"
        )
    activation = _keras_name(cell.candidate.activation, "activation", problems)
    if problems:
        raise ValueError("cell: Keras cannot express " + "; ".join(problems))
    return {"units": int(cell.hidden_size), "activation": activation}


def to_keras_simple_rnn(cell: SimpleRNNCell) -> list[Array]:
    """``[kernel (input, H), recurrent_kernel (H, H), bias (H,)]`` for ``keras.layers.SimpleRNN``.

    Use :func:`keras_config` for the matching layer settings (``units``, ``activation``). Raises
    ValueError for an activation Keras has no name for, TypeError for another cell.
    """
    if type(cell) is not SimpleRNNCell:
        raise TypeError(f"cell: expected a SimpleRNNCell, received {type(cell).__name__}")
    _simple_rnn_config(cell)
    gate = cell.candidate
    return [gate.W.value.copy(), gate.U.value.copy(), gate.b.value.copy()]
