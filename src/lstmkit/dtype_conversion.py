"""``Module.astype``: a copy of a model in another float dtype.

:func:`convert` deep-copies a model, then walks the copy's component tree. In every module it
converts each :class:`~lstmkit.module.Parameter` (weights and gradient) and sets each field that
holds a float dtype (the ``dtype`` fields of cells, gates, layers) to the new dtype, through the
field's own converter and validator. The original is never touched.

What it cannot know how to convert is refused, all of it in one message, before anything is
returned: a field of a module holding a float array that is not a ``Parameter`` (a user's cached
matrix, say), and a module whose ``dtype`` still reads the old dtype after the conversion (a
property computed from something the walk cannot see). Every other field (sizes, flags,
activations, initializers, random generators) is copied as it is.

Examples
--------
>>> import numpy as np
>>> from lstmkit import LSTMCell, Recurrent
>>> model = Recurrent(LSTMCell(3, 4, rng=0))
>>> model32 = model.astype(np.float32)
>>> model32.cell.forget.W.value.dtype, model.cell.forget.W.value.dtype
(dtype('float32'), dtype('float64'))
>>> model32(np.ones((2, 5, 3), np.float32))[0].dtype
dtype('float32')
"""

from __future__ import annotations

import copy
from typing import Any, TypeVar

import attrs
import numpy as np

from lstmkit.module import Module, Parameter, check_dtype

__all__ = ["convert"]

M = TypeVar("M", bound=Module)


def convert(model: M, dtype: Any) -> M:
    """A deep copy of ``model`` with every parameter, gradient and dtype field in ``dtype``.

    Parameters
    ----------
    model : Module
        Any component: a cell, gate, runner, layer, ``Sequential``, or one of your own.
    dtype : float32 or float64

    Returns
    -------
    Module
        A new object of the same type; ``model`` is unchanged. Parameters shared by two parts of
        ``model`` stay shared in the copy.

    Raises
    ------
    TypeError
        ``model`` is not a Module, ``dtype`` is not float32 or float64, or a part of the model
        holds something the conversion cannot convert (each such part named by its path:
        a float array that is not a ``Parameter``, or a ``dtype`` that did not follow).
    """
    if not isinstance(model, Module):
        raise TypeError(f"model: expected an lstmkit Module, received {type(model).__name__}")
    dt = check_dtype(dtype)
    clone = copy.deepcopy(model)
    problems: list[str] = []
    seen_modules: set[int] = set()
    seen_params: set[int] = set()

    def walk(module: Module, path: str) -> None:
        if id(module) in seen_modules:
            return
        seen_modules.add(id(module))
        for name, value in _fields(module):
            where = f"{path}.{name}"
            if isinstance(value, Parameter):
                if id(value) not in seen_params:
                    seen_params.add(id(value))
                    value.grad = value.grad.astype(dt)
                    value.value = value.value.astype(dt)
            elif isinstance(value, np.dtype) and value.kind == "f":
                try:
                    setattr(module, name, dt)
                except (TypeError, ValueError, AttributeError) as error:
                    problems.append(f"{where}: cannot be set to {dt} ({error})")
            elif isinstance(value, np.ndarray) and value.dtype.kind in "fc":
                problems.append(
                    f"{where}: a float array that is not a Parameter (astype cannot know how "
                    "to convert it; make it a Parameter, or convert the model yourself)"
                )
        for name, child in module.named_children():
            walk(child, f"{path}.{name}")
        own = getattr(module, "dtype", None)
        if own is not None and _is_float_dtype(own) and np.dtype(own) != dt:
            problems.append(
                f"{path}: its dtype reads {np.dtype(own)} after the conversion to {dt} "
                f"(a {type(module).__name__} whose dtype astype cannot set)"
            )

    walk(clone, "model")
    if problems:
        raise TypeError(f"model: cannot convert to {dt}: " + "; ".join(problems))
    return clone


def _fields(module: Module) -> list[tuple[str, Any]]:
    if not attrs.has(type(module)):
        return list(vars(module).items()) if hasattr(module, "__dict__") else []
    fields = attrs.fields(type(module))  # type: ignore[arg-type]
    return [(f.name, getattr(module, f.name, None)) for f in fields]


def _is_float_dtype(value: Any) -> bool:
    try:
        return np.dtype(value).kind == "f"
    except TypeError:
        return False
