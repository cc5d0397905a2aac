"""What every built-in runner shares: inference and training are one ``_run`` each.

A runner implements ``_run(x, initial_state, lengths, *, context, plan) -> (y, final, cache)``:
``context`` is None for inference (no cache kept) and the call's
:class:`~lstmkit.protocols.StepContext` for training; ``plan`` is the
:class:`~lstmkit.sequence.SequencePlan` an outer container already built (None: build it).
:class:`SequenceRunner` turns that into the public ``runner(x, ...)`` and
``runner.forward(x, ..., training=, rng=)`` of the :class:`~lstmkit.protocols.Runner` protocol.
"""

from __future__ import annotations

from typing import Any

from numpy.typing import NDArray

from lstmkit.module import Module
from lstmkit.sequence import MaybeContext, MaybePlan, step_context

__all__ = ["SequenceRunner"]

Array = NDArray[Any]


class SequenceRunner(Module):
    """Base of :class:`~lstmkit.Recurrent`, :class:`~lstmkit.Stacked` and
    :class:`~lstmkit.Bidirectional`: the public calls, written once."""

    _takes_plan = True  # an outer container passes its plan and context to _run

    def __call__(self, x: Array, initial_state: Any = None, lengths: Any = None) -> Any:
        """Inference: run the sequence and keep no cache.

        Parameters
        ----------
        x : ndarray, shape (batch, time, input_size) or (time, input_size)
        initial_state : state, optional
            The runner's state with arrays of shape (batch, ...) (or unbatched); zeros if None.
        lengths : array of int, shape (batch,), optional
            Valid steps of each sequence, ``0 <= lengths <= time``.

        Returns
        -------
        y : ndarray, shape (batch, time, output_size) or (time, output_size)
            Outputs, zero past each sequence's length.
        final_state : state
            The state at each sequence's last valid step.
        """
        y, final, _ = self._run(x, initial_state, lengths, context=None, plan=None)
        return y, final

    def forward(
        self,
        x: Array,
        initial_state: Any = None,
        lengths: Any = None,
        *,
        training: bool = True,
        rng: Any = None,
    ) -> tuple[Any, Any, Any]:
        """Training forward pass: like calling the runner, plus the cache for ``backward``.

        Parameters
        ----------
        x, initial_state, lengths
            As for calling the runner.
        training : bool, default True
            Reaches every step of every cell (through
            :class:`~lstmkit.protocols.StepContext`): with False, a cell with randomness
            (:class:`~lstmkit.VariationalDropout`, :class:`~lstmkit.Zoneout`, nested at any
            depth) and a stack's dropout apply none, the result is what inference gives, and
            the cache still serves ``backward``.
        rng : numpy.random.Generator or int or None
            Overrides the generators of the wrappers (and a stack's dropout) for this call.

        Returns
        -------
        y, final_state
            As for calling the runner.
        cache
            Pass it to ``backward``, once.
        """
        y, final, cache = self._run(
            x, initial_state, lengths, context=step_context(training, rng), plan=None
        )
        assert cache is not None
        return y, final, cache

    def _run(
        self, x: Any, initial_state: Any, lengths: Any, *, context: MaybeContext, plan: MaybePlan
    ) -> tuple[Any, Any, Any]:
        raise NotImplementedError(f"{type(self).__name__} must define _run")

    def _unused_cache(self, cache: Any, kind: type) -> None:
        """Check ``cache`` is this runner's own ``kind`` from ``forward``, not yet used."""
        if not isinstance(cache, kind) or getattr(cache, "runner", None) is not self:
            raise TypeError(
                f"cache: expected the {kind.__name__} returned by this runner's forward(); "
                f"received {type(cache).__name__}"
            )
        if getattr(cache, "used", False):
            raise ValueError("cache: backward was already run on this cache; run forward again")
