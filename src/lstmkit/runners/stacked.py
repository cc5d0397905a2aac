"""``Stacked``: runners applied one after another, with optional dropout between them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit import config
from lstmkit.initializers import as_rng
from lstmkit.module import accumulates_gradients, component
from lstmkit.runners.base import SequenceRunner
from lstmkit.runners.recurrent import Recurrent
from lstmkit.sequence import MaybeContext, MaybePlan, plan_for, run_runner

__all__ = ["Stacked", "StackedCache", "as_runner"]

Array = NDArray[Any]


def as_runner(layer: Any, *, argument: str = "layer") -> Any:
    """A runner as it is, or a bare cell wrapped in :class:`~lstmkit.Recurrent`."""
    if all(hasattr(layer, m) for m in ("forward", "backward", "output_size", "input_size")):
        return layer
    if hasattr(layer, "step") and hasattr(layer, "initial_state"):
        return Recurrent(layer)
    raise TypeError(f"{argument}: expected a runner or a cell, received {type(layer).__name__}")


def _fresh_output(layer: Any) -> bool:
    """Whether ``layer``'s outputs are always new arrays, never views of its input: true of
    lstmkit's runners."""
    return isinstance(layer, SequenceRunner)


def _layers(value: Any) -> list[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"layers: expected a list of runners, received {type(value).__name__}")
    if len(value) == 0:
        raise ValueError("layers: expected at least one layer, received an empty list")
    return [as_runner(layer, argument=f"layers[{k}]") for k, layer in enumerate(value)]


@attrs.define(eq=False)
class StackedCache:
    """Training cache of :meth:`Stacked.forward`."""

    runner: Any
    caches: list[Any]
    masks: list[Array | None]
    used: bool = False


