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
any problem raises ``ValueError`` or ``TypeError`` naming it. The description is read first and
every other entry is checked against it from the zip directory before it is decompressed, so a
hostile file (a "zip bomb") costs at most the arrays its description declares plus a small
constant. :func:`save` writes to a temporary file in the target folder, flushes it to disk and
renames it over the target, so a crash mid-save leaves any old file intact.

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

import contextlib
import errno
import io
import json
import math
import os
import stat
import struct
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from lstmkit.config import from_config, to_config
from lstmkit.module import Module, Parameter, name_difference

__all__ = ["CONFIG_KEY", "FORMAT", "FORMAT_VERSION", "load", "load_weights", "read", "save"]

FORMAT = "lstmkit"
FORMAT_VERSION = 1
CONFIG_KEY = "__config__"
_PARAM_DTYPES = ("float32", "float64")
_CONFIG_MAX_BYTES = 4 * 2**20  # a description (JSON) longer than this is refused unread
_NPY_HEADER_MAX = 4096  # magic, version and header dict of one .npy entry
_READ_CHUNK = 2**20  # entries are decompressed at most this many bytes at a time


# -- save -------------------------------------------------------------------------------------


def save(model: Any, path: str | os.PathLike[str]) -> None:
    """Write ``model`` (architecture and weights) to one ``.npz`` file, atomically.

    Parameters
    ----------
    model : Module
        Any registered component: a cell, ``Recurrent``, ``Stacked``, ``Bidirectional`` or a user
        component registered with :func:`lstmkit.config.register`.
    path : str or path-like
        Target file, written exactly as given (no suffix is added). Its folder must exist. A
        symbolic link is followed: the file it points to is replaced and the link is kept.

    Notes
    -----
    The file is written as ``open(path, "wb")`` would leave it, but atomically: a new file gets
    the permissions the umask gives (``0o666 & ~umask``), a replaced file keeps its permission
    bits, and the data and then the folder are flushed to disk (``os.fsync``) before ``save``
    returns. Replacing a file gives it a new inode, so another hard link to the old file keeps
    the old model.

    Raises
    ------
    FileNotFoundError
        The folder of ``path`` does not exist.
    PermissionError
        ``path`` is a file you may not write, or one with no write permission at all
        (``chmod a-w``), even for root; it is left as it was.
    ValueError
        ``path`` is a folder or another non-regular file (a device, a pipe); the model has an
        unregistered component, shares a sub-component or parameter between two places, or has
        non-finite weights (the file could not be loaded).
    TypeError
        ``path`` is not a str or path-like.
    """
    target = _as_path(path)
    real, mode = _writable_target(target)
    header, params = describe(model)
    text = json.dumps(header, allow_nan=False)
    arrays: dict[str, NDArray[Any]] = {
        CONFIG_KEY: np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    }
    arrays.update(params)
    _atomic_write(real, mode, arrays)


def describe(model: Any) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
    """The description :func:`save` stores and the arrays it stores beside it.

    Shared by every file format lstmkit writes (see :mod:`lstmkit.io_safetensors`).

    Returns
    -------
    header : dict
        ``format``, ``format_version``, ``model`` (:func:`lstmkit.config.to_config`) and
        ``parameters`` (each parameter's shape and dtype), ready for ``json.dumps``.
    params : dict of str to ndarray
        A copy of every parameter under its ``state_dict`` name.

    Raises
    ------
    ValueError, TypeError
        As :func:`save`: unregistered or shared components, non-finite weights, odd dtypes.
    """
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
    return header, params


def _writable_target(target: Path) -> tuple[Path, int | None]:
    """The file ``save`` writes for ``target`` (a link followed) and the mode to keep, if any."""
    # A symbolic link is followed, as open(path, "wb") would: the file it points to gets the
    # new model, and the link stays a link.
    real = Path(os.path.realpath(target))
    shown = repr(str(target))
    if target.is_symlink():
        shown = f"{shown} (a link to {str(real)!r})"
        if real.is_symlink():
            raise OSError(errno.ELOOP, f"path: {shown} is a loop of symbolic links")
    if real.is_dir():
        raise ValueError(f"path: expected a file path, received the folder {shown}")
    folder = real.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"path: the folder {str(folder)!r} does not exist; create it first")
    if not os.path.lexists(real):
        return real, None
    status = real.stat()
    if not stat.S_ISREG(status.st_mode):
        raise ValueError(f"path: expected a regular file, received {shown}, which is not one")
    # Renaming over a file needs no permission on the file itself; refuse where writing into it
    # would fail, and where it has no write permission at all (chmod a-w), even for root.
    if not status.st_mode & 0o222 or not os.access(real, os.W_OK):
        error = PermissionError(
            f"path: {shown} is read-only; expected a file you may write "
            "(make it writable, or save elsewhere)"
        )
        error.errno = errno.EACCES
        raise error
    return real, stat.S_IMODE(status.st_mode) & 0o777


def _atomic_write(target: Path, mode: int | None, arrays: dict[str, NDArray[Any]]) -> None:
    _atomic_write_with(target, mode, lambda fh: np.savez(fh, **arrays))  # type: ignore[arg-type]


