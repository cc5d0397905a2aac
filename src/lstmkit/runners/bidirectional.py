"""``Bidirectional``: one runner forward in time, one backward, outputs merged."""

from __future__ import annotations

import copy
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit import config
from lstmkit.initializers import as_rng
from lstmkit.module import accumulates_gradients, component
from lstmkit.runners.base import SequenceRunner
from lstmkit.runners.recurrent import Recurrent
from lstmkit.sequence import MaybeContext, MaybePlan, plan_for

__all__ = ["Bidirectional", "BidirectionalCache", "BidirectionalState", "MERGE_MODES"]

Array = NDArray[Any]

MERGE_MODES = ("concat", "sum", "mean", "mul", "none")


@attrs.frozen(eq=False)
class BidirectionalState:
    """Final (or initial) states of both directions."""

    forward: Any
    backward: Any


@attrs.define(eq=False)
class BidirectionalCache:
    """Training cache of :meth:`Bidirectional.forward`."""

    runner: Any
    forward_cache: Any
    backward_cache: Any
    y_forward: Array
    y_backward: Array
    used: bool = False


def _as_recurrent(layer: Any, reverse: bool, argument: str) -> Recurrent:
    if isinstance(layer, Recurrent):
        if layer.reverse != reverse:
            raise ValueError(
                f"{argument}: expected a Recurrent with reverse={reverse}, received reverse={layer.reverse}"
            )
        return layer
    if hasattr(layer, "step") and hasattr(layer, "initial_state"):
        return Recurrent(layer, reverse=reverse)
    raise TypeError(f"{argument}: expected a cell or a Recurrent, received {type(layer).__name__}")


def _fresh_copy(cell: Any, rng: Any) -> Any:
    """A deep copy of ``cell`` with weights redrawn by its ``reset_parameters(rng)``."""
    name = type(cell).__name__
    advice = f"pass backward_layer explicitly (e.g. a second {name} with its own weights)"
    if not callable(getattr(cell, "reset_parameters", None)):
        raise TypeError(
            f"backward_layer: None asks for a copy of the forward cell with fresh weights, "
            f"but {name} has no reset_parameters to draw them; {advice}"
        )
    gen = as_rng(rng)
    clone = copy.deepcopy(cell)
    try:
        clone.reset_parameters(gen)
    except Exception as err:
        raise TypeError(
            f"backward_layer: None asks for a copy of the forward cell with fresh weights, "
            f"but {name}.reset_parameters failed ({err}); {advice}"
        ) from err
    return clone


def _merge_mode(value: str) -> str:
    if value not in MERGE_MODES:
        raise ValueError(f"merge: expected one of {', '.join(MERGE_MODES)}, received {value!r}")
    return value


