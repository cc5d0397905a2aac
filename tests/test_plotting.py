"""plot_losses: writes an image with matplotlib, and degrades to a no-op without it."""

import sys

import pytest

from lstmkit.plotting import plot_losses


def test_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "sub" / "loss.png"
    assert plot_losses([3.0, 2.0, 1.0], path, reference=2.5, log_scale=True) is True
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_matplotlib_it_draws_nothing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    path = tmp_path / "loss.png"
    assert plot_losses([1.0], path) is False
    assert not path.exists()
