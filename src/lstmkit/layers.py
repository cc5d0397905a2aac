"""Feed-forward layers and :class:`Sequential`, which chains runners and heads.

A model for the adding problem reads like the maths::

    model = Sequential(Recurrent(LSTMCell(2, 32)), LastStep(), Dense(32, 1))
    y = model(x, lengths=lengths)                       # inference, (batch, 1)
    y, cache = model.forward(x, lengths=lengths)        # training
    dx, d_init = model.backward(cache, dy)              # accumulates parameter gradients

Feed-forward layers (:class:`Dense`, :class:`LastStep`, :class:`MeanPool`) share
a small contract: ``layer(x, lengths=None) -> y``,
``layer.forward(x, lengths=None, training=True) -> (y, cache)`` and
``layer.backward(cache, dy) -> dx``.

Examples
--------
>>> import numpy as np
>>> from lstmkit import Dense, LSTMCell, Recurrent, Sequential
>>> from lstmkit.layers import LastStep
>>> model = Sequential(Recurrent(LSTMCell(2, 4, rng=0)), LastStep(), Dense(4, 1, rng=1))
>>> model(np.ones((3, 5, 2)), lengths=[5, 2, 1]).shape
(3, 1)
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit import activations, initializers
from lstmkit.activations import Activation
from lstmkit.initializers import as_rng
from lstmkit.module import Module, Parameter, check_dtype, component
from lstmkit.protocols import StepContext
from lstmkit.sequence import SequencePlan, check_lengths, plan_for, run_runner, step_context

__all__ = ["Dense", "DenseCache", "LastStep", "MeanPool", "Sequential", "SequentialCache"]

Array = NDArray[Any]


def _check_input(x: Any, size: int, dtype: np.dtype[Any], argument: str = "x") -> Array:
    if isinstance(x, (list, tuple)):
        x = np.asarray(x)
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{argument}: expected a numpy array, received {type(x).__name__}")
    if x.dtype.kind not in "fiu":
        raise TypeError(f"{argument}: expected a real numeric array, received dtype {x.dtype}")
    if x.ndim < 1 or x.shape[-1] != size:
        raise ValueError(f"{argument}: expected shape (..., {size}), received {x.shape}")
    return x.astype(dtype, copy=False)


def _check_grad(dy: Any, shape: tuple[int, ...], argument: str = "dy") -> Array:
    if not isinstance(dy, np.ndarray):
        raise TypeError(f"{argument}: expected a numpy array, received {type(dy).__name__}")
    if dy.shape != shape:
        raise ValueError(f"{argument}: expected shape {shape}, received {dy.shape}")
    return dy


@attrs.define(eq=False)
class DenseCache:
    """Training cache of :meth:`Dense.forward`."""

    layer: Any
    x: Array
    z: Array | None
    y: Array
    used: bool = False


@component
class Dense(Module):
    """Fully connected layer ``activation(x @ W + b)`` on the last axis of any array.

    Parameters
    ----------
    input_size : int
    output_size : int
    activation : str or Activation, default "linear"
    kernel_initializer : str or callable, default "glorot_uniform"
    bias_initializer : str or callable, default "zeros"
    dtype : float32 or float64, default float64
    rng : numpy.random.Generator or int or None

    Attributes
    ----------
    W : Parameter, shape (input_size, output_size)
    b : Parameter, shape (output_size,)
    """

    input_size: int = attrs.field()
    output_size: int = attrs.field()
    activation: Activation = attrs.field(default=activations.linear, converter=activations.get)
    kernel_initializer: Any = attrs.field(default="glorot_uniform", kw_only=True, repr=False)
    bias_initializer: Any = attrs.field(default="zeros", kw_only=True, repr=False)
    dtype: np.dtype[Any] = attrs.field(default=np.float64, kw_only=True, converter=check_dtype)
    rng: Any = attrs.field(default=None, kw_only=True, repr=False)
    W: Parameter = attrs.field(init=False)
    b: Parameter = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        for name in ("input_size", "output_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name}: expected a positive integer, received {v!r}")
        rng, self.rng = self.rng, None
        self.reset_parameters(rng)

    def reset_parameters(self, rng: np.random.Generator | int | None = None) -> None:
        """Draw fresh ``W`` and ``b`` from the layer's initializers (gradients are zeroed)."""
        gen = as_rng(rng)
        kernel = initializers.get(self.kernel_initializer, argument="kernel_initializer")
        bias = initializers.get(self.bias_initializer, argument="bias_initializer")
        shape = (int(self.input_size), int(self.output_size))
        W = np.asarray(kernel(shape, gen, self.dtype), dtype=self.dtype)
        b = np.asarray(bias((shape[1],), gen, self.dtype), dtype=self.dtype)
        self.W, self.b = Parameter(W), Parameter(b)

    def __call__(self, x: Array, lengths: Any = None) -> Array:
        """Inference. ``x`` has shape ``(..., input_size)``; returns ``(..., output_size)``."""
        x = _check_input(x, self.input_size, self.dtype)
        return self.activation(x @ self.W.value + self.b.value)

    def forward(
        self, x: Array, lengths: Any = None, *, training: bool = True, rng: Any = None
    ) -> tuple[Array, DenseCache]:
        """Training forward: returns ``(y, cache)``."""
        x = _check_input(x, self.input_size, self.dtype)
        z = x @ self.W.value + self.b.value
        y = self.activation(z)
        keep_z = None if self.activation.derivative_from_output else z
        return y, DenseCache(self, x, keep_z, y)

    def backward(self, cache: DenseCache, dy: Array) -> Array:
        """Accumulate ``dW``, ``db``; return ``dx`` shaped like the input."""
        if not isinstance(cache, DenseCache) or cache.layer is not self:
            raise TypeError(
                f"cache: expected the DenseCache from this layer's forward(), received {type(cache).__name__}"
            )
        if cache.used:
            raise ValueError("cache: backward was already run on this cache; run forward again")
        dy = _check_grad(dy, cache.y.shape).astype(self.dtype, copy=False)
        dz = dy * self.activation.grad(cache.z, cache.y)
        x2 = cache.x.reshape(-1, self.input_size)
        dz2 = dz.reshape(-1, self.output_size)
        self.W.grad += x2.T @ dz2
        self.b.grad += dz2.sum(axis=0)
        cache.used = True
        return dz @ self.W.value.T

    def describe(self) -> str:
        return f"Dense(input={self.input_size}, output={self.output_size}, {self.activation.name})"


