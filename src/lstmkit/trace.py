"""Watch a recurrent network work: every gate's value and every state, at every step.

``trace(model, x)`` runs a model once, exactly as calling it would, and returns its outputs together
with a :class:`LayerTrace` for every :class:`~lstmkit.Recurrent` inside it (each layer of a
:class:`~lstmkit.Stacked`, each direction of a :class:`~lstmkit.Bidirectional`, each runner of
a :class:`~lstmkit.Sequential`): the value of each gate, by name, the state after each step
(``h``, and ``c`` for an LSTM) and, on request, each gate's pre-activation.

How values are collected, and why the numbers are the model's own:

* A stepped run (any cell but a plain :class:`~lstmkit.LSTMCell`) records what its
  :class:`~lstmkit.Gate` objects compute when the cell calls them, so a user's cell built from
  gates, or a user's ``Gate`` subclass that computes through ``Gate.__call__``, is traced with
  no extra code. Cells that compute a gate without calling it (the layer-norm LSTM, the GRU's
  reset-after candidate) report it themselves with :func:`record_gate`; a user's cell that
  does the same can call it too.
* A fused :class:`~lstmkit.LSTMCell` run takes the kernel's training path, whose cache holds
  every gate value and state; the outputs are the ones that path computes, identical to the
  untraced call (tests compare them bit for bit). Its pre-activations are recomputed with
  :meth:`Gate.preactivation` from the recorded inputs and states.
* Nothing is recorded past a sequence's length: those entries are NaN and ``mask`` is False.
  Time is the caller's time axis, also for a reversed runner.

Memory: every recorded quantity is one value per step, sequence and unit, so a trace takes
``itemsize * (gates + state fields [+ gates with pre-activations])`` bytes per step, sequence
and unit: 48 bytes for a float64 LSTM (80 with pre-activations). ``layers``, ``gates``,
``units`` and ``states=False`` cut that down. While it runs, a fused LSTM also holds its
training cache (``6 * hidden`` values per step and sequence).

When no trace is running, the hooks cost one context-variable read per gate call and per
runner call (``benchmarks/trace_overhead.py`` measures it).

Examples
--------
>>> import numpy as np
>>> from lstmkit import LSTMCell, Recurrent
>>> from lstmkit.trace import trace
>>> rnn = Recurrent(LSTMCell(3, 4, rng=0))
>>> t = trace(rnn, np.ones((2, 5, 3)), lengths=[5, 2])
>>> sorted(t.layer().gates), t.layer().gates["forget"].shape
(['candidate', 'forget', 'input', 'output'], (2, 5, 4))
>>> bool(np.isnan(t.layer().gates["forget"][1, 2:]).all()), t.layer().mask[1].tolist()
(True, [True, True, False, False, False])
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit._tracing import RECORDER, record_gate
from lstmkit.gate import Gate
from lstmkit.module import Module
from lstmkit.state import state_arrays

__all__ = ["LayerTrace", "Trace", "record_gate", "trace"]

Array = NDArray[Any]

#: The gate order of the fused LSTM kernel's cache (see :mod:`lstmkit.cells.lstm_fused`).
_FUSED_ORDER = ("output", "input", "forget", "candidate")


@attrs.frozen(eq=False)
class LayerTrace:
    """What one runner (one layer, one direction) computed at every step.

    Every array is ``(batch, time, units)`` (``(time, units)`` for an unbatched call), in the
    caller's time order, NaN where ``mask`` is False (past the sequence's length).

    Attributes
    ----------
    name : str
        The runner's dotted path in the traced model (``"root"`` for the model itself),
        e.g. ``"layers.1"`` or ``"layers.0.backward_layer"``.
    cell : str
        The class name of the runner's cell.
    reverse : bool
        Whether the runner processed each sequence from its end.
    fused : bool
        Whether the values came from the fused LSTM kernel.
    gates : dict of str to ndarray
        Each gate's value (its activation's output), by the gate's path in the cell
        (``"forget"``, or ``"cell.forget"`` inside a wrapper).
    preactivations : dict of str to ndarray
        Each gate's input to its activation; empty unless requested.
    states : dict of str to ndarray
        The state after each step by field (``"h"``, ``"c"``); empty with ``states=False``.
    mask : ndarray of bool, shape (batch, time)
        True where the step was part of the sequence.
    units : ndarray of int or None
        The unit indices kept (None: all units); state fields of another width (a projection
        LSTM's ``h``) are kept whole.
    unreported : tuple of str
        Gates of the cell that reported no value (a gate the cell never calls, or a ``Gate``
        subclass whose ``__call__`` bypasses ``Gate.__call__``).
    """

    name: str
    cell: str
    reverse: bool
    fused: bool
    gates: dict[str, Array]
    preactivations: dict[str, Array]
    states: dict[str, Array]
    mask: Array
    units: Array | None
    unreported: tuple[str, ...]

    @property
    def nbytes(self) -> int:
        """Bytes held by the recorded arrays."""
        groups = (self.gates, self.preactivations, self.states)
        return sum(a.nbytes for group in groups for a in group.values())

    def values(self, name: str) -> Array:
        """A gate's values, or a state field's (``"h"``, ``"c"``), by name."""
        if name in self.gates:
            return self.gates[name]
        if name in self.states:
            return self.states[name]
        known = sorted([*self.gates, *self.states])
        raise KeyError(f"name: expected one of {known}, received {name!r}")


@attrs.frozen(eq=False)
class Trace:
    """The result of :func:`trace`: the model's outputs and one :class:`LayerTrace` per runner.

    Attributes
    ----------
    output : ndarray
        What calling the model returns (its first value).
    final_state : state
        The model's final state.
    layers : dict of str to LayerTrace
        By the runner's dotted path, in the order they ran.
    """

    output: Any
    final_state: Any
    layers: dict[str, LayerTrace]

    @property
    def nbytes(self) -> int:
        """Bytes held by every layer's recorded arrays."""
        return sum(layer.nbytes for layer in self.layers.values())

    def layer(self, name: str | None = None) -> LayerTrace:
        """One layer's trace by name; with no name, the only one (an error if there are several)."""
        if name is None:
            if len(self.layers) != 1:
                raise ValueError(f"name: this trace has layers {list(self.layers)}; name one")
            return next(iter(self.layers.values()))
        if name not in self.layers:
            raise KeyError(f"name: expected one of {list(self.layers)}, received {name!r}")
        return self.layers[name]


def _children(obj: Any) -> Iterator[tuple[str, Any]]:
    """Sub-modules of a Module, or modules held in a plain object's attributes."""
    if isinstance(obj, Module):
        yield from obj.named_children()
        return
    for key, value in getattr(obj, "__dict__", {}).items():
        if isinstance(value, Module):
            yield key, value
        elif isinstance(value, (list, tuple)):
            for k, item in enumerate(value):
                if isinstance(item, Module):
                    yield f"{key}.{k}", item


def _walk(obj: Any, prefix: str = "", seen: set[int] | None = None) -> Iterator[tuple[str, Any]]:
    seen = set() if seen is None else seen
    for name, child in _children(obj):
        if id(child) in seen:
            continue
        seen.add(id(child))
        path = f"{prefix}{name}"
        yield path, child
        yield from _walk(child, path + ".", seen)


def _name_set(value: Any, argument: str) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Iterable) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{argument}: expected names (strings) or None, received {value!r}")
    return frozenset(value)


