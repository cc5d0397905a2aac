"""lstmkit: a modular recurrent-network toolkit on NumPy.

Activations, initializers, gates, cells and runners are separate, swappable
components with exact hand-written backward passes.
"""

from lstmkit import (
    activations,
    diagrams,
    initializers,
    losses,
    optimizers,
    testing,
    training,
)
from lstmkit.activations import Activation
from lstmkit.cells import (
    Cell,
    ConvLSTMCell,
    CoupledLSTMCell,
    GRUCell,
    LayerNormLSTMCell,
    LSTMCell,
    MGUCell,
    ProjectionLSTMCell,
    SimpleRNNCell,
    TrainableCell,
)
from lstmkit.conv_gate import ConvGate
from lstmkit.gate import Gate
from lstmkit.io import load, load_weights, save
from lstmkit.layers import Dense, FinalState, LastStep, MeanPool, Sequential
from lstmkit.module import Module, Parameter
from lstmkit.regularization import VariationalDropout, Zoneout
from lstmkit.runners import Bidirectional, BidirectionalState, Recurrent, Stacked
from lstmkit.state import HiddenState, LSTMState

__version__ = "0.1.0"

__all__ = [
    "Activation",
    "Bidirectional",
    "BidirectionalState",
    "Cell",
    "ConvGate",
    "ConvLSTMCell",
    "CoupledLSTMCell",
    "Dense",
    "FinalState",
    "GRUCell",
    "Gate",
    "HiddenState",
    "LSTMCell",
    "LSTMState",
    "LastStep",
    "LayerNormLSTMCell",
    "MGUCell",
    "MeanPool",
    "Module",
    "Parameter",
    "ProjectionLSTMCell",
    "Recurrent",
    "Sequential",
    "SimpleRNNCell",
    "Stacked",
    "TrainableCell",
    "VariationalDropout",
    "Zoneout",
    "activations",
    "diagrams",
    "initializers",
    "load",
    "load_weights",
    "losses",
    "optimizers",
    "save",
    "testing",
    "training",
]
