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

Config = dict[str, Any]


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


register("Dense", Dense, dense_to_config, dense_from_config)
register("LastStep", LastStep, _no_settings, _pool_from_config(LastStep))
register("MeanPool", MeanPool, _no_settings, _pool_from_config(MeanPool))
register("Sequential", Sequential, sequential_to_config, sequential_from_config)
