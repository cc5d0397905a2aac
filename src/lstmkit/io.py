"""Save and load models: one ``.npz`` file with the weights and a JSON description.

The file is an ordinary NumPy ``.npz`` archive (``np.load`` opens it) holding

* every parameter under its :meth:`~lstmkit.Module.state_dict` name (``layers.0.cell.forget.W``);
* ``__config__``: UTF-8 JSON bytes (a ``uint8`` array) with the format name and version, the
  model's architecture from :func:`lstmkit.config.to_config` (component types, sizes,
  activations and initializers by name, merge modes, flags, dropout rates, dtype) and a manifest
  of every parameter's shape and dtype.

:func:`load` rebuilds the model from the description alone: no code is stored and nothing is
unpickled. Everything is checked before the model is returned (archive integrity through the
zip CRCs, array headers, names, shapes and dtypes against the description, finite values), and
any problem raises ``ValueError`` or ``TypeError`` naming it. :func:`save` writes to a temporary
file in the target folder and renames it over the target, so a crash mid-save leaves any old
file intact.

Examples
--------
>>> import os, tempfile
>>> import numpy as np
>>> import lstmkit
>>> model = lstmkit.Stacked([lstmkit.LSTMCell(3, 4, rng=0), lstmkit.LSTMCell(4, 2, rng=1)])
>>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
>>> lstmkit.save(model, path)
>>> again = lstmkit.load(path)
>>> x = np.ones((2, 5, 3))
>>> bool(np.array_equal(model(x)[0], again(x)[0]))
True
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lstmkit.config import from_config, to_config
from lstmkit.module import Module, Parameter, name_difference

__all__ = ["CONFIG_KEY", "FORMAT", "FORMAT_VERSION", "load", "load_weights", "read", "save"]

FORMAT = "lstmkit"
FORMAT_VERSION = 1
CONFIG_KEY = "__config__"
_PARAM_DTYPES = ("float32", "float64")


# -- save -------------------------------------------------------------------------------------


def save(model: Any, path: str | os.PathLike[str]) -> None:
    """Write ``model`` (architecture and weights) to one ``.npz`` file, atomically.

    Parameters
    ----------
    model : Module
        Any registered component: a cell, ``Recurrent``, ``Stacked``, ``Bidirectional`` or a user
        component registered with :func:`lstmkit.config.register`.
    path : str or path-like
        Target file, written exactly as given (no suffix is added). Its folder must exist.

    Raises
    ------
    FileNotFoundError
        The folder of ``path`` does not exist.
    ValueError
        ``path`` is a folder; the model has an unregistered component, shares a sub-component or
        parameter between two places, or has non-finite weights (the file could not be loaded).
    TypeError
        ``path`` is not a str or path-like.
    """
    target = _as_path(path)
    if target.is_dir():
        raise ValueError(f"path: expected a file path, received the folder {str(target)!r}")
    folder = target.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"path: the folder {str(folder)!r} does not exist; create it first")
    _check_unshared(model)
    description = to_config(model)
    params = model.state_dict()
    for name, value in params.items():
        if value.dtype.name not in _PARAM_DTYPES:
            raise TypeError(
                f"model: parameter {name!r} has dtype {value.dtype}; expected float32 or float64"
            )
        if not np.all(np.isfinite(value)):
            raise ValueError(
                f"model: parameter {name!r} has non-finite values; refusing to save it"
            )
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": description,
        "parameters": {
            name: {"shape": [int(n) for n in value.shape], "dtype": value.dtype.name}
            for name, value in params.items()
        },
    }
    text = json.dumps(header, allow_nan=False)
    arrays: dict[str, NDArray[Any]] = {
        CONFIG_KEY: np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    }
    arrays.update(params)
    _atomic_write(target, arrays)


def _atomic_write(target: Path, arrays: dict[str, NDArray[Any]]) -> None:
    # Write the whole archive to a temporary file next to the target, flush it to disk, then
    # rename: os.replace is atomic on one filesystem, so readers see the old or the new file.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
            fh.flush()
            os.fsync(fh.fileno())
        mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _check_unshared(model: Any) -> None:
    # A module or parameter reachable by two paths is saved once under the first name, but a
    # rebuilt model would hold two independent copies; refuse rather than load something else.
    if not isinstance(model, Module):
        return
    modules: dict[int, str] = {}
    params: dict[int, str] = {}

    def walk(module: Module, path: str) -> None:
        if id(module) in modules:
            raise ValueError(
                f"model: the component at {path} is the same object as the one at "
                f"{modules[id(module)]}; save cannot represent shared components"
            )
        modules[id(module)] = path
        for name, value in module._own_items():
            if isinstance(value, Parameter):
                if id(value) in params:
                    raise ValueError(
                        f"model: parameter {path}.{name} is shared with {params[id(value)]}; "
                        "save cannot represent shared weights"
                    )
                params[id(value)] = f"{path}.{name}"
        for name, child in module.named_children():
            walk(child, f"{path}.{name}")

    walk(model, "model")


# -- reading ----------------------------------------------------------------------------------


def read(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
    """Read and check a saved file without building the model.

    Returns
    -------
    header : dict
        The JSON description: ``format``, ``format_version``, ``model`` and ``parameters``.
    arrays : dict of str to ndarray
        Every parameter, already checked against the manifest (names, shapes, dtypes, finite).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        The file is truncated or corrupt, from a newer format version, or its arrays disagree
        with its description.
    TypeError
        ``path`` is not a str or path-like, or an array has a dtype the description does not say.
    """
    target = _as_path(path)
    if not target.is_file():
        raise FileNotFoundError(f"path: no file at {str(target)!r}")
    raw_arrays = _read_archive(target)
    where = repr(str(target))
    if CONFIG_KEY not in raw_arrays:
        raise ValueError(f"{where}: not an lstmkit file (no {CONFIG_KEY!r} entry)")
    header = _parse_header(raw_arrays.pop(CONFIG_KEY), where)
    manifest = header["parameters"]
    difference = name_difference(manifest, raw_arrays, extra="extra")
    if difference is not None:
        raise ValueError(f"{where}: the arrays do not match the description; {difference}")
    for name, spec in manifest.items():
        array = raw_arrays[name]
        if array.dtype.name != spec["dtype"]:
            raise TypeError(
                f"{where}: array {name!r} has dtype {array.dtype}, described as {spec['dtype']}"
            )
        if list(array.shape) != spec["shape"]:
            raise ValueError(
                f"{where}: array {name!r} has shape {array.shape}, described as {tuple(spec['shape'])}"
            )
        if not np.all(np.isfinite(array)):
            bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
            raise ValueError(f"{where}: array {name!r} has {bad} non-finite values (NaN or inf)")
    return header, raw_arrays


def _read_archive(target: Path) -> dict[str, NDArray[Any]]:
    arrays: dict[str, NDArray[Any]] = {}
    where = repr(str(target))
    try:
        with zipfile.ZipFile(target) as archive:
            for info in archive.infolist():
                name = info.filename
                if not name.endswith(".npy") or name[:-4] in arrays:
                    raise ValueError(f"unexpected or duplicate archive entry {name!r}")
                # ZipFile.read checks the entry's CRC-32, so flipped bytes are caught here.
                arrays[name[:-4]] = _parse_npy(archive.read(info), name[:-4])
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"{where}: not a readable lstmkit file (truncated or corrupt?): {error}"
        ) from error
    except Exception as error:
        # A damaged archive surfaces as BadZipFile, EOFError, zlib.error, OSError,
        # NotImplementedError (a garbled compression method), RuntimeError (a garbled
        # encryption flag), struct.error, ...: all mean the same thing to the caller.
        raise ValueError(
            f"{where}: not a readable lstmkit file (truncated or corrupt?): "
            f"{type(error).__name__}: {error}"
        ) from error
    return arrays


def _parse_npy(raw: bytes, name: str) -> NDArray[Any]:
    # Check the header before np.load sees it: the declared size must match the bytes present,
    # so a corrupt header can neither allocate a huge array nor need pickle.
    stream = io.BytesIO(raw)
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, _fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, _fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise ValueError(f"array {name!r}: unsupported .npy version {version}")
    allowed = ("uint8",) if name == CONFIG_KEY else _PARAM_DTYPES
    if dtype.name not in allowed or not dtype.isnative:
        raise ValueError(f"array {name!r}: expected dtype {' or '.join(allowed)}, received {dtype}")
    if name == CONFIG_KEY and len(shape) != 1:
        raise ValueError(f"array {name!r}: expected a 1-d array, received shape {shape}")
    count = math.prod(shape)
    if len(raw) - stream.tell() != count * dtype.itemsize:
        raise ValueError(
            f"array {name!r}: header declares shape {shape} but {len(raw) - stream.tell()} data bytes follow"
        )
    array = np.load(io.BytesIO(raw), allow_pickle=False)
    return np.ascontiguousarray(array)


def _parse_header(raw: NDArray[Any], where: str) -> dict[str, Any]:
    def reject_constant(token: str) -> Any:
        raise ValueError(f"non-finite number {token} in the description")

    try:
        header = json.loads(raw.tobytes().decode("utf-8"), parse_constant=reject_constant)
    except (ValueError, RecursionError) as error:
        raise ValueError(f"{where}: the description is not valid JSON: {error}") from error
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(
            f"{where}: not an lstmkit file (the description's format is not {FORMAT!r})"
        )
    version = header.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(
            f"{where}: format_version: expected a positive integer, received {version!r}"
        )
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{where}: the file has format version {version}, newer than this lstmkit reads "
            f"({FORMAT_VERSION}); upgrade lstmkit to load it"
        )
    expected = {"format", "format_version", "model", "parameters"}
    if set(header) != expected:
        raise ValueError(
            f"{where}: the description has keys {sorted(header)}, expected {sorted(expected)}"
        )
    if not isinstance(header["model"], dict):
        raise TypeError(f"{where}: model: expected a component description (object)")
    manifest = header["parameters"]
    if not isinstance(manifest, dict):
        raise TypeError(f"{where}: parameters: expected an object of name -> shape and dtype")
    for name, spec in manifest.items():
        ok = (
            isinstance(spec, dict)
            and set(spec) == {"shape", "dtype"}
            and spec["dtype"] in _PARAM_DTYPES
            and isinstance(spec["shape"], list)
            and all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in spec["shape"]
            )
        )
        if not ok:
            raise ValueError(
                f"{where}: parameters[{name!r}]: expected {{'shape': [ints], 'dtype': 'float32' or "
                f"'float64'}}, received {spec!r}"
            )
    return header


# -- load -------------------------------------------------------------------------------------


def load(path: str | os.PathLike[str], *, rng: Any = None) -> Any:
    """Rebuild a model saved by :func:`save`.

    Parameters
    ----------
    path : str or path-like
    rng : numpy.random.Generator or int or None
        Seeds the random generators a model keeps (``Stacked`` dropout masks); the weights come
        from the file.

    Returns
    -------
    model
        A new object of the saved type with the saved weights.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Truncated or corrupt file, newer format version, missing or extra arrays, a shape that
        disagrees with the description, non-finite weights, an unregistered activation,
        initializer or component name (the message says what to register).
    TypeError
        A value of the wrong type in the description, or an array of the wrong dtype.
    """
    header, arrays = read(path)
    where = repr(str(path))
    try:
        model = from_config(header["model"], arrays, rng=rng)
    except (ValueError, TypeError):
        raise
    except Exception as error:
        # A registered from_config may fail in ways its author did not anticipate on an edited
        # description; report it as the bad description it is.
        raise ValueError(
            f"{where}: the model description cannot be built: {type(error).__name__}: {error}"
        ) from error
    params = model.named_parameters() if isinstance(model, Module) else {}
    _check_match(params, arrays, where, "the rebuilt model")
    model.load_state_dict(arrays)
    return model


def load_weights(model: Module, path: str | os.PathLike[str], *, check_config: bool = True) -> None:
    """Load the weights saved in ``path`` into an existing ``model``, all or nothing.

    Parameters
    ----------
    model : Module
    path : str or path-like
    check_config : bool, default True
        Also require the saved architecture to equal ``model``'s (activations, flags, ...).
        Pass False to load into a model that only has the same parameter names and shapes.

    Raises
    ------
    ValueError, TypeError, FileNotFoundError
        As :func:`read`, or when the file does not fit ``model``; ``model`` is then unchanged.
    """
    if not isinstance(model, Module):
        raise TypeError(f"model: expected an lstmkit Module, received {type(model).__name__}")
    header, arrays = read(path)
    where = repr(str(path))
    if check_config:
        mine = to_config(model, strict=False)  # comparing needs no registrations
        difference = _first_difference(header["model"], mine, "model")
        if difference is not None:
            raise ValueError(
                f"{where}: the saved architecture differs from the model at {difference}; "
                "pass check_config=False to load matching weights anyway"
            )
    _check_match(model.named_parameters(), arrays, where, "the model")
    model.load_state_dict(arrays)


def _check_match(
    params: Mapping[str, Parameter], arrays: Mapping[str, NDArray[Any]], where: str, what: str
) -> None:
    difference = name_difference(
        params, arrays, missing="missing from the file", extra="not in the model"
    )
    if difference is not None:
        raise ValueError(
            f"{where}: the saved arrays do not match {what}'s parameters; {difference}"
        )
    for name, param in params.items():
        array = arrays[name]
        if array.shape != param.shape:
            raise ValueError(
                f"{where}: array {name!r} has shape {array.shape}, {what} expects {param.shape}"
            )
        if array.dtype != param.dtype:
            raise TypeError(
                f"{where}: array {name!r} has dtype {array.dtype}, {what} expects {param.dtype}"
            )


def _first_difference(saved: Any, mine: Any, path: str) -> str | None:
    if isinstance(saved, dict) and isinstance(mine, dict):
        for key in sorted(set(saved) | set(mine), key=str):
            if key not in saved or key not in mine:
                return f"{path}.{key} (present in only one)"
            found = _first_difference(saved[key], mine[key], f"{path}.{key}")
            if found is not None:
                return found
        return None
    if isinstance(saved, list) and isinstance(mine, list):
        if len(saved) != len(mine):
            return f"{path} (the file has {len(saved)} entries, the model {len(mine)})"
        for k, (a, b) in enumerate(zip(saved, mine)):
            found = _first_difference(a, b, f"{path}[{k}]")
            if found is not None:
                return found
        return None
    if type(saved) is not type(mine) or saved != mine:
        return f"{path} (the file has {saved!r}, the model {mine!r})"
    return None


def _as_path(path: Any) -> Path:
    if isinstance(path, (bytes, bytearray)) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or path-like, received {type(path).__name__}")
    return Path(path)
