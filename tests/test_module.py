"""Parameters and the module base: dotted names, state dicts (all-or-nothing), zero_grad, repr."""

import numpy as np
import pytest

from lstmkit import Bidirectional, Gate, LSTMCell, Recurrent, Stacked


def make_stack():
    first = Bidirectional(LSTMCell(3, 4, rng=0), rng=1)
    return Stacked([first, Recurrent(LSTMCell(8, 5, rng=2))])


def test_dotted_names():
    names = list(make_stack().named_parameters())
    assert "layers.0.forward_layer.cell.forget.W" in names
    assert "layers.0.backward_layer.cell.output.b" in names
    assert "layers.1.cell.candidate.U" in names
    assert len(names) == len(set(names)) == 3 * 4 * 3


def test_state_dict_round_trip_between_models():
    a, b = (
        make_stack(),
        Stacked([Bidirectional(LSTMCell(3, 4, rng=9), rng=8), LSTMCell(8, 5, rng=7)]),
    )
    x = np.random.default_rng(0).standard_normal((2, 6, 3))
    assert not np.allclose(a(x)[0], b(x)[0])
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a(x)[0], b(x)[0])


def test_state_dict_is_a_copy():
    cell = LSTMCell(2, 3, rng=0)
    sd = cell.state_dict()
    sd["forget.W"][...] = 99
    assert not np.any(cell.forget.W.value == 99)


@pytest.mark.parametrize(
    "mutate, error, match",
    [
        (lambda sd: sd.pop("input.U"), ValueError, "missing \\['input.U'\\]"),
        (lambda sd: sd.update(extra=np.zeros(2)), ValueError, "unexpected \\['extra'\\]"),
        (
            lambda sd: sd.update({"output.b": np.zeros(4)}),
            ValueError,
            "expected shape \\(3,\\), received \\(4,\\)",
        ),
        (
            lambda sd: sd.update({"output.b": np.zeros(3, np.float32)}),
            TypeError,
            "expected dtype float64, received float32",
        ),
        (lambda sd: sd.update({"output.b": [0.0, 0.0, 0.0]}), TypeError, "expected a numpy array"),
    ],
)
def test_load_state_dict_mismatch_raises_and_changes_nothing(mutate, error, match):
    cell = LSTMCell(2, 3, rng=0)
    before = cell.state_dict()
    new = LSTMCell(2, 3, rng=1).state_dict()
    mutate(new)
    with pytest.raises(error, match=match):
        cell.load_state_dict(new)
    for name, value in cell.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_zero_grad():
    cell = LSTMCell(2, 3, rng=0)
    for p in cell.parameters():
        p.grad += 1
    cell.zero_grad()
    assert all(np.all(p.grad == 0) for p in cell.parameters())


def test_repr_is_a_short_tree_without_array_contents():
    text = repr(make_stack())
    assert text.splitlines()[0].startswith("Stacked(2 layers)")
    assert "forward_layer: Recurrent" in text and "forget: Gate(sigmoid, W (3, 4)" in text
    assert "[" in text and "params]" in text
    assert "array(" not in text and len(text.splitlines()) < 40


def test_parameter_count():
    gate = Gate(3, 4, rng=0)
    assert gate.num_parameters() == 3 * 4 + 4 * 4 + 4
    assert LSTMCell(3, 4, rng=0).num_parameters() == 4 * gate.num_parameters()
