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

Shown output
------------
A ``text`` fence titled ``Output`` right after a ``python`` fence (only blank lines between)
shows what that block prints, and is checked: the block's captured standard output must equal
the fence's text (trailing spaces and blank lines aside; ``...`` stands for any text, as in a
doctest). Keep printed numbers stable by formatting them in the example (``f"{loss:.4f}"``,
``np.round``), not by loosening the match::

    ```python
    print(LSTMCell(3, 4, rng=0).num_parameters())
    ```

    ```text title="Output"
    128
    ```

The site shows the fence with the title "Output". ``tests/test_docs_pages.py`` checks that every
``python`` fence that prints is followed by one.

Files under ``docs/generated/`` are written by the docs build and are not collected.
"""

from __future__ import annotations

import contextlib
import io
from doctest import ELLIPSIS, NORMALIZE_WHITESPACE, OutputChecker

import numpy as np
import pytest
from sybil import Sybil
from sybil.evaluators.python import PythonEvaluator
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser
from sybil.parsers.markdown.lexers import FencedCodeBlockLexer
from sybil.parsers.rest import DocTestParser
from sybil.sybil import SybilCollection

from lstmkit import activations, initializers

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


#: The info string of a fence that shows the output of the python fence just before it.
OUTPUT_INFO = 'text title="Output"'
_PRINTED = "_lstmkit_printed"  # namespace key: {start of a python fence: what it printed}


class _CapturingEvaluator(PythonEvaluator):
    """Runs a python fence and keeps what it printed, for the Output fence after it."""

    def __call__(self, example):  # type: ignore[no-untyped-def]
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                super().__call__(example)
        finally:
            example.namespace.setdefault(_PRINTED, {})[example.region.start] = printed.getvalue()


class _PythonBlocks(PythonCodeBlockParser):
    """Python fences and doctests, minus snippet includes (source shown on the site, not run)."""

    def __init__(self, doctest_optionflags: int = 0) -> None:
        super().__init__(doctest_optionflags=doctest_optionflags)
        self.codeblock_parser = self.codeblock_parser_class("python", _CapturingEvaluator())

    def __call__(self, document):  # type: ignore[no-untyped-def]
        for region in super().__call__(document):
            if isinstance(region.parsed, str) and region.parsed.lstrip().startswith("--8<--"):
                continue
            region.evaluator = _skip_without_optional_packages(region.evaluator)
            yield region


def _shown_output_matches(shown: str, printed: str) -> bool:
    def clean(text: str) -> str:
        return "\n".join(line.rstrip() for line in text.strip("\n").splitlines()) + "\n"

    return OutputChecker().check_output(clean(shown), clean(printed), ELLIPSIS)


class _OutputBlocks:
    """Output fences: each is checked against what the python fence before it printed."""

    def __init__(self) -> None:
        self.lexer = FencedCodeBlockLexer(
            language=r".+", mapping={"language": "arguments", "source": "source"}
        )

    def __call__(self, document):  # type: ignore[no-untyped-def]
        fences = list(self.lexer(document))
        for before, region in zip([None, *fences], fences):
            if region.lexemes["arguments"].strip() != OUTPUT_INFO:
                continue
            between = "" if before is None else document.text[before.end : region.start]
            if before is None or before.lexemes["arguments"] != "python" or between.strip():
                line = document.text.count("\n", 0, region.start) + 1
                raise ValueError(
                    f"{document.path}, line {line}: an Output fence must follow a python fence"
                    " (only blank lines between)"
                )
            region.parsed = (before.start, str(region.lexemes["source"]))
            region.evaluator = _check_output
            yield region


def _check_output(example):  # type: ignore[no-untyped-def]
    python_start, shown = example.parsed
    printed = example.namespace.get(_PRINTED, {}).get(python_start)
    if printed is None:
        missing = example.namespace.get("_lstmkit_skipped_for")
        if missing is not None:  # its python fence was skipped for an optional package
            pytest.skip(f"shows the output of a block skipped for lack of {missing!r}")
        return "the python fence before this Output fence did not run (skipped?)"
    if not _shown_output_matches(shown, printed):
        return f"Output fence differs from what the block printed.\nShown:\n{shown}\nPrinted:\n{printed}"
    return None


# The name registries as a fresh interpreter has them: every page starts from these (a unit test
# that registers its own activation must not change what a page prints) and leaves them so.
_REGISTRIES = [(activations._REGISTRY, dict(activations._REGISTRY))]
_REGISTRIES.append((initializers._USER, dict(initializers._USER)))


def _fresh_registries() -> None:
    for registry, fresh in _REGISTRIES:
        registry.clear()
        registry.update(fresh)  # type: ignore[arg-type]


def _numpy_errors_raise(namespace: dict) -> None:
    # Same rule as the unit tests: floating-point overflow / invalid / divide fail the example.
    namespace["_lstmkit_errstate"] = errstate = np.errstate(all="raise", under="ignore")
    errstate.__enter__()
    # A page that sets NumPy's print options must not change what the next page prints.
    namespace["_lstmkit_printoptions"] = np.get_printoptions()
    _fresh_registries()


def _numpy_errors_restore(namespace: dict) -> None:
    namespace.pop("_lstmkit_errstate").__exit__(None, None, None)
    np.set_printoptions(**namespace.pop("_lstmkit_printoptions"))
    _fresh_registries()


_markdown_parsers = [_PythonBlocks(doctest_optionflags=_FLAGS), _OutputBlocks(), SkipParser()]

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
