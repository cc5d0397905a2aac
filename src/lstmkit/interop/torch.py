"""PyTorch interop: ``nn.LSTM``, ``nn.LSTMCell``, ``nn.GRU``, ``nn.GRUCell``, ``nn.RNN`` and
``nn.RNNCell`` to lstmkit and back.

Layouts (lstmkit uses row vectors, ``x @ W``; PyTorch column vectors, ``W x``):

* **LSTM.** PyTorch stacks the gates as input, forget, cell (candidate), output: ``weight_ih (4H, I)``,
  ``weight_hh (4H, H)`` (``(4H, P)`` with ``proj_size``). Each block, transposed, is one lstmkit gate's
  ``W`` or ``U``. PyTorch has two biases, ``bias_ih`` and ``bias_hh``, that are always added together;
  lstmkit keeps their sum ``b``. Exporting puts ``b`` in ``bias_ih`` and zeros in ``bias_hh``.
  ``weight_hr (P, H)`` is ``ProjectionLSTMCell.projection`` transposed.
* **GRU.** PyTorch stacks reset, update, new (candidate): ``weight_ih (3H, I)``, ``weight_hh (3H, H)``.
  The reset and update gates keep ``b_i + b_h``; the candidate keeps ``b_in`` as its ``b`` and
  ``b_hn`` (which the reset gate scales) as ``GRUCell.recurrent_bias``. PyTorch's GRU is lstmkit's
  ``GRUCell(reset_after=True, update_convention="pytorch")``.
* **RNN** (Elman): ``weight_ih (H, I)``, ``weight_hh (H, H)`` transposed are the ``W`` and ``U``
  of ``SimpleRNNCell.candidate``, ``b`` the sum of the two biases; ``nonlinearity="tanh"`` or ``"relu"`` is the
  gate's activation (``activations.tanh`` or ``activations.relu``, recognised by the object).

lstmkit runners are always batch-first: a model converted from ``nn.LSTM(batch_first=False)``
computes the same function, but takes its input as ``(batch, time, features)``.

PyTorch is imported only when a function is called. Example (not run as a doctest, since
PyTorch is optional)::

    import torch
    from lstmkit.interop.torch import from_torch, to_torch

    lstm = torch.nn.LSTM(3, 4, num_layers=2, batch_first=True).double()
    model = from_torch(lstm)        # Stacked of two Recurrent(LSTMCell), same weights
    back = to_torch(model)          # nn.LSTM(3, 4, num_layers=2, batch_first=True)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from lstmkit import activations
from lstmkit.cells.gru import GRUCell
from lstmkit.cells.lstm import LSTMCell
from lstmkit.cells.projection import ProjectionLSTMCell
from lstmkit.cells.simple import SimpleRNNCell
from lstmkit.interop._torch_rnn import rnn_cell, rnn_problems
from lstmkit.interop.torch_model import sequential_to_torch
from lstmkit.layers.sequential import Sequential
from lstmkit.module import check_dtype, converted
from lstmkit.runners import Bidirectional, Recurrent, Stacked

__all__ = ["from_torch", "to_torch"]

Array = NDArray[Any]

#: lstmkit gate names in PyTorch's block order.
LSTM_ORDER = ("input", "forget", "candidate", "output")
GRU_ORDER = ("reset", "update", "candidate")


def _torch() -> Any:
    try:
        import torch
    except ImportError as error:  # pragma: no cover - exercised only without PyTorch
        raise ImportError(
            "lstmkit.interop.torch needs PyTorch; install it with pip install 'lstmkit[torch]'"
        ) from error
    return torch


# -- PyTorch -> lstmkit -----------------------------------------------------------------------


def from_torch(module: Any, *, dtype: Any = None) -> Any:
    """Convert a PyTorch recurrent module into the matching lstmkit component.

    Parameters
    ----------
    module : torch.nn.LSTM, LSTMCell, GRU, GRUCell, RNN or RNNCell
    dtype : float32 or float64, optional
        The lstmkit dtype; by default the module's own (which must then be float32 or float64).

    Returns
    -------
    LSTMCell, ProjectionLSTMCell, GRUCell or SimpleRNNCell
        For ``nn.LSTMCell`` / ``nn.GRUCell`` / ``nn.RNNCell``.
    Recurrent, Bidirectional or Stacked
        For ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``: one layer gives a ``Recurrent`` (or a
        ``Bidirectional`` with ``merge="concat"``), several a ``Stacked`` with the module's
        ``dropout``. Inputs are batch-first whatever ``batch_first`` was; ``proj_size > 0`` gives ``ProjectionLSTMCell``\\ s.

    Raises
    ------
    TypeError
        ``module`` is not one of the six supported types, or its dtype is not float32/float64.
    """
    torch = _torch()
    nn = torch.nn
    if not isinstance(module, (nn.LSTM, nn.GRU, nn.LSTMCell, nn.GRUCell, nn.RNN, nn.RNNCell)):
        raise TypeError(
            "module: expected torch.nn.LSTM, LSTMCell, GRU, GRUCell, RNN or RNNCell, received "
            f"{type(module).__name__}"
        )
    first = next(module.parameters())
    dt = check_dtype(
        str(first.dtype).removeprefix("torch.") if dtype is None else dtype, argument="dtype"
    )

    def get(name: str) -> Array | None:
        value = getattr(module, name, None)
        return None if value is None else value.detach().cpu().numpy().astype(dt, copy=True)

    if isinstance(module, nn.LSTMCell):
        return _lstm_cell(
            get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"), None, dt
        )
    if isinstance(module, nn.GRUCell):
        return _gru_cell(get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"), dt)
    if isinstance(module, nn.RNNCell):
        w_ih, w_hh, b_ih, b_hh = (get(n) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        return rnn_cell(w_ih, w_hh, b_ih, b_hh, module.nonlinearity, dt)
    is_lstm = isinstance(module, nn.LSTM)
    layers = []
    for k in range(module.num_layers):
        runners = []
        for suffix in ("", "_reverse")[: 2 if module.bidirectional else 1]:
            names = [f"{p}_l{k}{suffix}" for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            w_ih, w_hh, b_ih, b_hh = (get(n) for n in names)
            cell: Any
            if is_lstm:
                hr = get(f"weight_hr_l{k}{suffix}") if module.proj_size > 0 else None
                cell = _lstm_cell(w_ih, w_hh, b_ih, b_hh, hr, dt)
            elif isinstance(module, nn.RNN):
                cell = rnn_cell(w_ih, w_hh, b_ih, b_hh, module.nonlinearity, dt)
            else:
                cell = _gru_cell(w_ih, w_hh, b_ih, b_hh, dt)
            runners.append(Recurrent(cell, reverse=suffix == "_reverse"))
        layers.append(
            Bidirectional(*runners, merge="concat") if module.bidirectional else runners[0]
        )
    if len(layers) == 1:
        return layers[0]
    return Stacked(layers, dropout=float(module.dropout))


def _bias(
    b_ih: Array | None, b_hh: Array | None, rows: int, dt: np.dtype[Any]
) -> tuple[Array, Array]:
    zeros = np.zeros(rows, dt)
    return (zeros if b_ih is None else b_ih), (zeros if b_hh is None else b_hh)


def _lstm_cell(
    w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any, w_hr: Any, dt: np.dtype[Any]
) -> LSTMCell | ProjectionLSTMCell:
    H, n_in = w_ih.shape[0] // 4, w_ih.shape[1]
    if w_hr is None:
        cell: Any = LSTMCell(n_in, H, dtype=dt, rng=0)
    else:
        cell = ProjectionLSTMCell(n_in, H, w_hr.shape[0], dtype=dt, rng=0)
        cell.projection.assign(np.ascontiguousarray(w_hr.T), argument="weight_hr")
    b_ih, b_hh = _bias(b_ih, b_hh, 4 * H, dt)
    bias = b_ih + b_hh  # PyTorch always adds its two biases; one sum is the same map
    for k, name in enumerate(LSTM_ORDER):
        rows = slice(k * H, (k + 1) * H)
        cell.gates[name].set_weights(
            W=np.ascontiguousarray(w_ih[rows].T), U=np.ascontiguousarray(w_hh[rows].T), b=bias[rows]
        )
    return cell


def _gru_cell(w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any, dt: np.dtype[Any]) -> GRUCell:
    H, n_in = w_ih.shape[0] // 3, w_ih.shape[1]
    cell = GRUCell(n_in, H, reset_after=True, update_convention="pytorch", dtype=dt, rng=0)
    b_ih, b_hh = _bias(b_ih, b_hh, 3 * H, dt)
    for k, name in enumerate(GRU_ORDER):
        rows = slice(k * H, (k + 1) * H)
        # b_hn sits inside the reset product, so only the reset and update biases can be summed.
        b = b_ih[rows] if name == "candidate" else b_ih[rows] + b_hh[rows]
        cell.gates[name].set_weights(
            W=np.ascontiguousarray(w_ih[rows].T), U=np.ascontiguousarray(w_hh[rows].T), b=b
        )
    assert cell.recurrent_bias is not None
    cell.recurrent_bias.assign(np.ascontiguousarray(b_hh[2 * H :]), argument="bias_hh")
    return cell


# -- lstmkit -> PyTorch -----------------------------------------------------------------------


def _not_builtin(act: Any) -> str:
    """A note for a user's activation that shares a built-in's name, else ``""``."""
    name = getattr(act, "name", None)
    if act not in activations.BUILTINS and any(b.name == name for b in activations.BUILTINS):
        return f"your own Activation, not lstmkit's built-in {name}; "
    return ""


def _cell_problems(cell: Any, path: str) -> tuple[str | None, list[str]]:
    """The cell's PyTorch kind ("lstm", "gru", "rnn_tanh" or "rnn_relu") and the list of what
    PyTorch cannot express."""
    from lstmkit.cells.coupled import CoupledLSTMCell
    from lstmkit.cells.layernorm import LayerNormLSTMCell
    from lstmkit.regularization import VariationalDropout, Zoneout

    if isinstance(cell, (VariationalDropout, Zoneout)):
        return None, [
            f"{path}: dropout wrappers ({type(cell).__name__}); convert the wrapped {path}.cell"
        ]
    if isinstance(cell, CoupledLSTMCell):
        return None, [f"{path}: coupled input and forget gates (CoupledLSTMCell)"]
    if isinstance(cell, LayerNormLSTMCell):
        return None, [f"{path}: layer normalization (LayerNormLSTMCell)"]
    if type(cell) is SimpleRNNCell:
        return rnn_problems(cell, path)
    problems = []
    if type(cell) in (LSTMCell, ProjectionLSTMCell):
        kind = "lstm"
        peep = [name for name, gate in cell.gates.items() if gate.p is not None]
        if peep:
            problems.append(f"{path}: peepholes on the {', '.join(peep)} gate(s)")
        wanted = {
            "input": activations.sigmoid,
            "forget": activations.sigmoid,
            "candidate": activations.tanh,
            "output": activations.sigmoid,
        }
        if cell.cell_activation is not activations.tanh:
            problems.append(
                f"{path}: cell_activation {cell.cell_activation.name!r} "
                f"({_not_builtin(cell.cell_activation)}PyTorch uses tanh)"
            )
    elif type(cell) is GRUCell:
        kind = "gru"
        if not cell.reset_after:
            problems.append(
                f"{path}: reset_after=False (PyTorch applies the reset after the product)"
            )
        if cell.update_convention != "pytorch":
            problems.append(f"{path}: update_convention={cell.update_convention!r}")
        wanted = {
            "reset": activations.sigmoid,
            "update": activations.sigmoid,
            "candidate": activations.tanh,
        }
    else:
        return None, [
            f"{path}: a {type(cell).__name__} (only LSTMCell, ProjectionLSTMCell, GRUCell and "
            "SimpleRNNCell)"
        ]
    for name, act in wanted.items():
        got = cell.gates[name].activation
        if got is not act:
            problems.append(
                f"{path}.{name}: activation {got.name!r} ({_not_builtin(got)}PyTorch uses {act.name})"
            )
    return kind, problems


def _fail(problems: list[str]) -> None:
    if problems:
        raise ValueError("model: PyTorch cannot express " + "; ".join(problems))


def to_torch(model: Any, *, dtype: Any = None) -> Any:
    """Convert an lstmkit cell or runner into an equivalent PyTorch module.

    Parameters
    ----------
    model
        ``LSTMCell``, ``GRUCell`` or ``SimpleRNNCell`` (to ``nn.LSTMCell`` / ``nn.GRUCell`` /
        ``nn.RNNCell``); or a ``Recurrent``, ``Bidirectional`` (``merge="concat"``) or ``Stacked``
        of them with equal hidden sizes (to ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` with
        ``batch_first=True``, ``num_layers``, ``bidirectional``, ``dropout`` and ``proj_size`` set
        to match); or a whole :class:`~lstmkit.Sequential` with ``Dense`` and pooling heads (to a
        module whose ``forward(x, lengths=None)`` computes the same, see
        :mod:`lstmkit.interop.torch_model`).
    dtype : float32 or float64, optional
        Convert a copy of the model to this dtype first (:meth:`lstmkit.Module.astype`); by
        default the model's own.

    Returns
    -------
    torch.nn.Module
        In the model's dtype, in training mode as PyTorch creates modules.

    Raises
    ------
    ValueError
        Naming every part PyTorch cannot express: peepholes, non-default activations, coupled
        gates, layer normalization, dropout wrappers, GRU conventions other than PyTorch's,
        reverse-only runners, merge modes other than concat, unequal layers.
    TypeError
        ``model`` is not a cell or runner.
    """
    torch = _torch()
    if dtype is not None:
        model = converted(model, dtype)
    if isinstance(model, Sequential):
        return sequential_to_torch(model, torch=torch, to_torch=to_torch)
    dtype = getattr(torch, np.dtype(model.dtype).name) if hasattr(model, "dtype") else None
    if hasattr(model, "step"):  # a bare cell
        kind, problems = _cell_problems(model, "model")
        if kind == "lstm" and type(model) is ProjectionLSTMCell:
            problems.append(
                "model: a projection on nn.LSTMCell (wrap the cell in Recurrent for nn.LSTM)"
            )
        _fail(problems)
        assert kind is not None  # _fail raised otherwise
        cls = torch.nn.LSTMCell if kind == "lstm" else torch.nn.GRUCell
        cell_kwargs: dict[str, Any] = {}
        if kind.startswith("rnn_"):
            cls, cell_kwargs = torch.nn.RNNCell, {"nonlinearity": kind.removeprefix("rnn_")}
        module = cls(model.input_size, model.hidden_size, dtype=dtype, **cell_kwargs)
        _copy_cell(torch, module, "", model, kind)
        return module
    layers = _layers(model)
    kind, proj, hidden = _check_layers(layers)
    bidirectional = len(layers[0][1]) == 2
    kwargs: dict[str, Any] = {"proj_size": proj} if kind == "lstm" else {}
    cls = torch.nn.LSTM if kind == "lstm" else torch.nn.GRU
    if kind.startswith("rnn_"):
        cls, kwargs = torch.nn.RNN, {"nonlinearity": kind.removeprefix("rnn_")}
    dropout = float(model.dropout) if isinstance(model, Stacked) and len(layers) > 1 else 0.0
    module = cls(
        layers[0][1][0].input_size,
        hidden,
        num_layers=len(layers),
        bias=True,
        batch_first=True,
        dropout=dropout,
        bidirectional=bidirectional,
        dtype=dtype,
        **kwargs,
    )
    for k, (_, cells) in enumerate(layers):
        for cell, suffix in zip(cells, ("", "_reverse")):
            _copy_cell(torch, module, f"_l{k}{suffix}", cell, kind)
    return module


def _layers(model: Any) -> list[tuple[str, list[Any]]]:
    """``[(path, [forward cell, (backward cell)])]`` per layer, or a ValueError/TypeError."""
    if isinstance(model, Stacked):
        items = [(f"model.layers[{k}]", layer) for k, layer in enumerate(model.layers)]
    elif isinstance(model, (Recurrent, Bidirectional)):
        items = [("model", model)]
    else:
        raise TypeError(
            "model: expected a cell, Recurrent, Bidirectional or Stacked, received "
            f"{type(model).__name__}"
        )
    layers, problems = [], []
    for path, layer in items:
        if isinstance(layer, Recurrent):
            if layer.reverse:
                problems.append(
                    f"{path}: a reverse-only runner (PyTorch runs forward or both ways)"
                )
            layers.append((path, [layer.cell]))
        elif isinstance(layer, Bidirectional):
            if layer.merge != "concat":
                problems.append(
                    f"{path}: merge={layer.merge!r} (PyTorch concatenates the directions)"
                )
            layers.append((path, [layer.forward_layer.cell, layer.backward_layer.cell]))
        else:
            problems.append(f"{path}: a {type(layer).__name__} layer inside a stack")
    _fail(problems)
    return layers


def _check_layers(layers: list[tuple[str, list[Any]]]) -> tuple[str, int, int]:
    problems, kinds = [], set()
    for path, cells in layers:
        for cell, where in zip(cells, ("forward_layer.cell", "backward_layer.cell")):
            cell_path = f"{path}.{where}" if len(cells) == 2 else f"{path}.cell"
            kind, found = _cell_problems(cell, cell_path)
            problems += found
            kinds.add(kind)
    _fail(problems)
    if len(kinds) != 1:
        names = {"lstm": "LSTM", "gru": "GRU", "rnn_tanh": "tanh RNN", "rnn_relu": "relu RNN"}
        _fail([f"a mix of {' and '.join(names[k] for k in names if k in kinds)} layers"])
    if len({len(cells) for _, cells in layers}) != 1:
        _fail(["a mix of one-way and bidirectional layers"])
    cells = [cell for _, layer_cells in layers for cell in layer_cells]
    hidden = {cell.hidden_size for cell in cells}
    proj = {int(getattr(cell, "proj_size", 0) or 0) for cell in cells}
    if len(hidden) != 1 or len(proj) != 1:
        _fail(
            [
                f"layers of different sizes (hidden {sorted(hidden)}, proj {sorted(proj)}); nn.LSTM layers share one size"
            ]
        )
    return kinds.pop(), proj.pop(), hidden.pop()  # type: ignore[return-value]


def _copy_cell(torch: Any, module: Any, suffix: str, cell: Any, kind: str) -> None:
    order: tuple[str, ...] = LSTM_ORDER if kind == "lstm" else GRU_ORDER
    if kind.startswith("rnn_"):
        order = ("candidate",)
    gates = [cell.gates[name] for name in order]
    H = cell.hidden_size
    w_ih = np.concatenate([g.W.value.T for g in gates])
    w_hh = np.concatenate([g.U.value.T for g in gates])
    b_ih = np.concatenate([g.b.value for g in gates])
    b_hh = np.zeros_like(b_ih)
    if kind == "gru":
        b_hh[2 * H :] = cell.recurrent_bias.value
    arrays = {"weight_ih": w_ih, "weight_hh": w_hh, "bias_ih": b_ih, "bias_hh": b_hh}
    if isinstance(cell, ProjectionLSTMCell):
        arrays["weight_hr"] = cell.projection.value.T
    with torch.no_grad():
        for name, value in arrays.items():
            getattr(module, name + suffix).copy_(torch.from_numpy(np.ascontiguousarray(value)))
