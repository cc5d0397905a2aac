"""The two-gate cell of the custom-cell guide, copied for the benchmark.

Source: ``docs/guides/custom-cell.md``, section "Build on ``GatedCell``" (the minimal gated unit,
Zhou et al., 2016). The class is the guide's code unchanged, so the benchmark times exactly what a
user who follows the guide gets: a cell that declares its two gates and routes their gradients,
with no kernel of its own. If the guide's cell changes, copy it here again.
"""

from __future__ import annotations

import attrs
import numpy as np

from lstmkit import Gate, HiddenState
from lstmkit.cells.gated import GatedCell
from lstmkit.gate import GateCache
from lstmkit.module import component


@attrs.frozen
class MinimalGatedCache:
    forget: GateCache
    candidate: GateCache
    h_prev: np.ndarray


@component
class MinimalGatedCell(GatedCell):
    """Minimal gated unit: h = (1 - f) * h_prev + f * candidate(x, f * h_prev)."""

    GATE_NAMES = ("forget", "candidate")
    STATE = HiddenState
    accepts_hoisted_inputs = True  # step_train gives x to the gates unchanged
    forget: Gate = attrs.field(init=False)
    candidate: Gate = attrs.field(init=False)

    def state_sizes(self):  # type: ignore[no-untyped-def]
        return {"h": self.hidden_size}

    def step_train(self, state, x):  # type: ignore[no-untyped-def]
        h_prev = state.h
        f, f_cache = self.forget.forward_train(x, h_prev)
        g, g_cache = self.candidate.forward_train(x, f * h_prev)
        h = h_prev + f * (g - h_prev)
        return HiddenState(h), h, MinimalGatedCache(f_cache, g_cache, h_prev)

    def step_backward(self, cache, d_state, d_y):  # type: ignore[no-untyped-def]
        f, g, h_prev = cache.forget.y, cache.candidate.y, cache.h_prev
        dh = d_y + d_state.h
        dx, d_fh, _ = self.candidate.backward(dh * f, cache.candidate)  # d(f * h_prev)
        df = dh * (g - h_prev) + d_fh * h_prev
        dx_f, dh_f, _ = self.forget.backward(df, cache.forget)
        return HiddenState(dh * (1 - f) + d_fh * f + dh_f), dx + dx_f
