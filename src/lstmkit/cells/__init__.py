"""Cells: one time step ``(state, x_t) -> (state, y_t)`` built from gates."""

from lstmkit.cells.base import Cell, TrainableCell
from lstmkit.cells.convlstm import ConvLSTMCell
from lstmkit.cells.coupled import CoupledLSTMCell
from lstmkit.cells.gru import GRUCell
from lstmkit.cells.layernorm import LayerNormLSTMCell
from lstmkit.cells.lstm import LSTMCell
from lstmkit.cells.mgu import MGUCell
from lstmkit.cells.projection import ProjectionLSTMCell
from lstmkit.cells.simple import SimpleRNNCell

__all__ = [
    "Cell",
    "ConvLSTMCell",
    "CoupledLSTMCell",
    "GRUCell",
    "LSTMCell",
    "LayerNormLSTMCell",
    "MGUCell",
    "ProjectionLSTMCell",
    "SimpleRNNCell",
    "TrainableCell",
]
