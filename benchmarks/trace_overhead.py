"""What the trace hooks cost when no trace is running (not run by the tests).

Tracing is off unless :func:`lstmkit.trace.trace` is running; then every gate call and every
runner call reads one context variable (``lstmkit._tracing.RECORDER``). This script measures

* the cost of that read, and how many reads one forward pass makes;
* the forward time of a stepped LSTM (``fused=False``), a GRU and the fused LSTM kernel.

Run it against this tree and against a tree without the hooks to compare, e.g.::

    PYTHONPATH=src python benchmarks/trace_overhead.py
    PYTHONPATH=/path/to/other/src python benchmarks/trace_overhead.py

Each time is the median of ``--repeats`` runs (after one warm-up).
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextvars import ContextVar

import numpy as np

import lstmkit
from lstmkit import GRUCell, LSTMCell, Recurrent


def median_seconds(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per case (15)")
    parser.add_argument("--hidden", type=int, default=64, help="units (64)")
    parser.add_argument("--time", type=int, default=100, help="steps (100)")
    parser.add_argument("--batch", type=int, default=16, help="sequences (16)")
    args = parser.parse_args()
    print(f"lstmkit from {lstmkit.__file__}")
    var: ContextVar[object] = ContextVar("probe", default=None)
    n = 1_000_000
    start = time.perf_counter()
    for _ in range(n):
        var.get()
    per_read = (time.perf_counter() - start) / n
    print(f"one ContextVar.get (with loop overhead): {per_read * 1e9:.0f} ns")
    x = np.random.default_rng(0).normal(size=(args.batch, args.time, args.hidden))
    cases = {
        "LSTM stepped": (Recurrent(LSTMCell(args.hidden, args.hidden, rng=0), fused=False), 4),
        "GRU stepped": (Recurrent(GRUCell(args.hidden, args.hidden, rng=0)), 3),
        "LSTM fused": (Recurrent(LSTMCell(args.hidden, args.hidden, rng=0)), 0),
    }
    for name, (rnn, gates) in cases.items():
        seconds = median_seconds(lambda rnn=rnn: rnn(x), args.repeats)
        reads = 1 + gates * args.time
        share = reads * per_read / seconds
        print(
            f"{name:13s} B={args.batch} T={args.time} H={args.hidden}: {seconds * 1e3:8.2f} ms; "
            f"{reads} hook reads = {reads * per_read * 1e6:.1f} us ({share:.2%} of the run)"
        )


if __name__ == "__main__":
    main()
