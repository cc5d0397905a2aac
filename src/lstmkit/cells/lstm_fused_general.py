"""General-activation time loops of the fused LSTM kernel.

:mod:`lstmkit.cells.lstm_fused` runs the default activations (sigmoid gates, tanh candidate
and cell) without peepholes in its own tightly written loops. Everything else comes here: any
activation for any gate, the candidate or the cell, and peepholes, in the same feature-major
layout and with the same matrix products, one activation call per gate block (one for all
three sigmoid-like gates when they share an activation and no output peephole needs the
output gate first).

The activations' in-place versions and their derivatives are resolved once per call, before
the time loop, so a step pays for NumPy calls and little else. The built-ins ``sigmoid``,
``tanh`` and ``hard_sigmoid`` run in place (their ``kernel`` forms); any other activation is
called as ``act(z)`` / ``act.grad(z, y)`` and its result copied into place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import repeat
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lstmkit import activations
from lstmkit.activations import Activation, KernelOps

Array = NDArray[Any]
InPlace = Callable[[Array], None]  # a <- act(a)
Into = Callable[[Array, Array], None]  # (src, dst): dst <- act(src)
GradInto = Callable[[Array, Array | None, Array, Array, Array], None]  # (d, z, y, q, out)

__all__ = [
    "Ops",
    "backward_loop",
    "forward_loop",
    "gate_affine",
    "needs_z",
    "peepholes",
    "steps",
]


def steps(
    per_time: list[Array], scratch: list[Any], bs: Array | None, reverse: bool = False
) -> Iterator[tuple[Any, ...]]:
    """Per-step views: row ``t`` of each ``per_time`` array, then each scratch item, each
    narrowed to the active columns ``[:, :n]`` when the batch is packed (``None`` scratch
    items pass through)."""
    T = len(per_time[0])
    order = range(T - 1, -1, -1) if reverse else range(T)
    if bs is None:
        if reverse:
            per_time = [a[::-1] for a in per_time]
        return zip(*per_time, *(repeat(s) for s in scratch))
    return (
        tuple(a[t][..., : int(bs[t])] for a in per_time)
        + tuple(s if s is None else s[..., : int(bs[t])] for s in scratch)
        for t in order
        if bs[t] > 0
    )


def peepholes(cell: Any) -> tuple[Array | None, Array | None, Array | None]:
    """The output, input and forget peepholes as ``(H, 1)`` columns (None where absent)."""
    out = []
    for gate in (cell.output, cell.input, cell.forget):
        out.append(None if gate.p is None else gate.p.value[:, None])
    return out[0], out[1], out[2]


def needs_z(cell: Any) -> bool:
    """Whether some activation needs its input, not only its output, for the derivative."""
    return any(not g.activation.derivative_from_output for g in cell.gates.values())


def gate_affine(cell: Any, order: tuple[str, ...]) -> tuple[list[float], list[float]]:
    """``(scales, offsets)`` of each gate in ``order``: its activation's ``affine`` or ``(1, 0)``.

    An activation that is a cheaper function of an affine map of its input,
    ``act(z) = post(a z + b)``, declares ``(a, b)``; the kernel folds them into the stacked
    weights and bias, so a step runs only ``post``: 2 calls instead of 4 for hard_sigmoid,
    3 instead of 4 for sigmoid. Scaling by 1/2 is exact; by 0.2 it rounds like any product,
    within float rounding of the step path (tested).
    """
    pairs = [getattr(cell, name).activation.affine or (1.0, 0.0) for name in order]
    return [a for a, _ in pairs], [b for _, b in pairs]


class Ops:
    """The in-place operations of a cell's activations for one dtype, resolved before a loop.

    An activation with a ``kernel`` (see :class:`lstmkit.activations.KernelOps`) runs its
    in-place forms; any other is called as ``act(z)`` / ``act.grad(z, y)`` and its result
    copied into place. Nothing is looked up by name or equality: each activation object
    supplies its own forms.
    """

    def __init__(self, dtype: Any) -> None:
        self.dtype = np.dtype(dtype)

    def _kernel(self, act: Activation) -> KernelOps | None:
        return None if act.kernel is None else act.kernel(self.dtype)

    def inplace(self, act: Activation, prescaled: bool = False) -> InPlace:
        """``a <- act(a)``; with ``prescaled``, ``a`` already holds ``act.affine`` of ``z``."""
        ops = self._kernel(act)
        if ops is not None:
            if prescaled and act.affine is not None and ops.post_affine is not None:
                return ops.post_affine
            return ops.inplace

        def general(a: Array) -> None:
            np.copyto(a, act(a))

        return general

    def into(self, act: Activation) -> Into:
        """``dst <- act(src)`` without changing ``src``."""
        ops = self._kernel(act)
        if ops is not None and ops.into is not None:
            return ops.into
        if ops is not None:
            fn = ops.inplace

            def kernel(src: Array, dst: Array) -> None:
                np.copyto(dst, src)
                fn(dst)

            return kernel

        def general(src: Array, dst: Array) -> None:
            np.copyto(dst, act(src))

        return general

    def deriv(self, act: Activation) -> Callable[[Array, Array], None] | None:
        """``q <- act'(y)`` from the output alone, or None if the activation has no such form."""
        ops = self._kernel(act)
        if ops is None or not act.derivative_from_output:
            return None
        return ops.derivative

    def grad(self, act: Activation) -> GradInto:
        """``out <- d * act'(z, y)``; ``z`` may be None when the derivative uses ``y`` only."""
        deriv = self.deriv(act)
        if deriv is not None:

            def kernel(d: Array, z: Array | None, y: Array, q: Array, out: Array) -> None:
                deriv(y, q)
                np.multiply(d, q, out)

            return kernel

        def general(d: Array, z: Array | None, y: Array, q: Array, out: Array) -> None:
            np.multiply(d, act.grad(z, y), out)

        return general


