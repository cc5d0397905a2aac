"""Fuzz ``lstmkit.load`` with a few thousand mutated files.

Contract under test: ``load`` either returns a model faithful to the file or raises ``ValueError``
or ``TypeError``; never any other exception type. "Faithful" depends on the mutation:

* truncations and flipped bytes damage the archive itself: a load that succeeds (the flip hit a
  timestamp or other unused field) must give a model equal to the original (same configuration,
  bit-identical parameters);
* edited JSON and swapped arrays are re-packed into a valid archive, so they may describe a
  different valid model: a load that succeeds must give exactly the edited configuration and the
  arrays stored under each name.

Every mutation comes from one seeded generator, so a failure is reproducible.
"""

import copy
import io
import json
import zipfile

import numpy as np
import pytest

import lstmkit
from lstmkit import Bidirectional, LSTMCell, Recurrent, Stacked
from lstmkit.config import to_config
from lstmkit.io import CONFIG_KEY

DOCUMENTED = (ValueError, TypeError)


def small_model():
    first = Bidirectional(
        LSTMCell(2, 3, peephole=True, gate_activation="hard_sigmoid", dtype=np.float32, rng=0),
        rng=1,
    )
    second = Recurrent(LSTMCell(6, 2, dtype=np.float32, rng=2), reverse=True)
    return Stacked([first, second], dropout=0.25)


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    model = small_model()
    for p in model.parameters():
        p.value += np.float32(0.5)  # weights unlike any fresh draw
    path = tmp_path_factory.mktemp("fuzz") / "model.npz"
    lstmkit.save(model, path)
    return model, path.read_bytes()


def unpack(data):
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays.pop(CONFIG_KEY).tobytes().decode())
    return header, arrays


def pack(header, arrays):
    buffer = io.BytesIO()
    text = json.dumps(header)
    np.savez(buffer, **{CONFIG_KEY: np.frombuffer(text.encode(), np.uint8)}, **arrays)
    return buffer.getvalue()


def try_load(path, data):
    path.write_bytes(data)
    try:
        return lstmkit.load(path)
    except DOCUMENTED as error:
        # load's last-resort wrapper for a from_config that failed in an unforeseen way must
        # never be what catches damage to lstmkit's own components.
        assert "cannot be built" not in str(error), error
        return None


def assert_equal_to(model, config, arrays):
    assert to_config(model) == config
    state = model.state_dict()
    assert sorted(state) == sorted(arrays)
    for name, value in state.items():
        assert value.dtype == arrays[name].dtype
        np.testing.assert_array_equal(value, arrays[name])


def test_truncated_files(original, tmp_path):
    _, data = original
    rng = np.random.default_rng(0)
    cuts = np.unique(
        np.concatenate([rng.integers(0, len(data), 400), [0, 1, 4, 22, len(data) - 1]])
    )
    for cut in cuts:
        # The zip directory sits at the end, so every proper prefix must be refused.
        assert try_load(tmp_path / "t.npz", data[:cut]) is None, f"cut at {cut}"


def test_flipped_bytes(original, tmp_path):
    model, data = original
    reference = (to_config(model), model.state_dict())
    rng = np.random.default_rng(1)
    outcomes = {"loaded": 0, "refused": 0}
    for _trial in range(1200):
        mutated = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            mutated[int(rng.integers(len(data)))] ^= int(rng.integers(1, 256))
        loaded = try_load(tmp_path / "f.npz", bytes(mutated))
        if loaded is None:
            outcomes["refused"] += 1
        else:
            outcomes["loaded"] += 1
            assert_equal_to(loaded, *reference)
    # Most flips land in checked data; a few land in unused zip fields (timestamps, ...).
    assert outcomes["refused"] > 800 and outcomes["loaded"] > 0, outcomes


REPLACEMENTS = [
    0,
    -1,
    1,
    2,
    7,
    10**9,
    2.5,
    -0.5,
    1e308,
    "",
    "x",
    "tanh",
    "sigmoid",
    "relu",
    "float32",
    "float16",
    "concat",
    "none",
    "zeros",
    "orthogonal",
    "LSTMCell",
    "Gate",
    "Recurrent",
    None,
    True,
    False,
    [],
    [1],
    {},
    {"type": "Gate"},
]


ACTIVATIONS = ["sigmoid", "tanh", "hard_sigmoid", "relu", "linear", "softsign", "softplus", "elu"]
SAME_KIND = {
    **{name: ACTIVATIONS for name in ACTIVATIONS},
    **{
        m: ["concat", "sum", "mean", "mul", "none"]
        for m in ("concat", "sum", "mean", "mul", "none")
    },
    **{
        i: ["zeros", "ones", "orthogonal", "glorot_uniform", "he_normal"]
        for i in ("zeros", "orthogonal", "glorot_uniform")
    },
}


