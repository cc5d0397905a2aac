"""Build the sdist and the wheel, check them, and run the installed wheel in a fresh environment.

Steps (each failure stops with a message saying what is wrong):

1. ``python -m build``: the sdist, then the wheel built *from the sdist* (so the sdist is
   complete enough to build the package).
2. ``twine check --strict`` on both (metadata, README rendering).
3. The wheel holds the package and its metadata only: every file of ``src/lstmkit`` and
   nothing else (no tests, benchmarks, examples or docs); its version is ``lstmkit.__version__``.
4. The sdist holds every file git tracks except the CI scripts (``.ci/``, ``.gitignore``), and
   nothing generated (``docs/generated``, ``examples/output``, bytecode).
5. A fresh virtual environment (no system site-packages; NumPy and attrs come from the package
   index) gets the wheel; ``tools/smoke_installed.py`` and the main example
   (``examples/adding_problem.py --quick``) run in it from a temporary folder, with no
   ``PYTHONPATH``, so they import the installed wheel, never the checkout.

Run from the repository root (needs the ``release`` extra)::

    python tools/check_dist.py            # everything, in a temporary folder
    python tools/check_dist.py --no-venv  # steps 1-4 only (no package index needed)
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "lstmkit"
NOT_IN_SDIST = (".ci/", ".gitignore")  # repository plumbing, not source
GENERATED = ("docs/generated/", "docs/assets/katex/", "examples/output/", "__pycache__/", ".pyc")


def fail(message: str) -> None:
    sys.exit(f"check_dist: {message}")


def run(*command: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None) -> str:
    """Run a command, echo it, return its stdout; stop with its output if it fails."""
    print("$", " ".join(str(c) for c in command), flush=True)
    result = subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        fail(f"command failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def package_version() -> str:
    """``__version__`` from the package source, read without importing it."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets
        ):
            return str(ast.literal_eval(node.value))
    fail("src/lstmkit/__init__.py defines no __version__")
    raise AssertionError


def check_wheel(wheel: Path, version: str) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    dist_info = f"lstmkit-{version}.dist-info/"
    stray = sorted(n for n in names if not n.startswith(("lstmkit/", dist_info)))
    if stray:
        fail(f"{wheel.name} holds files outside the package: {stray}")
    expected = {
        "lstmkit/" + p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    package_files = {n for n in names if n.startswith("lstmkit/")}
    if expected != package_files:
        fail(
            f"{wheel.name}: package files differ from src/lstmkit; missing "
            f"{sorted(expected - package_files)}, extra {sorted(package_files - expected)}"
        )
    for needed in ("METADATA", "licenses/LICENSE"):
        if dist_info + needed not in names:
            fail(f"{wheel.name} has no {dist_info}{needed}")
    print(f"wheel: {len(package_files)} package files, nothing else")


def tracked_files() -> list[str] | None:
    try:
        out = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None  # not a git checkout (e.g. an unpacked sdist): nothing to compare against
    return [line for line in out.splitlines() if line and (ROOT / line).exists()]


def check_sdist(sdist: Path, version: str) -> None:
    prefix = f"lstmkit-{version}/"
    with tarfile.open(sdist) as archive:
        names = {m.name[len(prefix) :] for m in archive.getmembers() if m.isfile()}
    generated = sorted(n for n in names if any(g in n for g in GENERATED))
    if generated:
        fail(f"{sdist.name} holds generated files: {generated}")
    tracked = tracked_files()
    if tracked is not None:
        missing = sorted(n for n in tracked if not n.startswith(NOT_IN_SDIST) and n not in names)
        if missing:
            fail(f"{sdist.name} lacks tracked files (add them to MANIFEST.in): {missing}")
    for needed in ("pyproject.toml", "README.md", "CHANGELOG.md", "LICENSE", "PKG-INFO"):
        if needed not in names:
            fail(f"{sdist.name} has no {needed}")
    print(f"sdist: {len(names)} files, every tracked source file included")


def check_installed(wheel: Path, work: Path) -> None:
    venv = work / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    run(python, "-m", "pip", "install", "-q", wheel, env=env)
    outside = work / "run"  # not the checkout: nothing there shadows the installed package
    outside.mkdir()
    print(run(python, ROOT / "tools" / "smoke_installed.py", venv, cwd=outside, env=env))
    print(
        run(
            python,
            ROOT / "examples" / "adding_problem.py",
            "--quick",
            "--plot",
            outside / "adding_problem.png",
            cwd=outside,
            env=env,
        )
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--no-venv", action="store_true", help="skip the installed-wheel run (steps 1-4 only)"
    )
    args = parser.parse_args(argv)
    version = package_version()
    with tempfile.TemporaryDirectory(prefix="lstmkit-dist-") as tmp:
        work = Path(tmp)
        dist = work / "dist"
        run(sys.executable, "-m", "build", "--outdir", dist, ROOT)
        sdists = sorted(dist.glob("*.tar.gz"))
        wheels = sorted(dist.glob("*.whl"))
        expected = [f"lstmkit-{version}.tar.gz"], [f"lstmkit-{version}-py3-none-any.whl"]
        if ([s.name for s in sdists], [w.name for w in wheels]) != expected:
            built = sorted(p.name for p in dist.iterdir())
            fail(f"expected {expected} (the version of src/lstmkit), built {built}")
        run(sys.executable, "-m", "twine", "check", "--strict", sdists[0], wheels[0])
        check_wheel(wheels[0], version)
        check_sdist(sdists[0], version)
        if not args.no_venv:
            check_installed(wheels[0], work)
    print(f"check_dist: lstmkit {version} sdist and wheel OK")


if __name__ == "__main__":
    main()
