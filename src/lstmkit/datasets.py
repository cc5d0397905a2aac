"""Real text that every Python installation has: the standard library's own source files.

Karpathy, Johnson and Fei-Fei (2015) trained character models on the Linux kernel's source
because code has structure a reader can check (strings, brackets, indentation). The Python
standard library is such a corpus on every machine that runs lstmkit, with no download: this
module reads chosen modules' ``.py`` files from the running interpreter
(``sysconfig.get_paths()["stdlib"]``), in a fixed order, so the same Python version always gives
the same text. Different Python versions ship different files, so the text records the version
it was read from.

Examples
--------
>>> from lstmkit.datasets import python_source_text
>>> corpus = python_source_text(["bisect"])
>>> corpus.files, corpus.text.startswith('\"\"\"Bisection algorithms')
(('bisect.py',), True)
"""

from __future__ import annotations

import platform
import sysconfig
from collections.abc import Sequence
from pathlib import Path

import attrs

__all__ = [
    "ANALYSIS_MODULES",
    "CHAR_VOCAB",
    "TRAINING_MODULES",
    "SourceText",
    "encode_chars",
    "python_source_text",
]

#: Modules read for training the example character models (all ASCII in CPython 3.10-3.13).
TRAINING_MODULES: tuple[str, ...] = (
    "abc",
    "bisect",
    "calendar",
    "colorsys",
    "contextlib",
    "copy",
    "csv",
    "dataclasses",
    "fnmatch",
    "genericpath",
    "gettext",
    "glob",
    "json/decoder",
    "json/encoder",
    "keyword",
    "numbers",
    "operator",
    "posixpath",
    "pprint",
    "queue",
    "random",
    "sched",
    "string",
    "tempfile",
    "textwrap",
    "tokenize",
    "types",
    "weakref",
)

#: A module kept out of training, on which the docs measure what units track.
ANALYSIS_MODULES: tuple[str, ...] = ("shutil",)

#: The characters of the example models: newline and printable ASCII (space to ``~``).
CHAR_VOCAB: str = "\n" + "".join(chr(k) for k in range(32, 127))


@attrs.frozen
class SourceText:
    """Text read from the standard library, and where it came from.

    Attributes
    ----------
    text : str
        The files' contents, in the order of ``files``, each ending with a newline.
    files : tuple of str
        Paths relative to ``stdlib``.
    stdlib : str
        The standard library folder they were read from.
    python_version : str
        The interpreter's version, e.g. ``"3.11.7"``.
    """

    text: str
    files: tuple[str, ...]
    stdlib: str
    python_version: str

    def describe(self) -> str:
        """One line naming the source: files, characters and Python version."""
        return (
            f"{len(self.files)} source files of the Python {self.python_version} standard "
            f"library ({', '.join(self.files[:3])}{', ...' if len(self.files) > 3 else ''}), "
            f"{len(self.text):,} characters"
        )


def python_source_text(
    modules: Sequence[str] = TRAINING_MODULES, *, max_chars: int | None = None
) -> SourceText:
    """Read standard-library modules' source from the running interpreter.

    Parameters
    ----------
    modules : sequence of str
        Module file names without ``.py``, with ``/`` for packages (``"json/decoder"``); read
        in this order.
    max_chars : int, optional
        Keep only the first ``max_chars`` characters.

    Returns
    -------
    SourceText

    Raises
    ------
    ValueError
        ``modules`` is empty or a string, or ``max_chars`` is not a positive integer.
    FileNotFoundError
        A module's file is not in this interpreter's standard library (the message names it).
    """
    if isinstance(modules, str) or not modules:
        raise ValueError(
            f"modules: expected a non-empty list of module names, received {modules!r}"
        )
    if max_chars is not None and (not isinstance(max_chars, int) or max_chars < 1):
        raise ValueError(f"max_chars: expected a positive integer or None, received {max_chars!r}")
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    parts, files = [], []
    for name in modules:
        path = stdlib / f"{name}.py"
        if not path.is_file():
            raise FileNotFoundError(
                f"modules: {name!r} has no source file {path} in this Python's standard library"
            )
        text = path.read_text(encoding="utf-8")
        parts.append(text if text.endswith("\n") else text + "\n")
        files.append(f"{name}.py")
    text = "".join(parts)
    if max_chars is not None:
        text = text[:max_chars]
    return SourceText(text, tuple(files), str(stdlib), platform.python_version())


def encode_chars(text: str, vocab: str = CHAR_VOCAB) -> tuple[list[int], int]:
    """Character indices in ``vocab``; a character outside it (a tab, non-ASCII) becomes a space.

    Returns
    -------
    codes : list of int
    replaced : int
        How many characters were outside ``vocab``.
    """
    index = {ch: k for k, ch in enumerate(vocab)}
    space = index.get(" ", 0)
    codes = [index.get(ch, -1) for ch in text]
    replaced = codes.count(-1)
    return [space if k < 0 else k for k in codes], replaced