def json_paths(node, path=()):
    """Every (path, value) in a JSON tree, containers included."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from json_paths(value, (*path, key))
    elif isinstance(node, list):
        for k, value in enumerate(node):
            yield from json_paths(value, (*path, k))


def edit_json(header, rng):
    header = copy.deepcopy(header)
    paths = [p for p, _ in json_paths(header) if p]
    path = paths[int(rng.integers(len(paths)))]
    parent = header
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    value = parent[last]
    action = rng.integers(5)
    if action == 4 and isinstance(value, (bool, float, str)):
        # A plausible edit of the same type, so that many edited files are still valid models.
        if isinstance(value, bool):
            parent[last] = not value
        elif isinstance(value, float):
            parent[last] = float(rng.choice([0.0, 0.1, 0.5, 0.9, 3.0]))
        else:
            parent[last] = str(rng.choice(SAME_KIND.get(value, [value])))
    elif action in (0, 4) or isinstance(parent, list):
        parent[last] = copy.deepcopy(REPLACEMENTS[int(rng.integers(len(REPLACEMENTS)))])
    elif action == 1:
        del parent[last]
    elif action == 2:
        parent[f"{last}_renamed"] = parent.pop(last)
    else:
        parent["unexpected"] = copy.deepcopy(REPLACEMENTS[int(rng.integers(len(REPLACEMENTS)))])
    return header


def variant_model():
    return lstmkit.Sequential(
        Bidirectional(
            lstmkit.Zoneout(lstmkit.GRUCell(2, 3, dtype=np.float32, rng=0), 0.1, 0.0), rng=1
        ),
        Recurrent(
            lstmkit.VariationalDropout(
                lstmkit.ProjectionLSTMCell(6, 3, 2, peephole=True, dtype=np.float32, rng=2),
                0.1,
                0.2,
            )
        ),
        lstmkit.CoupledLSTMCell(2, 3, dtype=np.float32, rng=3),
        lstmkit.LayerNormLSTMCell(3, 2, dtype=np.float32, rng=4),
        lstmkit.layers.LastStep(),
        lstmkit.Dense(2, 1, activation="sigmoid", dtype=np.float32, rng=5),
    )


@pytest.mark.parametrize("make, trials", [(small_model, 500), (variant_model, 250)])
def test_edited_json(make, trials, tmp_path):
    path = tmp_path / "m.npz"
    lstmkit.save(make(), path)
    header, arrays = unpack(path.read_bytes())
    rng = np.random.default_rng(2)
    outcomes = {"loaded": 0, "refused": 0}
    for _trial in range(trials):
        edited = edit_json(header, rng)
        loaded = try_load(tmp_path / "j.npz", pack(edited, arrays))
        if loaded is None:
            outcomes["refused"] += 1
        else:
            outcomes["loaded"] += 1
            assert_equal_to(loaded, edited["model"], arrays)
    assert outcomes["refused"] > 0 and outcomes["loaded"] > 0, outcomes


def test_swapped_and_renamed_arrays(original, tmp_path):
    _, data = original
    header, arrays = unpack(data)
    rng = np.random.default_rng(3)
    names = sorted(arrays)
    outcomes = {"loaded": 0, "refused": 0}
    for trial in range(400):
        mutated = dict(arrays)
        a, b = (names[int(i)] for i in rng.choice(len(names), 2, replace=False))
        if trial % 3 == 0:
            mutated[a + "x"] = mutated.pop(a)  # a renamed entry
        else:
            mutated[a], mutated[b] = arrays[b], arrays[a]
        if trial % 5 == 0:
            mutated[b] = mutated[b].astype(np.float64)
        loaded = try_load(tmp_path / "s.npz", pack(header, mutated))
        if loaded is None:
            outcomes["refused"] += 1
        else:
            outcomes["loaded"] += 1
            # Arrays of equal shape can trade places undetectably; the model must hold exactly
            # what the file stores under each name.
            assert_equal_to(loaded, header["model"], mutated)
    assert outcomes["refused"] > 0 and outcomes["loaded"] > 0, outcomes


def test_corrupt_array_headers(original, tmp_path):
    """Array headers edited inside a valid archive (the CRCs recomputed), e.g. a huge shape."""
    _, data = original
    rng = np.random.default_rng(4)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        entries = {info.filename: zf.read(info) for info in zf.infolist()}
    edits = [
        (b"(3,)", b"(999999999999,)"),
        (b"(3,)", b"(3, 3)"),
        (b"'<f4'", b"'|O'"),
        (b"'<f4'", b"'>f4'"),
        (b"'<f4'", b"'<f8'"),
        (b"False", b"True"),
        (b"'descr'", b"'desc'"),
        (b"(2, 3)", b"(-2, 3)"),
        (b"(2, 3)", b"(3, 2)"),
    ]
    for _trial in range(300):
        name = list(entries)[int(rng.integers(len(entries)))]
        old, new = edits[int(rng.integers(len(edits)))]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            for entry, raw in entries.items():
                zf.writestr(entry, raw.replace(old, new, 1) if entry == name else raw)
        try_load(tmp_path / "h.npz", buffer.getvalue())  # raises only documented errors