def forward_loop(
    cell: Any,
    views: Iterator[tuple[Any, ...]],
    mm: Any,
    UT: Array,
    keep_pre: bool,
    prescaled: bool = False,
) -> None:
    """Run the forward time loop for any activations and peepholes.

    Each step's views, in order: ``h`` (previous output), ``y`` (this output), the input
    projection, the gate block ``z4 = [o, i, f, g]`` and its slices ``z3 = [o, i, f]``, ``o``,
    ``i``, ``f``, ``g``, ``[i, f]``, then ``[g, c_prev]`` (shape ``(2, H, B)``-compatible
    ``(2H, B)``), ``c_prev``, ``c_new``, the pre-activation slot (None unless ``keep_pre``),
    and scratch ``r (4H, B)``, ``p (2H, B)``, its halves, ``tc`` and ``tmp`` ``(H, B)``.

    With ``prescaled``, ``UT`` and the projection carry the affine maps of :func:`gate_affine`
    (peepholes are scaled to match here) and the listed activations run only their ``post``.
    """
    po, pi, pf = peepholes(cell)
    if prescaled:
        (ao, ai, af, _), _ = gate_affine(cell, ("output", "input", "forget", "candidate"))
        po, pi, pf = (None if p is None else p * a for p, a in ((po, ao), (pi, ai), (pf, af)))
    a_o, a_i, a_f = cell.output.activation, cell.input.activation, cell.forget.activation
    fns = Ops(cell.dtype)
    grouped = a_o is a_i is a_f and po is None
    shared_if = a_i is a_f
    act3, act_i, act_f = (fns.inplace(a, prescaled) for a in (a_i, a_i, a_f))
    act_o, act_g = fns.inplace(a_o, prescaled), fns.inplace(cell.candidate.activation, prescaled)
    cell_into = fns.into(cell.cell_activation)
    for (
        h,
        yt,
        pt,
        z4,
        z3,
        zo,
        zi,
        zf,
        zg,
        zif,
        zgc,
        c_prev,
        c_new,
        zp,
        r,
        p,
        p1,
        p2,
        tc,
        tmp,
    ) in views:
        np.add(mm(UT, h, r), pt, z4)
        if pi is not None:
            np.add(zi, np.multiply(c_prev, pi, tmp), zi)
        if pf is not None:
            np.add(zf, np.multiply(c_prev, pf, tmp), zf)
        if keep_pre:
            np.copyto(zp, z4)
        if grouped:
            act3(z3)
        else:
            if shared_if:
                act_i(zif)
            else:
                act_i(zi)
                act_f(zf)
            if po is None:
                act_o(zo)
        act_g(zg)
        np.multiply(zif, zgc, p)  # [i * g, f * c_prev]
        np.add(p1, p2, c_new)
        if po is not None:
            np.add(zo, np.multiply(c_new, po, tmp), zo)
            if keep_pre:
                np.copyto(zp[: len(zo)], zo)
            act_o(zo)
        cell_into(c_new, tc)
        np.multiply(zo, tc, yt)


