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

from collections.abc import Iterable
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit._trace_recorder import Recorder, walk
from lstmkit._tracing import RECORDER, record_gate

__all__ = ["LayerTrace", "Trace", "record_gate", "trace"]

Array = NDArray[Any]


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


def _name_set(value: Any, argument: str) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Iterable) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{argument}: expected names (strings) or None, received {value!r}")
    return frozenset(value)


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
        ``model`` is not a runner, a ``Sequential`` or a cell, or one of its cells steps on
        feature maps (:class:`~lstmkit.ConvLSTMCell`), which tracing does not record.
    """
    from lstmkit.layers.sequential import Sequential
    from lstmkit.runners._checks import step_shape
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
    found_runners = [(p, m) for p, m in walk(model) if isinstance(m, Recurrent)]
    if isinstance(model, Recurrent):
        found_runners.append(("root", model))
    for path, runner in found_runners:
        shape = step_shape(runner.cell, "output")
        if len(shape) != 1:
            # The recorder keeps (batch, time, units) per gate; feature maps would need
            # (batch, time, *spatial, channels) everywhere it lays values out.
            raise TypeError(
                f"model: tracing records vector steps; the {type(runner.cell).__name__} of "
                f"{path} steps on arrays of shape {shape} (a convolutional cell)"
            )
    runners = {p for p, _ in found_runners}
    if layer_names is not None and not layer_names <= runners:
        raise ValueError(
            f"layers: expected runner names among {sorted(runners)}, "
            f"received {sorted(layer_names - runners)}"
        )
    recorder = Recorder(
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
            for name in layer["gates"]
            for part in (name, name.rsplit(".", 1)[-1])
        }
        if not gate_names <= found:
            raise ValueError(
                f"gates: no traced layer has a gate named {sorted(gate_names - found)}; "
                f"gates found: {sorted(found)}"
            )
    layers_done = {name: LayerTrace(**fields) for name, fields in recorder.done.items()}
    return Trace(output=y, final_state=final, layers=layers_done)
