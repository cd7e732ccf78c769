"""Safe ``.npy`` reading and streamed writing, for every plugin that meets numpy arrays.

Nothing here unpickles: the header is parsed with numpy's header readers (a Python
literal, not a pickle) and only bool, integer and float dtypes are accepted by
default (never object or structured ones).  A shape with a negative dimension, or
whose size overflows what numpy can index, is refused.  The declared
``prod(shape) * itemsize`` is checked against :class:`~dlformats.limits.Limits` and
against the bytes actually present *before* anything is allocated.  Then the data is
viewed, never copied:

* :func:`from_bytes`: ``numpy.frombuffer`` over bytes already in memory;
* :func:`map_file`: ``numpy.memmap`` of a ``.npy`` file on disk;
* :func:`from_member`: a member of a :class:`~dlformats.containers.archive.SafeZip`, mapped in
  place when it is stored uncompressed in a zip on disk, else streamed;
* :func:`from_stream`: an ``.npy`` read from a stream (a zip or tar member): the
  header is checked before any data is read, then the data is read straight into
  the array's buffer, its one copy.

A file on disk is read and mapped through one :class:`~dlformats.sources.OpenFile`
(the source's, or one opened once for a path): header, size and data come from the
same file even if another is renamed over its path meanwhile.

Mapped arrays stream (a plane at a time), so they count against ``total_bytes``
only; arrays held in memory count against ``total_bytes`` and a second limit
(``array_bytes`` unless the caller names another).  Arrays keep their file's memory
order (Fortran-ordered files give Fortran-ordered views).  numpy is imported inside
the functions, so importing this module is light.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..arrays import NumpyLike
from ..errors import CorruptFileError, DLFormatsError, UnsupportedFeatureError, environment_error

if TYPE_CHECKING:
    from ..limits import Limits
    from ..sources import OpenFile
    from .archive import SafeZip

_MAGIC = b"\x93NUMPY"

NUMERIC_KINDS = "biuf"
"""dtype kinds accepted by default: bool, signed and unsigned integers, floats."""

_KIND_NAMES = {"b": "bool", "i": "int", "u": "uint", "f": "float", "U": "unicode string"}
_MAX_BYTES = 2**63 - 1  # numpy indexes with int64: a larger array cannot exist
_HEAD_BYTES = 1 << 16  # numpy refuses headers over 10,000 bytes; this reads any it accepts
_STEP = 1 << 20  # bytes read from a stream at a time, straight into the array


@dataclass(frozen=True)
class NpyHeader:
    """An ``.npy`` header.

    Attributes:
        shape: the array's shape, in the file's axis order.
        dtype: its ``numpy.dtype``.
        fortran_order: True when the data is stored column-major.
        data_offset: bytes from the start of the ``.npy`` to its first data byte.
    """

    shape: tuple[int, ...]
    dtype: Any
    fortran_order: bool
    data_offset: int

    @property
    def nbytes(self) -> int:
        """Declared data size in bytes (Python ints: no overflow)."""
        return math.prod(self.shape) * self.dtype.itemsize

    @property
    def order(self) -> str:
        """``"F"`` or ``"C"``: the memory order numpy calls it."""
        return "F" if self.fortran_order else "C"


def parse_header(fh: IO[bytes], *, path: str, member: str | None = None, kinds: str = NUMERIC_KINDS) -> NpyHeader:
    """Read and check the magic and header of an ``.npy`` starting at ``fh``'s current position.

    Raises:
        CorruptFileError: not an ``.npy``, a broken header, a negative dimension, or a
            size no array can have.
        UnsupportedFeatureError: an unknown format version; an object, structured or
            other dtype whose kind is not in ``kinds``.
    """
    from numpy.lib import format as npformat

    where = {"path": path, "member": member}
    start = fh.tell()
    magic = fh.read(len(_MAGIC))
    if magic != _MAGIC:
        raise CorruptFileError(f"not a .npy array: starts with {magic!r}", **where)
    fh.seek(start)
    try:
        version = npformat.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):
            # 3.0 differs from 2.0 only in allowing UTF-8 field names, which are refused anyway
            shape, fortran, dtype = npformat.read_array_header_2_0(fh)
        else:
            raise UnsupportedFeatureError(f".npy format version {version[0]}.{version[1]}", **where)
    except DLFormatsError:
        raise
    except Exception as exc:  # numpy raises ValueError/TypeError/SyntaxError/EOFError for broken headers
        raise CorruptFileError(f"bad .npy header: {exc}", **where) from exc
    _check_dtype(dtype, kinds=kinds, **where)
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise CorruptFileError(f".npy header declares a negative dimension in shape {shape}", **where)
    header = NpyHeader(shape, dtype, bool(fortran), fh.tell() - start)
    # numpy refuses ("array is too big") when the product of the *non-zero* dimensions overflows,
    # even if another dimension is 0 and the array holds no bytes (a fuzz finding).
    if math.prod(max(s, 1) for s in shape) * max(dtype.itemsize, 1) > _MAX_BYTES:
        raise CorruptFileError(
            f".npy header declares shape {shape} of {dtype} ({header.nbytes:,} bytes), more than any array can hold",
            **where,
        )
    return header


def _check_dtype(dtype: Any, *, kinds: str = NUMERIC_KINDS, path: str, member: str | None = None) -> None:
    """Refuse object, structured and other dtypes whose kind is not in ``kinds``, with a typed error."""
    where = {"path": path, "member": member}
    if dtype.hasobject:
        raise UnsupportedFeatureError(
            "object arrays are refused: loading them would unpickle Python objects",
            hint="save a numeric array (bool, int, uint or float); dlformats never unpickles",
            **where,
        )
    if dtype.fields is not None or dtype.subdtype is not None:
        raise UnsupportedFeatureError(f"structured dtype {dtype} is not supported", **where)
    if dtype.kind not in kinds:
        names = ", ".join(_KIND_NAMES.get(k, k) for k in kinds)
        raise UnsupportedFeatureError(f"dtype {dtype} is not supported (accepted: {names})", **where)


def _check_size(
    header: NpyHeader,
    available: int,
    limits: Limits,
    *,
    limit: str | None = "array_bytes",
    path: str,
    member: str | None = None,
) -> None:
    """Check the declared size against the limits, then against the bytes present.

    ``available`` is the size of the whole ``.npy`` (file or archive member).  The
    declared size always counts against ``limits.total_bytes``, and against
    ``limit`` too unless it is ``None`` (a mapped array, which streams).
    """
    where = {"path": path, "member": member}
    limits.check("total_bytes", header.nbytes, "array too large", **where)
    if limit is not None:
        limits.check(limit, header.nbytes, "array too large to hold in memory", **where)
    present = available - header.data_offset
    if header.nbytes > present:
        raise CorruptFileError(
            f"header declares shape {header.shape} of {header.dtype} ({header.nbytes:,} bytes) "
            f"but only {max(present, 0):,} bytes follow it",
            **where,
        )


def _view(data: Any, header: NpyHeader, base: int = 0) -> Any:
    import numpy as np

    count = math.prod(header.shape)
    if count == 0:
        return np.zeros(header.shape, header.dtype, order=header.order)
    flat = np.frombuffer(data, dtype=header.dtype, count=count, offset=base + header.data_offset)
    return flat.reshape(header.shape, order=header.order)


def from_bytes(
    data: bytes,
    *,
    limits: Limits,
    path: str,
    member: str | None = None,
    kinds: str = NUMERIC_KINDS,
    limit: str = "array_bytes",
) -> Any:
    """The array of the ``.npy`` held in ``data``: a read-only view of it, no copy.

    The declared size is checked against ``limits.total_bytes``, ``limit`` and
    ``len(data)`` first.
    """
    header = parse_header(io.BytesIO(data), path=path, member=member, kinds=kinds)
    _check_size(header, len(data), limits, limit=limit, path=path, member=member)
    return _view(data, header)


def _memmap(file: OpenFile, header: NpyHeader, base: int) -> Any:
    import numpy as np

    if header.nbytes == 0:  # mmap cannot map zero bytes
        return np.zeros(header.shape, header.dtype, order=header.order)
    if header.order == "C" and len(header.shape) > 1:
        return FileArray(file, header, base)
    return map_array(file, header.dtype, base + header.data_offset, header.shape, header.order)


def map_array(file: OpenFile, dtype: Any, offset: int, shape: tuple[int, ...], order: str = "C") -> Any:
    """A read-only ``numpy.memmap`` of ``shape`` and ``dtype`` at ``offset`` of the open ``file``.

    The map holds the file itself (mmap duplicates its descriptor), never its path.
    The caller checks that the bytes lie inside the file.
    """
    import numpy as np

    with file.handle() as fh:  # the handle may close at once
        return np.memmap(fh, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)


class FileArray(NumpyLike):
    """A C-order ``.npy`` array on disk, read block by block with ``os.pread``.

    Indexing with leading integers (``a[t]``, ``a[t, :, :, c]``) reads only the
    contiguous block those integers select, into a fresh buffer: unlike a memory map,
    what was read does not stay in the process's resident memory, so a stack larger
    than memory streams with a small footprint.  Other keys go through a memory map.
    Reads go to the open file the array was made from (never reopened by name), by
    position, so threads may share the array.
    """

    def __init__(self, file: OpenFile, header: NpyHeader, base: int) -> None:
        self.file = file
        self.path = Path(file.name)
        self.shape = tuple(header.shape)
        self.dtype = header.dtype
        self.ndim = len(self.shape)
        self._start = base + header.data_offset
        self._header = header
        self._map: Any = None

    def __repr__(self) -> str:
        return f"FileArray({str(self.path)!r}, shape={self.shape}, dtype={self.dtype})"

    def _mapped(self) -> Any:

        if self._map is None:
            self._map = map_array(self.file, self.dtype, self._start, self.shape)
        return self._map

    def __getitem__(self, key: Any) -> Any:
        import numpy as np

        key = key if isinstance(key, tuple) else (key,)
        lead = 0
        while lead < len(key) and lead < self.ndim and isinstance(key[lead], (int, np.integer)):
            lead += 1
        if lead == 0:
            return self._mapped()[key]
        index = [int(k) + (self.shape[i] if int(k) < 0 else 0) for i, k in enumerate(key[:lead])]
        if any(not 0 <= k < self.shape[i] for i, k in enumerate(index)):
            raise IndexError(f"index {tuple(key[:lead])} out of range for shape {self.shape}")
        block_shape = self.shape[lead:]
        items = math.prod(block_shape)
        first = 0
        for i, k in enumerate(index):
            first = first * self.shape[i] + k
        nbytes = items * self.dtype.itemsize
        data = self.file.pread(nbytes, self._start + first * nbytes)
        if len(data) != nbytes:
            raise CorruptFileError("the array is cut short by the end of the file", path=str(self.path))
        block = np.frombuffer(data, self.dtype).reshape(block_shape)
        rest = key[lead:]
        return block[rest] if rest else block

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        import numpy as np

        out = np.array(self._mapped())
        return out if dtype is None else out.astype(dtype)

    def extent(self, key: Any) -> tuple[int, int, int, Any] | None:
        """Where ``self[key]`` lies in the file, byte for byte: ``(descriptor, offset, nbytes, dtype)``.

        For keys of leading integers and whole trailing axes (one C-order block); ``None``
        for any other key.  Lets a writer copy the block file to file (``os.copy_file_range``)
        instead of reading it into memory.
        """
        import numpy as np

        key = key if isinstance(key, tuple) else (key,)
        lead = 0
        while lead < len(key) and lead < self.ndim and isinstance(key[lead], (int, np.integer)):
            lead += 1
        if lead == 0 or any(k != slice(None) for k in key[lead:]) or len(key) > self.ndim:
            return None
        index = [int(k) + (self.shape[i] if int(k) < 0 else 0) for i, k in enumerate(key[:lead])]
        if any(not 0 <= k < self.shape[i] for i, k in enumerate(index)):
            raise IndexError(f"index {tuple(key[:lead])} out of range for shape {self.shape}")
        nbytes = math.prod(self.shape[lead:]) * self.dtype.itemsize
        first = 0
        for i, k in enumerate(index):
            first = first * self.shape[i] + k
        offset = self._start + first * nbytes
        if offset + nbytes > self.file.size:
            return None  # reading it says what is wrong
        return self.file.fileno(), offset, nbytes, self.dtype


def map_file(
    path: Path | str | OpenFile, *, limits: Limits, name: str | None = None, kinds: str = NUMERIC_KINDS
) -> Any:
    """Memory-map the ``.npy`` file ``path`` read-only (``name`` names it in errors; default ``path``).

    ``path`` may be an already open :class:`~dlformats.sources.OpenFile` (a source's
    :attr:`~dlformats.sources.Source.file`); a path is opened once.  Header, size and
    data all come from that one open file.  The declared size is checked against
    ``limits.total_bytes`` and the file's size.  The result holds no Python file
    handle: a map, or a :class:`FileArray` keeping the open file.
    """
    from ..sources import OpenFile

    name = name or (path.name if isinstance(path, OpenFile) else str(path))
    try:
        file = path if isinstance(path, OpenFile) else OpenFile.open(path)
        if file is None:
            raise CorruptFileError("not a regular file", path=name)
        with file.handle() as fh:
            header = parse_header(fh, path=name, kinds=kinds)
        size = file.size
    except OSError as exc:
        raise environment_error(exc, path=name, doing="reading") or CorruptFileError(
            f"cannot read: {exc.strerror or exc}", path=name
        ) from exc
    _check_size(header, size, limits, limit=None, path=name)
    return _memmap(file, header, 0)


def from_member(
    archive: SafeZip,
    member: str,
    *,
    limits: Limits | None = None,
    kinds: str = NUMERIC_KINDS,
    limit: str = "array_bytes",
) -> Any:
    """The array of the ``.npy`` member ``member`` of ``archive``.

    A member stored uncompressed in a zip on disk is memory-mapped in place (counted
    against ``total_bytes`` only: it streams).  Otherwise it is streamed with
    :func:`from_stream`: the header is decompressed and checked first (against
    ``limit`` too, and the member's declared size), then the data is decompressed
    straight into the array.  ``limits`` defaults to the archive's.
    """
    limits = limits or archive.limits
    name = archive.source.name
    where = {"path": name, "member": member}
    disk = archive.source.file  # the archive's own open file, never its path
    stored = archive.stored_range(member) if disk is not None else None
    if stored is not None:
        assert disk is not None
        offset, size = stored
        with disk.handle() as fh:
            fh.seek(offset)
            header = parse_header(fh, kinds=kinds, **where)
        _check_size(header, size, limits, limit=None, **where)
        return _memmap(disk, header, offset)
    with archive.stream(member) as fh:
        return from_stream(fh, fh.size, limits=limits, kinds=kinds, limit=limit, **where)


def _read_full(fh: IO[bytes], view: memoryview) -> int:
    """Fill ``view`` from ``fh`` a step at a time; the count is short only at the end of ``fh``."""
    done = 0
    while done < len(view):
        got = fh.readinto(view[done : done + _STEP])  # type: ignore[attr-defined]
        if not got:
            break
        done += got
    return done


def _read_head(fh: IO[bytes]) -> bytes:
    """The magic and header of an ``.npy`` from a stream, reading no data byte (and at most ``_HEAD_BYTES``)."""
    head = fh.read(len(_MAGIC) + 4)
    if len(head) < len(_MAGIC) + 4 or not head.startswith(_MAGIC):
        return head  # parse_header says what is wrong
    if head[6] == 1:
        size = int.from_bytes(head[8:10], "little")
    elif head[6] in (2, 3):
        head += fh.read(2)
        size = int.from_bytes(head[8:12], "little")
    else:
        return head
    return head + fh.read(min(size, _HEAD_BYTES))


def from_stream(
    fh: IO[bytes],
    size: int,
    *,
    limits: Limits,
    path: str,
    member: str | None = None,
    kinds: str = NUMERIC_KINDS,
    limit: str = "array_bytes",
) -> Any:
    """The array of an ``.npy`` of ``size`` bytes read from the stream ``fh`` (an archive member, say).

    Only the header is read before the checks: its declared data size against
    ``limits.total_bytes`` and ``limit``, and against ``size`` - the stream must hold
    exactly the header and the data it declares, no byte more or less.  Then the data
    is read straight into the array's own buffer (no second copy).  The array is
    read-only and has the file's dtype, shape and memory order.
    """
    import numpy as np

    where = {"path": path, "member": member}
    head = _read_head(fh)
    header = parse_header(io.BytesIO(head), kinds=kinds, **where)
    _check_size(header, size, limits, limit=limit, **where)
    body = size - header.data_offset
    if body > header.nbytes:
        raise CorruptFileError(
            f"holds {body:,} bytes after its header, which declares shape {header.shape} of {header.dtype} "
            f"({header.nbytes:,} bytes)",
            **where,
        )
    count = math.prod(header.shape)
    flat = np.empty(count, header.dtype)
    got = _read_full(fh, memoryview(flat.view(np.uint8)) if header.nbytes else memoryview(b""))
    if got != header.nbytes:
        raise CorruptFileError(f"data ends after {got:,} of the {header.nbytes:,} bytes its header declares", **where)
    if fh.read(1):
        raise CorruptFileError(f"holds more than the {header.nbytes:,} data bytes its header declares", **where)
    array = flat.reshape(header.shape, order=header.order)
    array.flags.writeable = False
    return array


def header_bytes(shape: tuple[int, ...], dtype: Any) -> bytes:
    """The magic and header ``numpy.save`` writes for a C-order array of ``shape`` and ``dtype``."""
    import numpy as np
    from numpy.lib import format as npformat

    out = io.BytesIO()
    descr = npformat.dtype_to_descr(np.dtype(dtype))
    npformat.write_array_header_1_0(
        out, {"descr": descr, "fortran_order": False, "shape": tuple(int(s) for s in shape)}
    )
    return out.getvalue()


def write_npy(out: IO[bytes], shape: tuple[int, ...], dtype: Any, blocks: Iterable[Any]) -> None:
    """Write an ``.npy`` (format 1.0, C order) of ``shape`` and ``dtype`` from consecutive C-ordered ``blocks``.

    Streams: only one block is in memory at a time.  Raises ``ValueError`` when the
    blocks do not add up to ``shape`` (a bug in the caller).
    """
    import numpy as np

    dtype = np.dtype(dtype)
    out.write(header_bytes(shape, dtype))
    written = 0
    for block in blocks:
        data = np.ascontiguousarray(block, dtype=dtype)
        out.write(data.tobytes())
        written += data.nbytes
    if written != math.prod(shape) * dtype.itemsize:
        raise ValueError(f"wrote {written} bytes for shape {shape} of {dtype}")


__all__ = [
    "NUMERIC_KINDS",
    "FileArray",
    "NpyHeader",
    "from_bytes",
    "from_member",
    "from_stream",
    "header_bytes",
    "map_array",
    "map_file",
    "parse_header",
    "write_npy",
]
