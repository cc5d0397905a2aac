"""Hostile files: ``load`` refuses them at a cost bounded by what the file legitimately declares.

A saved file is a zip archive, and a zip directory can lie: a few hundred kilobytes of deflated
zeros can claim to be hundreds of megabytes. ``load`` must decide from the zip directory and the
description, before decompressing an entry, whether the entry can belong to the file, and must
never read more than an entry's described shape and dtype need. Every archive here is written
byte by byte (a tiny zip writer below), so the directory can say whatever a hostile file says.

Peak memory is measured with ``tracemalloc`` (NumPy reports its arrays to it).
"""

import io
import json
import re
import struct
import time
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest

import lstmkit
from lstmkit import LSTMCell
from lstmkit.io import CONFIG_KEY

MiB = 2**20
BOMB_BYTES = 200 * MiB  # what the bomb entry inflates to
DATE_1980 = 0x21  # 1980-01-01 in zip's DOS date format


# -- a zip writer that writes whatever it is told -----------------------------------------------


def member(name, content, *, method=zipfile.ZIP_STORED, size=None, crc=None, stored_size=None):
    """One archive entry: ``content`` is the (already compressed, for deflate) payload."""
    return {
        "name": name,
        "payload": content,
        "method": method,
        "size": len(content) if size is None else size,
        "crc": zlib.crc32(content) if crc is None else crc,
        "compress_size": len(content) if stored_size is None else stored_size,
    }


def zip_bytes(members):
    out, central = bytearray(), bytearray()
    for m in members:
        name = m["name"].encode()
        offset = len(out)
        # version, flags, method, time, date; CRC-32, compressed and uncompressed sizes
        common = (0, m["method"], 0, DATE_1980, m["crc"], m["compress_size"], m["size"])
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, *common, len(name), 0)
        out += name + m["payload"]
        # ... name length, extra and comment lengths, disk, attributes, local header offset
        tail = (len(name), 0, 0, 0, 0, 0, offset)
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, *common, *tail) + name
    count = len(members)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(central), len(out), 0)
    return bytes(out + central + end)


def npy(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def npy_header(shape, dtype):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": tuple(shape)}
    )
    return buffer.getvalue()


def deflated(header, zeros):
    """Raw deflate of ``header`` followed by ``zeros`` zero bytes, and the CRC of the whole."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    parts, crc = [compressor.compress(header)], zlib.crc32(header)
    block = bytes(MiB)
    for start in range(0, zeros, MiB):
        chunk = block[: min(MiB, zeros - start)]
        parts.append(compressor.compress(chunk))
        crc = zlib.crc32(chunk, crc)
    parts.append(compressor.flush())
    return b"".join(parts), crc


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The description and arrays of a small saved model (LSTMCell(2, 3))."""
    path = tmp_path_factory.mktemp("hostile") / "model.npz"
    lstmkit.save(LSTMCell(2, 3, rng=0), path)
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    header = json.loads(arrays.pop(CONFIG_KEY).tobytes().decode())
    return header, arrays


@pytest.fixture(scope="module")
def bomb():
    """A uint8 .npy entry of BOMB_BYTES zeros, deflated (about 200 KB): payload, crc, size."""
    header = npy_header((BOMB_BYTES,), np.uint8)
    payload, crc = deflated(header, BOMB_BYTES)
    assert len(payload) < 300_000
    return payload, crc, len(header) + BOMB_BYTES


def config_member(header):
    text = json.dumps(header).encode()
    return member(CONFIG_KEY + ".npy", npy(np.frombuffer(text, np.uint8)))


def array_members(arrays, skip=()):
    return [member(name + ".npy", npy(value)) for name, value in arrays.items() if name not in skip]


def bomb_member(name, bomb):
    payload, crc, size = bomb
    return member(name + ".npy", payload, method=zipfile.ZIP_DEFLATED, size=size, crc=crc)


