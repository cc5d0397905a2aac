"""Predict the next frame of squares moving across a small image, with a convolutional LSTM.

Each sequence is a few 12x12 frames of one bright 3x3 square moving at a constant velocity (one
pixel per frame in x, y or both, bouncing off the borders), generated in code: a small
Moving-MNIST-like task. At every step the model reads a frame and predicts the next one:
``ConvLSTMCell`` (3x3 convolutions, 8 filters) followed by a ``Dense`` layer applied to every
pixel (a 1x1 convolution) with a sigmoid, trained with MSE.

The baseline is to copy the last frame. Both are scored from the second prediction on (after two
frames a model can know the velocity) on unseen sequences.

Run: ``python examples/moving_squares.py`` (options: ``--help``; ``--quick`` for a check)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from lstmkit import ConvLSTMCell, Dense, Recurrent, Sequential, losses
from lstmkit.optimizers import Adam
from lstmkit.training import ProgressBar, train_step

OUTPUT = Path(__file__).resolve().parent / "output"  # git-ignored
SIZE, SQUARE = 12, 3


def moving_squares(rng: np.random.Generator, batch: int, frames: int) -> np.ndarray:
    """``(batch, frames, SIZE, SIZE, 1)`` frames of one square each, values 0 and 1."""
    out = np.zeros((batch, frames, SIZE, SIZE, 1))
    top = SIZE - SQUARE
    for b in range(batch):
        pos = rng.integers(0, top + 1, size=2)
        vel = np.zeros(2, int)
        while not vel.any():
            vel = rng.integers(-1, 2, size=2)
        for t in range(frames):
            r, c = pos
            out[b, t, r : r + SQUARE, c : c + SQUARE, 0] = 1.0
            for axis in range(2):  # bounce off the borders
                if not 0 <= pos[axis] + vel[axis] <= top:
                    vel[axis] = -vel[axis]
            pos = pos + vel
    return out


def main(argv: list[str] | None = None) -> tuple[float, float]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=800, help="training steps (default 800)")
    parser.add_argument("--frames", type=int, default=8, help="frames per sequence (default 8)")
    parser.add_argument("--filters", type=int, default=8, help="ConvLSTM filters (default 8)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the data and the initial weights (default 0)"
    )
    parser.add_argument(
        "--plot",
        type=Path,
        default=OUTPUT / "moving_squares.png",
        help="where to save the loss curve and predicted frames (needs matplotlib; "
        "default examples/output/)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="20 steps only, to check that the script runs (the numbers mean nothing)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.steps = 20

    rng = np.random.default_rng(args.seed)
    F = args.filters
    model = Sequential(
        Recurrent(ConvLSTMCell((SIZE, SIZE, 1), F, 3, rng=rng)),
        Dense(F, 1, activation="sigmoid", rng=rng),  # per pixel: a 1x1 convolution
    )

    print(
        f"moving squares: {model.num_parameters():,} parameters, {args.frames} frames per sequence"
    )
    optimizer = Adam(model.parameters(), lr=0.01)
    start = time.perf_counter()
    # ProgressBar rather than fit's bar: fit shows tqdm when it is installed, which writes a
    # line per refresh into a log; this bar writes one every 10 % of the way there.
    bar = ProgressBar(args.steps, desc="train", stream=sys.stdout)
    history = []
    for step in range(args.steps):
        seq = moving_squares(rng, 16, args.frames + 1)
        # frame t in, frame t+1 as the target
        result = train_step(
            model,
            losses.mean_squared_error,
            optimizer,
            seq[:, :-1],
            seq[:, 1:],
            clip_norm=1.0,
            step=step,
        )
        history.append(result.loss)
        bar.update(result.loss)
    bar.close()
    print(f"trained in {time.perf_counter() - start:.0f} s")

    test = moving_squares(np.random.default_rng(args.seed + 1), 200, args.frames + 1)
    pred = model(test[:, :-1])
    truth = test[:, 2:]  # scored from the second prediction on
    mse = float(np.mean((pred[:, 1:] - truth) ** 2))
    copy_last = float(np.mean((test[:, 1:-1] - truth) ** 2))
    print(
        f"next-frame MSE on 200 unseen sequences: copy last frame {copy_last:.4f} -> ConvLSTM {mse:.4f}"
    )
    if _plot(history, copy_last, test[0], pred[0], args.plot):
        print(f"loss curve and predicted frames saved to {args.plot}")
    else:
        print('no plot: matplotlib is not installed (pip install "lstmkit[plot]")')
    verdict = (
        f"{copy_last / mse:.1f} times lower: it has learned where the square moves next"
        if mse < copy_last / 2
        else "not half of it: it has not learned the motion"
    )
    print(
        f"summary: after {args.steps} steps the ConvLSTM's next-frame MSE on 200 unseen "
        f"sequences is {mse:.4f} against {copy_last:.4f} for copying the last frame, {verdict}"
    )
    return copy_last, mse


def _plot(
    losses_: list[float], copy_last: float, frames: np.ndarray, pred: np.ndarray, path: Path
) -> bool:
    """Loss curve and one sequence's predictions; False (and nothing drawn) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    shown = min(6, len(pred))
    fig = plt.figure(figsize=(2 + 1.6 * shown, 4.2))
    grid = fig.add_gridspec(2, shown + 2)
    ax = fig.add_subplot(grid[:, :2])
    ax.plot(losses_, lw=0.8, label="training batch MSE")
    ax.axhline(copy_last, color="k", ls="--", lw=1, label="copy last frame (test)")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title("Loss")
    ax.legend(fontsize=8)
    for t in range(shown):
        for row, (image, label) in enumerate(((frames[t + 1], "true"), (pred[t], "predicted"))):
            a = fig.add_subplot(grid[row, t + 2])
            a.imshow(image[..., 0], cmap="gray", vmin=0, vmax=1)
            a.set_xticks([])
            a.set_yticks([])
            a.set_title(f"{label} t={t + 1}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


if __name__ == "__main__":
    main()
