"""Save and load: exact round trips for every component and option, and clear errors for bad files.

The oracle for a round trip is the original model itself: the loaded model must have the same
type, the same configuration, bit-identical parameters (values and dtype) and bit-identical
outputs on the same input.
"""

import errno
import json
import os
import stat
from functools import partial

import numpy as np
import pytest

import lstmkit
from lstmkit import Bidirectional, LSTMCell, Recurrent, Stacked, activations, config, initializers
from lstmkit.config import to_config
from lstmkit.io import CONFIG_KEY, FORMAT_VERSION

# -- helpers ------------------------------------------------------------------------------------


def assert_same_model(a, b):
    assert type(a) is type(b)
    assert to_config(a) == to_config(b)
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for name in sa:
        assert sa[name].dtype == sb[name].dtype, name
        np.testing.assert_array_equal(sa[name], sb[name], err_msg=name)


def outputs(model, dtype):
    rng = np.random.default_rng(5)
    if hasattr(model, "step"):
        x = rng.standard_normal((2, model.input_size)).astype(dtype)
        state, y = model.step(model.initial_state(2), x)
        return [y, *vars_of(state)]
    x = rng.standard_normal((3, 4, model.input_size)).astype(dtype)
    if isinstance(model, lstmkit.Sequential):
        return [model(x, lengths=[4, 2, 3])]
    y, _ = model(x, lengths=[4, 2, 3])
    return list(y) if isinstance(y, tuple) else [y]


def vars_of(state):
    return [state.h, state.c] if hasattr(state, "c") else [state.h]


