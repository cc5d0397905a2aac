"""A gradient checker for runners and cells: analytic backward against finite differences.

:func:`check_gradients` compares a component's hand-written backward pass with
central finite differences of a random scalar loss, over every parameter
entry, every input entry and every entry of the initial state::

    L = sum(dy * y) + sum(d_state * final_state)        # dy, d_state random, fixed

so the upstream gradients on the outputs *and* on the final state are both
exercised. Each numeric derivative is ``(L(w + eps) - L(w - eps)) / (2 eps)``
in float64.

The error of one array (a parameter, the inputs, one array of the initial
state) is norm-based::

    error = ||a - n|| / max(||a|| + ||n||, 1e-12)

with ``a`` the analytic gradient and ``n`` the numeric one, both flattened. It
is 0 for a perfect match, 1 when one side is zero and the other is not, and
does not blow up on entries whose true gradient is zero. In float64 with
``eps = 1e-6`` a correct backward pass gives errors around 1e-9 to 1e-11.

Two mistakes agree with finite differences and are reported on their own:

* **A parameter the path never uses.** Its analytic and numeric gradients are
  both exactly zero, an error of 0. The report lists it in
  :attr:`GradientReport.unused` and :meth:`GradientReport.passed` fails, unless it
  is named in ``allow_unused`` (for a gradient that is zero for a reason, such as
  the recurrent weights over one step from a zero state).
* **A fused path that differs from the step path.** When a
  :class:`~lstmkit.Recurrent` inside the component takes its cell's fused
  sequence path, the checker also runs a copy with every runner stepping the cell
  (``fused=False``) on the same inputs, initial state and upstream gradients, and
  reports the relative difference of the outputs, the final state, the input
  gradient, the initial-state gradients and every parameter gradient in
  :attr:`GradientReport.step_path`. Finite differences of the default path alone
  cannot see a kernel that computes something other than the cell's own steps.

Examples
--------
>>> import numpy as np
>>> from lstmkit import LSTMCell, Recurrent
>>> from lstmkit.testing import check_gradients
>>> report = check_gradients(Recurrent(LSTMCell(2, 3, rng=0)), np.ones((2, 3, 2)), lengths=[3, 1])
>>> report.passed(1e-6)
True
>>> sorted(report.parameters)[:2]
['cell.candidate.U', 'cell.candidate.W']
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Iterator
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit.initializers import as_rng

__all__ = ["GradientReport", "check_cell_gradients", "check_gradients", "relative_error"]

Array = NDArray[Any]

_TINY = 1e-12


def relative_error(analytic: Any, numeric: Any) -> float:
    """``||a - n|| / max(||a|| + ||n||, 1e-12)`` over the flattened arrays."""
    a = np.asarray(analytic, dtype=np.float64).ravel()
    n = np.asarray(numeric, dtype=np.float64).ravel()
    if a.shape != n.shape:
        raise ValueError(f"numeric: expected shape {a.shape} like analytic, received {n.shape}")
    if a.size == 0:
        return 0.0
    return float(np.linalg.norm(a - n)) / max(float(np.linalg.norm(a) + np.linalg.norm(n)), _TINY)


def _worse_nan(error: float) -> float:
    return float("inf") if np.isnan(error) else error


@attrs.frozen
class GradientReport:
    """Result of :func:`check_gradients`.

    Attributes
    ----------
    parameters : dict of str to float
        Relative error of each parameter, by dotted name.
    inputs : float
        Relative error of the gradient with respect to the inputs ``x``.
    initial_state : dict of str to float
        Relative error of each array of the initial state, named by its path
        (``"h"``, ``"c"``, ``"0.h"`` for a stack, ``"forward.c"`` for a Bidirectional).
    checked : int
        Number of scalar entries that were perturbed.
    unused : tuple of str
        Parameters whose analytic and numeric gradients are both zero in every checked
        entry: the checked path does not use them (those named in ``allow_unused`` are
        left out). Any makes :meth:`passed` false.
    step_path : dict of str to float
        Relative difference between the checked path and the step path (every runner
        with ``fused=False``): ``"outputs"``, ``"final_state.<path>"``, ``"x"`` (input
        gradient), ``"initial_state.<path>"`` and each parameter's gradient. Empty when
        no runner of the component takes a fused path, as the two paths are then one.
    """

    parameters: dict[str, float]
    inputs: float
    initial_state: dict[str, float]
    checked: int
    unused: tuple[str, ...] = ()
    step_path: dict[str, float] = attrs.field(factory=dict)

    @property
    def errors(self) -> dict[str, float]:
        """Every error in one mapping.

        Parameter names, ``"x"``, ``"initial_state.<path>"`` and, for the comparison with
        the step path, ``"step_path.<name>"``.
        """
        out = dict(self.parameters)
        out["x"] = self.inputs
        out.update({f"initial_state.{k}": v for k, v in self.initial_state.items()})
        out.update({f"step_path.{k}": v for k, v in self.step_path.items()})
        return out

    @property
    def max_error(self) -> float:
        """The worst relative error over every entry of :attr:`errors` (NaN counts as inf)."""
        return max((_worse_nan(v) for v in self.errors.values()), default=0.0)

    @property
    def worst(self) -> str:
        """Name of the array with the worst error."""
        errors = self.errors
        return max(errors, key=lambda k: _worse_nan(errors[k]))

    def passed(self, tol: float = 1e-6) -> bool:
        """Whether every relative error is below ``tol`` and no parameter is :attr:`unused`."""
        return self.max_error < tol and not self.unused

    def __str__(self) -> str:
        width = max(len(k) for k in self.errors)
        lines = [f"{k:<{width}}  {v:.2e}" for k, v in self.errors.items()]
        if self.unused:
            lines.append(f"unused (zero gradient, analytic and numeric): {', '.join(self.unused)}")
        lines.append(
            f"max relative error {self.max_error:.2e} ({self.worst}); {self.checked} entries"
        )
        return "\n".join(lines)


# -- nested structures (arrays, tuples, attrs states) ----------------------------------------------


def _leaves(obj: Any, prefix: str = "") -> Iterator[tuple[str, Array]]:
    """``(path, array)`` for every array in a nest of tuples/lists/attrs classes."""
    if obj is None:
        return
    if isinstance(obj, np.ndarray):
        yield prefix, obj
    elif isinstance(obj, (tuple, list)):
        for k, item in enumerate(obj):
            yield from _leaves(item, f"{prefix}.{k}" if prefix else str(k))
    elif attrs.has(type(obj)):
        for f in attrs.fields(type(obj)):
            yield from _leaves(getattr(obj, f.name), f"{prefix}.{f.name}" if prefix else f.name)
    else:
        raise TypeError(
            f"state: expected arrays, tuples or attrs states, received {type(obj).__name__}"
        )


def _map(fn: Callable[[Array], Array], obj: Any) -> Any:
    """Rebuild a nest with ``fn`` applied to every array."""
    if obj is None:
        return None
    if isinstance(obj, np.ndarray):
        return fn(obj)
    if isinstance(obj, (tuple, list)):
        return type(obj)(_map(fn, item) for item in obj)
    if attrs.has(type(obj)):
        return type(obj)(
            **{f.name: _map(fn, getattr(obj, f.name)) for f in attrs.fields(type(obj))}
        )
    raise TypeError(
        f"state: expected arrays, tuples or attrs states, received {type(obj).__name__}"
    )


def _dot(a: Any, b: Any, skip: frozenset[str] = frozenset()) -> float:
    """``sum(a * b)`` over the arrays of two nests, leaving out the paths in ``skip``."""
    return float(
        sum(np.sum(u * v) for (k, u), (_, v) in zip(_leaves(a), _leaves(b)) if k not in skip)
    )


def _undrawn(a: Array) -> bool:
    """Whether ``a`` holds NaN: a random mask not drawn yet (variational dropout), no value."""
    return bool(a.dtype.kind == "f" and np.isnan(a).any())


# Rates of the components with randomness: Stacked's dropout, the regularization wrappers'.
_RANDOM_RATES = ("dropout", "input_rate", "recurrent_rate", "h_rate", "c_rate")


def _has_dropout(component: Any) -> bool:
    for name in _RANDOM_RATES:
        rate = getattr(component, name, None)
        if isinstance(rate, (int, float, np.integer, np.floating)) and rate > 0:
            return True
    children = getattr(component, "named_children", None)
    return any(_has_dropout(child) for _, child in (children() if children else ()))


def _as_runner(component: Any) -> Any:
    if all(hasattr(component, m) for m in ("forward", "backward", "initial_state")):
        return component
    if hasattr(component, "step") and hasattr(component, "initial_state"):
        from lstmkit.runners import Recurrent

        return Recurrent(component)
    raise TypeError(
        f"component: expected a runner (Recurrent, Stacked, Bidirectional) or a cell, "
        f"received {type(component).__name__}"
    )


def _step_ndim(component: Any) -> int:
    """Axes of one step's input: ``len(input_shape)`` of the first cell that declares one, else 1.

    Follows the first layer, the forward direction and the wrapped cell down to a cell, so an
    unbatched input of a convolutional cell (``(time, *input_shape)``) is recognised as such.
    """
    obj = component
    for _ in range(32):  # containers nest only a few levels
        shape = getattr(obj, "input_shape", None)
        if shape is not None:
            return len(shape)
        layers = getattr(obj, "layers", None)
        inner = layers[0] if layers else getattr(obj, "forward_layer", None)
        obj = inner if inner is not None else getattr(obj, "cell", None)
        if obj is None:
            break
    return 1


def _entries(size: int, limit: int | None, rng: np.random.Generator) -> Array:
    if limit is None or size <= limit:
        return np.arange(size)
    return np.sort(rng.choice(size, size=limit, replace=False))


def _modules(module: Any) -> Iterator[Any]:
    """``module`` and every module below it."""
    yield module
    children = getattr(module, "named_children", None)
    for _, child in children() if children is not None else ():
        yield from _modules(child)


def _step_path_copy(runner: Any) -> Any:
    """A deep copy of ``runner`` whose every ``Recurrent`` steps its cell, or None if no
    runner inside ``runner`` takes a fused path (the copy would compute the same way)."""
    from lstmkit.runners import Recurrent

    if not any(isinstance(m, Recurrent) and m.uses_fused() for m in _modules(runner)):
        return None
    clone = copy.deepcopy(runner)
    for m in _modules(clone):
        if isinstance(m, Recurrent):
            m.fused = False
    return clone


def _differences(name: str, ours: Any, theirs: Any) -> dict[str, float]:
    """Relative difference of each array of two nests, named ``name.<path>``."""
    a, b = dict(_leaves(ours)), dict(_leaves(theirs))
    out: dict[str, float] = {}
    for path in [*a, *(k for k in b if k not in a)]:
        key = f"{name}.{path}" if path else name
        u, v = a.get(path), b.get(path)
        if u is None or v is None or u.shape != v.shape:
            out[key] = 1.0  # the two paths do not even return the same arrays
            continue
        nan_u, nan_v = np.isnan(u), np.isnan(v)  # undrawn masks are NaN on both paths
        if np.array_equal(nan_u, nan_v):
            out[key] = relative_error(u[~nan_u], v[~nan_v])
        else:
            out[key] = 1.0
    return out


# -- the checker -----------------------------------------------------------------------------------


def check_gradients(
    component: Any,
    x: Any,
    *,
    initial_state: Any = None,
    lengths: Any = None,
    eps: float = 1e-6,
    rng: Any = 0,
    training_seed: int | None = None,
    max_entries: int | None = None,
    allow_unused: Collection[str] = (),
) -> GradientReport:
    """Compare a component's backward pass with central finite differences.

    Parameters
    ----------
    component : runner, cell or Sequential
        A float64 :class:`~lstmkit.Recurrent`, :class:`~lstmkit.Stacked`,
        :class:`~lstmkit.Bidirectional`, any object keeping the runner contract, a
        bare cell (run inside ``Recurrent``) or a :class:`~lstmkit.Sequential` model.
    x : array_like, shape (batch, time, input_size) or (time, input_size)
        Inputs; converted to float64. For a cell with a multi-axis ``input_shape`` (a
        convolutional cell): ``(batch, time, *input_shape)`` or ``(time, *input_shape)``.
    initial_state : state, optional
        The initial state to differentiate at. If None, a random one (standard normal
        times 0.5, drawn from ``rng``) with the structure of ``component.initial_state``.
    lengths : array of int, shape (batch,), optional
        Valid steps of each sequence.
    eps : float, default 1e-6
        Finite-difference step.
    rng : numpy.random.Generator or int, default 0
        Randomness for the upstream gradients, the default initial state and sampling.
    training_seed : int, optional
        If given, every evaluation (analytic and numeric) runs the *training* forward
        ``forward(..., training=True, rng=np.random.default_rng(training_seed))``, so
        dropout draws identical masks each time and its backward is checked. If None,
        the numeric side runs inference (``component(x, ...)``), and a component with
        dropout is refused.
    max_entries : int, optional
        Perturb at most this many randomly chosen entries of each array (for large
        models); None checks every entry.
    allow_unused : collection of str, default ()
        Parameters (dotted names, as in the report) whose gradient may be zero on both
        sides without being reported :attr:`~GradientReport.unused`, such as the
        recurrent weights ``U`` over a single step from a zero initial state.

    Returns
    -------
    GradientReport
        Relative error per parameter, for the inputs and for each initial-state array;
        the parameters that receive no gradient; and, when a runner inside the
        component takes a fused path, its difference from the step path.

    Raises
    ------
    ValueError
        A name in ``allow_unused`` is not a parameter of the component.

    Notes
    -----
    The component's weights and accumulated gradients are restored before returning.
    The step-path copy is made before the first evaluation, so a wrapper's own random
    generator starts in the same state in both (pass ``training_seed`` for dropout).
    """
    runner = _as_runner(component)
    dt = np.dtype(runner.dtype)
    if dt != np.float64:
        raise TypeError(
            f"component: expected a float64 component for finite differences, received {dt}; "
            "build it with dtype=np.float64 (the default) to check its gradients"
        )
    if training_seed is None and _has_dropout(runner):
        raise ValueError(
            "training_seed: the component draws random masks (dropout, zoneout); pass "
            "training_seed=<int> so every evaluation draws the same masks"
        )
    gen = as_rng(rng)
    x = np.array(x, dtype=np.float64)
    batch = None if x.ndim == _step_ndim(runner) + 1 else x.shape[0]
    if initial_state is None:
        initial_state = _map(
            lambda a: a.copy() if _undrawn(a) else 0.5 * gen.standard_normal(a.shape),
            runner.initial_state(batch),
        )
    else:
        initial_state = _map(lambda a: np.array(a, dtype=np.float64), initial_state)

    # Final-state arrays with undrawn masks (a sequence of length 0) stay out of the loss.
    skip: frozenset[str] = frozenset()

    def loss_of(y: Any, final: Any, dy: Any, ds: Any) -> float:
        return _dot(y, dy) + _dot(final, ds, skip)

    from lstmkit.layers import Sequential

    sequential = isinstance(runner, Sequential)

    def run(r: Any, train: bool) -> tuple[Any, Any, Any]:
        if training_seed is not None or train:
            seed_rng = None if training_seed is None else np.random.default_rng(training_seed)
            out = r.forward(x, initial_state, lengths, training=True, rng=seed_rng)
            if sequential:  # Sequential returns (y, cache) and keeps the state on the cache
                return out[0], out[1].final_state, out[1]
            return out
        if sequential:
            y, final = r(x, initial_state, lengths, return_state=True)
        else:
            y, final = r(x, initial_state, lengths)
        return y, final, None

    params = runner.named_parameters()
    unknown = sorted(set(allow_unused) - set(params))
    if isinstance(allow_unused, str) or unknown:
        raise ValueError(
            f"allow_unused: expected names of the component's parameters, received "
            f"{unknown or allow_unused!r}; the parameters are {', '.join(params)}"
        )
    # Made before any evaluation, so random generators inside start alike in both.
    stepped = _step_path_copy(runner)

    # Analytic side: one training forward and backward with random upstream gradients.
    saved_grads = {name: p.grad.copy() for name, p in params.items()}
    y, final, cache = run(runner, train=True)
    dy = _map(lambda a: gen.standard_normal(a.shape), y)
    ds = _map(lambda a: gen.standard_normal(a.shape), final)
    skip = frozenset(path for path, a in _leaves(final) if _undrawn(a))
    ds = _map(lambda a: np.zeros_like(a) if _undrawn(a) else a, ds)
    try:
        for p in params.values():
            p.grad[...] = 0
        dx, d_init = runner.backward(cache, dy, ds)
        analytic_params = {name: p.grad.copy() for name, p in params.items()}
    finally:
        for name, p in params.items():
            p.grad[...] = saved_grads[name]
    analytic_init = dict(_leaves(d_init))

    # The same forward and backward on the step path, array by array.
    step_path: dict[str, float] = {}
    if stepped is not None:
        step_params = stepped.named_parameters()
        for p in step_params.values():
            p.grad[...] = 0
        y_s, final_s, cache_s = run(stepped, train=True)
        dx_s, d_init_s = stepped.backward(cache_s, _map(np.copy, dy), _map(np.copy, ds))
        step_path.update(_differences("outputs", y, y_s))
        step_path.update(_differences("final_state", final, final_s))
        step_path.update(_differences("x", dx, dx_s))
        step_path.update(_differences("initial_state", d_init, d_init_s))
        for name, grad in analytic_params.items():
            other = step_params.get(name)
            step_path[name] = (
                1.0
                if other is None or other.grad.shape != grad.shape
                else relative_error(grad, other.grad)
            )

    def numeric(array: Array) -> tuple[Array, Array]:
        """Numeric gradient of the loss w.r.t. ``array`` (perturbed in place), and the entries."""
        flat = array.reshape(-1)  # a view: ``array`` is contiguous
        idx = _entries(flat.size, max_entries, gen)
        out = np.zeros(idx.size)
        for j, k in enumerate(idx):
            orig = flat[k]
            try:
                flat[k] = orig + eps
                plus = loss_of(*run(runner, train=False)[:2], dy, ds)
                flat[k] = orig - eps
                minus = loss_of(*run(runner, train=False)[:2], dy, ds)
            finally:
                flat[k] = orig
            out[j] = (plus - minus) / (2 * eps)
        return out, idx

    checked = 0
    param_errors: dict[str, float] = {}
    unused: list[str] = []
    for name, p in params.items():
        if not p.value.flags.c_contiguous:
            p.value = np.ascontiguousarray(p.value)
        n, idx = numeric(p.value)
        analytic = analytic_params[name]
        param_errors[name] = relative_error(analytic.reshape(-1)[idx], n)
        checked += idx.size
        # Both sides zero: an error of 0, yet nothing was checked (the path ignores it).
        if idx.size and not np.any(analytic) and not np.any(n) and name not in allow_unused:
            unused.append(name)

    n, idx = numeric(x)
    input_error = relative_error(np.asarray(dx, dtype=np.float64).reshape(-1)[idx], n)
    checked += idx.size

    init_errors: dict[str, float] = {}
    for path, array in _leaves(initial_state):
        if _undrawn(array):
            continue  # masks not drawn yet: no value to differentiate at
        n, idx = numeric(array)
        got = analytic_init.get(path)
        if got is None:
            raise ValueError(f"component: backward returned no initial-state gradient for {path!r}")
        init_errors[path] = relative_error(np.asarray(got).reshape(-1)[idx], n)
        checked += idx.size
    return GradientReport(param_errors, input_error, init_errors, checked, tuple(unused), step_path)


def check_cell_gradients(
    cell: Any,
    *,
    batch_size: int = 2,
    time: int = 3,
    lengths: Any = None,
    fused: bool | None = None,
    reverse: bool = False,
    eps: float = 1e-6,
    rng: Any = 0,
    max_entries: int | None = None,
    allow_unused: Collection[str] = (),
) -> GradientReport:
    """Check a cell's backward pass on random inputs, run inside :class:`~lstmkit.Recurrent`.

    Parameters
    ----------
    cell : cell
        A float64 object keeping the cell contract (``step_train``/``step_backward``).
    batch_size, time : int
        Size of the random input ``(batch_size, time, cell.input_size)`` (``(batch_size,
        time, *cell.input_shape)`` for a cell that declares one, such as a convolutional cell).
    lengths : array of int, optional
        Valid steps of each sequence.
    fused : bool or None, default None
        The runner's ``fused``: None checks the path ``Recurrent(cell)`` takes (the
        cell's fused sequence path when it declares it exact, else its steps) and compares
        it with the step path; True requires the fused path (``TypeError`` for a cell
        without one) and compares it with the step path; False checks the cell's own
        ``step_train``/``step_backward`` alone.
    reverse : bool, default False
        Run the sequence backwards in time.
    eps, rng, max_entries, allow_unused
        As in :func:`check_gradients`; parameter names start with ``"cell."``.

    Returns
    -------
    GradientReport

    Raises
    ------
    TypeError
        ``fused=True`` and the cell cannot take the fused path (the message says why).
    """
    from lstmkit.runners import Recurrent
    from lstmkit.runners._checks import step_shape

    gen = as_rng(rng)
    x = gen.standard_normal((batch_size, time, *step_shape(cell, "input")))
    runner = Recurrent(cell, reverse=reverse, fused=fused)
    return check_gradients(
        runner,
        x,
        lengths=lengths,
        eps=eps,
        rng=gen,
        max_entries=max_entries,
        allow_unused=allow_unused,
    )
