"""Configuration functions of the runners, regularization wrappers and feed-forward layers.

Registered with :func:`lstmkit.config.register` when :mod:`lstmkit` is imported. The gate and
the cells declare theirs beside their classes (``to_config``/``from_config`` and
:func:`lstmkit.config.configurable`).
"""

from __future__ import annotations

from typing import Any

from lstmkit import initializers
from lstmkit.config import BuildContext, activation_name, initializer_config, register, to_config
from lstmkit.layers import Dense, LastStep, MeanPool, Sequential
from lstmkit.regularization import VariationalDropout, Zoneout
from lstmkit.runners.bidirectional import MERGE_MODES, Bidirectional
from lstmkit.runners.recurrent import Recurrent
from lstmkit.runners.stacked import Stacked

Config = dict[str, Any]


# -- runners ----------------------------------------------------------------------------------


def recurrent_to_config(runner: Recurrent) -> Config:
    return {
        "cell": to_config(runner.cell),
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
        "layers": [to_config(layer) for layer in stack.layers],
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
        "forward_layer": to_config(bi.forward_layer),
        "backward_layer": to_config(bi.backward_layer),
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


# -- regularization wrappers ------------------------------------------------------------------


def variational_to_config(cell: VariationalDropout) -> Config:
    return {
        "cell": to_config(cell.cell),
        "input_rate": float(cell.input_rate),
        "recurrent_rate": float(cell.recurrent_rate),
    }


def variational_from_config(cfg: Config, ctx: BuildContext) -> VariationalDropout:
    ctx.check_keys(cfg, ["cell", "input_rate", "recurrent_rate"])
    rates = [ctx.float(cfg, key, low=0.0, high=1.0) for key in ("input_rate", "recurrent_rate")]
    return VariationalDropout(ctx.build(cfg["cell"], "cell", "cell."), *rates, rng=ctx.rng)


def zoneout_to_config(cell: Zoneout) -> Config:
    return {
        "cell": to_config(cell.cell),
        "h_rate": float(cell.h_rate),
        "c_rate": float(cell.c_rate),
        "inference": cell.inference,
    }


def zoneout_from_config(cfg: Config, ctx: BuildContext) -> Zoneout:
    ctx.check_keys(cfg, ["cell", "h_rate", "c_rate", "inference"])
    rates = [ctx.float(cfg, key, low=0.0, high=1.0) for key in ("h_rate", "c_rate")]
    inference = ctx.str(cfg, "inference", choices=("off", "expectation"))
    return Zoneout(
        ctx.build(cfg["cell"], "cell", "cell."), *rates, inference=inference, rng=ctx.rng
    )


# -- feed-forward layers ----------------------------------------------------------------------


def dense_to_config(layer: Dense) -> Config:
    return {
        "input_size": int(layer.input_size),
        "output_size": int(layer.output_size),
        "activation": activation_name(layer.activation),
        "kernel_initializer": initializer_config(initializers.get(layer.kernel_initializer)),
        "bias_initializer": initializer_config(initializers.get(layer.bias_initializer)),
        "dtype": layer.dtype.name,
    }


def dense_from_config(cfg: Config, ctx: BuildContext) -> Dense:
    keys = [
        "input_size",
        "output_size",
        "activation",
        "kernel_initializer",
        "bias_initializer",
        "dtype",
    ]
    ctx.check_keys(cfg, keys)
    n_in, n_out, dtype = ctx.int(cfg, "input_size"), ctx.int(cfg, "output_size"), ctx.dtype(cfg)
    ctx.expect("W", (n_in, n_out), dtype)
    ctx.expect("b", (n_out,), dtype)
    return Dense(
        n_in,
        n_out,
        activation=ctx.activation(cfg, "activation"),
        dtype=dtype,
        rng=ctx.rng,
        kernel_initializer=ctx.initializer(cfg, "kernel_initializer"),
        bias_initializer=ctx.initializer(cfg, "bias_initializer"),
    )


def _no_settings(layer: Any) -> Config:
    return {}


def _pool_from_config(cls: type) -> Any:
    def build(cfg: Config, ctx: BuildContext) -> Any:
        ctx.check_keys(cfg, [])
        return cls()

    return build


def sequential_to_config(model: Sequential) -> Config:
    return {"layers": [to_config(layer) for layer in model.layers]}


def sequential_from_config(cfg: Config, ctx: BuildContext) -> Sequential:
    ctx.check_keys(cfg, ["layers"])
    layers = ctx.list(cfg, "layers")
    return Sequential(
        *[ctx.build(layer, f"layers[{k}]", f"layers.{k}.") for k, layer in enumerate(layers)]
    )


register("Recurrent", Recurrent, recurrent_to_config, recurrent_from_config)
register("Stacked", Stacked, stacked_to_config, stacked_from_config)
register("Bidirectional", Bidirectional, bidirectional_to_config, bidirectional_from_config)
register("VariationalDropout", VariationalDropout, variational_to_config, variational_from_config)
register("Zoneout", Zoneout, zoneout_to_config, zoneout_from_config)
register("Dense", Dense, dense_to_config, dense_from_config)
register("LastStep", LastStep, _no_settings, _pool_from_config(LastStep))
register("MeanPool", MeanPool, _no_settings, _pool_from_config(MeanPool))
register("Sequential", Sequential, sequential_to_config, sequential_from_config)