def refused(path, match, error=ValueError, *, peak_below=8 * MiB):
    """Load ``path``, expecting ``error`` matching ``match``, within ``peak_below`` traced bytes."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        try:
            lstmkit.load(path)
        except Exception as raised:  # checked below, after the cost
            caught = raised
        else:
            caught = None
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    print(f"{path.name}: refused in {seconds:.3f} s, peak {peak / MiB:.2f} MiB")
    assert peak < peak_below, f"peak {peak / MiB:.1f} MiB while refusing {path.name}"
    assert isinstance(caught, error), repr(caught)
    assert re.search(match, str(caught)), str(caught)
    return caught


# -- the zip writer itself ---------------------------------------------------------------------


def test_the_test_zip_writer_writes_a_file_lstmkit_loads(saved, tmp_path):
    header, arrays = saved
    path = tmp_path / "plain.npz"
    path.write_bytes(zip_bytes([config_member(header), *array_members(arrays)]))
    model = lstmkit.load(path)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, arrays[name])


# -- decompression bombs ------------------------------------------------------------------------


def test_unknown_entry_is_refused_by_name_without_decompressing_it(saved, bomb, tmp_path):
    header, arrays = saved
    path = tmp_path / "unknown.npz"
    path.write_bytes(
        zip_bytes([config_member(header), *array_members(arrays), bomb_member("bomb", bomb)])
    )
    refused(path, r"extra \['bomb'\]")


def test_oversized_parameter_entry_is_refused_from_the_zip_directory(saved, bomb, tmp_path):
    header, arrays = saved
    path = tmp_path / "oversized.npz"
    members = [config_member(header), *array_members(arrays, skip={"forget.W"})]
    path.write_bytes(zip_bytes([*members, bomb_member("forget.W", bomb)]))
    refused(path, r"'forget.W'.*declares 209715328 bytes.*shape \(2, 3\) and dtype float64")


def test_oversized_description_is_refused_from_the_zip_directory(saved, bomb, tmp_path):
    _, arrays = saved
    path = tmp_path / "config.npz"
    path.write_bytes(zip_bytes([bomb_member(CONFIG_KEY, bomb), *array_members(arrays)]))
    refused(path, r"'__config__.npy' declares 209715328 bytes.*at most 4194304")


def test_huge_described_shape_is_refused_without_allocating(saved, tmp_path):
    # The description and the entry's own .npy header agree on an 80 GB array, the zip directory
    # honestly says the entry holds 48 bytes: refused without reading or allocating anything.
    header, arrays = saved
    header = json.loads(json.dumps(header))
    header["parameters"]["forget.W"]["shape"] = [100_000, 100_000]
    huge = npy_header((100_000, 100_000), np.float64) + arrays["forget.W"].tobytes()
    path = tmp_path / "huge.npz"
    members = [config_member(header), *array_members(arrays, skip={"forget.W"})]
    path.write_bytes(zip_bytes([*members, member("forget.W.npy", huge)]))
    refused(path, r"'forget.W'.*declares \d+ bytes.*shape \(100000, 100000\)")


def test_a_lying_zip_directory_cannot_make_load_read_or_allocate_what_is_not_there(saved, tmp_path):
    # Description, .npy header and zip directory all claim a 3.2 GB array; the entry holds 1 MiB
    # of deflated zeros. The reader must fail at the end of the real data, having held no more.
    header, arrays = saved
    header = json.loads(json.dumps(header))
    shape = (20_000, 20_000)
    header["parameters"]["forget.W"]["shape"] = list(shape)
    head = npy_header(shape, np.float64)
    payload, crc = deflated(head, MiB)
    claim = len(head) + 8 * 20_000 * 20_000
    lie = member("forget.W.npy", payload, method=zipfile.ZIP_DEFLATED, size=claim, crc=crc)
    path = tmp_path / "liar.npz"
    members = [config_member(header), *array_members(arrays, skip={"forget.W"})]
    path.write_bytes(zip_bytes([*members, lie]))
    refused(path, "truncated or corrupt")


def test_entries_claiming_more_compressed_bytes_than_the_file_holds_are_refused(saved, tmp_path):
    # Overlapping entries (several directory records pointing at the same compressed data) are
    # the classic way to multiply a zip bomb; their compressed sizes then add up to more than
    # the file.
    header, arrays = saved
    members = [config_member(header), *array_members(arrays)]
    members[1]["compress_size"] = 10**9
    path = tmp_path / "overlap.npz"
    path.write_bytes(zip_bytes(members))
    refused(path, r"entries claim \d+ compressed bytes, the file has \d+")


def test_only_stored_and_deflated_entries_are_read(saved, tmp_path):
    # bzip2 and LZMA cannot be decompressed in bounded steps by zipfile; numpy writes neither.
    _, arrays = saved
    source = tmp_path / "model.npz"
    lstmkit.save(LSTMCell(2, 3, rng=0), source)
    path = tmp_path / "bzip2.npz"
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(path, "w", zipfile.ZIP_BZIP2) as new:
        for info in old.infolist():
            new.writestr(info.filename, old.read(info))
    refused(path, r"'__config__.npy' uses compression method 12; expected stored or deflated")


@pytest.mark.parametrize(
    "dtype, error, match",
    [
        (np.dtype(object), ValueError, r"expected dtype float32 or float64, received object"),
        (np.dtype([("a", "<f8")]), ValueError, r"expected dtype float32 or float64, received"),
        (np.dtype(">f8"), ValueError, r"expected dtype float32 or float64, received >f8"),
        (np.dtype("<f4"), TypeError, r"'forget.W' has dtype float32, described as float64"),
    ],
    ids=["object", "structured", "big-endian", "other-float"],
)
def test_odd_dtypes_are_refused_from_the_npy_header(saved, tmp_path, dtype, error, match):
    # The header claims the described shape; 48 bytes of data follow, as float64 would need.
    header, arrays = saved
    head = io.BytesIO()
    descr = np.lib.format.dtype_to_descr(dtype)
    np.lib.format.write_array_header_1_0(
        head, {"descr": descr, "fortran_order": False, "shape": (2, 3)}
    )
    path = tmp_path / "odd.npz"
    members = [config_member(header), *array_members(arrays, skip={"forget.W"})]
    entry = member("forget.W.npy", head.getvalue() + arrays["forget.W"].tobytes())
    path.write_bytes(zip_bytes([*members, entry]))
    refused(path, match, error)


def test_compressed_files_load_in_bounded_steps(saved, tmp_path, monkeypatch):
    # numpy.savez_compressed writes deflated entries; read them through many small steps.
    from lstmkit import io as lstmkit_io

    monkeypatch.setattr(lstmkit_io, "_READ_CHUNK", 7)
    model = lstmkit.Recurrent(LSTMCell(5, 7, peephole=True, rng=3))
    path = tmp_path / "model.npz"
    lstmkit.save(model, path)
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    np.savez_compressed(path, **arrays)
    loaded = lstmkit.load(path)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[name], value)


def test_reading_costs_the_arrays_plus_a_small_constant(tmp_path):
    model = lstmkit.Recurrent(LSTMCell(200, 300, rng=0))  # 4.8 MB of float64 weights
    path = tmp_path / "model.npz"
    lstmkit.save(model, path)
    declared = sum(value.nbytes for value in model.state_dict().values())
    tracemalloc.start()
    try:
        _, arrays = lstmkit.io.read(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sum(a.nbytes for a in arrays.values()) == declared
    assert peak < 1.2 * declared + 2 * MiB, (peak, declared)