def _pool_lengths(x: Array, lengths: Any, plan: SequencePlan | None) -> Array:
    if x.ndim != 3:
        raise ValueError(f"x: expected (batch, time, features), received shape {x.shape}")
    B, T = x.shape[:2]
    if plan is not None and plan.fits(B, T):
        arr = plan.lengths  # validated once by the container
    else:
        arr = None if lengths is None else check_lengths(lengths, B, T)
    return np.full(B, T, dtype=np.intp) if arr is None else arr


@attrs.define(eq=False)
class _PoolCache:
    layer: Any
    shape: tuple[int, ...]
    lengths: Array
    used: bool = False


class _Pool(Module):
    """Shared entry of the pooling layers: ``layer(x, lengths)`` and ``forward``."""

    _takes_plan = True  # Sequential passes its validated lengths to _pool

    def __call__(self, x: Array, lengths: Any = None) -> Array:
        return self._pool(x, lengths, None)[0]

    def forward(
        self, x: Array, lengths: Any = None, *, training: bool = True, rng: Any = None
    ) -> tuple[Array, _PoolCache]:
        return self._pool(x, lengths, None)

    def _pool(self, x: Any, lengths: Any, plan: SequencePlan | None) -> tuple[Array, _PoolCache]:
        raise NotImplementedError


@component
class LastStep(_Pool):
    """Sequence-to-one pooling: the output at each sequence's last valid step.

    ``(batch, time, features) -> (batch, features)``, taking step ``lengths[b] - 1``
    (zeros for a sequence of length 0). For a :class:`~lstmkit.Bidirectional`, the
    backward direction's summary is at the *first* step; prefer :class:`MeanPool` or
    a forward runner there.
    """

    def _pool(self, x: Any, lengths: Any, plan: SequencePlan | None) -> tuple[Array, _PoolCache]:
        x = np.asarray(x)
        L = _pool_lengths(x, lengths, plan)
        idx = np.maximum(L - 1, 0)
        y = x[np.arange(x.shape[0]), idx] * (L > 0)[:, None].astype(x.dtype)
        return y, _PoolCache(self, x.shape, L)

    def backward(self, cache: _PoolCache, dy: Array) -> Array:
        if not isinstance(cache, _PoolCache) or cache.layer is not self:
            raise TypeError(
                f"cache: expected the cache from this layer's forward(), received {type(cache).__name__}"
            )
        B, _, F = cache.shape
        dy = _check_grad(dy, (B, F))
        dx = np.zeros(cache.shape, dy.dtype)
        valid = cache.lengths > 0
        rows = np.arange(B)[valid]
        dx[rows, cache.lengths[valid] - 1] = dy[valid]
        return dx

    def describe(self) -> str:
        return "LastStep()"


