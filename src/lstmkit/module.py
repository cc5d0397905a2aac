"""Parameters and the module base shared by every component.

A :class:`Parameter` is a named array with its gradient. A :class:`Module` is
an attrs class whose fields may hold parameters, other modules or lists of
modules; the base walks those fields to list parameters under dotted names
(``layers.0.cell.forget.W``), export and load flat state dicts, zero
gradients and print a short tree with shapes and parameter counts.

Two pieces of process-wide bookkeeping live here too (see the guarantees page, "Caches and
aliasing" and "Threads"):

* the **weights clock**: every :class:`Parameter` carries a ``version`` stamped from one
  process-wide counter when it is created and whenever its value is replaced through lstmkit.
  A training forward pass notes :func:`weights_clock`; :func:`check_weights_since` refuses a
  backward pass whose weights were replaced in between.
* the **gradient lock**: :data:`GRADIENT_LOCK`, a reentrant lock held by every public backward
  entry point (:func:`accumulates_gradients`) and by ``zero_grad``, optimizer steps and
  gradient clipping, so threads sharing a model never lose a gradient update.

Examples
--------
>>> from lstmkit import LSTMCell
>>> cell = LSTMCell(3, 5, rng=0)
>>> sorted(cell.state_dict())[:3]
['candidate.U', 'candidate.W', 'candidate.b']
"""

from __future__ import annotations

import copy
import functools
import operator
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit.initializers import as_rng

__all__ = [
    "GRADIENT_LOCK",
    "Module",
    "Parameter",
    "accumulates_gradients",
    "check_dtype",
    "check_weights_since",
    "component",
    "weights_clock",
]

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def name_difference(
    expected: Iterable[str],
    received: Iterable[str],
    *,
    missing: str = "missing",
    extra: str = "unexpected",
) -> str | None:
    """``"missing [...], unexpected [...]"`` when two collections of names differ, else None."""
    lacking = sorted(set(expected) - set(received))
    surplus = sorted(set(received) - set(expected))
    if not lacking and not surplus:
        return None
    return f"{missing} {lacking or 'none'}, {extra} {surplus or 'none'}"


def check_dtype(dtype: Any, *, argument: str = "dtype") -> np.dtype[Any]:
    """Return ``np.dtype(dtype)`` if it is float32 or float64, else raise ``TypeError``."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{argument}: expected float32 or float64, received {dtype!r}") from None
    if dt not in _FLOAT_DTYPES:
        raise TypeError(f"{argument}: expected float32 or float64, received {dt}")
    return dt


# -- the weights clock ----------------------------------------------------------------------------

_clock = 0
_clock_lock = threading.Lock()


def _tick() -> int:
    """Advance the weights clock and return its new reading (a stamp no one else gets)."""
    global _clock
    with _clock_lock:
        _clock += 1
        return _clock


def weights_clock() -> int:
    """The process-wide weights clock: at least every :attr:`Parameter.version` in existence.

    A training forward pass reads it first; a parameter replaced (or created) afterwards has a
    larger ``version``. Reading it costs one global lookup.
    """
    return _clock


def check_weights_since(module: Module, clock: int, *, argument: str = "cache") -> None:
    """Refuse a backward pass whose forward read the weights at ``clock`` if any changed since.

    Nothing at all was replaced in the process when the clock still reads ``clock`` (one
    comparison); otherwise the module's parameters are listed and any with a newer
    ``version`` is named in a ``ValueError``. Editing a weight array in place
    (``p.value[0, 0] = 1.0``) does not move the clock and cannot be seen.
    """
    if _clock == clock:
        return
    changed = [name for name, p in module.named_parameters().items() if p.version > clock]
    if not changed:
        return
    shown = ", ".join(repr(name) for name in changed[:3])
    if len(changed) > 3:
        shown += f" and {len(changed) - 3} more"
    raise ValueError(
        f"{argument}: the weights of {shown} changed since forward (replaced by an optimizer "
        "step, assign, set_weights, load_state_dict or reset_parameters), so the cache no "
        "longer matches them; run forward again"
    )


# -- the gradient lock ----------------------------------------------------------------------------

GRADIENT_LOCK = threading.RLock()
"""The lock held while gradients are added into, zeroed, clipped or read by an optimizer step.

