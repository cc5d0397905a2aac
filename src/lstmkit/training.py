"""A small training loop: one step, a loop with a progress bar, and truncated BPTT.

* :func:`train_step` runs forward, loss, backward, optional global-norm clipping
  and the optimizer update for one batch. A NaN or infinite loss (or gradient)
  raises :class:`NonFiniteLossError` naming the step, *before* any weight changes.
* :func:`fit` trains for epochs over a dataset, with validation metrics
  (:mod:`lstmkit.metrics`), callbacks (:mod:`lstmkit.callbacks`: early stopping,
  checkpoints, learning-rate schedules) and a progress bar with the running loss
  (tqdm when installed, else :class:`ProgressBar`); it records a :class:`History`.
* :func:`tbptt` is stateful truncated backpropagation through time: it cuts long
  sequences into chunks, carries the final state of one chunk into the next as a
  constant (no gradient crosses a chunk boundary) and updates after every chunk.

The model is a :class:`~lstmkit.Sequential` or a runner (``Recurrent``,
``Stacked``, ``Bidirectional``); the loss is any ``loss_fn(prediction, target[, mask])
-> (loss, d_prediction)`` such as those in :mod:`lstmkit.losses`. For sequence outputs
``(batch, time, ...)`` of a batch with ``lengths``, the loss gets the mask
``t < lengths[b]`` unless a mask is given (:func:`lstmkit.evaluation.loss_mask`), so padding
never contributes to the loss, its gradient or a metric.
"""

from __future__ import annotations

import itertools
import math
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit.callbacks import Callback, FitState
from lstmkit.data import as_dataset, epoch_batches, unpack_batch
from lstmkit.evaluation import evaluate, loss_mask
from lstmkit.initializers import as_rng
from lstmkit.optimizers import clip_grad_norm
from lstmkit.progress import TqdmBar, tqdm_factory

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
    """What :func:`fit` / :func:`tbptt` recorded.

    ``losses`` and ``grad_norms`` (when clipping) have one entry per step; ``epochs`` lists
    the epochs run (from 0) and ``metrics`` one value per epoch under each key of the epoch's
    logs: ``loss`` (the mean of the epoch's step losses), ``lr`` (the optimizer's learning
    rate), ``val_loss`` and ``val_<metric>`` with validation data. ``stopped_epoch`` is the
    epoch after which a callback stopped training, if one did.
    """

    losses: list[float] = attrs.field(factory=list)
    grad_norms: list[float] = attrs.field(factory=list)
    final_state: Any = None
    epochs: list[int] = attrs.field(factory=list)
    metrics: dict[str, list[float]] = attrs.field(factory=dict)
    stopped_epoch: int | None = None

    def add_step(self, result: StepResult) -> None:
        """Append one step's loss (and gradient norm) and keep its final state."""
        self.losses.append(result.loss)
        if result.grad_norm is not None:
            self.grad_norms.append(result.grad_norm)
        self.final_state = result.final_state

    def record(self, epoch: int, logs: dict[str, float]) -> None:
        """Append one epoch's logs."""
        self.epochs.append(epoch)
        for key, value in logs.items():
            self.metrics.setdefault(key, []).append(float(value))


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
    auto_mask: bool = True,
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
        What counts in the loss; when None and the prediction is a sequence
        ``(batch, time, ...)``, the mask from ``lengths`` (see ``auto_mask``).
    initial_state : state, optional
    clip_norm : float, optional
        Clip the global gradient norm to this value before the update.
    step : int, optional
        Step number used in error messages.
    rng : Generator, optional
        Dropout randomness for the training forward.
    auto_mask : bool, default True
        Mask the padding of sequence outputs from ``lengths``
        (:func:`lstmkit.evaluation.loss_mask`); False passes no mask.

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
    if auto_mask:
        mask = loss_mask(y, x, lengths, mask)
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


def _progress_bar(progress: bool, total: int | None, desc: str, stream: TextIO | None) -> Any:
    """tqdm (``tqdm.auto``: notebooks too) when installed, else :class:`ProgressBar`."""
    if not progress:
        return None
    factory = tqdm_factory()
    if factory is not None:
        return TqdmBar(factory, total, desc=desc, stream=stream)
    return None if total is None else ProgressBar(total, desc=desc, stream=stream)


def _print_logs(stream: TextIO | None, label: str, logs: dict[str, float]) -> None:
    out = sys.stderr if stream is None else stream
    out.write(label + "  " + "  ".join(f"{key} {value:.4g}" for key, value in logs.items()) + "\n")
    out.flush()


