"""The seed LSTM's usage example, redone with lstmkit.

The seed LSTM is the original single-class NumPy LSTM this project grew from
(described in docs/guides/interop.md, section "The seed LSTM's layout"). Its
example built a cell with ``input_size = 3`` and ``hidden_size = 5``, ran one
step with column vectors, then a sequence of length 4. This script does the
same with lstmkit's components and prints the same shapes. lstmkit uses row
vectors, so one step takes ``x`` of shape ``(batch, input)`` where the seed
LSTM took ``(input, 1)``.

Run: ``python examples/seed_example.py``
"""

import argparse
from pathlib import Path

import numpy as np

from lstmkit import LSTMCell, Recurrent

OUTPUT = Path(__file__).resolve().parent / "output"  # git-ignored


def plot(outputs: np.ndarray, path: Path) -> bool:
    """The hidden state at each step of the sequence; False if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3))
    image = ax.imshow(outputs.T, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(outputs.shape[0]))
    ax.set_yticks(range(outputs.shape[1]))
    ax.set_xlabel("time step")
    ax.set_ylabel("hidden unit")
    ax.set_title("Hidden state h_t over the sequence of 4 (untrained cell)")
    fig.colorbar(image, ax=ax, label="h")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> np.ndarray:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the weights and the inputs (default 0)"
    )
    parser.add_argument(
        "--plot",
        type=Path,
        default=OUTPUT / "seed_example.png",
        help="where to save the hidden states (needs matplotlib; default examples/output/)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="accepted for uniformity with the other examples (this one is already instant)",
    )
    args = parser.parse_args(argv)

    input_size = 3
    hidden_size = 5
    rng = np.random.default_rng(args.seed)
    cell = LSTMCell(input_size, hidden_size, rng=rng)

    # One step (the seed LSTM: x_t of shape (input_size, 1), h_prev and C_prev of shape (hidden_size, 1)).
    x_t = rng.standard_normal((1, input_size))
    state = cell.initial_state(batch_size=1)
    state, h_t = cell.step(state, x_t)
    print("single step - hidden state shape:", h_t.T.shape)  # (5, 1), as the seed LSTM printed

    # A sequence (the seed LSTM: X of shape (seq_len, input_size) -> outputs (seq_len, hidden_size)).
    X = rng.standard_normal((4, input_size))
    outputs, final = Recurrent(cell)(X)
    print("sequence output shape:", outputs.shape)  # (4, 5)
    # The sequence's last output is its final hidden state, and every |h| < 1 (o * tanh(c)).
    assert np.array_equal(outputs[-1], final.h) and np.all(np.abs(outputs) < 1)

    if plot(outputs, args.plot):
        print(f"hidden states saved to {args.plot}")
    else:
        print('no plot: matplotlib is not installed (pip install "lstmkit[plot]")')
    print(
        f"summary: the seed LSTM's example runs on lstmkit's components: one step gives h of shape "
        f"{h_t.T.shape} as a column, a sequence of 4 gives outputs {outputs.shape} whose last row "
        "is the final hidden state (no training: the weights are the initial ones)"
    )
    return outputs


if __name__ == "__main__":
    main()
