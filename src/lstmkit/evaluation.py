"""Evaluating a model on batches, and the loss mask a padded batch implies.

* :func:`loss_mask`: for *sequence* outputs ``(batch, time, ...)`` of a batch with ``lengths``,
  the mask ``t < lengths[b]``, so padding never counts in a loss, its gradient or a metric.
* :func:`evaluate`: the mean loss and metrics of a model over batches, in inference mode.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lstmkit import metrics as metrics_module
from lstmkit.data import unpack_batch
from lstmkit.layers import Sequential
from lstmkit.losses import _check_mask, mask_from_lengths

__all__ = ["evaluate", "loss_mask", "predict"]

Array = NDArray[Any]


def loss_mask(prediction: Any, x: Any, lengths: Any, mask: Any = None) -> Any:
    """The mask to give a loss: ``mask`` if given, else one from ``lengths`` for sequences.

    Parameters
    ----------
    prediction : ndarray
        The model's output. It is a sequence when its first two axes are those of ``x``
        (``(batch, time, ...)``); a pooled output ``(batch, features)`` gets no mask.
    x : ndarray, shape (batch, time, features)
    lengths : array of int, shape (batch,), optional
    mask : ndarray of bool, optional
        Used as it is when given (it says what counts).

    Returns
    -------
    ndarray of bool, shape (batch, time), or None
        ``None`` when there is nothing to mask.

    Examples
    --------
    >>> import numpy as np
    >>> loss_mask(np.zeros((2, 3, 1)), np.zeros((2, 3, 4)), [3, 1]).astype(int).tolist()
    [[1, 1, 1], [1, 0, 0]]
    >>> loss_mask(np.zeros((2, 1)), np.zeros((2, 3, 4)), [3, 1]) is None
    True
    """
    if mask is not None or lengths is None:
        return mask
    x_shape = np.shape(x)
    if not isinstance(prediction, np.ndarray) or len(x_shape) != 3:
        return None
    if prediction.ndim >= 3 and prediction.shape[:2] == x_shape[:2]:
        return mask_from_lengths(lengths, int(x_shape[1]))
    return None


def predict(model: Any, x: Any, initial_state: Any = None, lengths: Any = None) -> Any:
    """The model's output in inference mode: a ``Sequential``'s ``y``, a runner's outputs."""
    if isinstance(model, Sequential):
        return model(x, initial_state, lengths)
    return model(x, initial_state, lengths)[0]


def _entries(prediction: Array, mask: Any) -> int:
    """How many elements of ``prediction`` count: the weight of a batch's mean loss."""
    m = _check_mask(mask, prediction.shape)
    if m is None:
        return int(prediction.size)
    return int(m.sum()) * int(np.prod(prediction.shape[m.ndim :]))


def evaluate(
    model: Any,
    loss_fn: Callable[..., tuple[float, Array]] | None,
    batches: Iterable[Any],
    metrics: Sequence[Any] = (),
    *,
    auto_mask: bool = True,
) -> dict[str, float]:
    """Mean loss and metrics of ``model`` over ``batches``, in inference mode.

    Parameters
    ----------
    model : Sequential or runner
    loss_fn : callable or None
        ``loss_fn(prediction, target[, mask]) -> (loss, gradient)``; None for metrics only.
        Each batch's loss is weighted by the number of elements it was a mean over, so a mean
        loss (as lstmkit's are) comes out as over one big batch.
    batches : iterable
        Batches as in :func:`lstmkit.data.unpack_batch`.
    metrics : sequence of Metric or str
        Reset, then fed every batch (see :mod:`lstmkit.metrics`).
    auto_mask : bool, default True
        Mask the padding of sequence outputs from each batch's ``lengths`` (:func:`loss_mask`).

    Returns
    -------
    dict of str to float
        ``"loss"`` (if ``loss_fn``) and each metric's ``name``.

    Examples
    --------
    >>> import numpy as np
    >>> from lstmkit import Dense, LSTMCell, Sequential, losses
    >>> model = Sequential(LSTMCell(2, 3, rng=0), Dense(3, 4, rng=1))
    >>> x, t = np.ones((2, 5, 2)), np.zeros((2, 5), dtype=int)
    >>> sorted(evaluate(model, losses.softmax_cross_entropy, [(x, t, [5, 2])], ["accuracy"]))
    ['accuracy', 'loss']
    """
    objs = [metrics_module.get(m) for m in metrics]
    for metric in objs:
        metric.reset()
    total, weight = 0.0, 0
    for batch in batches:
        b = unpack_batch(batch, "validation_data")
        y = predict(model, b["x"], b.get("initial_state"), b.get("lengths"))
        mask = b.get("mask")
        if auto_mask:
            mask = loss_mask(y, b["x"], b.get("lengths"), mask)
        if loss_fn is not None:
            loss = loss_fn(y, b["target"]) if mask is None else loss_fn(y, b["target"], mask)
            entries = _entries(np.asarray(y), mask)
            total += float(loss[0]) * entries
            weight += entries
        for metric in objs:
            metric.update(y, b["target"], mask)
    out = {}
    if loss_fn is not None:
        out["loss"] = total / weight if weight else float("nan")
    for metric in objs:
        out[str(metric.name)] = float(metric.result())
    return out