def rewrite(path, edit_header=None, edit_arrays=None):
    """Rewrite a saved file as a valid archive with an edited description and/or arrays."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    header = json.loads(arrays.pop(CONFIG_KEY).tobytes().decode())
    if edit_header is not None:
        edit_header(header)
    if edit_arrays is not None:
        edit_arrays(arrays)
    text = json.dumps(header)
    with open(path, "wb") as fh:
        np.savez(fh, **{CONFIG_KEY: np.frombuffer(text.encode(), np.uint8)}, **arrays)


# -- round trips --------------------------------------------------------------------------------


def bidirectional(dt, merge):
    return Bidirectional(LSTMCell(3, 4, dtype=dt, rng=0), merge=merge, rng=1)


def builders():
    def swapped(dt):
        cell = LSTMCell(
            3,
            4,
            gate_activation="hard_sigmoid",
            candidate_activation="softsign",
            cell_activation="elu",
            dtype=dt,
            rng=0,
        )
        cell.forget.activation = "sigmoid"  # one gate swapped in place
        return cell

    return {
        "cell": lambda dt: LSTMCell(3, 4, dtype=dt, rng=0),
        "cell_peephole": lambda dt: LSTMCell(3, 4, peephole=True, dtype=dt, rng=0),
        "cell_peephole_subset": lambda dt: LSTMCell(
            3, 4, peephole=["forget", "output"], dtype=dt, rng=0
        ),
        "cell_swapped": swapped,
        "cell_initializers": lambda dt: LSTMCell(
            3,
            4,
            kernel_initializer=initializers.Normal(0.1, 0.3),
            bias_initializer=initializers.Constant(0.25),
            recurrent_initializer="he_uniform",
            forget_bias=2.5,
            dtype=dt,
            rng=0,
        ),
        "gate": lambda dt: lstmkit.Gate(3, 4, activation="relu", peephole=True, dtype=dt, rng=0),
        "recurrent_reverse_unfused": lambda dt: Recurrent(
            LSTMCell(3, 4, dtype=dt, rng=0), reverse=True, fused=False
        ),
        "stacked_dropout": lambda dt: Stacked(
            [LSTMCell(3, 4, dtype=dt, rng=0), LSTMCell(4, 2, dtype=dt, rng=1)], dropout=0.3, rng=0
        ),
        **{
            f"bidirectional_{merge}": partial(bidirectional, merge=merge)
            for merge in ("concat", "sum", "mean", "mul", "none")
        },
        "coupled_peephole": lambda dt: lstmkit.CoupledLSTMCell(
            3, 4, peephole=True, dtype=dt, rng=0
        ),
        "gru": lambda dt: lstmkit.GRUCell(3, 4, dtype=dt, rng=0),
        "gru_reset_before_olah": lambda dt: lstmkit.GRUCell(
            3,
            4,
            reset_after=False,
            update_convention="olah",
            gate_activation="hard_sigmoid",
            dtype=dt,
            rng=0,
        ),
        "layernorm": lambda dt: lstmkit.LayerNormLSTMCell(3, 4, epsilon=1e-3, dtype=dt, rng=0),
        "projection_peephole": lambda dt: lstmkit.ProjectionLSTMCell(
            3, 5, 2, peephole=["input"], projection_initializer="orthogonal", dtype=dt, rng=0
        ),
        "variational_dropout": lambda dt: Recurrent(
            lstmkit.VariationalDropout(lstmkit.GRUCell(3, 4, dtype=dt, rng=0), 0.2, 0.3, rng=0)
        ),
        "zoneout": lambda dt: lstmkit.Zoneout(
            LSTMCell(3, 4, dtype=dt, rng=0), 0.1, 0.2, inference="expectation", rng=0
        ),
        "sequential": lambda dt: lstmkit.Sequential(
            Bidirectional(lstmkit.GRUCell(3, 4, dtype=dt, rng=0), rng=1),
            lstmkit.layers.MeanPool(),
            lstmkit.Dense(8, 2, activation="softplus", bias_initializer="ones", dtype=dt, rng=2),
        ),
        "sequential_last_step": lambda dt: lstmkit.Sequential(
            LSTMCell(3, 4, dtype=dt, rng=0),
            lstmkit.layers.LastStep(),
            lstmkit.Dense(4, 1, dtype=dt, rng=2),
        ),
        "nested": lambda dt: Stacked(
            [
                Bidirectional(LSTMCell(3, 4, peephole=True, dtype=dt, rng=0), rng=1),
                Recurrent(
                    LSTMCell(8, 2, gate_activation="hard_sigmoid", dtype=dt, rng=2), reverse=True
                ),
            ]
        ),
    }


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(builders()))
def test_round_trip_is_exact(tmp_path, name, dtype):
    model = builders()[name](dtype)
    # Train-like perturbation so the saved weights are not just the initial draw.
    for p in model.parameters():
        p.value += np.random.default_rng(9).standard_normal(p.shape).astype(dtype) * 0.1
    path = tmp_path / "model.npz"
    lstmkit.save(model, path)
    loaded = lstmkit.load(path)
    assert_same_model(model, loaded)
    if isinstance(model, lstmkit.Gate):
        x, h = np.ones((2, 3), dtype), np.full((2, 4), 0.5, dtype)
        c = np.full((2, 4), -0.3, dtype)
        np.testing.assert_array_equal(model(x, h, c), loaded(x, h, c))
        return
    for a, b in zip(outputs(model, dtype), outputs(loaded, dtype)):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)


def test_loaded_model_trains_the_same(tmp_path):
    model = Stacked(
        [Bidirectional(LSTMCell(3, 4, rng=0), rng=1), LSTMCell(8, 2, rng=2)], dropout=0.5
    )
    lstmkit.save(model, tmp_path / "m.npz")
    loaded = lstmkit.load(tmp_path / "m.npz")
    x = np.random.default_rng(0).standard_normal((2, 5, 3))
    grads = []
    for m in (model, loaded):
        y, _, cache = m.forward(x, lengths=[5, 3], rng=7)
        m.backward(cache, np.ones_like(y))
        grads.append({k: p.grad for k, p in m.named_parameters().items()})
    for k in grads[0]:
        # Not bit-equal: an initializer may leave a weight Fortran-ordered while loaded weights
        # are C-ordered, and BLAS may sum in another order for another memory layout.
        np.testing.assert_allclose(grads[0][k], grads[1][k], rtol=1e-12, atol=1e-15, err_msg=k)


def test_file_is_plain_npz_without_pickles(tmp_path):
    lstmkit.save(LSTMCell(2, 3, rng=0), tmp_path / "c.npz")
    with np.load(tmp_path / "c.npz", allow_pickle=False) as data:
        assert "forget.W" in data.files and data[CONFIG_KEY].dtype == np.uint8
        header = json.loads(data[CONFIG_KEY].tobytes().decode())
    assert header["format_version"] == FORMAT_VERSION
    assert header["model"]["type"] == "LSTMCell"
    assert header["parameters"]["forget.W"] == {"shape": [2, 3], "dtype": "float64"}


def test_save_overwrites_atomically_and_leaves_no_temp_files(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    lstmkit.save(LSTMCell(2, 3, rng=0), path)
    before = path.read_bytes()

    def broken_savez(fh, **arrays):
        fh.write(b"PK partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        lstmkit.save(LSTMCell(2, 3, rng=1), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]
    lstmkit.save(LSTMCell(2, 3, rng=1), path)
    assert_same_model(lstmkit.load(path), LSTMCell(2, 3, rng=1))


# -- how save writes the file ----------------------------------------------------------------------

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX links, modes and umask")


@posix_only
def test_save_through_a_symlink_replaces_the_linked_file_and_keeps_the_link(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    real = store / "real.npz"
    lstmkit.save(LSTMCell(2, 3, rng=0), real)
    link = tmp_path / "model.npz"
    link.symlink_to(os.path.join("store", "real.npz"))  # relative, as ln -s makes them
    lstmkit.save(LSTMCell(2, 3, rng=1), link)
    assert link.is_symlink() and os.readlink(link) == os.path.join("store", "real.npz")
    assert_same_model(lstmkit.load(real), LSTMCell(2, 3, rng=1))
    assert sorted(os.listdir(store)) == ["real.npz"]
    # A dangling link gets its file created, as open(link, "wb") would.
    dangling = tmp_path / "later.npz"
    dangling.symlink_to(store / "later.npz")
    lstmkit.save(LSTMCell(2, 3, rng=2), dangling)
    assert dangling.is_symlink()
    assert_same_model(lstmkit.load(store / "later.npz"), LSTMCell(2, 3, rng=2))


@posix_only
def test_save_refuses_a_read_only_file_and_leaves_it_as_it_was(tmp_path):
    path = tmp_path / "m.npz"
    lstmkit.save(LSTMCell(2, 3, rng=0), path)
    before = path.read_bytes()
    path.chmod(0o444)  # refused even for root, who could write it
    with pytest.raises(PermissionError, match=rf"^path: {repr(str(path))} is read-only") as info:
        lstmkit.save(LSTMCell(2, 3, rng=1), path)
    assert info.value.errno == errno.EACCES
    link = tmp_path / "link.npz"
    link.symlink_to(path)
    with pytest.raises(PermissionError, match=r"link\.npz' \(a link to .*m\.npz'\) is read-only"):
        lstmkit.save(LSTMCell(2, 3, rng=1), link)
    assert path.read_bytes() == before and (path.stat().st_mode & 0o777) == 0o444
    assert sorted(os.listdir(tmp_path)) == ["link.npz", "m.npz"]


@posix_only
def test_save_refuses_a_file_that_is_not_a_regular_file(tmp_path):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"^path: expected a regular file, received .*pipe\.npz"):
        lstmkit.save(LSTMCell(2, 3, rng=0), fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@posix_only
@pytest.mark.parametrize(
    "umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)], ids=["022", "027", "002"]
)
def test_a_new_file_gets_its_permissions_from_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        lstmkit.save(LSTMCell(2, 3, rng=0), tmp_path / "new.npz")
    finally:
        os.umask(old)
    assert (tmp_path / "new.npz").stat().st_mode & 0o777 == mode


@posix_only
def test_a_replaced_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "m.npz"
    lstmkit.save(LSTMCell(2, 3, rng=0), path)
    path.chmod(0o600)
    lstmkit.save(LSTMCell(2, 3, rng=1), path)
    assert path.stat().st_mode & 0o777 == 0o600


@posix_only
def test_save_flushes_the_file_renames_it_then_flushes_the_folder(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        status = os.fstat(fd)
        events.append(
            ("fsync", "folder" if stat.S_ISDIR(status.st_mode) else "file", status.st_ino)
        )
        real_fsync(fd)

    def replace(src, dst, **kwargs):
        events.append(("replace", os.path.basename(dst)))
        real_replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    path = tmp_path / "m.npz"
    lstmkit.save(LSTMCell(2, 3, rng=0), path)
    assert events == [
        ("fsync", "file", path.stat().st_ino),
        ("replace", "m.npz"),
        ("fsync", "folder", tmp_path.stat().st_ino),
    ]


def test_a_folder_that_cannot_be_flushed_is_not_a_failed_save(tmp_path, monkeypatch):
    real_fsync = os.fsync

    def fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "Invalid argument")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    lstmkit.save(LSTMCell(2, 3, rng=0), tmp_path / "m.npz")
    assert_same_model(lstmkit.load(tmp_path / "m.npz"), LSTMCell(2, 3, rng=0))


# -- user-defined components ------------------------------------------------------------------------


def test_custom_activation_must_be_registered_to_save_and_is_saved_by_name(tmp_path):
    cube = activations.Activation("cube_io_test", lambda z: z**3, lambda z: 3 * z**2)
    cell = LSTMCell(2, 3, candidate_activation=cube, rng=0)
    # Refused at save time (a file that cannot be loaded back is never written), with the path.
    with pytest.raises(
        ValueError, match=r"^model\.candidate: activation: 'cube_io_test'.*activations\.register"
    ):
        lstmkit.save(cell, tmp_path / "c.npz")
    assert not (tmp_path / "c.npz").exists()
    activations.register(cube)
    lstmkit.save(cell, tmp_path / "c.npz")
    loaded = lstmkit.load(tmp_path / "c.npz")
    assert loaded.candidate.activation is cube
    assert_same_model(cell, loaded)


def test_custom_initializer_must_be_registered_to_save_and_is_usable_by_name(tmp_path):
    def halves(shape, rng, dtype):
        return np.full(shape, 0.5, dtype)

    cell = LSTMCell(2, 3, bias_initializer=halves, rng=0)
    with pytest.raises(ValueError, match=r"^model\.forget: initializer: 'halves'.*register"):
        lstmkit.save(cell, tmp_path / "c.npz")
    # Loading weights into an existing model never needs the initializer registered.
    twin = LSTMCell(2, 3, bias_initializer=halves, rng=1)
    state = {k: v + 1 for k, v in cell.state_dict().items()}
    twin.load_state_dict(state)
    lstmkit.save(LSTMCell(2, 3, rng=1), tmp_path / "plain.npz")
    lstmkit.load_weights(cell, tmp_path / "plain.npz", check_config=False)
    # One registry: registered once, the name works in constructors and in files.
    lstmkit.initializers.register("halves", halves)
    by_name = LSTMCell(2, 3, bias_initializer="halves", rng=0)
    assert by_name.forget.bias_initializer is halves
    np.testing.assert_array_equal(by_name.input.b.value, np.full(3, 0.5))
    lstmkit.save(by_name, tmp_path / "c.npz")
    assert lstmkit.load(tmp_path / "c.npz").forget.bias_initializer is halves
    config.register_initializer("halves", halves)  # the older spelling: same registry, no error


@lstmkit.module.component
class ScaledRNNCell(lstmkit.Module):
    """A user cell: h = tanh(scale * (x @ W + h @ U))."""

    input_size: int
    hidden_size: int
    scale: float = 1.0
    dtype: np.dtype = np.dtype(np.float64)
    W: lstmkit.Parameter = None
    U: lstmkit.Parameter = None

    def __attrs_post_init__(self):
        rng = np.random.default_rng(0)
        self.W = lstmkit.Parameter(rng.standard_normal((self.input_size, self.hidden_size)))
        self.U = lstmkit.Parameter(rng.standard_normal((self.hidden_size, self.hidden_size)) * 0.3)

    def initial_state(self, batch_size=None):
        shape = (self.hidden_size,) if batch_size is None else (batch_size, self.hidden_size)
        return lstmkit.HiddenState(np.zeros(shape))

    def step(self, state, x):
        h = np.tanh(self.scale * (x @ self.W.value + state.h @ self.U.value))
        return lstmkit.HiddenState(h), h


def _scaled_to_config(cell):
    return {"input_size": cell.input_size, "hidden_size": cell.hidden_size, "scale": cell.scale}


def _scaled_from_config(cfg, ctx):
    ctx.check_keys(cfg, ["input_size", "hidden_size", "scale"])
    return ScaledRNNCell(
        ctx.int(cfg, "input_size"), ctx.int(cfg, "hidden_size"), ctx.float(cfg, "scale")
    )


def test_user_cell_round_trips_once_registered(tmp_path):
    model = Recurrent(ScaledRNNCell(2, 3, scale=0.7))
    model.cell.W.value += 1.0
    with pytest.raises(ValueError, match=r"lstmkit\.config\.register\('ScaledRNNCell'"):
        lstmkit.save(model, tmp_path / "m.npz")
    config.register("ScaledRNNCell", ScaledRNNCell, _scaled_to_config, _scaled_from_config)
    lstmkit.save(model, tmp_path / "m.npz")
    loaded = lstmkit.load(tmp_path / "m.npz")
    assert_same_model(model, loaded)
    x = np.random.default_rng(0).standard_normal((2, 4, 2))
    np.testing.assert_array_equal(model(x)[0], loaded(x)[0])


# -- bad input -----------------------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    model = Stacked([LSTMCell(3, 4, rng=0), LSTMCell(4, 2, peephole=True, rng=1)])
    path = tmp_path / "m.npz"
    lstmkit.save(model, path)
    return model, path


def test_newer_format_version_is_refused(saved):
    _, path = saved
    rewrite(path, lambda h: h.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(ValueError, match="newer than this lstmkit reads"):
        lstmkit.load(path)


def test_missing_and_extra_arrays_are_named(saved):
    _, path = saved
    rewrite(path, edit_arrays=lambda a: a.pop("layers.1.cell.output.p"))
    with pytest.raises(ValueError, match=r"missing \['layers.1.cell.output.p'\]"):
        lstmkit.load(path)
    rewrite(path, edit_header=lambda h: h["parameters"].pop("layers.1.cell.output.p"))
    with pytest.raises(ValueError, match="needs"):
        lstmkit.load(path)


def test_extra_array_is_named(saved):
    _, path = saved
    rewrite(path, edit_arrays=lambda a: a.update(stray=np.zeros(3)))
    with pytest.raises(ValueError, match=r"extra \['stray'\]"):
        lstmkit.load(path)


def test_shape_disagreeing_with_description(saved):
    _, path = saved

    def widen(h):
        h["model"]["layers"][0]["cell"]["hidden_size"] = 5
        for gate in h["model"]["layers"][0]["cell"]["gates"].values():
            gate["hidden_size"] = 5

    rewrite(path, widen)
    with pytest.raises(ValueError, match=r"shape \(3, 4\), but the description implies \(3, 5\)"):
        lstmkit.load(path)


def test_huge_size_in_description_is_refused_before_allocating(saved):
    _, path = saved

    def huge(h):
        cell = h["model"]["layers"][0]["cell"]
        for gate in cell["gates"].values():
            gate["hidden_size"] = 10**9

    rewrite(path, huge)
    with pytest.raises(ValueError, match="shape"):
        lstmkit.load(path)


def test_array_shape_disagreeing_with_manifest(saved):
    _, path = saved
    rewrite(path, edit_arrays=lambda a: a.update({"layers.0.cell.forget.b": np.zeros(5)}))
    with pytest.raises(ValueError, match=r"'layers.0.cell.forget.b' has shape \(5,\)"):
        lstmkit.load(path)


def test_fortran_ordered_arrays_load_with_their_values(saved):
    # numpy.savez stores a Fortran-ordered array as such (an initializer can leave one).
    model, path = saved
    expected = model.state_dict()["layers.0.cell.forget.W"]
    rewrite(
        path,
        edit_arrays=lambda a: a.update(
            {"layers.0.cell.forget.W": np.asfortranarray(a["layers.0.cell.forget.W"])}
        ),
    )
    with np.load(path, allow_pickle=False) as data:
        assert np.isfortran(data["layers.0.cell.forget.W"])
    loaded = lstmkit.load(path).state_dict()["layers.0.cell.forget.W"]
    np.testing.assert_array_equal(loaded, expected)


def test_wrong_dtype_array(saved):
    _, path = saved
    rewrite(
        path, edit_arrays=lambda a: a.update({"layers.0.cell.forget.b": np.zeros(4, np.float32)})
    )
    with pytest.raises(TypeError, match="dtype float32"):
        lstmkit.load(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights(saved, bad):
    _, path = saved

    def poison(a):
        a["layers.0.cell.input.U"][1, 2] = bad

    rewrite(path, edit_arrays=poison)
    with pytest.raises(ValueError, match=r"'layers.0.cell.input.U' has 1 non-finite"):
        lstmkit.load(path)


def test_unregistered_activation_name(saved):
    _, path = saved
    rewrite(
        path,
        lambda h: h["model"]["layers"][0]["cell"]["gates"]["input"].update(activation="gelu_x"),
    )
    with pytest.raises(
        ValueError, match=r"'gelu_x'.*register it with lstmkit\.activations\.register"
    ):
        lstmkit.load(path)


def test_unknown_component_type(saved):
    _, path = saved
    rewrite(path, lambda h: h["model"]["layers"][1].update(type="Mystery"))
    with pytest.raises(ValueError, match=r"unknown component 'Mystery'.*lstmkit\.config\.register"):
        lstmkit.load(path)


@pytest.mark.parametrize(
    "edit, error",
    [
        (lambda h: h["model"].update(dropout="0.1"), TypeError),
        (lambda h: h["model"].update(dropout=1.5), ValueError),
        (lambda h: h["model"]["layers"][0].update(reverse=1), TypeError),
        (lambda h: h["model"]["layers"][0]["cell"].update(dtype="float16"), ValueError),
        (lambda h: h["model"]["layers"][0]["cell"].update(extra=1), ValueError),
        (lambda h: h["model"]["layers"][0].pop("fused"), ValueError),
        (lambda h: h["model"].update(layers=[]), TypeError),
        (lambda h: h.update(model=[1, 2]), TypeError),
        (lambda h: h.pop("parameters"), ValueError),
        (
            lambda h: h["model"]["layers"][0]["cell"]["gates"]["forget"].update(
                kernel_initializer={"name": "normal", "args": {"mean": 0.0}}
            ),
            ValueError,
        ),
    ],
)
def test_bad_description_values(saved, edit, error):
    _, path = saved
    rewrite(path, edit)
    with pytest.raises(error):
        lstmkit.load(path)


def test_truncated_and_garbage_files(saved, tmp_path):
    _, path = saved
    data = path.read_bytes()
    for cut in (0, 10, len(data) // 2, len(data) - 1):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="truncated or corrupt"):
            lstmkit.load(bad)
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="not a readable lstmkit file"):
        lstmkit.load(tmp_path / "text.npz")


def test_plain_npz_is_not_an_lstmkit_file(tmp_path):
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not an lstmkit file"):
        lstmkit.load(tmp_path / "plain.npz")


def test_paths(tmp_path):
    cell = LSTMCell(2, 3, rng=0)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        lstmkit.save(cell, tmp_path / "missing" / "m.npz")
    with pytest.raises(ValueError, match="folder"):
        lstmkit.save(cell, tmp_path)
    with pytest.raises(TypeError, match="path"):
        lstmkit.save(cell, 3)
    with pytest.raises(FileNotFoundError, match="no file"):
        lstmkit.load(tmp_path / "nothing.npz")


def test_save_refuses_what_it_cannot_represent(tmp_path):
    cell = LSTMCell(2, 3, rng=0)
    shared = Bidirectional(Recurrent(cell), Recurrent(cell, reverse=True))
    with pytest.raises(ValueError, match="same object"):
        lstmkit.save(shared, tmp_path / "m.npz")
    bad = LSTMCell(2, 3, rng=0)
    bad.input.b.value[0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        lstmkit.save(bad, tmp_path / "m.npz")
    assert not os.listdir(tmp_path)


# -- load_weights ----------------------------------------------------------------------------------


def test_load_weights_into_existing_model(saved):
    model, path = saved
    other = Stacked([LSTMCell(3, 4, rng=5), LSTMCell(4, 2, peephole=True, rng=6)])
    lstmkit.load_weights(other, path)
    assert_same_model(model, other)


def test_load_weights_is_all_or_nothing(saved):
    _, path = saved
    target = Stacked([LSTMCell(3, 4, rng=5), LSTMCell(4, 2, rng=6)])  # no peephole
    before = target.state_dict()
    with pytest.raises(ValueError, match="differs"):
        lstmkit.load_weights(target, path)
    with pytest.raises(ValueError, match=r"not in the model \['layers.1.cell.forget.p'"):
        lstmkit.load_weights(target, path, check_config=False)
    after = target.state_dict()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])


def test_load_weights_checks_architecture_unless_told_not_to(saved):
    model, path = saved
    target = Stacked(
        [LSTMCell(3, 4, cell_activation="softsign", rng=5), LSTMCell(4, 2, peephole=True, rng=6)]
    )
    with pytest.raises(
        ValueError, match=r"cell_activation \(the file has 'tanh', the model 'softsign'\)"
    ):
        lstmkit.load_weights(target, path)
    lstmkit.load_weights(target, path, check_config=False)
    np.testing.assert_array_equal(
        target.layers[1].cell.output.p.value, model.layers[1].cell.output.p.value
    )


# -- configurations declared beside each class ---------------------------------------------------

# The keys each container, wrapper and layer writes, in order: the saved format, unchanged since
# these configurations moved beside their classes.
SAVED_KEYS = {
    "Recurrent": ["cell", "reverse", "fused"],
    "Stacked": ["layers", "dropout"],
    "Bidirectional": ["forward_layer", "backward_layer", "merge"],
    "VariationalDropout": ["cell", "input_rate", "recurrent_rate"],
    "Zoneout": ["cell", "h_rate", "c_rate", "inference"],
    "Dense": [
        "input_size",
        "output_size",
        "activation",
        "kernel_initializer",
        "bias_initializer",
        "dtype",
    ],
    "LastStep": [],
    "MeanPool": [],
    "Sequential": ["layers"],
}


def _every_moved_component():
    """Every container, wrapper and layer, nested Sequentials included (not LastStep)."""
    return lstmkit.Sequential(
        Stacked(
            [
                Bidirectional(
                    lstmkit.VariationalDropout(lstmkit.GRUCell(3, 4, rng=0), 0.2, 0.3, rng=0),
                    rng=1,
                    merge="sum",
                ),
                Recurrent(
                    lstmkit.Zoneout(LSTMCell(4, 4, rng=2), 0.1, 0.2, inference="expectation"),
                    reverse=True,
                    fused=False,
                ),
            ],
            dropout=0.25,
        ),
        lstmkit.Sequential(Recurrent(LSTMCell(4, 2, rng=3), fused=True)),
        lstmkit.Sequential(lstmkit.layers.MeanPool(), lstmkit.Dense(2, 2, "softplus", rng=4)),
    )


def _described(cfg):
    """Every component description inside ``cfg``, outermost first."""
    yield cfg
    for value in cfg.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict) and "type" in item:
                yield from _described(item)


def test_each_class_writes_the_saved_format():
    cfg = to_config(_every_moved_component())
    last_step = to_config(lstmkit.Sequential(LSTMCell(3, 2, rng=0), lstmkit.layers.LastStep()))
    seen = set()
    for described in [*_described(cfg), *_described(last_step)]:
        kind = described["type"]
        if kind in SAVED_KEYS:
            assert list(described)[1:] == SAVED_KEYS[kind], kind
            seen.add(kind)
    assert seen == set(SAVED_KEYS)
    stack, inner, head = cfg["layers"]
    bidirectional, backward = stack["layers"]
    assert stack["dropout"] == 0.25 and bidirectional["merge"] == "sum"
    assert bidirectional["forward_layer"]["fused"] is None
    assert bidirectional["backward_layer"]["reverse"] is True
    assert backward["fused"] is False and inner["layers"][0]["fused"] is True
    assert backward["cell"]["inference"] == "expectation"
    assert bidirectional["forward_layer"]["cell"]["input_rate"] == 0.2
    assert head["layers"][1]["kernel_initializer"] == {
        "name": "glorot_uniform",
        "args": {"gain": 1.0},
    }
    assert head["layers"][1]["activation"] == "softplus"
    assert json.loads(json.dumps(cfg)) == cfg


def test_each_class_registers_its_own_configuration_methods():
    for name in SAVED_KEYS:
        spec = config._BY_NAME[name]
        assert spec.cls.__name__ == name
        assert spec.to_config is spec.cls.to_config, name
        assert spec.from_config == spec.cls.from_config, name


def test_nested_sequentials_round_trip_exactly(tmp_path):
    model = _every_moved_component()
    for p in model.parameters():
        p.value += np.random.default_rng(9).standard_normal(p.shape) * 0.1
    lstmkit.save(model, tmp_path / "nested.npz")
    loaded = lstmkit.load(tmp_path / "nested.npz")
    assert_same_model(model, loaded)
    assert "layers.2.layers.1.W" in loaded.state_dict()
    x = np.random.default_rng(5).standard_normal((3, 4, 3))
    np.testing.assert_array_equal(model(x, lengths=[4, 1, 2]), loaded(x, lengths=[4, 1, 2]))


@pytest.mark.parametrize(
    "edit, error",
    [
        (lambda c: c["layers"][0].update(dropout=1.0), r"model\.layers\[0\]\.dropout"),
        (lambda c: c["layers"][1].update(extra=1), r"model\.layers\[1\]: keys do not match"),
        (
            lambda c: c["layers"][2]["layers"][0].update(size=1),
            r"model\.layers\[2\]\.layers\[0\]: keys do not match",
        ),
        (
            lambda c: c["layers"][1]["layers"][0].update(fused="yes"),
            r"model\.layers\[1\]\.layers\[0\]\.fused",
        ),
        (
            lambda c: c["layers"][2]["layers"][1].update(output_size=0),
            r"model\.layers\[2\]\.layers\[1\]\.output_size",
        ),
    ],
)
def test_nested_descriptions_are_checked_with_their_path(edit, error):
    cfg = to_config(_every_moved_component())
    edit(cfg)
    with pytest.raises((TypeError, ValueError), match=error):
        config.from_config(cfg)


def test_no_import_cycle_among_lstmkit_modules():
    """The package is layered: no module imports, even inside a function, one that imports it
    back (the configuration registry, for one, imports no component)."""
    import ast
    from pathlib import Path

    src = Path(lstmkit.__file__).resolve().parent.parent
    modules = {}
    for path in src.joinpath("lstmkit").rglob("*.py"):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path

    def resolve(name):
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                subs = [f"{base}.{alias.name}" for alias in node.names]
                targets = [t for t in subs if t in modules] or [base]
            else:
                continue
            edges |= {resolve(t) for t in targets if t.startswith("lstmkit")} - {name, ""}
        graph[name] = edges

    def reaches(start, goal):
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                if nxt == goal:
                    return True
                seen.add(nxt)
                todo.append(nxt)
        return False

    cycles = sorted(m for m in graph if reaches(m, m))
    assert cycles == []
    assert not any(
        t.startswith(("lstmkit.cells", "lstmkit.runners")) for t in graph["lstmkit.config"]
    )
