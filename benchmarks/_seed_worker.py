"""Benchmark worker for the seed-style loop: the project's original one-class NumPy LSTM.

The seed (``/work/shared/seed``) used column vectors ``(features, 1)``, one
``np.vstack((h_prev, x))`` per step and four separate gate products ``np.dot(W_gate, concat) +
b_gate``, with a sigmoid written as ``1 / (1 + exp(-z))``. It ran one sequence at a time (``X`` of
shape ``(seq_len, input_size)``), so a batch is a Python loop over its sequences, and it used
NumPy's default float64 (``--variant float64``, as written); ``--variant float32`` runs the same
code in float32. The seed had no backward pass, so only the forward is timed.
"""

from __future__ import annotations

from _common import CONFIGS, emit, limit_threads, measure, worker_args


def main() -> None:
    args = worker_args()
    import numpy as np

    limit_threads(args.threads)
    dtype = {"default": np.float64, "float64": np.float64, "float32": np.float32}[args.variant]

    class SeedLSTM:
        """The seed's class, trimmed to what the forward pass runs."""

        def __init__(self, input_size, hidden_size, rng):  # type: ignore[no-untyped-def]
            def w():  # type: ignore[no-untyped-def]
                return (
                    rng.standard_normal((hidden_size, hidden_size + input_size))
                    / np.sqrt(hidden_size + input_size)
                ).astype(dtype)

            self.hidden_size = hidden_size
            self.Wf, self.Wi, self.WC, self.Wo = w(), w(), w(), w()
            self.bf, self.bi, self.bC, self.bo = (
                np.zeros((hidden_size, 1), dtype) for _ in range(4)
            )

        def sigmoid(self, z):  # type: ignore[no-untyped-def]
            return 1 / (1 + np.exp(-z))

        def forward(self, x, h_prev, C_prev):  # type: ignore[no-untyped-def]
            concat = np.vstack((h_prev, x))
            f_t = self.sigmoid(np.dot(self.Wf, concat) + self.bf)
            i_t = self.sigmoid(np.dot(self.Wi, concat) + self.bi)
            C_tilda = np.tanh(np.dot(self.WC, concat) + self.bC)
            C_t = f_t * C_prev + i_t * C_tilda
            o_t = self.sigmoid(np.dot(self.Wo, concat) + self.bo)
            h_t = o_t * np.tanh(C_t)
            return h_t, C_t

        def forward_sequence(self, X):  # type: ignore[no-untyped-def]
            h = np.zeros((self.hidden_size, 1), dtype)
            C = np.zeros((self.hidden_size, 1), dtype)
            outputs = []
            for x in X:
                h, C = self.forward(x.reshape(-1, 1), h, C)
                outputs.append(h)
            return np.hstack(outputs).T

    results = []
    for name in args.configs:
        B, T, I, H, L, bi = CONFIGS[name]
        rng = np.random.default_rng(0)
        dirs = 2 if bi else 1
        layers = [
            [SeedLSTM(I if k == 0 else dirs * H, H, rng) for _ in range(dirs)] for k in range(L)
        ]
        x = rng.standard_normal((B, T, I)).astype(dtype)

        def fwd(layers=layers, x=x):  # type: ignore[no-untyped-def]
            outputs = []
            for X in x:  # one sequence at a time, as the seed did
                for layer in layers:
                    ys = [layer[0].forward_sequence(X)]
                    if len(layer) == 2:
                        ys.append(layer[1].forward_sequence(X[::-1])[::-1])
                    X = np.concatenate(ys, axis=1)
                outputs.append(X)
            return np.stack(outputs)

        with np.errstate(over="ignore"):  # exp(-z) may overflow to inf; the sigmoid is still 0
            if "fwd" in args.modes:
                results.append({"config": name, "mode": "fwd", **measure(fwd, args)})
    emit({"library": "seed", "variant": args.variant, "results": results})


if __name__ == "__main__":
    main()
