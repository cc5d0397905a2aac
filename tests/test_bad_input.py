"""Bad input to the core gets a ValueError or TypeError that names the argument.

Each case is one bad call, the error type it must raise, and words its message must hold:
the argument's name first, then (for shapes and values) what was expected and what was
received. A NumPy error from deep inside a computation would fail these tests, since its
message does not name the user's argument.
"""

import numpy as np
import pytest

from lstmkit import (
    Activation,
    Bidirectional,
    Gate,
    LSTMCell,
    LSTMState,
    Recurrent,
    Stacked,
    activations,
    initializers,
)

GEN = np.random.default_rng(0)
X = GEN.standard_normal((2, 5, 3))


def cell():
    return LSTMCell(3, 4, rng=0)


def backward_with(runner, dy=None, d_state=None):
    """Run a training forward pass, then backward with ``dy`` and ``d_state(final)``."""
    _, final, cache = runner.forward(X)
    return runner.backward(cache, dy, None if d_state is None else d_state(final))


CASES = {
    # activations
    "activation unknown name": (
        lambda: activations.get("swishy"),
        ValueError,
        ["activation", "swishy", "sigmoid"],
    ),
    "activation wrong type": (lambda: activations.get(3), TypeError, ["activation", "int"]),
    "activation register non-activation": (
        lambda: activations.register("tanh"),
        TypeError,
        ["activation", "str"],
    ),
    "activation register taken name": (
        lambda: activations.register(Activation("tanh", np.tanh, lambda y: 1 - y * y)),
        ValueError,
        ["activation", "tanh", "built-in"],
    ),
    "activation function not callable": (
        lambda: Activation("a", 1.0, np.tanh),
        TypeError,
        ["function", "float"],
    ),
    "activation derivative not callable": (
        lambda: Activation("a", np.tanh, None),
        TypeError,
        ["derivative", "NoneType"],
    ),
    "activation grad without z": (
        lambda: activations.softplus.grad(None, np.zeros(2)),
        ValueError,
        ["z", "softplus"],
    ),
    # initializers
    "initializer unknown name": (
        lambda: initializers.get("glorot"),
        ValueError,
        ["initializer", "glorot", "glorot_uniform"],
    ),
    "initializer wrong type": (lambda: initializers.get(0.5), TypeError, ["initializer", "float"]),
    "rng negative seed": (lambda: initializers.as_rng(-1), ValueError, ["rng", "-1"]),
    "rng wrong type": (lambda: initializers.as_rng("seed"), TypeError, ["rng", "str"]),
    "rng float": (lambda: initializers.as_rng(1.5), TypeError, ["rng", "float"]),
    "orthogonal of a vector": (
        lambda: initializers.get("orthogonal")((3,), GEN, np.float64),
        ValueError,
        ["shape", "(3,)"],
    ),
    # Gate
    "gate zero input size": (lambda: Gate(0, 3), ValueError, ["input_size", "0"]),
    "gate negative hidden size": (lambda: Gate(2, -1), ValueError, ["hidden_size", "-1"]),
    "gate size as string": (lambda: Gate("2", 3), ValueError, ["input_size", "'2'"]),
    "gate unknown activation": (
        lambda: Gate(2, 3, activation="nope"),
        ValueError,
        ["activation", "nope"],
    ),
    "gate integer dtype": (lambda: Gate(2, 3, dtype=np.int32), TypeError, ["dtype", "int32"]),
    "gate float16 dtype": (lambda: Gate(2, 3, dtype=np.float16), TypeError, ["dtype", "float16"]),
    "gate unknown initializer": (
        lambda: Gate(2, 3, kernel_initializer="nope"),
        ValueError,
        ["initializer", "nope"],
    ),
    "gate initializer of wrong shape": (
        lambda: Gate(2, 3, kernel_initializer=lambda shape, rng, dtype: np.zeros(1)),
        ValueError,
        ["W", "(2, 3)", "(1,)"],
    ),
    "gate bad rng": (lambda: Gate(2, 3, rng="x"), TypeError, ["rng", "str"]),
    "gate call with wrong x": (
        lambda: Gate(2, 3, rng=0)(np.zeros((1, 5)), np.zeros((1, 3))),
        ValueError,
        ["x", "(batch, 2)", "(1, 5)"],
    ),
    "gate call with wrong h": (
        lambda: Gate(2, 3, rng=0)(np.zeros((1, 2)), np.zeros((1, 4))),
        ValueError,
        ["h", "(batch, 3)", "(1, 4)"],
    ),
    "gate call with other batch h": (
        lambda: Gate(2, 3, rng=0)(np.zeros((2, 2)), np.zeros((1, 3))),
        ValueError,
        ["h", "2", "1"],
    ),
    "peephole gate without c": (
        lambda: Gate(2, 3, peephole=True, rng=0)(np.zeros((1, 2)), np.zeros((1, 3))),
        ValueError,
        ["c", "None"],
    ),
    "peephole gate with wrong c": (
        lambda: Gate(2, 3, peephole=True, rng=0).forward_train(
            np.zeros((1, 2)), np.zeros((1, 3)), np.zeros((1, 2))
        ),
        ValueError,
        ["c", "(1, 3)", "(1, 2)"],
    ),
    "set_weights wrong shape": (
        lambda: Gate(2, 3).set_weights(W=np.zeros((3, 3))),
        ValueError,
        ["W", "(2, 3)", "(3, 3)"],
    ),
    "set_weights wrong dtype": (
        lambda: Gate(2, 3).set_weights(U=np.zeros((3, 3), np.float32)),
        TypeError,
        ["U", "float64", "float32"],
    ),
    "set_weights list": (
        lambda: Gate(2, 3).set_weights(b=[0.0, 0.0, 0.0]),
        TypeError,
        ["b", "list"],
    ),
    "set_weights NaN": (
        lambda: Gate(2, 3).set_weights(b=np.array([0.0, np.nan, 0.0])),
        ValueError,
        ["b", "finite"],
    ),
    "set_weights peephole on plain gate": (
        lambda: Gate(2, 3).set_weights(p=np.zeros(3)),
        ValueError,
        ["p", "peephole"],
    ),
    # LSTMCell
    "cell zero size": (lambda: LSTMCell(0, 3), ValueError, ["input_size", "0"]),
    "cell hidden None": (lambda: LSTMCell(3, None), ValueError, ["hidden_size", "None"]),
    "cell unknown gate activation": (
        lambda: LSTMCell(3, 4, gate_activation="nope"),
        ValueError,
        ["gate_activation", "nope"],
    ),
    "cell candidate activation type": (
        lambda: LSTMCell(3, 4, candidate_activation=5),
        TypeError,
        ["candidate_activation", "int"],
    ),
    "cell unknown cell activation": (
        lambda: LSTMCell(3, 4, cell_activation="nope"),
        ValueError,
        ["activation", "nope"],
    ),
    "cell candidate peephole": (
        lambda: LSTMCell(3, 4, peephole=("candidate",)),
        ValueError,
        ["peephole", "candidate"],
    ),
    "cell peephole as string": (
        lambda: LSTMCell(3, 4, peephole="forget"),
        TypeError,
        ["peephole", "forget"],
    ),
    "cell gate of wrong size": (
        lambda: LSTMCell(3, 4, input=Gate(3, 5)),
        ValueError,
        ["input", "hidden=4", "hidden=5"],
    ),
    "cell gate of wrong type": (
        lambda: LSTMCell(3, 4, output="gate"),
        TypeError,
        ["output", "str"],
    ),
    "cell gate of wrong dtype": (
        lambda: LSTMCell(3, 4, forget=Gate(3, 4, dtype=np.float32)),
        TypeError,
        ["forget", "float64", "float32"],
    ),
    "cell integer dtype": (lambda: LSTMCell(3, 4, dtype="int64"), TypeError, ["dtype", "int64"]),
    "cell forget_bias string": (
        lambda: LSTMCell(3, 4, forget_bias="1"),
        TypeError,
        ["forget_bias", "str"],
    ),
    "cell forget_bias None": (
        lambda: LSTMCell(3, 4, forget_bias=None),
        TypeError,
        ["forget_bias", "NoneType"],
    ),
    "cell forget_bias NaN": (
        lambda: LSTMCell(3, 4, forget_bias=float("nan")),
        ValueError,
        ["forget_bias", "nan"],
    ),
    "cell negative seed": (lambda: LSTMCell(3, 4, rng=-3), ValueError, ["rng", "-3"]),
    "cell step wrong x": (
        lambda: cell().step(cell().initial_state(2), np.zeros((2, 5))),
        ValueError,
        ["x", "(batch, 3)", "(2, 5)"],
    ),
    "cell step string x": (
        lambda: cell().step(cell().initial_state(1), np.array([["a"] * 3])),
        TypeError,
        ["x", "<U1"],
    ),
    "cell step wrong state batch": (
        lambda: cell().step(cell().initial_state(3), np.zeros((2, 3))),
        ValueError,
        ["state.h", "(2, 4)", "(3, 4)"],
    ),
    "cell step tuple state": (
        lambda: cell().step((np.zeros((2, 4)), np.zeros((2, 4))), np.zeros((2, 3))),
        TypeError,
        ["state", "LSTMState", "tuple"],
    ),
    "cell initial_state negative": (
        lambda: cell().initial_state(-1),
        ValueError,
        ["batch_size", "-1"],
    ),
    "cell initial_state string": (
        lambda: cell().initial_state("2"),
        ValueError,
        ["batch_size", "'2'"],
    ),
    # Recurrent
    "recurrent of a non-cell": (lambda: Recurrent("cell"), TypeError, ["cell", "str", "step"]),
    "recurrent reverse string": (
        lambda: Recurrent(cell(), reverse="yes"),
        TypeError,
        ["reverse", "yes"],
    ),
    "recurrent fused not a flag": (
        lambda: Recurrent(cell(), fused="yes"),
        TypeError,
        ["fused", "None, True or False", "'yes'"],
    ),
    "recurrent fused required for a subclass": (
        lambda: Recurrent(type("MyLSTM", (LSTMCell,), {})(3, 4, rng=0), fused=True),
        TypeError,
        ["fused", "MyLSTM", "subclass"],
    ),
    "recurrent wrong features": (
        lambda: Recurrent(cell())(np.zeros((2, 5, 4))),
        ValueError,
        ["x", "3", "(2, 5, 4)"],
    ),
    "recurrent 1-d x": (lambda: Recurrent(cell())(np.zeros(3)), ValueError, ["x", "(3,)"]),
    "recurrent 4-d x": (
        lambda: Recurrent(cell())(np.zeros((1, 2, 5, 3))),
        ValueError,
        ["x", "(1, 2, 5, 3)"],
    ),
    "recurrent x None": (lambda: Recurrent(cell())(None), TypeError, ["x", "NoneType"]),
    "recurrent boolean x": (lambda: Recurrent(cell())(X > 0), TypeError, ["x", "bool"]),
    "recurrent lengths shape": (
        lambda: Recurrent(cell())(X, lengths=[1, 2, 3]),
        ValueError,
        ["lengths", "(2,)", "(3,)"],
    ),
    "recurrent lengths too long": (
        lambda: Recurrent(cell())(X, lengths=[6, 2]),
        ValueError,
        ["lengths", "5", "6"],
    ),
    "recurrent lengths negative": (
        lambda: Recurrent(cell())(X, lengths=[-1, 2]),
        ValueError,
        ["lengths", "-1"],
    ),
    "recurrent lengths fractional": (
        lambda: Recurrent(cell())(X, lengths=[1.5, 2]),
        TypeError,
        ["lengths", "float64"],
    ),
    "recurrent lengths boolean": (
        lambda: Recurrent(cell())(X, lengths=[True, False]),
        TypeError,
        ["lengths", "bool"],
    ),
    "recurrent lengths for unbatched": (
        lambda: Recurrent(cell())(X[0], lengths=[3]),
        ValueError,
        ["lengths", "unbatched"],
    ),
    "recurrent state of wrong type": (
        lambda: Recurrent(cell())(X, (np.zeros((2, 4)), np.zeros((2, 4)))),
        TypeError,
        ["initial_state", "LSTMState", "tuple"],
    ),
    "recurrent state of wrong shape": (
        lambda: Recurrent(cell())(X, LSTMState(np.zeros((2, 4)), np.zeros((2, 5)))),
        ValueError,
        ["initial_state.c", "(2, 4)", "(2, 5)"],
    ),
    "recurrent backward wrong dy": (
        lambda: backward_with(Recurrent(cell()), np.zeros((2, 5, 3))),
        ValueError,
        ["dy", "(2, 5, 4)", "(2, 5, 3)"],
    ),
    "recurrent backward wrong d_state": (
        lambda: backward_with(Recurrent(cell()), d_state=lambda f: LSTMState(f.h, f.c[:1])),
        ValueError,
        ["d_state.c", "(2, 4)", "(1, 4)"],
    ),
    "recurrent backward foreign cache": (
        lambda: Recurrent(cell()).backward(Recurrent(cell()).forward(X)[2]),
        TypeError,
        ["cache", "forward"],
    ),
    # Stacked
    "stacked of nothing": (lambda: Stacked([]), ValueError, ["layers", "empty"]),
    "stacked of a cell": (lambda: Stacked(cell()), TypeError, ["layers", "LSTMCell"]),
    "stacked sizes do not chain": (
        lambda: Stacked([LSTMCell(3, 4), LSTMCell(5, 2)]),
        ValueError,
        ["layers[1]", "4", "5"],
    ),
    "stacked dtypes differ": (
        lambda: Stacked([LSTMCell(3, 4), LSTMCell(4, 4, dtype=np.float32)]),
        TypeError,
        ["layers[1]", "float64", "float32"],
    ),
    "stacked non-layer": (lambda: Stacked([cell(), "layer"]), TypeError, ["layers[1]", "str"]),
    "stacked dropout of 1": (
        lambda: Stacked([cell()], dropout=1.0),
        ValueError,
        ["dropout", "1.0"],
    ),
    "stacked negative dropout": (
        lambda: Stacked([cell()], dropout=-0.1),
        ValueError,
        ["dropout", "-0.1"],
    ),
    "stacked dropout string": (
        lambda: Stacked([cell()], dropout="0.5"),
        TypeError,
        ["dropout", "str"],
    ),
    "stacked bad rng": (lambda: Stacked([cell()], rng="x"), TypeError, ["rng", "str"]),
    "stacked wrong number of states": (
        lambda: Stacked([cell()])(X, (cell().initial_state(2),) * 2),
        ValueError,
        ["initial_state", "1", "2"],
    ),
    "stacked after merge none": (
        lambda: Stacked([Bidirectional(cell(), merge="none"), LSTMCell(4, 2)]),
        ValueError,
        ["layers[0]", "none"],
    ),
    # Bidirectional
    "bidirectional unknown merge": (
        lambda: Bidirectional(cell(), merge="avg"),
        ValueError,
        ["merge", "avg", "concat"],
    ),
    "bidirectional sizes differ": (
        lambda: Bidirectional(cell(), LSTMCell(3, 5)),
        ValueError,
        ["backward_layer", "output=4", "output=5"],
    ),
    "bidirectional dtypes differ": (
        lambda: Bidirectional(cell(), LSTMCell(3, 4, dtype=np.float32)),
        TypeError,
        ["backward_layer", "float64", "float32"],
    ),
    "bidirectional reversed forward layer": (
        lambda: Bidirectional(Recurrent(cell(), reverse=True)),
        ValueError,
        ["forward_layer", "reverse=False", "reverse=True"],
    ),
    "bidirectional unreversed backward layer": (
        lambda: Bidirectional(cell(), Recurrent(cell())),
        ValueError,
        ["backward_layer", "reverse=True", "reverse=False"],
    ),
    "bidirectional non-layer": (lambda: Bidirectional("x"), TypeError, ["forward_layer", "str"]),
    "bidirectional plain state": (
        lambda: Bidirectional(cell(), rng=0)(X, cell().initial_state(2)),
        TypeError,
        ["initial_state", "BidirectionalState", "LSTMState"],
    ),
    "bidirectional backward wrong dy": (
        lambda: backward_with(Bidirectional(cell(), rng=0), np.zeros((2, 5, 4))),
        ValueError,
        ["dy", "(2, 5, 8)", "(2, 5, 4)"],
    ),
    # load_state_dict
    "load_state_dict of a list": (
        lambda: cell().load_state_dict([1]),
        TypeError,
        ["state", "list"],
    ),
    "load_state_dict missing names": (
        lambda: cell().load_state_dict({}),
        ValueError,
        ["state", "missing", "forget.W"],
    ),
    "load_state_dict unexpected name": (
        lambda: cell().load_state_dict({**cell().state_dict(), "extra": np.zeros(1)}),
        ValueError,
        ["state", "unexpected", "extra"],
    ),
    "load_state_dict wrong shape": (
        lambda: cell().load_state_dict({**cell().state_dict(), "forget.W": np.zeros((2, 2))}),
        ValueError,
        ["state['forget.W']", "(3, 4)", "(2, 2)"],
    ),
    "load_state_dict wrong dtype": (
        lambda: cell().load_state_dict(
            {**cell().state_dict(), "input.U": np.zeros((4, 4), np.float32)}
        ),
        TypeError,
        ["state['input.U']", "float64", "float32"],
    ),
    "load_state_dict non-finite": (
        lambda: cell().load_state_dict({**cell().state_dict(), "output.b": np.full(4, np.inf)}),
        ValueError,
        ["state['output.b']", "finite"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_raises_a_clear_error(case):
    call, error, words = CASES[case]
    with pytest.raises(error) as info:
        call()
    assert type(info.value) is error, f"{type(info.value).__name__}: {info.value}"
    message = str(info.value)
    assert message.startswith(words[0]), f"the message should start with the argument: {message!r}"
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def test_errors_are_raised_before_numpy_sees_bad_data():
    # No bad call above may surface as NumPy's own message (e.g. from matmul or zeros).
    for case, (call, error, _) in CASES.items():
        with pytest.raises(error) as info:
            call()
        assert "gufunc" not in str(info.value) and "negative dimensions" not in str(info.value), (
            case
        )


# -- one lengths rule at every entry point -------------------------------------------------------


def _lengths_entry_points():
    from lstmkit import Sequential, losses
    from lstmkit.layers import LastStep, MeanPool

    return {
        "Recurrent()": lambda L: Recurrent(cell())(X, lengths=L),
        "Recurrent.forward": lambda L: Recurrent(cell()).forward(X, lengths=L),
        "Stacked.forward": lambda L: Stacked([cell(), LSTMCell(4, 2, rng=1)]).forward(X, lengths=L),
        "Bidirectional()": lambda L: Bidirectional(cell(), rng=0)(X, lengths=L),
        "Sequential()": lambda L: Sequential(cell(), LastStep())(X, lengths=L),
        "Sequential.forward": lambda L: Sequential(cell(), MeanPool()).forward(X, lengths=L),
        "LastStep()": lambda L: LastStep()(X, L),
        "MeanPool.forward": lambda L: MeanPool().forward(X, L),
        "mask_from_lengths": lambda L: losses.mask_from_lengths(L, X.shape[1]),
    }


BAD_LENGTHS = {
    "whole floats": [5.0, 3.0],
    "fractional floats": [1.5, 2.0],
    "booleans": [True, False],
    "strings": ["5", "3"],
    "objects": [None, 2],
    "negative": [-1, 2],
    "past the time axis": [6, 2],
    "unsigned past the time axis": np.array([2, 2**40], np.uint64),
    "2-d": [[1, 2]],
    "scalar": 3,
}
# How many sequences the caller has is unknown to mask_from_lengths, so only the rest check it.
BAD_BATCH = {"too many": [1, 2, 3], "too few": [1]}


def _error(call, lengths):
    with pytest.raises((TypeError, ValueError)) as info:
        call(lengths)
    return type(info.value), str(info.value)


@pytest.mark.parametrize("value", sorted(BAD_LENGTHS))
def test_every_entry_point_gives_the_same_error_for_the_same_bad_lengths(value):
    points = _lengths_entry_points()
    reference = _error(points.pop("Recurrent()"), BAD_LENGTHS[value])
    assert reference[1].startswith("lengths: expected ")
    for name, call in points.items():
        expected = reference
        if name == "mask_from_lengths":  # the one entry point that is not told the batch size
            expected = (reference[0], reference[1].replace("shape (2,)", "shape (batch,)"))
        assert _error(call, BAD_LENGTHS[value]) == expected, name


@pytest.mark.parametrize("value", sorted(BAD_BATCH))
def test_every_entry_point_that_knows_the_batch_checks_it(value):
    points = _lengths_entry_points()
    points.pop("mask_from_lengths")
    reference = _error(points.pop("Recurrent()"), BAD_BATCH[value])
    assert reference[0] is ValueError and reference[1].startswith("lengths: expected shape (2,)")
    for name, call in points.items():
        assert _error(call, BAD_BATCH[value]) == reference, name


def test_the_lengths_rule_messages():
    call = _lengths_entry_points()["Recurrent()"]
    assert _error(call, [5.0, 3.0]) == (
        TypeError,
        "lengths: expected integers, received dtype float64 (convert with .astype(int))",
    )
    assert _error(call, [True, False]) == (
        TypeError,
        "lengths: expected integers, received dtype bool",
    )
    assert _error(call, [6, 2]) == (
        ValueError,
        "lengths: expected values <= the time axis length 5, received maximum 6",
    )
    for dtype in (np.int8, np.uint16, np.int64):  # any integer dtype is accepted everywhere
        for ok in _lengths_entry_points().values():
            ok(np.array([5, 3], dtype))
