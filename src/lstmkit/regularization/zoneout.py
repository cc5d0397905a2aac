"""Zoneout (Krueger et al. 2017): units keep their previous value at random.

:class:`Zoneout` keeps each unit of ``h`` (and of ``c``) at its previous value with
probability ``h_rate`` (``c_rate``), afresh at every step::

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

from lstmkit import config
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

__all__ = ["Zoneout", "ZoneoutStepCache"]

Array = NDArray[Any]

INFERENCE_MODES = ("off", "expectation")


@attrs.frozen(eq=False)
class ZoneoutStepCache:
    """What :meth:`Zoneout.step_backward` needs."""

    inner: Any
    # field -> weight of the previous value: the 0/1 zoneout mask in training, the rate
    # under inference="expectation" and 0 under inference="off" (training=False)
    keep: dict[str, Array]
    y_is_h: bool


@config.configurable()
@component
class Zoneout(Wrapper):
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
        check_cell(self.cell)
        self.h_rate = check_rate("h_rate", self.h_rate)
        self.c_rate = check_rate("c_rate", self.c_rate)
        if self.inference not in INFERENCE_MODES:
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
        context = TRAINING if context is None else context
        new, y, cache = inner_step_train(self.cell, state, x, context)
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

    @accumulates_gradients
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

    # -- configuration (see lstmkit.config) ------------------------------------------------------

    def to_config(self) -> dict[str, Any]:
        """The wrapped cell's configuration, both rates and the inference mode."""
        return {
            "cell": config.to_config(self.cell),
            "h_rate": float(self.h_rate),
            "c_rate": float(self.c_rate),
            "inference": self.inference,
        }

    @classmethod
    def from_config(cls, cfg: dict[str, Any], ctx: config.BuildContext) -> Zoneout:
        """A wrapper from :meth:`to_config` output; rates and mode are checked before the cell."""
        ctx.check_keys(cfg, ["cell", "h_rate", "c_rate", "inference"])
        rates = [ctx.float(cfg, key, low=0.0, high=1.0) for key in ("h_rate", "c_rate")]
        inference = ctx.str(cfg, "inference", choices=INFERENCE_MODES)
        return cls(
            ctx.build(cfg["cell"], "cell", "cell."), *rates, inference=inference, rng=ctx.rng
        )

    def describe(self) -> str:
        return f"Zoneout(h_rate={self.h_rate}, c_rate={self.c_rate}, inference={self.inference!r})"
