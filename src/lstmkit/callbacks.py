"""Callbacks for :func:`lstmkit.training.fit`: early stopping, checkpoints, learning-rate schedules.

``fit`` calls every callback's hooks in order, with a :class:`FitState` (the model, the
optimizer, the history so far, the epoch) and, at the end of an epoch, the epoch's ``logs``
(``loss``, ``lr``, ``val_loss``, ``val_<metric>``). A callback stops training by setting
``state.stop = True``. Write your own by subclassing :class:`Callback` and overriding the hooks
you need.

* :class:`EarlyStopping` stops when a monitored value has not improved for ``patience`` epochs
  and puts back the weights of the best epoch.
* :class:`ModelCheckpoint` saves the model with :func:`lstmkit.save` when the monitored value
  improves, and loads the best file's weights back at the end.
* :class:`LearningRateScheduler` sets ``optimizer.lr`` from a schedule at the start of every
  epoch (:mod:`lstmkit.schedules`, or any function of the epoch).
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from lstmkit.io import load_weights, save

__all__ = [
    "Callback",
    "EarlyStopping",
    "FitState",
    "LearningRateScheduler",
    "ModelCheckpoint",
]

_MODES = ("auto", "min", "max")


@attrs.define(eq=False)
class FitState:
    """What callbacks see and may change during :func:`~lstmkit.training.fit`.

    Attributes
    ----------
    model, optimizer
        As passed to ``fit``.
    history : lstmkit.training.History
        Everything recorded so far.
    epochs : int
        Number of epochs asked for.
    epoch : int
        The current epoch, from 0.
    stop : bool
        Set to True to end training after the current epoch.
    """

    model: Any
    optimizer: Any
    history: Any
    epochs: int
    epoch: int = 0
    stop: bool = False


class Callback:
    """Base class: every hook does nothing."""

    def on_train_begin(self, state: FitState) -> None:
        """Before the first epoch."""

    def on_epoch_begin(self, state: FitState) -> None:
        """Before the first step of epoch ``state.epoch``."""

    def on_batch_end(self, state: FitState, step: int, loss: float) -> None:
        """After each optimizer step (``step`` counts from 0 over the whole run)."""

    def on_epoch_end(self, state: FitState, logs: dict[str, float]) -> None:
        """After the epoch's validation; ``logs`` holds what the history records for it."""

    def on_train_end(self, state: FitState) -> None:
        """After the last epoch (not when an error ends training)."""


def _check_mode(instance: Any, attribute: Any, value: Any) -> None:
    if value not in _MODES:
        raise ValueError(f"mode: expected one of auto, min, max, received {value!r}")


