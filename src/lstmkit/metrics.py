"""Metrics that accumulate over batches: accuracy, perplexity, bits per character, MSE.

A metric is fed batch after batch with ``update(prediction, target, mask=None)`` and read with
``result()``; ``reset()`` starts again. Each keeps running *sums and counts* (never a mean of
batch means), so the result over a dataset is the same however it is cut into batches, and a
``mask`` (usually ``(batch, time)``, from the ``lengths`` of a padded batch) leaves padding out
of both. :func:`lstmkit.training.fit` computes them on the validation data after every epoch.

Examples
--------
>>> import numpy as np
>>> from lstmkit.metrics import Accuracy
>>> acc = Accuracy()
>>> acc.update(np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([0, 0]))
>>> acc.update(np.array([[[0.0, 3.0], [9.0, 0.0]]]), np.array([[1, 1]]), mask=[[True, False]])
>>> acc.result()  # 2 right out of 3 counted entries
0.6666666666666666
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit.losses import _check_mask, _float_array

__all__ = [
    "Accuracy",
    "BitsPerCharacter",
    "MeanSquaredError",
    "Metric",
    "NegativeLogLikelihood",
    "Perplexity",
    "get",
]

Array = NDArray[Any]


def _included(mask: Any, lead_shape: tuple[int, ...]) -> Array:
    """A boolean array of ``lead_shape``: which entries count (all without a mask)."""
    m = _check_mask(mask, lead_shape)
    if m is None:
        return np.ones(lead_shape, bool)
    return np.broadcast_to(m.reshape(m.shape + (1,) * (len(lead_shape) - m.ndim)), lead_shape)


def _class_targets(logits: Any, targets: Any) -> tuple[Array, Array]:
    z = _float_array(logits, "prediction")
    if z.ndim < 1 or z.shape[-1] < 1:
        raise ValueError(f"prediction: expected shape (..., classes), received {z.shape}")
    t = np.asarray(targets)
    if t.dtype.kind not in "iu":
        raise TypeError(f"target: expected integer class indices, received dtype {t.dtype}")
    if t.shape != z.shape[:-1]:
        raise ValueError(
            f"target: expected shape {z.shape[:-1]} (prediction without the class axis), "
            f"received {t.shape}"
        )
    return z, t


@attrs.define(eq=False)
class Metric:
    """Base of the metrics: running totals, ``update`` per batch, ``result`` at the end.

    A subclass sets ``name`` (the key in :class:`~lstmkit.training.History`, after ``val_``)
    and ``mode`` (``"max"`` if larger is better, else ``"min"``; early stopping reads it), and
    defines ``update``; ``result`` is ``total / count`` unless it says otherwise, and NaN when
    nothing was counted.
    """

    name = "metric"
    mode = "min"

    total: float = attrs.field(default=0.0, init=False)
    count: float = attrs.field(default=0.0, init=False)

    def reset(self) -> None:
        """Forget every batch seen."""
        self.total = 0.0
        self.count = 0.0

    def update(self, prediction: Any, target: Any, mask: Any = None) -> None:
        """Add one batch. ``mask`` (a prefix of the prediction's shape) selects what counts."""
        raise NotImplementedError

    def result(self) -> float:
        """The metric over every entry counted since the last :meth:`reset`."""
        return self.total / self.count if self.count else math.nan


@attrs.define(eq=False)
class Accuracy(Metric):
    """Fraction of entries whose largest logit is the target class.

    ``prediction`` is ``(..., classes)``, ``target`` integer classes ``(...)``; ties go to the
    first class (``argmax``).
    """

    name = "accuracy"
    mode = "max"

    def update(self, prediction: Any, target: Any, mask: Any = None) -> None:
        z, t = _class_targets(prediction, target)
        keep = _included(mask, t.shape)
        self.total += float(np.sum((np.argmax(z, axis=-1) == t) & keep))
        self.count += float(np.sum(keep))


@attrs.define(eq=False)
class NegativeLogLikelihood(Metric):
    """Mean negative log-likelihood (nats) of the target classes: the cross-entropy.

    ``prediction`` are logits ``(..., classes)``; ``target`` integer classes ``(...)``. The
    running total is the sum of ``-log softmax(prediction)[target]`` over counted entries.
    """

    name = "nll"

    def update(self, prediction: Any, target: Any, mask: Any = None) -> None:
        z, t = _class_targets(prediction, target)
        keep = _included(mask, t.shape)
        classes = z.shape[-1]
        bad = keep & ((t < 0) | (t >= classes))
        if np.any(bad):
            raise ValueError(
                f"target: expected class indices in [0, {classes}), received {t[bad].ravel()[0]}"
            )
        shifted = z - z.max(axis=-1, keepdims=True)
        log_norm = np.log(np.exp(shifted).sum(axis=-1))
        picked = np.take_along_axis(shifted, np.where(keep, t, 0)[..., None], axis=-1)[..., 0]
        self.total += float(np.sum(np.where(keep, log_norm - picked, 0.0)))
        self.count += float(np.sum(keep))

    def mean_nll(self) -> float:
        """Mean negative log-likelihood in nats (NaN if nothing was counted)."""
        return self.total / self.count if self.count else math.nan


@attrs.define(eq=False)
class Perplexity(NegativeLogLikelihood):
    """``exp`` of the mean negative log-likelihood (nats) of the target classes.

    ``prediction`` are logits ``(..., classes)``; ``target`` integer classes ``(...)``.
    """

    name = "perplexity"

    def result(self) -> float:
        """``exp(mean_nll())`` (NaN if nothing was counted, inf past the float range)."""
        if not self.count:
            return math.nan
        nll = self.mean_nll()
        return math.exp(nll) if nll < 709.0 else math.inf  # exp overflows a float beyond ~709.78


@attrs.define(eq=False)
class BitsPerCharacter(NegativeLogLikelihood):
    """Mean negative log-likelihood of the target classes in bits (``nats / ln 2``)."""

    name = "bits_per_character"

    def result(self) -> float:
        """``mean_nll() / ln 2``."""
        return self.mean_nll() / math.log(2.0)


@attrs.define(eq=False)
class MeanSquaredError(Metric):
    """Mean of ``(prediction - target) ** 2`` over every counted element."""

    name = "mse"

    def update(self, prediction: Any, target: Any, mask: Any = None) -> None:
        pred = _float_array(prediction, "prediction")
        tgt = _float_array(target, "target")
        if tgt.shape != pred.shape:
            raise ValueError(
                f"target: expected shape {pred.shape} like prediction, received {tgt.shape}"
            )
        keep = _included(mask, pred.shape)
        diff = np.where(keep, pred - tgt, 0.0)
        self.total += float(np.sum(diff * diff))
        self.count += float(np.sum(keep))


_BY_NAME: dict[str, type[Metric]] = {
    "accuracy": Accuracy,
    "perplexity": Perplexity,
    "bits_per_character": BitsPerCharacter,
    "bpc": BitsPerCharacter,
    "mse": MeanSquaredError,
    "nll": NegativeLogLikelihood,
}


def get(metric: Any) -> Metric:
    """A metric object: one given (used as it is) or a new one by name.

    Parameters
    ----------
    metric : Metric or str
        ``"accuracy"``, ``"nll"``, ``"perplexity"``, ``"bits_per_character"`` (or ``"bpc"``),
        ``"mse"``, or
        any object with ``name``, ``reset``, ``update`` and ``result`` (a user's metric).

    Returns
    -------
    Metric
    """
    if isinstance(metric, str):
        cls = _BY_NAME.get(metric)
        if cls is None:
            raise ValueError(
                f"metrics: expected one of {', '.join(sorted(_BY_NAME))} or a Metric, "
                f"received {metric!r}"
            )
        return cls()
    if all(hasattr(metric, m) for m in ("name", "reset", "update", "result")):
        return metric
    raise TypeError(
        "metrics: expected a metric name or an object with name, reset, update and result, "
        f"received {type(metric).__name__}"
    )
