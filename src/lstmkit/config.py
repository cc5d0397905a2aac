"""Component configurations: a model's architecture as plain JSON data, and back.

Every component type registers two functions under a name:

* ``to_config(obj) -> dict``: the settings needed to rebuild ``obj`` (sizes, activations and
  initializers by name, flags, dtype), with sub-components described by :func:`to_config`;
* ``from_config(config, context) -> obj``: build a fresh object from that dict, reading values
  through the :class:`BuildContext` helpers, which check every type and range and name the
  offending key in their errors.

Weights are not part of a configuration; :func:`lstmkit.save` stores them next to it under their
:meth:`~lstmkit.Module.state_dict` names. When a context carries the weights being loaded,
components check their sizes against those arrays *before* allocating anything, so a corrupt
file cannot make the loader build a huge model.

A user-defined cell is saved and loaded by registering it::

    from lstmkit import config

    def my_to_config(cell):
        return {"input_size": cell.input_size, "hidden_size": cell.hidden_size,
                "dtype": cell.dtype.name}

    def my_from_config(cfg, ctx):
        ctx.check_keys(cfg, ["input_size", "hidden_size", "dtype"])
        return MyCell(ctx.int(cfg, "input_size"), ctx.int(cfg, "hidden_size"),
                      dtype=ctx.dtype(cfg))

    config.register("MyCell", MyCell, my_to_config, my_from_config)

Examples
--------
>>> from lstmkit import LSTMCell, Recurrent
>>> from lstmkit.config import from_config, to_config
>>> cfg = to_config(Recurrent(LSTMCell(3, 4, rng=0), reverse=True))
>>> cfg["type"], cfg["reverse"], cfg["cell"]["type"]
('Recurrent', True, 'LSTMCell')
>>> to_config(from_config(cfg)) == cfg
True
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import attrs
import numpy as np

from lstmkit import activations, initializers
from lstmkit.initializers import as_rng

__all__ = [
    "BuildContext",
    "ComponentSpec",
    "from_config",
    "register",
    "register_initializer",
    "configurable",
    "registered",
    "to_config",
]

T = TypeVar("T")
Config = dict[str, Any]  # one component's settings, JSON-compatible
ToConfig = Callable[[Any], dict[str, Any]]
FromConfig = Callable[[dict[str, Any], "BuildContext"], Any]


@attrs.frozen
class ComponentSpec:
    """A registered component type: its saved name, class and the two conversion functions."""

    name: str
    cls: type
    to_config: ToConfig
    from_config: FromConfig


_BY_NAME: dict[str, ComponentSpec] = {}
_BY_CLASS: dict[type, ComponentSpec] = {}


def register(
    name: str, cls: type, to_config: ToConfig, from_config: FromConfig, *, overwrite: bool = False
) -> ComponentSpec:
    """Register a component type so that :func:`lstmkit.save` and :func:`lstmkit.load` handle it.

    Parameters
    ----------
    name : str
        The ``"type"`` written in saved files (usually the class name).
    cls : type
        The exact class (subclasses need their own registration).
    to_config : callable
        ``to_config(obj) -> dict`` of JSON-compatible settings, without the ``"type"`` key.
    from_config : callable
        ``from_config(config, context) -> obj``; ``context`` is a :class:`BuildContext`.
    overwrite : bool, default False
        Replace an existing registration of ``name`` or ``cls``.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name: expected a non-empty str, received {name!r}")
    if not isinstance(cls, type):
        raise TypeError(f"cls: expected a class, received {type(cls).__name__}")
    for argument, fn in (("to_config", to_config), ("from_config", from_config)):
        if not callable(fn):
            raise TypeError(f"{argument}: expected a callable, received {type(fn).__name__}")
    if not overwrite:
        if name in _BY_NAME and _BY_NAME[name].cls is not cls:
            raise ValueError(
                f"name: {name!r} is already registered; pass overwrite=True to replace it"
            )
        if cls in _BY_CLASS and _BY_CLASS[cls].name != name:
            raise ValueError(
                f"cls: {cls.__name__} is already registered as {_BY_CLASS[cls].name!r}; "
                "pass overwrite=True to replace it"
            )
    spec = ComponentSpec(name, cls, to_config, from_config)
    old = _BY_NAME.get(name)
    if old is not None:
        _BY_CLASS.pop(old.cls, None)
    _BY_NAME[name] = spec
    _BY_CLASS[cls] = spec
    return spec


def registered() -> list[str]:
    """Names of every registered component type, sorted."""
    return sorted(_BY_NAME)


def register_initializer(name: str, initializer: Any, *, overwrite: bool = False) -> Any:
    """Register a user-defined initializer under ``name``: :func:`lstmkit.initializers.register`.

    Kept here for code written against earlier versions; both register in the one registry of
    initializers, usable by name in constructors and in saved files.
    """
    return initializers.register(name, initializer, overwrite=overwrite)


