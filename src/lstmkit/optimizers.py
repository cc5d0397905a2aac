"""Optimizers and global-norm gradient clipping.

Every optimizer takes ``model.parameters()`` (a list of
:class:`~lstmkit.Parameter`), ``model.named_parameters()`` (a dict, so errors
name the parameter) or a module, and updates ``Parameter.value`` in place from
``Parameter.grad``. :meth:`Optimizer.step` first checks every gradient (finite,
right shape): a bad gradient raises and no weight is changed.

Each update assigns ``Parameter.value`` (``p.value -= ...``), which moves the parameter's
``version``: a training cache made before a step is refused by ``backward`` (see the
guarantees page). :meth:`Optimizer.step`, :meth:`Optimizer.zero_grad` and
:func:`clip_grad_norm` hold :data:`lstmkit.module.GRADIENT_LOCK`, so none of them reads or
writes a gradient while another thread's backward pass is adding into it.

The update rules follow PyTorch's ``torch.optim`` (same defaults, same
formulas), so results can be compared one to one.

Examples
--------
>>> import numpy as np
>>> from lstmkit import Parameter
>>> from lstmkit.optimizers import SGD
>>> w = Parameter(np.array([1.0, 2.0]))
>>> w.grad[...] = [0.5, -1.0]
>>> opt = SGD([w], lr=0.1)
>>> opt.step()
>>> w.value.tolist()
[0.95, 2.1]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lstmkit.module import GRADIENT_LOCK, Parameter

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "RMSprop", "clip_grad_norm"]

Array = NDArray[Any]


def _named(params: Any, argument: str = "params") -> dict[str, Parameter]:
    """Normalise a module, a mapping or a sequence of parameters to ``{name: Parameter}``."""
    if hasattr(params, "named_parameters"):
        params = params.named_parameters()
    if isinstance(params, Mapping):
        items = [(str(k), v) for k, v in params.items()]
    elif isinstance(params, (str, bytes)) or not hasattr(params, "__iter__"):
        raise TypeError(
            f"{argument}: expected model.parameters(), model.named_parameters() or a module, "
            f"received {type(params).__name__}"
        )
    else:
        items = [(f"{argument}[{k}]", v) for k, v in enumerate(params)]
    out: dict[str, Parameter] = {}
    seen: set[int] = set()
    for name, p in items:
        if not isinstance(p, Parameter):
            raise TypeError(
                f"{argument}: entry {name!r} is not a Parameter, received {type(p).__name__}"
            )
        if id(p) in seen:
            raise ValueError(f"{argument}: parameter {name!r} is listed twice")
        seen.add(id(p))
        out[name] = p
    if not out:
        raise ValueError(f"{argument}: expected at least one parameter, received none")
    return out


def _check_rate(
    value: Any, argument: str, *, upper: float | None = None, open_upper: bool = True
) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{argument}: expected a number, received {type(value).__name__}") from None
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{argument}: expected a finite number >= 0, received {value!r}")
    if upper is not None and (v >= upper if open_upper else v > upper):
        raise ValueError(f"{argument}: expected a number in [0, {upper}), received {value!r}")
    return v


def _check_grads(params: Mapping[str, Parameter]) -> None:
    for name, p in params.items():
        g = p.grad
        if not isinstance(g, np.ndarray) or g.shape != p.value.shape:
            raise ValueError(
                f"{name}: gradient shape {getattr(g, 'shape', None)} does not match the "
                f"parameter's shape {p.value.shape}"
            )
        if not np.all(np.isfinite(g)):
            raise ValueError(f"{name}: gradient contains NaN or infinity; no parameter was updated")


def clip_grad_norm(params: Any, max_norm: float, *, error_if_nonfinite: bool = True) -> float:
    """Scale all gradients together so their global L2 norm is at most ``max_norm``.

    Parameters
    ----------
    params : module, mapping or sequence of Parameter
    max_norm : float
        Largest allowed norm of all gradients taken as one vector (> 0).
    error_if_nonfinite : bool, default True
        Raise ``ValueError`` (changing nothing) if the norm is NaN or infinite.

    Returns
    -------
    float
        The global norm *before* clipping.
    """
    named = _named(params)
    limit = _check_rate(max_norm, "max_norm")
    if limit == 0:
        raise ValueError("max_norm: expected a number > 0, received 0")
    with GRADIENT_LOCK:
        return _clip(named, limit, error_if_nonfinite)


def _clip(named: Mapping[str, Parameter], limit: float, error_if_nonfinite: bool) -> float:
    total = math.sqrt(
        sum(float(np.sum(np.square(p.grad, dtype=np.float64))) for p in named.values())
    )
    if not math.isfinite(total):
        if error_if_nonfinite:
            bad = next(n for n, p in named.items() if not np.all(np.isfinite(p.grad)))
            raise ValueError(f"params: gradient norm is {total}; {bad!r} holds NaN or infinity")
        return total
    scale = limit / (total + 1e-6)
    if scale < 1.0:
        for p in named.values():
            p.grad *= p.grad.dtype.type(scale)
    return total


class Optimizer:
    """Base class: parameter bookkeeping, validation, :meth:`zero_grad`.

    Subclasses implement ``_update(name, param, grad)``.
    """

    def __init__(self, params: Any, lr: float) -> None:
        self.params = _named(params)
        self.lr = lr
        self.steps = 0
        self.state: dict[str, dict[str, Array]] = {name: {} for name in self.params}

    @property
    def lr(self) -> float:
        """Learning rate (settable, e.g. for a schedule; must be >= 0)."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = _check_rate(value, "lr")

    def zero_grad(self) -> None:
        """Set every gradient to zero in place (holding :data:`lstmkit.module.GRADIENT_LOCK`)."""
        with GRADIENT_LOCK:
            for p in self.params.values():
                p.grad[...] = 0

    def step(self) -> None:
        """Apply one update to every parameter.

        Holds :data:`lstmkit.module.GRADIENT_LOCK` throughout, so no backward pass adds into
        a gradient while it is read.

        Raises
        ------
        ValueError
            A gradient holds NaN/inf or has the wrong shape (nothing is changed).
        """
        with GRADIENT_LOCK:
            _check_grads(self.params)
            self.steps += 1
            for name, p in self.params.items():
                self._update(name, p, p.grad)

    def _update(self, name: str, p: Parameter, g: Array) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _buffer(self, name: str, key: str, like: Array) -> Array:
        state = self.state[name]
        if key not in state:
            state[key] = np.zeros_like(like)
        return state[key]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.lr}, {len(self.params)} parameters)"


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and L2 decay.

    ``g = grad + weight_decay * w``; with momentum ``buf = momentum * buf + g``
    (``buf = g`` on the first step) and ``g = buf``, or ``g = g + momentum * buf``
    with Nesterov; then ``w -= lr * g``.

    Parameters
    ----------
    params : module, mapping or sequence of Parameter
    lr : float, default 0.01
    momentum : float in [0, 1), default 0
    nesterov : bool, default False
        Requires ``momentum > 0``.
    weight_decay : float, default 0
    """

    def __init__(
        self,
        params: Any,
        lr: float = 0.01,
        *,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        self.momentum = _check_rate(momentum, "momentum", upper=1.0)
        self.weight_decay = _check_rate(weight_decay, "weight_decay")
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov: Nesterov momentum needs momentum > 0, received momentum=0")
        self.nesterov = bool(nesterov)
        super().__init__(params, lr)

    def _update(self, name: str, p: Parameter, g: Array) -> None:
        if self.weight_decay:
            g = g + self.weight_decay * p.value
        if self.momentum:
            state = self.state[name]
            if "momentum" not in state:
                state["momentum"] = np.array(g, copy=True)
            else:
                buf = state["momentum"]
                buf *= self.momentum
                buf += g
            buf = state["momentum"]
            g = g + self.momentum * buf if self.nesterov else buf
        p.value -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction; ``weight_decay`` adds L2 to the gradient.

    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
    ``w -= lr * m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - b1^t)``,
    ``v_hat = v / (1 - b2^t)``.

    Parameters
    ----------
    params : module, mapping or sequence of Parameter
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8
    weight_decay : float, default 0
    """

    decoupled = False

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        *,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas: expected a pair of numbers, received {betas!r}")
        self.betas = (
            _check_rate(betas[0], "betas[0]", upper=1.0),
            _check_rate(betas[1], "betas[1]", upper=1.0),
        )
        self.eps = _check_rate(eps, "eps")
        self.weight_decay = _check_rate(weight_decay, "weight_decay")
        super().__init__(params, lr)

    def _update(self, name: str, p: Parameter, g: Array) -> None:
        b1, b2 = self.betas
        if self.weight_decay:
            if self.decoupled:
                p.value *= 1.0 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * p.value
        m = self._buffer(name, "m", p.value)
        v = self._buffer(name, "v", p.value)
        m *= b1
        m += (1.0 - b1) * g
        v *= b2
        v += (1.0 - b2) * np.square(g)
        t = self.steps
        step_size = self.lr / (1.0 - b1**t)
        denom = np.sqrt(v) / math.sqrt(1.0 - b2**t) + self.eps
        p.value -= step_size * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019).

    Before the Adam update, ``w *= 1 - lr * weight_decay``; the decay does not pass
    through the adaptive scaling. Same parameters as :class:`Adam`, with
    ``weight_decay`` defaulting to 0.01.
    """

    decoupled = True

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        *,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ) -> None:
        super().__init__(params, lr, betas=betas, eps=eps, weight_decay=weight_decay)


class RMSprop(Optimizer):
    """RMSprop (Hinton 2012): divide the gradient by a running RMS of recent gradients.

    ``v = alpha v + (1 - alpha) g^2``; ``avg = sqrt(v) + eps`` (centered: subtract the
    squared running mean of ``g`` first); with momentum ``buf = momentum buf + g / avg``
    and ``w -= lr buf``, else ``w -= lr g / avg``.

    Parameters
    ----------
    params : module, mapping or sequence of Parameter
    lr : float, default 0.01
    alpha : float in [0, 1), default 0.99
    eps : float, default 1e-8
    momentum : float in [0, 1), default 0
    centered : bool, default False
    weight_decay : float, default 0
    """

    def __init__(
        self,
        params: Any,
        lr: float = 0.01,
        *,
        alpha: float = 0.99,
        eps: float = 1e-8,
        momentum: float = 0.0,
        centered: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        self.alpha = _check_rate(alpha, "alpha", upper=1.0)
        self.eps = _check_rate(eps, "eps")
        self.momentum = _check_rate(momentum, "momentum", upper=1.0)
        self.centered = bool(centered)
        self.weight_decay = _check_rate(weight_decay, "weight_decay")
        super().__init__(params, lr)

    def _update(self, name: str, p: Parameter, g: Array) -> None:
        if self.weight_decay:
            g = g + self.weight_decay * p.value
        v = self._buffer(name, "square_avg", p.value)
        v *= self.alpha
        v += (1.0 - self.alpha) * np.square(g)
        if self.centered:
            mean = self._buffer(name, "grad_avg", p.value)
            mean *= self.alpha
            mean += (1.0 - self.alpha) * g
            # Clamp at 0: rounding can make the variance estimate a hair negative.
            avg = np.sqrt(np.maximum(v - np.square(mean), 0)) + self.eps
        else:
            avg = np.sqrt(v) + self.eps
        if self.momentum:
            buf = self._buffer(name, "momentum", p.value)
            buf *= self.momentum
            buf += g / avg
            p.value -= self.lr * buf
        else:
            p.value -= self.lr * (g / avg)
