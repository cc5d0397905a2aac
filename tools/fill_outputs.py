#!/usr/bin/env python3
"""Add the missing ``Output`` fences to a docs page: run its python fences, show what they print.

The test suite checks that every python fence of the docs that prints is followed by a
``text title="Output"`` fence equal to what it printed (see ``conftest.py``). This tool runs a
page's python fences top to bottom in one namespace, as the test suite does, and inserts an
Output fence after each fence that prints and has none. Existing Output fences are left as
they are (the tests say when one is stale). Review what it wrote: replace text that changes from
run to run (timings, memory addresses) with ``...``.

Usage: ``python tools/fill_outputs.py docs/guides/training.md [more pages]``
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
from pathlib import Path

FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*\n", re.M | re.S)
OUTPUT_INFO = 'text title="Output"'


def fill(page: Path) -> int:
    text = page.read_text(encoding="utf-8")
    fences = list(FENCE.finditer(text))
    namespace: dict[str, object] = {"__name__": "__docs__"}
    inserts: list[tuple[int, str]] = []
    for k, fence in enumerate(fences):
        info, source = fence.group(1).strip(), fence.group(2)
        if info != "python" or source.lstrip().startswith(("--8<--", ">>>")):
            continue
        before = text[: fence.start()].rstrip()
        if before.endswith("<!-- skip: next -->"):
            continue
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(source, f"{page}:{fence.start()}", "exec"), namespace)
        output = printed.getvalue()
        following = fences[k + 1] if k + 1 < len(fences) else None
        has_output = (
            following is not None
            and following.group(1).strip() == OUTPUT_INFO
            and not text[fence.end() : following.start()].strip()
        )
        if output.strip() and not has_output:
            inserts.append((fence.end(), f"\n```{OUTPUT_INFO}\n{output.rstrip()}\n```\n"))
    for position, block in reversed(inserts):
        text = text[:position] + block + text[position:]
    page.write_text(text, encoding="utf-8")
    return len(inserts)


def main(argv: list[str]) -> int:
    for name in argv:
        print(f"{name}: {fill(Path(name))} Output fences added")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
