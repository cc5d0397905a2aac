"""Time steps of the fused LSTM kernel: the views one step works on, and the default loops.

Internal, not API: :mod:`lstmkit.cells.lstm_fused` drives these loops and may change them in
any release.

A step works on ``(rows, batch)`` views of a few per-call buffers (see
:mod:`lstmkit.cells.lstm_fused` for the layout). :class:`ForwardStep` and
:class:`BackwardStep` name every view a forward or backward step reads or writes;
:func:`forward_steps` and :func:`backward_steps` cut them from the buffers and yield one
tuple per step, in the field order of the step type, narrowed to the active sequences when
the batch is packed. The loops unpack each tuple into locals named as the fields: a step of a
small model takes a few microseconds, and attribute access on a step object would add
several percent to it, as would building one per step.

:func:`fast_forward_loop` and :func:`fast_backward_loop` run the default activations
(sigmoid gates, tanh candidate and cell, no peepholes);
:mod:`lstmkit.cells.lstm_fused_general` runs everything else over the same steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import repeat
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

Array = NDArray[Any]
Views = Iterator[tuple[Any, ...]]  # one tuple per step, in a step type's field order

__all__ = [
    "BackwardStep",
    "ForwardStep",
    "backward_steps",
    "fast_backward_loop",
    "fast_forward_loop",
    "forward_steps",
]


class ForwardStep(NamedTuple):
    """The views of one forward step, each ``(rows, active sequences)``.

    The gate block of a step is ``[o, i, f, g, c_prev]``, ``5H`` rows: the gates hold their
    pre-activations, then (in place) their activations. The order puts the three sigmoid-like
    gates together and ``[i, f]`` right before ``[g, c_prev]``, so one product of the two
    forms ``[i * g, f * c_prev]``. The fast loop reads the fields up to ``cell_act``; the
    general loop reads all of them.
    """

    h_prev: Array  # (H, B) the previous step's output
    y: Array  # (H, B) this step's output (written)
    projection: Array | None  # (4H, B) input projection W x + b; None in training (see gates)
    gates: Array  # (4H, B) [o, i, f, g]; in training the projection is already in them
    sigmoid_gates: Array  # (3H, B) [o, i, f]
    output_gate: Array  # (H, B) o
    input_forget: Array  # (2H, B) [i, f]
    candidate_cell: Array  # (2H, B) [g, c_prev]
    c_new: Array  # (H, B) cell state leaving the step (written; c_prev itself in inference)
    recurrent: Array  # (4H, B) scratch: U h_prev
    products: Array  # (2H, B) scratch: [i * g, f * c_prev]
    input_candidate: Array  # (H, B) products[:H], i * g
    forget_cell: Array  # (H, B) products[H:], f * c_prev
    cell_act: Array  # (H, B) act_c(c_new)
    # The general loop only:
    input_gate: Array  # (H, B) i
    forget_gate: Array  # (H, B) f
    candidate: Array  # (H, B) g
    c_prev: Array  # (H, B) cell state entering the step
    pre: Array | None  # (4H, B) copy of the pre-activations, kept for backward (or None)
    tmp: Array  # (H, B) scratch


class BackwardStep(NamedTuple):
    """The views of one backward step, each ``(rows, active sequences)``.

    ``d_*`` views hold the gradient of the loss with respect to a gate's value (after the
    activation); each gate's gradient with respect to its pre-activation, dL/dz, is then
    written over the cached gate values, which backward uses for the weight gradients. ``q_*``
    views are scratch for the activations' local derivatives. The fast loop reads the fields
    up to ``tmp``; the general loop reads all of them.
    """

    dy: Array  # (H, B) gradient of the loss with respect to this step's output, from outside
    gates: Array  # (4H, B) cached [o, i, f, g]; dL/dz written over them
    sigmoid_gates: Array  # (3H, B) [o, i, f]
    output_gate: Array  # (H, B) o
    input_gate: Array  # (H, B) i
    forget_gate: Array  # (H, B) f
    candidate_cell: Array  # (2, H, B) [g, c_prev]
    c_new: Array  # (H, B) cell state leaving the step
    dh_next: Array  # (H, B) carried: dL/dh from the later step; replaced by this step's
    dh: Array  # (H, B) dL/dh of this step's output, all paths
    dc: Array  # (H, B) carried: dL/dc of this step's new cell state, then of c_prev
    dc_pair: Array  # (1, H, B) dc[None], broadcast over [g, c_prev]
    d_output: Array  # (H, B) do
    d_input_forget_pair: Array  # (2, H, B) [di, df]
    d_candidate: Array  # (H, B) dg
    d_gates: Array  # (4H, B) [do, di, df, dg]
    q_gates: Array  # (4H, B) scratch
    q_sigmoid: Array  # (3H, B) q_gates[:3H]
    q_candidate: Array  # (H, B) q_gates[3H:]
    cell_act: Array  # (H, B) act_c(c_new)
    tmp: Array  # (H, B) scratch
    # The general loop only:
    candidate: Array  # (H, B) g
    input_forget: Array  # (2H, B) [i, f]
    pre: Array | None  # (4H, B) pre-activations, when some activation's derivative needs them
    d_sigmoid: Array  # (3H, B) [do, di, df]
    d_input_forget: Array  # (2H, B) [di, df]
    d_input: Array  # (H, B) di
    d_forget: Array  # (H, B) df
    q_input_forget: Array  # (2H, B) q_gates[:2H]
    q_unit: Array  # (H, B) q_gates[:H]


_FAST_FORWARD = ForwardStep._fields[: ForwardStep._fields.index("cell_act") + 1]
_FAST_BACKWARD = BackwardStep._fields[: BackwardStep._fields.index("tmp") + 1]


def _steps(
    fields: tuple[str, ...],
    over_time: Mapping[str, Array],
    every_step: Mapping[str, Array | None],
    bs: Array | None,
    reverse: bool,
) -> Views:
    """One tuple per step in ``fields`` order: row ``t`` of each ``over_time`` array and each
    ``every_step`` item as it is, narrowed to the active columns ``[..., :n]`` when the batch
    is packed (``bs``). Each field is in exactly one of the two mappings."""
    if len(over_time) + len(every_step) != len(fields):
        raise ValueError("each field of the step is named once, and nothing else")
    T = len(next(iter(over_time.values())))
    if bs is None:
        columns: list[Iterable[Any]] = [
            (over_time[n][::-1] if reverse else over_time[n])
            if n in over_time
            else repeat(every_step[n])
            for n in fields
        ]
        return zip(*columns)
    per_time = [n in over_time for n in fields]
    arrays = [over_time[n] if n in over_time else every_step[n] for n in fields]
    sizes = bs

    def packed() -> Views:
        for t in range(T - 1, -1, -1) if reverse else range(T):
            n = int(sizes[t])
            if n > 0:
                yield tuple(
                    None if a is None else (a[t] if timed else a)[..., :n]
                    for a, timed in zip(arrays, per_time)
                )

    return packed()


def forward_steps(
    Y: Array,
    block: Array,
    projection: Array | None,
    pre: Array | None,
    bs: Array | None,
    general: bool,
) -> Views:
    """The :class:`ForwardStep` views of every step, in time order.

    ``Y`` is ``(T + 1, H, B)``, step ``t`` reading ``Y[t]`` and writing ``Y[t + 1]``.
    ``block`` is the training cache's ``(T + 1, 5H, B)`` gate block, already holding the input
    projection (``projection`` None; step ``t`` writes its new cell state into row ``t + 1``),
    or in inference one ``(5H, B)`` block that every step reuses, updating ``c`` in place, with
    the ``(T, 4H, B)`` ``projection``. ``pre`` is ``(T, 4H, B)`` or None. Without ``general``
    the tuples hold the fast loop's fields only.
    """
    T, H, B = Y.shape[0] - 1, Y.shape[1], Y.shape[2]
    H2, H3, H4 = 2 * H, 3 * H, 4 * H
    dt = Y.dtype
    training = projection is None
    g = block[:T] if training else block  # [o, i, f, g, c_prev], per step in training
    gate_views = {
        "gates": g[..., :H4, :],
        "sigmoid_gates": g[..., :H3, :],
        "output_gate": g[..., :H, :],
        "input_forget": g[..., H:H3, :],
        "candidate_cell": g[..., H3:, :],
        "c_new": block[1:, H4:] if training else block[H4:],
    }
    products = np.empty((H2, B), dt)
    every_step: dict[str, Array | None] = {
        "recurrent": np.empty((H4, B), dt),
        "products": products,
        "input_candidate": products[:H],
        "forget_cell": products[H:],
        "cell_act": np.empty((H, B), dt),
    }
    over_time = {"h_prev": Y[:T], "y": Y[1:]}
    if general:
        gate_views["input_gate"] = g[..., H:H2, :]
        gate_views["forget_gate"] = g[..., H2:H3, :]
        gate_views["candidate"] = g[..., H3:H4, :]
        gate_views["c_prev"] = g[..., H4:, :]
        every_step["tmp"] = np.empty((H, B), dt)
        if pre is None:
            every_step["pre"] = None
        else:
            over_time["pre"] = pre
    if projection is None:
        every_step["projection"] = None  # training: the gate block holds the projection
        over_time.update(gate_views)
    else:
        over_time["projection"] = projection
        every_step.update(gate_views)
    fields = ForwardStep._fields if general else _FAST_FORWARD
    return _steps(fields, over_time, every_step, bs, False)


def backward_steps(
    DY: Array,
    Z: Array,
    pre: Array | None,
    dh_next: Array,
    dc: Array,
    bs: Array | None,
    general: bool,
) -> Views:
    """The :class:`BackwardStep` views of every step, last step first.

    ``DY`` is ``(T, H, B)``; ``Z`` the training cache's ``(T + 1, 5H, B)`` gate block; ``pre``
    ``(T, 4H, B)`` or None. ``dh_next`` and ``dc`` ``(H, B)`` hold the gradients with respect
    to the final state and are carried from step to step: afterwards they hold those with
    respect to the initial state. Without ``general`` the tuples hold the fast loop's fields
    only.
    """
    T, H, B = DY.shape
    H2, H3, H4 = 2 * H, 3 * H, 4 * H
    dt = DY.dtype
    g = Z[:T]
    over_time = {
        "dy": DY,
        "gates": g[:, :H4],
        "sigmoid_gates": g[:, :H3],
        "output_gate": g[:, :H],
        "input_gate": g[:, H:H2],
        "forget_gate": g[:, H2:H3],
        "candidate_cell": g[:, H3:].reshape(T, 2, H, B),
        "c_new": Z[1:, H4:],
    }
    d = np.empty((H4, B), dt)
    q = np.empty((H4, B), dt)
    every_step: dict[str, Array | None] = {
        "dh_next": dh_next,
        "dh": np.empty((H, B), dt),
        "dc": dc,
        "dc_pair": dc[None],
        "d_output": d[:H],
        "d_input_forget_pair": d[H:H3].reshape(2, H, B),
        "d_candidate": d[H3:],
        "d_gates": d,
        "q_gates": q,
        "q_sigmoid": q[:H3],
        "q_candidate": q[H3:],
        "cell_act": np.empty((H, B), dt),
        "tmp": np.empty((H, B), dt),
    }
    if general:
        over_time["candidate"] = g[:, H3:H4]
        over_time["input_forget"] = g[:, H:H3]
        if pre is None:
            every_step["pre"] = None
        else:
            over_time["pre"] = pre
        every_step["d_sigmoid"] = d[:H3]
        every_step["d_input_forget"] = d[H:H3]
        every_step["d_input"] = d[H:H2]
        every_step["d_forget"] = d[H2:H3]
        every_step["q_input_forget"] = q[:H2]
        every_step["q_unit"] = q[:H]
    fields = BackwardStep._fields if general else _FAST_BACKWARD
    return _steps(fields, over_time, every_step, bs, True)


# The loops pass every output array positionally (np.tanh(z, z), not out=z): a ufunc call on a
# few hundred values takes about 0.3 us, and parsing a keyword adds about 50 ns to it.


def fast_forward_loop(views: Views, mm: Callable[..., Any], UT: Array) -> None:
    """The forward time loop for the default activations, over :func:`forward_steps`.

    ``UT``, the projection and the bias carry a factor 1/2 on the sigmoid rows, so one ``tanh``
    over all ``4H`` rows yields every gate: ``sigmoid(z) = (1 + tanh(z / 2)) / 2``.
    """
    half = np.array(0.5, UT.dtype)
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
    ) in views:
        np.add(mm(UT, h_prev, recurrent), gates if projection is None else projection, gates)
        np.tanh(gates, gates)
        np.multiply(sigmoid_gates, half, sigmoid_gates)
        np.add(sigmoid_gates, half, sigmoid_gates)
        np.multiply(input_forget, candidate_cell, products)  # [i * g, f * c_prev]
        np.add(input_candidate, forget_cell, c_new)
        np.tanh(c_new, cell_act)
        np.multiply(output_gate, cell_act, y)


def fast_backward_loop(views: Views, mm: Callable[..., Any], U: Array) -> None:
    """The backward time loop for the default activations, over :func:`backward_steps`."""
    one = np.array(1, U.dtype)
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
    ) in views:
        np.add(dh_next, dy, dh)
        np.tanh(c_new, cell_act)
        np.multiply(dh, cell_act, d_output)
        # dc += dh * o * (1 - tanh(c)^2) = o * (dh - do * tanh(c))
        np.multiply(d_output, cell_act, tmp)
        np.subtract(dh, tmp, tmp)
        np.multiply(tmp, output_gate, tmp)
        np.add(dc, tmp, dc)
        np.multiply(candidate_cell, dc_pair, d_input_forget_pair)  # [dc * g, dc * c_prev]
        np.multiply(dc, input_gate, d_candidate)  # dc * i
        np.multiply(dc, forget_gate, dc)  # dL/dc_prev along the conveyor belt
        # Local derivatives: s (1 - s) = s - s^2 for the sigmoid rows, 1 - g^2 for g.
        np.multiply(gates, gates, q_gates)
        np.subtract(sigmoid_gates, q_sigmoid, q_sigmoid)
        np.subtract(one, q_candidate, q_candidate)
        np.multiply(d_gates, q_gates, gates)  # dL/dz, over the gate values
        mm(U, gates, dh_next)
