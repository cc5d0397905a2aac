"""MkDocs hooks: fetch KaTeX and draw every figure before the site is built.

``on_pre_build`` runs before MkDocs collects the files, so what it writes into
``docs/`` is part of the site:

* ``docs/assets/katex/``: KaTeX's ``dist`` files (script, stylesheet, fonts and
  the auto-render extension), installed with ``npm`` from the npm registry
  the first time and reused afterwards. The site then typesets math with no
  network access when viewed.
* ``docs/generated/``: SVG figures drawn by :mod:`lstmkit.diagrams` from real
  cell objects, plots of every registered activation and its derivative
  (polylines computed from the functions themselves), the activation
  catalogue as a Markdown fragment, and the architecture's layering diagram.

Both folders are git-ignored. Files are only rewritten when their content
changes, so ``mkdocs serve`` does not rebuild in a loop.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
KATEX = DOCS / "assets" / "katex"
GENERATED = DOCS / "generated"
KATEX_VERSION = "0.19.1"

log = logging.getLogger("mkdocs.hooks.lstmkit")


def on_pre_build(config: Any, **kwargs: Any) -> None:
    ensure_katex()
    generate_figures(GENERATED)


# -- KaTeX --------------------------------------------------------------------------------------


def ensure_katex(target: Path = KATEX) -> None:
    """Install KaTeX's dist files into ``target`` with npm, unless they are already there."""
    needed = ["katex.min.js", "katex.min.css", "contrib/auto-render.min.js"]
    if all((target / name).is_file() for name in needed) and (target / "fonts").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            "KaTeX is missing from docs/assets/katex and npm is not installed: install Node.js "
            "and npm (Debian: apt-get install -y npm) so the build can run `npm install katex`"
        )
    log.info("installing KaTeX %s from the npm registry into %s", KATEX_VERSION, target)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                npm,
                "install",
                "--no-save",
                "--no-audit",
                "--no-fund",
                "--no-package-lock",
                "--prefix",
                tmp,
                f"katex@{KATEX_VERSION}",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        dist = Path(tmp) / "node_modules" / "katex" / "dist"
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for name in ["katex.min.js", "katex.min.css"]:
            if (dist / name).is_file():
                shutil.copy2(dist / name, staging / name)
        (staging / "contrib").mkdir()
        shutil.copy2(dist / "contrib" / "auto-render.min.js", staging / "contrib")
        shutil.copytree(dist / "fonts", staging / "fonts")
        shutil.copy2(Path(tmp) / "node_modules" / "katex" / "LICENSE", staging / "LICENSE")
        # Swap in only once complete, so an interrupted install is retried next time.
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)


# -- figures ------------------------------------------------------------------------------------


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def generate_figures(out: Path) -> list[Path]:
    """Draw every figure of the site into ``out``; returns the paths written."""
    sys.path.insert(0, str(ROOT / "src"))  # build from a fresh clone without installing
    try:
        from lstmkit import LSTMCell, diagrams
        from lstmkit.cells.convlstm import ConvLSTMCell
        from lstmkit.cells.coupled import CoupledLSTMCell
        from lstmkit.cells.gru import GRUCell
        from lstmkit.cells.layernorm import LayerNormLSTMCell
        from lstmkit.cells.projection import ProjectionLSTMCell
    finally:
        sys.path.pop(0)

    lstm = LSTMCell(3, 4, rng=0)
    figures = {
        "rolled.svg": diagrams.rolled_rnn(),
        "unrolled.svg": diagrams.unrolled_rnn(4),
        "chain-rnn.svg": diagrams.chain(),
        "chain-lstm.svg": diagrams.chain(lstm),
        "notation.svg": diagrams.notation(),
        "lstm.svg": diagrams.draw(lstm),
        "lstm-cell-state.svg": diagrams.draw(lstm, highlight="cell_state"),
        "lstm-gate.svg": diagrams.draw(lstm, highlight=["forget", "forget_mul"]),
        "lstm-forget.svg": diagrams.draw(lstm, highlight="forget"),
        "lstm-input.svg": diagrams.draw(lstm, highlight=["input", "candidate"]),
        "lstm-update.svg": diagrams.draw(lstm, highlight="update"),
        "lstm-output.svg": diagrams.draw(lstm, highlight=["output", "hidden"]),
        "lstm-peephole.svg": diagrams.draw(
            LSTMCell(3, 4, peephole=True, rng=0), highlight="peephole"
        ),
        "lstm-hard-sigmoid.svg": diagrams.draw(
            LSTMCell(3, 4, gate_activation="hard_sigmoid", rng=0),
            highlight=["forget", "input", "output"],
        ),
        "coupled.svg": diagrams.draw(CoupledLSTMCell(3, 4, rng=0), highlight="coupled"),
        "gru-olah.svg": diagrams.draw(
            GRUCell(3, 4, update_convention="olah", reset_after=False, rng=0)
        ),
        "gru.svg": diagrams.draw(GRUCell(3, 4, rng=0)),
        "layernorm.svg": diagrams.draw(LayerNormLSTMCell(3, 4, rng=0), highlight="layer_norm"),
        "projection.svg": diagrams.draw(
            ProjectionLSTMCell(3, 8, proj_size=2, rng=0), highlight=["projection", "hidden"]
        ),
        "stacked.svg": diagrams.stacked(2, 4),
        "bidirectional.svg": diagrams.bidirectional(4),
        "reversal.svg": diagrams.reversal([5, 3]),
        "convlstm.svg": diagrams.conv_lstm(ConvLSTMCell((16, 16, 1), 8, 3, rng=0)),
        "layers.svg": layers_diagram(),
    }
    written = []
    for name, svg in figures.items():
        _write(out / name, svg)
        written.append(out / name)
    written += activation_catalogue(out)
    return written