@component
class MeanPool(_Pool):
    """Sequence-to-one pooling: the mean over each sequence's valid steps (zeros if none)."""

    def _pool(self, x: Any, lengths: Any, plan: SequencePlan | None) -> tuple[Array, _PoolCache]:
        x = np.asarray(x)
        L = _pool_lengths(x, lengths, plan)
        mask = np.arange(x.shape[1])[None, :] < L[:, None]
        weights = (mask / np.maximum(L, 1)[:, None]).astype(x.dtype)
        return np.einsum("btf,bt->bf", x, weights), _PoolCache(self, x.shape, L)

    def backward(self, cache: _PoolCache, dy: Array) -> Array:
        if not isinstance(cache, _PoolCache) or cache.layer is not self:
            raise TypeError(
                f"cache: expected the cache from this layer's forward(), received {type(cache).__name__}"
            )
        B, T, F = cache.shape
        dy = _check_grad(dy, (B, F))
        L = cache.lengths
        weights = ((np.arange(T)[None, :] < L[:, None]) / np.maximum(L, 1)[:, None]).astype(
            dy.dtype
        )
        return weights[:, :, None] * dy[:, None, :]

    def describe(self) -> str:
        return "MeanPool()"


def _is_recurrent(layer: Any) -> bool:
    return hasattr(layer, "initial_state")


@attrs.define(eq=False)
class SequentialCache:
    """Training cache of :meth:`Sequential.forward`; ``final_state`` is the model's final state."""

    model: Any
    caches: list[Any]
    final_state: Any
    used: bool = False


