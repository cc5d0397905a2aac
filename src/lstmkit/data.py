"""Batches for training: what :func:`lstmkit.training.fit` accepts, and arrays cut into batches.

A batch is a tuple ``(x, target)``, ``(x, target, lengths)``, ``(x, target, lengths, mask)``
or a dict with those keys (and optionally ``initial_state``). A dataset is anything that gives
batches each time it is iterated (a list of batches, :class:`ArrayBatches`, an object with
``__iter__``); :class:`ArrayBatches` cuts whole arrays into batches, reshuffled every epoch
from an explicit random generator.

Examples
--------
>>> import numpy as np
>>> from lstmkit.data import ArrayBatches
>>> x, y = np.arange(10.0).reshape(5, 2, 1), np.arange(5.0).reshape(5, 1)
>>> data = ArrayBatches(x, y, batch_size=2, shuffle=True, rng=0)
>>> len(data), [batch["x"].shape[0] for batch in data]
(3, [2, 2, 1])
>>> sorted(float(v) for batch in data for v in batch["target"].ravel())  # every row, once
[0.0, 1.0, 2.0, 3.0, 4.0]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit.initializers import as_rng

__all__ = ["BATCH_KEYS", "ArrayBatches", "as_dataset", "epoch_batches", "unpack_batch"]

Array = NDArray[Any]

BATCH_KEYS = ("x", "target", "lengths", "mask", "initial_state")


def unpack_batch(batch: Any, argument: str = "batches") -> dict[str, Any]:
    """One batch as a dict with keys from :data:`BATCH_KEYS` (``x`` and ``target`` required)."""
    if isinstance(batch, dict):
        unknown = set(batch) - set(BATCH_KEYS)
        if unknown or "x" not in batch or "target" not in batch:
            raise ValueError(
                f"{argument}: expected dicts with keys x, target and optionally lengths, mask, "
                f"initial_state; received keys {sorted(batch)}"
            )
        return dict(batch)
    if isinstance(batch, (tuple, list)) and 2 <= len(batch) <= 4:
        return dict(zip(BATCH_KEYS[:4], batch))
    raise TypeError(
        f"{argument}: expected (x, target[, lengths[, mask]]) tuples or dicts, "
        f"received {type(batch).__name__}"
    )


def _batch_size(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"batch_size: expected an integer >= 1, received {value!r}")
    return int(value)


def _rows(value: Any, argument: str) -> Array | None:
    if value is None:
        return None
    arr = np.asarray(value)
    if arr.ndim < 1:
        raise ValueError(f"{argument}: expected an array with one row per sequence, received {arr}")
    return arr


@attrs.define(eq=False)
class ArrayBatches:
    """Whole arrays cut into batches along the first axis; iterate once per epoch.

    Parameters
    ----------
    x : ndarray, shape (n, time, features)
    target : ndarray, shape (n, ...)
    lengths : array of int, shape (n,), optional
    mask : ndarray of bool, shape (n, ...), optional
    batch_size : int, optional
        Rows per batch (the last batch may be smaller); all ``n`` rows when None.
    shuffle : bool, default False
        Draw a new order of the rows at every iteration.
    rng : numpy.random.Generator or int or None
        Source of the order (NumPy's global state is never used).
    """

    x: Array = attrs.field(converter=np.asarray)
    target: Array = attrs.field(converter=np.asarray)
    lengths: Array | None = attrs.field(default=None)
    mask: Array | None = attrs.field(default=None)
    batch_size: int | None = attrs.field(default=None, kw_only=True, converter=_batch_size)
    shuffle: bool = attrs.field(default=False, kw_only=True)
    rng: np.random.Generator = attrs.field(default=None, kw_only=True, converter=as_rng)

    def __attrs_post_init__(self) -> None:
        self.lengths = _rows(self.lengths, "lengths")
        self.mask = _rows(self.mask, "mask")
        if self.x.ndim < 1:
            raise ValueError(f"x: expected an array with one row per sequence, received {self.x}")
        n = self.x.shape[0]
        for name in ("target", "lengths", "mask"):
            value = getattr(self, name)
            if value is not None and (value.ndim < 1 or value.shape[0] != n):
                raise ValueError(f"{name}: expected {n} rows like x, received shape {value.shape}")
        if not isinstance(self.shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle: expected True or False, received {self.shuffle!r}")

    def __len__(self) -> int:
        n = self.x.shape[0]
        size = self.batch_size or max(n, 1)
        return -(-n // size)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        n = self.x.shape[0]
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        size = self.batch_size or max(n, 1)
        for start in range(0, n, size):
            rows = order[start : start + size]
            batch = {"x": self.x[rows], "target": self.target[rows]}
            if self.lengths is not None:
                batch["lengths"] = self.lengths[rows]
            if self.mask is not None:
                batch["mask"] = self.mask[rows]
            yield batch


def _is_arrays(data: Any) -> bool:
    if isinstance(data, dict):
        return isinstance(data.get("x"), np.ndarray)
    return isinstance(data, (tuple, list)) and len(data) > 0 and isinstance(data[0], np.ndarray)


def as_dataset(
    data: Any,
    *,
    batch_size: int | None = None,
    shuffle: bool = False,
    rng: Any = None,
    argument: str = "batches",
) -> Any:
    """``data`` as something that gives batches every time it is iterated.

    Parameters
    ----------
    data : iterable of batches, ArrayBatches, or arrays
        Arrays are a tuple ``(x, target[, lengths[, mask]])`` or a dict with those keys whose
        ``x`` is a NumPy array; they become :class:`ArrayBatches` (one batch of every row when
        ``batch_size`` is None).
    batch_size, shuffle, rng
        For arrays only, as in :class:`ArrayBatches`.

    Returns
    -------
    iterable
    """
    if _is_arrays(data):
        b = unpack_batch(data, argument)
        if b.get("initial_state") is not None:
            raise ValueError(f"{argument}: initial_state is not cut into batches; leave it out")
        return ArrayBatches(
            b["x"],
            b["target"],
            b.get("lengths"),
            b.get("mask"),
            batch_size=batch_size,
            shuffle=shuffle,
            rng=rng,
        )
    if batch_size is not None or shuffle:
        raise ValueError(
            f"batch_size, shuffle: cut arrays into batches; {argument} is already a sequence of "
            "batches (pass arrays as a tuple (x, target[, lengths[, mask]]), or an ArrayBatches)"
        )
    if not hasattr(data, "__iter__"):
        raise TypeError(
            f"{argument}: expected batches (a list, an ArrayBatches, an iterable) or arrays, "
            f"received {type(data).__name__}"
        )
    return data


def _count(value: Any, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{argument}: expected an integer >= 1, received {value!r}")
    return int(value)


def epoch_batches(
    batches: Any,
    *,
    epochs: int,
    steps: int | None = None,
    batch_size: int | None = None,
    shuffle: bool = False,
    rng: Any = None,
) -> tuple[Callable[[int], Iterable[Any]], int | None]:
    """The batches of each epoch, for every form :func:`lstmkit.training.fit` accepts.

    Parameters
    ----------
    batches : iterable, arrays or callable
        A dataset or arrays (see :func:`as_dataset`), or a function ``step -> batch``.
    epochs : int
        Number of epochs (>= 1); a one-shot iterator is refused for more than one.
    steps : int, optional
        Steps per epoch; required for a function, which is called with the step number
        counted over the whole run.
    batch_size, shuffle, rng
        For arrays, as in :class:`ArrayBatches`.

    Returns
    -------
    batches_of : callable
        ``batches_of(epoch)`` gives that epoch's batches.
    steps : int or None
        Steps per epoch if known (``steps``, else ``len`` of the dataset).
    """
    epochs = _count(epochs, "epochs")
    per_epoch = None if steps is None else _count(steps, "steps")
    if callable(batches):
        if per_epoch is None:
            raise ValueError("steps: required when batches is a function of the step number")
        if batch_size is not None or shuffle:
            raise ValueError("batch_size, shuffle: cut arrays; batches is a function of the step")
        n = per_epoch
        return (lambda epoch: (batches(epoch * n + k) for k in range(n))), n
    data = as_dataset(batches, batch_size=batch_size, shuffle=shuffle, rng=rng)
    if epochs > 1 and iter(data) is data:
        raise ValueError(
            f"batches: a one-shot iterator (such as a generator) gives its batches once, but "
            f"epochs={epochs} reads them every epoch; pass a list, an ArrayBatches or an object "
            "whose __iter__ starts again"
        )
    if per_epoch is None and hasattr(data, "__len__"):
        per_epoch = len(data)
    return (lambda epoch: data), per_epoch
