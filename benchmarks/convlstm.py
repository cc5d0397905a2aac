"""Benchmark lstmkit's ConvLSTM against an equivalent PyTorch ConvLSTM (conv layers in a loop).

Run from the repository root::

    python benchmarks/convlstm.py                  # 1 and 2 threads, about a minute
    python benchmarks/convlstm.py --threads 1

One size: batch 8, 10 frames of 32x32 with 4 channels, 16 filters, 3x3 kernels, "same" padding,
float32. lstmkit runs ``Recurrent(ConvLSTMCell(...))`` (its fused path: input convolutions of the
whole sequence hoisted, one product per step); PyTorch runs the textbook implementation, an
``nn.Conv2d`` for the input and one for the recurrent map (each producing the four gates'
channels), called step by step in a Python loop on channels-first tensors (PyTorch's native
layout). Both start from the same weights, and the PyTorch child checks that its outputs equal
lstmkit's before timing. ``fwd`` is inference (``torch.no_grad()``); ``fwd+bwd`` is a training
forward pass plus the backward pass of ``sum(y * dy)``.

Each library runs in its own child process with ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS`` and
``MKL_NUM_THREADS`` set to the thread count (and ``torch.set_num_threads``); each number is the
median of several timed repeats after two warm-up calls. The markdown table goes to stdout and to
``--out`` (default ``benchmarks/results/convlstm.md``). PyTorch is optional.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BATCH, TIME, SIZE, CHANNELS, FILTERS, KERNEL = 8, 10, 32, 4, 16, 3


def _timed(fn: Any, repeats: int) -> float:
    fn()
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _lstmkit_model() -> tuple[Any, Any, Any]:
    import numpy as np

    sys.path.insert(0, str(HERE.parent / "src"))
    from lstmkit import ConvLSTMCell, Recurrent

    cell = ConvLSTMCell((SIZE, SIZE, CHANNELS), FILTERS, KERNEL, dtype=np.float32, rng=0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((BATCH, TIME, SIZE, SIZE, CHANNELS)).astype(np.float32)
    return Recurrent(cell), x, cell


def worker_lstmkit(repeats: int) -> dict[str, float]:
    import numpy as np

    runner, x, cell = _lstmkit_model()
    assert runner.uses_fused()
    dy = np.ones((BATCH, TIME, SIZE, SIZE, FILTERS), np.float32)

    def train() -> None:
        _, _, cache = runner.forward(x)
        runner.backward(cache, dy)

    return {"fwd": _timed(lambda: runner(x), repeats), "fwd+bwd": _timed(train, repeats)}


def worker_torch(repeats: int, threads: int) -> dict[str, float]:
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    runner, x, cell = _lstmkit_model()
    gates = [cell.gates[n] for n in ("forget", "input", "candidate", "output")]

    def torch_kernel(name: str) -> Any:  # (k, k, in, 4F) -> (4F, in, k, k)
        stacked = np.concatenate([getattr(g, name).value for g in gates], axis=-1)
        return torch.tensor(np.ascontiguousarray(stacked.transpose(3, 2, 0, 1)))

    conv_x = torch.nn.Conv2d(CHANNELS, 4 * FILTERS, KERNEL, padding="same")
    conv_h = torch.nn.Conv2d(FILTERS, 4 * FILTERS, KERNEL, padding="same", bias=False)
    with torch.no_grad():
        conv_x.weight.copy_(torch_kernel("W"))
        conv_x.bias.copy_(torch.tensor(np.concatenate([g.b.value for g in gates])))
        conv_h.weight.copy_(torch_kernel("U"))

    def convlstm(xt: Any) -> Any:  # xt: (batch, time, channels, H, W)
        h = xt.new_zeros(BATCH, FILTERS, SIZE, SIZE)
        c = torch.zeros_like(h)
        out = []
        for t in range(TIME):
            z = conv_x(xt[:, t]) + conv_h(h)
            f, i, g, o = z.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            out.append(h)
        return torch.stack(out, dim=1)

    xt = torch.tensor(np.ascontiguousarray(x.transpose(0, 1, 4, 2, 3)))
    with torch.no_grad():
        theirs = convlstm(xt).numpy().transpose(0, 1, 3, 4, 2)
    ours, _ = runner(x)
    difference = float(np.max(np.abs(theirs - ours)))
    if difference > 1e-4:
        raise RuntimeError(f"PyTorch and lstmkit disagree: max difference {difference}")

    def infer() -> None:
        with torch.no_grad():
            convlstm(xt)

    dy = torch.ones(BATCH, TIME, FILTERS, SIZE, SIZE)

    def train() -> None:
        conv_x.zero_grad()
        conv_h.zero_grad()
        x_grad = xt.clone().requires_grad_(True)
        (convlstm(x_grad) * dy).sum().backward()

    return {"fwd": _timed(infer, repeats), "fwd+bwd": _timed(train, repeats), "diff": difference}


def child(library: str, threads: int, repeats: int) -> dict[str, float]:
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    cmd = [sys.executable, __file__, "--worker", library, "--threads", str(threads)]
    cmd += ["--repeats", str(repeats)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return f"{cpu}, {os.cpu_count()} cores{load}; Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per cell (default 7)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "convlstm.md")
    parser.add_argument("--worker", choices=("lstmkit", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        n = args.threads[0]
        res = (
            worker_lstmkit(args.repeats)
            if args.worker == "lstmkit"
            else worker_torch(args.repeats, n)
        )
        print(json.dumps(res))
        return ""
    has_torch = importlib.util.find_spec("torch") is not None
    rows = []
    for n in args.threads:
        ours = child("lstmkit", n, args.repeats)
        theirs = child("torch", n, args.repeats) if has_torch else {}
        for mode in ("fwd", "fwd+bwd"):
            t = theirs.get(mode)
            ratio = "–" if t is None else f"{ours[mode] / t:.2f}"
            torch_ms = "–" if t is None else f"{t * 1e3:.0f}"
            rows.append(f"| {n} | {mode} | {ours[mode] * 1e3:.0f} | {torch_ms} | {ratio} |")
    lines = [
        f"ConvLSTM, batch {BATCH}, {TIME} frames of {SIZE}x{SIZE}x{CHANNELS}, {FILTERS} filters, "
        f"{KERNEL}x{KERNEL} kernels, float32; median of {args.repeats} runs (ms).",
        f"Machine: {machine()}.",
        "",
        "| threads | mode | lstmkit (ms) | PyTorch loop (ms) | lstmkit / PyTorch |",
        "|---|---|---|---|---|",
        *rows,
    ]
    table = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    print(table)
    return table


if __name__ == "__main__":
    main()