def _atomic_write_with(target: Path, mode: int | None, write: Callable[[IO[bytes]], Any]) -> None:
    # Write the whole archive to a new file next to the target, flush it to disk, rename it over
    # the target (atomic on one filesystem: readers see the old or the new file), then flush the
    # folder so that the rename itself survives a power cut.
    tmp, fd = _create_temporary(target)
    try:
        if mode is not None:  # replacing a file: keep its permissions
            os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(target.parent)


def _create_temporary(target: Path) -> tuple[Path, int]:
    # Created with mode 0o666 like any new file (open(path, "wb")), so the umask and the
    # folder's default ACL decide its permissions, not a fixed mode.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _attempt in range(100):
        tmp = target.with_name(f".{target.name}.{os.urandom(6).hex()}.tmp")
        try:
            return tmp, os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"path: no free temporary name next to {str(target)!r}")


def _fsync_folder(folder: Path) -> None:
    if not hasattr(os, "O_DIRECTORY"):  # Windows: a folder cannot be opened to flush it
        return
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:  # e.g. a folder you may write but not read; the file itself is on disk
        return
    try:
        os.fsync(fd)
    except OSError as error:
        # Some filesystems cannot flush a folder; that is not a failure to save.
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


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

    The description is read first; every other entry is then checked against it from the zip
    directory (its name, its declared size against the shape and dtype described) before any of
    it is decompressed, and is read in bounded steps. A hostile file therefore costs at most the
    arrays its description declares plus a small constant, whatever its zip directory claims.

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
        The file is truncated or corrupt, from a newer format version, its arrays disagree with
        its description, an entry is larger than its description allows, the description is
        over 4 MiB, or an entry is compressed otherwise than stored or deflated.
    TypeError
        ``path`` is not a str or path-like, or an array has a dtype the description does not say.
    """
    target = _as_path(path)
    if not target.is_file():
        raise FileNotFoundError(f"path: no file at {str(target)!r}")
    where = repr(str(target))
    with _unreadable(where):
        file_size = target.stat().st_size
        archive = zipfile.ZipFile(target)
    with archive:
        entries = _check_directory(archive, file_size, where)
        if CONFIG_KEY not in entries:
            raise ValueError(f"{where}: not an lstmkit file (no {CONFIG_KEY!r} entry)")
        config_info = entries.pop(CONFIG_KEY)
        if config_info.file_size > _CONFIG_MAX_BYTES + _NPY_HEADER_MAX:
            raise ValueError(
                f"{where}: entry {config_info.filename!r} declares {config_info.file_size} bytes "
                f"uncompressed; expected a description of at most {_CONFIG_MAX_BYTES} bytes"
            )
        header = _parse_header(_read_entry(archive, config_info, CONFIG_KEY, None, where), where)
        manifest = header["parameters"]
        difference = name_difference(manifest, entries, extra="extra")
        if difference is not None:
            raise ValueError(f"{where}: the arrays do not match the description; {difference}")
        arrays: dict[str, NDArray[Any]] = {}
        for name, info in entries.items():
            array = _read_entry(archive, info, name, manifest[name], where)
            if not np.all(np.isfinite(array)):
                bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
                raise ValueError(
                    f"{where}: array {name!r} has {bad} non-finite values (NaN or inf)"
                )
            arrays[name] = array
    return header, arrays


@contextlib.contextmanager
def _unreadable(where: str) -> Iterator[None]:
    # Damage to the archive surfaces as BadZipFile, EOFError, zlib.error, OSError,
    # NotImplementedError, RuntimeError (a garbled encryption flag), struct.error, numpy's
    # ValueError for a garbled .npy header, ...: all mean the same thing to the caller.
    try:
        yield
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"{where}: not a readable lstmkit file (truncated or corrupt?): {error}"
        ) from error
    except Exception as error:
        raise ValueError(
            f"{where}: not a readable lstmkit file (truncated or corrupt?): "
            f"{type(error).__name__}: {error}"
        ) from error


def _check_directory(
    archive: zipfile.ZipFile, file_size: int, where: str
) -> dict[str, zipfile.ZipInfo]:
    # Everything here comes from the zip directory: nothing is decompressed yet.
    entries: dict[str, zipfile.ZipInfo] = {}
    compressed = 0
    for info in archive.infolist():
        name = info.filename
        if not name.endswith(".npy") or name[:-4] in entries:
            raise ValueError(
                f"{where}: not a readable lstmkit file (truncated or corrupt?): "
                f"unexpected or duplicate archive entry {name!r}"
            )
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            # zipfile inflates bzip2 and LZMA a whole read at a time, without an output bound.
            raise ValueError(
                f"{where}: entry {name!r} uses compression method {info.compress_type}; expected "
                "stored or deflated (what numpy.savez and numpy.savez_compressed write)"
            )
        entries[name[:-4]] = info
        compressed += info.compress_size
    if compressed > file_size:
        # Entries overlapping one another (a way to multiply a zip bomb) or lying sizes.
        raise ValueError(
            f"{where}: not a readable lstmkit file (truncated or corrupt?): its entries claim "
            f"{compressed} compressed bytes, the file has {file_size}"
        )
    return entries


def _read_entry(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    name: str,
    spec: dict[str, Any] | None,
    where: str,
) -> NDArray[Any]:
    """One ``.npy`` entry, checked against ``spec`` (the manifest's shape and dtype) if given."""
    if spec is not None:
        dtype = np.dtype(spec["dtype"])
        needed = math.prod(spec["shape"]) * dtype.itemsize
        if info.file_size > needed + _NPY_HEADER_MAX:
            raise ValueError(
                f"{where}: array {name!r}: the archive declares {info.file_size} bytes "
                f"uncompressed, but shape {tuple(spec['shape'])} and dtype {dtype} need "
                f"{needed} (plus a header of at most {_NPY_HEADER_MAX})"
            )
    with _unreadable(where):
        stream = archive.open(info)
    with stream:
        with _unreadable(where):
            shape, fortran, dtype, header_size = _read_npy_header(stream, name)
        if spec is not None:
            if dtype.name != spec["dtype"]:
                raise TypeError(
                    f"{where}: array {name!r} has dtype {dtype}, described as {spec['dtype']}"
                )
            if list(shape) != spec["shape"]:
                raise ValueError(
                    f"{where}: array {name!r} has shape {shape}, described as "
                    f"{tuple(spec['shape'])}"
                )
        count = math.prod(shape)
        needed = count * dtype.itemsize
        if info.file_size != header_size + needed:
            raise ValueError(
                f"{where}: array {name!r}: the archive declares {info.file_size} bytes "
                f"uncompressed, but shape {shape} and dtype {dtype} need {header_size + needed} "
                f"({header_size} of them the .npy header)"
            )
        with _unreadable(where):
            data = _read_exactly(stream, needed, name)
    array = np.frombuffer(data, dtype=dtype, count=count)
    return np.ascontiguousarray(array.reshape(shape, order="F" if fortran else "C"))


def _read_npy_header(
    stream: IO[bytes], name: str
) -> tuple[tuple[int, ...], bool, np.dtype[Any], int]:
    # Read at most _NPY_HEADER_MAX bytes, then let numpy parse them (it never unpickles a
    # header). The dtype is checked here, so neither pickles nor odd layouts get further.
    magic = stream.read(8)
    if len(magic) < 8 or not magic.startswith(np.lib.format.MAGIC_PREFIX):
        raise ValueError(f"array {name!r}: not a .npy array")
    version = (magic[6], magic[7])
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f"array {name!r}: unsupported .npy version {version}")
    length_format = "<H" if version == (1, 0) else "<I"
    length_bytes = stream.read(struct.calcsize(length_format))
    if len(length_bytes) < struct.calcsize(length_format):
        raise ValueError(f"array {name!r}: the entry ends inside its .npy header")
    (length,) = struct.unpack(length_format, length_bytes)
    header_size = len(magic) + len(length_bytes) + length
    if header_size > _NPY_HEADER_MAX:
        raise ValueError(
            f"array {name!r}: expected a .npy header of at most {_NPY_HEADER_MAX} bytes, "
            f"received one of {header_size}"
        )
    text = stream.read(length)
    if len(text) < length:
        raise ValueError(f"array {name!r}: the entry ends inside its .npy header")
    buffer = io.BytesIO(magic + length_bytes + text)
    np.lib.format.read_magic(buffer)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(buffer)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(buffer)
    allowed = ("uint8",) if name == CONFIG_KEY else _PARAM_DTYPES
    if dtype.name not in allowed or not dtype.isnative:
        raise ValueError(f"array {name!r}: expected dtype {' or '.join(allowed)}, received {dtype}")
    if name == CONFIG_KEY and len(shape) != 1:
        raise ValueError(f"array {name!r}: expected a 1-d array, received shape {shape}")
    return shape, bool(fortran), dtype, header_size


def _read_exactly(stream: IO[bytes], size: int, name: str) -> bytearray:
    # Grow the buffer only as data actually arrives, a bounded step at a time: a zip directory
    # that overstates an entry cannot make this allocate what is not there.
    data = bytearray()
    while len(data) < size:
        chunk = stream.read(min(_READ_CHUNK, size - len(data)))
        if not chunk:
            raise ValueError(
                f"array {name!r}: the entry ends after {len(data)} of {size} data bytes"
            )
        data += chunk
    if stream.read(1):
        raise ValueError(f"array {name!r}: the entry holds more than {size} data bytes")
    return data


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
    return _build(header, arrays, repr(str(path)), rng)


def _build(header: dict[str, Any], arrays: dict[str, NDArray[Any]], where: str, rng: Any) -> Any:
    """The model a checked description and its checked arrays describe (shared by the formats)."""
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
    _fill(model, header, arrays, repr(str(path)), check_config)


def _fill(
    model: Module,
    header: dict[str, Any],
    arrays: dict[str, NDArray[Any]],
    where: str,
    check_config: bool,
) -> None:
    """Load checked arrays into ``model``, all or nothing (shared by the formats)."""
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
