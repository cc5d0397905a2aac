"""Input products hoisted out of the time loop: ``x @ W`` of a cell's gates for a whole sequence.

A gate computes ``x @ W + h @ U + b``. Only ``h`` depends on the previous step, so when a
runner steps a cell, the products ``x_t @ W`` of every step can be computed before the loop, in
one matrix product for all of the cell's gates: ``X (time * batch, input) @ [W_1 ... W_k]``.
That is one large product (close to the BLAS peak) instead of ``k * time`` small ones.

How a runner and a cell agree on it (see :func:`hoist_inputs`):

* The cell's class declares ``accepts_hoisted_inputs = True`` (the built-in gated cells do; a
  user's cell may). The cell must have a ``gates`` mapping (``GatedCell`` provides it).
* Only gates whose type is exactly :class:`~lstmkit.Gate` are hoisted. A subclass of ``Gate`` may
  override ``preactivation``; it is always computed by its own code, step by step.
* At each step the runner publishes the step's input array ``x_t`` and the products. A hoisted
  gate uses its product only when it is called with that very array object (``x is x_t``), so
  a cell that feeds its gates something else (a masked ``x``, a concatenation) gets the gates'
  own computation for that input: the shortcut can only apply where it computes the same thing.

The products depend on the weights when the runner's call starts; weights must not change during
one call (the weights clock of :mod:`lstmkit.module` already forbids it between a forward and its
backward). Gradients are unchanged: each gate's cache still holds ``x_t`` and its backward
accumulates ``x_t.T @ dz`` as before.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["HOISTED", "HoistedInputs", "hoist_inputs", "hoisted_gates", "input_products"]

Array = NDArray[Any]


class HoistedInputs:
    """The products ``x_t @ W`` of a runner's call, and which step is running.

    Parameters
    ----------
    products : ndarray, shape (time, batch, total_units)
        ``xt @ [W_1 ... W_k]`` for the time-major input ``xt``.
    columns : dict
        ``id(gate) -> (gate, slice)``: each hoisted gate's columns of ``products``.
    """

    __slots__ = ("columns", "n", "products", "t", "x")

    def __init__(self, products: Array, columns: dict[int, tuple[Any, slice]]) -> None:
        self.products = products
        self.columns = columns
        self.x: Any = None  # the array given to the running step (None between steps)
        self.t = 0
        self.n = 0

    def at_step(self, x: Array, t: int, n: int) -> None:
        """Publish step ``t`` (its first ``n`` rows active) and its input array ``x``."""
        self.x, self.t, self.n = x, t, n


#: The running call's hoisted products; None when no runner is stepping a hoisting cell.
HOISTED: ContextVar[HoistedInputs | None] = ContextVar("lstmkit_hoisted_inputs", default=None)


def hoisted_product(gate: Any, x: Any) -> Array | None:
    """``x @ gate.W`` from the running call's products, or None if it does not hold it.

    It holds it when a runner hoisted this gate and ``x`` is the step's own input array.
    """
    hoisted = HOISTED.get()
    if hoisted is None or x is not hoisted.x:
        return None
    entry = hoisted.columns.get(id(gate))
    if entry is None or entry[0] is not gate:
        return None
    return hoisted.products[hoisted.t, : hoisted.n, entry[1]]


def input_product(gate: Any, x: Array) -> Array:
    """``x @ gate.W.value``, hoisted when the running call holds it (for cells that read ``W``)."""
    xw = hoisted_product(gate, x)
    return x @ gate.W.value if xw is None else xw


def input_products(gates: list[Any], x: Array) -> Array:
    """``x @ W`` of each gate, stacked: shape (batch, len(gates), units).

    When the gates were hoisted next to each other in this order, this is a view of the
    running call's products (no copy); otherwise each product is computed or looked up.
    """
    hoisted = HOISTED.get()
    if hoisted is not None and x is hoisted.x and gates:
        entries = [hoisted.columns.get(id(g)) for g in gates]
        if all(e is not None and e[0] is g for e, g in zip(entries, gates, strict=True)):
            first, last = entries[0][1], entries[-1][1]  # type: ignore[index]
            width = first.stop - first.start
            contiguous = all(
                e[1].start == first.start + k * width and e[1].stop - e[1].start == width  # type: ignore[index]
                for k, e in enumerate(entries)
            )
            if contiguous and last.stop == first.start + len(gates) * width:
                block = hoisted.products[hoisted.t, : hoisted.n, first.start : last.stop]
                return block.reshape(block.shape[0], len(gates), width)
    return np.stack([input_product(g, x) for g in gates], axis=1)


def hoisted_gates(cell: Any) -> list[Any]:
    """The gates of ``cell`` whose input products a runner computes before the time loop.

    Empty unless the cell's class declares ``accepts_hoisted_inputs = True`` and has a
    ``gates`` mapping; only gates of exactly the type :class:`~lstmkit.Gate` are listed (a gate
    object used under two names is listed once).

    Examples
    --------
    >>> from lstmkit import GRUCell
    >>> [g.activation.name for g in hoisted_gates(GRUCell(3, 4, rng=0))]
    ['sigmoid', 'sigmoid', 'tanh']
    """
    from lstmkit.gate import Gate

    if getattr(type(cell), "accepts_hoisted_inputs", False) is not True:
        return []
    gates = getattr(cell, "gates", None)
    if not isinstance(gates, dict):
        return []
    chosen: dict[int, Any] = {}
    for gate in gates.values():
        if type(gate) is Gate and id(gate) not in chosen:
            chosen[id(gate)] = gate
    return list(chosen.values())


def hoist_inputs(cell: Any, xt: Array) -> HoistedInputs | None:
    """One product ``xt @ [W_1 ... W_k]`` for the hoisted gates of ``cell``, or None.

    Parameters
    ----------
    cell : cell
        The cell a runner is about to step.
    xt : ndarray, shape (time, batch, input_size)
        The time-major input, in the processing order of the runner's loop.
    """
    gates = hoisted_gates(cell)
    if not gates or xt.ndim != 3 or xt.shape[0] == 0:
        return None
    T, B, n_in = xt.shape
    if any(g.W.value.shape[0] != n_in or g.W.value.dtype != xt.dtype for g in gates):
        return None
    weights = np.concatenate([g.W.value for g in gates], axis=1)
    products = (xt.reshape(T * B, n_in) @ weights).reshape(T, B, weights.shape[1])
    columns: dict[int, tuple[Any, slice]] = {}
    start = 0
    for gate in gates:
        width = gate.W.value.shape[1]
        columns[id(gate)] = (gate, slice(start, start + width))
        start += width
    return HoistedInputs(products, columns)