class _Recording:
    """One runner's recording, in the runner's processing order (time-major, sorted)."""

    def __init__(self, recorder: _Recorder, runner: Any, name: str, plan: Any) -> None:
        self.recorder, self.runner, self.name, self.plan = recorder, runner, name, plan
        self.T, self.B = plan.time, plan.batch
        self.hidden = int(runner.cell.hidden_size)
        self.dtype = runner.dtype
        self.gate_names = {id(g): p for p, g in _walk(runner.cell) if isinstance(g, Gate)}
        self.declared = [p for p, g in _walk(runner.cell) if isinstance(g, Gate)]
        units = recorder.units
        if units is not None and units.size and (units.max() >= self.hidden):
            raise ValueError(
                f"units: layer {name!r} has {self.hidden} units, received index {int(units.max())}"
            )
        self.gates: dict[str, Array] = {}
        self.pre: dict[str, Array] = {}
        self.states: dict[str, Array] = {}
        self.t, self.n = 0, self.B
        self.seen: dict[str, int] = {}
        self.fused_run = False

    def _keep(self, a: Array) -> Array:
        units = self.recorder.units
        return a if units is None or a.shape[-1] != self.hidden else a[..., units]

    def _slot(self, store: dict[str, Array], name: str, width: int) -> Array:
        if name not in store:
            units = self.recorder.units
            w = len(units) if units is not None and width == self.hidden else width
            store[name] = np.full((self.T, self.B, w), np.nan, self.dtype)
        return store[name]

    def _wanted(self, name: str) -> bool:
        chosen = self.recorder.gates
        return chosen is None or name in chosen or name.rsplit(".", 1)[-1] in chosen

    # -- stepped runs -------------------------------------------------------------------------

    def begin_step(self, t: int, n: int) -> None:
        self.t, self.n = t, n
        self.seen = {}

    def gate(self, gate: Any, z: Any, y: Any) -> None:
        name = self.gate_names.get(id(gate))
        if name is None:  # a gate the cell made or holds where the walk cannot see it
            name = self.gate_names[id(gate)] = f"gate{len(self.gate_names)}"
        calls = self.seen[name] = self.seen.get(name, 0) + 1
        if calls > 1:  # the cell called this gate again in the same step
            name = f"{name}#{calls}"
        if not self._wanted(name.split("#")[0]):
            return
        y = np.asarray(y)
        self._slot(self.gates, name, y.shape[-1])[self.t, : self.n] = self._keep(y)
        if self.recorder.preactivations:
            z = np.asarray(z)
            self._slot(self.pre, name, z.shape[-1])[self.t, : self.n] = self._keep(z)

    def end_step(self, state: Any) -> None:
        if self.recorder.states:
            for field, a in state_arrays(state).items():
                self._slot(self.states, field, a.shape[-1])[self.t, : self.n] = self._keep(a)

    # -- the fused LSTM kernel -------------------------------------------------------------------

    def fused(self, cache: Any) -> None:
        """Read every gate and state of a fused :class:`~lstmkit.LSTMCell` run from its cache."""
        self.fused_run = True
        H, T, cell = self.hidden, self.T, self.runner.cell
        Z, Y = cache.z, cache.y  # (T + 1, 5H, B) [o, i, f, g, c_prev], (T + 1, H, B)
        h_prev, c_prev = Y[:T].transpose(0, 2, 1), Z[:T, 4 * H :].transpose(0, 2, 1)
        c_new, h_new = Z[1:, 4 * H :].transpose(0, 2, 1), Y[1:].transpose(0, 2, 1)
        for name in cell.GATE_NAMES:
            k = _FUSED_ORDER.index(name)
            if not self._wanted(name):
                continue
            self.gates[name] = self._keep(Z[:T, k * H : (k + 1) * H].transpose(0, 2, 1)).copy()
            if self.recorder.preactivations:
                gate = getattr(cell, name)
                flat = cache.x.reshape(T * self.B, -1)
                peep = (c_new if name == "output" else c_prev).reshape(T * self.B, H)
                z = gate.preactivation(flat, h_prev.reshape(T * self.B, -1), peep)
                self.pre[name] = self._keep(z.reshape(T, self.B, H))
        if self.recorder.states:
            self.states["h"] = self._keep(h_new).copy()
            self.states["c"] = self._keep(c_new).copy()
        inactive = ~self._processing_mask()
        for store in (self.gates, self.pre, self.states):
            for a in store.values():
                a[inactive] = np.nan

    # -- the caller's layout -----------------------------------------------------------------

    def _processing_mask(self) -> Array:
        sizes = self.plan.batch_sizes
        if sizes is None:
            return np.ones((self.T, self.B), bool)
        return np.arange(self.B)[None, :] < np.asarray(sizes)[:, None]

    def _to_caller(self, a: Array) -> Array:
        plan = self.plan
        if plan.time_index is not None:
            a = a[plan.time_index, np.arange(self.B)[None, :]]
        if plan.order is not None:
            a = a[:, np.argsort(plan.order)]
        a = np.ascontiguousarray(np.swapaxes(a, 0, 1))
        return a[0] if plan.unbatched else a

    def finish(self) -> None:
        fields = self.runner.cell.state_sizes() if hasattr(self.runner.cell, "state_sizes") else {}
        if self.recorder.states:
            for field, width in fields.items():
                self._slot(self.states, field, width)
        reported = {name.split("#")[0] for name in self.gates}
        if self.T > 0 and self.B > 0:
            unreported = tuple(p for p in self.declared if self._wanted(p) and p not in reported)
        else:
            unreported = ()
            for p in self.declared:
                if self._wanted(p):
                    self._slot(self.gates, p, getattr(self.runner.cell, "hidden_size", 0))
        units = self.recorder.units
        self.recorder.finished(
            LayerTrace(
                name=self.name,
                cell=type(self.runner.cell).__name__,
                reverse=bool(self.runner.reverse),
                fused=self.fused_run,
                gates={k: self._to_caller(v) for k, v in self.gates.items()},
                preactivations={k: self._to_caller(v) for k, v in self.pre.items()},
                states={k: self._to_caller(v) for k, v in self.states.items()},
                mask=self._to_caller(self._processing_mask()[..., None])[..., 0],
                units=None if units is None else units.copy(),
                unreported=unreported,
            )
        )


