"""MkDocs hooks: fetch KaTeX and draw every figure before the site is built.

``on_pre_build`` runs before MkDocs collects the files, so what it writes into
``docs/`` is part of the site:

* ``docs/assets/katex/``: KaTeX's ``dist`` files (script, stylesheet, fonts and
  the auto-render extension), installed with ``npm`` from the npm registry
  the first time and reused afterwards. The site then typesets math with no
  network access when viewed.
* ``docs/generated/``: every figure registered in :mod:`lstmkit.diagrams`
  (:func:`lstmkit.diagrams.figures`: cells drawn from real cell objects, plots
  of every registered activation and its derivative), the activation
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
    """Draw every figure of the site into ``out``; returns the paths written.

    The figures are those registered with :func:`lstmkit.diagrams.register_figure` (the test
    suite checks the layout of each), plus this page set's own layering diagram.
    """
    sys.path.insert(0, str(ROOT / "src"))  # build from a fresh clone without installing
    try:
        from lstmkit import diagrams
    finally:
        sys.path.pop(0)

    figures = {**diagrams.figures(), **docs_figures()}
    written = []
    for name, make in figures.items():
        _write(out / name, make())
        written.append(out / name)
    written += activation_catalogue(out)
    return written


def docs_figures() -> dict[str, Any]:
    """Figures that only this site needs, by file name (drawn by functions of no arguments)."""
    return {"layers.svg": layers_diagram}


def activation_catalogue(out: Path) -> list[Path]:
    """A Markdown table of every registered activation with its plot (drawn as a figure)."""
    from lstmkit import activations

    rows = ["| activation | plot: f(z) solid, f'(z) dashed, z in [-5, 5] |", "|---|---|"]
    for name in activations.available():
        # The link is relative to the page that includes the fragment (docs/guides/).
        image = f"../generated/activations/{name}.svg"
        rows.append(f'| `{name}` | ![{name} and its derivative]({image}){{ width="360" }} |')
    md = out / "activation-catalogue.md"
    _write(md, "\n".join(rows) + "\n")
    return [md]


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
    out.append(f'<text x="8" y="{h - 4}" font-family="sans-serif" font-size="12">imports</text>')
    out.append("</svg>")
    return "".join(out)
