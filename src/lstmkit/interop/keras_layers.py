"""Keras weight lists for whole runners and stacks: one list per layer.

:mod:`lstmkit.interop.keras` converts one cell's ``[kernel, recurrent_kernel, bias]``. This module
does the same for what Keras calls layers, in Keras' own order:

* a ``Recurrent`` is a ``keras.layers.LSTM`` or ``GRU``: its ``get_weights()`` list,
  ``[kernel, recurrent_kernel, bias]``;
* a ``Bidirectional`` is ``keras.layers.Bidirectional``, whose ``get_weights()`` lists the forward
  layer's weights, then the backward layer's: ``[kernel_f, recurrent_kernel_f, bias_f, kernel_b,
  recurrent_kernel_b, bias_b]``. Its ``merge_mode`` is lstmkit's ``merge`` (``"ave"`` for
  ``"mean"``, ``None`` for ``"none"``);
* a ``Stacked`` is a stack of such layers (``return_sequences=True``), one list each.

:func:`to_keras_layers` returns the weight lists and :func:`keras_layer_configs` the matching
layer settings (``{"class_name": "LSTM", "units": ..., "activation": ..., ...}``, and for a
bidirectional layer ``{"class_name": "Bidirectional", "merge_mode": ..., "layer": {...}}``);
:func:`from_keras_layers` takes both back. Keras runs ``go_backwards=True`` layers and returns
their outputs in reversed time order, which no lstmkit runner does, so a reverse-only
``Recurrent`` is refused; so is anything a cell's conversion refuses. Every problem is listed in
one ``ValueError``.

Examples
--------
>>> import numpy as np
>>> from lstmkit import Bidirectional, GRUCell, LSTMCell, Stacked
>>> from lstmkit.interop.keras_layers import from_keras_layers, keras_layer_configs, to_keras_layers
>>> model = Stacked([Bidirectional(LSTMCell(3, 4, rng=0), rng=1), GRUCell(8, 2, rng=2)])
>>> weights = to_keras_layers(model)
>>> [[w.shape for w in layer] for layer in weights]
[[(3, 16), (4, 16), (16,), (3, 16), (4, 16), (16,)], [(8, 6), (2, 6), (2, 6)]]
>>> [c["class_name"] for c in keras_layer_configs(model)]
['Bidirectional', 'GRU']
>>> again = from_keras_layers(weights, keras_layer_configs(model))
>>> x = np.ones((1, 5, 3))
>>> bool(np.array_equal(again(x)[0], model(x)[0]))
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lstmkit.interop.keras import (
    Array,
    from_keras_gru,
    from_keras_lstm,
    keras_config,
    to_keras_gru,
    to_keras_lstm,
)
from lstmkit.module import converted
from lstmkit.runners import Bidirectional, Recurrent, Stacked

__all__ = ["from_keras_layers", "keras_layer_configs", "to_keras_layers"]

_MERGE_TO_KERAS = {"concat": "concat", "sum": "sum", "mul": "mul", "mean": "ave", "none": None}
_MERGE_FROM_KERAS = {v: k for k, v in _MERGE_TO_KERAS.items()}
_RNN_KEYS = {"class_name", "units", "activation", "recurrent_activation", "reset_after", "use_bias"}


def _layers(model: Any) -> list[tuple[str, Any]]:
    if isinstance(model, Stacked):
        return [(f"model.layers[{k}]", layer) for k, layer in enumerate(model.layers)]
    if isinstance(model, (Recurrent, Bidirectional)):
        return [("model", model)]
    if hasattr(model, "step"):
        return [("model", Recurrent(model))]
    raise TypeError(
        "model: expected a cell, Recurrent, Bidirectional or Stacked, received "
        f"{type(model).__name__}"
    )


def _cell(cell: Any, path: str, problems: list[str]) -> tuple[list[Array], dict[str, Any]] | None:
    """A cell's Keras weights and settings, or None after adding what Keras cannot express."""
    try:
        settings = keras_config(cell)
    except (TypeError, ValueError) as error:
        text = str(error).removeprefix("cell: ")
        problems.append(f"{path}: {text}")
        return None
    is_gru = "reset_after" in settings
    weights = to_keras_gru(cell) if is_gru else to_keras_lstm(cell)
    return weights, {"class_name": "GRU" if is_gru else "LSTM", **settings}


