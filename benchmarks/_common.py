"""Shared by the benchmark workers: configurations, thread setup, timing, FLOP counts.

Workers are started by ``run.py`` with ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS``/
``MKL_NUM_THREADS`` already in their environment, so the thread count is fixed before NumPy
(or PyTorch) is imported. :func:`limit_threads` applies it again through ``threadpoolctl``
when that is installed, and reports what the libraries actually use.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

# name -> (batch, time, input, hidden, layers, bidirectional)
CONFIGS: dict[str, tuple[int, int, int, int, int, bool]] = {
    "tiny": (1, 100, 32, 64, 1, False),
    "small": (16, 100, 64, 128, 1, False),
    "medium": (32, 100, 128, 256, 1, False),
    "large": (64, 50, 512, 1024, 1, False),
    "medium-2L-bi": (32, 100, 128, 256, 2, True),
}
MODES = ("fwd", "fwd+bwd")


def config_dict(name: str) -> dict[str, Any]:
    B, T, I, H, L, bi = CONFIGS[name]
    return {"batch": B, "time": T, "input": I, "hidden": H, "layers": L, "bidirectional": bi}


def forward_flops(name: str) -> float:
    """Multiply-adds of the matrix products of one forward pass, times two (elementwise work is
    not counted): per layer and direction ``2 * T * B * (I + H) * 4H``."""
    B, T, I, H, L, bi = CONFIGS[name]
    dirs = 2 if bi else 1
    total = 0.0
    for layer in range(L):
        inp = I if layer == 0 else H * dirs
        total += dirs * 2.0 * T * B * (inp + H) * 4 * H
    return total


def flops(name: str, mode: str) -> float:
    # Backward repeats the forward's products twice (input/hidden gradients and weight gradients).
    return forward_flops(name) * (1 if mode == "fwd" else 3)


def worker_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--configs", nargs="*", default=list(CONFIGS))
    p.add_argument("--modes", nargs="*", default=list(MODES))
    p.add_argument("--task", choices=("time", "memory", "gemm"), default="time")
    p.add_argument("--variant", default="default", help="default or hard_sigmoid (lstmkit only)")
    p.add_argument("--tracemalloc", action="store_true", help="memory task: NumPy's own count")
    p.add_argument("--min-repeats", type=int, default=5)
    p.add_argument("--max-repeats", type=int, default=15)
    p.add_argument("--budget", type=float, default=1.0, help="seconds of timed runs per cell")
    p.add_argument("--skip-gemm", action="store_true", help="do not time the 2048^3 product")
    p.add_argument(
        "--cells",
        nargs="*",
        default=[],
        help="lstmkit: kinds of _every_cell.KINDS instead of the LSTM; PyTorch: lstm and/or gru",
    )
    return p.parse_args(argv)


def limit_threads(n: int) -> dict[str, Any]:
    """Fix BLAS/OpenMP threads to ``n`` (again) and return what the libraries report."""
    info: dict[str, Any] = {}
    try:
        import threadpoolctl
    except ImportError:
        info["threadpoolctl"] = None
        return info
    global _LIMITER
    _LIMITER = threadpoolctl.threadpool_limits(limits=n)
    info["threadpoolctl"] = threadpoolctl.__version__
    info["pools"] = [
        {
            k: p.get(k)
            for k in (
                "internal_api",
                "prefix",
                "version",
                "architecture",
                "num_threads",
                "threading_layer",
            )
        }
        for p in threadpoolctl.threadpool_info()
    ]
    return info


_LIMITER: Any = None


def measure(fn: Callable[[], Any], args: argparse.Namespace) -> dict[str, Any]:
    """Median wall time of ``fn`` after two warm-up calls; the repeat count fits the budget."""
    fn()
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    n = int(args.budget / max(first, 1e-9))
    n = max(args.min_repeats, min(args.max_repeats, n))
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "repeats": n}


def maxrss_bytes() -> int:
    # Linux reports kilobytes.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def emit(result: dict[str, Any]) -> None:
    """The one line of JSON a worker writes; run.py reads the last line of stdout."""
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    sys.stdout.flush()


def env_threads() -> dict[str, str | None]:
    keys = (
        "OPENBLAS_NUM_THREADS",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_CORETYPE",
        "OPENBLAS_L2_SIZE",
    )
    return {k: os.environ.get(k) for k in keys}
