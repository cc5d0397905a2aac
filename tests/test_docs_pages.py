"""The docs pages as a reader gets them: a quiet build and wording meant for users.

* ``mkdocs build`` with Python's default warning filters prints no warning raised by our
  configuration or hooks (``typing.io``/``typing.re`` deprecations came from preloading
  ``typing`` for griffe) and no traceback fragment;
* the pages and the README read as documentation, not as a work log: no issue numbers,
  "this round", run times of day or "miss" verdicts; the project's origin is named once per
  page, with a link, as "the original single-class NumPy LSTM this project grew from".

The executed examples and their shown output are checked by Sybil (``conftest.py``).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted(
    p
    for p in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    if "generated" not in p.parts and "assets" not in p.parts
)


def test_the_docs_build_prints_no_warning_or_traceback():
    if shutil.which("npm") is None and not (ROOT / "docs/assets/katex/katex.min.js").is_file():
        pytest.skip("KaTeX is not installed and npm is not available to fetch it")
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("mkdocstrings_handlers.python")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    # Material's end-of-life notice is not ours; the README says how to hide it.
    env |= {"NO_MKDOCS_2_WARNING": "1", "PYTHONWARNINGS": "default"}
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", tmp],
            cwd=ROOT,
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    for marker in ("Warning:", "Traceback", "typing.io", "typing.re", "WARNING"):
        assert marker not in output, output[-3000:]


# -- wording -----------------------------------------------------------------------------------

ORIGIN = "the original single-class NumPy LSTM this project grew from"
WORK_LOG = [
    re.compile(r"\bissues?\b(?! (?:a|an|the) )", re.I),  # "issue 5"; not "issues a warning"
    re.compile(r"#\d+\b"),
    re.compile(r"\b(?:this|last|next|previous) (?:round|session|sprint)\b", re.I),
    re.compile(r"\b(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?\b"),  # a time of day
    re.compile(r"\bmiss(?:es|ed)?\b", re.I),
    re.compile(r"\btargets? of\b", re.I),
]


def prose(text: str) -> str:
    """The text a reader reads as sentences: no fenced code, inline code, link targets or HTML
    comments."""
    text = re.sub(r"(?ms)^(\s*)(```|~~~).*?^\1\2[ \t]*$", "", text)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.sub(r"\]\([^)]*\)", "]", text)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_page_reads_as_documentation_not_a_work_log(page):
    text = prose(page.read_text(encoding="utf-8"))
    found = [m.group(0) for pattern in WORK_LOG for m in pattern.finditer(text)]
    assert found == [], f"{page.name}: {found}"


def test_the_work_log_patterns_catch_what_they_are_for():
    text = prose(
        "Targets of issue 5, this round: the run of 08:29 was a **miss**.\n"
        "```python\nprint('issue 12:30')\n```\nIt issues a warning; `issue` in code."
    )
    assert [m.group(0) for p in WORK_LOG for m in p.finditer(text)] == [
        "issue",
        "this round",
        "08:29",
        "miss",
        "Targets of",
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_seed_lstm_is_introduced_once_with_a_link(page):
    raw = page.read_text(encoding="utf-8")
    text = " ".join(prose(raw).split())
    # The origin under other names (the seed meaning an RNG seed is fine).
    assert not re.search(r"\bthe seed(?:'s)?\b(?! LSTM)|\bseed[- ]style\b", text, re.I), page.name
    if "seed LSTM" not in text:
        return
    assert text.lower().count(ORIGIN.lower()) == 1, page.name
    first = text.lower().index(ORIGIN.lower())
    assert text.lower().index("seed lstm") > first or page.name == "interop.md", page.name
    # Linked to where it is described, except on the page that describes it.
    flat = " ".join(raw.split()).lower()
    linked = re.search(rf"\[{re.escape(ORIGIN)}\]\([^)]*the-seed-lstms-layout\)", flat, re.I)
    assert linked or page.name == "interop.md", page.name


# -- shown output --------------------------------------------------------------------------------

FENCE = re.compile(
    r"(?ms)^(?P<indent>[ \t]*)```(?P<info>[^\n]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$"
)


def _root_conftest():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("_lstmkit_docs_conftest", ROOT / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_example_that_prints_shows_its_output(page):
    output_info = _root_conftest().OUTPUT_INFO
    text = page.read_text(encoding="utf-8")
    fences = list(FENCE.finditer(text))
    missing = []
    for fence, after in zip(fences, [*fences[1:], None]):
        body = fence.group("body")
        if fence.group("info") != "python" or body.lstrip().startswith((">>>", "--8<--")):
            continue
        before = text[: fence.start()].rstrip().rsplit("\n", 1)[-1].strip()
        if before.startswith("<!-- skip:") or not re.search(r"^\s*print\(|[^.\w]print\(", body):
            continue
        shown = (
            after is not None
            and after.group("info").strip() == output_info
            and not text[fence.end() : after.start()].strip()
        )
        if not shown:
            missing.append(text.count("\n", 0, fence.start()) + 1)
    assert missing == [], (
        f"{page.name}: python fences at lines {missing} print without an Output fence"
    )


def _run_page(tmp_path: Path, markdown: str) -> None:
    from sybil import Document

    conftest = _root_conftest()
    path = tmp_path / "page.md"
    path.write_text(markdown, encoding="utf-8")
    document = Document.parse(str(path), *conftest._markdown_parsers)
    for example in document:
        example.evaluate()


def test_an_output_fence_that_differs_from_the_printed_output_fails(tmp_path):
    from sybil.example import SybilFailure

    page = '```python\nprint(f"{2 / 3:.3f}")\n```\n\n```text title="Output"\n{}\n```\n'
    _run_page(tmp_path, page.replace("{}", "0.667"))
    _run_page(tmp_path, page.replace("{}", "0.6..."))  # ... stands for any text
    with pytest.raises(SybilFailure, match="differs"):
        _run_page(tmp_path, page.replace("{}", "0.666"))


def test_an_output_fence_must_follow_its_python_fence(tmp_path):
    page = '```python\nprint(1)\n```\n\nSome prose.\n\n```text title="Output"\n1\n```\n'
    with pytest.raises(ValueError, match="must follow a python fence"):
        _run_page(tmp_path, page)


def test_the_output_of_a_skipped_block_is_not_taken_as_checked(tmp_path):
    from sybil.example import SybilFailure

    page = (
        '```python\nprint(1)\n```\n\n```text title="Output"\n1\n```\n\n'
        '<!-- skip: next -->\n```python\nprint(2)\n```\n\n```text title="Output"\n2\n```\n'
    )
    with pytest.raises(SybilFailure, match="did not run"):
        _run_page(tmp_path, page)


# -- the browser check (tools/check_site.py) -----------------------------------------------------


def _check_site_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("_check_site", ROOT / "tools" / "check_site.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_PAGE = """<!doctype html><html><head><meta charset="utf-8"></head><body>
<div class="md-content" style="max-width:600px"><article class="md-content__inner">{}</article></div>
</body></html>"""
_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 100" width="400" height="100">'
    '<g transform="scale(0.5)"><text x="10" y="50" font-size="24">half</text></g>'
    '<text x="10" y="90" font-size="14">label</text></svg>'
)


def test_the_browser_check_finds_what_a_reader_would_see_wrong(tmp_path):
    check_site = _check_site_module()
    try:
        chromium = check_site.find_chromium(None)
    except SystemExit:
        pytest.skip("chromium is not installed")
    site = tmp_path / "site"
    (site / "good").mkdir(parents=True)
    (site / "generated").mkdir()
    (site / "generated" / "fig.svg").write_text(_SVG, encoding="utf-8")
    bad = [
        '<div style="width:900px">a paragraph wider than the column</div>',
        '<div style="overflow-x:auto"><div style="width:2000px">a box that scrolls</div></div>',
        '<div style="overflow:hidden;height:12px;line-height:40px">cut text</div>',
        '<table><tr><td style="width:40px"><code style="word-break:break-all">'
        "lstmkit.cells.gated</code></td></tr></table>",
        '<p><img class="figure" src="generated/fig.svg" style="width:200px"></p>',
        '<div style="overflow-x:auto;display:flex;justify-content:center">'
        '<span style="flex:none;width:1500px;text-align:left">centred, its start unreachable'
        "</span></div>",
    ]
    (site / "index.html").write_text(_PAGE.format("".join(bad)), encoding="utf-8")
    good = [
        "<p>Short text.</p>",
        '<pre style="overflow-x:auto"><code>' + "x = 1  # " + "long " * 200 + "</code></pre>",
        # A wide table scrolls in Material's wrapper: fine on a phone only.
        '<div class="md-typeset__scrollwrap" style="overflow-x:auto"><table><tr>'
        + "<td>cell</td>" * 30
        + "</tr></table></div>",
        # Shown at its own width; on a narrow screen its paragraph scrolls (docs/css/extra.css).
        '<p style="overflow-x:auto"><img class="figure" src="../generated/fig.svg"'
        ' style="width:400px"></p>',
    ]
    (site / "good" / "index.html").write_text(_PAGE.format("".join(good)), encoding="utf-8")

    failures = check_site.check(site, chromium, None)

    # The good page's only fault: its wide table scrolls at the wide width.
    good_failures = [f for f in failures if f.startswith("good/")]
    assert len(good_failures) == 1, failures
    assert good_failures[0].startswith("good/ @1280px: table scrolls sideways"), failures
    found = "\n".join(f for f in failures if f.startswith("/ @"))
    for width in check_site.LAYOUT_WIDTHS:
        assert f"/ @{width}px: wider than the column" in found, found
        assert f"/ @{width}px: other scrolls sideways" in found, found
        assert f"/ @{width}px: clipped (y)" in found, found
        assert f"/ @{width}px: inline code broken across lines" in found, found
        assert f"/ @{width}px: clipped (x, left)" in found, found
        # The scaled text: 24 * 0.5 = 12 viewBox units, shown at 200 / 400: 6 px.
        assert f"/ @{width}px: figure generated/fig.svg: smallest text 6.0 px" in found, found


def test_the_seed_example_says_what_the_seed_lstm_is():
    doc = (ROOT / "examples" / "seed_example.py").read_text(encoding="utf-8").split('"""')[1]
    assert ORIGIN in " ".join(doc.split())
