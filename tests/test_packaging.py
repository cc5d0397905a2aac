"""Packaging: one version source, the changelog, the extras and what the README says about them.

Building and installing the wheel is checked by ``tools/check_dist.py`` (run by CI); these tests
check the declarations it relies on, without building anything.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest

import lstmkit

ROOT = Path(__file__).resolve().parent.parent
tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
EXTRAS: dict[str, list[str]] = PYPROJECT["project"]["optional-dependencies"]
# Packages too large for the light `unit` extra; tests that need them skip without them.
HEAVY = {"torch", "onnx", "onnxruntime", "mkdocs", "mkdocs-material", "matplotlib", "mypy", "ruff"}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()


def _self_extras(requirement: str) -> set[str]:
    match = re.fullmatch(r"lstmkit\[([\w,\s-]+)\]", requirement.strip())
    return {e.strip() for e in match[1].split(",")} if match else set()


def _expand(extra: str) -> set[str]:
    """Every package an extra installs, following lstmkit[...] references."""
    packages: set[str] = set()
    for requirement in EXTRAS[extra]:
        nested = _self_extras(requirement)
        if nested:
            for name in nested:
                packages |= _expand(name)
        else:
            packages.add(_name(requirement))
    return packages


def test_the_version_is_written_once_in_the_package():
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "lstmkit.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?", lstmkit.__version__)


def test_installed_metadata_carries_the_package_version():
    try:
        installed = metadata.version("lstmkit")
    except metadata.PackageNotFoundError:
        pytest.skip("lstmkit is not installed (run from a source tree on PYTHONPATH)")
    assert installed == lstmkit.__version__


def test_the_changelog_has_a_section_for_the_current_version():
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\]", changelog, flags=re.M)
    assert headings, "CHANGELOG.md has no '## [version]' sections"
    assert lstmkit.__version__ in headings
    # Keep a Changelog: the newest release first, under its own version heading.
    assert headings[0] in ("Unreleased", lstmkit.__version__)


def test_the_test_extra_installs_every_other_extra_the_suite_uses():
    # `release` (build, twine) and `dev` are for people, not for the test suite.
    for extra in set(EXTRAS) - {"test", "dev", "release"}:
        assert _expand(extra) <= _expand("test"), f"the test extra lacks the {extra!r} extra"


def test_the_unit_extra_is_light_and_holds_the_test_runners():
    unit = _expand("unit")
    assert {"pytest", "hypothesis", "sybil"} <= unit
    assert not unit & HEAVY, unit & HEAVY


def test_the_wheel_holds_only_the_package():
    setuptools = PYPROJECT["tool"]["setuptools"]
    assert setuptools["packages"]["find"] == {"where": ["src"]}


def test_the_readme_says_what_each_extra_is_for():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \|", readme, flags=re.M)
    assert sorted(rows) == sorted(EXTRAS), "README's extras table must list every extra once"


def test_the_readme_keeps_its_one_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = 'pip install -e ".[test]" && python -m pytest'
    assert command in readme and command in ci
