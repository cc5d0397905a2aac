"""Configuration functions of the cell variants, regularization wrappers and feed-forward layers.

Cells whose constructors build their own gates (coupled, GRU, layer-norm, projection) are rebuilt
in two steps: the saved gates (and norms) are built and checked against the file first, then a
fresh cell of the same sizes is constructed and adopts them, after a check that each one has
exactly the structure the cell expects (same type, same parameter shapes and dtypes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lstmkit import initializers
from lstmkit._builtin_configs import cell_gates
from lstmkit.cells.coupled import GATE_NAMES as COUPLED_GATES
from lstmkit.cells.coupled import CoupledLSTMCell
from lstmkit.cells.gru import GATE_NAMES as GRU_GATES
from lstmkit.cells.gru import UPDATE_CONVENTIONS, GRUCell
from lstmkit.cells.layernorm import GATE_NAMES as LN_GATES
from lstmkit.cells.layernorm import LayerNorm, LayerNormLSTMCell
from lstmkit.cells.lstm import GATE_NAMES as LSTM_GATES
from lstmkit.cells.projection import ProjectionLSTMCell
from lstmkit.config import BuildContext, activation_name, initializer_config, register, to_config
from lstmkit.layers import Dense, LastStep, MeanPool, Sequential
from lstmkit.module import Module
from lstmkit.regularization import VariationalDropout, Zoneout

Config = dict[str, Any]


def _structure(module: Module) -> dict[str, Any]:
    return {name: (p.shape, p.dtype) for name, p in module.named_parameters().items()}


def adopt(ctx: BuildContext, owner: Module, parts: Mapping[str, Module]) -> None:
    """Put the loaded ``parts`` into the freshly built ``owner``, if each fits exactly."""
    for name, part in parts.items():
        fresh = getattr(owner, name)
        if type(fresh) is not type(part) or _structure(fresh) != _structure(part):
            raise ValueError(
                f"{ctx.path}: the saved {name} does not fit a {type(owner).__name__} of these sizes "
                f"(expected {type(fresh).__name__} with parameters {_structure(fresh)}, received "
                f"{type(part).__name__} with {_structure(part)})"
            )
    for name, part in parts.items():
        setattr(owner, name, part)


def _peepholes(gates: dict[str, Any]) -> list[str]:
    return [name for name, gate in gates.items() if gate.p is not None]


def _gated_config(cell: Any) -> Config:
    return {
        "input_size": int(cell.input_size),
        "hidden_size": int(cell.hidden_size),
        "cell_activation": activation_name(cell.cell_activation),
        "forget_bias": float(cell.forget_bias),
        "dtype": cell.dtype.name,
        "gates": {name: to_config(gate) for name, gate in cell.gates.items()},
    }


_GATED_KEYS = ["input_size", "hidden_size", "cell_activation", "forget_bias", "dtype", "gates"]


# -- coupled LSTM -----------------------------------------------------------------------------


def coupled_from_config(cfg: Config, ctx: BuildContext) -> CoupledLSTMCell:
    ctx.check_keys(cfg, _GATED_KEYS)
    n_in, n_h, dtype = ctx.int(cfg, "input_size"), ctx.int(cfg, "hidden_size"), ctx.dtype(cfg)
    forget_bias, cell_act = ctx.float(cfg, "forget_bias"), ctx.activation(cfg, "cell_activation")
    gates = cell_gates(cfg, ctx, COUPLED_GATES, (n_in, n_h, n_h), dtype)
    cell = CoupledLSTMCell(
        n_in,
        n_h,
        cell_activation=cell_act,
        forget_bias=forget_bias,
        peephole=_peepholes(gates),
        dtype=dtype,
        rng=ctx.rng,
    )
    adopt(ctx, cell, gates)
    return cell


# -- GRU --------------------------------------------------------------------------------------


def gru_to_config(cell: GRUCell) -> Config:
    return {
        "input_size": int(cell.input_size),
        "hidden_size": int(cell.hidden_size),
        "reset_after": bool(cell.reset_after),
        "update_convention": cell.update_convention,
        "dtype": cell.dtype.name,
        "gates": {name: to_config(gate) for name, gate in cell.gates.items()},
    }


def gru_from_config(cfg: Config, ctx: BuildContext) -> GRUCell:
    ctx.check_keys(
        cfg, ["input_size", "hidden_size", "reset_after", "update_convention", "dtype", "gates"]
    )
    n_in, n_h, dtype = ctx.int(cfg, "input_size"), ctx.int(cfg, "hidden_size"), ctx.dtype(cfg)
    reset_after = ctx.bool(cfg, "reset_after")
    convention = ctx.str(cfg, "update_convention", choices=UPDATE_CONVENTIONS)
    gates = cell_gates(cfg, ctx, GRU_GATES, (n_in, n_h, n_h), dtype)
    if reset_after:
        ctx.expect("recurrent_bias", (n_h,), dtype)
    cell = GRUCell(
        n_in,
        n_h,
        reset_after=reset_after,
        update_convention=convention,
        peephole=_peepholes(gates) or False,
        dtype=dtype,
        rng=ctx.rng,
    )
    adopt(ctx, cell, gates)
    return cell


# -- layer-norm LSTM --------------------------------------------------------------------------


def layernorm_to_config(norm: LayerNorm) -> Config:
    return {
        "size": int(norm.size),
        "groups": int(norm.groups),
        "bias": bool(norm.use_bias),
        "epsilon": float(norm.epsilon),
        "dtype": norm.dtype.name,
    }


def layernorm_from_config(cfg: Config, ctx: BuildContext) -> LayerNorm:
    ctx.check_keys(cfg, ["size", "groups", "bias", "epsilon", "dtype"])
    size, groups, dtype = ctx.int(cfg, "size"), ctx.int(cfg, "groups"), ctx.dtype(cfg)
    use_bias, epsilon = ctx.bool(cfg, "bias"), ctx.float(cfg, "epsilon", low=0.0)
    shape = (size,) if groups == 1 else (groups, size)
    ctx.expect("gain", shape, dtype)
    if use_bias:
        ctx.expect("bias", shape, dtype)
    return LayerNorm(size, groups=groups, bias=use_bias, epsilon=epsilon, dtype=dtype)


def ln_cell_to_config(cell: LayerNormLSTMCell) -> Config:
    return {
        **_gated_config(cell),
        "epsilon": float(cell.epsilon),
        **{name: to_config(getattr(cell, name)) for name in ("norm_x", "norm_h", "norm_c")},
    }


def ln_cell_from_config(cfg: Config, ctx: BuildContext) -> LayerNormLSTMCell:
    ctx.check_keys(cfg, [*_GATED_KEYS, "epsilon", "norm_x", "norm_h", "norm_c"])
    n_in, n_h, dtype = ctx.int(cfg, "input_size"), ctx.int(cfg, "hidden_size"), ctx.dtype(cfg)
    forget_bias, cell_act = ctx.float(cfg, "forget_bias"), ctx.activation(cfg, "cell_activation")
    epsilon = ctx.float(cfg, "epsilon", low=0.0)
    gates = cell_gates(cfg, ctx, LN_GATES, (n_in, n_h, n_h), dtype)
    norms = {
        name: ctx.build(cfg[name], name, f"{name}.") for name in ("norm_x", "norm_h", "norm_c")
    }
    if peep := _peepholes(gates):
        raise ValueError(
            f"{ctx.path}.gates: a LayerNormLSTMCell has no peepholes, received some on {peep}"
        )
    cell = LayerNormLSTMCell(
        n_in,
        n_h,
        cell_activation=cell_act,
        forget_bias=forget_bias,
        epsilon=epsilon,
        dtype=dtype,
        rng=ctx.rng,
    )
    adopt(ctx, cell, {**gates, **norms})
    return cell


# -- projection LSTM --------------------------------------------------------------------------


def projection_to_config(cell: ProjectionLSTMCell) -> Config:
    init = initializers.get(cell.projection_initializer)
    return {
        **_gated_config(cell),
        "proj_size": int(cell.proj_size),
        "projection_initializer": initializer_config(init),
    }


def projection_from_config(cfg: Config, ctx: BuildContext) -> ProjectionLSTMCell:
    ctx.check_keys(cfg, [*_GATED_KEYS, "proj_size", "projection_initializer"])
    n_in, n_h, dtype = ctx.int(cfg, "input_size"), ctx.int(cfg, "hidden_size"), ctx.dtype(cfg)
    n_p = ctx.int(cfg, "proj_size")
    forget_bias, cell_act = ctx.float(cfg, "forget_bias"), ctx.activation(cfg, "cell_activation")
    gates = cell_gates(cfg, ctx, LSTM_GATES, (n_in, n_h, n_p), dtype)
    ctx.expect("projection", (n_h, n_p), dtype)
    cell = ProjectionLSTMCell(
        n_in,
        n_h,
        n_p,
        cell_activation=cell_act,
        forget_bias=forget_bias,
        peephole=_peepholes(gates),
        projection_initializer=ctx.initializer(cfg, "projection_initializer"),
        dtype=dtype,
        rng=ctx.rng,
    )
    adopt(ctx, cell, gates)
    return cell


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


register("CoupledLSTMCell", CoupledLSTMCell, _gated_config, coupled_from_config)
register("GRUCell", GRUCell, gru_to_config, gru_from_config)
register("LayerNorm", LayerNorm, layernorm_to_config, layernorm_from_config)
register("LayerNormLSTMCell", LayerNormLSTMCell, ln_cell_to_config, ln_cell_from_config)
register("ProjectionLSTMCell", ProjectionLSTMCell, projection_to_config, projection_from_config)
register("VariationalDropout", VariationalDropout, variational_to_config, variational_from_config)
register("Zoneout", Zoneout, zoneout_to_config, zoneout_from_config)
register("Dense", Dense, dense_to_config, dense_from_config)
register("LastStep", LastStep, _no_settings, _pool_from_config(LastStep))
register("MeanPool", MeanPool, _no_settings, _pool_from_config(MeanPool))
register("Sequential", Sequential, sequential_to_config, sequential_from_config)
