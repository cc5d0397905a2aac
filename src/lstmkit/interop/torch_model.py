"""PyTorch export of whole models: a :class:`~lstmkit.Sequential` as one ``torch.nn.Module``.

:func:`lstmkit.interop.torch.to_torch` hands a ``Sequential`` to :func:`sequential_to_torch`,
which converts its layers in order (nested ``Sequential`` models inlined) and returns a
:class:`SequentialModule` (built when first needed, since PyTorch is optional) whose
``forward(x, lengths=None)`` computes what the lstmkit model's ``model(x, lengths=lengths)`` does:

* each runner becomes its own ``nn.LSTM`` / ``nn.GRU`` (``batch_first=True``) as ``to_torch``
  converts it; a ``Stacked`` becomes one module per layer (so its layers may differ in size),
  with ``nn.Dropout`` between them at the stack's rate (active only in training mode);
* with ``lengths``, every recurrent module runs on a packed sequence
  (``pack_padded_sequence(..., enforce_sorted=False)``), and its output is zero past each length,
  a sequence of length 0 included;
* ``Dense`` becomes ``nn.Linear`` (weight ``W.T``) followed by its activation, recognised by the
  object: lstmkit's sigmoid, tanh, relu, linear, softsign, softplus, elu and hard_sigmoid
  (``clamp(0.2 x + 0.5, 0, 1)``, not ``nn.Hardsigmoid``);
* ``LastStep`` takes step ``lengths - 1`` (zeros for length 0), ``FinalState`` each
  direction's block where it finished (forward at ``lengths - 1``, backward at step 0),
  ``MeanPool`` the mean over the valid steps.

Everything PyTorch cannot express is listed in one ``ValueError``: what ``to_torch`` refuses in a
runner, layers of your own (subclasses included), activations of your own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

from lstmkit import activations
from lstmkit.layers.dense import Dense
from lstmkit.layers.final_state import FinalState
from lstmkit.layers.pooling import LastStep, MeanPool
from lstmkit.layers.sequential import Sequential
from lstmkit.runners import Bidirectional, Recurrent, Stacked

__all__ = ["sequential_to_torch"]

_PREFIX = "model: PyTorch cannot express "
_CLASS: dict[str, Any] = {}


def _activation_module(torch: Any, act: Any) -> Any:
    """The ``nn.Module`` computing lstmkit's built-in ``act``, or None for any other object."""
    nn = torch.nn
    table = {
        id(activations.sigmoid): nn.Sigmoid,
        id(activations.tanh): nn.Tanh,
        id(activations.relu): nn.ReLU,
        id(activations.linear): nn.Identity,
        id(activations.softsign): nn.Softsign,
        id(activations.softplus): lambda: nn.Softplus(beta=1.0, threshold=40.0),
        id(activations.elu): lambda: nn.ELU(alpha=1.0),
        id(activations.hard_sigmoid): lambda: _module_classes(torch)["HardSigmoid"](),
    }
    make = table.get(id(act))
    return None if make is None else make()


def _module_classes(torch: Any) -> dict[str, Any]:
    """``SequentialModule`` and ``HardSigmoid``, defined once PyTorch is imported."""
    if _CLASS:
        return _CLASS
    nn = torch.nn

    class HardSigmoid(nn.Module):  # type: ignore[name-defined]
        """lstmkit's (Keras 2's) hard sigmoid: ``clamp(0.2 x + 0.5, 0, 1)``."""

        def forward(self, x: Any) -> Any:
            slope, offset = activations.HARD_SIGMOID_SLOPE, activations.HARD_SIGMOID_OFFSET
            return torch.clamp(x * slope + offset, 0.0, 1.0)

    class Directions(nn.Module):  # type: ignore[name-defined]
        """Holds a ``FinalState``'s directions; ``SequentialModule`` does the gathering."""

        def __init__(self, directions: tuple[str, ...]) -> None:
            super().__init__()
            self.directions = tuple(directions)

        def extra_repr(self) -> str:
            return ", ".join(self.directions)

    class SequentialModule(nn.Module):  # type: ignore[name-defined]
        """An lstmkit ``Sequential`` in PyTorch: ``forward(x, lengths=None)``.

        ``x`` is ``(batch, time, input)``; ``lengths`` (optional) a ``(batch,)`` integer tensor
        or array. Returns what the lstmkit model returns (``(batch, time, out)``, or
        ``(batch, out)`` after pooling); final states are not returned.
        """

        def __init__(self, kinds: list[str], modules: list[Any]) -> None:
            super().__init__()
            self.kinds = list(kinds)
            self.layers = nn.ModuleList(modules)

        def forward(self, x: Any, lengths: Any = None) -> Any:
            T = x.shape[1]
            L = None
            if lengths is not None:
                L = torch.as_tensor(np.asarray(lengths), dtype=torch.int64).cpu()
            for kind, layer in zip(self.kinds, self.layers):
                if kind == "rnn":
                    x = _run_rnn(torch, layer, x, L, T)
                elif kind == "dropout" or kind == "dense":
                    x = layer(x)
                elif kind == "last":
                    x = _last_step(torch, x, L)
                elif kind == "final":
                    # Each direction's block where it finished: a forward block at its last
                    # step, a backward one at step 0 (zero past a length of 0 already).
                    blocks = x.chunk(len(layer.directions), dim=2)
                    x = torch.cat(
                        [
                            _last_step(torch, block, L) if d == "forward" else block[:, 0]
                            for d, block in zip(layer.directions, blocks)
                        ],
                        dim=1,
                    )
                else:  # mean
                    if L is None:
                        x = x.mean(dim=1)
                    else:
                        mask = _mask(torch, L, T, x)
                        count = torch.clamp(L, min=1).to(x.device, x.dtype)[:, None]
                        x = (x * mask).sum(dim=1) / count
            return x

    _CLASS.update(SequentialModule=SequentialModule, HardSigmoid=HardSigmoid, Directions=Directions)
    return _CLASS


