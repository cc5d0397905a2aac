"""Keras ``ConvLSTM1D/2D/3D`` weight lists for :class:`~lstmkit.ConvLSTMCell`, without Keras.

A Keras ConvLSTM layer's ``get_weights()`` is ``[kernel, recurrent_kernel, bias]`` with the
four gates side by side on the last axis in the order ``i, f, c, o``:

* ``kernel (*kernel_size, input_channels, 4 * filters)``;
* ``recurrent_kernel (*kernel_size, filters, 4 * filters)``;
* ``bias (4 * filters,)`` (absent with ``use_bias=False``).

Each gate's block is exactly a :class:`~lstmkit.ConvGate`'s ``W``, ``U`` and ``b`` (the same
channels-last layout, the kernel not flipped). Keras' ``recurrent_activation`` (default
sigmoid) is the gate activation; its ``activation`` (default tanh) is both the candidate and
the cell activation. Keras computes the input convolution with the layer's ``padding`` and
``dilation_rate`` and the recurrent one with ``"same"`` padding, stride 1 and no dilation, as
:class:`~lstmkit.ConvGate` does; ``strides`` other than 1 and ``data_format="channels_first"``
have no counterpart here. The spatial shape of the input is not part of the weights, so the
importer takes it.

Examples
--------
>>> import numpy as np
>>> from lstmkit.interop.keras_conv import from_keras_convlstm, to_keras_convlstm
>>> rng = np.random.default_rng(0)
>>> weights = [rng.normal(size=(3, 3, 2, 16)), rng.normal(size=(3, 3, 4, 16)), np.zeros(16)]
>>> cell = from_keras_convlstm(weights, input_shape=(10, 10, 2))
>>> cell.filters, cell.kernel_size, cell.output_shape     # Keras' default padding: valid
(4, (3, 3), (8, 8, 4))
>>> bool(np.array_equal(cell.forget.W.value, weights[0][..., 4:8]))    # blocks i, f, c, o
True
>>> [w.shape for w in to_keras_convlstm(cell)]
[(3, 3, 2, 16), (3, 3, 4, 16), (16,)]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lstmkit.cells.convlstm import ConvLSTMCell
from lstmkit.interop.keras import _from_keras_name, _keras_name, _weight_list
from lstmkit.module import check_dtype

__all__ = ["KERAS_CONVLSTM_ORDER", "from_keras_convlstm", "keras_convlstm_config"]
__all__ += ["to_keras_convlstm"]

Array = NDArray[Any]

#: lstmkit gate names in Keras' block order.
KERAS_CONVLSTM_ORDER = ("input", "forget", "candidate", "output")


def _arrays(weights: Any) -> tuple[Array, Array, Array | None]:
    out = _weight_list(weights)
    kernel, recurrent = out[0], out[1]
    if recurrent.ndim not in (3, 4, 5) or recurrent.shape[-1] != 4 * recurrent.shape[-2]:
        raise ValueError(
            "weights (recurrent_kernel): expected shape (*kernel_size, filters, 4 * filters) "
            f"with 1 to 3 kernel axes, received {recurrent.shape}"
        )
    size, F = recurrent.shape[:-2], recurrent.shape[-2]
    if kernel.ndim != recurrent.ndim or kernel.shape[:-2] != size or kernel.shape[-1] != 4 * F:
        raise ValueError(
            f"weights (kernel): expected shape ({', '.join(map(str, size))}, input_channels, "
            f"{4 * F}) like the recurrent kernel, received {kernel.shape}"
        )
    bias = out[2] if len(out) == 3 else None
    if bias is not None and bias.shape != (4 * F,):
        raise ValueError(f"weights (bias): expected shape ({4 * F},), received {bias.shape}")
    return kernel, recurrent, bias


def from_keras_convlstm(
    weights: Sequence[Any],
    *,
    input_shape: Sequence[int],
    padding: str = "valid",
    dilation_rate: Any = 1,
    activation: Any = "tanh",
    recurrent_activation: Any = "sigmoid",
    dtype: Any = None,
) -> ConvLSTMCell:
    """Build a :class:`~lstmkit.ConvLSTMCell` from a Keras ConvLSTM's weight list.

    Parameters
    ----------
    weights : list of ndarray
        ``kernel (*k, in, 4F)``, ``recurrent_kernel (*k, F, 4F)``, ``bias (4F,)`` (omit the
        bias for ``use_bias=False``).
    input_shape : tuple of int
        One frame's shape, channels last: ``(*spatial, in)``.
    padding : {"valid", "same"}, default "valid"
        The Keras layer's ``padding`` (Keras' default is "valid").
    dilation_rate : int or tuple of int, default 1
    activation, recurrent_activation : str or Activation
        The Keras layer's settings: Keras 3 names, or Activation objects used as they are.
    dtype : float32 or float64, optional
        Defaults to the kernel's dtype (float32 for anything else).

    Raises
    ------
    ValueError
        Inconsistent shapes, non-finite values, or ``input_shape`` whose channels differ from
        the kernel's; TypeError for non-numeric arrays.
    """
    kernel, recurrent, bias = _arrays(weights)
    if dtype is not None:
        dt = check_dtype(dtype)
    else:
        dt = kernel.dtype if kernel.dtype in (np.float32, np.float64) else np.dtype(np.float32)
    size, F = recurrent.shape[:-2], recurrent.shape[-2]
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if shape is None or len(shape) != len(size) + 1 or shape[-1] != kernel.shape[-2]:
        raise ValueError(
            f"input_shape: expected ({len(size)} spatial sizes, {kernel.shape[-2]} channels) to "
            f"fit the kernel {kernel.shape}, received {input_shape!r}"
        )
    act = _from_keras_name(activation, "activation")
    cell = ConvLSTMCell(
        shape,
        F,
        kernel_size=size,
        padding=padding,
        dilation=dilation_rate,
        gate_activation=_from_keras_name(recurrent_activation, "recurrent_activation"),
        candidate_activation=act,
        cell_activation=act,
        dtype=dt,
        rng=0,
    )
    bias = np.zeros(4 * F) if bias is None else bias
    for k, name in enumerate(KERAS_CONVLSTM_ORDER):
        block = slice(k * F, (k + 1) * F)
        cell.gates[name].set_weights(
            W=np.ascontiguousarray(kernel[..., block], dtype=dt),
            U=np.ascontiguousarray(recurrent[..., block], dtype=dt),
            b=np.ascontiguousarray(bias[block], dtype=dt),
        )
    return cell


def keras_convlstm_config(cell: ConvLSTMCell) -> dict[str, Any]:
    """The Keras ``ConvLSTM{1,2,3}D`` settings that compute what ``cell`` computes.

    Raises
    ------
    TypeError
        ``cell`` is not a :class:`~lstmkit.ConvLSTMCell`.
    ValueError
        What Keras cannot express: gate activations that differ, a cell activation unlike the
        candidate's, an activation without a Keras name.
    """
    if type(cell) is not ConvLSTMCell:
        raise TypeError(f"cell: expected a ConvLSTMCell, received {type(cell).__name__}")
    problems: list[str] = []
    gate_acts = [cell.gates[n].activation for n in ("input", "forget", "output")]
    if any(a is not gate_acts[0] for a in gate_acts):
        problems.append("the input, forget and output gates must share one activation")
    if cell.cell_activation is not cell.candidate.activation:
        problems.append("the cell activation must be the candidate's (Keras has one activation)")
    activation = _keras_name(cell.candidate.activation, "candidate activation", problems)
    recurrent = _keras_name(gate_acts[0], "gate activation", problems)
    if problems:
        raise ValueError("cell: Keras ConvLSTM cannot express this cell: " + "; ".join(problems))
    return {
        "layer": f"ConvLSTM{cell.rank}D",
        "filters": int(cell.filters),
        "kernel_size": tuple(cell.kernel_size),
        "strides": 1,
        "padding": cell.padding,
        "data_format": "channels_last",
        "dilation_rate": tuple(cell.dilation),
        "activation": activation,
        "recurrent_activation": recurrent,
        "use_bias": True,
        "unit_forget_bias": False,  # the bias is in the weights, forget bias included
    }


def to_keras_convlstm(cell: ConvLSTMCell) -> list[Array]:
    """``[kernel, recurrent_kernel, bias]`` for a Keras ``ConvLSTM{1,2,3}D`` layer.

    Use :func:`keras_convlstm_config` for the matching layer settings.
    """
    keras_convlstm_config(cell)
    gates = [cell.gates[n] for n in KERAS_CONVLSTM_ORDER]
    return [
        np.concatenate([g.W.value for g in gates], axis=-1),
        np.concatenate([g.U.value for g in gates], axis=-1),
        np.concatenate([g.b.value for g in gates]),
    ]
