"""Configuration functions of lstmkit's own components, registered with :mod:`lstmkit.config`.

Each ``from_config`` checks its keys and value types, and leaf components check the sizes they are
about to allocate against the arrays being loaded (``ctx.expect``) before constructing anything.
Components written in optional modules are registered only when those modules exist.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lstmkit.cells.lstm import GATE_NAMES, LSTMCell
from lstmkit.config import BuildContext, activation_name, initializer_config, register
from lstmkit.gate import Gate
from lstmkit.runners.bidirectional import MERGE_MODES, Bidirectional
from lstmkit.runners.recurrent import Recurrent
from lstmkit.runners.stacked import Stacked

Config = dict[str, Any]

_INIT_KEYS = (
    "kernel_initializer",
    "recurrent_initializer",
    "bias_initializer",
    "peephole_initializer",
)


# -- Gate -------------------------------------------------------------------------------------


def gate_to_config(gate: Gate) -> Config:
    return {
        "input_size": int(gate.input_size),
        "hidden_size": int(gate.hidden_size),
        "recurrent_size": int(gate.U.shape[0]),
        "activation": activation_name(gate.activation),
        "peephole": gate.p is not None,
        **{key: initializer_config(getattr(gate, key)) for key in _INIT_KEYS},
        "dtype": gate.dtype.name,
    }


def gate_from_config(cfg: Config, ctx: BuildContext) -> Gate:
    keys = [
        "input_size",
        "hidden_size",
        "recurrent_size",
        "activation",
        "peephole",
        *_INIT_KEYS,
        "dtype",
    ]
    ctx.check_keys(cfg, keys)
    n_in, n_h, n_r = (
        ctx.int(cfg, "input_size"),
        ctx.int(cfg, "hidden_size"),
        ctx.int(cfg, "recurrent_size"),
    )
    dtype = ctx.dtype(cfg)
    peephole = ctx.bool(cfg, "peephole")
    ctx.expect("W", (n_in, n_h), dtype)
    ctx.expect("U", (n_r, n_h), dtype)
    ctx.expect("b", (n_h,), dtype)
    if peephole:
        ctx.expect("p", (n_h,), dtype)
    return Gate(
        n_in,
        n_h,
        activation=ctx.activation(cfg, "activation"),
        peephole=peephole,
        recurrent_size=n_r,
        dtype=dtype,
        rng=ctx.rng,
        **{key: ctx.initializer(cfg, key) for key in _INIT_KEYS},
    )


# -- LSTMCell ---------------------------------------------------------------------------------


def lstm_to_config(cell: LSTMCell) -> Config:
    return {
        "input_size": int(cell.input_size),
        "hidden_size": int(cell.hidden_size),
        "cell_activation": activation_name(cell.cell_activation),
        "forget_bias": float(cell.forget_bias),
        "dtype": cell.dtype.name,
        "gates": {name: _to_config(gate) for name, gate in cell.gates.items()},
    }


def cell_gates(
    cfg: Config, ctx: BuildContext, names: tuple[str, ...], sizes: tuple[int, int, int], dtype: Any
) -> dict[str, Gate]:
    """Build a cell's named gates from ``cfg["gates"]`` and check each has the cell's sizes.

    ``sizes`` is ``(input_size, hidden_size, recurrent_size)``. Checking them here, against
    gates whose arrays were checked against the file, bounds what the cell will allocate.
    """
    gates_cfg = ctx.dict(cfg, "gates")
    if sorted(gates_cfg) != sorted(names):
        raise ValueError(
            f"{ctx.path}.gates: expected the gates {', '.join(names)}, received {', '.join(sorted(gates_cfg))}"
        )
    gates = {}
    for name in names:
        gate = ctx.build(gates_cfg[name], f"gates.{name}", f"{name}.")
        if not isinstance(gate, Gate):
            raise TypeError(
                f"{ctx.path}.gates.{name}: expected a Gate, received {type(gate).__name__}"
            )
        got = (gate.input_size, gate.hidden_size, gate.recurrent_size)
        if got != sizes or gate.dtype != dtype:
            raise ValueError(
                f"{ctx.path}.gates.{name}: expected (input, hidden, recurrent) sizes {sizes} and "
                f"dtype {np.dtype(dtype)} like the cell, received {got} and {gate.dtype}"
            )
        gates[name] = gate
    return gates


def lstm_from_config(cfg: Config, ctx: BuildContext) -> LSTMCell:
    ctx.check_keys(
        cfg, ["input_size", "hidden_size", "cell_activation", "forget_bias", "dtype", "gates"]
    )
    n_in, n_h, dtype = ctx.int(cfg, "input_size"), ctx.int(cfg, "hidden_size"), ctx.dtype(cfg)
    forget_bias = ctx.float(cfg, "forget_bias")
    cell_activation = ctx.activation(cfg, "cell_activation")
    gates = cell_gates(cfg, ctx, GATE_NAMES, (n_in, n_h, n_h), dtype)
    return LSTMCell(
        n_in, n_h, cell_activation=cell_activation, forget_bias=forget_bias, dtype=dtype, **gates
    )


# -- runners ----------------------------------------------------------------------------------


def recurrent_to_config(runner: Recurrent) -> Config:
    return {
        "cell": _to_config(runner.cell),
        "reverse": bool(runner.reverse),
        "fused": None if runner.fused is None else bool(runner.fused),
    }


def recurrent_from_config(cfg: Config, ctx: BuildContext) -> Recurrent:
    ctx.check_keys(cfg, ["cell", "reverse", "fused"])
    reverse = ctx.bool(cfg, "reverse")
    fused = None if cfg.get("fused") is None else ctx.bool(cfg, "fused")
    return Recurrent(ctx.build(cfg["cell"], "cell", "cell."), reverse=reverse, fused=fused)


def stacked_to_config(stack: Stacked) -> Config:
    return {
        "layers": [_to_config(layer) for layer in stack.layers],
        "dropout": float(stack.dropout),
    }


def stacked_from_config(cfg: Config, ctx: BuildContext) -> Stacked:
    ctx.check_keys(cfg, ["layers", "dropout"])
    dropout = ctx.float(cfg, "dropout", low=0.0, high=1.0)
    layers = [
        ctx.build(layer, f"layers[{k}]", f"layers.{k}.")
        for k, layer in enumerate(ctx.list(cfg, "layers"))
    ]
    return Stacked(layers, dropout=dropout, rng=ctx.rng)


def bidirectional_to_config(bi: Bidirectional) -> Config:
    return {
        "forward_layer": _to_config(bi.forward_layer),
        "backward_layer": _to_config(bi.backward_layer),
        "merge": bi.merge,
    }


def bidirectional_from_config(cfg: Config, ctx: BuildContext) -> Bidirectional:
    ctx.check_keys(cfg, ["forward_layer", "backward_layer", "merge"])
    merge = ctx.str(cfg, "merge", choices=MERGE_MODES)
    fwd = ctx.build(cfg["forward_layer"], "forward_layer", "forward_layer.")
    bwd = ctx.build(cfg["backward_layer"], "backward_layer", "backward_layer.")
    for key, layer in (("forward_layer", fwd), ("backward_layer", bwd)):
        if not isinstance(layer, Recurrent):
            raise TypeError(
                f"{ctx.path}.{key}: expected a Recurrent, received {type(layer).__name__}"
            )
    return Bidirectional(fwd, bwd, merge=merge)


def _to_config(obj: Any) -> Config:
    from lstmkit.config import to_config

    return to_config(obj)


register("Gate", Gate, gate_to_config, gate_from_config)
register("LSTMCell", LSTMCell, lstm_to_config, lstm_from_config)
register("Recurrent", Recurrent, recurrent_to_config, recurrent_from_config)
register("Stacked", Stacked, stacked_to_config, stacked_from_config)
register("Bidirectional", Bidirectional, bidirectional_to_config, bidirectional_from_config)

# The variants, wrappers and layers (imported last: that module uses cell_gates from this one).
from lstmkit import _variant_configs  # noqa: E402, F401
