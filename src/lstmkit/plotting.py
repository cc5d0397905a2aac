"""Loss curves for training scripts, drawn with matplotlib when it is installed.

matplotlib is optional (the ``plot`` extra): :func:`plot_losses` returns False and draws
nothing when it is missing, so a script can always call it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["plot_losses"]


def plot_losses(
    losses: Sequence[float],
    path: str | Path,
    *,
    reference: float | None = None,
    reference_label: str = "baseline",
    label: str = "training loss",
    title: str = "",
    xlabel: str = "step",
    ylabel: str = "loss",
    log_scale: bool = False,
) -> bool:
    """Write a loss curve (PNG or any format matplotlib infers from ``path``).

    Parameters
    ----------
    losses : sequence of float
        One loss per training step or chunk.
    path : str or Path
        Output file; its folder is created if needed.
    reference : float, optional
        A horizontal dashed line, e.g. the loss of a trivial predictor.
    reference_label, label, title, xlabel, ylabel : str
        Legend and axis text.
    log_scale : bool, default False
        Logarithmic loss axis.

    Returns
    -------
    bool
        True if the file was written, False if matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(list(losses), lw=0.8, label=label)
    if reference is not None:
        ax.axhline(reference, color="k", ls="--", lw=1, label=reference_label)
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
