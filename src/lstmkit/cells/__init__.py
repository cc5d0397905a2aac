"""Cells: one time step ``(state, x_t) -> (state, y_t)`` built from gates."""

from lstmkit.cells.base import Cell, TrainableCell
from lstmkit.cells.coupled import CoupledLSTMCell
from lstmkit.cells.gru import GRUCell
from lstmkit.cells.layernorm import LayerNormLSTMCell
from lstmkit.cells.lstm import LSTMCell
from lstmkit.cells.projection import ProjectionLSTMCell

__all__ = ["Cell", "LSTMCell", "TrainableCell"]
__all__ += ["CoupledLSTMCell", "GRUCell", "LayerNormLSTMCell", "ProjectionLSTMCell"]
from lstmkit.cells.mgu import MGUCell  # noqa: E402
from lstmkit.cells.simple import SimpleRNNCell  # noqa: E402

__all__ += ["MGUCell", "SimpleRNNCell"]
