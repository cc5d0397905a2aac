"""Benchmark worker for PyTorch ``nn.LSTM`` (float32, batch_first, default CPU path)."""

from __future__ import annotations

import time

from _common import CONFIGS, emit, env_threads, limit_threads, maxrss_bytes, measure, worker_args


def build(name: str, torch, cell: str = "lstm"):  # type: ignore[no-untyped-def]
    B, T, I, H, L, bi = CONFIGS[name]
    torch.manual_seed(0)
    if cell not in ("lstm", "gru"):
        raise ValueError(f"cells: expected lstm or gru, received {cell!r}")
    kind = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
    model = kind(I, H, num_layers=L, bidirectional=bi, batch_first=True)
    x = torch.randn(B, T, I)
    return model, x


def main() -> None:
    args = worker_args()
    import numpy  # noqa: F401 - load NumPy's OpenBLAS too, so threadpoolctl limits it alike
    import torch

    torch.set_num_threads(args.threads)
    threads = limit_threads(args.threads)

    if args.task == "memory":
        (name,) = args.configs
        model, x = build(name, torch)
        x.requires_grad_(True)
        # Load every code path on a 2-step batch of 1 first, so one-time costs are not counted.
        out, _ = model(x[:1, :2].detach().requires_grad_(True))
        out.sum().backward()
        del out
        base = maxrss_bytes()
        model.zero_grad(set_to_none=True)
        out, _ = model(x)
        out.sum().backward()
        peak = maxrss_bytes()
        emit({"library": "torch", "config": name, "rss_delta": peak - base})
        return

    results = []
    for name, cell in ((c, k) for c in args.configs for k in args.cells or ["lstm"]):
        model, x = build(name, torch, cell)
        xg = x.clone().requires_grad_(True)  # "all gradients": the input's too, as lstmkit returns

        def fwd(model=model, x=x):  # type: ignore[no-untyped-def]
            with torch.inference_mode():
                return model(x)

        def train(model=model, x=xg):  # type: ignore[no-untyped-def]
            model.zero_grad(set_to_none=True)
            x.grad = None
            out, _ = model(x)
            out.sum().backward()

        for mode in args.modes:
            r = measure(fwd if mode == "fwd" else train, args)
            results.append({"config": name, "mode": mode, "cell": cell, **r})

    gemm = None
    if not args.skip_gemm:
        n = 2048
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)
        ts = []
        for _ in range(5):
            t0 = time.perf_counter()
            torch.mm(a, b)
            ts.append(time.perf_counter() - t0)
        gemm = 2.0 * n**3 / min(ts) / 1e9
    info = {
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "env": env_threads(),
        **threads,
    }
    emit(
        {
            "library": "torch",
            "results": results,
            "sgemm_gflops": gemm,
            "info": info,
        }
    )


if __name__ == "__main__":
    main()
