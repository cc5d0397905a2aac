"""The recorder behind :func:`lstmkit.trace.trace` (internal).

:class:`Recorder` sits in :data:`lstmkit._tracing.RECORDER` while a trace runs. Each
:class:`~lstmkit.Recurrent` call asks it to ``begin`` a :class:`_Recording` with the call's
batch layout; gates report to it while the cell steps (or it reads the fused kernel's training
cache), and ``finish`` maps everything to the caller's ``(batch, time, units)`` layout, NaN
past each length, and hands the fields of a :class:`~lstmkit.trace.LayerTrace` back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lstmkit.gate import Gate
from lstmkit.module import Module
from lstmkit.state import state_arrays

Array = NDArray[Any]

#: The gate order of the fused LSTM kernel's cache (see :mod:`lstmkit.cells.lstm_fused`).
_FUSED_ORDER = ("output", "input", "forget", "candidate")


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


def walk(obj: Any, prefix: str = "", seen: set[int] | None = None) -> Iterator[tuple[str, Any]]:
    seen = set() if seen is None else seen
    for name, child in _children(obj):
        if id(child) in seen:
            continue
        seen.add(id(child))
        path = f"{prefix}{name}"
        yield path, child
        yield from walk(child, path + ".", seen)


class _Recording:
    """One runner's recording, in the runner's processing order (time-major, sorted)."""

    def __init__(self, recorder: Recorder, runner: Any, name: str, plan: Any) -> None:
        self.recorder, self.runner, self.name, self.plan = recorder, runner, name, plan
        self.T, self.B = plan.time, plan.batch
        self.hidden = int(runner.cell.hidden_size)
        self.dtype = runner.dtype
        self.gate_names = {id(g): p for p, g in walk(runner.cell) if isinstance(g, Gate)}
        self.declared = [p for p, g in walk(runner.cell) if isinstance(g, Gate)]
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
            dict(
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


class Recorder:
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
        self.paths = {id(m): p for p, m in walk(model)}
        self.paths.setdefault(id(model), "root")
        self.layers, self.gates, self.units = layers, gates, units
        self.preactivations, self.states = preactivations, states
        self.current: _Recording | None = None
        self.done: dict[str, dict[str, Any]] = {}

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

    def finished(self, fields: dict[str, Any]) -> None:
        self.done[fields["name"]] = fields
        self.current = None