@component
class Sequential(Module):
    """Layers applied in order: runners (``Recurrent``, ``Stacked``, ``Bidirectional``),
    bare cells (wrapped in ``Recurrent``) and feed-forward layers (``Dense``, pooling).

    Parameters
    ----------
    *layers
        The layers, first to last.

    Notes
    -----
    The model's state is the state of its recurrent layer; with several recurrent
    layers it is a tuple with one state per recurrent layer (``None`` entries allowed
    in an initial state). ``lengths`` is passed to every layer.
    """

    layers: list[Any]

    def __init__(self, *layers: Any) -> None:
        from lstmkit.runners.stacked import as_runner

        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        if not layers:
            raise ValueError("layers: expected at least one layer, received none")
        built = []
        for k, layer in enumerate(layers):
            if _is_recurrent(layer):
                built.append(as_runner(layer, argument=f"layers[{k}]"))
            elif all(hasattr(layer, m) for m in ("forward", "backward")):
                built.append(layer)
            else:
                raise TypeError(
                    f"layers[{k}]: expected a runner, a cell or a layer, received {type(layer).__name__}"
                )
        for k in range(1, len(built)):
            prev = _out_size(built[k - 1])
            want = getattr(built[k], "input_size", None)
            if prev is not None and want is not None and prev != want:
                raise ValueError(
                    f"layers[{k}]: expected input size {prev} (the output of layers[{k - 1}]), received {want}"
                )
        self.layers = built

    @property
    def _recurrent(self) -> list[int]:
        return [k for k, layer in enumerate(self.layers) if _is_recurrent(layer)]

    @property
    def input_size(self) -> int:
        return int(self.layers[0].input_size)

    @property
    def output_size(self) -> int | None:
        for layer in reversed(self.layers):
            size = _out_size(layer)
            if size is not None:
                return size
        return None

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(self.layers[0].dtype)

    def initial_state(self, batch_size: int | None = None) -> Any:
        """Zero state of the recurrent layer(s); None if there is none."""
        states = tuple(self.layers[k].initial_state(batch_size) for k in self._recurrent)
        return self._pack(states)

    def _pack(self, states: tuple[Any, ...]) -> Any:
        if not states:
            return None
        return states[0] if len(states) == 1 else states

    def _unpack(self, state: Any, argument: str) -> list[Any]:
        n = len(self._recurrent)
        if state is None:
            return [None] * n
        if n == 1:
            return [state]
        if not isinstance(state, (tuple, list)) or len(state) != n:
            raise ValueError(
                f"{argument}: expected a tuple of {n} states (one per recurrent layer)"
            )
        return list(state)

    def __call__(
        self,
        x: Array,
        initial_state: Any = None,
        lengths: Any = None,
        *,
        return_state: bool = False,
    ) -> Any:
        """Inference.

        Parameters
        ----------
        x : ndarray, shape (batch, time, input_size) or (time, input_size)
        initial_state : state, optional
        lengths : array of int, shape (batch,), optional
        return_state : bool, default False
            Also return the final state.

        Returns
        -------
        y : ndarray
            The last layer's output, e.g. ``(batch, time, out)`` or ``(batch, out)`` after pooling.
        final_state : state
            Only with ``return_state``.
        """
        y, final, _ = self._run(x, initial_state, lengths, context=None)
        return (y, final) if return_state else y

    def forward(
        self,
        x: Array,
        initial_state: Any = None,
        lengths: Any = None,
        *,
        training: bool = True,
        rng: Any = None,
    ) -> tuple[Array, SequentialCache]:
        """Training forward: ``(y, cache)``; the final state is ``cache.final_state``.

        ``training`` and ``rng`` reach every layer and every cell (see
        :meth:`Recurrent.forward <lstmkit.Recurrent.forward>`): with ``training=False`` the
        output is what inference gives.
        """
        y, _, cache = self._run(x, initial_state, lengths, context=step_context(training, rng))
        assert cache is not None
        return y, cache

    def _run(
        self, x: Any, initial_state: Any, lengths: Any, *, context: StepContext | None
    ) -> tuple[Array, Any, SequentialCache | None]:
        states = iter(self._unpack(initial_state, "initial_state"))
        if isinstance(x, (list, tuple)):
            x = np.asarray(x)
        plan = plan_for(x, lengths)  # validated and sorted once for every layer
        caches, finals = [], []
        for layer in self.layers:
            if _is_recurrent(layer):
                x, final, cache = run_runner(
                    layer, x, next(states), lengths, context=context, plan=plan
                )
                finals.append(final)
            elif getattr(layer, "_takes_plan", False):
                x, cache = layer._pool(x, lengths, plan)
            elif context is None:
                x, cache = layer(x, lengths), None
            else:
                x, cache = layer.forward(x, lengths, training=context.training, rng=context.rng)
            caches.append(cache)
        final_state = self._pack(tuple(finals))
        if context is None:
            return x, final_state, None
        return x, final_state, SequentialCache(self, caches, final_state)

    def backward(
        self, cache: SequentialCache, dy: Array | None = None, d_state: Any = None
    ) -> tuple[Array, Any]:
        """Back-propagate through every layer; returns ``(dx, d_initial_state)``.

        ``dy`` is the gradient of the loss with respect to the output; ``d_state``
        (optional) with respect to the final state.
        """
        if not isinstance(cache, SequentialCache) or cache.model is not self:
            raise TypeError(
                f"cache: expected the SequentialCache from this model's forward(), received {type(cache).__name__}"
            )
        if cache.used:
            raise ValueError("cache: backward was already run on this cache; run forward again")
        d_states = self._unpack(d_state, "d_state")
        d_inits: list[Any] = []
        grad: Any = dy
        r = len(d_states)
        for layer, layer_cache in zip(reversed(self.layers), reversed(cache.caches)):
            if _is_recurrent(layer):
                r -= 1
                grad, d_init = layer.backward(layer_cache, grad, d_states[r])
                d_inits.append(d_init)
            else:
                if grad is None:
                    raise ValueError(
                        "dy: a feed-forward layer needs an output gradient, received None"
                    )
                grad = layer.backward(layer_cache, grad)
        cache.used = True
        return grad, self._pack(tuple(reversed(d_inits)))

    def describe(self) -> str:
        return f"Sequential({len(self.layers)} layers)"


def _out_size(layer: Any) -> int | None:
    size = getattr(layer, "output_size", None)
    return None if size is None else int(size)
