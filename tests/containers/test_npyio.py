"""dlformats.containers.npyio: the one safe .npy parser every plugin uses."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from dlformats.containers.npyio import (
    FileArray,
    from_bytes,
    from_member,
    from_stream,
    header_bytes,
    map_file,
    parse_header,
    write_npy,
)
from dlformats.errors import CorruptFileError, LimitExceededError, UnsupportedFeatureError
from dlformats.limits import Limits
from dlformats.sources import open_source
from dlformats.testing import check_import_light


def npy(array: np.ndarray, **kw) -> bytes:
    out = io.BytesIO()
    np.save(out, array, **kw)
    return out.getvalue()


def forged(descr: str, shape: str, data: bytes = b"") -> bytes:
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    text += " " * (63 - (10 + len(text)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode() + data


def zip_of(path, members, compression):
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_import_is_light():
    check_import_light("dlformats.containers.npyio")


def test_from_bytes_is_a_view_without_a_copy():
    data = npy(np.arange(12, dtype=np.uint16).reshape(3, 4))
    array = from_bytes(data, limits=Limits(), path="a.npy")
    assert np.array_equal(array, np.arange(12).reshape(3, 4)) and not array.flags.writeable
    assert array.base is not None and not array.flags.owndata


def test_fortran_order_kept():
    source = np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3))
    array = from_bytes(npy(source), limits=Limits(), path="f.npy")
    assert np.array_equal(array, source) and array.flags.f_contiguous


def test_empty_array():
    assert from_bytes(npy(np.zeros((0, 5), np.uint8)), limits=Limits(), path="e.npy").shape == (0, 5)


@pytest.mark.parametrize("descr", ["|O", "<c8", "|S4", "<U3", "|V8", "<M8[s]"])
def test_only_numeric_dtypes(descr):
    with pytest.raises(UnsupportedFeatureError):
        from_bytes(forged(descr, "(2,)", b"\0" * 64), limits=Limits(), path="x.npy")


def test_structured_dtype_refused():
    with pytest.raises(UnsupportedFeatureError, match="structured"):
        from_bytes(npy(np.zeros(2, dtype=[("a", "<i4")])), limits=Limits(), path="s.npy")


def test_pickled_object_array_never_unpickled():
    data = npy(np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UnsupportedFeatureError, match="unpickle"):
        from_bytes(data, limits=Limits(), path="p.npy")


def test_negative_and_overflowing_shapes_refused():
    with pytest.raises(CorruptFileError, match="negative"):
        from_bytes(forged("<u1", "(-2, 8)", b"\0" * 16), limits=Limits(total_bytes=1 << 70), path="n.npy")
    # 2**64 bytes: over what numpy can index, even with limits that would allow it
    with pytest.raises(CorruptFileError, match="more than any array"):
        from_bytes(forged("<u1", "(4294967296, 4294967296)"), limits=Limits(total_bytes=1 << 70), path="o.npy")


def test_declared_size_checked_against_limits_then_present_bytes():
    data = forged("<u2", "(1000, 1000)", b"\0" * 10)
    with pytest.raises(LimitExceededError) as info:
        from_bytes(data, limits=Limits(array_bytes=1000), path="big.npy")
    assert info.value.found == 2_000_000
    with pytest.raises(CorruptFileError, match="only 10 bytes follow it"):
        from_bytes(data, limits=Limits(), path="big.npy", member="m.npy")


def test_map_file_and_its_limits(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.arange(4096, dtype=np.uint8).reshape(4, 32, 32))
    mapped = map_file(path, limits=Limits(array_bytes=1024))  # mapped: streams, only total_bytes counts
    assert isinstance(mapped, (np.memmap, FileArray)) and mapped[3, 31, 31] == 4095 % 256
    with pytest.raises(LimitExceededError):
        map_file(path, limits=Limits(total_bytes=1000))
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(CorruptFileError, match="follow it") as info:
        map_file(path, limits=Limits(), name="short.npy")
    assert info.value.path == "short.npy"


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_from_member_in_place_or_in_memory(tmp_path, compression):
    a = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    path = zip_of(tmp_path / "a.zip", {"dir/a.npy": npy(a)}, compression)
    with open_source(path) as source:
        archive = source.zip()
        array = from_member(archive, "a.npy")
        assert np.array_equal(array, a)
        assert isinstance(array, (np.memmap, FileArray)) == (compression == zipfile.ZIP_STORED)
    with open_source(path.read_bytes()) as source:  # in memory: never mapped
        array = from_member(source.zip(), "a.npy")
        assert np.array_equal(array, a) and not isinstance(array, np.memmap)


def test_from_member_checks_the_header_before_decompressing(tmp_path):
    # a deflated member declaring far more than it holds: refused from its first bytes
    data = forged("<u1", "(100000, 100000)", b"\0" * 100)
    path = zip_of(tmp_path / "a.zip", {"a.npy": data}, zipfile.ZIP_DEFLATED)
    with open_source(path, limits=Limits(member_bytes=50)) as source:
        with pytest.raises(LimitExceededError) as info:
            from_member(source.zip(), "a.npy")
        assert info.value.limit == "array_bytes" and info.value.member == "a.npy"
        with pytest.raises(CorruptFileError, match="follow it"):
            from_member(source.zip(), "a.npy", limits=Limits(array_bytes=1 << 40))


def test_parse_header_reports_where_data_starts():
    data = npy(np.zeros((2, 3), np.float32))
    header = parse_header(io.BytesIO(data), path="h.npy")
    assert (header.shape, header.dtype, header.fortran_order) == ((2, 3), np.dtype("<f4"), False)
    assert header.data_offset == len(data) - 24 and header.nbytes == 24


def test_written_npy_is_what_numpy_saves():
    a = np.arange(24, dtype=">i4").reshape(2, 3, 4)
    out = io.BytesIO()
    write_npy(out, a.shape, a.dtype, iter([a[0], a[1]]))
    assert out.getvalue() == npy(a)
    assert header_bytes(a.shape, a.dtype) == npy(a)[: -a.nbytes]
    with pytest.raises(ValueError):
        write_npy(io.BytesIO(), (3, 3, 4), a.dtype, iter([a[0]]))


def test_file_array_reads_blocks_equal_to_numpy(tmp_path):
    from dlformats.limits import Limits

    a = np.arange(3 * 4 * 5 * 2, dtype=">u2").reshape(3, 4, 5, 2)  # big-endian, channels last
    np.save(tmp_path / "a.npy", a)
    arr = map_file(tmp_path / "a.npy", limits=Limits())
    assert isinstance(arr, FileArray) and arr.shape == a.shape and arr.nbytes == a.nbytes
    for key in [1, -1, (2, 3), (0, slice(None), slice(1, 4), 1), (1, Ellipsis), (slice(None), 0)]:
        np.testing.assert_array_equal(arr[key], a[key])
    np.testing.assert_array_equal(np.asarray(arr), a)
    with pytest.raises(IndexError):
        arr[3]


class Reads(io.BytesIO):
    """A stream that records how far it has been read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.furthest = 0

    def read(self, size: int | None = -1) -> bytes:
        out = super().read(size)
        self.furthest = max(self.furthest, self.tell())
        return out

    def readinto(self, buffer) -> int:  # type: ignore[override]
        count = super().readinto(buffer)
        self.furthest = max(self.furthest, self.tell())
        return count


