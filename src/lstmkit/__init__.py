"""lstmkit: a modular recurrent-network toolkit on NumPy.

Activations, initializers, gates, cells and runners are separate, swappable
components with exact hand-written backward passes.
"""

from lstmkit import activations, initializers
from lstmkit.activations import Activation
from lstmkit.cells import Cell, LSTMCell, TrainableCell
from lstmkit.gate import Gate
from lstmkit.module import Module, Parameter
from lstmkit.runners import Bidirectional, BidirectionalState, Recurrent, Stacked
from lstmkit.state import HiddenState, LSTMState

__version__ = "0.1.0"

__all__ = [
    "Activation",
    "Bidirectional",
    "BidirectionalState",
    "Cell",
    "Gate",
    "HiddenState",
    "LSTMCell",
    "LSTMState",
    "Module",
    "Parameter",
    "Recurrent",
    "Stacked",
    "TrainableCell",
    "activations",
    "initializers",
]
