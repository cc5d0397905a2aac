"""Cells: one time step ``(state, x_t) -> (state, y_t)`` built from gates."""

from lstmkit.cells.base import Cell, TrainableCell
from lstmkit.cells.lstm import LSTMCell

__all__ = ["Cell", "LSTMCell", "TrainableCell"]
