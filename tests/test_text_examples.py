"""The two text examples run end to end on a little text (tiny models, a few updates)."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import lstmkit

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_char_lm_trains_on_standard_library_source(tmp_path, capsys):
    char_lm = load_example("char_lm")
    argv = ["--epochs", "1", "--hidden", "8", "--streams", "4", "--modules", "keyword"]
    loss = char_lm.main([*argv, "--plot", str(tmp_path / "loss.png")])
    printed = capsys.readouterr().out
    assert "keyword.py" in printed and "summary:" in printed
    assert np.isfinite(loss)


def test_watch_lstm_think_saves_loadable_models_and_a_log(tmp_path, capsys):
    watch = load_example("watch_lstm_think")
    argv = ["--max-chars", "2000", "--hidden", "8", "--epochs", "1", "--eval-chars", "300"]
    argv += ["--adding-steps", "3", "--out", str(tmp_path), "--plot", str(tmp_path / "l.png")]
    log = watch.main(argv)
    saved = json.loads((tmp_path / "watch_lstm_think_log.json").read_text())
    assert (
        saved["char_model"]["updates"]
        == len(saved["char_model"]["losses"])
        == log["char_model"]["updates"]
    )
    model = lstmkit.load(tmp_path / "python_char_lstm.npz")
    assert model.num_parameters() == saved["char_model"]["parameters"]
    assert lstmkit.load(tmp_path / "adding_lstm.npz").num_parameters() > 0
    assert "summary:" in capsys.readouterr().out


def test_watch_lstm_think_quick_leaves_the_committed_models_alone(tmp_path, capsys):
    watch = load_example("watch_lstm_think")
    data = EXAMPLES / "data"
    committed = {p.name: p.read_bytes() for p in sorted(data.iterdir())}
    watch.main(["--quick", "--plot", str(tmp_path / "l.png")])
    printed = capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in sorted(data.iterdir())} == committed
    folder = printed.split("deleted at exit (")[1].split(";")[0]
    assert str(data) not in folder
    assert not Path(folder).exists()  # the temporary folder is gone
    assert printed.rstrip().splitlines()[-1].startswith("summary:")


def test_watch_lstm_think_quick_refuses_to_write_into_examples_data(capsys):
    watch = load_example("watch_lstm_think")
    with pytest.raises(SystemExit):
        watch.main(["--quick", "--out", str(EXAMPLES / "data")])
    assert "--quick does not overwrite" in capsys.readouterr().err


def test_watch_lstm_think_quick_keeps_its_files_where_out_says(tmp_path, capsys):
    watch = load_example("watch_lstm_think")
    watch.main(["--quick", "--out", str(tmp_path / "mine"), "--plot", str(tmp_path / "l.png")])
    assert lstmkit.load(tmp_path / "mine" / "python_char_lstm.npz").num_parameters() > 0
    assert str(tmp_path / "mine") in capsys.readouterr().out
