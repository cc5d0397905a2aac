"""The "every cell" rows: lstmkit's other cells and paths against the fused LSTM and ``nn.GRU``.

Each kind is one model of a single-layer configuration, run by ``Recurrent`` in float32:

- ``gru``: ``GRUCell`` (PyTorch's conventions, ``reset_after=True``), against ``torch.nn.GRU``;
- ``step``: the plain ``LSTMCell`` on its step path, ``Recurrent(cell, fused=False)``;
- ``peephole``: ``LSTMCell(..., peephole=True)``;
- ``layernorm``: ``LayerNormLSTMCell``;
- ``guide``: the custom-cell guide's two-gate cell (``_guide_cell.py``).

All but ``gru`` are reported as a multiple of the fused plain LSTM of the same size (the
``lstmkit`` child of the same round and configuration). ``build`` is used by the lstmkit worker,
``render`` by ``run.py``.
"""

from __future__ import annotations

from typing import Any

from _common import CONFIGS, MODES

# In the order a child times them: the GRU first, right after PyTorch's child timed nn.GRU.
KINDS = ("gru", "step", "peephole", "layernorm", "guide")
LABELS = {
    "step": "step path ×fused",
    "peephole": "peephole ×fused",
    "layernorm": "layer-norm ×fused",
    "guide": "guide two-gate ×fused",
}
NAMES = {
    "gru": "GRUCell",
    "step": "LSTMCell with fused=False",
    "peephole": "peephole LSTMCell",
    "layernorm": "LayerNormLSTMCell",
    "guide": "the guide's MinimalGatedCell",
}
# Ratios to aim for (lower is better): GRU / nn.GRU, the others / fused plain LSTM.
TARGETS = {"gru": 1.0, "step": 1.3, "layernorm": 1.6, "guide": 0.75}


def single_layer(name: str) -> bool:
    _, _, _, _, layers, bidirectional = CONFIGS[name]
    return layers == 1 and not bidirectional


def build(kind: str, name: str, np_mod):  # type: ignore[no-untyped-def]
    """``(model, x, dy)`` for one kind at configuration ``name`` (single-layer only)."""
    from lstmkit import GRUCell, LayerNormLSTMCell, LSTMCell, Recurrent

    if not single_layer(name):
        raise ValueError(f"configs: the cell rows run single-layer configurations, not {name!r}")
    B, T, I, H, _, _ = CONFIGS[name]
    kw = {"dtype": np_mod.float32, "rng": 0}
    if kind == "gru":
        model = Recurrent(GRUCell(I, H, **kw))
    elif kind == "step":
        model = Recurrent(LSTMCell(I, H, **kw), fused=False)
    elif kind == "peephole":
        model = Recurrent(LSTMCell(I, H, peephole=True, **kw))
    elif kind == "layernorm":
        model = Recurrent(LayerNormLSTMCell(I, H, **kw))
    elif kind == "guide":
        from _guide_cell import MinimalGatedCell

        model = Recurrent(MinimalGatedCell(I, H, **kw))
    else:
        raise ValueError(f"cells: expected one of {KINDS}, received {kind!r}")
    x = np_mod.random.default_rng(1).standard_normal((B, T, I)).astype(np_mod.float32)
    dy = np_mod.ones((B, T, H), np_mod.float32)  # loss = sum of outputs
    return model, x, dy


def _ratio(num: float | None, den: float | None, target: float | None) -> str:
    if not num or not den:
        return "–"
    r = num / den
    cell = f"{r:.2f}"
    if target is not None:
        cell += f" [≤{target}]" + ("" if r <= target else " (not met)")
    return cell


def _ms(s: float | None) -> str:
    return "–" if s is None else (f"{s * 1e3:.3g}" if s < 0.1 else f"{s * 1e3:.0f}")


def render(
    runs: dict[int, dict[str, Any]], configs: list[str], kinds: list[str], shape_of: Any
) -> list[str]:
    """Markdown lines of the every-cell tables, one per thread count."""
    names = [c for c in configs if single_layer(c)]
    if not kinds or not names:
        return []
    out = ["## Every cell\n"]
    out.append(
        "Single-layer configurations, float32, `Recurrent`; same timing and rounds as above. "
        "Each `×fused` column is that model's time as a multiple of the fused plain "
        "`LSTMCell` of the same size (the lstmkit column above); GRU/nn.GRU = lstmkit "
        "`GRUCell` / PyTorch `nn.GRU`. Lower is better; target in brackets. step path = "
        "`Recurrent(LSTMCell(...), fused=False)`; guide two-gate = the minimal gated unit "
        "written as the custom-cell guide teaches (`benchmarks/_guide_cell.py`).\n"
    )
    for n, r in runs.items():
        res = r.get("cells", {}).get("results", [])
        t = {(x["config"], x["mode"], x["cell"]): x["median_s"] for x in res}
        paths = {x["cell"]: x["path"] for x in res}
        lstm = {(x["config"], x["mode"]): x["median_s"] for x in r["lstmkit"]["results"]}
        torch_res = (r.get("torch") or {}).get("results", [])
        tg = {(x["config"], x["mode"]): x["median_s"] for x in torch_res if x.get("cell") == "gru"}
        rel = [k for k in kinds if k != "gru"]
        head = ["config (B,T,I,H)", "pass", "fused LSTM ms"] + [LABELS[k] for k in rel]
        if "gru" in kinds:
            head += ["GRU ms", "nn.GRU ms", "GRU/nn.GRU"]
        out.append(f"### {n} thread{'s' if n > 1 else ''}\n")
        out.append("| " + " | ".join(head) + " |")
        out.append("|---|---|" + "---:|" * (len(head) - 2))
        for name in names:
            for mode in MODES:
                base = lstm.get((name, mode))
                row = [f"{name} ({shape_of(name)})", mode, _ms(base)]
                row += [_ratio(t.get((name, mode, k)), base, TARGETS.get(k)) for k in rel]
                if "gru" in kinds:
                    g, tgru = t.get((name, mode, "gru")), tg.get((name, mode))
                    row += [_ms(g), _ms(tgru), _ratio(g, tgru, TARGETS["gru"])]
                out.append("| " + " | ".join(row) + " |")
        out.append("")
        if paths:
            out.append(
                "Path each model took (`Recurrent.uses_fused()`): "
                + "; ".join(f"{NAMES[k]}: {paths[k]}" for k in kinds if k in paths)
                + ".\n"
            )
    return out
