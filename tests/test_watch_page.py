"""The "Watch an LSTM think" page: its hook computes every value the page names, from the saved
models, and the saved models are what the training log says they are."""

import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import lstmkit
from lstmkit.datasets import ANALYSIS_MODULES, CHAR_VOCAB, encode_chars, python_source_text

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "data"


@pytest.fixture(scope="module")
def hook():
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import watch_hooks
    finally:
        sys.path.pop(0)
    return watch_hooks


@pytest.fixture(scope="module")
def measured(hook, tmp_path_factory):
    out = tmp_path_factory.mktemp("watch")
    return out, hook.measure(out)


def test_every_placeholder_has_a_value_and_every_figure_parses(measured):
    out, values = measured
    page = (ROOT / "docs" / "watch-an-lstm-think.md").read_text(encoding="utf-8")
    names = set(re.findall(r"\{\{watch:([a-z0-9_.-]+)\}\}", page))
    assert names and names <= set(values)
    figures = set(re.findall(r"generated/watch/([a-z0-9-]+\.svg)", page))
    assert figures == {p.name for p in out.glob("*.svg")}
    for name in figures:
        ET.fromstring((out / name).read_text(encoding="utf-8"))


def test_the_saved_char_model_scores_what_the_log_says():
    log = json.loads((DATA / "watch_lstm_think_log.json").read_text(encoding="utf-8"))["char_model"]
    model = lstmkit.load(DATA / "python_char_lstm.npz")
    assert model.num_parameters() == log["parameters"]
    text = python_source_text(ANALYSIS_MODULES, max_chars=20000).text
    codes = np.array(encode_chars(text)[0])
    logits = model(np.eye(len(CHAR_VOCAB), dtype=model.dtype)[codes[:-1]][None])[0].astype(float)
    # cross-entropy written out here, not through lstmkit.losses
    loss = np.mean(
        [
            np.log(np.exp(row - row.max()).sum()) + row.max() - row[k]
            for row, k in zip(logits, codes[1:])
        ]
    )
    if log["python_version"] == python_source_text(["bisect"]).python_version:  # same text
        assert loss == pytest.approx(log["held_out_loss"], rel=1e-4)
    assert loss < 0.6 * log["uniform_loss"]


def test_the_adding_model_is_better_than_the_mean(measured):
    _, values = measured
    assert float(values["add_mse"]) < 0.1 * float(values["add_baseline"])
