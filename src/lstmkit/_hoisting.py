"""Input products hoisted out of the time loop: ``x @ W`` of a cell's gates for a whole sequence.

A gate computes ``x @ W + h @ U + b``. Only ``h`` depends on the previous step, so when a
runner steps a cell, the products ``x_t @ W`` of every step can be computed before the loop, in
one matrix product for all of the cell's gates: ``X (time * batch, input) @ [W_1 ... W_k]``.
That is one large product instead of ``k * time`` small ones. (On the benchmark machine the
small forward products already ran at about 80% of the large one's rate, so this forward half is
off by default, ``lstmkit.runners._hoist.FORWARD_PRODUCTS``; the backward half below pays.)

How a runner and a cell agree on it (the runner's side is :mod:`lstmkit.runners._hoist`; this
module is what gates and cells read, and imports nothing of lstmkit):

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
backward).

The backward mirrors it. The gradient ``dz`` of a hoisted gate's ``x @ W`` (the same as the
gradient of its pre-activation) is written into a whole-sequence buffer ``dZ`` instead of being
multiplied at every step; after the loop the runner adds ``dZ @ W.T`` to ``dx`` and
``X.T @ dZ`` to ``W.grad`` in one product each (and, for the gate's own backward, which also
keeps the ``h`` it saw, ``H.T @ dZ`` to ``U.grad`` and ``sum(dZ)`` to ``b.grad``). A deferred
gate returns zeros for its ``dx`` share (a cell adds the shares of its gates, so the sum is
unchanged). The same identity check applies: only a gate whose cache holds the step's own input
array defers.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "HOISTED",
    "HoistedInputs",
    "defer_input_gradient",
    "deferred_gate_backward",
    "hoisted_affine",
    "hoisted_product",
    "input_gradient",
    "input_product",
    "input_products",
    "recurrent_transposed",
]

Array = NDArray[Any]


class HoistedInputs:
    """The products ``x_t @ W`` of a runner's call, and which step is running.

    Parameters
    ----------
    products : ndarray, shape (gates, time, batch, units), or None
        ``xt @ W_k`` for the time-major input ``xt``, one block per hoisted gate; None when only
        the backward is hoisted.
    gates : list of Gate
        The hoisted gates, in the order of ``products``.
    dtype : numpy.dtype
        Of the input, the weights and the buffers.
    shape : tuple of int
        ``(gates, time, batch, units)``: the shape of ``products`` (and of the backward's ``dZ``).
    """

    __slots__ = (
        "d_products",
        "gate_rows",
        "last_t",
        "full",
        "gates",
        "index",
        "n",
        "products",
        "shape",
        "t",
        "u_t",
        "units",
        "dtype",
        "x",
        "xs",
    )

    def __init__(
        self, products: Array | None, gates: list[Any], dtype: Any, shape: tuple[int, ...]
    ) -> None:
        self.products = products
        self.shape = shape  # (gates, time, batch, units)
        self.gates = gates
        self.dtype = dtype
        self.units = shape[3]
        self.index = {id(g): (g, k) for k, g in enumerate(gates)}
        self.x: Any = None  # the array given to the running step (None between steps)
        self.t = 0
        self.n = 0
        self.full = True  # n is the whole batch
        self.xs: list[Any] = []  # each step's input array, kept for the backward
        self.d_products: Array | None = None  # the backward's dZ, shaped like products
        self.u_t: list[Array] = []  # the backward's contiguous U.T of each gate
        # Gate.backward's own h and dz per gate and step, side by side (gates, time, batch,
        # recurrent + units), for U.grad and b.grad; last_t[k] is the last step gate k wrote.
        self.gate_rows: Array | None = None
        self.last_t: list[int] = []

    def at_step(self, x: Array, t: int, n: int) -> None:
        """Publish step ``t`` (its first ``n`` rows active) and its input array ``x``."""
        self.x, self.t, self.n = x, t, n
        self.full = n == self.shape[2]

    def _slot(self, gate: Any, x: Any) -> int | None:
        if x is not self.x:
            return None
        entry = self.index.get(id(gate))
        if entry is None or entry[0] is not gate:
            return None
        return entry[1]


#: The running call's hoisted products; None when no runner is stepping a hoisting cell.
HOISTED: ContextVar[HoistedInputs | None] = ContextVar("lstmkit_hoisted_inputs", default=None)


def hoisted_product(gate: Any, x: Any) -> Array | None:
    """``x @ gate.W`` from the running call's products, or None if it does not hold it.

    It holds it when a runner hoisted this gate's forward products and ``x`` is the step's own
    input array.
    """
    hoisted = HOISTED.get()
    if hoisted is None or hoisted.d_products is not None or hoisted.products is None:
        return None
    k = hoisted._slot(gate, x)
    if k is None:
        return None
    if hoisted.full:
        return hoisted.products[k, hoisted.t]
    return hoisted.products[k, hoisted.t, : hoisted.n]


def hoisted_affine(gate: Any, x: Any, h: Array) -> Array | None:
    """``x @ gate.W + h @ gate.U`` with the hoisted ``x @ W``, or None if it is not held."""
    xw = hoisted_product(gate, x)
    return None if xw is None else xw + h @ gate.U.value


def recurrent_transposed(gate: Any) -> Array:
    """``gate.U.value.T``; during a hoisted backward, the call's contiguous copy of it.

    ``d @ U.T`` with a transposed operand is several times slower in OpenBLAS at small sizes
    than the same product with a contiguous copy (for cells that compute ``d @ U.T`` themselves).
    """
    hoisted = HOISTED.get()
    if hoisted is not None and hoisted.d_products is not None:
        entry = hoisted.index.get(id(gate))
        if entry is not None and entry[0] is gate:
            return hoisted.u_t[entry[1]]
    return gate.U.value.T


def input_product(gate: Any, x: Array) -> Array:
    """``x @ gate.W.value``, hoisted when the running call holds it (for cells that read ``W``)."""
    xw = None if HOISTED.get() is None else hoisted_product(gate, x)
    return x @ gate.W.value if xw is None else xw


def input_products(gates: list[Any], x: Array) -> Array:
    """``x @ W`` of each gate, stacked: shape (batch, len(gates), units)."""
    return np.stack([input_product(g, x) for g in gates], axis=1)


def _backward_slot(gate: Any, x: Any) -> tuple[HoistedInputs, int] | tuple[None, None]:
    hoisted = HOISTED.get()
    if hoisted is None or hoisted.d_products is None:
        return None, None
    k = hoisted._slot(gate, x)
    return (None, None) if k is None else (hoisted, k)


def defer_input_gradient(gate: Any, x: Any, dz: Array) -> bool:
    """Leave ``dx += dz @ W.T`` and ``W.grad += x.T @ dz`` of one step to the runner.

    ``dz`` (batch, units) is the gradient of ``x @ gate.W``. Returns True when the running
    backward holds a buffer for this gate and ``x`` is the step's own input array (the runner
    then does both products for the whole sequence); False means the caller does them itself.
    """
    hoisted, k = _backward_slot(gate, x)
    if hoisted is None:
        return False
    hoisted.d_products[k, hoisted.t, : hoisted.n] += dz  # type: ignore[index]
    return True


def deferred_gate_backward(
    hoisted: HoistedInputs, gate: Any, x: Any, h: Array, dz: Array
) -> Array | None:
    """For :meth:`Gate.backward` (``hoisted`` is :data:`HOISTED`'s value): defer what ``dz``
    adds to ``dx`` and to the gate's weights, and return ``dz @ U.T``.

    Returns None (nothing done) unless ``hoisted`` is a running backward that holds this gate and
    ``x`` is the step's own input array. Otherwise ``dz`` (and the ``h`` the gate saw) go to the
    call's buffers: the runner adds ``dZ @ W.T`` to ``dx`` and ``X.T @ dZ``, ``H.T @ dZ`` and
    ``sum(dZ)`` to ``W.grad``, ``U.grad`` and ``b.grad`` after the loop. A gate called a second
    time in one step adds that call's ``U.grad`` and ``b.grad`` shares at once. ``dz @ U.T`` uses
    a contiguous copy of ``U.T`` made for this call (a product with a transposed operand is
    several times slower in OpenBLAS at these sizes).
    """
    d_products = hoisted.d_products
    if d_products is None or x is not hoisted.x:
        return None
    entry = hoisted.index.get(id(gate))
    if entry is None or entry[0] is not gate:
        return None
    k, t, n = entry[1], hoisted.t, hoisted.n
    rows = hoisted.gate_rows
    if rows is not None and hoisted.last_t[k] != t and h.shape == (n, rows.shape[3] - dz.shape[1]):
        hoisted.last_t[k] = t
        r = h.shape[1]
        rows[k, t, :n, :r] = h
        rows[k, t, :n, r:] = dz
    else:
        gate.U.grad += h.T @ dz
        gate.b.grad += dz.sum(axis=0)
    if hoisted.full:
        d_products[k, t] += dz
    else:
        d_products[k, t, :n] += dz
    return dz @ hoisted.u_t[k]


def input_gradient(gate: Any, x: Array, dz: Array) -> Array:
    """``dz @ W.T`` with ``W.grad += x.T @ dz``, or zeros when the runner does both later."""
    if defer_input_gradient(gate, x, dz):
        return np.zeros_like(x)
    gate.W.grad += x.T @ dz
    return dz @ gate.W.value.T
