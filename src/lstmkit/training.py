"""A small training loop: one step, a loop with a progress bar, and truncated BPTT.

* :func:`train_step` runs forward, loss, backward, optional global-norm clipping
  and the optimizer update for one batch. A NaN or infinite loss (or gradient)
  raises :class:`NonFiniteLossError` naming the step, *before* any weight changes.
* :func:`fit` repeats :func:`train_step` over batches and shows a plain-text
  progress bar with the running loss.
* :func:`tbptt` is stateful truncated backpropagation through time: it cuts long
  sequences into chunks, carries the final state of one chunk into the next as a
  constant (no gradient crosses a chunk boundary) and updates after every chunk.

The model is a :class:`~lstmkit.Sequential` or a runner (``Recurrent``,
``Stacked``, ``Bidirectional``); the loss is any ``loss_fn(prediction, target[, mask])
-> (loss, d_prediction)`` such as those in :mod:`lstmkit.losses`.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit.optimizers import clip_grad_norm

__all__ = [
    "History",
    "NonFiniteLossError",
    "ProgressBar",
    "StepResult",
    "detach_state",
    "fit",
    "tbptt",
    "train_step",
]

Array = NDArray[Any]


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss or gradient; ``step`` says when.

    Raised before the optimizer update, so the weights are those of the last good step.
    """

    def __init__(self, message: str, step: int | None, loss: float) -> None:
        super().__init__(message)
        self.step = step
        self.loss = loss


@attrs.frozen(eq=False)
class StepResult:
    """Outcome of :func:`train_step`: the loss, the gradient norm before clipping (or None)
    and the model's final state."""

    loss: float
    grad_norm: float | None
    final_state: Any


@attrs.define(eq=False)
class History:
    """Per-step losses (and gradient norms when clipping) recorded by :func:`fit` / :func:`tbptt`."""

    losses: list[float] = attrs.field(factory=list)
    grad_norms: list[float] = attrs.field(factory=list)
    final_state: Any = None


def detach_state(state: Any) -> Any:
    """A copy of a (nested) state, to carry into the next chunk as a constant."""
    if state is None:
        return None
    if isinstance(state, np.ndarray):
        return state.copy()
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(s) for s in state)
    if attrs.has(type(state)):
        return type(state)(
            **{f.name: detach_state(getattr(state, f.name)) for f in attrs.fields(type(state))}
        )
    raise TypeError(
        f"state: expected arrays, tuples or attrs states, received {type(state).__name__}"
    )


def _forward(model: Any, x: Array, state: Any, lengths: Any, rng: Any) -> tuple[Any, Any, Any]:
    out = model.forward(x, state, lengths, training=True, rng=rng)
    if len(out) == 3:
        return out  # a runner: (y, final_state, cache)
    y, cache = out  # Sequential: the state rides on the cache
    return y, getattr(cache, "final_state", None), cache


def _step_label(step: int | None) -> str:
    return "" if step is None else f" at step {step}"


def train_step(
    model: Any,
    loss_fn: Callable[..., tuple[float, Array]],
    optimizer: Any,
    x: Array,
    target: Any,
    *,
    lengths: Any = None,
    mask: Any = None,
    initial_state: Any = None,
    clip_norm: float | None = None,
    step: int | None = None,
    rng: Any = None,
) -> StepResult:
    """One optimisation step on one batch.

    Parameters
    ----------
    model : Sequential or runner
    loss_fn : callable
        ``loss_fn(prediction, target) -> (loss, d_prediction)``; called with ``mask`` as a
        third argument when a mask is given.
    optimizer : lstmkit.optimizers.Optimizer
        Built on ``model``'s parameters; its gradients are zeroed first.
    x : ndarray, shape (batch, time, input_size)
    target : ndarray
        Whatever ``loss_fn`` expects, e.g. ``(batch, 1)`` or integer ``(batch, time)``.
    lengths : array of int, optional
    mask : ndarray of bool, optional
    initial_state : state, optional
    clip_norm : float, optional
        Clip the global gradient norm to this value before the update.
    step : int, optional
        Step number used in error messages.
    rng : Generator, optional
        Dropout randomness for the training forward.

    Returns
    -------
    StepResult

    Raises
    ------
    NonFiniteLossError
        The loss or a gradient is NaN or infinite; no weight was changed.
    """
    optimizer.zero_grad()
    y, final, cache = _forward(model, x, initial_state, lengths, rng)
    loss, dy = loss_fn(y, target) if mask is None else loss_fn(y, target, mask)
    loss = float(loss)
    if not math.isfinite(loss):
        raise NonFiniteLossError(
            f"loss became {loss}{_step_label(step)}; training stopped before updating the weights "
            "(try a lower learning rate or gradient clipping)",
            step,
            loss,
        )
    model.backward(cache, dy)
    norm = None
    try:
        if clip_norm is not None:
            norm = clip_grad_norm(optimizer.params, clip_norm)
        optimizer.step()
    except ValueError as err:
        if "NaN" not in str(err):
            raise
        raise NonFiniteLossError(
            f"a gradient became NaN or infinite{_step_label(step)} (loss {loss:.6g}); training "
            f"stopped before updating the weights: {err}",
            step,
            loss,
        ) from err
    return StepResult(loss, norm, final)


