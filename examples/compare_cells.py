"""Train four cells on the same task with the same seed and compare them.

The task is the adding problem (Hochreiter and Schmidhuber 1997): each step
carries a random value and a 0/1 marker; exactly two steps are marked and the
target is the sum of their values, read from the last output. The baseline is
the best answer that ignores the inputs: the mean of the training targets,
scored on the same held-out sequences as the cells.

Every model is ``Recurrent(cell)`` followed by a linear read-out of the last
hidden state, trained with Adam on the same batches and scored on the same
held-out sequences after every epoch.

Run: ``python examples/compare_cells.py`` (options: ``--help``; ``--quick`` for a check)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from lstmkit import CoupledLSTMCell, GRUCell, LSTMCell, Parameter, Recurrent
from lstmkit.optimizers import Adam
from lstmkit.training import ProgressBar

OUTPUT = Path(__file__).resolve().parent / "output"  # git-ignored


def adding_batch(rng: np.random.Generator, batch: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (batch, steps, 2) and targets (batch, 1) of the adding problem."""
    values = rng.random((batch, steps))
    marks = np.zeros((batch, steps))
    for row in range(batch):
        marks[row, rng.choice(steps, size=2, replace=False)] = 1.0
    x = np.stack([values, marks], axis=-1)
    return x, (values * marks).sum(axis=1, keepdims=True)


def train(
    cell,
    data: list[tuple[np.ndarray, np.ndarray]],
    test: tuple[np.ndarray, np.ndarray],
    epochs: int,
    lr: float,
    seed: int,
    bar: ProgressBar,
) -> tuple[list[float], list[float], int, float]:
    """Train ``cell`` plus a linear read-out.

    Returns the mean training loss of each epoch, the test MSE after each epoch, the number of
    parameters and the mean seconds per epoch.
    """
    rnn = Recurrent(cell)
    rng = np.random.default_rng(seed)
    H = cell.output_size
    w_out = Parameter(rng.normal(scale=1 / np.sqrt(H), size=(H, 1)))
    b_out = Parameter(np.zeros(1))
    params = {**rnn.named_parameters(), "out.W": w_out, "out.b": b_out}
    opt = Adam(params, lr=lr)

    def predict(x: np.ndarray) -> np.ndarray:
        y, _ = rnn(x)
        return y[:, -1] @ w_out.value + b_out.value

    seconds, train_losses, test_losses = [], [], []
    for _ in range(epochs):
        start = time.perf_counter()
        batch_losses = []
        for x, target in data:
            opt.zero_grad()
            y, _, cache = rnn.forward(x)
            last = y[:, -1]
            pred = last @ w_out.value + b_out.value
            diff = pred - target
            batch_losses.append(float(np.mean(diff**2)))
            d_pred = 2 * diff / diff.size
            w_out.grad += last.T @ d_pred
            b_out.grad += d_pred.sum(axis=0)
            dy = np.zeros_like(y)
            dy[:, -1] = d_pred @ w_out.value.T
            rnn.backward(cache, dy)
            opt.step()
            bar.update(batch_losses[-1])
        seconds.append(time.perf_counter() - start)
        train_losses.append(float(np.mean(batch_losses)))
        test_losses.append(float(np.mean((predict(test[0]) - test[1]) ** 2)))
    n_params = sum(p.size for p in params.values())
    return train_losses, test_losses, n_params, float(np.mean(seconds))


def plot(curves: dict[str, list[float]], baseline: float, path: Path) -> bool:
    """Test MSE per epoch of each cell, with the baseline; False if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, losses in curves.items():
        ax.plot(np.arange(1, len(losses) + 1), losses, marker=".", lw=1, label=name)
    ax.axhline(baseline, color="k", ls="--", lw=1, label="predict the mean")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("test MSE")
    ax.set_title("Four cells on the adding problem")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=20, help="passes over the data (default 20)")
    parser.add_argument("--steps", type=int, default=20, help="sequence length (default 20)")
    parser.add_argument("--hidden", type=int, default=16, help="units of each cell (default 16)")
    parser.add_argument(
        "--batches", type=int, default=24, help="training batches of 32 sequences (default 24)"
    )
    parser.add_argument("--lr", type=float, default=0.01, help="Adam learning rate (default 0.01)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the data and the initial weights (default 0)"
    )
    parser.add_argument(
        "--plot",
        type=Path,
        default=OUTPUT / "compare_cells.png",
        help="where to save the test-error curves (needs matplotlib; default examples/output/)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2 epochs of 4 batches, to check that the script runs (the numbers mean nothing)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.batches = 2, 4

    data_rng = np.random.default_rng(args.seed)
    data = [adding_batch(data_rng, 32, args.steps) for _ in range(args.batches)]
    test = adding_batch(np.random.default_rng(args.seed + 1), 1000, args.steps)
    train_mean = float(np.mean([target.mean() for _, target in data]))
    baseline = float(np.mean((train_mean - test[1]) ** 2))
    H = args.hidden
    cells = {
        "LSTM": lambda: LSTMCell(2, H, rng=args.seed),
        "LSTM + peepholes": lambda: LSTMCell(2, H, peephole=True, rng=args.seed),
        "coupled LSTM": lambda: CoupledLSTMCell(2, H, rng=args.seed),
        "GRU": lambda: GRUCell(2, H, rng=args.seed),
    }
    print(
        f"adding problem: T={args.steps}, hidden={H}, {len(data)} batches of 32, "
        f"{args.epochs} epochs, 1000 held-out sequences"
    )
    print(f"baseline (predict the training mean {train_mean:.3f}): test MSE {baseline:.4f}")
    results = {}
    for name, build in cells.items():
        bar = ProgressBar(args.epochs * len(data), desc=f"{name:<16}", stream=sys.stdout)
        results[name] = train(build(), data, test, args.epochs, args.lr, args.seed, bar)
        bar.close()

    print(f"\n{'cell':<18} {'train loss':>10} {'test MSE':>9} {'parameters':>11} {'s / epoch':>10}")
    for name, (train_losses, test_losses, n, sec) in results.items():
        print(f"{name:<18} {train_losses[-1]:>10.4f} {test_losses[-1]:>9.4f} {n:>11,} {sec:>10.3f}")
    curves = {name: result[1] for name, result in results.items()}
    if plot(curves, baseline, args.plot):
        print(f"test-error curves saved to {args.plot}")
    else:
        print('no plot: matplotlib is not installed (pip install "lstmkit[plot]")')
    final = {name: losses[-1] for name, losses in curves.items()}
    best, worst = min(final, key=final.get), max(final, key=final.get)
    beat = sum(mse < baseline for mse in final.values())
    print(
        f"summary: {beat} of {len(final)} cells beat the baseline's test MSE {baseline:.4f}; "
        f"lowest {best} {final[best]:.4f}, highest {worst} {final[worst]:.4f} "
        f"after {args.epochs} epochs with one seed"
    )
    return final


if __name__ == "__main__":
    main()
