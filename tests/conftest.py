"""Shared test fixtures."""

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _numpy_errors_are_failures():
    """Floating-point warnings (overflow, invalid, divide) fail the test that causes them."""
    with np.errstate(all="raise", under="ignore"):
        yield
