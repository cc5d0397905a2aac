"""A small central-difference gradient checker for the variant tests (float64 only).

The loss is ``sum(y * dy) + sum_fields(final * d_final)`` with random ``dy`` and
``d_final``, so its gradient is what ``runner.backward(cache, dy, d_final)``
returns and accumulates. Every parameter entry, every input entry and every
entry of the chosen initial-state fields is perturbed by +-eps.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np


def _state_fields(state: Any, fields: tuple[str, ...] | None) -> list[str]:
    names = [f.name for f in attrs.fields(type(state))]
    return names if fields is None else [n for n in names if n in fields]


def _loss(
    runner: Any, x: Any, init: Any, lengths: Any, dy: Any, d_final: Any, training: bool
) -> float:
    if training:
        y, final, _ = runner.forward(x, init, lengths)
    else:
        y, final = runner(x, init, lengths)
    total = float(np.sum(y * dy))
    for name in _state_fields(final, None):
        total += float(np.sum(getattr(final, name) * getattr(d_final, name)))
    return total


def check_runner_gradients(
    runner: Any,
    x: np.ndarray,
    init: Any,
    lengths: Any = None,
    *,
    state_fields: tuple[str, ...] | None = None,
    reseed: Any = None,
    eps: float = 1e-6,
    seed: int = 0,
) -> float:
    """Compare ``runner.backward`` with central differences; return the worst relative error.

    ``reseed``, if given, is called before every forward pass (to replay the same random
    masks of a regularization wrapper). ``state_fields`` limits which initial-state fields
    are perturbed (all by default).
    """
    rng = np.random.default_rng(seed)
    if reseed is not None:
        reseed()
    y, final, cache = runner.forward(x, init, lengths)
    dy = rng.normal(size=y.shape)
    d_final = type(final)(
        **{n: rng.normal(size=getattr(final, n).shape) for n in _state_fields(final, None)}
    )
    # zero the state gradient of fields we do not check (e.g. dropout masks)
    if state_fields is not None:
        d_final = type(final)(
            **{
                n: (
                    getattr(d_final, n) if n in state_fields else np.zeros_like(getattr(d_final, n))
                )
                for n in _state_fields(final, None)
            }
        )
    params = runner.named_parameters()
    for p in params.values():
        p.grad[...] = 0
    dx, d_init = runner.backward(cache, dy, d_final)

    def loss() -> float:
        if reseed is not None:
            reseed()
        return _loss(runner, x, init, lengths, dy, d_final, training=True)

    worst = 0.0
    targets: list[tuple[str, np.ndarray, np.ndarray]] = [
        (name, p.value, p.grad.copy()) for name, p in params.items()
    ]
    targets.append(("x", x, dx))
    for n in _state_fields(init, state_fields):
        targets.append((f"init.{n}", getattr(init, n), getattr(d_init, n)))
    for name, array, analytic in targets:
        numeric = np.zeros(array.shape)
        # index in place: reshape(-1) would silently copy a non-contiguous array (e.g. a
        # transposed semi-orthogonal U) and the perturbation would never reach the model
        for k in np.ndindex(array.shape):
            old = array[k]
            array[k] = old + eps
            plus = loss()
            array[k] = old - eps
            minus = loss()
            array[k] = old
            numeric[k] = (plus - minus) / (2 * eps)
        scale = max(1.0, float(np.abs(numeric).max(initial=0.0)))
        err = float(np.abs(numeric - analytic).max(initial=0.0)) / scale
        assert err < 1e-6, f"{name}: max |fd - analytic| / scale = {err:.3g}"
        worst = max(worst, err)
    return worst
