"""Regularization as cell wrappers: variational (recurrent) dropout and zoneout.

Both wrap any cell and keep the cell contract, so every runner runs them
unchanged. Runners call ``step`` in inference and ``step_train`` in a training
forward pass, passing the call's ``training`` flag and ``rng`` in a
:class:`~lstmkit.protocols.StepContext` (both set ``takes_context = True`` and pass
the context on to a wrapped cell that takes one). Noise is applied only by
``step_train`` with ``context.training`` true, drawn from ``context.rng`` when given
and from the wrapper's own ``rng`` otherwise; with ``training=False`` ``step_train``
computes what ``step`` computes (the plain cell or, for zoneout with
``inference="expectation"``, its expected value) and its cache still serves an exact
``step_backward``.

**Variational dropout** (Gal and Ghahramani 2016) drops the same input units and
the same recurrent units at every step of a sequence: one mask for ``x`` and one
for ``h_prev`` per sequence, drawn when the sequence starts. The masks live in
the state, so they survive from one step to the next and from one call to the
next when a long sequence is fed in chunks. :meth:`VariationalDropout.initial_state`
returns the wrapped cell's state plus two mask fields filled with NaN, which
means "not drawn yet"; the first training step draws them from the wrapper's
``rng``. The masks are not learned: their gradient is zero.

**Zoneout** (Krueger et al. 2017) keeps each unit of ``h`` (and of ``c``) at its
previous value with probability ``h_rate`` (``c_rate``), afresh at every step::

    h_t = d_h * h_{t-1} + (1 - d_h) * h_new,   d_h ~ Bernoulli(h_rate) per unit and step

No mask persists, so the state is the wrapped cell's own. Krueger et al. use the
expectation ``h_rate * h_{t-1} + (1 - h_rate) * h_new`` at test time; here
inference is the plain cell by default (``inference="off"``) and the paper's
choice is ``inference="expectation"``.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit.cells.base import check_step_input
from lstmkit.initializers import as_rng
from lstmkit.module import Module, component
from lstmkit.protocols import StepContext

__all__ = [
    "VariationalDropout",
    "VariationalStepCache",
    "Zoneout",
    "ZoneoutStepCache",
    "masked_state_class",
]

Array = NDArray[Any]

_MASK_FIELDS = ("mask_x", "mask_h")
_STATE_CLASSES: dict[type, type] = {}


def _check_rate(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a number in [0, 1), received {value!r}")
    if not (0.0 <= float(value) < 1.0):
        raise ValueError(
            f"{name}: expected a rate in [0, 1) (1 would drop everything), received {value!r}"
        )
    return float(value)


def _check_cell(value: Any) -> None:
    needed = (
        "input_size",
        "hidden_size",
        "dtype",
        "initial_state",
        "step",
        "step_train",
        "step_backward",
    )
    missing = [m for m in needed if not hasattr(value, m)]
    if missing:
        raise TypeError(
            f"cell: expected a trainable cell (see lstmkit.cells.base), received "
            f"{type(value).__name__} without {', '.join(missing)}"
        )


_TRAINING = StepContext()


def _inner_step_train(cell: Any, state: Any, x: Array, context: StepContext, **kw: Any) -> Any:
    """``cell.step_train``, passing ``context`` on to a wrapped cell that takes one."""
    if getattr(cell, "takes_context", False):
        kw["context"] = context
    return cell.step_train(state, x, **kw)


class _Wrapper(Module):
    """What both wrappers share: the wrapped cell's sizes, the context flag, redrawing."""

    cell: Any
    rng: np.random.Generator

    takes_context = True  # runners pass their training flag and rng to step_train

    @property
    def input_size(self) -> int:
        return int(self.cell.input_size)

    @property
    def hidden_size(self) -> int:
        return int(self.cell.hidden_size)

    @property
    def output_size(self) -> int:
        return int(getattr(self.cell, "output_size", self.cell.hidden_size))

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(self.cell.dtype)

    def reset_parameters(self, rng: np.random.Generator | int | None = None) -> None:
        """Fresh weights for the wrapped cell and a new mask generator, both from ``rng``.

        :class:`~lstmkit.Bidirectional` calls this on its copy, so the two directions
        draw different masks.

        Raises
        ------
        TypeError
            The wrapped cell has no ``reset_parameters``; nothing was changed.
        """
        if not callable(getattr(self.cell, "reset_parameters", None)):
            raise TypeError(
                f"cell: {type(self.cell).__name__} has no reset_parameters, so "
                f"{type(self).__name__} cannot draw fresh weights for it"
            )
        gen = as_rng(rng)
        self.cell.reset_parameters(gen)
        self.rng = np.random.default_rng(gen.integers(2**63))


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


