"""The examples and their gallery page (docs/gallery.md, tools/build_gallery.py).

Every script in ``examples/`` must be on the gallery page with a recorded output and plot, and
follow the examples' conventions: ``--help`` shows its docstring and the options ``--seed``,
``--plot`` and ``--quick``; ``--quick`` runs in seconds, shows progress, saves a plot when
matplotlib is installed and says so when it is not, and ends with a ``summary: ...`` line.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p.name for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))
_spec = importlib.util.spec_from_file_location("build_gallery", ROOT / "tools" / "build_gallery.py")
assert _spec is not None and _spec.loader is not None
gallery = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = gallery  # dataclasses look their module up there
_spec.loader.exec_module(gallery)

# Scripts that do not follow every convention yet: the tests below expect them to fail (strict
# xfail), so the entry must go as soon as the script catches up.
NOT_YET: dict[str, str] = {}
NO_MATPLOTLIB = "no plot: matplotlib is not installed"


def _conventional(names: list[str]) -> list:
    return [
        pytest.param(n, marks=pytest.mark.xfail(reason=NOT_YET[n], strict=True))
        if n in NOT_YET
        else n
        for n in names
    ]


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_gallery_lists_every_example_once():
    listed = [entry.script for entry in gallery.entries()]
    assert len(listed) == len(set(listed)), f"listed twice: {listed}"
    missing = sorted(set(EXAMPLES) - set(listed))
    assert not missing, (
        f"{missing} are not on docs/gallery.md: add a line '<!-- example: NAME.py -->' under a "
        "heading there, then run `python tools/build_gallery.py NAME`"
    )
    assert sorted(listed) == EXAMPLES, f"listed but not in examples/: {set(listed) - set(EXAMPLES)}"


@pytest.mark.parametrize("script", EXAMPLES)
def test_every_example_is_recorded_with_its_plot(script):
    entry = gallery.Entry(script, ())
    assert entry.output.is_file(), f"run `python tools/build_gallery.py {entry.name}`"
    assert entry.plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    output = entry.output.read_text(encoding="utf-8")
    assert f"docs/gallery/{entry.name}.png" in output  # the script said where it saved the plot


@pytest.mark.parametrize("script", _conventional(EXAMPLES))
def test_every_recorded_example_ends_with_a_summary(script):
    output = gallery.Entry(script, ()).output.read_text(encoding="utf-8")
    assert output.rstrip().splitlines()[-1].startswith(gallery.SUMMARY)


def test_the_page_renders_every_entry():
    page = gallery.PAGE.read_text(encoding="utf-8")
    rendered = gallery.render_page(page)
    assert "<!-- example:" not in rendered
    for entry in gallery.entries(page):
        docstring = ast.get_docstring(ast.parse(entry.path.read_text(encoding="utf-8")))
        assert docstring and docstring.split("\n")[0] in rendered
        assert f'--8<-- "examples/{entry.script}"' in rendered
        assert f"(gallery/{entry.name}.png)" in rendered
        assert f"```bash\n{entry.command}\n```" in rendered
        said = gallery.summary(entry.output.read_text(encoding="utf-8"))
        if said is not None:
            assert said in rendered


def test_an_unrecorded_entry_says_how_to_record_it(tmp_path, monkeypatch):
    monkeypatch.setattr(gallery, "RESULTS", tmp_path)
    rendered = gallery.render_page("<!-- example: seed_example.py --seed 3 -->\n")
    assert "python tools/build_gallery.py seed_example" in rendered
    assert "```bash\npython examples/seed_example.py --seed 3\n```" in rendered
    assert "![" not in rendered


def test_markers_carry_arguments():
    page = "x\n<!-- example: char_lm.py --epochs 20 -->\n<!-- example: a_b.py -->\n"
    assert gallery.entries(page) == [
        gallery.Entry("char_lm.py", ("--epochs", "20")),
        gallery.Entry("a_b.py", ()),
    ]


def test_the_description_drops_the_run_paragraph(tmp_path):
    script = tmp_path / "x.py"
    script.write_text('"""Title line.\n\nBody *text*.\n\nRun: ``python x.py``\n"""\n')
    assert gallery.description(script) == "Title line.\n\nBody *text*."


@pytest.mark.parametrize("script", _conventional(EXAMPLES))
def test_help_describes_the_example_and_the_common_options(script):
    result = _run(f"examples/{script}", "--help")
    assert result.returncode == 0, result.stderr
    docstring = ast.get_docstring(ast.parse((ROOT / "examples" / script).read_text()))
    assert docstring and docstring.split("\n")[0] in result.stdout
    for option in ("--seed", "--plot", "--quick"):
        assert option in result.stdout, f"{script} --help lists no {option}"


@pytest.mark.parametrize("script", _conventional(EXAMPLES))
def test_quick_run_plots_and_summarises(script, tmp_path):
    plot = tmp_path / "plot.png"
    # From another folder: the scripts must not depend on the working directory.
    result = _run(str(ROOT / "examples" / script), "--quick", "--plot", str(plot), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.rstrip().splitlines()
    assert lines[-1].startswith(gallery.SUMMARY)
    if importlib.util.find_spec("matplotlib") is None:
        assert NO_MATPLOTLIB in result.stdout and not plot.exists()
    else:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert str(plot) in result.stdout


@pytest.mark.parametrize("script", _conventional(EXAMPLES))
def test_without_matplotlib_the_example_says_so(script, tmp_path):
    plot = tmp_path / "plot.png"
    # matplotlib made unimportable (None in sys.modules) before the script runs.
    code = (
        "import runpy, sys; sys.modules['matplotlib'] = None; "
        "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    path = str(ROOT / "examples" / script)
    result = _run("-c", code, path, "--quick", "--plot", str(plot), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert NO_MATPLOTLIB in result.stdout
    assert not plot.exists()
    assert result.stdout.rstrip().splitlines()[-1].startswith(gallery.SUMMARY)