def backward_loop(cell: Any, views: Iterator[tuple[Any, ...]], mm: Any, U: Array) -> None:
    """Run the backward time loop for any activations and peepholes.

    Each step's views, in order: ``dy``, the cached gate block ``z4 = [o, i, f, g]`` and its
    slices ``z3``, ``o``, ``i``, ``f``, ``g``, ``[i, f]``, ``[g, c_prev]`` as ``(2, H, B)``,
    ``c_new``, the step's pre-activations (None unless some activation needs them), then
    ``dh_rec`` (dL/dh from the later step, replaced by this step's), ``dh``, ``dc`` (dL/dc,
    carried), ``dc[None]``, slices of a gradient block ``d (4H, B)``: ``d3 = [do, di, df]``,
    ``do``, ``[di, df]``, the same as ``(2, H, B)``, ``di``, ``df``, ``dg``, the whole ``d``,
    scratch ``q (4H, B)``, its first ``3H``, ``2H`` and ``H`` rows and its last ``H`` rows, ``tc``
    and ``tm``. Each dL/dz is written over the gate values it was computed from, which backward
    then uses for the weight gradients.
    """
    H = cell.hidden_size
    H3 = 3 * H
    po, pi, pf = peepholes(cell)
    a_o, a_i, a_f = cell.output.activation, cell.input.activation, cell.forget.activation
    a_c = cell.cell_activation
    fns = Ops(cell.dtype)
    # One derivative call for the three sigmoid-like gates when they share an activation and
    # no output peephole needs dL/dz_o before the others are known.
    grouped = a_o is a_i is a_f and po is None
    shared_if = a_i is a_f
    grad3, grad_i, grad_f = fns.grad(a_i), fns.grad(a_i), fns.grad(a_f)
    grad_o, grad_g, grad_c = fns.grad(a_o), fns.grad(cell.candidate.activation), fns.grad(a_c)
    cell_into = fns.into(a_c)
    cell_tanh = a_c is activations.tanh
    # Grouped built-in gates and a built-in candidate: write both local derivatives into q and
    # apply them with one product over all 4H rows, as the default-activation path does.
    deriv3, deriv_g = fns.deriv(a_i), fns.deriv(cell.candidate.activation)
    combined = grouped and deriv3 is not None and deriv_g is not None
    for (
        dyt,
        z4,
        z3,
        zo,
        zi,
        zf,
        zg,
        zif,
        zgc,
        c_new,
        zp,
        dhr,
        dh,
        dc,
        dc1,
        d3,
        do,
        dif,
        dif2,
        di,
        df,
        dg,
        d4,
        q4,
        q3,
        q2,
        q1,
        qg,
        tc,
        tm,
    ) in views:
        np.add(dhr, dyt, dh)
        cell_into(c_new, tc)
        np.multiply(dh, tc, do)
        # dc += dh * o * act_c'(c)
        if cell_tanh:  # o * (dh - do * tanh(c)): one call fewer
            np.multiply(do, tc, tm)
            np.subtract(dh, tm, tm)
            np.multiply(tm, zo, tm)
        else:
            np.multiply(dh, zo, tm)
            grad_c(tm, c_new, tc, q1, tm)
        np.add(dc, tm, dc)
        if not grouped:
            grad_o(do, None if zp is None else zp[:H], zo, q1, zo)
            if po is not None:
                np.add(dc, np.multiply(zo, po, tm), dc)
        np.multiply(zgc, dc1, dif2)  # [dc * g, dc * c_prev]
        np.multiply(dc, zi, dg)  # dc * i
        np.multiply(dc, zf, dc)  # dL/dc_{t-1} along the conveyor belt
        if combined:
            deriv3(z3, q3)  # type: ignore[misc]  # not None when combined
            deriv_g(zg, qg)  # type: ignore[misc]
            np.multiply(d4, q4, z4)
        elif grouped:
            grad3(d3, None if zp is None else zp[:H3], z3, q3, z3)
        elif shared_if:
            grad_i(dif, None if zp is None else zp[H:H3], zif, q2, zif)
        else:
            grad_i(di, None if zp is None else zp[H : 2 * H], zi, q1, zi)
            grad_f(df, None if zp is None else zp[2 * H : H3], zf, q1, zf)
        if not combined:
            grad_g(dg, None if zp is None else zp[H3:], zg, q1, zg)
        if pf is not None:
            np.add(dc, np.multiply(zf, pf, tm), dc)
        if pi is not None:
            np.add(dc, np.multiply(zi, pi, tm), dc)
        mm(U, z4, dhr)