@pytest.mark.parametrize(
    "array",
    [
        np.arange(24, dtype=">u2").reshape(2, 3, 4),
        np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
        np.zeros((0, 5), np.int32),
        np.array([True, False]),
    ],
)
def test_from_stream_reads_into_the_array(array):
    data = npy(array)
    got = from_stream(Reads(data), len(data), limits=Limits(), path="s.npy")
    assert np.array_equal(got, array) and got.dtype == array.dtype and got.shape == array.shape
    assert not got.flags.writeable
    assert (got.flags.c_contiguous, got.flags.f_contiguous) == (array.flags.c_contiguous, array.flags.f_contiguous)


def test_from_stream_checks_the_header_before_reading_data():
    data = forged("<u1", "(100000, 100000)", b"\0" * 5000)
    stream = Reads(data)
    with pytest.raises(LimitExceededError) as info:
        from_stream(stream, len(data), limits=Limits(array_bytes=1 << 20), path="m.zip", member="a.npy")
    assert (info.value.limit, info.value.member) == ("array_bytes", "a.npy")
    assert stream.furthest == len(data) - 5000  # the header, not one data byte


@pytest.mark.parametrize(
    ("extra", "size_delta", "message"),
    [
        (b"\0" * 8, 0, "holds 32 bytes after its header"),  # more data than the header declares
        (b"", -8, "only 16 bytes follow it"),  # the member declares less than the header
        (b"", 0, "more than the 24 data bytes"),  # the stream runs past its declared size
    ],
)
def test_from_stream_wants_exactly_the_declared_bytes(extra, size_delta, message):
    data = npy(np.zeros((2, 3), np.float32)) + extra
    size = len(data) + size_delta
    stream = Reads(data + (b"x" if not extra and not size_delta else b""))
    with pytest.raises(CorruptFileError, match=message):
        from_stream(stream, size, limits=Limits(), path="s.npy")
