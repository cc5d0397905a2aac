"""Weights in and out of other libraries and layouts.

* :mod:`lstmkit.interop.torch`: ``from_torch`` / ``to_torch`` for PyTorch's ``nn.LSTM``,
  ``nn.LSTMCell``, ``nn.GRU``, ``nn.GRUCell``, ``nn.RNN`` and ``nn.RNNCell`` (PyTorch is optional);
* :mod:`lstmkit.interop.keras`: Keras ``[kernel, recurrent_kernel, bias]`` weight lists for LSTM,
  GRU and SimpleRNN, without Keras;
* :mod:`lstmkit.interop.onnx`: ``to_onnx`` writes ONNX ``LSTM``/``GRU``/``RNN`` graphs (onnx is optional);
* :mod:`lstmkit.interop.seed`: the seed's column-vector layout (``Wf, Wi, WC, Wo`` over ``[h; x]``).
* :mod:`lstmkit.interop.onnx_model` and :mod:`lstmkit.interop.torch_model`: whole
  :class:`~lstmkit.Sequential` models (runners plus ``Dense``/pooling heads) as one ONNX graph or
  one PyTorch module (``to_onnx`` and ``to_torch`` hand them a ``Sequential``);
* :mod:`lstmkit.interop.keras_layers`: Keras weight lists per layer for runners and stacks.

The submodules import their optional dependency only when a function is called, so importing
``lstmkit.interop`` needs nothing beyond NumPy.
"""

# Import the submodules themselves (lstmkit.interop.torch, ...): each needs its own optional package.
__all__: list[str] = []
