"""Run the examples listed in the docs gallery and record what they print and plot.

The gallery page, ``docs/gallery.md``, lists the examples with one marker line each::

    <!-- example: adding_problem.py -->
    <!-- example: char_lm.py --epochs 20 -->

(the script in ``examples/``, then any arguments it is recorded with). This tool runs each listed
script from the repository root with the checkout's ``src`` first on ``PYTHONPATH``, as

    python examples/NAME.py ARGS --plot docs/gallery/NAME.png

and writes what it printed to ``docs/gallery/NAME.txt`` (both files are committed). When the docs
are built, ``docs/gallery_hooks.py`` replaces each marker with the script's description (its
docstring, read at build time), the command, the summary line, the plot, everything it printed
and its source (a snippet include, so it never drifts from the file).

Adding an example to the gallery is one marker line plus one run of this tool::

    python tools/build_gallery.py                    # every example on the page
    python tools/build_gallery.py char_lm sine_forecast   # only these

Every example follows the same conventions (``tests/test_gallery.py`` checks them): ``--help``
shows its docstring; ``--seed``, ``--plot PATH`` and ``--quick`` (a few steps, to check that it
runs); progress while it trains; a saved plot when matplotlib is installed and a line saying so
when it is not; and a last line ``summary: ...`` saying what was learned.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
PAGE = ROOT / "docs" / "gallery.md"
RESULTS = ROOT / "docs" / "gallery"
MARKER = re.compile(r"^<!-- example: (?P<script>[\w-]+\.py)(?P<args>[^>]*?)\s*-->[ \t]*$", re.M)
SUMMARY = "summary: "


@dataclass(frozen=True)
class Entry:
    """One example on the gallery page."""

    script: str  # file name in examples/
    args: tuple[str, ...]  # arguments it is recorded with (besides --plot)

    @property
    def name(self) -> str:
        return Path(self.script).stem

    @property
    def path(self) -> Path:
        return EXAMPLES / self.script

    @property
    def output(self) -> Path:
        return RESULTS / f"{self.name}.txt"

    @property
    def plot(self) -> Path:
        return RESULTS / f"{self.name}.png"

    @property
    def command(self) -> str:
        return shlex.join(["python", f"examples/{self.script}", *self.args])


def entries(page: str | None = None) -> list[Entry]:
    """The examples listed on the gallery page, in page order."""
    text = PAGE.read_text(encoding="utf-8") if page is None else page
    return [Entry(m["script"], tuple(shlex.split(m["args"]))) for m in MARKER.finditer(text)]


def description(script: Path) -> str:
    """The script's docstring as Markdown, without its ``Run:`` paragraph."""
    doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8"))) or ""
    paragraphs = [p for p in doc.split("\n\n") if p.strip() and not p.startswith("Run:")]
    return "\n\n".join(paragraphs)


def summary(output: str) -> str | None:
    """The last ``summary: ...`` line an example printed, without the prefix."""
    lines = [line for line in output.splitlines() if line.startswith(SUMMARY)]
    return lines[-1][len(SUMMARY) :] if lines else None


def _indent(text: str) -> str:
    return "\n".join(("    " + line) if line else "" for line in text.splitlines())


def render(entry: Entry) -> str:
    """The Markdown that replaces an entry's marker on the gallery page."""
    parts = [description(entry.path), f"```bash\n{entry.command}\n```"]
    if entry.output.is_file():
        output = entry.output.read_text(encoding="utf-8")
        said = summary(output)
        if said is not None:
            parts.append(f'!!! success "Summary"\n\n{_indent(said)}')
        if entry.plot.is_file():
            parts.append(f"![The plot saved by {entry.script}](gallery/{entry.plot.name})")
        printed = "```text\n" + output.rstrip() + "\n```"
        parts.append(f'??? note "Everything it printed"\n\n{_indent(printed)}')
    else:
        parts.append(
            '!!! warning "Not recorded yet"\n\n'
            f"    Run `python tools/build_gallery.py {entry.name}` to record its output and plot."
        )
    parts.append(
        f'??? example "Source: examples/{entry.script}"\n\n'
        f'    ```python\n    --8<-- "examples/{entry.script}"\n    ```'
    )
    return "\n\n".join(parts)


def render_page(markdown: str) -> str:
    """The gallery page with every marker replaced by its entry."""
    return MARKER.sub(lambda m: render(Entry(m["script"], tuple(shlex.split(m["args"])))), markdown)


def record(entry: Entry) -> float:
    """Run one example, store its output and plot; return the seconds it took."""
    if not entry.path.is_file():
        raise SystemExit(f"build_gallery: {entry.path} does not exist")
    RESULTS.mkdir(parents=True, exist_ok=True)
    entry.plot.unlink(missing_ok=True)
    env = dict(os.environ, MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p
    )
    plot = entry.plot.relative_to(ROOT).as_posix()
    command = [sys.executable, f"examples/{entry.script}", *entry.args, "--plot", plot]
    print(f"$ {shlex.join(['python', *command[1:]])}", flush=True)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(
            f"build_gallery: {entry.script} failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    if not entry.plot.is_file():
        raise SystemExit(f"build_gallery: {entry.script} saved no plot at {plot} (matplotlib?)")
    entry.output.write_text(result.stdout, encoding="utf-8")
    print(f"  {seconds:.0f} s; {summary(result.stdout) or '(no summary line)'}", flush=True)
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "names", nargs="*", help="examples to record (file names or stems; default: all listed)"
    )
    args = parser.parse_args(argv)
    listed = entries()
    wanted = {Path(n).stem for n in args.names}
    unknown = wanted - {e.name for e in listed}
    if unknown:
        raise SystemExit(
            f"build_gallery: not on docs/gallery.md: {sorted(unknown)}; add a marker line "
            "'<!-- example: NAME.py -->' there first"
        )
    for entry in listed:
        if not wanted or entry.name in wanted:
            record(entry)


if __name__ == "__main__":
    main()
