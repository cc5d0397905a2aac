"""safetensors save/load: round trips, the file as the safetensors package itself reads it (an
independent reader), and every corrupt or mismatched file refused with nothing half-loaded."""

import json

import numpy as np
import pytest

safetensors_numpy = pytest.importorskip("safetensors.numpy")

from lstmkit import (
    Bidirectional,
    Dense,
    GRUCell,
    LSTMCell,
    Sequential,
    Stacked,
)
from lstmkit.io import describe
from lstmkit.io_safetensors import (
    METADATA_KEY,
    load_safetensors,
    load_weights_safetensors,
    read_safetensors,
    save_safetensors,
)
from lstmkit.layers import LastStep

X = np.random.default_rng(3).standard_normal((3, 5, 3))


def make(seed=0, dtype=np.float64):
    return Sequential(
        Stacked(
            [
                Bidirectional(LSTMCell(3, 4, peephole=True, dtype=dtype, rng=seed), rng=seed + 1),
                GRUCell(8, 5, dtype=dtype, rng=seed + 2),
            ],
            dropout=0.1,
        ),
        LastStep(),
        Dense(5, 2, "tanh", dtype=dtype, rng=seed + 3),
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_and_the_file_as_safetensors_reads_it(tmp_path, dtype):
    model = make(dtype=dtype)
    path = tmp_path / "model.safetensors"
    save_safetensors(model, path)
    loaded = load_safetensors(path)
    assert type(loaded) is Sequential
    x = X.astype(dtype)
    assert np.array_equal(loaded(x, lengths=[5, 2, 0]), model(x, lengths=[5, 2, 0]))
    # The safetensors package's own reader sees every weight under its state_dict name.
    tensors = safetensors_numpy.load_file(str(path))
    expected = model.state_dict()
    assert sorted(tensors) == sorted(expected)
    for name, value in expected.items():
        assert tensors[name].dtype == dtype and np.array_equal(tensors[name], value)


def test_load_weights_fills_a_model_all_or_nothing(tmp_path):
    path = tmp_path / "model.safetensors"
    save_safetensors(make(seed=0), path)
    other = make(seed=10)
    load_weights_safetensors(other, path)
    assert np.array_equal(other(X), make(seed=0)(X))
    different = Sequential(LSTMCell(3, 4, rng=0), LastStep())
    before = different.state_dict()
    with pytest.raises(ValueError, match="the saved architecture differs"):
        load_weights_safetensors(different, path)
    with pytest.raises(ValueError, match="do not match the model's parameters"):
        load_weights_safetensors(different, path, check_config=False)
    assert all(np.array_equal(v, different.state_dict()[k]) for k, v in before.items())


def write(path, tensors, header):
    """A safetensors file with the given tensors and lstmkit description (possibly a lie)."""
    data = safetensors_numpy.save(tensors, metadata={METADATA_KEY: json.dumps(header)})
    path.write_bytes(data)
    return path


def test_mismatched_files_name_what_is_wrong(tmp_path):
    model = make()
    header, params = describe(model)
    name = "layers.2.W"
    cases = []
    shape = dict(params, **{name: np.zeros((2, 5))})
    cases.append(
        (
            shape,
            header,
            ValueError,
            r"tensor 'layers.2.W' has shape \(2, 5\), described as \(5, 2\)",
        )
    )
    dtype = dict(params, **{name: params[name].astype(np.float32)})
    cases.append(
        (dtype, header, TypeError, "tensor 'layers.2.W' has dtype F32, described as float64")
    )
    extra = dict(params, surplus=np.zeros(3))
    cases.append((extra, header, ValueError, r"extra \['surplus'\]"))
    missing = {k: v for k, v in params.items() if k != name}
    cases.append((missing, header, ValueError, r"missing \['layers.2.W'\]"))
    nan = dict(params, **{name: np.full((5, 2), np.nan)})
    cases.append((nan, header, ValueError, "tensor 'layers.2.W' has 10 non-finite values"))
    newer = dict(header, format_version=99)
    cases.append((params, newer, ValueError, "newer than this lstmkit reads"))
    for k, (tensors, head, error, message) in enumerate(cases):
        path = write(tmp_path / f"bad{k}.safetensors", tensors, head)
        with pytest.raises(error, match=message):
            load_safetensors(path)
        target = make(seed=5)
        before = target.state_dict()
        with pytest.raises(error):
            load_weights_safetensors(target, path, check_config=False)
        assert all(np.array_equal(v, target.state_dict()[n]) for n, v in before.items())


def test_corrupt_and_foreign_files(tmp_path):
    path = tmp_path / "model.safetensors"
    save_safetensors(make(), path)
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        read_safetensors(tmp_path / "cut.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a tensor file at all")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        read_safetensors(tmp_path / "junk.safetensors")
    safetensors_numpy.save_file({"w": np.ones(3)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ValueError, match="not an lstmkit file"):
        read_safetensors(tmp_path / "plain.safetensors")
    with pytest.raises(FileNotFoundError, match="no file at"):
        read_safetensors(tmp_path / "absent.safetensors")
    with pytest.raises(TypeError, match="path: expected a str or path-like"):
        read_safetensors(b"bytes")


def test_a_failed_save_leaves_the_old_file(tmp_path):
    path = tmp_path / "model.safetensors"
    save_safetensors(make(seed=0), path)
    old = path.read_bytes()
    broken = make(seed=1)
    broken.layers[-1].W.value = np.full((5, 2), np.inf)
    with pytest.raises(ValueError, match="non-finite values; refusing to save it"):
        save_safetensors(broken, path)
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]  # no temporaries
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_safetensors(make(), tmp_path / "no" / "model.safetensors")
    with pytest.raises(ValueError, match="expected a file path, received the folder"):
        save_safetensors(make(), tmp_path)