class _Recorder:
    """Held in :data:`lstmkit._tracing.RECORDER` while :func:`trace` runs."""

    def __init__(
        self,
        model: Any,
        layers: frozenset[str] | None,
        gates: frozenset[str] | None,
        units: Array | None,
        preactivations: bool,
        states: bool,
    ) -> None:
        self.paths = {id(m): p for p, m in _walk(model)}
        self.paths.setdefault(id(model), "root")
        self.layers, self.gates, self.units = layers, gates, units
        self.preactivations, self.states = preactivations, states
        self.current: _Recording | None = None
        self.done: dict[str, LayerTrace] = {}

    def begin(self, runner: Any, plan: Any) -> _Recording | None:
        name = self.paths.get(id(runner), f"runner{len(self.done)}")
        self.current = None
        if self.layers is None or name in self.layers:
            base, k = name, 2
            while name in self.done:  # the same runner ran twice
                name, k = f"{base}#{k}", k + 1
            self.current = _Recording(self, runner, name, plan)
        return self.current

    def gate(self, gate: Any, z: Any, y: Any) -> None:
        if self.current is not None:
            self.current.gate(gate, z, y)

    def finished(self, layer: LayerTrace) -> None:
        self.done[layer.name] = layer
        self.current = None


def _check_units(units: Any) -> Array | None:
    if units is None:
        return None
    arr = np.asarray(units)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer) or (arr.size and arr.min() < 0):
        raise ValueError(
            f"units: expected a 1-D sequence of non-negative unit indices, received {units!r}"
        )
    return arr.astype(np.intp)