def _convert(model: Any) -> list[tuple[list[Array], dict[str, Any]]]:
    problems: list[str] = []
    out: list[tuple[list[Array], dict[str, Any]]] = []
    for path, layer in _layers(model):
        if isinstance(layer, Recurrent):
            if layer.reverse:
                problems.append(
                    f"{path}: a reverse-only runner (Keras' go_backwards returns its outputs in "
                    "reversed time order)"
                )
            found = _cell(layer.cell, f"{path}.cell", problems)
            if found is not None:
                out.append(found)
        elif isinstance(layer, Bidirectional):
            fwd = _cell(layer.forward_layer.cell, f"{path}.forward_layer.cell", problems)
            bwd = _cell(layer.backward_layer.cell, f"{path}.backward_layer.cell", problems)
            if fwd is not None and bwd is not None:
                if fwd[1] != bwd[1]:
                    problems.append(
                        f"{path}: directions with different settings ({fwd[1]} and {bwd[1]}); "
                        "Keras builds the backward layer from the forward one's"
                    )
                config = {
                    "class_name": "Bidirectional",
                    "merge_mode": _MERGE_TO_KERAS[layer.merge],
                    "layer": fwd[1],
                }
                out.append((fwd[0] + bwd[0], config))
        else:
            problems.append(f"{path}: a {type(layer).__name__} layer inside a stack")
    if problems:
        raise ValueError("model: Keras cannot express " + "; ".join(problems))
    return out


def to_keras_layers(model: Any, *, dtype: Any = None) -> list[list[Array]]:
    """One Keras ``get_weights()`` list per layer of ``model``.

    Parameters
    ----------
    model
        A cell (``LSTMCell``, ``GRUCell``), a ``Recurrent`` or ``Bidirectional`` of one, or a
        ``Stacked`` of those.
    dtype : float32 or float64, optional
        Convert a copy of the model first (:meth:`lstmkit.Module.astype`); by default the
        arrays are in the model's dtype.

    Returns
    -------
    list of list of ndarray
        Per layer: ``[kernel (input, kH), recurrent_kernel (H, kH), bias]`` (``k`` 4 for an
        LSTM, 3 for a GRU), and for a bidirectional layer the forward direction's three arrays
        followed by the backward direction's.

    Raises
    ------
    ValueError
        Naming every part Keras cannot express (see the module notes).
    TypeError
        ``model`` is not a cell or runner.
    """
    if dtype is not None:
        model = converted(model, dtype)
    return [weights for weights, _ in _convert(model)]


def keras_layer_configs(model: Any) -> list[dict[str, Any]]:
    """The Keras layer settings matching :func:`to_keras_layers`, one dict per layer.

    ``{"class_name": "LSTM" or "GRU", "units", "activation", "recurrent_activation"
    (, "reset_after")}``, or ``{"class_name": "Bidirectional", "merge_mode", "layer": {...}}``.
    Every layer returns sequences (``return_sequences=True`` in Keras).
    """
    return [config for _, config in _convert(model)]


def _rnn(weights: Any, config: Any, where: str, dtype: Any) -> Any:
    if not isinstance(config, dict):
        raise TypeError(
            f"{where}: expected a dict of layer settings, received {type(config).__name__}"
        )
    unknown = sorted(set(config) - _RNN_KEYS)
    if unknown:
        raise ValueError(
            f"{where}: unexpected settings {unknown}; expected some of {sorted(_RNN_KEYS)}"
        )
    kind = config.get("class_name")
    options = {k: config[k] for k in ("activation", "recurrent_activation") if k in config}
    try:
        if kind == "LSTM":
            cell: Any = from_keras_lstm(weights, dtype=dtype, **options)
        elif kind == "GRU":
            cell = from_keras_gru(
                weights, reset_after=config.get("reset_after"), dtype=dtype, **options
            )
        else:
            raise ValueError(
                f"class_name: expected 'LSTM', 'GRU' or 'Bidirectional', received {kind!r}"
            )
    except (TypeError, ValueError) as error:
        raise type(error)(f"{where}: {error}") from error
    units = config.get("units")
    if units is not None and units != cell.hidden_size:
        raise ValueError(
            f"{where}: units is {units!r} but the weights have {cell.hidden_size} units"
        )
    return cell


