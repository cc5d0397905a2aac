"""The adding problem (Hochreiter & Schmidhuber 1997): can an LSTM remember two numbers
across 100 time steps?

Each input sequence has two channels. The first holds random numbers in [0, 1); the
second is 0 everywhere except at two marked steps, one in each half of the sequence. The
target is the sum of the two marked numbers. A network that cannot carry information
across the whole sequence can do no better than predicting the mean, 1.0, whose mean
squared error is 1/6 = 0.167. The LSTM here gets well below that in about a minute.

Run: ``python examples/adding_problem.py`` (options: ``--help``; ``--quick`` for a check)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from lstmkit import Dense, LSTMCell, Recurrent, Sequential, losses
from lstmkit.layers import LastStep
from lstmkit.optimizers import Adam
from lstmkit.plotting import plot_losses
from lstmkit.training import ProgressBar, train_step

OUTPUT = Path(__file__).resolve().parent / "output"  # git-ignored


def adding_batch(
    rng: np.random.Generator, batch: int, length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``(batch, length, 2)`` and targets ``(batch, 1)``."""
    values = rng.random((batch, length))
    first = rng.integers(0, length // 2, size=batch)
    second = rng.integers(length // 2, length, size=batch)
    markers = np.zeros((batch, length))
    rows = np.arange(batch)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1)
    y = (values[rows, first] + values[rows, second])[:, None]
    return x, y


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--length", type=int, default=100, help="sequence length (default 100)")
    parser.add_argument("--steps", type=int, default=1000, help="training steps (default 1000)")
    parser.add_argument("--hidden", type=int, default=32, help="LSTM units (default 32)")
    parser.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--lr", type=float, default=0.01, help="Adam learning rate (default 0.01)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the data and the initial weights (default 0)"
    )
    parser.add_argument(
        "--plot",
        type=Path,
        default=OUTPUT / "adding_problem.png",
        help="where to save the loss curve (needs matplotlib; default examples/output/)",
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
    dtype = np.float32  # half the memory traffic of float64; plenty for this task
    model = Sequential(
        Recurrent(LSTMCell(2, args.hidden, dtype=dtype, rng=rng)),
        LastStep(),  # sequence-to-one: the output at the last step
        Dense(args.hidden, 1, dtype=dtype, rng=rng),
    )
    optimizer = Adam(model.parameters(), lr=args.lr)
    x_test, y_test = adding_batch(np.random.default_rng(args.seed + 1), 1000, args.length)
    baseline = losses.mean_squared_error(np.ones_like(y_test), y_test)[0]

    print(
        f"adding problem: sequences of {args.length} steps, {model.num_parameters():,} parameters"
    )
    print(f"baseline (always predict 1.0): test MSE {baseline:.4f}")
    start = time.perf_counter()
    bar = ProgressBar(args.steps, desc="train", stream=sys.stdout)
    history = []
    for step in range(args.steps):
        x, y = adding_batch(rng, args.batch, args.length)
        result = train_step(
            model,
            losses.mean_squared_error,
            optimizer,
            x.astype(dtype),
            y.astype(dtype),
            clip_norm=1.0,
            step=step,
        )
        history.append(result.loss)
        bar.update(result.loss)
    bar.close()

    pred = model(x_test.astype(dtype)).astype(np.float64)
    test_mse = losses.mean_squared_error(pred, y_test)[0]
    print(f"trained in {time.perf_counter() - start:.0f} s")
    print(f"baseline test MSE {baseline:.4f}  ->  LSTM test MSE {test_mse:.4f}")
    print("a few test sequences (the two marked numbers, their sum, the prediction):")
    for k in range(5):
        marked = x_test[k, x_test[k, :, 1] == 1, 0]
        print(
            f"  {marked[0]:.3f} + {marked[1]:.3f} = {y_test[k, 0]:.3f}   predicted {pred[k, 0]:.3f}"
        )
    if plot_losses(
        history,
        args.plot,
        reference=baseline,
        reference_label="predict 1.0 (test MSE)",
        label="training batch MSE",
        title="Adding problem",
        ylabel="MSE",
        log_scale=True,
    ):
        print(f"loss curve saved to {args.plot}")
    else:
        print('no plot: matplotlib is not installed (pip install "lstmkit[plot]")')
    learned = (
        f"{baseline / test_mse:.0f} times lower: it carries the two marked numbers across "
        f"{args.length} steps"
        if test_mse < baseline / 10
        else "not a tenth of it: it has not learned the task"
    )
    print(
        f"summary: after {args.steps} steps the LSTM's test MSE is {test_mse:.4f} against "
        f"{baseline:.4f} for always answering 1.0, {learned}"
    )
    return test_mse


if __name__ == "__main__":
    main()
