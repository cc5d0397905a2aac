"""ONNX export: lstmkit runners as ONNX ``LSTM``, ``GRU`` and ``RNN`` operators (extra ``onnx``).

:func:`to_onnx` writes one graph per model: the batch-first input ``x (batch, time, input)`` is
transposed to ONNX's time-major layout, each layer becomes one ``LSTM`` or ``GRU`` node
(``direction`` forward, reverse or bidirectional), the node's output ``Y (time, directions, batch,
hidden)`` is merged back to ``(time, batch, features)`` (concat, sum, mean or mul), and the last
layer's output is transposed to ``y (batch, time, output)``. With ``lengths=True`` the graph takes a
second input ``lengths (batch,)`` (int32) that feeds every node's ``sequence_lens``.

Layouts (ONNX uses column vectors like PyTorch, so every block is an lstmkit weight transposed):

* **LSTM**, gates ``i, o, f, c``: ``W (dirs, 4H, input)``, ``R (dirs, 4H, H)``,
  ``B (dirs, 8H) = [Wb, Rb]`` (lstmkit's bias in ``Wb``, zeros in ``Rb``), peepholes
  ``P (dirs, 3H)`` in the order ``i, o, f``. ``activations`` lists ``f, g, h`` per direction:
  the gate activation (shared by i, o, f), the candidate's, and the cell activation.
* **Coupled LSTM** (``CoupledLSTMCell``) uses ``input_forget=1``, where ONNX Runtime computes
  ``f = 1 - i``. lstmkit keeps the forget gate and uses ``1 - f`` as the input gate, so the export
  writes the forget gate's weights, negated, as the input gate: ``sigmoid(-a) = 1 - sigmoid(a)``
  (also true of hard_sigmoid), which makes ONNX's ``f`` lstmkit's ``f``.
* **GRU**, gates ``z, r, h``: ``W (dirs, 3H, input)``, ``R (dirs, 3H, H)``, ``B (dirs, 6H)``;
  ``GRUCell(reset_after=True)`` is ``linear_before_reset=1`` with its ``recurrent_bias`` as the
  candidate's ``Rb``. ONNX weighs ``h_prev`` by ``z`` (``update_convention="pytorch"``).
* **RNN** (``SimpleRNNCell``): ``W (dirs, H, input)``, ``R (dirs, H, H)``, ``B (dirs, 2H)`` (the
  bias in ``Wb``, zeros in ``Rb``); ``activations`` holds the gate's activation per direction.

Activations are recognised by the object, never by name: the export writes each activation's
declared ``onnx`` form (:attr:`lstmkit.activations.Activation.onnx`). The built-ins sigmoid, tanh,
relu, hard_sigmoid (``HardSigmoid`` with alpha 0.2, beta 0.5), softsign, softplus, elu (alpha 1)
and linear (``Affine`` with alpha 1, beta 0) declare one; your own activation is exported only if
you declare its ``onnx`` form yourself. Anything else, including an activation of your own that
merely shares a built-in's name, raises ``ValueError`` naming the part.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lstmkit import activations
from lstmkit.cells.coupled import CoupledLSTMCell
from lstmkit.cells.gru import GRUCell
from lstmkit.cells.lstm import LSTMCell
from lstmkit.cells.simple import SimpleRNNCell
from lstmkit.gate import Gate
from lstmkit.interop.onnx_model import RunnerGraph, sequential_to_onnx
from lstmkit.layers.sequential import Sequential
from lstmkit.module import converted
from lstmkit.runners import Bidirectional, Recurrent, Stacked

__all__ = ["to_onnx"]

Array = NDArray[Any]


def _onnx() -> tuple[Any, Any]:
    try:
        import onnx
        from onnx import helper
    except ImportError as error:  # pragma: no cover - exercised only without onnx
        raise ImportError(
            "lstmkit.interop.onnx needs onnx; install it with pip install 'lstmkit[onnx]'"
        ) from error
    return onnx, helper


def _activation(
    act: Any, where: str, problems: list[str]
) -> tuple[str, float | None, float | None]:
    """The ONNX form ``act`` declares (its ``onnx`` field), or a problem naming ``where``."""
    form = getattr(act, "onnx", None)
    if form is not None:
        return form
    name = getattr(act, "name", repr(act))
    expressible = ", ".join(b.name for b in activations.BUILTINS if b.onnx is not None)
    if any(b.name == name for b in activations.BUILTINS):
        problems.append(
            f"{where}: activation {name!r} is your own Activation, not lstmkit's built-in "
            f"{name} (declare onnx= on it, or use activations.{name})"
        )
    else:
        problems.append(
            f"{where}: activation {name!r} (ONNX supports {expressible}, or an Activation "
            "declaring its onnx form)"
        )
    return ("Sigmoid", None, None)


def _cell_spec(cell: Any, path: str, problems: list[str]) -> dict[str, Any] | None:
    """Weights in ONNX layout (one direction) and the node attributes this cell needs."""
    if type(cell) is LSTMCell:
        acts = {n: cell.gates[n].activation for n in ("input", "forget", "output")}
        gate_acts = [_activation(a, f"{path}.{n}", problems) for n, a in acts.items()]
        if len(set(gate_acts)) > 1:
            problems.append(
                f"{path}: different activations on the input, forget and output gates "
                f"({', '.join(f'{n}={a.name}' for n, a in acts.items())}); ONNX's f is shared"
            )
        order = [cell.gates[n] for n in ("input", "output", "forget", "candidate")]
        signs = [1.0, 1.0, 1.0, 1.0]
        peep = {
            n: None if (p := cell.gates[n].p) is None else p.value
            for n in ("input", "output", "forget")
        }
        kind, extra = "LSTM", {}
    elif type(cell) is CoupledLSTMCell:
        f_act, o_act = cell.forget.activation, cell.output.activation
        gate_acts = [
            _activation(f_act, f"{path}.forget", problems),
            _activation(o_act, f"{path}.output", problems),
        ]
        if gate_acts[0] != gate_acts[1]:
            problems.append(f"{path}: different forget and output activations; ONNX's f is shared")
        if not f_act.symmetric:
            problems.append(
                f"{path}: input_forget with the gate activation {f_act.name!r} "
                "(the export needs f(-a) = 1 - f(a), an Activation declared symmetric such as "
                "sigmoid or hard_sigmoid)"
            )
        # ONNX's input gate is lstmkit's forget gate negated; ONNX then derives f = 1 - i.
        order = [cell.forget, cell.output, cell.forget, cell.candidate]
        signs = [-1.0, 1.0, 0.0, 1.0]
        peep = {
            "input": None if cell.forget.p is None else -cell.forget.p.value,  # sees c_{t-1} too
            "output": None if cell.output.p is None else cell.output.p.value,
            "forget": None,
        }
        kind, extra = "LSTM", {"input_forget": 1}
    elif type(cell) is GRUCell:
        acts = {n: cell.gates[n].activation for n in ("update", "reset")}
        gate_acts = [_activation(a, f"{path}.{n}", problems) for n, a in acts.items()]
        if len(set(gate_acts)) > 1:
            problems.append(f"{path}: different update and reset activations; ONNX's f is shared")
        if cell.update_convention != "pytorch":
            problems.append(
                f"{path}: update_convention={cell.update_convention!r} (ONNX weighs h_prev by z)"
            )
        gates = [cell.update, cell.reset, cell.candidate]
        rb = np.zeros(3 * cell.hidden_size, cell.dtype)
        if cell.reset_after:
            assert cell.recurrent_bias is not None  # a reset-after GRU always has b_hn
            rb[2 * cell.hidden_size :] = cell.recurrent_bias.value
        g = _activation(cell.candidate.activation, f"{path}.candidate", problems)
        return {
            "kind": "GRU",
            "H": cell.hidden_size,
            "dtype": cell.dtype,
            "W": np.concatenate([gt.W.value.T for gt in gates]),
            "R": np.concatenate([gt.U.value.T for gt in gates]),
            "B": np.concatenate([np.concatenate([gt.b.value for gt in gates]), rb]),
            "P": None,
            "acts": [gate_acts[0], g],
            "attrs": {"linear_before_reset": int(bool(cell.reset_after))},
        }
    elif type(cell) is SimpleRNNCell:
        return _simple_rnn_spec(cell, path, problems)
    else:
        problems.append(
            f"{path}: a {type(cell).__name__} (ONNX export supports LSTMCell, "
            "CoupledLSTMCell, GRUCell and SimpleRNNCell)"
        )
        return None
    g = _activation(cell.candidate.activation, f"{path}.candidate", problems)
    h = _activation(cell.cell_activation, f"{path}.cell_activation", problems)
    H = cell.hidden_size
    zeros = np.zeros(H, cell.dtype)
    p_values = [zeros if p is None else p for p in (peep["input"], peep["output"], peep["forget"])]
    return {
        "kind": kind,
        "H": H,
        "dtype": cell.dtype,
        "W": np.concatenate([s * gt.W.value.T for s, gt in zip(signs, order)]),
        "R": np.concatenate([s * gt.U.value.T for s, gt in zip(signs, order)]),
        "B": np.concatenate(
            [*(s * gt.b.value for s, gt in zip(signs, order)), np.zeros(4 * H, cell.dtype)]
        ),
        "P": np.concatenate(p_values) if any(p is not None for p in peep.values()) else None,
        "acts": [gate_acts[0], g, h],
        "attrs": extra,
    }


def _simple_rnn_spec(cell: SimpleRNNCell, path: str, problems: list[str]) -> dict[str, Any]:
    """ONNX ``RNN``: ``H_t = f(X_t W^T + H_{t-1} R^T + Wb + Rb)``, the cell's one gate."""
    gate = cell.candidate
    if type(gate) is not Gate:
        problems.append(
            f"{path}.candidate: a {type(gate).__name__} (ONNX's RNN computes a plain Gate's "
            "affine map)"
        )
    act = _activation(gate.activation, f"{path}.candidate", problems)
    return {
        "kind": "RNN",
        "H": cell.hidden_size,
        "dtype": cell.dtype,
        "W": gate.W.value.T,
        "R": gate.U.value.T,
        "B": np.concatenate([gate.b.value, np.zeros(cell.hidden_size, cell.dtype)]),
        "P": None,
        "acts": [act],
        "attrs": {},
    }


