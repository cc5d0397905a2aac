"""The shared declaration of cells built from named gates.

Every built-in cell is a set of named :class:`~lstmkit.Gate` objects plus the arithmetic
that combines them. :class:`GatedCell` declares what they all share once: the sizes, the
gates' activation and initializer options, dtype and ``rng``, building the gates, the zero
state, redrawing weights and the one-line description. :class:`LSTMFamilyCell` adds what the
LSTM variants share: the forget-gate bias and the diagonal peepholes. A variant states only
what differs: its gate names, its state, its step and backward, and any extra parameter.

A subclass names its gates in ``GATE_NAMES`` (drawn in that order), its state class in
``STATE``, and overrides ``step_train`` and ``step_backward``. It may add parameters by
overriding :meth:`GatedCell._build_extra` (called at construction and by
:meth:`GatedCell.reset_parameters`, after the gates, with the same generator).
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit import activations, config, initializers
from lstmkit.cells.base import (
    apply_forget_bias,
    build_gates,
    peephole_set,
    reset_gates,
    take_rng,
    zero_state,
)
from lstmkit.gate import Gate, positive_int
from lstmkit.module import Module, check_dtype, component
from lstmkit.state import LSTMState

__all__ = ["GatedCell", "LSTMFamilyCell"]

Array = NDArray[Any]


def _activation_option(instance: Any, attribute: Any, value: Any) -> None:
    activations.get(value, argument=attribute.name)


def _initializer_option(instance: Any, attribute: Any, value: Any) -> None:
    initializers.get(value, argument=attribute.name)


def _finite_number(instance: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(
            f"{attribute.name}: expected a real number, received {type(value).__name__}"
        )
    if not np.isfinite(value):
        raise ValueError(f"{attribute.name}: expected a finite number, received {value!r}")


@component
class GatedCell(Module):
    """Base of cells made of named :class:`~lstmkit.Gate` objects.

    Parameters
    ----------
    input_size : int
        Features of each input ``x_t``.
    hidden_size : int
        Units of every gate.
    gate_activation : str or Activation, default "sigmoid"
        Activation of every gate but the candidate (keyword only).
    candidate_activation : str or Activation, default "tanh"
        Activation of the gate named ``candidate`` (keyword only).
    kernel_initializer, recurrent_initializer, bias_initializer : str or callable
        Initializers of every gate's ``W``, ``U`` and ``b``; defaults Glorot-uniform,
        orthogonal and zeros (keyword only).
    dtype : float32 or float64, default float64
    rng : numpy.random.Generator or int or None
        Randomness for the initial weights; gates are drawn in the order of ``GATE_NAMES``.
    """

    #: The gates' attribute names, in drawing order.
    GATE_NAMES: ClassVar[tuple[str, ...]] = ()
    #: The state class (its fields' sizes come from :meth:`state_sizes`).
    STATE: ClassVar[type] = LSTMState
    #: Keys of :meth:`_config_options` in a saved description.
    CONFIG_OPTIONS: ClassVar[tuple[str, ...]] = ()
    #: Sub-components besides the gates that are saved with their own configuration.
    CONFIG_PARTS: ClassVar[tuple[str, ...]] = ()
    #: True declares that the cell's step gives each step's ``x`` to its gates unchanged (or
    #: reads ``x @ W`` through ``lstmkit._hoisting.input_product``), so a runner may compute
    #: ``x @ W`` of its gates (those of exactly the type ``Gate``) for the whole sequence in one
    #: product before its time loop. See the custom-cell guide.
    accepts_hoisted_inputs: ClassVar[bool] = False

    input_size: int = attrs.field(validator=positive_int)
    hidden_size: int = attrs.field(validator=positive_int)
    gate_activation: Any = attrs.field(
        default="sigmoid", kw_only=True, repr=False, validator=_activation_option
    )
    candidate_activation: Any = attrs.field(
        default="tanh", kw_only=True, repr=False, validator=_activation_option
    )
    kernel_initializer: Any = attrs.field(
        default="glorot_uniform", kw_only=True, repr=False, validator=_initializer_option
    )
    recurrent_initializer: Any = attrs.field(
        default="orthogonal", kw_only=True, repr=False, validator=_initializer_option
    )
    bias_initializer: Any = attrs.field(
        default="zeros", kw_only=True, repr=False, validator=_initializer_option
    )
    dtype: np.dtype[Any] = attrs.field(default=np.float64, kw_only=True, converter=check_dtype)
    rng: Any = attrs.field(default=None, kw_only=True, repr=False)

    def __attrs_post_init__(self) -> None:
        self._check_options()
        rng = take_rng(self)
        given = {name: getattr(self, name, None) for name in self.GATE_NAMES}
        built = build_gates(self, self.GATE_NAMES, rng, given=given, **self._gate_options())
        self._after_gates(built, given)
        # Assign only once every gate is valid, so a failed construction leaves nothing half-built.
        for name, gate in built.items():
            setattr(self, name, gate)
        self._build_extra(rng)

    # -- hooks for variants ---------------------------------------------------------------------

    def _check_options(self) -> None:
        """Checks of options that span several fields (before anything is drawn)."""

    def _gate_options(self) -> dict[str, Any]:
        """Further keyword arguments of :func:`~lstmkit.cells.base.build_gates`."""
        return {}

    def _after_gates(self, built: dict[str, Gate], given: dict[str, Any]) -> None:
        """Adjust freshly built gates (``given`` holds the gates the user passed, or None)."""

    def _build_extra(self, rng: np.random.Generator) -> None:
        """Draw the cell's parameters beyond its gates (construction and reset)."""

    # -- shared behaviour -----------------------------------------------------------------------

    def reset_parameters(self, rng: np.random.Generator | int | None = None) -> None:
        """Draw fresh weights for every gate, then the cell's other parameters, as at construction."""
        gen = reset_gates(self, rng)
        self._after_gates(self.gates, dict.fromkeys(self.GATE_NAMES))
        self._build_extra(gen)

    @property
    def gates(self) -> dict[str, Gate]:
        """The gates by name, in the order of ``GATE_NAMES``."""
        return {name: getattr(self, name) for name in self.GATE_NAMES}

    @property
    def output_size(self) -> int:
        """Features of each output ``y_t`` (``hidden_size`` unless a variant says otherwise)."""
        return self.hidden_size

    def state_sizes(self) -> dict[str, int]:
        """Size of each field of the state: ``h`` and ``c`` of ``hidden_size`` by default."""
        return {"h": self.hidden_size, "c": self.hidden_size}

    def initial_state(self, batch_size: int | None = None) -> Any:
        """Zero state; ``batch_size=None`` gives an unbatched state of shape ``(size,)``."""
        if batch_size is not None and (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, (int, np.integer))
            or batch_size < 0
        ):
            raise ValueError(
                f"batch_size: expected a non-negative integer or None, received {batch_size!r}"
            )
        return zero_state(self.STATE, batch_size, self.dtype, **self.state_sizes())

    def step(self, state: Any, x: Array) -> tuple[Any, Array]:
        """One time step: ``x (batch, input_size)`` -> ``(state, y (batch, output_size))``."""
        new, y, _ = self.step_train(state, x)
        return new, y

    def step_train(self, state: Any, x: Array) -> tuple[Any, Array, Any]:
        """:meth:`step` that also returns the cache :meth:`step_backward` needs."""
        raise NotImplementedError(f"{type(self).__name__} must define step_train")

    def step_backward(self, cache: Any, d_state: Any, d_y: Array) -> tuple[Any, Array]:
        """Back-propagate one step: ``(d_state_prev, d_x)``; accumulates parameter gradients."""
        raise NotImplementedError(f"{type(self).__name__} must define step_backward")

    def _describe_extra(self) -> str:
        return ""

    def describe(self) -> str:
        act = getattr(self, "cell_activation", None)
        act_text = "" if act is None else f", cell_activation={act.name}"
        return (
            f"{type(self).__name__}(input={self.input_size}, hidden={self.hidden_size}"
            f"{self._describe_extra()}{act_text}, {self.dtype})"
        )

    # -- configuration (see lstmkit.config) ------------------------------------------------------
    # A cell is saved as its sizes, its own options and its gates' configurations. Loading
    # builds the saved gates first (each checked against the file), then a fresh cell of the
    # same options, which adopts them after a check that each has exactly the structure the
    # cell expects. A variant lists its options in _config_options / _options_from_config.

    def _config_options(self) -> dict[str, Any]:
        """The cell's own settings beyond sizes, dtype and gates, JSON-compatible."""
        return {}

    @classmethod
    def _options_from_config(cls, cfg: dict[str, Any], ctx: config.BuildContext) -> dict[str, Any]:
        """Constructor keywords read from :meth:`_config_options` output."""
        return {}

    def to_config(self) -> dict[str, Any]:
        """Sizes, options, dtype and each gate's (and part's) configuration."""
        return {
            "input_size": int(self.input_size),
            "hidden_size": int(self.hidden_size),
            **self._config_options(),
            "dtype": self.dtype.name,
            "gates": {name: config.to_config(gate) for name, gate in self.gates.items()},
            **{name: config.to_config(getattr(self, name)) for name in self.CONFIG_PARTS},
        }

    @classmethod
    def from_config(cls, cfg: dict[str, Any], ctx: config.BuildContext) -> Any:
        """A cell from :meth:`to_config` output, every size checked against the file first."""
        sizes = ["input_size", "hidden_size"]
        ctx.check_keys(cfg, [*sizes, *cls.CONFIG_OPTIONS, "dtype", "gates", *cls.CONFIG_PARTS])
        n_in, n_h, dtype = ctx.int(cfg, "input_size"), ctx.int(cfg, "hidden_size"), ctx.dtype(cfg)
        options = cls._options_from_config(cfg, ctx)
        n_r = int(options.get("proj_size", n_h))
        gates = _saved_gates(cfg, ctx, cls.GATE_NAMES, (n_in, n_h, n_r), dtype)
        parts = {name: ctx.build(cfg[name], name, f"{name}.") for name in cls.CONFIG_PARTS}
        if "peephole" in attrs.fields_dict(cls):  # type: ignore[arg-type]
            options["peephole"] = [n for n, g in gates.items() if g.p is not None] or False
        cell = cls(n_in, n_h, dtype=dtype, rng=ctx.rng, **options)
        _adopt(ctx, cell, {**gates, **parts})
        return cell