@config.configurable()
@component
class Bidirectional(SequenceRunner):
    """Run a sequence in both directions and merge the outputs.

    Calling it returns the merged outputs (or the pair for ``merge="none"``) and a
    :class:`BidirectionalState`; ``forward(..., training=, rng=)`` passes the mode to both
    directions' cells, the forward direction drawing from ``rng`` first.

    Parameters
    ----------
    forward_layer : cell or Recurrent
        Runs from the first step to the last.
    backward_layer : cell or Recurrent, optional
        Runs from each sequence's last valid step to its first. If None, a copy of
        ``forward_layer``'s cell with freshly drawn weights (its ``reset_parameters(rng)``)
        is used; a cell that cannot redraw its weights is refused with ``TypeError``.
    merge : {"concat", "sum", "mean", "mul", "none"}, default "concat"
        How outputs are combined; ``"none"`` returns the pair ``(y_forward, y_backward)``.
    rng : numpy.random.Generator or int or None
        Randomness for the cloned backward cell's weights.

    Examples
    --------
    >>> import numpy as np
    >>> from lstmkit import Bidirectional, LSTMCell
    >>> bi = Bidirectional(LSTMCell(3, 4, rng=0), rng=1)
    >>> y, state = bi(np.ones((2, 5, 3)), lengths=[5, 3])
    >>> y.shape
    (2, 5, 8)
    """

    forward_layer: Recurrent = attrs.field()
    backward_layer: Recurrent = attrs.field(default=None)
    merge: str = attrs.field(default="concat", kw_only=True, converter=_merge_mode)
    rng: Any = attrs.field(default=None, kw_only=True, repr=False)

    def __attrs_post_init__(self) -> None:
        fwd = _as_recurrent(self.forward_layer, False, "forward_layer")
        if self.backward_layer is None:
            bwd = Recurrent(_fresh_copy(fwd.cell, self.rng), reverse=True, fused=fwd.fused)
        else:
            bwd = _as_recurrent(self.backward_layer, True, "backward_layer")
        if (fwd.input_size, fwd.output_size) != (bwd.input_size, bwd.output_size):
            raise ValueError(
                f"backward_layer: expected sizes (input={fwd.input_size}, output={fwd.output_size}) "
                f"like forward_layer, received (input={bwd.input_size}, output={bwd.output_size})"
            )
        if fwd.dtype != bwd.dtype:
            raise TypeError(f"backward_layer: expected dtype {fwd.dtype}, received {bwd.dtype}")
        self.forward_layer, self.backward_layer = fwd, bwd
        self.rng = None

    @property
    def input_size(self) -> int:
        return self.forward_layer.input_size

    @property
    def output_size(self) -> int:
        size = self.forward_layer.output_size
        return 2 * size if self.merge == "concat" else size

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.forward_layer.dtype

    def initial_state(self, batch_size: int | None = None) -> BidirectionalState:
        return BidirectionalState(
            self.forward_layer.initial_state(batch_size),
            self.backward_layer.initial_state(batch_size),
        )

    def _split_state(self, state: Any, argument: str) -> tuple[Any, Any]:
        if state is None:
            return None, None
        if not isinstance(state, BidirectionalState):
            raise TypeError(
                f"{argument}: expected a BidirectionalState, received {type(state).__name__}"
            )
        return state.forward, state.backward

    def _merge(self, yf: Array, yb: Array) -> Any:
        if self.merge == "concat":
            return np.concatenate([yf, yb], axis=-1)
        if self.merge == "sum":
            return yf + yb
        if self.merge == "mean":
            return (yf + yb) * yf.dtype.type(0.5)
        if self.merge == "mul":
            return yf * yb
        return yf, yb

    def _run(
        self, x: Any, initial_state: Any, lengths: Any, *, context: MaybeContext, plan: MaybePlan
    ) -> tuple[Any, BidirectionalState, BidirectionalCache | None]:
        sf, sb = self._split_state(initial_state, "initial_state")
        if isinstance(x, (list, tuple)):
            x = np.asarray(x)
        if plan is None:
            plan = plan_for(x, lengths)  # one validation and sort for both directions
        # A merge makes a new array, so the directions' outputs need no copy of their own;
        # merge="none" returns them as they are.
        own = self.merge == "none"
        yf, ff, cf = self.forward_layer._run(
            x, sf, lengths, context=context, plan=plan, private_output=own
        )
        yb, fb, cb = self.backward_layer._run(
            x, sb, lengths, context=context, plan=plan, private_output=own
        )
        cache = None
        if context is not None:
            cache = BidirectionalCache(self, cf, cb, yf, yb)
        return self._merge(yf, yb), BidirectionalState(ff, fb), cache

    def check_backward(
        self, cache: BidirectionalCache, dy: Any = None, d_state: Any = None
    ) -> tuple[Any, Any, Any, Any]:
        """Validate the arguments of :meth:`backward` for both directions, changing nothing.

        Returns ``(dy_forward, dy_backward, d_state_forward, d_state_backward)``.
        """
        self._unused_cache(cache, BidirectionalCache)
        dsf, dsb = self._split_state(d_state, "d_state")
        dyf, dyb = self._split_gradient(dy, cache)
        # Both directions are checked before either runs, so a bad argument changes no gradient.
        self.forward_layer.check_backward(cache.forward_cache, dyf, dsf)
        self.backward_layer.check_backward(cache.backward_cache, dyb, dsb)
        return dyf, dyb, dsf, dsb

    @accumulates_gradients
    def backward(
        self, cache: BidirectionalCache, dy: Any = None, d_state: Any = None
    ) -> tuple[Array, BidirectionalState]:
        """Back-propagate both directions; the input gradient is their sum.

        ``dy`` is shaped like the merged output (a pair of arrays for ``merge="none"``).
        """
        dyf, dyb, dsf, dsb = self.check_backward(cache, dy, d_state)
        dxf, dif = self.forward_layer.backward(cache.forward_cache, dyf, dsf)
        dxb, dib = self.backward_layer.backward(cache.backward_cache, dyb, dsb)
        cache.used = True
        return dxf + dxb, BidirectionalState(dif, dib)

    def _split_gradient(self, dy: Any, cache: BidirectionalCache) -> tuple[Any, Any]:
        if dy is None:
            return None, None
        yf, yb = cache.y_forward, cache.y_backward
        if self.merge == "none":
            if not isinstance(dy, (tuple, list)) or len(dy) != 2:
                raise TypeError("dy: expected a pair (dy_forward, dy_backward) for merge='none'")
            return dy[0], dy[1]
        want = yf.shape[:-1] + (self.output_size,)
        if not isinstance(dy, np.ndarray) or dy.shape != want:
            raise ValueError(
                f"dy: expected shape {want}, received {getattr(dy, 'shape', type(dy).__name__)}"
            )
        if self.merge == "concat":
            H = yf.shape[-1]
            return dy[..., :H], dy[..., H:]
        if self.merge == "sum":
            return dy, dy
        if self.merge == "mean":
            half = dy * dy.dtype.type(0.5)
            return half, half
        return dy * yb, dy * yf  # mul

    # -- configuration (see lstmkit.config) ------------------------------------------------------

    def to_config(self) -> dict[str, Any]:
        """Both directions' configurations and the merge mode."""
        return {
            "forward_layer": config.to_config(self.forward_layer),
            "backward_layer": config.to_config(self.backward_layer),
            "merge": self.merge,
        }

    @classmethod
    def from_config(cls, cfg: dict[str, Any], ctx: config.BuildContext) -> Bidirectional:
        """Both directions from :meth:`to_config` output; each must be a ``Recurrent``."""
        ctx.check_keys(cfg, ["forward_layer", "backward_layer", "merge"])
        merge = ctx.str(cfg, "merge", choices=MERGE_MODES)
        fwd = ctx.build(cfg["forward_layer"], "forward_layer", "forward_layer.")
        bwd = ctx.build(cfg["backward_layer"], "backward_layer", "backward_layer.")
        for key, layer in (("forward_layer", fwd), ("backward_layer", bwd)):
            if not isinstance(layer, Recurrent):
                raise TypeError(
                    f"{ctx.path}.{key}: expected a Recurrent, received {type(layer).__name__}"
                )
        return cls(fwd, bwd, merge=merge)

    def describe(self) -> str:
        return f"Bidirectional(merge={self.merge!r}, output={self.output_size})"