@component
class VariationalDropout(_Wrapper):
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
        _check_cell(self.cell)
        self.input_rate = _check_rate("input_rate", self.input_rate)
        self.recurrent_rate = _check_rate("recurrent_rate", self.recurrent_rate)
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
        context = _TRAINING if context is None else context
        state = self._check_state(state)
        x = check_step_input(self, x)
        inner = self.unwrap_state(state)
        hooked = bool(getattr(self.cell, "accepts_h_mask", False))
        if not context.training:
            new, y, cache = _inner_step_train(self.cell, inner, x, context)
            ones_x, ones_h = np.ones_like(state.mask_x), np.ones_like(state.mask_h)
            step_cache = VariationalStepCache(cache, ones_x, ones_h, hooked=False)
            return self._rewrap(new, state.mask_x, state.mask_h), y, step_cache
        rng = self.rng if context.rng is None else context.rng
        mask_x = self._draw(state.mask_x, self.input_rate, rng)
        mask_h = self._draw(state.mask_h, self.recurrent_rate, rng)
        x_in = x * mask_x
        if hooked:
            new, y, cache = _inner_step_train(self.cell, inner, x_in, context, h_mask=mask_h)
        else:
            inner = attrs.evolve(inner, h=inner.h * mask_h)
            new, y, cache = _inner_step_train(self.cell, inner, x_in, context)
        return (
            self._rewrap(new, mask_x, mask_h),
            y,
            VariationalStepCache(cache, mask_x, mask_h, hooked),
        )

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

    def describe(self) -> str:
        return f"VariationalDropout(input_rate={self.input_rate}, recurrent_rate={self.recurrent_rate})"


@attrs.frozen(eq=False)
class ZoneoutStepCache:
    """What :meth:`Zoneout.step_backward` needs."""

    inner: Any
    # field -> weight of the previous value: the 0/1 zoneout mask in training, the rate
    # under inference="expectation" and 0 under inference="off" (training=False)
    keep: dict[str, Array]
    y_is_h: bool


