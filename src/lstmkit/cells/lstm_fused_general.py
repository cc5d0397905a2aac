"""General-activation time loops of the fused LSTM kernel.

Internal, not API: :mod:`lstmkit.cells.lstm_fused` drives these loops and may change them in
any release.

The fast loops of :mod:`lstmkit.cells.lstm_fused_steps` run the default activations (sigmoid
gates, tanh candidate and cell) without peepholes. Everything else comes here: any activation
for any gate, the candidate or the cell, and peepholes, over the same steps
(:class:`~lstmkit.cells.lstm_fused_steps.ForwardStep`,
:class:`~lstmkit.cells.lstm_fused_steps.BackwardStep`) and with the same matrix products, one
activation call per gate block (one for all three sigmoid-like gates when they share an
activation and no output peephole needs the output gate first).

The activations' in-place versions and their derivatives are resolved once per call, before
the time loop, so a step pays for NumPy calls and little else. The built-ins ``sigmoid``,
``tanh`` and ``hard_sigmoid`` run in place (their ``kernel`` forms); any other activation is
called as ``act(z)`` / ``act.grad(z, y)`` and its result copied into place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lstmkit import activations
from lstmkit.activations import Activation, KernelOps
from lstmkit.cells.lstm_fused_steps import Views

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
]


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
    views: Views,
    mm: Callable[..., Any],
    UT: Array,
    keep_pre: bool,
    prescaled: bool = False,
) -> None:
    """Run the forward time loop for any activations and peepholes.

    ``views`` come from :func:`~lstmkit.cells.lstm_fused_steps.forward_steps` with
    ``general=True``; ``pre`` is filled when ``keep_pre``. With ``prescaled``, ``UT`` and the
    projection carry the affine maps of :func:`gate_affine` (peepholes are scaled to match
    here) and the activations run only their ``post``.
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
        h_prev,
        y,
        projection,
        gates,
        sigmoid_gates,
        output_gate,
        input_forget,
        candidate_cell,
        c_new,
        recurrent,
        products,
        input_candidate,
        forget_cell,
        cell_act,
        input_gate,
        forget_gate,
        candidate,
        c_prev,
        pre,
        tmp,
    ) in views:
        np.add(mm(UT, h_prev, recurrent), gates if projection is None else projection, gates)
        if pi is not None:
            np.add(input_gate, np.multiply(c_prev, pi, tmp), input_gate)
        if pf is not None:
            np.add(forget_gate, np.multiply(c_prev, pf, tmp), forget_gate)
        if keep_pre:
            np.copyto(pre, gates)
        if grouped:
            act3(sigmoid_gates)
        else:
            if shared_if:
                act_i(input_forget)
            else:
                act_i(input_gate)
                act_f(forget_gate)
            if po is None:
                act_o(output_gate)
        act_g(candidate)
        np.multiply(input_forget, candidate_cell, products)  # [i * g, f * c_prev]
        np.add(input_candidate, forget_cell, c_new)
        if po is not None:
            np.add(output_gate, np.multiply(c_new, po, tmp), output_gate)
            if keep_pre:
                np.copyto(pre[: len(output_gate)], output_gate)
            act_o(output_gate)
        cell_into(c_new, cell_act)
        np.multiply(output_gate, cell_act, y)


def backward_loop(cell: Any, views: Views, mm: Callable[..., Any], U: Array) -> None:
    """Run the backward time loop for any activations and peepholes.

    ``views`` come from :func:`~lstmkit.cells.lstm_fused_steps.backward_steps` with
    ``general=True``. Each dL/dz is written over the gate values it was computed from, which
    backward then uses for the weight gradients.
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
        dy,
        gates,
        sigmoid_gates,
        output_gate,
        input_gate,
        forget_gate,
        candidate_cell,
        c_new,
        dh_next,
        dh,
        dc,
        dc_pair,
        d_output,
        d_input_forget_pair,
        d_candidate,
        d_gates,
        q_gates,
        q_sigmoid,
        q_candidate,
        cell_act,
        tmp,
        candidate,
        input_forget,
        pre,
        d_sigmoid,
        d_input_forget,
        d_input,
        d_forget,
        q_input_forget,
        q_unit,
    ) in views:
        np.add(dh_next, dy, dh)
        cell_into(c_new, cell_act)
        np.multiply(dh, cell_act, d_output)
        # dc += dh * o * act_c'(c)
        if cell_tanh:  # o * (dh - do * tanh(c)): one call fewer
            np.multiply(d_output, cell_act, tmp)
            np.subtract(dh, tmp, tmp)
            np.multiply(tmp, output_gate, tmp)
        else:
            np.multiply(dh, output_gate, tmp)
            grad_c(tmp, c_new, cell_act, q_unit, tmp)
        np.add(dc, tmp, dc)
        if not grouped:
            grad_o(d_output, None if pre is None else pre[:H], output_gate, q_unit, output_gate)
            if po is not None:
                np.add(dc, np.multiply(output_gate, po, tmp), dc)
        np.multiply(candidate_cell, dc_pair, d_input_forget_pair)  # [dc * g, dc * c_prev]
        np.multiply(dc, input_gate, d_candidate)  # dc * i
        np.multiply(dc, forget_gate, dc)  # dL/dc_prev along the conveyor belt
        if combined:
            deriv3(sigmoid_gates, q_sigmoid)  # type: ignore[misc]  # not None when combined
            deriv_g(candidate, q_candidate)  # type: ignore[misc]
            np.multiply(d_gates, q_gates, gates)
        elif grouped:
            z = None if pre is None else pre[:H3]
            grad3(d_sigmoid, z, sigmoid_gates, q_sigmoid, sigmoid_gates)
        elif shared_if:
            z = None if pre is None else pre[H:H3]
            grad_i(d_input_forget, z, input_forget, q_input_forget, input_forget)
        else:
            z = None if pre is None else pre[H : 2 * H]
            grad_i(d_input, z, input_gate, q_unit, input_gate)
            z = None if pre is None else pre[2 * H : H3]
            grad_f(d_forget, z, forget_gate, q_unit, forget_gate)
        if not combined:
            z = None if pre is None else pre[H3:]
            grad_g(d_candidate, z, candidate, q_unit, candidate)
        if pf is not None:
            np.add(dc, np.multiply(forget_gate, pf, tmp), dc)
        if pi is not None:
            np.add(dc, np.multiply(input_gate, pi, tmp), dc)
        mm(U, gates, dh_next)
