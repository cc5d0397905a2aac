"""MkDocs hook: fill the gallery page's example entries.

Each ``<!-- example: NAME.py ARGS -->`` line of ``docs/gallery.md`` becomes the example's
description (its docstring, read now), the command it was recorded with, its summary line, its
plot, everything it printed (``docs/gallery/NAME.txt`` and ``.png``, recorded by
``tools/build_gallery.py``) and its source (a snippet include of the script). The rendering lives
in ``tools/build_gallery.py`` so the page, the recorder and the tests read the same markers.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

_TOOL = Path(__file__).resolve().parent.parent / "tools" / "build_gallery.py"
_spec = importlib.util.spec_from_file_location("lstmkit_build_gallery", _TOOL)
assert _spec is not None and _spec.loader is not None
gallery = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = gallery  # dataclasses look their module up there
_spec.loader.exec_module(gallery)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if page.file.src_uri != "gallery.md":
        return markdown
    return gallery.render_page(markdown)
