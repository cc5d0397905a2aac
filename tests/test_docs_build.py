"""The docs site builds with ``mkdocs build --strict``, and every public name has a docstring."""

from __future__ import annotations

import html
import importlib
import inspect
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

import lstmkit

ROOT = Path(__file__).resolve().parent.parent


def _public_modules() -> list[str]:
    names = ["lstmkit"]
    for info in pkgutil.walk_packages(lstmkit.__path__, prefix="lstmkit."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return names


def _public_names(module: object) -> list[str]:
    exported = getattr(module, "__all__", None)
    if exported is not None:
        return list(exported)
    return [
        n
        for n, v in vars(module).items()
        if not n.startswith("_") and getattr(v, "__module__", None) == module.__name__
    ]  # type: ignore[attr-defined]


def _undocumented() -> list[str]:
    missing = []
    for mod_name in _public_modules():
        try:
            module = importlib.import_module(mod_name)
        except ImportError:  # an optional dependency (torch, onnx) is absent
            continue
        if not inspect.getdoc(module):
            missing.append(mod_name)
        for name in _public_names(module):
            obj = getattr(module, name)
            if inspect.ismodule(obj):
                continue
            # Instances (e.g. activations.sigmoid) are documented by their class and module.
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if not (obj.__doc__ or "").strip():
                missing.append(f"{mod_name}.{name}")
    return sorted(set(missing))


def test_every_public_name_has_a_docstring():
    assert _undocumented() == []


def test_the_docstring_check_finds_a_missing_docstring(monkeypatch):
    def undocumented_helper():
        return None

    monkeypatch.setattr(lstmkit, "undocumented_helper", undocumented_helper, raising=False)
    monkeypatch.setattr(lstmkit, "__all__", [*lstmkit.__all__, "undocumented_helper"])
    assert "lstmkit.undocumented_helper" in _undocumented()


_BUILD: dict[str, Any] = {}


def built_site() -> Path:
    """The site, built once per test session with ``mkdocs build --strict`` (skips without the
    docs toolchain); tests/test_reference.py reads the same build. A failed build fails every
    caller with its log, without building again."""
    if shutil.which("npm") is None and not (ROOT / "docs/assets/katex/katex.min.js").is_file():
        pytest.skip("KaTeX is not installed and npm is not available to fetch it")
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("mkdocstrings_handlers.python")
    if not _BUILD:
        # Kept until the session ends (the directory goes when the object is collected).
        _BUILD["tmp"] = tempfile.TemporaryDirectory(prefix="lstmkit-site-")
        site = Path(_BUILD["tmp"].name) / "site"
        env = {
            **os.environ,
            "NO_MKDOCS_2_WARNING": "1",
            "PYTHONWARNINGS": "ignore::DeprecationWarning",
        }
        result = subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
            cwd=ROOT,
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        _BUILD["site"] = site
        _BUILD["error"] = (
            None if result.returncode == 0 else result.stdout[-3000:] + result.stderr[-3000:]
        )
    assert _BUILD["error"] is None, _BUILD["error"]
    return _BUILD["site"]


def test_mkdocs_build_strict():
    site = built_site()
    page = (site / "lstm-figure-by-figure" / "index.html").read_text(encoding="utf-8")
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    # The snippet includes pulled real source lines in, and the figures were drawn.
    assert "f = self.forget(x, h_prev, c_prev)" in text
    assert "--8<--" not in text
    assert (site / "generated" / "lstm-forget.svg").is_file()
    assert (site / "assets" / "katex" / "katex.min.js").is_file()
    for page_path in site.rglob("*.html"):
        text = page_path.read_text(encoding="utf-8")
        assert "cdn.jsdelivr" not in text and "fonts.googleapis" not in text, page_path
