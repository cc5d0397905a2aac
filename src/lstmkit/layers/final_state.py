"""``FinalState``: each direction's summary of a sequence, the usual sequence-to-one head.

A forward runner has read the whole sequence at its last valid step ``lengths[b] - 1``; a
backward one (``Recurrent(reverse=True)``, the second half of a
:class:`~lstmkit.Bidirectional` with ``merge="concat"``) has read it all at step 0. For an LSTM
these outputs are the final hidden states, so after a bidirectional layer the result is what
PyTorch's ``torch.cat([h_n[-2], h_n[-1]], dim=-1)`` gives.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit import config
from lstmkit.layers._checks import check_grad
from lstmkit.layers.directions import DIRECTIONS, FORWARD
from lstmkit.layers.pooling import _Pool, _pool_lengths, _PoolCache
from lstmkit.module import accumulates_gradients, component
from lstmkit.sequence import SequencePlan

__all__ = ["FinalState"]

Array = NDArray[Any]


def _directions(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, (tuple, list)) or not value:
        raise TypeError(
            "directions: expected None or a non-empty tuple of 'forward'/'backward', "
            f"received {value!r}"
        )
    bad = [d for d in value if d not in DIRECTIONS]
    if bad:
        raise ValueError(
            f"directions: expected each entry to be 'forward' or 'backward', received {bad[0]!r}"
        )
    return tuple(value)


@config.configurable()
@component
class FinalState(_Pool):
    """Sequence-to-one: each direction's output at the step where it finished the sequence.

    ``(batch, time, features) -> (batch, features)``. The feature axis is cut into equal blocks,
    one per entry of ``directions``; a ``"forward"`` block is taken at step ``lengths[b] - 1``
    and a ``"backward"`` block at step 0 (zeros for a sequence of length 0).

    Parameters
    ----------
    directions : tuple of {"forward", "backward"}, optional
        The direction of each block of features. ``None`` (the default) means: inside a
        :class:`~lstmkit.Sequential`, those of the layer before (the model stores a
        ``FinalState`` with them filled in); called on its own, one forward block, as
        :class:`~lstmkit.layers.LastStep`.

    Examples
    --------
    >>> import numpy as np
    >>> from lstmkit import Bidirectional, LSTMCell, Sequential
    >>> from lstmkit.layers import FinalState
    >>> model = Sequential(Bidirectional(LSTMCell(3, 4, rng=0), rng=1), FinalState())
    >>> model.layers[1].directions
    ('forward', 'backward')
    >>> x = np.random.default_rng(2).standard_normal((2, 5, 3))
    >>> y = model(x, lengths=[5, 3])
    >>> _, state = model.layers[0](x, lengths=[5, 3])
    >>> bool(np.allclose(y, np.concatenate([state.forward.h, state.backward.h], axis=1)))
    True
    """

    directions: tuple[str, ...] | None = attrs.field(default=None, converter=_directions)

    def _time_index(self, features: int, lengths: Array) -> Array:
        """``(batch, features)``: the step each output feature is read from."""
        blocks = self.directions or (FORWARD,)
        if features % len(blocks):
            raise ValueError(
                f"x: expected a feature axis of {len(blocks)} equal blocks {blocks}, "
                f"received {features} features"
            )
        forward = np.repeat([d == FORWARD for d in blocks], features // len(blocks))
        last = np.maximum(lengths - 1, 0)
        return np.where(forward[None, :], last[:, None], 0)

    def _pool(self, x: Any, lengths: Any, plan: SequencePlan | None) -> tuple[Array, _PoolCache]:
        x = np.asarray(x)
        L = _pool_lengths(x, lengths, plan)
        index = self._time_index(x.shape[2], L)
        y = np.take_along_axis(x, index[:, None, :], axis=1)[:, 0, :]
        y = y * (L > 0)[:, None].astype(x.dtype)
        return y, _PoolCache(self, x.shape, L)

    @accumulates_gradients
    def backward(self, cache: _PoolCache, dy: Array) -> Array:
        """Gradient with respect to ``x``: ``dy`` placed at the steps the outputs came from."""
        self._check_cache(cache)
        B, _, F = cache.shape
        dy = check_grad(dy, (B, F))
        dx = np.zeros(cache.shape, dy.dtype)
        index = self._time_index(F, cache.lengths)
        valid = (cache.lengths > 0)[:, None].astype(dy.dtype)
        np.put_along_axis(dx, index[:, None, :], (dy * valid)[:, None, :], axis=1)
        return dx

    def with_directions(self, directions: tuple[str, ...]) -> FinalState:
        """A copy reading the given directions."""
        return FinalState(directions)

    # -- configuration (see lstmkit.config) ------------------------------------------------------

    def to_config(self) -> dict[str, Any]:
        """The directions (a list, or None)."""
        return {"directions": None if self.directions is None else list(self.directions)}

    @classmethod
    def from_config(cls, cfg: dict[str, Any], ctx: config.BuildContext) -> FinalState:
        """A layer from :meth:`to_config` output."""
        ctx.check_keys(cfg, ["directions"])
        value = cfg["directions"]
        try:
            return cls(value)
        except (TypeError, ValueError) as err:
            raise type(err)(f"{ctx.path}.{err}") from None

    def describe(self) -> str:
        inner = "" if self.directions is None else f"directions={self.directions!r}"
        return f"FinalState({inner})"
