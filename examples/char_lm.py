"""A character-level language model trained with stateful truncated BPTT.

The text is real and needs no download: source files of the Python standard library, read
from the running interpreter (``lstmkit.datasets.python_source_text``; ``textwrap.py`` by
default, so the exact text depends on the Python version, which the script prints). It is cut
into parallel streams, one per batch row. Training walks along the streams in chunks: each chunk
starts from the state the previous chunk ended in (so the model can carry memory across chunk
boundaries), but gradients stop at the boundary (that is the "truncated" in truncated BPTT).
Afterwards the model writes new text one character at a time, feeding each sampled character
back in and carrying its state from step to step.

Run: ``python examples/char_lm.py`` (options: ``--help``; ``--quick`` for a check)
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

from lstmkit import Dense, LSTMCell, Recurrent, Sequential, losses
from lstmkit.datasets import python_source_text
from lstmkit.optimizers import Adam
from lstmkit.plotting import plot_losses
from lstmkit.training import ProgressBar, tbptt

OUTPUT = Path(__file__).resolve().parent / "output"  # git-ignored
QUICK_CHARS = 4000  # the text --quick trains on


def sample(model, vocab, prompt: str, length: int, rng, temperature: float = 0.7) -> str:
    """Generate ``length`` characters after ``prompt``, one step at a time with carried state."""
    index = {ch: k for k, ch in enumerate(vocab)}
    eye = np.eye(len(vocab), dtype=model.dtype)
    state = None
    # Read the prompt: one call over the whole prompt leaves the state after its last character.
    logits, state = model(eye[[index[c] for c in prompt]][None], state, return_state=True)
    out = []
    for _ in range(length):
        z = logits[0, -1].astype(np.float64) / temperature
        p = np.exp(z - z.max())
        k = int(rng.choice(len(vocab), p=p / p.sum()))
        out.append(vocab[k])
        logits, state = model(eye[[k]][None], state, return_state=True)
    return prompt + "".join(out)


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=25, help="passes over the text (default 25)")
    parser.add_argument("--hidden", type=int, default=128, help="LSTM units (default 128)")
    parser.add_argument(
        "--streams", type=int, default=16, help="parallel streams = batch size (default 16)"
    )
    parser.add_argument(
        "--chunk", type=int, default=40, help="truncated-BPTT chunk length (default 40)"
    )
    parser.add_argument("--lr", type=float, default=0.01, help="Adam learning rate (default 0.01)")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the initial weights and of the sampled text (default 0)",
    )
    parser.add_argument(
        "--modules",
        nargs="+",
        default=["textwrap"],
        help="standard-library modules whose source is the text (default: textwrap)",
    )
    parser.add_argument(
        "--plot",
        type=Path,
        default=OUTPUT / "char_lm_loss.png",
        help="where to save the loss curve (needs matplotlib; default examples/output/)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=(
            f"one epoch over the first {QUICK_CHARS:,} characters with 32 units, to check that "
            "the script runs (the numbers mean nothing)"
        ),
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.hidden = 1, 32

    corpus = python_source_text(args.modules, max_chars=QUICK_CHARS if args.quick else None)
    text = corpus.text
    print(f"text: {corpus.describe()}, read from {corpus.stdlib}")
    vocab = sorted(set(text))
    V = len(vocab)
    codes = np.array([vocab.index(c) for c in text])
    # Cut the text into `streams` rows of equal length; row b continues where it left off.
    per_stream = (len(codes) - 1) // args.streams
    inputs = codes[: per_stream * args.streams].reshape(args.streams, per_stream)
    targets = codes[1 : per_stream * args.streams + 1].reshape(args.streams, per_stream)

    rng = np.random.default_rng(args.seed)
    dtype = np.float32
    x = np.eye(V, dtype=dtype)[inputs]  # one-hot, (streams, per_stream, V)
    model = Sequential(
        Recurrent(LSTMCell(V, args.hidden, dtype=dtype, rng=rng)),
        Dense(args.hidden, V, dtype=dtype, rng=rng),  # logits over the next character
    )
    optimizer = Adam(model.parameters(), lr=args.lr)
    chunks = math.ceil(per_stream / args.chunk)
    print(f"{V} distinct characters; {model.num_parameters():,} parameters")
    print(f"uniform guessing: {math.log(V):.3f} nats/char")
    print(f"before training: {sample(model, vocab, 'def ', 60, np.random.default_rng(1))!r}")

    start = time.perf_counter()
    bar = ProgressBar(args.epochs * chunks, desc="train", stream=sys.stdout)
    history: list[float] = []
    for epoch in range(args.epochs):
        # Each epoch starts from a zero state; within it, the state flows across chunks.
        result = tbptt(
            model,
            losses.softmax_cross_entropy,
            optimizer,
            x,
            targets,
            chunk=args.chunk,
            clip_norm=5.0,
            step_offset=epoch * chunks,
            on_step=lambda step, loss, epoch=epoch: bar.update(loss, epoch=epoch + 1),
        )
        history.extend(result.losses)
    bar.close()
    final = float(np.mean(history[-chunks:]))
    print(
        f"trained in {time.perf_counter() - start:.0f} s; last-epoch loss {final:.3f} nats/char "
        f"({final / math.log(2):.2f} bits/char)"
    )
    print("sample (temperature 0.7):")
    print(
        sample(model, vocab, "def ", 100 if args.quick else 400, np.random.default_rng(args.seed))
    )
    if plot_losses(
        history,
        args.plot,
        reference=math.log(V),
        reference_label="uniform guess",
        label="training chunk loss",
        title="Character-level LSTM, truncated BPTT",
        xlabel="update (one per chunk)",
        ylabel="cross-entropy (nats/char)",
    ):
        print(f"loss curve saved to {args.plot}")
    else:
        print('no plot: matplotlib is not installed (pip install "lstmkit[plot]")')
    files = corpus.files[0] + (
        f" and {len(corpus.files) - 1} more" if len(corpus.files) > 1 else ""
    )
    epochs = f"{args.epochs} epoch{'s' if args.epochs != 1 else ''}"
    print(
        f"summary: after {epochs} over {files} (Python {corpus.python_version}) the training "
        f"loss fell from {math.log(V):.2f} nats/char (uniform guess over {V} characters) to "
        f"{final:.2f} ({final / math.log(2):.2f} bits/char)"
    )
    return final


if __name__ == "__main__":
    main()
