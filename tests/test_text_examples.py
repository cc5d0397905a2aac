"""The two text examples run end to end on a little text (tiny models, a few updates)."""

import importlib.util
import json
from pathlib import Path

import numpy as np

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
