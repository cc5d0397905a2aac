"""Runners: own the time loop and wrap any cell."""

from lstmkit.runners.bidirectional import Bidirectional, BidirectionalState
from lstmkit.runners.recurrent import Recurrent
from lstmkit.runners.stacked import Stacked

__all__ = ["Bidirectional", "BidirectionalState", "Recurrent", "Stacked"]
