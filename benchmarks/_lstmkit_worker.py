"""Benchmark worker for lstmkit (run by ``run.py`` in its own process; prints one JSON line)."""

from __future__ import annotations

import time
from typing import Any

from _common import (
    CONFIGS,
    emit,
    env_threads,
    limit_threads,
    maxrss_bytes,
    measure,
    worker_args,
)


def build(name: str, variant: str, np_mod):  # type: ignore[no-untyped-def]
    from lstmkit import Bidirectional, LSTMCell, Recurrent, Stacked

    B, T, I, H, L, bi = CONFIGS[name]
    kw = {"dtype": np_mod.float32}
    if variant == "hard_sigmoid":
        kw["gate_activation"] = "hard_sigmoid"
    elif variant != "default":
        raise ValueError(f"variant: expected default or hard_sigmoid, received {variant!r}")
    if bi:
        layers = []
        for k in range(L):
            cell = LSTMCell(I if k == 0 else 2 * H, H, rng=2 * k, **kw)
            layers.append(Bidirectional(cell, rng=2 * k + 1))
        model = Stacked(layers)
    elif L == 1:
        model = Recurrent(LSTMCell(I, H, rng=0, **kw))
    else:
        model = Stacked([LSTMCell(I if k == 0 else H, H, rng=k, **kw) for k in range(L)])
    x = np_mod.random.default_rng(1).standard_normal((B, T, I)).astype(np_mod.float32)
    dy = np_mod.ones((B, T, H * (2 if bi else 1)), np_mod.float32)  # loss = sum of outputs
    return model, x, dy


def time_cells(name: str, args, np_mod) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Time each kind of ``args.cells`` (see ``_every_cell``) at configuration ``name``."""
    from _every_cell import build as build_cell

    results = []
    for kind in args.cells:
        model, x, dy = build_cell(kind, name, np_mod)
        path = "fused" if model.uses_fused() else "step"

        def fwd(model=model, x=x):  # type: ignore[no-untyped-def]
            return model(x)

        def train(model=model, x=x, dy=dy):  # type: ignore[no-untyped-def]
            model.zero_grad()
            _, _, cache = model.forward(x)
            return model.backward(cache, dy)

        for mode in args.modes:
            r = measure(fwd if mode == "fwd" else train, args)
            results.append({"config": name, "mode": mode, "cell": kind, "path": path, **r})
    return results


def main() -> None:
    args = worker_args()
    import numpy as np  # after run.py set the thread variables; threadpoolctl needs it loaded

    threads = limit_threads(args.threads)

    if args.task == "memory":
        (name,) = args.configs
        model, x, dy = build(name, args.variant, np)
        # Load every code path on a 2-step batch of 1 first, so one-time costs are not counted.
        _, _, c0 = model.forward(x[:1, :2])
        model.backward(c0, dy[:1, :2])
        del c0
        if args.tracemalloc:
            import tracemalloc

            tracemalloc.start()
        base = maxrss_bytes()
        model.zero_grad()
        _, _, cache = model.forward(x)
        model.backward(cache, dy)
        peak = maxrss_bytes()
        out = {"library": "lstmkit", "config": name, "rss_delta": peak - base}
        if args.tracemalloc:
            out["tracemalloc_peak"] = tracemalloc.get_traced_memory()[1]
        emit(out)
        return

    results = []
    for name in args.configs:
        if args.cells:
            results += time_cells(name, args, np)
            continue
        model, x, dy = build(name, args.variant, np)

        def fwd(model=model, x=x):  # type: ignore[no-untyped-def]
            return model(x)

        def train(model=model, x=x, dy=dy):  # type: ignore[no-untyped-def]
            model.zero_grad()
            _, _, cache = model.forward(x)
            return model.backward(cache, dy)

        for mode in args.modes:
            r = measure(fwd if mode == "fwd" else train, args)
            results.append({"config": name, "mode": mode, **r})

    gemm = None
    if args.variant == "default" and not args.skip_gemm:
        n = 2048
        a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
        b = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
        c = np.empty_like(a)
        np.matmul(a, b, out=c)
        ts = []
        for _ in range(5):
            t0 = time.perf_counter()
            np.matmul(a, b, out=c)
            ts.append(time.perf_counter() - t0)
        gemm = 2.0 * n**3 / min(ts) / 1e9

    info = {"numpy": np.__version__, "env": env_threads(), **threads}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["numpy_blas"] = {k: blas.get(k) for k in ("name", "version", "openblas configuration")}
    except Exception as e:  # noqa: BLE001 - informational only
        info["numpy_blas"] = repr(e)
    emit(
        {
            "library": "lstmkit",
            "variant": args.variant,
            "results": results,
            "sgemm_gflops": gemm,
            "info": info,
        }
    )


if __name__ == "__main__":
    main()