@config.configurable()
@component
class Stacked(SequenceRunner):
    """Layers run in sequence: the outputs of one are the inputs of the next.

    Parameters
    ----------
    layers : list of runners or cells
        :class:`~lstmkit.Recurrent`, :class:`~lstmkit.Bidirectional` or any runner; a
        bare cell is wrapped in ``Recurrent``. Sizes must chain.
    dropout : float, default 0.0
        Inverted dropout applied to the outputs of every layer but the last, in
        training mode only (``forward(..., training=True)``).
    rng : numpy.random.Generator or int or None
        Source of the dropout masks.

    Notes
    -----
    The final state is a tuple with one state per layer; ``initial_state`` takes
    the same form (entries may be None for zeros).
    """

    layers: list[Any] = attrs.field(converter=_layers)
    dropout: float = attrs.field(default=0.0, kw_only=True)
    rng: np.random.Generator = attrs.field(default=None, kw_only=True, converter=as_rng, repr=False)

    def __attrs_post_init__(self) -> None:
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float, np.number)):
            raise TypeError(f"dropout: expected a number, received {type(self.dropout).__name__}")
        if not (0.0 <= float(self.dropout) < 1.0):
            raise ValueError(f"dropout: expected a rate in [0, 1), received {self.dropout}")
        for k in range(1, len(self.layers)):
            prev, cur = self.layers[k - 1], self.layers[k]
            if getattr(prev, "merge", None) == "none":
                raise ValueError(
                    f"layers[{k - 1}]: a Bidirectional with merge='none' returns two sequences "
                    "and can only be the last layer"
                )
            if prev.output_size != cur.input_size:
                raise ValueError(
                    f"layers[{k}]: expected input size {prev.output_size} (the output of "
                    f"layers[{k - 1}]), received {cur.input_size}"
                )
            if prev.dtype != cur.dtype:
                raise TypeError(f"layers[{k}]: expected dtype {prev.dtype}, received {cur.dtype}")

    @property
    def input_size(self) -> int:
        return int(self.layers[0].input_size)

    @property
    def output_size(self) -> int:
        return int(self.layers[-1].output_size)

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(self.layers[0].dtype)

    @property
    def merge(self) -> str | None:
        return getattr(self.layers[-1], "merge", None)

    def initial_state(self, batch_size: int | None = None) -> tuple[Any, ...]:
        """One zero state per layer."""
        return tuple(layer.initial_state(batch_size) for layer in self.layers)

    def _states(self, initial_state: Any) -> list[Any]:
        if initial_state is None:
            return [None] * len(self.layers)
        if not isinstance(initial_state, (tuple, list)) or len(initial_state) != len(self.layers):
            got = (
                len(initial_state)
                if isinstance(initial_state, (tuple, list))
                else type(initial_state).__name__
            )
            raise ValueError(
                f"initial_state: expected a tuple of {len(self.layers)} per-layer states, received {got}"
            )
        return list(initial_state)

    def _run(
        self, x: Any, initial_state: Any, lengths: Any, *, context: MaybeContext, plan: MaybePlan
    ) -> tuple[Array, tuple[Any, ...], StackedCache | None]:
        states = self._states(initial_state)
        if isinstance(x, (list, tuple)):
            x = np.asarray(x)
        if plan is None:
            plan = plan_for(x, lengths)  # validated and sorted once for every layer
        gen = None
        if context is not None and context.training and self.dropout > 0:
            gen = self.rng if context.rng is None else context.rng
        caches, masks, finals = [], [], []
        last = len(self.layers) - 1
        for k, (layer, state) in enumerate(zip(self.layers, states)):
            if isinstance(layer, Recurrent) and k < last and _fresh_output(self.layers[k + 1]):
                # Its outputs only feed the next layer, which returns new arrays: no copy needed.
                x, final, cache = layer._run(
                    x, state, lengths, context=context, plan=plan, private_output=False
                )
            else:
                x, final, cache = run_runner(layer, x, state, lengths, context=context, plan=plan)
            caches.append(cache)
            finals.append(final)
            mask = None
            if gen is not None and k < last:
                keep = 1.0 - self.dropout
                mask = (gen.random(x.shape) < keep).astype(x.dtype) / x.dtype.type(keep)
                x = x * mask
            masks.append(mask)
        if context is None:
            return x, tuple(finals), None
        return x, tuple(finals), StackedCache(runner=self, caches=caches, masks=masks)

    def check_backward(self, cache: StackedCache, dy: Any = None, d_state: Any = None) -> list[Any]:
        """Validate the arguments of :meth:`backward` for every layer, changing nothing.

        Returns the per-layer upstream state gradients (None where not given).
        """
        self._unused_cache(cache, StackedCache)
        d_states = self._states(d_state) if d_state is not None else [None] * len(self.layers)
        # Every layer is checked before any runs, so a bad argument leaves no gradient half-added.
        last = len(self.layers) - 1
        for k, layer in enumerate(self.layers):
            check = getattr(layer, "check_backward", None)
            if check is not None:
                check(cache.caches[k], dy if k == last else None, d_states[k])
        return d_states

    @accumulates_gradients
    def backward(
        self, cache: StackedCache, dy: Any = None, d_state: Any = None
    ) -> tuple[Array, tuple[Any, ...]]:
        """Back-propagate through every layer, last first.

        Returns ``(dx, d_initial_states)`` with one initial-state gradient per layer. Every
        layer's arguments and weights are checked first (:meth:`check_backward`), so a refusal
        (weights replaced since forward, a bad ``dy``) accumulates nothing.
        """
        d_states = self.check_backward(cache, dy, d_state)
        d_inits: list[Any] = [None] * len(self.layers)
        grad = dy
        for k in range(len(self.layers) - 1, -1, -1):
            mask = cache.masks[k]
            if mask is not None and grad is not None:
                grad = grad * mask
            grad, d_inits[k] = self.layers[k].backward(cache.caches[k], grad, d_states[k])
        cache.used = True
        return grad, tuple(d_inits)

    # -- configuration (see lstmkit.config) ------------------------------------------------------

    def to_config(self) -> dict[str, Any]:
        """Every layer's configuration and the dropout rate between layers."""
        return {
            "layers": [config.to_config(layer) for layer in self.layers],
            "dropout": float(self.dropout),
        }

    @classmethod
    def from_config(cls, cfg: dict[str, Any], ctx: config.BuildContext) -> Stacked:
        """A stack from :meth:`to_config` output; the dropout rate is checked before any layer."""
        ctx.check_keys(cfg, ["layers", "dropout"])
        dropout = ctx.float(cfg, "dropout", low=0.0, high=1.0)
        layers = [
            ctx.build(layer, f"layers[{k}]", f"layers.{k}.")
            for k, layer in enumerate(ctx.list(cfg, "layers"))
        ]
        return cls(layers, dropout=dropout, rng=ctx.rng)

    def describe(self) -> str:
        drop = f", dropout={self.dropout}" if self.dropout else ""
        return f"Stacked({len(self.layers)} layers{drop})"