def trace(
    model: Any,
    x: Any,
    initial_state: Any = None,
    lengths: Any = None,
    *,
    layers: Any = None,
    gates: Any = None,
    units: Any = None,
    preactivations: bool = False,
    states: bool = True,
) -> Trace:
    """Run ``model`` on ``x`` (inference) and record every gate and state of every runner.

    Parameters
    ----------
    model : Recurrent, Stacked, Bidirectional, Sequential or a cell
        Anything holding :class:`~lstmkit.Recurrent` runners; a bare cell is run by a
        ``Recurrent``.
    x : ndarray, shape (batch, time, input_size) or (time, input_size)
    initial_state, lengths
        As for calling the model.
    layers : str or collection of str, optional
        Record only these runners (dotted paths as in :attr:`Trace.layers`).
    gates : str or collection of str, optional
        Record only these gates, by path (``"cell.forget"``) or last name (``"forget"``).
    units : sequence of int, optional
        Record only these units of every gate and state (a state field of another width is
        kept whole).
    preactivations : bool, default False
        Also record each gate's pre-activation.
    states : bool, default True
        Record the state after each step.

    Returns
    -------
    Trace
        ``output`` and ``final_state`` are exactly what calling the model returns.

    Raises
    ------
    ValueError
        A named layer is not a runner of the model, or a named gate was never found.
    TypeError
        ``model`` is not a runner, a ``Sequential`` or a cell.
    """
    from lstmkit.layers.sequential import Sequential
    from lstmkit.runners.base import SequenceRunner
    from lstmkit.runners.recurrent import Recurrent

    if not isinstance(model, (SequenceRunner, Sequential)):
        if not hasattr(model, "step"):
            raise TypeError(
                f"model: expected a runner, a Sequential or a cell, received {type(model).__name__}"
            )
        model = Recurrent(model)
    layer_names = _name_set(layers, "layers")
    gate_names = _name_set(gates, "gates")
    runners = {p for p, m in _walk(model) if isinstance(m, Recurrent)}
    if isinstance(model, Recurrent):
        runners.add("root")
    if layer_names is not None and not layer_names <= runners:
        raise ValueError(
            f"layers: expected runner names among {sorted(runners)}, "
            f"received {sorted(layer_names - runners)}"
        )
    recorder = _Recorder(
        model, layer_names, gate_names, _check_units(units), bool(preactivations), bool(states)
    )
    token = RECORDER.set(recorder)
    try:
        y, final, _ = model._run(x, initial_state, lengths, context=None, plan=None)
    finally:
        RECORDER.reset(token)
    if gate_names is not None:
        found = {
            part
            for layer in recorder.done.values()
            for name in layer.gates
            for part in (name, name.rsplit(".", 1)[-1])
        }
        if not gate_names <= found:
            raise ValueError(
                f"gates: no traced layer has a gate named {sorted(gate_names - found)}; "
                f"gates found: {sorted(found)}"
            )
    return Trace(output=y, final_state=final, layers=dict(recorder.done))