def from_keras_layers(
    weights: Sequence[Sequence[Any]], configs: Sequence[dict[str, Any]], *, dtype: Any = None
) -> Any:
    """Build lstmkit runners from Keras layers' weight lists and settings.

    Parameters
    ----------
    weights : list of list of ndarray
        One ``get_weights()`` list per layer (a ``Bidirectional`` layer's holds the forward
        layer's arrays, then the backward layer's).
    configs : list of dict
        One per layer, as :func:`keras_layer_configs` writes them (``class_name`` ``"LSTM"``,
        ``"GRU"`` or ``"Bidirectional"``; activations as Keras 3 names or Activation objects).
    dtype : float32 or float64, optional
        Defaults to each kernel's dtype (float32 for anything else).

    Returns
    -------
    Recurrent, Bidirectional or Stacked
        One layer gives a runner, several a ``Stacked``.

    Raises
    ------
    ValueError, TypeError
        Naming the layer (``weights[k]``) and what is wrong: unequal counts, unknown classes or
        settings, arrays of the wrong shape, layers whose sizes do not chain.
    """
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
        raise TypeError(
            f"weights: expected a list of per-layer weight lists, received {type(weights).__name__}"
        )
    if isinstance(configs, (str, bytes)) or not isinstance(configs, Sequence):
        raise TypeError(
            f"configs: expected a list of per-layer settings, received {type(configs).__name__}"
        )
    if len(weights) != len(configs) or not weights:
        raise ValueError(
            f"weights, configs: expected one settings dict per weight list (at least one), "
            f"received {len(weights)} weight lists and {len(configs)} settings"
        )
    layers: list[Any] = []
    for k, (layer_weights, config) in enumerate(zip(weights, configs)):
        where = f"weights[{k}]"
        if isinstance(config, dict) and config.get("class_name") == "Bidirectional":
            unknown = sorted(set(config) - {"class_name", "merge_mode", "layer"})
            if unknown:
                raise ValueError(f"{where}: unexpected Bidirectional settings {unknown}")
            mode = config.get("merge_mode", "concat")
            if mode not in _MERGE_FROM_KERAS:
                raise ValueError(
                    f"{where}: merge_mode: expected 'concat', 'sum', 'mul', 'ave' or None, "
                    f"received {mode!r}"
                )
            n = len(layer_weights)
            if n not in (4, 6):
                raise ValueError(
                    f"{where}: a Bidirectional layer has the forward then the backward layer's "
                    f"weights (6 arrays, or 4 without biases), received {n}"
                )
            inner = config.get("layer")
            fwd = _rnn(list(layer_weights[: n // 2]), inner, f"{where} (forward)", dtype)
            bwd = _rnn(list(layer_weights[n // 2 :]), inner, f"{where} (backward)", dtype)
            layers.append(
                Bidirectional(
                    Recurrent(fwd), Recurrent(bwd, reverse=True), merge=_MERGE_FROM_KERAS[mode]
                )
            )
        else:
            layers.append(Recurrent(_rnn(layer_weights, config, where, dtype)))
    for k in range(1, len(layers)):
        if layers[k].input_size != layers[k - 1].output_size:
            raise ValueError(
                f"weights[{k}]: the kernel expects {layers[k].input_size} inputs, but "
                f"weights[{k - 1}] gives {layers[k - 1].output_size} outputs"
            )
    return layers[0] if len(layers) == 1 else Stacked(layers)
