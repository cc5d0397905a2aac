"""Train four cells on the same task with the same seed and compare them.

The task is the adding problem (Hochreiter and Schmidhuber 1997): each step
carries a random value and a 0/1 marker; exactly two steps are marked and the
target is the sum of their values, read from the last output. Predicting the
mean (1.0) gives a mean squared error of about 0.167.

Every model is ``Recurrent(cell)`` followed by a linear read-out of the last
hidden state, trained with Adam on the same batches. Run::

    python examples/compare_cells.py [--epochs N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lstmkit import CoupledLSTMCell, GRUCell, LSTMCell, Parameter, Recurrent
from lstmkit.optimizers import Adam


def adding_batch(rng: np.random.Generator, batch: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (batch, steps, 2) and targets (batch, 1) of the adding problem."""
    values = rng.random((batch, steps))
    marks = np.zeros((batch, steps))
    for row in range(batch):
        marks[row, rng.choice(steps, size=2, replace=False)] = 1.0
    x = np.stack([values, marks], axis=-1)
    return x, (values * marks).sum(axis=1, keepdims=True)


def train(cell, data, epochs: int, lr: float, seed: int) -> tuple[float, int, float]:
    """Train ``cell`` plus a linear read-out; return (final loss, parameters, seconds per epoch)."""
    rnn = Recurrent(cell)
    rng = np.random.default_rng(seed)
    H = cell.output_size
    w_out = Parameter(rng.normal(scale=1 / np.sqrt(H), size=(H, 1)))
    b_out = Parameter(np.zeros(1))
    params = {**rnn.named_parameters(), "out.W": w_out, "out.b": b_out}
    opt = Adam(params, lr=lr)
    seconds = []
    loss = float("nan")
    for _ in range(epochs):
        start = time.perf_counter()
        losses = []
        for x, target in data:
            opt.zero_grad()
            y, _, cache = rnn.forward(x)
            last = y[:, -1]
            pred = last @ w_out.value + b_out.value
            diff = pred - target
            losses.append(float(np.mean(diff**2)))
            d_pred = 2 * diff / diff.size
            w_out.grad += last.T @ d_pred
            b_out.grad += d_pred.sum(axis=0)
            dy = np.zeros_like(y)
            dy[:, -1] = d_pred @ w_out.value.T
            rnn.backward(cache, dy)
            opt.step()
        seconds.append(time.perf_counter() - start)
        loss = float(np.mean(losses))
    n_params = sum(p.size for p in params.values())
    return loss, n_params, float(np.mean(seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data_rng = np.random.default_rng(args.seed)
    data = [adding_batch(data_rng, 32, args.steps) for _ in range(24)]
    H = args.hidden
    cells = {
        "LSTM": lambda: LSTMCell(2, H, rng=args.seed),
        "LSTM + peepholes": lambda: LSTMCell(2, H, peephole=True, rng=args.seed),
        "coupled LSTM": lambda: CoupledLSTMCell(2, H, rng=args.seed),
        "GRU": lambda: GRUCell(2, H, rng=args.seed),
    }
    print(
        f"adding problem: T={args.steps}, hidden={H}, {len(data)} batches of 32, {args.epochs} epochs"
    )
    print("baseline (predict the mean): MSE ~ 0.167\n")
    print(f"{'cell':<18} {'final loss':>10} {'parameters':>11} {'s / epoch':>10}")
    for name, build in cells.items():
        loss, n, sec = train(build(), data, args.epochs, lr=1e-2, seed=args.seed)
        print(f"{name:<18} {loss:>10.4f} {n:>11,} {sec:>10.3f}")


if __name__ == "__main__":
    main()