def fit(
    model: Any,
    loss_fn: Callable[..., tuple[float, Array]],
    optimizer: Any,
    batches: Any,
    *,
    epochs: int = 1,
    steps: int | None = None,
    batch_size: int | None = None,
    shuffle: bool = False,
    validation_data: Any = None,
    metrics: Sequence[Any] = (),
    callbacks: Sequence[Callback] = (),
    auto_mask: bool = True,
    clip_norm: float | None = None,
    progress: bool = True,
    desc: str = "train",
    stream: TextIO | None = None,
    rng: Any = None,
) -> History:
    """Train for ``epochs`` passes over a dataset, with validation, metrics and callbacks.

    Each epoch runs :func:`train_step` on every batch (at most ``steps``), then, with
    ``validation_data``, evaluates the loss and ``metrics`` in inference mode
    (:func:`lstmkit.evaluation.evaluate`), records the epoch's logs in the :class:`History`
    and calls the callbacks, which may stop training.

    Parameters
    ----------
    model, loss_fn, optimizer
        As in :func:`train_step`.
    batches : iterable, arrays or callable
        A dataset that gives its batches every time it is iterated (a list of batches, an
        :class:`~lstmkit.data.ArrayBatches`); arrays ``(x, target[, lengths[, mask]])`` (or a
        dict with those keys) cut by ``batch_size``; or a function ``step -> batch``. A batch
        is ``(x, target[, lengths[, mask]])`` or a dict (see :func:`lstmkit.data.unpack_batch`).
    epochs : int, default 1
    steps : int, optional
        Steps per epoch: required when ``batches`` is a function (called with the step
        number counted over the whole run); else at most this many batches per epoch.
    batch_size : int, optional
        For arrays: rows per batch (all rows in one batch when None).
    shuffle : bool, default False
        For arrays: a new order of the rows every epoch, drawn from ``rng``.
    validation_data : iterable or arrays, optional
        Batches evaluated after every epoch, or arrays (one batch; an
        :class:`~lstmkit.data.ArrayBatches` with a ``batch_size`` cuts them); their loss is
        logged as ``val_loss`` and each metric as ``val_<name>``.
    metrics : sequence of Metric or str
        Computed on ``validation_data``: ``"accuracy"``, ``"nll"``, ``"perplexity"``,
        ``"bits_per_character"``, ``"mse"`` or :mod:`lstmkit.metrics` objects (a user's too).
    callbacks : sequence of Callback
        Called in order (:mod:`lstmkit.callbacks`).
    auto_mask : bool, default True
        Mask the padding of sequence outputs from each batch's ``lengths``, in training and
        validation (:func:`lstmkit.evaluation.loss_mask`).
    clip_norm : float, optional
        Global-norm gradient clipping.
    progress : bool, default True
        A progress bar per epoch with the running loss (tqdm when installed, else
        :class:`ProgressBar`); with several epochs or validation data, a line per epoch with
        its logs.
    desc : str
        Label of the progress bar.
    stream : text stream or None, default None
        Where the bar is written; None means ``sys.stderr``.
    rng : numpy.random.Generator or int, optional
        One generator for the shuffling and the dropout randomness (None: each component's
        own generator; a fresh one for shuffling).

    Returns
    -------
    History
        The loss of every step and the logs of every epoch.

    Raises
    ------
    NonFiniteLossError
        With the step at which the loss (or a gradient) stopped being finite.
    """
    gen = None if rng is None else as_rng(rng)
    batches_of, per_epoch = epoch_batches(
        batches, epochs=epochs, steps=steps, batch_size=batch_size, shuffle=shuffle, rng=gen
    )
    validation = None
    if validation_data is not None:
        validation = as_dataset(validation_data, argument="validation_data")
        if epochs > 1 and iter(validation) is validation:
            raise ValueError(
                "validation_data: a one-shot iterator (such as a generator) gives its batches "
                f"once, but epochs={epochs} evaluates them every epoch; pass a list or an "
                "ArrayBatches"
            )
    elif metrics:
        raise ValueError("metrics: they are computed on validation_data, which is None")
    history = History()
    state = FitState(model, optimizer, history, epochs)

    def run_step(batch: Any, step: int) -> float:
        b = unpack_batch(batch)
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
            step=step,
            rng=gen,
            auto_mask=auto_mask,
        )
        history.add_step(result)
        for callback in callbacks:
            callback.on_batch_end(state, step, result.loss)
        return result.loss

    for callback in callbacks:
        callback.on_train_begin(state)
    step = 0
    for epoch in range(epochs):
        state.epoch = epoch
        for callback in callbacks:
            callback.on_epoch_begin(state)
        label = desc if epochs == 1 else f"{desc} {epoch + 1}/{epochs}"
        bar = _progress_bar(progress, per_epoch, label, stream)
        losses: list[float] = []
        try:
            for batch in itertools.islice(batches_of(epoch), per_epoch):
                losses.append(run_step(batch, step))
                step += 1
                if bar is not None:
                    bar.update(losses[-1])
        finally:
            if bar is not None:
                bar.close()
        logs = {"loss": sum(losses) / len(losses) if losses else math.nan}
        if hasattr(optimizer, "lr"):
            logs["lr"] = float(optimizer.lr)
        if validation is not None:
            scores = evaluate(model, loss_fn, validation, metrics, auto_mask=auto_mask)
            logs.update({f"val_{key}": value for key, value in scores.items()})
        history.record(epoch, logs)
        if progress and (epochs > 1 or validation is not None):
            _print_logs(stream, f"epoch {epoch + 1}/{epochs}", logs)
        for callback in callbacks:
            callback.on_epoch_end(state, logs)
        if state.stop:
            history.stopped_epoch = epoch
            break
    for callback in callbacks:
        callback.on_train_end(state)
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
        history.add_step(result)
        if on_step is not None:
            on_step(step_offset + k, result.loss)
    history.final_state = state
    return history
