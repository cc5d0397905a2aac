"""The cell contract: what a runner needs from a cell.

A cell is one time step ``(state, x_t) -> (state, y_t)``. Any object with the
members below runs inside :class:`~lstmkit.Recurrent`, :class:`~lstmkit.Stacked`
and :class:`~lstmkit.Bidirectional`; subclassing :class:`~lstmkit.module.Module`
gives it parameter listing, state dicts and the tree repr.

Inference needs ``input_size``, ``hidden_size``, ``dtype``,
``initial_state(batch_size)`` and ``step(state, x)``. Training also needs
``step_train(state, x) -> (state, y, cache)`` and
``step_backward(cache, d_state, d_y) -> (d_state_prev, d_x)``, which must
accumulate parameter gradients into ``Parameter.grad``. The protocols are
defined in :mod:`lstmkit.protocols` (re-exported here).

A cell may also offer a fused whole-sequence path, used by runners when the
cell declares it exact (see :meth:`lstmkit.LSTMCell.cannot_fuse`).

The helper functions below hold what the built-in cells share: building their
gates from the construction options, the forget-bias initialization, zero states
and the checks of a step's input, state and cache.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit import activations
from lstmkit.gate import Gate
from lstmkit.initializers import as_rng
from lstmkit.protocols import Cell, TrainableCell
from lstmkit.state import LSTMState

__all__ = ["Cell", "TrainableCell", "WrapsCell", "check_step_input"]
__all__ += ["apply_forget_bias", "build_gates", "check_given_gate", "check_lstm_state"]
__all__ += ["check_state", "check_step_cache", "peephole_set", "reset_gates", "take_rng"]
__all__ += ["refuse_masked", "zero_state"]

Array = NDArray[Any]
S = TypeVar("S")


class WrapsCell:
    """Sizes and dtype read from ``self.cell``: what a wrapper or runner of one cell exposes."""

    cell: Any

    @property
    def input_size(self) -> int:
        """Features of each input ``x_t`` (the cell's)."""
        return int(self.cell.input_size)

    @property
    def hidden_size(self) -> int:
        """Units of the cell's hidden state."""
        return int(self.cell.hidden_size)

    @property
    def output_size(self) -> int:
        """Features of each output ``y_t``: the cell's ``output_size``, else its ``hidden_size``."""
        return int(getattr(self.cell, "output_size", self.cell.hidden_size))

    @property
    def dtype(self) -> np.dtype[Any]:
        """The cell's dtype."""
        return np.dtype(self.cell.dtype)


def refuse_masked(value: Any, argument: str) -> None:
    """Masked arrays would have their mask silently ignored by every product: refuse them."""
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(
            f"{argument}: masked arrays are not supported (the mask would be ignored); fill the "
            "masked values (e.g. x.filled(0)) and pass lengths for padded sequences"
        )
    if isinstance(value, np.matrix):
        raise TypeError(f"{argument}: expected a numpy ndarray, received numpy.matrix (use m.A)")


def check_step_input(cell: Any, x: Any) -> Array:
    """Validate one step's input: a (batch, input_size) array, converted to the cell's dtype."""
    refuse_masked(x, "x")
    x = np.asarray(x)
    if x.dtype.kind not in "fiu":
        raise TypeError(f"x: expected a real numeric array, received dtype {x.dtype}")
    if x.ndim != 2 or x.shape[1] != cell.input_size:
        raise ValueError(f"x: expected shape (batch, {cell.input_size}), received {x.shape}")
    return x.astype(cell.dtype, copy=False)


def check_state(
    state: Any, kind: type[S], batch: int, *, dtype: Any, article: str = "a", **sizes: int
) -> S:
    """Validate a state of type ``kind`` whose arrays have shapes ``(batch, size)``.

    ``sizes`` maps each field of the state to its size; ``article`` is the one that goes
    before the type's name in the error message. Arrays must hold real numbers; they are
    returned in ``dtype`` (the cell's), so a state never changes the precision of a step.
    """
    if not isinstance(state, kind):
        raise TypeError(
            f"state: expected {article} {kind.__name__}, received {type(state).__name__}"
        )
    cast = {}
    for name, size in sizes.items():
        arr = getattr(state, name)
        refuse_masked(arr, f"state.{name}")
        if not isinstance(arr, np.ndarray) or arr.shape != (batch, size):
            got = getattr(arr, "shape", type(arr).__name__)
            raise ValueError(f"state.{name}: expected shape ({batch}, {size}), received {got}")
        if arr.dtype.kind not in "fiu":
            raise TypeError(f"state.{name}: expected real numbers, received dtype {arr.dtype}")
        if arr.dtype != dtype:
            cast[name] = arr.astype(dtype)
    return attrs.evolve(state, **cast) if cast else state  # type: ignore[misc]


def check_lstm_state(state: Any, batch: int, h_size: int, c_size: int, dtype: Any) -> LSTMState:
    """Validate an :class:`~lstmkit.LSTMState` of shapes ``(batch, h_size)``, ``(batch, c_size)``."""
    return check_state(state, LSTMState, batch, dtype=dtype, article="an", h=h_size, c=c_size)


# Step caches already back-propagated: a second backward of one cache would add its
# gradients twice. Weak references, so a cache is forgotten with the cache itself.
_CONSUMED: weakref.WeakSet[Any] = weakref.WeakSet()


def check_step_cache(cache: Any, kind: type[S], d_y: Any = None, *, like: str = "") -> S:
    """Check that ``cache`` is the ``kind`` that the cell's ``step_train`` returns.

    With ``like`` (from a ``step_backward``), also check that ``d_y`` is a real array shaped
    like the cache's field of that name (the step's output), and that the cache has not been
    back-propagated before; it then counts as consumed.
    """
    if not isinstance(cache, kind):
        raise TypeError(
            f"cache: expected the {kind.__name__} from step_train, received {type(cache).__name__}"
        )
    if like and cache in _CONSUMED:
        raise ValueError(
            "cache: this step was already back-propagated (its gradients are in the "
            "parameters); run step_train again"
        )
    if like:
        want = getattr(cache, like).shape
        if not isinstance(d_y, np.ndarray) or d_y.dtype.kind not in "fiu":
            got = getattr(d_y, "dtype", type(d_y).__name__)
            raise TypeError(f"d_y: expected a real numpy array, received {got}")
        if d_y.shape != want:
            raise ValueError(f"d_y: expected shape {want}, received {d_y.shape}")
        _CONSUMED.add(cache)
    return cache


def zero_state(kind: Callable[..., S], batch_size: int | None, dtype: Any, **sizes: int) -> S:
    """A ``kind`` state of zeros: each field ``(batch_size, size)``, or ``(size,)`` if None."""
    lead = () if batch_size is None else (batch_size,)
    return kind(**{name: np.zeros(lead + (size,), dtype) for name, size in sizes.items()})


def peephole_set(
    value: Any,
    allowed: Sequence[str],
    check: Callable[[frozenset[str]], None] | None = None,
) -> frozenset[str]:
    """The gates named by a cell's ``peephole`` option: True (all of ``allowed``), False or names.

    ``check``, if given, sees the names before they are compared with ``allowed``.
    """
    if value is True:
        return frozenset(allowed)
    if value is False or value is None:
        return frozenset()
    if isinstance(value, str) or not isinstance(value, Sequence | set | frozenset):
        raise TypeError(
            f"peephole: expected a bool or a collection of gate names, received {value!r}"
        )
    names = frozenset(value)
    if check is not None:
        check(names)
    unknown = names - set(allowed)
    if unknown:
        raise ValueError(
            f"peephole: gates {sorted(unknown)} cannot have peepholes; expected a subset of "
            f"{list(allowed)}"
        )
    return names


def take_rng(cell: Any) -> np.random.Generator:
    """The cell's ``rng`` option as a Generator, clearing the field (a cell keeps no random state)."""
    rng = as_rng(cell.rng)
    cell.rng = None
    return rng


def check_given_gate(cell: Any, name: str, gate: Any) -> Gate:
    """Check a gate given to a cell's constructor: a :class:`~lstmkit.Gate` of the cell's sizes.

    Its dtype must be the cell's too, and a ``candidate`` gate cannot have a peephole.
    """
    if not isinstance(gate, Gate):
        raise TypeError(f"{name}: expected a Gate, received {type(gate).__name__}")
    if (gate.input_size, gate.hidden_size) != (cell.input_size, cell.hidden_size):
        raise ValueError(
            f"{name}: expected a gate of sizes (input={cell.input_size}, "
            f"hidden={cell.hidden_size}), received (input={gate.input_size}, "
            f"hidden={gate.hidden_size})"
        )
    if gate.dtype != cell.dtype:
        raise TypeError(f"{name}: expected dtype {cell.dtype}, received {gate.dtype}")
    if name == "candidate" and gate.p is not None:
        raise ValueError("candidate: the candidate gate cannot have a peephole")
    return gate


def build_gates(
    cell: Any,
    names: Iterable[str],
    rng: np.random.Generator,
    *,
    peephole: Collection[str] = frozenset(),
    given: Mapping[str, Any] | None = None,
    **options: Any,
) -> dict[str, Gate]:
    """The cell's gates by name, built from its construction options.

    Every gate is a :class:`~lstmkit.Gate` of the cell's ``input_size``, ``hidden_size``
    and ``dtype`` with the cell's ``kernel_initializer``, ``recurrent_initializer`` and
    ``bias_initializer``; the one named ``candidate`` uses ``candidate_activation``, the
    others ``gate_activation``. Gates are drawn from ``rng`` in the order of ``names``.
    Those in ``peephole`` get one; ``options`` are further keyword arguments of every
    gate (e.g. ``peephole_initializer``, ``recurrent_size``). A gate in ``given`` (not
    None) is checked with :func:`check_given_gate` and used as it is.
    """
    gate_act = activations.get(cell.gate_activation, argument="gate_activation")
    cand_act = activations.get(cell.candidate_activation, argument="candidate_activation")
    gates: dict[str, Gate] = {}
    for name in names:
        gate = None if given is None else given.get(name)
        if gate is not None:
            gates[name] = check_given_gate(cell, name, gate)
            continue
        gates[name] = Gate(
            cell.input_size,
            cell.hidden_size,
            activation=cand_act if name == "candidate" else gate_act,
            peephole=name in peephole,
            kernel_initializer=cell.kernel_initializer,
            recurrent_initializer=cell.recurrent_initializer,
            bias_initializer=cell.bias_initializer,
            dtype=cell.dtype,
            rng=rng,
            **options,
        )
    return gates


def apply_forget_bias(cell: Any, gate: Gate | None = None) -> None:
    """Add the cell's ``forget_bias`` to the bias of ``gate`` (default: the cell's ``forget``)."""
    if cell.forget_bias != 0:
        (cell.forget if gate is None else gate).b.value += cell.dtype.type(cell.forget_bias)


def reset_gates(cell: Any, rng: np.random.Generator | int | None) -> np.random.Generator:
    """Draw fresh weights for every gate of ``cell.gates``, in order, from one generator.

    Returns the generator, for whatever else the cell draws after its gates.
    """
    gen = as_rng(rng)
    for gate in cell.gates.values():
        gate.reset_parameters(gen)
    return gen
