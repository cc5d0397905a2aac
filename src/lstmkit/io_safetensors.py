"""Save and load models as ``safetensors`` files (optional extra ``safetensors``).

`safetensors <https://huggingface.co/docs/safetensors>`_ is a widely read tensor format with no
code in it: a JSON header naming each tensor's dtype, shape and byte range, then the raw bytes.
:func:`save_safetensors` writes every parameter under its :meth:`~lstmkit.Module.state_dict`
name (``layers.0.cell.forget.W``), and the same description :func:`lstmkit.save` stores in its
``.npz`` file (format name and version, the architecture from :func:`lstmkit.config.to_config`,
a manifest of every parameter's shape and dtype) as JSON under the header's metadata key
``"lstmkit"``. Other tools read the tensors; lstmkit rebuilds the whole model.

Writing and reading follow :mod:`lstmkit.io` (the same code does the checks): the file is
written to a temporary file next to the target, flushed and renamed over it; reading checks the
description, then every tensor's name, dtype and shape against it before any data is read, then
that every value is finite, and only then builds or fills a model. Any problem raises
``ValueError`` (``TypeError`` for a wrong dtype) naming it, and a model given to
:func:`load_weights_safetensors` is left unchanged.

The package ``safetensors`` is imported only when a function is called
(``pip install 'lstmkit[safetensors]'``).

Example (not run as a doctest, since safetensors is optional; the interop guide runs it)::

    import lstmkit
    from lstmkit.io_safetensors import load_safetensors, save_safetensors

    model = lstmkit.Stacked([lstmkit.LSTMCell(3, 4, rng=0), lstmkit.GRUCell(4, 2, rng=1)])
    save_safetensors(model, "model.safetensors")
    again = load_safetensors("model.safetensors")      # a Stacked with the same weights
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lstmkit.io import (
    _CONFIG_MAX_BYTES,
    _as_path,
    _atomic_write_with,
    _build,
    _fill,
    _parse_header,
    _writable_target,
    describe,
)
from lstmkit.module import Module, name_difference

__all__ = [
    "METADATA_KEY",
    "load_safetensors",
    "load_weights_safetensors",
    "read_safetensors",
    "save_safetensors",
]

METADATA_KEY = "lstmkit"
_DTYPES: dict[str, np.dtype[Any]] = {"F32": np.dtype(np.float32), "F64": np.dtype(np.float64)}


def _safetensors() -> tuple[Any, Any]:
    try:
        import safetensors
        import safetensors.numpy
    except ImportError as error:  # pragma: no cover - exercised only without safetensors
        raise ImportError(
            "lstmkit.io_safetensors needs safetensors; install it with "
            "pip install 'lstmkit[safetensors]'"
        ) from error
    return safetensors, safetensors.numpy


def save_safetensors(model: Any, path: str | os.PathLike[str]) -> None:
    """Write ``model`` (weights, and its description as metadata) to a safetensors file.

    Parameters
    ----------
    model : Module
        Any registered component, as for :func:`lstmkit.save`.
    path : str or path-like
        Target file, written atomically exactly as given; its folder must exist.

    Raises
    ------
    FileNotFoundError, PermissionError, ValueError, TypeError
        As :func:`lstmkit.save`: a missing folder, a read-only file, a folder or other
        non-regular target, an unregistered or shared component, non-finite weights.
    """
    _, st_numpy = _safetensors()
    target = _as_path(path)
    real, mode = _writable_target(target)
    header, params = describe(model)
    text = json.dumps(header, allow_nan=False)
    data = st_numpy.save(
        {name: np.ascontiguousarray(value) for name, value in params.items()},
        metadata={METADATA_KEY: text},
    )
    _atomic_write_with(real, mode, lambda fh: fh.write(data))


def read_safetensors(
    path: str | os.PathLike[str],
) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
    """Read and check a file written by :func:`save_safetensors`, without building the model.

    Returns
    -------
    header : dict
        The description: ``format``, ``format_version``, ``model`` and ``parameters``.
    arrays : dict of str to ndarray
        Every parameter, checked against the description (names, shapes, dtypes, finite).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        The file is not a readable safetensors file (truncated, corrupt), has no lstmkit
        description, a description that is invalid or from a newer format version, or tensors
        whose names or shapes disagree with it, or non-finite values.
    TypeError
        A tensor has a dtype other than the one described.
    """
    safetensors, _ = _safetensors()
    target = _as_path(path)
    if not target.is_file():
        raise FileNotFoundError(f"path: no file at {str(target)!r}")
    where = repr(str(target))
    try:
        handle = safetensors.safe_open(str(target), framework="numpy")
    except Exception as error:
        raise ValueError(
            f"{where}: not a readable safetensors file (truncated or corrupt?): {error}"
        ) from error
    with handle as f:
        text = (f.metadata() or {}).get(METADATA_KEY)
        if text is None:
            raise ValueError(
                f"{where}: not an lstmkit file (no {METADATA_KEY!r} entry in the safetensors "
                "metadata); it holds tensors only"
            )
        raw = text.encode("utf-8")
        if len(raw) > _CONFIG_MAX_BYTES:
            raise ValueError(
                f"{where}: the description has {len(raw)} bytes; expected at most "
                f"{_CONFIG_MAX_BYTES}"
            )
        header = _parse_header(np.frombuffer(raw, dtype=np.uint8), where)
        manifest = header["parameters"]
        names = list(f.keys())
        difference = name_difference(manifest, names, extra="extra")
        if difference is not None:
            raise ValueError(f"{where}: the tensors do not match the description; {difference}")
        for name in names:  # every header checked before any data is read
            spec = manifest[name]
            piece = f.get_slice(name)
            dtype = _DTYPES.get(piece.get_dtype())
            if dtype is None or dtype.name != spec["dtype"]:
                raise TypeError(
                    f"{where}: tensor {name!r} has dtype {piece.get_dtype()}, described as "
                    f"{spec['dtype']}"
                )
            shape = [int(n) for n in piece.get_shape()]
            if shape != spec["shape"]:
                raise ValueError(
                    f"{where}: tensor {name!r} has shape {tuple(shape)}, described as "
                    f"{tuple(spec['shape'])}"
                )
        arrays: dict[str, NDArray[Any]] = {}
        for name in names:
            array = np.array(f.get_tensor(name), copy=True)
            if not np.all(np.isfinite(array)):
                bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
                raise ValueError(
                    f"{where}: tensor {name!r} has {bad} non-finite values (NaN or inf)"
                )
            arrays[name] = array
    return header, arrays


def load_safetensors(path: str | os.PathLike[str], *, rng: Any = None) -> Any:
    """Rebuild a model saved by :func:`save_safetensors` (as :func:`lstmkit.load` does).

    Parameters
    ----------
    path : str or path-like
    rng : numpy.random.Generator or int or None
        Seeds the random generators a model keeps (``Stacked`` dropout masks).

    Raises
    ------
    FileNotFoundError, ValueError, TypeError
        As :func:`read_safetensors`, or when the description cannot be built (an unregistered
        activation, initializer or component: the message says what to register).
    """
    header, arrays = read_safetensors(path)
    return _build(header, arrays, repr(str(path)), rng)


def load_weights_safetensors(
    model: Module, path: str | os.PathLike[str], *, check_config: bool = True
) -> None:
    """Load the weights of a safetensors file into ``model``, all or nothing.

    As :func:`lstmkit.load_weights`: with ``check_config`` (the default) the saved architecture
    must equal ``model``'s; names, shapes and dtypes always must. On any error ``model`` is
    unchanged.
    """
    if not isinstance(model, Module):
        raise TypeError(f"model: expected an lstmkit Module, received {type(model).__name__}")
    header, arrays = read_safetensors(path)
    _fill(model, header, arrays, repr(str(path)), check_config)