Every public backward entry point (the runners', :class:`~lstmkit.Sequential`'s and the
layers' ``backward``, :meth:`Gate.backward <lstmkit.Gate.backward>`, the regularization
wrappers' ``step_backward``), :meth:`Module.zero_grad`, the optimizers' ``step`` and
``zero_grad`` and :func:`~lstmkit.optimizers.clip_grad_norm` hold it. Adding into a gradient
(``grad += ...``) is a read-modify-write that NumPy runs without the GIL for large arrays, so
two threads adding into one gradient could lose an update. Reentrant (a model's backward
takes it again for each layer's); process-wide, so backward passes run one at a time, of one
model or of several.
"""


def accumulates_gradients(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorator: run ``fn`` holding :data:`GRADIENT_LOCK` (for methods that add into ``grad``)."""

    acquire, release = GRADIENT_LOCK.acquire, GRADIENT_LOCK.release  # ~0.3 us a call in all

    @functools.wraps(fn)
    def locked(*args: P.args, **kwargs: P.kwargs) -> R:
        acquire()
        try:
            return fn(*args, **kwargs)
        finally:
            release()

    return locked


@attrs.define(eq=False, repr=False)
class Parameter:
    """A trainable array and the gradient accumulated into it.

    Parameters
    ----------
    value : ndarray
        The weights. Shape and dtype are fixed for the parameter's life.
    grad : ndarray, optional
        Accumulated gradient, same shape and dtype; zeros by default.

    Attributes
    ----------
    version : int
        A stamp of the process-wide :func:`weights_clock`, taken when the parameter is created
        and every time :attr:`value` is assigned (``p.value = w``, ``p.value -= lr * g``,
        :meth:`assign`, a gate's ``set_weights``, ``load_state_dict``, the optimizers). Runners
        compare it with the clock their forward pass read. Writing into the array itself
        (``p.value[0, 0] = 1.0``) does not change it.
    """

    _value: NDArray[Any]
    grad: NDArray[Any] = attrs.field()
    version: int = attrs.field(init=False, factory=_tick)

    @grad.default
    def _zero_grad(self) -> NDArray[Any]:
        return np.zeros_like(self._value)

    def _assign_value(self, new: NDArray[Any]) -> None:
        # Every assignment of ``value`` stamps the parameter, ``p.value -= g`` included (Python
        # assigns the attribute again after the in-place operation).
        self.version = _tick()
        self._value = new

    if TYPE_CHECKING:

        @property
        def value(self) -> NDArray[Any]:
            """The weights (assigning them moves :attr:`version`)."""

        @value.setter
        def value(self, new: NDArray[Any]) -> None: ...

    else:
        # Reading is the hot path (every step reads the weights): a C-level getter costs a few
        # nanoseconds over a plain attribute; assigning stamps the version.
        value = property(
            operator.attrgetter("_value"),
            _assign_value,
            doc="The weights (assigning them moves :attr:`version`).",
        )

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.value.dtype

    @property
    def size(self) -> int:
        return int(self.value.size)

    def check(self, array: Any, *, argument: str = "value") -> NDArray[Any]:
        """Validate that ``array`` could replace :attr:`value` (same shape and dtype, finite)."""
        if not isinstance(array, np.ndarray):
            raise TypeError(f"{argument}: expected a numpy array, received {type(array).__name__}")
        if array.shape != self.value.shape:
            raise ValueError(
                f"{argument}: expected shape {self.value.shape}, received {array.shape}"
            )
        if array.dtype != self.value.dtype:
            raise TypeError(
                f"{argument}: expected dtype {self.value.dtype}, received {array.dtype}"
            )
        if not np.all(np.isfinite(array)):
            bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
            raise ValueError(f"{argument}: expected finite values, received {bad} NaN or infinite")
        return array

    def assign(self, array: Any, *, argument: str = "value") -> None:
        """Copy ``array`` into this parameter after checking its shape and dtype."""
        self.value = np.array(self.check(array, argument=argument), copy=True)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


def converted(model: Any, dtype: Any, *, argument: str = "model") -> Any:
    """``model.astype(dtype)`` (see :meth:`Module.astype`), or a ``TypeError`` for a non-Module."""
    if not isinstance(model, Module):
        raise TypeError(
            f"{argument}: expected an lstmkit Module to convert to {dtype!r}, received "
            f"{type(model).__name__}"
        )
    return model.astype(dtype)


if TYPE_CHECKING:  # lets type checkers see the attrs-generated __init__ (PEP 681)
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**kwargs: Any) -> Any:
        return lambda obj: obj


@dataclass_transform(field_specifiers=(attrs.field,))
def component(cls: type[T]) -> type[T]:
    """Class decorator for modules: ``attrs.define`` with identity equality and the tree repr."""
    return attrs.define(eq=False, repr=False)(cls)


class Module:
    """Base class of every component that owns parameters or sub-modules.

    Subclasses are attrs classes (use :func:`component`). Fields holding a
    :class:`Parameter`, a :class:`Module`, or a list/tuple of modules are
    discovered automatically, in field order.
    """

    # -- structure ------------------------------------------------------------------------------

    def _own_items(self) -> Iterator[tuple[str, Any]]:
        for f in attrs.fields(type(self)):  # type: ignore[arg-type]
            yield f.name, getattr(self, f.name)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Direct sub-modules as ``(name, module)``; list items are named by index."""
        for name, value in self._own_items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{i}", item

    def named_parameters(self, prefix: str = "") -> dict[str, Parameter]:
        """Every parameter under its dotted name, e.g. ``layers.0.cell.forget.W``.

        A parameter reachable by two paths (a shared module) is listed once, under
        the first path.
        """
        out: dict[str, Parameter] = {}
        seen: set[int] = set()
        self._collect(prefix, out, seen)
        return out

    def _collect(self, prefix: str, out: dict[str, Parameter], seen: set[int]) -> None:
        for name, value in self._own_items():
            if isinstance(value, Parameter) and id(value) not in seen:
                seen.add(id(value))
                out[prefix + name] = value
        for name, child in self.named_children():
            child._collect(f"{prefix}{name}.", out, seen)

    def parameters(self) -> list[Parameter]:
        """Every parameter, in the order of :meth:`named_parameters`."""
        return list(self.named_parameters().values())

    def num_parameters(self) -> int:
        """Total number of scalar weights."""
        return sum(p.size for p in self.parameters())

    def reset_parameters(self, rng: np.random.Generator | int | None = None) -> None:
        """Draw fresh weights for every child module, in field order, from one generator.

        A module that only composes others (its weights live in child modules, such as
        :class:`~lstmkit.Gate`) gets this for free. A module that owns :class:`Parameter`
        fields directly must override it (the built-in cells and layers do), since only it
        knows how they are drawn; every module below is checked before anything is drawn.

        Raises
        ------
        TypeError
            This module, or a module below it that relies on this default, owns parameters
            directly; nothing was changed.
        """
        self._check_default_reset()
        self._reset_children(as_rng(rng), set())

    def _check_default_reset(self) -> None:
        # Every module that relies on the default must own no parameter itself.
        own = [n for n, v in self._own_items() if isinstance(v, Parameter)]
        if own:
            name = type(self).__name__
            raise TypeError(
                f"reset_parameters: {name} owns parameters {own} directly and does not "
                f"define reset_parameters; override {name}.reset_parameters to redraw them"
            )
        for _, child in self.named_children():
            if type(child).reset_parameters is Module.reset_parameters:
                child._check_default_reset()

    def _reset_children(self, gen: np.random.Generator, seen: set[int]) -> None:
        for _, child in self.named_children():
            if id(child) in seen:  # a shared module is drawn once
                continue
            seen.add(id(child))
            if type(child).reset_parameters is Module.reset_parameters:
                child._reset_children(gen, seen)
            else:
                child.reset_parameters(gen)

    def zero_grad(self) -> None:
        """Set every parameter's gradient to zero (in place), holding :data:`GRADIENT_LOCK`."""
        params = self.parameters()
        with GRADIENT_LOCK:
            for p in params:
                p.grad[...] = 0

    # -- state dicts ----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, NDArray[Any]]:
        """A flat ``{dotted name: copy of the weights}`` mapping."""
        return {name: p.value.copy() for name, p in self.named_parameters().items()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Load weights from a flat mapping produced by :meth:`state_dict`.

        Every name, shape and dtype is checked before anything is changed: a
        mismatch raises and leaves the module untouched.

        Raises
        ------
        ValueError
            Missing or unexpected names, or a shape mismatch.
        TypeError
            ``state`` is not a mapping, or an entry has the wrong dtype or type.
        """
        if not isinstance(state, Mapping):
            raise TypeError(
                f"state: expected a mapping of name to array, received {type(state).__name__}"
            )
        params = self.named_parameters()
        difference = name_difference(params, state)
        if difference is not None:
            raise ValueError(f"state: names do not match the module; {difference}")
        checked = {
            name: p.check(state[name], argument=f"state[{name!r}]") for name, p in params.items()
        }
        for name, p in params.items():
            p.value = np.array(checked[name], copy=True)

    # -- dtype ----------------------------------------------------------------------------------

    def astype(self: T, dtype: Any) -> T:
        """A deep copy with every parameter, gradient and dtype field in ``dtype``.

        The copy's component tree is walked: each :class:`Parameter` (weights and gradient) is
        converted, and each field holding a float dtype (the ``dtype`` fields of cells, gates,
        layers) is set to ``dtype`` through the field's own converter and validator. Parameters
        shared by two parts stay shared in the copy. Every other field (sizes, flags,
        activations, initializers, random generators) is copied as it is.

        Parameters
        ----------
        dtype : float32 or float64

        Returns
        -------
        Module
            A new object of the same type; this one is unchanged.

        Raises
        ------
        TypeError
            ``dtype`` is not float32 or float64, or a part of the model holds something the
            conversion cannot know how to convert, each named by its path: a float array that
            is not a :class:`Parameter` (a user's cached matrix), or a module whose ``dtype``
            still reads the old dtype afterwards (a property computed from something else).

        Examples
        --------
        >>> import numpy as np
        >>> from lstmkit import LSTMCell, Recurrent
        >>> model = Recurrent(LSTMCell(3, 4, rng=0))
        >>> model32 = model.astype(np.float32)
        >>> model32.cell.forget.W.value.dtype, model.cell.forget.W.value.dtype
        (dtype('float32'), dtype('float64'))
        """
        dt = check_dtype(dtype)
        clone = copy.deepcopy(self)
        problems: list[str] = []
        Module._convert_dtype(clone, dt, "model", set(), problems)  # type: ignore[arg-type]
        if problems:
            raise TypeError(f"model: cannot convert to {dt}: " + "; ".join(problems))
        return clone

    def _convert_dtype(
        self, dt: np.dtype[Any], path: str, seen: set[int], problems: list[str]
    ) -> None:
        """Convert this module's own parameters and dtype fields in place, then its children's."""
        if id(self) in seen:
            return
        seen.add(id(self))
        for name, value in self._own_items():
            where = f"{path}.{name}"
            if isinstance(value, Parameter):
                if id(value) not in seen:
                    seen.add(id(value))
                    value.grad = value.grad.astype(dt)
                    value.value = value.value.astype(dt)
            elif isinstance(value, np.dtype) and value.kind == "f":
                try:
                    setattr(self, name, dt)
                except (TypeError, ValueError, AttributeError) as error:
                    problems.append(f"{where}: cannot be set to {dt} ({error})")
            elif isinstance(value, np.ndarray) and value.dtype.kind in "fc":
                problems.append(
                    f"{where}: a float array that is not a Parameter (astype cannot know how "
                    "to convert it; make it a Parameter, or convert the model yourself)"
                )
        for name, child in self.named_children():
            child._convert_dtype(dt, f"{path}.{name}", seen, problems)
        own = getattr(self, "dtype", None)
        try:
            own_dtype = None if own is None else np.dtype(own)
        except TypeError:
            own_dtype = None
        if own_dtype is not None and own_dtype.kind == "f" and own_dtype != dt:
            problems.append(
                f"{path}: its dtype reads {own_dtype} after the conversion to {dt} "
                f"(a {type(self).__name__} whose dtype astype cannot set)"
            )

    # -- repr -----------------------------------------------------------------------------------

    def describe(self) -> str:
        """One line describing this module alone (overridden by components)."""
        return type(self).__name__

    def summary(self) -> str:
        """The component tree with shapes and parameter counts, never array contents."""
        lines: list[str] = []
        self._summary_lines("", 0, lines)
        return "\n".join(lines)

    def _summary_lines(self, name: str, depth: int, lines: list[str]) -> None:
        label = f"{name}: " if name else ""
        lines.append(f"{'  ' * depth}{label}{self.describe()}  [{self.num_parameters():,} params]")
        for child_name, child in self.named_children():
            child._summary_lines(child_name, depth + 1, lines)

    def __repr__(self) -> str:
        return self.summary()