def _layers(
    model: Any, problems: list[str], path: str = "model"
) -> list[tuple[str, list[Any], str, str]]:
    """``[(path, cells, direction, merge)]`` for each layer."""
    if isinstance(model, Stacked):
        items = [(f"{path}.layers[{k}]", layer) for k, layer in enumerate(model.layers)]
    elif isinstance(model, (Recurrent, Bidirectional)):
        items = [(path, model)]
    elif hasattr(model, "step"):
        items = [(path, Recurrent(model))]
    else:
        raise TypeError(
            f"model: expected a cell, Recurrent, Bidirectional or Stacked, received {type(model).__name__}"
        )
    out = []
    for path, layer in items:
        if isinstance(layer, Recurrent):
            out.append((path, [layer.cell], "reverse" if layer.reverse else "forward", "concat"))
        elif isinstance(layer, Bidirectional):
            if layer.merge == "none":
                problems.append(f"{path}: merge='none' (the graph has one output)")
            out.append(
                (
                    path,
                    [layer.forward_layer.cell, layer.backward_layer.cell],
                    "bidirectional",
                    layer.merge,
                )
            )
        else:
            problems.append(f"{path}: a {type(layer).__name__} layer")
    return out


def to_onnx(
    model: Any,
    path: str | os.PathLike[str],
    *,
    lengths: bool = False,
    opset: int = 14,
    dtype: Any = None,
) -> None:
    """Write ``model`` as an ONNX graph of ``LSTM`` / ``GRU`` / ``RNN`` nodes.

    Parameters
    ----------
    model
        A cell (``LSTMCell``, ``CoupledLSTMCell``, ``GRUCell``, ``SimpleRNNCell``), a
        ``Recurrent`` or ``Bidirectional`` of them, or a ``Stacked`` of those; or a whole
        :class:`~lstmkit.Sequential` with ``Dense`` and pooling heads (see
        :mod:`lstmkit.interop.onnx_model`).
    path : str or path-like
        The ``.onnx`` file, written atomically (its folder must exist).
    lengths : bool, default False
        Add the graph input ``lengths (batch,)`` (int32), passed to every node's ``sequence_lens``.
        Outputs past each length are zero, as in lstmkit.
    opset : int, default 14
    dtype : float32 or float64, optional
        Export a copy of the model in this dtype (:meth:`lstmkit.Module.astype`); by default the
        model's own. ``dtype=np.float32`` serves a float64 model with ONNX Runtime.

    Notes
    -----
    Graph input ``x``: ``(batch, time, input_size)``; output ``y``: ``(batch, time, output_size)``,
    both in the model's dtype. Initial states are zero; final states are not exported. A float64
    model gives a valid float64 graph, but ONNX Runtime's CPU LSTM, GRU and RNN kernels run float32
    only: convert the model to float32 to serve it there.

    Raises
    ------
    ValueError
        Naming every part ONNX cannot express (projection, layer normalization, dropout wrappers,
        unsupported or per-gate activations, ``merge="none"``, an Olah-convention GRU).
    TypeError
        ``model`` is not a cell or runner.
    """
    onnx, helper = _onnx()
    if dtype is not None:
        model = converted(model, dtype)
    if isinstance(model, Sequential):
        runners = RunnerGraph(onnx, helper, _layers, _specs, _recurrent_nodes, _GraphParts, _target)
        sequential_to_onnx(model, path, runners=runners, lengths=lengths, opset=opset)
        return
    problems: list[str] = []
    layers = _layers(model, problems)
    specs = _specs(layers, problems)
    if problems:
        raise ValueError("model: ONNX cannot express " + "; ".join(problems))
    # With no problems reported, every cell has a spec.
    specs_ok: list[list[dict[str, Any]]] = [[s for s in ls if s is not None] for ls in specs]
    target = _target(path)
    dtype = np.dtype(specs_ok[0][0]["dtype"])
    elem = onnx.TensorProto.FLOAT if dtype == np.float32 else onnx.TensorProto.DOUBLE
    parts = _GraphParts(onnx, helper)
    inputs = [helper.make_tensor_value_info("x", elem, ["batch", "time", int(model.input_size)])]
    if lengths:
        inputs.append(helper.make_tensor_value_info("lengths", onnx.TensorProto.INT32, ["batch"]))
    parts.nodes.append(helper.make_node("Transpose", ["x"], ["x_tm"], perm=[1, 0, 2]))
    current = _recurrent_nodes(parts, layers, specs_ok, "x_tm", lengths=lengths, first=0)
    parts.nodes.append(helper.make_node("Transpose", [current], ["y"], perm=[1, 0, 2]))
    output = helper.make_tensor_value_info("y", elem, ["batch", "time", int(model.output_size)])
    parts.finish(inputs, [output], target, opset)