def _check_min_delta(instance: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"min_delta: expected a number, received {type(value).__name__}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"min_delta: expected a finite number >= 0, received {value}")


def _direction(monitor: str, mode: str) -> str:
    """``mode``, with ``"auto"`` resolved: ``"max"`` for accuracies, ``"min"`` otherwise."""
    if mode != "auto":
        return mode
    return "max" if monitor.endswith("accuracy") else "min"


def _monitored(logs: dict[str, float], monitor: str, who: str) -> float:
    if monitor not in logs:
        raise ValueError(
            f"monitor: {who} watches {monitor!r}, but the epoch recorded only "
            f"{', '.join(sorted(logs))} (validation values need validation_data)"
        )
    return float(logs[monitor])


def _better(value: float, best: float | None, direction: str, min_delta: float) -> bool:
    if math.isnan(value):
        return False
    if best is None:
        return True
    return value < best - min_delta if direction == "min" else value > best + min_delta


@attrs.define(eq=False)
class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs; restore the best weights.

    An epoch improves on the best so far when its value is lower by more than ``min_delta``
    (``mode="min"``) or higher by more than ``min_delta`` (``mode="max"``). Up to ``patience``
    epochs in a row without improvement are tolerated; training stops after the next one
    (``patience + 1`` in a row). With ``restore_best_weights`` the
    model ends with the weights it had at the end of the best epoch (also when training ran
    to the last epoch).

    Parameters
    ----------
    monitor : str, default "val_loss"
        A key of the epoch's logs: ``loss``, ``val_loss``, ``val_accuracy``, ...
    patience : int, default 0
        Epochs in a row without improvement that do not stop training (0: stop after the first).
    min_delta : float, default 0.0
    mode : {"auto", "min", "max"}, default "auto"
        ``"auto"``: ``"max"`` for names ending in ``accuracy``, else ``"min"``.
    restore_best_weights : bool, default True

    Attributes
    ----------
    best : float or None
        The best value seen.
    best_epoch : int or None
    stopped_epoch : int or None
        The epoch after which training stopped, if it stopped early.
    """

    monitor: str = "val_loss"
    patience: int = attrs.field(default=0)
    min_delta: float = attrs.field(default=0.0, validator=_check_min_delta)
    mode: str = attrs.field(default="auto", validator=_check_mode)
    restore_best_weights: bool = True
    best: float | None = attrs.field(default=None, init=False)
    best_epoch: int | None = attrs.field(default=None, init=False)
    stopped_epoch: int | None = attrs.field(default=None, init=False)
    _wait: int = attrs.field(default=0, init=False)
    _best_weights: Any = attrs.field(default=None, init=False, repr=False)

    @patience.validator
    def _check_patience(self, attribute: Any, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"patience: expected an integer >= 0, received {value!r}")

    def on_train_begin(self, state: FitState) -> None:
        self.best = self.best_epoch = self.stopped_epoch = None
        self._wait, self._best_weights = 0, None

    def on_epoch_end(self, state: FitState, logs: dict[str, float]) -> None:
        value = _monitored(logs, self.monitor, "EarlyStopping")
        direction = _direction(self.monitor, self.mode)
        if _better(value, self.best, direction, self.min_delta):
            self.best, self.best_epoch, self._wait = value, state.epoch, 0
            if self.restore_best_weights:
                self._best_weights = state.model.state_dict()
            return
        self._wait += 1
        if self._wait > self.patience:
            self.stopped_epoch = state.epoch
            state.stop = True

    def on_train_end(self, state: FitState) -> None:
        if self.restore_best_weights and self._best_weights is not None:
            state.model.load_state_dict(self._best_weights)


@attrs.define(eq=False)
class ModelCheckpoint(Callback):
    """Save the model to lstmkit's file format when ``monitor`` improves; load the best back.

    Parameters
    ----------
    path : str or os.PathLike
        Where to save (:func:`lstmkit.save`: ``.npz`` with the architecture as JSON). It may
        hold ``{epoch}`` (counted from 1), e.g. ``"ckpt-{epoch:03d}.npz"``, to keep one file
        per saved epoch.
    monitor : str, default "val_loss"
    mode : {"auto", "min", "max"}, default "auto"
    min_delta : float, default 0.0
    save_best_only : bool, default True
        Save only epochs that improve on the best; False saves every epoch.
    restore_best : bool, default True
        At the end of training, load the best saved file's weights into the model
        (:func:`lstmkit.load_weights`).

    Attributes
    ----------
    best : float or None
    best_path : pathlib.Path or None
        The file holding the best epoch.
    """

    path: str | os.PathLike[str]
    monitor: str = "val_loss"
    mode: str = attrs.field(default="auto", validator=_check_mode)
    min_delta: float = attrs.field(default=0.0, validator=_check_min_delta)
    save_best_only: bool = True
    restore_best: bool = True
    best: float | None = attrs.field(default=None, init=False)
    best_path: Path | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        text = os.fspath(self.path)
        try:
            text.format(epoch=1)
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(
                f"path: expected a file name whose only {{...}} field is {{epoch}}, "
                f"received {text!r} ({err!r})"
            ) from None
        if not self.save_best_only and self.restore_best and "{epoch" not in text:
            raise ValueError(
                f"path: saving every epoch to the one file {text!r} would overwrite the best "
                "epoch before it is restored; put {epoch} in the path, or keep save_best_only=True"
            )

    def on_train_begin(self, state: FitState) -> None:
        self.best, self.best_path = None, None

    def on_epoch_end(self, state: FitState, logs: dict[str, float]) -> None:
        value = _monitored(logs, self.monitor, "ModelCheckpoint")
        improved = _better(value, self.best, _direction(self.monitor, self.mode), self.min_delta)
        if not (improved or not self.save_best_only):
            return
        target = Path(os.fspath(self.path).format(epoch=state.epoch + 1))
        save(state.model, target)
        if improved:
            self.best, self.best_path = value, target

    def on_train_end(self, state: FitState) -> None:
        if self.restore_best and self.best_path is not None:
            load_weights(state.model, self.best_path)


@attrs.define(eq=False)
class LearningRateScheduler(Callback):
    """Set ``optimizer.lr = schedule(epoch)`` at the start of every epoch.

    Parameters
    ----------
    schedule : callable
        ``schedule(epoch) -> learning rate`` for epochs counted from 0: a schedule from
        :mod:`lstmkit.schedules` or any function. A function of two arguments is called as
        Keras calls it, ``schedule(epoch, lr)`` with the optimizer's current rate.

    Examples
    --------
    >>> halve = LearningRateScheduler(lambda epoch, lr: lr / 2 if epoch else lr)
    """

    schedule: Callable[..., float]
    _takes_lr: bool = attrs.field(init=False, default=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not callable(self.schedule):
            raise TypeError(
                f"schedule: expected a function of the epoch, received {type(self.schedule).__name__}"
            )
        self._takes_lr = _positional_arity(self.schedule) >= 2

    def on_epoch_begin(self, state: FitState) -> None:
        if not hasattr(state.optimizer, "lr"):
            raise TypeError(
                f"optimizer: LearningRateScheduler sets optimizer.lr, but "
                f"{type(state.optimizer).__name__} has no lr"
            )
        if self._takes_lr:
            lr = self.schedule(state.epoch, float(state.optimizer.lr))
        else:
            lr = self.schedule(state.epoch)
        if (
            isinstance(lr, (bool, np.bool_))
            or not isinstance(lr, (int, float, np.integer, np.floating))
            or not math.isfinite(lr)
        ):
            raise ValueError(
                f"schedule: expected a finite learning rate for epoch {state.epoch}, received {lr!r}"
            )
        state.optimizer.lr = float(lr)


def _positional_arity(fn: Callable[..., Any]) -> int:
    """How many positional arguments without a default ``fn`` requires (1 if it cannot tell)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: call it with the epoch
        return 1
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return 1  # e.g. a schedule object's __call__(*args): give it the epoch alone
    return sum(p.kind in kinds and p.default is inspect.Parameter.empty for p in params)