@component
class Zoneout(_Wrapper):
    """Zoneout (Krueger et al. 2017): units keep their previous value at random.

    Parameters
    ----------
    cell : cell
        Any trainable cell with a state field ``h`` (and ``c`` when ``c_rate > 0``).
    h_rate : float, default 0.0
        Probability, per unit and step, that ``h`` keeps its previous value; in [0, 1).
    c_rate : float, default 0.0
        The same for the cell state ``c``.
    inference : {"off", "expectation"}, default "off"
        ``"off"``: inference is the plain cell. ``"expectation"``: as in the paper,
        ``h = h_rate * h_prev + (1 - h_rate) * h_new`` (and likewise ``c``).
    rng : numpy.random.Generator or int or None
        Source of the masks; the same seed gives the same masks.

    Notes
    -----
    When the wrapped cell's output is its new ``h`` (every lstmkit cell), the output
    is the zoned-out ``h``, as in the paper; otherwise the output is passed through.

    Examples
    --------
    >>> import numpy as np
    >>> from lstmkit import GRUCell, Recurrent, Zoneout
    >>> rnn = Recurrent(Zoneout(GRUCell(3, 4, rng=0), h_rate=0.2, rng=0))
    >>> y, state, cache = rnn.forward(np.ones((2, 5, 3)))
    >>> y.shape, type(state).__name__
    ((2, 5, 4), 'HiddenState')
    """

    cell: Any = attrs.field()
    h_rate: float = attrs.field(default=0.0)
    c_rate: float = attrs.field(default=0.0)
    inference: str = attrs.field(default="off", kw_only=True)
    rng: np.random.Generator = attrs.field(default=None, kw_only=True, converter=as_rng, repr=False)

    def __attrs_post_init__(self) -> None:
        _check_cell(self.cell)
        self.h_rate = _check_rate("h_rate", self.h_rate)
        self.c_rate = _check_rate("c_rate", self.c_rate)
        if self.inference not in ("off", "expectation"):
            raise ValueError(
                f"inference: expected 'off' or 'expectation', received {self.inference!r}"
            )
        template = self.cell.initial_state(1)
        names = attrs.fields_dict(type(template)) if attrs.has(type(template)) else {}
        if "h" not in names:
            raise ValueError(
                f"cell: zoneout needs a state with a field 'h', received {type(template).__name__}"
            )
        if self.c_rate > 0 and "c" not in names:
            raise ValueError(
                f"c_rate: {type(self.cell).__name__}'s state {type(template).__name__} has no cell "
                f"state 'c' to zone out, received c_rate={self.c_rate}; use h_rate only"
            )

    @property
    def rates(self) -> dict[str, float]:
        """Zoneout probability of each state field that has one."""
        out = {"h": self.h_rate}
        if self.c_rate > 0:
            out["c"] = self.c_rate
        return out

    def initial_state(self, batch_size: int | None = None) -> Any:
        """The wrapped cell's zero state (zoneout keeps no state of its own)."""
        return self.cell.initial_state(batch_size)

    def step(self, state: Any, x: Array) -> tuple[Any, Array]:
        """Inference: the plain cell, or its expectation under zoneout (``inference="expectation"``)."""
        new, y = self.cell.step(state, x)
        if self.inference == "off":
            return new, y
        return self._expectation(state, new, y)

    def _expectation(self, state: Any, new: Any, y: Array) -> tuple[Any, Array]:
        y_is_h = y is new.h
        mixed = {
            name: self.dtype.type(rate) * getattr(state, name)
            + self.dtype.type(1.0 - rate) * getattr(new, name)
            for name, rate in self.rates.items()
        }
        new = attrs.evolve(new, **mixed)
        return new, (new.h if y_is_h else y)

    def step_train(
        self, state: Any, x: Array, context: StepContext | None = None
    ) -> tuple[Any, Array, ZoneoutStepCache]:
        """Training step: each unit of ``h`` (``c``) keeps its previous value with ``h_rate`` (``c_rate``).

        ``context`` (from the runner) says whether to train and which generator to draw
        from (the wrapper's ``rng`` when ``context.rng`` is None). With
        ``context.training`` false the step is :meth:`step` (the plain cell, or its
        expectation under ``inference="expectation"``), with an exact backward.
        """
        context = _TRAINING if context is None else context
        new, y, cache = _inner_step_train(self.cell, state, x, context)
        y_is_h = y is new.h
        keep: dict[str, Array] = {}
        if not context.training:
            expect = self.inference == "expectation"
            for name, rate in self.rates.items():
                keep[name] = np.full_like(getattr(new, name), rate if expect else 0.0)
            if expect:
                new, y = self._expectation(state, new, y)
            return new, y, ZoneoutStepCache(cache, keep, y_is_h)
        rng = self.rng if context.rng is None else context.rng
        mixed: dict[str, Array] = {}
        for name, rate in self.rates.items():
            prev, cur = getattr(state, name), getattr(new, name)
            keep[name] = (rng.random(cur.shape) < rate).astype(self.dtype)
            mixed[name] = np.where(keep[name] > 0, prev, cur)
        new = attrs.evolve(new, **mixed)
        return new, (new.h if y_is_h else y), ZoneoutStepCache(cache, keep, y_is_h)

    def step_backward(self, cache: ZoneoutStepCache, d_state: Any, d_y: Array) -> tuple[Any, Array]:
        """Exact backward of :meth:`step_train`."""
        if not isinstance(cache, ZoneoutStepCache):
            raise TypeError(
                f"cache: expected the ZoneoutStepCache from step_train, received {type(cache).__name__}"
            )
        d_out = {name: getattr(d_state, name) for name in cache.keep}
        if cache.y_is_h:
            d_out["h"] = d_out["h"] + d_y  # the output is the zoned h itself
            d_y = np.zeros_like(d_y)
        d_new = attrs.evolve(d_state, **{n: (1 - cache.keep[n]) * d for n, d in d_out.items()})
        d_prev, d_x = self.cell.step_backward(cache.inner, d_new, d_y)
        d_prev = attrs.evolve(
            d_prev, **{n: getattr(d_prev, n) + cache.keep[n] * d for n, d in d_out.items()}
        )
        return d_prev, d_x

    def describe(self) -> str:
        return f"Zoneout(h_rate={self.h_rate}, c_rate={self.c_rate}, inference={self.inference!r})"