def activation_catalogue(out: Path) -> list[Path]:
    """One plot per registered activation (function and derivative) and a Markdown table."""
    import numpy as np

    from lstmkit import activations

    rows = ["| activation | plot: f(z) solid, f'(z) dashed, z in [-5, 5] |", "|---|---|"]
    paths = []
    z = np.linspace(-5.0, 5.0, 401)
    for name in activations.available():
        act = activations.get(name)
        y = act(z)
        dy = act.grad(z, y)
        svg = plot_svg(z, [(y, "f(z)", "solid"), (dy, "f'(z)", "dashed")], title=name)
        path = out / "activations" / f"{name}.svg"
        _write(path, svg)
        paths.append(path)
        # The link is relative to the page that includes the fragment (docs/guides/).
        image = f"../generated/activations/{name}.svg"
        rows.append(f'| `{name}` | ![{name} and its derivative]({image}){{ width="360" }} |')
    md = out / "activation-catalogue.md"
    _write(md, "\n".join(rows) + "\n")
    return paths + [md]


def plot_svg(x: Any, series: list[tuple[Any, str, str]], title: str) -> str:
    """A small line plot as SVG: axes through zero, one polyline per series."""
    import numpy as np

    w, h, pad = 360, 220, 30
    ys = np.concatenate([np.asarray(s) for s, _, _ in series])
    lo, hi = float(min(ys.min(), -1.0)), float(max(ys.max(), 1.0))
    lo, hi = max(lo, -5.0), min(hi, 5.0)

    def px(v: float) -> float:
        return pad + (v - x[0]) / (x[-1] - x[0]) * (w - 2 * pad)

    def py(v: float) -> float:
        return h - pad - (min(max(v, lo), hi) - lo) / (hi - lo) * (h - 2 * pad)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}">',
        f"<title>{title}</title>",
        '<rect width="100%" height="100%" fill="white"/>',
        f'<line x1="{pad}" y1="{py(0):.1f}" x2="{w - pad}" y2="{py(0):.1f}" stroke="#999"/>',
        f'<line x1="{px(0):.1f}" y1="{pad}" x2="{px(0):.1f}" y2="{h - pad}" stroke="#999"/>',
        (
            f'<text x="{w / 2}" y="18" font-family="sans-serif" font-size="14" text-anchor="middle">'
            f"{title}</text>"
        ),
    ]
    for y_pos, label in ((hi, f"{hi:g}"), (lo, f"{lo:g}")):
        parts.append(
            f'<text x="{px(0) - 4:.1f}" y="{py(y_pos) + 4:.1f}" font-family="sans-serif" '
            f'font-size="10" text-anchor="end">{label}</text>'
        )
    colours = {"solid": "#1c7ed6", "dashed": "#e8590c"}
    for k, (values, label, style) in enumerate(series):
        points = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in zip(x, values))
        dash = ' stroke-dasharray="6 4"' if style == "dashed" else ""
        parts.append(
            f'<polyline fill="none" stroke="{colours[style]}" stroke-width="2"{dash} points="{points}"/>'
        )
        parts.append(
            f'<text x="{w - pad}" y="{pad + 14 * k}" font-family="sans-serif" font-size="12" '
            f'text-anchor="end" fill="{colours[style]}">{label}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def layers_diagram() -> str:
    """The package's layers as stacked boxes; each imports only the ones above it."""
    layers = [
        ("1", "activations, protocols", "Activation objects; the cell, runner, layer contracts"),
        ("2", "initializers", "(shape, rng, dtype) -> array, by name or object"),
        ("3", "module, sequence, config", "Module base, states, the lengths plan, the registry"),
        ("4", "gate", "Gate: activation(x @ W + h @ U + b), with its config"),
        ("5", "cells, regularization", "GatedCell, LSTMCell and variants; dropout, zoneout"),
        ("6", "runners", "Recurrent, Stacked, Bidirectional: the time loop"),
        ("7", "around them", "layers, training, save/load, interop, diagrams"),
    ]
    w, row = 720, 50
    h = row * len(layers) + 20
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}">',
        "<title>Layers of lstmkit</title>",
    ]
    for k, (num, mod, what) in enumerate(layers):
        y = 10 + row * k
        shade = 240 - 12 * k
        out.append(
            f'<rect x="40" y="{y}" width="{w - 80}" height="{row - 10}" rx="6" '
            f'fill="rgb({shade},{248 - 4 * k},{shade})" stroke="#6b8f62"/>'
            f'<text x="60" y="{y + 26}" font-family="sans-serif" font-size="15" font-weight="bold">'
            f"{num}. {mod}</text>"
            f'<text x="300" y="{y + 26}" font-family="sans-serif" font-size="13">{what}</text>'
        )
        if k:
            out.append(
                f'<path d="M25,{y + 20} L25,{y - 20}" stroke="#444" stroke-width="1.5"/>'
                f'<polygon points="25,{y - 24} 21,{y - 14} 29,{y - 14}" fill="#444"/>'
            )
    out.append(f'<text x="18" y="{h - 4}" font-family="sans-serif" font-size="10">imports</text>')
    out.append("</svg>")
    return "".join(out)