class ProgressBar:
    """A plain-text progress bar with a running (exponentially averaged) loss.

    On a terminal the bar redraws in place; elsewhere (logs, CI) it prints a line
    every 10 % of the way.

    Parameters
    ----------
    total : int
        Number of steps.
    desc : str
        Label in front of the bar.
    stream : text stream or None, default None
        Where the bar is written; None means ``sys.stderr``.
    width : int, default 30
    smoothing : float, default 0.05
        Weight of the newest loss in the running average.
    """

    def __init__(
        self,
        total: int,
        *,
        desc: str = "train",
        stream: TextIO | None = None,
        width: int = 30,
        smoothing: float = 0.05,
    ) -> None:
        if total < 0:
            raise ValueError(f"total: expected a number of steps >= 0, received {total}")
        self.total, self.desc, self.width, self.smoothing = (
            int(total),
            desc,
            int(width),
            float(smoothing),
        )
        self.stream = sys.stderr if stream is None else stream
        self.count = 0
        self._avg = 0.0
        self._weight = 0.0
        self._start = time.perf_counter()
        self._last_draw = -1.0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._next_line = 0

    @property
    def running_loss(self) -> float | None:
        """Bias-corrected exponential average of the losses seen so far."""
        return self._avg / self._weight if self._weight else None

    def update(self, loss: float | None = None, n: int = 1, **extra: float) -> None:
        """Advance by ``n`` steps, folding ``loss`` into the running average."""
        self.count += n
        if loss is not None and math.isfinite(loss):
            s = self.smoothing
            self._avg = (1 - s) * self._avg + s * loss
            self._weight = (1 - s) * self._weight + s
        now = time.perf_counter()
        done = self.count >= self.total
        if self._tty:
            if done or now - self._last_draw > 0.1:
                self._last_draw = now
                self.stream.write("\r" + self.render(**extra))
                self.stream.flush()
        elif done or self.count >= self._next_line:
            self._next_line = self.count + max(1, self.total // 10)
            self.stream.write(self.render(**extra) + "\n")
            self.stream.flush()

    def render(self, **extra: float) -> str:
        """The bar as one line of text."""
        frac = min(1.0, self.count / self.total) if self.total else 1.0
        filled = round(frac * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        elapsed = time.perf_counter() - self._start
        parts = [f"{self.desc} [{bar}] {self.count}/{self.total}"]
        if self.running_loss is not None:
            parts.append(f"loss {self.running_loss:.4f}")
        parts.extend(f"{k} {v:.4g}" for k, v in extra.items())
        parts.append(f"{elapsed:.0f}s")
        if 0 < frac < 1:
            parts.append(f"eta {elapsed / frac * (1 - frac):.0f}s")
        return "  ".join(parts)

    def close(self) -> None:
        """Finish the line on a terminal."""
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()


def _unpack_batch(batch: Any) -> dict[str, Any]:
    if isinstance(batch, dict):
        unknown = set(batch) - {"x", "target", "lengths", "mask", "initial_state"}
        if unknown or "x" not in batch or "target" not in batch:
            raise ValueError(
                "batches: expected dicts with keys x, target and optionally lengths, mask, "
                f"initial_state; received keys {sorted(batch)}"
            )
        return dict(batch)
    if isinstance(batch, (tuple, list)) and 2 <= len(batch) <= 4:
        return dict(zip(("x", "target", "lengths", "mask"), batch))
    raise TypeError(
        "batches: expected (x, target[, lengths[, mask]]) tuples or dicts, "
        f"received {type(batch).__name__}"
    )


def fit(
    model: Any,
    loss_fn: Callable[..., tuple[float, Array]],
    optimizer: Any,
    batches: Iterable[Any] | Callable[[int], Any],
    *,
    steps: int | None = None,
    clip_norm: float | None = None,
    progress: bool = True,
    desc: str = "train",
    stream: TextIO | None = None,
    rng: Any = None,
) -> History:
    """Train for a number of steps, showing a progress bar with the running loss.

    Parameters
    ----------
    model, loss_fn, optimizer
        As in :func:`train_step`.
    batches : iterable or callable
        Batches as ``(x, target)``, ``(x, target, lengths)``, ``(x, target, lengths, mask)``
        or dicts with those keys; or a function ``step -> batch``.
    steps : int, optional
        Number of steps; required when ``batches`` is a function, else ``len(batches)``.
    clip_norm : float, optional
        Global-norm gradient clipping.
    progress : bool, default True
    desc : str
        Label of the progress bar.
    stream : text stream or None, default None
        Where the bar is written; None means ``sys.stderr``.
    rng : Generator, optional
        Dropout randomness.

    Returns
    -------
    History
        Loss of every step.

    Raises
    ------
    NonFiniteLossError
        With the step at which the loss (or a gradient) stopped being finite.
    """
    if callable(batches):
        if steps is None:
            raise ValueError("steps: required when batches is a function of the step number")
        source: Iterable[Any] = (batches(k) for k in range(steps))
    else:
        if steps is None:
            steps = len(batches)  # type: ignore[arg-type]
        source = batches
    bar = ProgressBar(steps, desc=desc, stream=stream) if progress else None
    history = History()
    try:
        for k, batch in enumerate(source):
            if k >= steps:
                break
            b = _unpack_batch(batch)
            result = train_step(
                model,
                loss_fn,
                optimizer,
                b["x"],
                b["target"],
                lengths=b.get("lengths"),
                mask=b.get("mask"),
                initial_state=b.get("initial_state"),
                clip_norm=clip_norm,
                step=k,
                rng=rng,
            )
            history.losses.append(result.loss)
            if result.grad_norm is not None:
                history.grad_norms.append(result.grad_norm)
            history.final_state = result.final_state
            if bar is not None:
                bar.update(result.loss)
    finally:
        if bar is not None:
            bar.close()
    return history


def tbptt(
    model: Any,
    loss_fn: Callable[..., tuple[float, Array]],
    optimizer: Any,
    x: Array,
    target: Any,
    *,
    chunk: int,
    initial_state: Any = None,
    mask: Any = None,
    clip_norm: float | None = None,
    step_offset: int = 0,
    on_step: Callable[[int, float], None] | None = None,
    rng: Any = None,
) -> History:
    """Stateful truncated BPTT over the time axis of ``x``.

    The sequence is cut into chunks of ``chunk`` steps. Each chunk is one
    :func:`train_step` that starts from the previous chunk's final state, taken as
    a constant: gradients flow back at most ``chunk`` steps and never across a
    chunk boundary, while the state (the model's memory) flows forward unbroken.

    Parameters
    ----------
    model, loss_fn, optimizer
        As in :func:`train_step`.
    x : ndarray, shape (batch, time, input_size)
        Equal-length streams (e.g. one long text cut into ``batch`` parallel streams).
    target : ndarray, shape (batch, time, ...)
        Sliced along the time axis together with ``x``.
    chunk : int
        Steps per update (> 0); the last chunk may be shorter.
    initial_state : state, optional
        State at the start (e.g. the final state of the previous call).
    mask : ndarray of bool, shape (batch, time), optional
    clip_norm : float, optional
    step_offset : int, default 0
        Number of the first update, for messages and ``on_step``.
    on_step : callable, optional
        ``on_step(step, loss)`` after every chunk (e.g. a progress bar update).
    rng : Generator, optional

    Returns
    -------
    History
        One loss per chunk, and ``final_state`` to carry into the next call.
    """
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"chunk: expected a positive integer number of steps, received {chunk!r}")
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"x: expected shape (batch, time, features), received {x.shape}")
    target = np.asarray(target)
    T = x.shape[1]
    if target.ndim < 2 or target.shape[:2] != x.shape[:2]:
        raise ValueError(f"target: expected shape {x.shape[:2]} + (...), received {target.shape}")
    history = History()
    state = detach_state(initial_state)
    for k, start in enumerate(range(0, T, int(chunk))):
        sl = slice(start, start + int(chunk))
        result = train_step(
            model,
            loss_fn,
            optimizer,
            x[:, sl],
            target[:, sl],
            mask=None if mask is None else np.asarray(mask)[:, sl],
            initial_state=state,
            clip_norm=clip_norm,
            step=step_offset + k,
            rng=rng,
        )
        state = detach_state(result.final_state)
        history.losses.append(result.loss)
        if result.grad_norm is not None:
            history.grad_norms.append(result.grad_norm)
        if on_step is not None:
            on_step(step_offset + k, result.loss)
    history.final_state = state
    return history
