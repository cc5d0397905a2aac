"""Variable-length batches: the one ``lengths`` rule, and the plan a call is run by.

Every entry point that takes ``lengths`` (the runners, :class:`~lstmkit.Sequential`,
:class:`~lstmkit.layers.LastStep`, :class:`~lstmkit.layers.MeanPool`,
:func:`lstmkit.losses.mask_from_lengths`) validates it with :func:`check_lengths`, so the same
bad value gets the same error everywhere. The rule: an array (or list) of **integers** (a
boolean or floating-point dtype is refused with ``TypeError``, whole-number floats included),
of shape ``(batch,)``, with ``0 <= lengths <= time``.

A :class:`SequencePlan` holds what a call needs to run a padded batch: the validated lengths,
the longest-first order of the rows, the number of active rows at each step and, built on
first use, the per-sequence time reversal. The outermost container
(:class:`~lstmkit.Stacked`, :class:`~lstmkit.Bidirectional`, :class:`~lstmkit.Sequential`)
builds it once per call and hands it to every layer inside, nested containers included.

Examples
--------
>>> from lstmkit.sequence import check_lengths, plan_sequence
>>> check_lengths([3, 1], batch=2, time=4).tolist()
[3, 1]
>>> check_lengths([3.0, 1.0], batch=2, time=4)
Traceback (most recent call last):
...
TypeError: lengths: expected integers, received dtype float64 (convert with .astype(int))
>>> plan = plan_sequence(2, 4, [1, 3])
>>> plan.order.tolist(), plan.batch_sizes.tolist()
([1, 0], [2, 1, 1, 0])
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit.initializers import as_rng
from lstmkit.protocols import StepContext

__all__ = [
    "MaybeContext",
    "MaybePlan",
    "SequencePlan",
    "check_lengths",
    "plan_for",
    "plan_sequence",
    "step_context",
]

Array = NDArray[Any]


def check_lengths(
    lengths: Any, batch: int | None, time: int, *, argument: str = "lengths"
) -> Array:
    """Validated lengths as ``intp`` of shape ``(batch,)``, each in ``[0, time]``.

    Parameters
    ----------
    lengths : array_like of int
        Valid steps of each sequence. Boolean and floating-point dtypes are refused.
    batch : int or None
        The number of sequences; None accepts any 1-d shape (when the caller cannot know it).
    time : int
        The length of the time axis.
    argument : str
        The name used in error messages.

    Raises
    ------
    TypeError
        ``lengths`` is not an array of integers.
    ValueError
        Wrong shape, a negative value or a value greater than ``time``.
    """
    try:
        arr = np.asarray(lengths)
    except (TypeError, ValueError):
        raise TypeError(
            f"{argument}: expected a 1-d array of integers, received {type(lengths).__name__}"
        ) from None
    if arr.dtype.kind not in "iu":
        if not (arr.size == 0 and isinstance(lengths, (list, tuple))):  # [] for an empty batch
            hint = " (convert with .astype(int))" if arr.dtype.kind == "f" else ""
            raise TypeError(f"{argument}: expected integers, received dtype {arr.dtype}{hint}")
    if arr.ndim != 1 or (batch is not None and arr.shape[0] != batch):
        want = "(batch,)" if batch is None else f"({batch},)"
        raise ValueError(f"{argument}: expected shape {want}, received {arr.shape}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{argument}: expected values >= 0, received minimum {arr.min()}")
    if arr.size and arr.max() > time:
        raise ValueError(
            f"{argument}: expected values <= the time axis length {time}, "
            f"received maximum {arr.max()}"
        )
    return arr.astype(np.intp)


@attrs.define(eq=False)
class SequencePlan:
    """How one call's batch of ``batch`` sequences over ``time`` steps is laid out.

    Attributes
    ----------
    batch, time : int
    lengths : ndarray of intp, shape (batch,), or None
        The validated lengths in the caller's row order; None when none were given.
    order : ndarray or None
        Sorted position -> original row (longest first); None when every row is full length.
    batch_sizes : ndarray or None
        Active rows at each step of the sorted batch; None when every row is full length.
    """

    batch: int
    time: int
    lengths: Array | None
    order: Array | None
    batch_sizes: Array | None
    sorted_lengths: Array | None
    _reverse_index: Array | None = attrs.field(default=None, init=False, repr=False)

    @property
    def inverse(self) -> Array | None:
        """Original row -> sorted position (None when there is no sorting)."""
        return None if self.order is None else np.argsort(self.order)

    def fits(self, batch: int, time: int) -> bool:
        """Whether this plan was made for a ``(batch, time)`` input."""
        return (self.batch, self.time) == (batch, time)

    def time_index(self, reverse: bool) -> Array | None:
        """``(time, batch)`` source step of each processed step of the sorted batch, or None.

        For ``reverse`` each sequence is read from its last valid step to its first and its
        padding stays in place; built on first use and shared by every reversed layer.
        """
        if not reverse:
            return None
        if self._reverse_index is None:
            T, B = self.time, self.batch
            if self.sorted_lengths is None:
                self._reverse_index = np.broadcast_to(np.arange(T - 1, -1, -1)[:, None], (T, B))
            else:
                t = np.arange(T)[:, None]
                L = self.sorted_lengths[None, :]
                self._reverse_index = np.where(t < L, L - 1 - t, t)
        return self._reverse_index


def plan_sequence(
    batch: int, time: int, lengths: Any, *, unbatched: bool = False, argument: str = "lengths"
) -> SequencePlan:
    """Validate ``lengths`` (with :func:`check_lengths`) and lay the batch out for a call."""
    if lengths is None:
        return SequencePlan(batch, time, None, None, None, None)
    if unbatched:
        raise ValueError(
            f"{argument}: only meaningful for batched (batch, time, features) input; "
            "slice an unbatched sequence instead"
        )
    arr = check_lengths(lengths, batch, time, argument=argument)
    if np.all(arr == time):
        return SequencePlan(batch, time, arr, None, None, None)
    order = np.argsort(-arr, kind="stable")
    sorted_lengths = arr[order]
    batch_sizes = (sorted_lengths[None, :] > np.arange(time)[:, None]).sum(axis=1)
    return SequencePlan(batch, time, arr, order, batch_sizes, sorted_lengths)


def plan_for(x: Any, lengths: Any) -> SequencePlan | None:
    """The plan a container builds once for its input ``x``, or None to let its layers decide.

    None when ``x`` is not a batched ``(batch, time, features)`` array: the first layer then
    reports the bad ``x`` (or ``lengths`` given with unbatched input) itself.
    """
    if not isinstance(x, np.ndarray) or x.ndim != 3:
        return None
    return plan_sequence(int(x.shape[0]), int(x.shape[1]), lengths)


#: The last two arguments of every runner's ``_run``: the training context (None for
#: inference) and the plan an outer container built (None: the runner builds its own).
MaybeContext = StepContext | None
MaybePlan = SequencePlan | None


def step_context(training: Any, rng: Any) -> StepContext:
    """The :class:`~lstmkit.protocols.StepContext` of a ``forward(training=, rng=)`` call."""
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"training: expected True or False, received {training!r}")
    return StepContext(training=bool(training), rng=None if rng is None else as_rng(rng))


def run_runner(
    layer: Any,
    x: Any,
    state: Any,
    lengths: Any,
    *,
    context: StepContext | None,
    plan: SequencePlan | None,
) -> tuple[Any, Any, Any]:
    """Run one runner of a container: inference when ``context`` is None, else training.

    lstmkit's runners and a nested :class:`~lstmkit.Sequential` (``_takes_plan``) get the
    container's plan and context; any other runner is called through its public interface.
    Returns ``(y, final, cache or None)``.
    """
    if getattr(layer, "_takes_plan", False):
        return layer._run(x, state, lengths, context=context, plan=plan)
    if context is None:
        y, final = layer(x, state, lengths)
        return y, final, None
    return layer.forward(x, state, lengths, training=context.training, rng=context.rng)
