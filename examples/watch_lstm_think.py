"""Train the two models that the docs page "Watch an LSTM think" looks inside.

1. A character-level language model, two LSTM layers, on source files of the Python standard
   library read from the running interpreter (``lstmkit.datasets.python_source_text``),
   trained with stateful truncated BPTT.
2. An LSTM on the adding problem (Hochreiter & Schmidhuber 1997): two numbers marked in a
   sequence of 50, the target their sum.

Both are saved with ``lstmkit.save`` under ``examples/data/``, with a JSON training log
(settings, corpus, losses, times). The docs build reads these files and never retrains, so
rerunning this script with its defaults regenerates every number on that page. ``--out DIR``
trains your own copy elsewhere; ``--quick`` (a tiny run, to check that the script works) writes
to a temporary folder unless ``--out`` is given, and never to ``examples/data/``. Afterwards,
try ``lstmkit.trace.trace`` on the saved models yourself (the page shows how).

Run: ``python examples/watch_lstm_think.py`` (options: ``--help``; ``--quick`` for a check)
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lstmkit import Dense, LastStep, LSTMCell, Recurrent, Sequential, losses, save
from lstmkit.datasets import (
    ANALYSIS_MODULES,
    CHAR_VOCAB,
    TRAINING_MODULES,
    encode_chars,
    python_source_text,
)
from lstmkit.optimizers import Adam
from lstmkit.plotting import plot_losses
from lstmkit.training import ProgressBar, tbptt, train_step

DATA = Path(__file__).resolve().parent / "data"
OUTPUT = Path(__file__).resolve().parent / "output"  # git-ignored
CHAR_MODEL = DATA / "python_char_lstm.npz"
ADDING_MODEL = DATA / "adding_lstm.npz"
LOG = DATA / "watch_lstm_think_log.json"


def adding_batch(
    rng: np.random.Generator, batch: int, length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``(batch, length, 2)`` (value, marker) and targets ``(batch, 1)``."""
    values = rng.random((batch, length))
    rows = np.arange(batch)
    first = rng.integers(0, length // 2, size=batch)
    second = rng.integers(length // 2, length, size=batch)
    markers = np.zeros((batch, length))
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    return np.stack([values, markers], axis=-1), (values[rows, first] + values[rows, second])[
        :, None
    ]


def one_hot(codes: np.ndarray, dtype: type) -> np.ndarray:
    return np.eye(len(CHAR_VOCAB), dtype=dtype)[codes]


def train_char_model(args: argparse.Namespace) -> tuple[Sequential, dict]:
    corpus = python_source_text(TRAINING_MODULES, max_chars=args.max_chars)
    held_out = python_source_text(ANALYSIS_MODULES, max_chars=args.eval_chars)
    print(f"training text: {corpus.describe()}")
    codes, replaced = encode_chars(corpus.text)
    codes_arr = np.array(codes)
    V, H, dtype = len(CHAR_VOCAB), args.hidden, np.float32
    per_stream = (len(codes_arr) - 1) // args.streams
    inputs = codes_arr[: per_stream * args.streams].reshape(args.streams, per_stream)
    targets = codes_arr[1 : per_stream * args.streams + 1].reshape(args.streams, per_stream)
    rng = np.random.default_rng(args.seed)
    model = Sequential(
        Recurrent(LSTMCell(V, H, dtype=dtype, rng=rng)),
        Recurrent(LSTMCell(H, H, dtype=dtype, rng=rng)),
        Dense(H, V, dtype=dtype, rng=rng),
    )
    optimizer = Adam(model.parameters(), lr=args.lr)
    chunks = math.ceil(per_stream / args.chunk)
    print(f"model: 2 x LSTM({H}), {model.num_parameters():,} parameters; {V} characters")
    x = one_hot(inputs, dtype)
    start = time.perf_counter()
    bar = ProgressBar(args.epochs * chunks, desc="char model", stream=sys.stdout)
    history: list[float] = []
    for epoch in range(args.epochs):
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
    seconds = time.perf_counter() - start
    held_codes = np.array(encode_chars(held_out.text)[0])
    logits = model(one_hot(held_codes[:-1], dtype)[None])
    held_loss = float(losses.softmax_cross_entropy(logits, held_codes[1:][None])[0])
    log = {
        "corpus": corpus.describe(),
        "files": list(corpus.files),
        "python_version": corpus.python_version,
        "characters_replaced": replaced,
        "held_out": held_out.describe(),
        "hidden": H,
        "epochs": args.epochs,
        "streams": args.streams,
        "chunk": args.chunk,
        "lr": args.lr,
        "seed": args.seed,
        "parameters": model.num_parameters(),
        "updates": len(history),
        "seconds": round(seconds, 1),
        "uniform_loss": math.log(V),
        "last_epoch_loss": float(np.mean(history[-chunks:])),
        "held_out_loss": held_loss,
        "losses": [round(float(v), 4) for v in history],
    }
    print(
        f"char model: {seconds:.0f} s; last-epoch loss {log['last_epoch_loss']:.3f} nats/char, "
        f"held-out {held_loss:.3f} ({held_out.files[0]})"
    )
    return model, log


def train_adding_model(args: argparse.Namespace) -> tuple[Sequential, dict]:
    rng = np.random.default_rng(args.seed)
    dtype = np.float32
    model = Sequential(
        Recurrent(LSTMCell(2, args.adding_hidden, dtype=dtype, rng=rng)),
        LastStep(),
        Dense(args.adding_hidden, 1, dtype=dtype, rng=rng),
    )
    optimizer = Adam(model.parameters(), lr=0.01)
    x_test, y_test = adding_batch(np.random.default_rng(args.seed + 1), 500, args.adding_length)
    start = time.perf_counter()
    bar = ProgressBar(args.adding_steps, desc="adding model", stream=sys.stdout)
    history = []
    for step in range(args.adding_steps):
        x, y = adding_batch(rng, 64, args.adding_length)
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
    test_mse = float(losses.mean_squared_error(pred, y_test)[0])
    baseline = float(losses.mean_squared_error(np.ones_like(y_test), y_test)[0])
    print(f"adding model: test MSE {test_mse:.4f} (predicting 1.0: {baseline:.4f})")
    log = {
        "hidden": args.adding_hidden,
        "length": args.adding_length,
        "steps": args.adding_steps,
        "seconds": round(time.perf_counter() - start, 1),
        "test_mse": test_mse,
        "baseline_mse": baseline,
        "losses": [round(float(v), 5) for v in history],
    }
    return model, log


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hidden", type=int, default=64, help="units per LSTM layer (default 64)")
    parser.add_argument("--epochs", type=int, default=8, help="passes over the text (default 8)")
    parser.add_argument("--streams", type=int, default=32, help="batch of parallel streams (32)")
    parser.add_argument("--chunk", type=int, default=64, help="truncated-BPTT chunk (default 64)")
    parser.add_argument("--lr", type=float, default=0.005, help="Adam learning rate (0.005)")
    parser.add_argument(
        "--max-chars", type=int, default=None, help="train on only this many characters"
    )
    parser.add_argument("--eval-chars", type=int, default=20000, help="held-out characters")
    parser.add_argument("--adding-hidden", type=int, default=8, help="adding model units (8)")
    parser.add_argument("--adding-length", type=int, default=50, help="adding sequence length")
    parser.add_argument("--adding-steps", type=int, default=3000, help="adding updates (3000)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the initial weights and the data (default 0)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=(
            "folder for the two models and the log (default examples/data/, the files the docs "
            "page reads; with --quick a temporary folder, deleted at exit)"
        ),
    )
    parser.add_argument(
        "--plot",
        type=Path,
        default=OUTPUT / "watch_lstm_think_loss.png",
        help="where to save the char model's loss curve (needs matplotlib; default "
        "examples/output/)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=(
            "a tiny run (2,000 characters, 8 units, 1 epoch, 20 adding steps) to check that the "
            "script runs; never writes to examples/data/ (the numbers mean nothing)"
        ),
    )
    args = parser.parse_args(argv)
    if args.quick:
        if args.out is not None and args.out.resolve() == DATA:
            parser.error("--quick does not overwrite the committed models in examples/data/")
        args.max_chars, args.hidden, args.epochs, args.eval_chars = 2000, 8, 1, 300
        args.adding_steps = 20
        if args.out is None:
            with tempfile.TemporaryDirectory(prefix="watch_lstm_think_") as folder:
                return train_and_save(args, Path(folder), temporary=True)
    return train_and_save(args, DATA if args.out is None else args.out)


