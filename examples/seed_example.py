"""The seed LSTM's usage example, redone with lstmkit.

The seed LSTM is the original single-class NumPy LSTM this project grew from
(described in docs/guides/interop.md, section "The seed LSTM's layout"). Its
example built a cell with ``input_size = 3`` and ``hidden_size = 5``, ran one
step with column vectors, then a sequence of length 4. This script does the
same with lstmkit's components and prints the same shapes. lstmkit uses row
vectors, so one step takes ``x`` of shape ``(batch, input)`` where the seed
LSTM took ``(input, 1)``.

Run: ``python examples/seed_example.py``
"""

import numpy as np

from lstmkit import LSTMCell, Recurrent

input_size = 3
hidden_size = 5
rng = np.random.default_rng(0)
cell = LSTMCell(input_size, hidden_size, rng=rng)

# One step (the seed LSTM: x_t of shape (input_size, 1), h_prev and C_prev of shape (hidden_size, 1)).
x_t = rng.standard_normal((1, input_size))
state = cell.initial_state(batch_size=1)
state, h_t = cell.step(state, x_t)
print("single step - hidden state shape:", h_t.T.shape)  # (5, 1), as the seed LSTM printed

# A sequence (the seed LSTM: X of shape (seq_len, input_size) -> outputs (seq_len, hidden_size)).
X = rng.standard_normal((4, input_size))
outputs, final = Recurrent(cell)(X)
print("sequence output shape:", outputs.shape)  # (4, 5)