class _GraphParts:
    """The nodes and initializers of a graph being built, and how to write it."""

    def __init__(self, onnx: Any, helper: Any) -> None:
        self.onnx, self.helper = onnx, helper
        self.nodes: list[Any] = []
        self.inits: list[Any] = []

    def const(self, name: str, value: Array) -> str:
        """The name of an initializer holding ``value`` (added once per name)."""
        if all(t.name != name for t in self.inits):
            self.inits.append(
                self.helper.make_tensor(
                    name, _elem_of(self.onnx, value), value.shape, value.ravel().tolist()
                )
            )
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        """Add one node with one output; returns the output's name."""
        self.nodes.append(self.helper.make_node(op, inputs, [output], **attrs))
        return output

    def finish(self, inputs: list[Any], outputs: list[Any], target: Path, opset: int) -> None:
        """Check the model and write it atomically to ``target``."""
        helper = self.helper
        graph = helper.make_graph(self.nodes, "lstmkit", inputs, outputs, initializer=self.inits)
        onnx_model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="lstmkit"
        )
        self.onnx.checker.check_model(onnx_model)
        _write_atomically(target, onnx_model.SerializeToString())


def _target(path: Any) -> Path:
    target = Path(path)
    if not target.parent.is_dir():
        raise FileNotFoundError(
            f"path: the folder {str(target.parent)!r} does not exist; create it first"
        )
    return target


