"""Sequence-to-one pooling: :class:`LastStep` and :class:`MeanPool`.

Both map ``(batch, time, features)`` to ``(batch, features)`` over each sequence's valid
steps (``lengths``, checked with :func:`lstmkit.sequence.check_lengths`); inside a
:class:`~lstmkit.Sequential` they use the lengths the model validated once.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit import config
from lstmkit.layers._checks import check_grad
from lstmkit.module import Module, accumulates_gradients, component
from lstmkit.sequence import SequencePlan, check_lengths

__all__ = ["LastStep", "MeanPool"]

Array = NDArray[Any]


def _pool_lengths(x: Array, lengths: Any, plan: SequencePlan | None) -> Array:
    if x.ndim != 3:
        raise ValueError(f"x: expected (batch, time, features), received shape {x.shape}")
    B, T = x.shape[:2]
    if plan is not None and plan.fits(B, T):
        arr = plan.lengths  # validated once by the container
    else:
        arr = None if lengths is None else check_lengths(lengths, B, T)
    return np.full(B, T, dtype=np.intp) if arr is None else arr


@attrs.define(eq=False)
class _PoolCache:
    layer: Any
    shape: tuple[int, ...]
    lengths: Array
    used: bool = False


class _Pool(Module):
    """Shared entry of the pooling layers: ``layer(x, lengths)`` and ``forward``."""

    def __call__(self, x: Array, lengths: Any = None) -> Array:
        return self._pool(x, lengths, None)[0]

    def forward(
        self, x: Array, lengths: Any = None, *, training: bool = True, rng: Any = None
    ) -> tuple[Array, _PoolCache]:
        return self._pool(x, lengths, None)

    def _pool(self, x: Any, lengths: Any, plan: SequencePlan | None) -> tuple[Array, _PoolCache]:
        """``(y, cache)``; ``plan`` (a container's validated layout) replaces ``lengths`` if it fits."""
        raise NotImplementedError

    def _check_cache(self, cache: Any) -> None:
        if not isinstance(cache, _PoolCache) or cache.layer is not self:
            raise TypeError(
                f"cache: expected the cache from this layer's forward(), received {type(cache).__name__}"
            )

    # -- configuration (see lstmkit.config) ------------------------------------------------------

    def to_config(self) -> dict[str, Any]:
        """No settings: a pooling layer is saved as its type alone."""
        return {}

    @classmethod
    def from_config(cls, cfg: dict[str, Any], ctx: config.BuildContext) -> Any:
        """A pooling layer from :meth:`to_config` output (which must have no keys)."""
        ctx.check_keys(cfg, [])
        return cls()


@config.configurable()
@component
class LastStep(_Pool):
    """Sequence-to-one pooling: the output at each sequence's last valid step.

    ``(batch, time, features) -> (batch, features)``, taking step ``lengths[b] - 1``
    (zeros for a sequence of length 0). This is a forward runner's summary of each
    sequence. A backward direction (the second half of a :class:`~lstmkit.Bidirectional`)
    has read only one step there, so inside a :class:`~lstmkit.Sequential` a ``LastStep``
    after a backward direction is refused; use :class:`~lstmkit.layers.FinalState`, which
    takes each direction's final output.
    """

    def _pool(self, x: Any, lengths: Any, plan: SequencePlan | None) -> tuple[Array, _PoolCache]:
        x = np.asarray(x)
        L = _pool_lengths(x, lengths, plan)
        idx = np.maximum(L - 1, 0)
        y = x[np.arange(x.shape[0]), idx] * (L > 0)[:, None].astype(x.dtype)
        return y, _PoolCache(self, x.shape, L)

    @accumulates_gradients
    def backward(self, cache: _PoolCache, dy: Array) -> Array:
        self._check_cache(cache)
        B, _, F = cache.shape
        dy = check_grad(dy, (B, F))
        dx = np.zeros(cache.shape, dy.dtype)
        valid = cache.lengths > 0
        rows = np.arange(B)[valid]
        dx[rows, cache.lengths[valid] - 1] = dy[valid]
        return dx

    def describe(self) -> str:
        return "LastStep()"


@config.configurable()
@component
class MeanPool(_Pool):
    """Sequence-to-one pooling: the mean over each sequence's valid steps (zeros if none)."""

    def _pool(self, x: Any, lengths: Any, plan: SequencePlan | None) -> tuple[Array, _PoolCache]:
        x = np.asarray(x)
        L = _pool_lengths(x, lengths, plan)
        mask = np.arange(x.shape[1])[None, :] < L[:, None]
        weights = (mask / np.maximum(L, 1)[:, None]).astype(x.dtype)
        return np.einsum("btf,bt->bf", x, weights), _PoolCache(self, x.shape, L)

    @accumulates_gradients
    def backward(self, cache: _PoolCache, dy: Array) -> Array:
        self._check_cache(cache)
        B, T, F = cache.shape
        dy = check_grad(dy, (B, F))
        L = cache.lengths
        weights = ((np.arange(T)[None, :] < L[:, None]) / np.maximum(L, 1)[:, None]).astype(
            dy.dtype
        )
        return weights[:, :, None] * dy[:, None, :]

    def describe(self) -> str:
        return "MeanPool()"
