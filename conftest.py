"""Run the documentation as tests, with Sybil.

What runs
---------
* Markdown (``docs/**/*.md`` and ``README.md``): every fenced block whose info string is exactly
  ``python`` is executed, top to bottom; a ``python`` fence whose text starts with ``>>>`` is run as
  a doctest (its printed output is compared). All blocks of one page share one namespace, so a
  page reads as one script. Failures report the file and line of the block.
  A ``python`` fence that holds only a snippet include (``--8<-- "src/...py:section"``) shows
  library source on the site and is not run here (the unit tests cover that code).
* Docstrings in ``src/lstmkit/**/*.py``: every ``>>>`` example is run as a doctest, in the
  namespace of its module.

Blocks that must not run
------------------------
Put Sybil's skip marker on the line before the fence (it skips the next *Python* example, so
never put it before a ``bash`` or ``text`` fence: those are not run anyway)::

    <!-- skip: next -->
    ```python
    train_for_a_week()
    ```

(it is an HTML comment, so the site does not show it). ``<!-- skip: start -->`` ...
``<!-- skip: end -->`` skips a range. A fence with any other info string (``text``, ``bash``,
``pycon``, ``python title="..."``) is not run either; prefer the marker for Python so the code is
still highlighted as Python.

Optional packages
-----------------
A block that imports a package only an optional extra installs (``OPTIONAL_MODULES``: PyTorch,
ONNX, matplotlib, ...) is skipped when that package is missing, with the rest of its page that
depends on it, so the unit tests run with the light ``unit`` extra alone.

Files under ``docs/generated/`` are written by the docs build and are not collected.
"""

from __future__ import annotations

from doctest import ELLIPSIS, NORMALIZE_WHITESPACE

import numpy as np
import pytest
from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser
from sybil.parsers.rest import DocTestParser
from sybil.sybil import SybilCollection

_FLAGS = ELLIPSIS | NORMALIZE_WHITESPACE


# Packages that only optional extras install (see the README's extras table). A Python block that
# fails to import one of them is skipped, and so is any later block of the same page that then
# fails with a NameError (it used a name the skipped block would have defined). With every extra
# installed (the `test` extra) nothing is skipped.
OPTIONAL_MODULES = frozenset(
    {"torch", "onnx", "onnxruntime", "matplotlib", "mkdocs", "safetensors", "tqdm"}
)


def _skip_without_optional_packages(evaluator):  # type: ignore[no-untyped-def]
    def evaluate(example):  # type: ignore[no-untyped-def]
        namespace = example.namespace
        try:
            return evaluator(example)
        except ModuleNotFoundError as error:
            missing = (error.name or "").partition(".")[0]
            if missing not in OPTIONAL_MODULES:
                raise
            namespace["_lstmkit_skipped_for"] = missing
            pytest.skip(f"needs {missing!r}, an optional package that is not installed")
        except NameError:
            missing = namespace.get("_lstmkit_skipped_for")
            if missing is None:
                raise
            pytest.skip(f"uses a name from an earlier block skipped for lack of {missing!r}")

    return evaluate


class _PythonBlocks(PythonCodeBlockParser):
    """Python fences and doctests, minus snippet includes (source shown on the site, not run)."""

    def __call__(self, document):  # type: ignore[no-untyped-def]
        for region in super().__call__(document):
            if isinstance(region.parsed, str) and region.parsed.lstrip().startswith("--8<--"):
                continue
            region.evaluator = _skip_without_optional_packages(region.evaluator)
            yield region


def _numpy_errors_raise(namespace: dict) -> None:
    # Same rule as the unit tests: floating-point overflow / invalid / divide fail the example.
    namespace["_lstmkit_errstate"] = errstate = np.errstate(all="raise", under="ignore")
    errstate.__enter__()


def _numpy_errors_restore(namespace: dict) -> None:
    namespace.pop("_lstmkit_errstate").__exit__(None, None, None)


_markdown_parsers = [_PythonBlocks(doctest_optionflags=_FLAGS), SkipParser()]

# Sybil matches patterns against the end of each path relative to ``path`` (pathlib's match).
_docs = Sybil(
    parsers=_markdown_parsers,
    path="docs",
    patterns=["*.md"],
    excludes=["generated/*", "generated/*/*", "assets/*", "assets/*/*", "assets/*/*/*"],
    setup=_numpy_errors_raise,
    teardown=_numpy_errors_restore,
    name="docs",
)

_readme = Sybil(
    parsers=_markdown_parsers,
    patterns=["README.md"],
    excludes=["*/README.md"],  # only the repository's own README
    setup=_numpy_errors_raise,
    teardown=_numpy_errors_restore,
    name="readme",
)

_docstrings = Sybil(
    parsers=[DocTestParser(optionflags=_FLAGS)],
    path="src/lstmkit",
    patterns=["*.py"],
    setup=_numpy_errors_raise,
    teardown=_numpy_errors_restore,
    name="docstrings",
)

pytest_collect_file = SybilCollection([_docs, _readme, _docstrings]).pytest()


@pytest.fixture(autouse=True)
def _numpy_errors_are_failures():
    """Floating-point warnings fail any test collected from the repository root."""
    with np.errstate(all="raise", under="ignore"):
        yield
