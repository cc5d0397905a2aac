"""Progress with ``tqdm`` when it is installed: :func:`tqdm_factory` and :class:`TqdmBar`.

``tqdm.auto`` picks the notebook widget in Jupyter and a text bar elsewhere. Without tqdm
(``pip install lstmkit[progress]`` adds it), :func:`lstmkit.training.fit` uses its own
:class:`~lstmkit.training.ProgressBar`; both show the same running loss.
"""

from __future__ import annotations

import math
from typing import Any, TextIO

__all__ = ["TqdmBar", "tqdm_factory"]


def tqdm_factory() -> Any | None:
    """``tqdm.auto.tqdm`` if tqdm can be imported, else None."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


class TqdmBar:
    """A tqdm bar with the same interface as :class:`~lstmkit.training.ProgressBar`.

    Parameters
    ----------
    factory : callable
        ``tqdm.auto.tqdm`` (from :func:`tqdm_factory`).
    total : int or None
        Number of steps, None if unknown.
    desc : str
    stream : text stream, optional
        Where the text bar goes (tqdm's default, stderr, when None).
    smoothing : float, default 0.05
        Weight of the newest loss in the running (bias-corrected exponential) average.
    """

    def __init__(
        self,
        factory: Any,
        total: int | None,
        *,
        desc: str = "train",
        stream: TextIO | None = None,
        smoothing: float = 0.05,
    ) -> None:
        self._bar = factory(total=total, desc=desc, file=stream, leave=True, dynamic_ncols=True)
        self.smoothing = float(smoothing)
        self._avg = 0.0
        self._weight = 0.0

    @property
    def running_loss(self) -> float | None:
        """Bias-corrected exponential average of the losses seen so far."""
        return self._avg / self._weight if self._weight else None

    def update(self, loss: float | None = None, n: int = 1, **extra: float) -> None:
        """Advance by ``n`` steps, folding ``loss`` into the running average."""
        if loss is not None and math.isfinite(loss):
            s = self.smoothing
            self._avg = (1 - s) * self._avg + s * loss
            self._weight = (1 - s) * self._weight + s
        parts = [] if self.running_loss is None else [f"loss {self.running_loss:.4f}"]
        parts.extend(f"{k} {v:.4g}" for k, v in extra.items())
        self._bar.set_postfix_str("  ".join(parts), refresh=False)
        self._bar.update(n)

    def close(self) -> None:
        """Finish the bar."""
        self._bar.close()