def configurable(name: str | None = None) -> Callable[[type[T]], type[T]]:
    """Class decorator: register a component class with the configuration methods it defines.

    The class defines ``to_config(self) -> dict`` and a classmethod
    ``from_config(cls, config, context) -> obj`` (see :func:`register`); it is registered
    under ``name`` (default: the class name). Subclasses are not registered by inheritance:
    a subclass may compute something else, so it needs its own registration.

    Examples
    --------
    >>> import attrs
    >>> from lstmkit import config
    >>> @config.configurable("ScaleExample")
    ... @attrs.define
    ... class ScaleExample:
    ...     factor: float
    ...     def to_config(self):
    ...         return {"factor": self.factor}
    ...     @classmethod
    ...     def from_config(cls, cfg, ctx):
    ...         ctx.check_keys(cfg, ["factor"])
    ...         return cls(ctx.float(cfg, "factor"))
    >>> config.from_config(config.to_config(ScaleExample(2.0)))
    ScaleExample(factor=2.0)
    """

    def decorate(cls: type[T]) -> type[T]:
        register(name or cls.__name__, cls, cls.to_config, cls.from_config)  # type: ignore[attr-defined]
        return cls

    return decorate


# -- object -> config -------------------------------------------------------------------------

# While to_config runs: the objects being described, outermost first (for error paths), and
# whether a component that could not be loaded back is an error (save) or described by name
# (comparing architectures).
_DESCRIBING: list[Any] = []
_LENIENT: list[bool] = [False]


class DescribeError(ValueError):
    """A component, activation or initializer that a saved file could not name."""


def to_config(obj: Any, *, strict: bool = True) -> dict[str, Any]:
    """The JSON-compatible configuration of ``obj``: ``{"type": name, **settings}``.

    Parameters
    ----------
    obj : component
    strict : bool, default True
        Require everything to be loadable from the description: every component class,
        activation and initializer registered. With False, an unregistered activation or
        initializer is described by its name (enough to compare two architectures).

    Raises
    ------
    ValueError
        If ``obj``'s class (or a sub-component's) is not registered, or with ``strict``, an
        activation or initializer is not registered; the message starts with the dotted path
        of the component (``model.layers.0.cell.forget``).
    """
    outermost = not _DESCRIBING
    if outermost:
        _LENIENT.append(not strict)
    _DESCRIBING.append(obj)
    try:
        spec = _BY_CLASS.get(type(obj))
        if spec is None:
            raise DescribeError(
                f"cannot describe a {type(obj).__name__}; register it with "
                f"lstmkit.config.register({type(obj).__name__!r}, {type(obj).__name__}, "
                "to_config, from_config) first"
            )
        body = spec.to_config(obj)
        if not isinstance(body, dict) or "type" in body:
            raise TypeError(f"to_config of {spec.name}: expected a dict without a 'type' key")
        return {"type": spec.name, **body}
    except DescribeError as error:
        if outermost:
            raise DescribeError(f"{_path_of(error)}: {error}") from None
        if not hasattr(error, "owners"):
            error.owners = list(_DESCRIBING)  # type: ignore[attr-defined]
        raise
    finally:
        _DESCRIBING.pop()
        if outermost:
            _LENIENT.pop()


def _path_of(error: DescribeError) -> str:
    """``model.a.b``: where the innermost described object sits in the outermost one."""
    owners = getattr(error, "owners", [])
    path = "model"
    for parent, child in zip(owners, owners[1:]):
        for name, value in getattr(parent, "named_children", lambda: [])():
            if value is child:
                path += f".{name}"
                break
        else:
            path += f".<{type(child).__name__}>"
    return path


def activation_name(activation: Any) -> str:
    """The name ``activation`` is saved under.

    A registered name must be registered to this very object (activations compare by identity,
    and copies keep the object), or loading would build another activation. An activation
    whose name is not registered cannot be loaded back, so saving refuses it (except when
    only comparing architectures, ``to_config(strict=False)``).
    """
    name = activation.name
    known = activations.get(name) if name in activations.available() else None
    if known is not None and known is not activation:
        if any(known is b for b in activations.BUILTINS):
            problem = f"your Activation {name!r} is not the built-in {name!r}"
        else:
            problem = f"{name!r} is registered to a different Activation object"
        raise DescribeError(
            f"activation: {problem}; a saved model would load that one instead. Register yours "
            "under its own name with lstmkit.activations.register."
        )
    if known is None and not _LENIENT[-1]:
        raise DescribeError(
            f"activation: {name!r} is not registered, so a saved file could not be loaded; "
            f"register it first with lstmkit.activations.register(...)"
        )
    return str(name)