@component
class LSTMFamilyCell(GatedCell):
    """Base of the LSTM variants: a :class:`GatedCell` with a forget gate and a cell state.

    Each variant declares its own ``cell_activation`` (``h = o * cell_activation(c)``)
    among its positional fields. This base adds to :class:`GatedCell`'s options (all
    keyword only):

    Parameters
    ----------
    forget_bias : float, default 1.0
        Added to the initial forget-gate bias (Jozefowicz et al. 2015; Keras
        ``unit_forget_bias``); finite.
    peephole : bool or collection of gate names, default False
        Diagonal peepholes on the gates in ``PEEPHOLE_GATES`` (True: all of them).
    peephole_initializer : str or callable, default "zeros"
        Initializer of the peephole weights ``p``.
    """

    GATE_NAMES: ClassVar[tuple[str, ...]] = ("forget", "input", "candidate", "output")
    #: The gates that may have a peephole (empty: the variant has none).
    PEEPHOLE_GATES: ClassVar[tuple[str, ...]] = ("forget", "input", "output")

    forget_bias: float = attrs.field(
        default=1.0, kw_only=True, repr=False, validator=_finite_number
    )
    peephole: Any = attrs.field(default=False, kw_only=True, repr=False)
    peephole_initializer: Any = attrs.field(
        default="zeros", kw_only=True, repr=False, validator=_initializer_option
    )

    def _check_peephole_names(self, names: frozenset[str]) -> None:
        """Extra check of the named peephole gates (a variant explains its own refusals)."""

    def _check_options(self) -> None:
        if not self.PEEPHOLE_GATES and self.peephole not in (False, None):
            raise ValueError(
                f"peephole: {type(self).__name__} has no peepholes, received {self.peephole!r}"
            )

    def _gate_options(self) -> dict[str, Any]:
        peep = peephole_set(self.peephole, self.PEEPHOLE_GATES, self._check_peephole_names)
        return {"peephole": peep, "peephole_initializer": self.peephole_initializer}

    def _after_gates(self, built: dict[str, Gate], given: dict[str, Any]) -> None:
        if given.get("forget") is None:  # a forget gate the user gives keeps its bias
            apply_forget_bias(self, built["forget"])

    CONFIG_OPTIONS: ClassVar[tuple[str, ...]] = ("cell_activation", "forget_bias")

    def _config_options(self) -> dict[str, Any]:
        return {
            "cell_activation": config.activation_name(self.cell_activation),  # type: ignore[attr-defined]
            "forget_bias": float(self.forget_bias),
        }

    @classmethod
    def _options_from_config(cls, cfg: dict[str, Any], ctx: config.BuildContext) -> dict[str, Any]:
        return {
            "cell_activation": ctx.activation(cfg, "cell_activation"),
            "forget_bias": ctx.float(cfg, "forget_bias"),
        }


def _structure(module: Module) -> dict[str, Any]:
    return {name: (p.shape, p.dtype) for name, p in module.named_parameters().items()}


def _adopt(ctx: config.BuildContext, owner: Module, parts: dict[str, Module]) -> None:
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


def _saved_gates(
    cfg: dict[str, Any],
    ctx: config.BuildContext,
    names: tuple[str, ...],
    sizes: tuple[int, int, int],
    dtype: Any,
) -> dict[str, Gate]:
    """Build a cell's named gates from ``cfg["gates"]`` and check each has the cell's sizes.

    ``sizes`` is ``(input_size, hidden_size, recurrent_size)``. Checking them here, against
    gates whose arrays were checked against the file, bounds what the cell will allocate.
    """
    gates_cfg = ctx.dict(cfg, "gates")
    if sorted(gates_cfg) != sorted(names):
        raise ValueError(
            f"{ctx.path}.gates: expected the gates {', '.join(names)}, "
            f"received {', '.join(sorted(gates_cfg))}"
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
