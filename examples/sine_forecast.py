"""Forecast a noisy sine wave, then keep forecasting on the model's own predictions.

Training: many short windows of ``sin`` with random phase, frequency and a little noise;
at every step the LSTM predicts the next value (sequence-to-sequence regression, MSE).
Test: read 60 steps of an unseen wave, then run *closed loop* for 60 more steps: each
prediction is fed back in as the next input, with the state carried from step to step.
The script compares the forecast with two baselines: repeating the last seen value,
and predicting zero.

Run: ``python examples/sine_forecast.py`` (options: ``--help``; ``--quick`` for a check)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from lstmkit import Dense, LSTMCell, Recurrent, Sequential, losses
from lstmkit.optimizers import Adam
from lstmkit.training import fit

OUTPUT = Path(__file__).resolve().parent / "output"  # git-ignored


def waves(rng: np.random.Generator, batch: int, length: int, noise: float = 0.02) -> np.ndarray:
    """``(batch, length + 1)`` samples of sines with random phase and period 15 to 30 steps."""
    t = np.arange(length + 1)
    period = rng.uniform(15, 30, size=(batch, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(batch, 1))
    return np.sin(2 * np.pi * t / period + phase) + noise * rng.standard_normal((batch, length + 1))


def forecast(model, history: np.ndarray, horizon: int) -> np.ndarray:
    """Read ``history`` (batch, T), then predict ``horizon`` steps feeding predictions back in."""
    y, state = model(history[:, :, None], return_state=True)
    nxt = y[:, -1:]  # (batch, 1, 1): prediction of the first unseen value
    out = []
    for _ in range(horizon):
        out.append(nxt[:, 0, 0])
        nxt, state = model(nxt, state, return_state=True)
    return np.stack(out, axis=1)


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=1500, help="training steps (default 1500)")
    parser.add_argument(
        "--window", type=int, default=50, help="training window length (default 50)"
    )
    parser.add_argument("--hidden", type=int, default=32, help="LSTM units (default 32)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the data and the initial weights (default 0)"
    )
    parser.add_argument(
        "--plot",
        type=Path,
        default=OUTPUT / "sine_forecast.png",
        help="where to save the loss curve and a forecast (needs matplotlib; "
        "default examples/output/)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="30 steps only, to check that the script runs (the numbers mean nothing)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.steps = 30

    rng = np.random.default_rng(args.seed)
    model = Sequential(Recurrent(LSTMCell(1, args.hidden, rng=rng)), Dense(args.hidden, 1, rng=rng))

    def batch(step: int) -> tuple[np.ndarray, np.ndarray]:
        w = waves(rng, 32, args.window)
        return w[:, :-1, None], w[:, 1:, None]  # input x_t, target x_{t+1}

    print(f"sine forecast: {model.num_parameters():,} parameters, windows of {args.window} steps")
    start = time.perf_counter()
    history = fit(
        model,
        losses.mean_squared_error,
        Adam(model.parameters(), lr=0.01),
        batch,
        steps=args.steps,
        clip_norm=1.0,
        stream=sys.stdout,
    )
    print(f"trained in {time.perf_counter() - start:.0f} s")

    seen, horizon = 60, 60
    test = waves(np.random.default_rng(args.seed + 1), 200, seen + horizon - 1, noise=0.0)
    pred = forecast(model, test[:, :seen], horizon)
    truth = test[:, seen:]
    mse = float(np.mean((pred - truth) ** 2))
    last_value = float(np.mean((test[:, seen - 1 : seen] - truth) ** 2))
    zero = float(np.mean(truth**2))
    print(f"closed-loop forecast of {horizon} steps, 200 unseen waves:")
    print(
        f"  repeat last value MSE {last_value:.4f}   predict zero MSE {zero:.4f}   LSTM MSE {mse:.4f}"
    )
    for k in (10, 30, 60):
        print(f"  MSE of step {k:2d} ahead: {np.mean((pred[:, k - 1] - truth[:, k - 1]) ** 2):.4f}")
    if _plot(history.losses, test[0], pred[0], seen, args.plot):
        print(f"loss curve and forecast saved to {args.plot}")
    else:
        print('no plot: matplotlib is not installed (pip install "lstmkit[plot]")')
    baseline_name, best_baseline = min(
        [("repeating the last value", last_value), ("predicting zero", zero)], key=lambda b: b[1]
    )
    verdict = (
        f"{best_baseline / mse:.1f} times lower than {baseline_name} ({best_baseline:.4f}): "
        "it continues the wave from its own predictions"
        if mse < best_baseline / 2
        else f"not half of {baseline_name}'s {best_baseline:.4f}: it has not learned the wave"
    )
    print(
        f"summary: after {args.steps} steps the LSTM's {horizon}-step closed-loop forecast MSE "
        f"is {mse:.4f}, {verdict}"
    )
    return mse


def _plot(losses_: list[float], wave: np.ndarray, pred: np.ndarray, seen: int, path: Path) -> bool:
    """Loss curve and one forecast; False (and nothing drawn) if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    a.plot(losses_, lw=0.8)
    a.set_yscale("log")
    a.set_xlabel("step")
    a.set_ylabel("training MSE")
    a.set_title("Loss")
    b.plot(np.arange(len(wave)), wave, "k-", lw=1, label="true wave")
    b.plot(np.arange(seen, seen + len(pred)), pred, "r--", lw=1.5, label="closed-loop forecast")
    b.axvline(seen - 0.5, color="gray", lw=0.8)
    b.set_xlabel("step")
    b.set_title("Forecast")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


if __name__ == "__main__":
    main()