def train_and_save(args: argparse.Namespace, out: Path, temporary: bool = False) -> dict:
    """Train both models, save them and the log in ``out``, plot, and print the summary."""
    out.mkdir(parents=True, exist_ok=True)
    char_model, char_log = train_char_model(args)
    adding_model, adding_log = train_adding_model(args)
    save(char_model, out / CHAR_MODEL.name)
    save(adding_model, out / ADDING_MODEL.name)
    log = {
        "script": "examples/watch_lstm_think.py",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "char_model": char_log,
        "adding_model": adding_log,
    }
    (out / LOG.name).write_text(json.dumps(log, indent=1) + "\n", encoding="utf-8")
    where = (
        f"a temporary folder, deleted at exit ({out}; --out DIR keeps them)" if temporary else out
    )
    print(f"saved {CHAR_MODEL.name}, {ADDING_MODEL.name} and {LOG.name} in {where}")
    if plot_losses(
        char_log["losses"],
        args.plot,
        reference=char_log["uniform_loss"],
        reference_label="uniform guess",
        label="training chunk loss",
        title="2-layer character LSTM on Python source",
        xlabel="update",
        ylabel="cross-entropy (nats/char)",
    ):
        print(f"loss curve saved to {args.plot}")
    else:
        print('no plot: matplotlib is not installed (pip install "lstmkit[plot]")')
    print(
        f"summary: the char model went from {char_log['uniform_loss']:.2f} nats/char (uniform "
        f"guess) to {char_log['held_out_loss']:.2f} on unseen source; the adding model from "
        f"test MSE {adding_log['baseline_mse']:.3f} (always 1.0) to {adding_log['test_mse']:.4f}"
    )
    return log


if __name__ == "__main__":
    main()
