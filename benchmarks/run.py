"""Benchmark lstmkit against PyTorch ``nn.LSTM``/``nn.GRU`` and the seed-style NumPy loop.

Run from the repository root::

    python benchmarks/run.py --quick     # tiny/small/medium, fewer repeats (a minute or two)
    python benchmarks/run.py             # every configuration, 1 and 2 threads

Each library runs in its own child process, started with ``OPENBLAS_NUM_THREADS``,
``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` set to the thread count (and limited again with
``threadpoolctl`` when installed; PyTorch also gets ``torch.set_num_threads``). Every cell is the
median of several timed repeats after two warm-up calls. Peak memory of a training step is
``ru_maxrss`` of a fresh child that builds the model, then runs one forward+backward, minus its
``ru_maxrss`` just before that step. Besides the LSTM, the same run times every other cell
(``--cells``, see ``_every_cell.py``): ``GRUCell`` against ``nn.GRU``, and the LSTM's step path,
the peephole and layer-norm LSTMs and the custom-cell guide's two-gate cell against the fused
LSTM. The markdown goes to stdout and to ``--out`` (default
``benchmarks/results/local/latest.md``, ignored by git; the reference run the docs cite,
``benchmarks/results/latest.md``, is written only when named). PyTorch is optional: without it
the PyTorch columns are empty.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import CONFIGS, MODES, config_dict, flops  # noqa: E402
from _every_cell import KINDS, single_layer  # noqa: E402
from _every_cell import render as render_cells  # noqa: E402

DEFAULT_OUT = HERE / "results" / "local" / "latest.md"

# Issue 5's targets: lstmkit / PyTorch, float32, same threads.
TARGETS = {
    ("tiny", "fwd"): 2.0,
    ("tiny", "fwd+bwd"): 2.5,
    ("small", "fwd"): 1.3,
    ("small", "fwd+bwd"): 1.5,
    ("medium", "fwd"): 1.1,
    ("medium", "fwd+bwd"): 1.2,
    ("large", "fwd"): 1.0,
    ("large", "fwd+bwd"): 1.1,
}
SEED_TARGET = 10.0  # lstmkit at least 10x faster than the seed loop at small and medium
SWAP_TARGET = 1.3  # swapped activations at most 1.3x the default-activation time
SLOW_KERNEL_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def child(script: str, threads: int, extra: list[str]) -> dict[str, Any]:
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    cmd = [sys.executable, str(HERE / script), "--threads", str(threads), *extra]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def merge(store: dict[str, Any], key: str, res: dict[str, Any]) -> None:
    """Keep, per cell, the lowest median over rounds (and the highest sgemm rate)."""
    if key not in store:
        store[key] = res
        return
    old = {(x["config"], x["mode"], x.get("cell")): x for x in store[key]["results"]}
    for x in res["results"]:
        k = (x["config"], x["mode"], x.get("cell"))
        if k not in old or x["median_s"] < old[k]["median_s"]:
            old[k] = x
    store[key]["results"] = list(old.values())
    if res.get("sgemm_gflops") and (store[key].get("sgemm_gflops") or 0) < res["sgemm_gflops"]:
        store[key]["sgemm_gflops"] = res["sgemm_gflops"]


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load": load,
        "slow_kernel_env": {v: os.environ[v] for v in SLOW_KERNEL_VARS if v in os.environ},
    }


def fmt_ms(s: float | None) -> str:
    return "–" if s is None else (f"{s * 1e3:.3g}" if s < 0.1 else f"{s * 1e3:.0f}")


def fmt_x(r: float | None, digits: int = 2) -> str:
    return "–" if r is None else f"{r:.{digits}f}"


def shape_of(name: str) -> str:
    c = config_dict(name)
    s = f"{c['batch']},{c['time']},{c['input']},{c['hidden']}"
    if c["bidirectional"]:
        s += f", {c['layers']}L bi"
    return s


def index(res: dict[str, Any] | None) -> dict[tuple[str, str], float]:
    """``(config, mode) -> median`` of the LSTM results (not the every-cell rows)."""
    if not res:
        return {}
    return {
        (r["config"], r["mode"]): r["median_s"]
        for r in res["results"]
        if r.get("cell", "lstm") == "lstm"
    }


def run(args: argparse.Namespace) -> str:
    timing = (
        ["--min-repeats", "3", "--max-repeats", "5", "--budget", "0.3"]
        if args.quick
        else ["--min-repeats", "5", "--max-repeats", "15", "--budget", "1.0"]
    )
    seed_timing = ["--min-repeats", "3", "--max-repeats", "5", "--budget", "0.5"]
    configs = args.configs or (["tiny", "small", "medium"] if args.quick else list(CONFIGS))
    has_torch = importlib.util.find_spec("torch") is not None and not args.no_torch
    info = machine_info()
    rounds = args.rounds or (1 if args.quick else 2)
    kinds = [k for k in KINDS if k in args.cells]
    runs: dict[int, dict[str, Any]] = {}
    for n in args.threads:
        r: dict[str, Any] = {}
        # Rounds alternate the libraries config by config, so both libraries measure a config
        # within seconds of each other, and a burst of load from other jobs on a shared machine
        # hits one round of each rather than all of one library; each cell keeps its lowest
        # median. The 2048^3 product is timed in each library's first child only.
        for k in range(rounds):
            for j, name in enumerate(configs):
                tag = f"[{n} thread(s), round {k + 1}/{rounds}, {name}]"
                cfg = ["--configs", name, *timing] + ([] if k == j == 0 else ["--skip-gemm"])
                print(f"{tag} lstmkit ...", file=sys.stderr, flush=True)
                merge(r, "lstmkit", child("_lstmkit_worker.py", n, cfg))
                print(f"{tag} lstmkit hard_sigmoid ...", file=sys.stderr, flush=True)
                merge(
                    r,
                    "swapped",
                    child("_lstmkit_worker.py", n, cfg + ["--variant", "hard_sigmoid"]),
                )
                cell_rows = bool(kinds) and single_layer(name)
                if has_torch:
                    with_gru = ["--cells", "lstm", "gru"] if cell_rows and "gru" in kinds else []
                    print(f"{tag} PyTorch ...", file=sys.stderr, flush=True)
                    merge(r, "torch", child("_torch_worker.py", n, cfg + with_gru))
                if cell_rows:
                    print(f"{tag} lstmkit {', '.join(kinds)} ...", file=sys.stderr, flush=True)
                    cells_cfg = ["--configs", name, *timing, "--skip-gemm", "--cells", *kinds]
                    merge(r, "cells", child("_lstmkit_worker.py", n, cells_cfg))
        if not args.no_seed:
            seed_cfg = [c for c in configs if c != "large" or not args.quick]
            print(f"[{n} thread(s)] seed loop ...", file=sys.stderr, flush=True)
            r["seed"] = child(
                "_seed_worker.py", n, ["--configs", *seed_cfg, "--modes", "fwd", *seed_timing]
            )
            r["seed32"] = child(
                "_seed_worker.py",
                n,
                ["--configs", *seed_cfg, "--modes", "fwd", "--variant", "float32", *seed_timing],
            )
        runs[n] = r

    memory: list[dict[str, Any]] = []
    if not args.no_memory:
        mem_configs = [c for c in ("medium", "large") if c in configs] or configs[:1]
        for name in mem_configs:
            print(f"[memory] {name} ...", file=sys.stderr, flush=True)
            row: dict[str, Any] = {"config": name}
            m = ["--task", "memory", "--configs", name]
            row["lstmkit"] = child("_lstmkit_worker.py", 1, m)["rss_delta"]
            row["lstmkit_traced"] = child("_lstmkit_worker.py", 1, m + ["--tracemalloc"])[
                "tracemalloc_peak"
            ]
            if has_torch:
                row["torch"] = child("_torch_worker.py", 1, m)["rss_delta"]
            memory.append(row)
    args.rounds = rounds
    text = render(args, info, configs, runs, memory, has_torch)
    return "\n".join([text, *render_cells(runs, configs, kinds, shape_of)])


def render(
    args: argparse.Namespace,
    info: dict[str, Any],
    configs: list[str],
    runs: dict[int, dict[str, Any]],
    memory: list[dict[str, Any]],
    has_torch: bool,
) -> str:
    out: list[str] = []
    first = next(iter(runs.values()))
    lk_info = first["lstmkit"]["info"]
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    out.append(f"# lstmkit benchmark ({'quick' if args.quick else 'full'} run, {when})\n")
    out.append(f"- CPU: {info['cpu']}, {info['cores']} logical cores; {info['platform']}")
    if info["load"]:
        out.append("- load average at start: " + ", ".join(f"{x:.2f}" for x in info["load"]))
    out.append(
        f"- Python {info['python']}, NumPy {lk_info['numpy']}, BLAS "
        f"{json.dumps(lk_info.get('numpy_blas'))}"
    )
    for p in lk_info.get("pools", []):
        out.append(
            f"- NumPy thread pool: {p['internal_api']} {p['version']} ({p['prefix']}), "
            f"kernel {p['architecture']}, layer {p['threading_layer']}"
        )
    if has_torch:
        ti = first["torch"]["info"]
        out.append(
            f"- PyTorch {ti['torch']}, mkldnn {ti['mkldnn']}, interop threads "
            f"{ti['torch_interop_threads']}"
        )
    for n, r in runs.items():
        line = f"- {n} thread(s): NumPy sgemm 2048³ {r['lstmkit']['sgemm_gflops']:.0f} GFLOP/s"
        if has_torch:
            line += (
                f"; PyTorch threads {r['torch']['info']['torch_threads']}, "
                f"torch.mm 2048³ {r['torch']['sgemm_gflops']:.0f} GFLOP/s"
            )
        out.append(line)
    if info["slow_kernel_env"]:
        out.append(
            f"- **Note: {info['slow_kernel_env']} is set in the environment.** These "
            "select a generic (slower) OpenBLAS kernel; the numbers below are for it."
        )
    else:
        out.append("- OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE: not set")
    out.append("")
    out.append(
        f"Times are medians in milliseconds (the lowest of {args.rounds} round(s) that "
        "alternate the libraries), float32, batch-first. `fwd` is inference; "
        "`fwd+bwd` is a training forward plus backward with loss = sum of outputs, all "
        "gradients (weights and input). Ratio = lstmkit / PyTorch (lower is better; "
        "target in brackets). Seed = the seed's one-sequence-at-a-time column-vector "
        "loop, forward only (it has no backward); seed/lk = how many times faster "
        "lstmkit is (as written in float64; float32 in brackets). GFLOP/s counts the "
        "matrix products only (forward `2·T·B·(I+H)·4H` per layer and direction, "
        "backward twice that), % of the NumPy sgemm rate at the same thread count. "
        'hard_sigmoid = lstmkit with `gate_activation="hard_sigmoid"` (the general, '
        "non-fused-activation path), as a multiple of the default time.\n"
    )
    for n, r in runs.items():
        lk, sw, tc = index(r["lstmkit"]), index(r["swapped"]), index(r.get("torch"))
        sd, sd32 = index(r.get("seed")), index(r.get("seed32"))
        gemm = r["lstmkit"]["sgemm_gflops"]
        out.append(f"## {n} thread{'s' if n > 1 else ''}\n")
        out.append(
            "| config (B,T,I,H) | pass | lstmkit ms | PyTorch ms | ratio [target] "
            "| seed ms | seed/lk | lstmkit GFLOP/s (% sgemm) | PyTorch GFLOP/s "
            "| hard_sigmoid ×default |"
        )
        out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name in configs:
            for mode in MODES:
                key = (name, mode)
                t_lk, t_tc = lk.get(key), tc.get(key)
                ratio = t_lk / t_tc if t_lk and t_tc else None
                target = TARGETS.get(key)
                rcell = fmt_x(ratio)
                if ratio is not None and target is not None:
                    rcell += f" [≤{target}]" + ("" if ratio <= target else " (not met)")
                t_sd, t_sd32 = sd.get(key), sd32.get(key)
                seed_cell = "–"
                if t_sd and t_lk:
                    seed_cell = f"{t_sd / t_lk:.1f}"
                    if t_sd32:
                        seed_cell += f" ({t_sd32 / t_lk:.1f})"
                    if name in ("small", "medium") and t_sd / t_lk < SEED_TARGET:
                        seed_cell += " (not met)"
                f = flops(name, mode) / 1e9
                gf_lk = f"{f / t_lk:.0f} ({100 * f / t_lk / gemm:.0f}%)" if t_lk else "–"
                gf_tc = f"{f / t_tc:.0f}" if t_tc else "–"
                t_sw = sw.get(key)
                sw_cell = "–"
                if t_sw and t_lk:
                    sw_cell = f"{t_sw / t_lk:.2f}" + (
                        " (not met)" if t_sw / t_lk > SWAP_TARGET else ""
                    )
                out.append(
                    f"| {name} ({shape_of(name)}) | {mode} | {fmt_ms(t_lk)} | "
                    f"{fmt_ms(t_tc)} | {rcell} | {fmt_ms(t_sd)} | {seed_cell} | {gf_lk} | "
                    f"{gf_tc} | {sw_cell} |"
                )
        out.append("")
    if memory:
        out.append("## Peak memory of one training step\n")
        out.append(
            "Fresh child process per cell, 1 thread: `ru_maxrss` after the step minus "
            "`ru_maxrss` just before it (model, input and upstream gradient already "
            "built). `traced` is NumPy's own peak allocation during the step "
            "(tracemalloc), for lstmkit only.\n"
        )
        out.append("| config | lstmkit MiB | lstmkit traced MiB | PyTorch MiB | lstmkit/PyTorch |")
        out.append("|---|---:|---:|---:|---:|")
        for row in memory:
            mib = 2.0**20
            t = row.get("torch")
            ratio = f"{row['lstmkit'] / t:.2f}" if t else "–"
            out.append(
                f"| {row['config']} ({shape_of(row['config'])}) | "
                f"{row['lstmkit'] / mib:.1f} | {row['lstmkit_traced'] / mib:.1f} | "
                f"{'–' if t is None else f'{t / mib:.1f}'} | {ratio} |"
            )
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="tiny, small and medium only, fewer repeats"
    )
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="rounds per library, best median kept (default 2; 1 with --quick)",
    )
    p.add_argument("--configs", nargs="+", choices=list(CONFIGS))
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--no-seed", action="store_true")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument(
        "--cells",
        nargs="*",
        choices=list(KINDS),
        default=list(KINDS),
        help="every-cell rows to add (default: all; none with an empty list): "
        "gru (against nn.GRU), step, peephole, layernorm, guide (against the fused LSTM)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="markdown file to write (default benchmarks/results/local/latest.md, untracked; "
        "'-' for stdout only)",
    )
    args = p.parse_args(argv)
    text = run(args)
    print(text)
    if str(args.out) != "-":
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
        print(f"\nwritten to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
