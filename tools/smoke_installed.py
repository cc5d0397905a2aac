"""Smoke test of an installed lstmkit, run by tools/check_dist.py inside a fresh virtual environment.

Usage: ``VENV/bin/python tools/smoke_installed.py VENV`` from a folder outside the checkout.
It checks that ``lstmkit`` is imported from ``VENV`` (the installed wheel, not the checkout), that
the installed metadata carries ``lstmkit.__version__``, that the typing marker is there, and that
a small model trains one step with exact gradients (against finite differences), saves and loads.
"""

from __future__ import annotations

import sys
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np


def main(venv: Path) -> None:
    import lstmkit
    from lstmkit import Dense, LSTMCell, Recurrent, Sequential, losses
    from lstmkit.layers import LastStep
    from lstmkit.optimizers import Adam
    from lstmkit.testing import check_gradients
    from lstmkit.training import train_step

    installed = Path(lstmkit.__file__).resolve()
    assert installed.is_relative_to(venv.resolve()), (
        f"lstmkit imported from {installed}, not from the virtual environment {venv}"
    )
    assert metadata.version("lstmkit") == lstmkit.__version__, (
        metadata.version("lstmkit"),
        lstmkit.__version__,
    )
    assert (installed.parent / "py.typed").is_file(), "py.typed is missing from the wheel"

    rng = np.random.default_rng(0)
    model = Sequential(Recurrent(LSTMCell(3, 5, rng=rng)), LastStep(), Dense(5, 1, rng=rng))
    x = rng.standard_normal((4, 6, 3))
    target = rng.standard_normal((4, 1))
    report = check_gradients(Recurrent(LSTMCell(3, 4, rng=1)), rng.standard_normal((2, 5, 3)))
    assert report.passed(), report
    before = model(x).copy()
    train_step(model, losses.mean_squared_error, Adam(model.parameters(), lr=0.01), x, target)
    assert not np.allclose(model(x), before), "one Adam step left the outputs unchanged"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.npz"
        lstmkit.save(model, path)
        assert np.array_equal(lstmkit.load(path)(x), model(x))
    print(f"smoke test passed: lstmkit {lstmkit.__version__} from {installed.parent}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tools/smoke_installed.py VENV")
    main(Path(sys.argv[1]))
