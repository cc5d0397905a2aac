"""ONNX export of whole models: a :class:`~lstmkit.Sequential` as one graph.

:func:`lstmkit.interop.onnx.to_onnx` hands a ``Sequential`` to :func:`sequential_to_onnx`, which
writes its layers in order into one graph, nested ``Sequential`` models inlined:

* runners (``Recurrent``, ``Bidirectional``, ``Stacked`` and bare cells) become ``LSTM`` / ``GRU``
  nodes exactly as :func:`~lstmkit.interop.onnx.to_onnx` writes them, on the time-major tensor
  ``(time, batch, features)``;
* :class:`~lstmkit.layers.LastStep` becomes ``Gather`` of the last step, or, with lengths, a
  one-hot mask of step ``lengths - 1`` (zeros for a sequence of length 0) and ``ReduceSum``;
* :class:`~lstmkit.layers.MeanPool` becomes ``ReduceMean`` over time, or, with lengths, a mask
  of the valid steps, ``ReduceSum`` and a division by ``max(lengths, 1)``;
* :class:`~lstmkit.layers.FinalState` slices each direction's block of features and takes a
  forward block as ``LastStep`` does and a backward block at step 0, then ``Concat``;
* :class:`~lstmkit.Dense` becomes ``Gemm`` on ``(batch, features)`` (after pooling) or
  ``MatMul`` and ``Add`` on every step of a sequence, followed by its activation: the ONNX
  operator its declared ``onnx`` form names (``Affine`` is written as ``Mul`` and ``Add``,
  ``ScaledTanh`` as ``Mul``, ``Tanh``, ``Mul``).

The graph's input is ``x (batch, time, input)`` and, with ``lengths=True``, ``lengths (batch,)``
(int32); its output ``y`` is ``(batch, time, output)`` when the model ends on a sequence and
``(batch, output)`` after a pooling layer. Padded steps are computed as lstmkit computes them:
zeros out of the recurrent nodes, and a ``Dense`` applied to them like any other step.

Only exact lstmkit classes are exported (a subclass of ``Dense`` may compute something else);
everything ONNX cannot express is listed in one ``ValueError``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from lstmkit.layers.dense import Dense
from lstmkit.layers.final_state import FinalState
from lstmkit.layers.pooling import LastStep, MeanPool
from lstmkit.layers.sequential import Sequential
from lstmkit.runners import Bidirectional, Recurrent, Stacked

__all__ = ["sequential_to_onnx"]


class RunnerGraph(NamedTuple):
    """What :mod:`lstmkit.interop.onnx` lends :func:`sequential_to_onnx` for the runners (so
    that this module need not import it)."""

    onnx: Any  #: the onnx package
    helper: Any  #: onnx.helper
    layers: Callable[..., Any]  #: (runner, problems, path) -> the runner's layers
    specs: Callable[..., Any]  #: (layers, problems) -> their cells in ONNX layout
    nodes: Callable[..., str]  #: (parts, layers, specs, current, *, lengths, first) -> output
    parts: Callable[..., Any]  #: (onnx, helper) -> the nodes and initializers being built
    target: Callable[..., Any]  #: (path) -> the checked target path


#: ONNX operators an activation's declared form can name, with the attributes they take.
_UNARY = {"Sigmoid": (), "Tanh": (), "Relu": (), "Softsign": (), "Softplus": ()}
_WITH_ALPHA = {"Elu", "LeakyRelu", "ThresholdedRelu"}


def _flatten(model: Sequential, path: str) -> list[tuple[str, Any]]:
    """Every layer of ``model`` as ``(path, layer)``, nested ``Sequential`` models inlined."""
    out: list[tuple[str, Any]] = []
    for k, layer in enumerate(model.layers):
        where = f"{path}.layers[{k}]"
        if isinstance(layer, Sequential):
            out += _flatten(layer, where)
        else:
            out.append((where, layer))
    return out


def _dense_activation(layer: Dense, where: str, problems: list[str]) -> None:
    form = getattr(layer.activation, "onnx", None)
    name = getattr(layer.activation, "name", repr(layer.activation))
    if form is None:
        problems.append(f"{where}.activation: {name!r} (not an activation declaring its onnx form)")
    elif form[0] not in (*_UNARY, *_WITH_ALPHA, "HardSigmoid", "Affine", "ScaledTanh"):
        problems.append(f"{where}.activation: {name!r} declares {form[0]!r}, no ONNX operator")


def sequential_to_onnx(
    model: Sequential,
    path: str | os.PathLike[str],
    *,
    runners: RunnerGraph,
    lengths: bool = False,
    opset: int = 14,
) -> None:
    """Write a whole ``Sequential`` (runners, ``Dense``, ``LastStep``, ``MeanPool``) as one graph.

    Called by :func:`lstmkit.interop.onnx.to_onnx` (use that, which also takes ``dtype``).

    Parameters
    ----------
    model : Sequential
    path : str or path-like
        The ``.onnx`` file, written atomically (its folder must exist).
    runners : RunnerGraph
        How runners are checked and written (given by :func:`~lstmkit.interop.onnx.to_onnx`).
    lengths : bool, default False
        Add the graph input ``lengths (batch,)`` (int32), used by every recurrent node and
        pooling layer.
    opset : int, default 14
        At least 13.

    Raises
    ------
    ValueError
        Naming every part ONNX cannot express: what :func:`~lstmkit.interop.onnx.to_onnx`
        refuses in a runner, layers of your own (or subclasses), activations without an ONNX
        form, layers of different dtypes, a runner or pooling after pooling.
    """
    onnx, helper = runners.onnx, runners.helper
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < 13:
        raise ValueError(f"opset: expected an integer of at least 13, received {opset!r}")
    problems: list[str] = []
    plan: list[tuple[str, Any, Any]] = []  # (kind, layer, recurrent layers and specs)
    sequence = True  # whether the tensor is still (time, batch, features)
    dtypes: set[str] = set()
    for where, layer in _flatten(model, "model"):
        if hasattr(layer, "dtype"):
            dtypes.add(np.dtype(layer.dtype).name)
        if isinstance(layer, (Recurrent, Bidirectional, Stacked)) or hasattr(layer, "step"):
            if not sequence:
                problems.append(f"{where}: a runner after pooling (it needs a sequence)")
            layers = runners.layers(layer, problems, where)
            plan.append(("recurrent", layer, (layers, runners.specs(layers, problems))))
        elif type(layer) in (LastStep, MeanPool, FinalState):
            if not sequence:
                problems.append(f"{where}: pooling after pooling")
            plan.append(("pool", layer, None))
            sequence = False
        elif type(layer) is Dense:
            _dense_activation(layer, where, problems)
            plan.append(("dense", layer, None))
        else:
            problems.append(
                f"{where}: a {type(layer).__name__} layer (ONNX export supports lstmkit's "
                "runners, Dense, LastStep, MeanPool and FinalState)"
            )
    if len(dtypes) > 1:
        problems.append(f"layers of different dtypes ({', '.join(sorted(dtypes))}); use dtype=")
    if problems:
        raise ValueError("model: ONNX cannot express " + "; ".join(problems))
    target = runners.target(path)
    dtype = np.dtype(model.dtype)
    elem = onnx.TensorProto.FLOAT if dtype == np.float32 else onnx.TensorProto.DOUBLE
    graph = _HeadGraph(runners.parts(onnx, helper), dtype, elem, opset, lengths)
    parts = graph.parts
    inputs = [helper.make_tensor_value_info("x", elem, ["batch", "time", int(model.input_size)])]
    if lengths:
        inputs.append(helper.make_tensor_value_info("lengths", onnx.TensorProto.INT32, ["batch"]))
    current = parts.node("Transpose", ["x"], "x_tm", perm=[1, 0, 2])
    sequence, size, first = True, int(model.input_size), 0
    for k, (kind, layer, extra) in enumerate(plan):
        if kind == "recurrent":
            layers, specs = extra
            ok = [[s for s in ls if s is not None] for ls in specs]
            current = runners.nodes(parts, layers, ok, current, lengths=lengths, first=first)
            first += len(layers)
            size = int(layer.output_size)
        elif kind == "pool":
            current = graph.pool(layer, current, k, size)
            sequence = False
        else:
            current = graph.dense(layer, current, k, sequence)
            size = int(layer.output_size)
    if sequence:
        parts.node("Transpose", [current], "y", perm=[1, 0, 2])
        shape: list[Any] = ["batch", "time", size]
    else:
        parts.node("Identity", [current], "y")
        shape = ["batch", size]
    output = helper.make_tensor_value_info("y", elem, shape)
    parts.finish(inputs, [output], target, opset)


class _HeadGraph:
    """Pooling, dense and mask nodes added to a graph under construction."""

    def __init__(self, parts: Any, dtype: np.dtype[Any], elem: int, opset: int, lengths: bool):
        self.parts, self.dtype, self.elem, self.opset = parts, dtype, elem, opset
        self.lengths = lengths
        self._masks: dict[str, str] = {}

    def _reduce(self, op: str, x: str, out: str) -> str:
        """``op`` (ReduceSum, ReduceMean) over axis 0, dropping it."""
        if op == "ReduceSum" or self.opset >= 18:  # axes became an input
            axes = self.parts.const("axis0", np.array([0], np.int64))
            return self.parts.node(op, [x, axes], out, keepdims=0)
        return self.parts.node(op, [x], out, axes=[0], keepdims=0)

    def _steps_and_lengths(self, current: str) -> tuple[str, str]:
        """``steps (T, 1)`` int64 (0 .. T-1) of ``current`` and ``lengths (1, B)`` int64."""
        p = self.parts
        if "steps" not in self._masks:
            shape = p.node("Shape", [current], "pool_shape")
            zero = p.const("i64_zero", np.array(0, np.int64))
            one = p.const("i64_one", np.array(1, np.int64))
            T = p.node("Gather", [shape, zero], "pool_T", axis=0)
            steps = p.node("Range", [zero, T, one], "pool_range")
            self._masks["steps"] = p.node(
                "Unsqueeze", [steps, p.const("axis1", np.array([1], np.int64))], "pool_steps"
            )
            L = p.node("Cast", ["lengths"], "lengths_i64", to=self.parts.onnx.TensorProto.INT64)
            self._masks["L"] = L
            self._masks["L_row"] = p.node(
                "Unsqueeze", [L, p.const("axis0", np.array([0], np.int64))], "lengths_row"
            )
        return self._masks["steps"], self._masks["L_row"]

    def _weighted_sum(self, current: str, mask: str, k: int) -> str:
        """``sum_t x[t] * mask[t]`` for ``mask (T, B)`` bool; ``(B, F)``."""
        p = self.parts
        m = p.node("Cast", [mask], f"pool{k}_maskf", to=self.elem)
        m3 = p.node("Unsqueeze", [m, p.const("axis2", np.array([2], np.int64))], f"pool{k}_m3")
        return self._reduce(
            "ReduceSum", p.node("Mul", [current, m3], f"pool{k}_xm"), f"pool{k}_sum"
        )

    def _last(self, current: str, k: Any) -> str:
        """``(T, B, F) -> (B, F)``: step ``lengths - 1`` (the last step without lengths)."""
        p = self.parts
        if not self.lengths:
            last = p.const("i64_minus_one", np.array(-1, np.int64))
            return p.node("Gather", [current, last], f"pool{k}", axis=0)
        steps, L_row = self._steps_and_lengths(current)
        one = p.const("i64_one", np.array(1, np.int64))
        last = p.node("Sub", [L_row, one], f"pool{k}_last")
        return self._weighted_sum(current, p.node("Equal", [steps, last], f"pool{k}_mask"), k)

    def _final_state(self, layer: FinalState, current: str, width: int, k: int) -> str:
        """Each direction's block of features where that direction finished: ``(B, F)``."""
        p = self.parts
        directions = layer.directions or ("forward",)
        size = width // len(directions)
        axis = p.const("axis2", np.array([2], np.int64))
        blocks = []
        for j, direction in enumerate(directions):
            start = p.const(f"final{k}_{j}_start", np.array([j * size], np.int64))
            stop = p.const(f"final{k}_{j}_stop", np.array([(j + 1) * size], np.int64))
            block = p.node("Slice", [current, start, stop, axis], f"final{k}_{j}")
            if direction == "forward":
                blocks.append(self._last(block, f"{k}_{j}"))
            else:  # a backward pass ends at step 0 (zero for a sequence of length 0)
                zero = p.const("i64_zero", np.array(0, np.int64))
                blocks.append(p.node("Gather", [block, zero], f"pool{k}_{j}", axis=0))
        return p.node("Concat", blocks, f"pool{k}", axis=1)

    def pool(self, layer: Any, current: str, k: int, width: int) -> str:
        """``(T, B, F) -> (B, F)`` as ``layer`` (LastStep, MeanPool or FinalState) pools."""
        p = self.parts
        if type(layer) is LastStep:
            return self._last(current, k)
        if type(layer) is FinalState:
            return self._final_state(layer, current, width, k)
        if not self.lengths:
            return self._reduce("ReduceMean", current, f"pool{k}")
        steps, L_row = self._steps_and_lengths(current)
        one = p.const("i64_one", np.array(1, np.int64))
        total = self._weighted_sum(current, p.node("Less", [steps, L_row], f"pool{k}_mask"), k)
        count = p.node("Max", [self._masks["L"], one], f"pool{k}_count")
        countf = p.node("Cast", [count], f"pool{k}_countf", to=self.elem)
        column = p.node(
            "Unsqueeze", [countf, p.const("axis1", np.array([1], np.int64))], f"pool{k}_col"
        )
        return p.node("Div", [total, column], f"pool{k}")

    def dense(self, layer: Dense, current: str, k: int, sequence: bool) -> str:
        """``activation(x @ W + b)`` on ``(B, F)`` (Gemm) or every step of ``(T, B, F)``."""
        p = self.parts
        W = p.const(f"dense{k}_W", layer.W.value.astype(self.dtype))
        b = p.const(f"dense{k}_b", layer.b.value.astype(self.dtype))
        if sequence:
            z = p.node("Add", [p.node("MatMul", [current, W], f"dense{k}_xw"), b], f"dense{k}_z")
        else:
            z = p.node("Gemm", [current, W, b], f"dense{k}_z")
        form = layer.activation.onnx
        assert form is not None  # checked before anything was built
        op, alpha, beta = form
        out = f"dense{k}"
        if op in _UNARY:
            return p.node(op, [z], out)
        if op in _WITH_ALPHA:
            return p.node(op, [z], out, **({} if alpha is None else {"alpha": float(alpha)}))
        if op == "HardSigmoid":
            extra = {} if alpha is None else {"alpha": float(alpha), "beta": float(beta or 0.0)}
            return p.node(op, [z], out, **extra)
        a = p.const(f"dense{k}_alpha", np.array(1.0 if alpha is None else alpha, self.dtype))
        c = p.const(f"dense{k}_beta", np.array(0.0 if beta is None else beta, self.dtype))
        if op == "Affine":
            return p.node("Add", [p.node("Mul", [z, a], f"dense{k}_az"), c], out)
        # ScaledTanh: alpha * tanh(beta * z)
        inner = p.node("Tanh", [p.node("Mul", [z, c], f"dense{k}_bz")], f"dense{k}_tanh")
        return p.node("Mul", [inner, a], out)
