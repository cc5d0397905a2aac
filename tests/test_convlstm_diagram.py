"""The ConvLSTM figure is drawn from the cell: its convolutions, kernel and gate activations."""

from __future__ import annotations

import pytest

from lstmkit import ConvLSTMCell, LSTMCell, activations, diagrams


def test_figure_shows_the_convolutions_and_the_cells_own_settings():
    cell = ConvLSTMCell((9, 9, 2), 4, (3, 5), padding="valid", dilation=(1, 2), rng=0)
    cell.output.activation = activations.hard_sigmoid
    svg = diagrams.conv_lstm(cell)
    assert svg.startswith("<svg")
    for part in ("input_conv", "recurrent_conv", "forget", "input", "candidate", "output"):
        assert f'data-part="{part}"' in svg
    assert "3×5, valid, dilation (1, 2)" in svg
    assert svg.count('data-activation="hard_sigmoid"') == 1
    assert svg.count('data-activation="sigmoid"') == 2


def test_highlight_dims_the_rest_and_unknown_parts_are_refused():
    cell = ConvLSTMCell((6, 1), 2, 3, rng=0)
    svg = diagrams.conv_lstm(cell, highlight=["input_conv", "recurrent_conv"])
    assert 'class="part part-input_conv highlight"' in svg
    assert 'class="part part-forget dim"' in svg
    with pytest.raises(ValueError, match="highlight: unknown parts"):
        diagrams.conv_lstm(cell, highlight="peephole")
    with pytest.raises(TypeError, match="expected a ConvLSTMCell"):
        diagrams.conv_lstm(LSTMCell(2, 3, rng=0))
