"""MkDocs hooks for "Watch an LSTM think": measure the saved models, draw, fill in the numbers.

``on_pre_build`` loads the two models that ``examples/watch_lstm_think.py`` saved under
``examples/data/`` (it never trains), traces them on text and sequences generated here, and
writes the figures into ``docs/generated/watch/``. ``on_page_markdown`` then replaces every
``{{watch:NAME}}`` in ``watch-an-lstm-think.md`` with the number, table or coloured text of
that name from the same computation, so no number in the prose is typed by hand. An unknown
name stops the build.

The computation is :func:`measure`; ``tests/test_watch_page.py`` runs it too.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "generated" / "watch"
DATA = ROOT / "examples" / "data"
PAGE = "watch-an-lstm-think.md"
TRACED_CHARS = 12000  # characters of the held-out file that are traced
EXCERPT = 700  # characters shown as coloured text
STRONG = 0.5  # |r| from which the page says a unit tracks a feature

FEATURES = {
    "in_string": "inside a string literal",
    "in_comment": "inside a comment",
    "bracket_depth": "bracket depth",
    "indent": "indentation (leading spaces)",
    "column": "position in the line",
}

log = logging.getLogger("mkdocs.hooks.lstmkit.watch")
_values: dict[str, str] = {}


def on_pre_build(config: Any, **kwargs: Any) -> None:
    _values.clear()
    _values.update(measure(OUT))


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in _values:
            raise KeyError(f"{PAGE}: no computed value named {name!r} (known: {sorted(_values)})")
        return _values[name]

    return re.sub(r"\{\{watch:([a-z0-9_.-]+)\}\}", fill, markdown)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def measure(out: Path) -> dict[str, str]:
    """Trace the saved models, write the figures into ``out``, return the page's values."""
    sys.path.insert(0, str(ROOT / "src"))
    try:
        import numpy as np

        import lstmkit
        from lstmkit import trace_render as render
        from lstmkit.datasets import ANALYSIS_MODULES, CHAR_VOCAB, encode_chars, python_source_text
        from lstmkit.trace import trace
        from lstmkit.trace_analysis import (
            python_text_features,
            rank_units,
            saturation,
            unit_correlations,
        )
    finally:
        sys.path.pop(0)

    values: dict[str, str] = {}
    train_log = json.loads((DATA / "watch_lstm_think_log.json").read_text(encoding="utf-8"))
    char_log, add_log = train_log["char_model"], train_log["adding_model"]
    values.update(
        {
            "corpus": char_log["corpus"],
            "train_python": char_log["python_version"],
            "hidden": str(char_log["hidden"]),
            "parameters": f"{char_log['parameters']:,}",
            "epochs": str(char_log["epochs"]),
            "updates": f"{char_log['updates']:,}",
            "train_seconds": f"{char_log['seconds']:.0f}",
            "uniform_loss": f"{char_log['uniform_loss']:.2f}",
            "last_epoch_loss": f"{char_log['last_epoch_loss']:.2f}",
            "held_out_loss": f"{char_log['held_out_loss']:.2f}",
            "held_out_bits": f"{char_log['held_out_loss'] / np.log(2):.2f}",
        }
    )

    # -- the character model on text it never saw -----------------------------------------------
    model = lstmkit.load(DATA / "python_char_lstm.npz")
    source = python_source_text(ANALYSIS_MODULES)
    text = source.text[:TRACED_CHARS]
    codes, replaced = encode_chars(text)
    x = np.eye(len(CHAR_VOCAB), dtype=model.dtype)[codes][None]
    result = trace(model, x, gates=["forget", "input", "output"])
    names = list(result.layers)
    values["vocab"] = str(len(CHAR_VOCAB))
    values["traced"] = f"the first {len(text):,} characters of `{source.files[0]}`"
    values["analysis_python"] = source.python_version
    values["replaced"] = str(replaced)
    logits = np.asarray(result.output[0, :-1], np.float64)
    logp = logits - logits.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    values["traced_loss"] = f"{-logp[np.arange(len(codes) - 1), codes[1:]].mean():.2f}"

    features = python_text_features(text)
    cells = {name: result.layer(name).states["c"][0].astype(np.float64) for name in names}
    all_cells = np.concatenate([cells[n] for n in names], axis=1)  # (time, 2H)
    hidden = cells[names[0]].shape[1]
    rows, best_units = [], {}
    for key, label in FEATURES.items():
        r = unit_correlations(all_cells, features[key])
        best, r_best, r_median = rank_units(r)
        layer, unit = divmod(best, hidden)
        best_units[key] = (layer, unit, r_best)
        verdict = "yes" if abs(r_best) >= STRONG else "no"
        rows.append(
            f"| {label} | layer {layer + 1}, unit {unit} | {r_best:+.2f} | {r_median:.2f} | {verdict} |"
        )
        values[f"r_{key}"] = f"{r_best:+.2f}"
        values[f"median_{key}"] = f"{r_median:.2f}"
        values[f"unit_{key}"] = f"layer {layer + 1}, unit {unit}"
    values["feature_table"] = "\n".join(
        [
            "| feature | best cell | its r | median cell's abs(r) | abs(r) >= 0.5 |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )
    found = [FEATURES[k] for k, (_, _, r) in best_units.items() if abs(r) >= STRONG]
    missed = [FEATURES[k] for k, (_, _, r) in best_units.items() if abs(r) < STRONG]
    values["found"] = ", ".join(found) if found else "none of them"
    values["not_found"] = ", ".join(missed) if missed else "none"

    start = _excerpt_start(text, features, EXCERPT)
    piece = text[start : start + EXCERPT]
    for key in ("in_string", "bracket_depth", "indent", "column"):
        layer, unit, r_best = best_units[key]
        whole = cells[names[layer]][:, unit]
        c = whole[start : start + EXCERPT]
        values[f"text_{key}"] = render.text_html(
            piece,
            c,
            vmin=float(whole.min()),
            vmax=float(whole.max()),
            title=f"cell {unit} of layer {layer + 1} (r = {r_best:+.2f} with {FEATURES[key]})",
        )

    # -- saturation of every gate, per layer ----------------------------------------------------
    for k, name in enumerate(names):
        layer = result.layer(name)
        fractions = {g: saturation(layer.gates[g][0]) for g in ("forget", "input", "output")}
        _write(
            out / f"saturation-layer{k + 1}.svg",
            render.saturation_svg(fractions, title=f"Layer {k + 1}: one dot per unit and gate"),
        )
        left, right = fractions["forget"]
        values[f"forget_right_half_{k + 1}"] = str(int((right > 0.5).sum()))
        values[f"forget_left_half_{k + 1}"] = str(int((left > 0.5).sum()))
        values[f"forget_right_mean_{k + 1}"] = f"{float(right.mean()):.2f}"
        values[f"forget_left_mean_{k + 1}"] = f"{float(left.mean()):.2f}"
        mid = 1 - left - right
        values[f"forget_mid_{k + 1}"] = str(int((mid > 0.5).sum()))

    r1, r2 = (float(values[f"forget_right_mean_{k}"]) for k in (1, 2))
    values["forget_compare"] = "more" if r2 > r1 else "less"
    # -- a heatmap and a cell against bracket depth ---------------------------------------------
    shown = 52  # characters: at 12 px a cell, the figure fits the column unscaled
    heat = slice(start, start + shown)
    c2 = cells[names[-1]][heat]
    _write(
        out / "heatmap-cells.svg",
        render.heatmap_svg(
            np.tanh(c2.T),
            row_labels=[str(u) if u % 8 == 0 else "" for u in range(hidden)],
            column_labels=list(text[heat]),
            vmin=-1,
            vmax=1,
            title=f"tanh(cell state) of layer {len(names)}: units (rows) over {shown} characters",
            cell=12.0,
        ),
    )
    f2 = result.layer(names[-1]).gates["forget"][0][heat]
    _write(
        out / "heatmap-forget.svg",
        render.heatmap_svg(
            f2.T,
            row_labels=[str(u) if u % 8 == 0 else "" for u in range(hidden)],
            column_labels=list(text[heat]),
            vmin=0,
            vmax=1,
            title=f"forget gate of layer {len(names)}: units (rows) over the same characters",
            cell=12.0,
        ),
    )
    layer, unit, r_best = best_units["bracket_depth"]
    _write(
        out / "cell-vs-depth.svg",
        render.scatter_svg(
            features["bracket_depth"].astype(float),
            cells[names[layer]][:, unit],
            title=f"cell {unit} of layer {layer + 1} against bracket depth (r = {r_best:+.2f})",
            xlabel="bracket depth",
            ylabel="cell state",
        ),
    )

    # -- the adding problem ---------------------------------------------------------------------
    values.update(_adding(np, lstmkit, trace, render, unit_correlations, add_log, out))
    return values


def _excerpt_start(text: str, features: dict[str, Any], length: int) -> int:
    """The top-level ``def`` whose first ``length`` characters change most in string, bracket
    and indentation features (the first such ``def`` on a tie)."""
    import numpy as np

    change = sum(
        np.abs(np.diff(features[k], prepend=0)) > 0
        for k in ("in_string", "bracket_depth", "indent")
    )
    starts = [
        m.start() for m in re.finditer(r"^def ", text, re.M) if m.start() + length <= len(text)
    ]
    if not starts:
        return 0
    return max(starts, key=lambda k: (int(change[k : k + length].sum()), -k))


def _adding(
    np: Any, lstmkit: Any, trace: Any, render: Any, correlate: Any, add_log: Any, out: Path
) -> dict[str, str]:
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from watch_lstm_think import adding_batch
    finally:
        sys.path.pop(0)
    model = lstmkit.load(DATA / "adding_lstm.npz")
    length = add_log["length"]
    x, y = adding_batch(np.random.default_rng(12345), 500, length)
    result = trace(model, x.astype(model.dtype))
    layer = next(iter(result.layers.values()))
    c = layer.states["c"].astype(np.float64)  # (500, T, H)
    target = y[:, 0]
    first = x[np.arange(500), np.argmax(x[:, :, 1], axis=1), 0]
    r_final = correlate(c[:, -1], target)
    order = np.argsort(-np.abs(r_final))
    top = [int(u) for u in order[:2]]
    pred = np.asarray(result.output, np.float64)[:, 0]
    mse = float(np.mean((pred - target) ** 2))
    # halfway: after the first mark, before the second, the carrying unit should hold the first number
    half = length // 2 - 1
    r_half = correlate(c[:, half], first)
    gate_i = layer.gates["input"].astype(np.float64)
    marked = x[:, :, 1] == 1
    u = top[0]
    values = {
        "add_hidden": str(add_log["hidden"]),
        "add_length": str(length),
        "add_steps": f"{add_log['steps']:,}",
        "add_seconds": f"{add_log['seconds']:.0f}",
        "add_mse": f"{mse:.4f}",
        "add_baseline": f"{add_log['baseline_mse']:.3f}",
        "add_unit": str(u),
        "add_unit2": str(top[1]),
        "add_r_final": f"{r_final[u]:+.2f}",
        "add_r_final2": f"{r_final[top[1]]:+.2f}",
        "add_r_median": f"{float(np.median(np.abs(r_final))):.2f}",
        "add_spread": (
            "most cells hold part of the sum"
            if float(np.median(np.abs(r_final))) >= 0.5
            else "the other cells hold little of it"
        ),
        "add_r_half": f"{r_half[u]:+.2f}",
        "add_input_marked": f"{float(gate_i[:, :, u][marked].mean()):.2f}",
        "add_input_unmarked": f"{float(gate_i[:, :, u][~marked].mean()):.2f}",
    }
    k = 0
    marks = np.nonzero(marked[k])[0]
    values["add_example"] = (
        f"{x[k, marks[0], 0]:.2f} + {x[k, marks[1], 0]:.2f} = {target[k]:.2f} "
        f"(predicted {pred[k]:.2f})"
    )
    _write(
        out / "adding-cells.svg",
        render.lines_svg(
            {f"cell {u}": c[k, :, u] for u in top} | {"input value": x[k, :, 0]},
            title="Adding problem: the cells that carry the sum (dashed: the marked steps)",
            ylabel="value",
            marks=[float(m) for m in marks],
        ),
    )
    return values
