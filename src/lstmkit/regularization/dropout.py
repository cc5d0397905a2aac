"""Variational dropout (Gal and Ghahramani 2016): the same masks at every step of a sequence.

:class:`VariationalDropout` drops the same input units and the same recurrent units at
every step of a sequence: one mask for ``x`` and one for ``h_prev`` per sequence, drawn when
the sequence starts. The masks live in the state, so they survive from one step to the next
and from one call to the next when a long sequence is fed in chunks.
:meth:`VariationalDropout.initial_state` returns the wrapped cell's state plus two mask
fields filled with NaN, which means "not drawn yet"; the first training step draws them from
the call's ``rng`` or the wrapper's own. The masks are not learned: their gradient is zero.
The state's class is :func:`masked_state_class` of the cell's state class.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit import config
from lstmkit.cells.base import check_step_input
from lstmkit.initializers import as_rng
from lstmkit.module import accumulates_gradients, component
from lstmkit.protocols import StepContext
from lstmkit.regularization._wrapper import (
    TRAINING,
    Wrapper,
    check_cell,
    check_rate,
    inner_step_train,
)

__all__ = ["VariationalDropout", "VariationalStepCache", "masked_state_class"]

Array = NDArray[Any]

_MASK_FIELDS = ("mask_x", "mask_h")
_STATE_CLASSES: dict[type, type] = {}


def _short_repr(self: Any) -> str:
    parts = [
        f"{f.name}={getattr(self, f.name).shape} {getattr(self, f.name).dtype}"
        for f in attrs.fields(type(self))
    ]
    return f"{type(self).__name__}({', '.join(parts)})"


def masked_state_class(inner: type) -> type:
    """The state class of :class:`VariationalDropout` around a cell whose state class is ``inner``.

    Its fields are ``inner``'s fields followed by ``mask_x (batch, input_size)`` and
    ``mask_h (batch, h)``; it is built once per ``inner`` and named ``"Variational" + inner``.
    """
    cls = _STATE_CLASSES.get(inner)
    if cls is None:
        names = [f.name for f in attrs.fields(inner)]
        clash = sorted(set(names) & set(_MASK_FIELDS))
        if clash:
            raise ValueError(
                f"cell: its state already has fields named {clash}; cannot add dropout masks"
            )
        fields = {n: attrs.field() for n in (*names, *_MASK_FIELDS)}
        cls = attrs.make_class(
            f"Variational{inner.__name__}", fields, frozen=True, eq=False, repr=False
        )
        cls.__repr__ = _short_repr  # type: ignore[method-assign, assignment]
        cls.__module__ = __name__
        cls.__doc__ = (
            f"{inner.__name__} plus the variational-dropout masks ``mask_x`` and ``mask_h`` "
            "(NaN until drawn)."
        )
        _STATE_CLASSES[inner] = cls
    return cls


@attrs.frozen(eq=False)
class VariationalStepCache:
    """What :meth:`VariationalDropout.step_backward` needs."""

    inner: Any
    mask_x: Array
    mask_h: Array
    hooked: bool  # the cell applied mask_h itself (``accepts_h_mask``)


@config.configurable()
@component
class VariationalDropout(Wrapper):
    """Variational dropout on a cell's inputs and recurrent state (Gal and Ghahramani 2016).

    Parameters
    ----------
    cell : cell
        Any trainable cell; its state must have a field ``h`` when ``recurrent_rate > 0``.
    input_rate : float, default 0.0
        Probability of dropping each input unit, in [0, 1).
    recurrent_rate : float, default 0.0
        Probability of dropping each unit of ``h_{t-1}`` where it enters the gates, in [0, 1).
    rng : numpy.random.Generator or int or None
        Source of the masks; the same seed gives the same masks.

    Notes
    -----
    Masks are inverted-dropout masks (kept units are scaled by ``1 / (1 - rate)``), so
    inference (:meth:`step`) needs no rescaling and ignores them. A cell that uses
    ``h_{t-1}`` outside its gates (the GRU's update) must set ``accepts_h_mask = True``
    and accept ``step_train(state, x, h_mask=...)``; for any other cell the wrapper
    multiplies the state's ``h`` by the mask, which is exact when ``h`` only feeds the
    gates (every LSTM variant in lstmkit).

    Examples
    --------
    >>> import numpy as np
    >>> from lstmkit import LSTMCell, Recurrent, VariationalDropout
    >>> cell = VariationalDropout(LSTMCell(3, 4, rng=0), input_rate=0.25, recurrent_rate=0.25, rng=0)
    >>> y, state, cache = Recurrent(cell).forward(np.ones((2, 5, 3)))
    >>> type(state).__name__, state.mask_x.shape
    ('VariationalLSTMState', (2, 3))
    >>> sorted(set(np.round(state.mask_x, 4).ravel().tolist()))  # kept units scaled by 1/(1-rate)
    [0.0, 1.3333]
    """

    cell: Any = attrs.field()
    input_rate: float = attrs.field(default=0.0)
    recurrent_rate: float = attrs.field(default=0.0)
    rng: np.random.Generator = attrs.field(default=None, kw_only=True, converter=as_rng, repr=False)
    _state_class: type = attrs.field(init=False, default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        check_cell(self.cell)
        self.input_rate = check_rate("input_rate", self.input_rate)
        self.recurrent_rate = check_rate("recurrent_rate", self.recurrent_rate)
        template = self.cell.initial_state(1)
        if not attrs.has(type(template)) or "h" not in attrs.fields_dict(type(template)):
            raise ValueError(
                f"cell: recurrent dropout needs a state with a field 'h', received "
                f"{type(template).__name__}"
            )
        self._state_class = masked_state_class(type(template))

    # -- the cell contract ----------------------------------------------------------------------

    def wrap_state(self, inner: Any) -> Any:
        """The wrapped cell's ``inner`` state plus undrawn (NaN) masks: a fresh sequence."""
        h = inner.h
        lead = h.shape[:-1]
        nan_x = np.full(lead + (self.input_size,), np.nan, self.dtype)
        nan_h = np.full(h.shape, np.nan, self.dtype)
        fields = {f.name: getattr(inner, f.name) for f in attrs.fields(type(inner))}
        return self._state_class(**fields, mask_x=nan_x, mask_h=nan_h)

    def unwrap_state(self, state: Any) -> Any:
        """The wrapped cell's own state, without the masks."""
        inner_type = type(self.cell.initial_state(1))
        return inner_type(**{f.name: getattr(state, f.name) for f in attrs.fields(inner_type)})

    def initial_state(self, batch_size: int | None = None) -> Any:
        """The cell's zero state plus masks not drawn yet (NaN)."""
        return self.wrap_state(self.cell.initial_state(batch_size))

    def _check_state(self, state: Any) -> Any:
        if type(state) is not self._state_class:
            raise TypeError(
                f"state: expected {self._state_class.__name__} (the cell's state plus dropout masks; "
                f"build one with wrap_state), received {type(state).__name__}"
            )
        return state

    def step(self, state: Any, x: Array) -> tuple[Any, Array]:
        """Inference: the plain cell; the masks are carried along unchanged."""
        state = self._check_state(state)
        new, y = self.cell.step(self.unwrap_state(state), x)
        return self._rewrap(new, state.mask_x, state.mask_h), y

    def _rewrap(self, inner: Any, mask_x: Array, mask_h: Array) -> Any:
        fields = {f.name: getattr(inner, f.name) for f in attrs.fields(type(inner))}
        return self._state_class(**fields, mask_x=mask_x, mask_h=mask_h)

    def _draw(self, old: Array, rate: float, rng: np.random.Generator) -> Array:
        # Only rows still marked NaN (sequences that start now) get a new mask.
        fresh_rows = np.isnan(old[..., 0]) if old.shape[-1] else np.zeros(old.shape[:-1], bool)
        if not fresh_rows.any():
            return old
        keep = 1.0 - rate
        drawn = (rng.random(old.shape) < keep).astype(self.dtype) * self.dtype.type(1.0 / keep)
        return np.where(fresh_rows[..., None], drawn, old)

    def step_train(
        self, state: Any, x: Array, context: StepContext | None = None
    ) -> tuple[Any, Array, VariationalStepCache]:
        """Training step with this sequence's masks (drawn now if the sequence starts here).

        ``context`` (from the runner) says whether to train and which generator to draw
        from (the wrapper's ``rng`` when ``context.rng`` is None). With
        ``context.training`` false no mask is drawn or applied: the step is :meth:`step`,
        the state's masks are carried unchanged, and the cache holds masks of ones.
        """
        context = TRAINING if context is None else context
        state = self._check_state(state)
        x = check_step_input(self, x)
        inner = self.unwrap_state(state)
        hooked = bool(getattr(self.cell, "accepts_h_mask", False))
        if not context.training:
            new, y, cache = inner_step_train(self.cell, inner, x, context)
            ones_x, ones_h = np.ones_like(state.mask_x), np.ones_like(state.mask_h)
            step_cache = VariationalStepCache(cache, ones_x, ones_h, hooked=False)
            return self._rewrap(new, state.mask_x, state.mask_h), y, step_cache
        rng = self.rng if context.rng is None else context.rng
        mask_x = self._draw(state.mask_x, self.input_rate, rng)
        mask_h = self._draw(state.mask_h, self.recurrent_rate, rng)
        x_in = x * mask_x
        if hooked:
            new, y, cache = inner_step_train(self.cell, inner, x_in, context, h_mask=mask_h)
        else:
            inner = attrs.evolve(inner, h=inner.h * mask_h)
            new, y, cache = inner_step_train(self.cell, inner, x_in, context)
        return (
            self._rewrap(new, mask_x, mask_h),
            y,
            VariationalStepCache(cache, mask_x, mask_h, hooked),
        )

    @accumulates_gradients
    def step_backward(
        self, cache: VariationalStepCache, d_state: Any, d_y: Array
    ) -> tuple[Any, Array]:
        """Exact backward of :meth:`step_train`; the masks get zero gradient."""
        if not isinstance(cache, VariationalStepCache):
            raise TypeError(
                f"cache: expected the VariationalStepCache from step_train, received {type(cache).__name__}"
            )
        d_prev, d_x = self.cell.step_backward(cache.inner, self.unwrap_state(d_state), d_y)
        if not cache.hooked:
            d_prev = attrs.evolve(d_prev, h=d_prev.h * cache.mask_h)
        zeros = np.zeros_like
        return self._rewrap(d_prev, zeros(cache.mask_x), zeros(cache.mask_h)), d_x * cache.mask_x

    # -- configuration (see lstmkit.config) ------------------------------------------------------

    def to_config(self) -> dict[str, Any]:
        """The wrapped cell's configuration and both rates (the masks are not saved)."""
        return {
            "cell": config.to_config(self.cell),
            "input_rate": float(self.input_rate),
            "recurrent_rate": float(self.recurrent_rate),
        }

    @classmethod
    def from_config(cls, cfg: dict[str, Any], ctx: config.BuildContext) -> VariationalDropout:
        """A wrapper from :meth:`to_config` output; both rates are checked before the cell."""
        ctx.check_keys(cfg, ["cell", "input_rate", "recurrent_rate"])
        rates = [ctx.float(cfg, key, low=0.0, high=1.0) for key in ("input_rate", "recurrent_rate")]
        return cls(ctx.build(cfg["cell"], "cell", "cell."), *rates, rng=ctx.rng)

    def describe(self) -> str:
        return f"VariationalDropout(input_rate={self.input_rate}, recurrent_rate={self.recurrent_rate})"
