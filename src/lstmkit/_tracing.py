"""The switch that :mod:`lstmkit.trace` turns on: one context variable, read by gates and runners.

When no trace is running, :data:`RECORDER` holds None and every hook costs one
``ContextVar.get``. :func:`lstmkit.trace.trace` sets it for the duration of one call; a cell
that computes a gate's value without calling the gate (the fused LSTM kernel, the layer-norm
LSTM, the GRU's reset-after candidate) reports it with :func:`record_gate`.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

RECORDER: ContextVar[Any] = ContextVar("lstmkit_trace_recorder", default=None)


def record_gate(gate: Any, preactivation: Any, value: Any) -> None:
    """Report one step of ``gate``: its pre-activation and value, shape (batch, units).

    Does nothing unless a trace is running. Cells call this for a gate whose value they
    compute without calling the gate object; a :class:`~lstmkit.Gate` reports its own calls.
    """
    recorder = RECORDER.get()
    if recorder is not None:
        recorder.gate(gate, preactivation, value)