def initializer_config(init: Any) -> dict[str, Any]:
    """``{"name": ..., "args": {...}}`` for a built-in initializer, ``{"name": ...}`` for a
    registered one (see :func:`lstmkit.initializers.register`)."""
    name = initializers.registered_name(init)
    if name is not None and attrs.has(type(init)) and initializers.get(name) is not init:
        args = {key: float(value) for key, value in attrs.asdict(init).items()}
        return {"name": name, "args": args}
    if name is not None:
        return {"name": name}
    if not _LENIENT[-1]:
        raise DescribeError(
            f"initializer: {initializers.name_of(init)!r} is not registered, so a saved file "
            "could not be loaded; register it first with lstmkit.initializers.register(name, init)"
        )
    return {"name": initializers.name_of(init)}


# -- config -> object -------------------------------------------------------------------------


class BuildContext:
    """Reads a configuration safely while a model is rebuilt.

    Every helper raises ``ValueError``/``TypeError`` naming the full key path (for example
    ``model.layers[1].cell.hidden_size``). ``weights``, when given, is the flat mapping of every
    array being loaded; :meth:`expect` checks one of them against the size a component is about
    to allocate.

    Parameters
    ----------
    path : str
        Where in the configuration this component sits (for error messages).
    prefix : str
        The component's parameter-name prefix (``"layers.0.cell."``).
    weights : mapping of str to ndarray, optional
    rng : numpy.random.Generator
        For components that keep a random generator (dropout).
    """

    def __init__(
        self,
        path: builtins.str,
        prefix: builtins.str,
        weights: Mapping[builtins.str, Any] | None,
        rng: Any,
    ) -> None:
        self.path = path
        self.prefix = prefix
        self.weights = weights
        self.rng = rng

    def build(self, config: Any, key: builtins.str, prefix: builtins.str) -> Any:
        """Build a sub-component from ``config`` found under ``key``, with parameter prefix ``prefix``."""
        child = BuildContext(f"{self.path}.{key}", self.prefix + prefix, self.weights, self.rng)
        return child.build_here(config)

    def build_here(self, config: Any) -> Any:
        """Build the component described by ``config`` at this context's path and prefix."""
        if not isinstance(config, dict):
            raise TypeError(
                f"{self.path}: expected a component description (object), received {_kind(config)}"
            )
        name = config.get("type")
        if not isinstance(name, str):
            raise TypeError(f"{self.path}.type: expected a component type name, received {name!r}")
        spec = _BY_NAME.get(name)
        if spec is None:
            raise ValueError(
                f"{self.path}.type: unknown component {name!r}; register it with "
                f"lstmkit.config.register({name!r}, cls, to_config, from_config) before loading"
            )
        body = {k: v for k, v in config.items() if k != "type"}
        return spec.from_config(body, self)

    # -- typed reads -----------------------------------------------------------------------------

    def check_keys(
        self,
        config: Config,
        required: Sequence[builtins.str],
        optional: Sequence[builtins.str] = (),
    ) -> None:
        """Raise if a required key is missing or an unknown key is present."""
        missing = [k for k in required if k not in config]
        unknown = sorted(set(config) - set(required) - set(optional))
        if missing or unknown:
            raise ValueError(
                f"{self.path}: keys do not match a {self._kind_of()}; missing {missing or 'none'}, "
                f"unexpected {unknown or 'none'}"
            )

    def _kind_of(self) -> builtins.str:
        return "component description"

    def int(self, config: Config, key: builtins.str, *, minimum: builtins.int = 1) -> builtins.int:
        """``config[key]`` as an int ``>= minimum`` (bools refused)."""
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{self.path}.{key}: expected an integer, received {_kind(value)}")
        if value < minimum:
            raise ValueError(
                f"{self.path}.{key}: expected an integer >= {minimum}, received {value}"
            )
        return value

    def bool(self, config: Config, key: builtins.str) -> builtins.bool:
        """``config[key]`` as a bool (JSON true/false only)."""
        value = config[key]
        if not isinstance(value, bool):
            raise TypeError(f"{self.path}.{key}: expected true or false, received {_kind(value)}")
        return value

    def float(
        self,
        config: Config,
        key: builtins.str,
        *,
        low: builtins.float | None = None,
        high: builtins.float | None = None,
    ) -> builtins.float:
        """``config[key]`` as a finite float in ``[low, high)`` (either bound optional)."""
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{self.path}.{key}: expected a number, received {_kind(value)}")
        value = float(value)
        if (
            not math.isfinite(value)
            or (low is not None and value < low)
            or (high is not None and value >= high)
        ):
            bounds = "" if low is None and high is None else f" in [{low}, {high})"
            raise ValueError(
                f"{self.path}.{key}: expected a finite number{bounds}, received {value}"
            )
        return value

    def str(
        self, config: Config, key: builtins.str, *, choices: Sequence[builtins.str] | None = None
    ) -> builtins.str:
        """``config[key]`` as a str, one of ``choices`` if given."""
        value = config[key]
        if not isinstance(value, str):
            raise TypeError(f"{self.path}.{key}: expected a string, received {_kind(value)}")
        if choices is not None and value not in choices:
            raise ValueError(
                f"{self.path}.{key}: expected one of {', '.join(choices)}, received {value!r}"
            )
        return value

    def list(self, config: Config, key: builtins.str) -> builtins.list[Any]:
        """``config[key]`` as a non-empty list."""
        value = config[key]
        if not isinstance(value, list) or not value:
            raise TypeError(
                f"{self.path}.{key}: expected a non-empty list, received {_kind(value)}"
            )
        return value

    def dict(self, config: Config, key: builtins.str) -> Config:
        """``config[key]`` as an object (dict)."""
        value = config[key]
        if not isinstance(value, dict):
            raise TypeError(f"{self.path}.{key}: expected an object, received {_kind(value)}")
        return value

    def dtype(self, config: Config, key: builtins.str = "dtype") -> np.dtype[Any]:
        """``config[key]`` as ``numpy.float32`` or ``numpy.float64``."""
        value = self.str(config, key, choices=("float32", "float64"))
        return np.dtype(value)

    def activation(self, config: Config, key: builtins.str) -> Any:
        """The registered :class:`~lstmkit.Activation` named by ``config[key]``."""
        name = self.str(config, key)
        if name not in activations.available():
            raise ValueError(
                f"{self.path}.{key}: the file uses the activation {name!r}, which is not registered; "
                f"register it with lstmkit.activations.register(Activation({name!r}, ...)) before "
                f"loading (registered: {', '.join(activations.available())})"
            )
        return activations.get(name)

    def initializer(self, config: Config, key: builtins.str) -> Any:
        """The initializer described by ``config[key]`` (``{"name": ..., "args": {...}}``)."""
        cfg = self.dict(config, key)
        path = f"{self.path}.{key}"
        name = cfg.get("name")
        if not isinstance(name, str):
            raise TypeError(f"{path}.name: expected an initializer name, received {_kind(name)}")
        if name not in initializers.available():
            raise ValueError(
                f"{path}.name: the file uses the initializer {name!r}, which is not registered; "
                f"register it with lstmkit.initializers.register({name!r}, init) before loading"
            )
        if not attrs.has(type(initializers.get(name))) or name not in initializers.builtin_names():
            if set(cfg) != {"name"}:
                raise ValueError(
                    f"{path}: expected only a name for the registered initializer {name!r}"
                )
            return initializers.get(name)
        cls = type(initializers.get(name))
        args = cfg.get("args")
        fields = [f.name for f in attrs.fields(cls)]  # type: ignore[arg-type]
        if (
            set(cfg) != {"name", "args"}
            or not isinstance(args, dict)
            or sorted(args) != sorted(fields)
        ):
            raise ValueError(
                f"{path}: expected {{'name': {name!r}, 'args': {{{', '.join(fields)}}}}}, received {cfg!r}"
            )
        values = {}
        for field in fields:
            values[field] = BuildContext(f"{path}.args", "", None, None).float(args, field)
        return cls(**values)

    # -- weights ---------------------------------------------------------------------------------

    def expect(
        self, name: builtins.str, shape: tuple[builtins.int, ...], dtype: np.dtype[Any]
    ) -> None:
        """Check the loaded array ``prefix + name`` has ``shape`` and ``dtype`` (no-op without weights)."""
        if self.weights is None:
            return
        full = self.prefix + name
        array = self.weights.get(full)
        if array is None:
            raise ValueError(
                f"{self.path}: the file has no array {full!r}, which this component needs"
            )
        if tuple(array.shape) != tuple(shape):
            raise ValueError(
                f"{self.path}: array {full!r} has shape {tuple(array.shape)}, but the description "
                f"implies {tuple(shape)}"
            )
        if array.dtype != dtype:
            raise TypeError(
                f"{self.path}: array {full!r} has dtype {array.dtype}, but the description says {dtype}"
            )


def from_config(
    config: Mapping[str, Any], weights: Mapping[str, Any] | None = None, *, rng: Any = None
) -> Any:
    """Build a fresh component from :func:`to_config` output (weights freshly initialised).

    Parameters
    ----------
    config : dict
        A configuration with a ``"type"`` key.
    weights : mapping of str to ndarray, optional
        Arrays about to be loaded; components check their shapes before allocating.
    rng : numpy.random.Generator or int or None
        Randomness for the fresh weights and for generators the components keep (dropout).
    """
    gen = as_rng(rng)
    if not isinstance(config, Mapping):
        raise TypeError(f"config: expected a mapping, received {type(config).__name__}")
    return BuildContext("model", "", weights, gen).build_here(dict(config))


def _kind(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"
