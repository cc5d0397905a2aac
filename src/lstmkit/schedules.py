"""Learning-rate schedules: ``schedule(epoch) -> learning rate`` for epochs 0, 1, 2, ...

Each is a small frozen object with the formula of its PyTorch namesake (and is tested against
it); any function of the epoch works the same way in
:class:`~lstmkit.callbacks.LearningRateScheduler`.

Examples
--------
>>> from lstmkit.schedules import CosineDecay, ExponentialDecay, StepDecay
>>> [StepDecay(0.1, step_size=2, gamma=0.5)(e) for e in range(5)]
[0.1, 0.1, 0.05, 0.05, 0.025]
>>> round(ExponentialDecay(0.1, gamma=0.9)(2), 6)
0.081
>>> [round(CosineDecay(1.0, epochs=4)(e), 6) for e in range(6)]
[1.0, 0.853553, 0.5, 0.146447, 0.0, 0.0]
"""

from __future__ import annotations

import math
from typing import Any

import attrs

__all__ = ["CosineDecay", "ExponentialDecay", "StepDecay", "check_epoch"]


def _positive(instance: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{attribute.name}: expected a number, received {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{attribute.name}: expected a finite number > 0, received {value}")


def _non_negative(instance: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{attribute.name}: expected a number, received {type(value).__name__}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{attribute.name}: expected a finite number >= 0, received {value}")


def _positive_int(instance: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name}: expected an integer >= 1, received {value!r}")


def check_epoch(epoch: Any) -> int:
    """``epoch`` as a non-negative int, or a ``ValueError`` naming it."""
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"epoch: expected an integer >= 0, received {epoch!r}")
    return epoch


@attrs.frozen
class StepDecay:
    """``initial * gamma ** (epoch // step_size)`` (PyTorch's ``StepLR``).

    Parameters
    ----------
    initial : float
        Learning rate of epoch 0 (> 0).
    step_size : int
        Epochs between decays (>= 1).
    gamma : float, default 0.1
        Factor applied at each decay (> 0).
    """

    initial: float = attrs.field(validator=_positive)
    step_size: int = attrs.field(validator=_positive_int)
    gamma: float = attrs.field(default=0.1, validator=_positive)

    def __call__(self, epoch: int) -> float:
        return self.initial * self.gamma ** (check_epoch(epoch) // self.step_size)


@attrs.frozen
class ExponentialDecay:
    """``initial * gamma ** epoch`` (PyTorch's ``ExponentialLR``).

    Parameters
    ----------
    initial : float
        Learning rate of epoch 0 (> 0).
    gamma : float
        Factor per epoch (> 0).
    """

    initial: float = attrs.field(validator=_positive)
    gamma: float = attrs.field(validator=_positive)

    def __call__(self, epoch: int) -> float:
        return self.initial * self.gamma ** check_epoch(epoch)


@attrs.frozen
class CosineDecay:
    """Half a cosine from ``initial`` at epoch 0 to ``minimum`` at ``epochs``, then ``minimum``.

    ``minimum + (initial - minimum) * (1 + cos(pi * epoch / epochs)) / 2`` for
    ``epoch <= epochs`` (PyTorch's ``CosineAnnealingLR`` with ``T_max=epochs``,
    ``eta_min=minimum``).

    Parameters
    ----------
    initial : float
        Learning rate of epoch 0 (> 0).
    epochs : int
        Length of the decay in epochs (>= 1).
    minimum : float, default 0.0
        Final learning rate (>= 0).
    """

    initial: float = attrs.field(validator=_positive)
    epochs: int = attrs.field(validator=_positive_int)
    minimum: float = attrs.field(default=0.0, validator=_non_negative)

    def __call__(self, epoch: int) -> float:
        e = min(check_epoch(epoch), self.epochs)
        return (
            self.minimum
            + (self.initial - self.minimum) * (1 + math.cos(math.pi * e / self.epochs)) / 2
        )
