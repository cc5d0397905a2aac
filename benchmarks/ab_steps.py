"""A/B timing of the stepped cells: two source trees, alternating child processes.

Each round starts one child per tree (``PYTHONPATH`` set to that tree's ``src``) and one
PyTorch child (``nn.GRU``, the GRU's reference), in an order that alternates between rounds, so
both trees see the same machine load. Every child fixes BLAS to one thread through its
environment before NumPy is imported, times each case a few times and reports the median; the
parent prints, per case, the median over rounds with the spread (lowest-highest round), the
B/A ratio, and each cell's time as a multiple of the fused ``LSTMCell`` of the same child.

Cases (float32, ``Recurrent`` around one cell, batch-first input):

- ``lstm_fused``: ``LSTMCell`` on its fused path (the reference of the ratios);
- ``lstm_step``: the same cell with ``fused=False``;
- ``layernorm``: ``LayerNormLSTMCell``;
- ``gru``: ``GRUCell`` (PyTorch's conventions), and ``torch_gru``: ``torch.nn.GRU``;
- ``guide``: the custom-cell guide's two-gate cell (``_guide_cell.py``).

Modes: ``fwd`` is inference (``runner(x)``); ``fwd+bwd`` is a training forward and its backward.

Run from the repository root::

    python benchmarks/ab_steps.py --a /work/main/src --b src --rounds 7

``--json PATH`` also writes every child's raw numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# name -> (batch, time, input, hidden)
SIZES = {"issue": (16, 120, 80, 160), "small": (4, 400, 48, 48)}
CASES = ("lstm_fused", "lstm_step", "layernorm", "gru", "guide")
MODES = ("fwd", "fwd+bwd")
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


# -- child ----------------------------------------------------------------------------------------


def _timed(fn: Any, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def child_lstmkit(sizes: list[str], repeats: int) -> dict[str, Any]:
    import numpy as np

    sys.path.insert(0, str(HERE))
    from _guide_cell import MinimalGatedCell

    import lstmkit
    from lstmkit import GRUCell, LayerNormLSTMCell, LSTMCell, Recurrent

    def build(case: str, n_in: int, n_h: int) -> Any:
        opts = {"dtype": np.float32, "rng": 0}
        if case == "lstm_fused":
            return Recurrent(LSTMCell(n_in, n_h, **opts))
        if case == "lstm_step":
            return Recurrent(LSTMCell(n_in, n_h, **opts), fused=False)
        if case == "layernorm":
            return Recurrent(LayerNormLSTMCell(n_in, n_h, **opts))
        if case == "gru":
            return Recurrent(GRUCell(n_in, n_h, **opts))
        return Recurrent(MinimalGatedCell(n_in, n_h, **opts))

    out: dict[str, Any] = {"lstmkit": lstmkit.__file__}
    for size in sizes:
        B, T, n_in, n_h = SIZES[size]
        rng = np.random.default_rng(0)
        x = rng.standard_normal((B, T, n_in)).astype(np.float32)
        for case in CASES:
            runner = build(case, n_in, n_h)
            y = runner(x)[0]
            dy = rng.standard_normal(y.shape).astype(np.float32)

            def train(runner: Any = runner, dy: Any = dy, x: Any = x) -> None:
                _, _, cache = runner.forward(x)
                runner.backward(cache, dy)

            out[f"{size}/{case}/fwd"] = _timed(lambda runner=runner, x=x: runner(x), repeats)
            out[f"{size}/{case}/fwd+bwd"] = _timed(train, repeats)
    return out


def child_torch(sizes: list[str], repeats: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    out: dict[str, Any] = {"torch": torch.__version__}
    for size in sizes:
        B, T, n_in, n_h = SIZES[size]
        gen = torch.Generator().manual_seed(0)
        gru = torch.nn.GRU(n_in, n_h, batch_first=True)
        x = torch.randn(B, T, n_in, generator=gen)
        dy = torch.randn(B, T, n_h, generator=gen)

        def infer(gru: Any = gru, x: Any = x) -> None:
            with torch.no_grad():
                gru(x)

        def train(gru: Any = gru, x: Any = x, dy: Any = dy) -> None:
            xg = x.clone().requires_grad_(True)
            y, _ = gru(xg)
            y.backward(dy)

        out[f"{size}/torch_gru/fwd"] = _timed(infer, repeats)
        out[f"{size}/torch_gru/fwd+bwd"] = _timed(train, repeats)
    return out


# -- parent ---------------------------------------------------------------------------------------


def spawn(kind: str, src: str | None, args: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ)
    for var in THREAD_VARS:
        env[var] = "1"
    if src is not None:
        env["PYTHONPATH"] = str(Path(src).resolve())
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind]
    cmd += ["--sizes", *args.sizes, "--repeats", str(args.repeats)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _fmt(values: list[float]) -> str:
    med = statistics.median(values)
    return f"{med * 1e3:8.1f} ({min(values) * 1e3:.1f}-{max(values) * 1e3:.1f})"


def report(runs: dict[str, list[dict[str, Any]]], sizes: list[str]) -> str:
    lines = [
        "times in ms: median over rounds (lowest-highest round); B/A = median of per-round ratios;",
        "xfused = the cell's time / the fused LSTMCell's time in the same child (median of rounds)",
        "",
        f"{'size':6} {'case':10} {'mode':8} {'A':>22} {'B':>22} {'B/A':>6} "
        f"{'A xfused':>9} {'B xfused':>9} {'B/torch':>8}",
    ]
    A, Bs, torch_runs = runs["a"], runs["b"], runs["torch"]
    for size in sizes:
        for case in CASES:
            for mode in MODES:
                key = f"{size}/{case}/{mode}"
                ref = f"{size}/lstm_fused/{mode}"
                a = [r[key] for r in A]
                b = [r[key] for r in Bs]
                ratio = statistics.median(y / x for x, y in zip(a, b, strict=True))
                a_f = statistics.median(r[key] / r[ref] for r in A)
                b_f = statistics.median(r[key] / r[ref] for r in Bs)
                vs_torch = ""
                if case == "gru" and torch_runs:
                    t_key = f"{size}/torch_gru/{mode}"
                    vs_torch = f"{statistics.median(r[key] / t[t_key] for r, t in zip(Bs, torch_runs, strict=True)):8.2f}"
                lines.append(
                    f"{size:6} {case:10} {mode:8} {_fmt(a):>22} {_fmt(b):>22} {ratio:6.2f} "
                    f"{a_f:9.2f} {b_f:9.2f} {vs_torch:>8}"
                )
        if torch_runs:
            for mode in MODES:
                t = [r[f"{size}/torch_gru/{mode}"] for r in torch_runs]
                lines.append(f"{size:6} {'torch_gru':10} {mode:8} {_fmt(t):>22}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--a", default="/work/main/src", help="the baseline tree's src folder")
    p.add_argument("--b", default="src", help="the tree under test's src folder")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3, help="timed runs per case in each child")
    p.add_argument("--sizes", nargs="*", default=list(SIZES), choices=list(SIZES))
    p.add_argument("--no-torch", action="store_true", help="skip the nn.GRU child")
    p.add_argument("--json", help="also write the raw per-child numbers here")
    p.add_argument("--child", choices=("lstmkit", "torch"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child == "lstmkit":
        print(json.dumps(child_lstmkit(args.sizes, args.repeats)))
        return
    if args.child == "torch":
        print(json.dumps(child_torch(args.sizes, args.repeats)))
        return
    runs: dict[str, list[dict[str, Any]]] = {"a": [], "b": [], "torch": []}
    started = time.strftime("%H:%M:%S")
    for k in range(args.rounds):
        order = [("a", args.a), ("b", args.b)]
        if k % 2:
            order.reverse()
        if not args.no_torch:
            order.insert(k % 3, ("torch", None))
        for name, src in order:
            kind = "torch" if name == "torch" else "lstmkit"
            runs[name].append(spawn(kind, src, args))
        print(f"round {k + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    print(f"A = {runs['a'][0]['lstmkit']}\nB = {runs['b'][0]['lstmkit']}")
    print(f"rounds {args.rounds}, {args.repeats} timed runs per case per child, 1 BLAS thread, ")
    print(f"started {started}, finished {time.strftime('%H:%M:%S')} (local time)\n")
    print(report(runs, args.sizes))
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
