"""Losses that return their gradient: ``loss, d_prediction = loss_fn(prediction, target)``.

Both losses take an optional ``mask`` over the leading axes (usually
``(batch, time)``): masked entries contribute nothing, and the loss is the
mean over the unmasked ones. :func:`mask_from_lengths` builds that mask from
the ``lengths`` of a variable-length batch.

Examples
--------
>>> import numpy as np
>>> from lstmkit import losses
>>> loss, d = losses.mean_squared_error(np.array([[1.0], [3.0]]), np.array([[0.0], [3.0]]))
>>> loss, d.ravel().tolist()
(0.5, [1.0, 0.0])
>>> logits = np.zeros((2, 3))
>>> loss, d = losses.softmax_cross_entropy(logits, np.array([0, 2]))
>>> round(loss, 6) == round(float(np.log(3)), 6)
True
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit.sequence import check_lengths

__all__ = [
    "MSE",
    "CrossEntropy",
    "mask_from_lengths",
    "mean_squared_error",
    "softmax_cross_entropy",
]

Array = NDArray[Any]


def _float_array(value: Any, argument: str) -> Array:
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{argument}: expected a real numeric array, received dtype {arr.dtype}")
    return arr if arr.dtype.kind == "f" else arr.astype(np.float64)


def _check_mask(mask: Any, lead_shape: tuple[int, ...], argument: str = "mask") -> Array | None:
    """A boolean mask whose shape is a prefix of the prediction's shape."""
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype.kind not in "biuf":
        raise TypeError(f"{argument}: expected booleans or 0/1 numbers, received dtype {m.dtype}")
    if m.ndim == 0 or m.shape != lead_shape[: m.ndim]:
        raise ValueError(
            f"{argument}: expected a shape that is a prefix of {lead_shape} "
            f"(e.g. {lead_shape[:2]}), received {m.shape}"
        )
    if m.dtype.kind != "b":
        if not np.all((m == 0) | (m == 1)):
            raise ValueError(f"{argument}: expected only 0 and 1, received other values")
        m = m.astype(bool)
    return m


def mask_from_lengths(lengths: Any, time: int) -> Array:
    """Boolean mask ``(batch, time)``, true where ``t < lengths[b]``.

    Parameters
    ----------
    lengths : array of int, shape (batch,)
        Checked like every ``lengths`` in lstmkit (:func:`lstmkit.sequence.check_lengths`):
        integers with ``0 <= lengths <= time``.
    time : int

    Returns
    -------
    ndarray of bool, shape (batch, time)
    """
    if isinstance(time, bool) or not isinstance(time, (int, np.integer)):
        raise TypeError(f"time: expected an integer, received {type(time).__name__}")
    if time < 0:
        raise ValueError(f"time: expected a non-negative integer, received {time}")
    arr = check_lengths(lengths, None, int(time))
    return np.arange(int(time))[None, :] < arr[:, None]


def mean_squared_error(prediction: Any, target: Any, mask: Any = None) -> tuple[float, Array]:
    """Mean squared error and its gradient.

    Parameters
    ----------
    prediction : ndarray, shape (batch, ..., features)
    target : ndarray, same shape as ``prediction``
    mask : ndarray of bool, shape a prefix of ``prediction.shape`` (e.g. (batch, time)), optional
        Entries to include; the mean is taken over the included elements.

    Returns
    -------
    loss : float
        ``mean((prediction - target) ** 2)`` over unmasked elements (0.0 if none).
    d_prediction : ndarray, shape like ``prediction``
        Gradient of ``loss``; zero at masked entries.
    """
    pred = _float_array(prediction, "prediction")
    tgt = _float_array(target, "target")
    if tgt.shape != pred.shape:
        raise ValueError(
            f"target: expected shape {pred.shape} like prediction, received {tgt.shape}"
        )
    m = _check_mask(mask, pred.shape)
    diff = pred - tgt.astype(pred.dtype, copy=False)
    if m is None:
        count = diff.size
    else:
        w = m.reshape(m.shape + (1,) * (pred.ndim - m.ndim))
        diff = np.where(w, diff, pred.dtype.type(0))
        count = int(m.sum()) * int(np.prod(pred.shape[m.ndim :]))
    if count == 0:
        return 0.0, np.zeros_like(pred)
    loss = float(np.sum(diff * diff) / count)
    return loss, diff * pred.dtype.type(2.0 / count)


def softmax_cross_entropy(logits: Any, targets: Any, mask: Any = None) -> tuple[float, Array]:
    """Softmax cross-entropy with integer class targets, and its gradient.

    Parameters
    ----------
    logits : ndarray, shape (batch, time, classes) or (batch, classes)
        Unnormalised scores (any leading shape works).
    targets : ndarray of int, shape ``logits.shape[:-1]``
        Class indices in ``[0, classes)``. Masked entries are not checked, so padding
        may use any value (e.g. -1).
    mask : ndarray of bool, shape a prefix of ``logits.shape[:-1]``, optional
        Entries to include; the mean is over included entries.

    Returns
    -------
    loss : float
        Mean negative log-likelihood of the targets (0.0 if everything is masked).
    d_logits : ndarray, shape like ``logits``
        ``(softmax(logits) - onehot(targets)) / count``, zero at masked entries.
    """
    z = _float_array(logits, "logits")
    if z.ndim < 1 or z.shape[-1] < 1:
        raise ValueError(f"logits: expected shape (..., classes), received {z.shape}")
    t = np.asarray(targets)
    if t.dtype.kind not in "iu":
        raise TypeError(f"targets: expected integer class indices, received dtype {t.dtype}")
    if t.shape != z.shape[:-1]:
        raise ValueError(
            f"targets: expected shape {z.shape[:-1]} (logits without the class axis), received {t.shape}"
        )
    m = _check_mask(mask, z.shape[:-1])
    keep = (
        np.ones(t.shape, bool)
        if m is None
        else np.broadcast_to(m.reshape(m.shape + (1,) * (t.ndim - m.ndim)), t.shape)
    )
    classes = z.shape[-1]
    bad = keep & ((t < 0) | (t >= classes))
    if np.any(bad):
        raise ValueError(
            f"targets: expected class indices in [0, {classes}), received {t[bad].ravel()[0]}"
        )
    count = int(keep.sum())
    if count == 0:
        return 0.0, np.zeros_like(z)
    safe_t = np.where(keep, t, 0)
    shifted = z - z.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=-1, keepdims=True)
    log_p = np.take_along_axis(shifted, safe_t[..., None], axis=-1)[..., 0] - np.log(total[..., 0])
    loss = float(-np.sum(np.where(keep, log_p, 0.0)) / count)
    grad = exp / total
    np.put_along_axis(
        grad, safe_t[..., None], np.take_along_axis(grad, safe_t[..., None], -1) - 1, -1
    )
    grad *= (keep[..., None] / count).astype(z.dtype)
    return loss, grad


@attrs.frozen
class MSE:
    """Mean squared error as a callable object: ``loss, grad = MSE()(prediction, target, mask)``."""

    def __call__(self, prediction: Any, target: Any, mask: Any = None) -> tuple[float, Array]:
        return mean_squared_error(prediction, target, mask)


@attrs.frozen
class CrossEntropy:
    """Softmax cross-entropy as a callable object: ``loss, grad = CrossEntropy()(logits, targets)``."""

    def __call__(self, logits: Any, targets: Any, mask: Any = None) -> tuple[float, Array]:
        return softmax_cross_entropy(logits, targets, mask)