def _specs(
    layers: list[tuple[str, list[Any], str, str]], problems: list[str]
) -> list[list[dict[str, Any] | None]]:
    """Each layer's cells in ONNX layout (None where a problem was added)."""
    specs = [
        [
            _cell_spec(cell, f"{lp}.{'cell' if len(cells) == 1 else d}", problems)
            for cell, d in zip(cells, ("forward_layer.cell", "backward_layer.cell"))
        ]
        for lp, cells, _, _ in layers
    ]
    for (lp, cells, _, _), layer_specs in zip(layers, specs):
        kinds = {
            (s["kind"], tuple(sorted(s["attrs"].items()))) for s in layer_specs if s is not None
        }
        if len(kinds) > 1:
            problems.append(
                f"{lp}: directions of different kinds ({', '.join(type(c).__name__ for c in cells)})"
            )
    return specs


def _recurrent_nodes(
    parts: _GraphParts,
    layers: list[tuple[str, list[Any], str, str]],
    specs_ok: list[list[dict[str, Any]]],
    current: str,
    *,
    lengths: bool,
    first: int,
) -> str:
    """Add one ``LSTM``/``GRU`` node per layer to ``parts``, reading the time-major tensor
    ``current`` ``(time, batch, features)``; returns the name of the last layer's output
    (time-major too). Layers are numbered from ``first`` in node and weight names."""
    helper, nodes, const = parts.helper, parts.nodes, parts.const
    dtype = np.dtype(specs_ok[0][0]["dtype"])
    for k, ((_, _, direction, merge), ok_specs) in enumerate(zip(layers, specs_ok), start=first):
        spec = ok_specs[0]
        stack = {key: np.stack([s[key] for s in ok_specs]).astype(dtype) for key in ("W", "R", "B")}
        names = [
            current,
            const(f"W{k}", stack["W"]),
            const(f"R{k}", stack["R"]),
            const(f"B{k}", stack["B"]),
            "lengths" if lengths else "",
        ]
        if spec["kind"] == "LSTM" and any(s["P"] is not None for s in ok_specs):
            peeps = [
                s["P"] if s["P"] is not None else np.zeros(3 * s["H"], dtype) for s in ok_specs
            ]
            names += ["", "", const(f"P{k}", np.stack(peeps).astype(dtype))]
        acts = [a for s in ok_specs for a in s["acts"]]
        alphas = [a[1] for a in acts if a[1] is not None]
        betas = [a[2] for a in acts if a[2] is not None]
        extra = dict(spec["attrs"])
        if alphas:
            extra["activation_alpha"] = alphas
        if betas:
            extra["activation_beta"] = betas
        nodes.append(
            helper.make_node(
                spec["kind"],
                [n for n in names],
                [f"Y{k}"],
                name=f"layer{k}",
                hidden_size=spec["H"],
                direction=direction,
                activations=[a[0] for a in acts],
                **extra,
            )
        )
        if direction != "bidirectional" or merge == "concat":
            nodes.append(helper.make_node("Transpose", [f"Y{k}"], [f"Yt{k}"], perm=[0, 2, 1, 3]))
            shape = const("reshape_tbf", np.array([0, 0, -1], np.int64))  # (T, B, dirs * H)
            nodes.append(helper.make_node("Reshape", [f"Yt{k}", shape], [f"out{k}"]))
        else:
            nodes.append(helper.make_node("Split", [f"Y{k}"], [f"Yf{k}", f"Yb{k}"], axis=1))
            op = "Mul" if merge == "mul" else "Add"
            nodes.append(helper.make_node(op, [f"Yf{k}", f"Yb{k}"], [f"Ym{k}"]))
            if merge == "mean":
                const(f"half{k}", np.array(0.5, dtype))
                nodes.append(helper.make_node("Mul", [f"Ym{k}", f"half{k}"], [f"Yh{k}"]))
            axis = const("axis1", np.array([1], np.int64))
            nodes.append(
                helper.make_node(
                    "Squeeze", [f"Yh{k}" if merge == "mean" else f"Ym{k}", axis], [f"out{k}"]
                )
            )
        current = f"out{k}"
    return current


def _elem_of(onnx: Any, value: Array) -> int:
    return {
        np.dtype(np.float32): onnx.TensorProto.FLOAT,
        np.dtype(np.float64): onnx.TensorProto.DOUBLE,
        np.dtype(np.int64): onnx.TensorProto.INT64,
    }[value.dtype]


def _write_atomically(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, target.stat().st_mode & 0o777 if target.exists() else 0o644)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