def _last_step(torch: Any, x: Any, L: Any) -> Any:
    """``(batch, time, F) -> (batch, F)``: step ``lengths - 1`` (zeros for a length of 0)."""
    if L is None:
        return x[:, -1]
    idx = torch.clamp(L - 1, min=0).to(x.device)
    rows = torch.arange(x.shape[0], device=x.device)
    return x[rows, idx] * (L > 0).to(x.device, x.dtype)[:, None]


def _mask(torch: Any, L: Any, T: int, x: Any) -> Any:
    """``(batch, time, 1)``: 1 where the step is within the sequence's length."""
    steps = torch.arange(T)[None, :] < L[:, None]
    return steps.to(x.device, x.dtype)[:, :, None]


def _run_rnn(torch: Any, rnn: Any, x: Any, L: Any, T: int) -> Any:
    if L is None:
        return rnn(x)[0]
    utils = torch.nn.utils.rnn
    # PyTorch cannot pack a sequence of length 0: run it for one step, then zero its output.
    packed = utils.pack_padded_sequence(
        x, torch.clamp(L, min=1), batch_first=True, enforce_sorted=False
    )
    y, _ = utils.pad_packed_sequence(rnn(packed)[0], batch_first=True, total_length=T)
    return y * _mask(torch, L, T, y)


def _flatten(model: Sequential, path: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, layer in enumerate(model.layers):
        where = f"{path}.layers[{k}]"
        out += _flatten(layer, where) if isinstance(layer, Sequential) else [(where, layer)]
    return out


def _runner(to_torch: Any, layer: Any, where: str, problems: list[str]) -> Any:
    try:
        return to_torch(layer)
    except ValueError as error:
        text = str(error).removeprefix(_PREFIX)
        problems.append(re.sub(r"\bmodel(?=[.\[:])", lambda _: where, text))
        return None


def sequential_to_torch(model: Sequential, *, torch: Any, to_torch: Callable[[Any], Any]) -> Any:
    """Convert a whole ``Sequential`` into a :class:`SequentialModule` (see the module notes).

    Called by :func:`lstmkit.interop.torch.to_torch` (use that, which also takes ``dtype``),
    which passes the ``torch`` package and itself to convert each runner.

    Returns
    -------
    SequentialModule
        A ``torch.nn.Module`` in the model's dtype, in training mode as PyTorch creates modules
        (call ``.eval()`` to switch a stack's dropout off).

    Raises
    ------
    ValueError
        Naming every part PyTorch cannot express.
    """
    nn = torch.nn
    classes = _module_classes(torch)
    dtype = getattr(torch, np.dtype(model.dtype).name)
    problems: list[str] = []
    kinds: list[str] = []
    modules: list[Any] = []
    for where, layer in _flatten(model, "model"):
        if isinstance(layer, Stacked):
            last = len(layer.layers) - 1
            for j, inner in enumerate(layer.layers):
                module = _runner(to_torch, inner, f"{where}.layers[{j}]", problems)
                kinds.append("rnn")
                modules.append(module)
                if j < last and layer.dropout > 0:
                    kinds.append("dropout")
                    modules.append(nn.Dropout(float(layer.dropout)))
        elif isinstance(layer, (Recurrent, Bidirectional)):
            kinds.append("rnn")
            modules.append(_runner(to_torch, layer, where, problems))
        elif type(layer) is Dense:
            act = _activation_module(torch, layer.activation)
            if act is None:
                name = getattr(layer.activation, "name", repr(layer.activation))
                problems.append(
                    f"{where}.activation: {name!r} (PyTorch export supports lstmkit's built-in "
                    "sigmoid, tanh, relu, linear, softsign, softplus, elu and hard_sigmoid)"
                )
                continue
            linear = nn.Linear(int(layer.input_size), int(layer.output_size), dtype=dtype)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(layer.W.value.T)))
                linear.bias.copy_(torch.from_numpy(np.ascontiguousarray(layer.b.value)))
            kinds.append("dense")
            modules.append(nn.Sequential(linear, act))
        elif type(layer) in (LastStep, MeanPool):
            kinds.append("last" if type(layer) is LastStep else "mean")
            modules.append(nn.Identity())
        elif type(layer) is FinalState:
            kinds.append("final")
            modules.append(classes["Directions"](layer.directions or ("forward",)))
        else:
            problems.append(
                f"{where}: a {type(layer).__name__} layer (PyTorch export supports lstmkit's "
                "runners, Dense, LastStep, MeanPool and FinalState)"
            )
    if problems:
        raise ValueError(_PREFIX + "; ".join(problems))
    return classes["SequentialModule"](kinds, modules)
