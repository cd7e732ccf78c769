"""The ``.npy`` container: header parsing with every size checked, zero-copy mapping, streamed writing.

Nothing here unpickles: the header is parsed with numpy's header readers (a
literal, not pickle), object and structured dtypes are refused, and the data is
mapped (``numpy.memmap`` on a file, ``numpy.frombuffer`` on bytes) only after the
declared ``prod(shape) * itemsize`` has been checked against the bytes present and
the limits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from dlformats.errors import CorruptFileError, DLFormatsError, UnsupportedFeatureError
from dlformats.limits import Limits

MAGIC = b"\x93NUMPY"
IMAGE_KINDS = "biuf"
"""dtype kinds accepted for pixel arrays: bool, signed and unsigned integers, floats."""


@dataclass(frozen=True)
class NpyHeader:
    """An ``.npy`` header: ``shape``, ``dtype``, memory order and where the data starts."""

    shape: tuple[int, ...]
    dtype: Any  # numpy.dtype
    fortran_order: bool
    data_offset: int  # bytes from the start of the .npy to its first data byte

    @property
    def nbytes(self) -> int:
        """Declared data size in bytes (Python ints: no overflow)."""
        return math.prod(self.shape) * self.dtype.itemsize


def parse_header(fh: IO[bytes], *, path: str, member: str | None = None) -> NpyHeader:
    """Read the magic and header of an ``.npy`` starting at ``fh``'s current position."""
    from numpy.lib import format as npformat

    where = {"path": path, "member": member}
    start = fh.tell()
    magic = fh.read(len(MAGIC))
    if magic != MAGIC:
        raise CorruptFileError(f"not a .npy array: starts with {magic!r}", **where)
    fh.seek(start)
    try:
        version = npformat.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):
            # 3.0 differs from 2.0 only in allowing UTF-8 field names, which we refuse anyway
            shape, fortran, dtype = npformat.read_array_header_2_0(fh)
        else:
            raise UnsupportedFeatureError(f".npy format version {version[0]}.{version[1]}", **where)
    except DLFormatsError:
        raise
    except Exception as exc:  # numpy raises ValueError/TypeError/SyntaxError for broken headers
        raise CorruptFileError(f"bad .npy header: {exc}", **where) from exc
    if any(s < 0 for s in shape):
        raise CorruptFileError(f".npy header declares a negative dimension in shape {shape}", **where)
    return NpyHeader(tuple(int(s) for s in shape), dtype, bool(fortran), fh.tell() - start)


def check_dtype(dtype: Any, *, kinds: str = IMAGE_KINDS, path: str, member: str | None = None) -> None:
    """Refuse object, structured and other dtypes not in ``kinds``, with a typed error."""
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
        accepted = {"b": "bool", "i": "int", "u": "uint", "f": "float", "U": "unicode string"}
        names = ", ".join(accepted[k] for k in kinds)
        raise UnsupportedFeatureError(f"dtype {dtype} is not supported (accepted: {names})", **where)


def check_size(
    header: NpyHeader,
    available: int,
    limits: Limits,
    *,
    in_memory: bool,
    limit: str = "array_bytes",
    path: str,
    member: str | None = None,
) -> None:
    """Check the declared size against the bytes present and the limits, before anything is allocated.

    ``available`` is the size of the whole ``.npy`` (file or archive member).  A mapped
    array counts against ``total_bytes`` only (it streams); one held in memory also
    against ``limit``.
    """
    where = {"path": path, "member": member}
    present = available - header.data_offset
    if header.nbytes > present:
        raise CorruptFileError(
            f"header declares shape {header.shape} of {header.dtype} ({header.nbytes:,} bytes) "
            f"but only {max(present, 0):,} bytes follow it",
            **where,
        )
    limits.check("total_bytes", header.nbytes, "array too large", **where)
    if in_memory:
        limits.check(limit, header.nbytes, "array too large to hold in memory", **where)


def from_buffer(data: bytes, header: NpyHeader, base: int = 0) -> Any:
    """A read-only view of an already size-checked array inside ``data`` (no copy)."""
    import numpy as np

    count = math.prod(header.shape)
    flat = np.frombuffer(data, dtype=header.dtype, count=count, offset=base + header.data_offset)
    return flat.reshape(header.shape, order="F" if header.fortran_order else "C")


def memory_map(path: Path, header: NpyHeader, base: int = 0) -> Any:
    """Map an already size-checked array of the file ``path`` whose ``.npy`` starts at byte ``base``."""
    import numpy as np

    if header.nbytes == 0:  # mmap cannot map zero bytes
        return np.empty(header.shape, header.dtype)
    return np.memmap(
        path,
        dtype=header.dtype,
        mode="r",
        offset=base + header.data_offset,
        shape=header.shape,
        order="F" if header.fortran_order else "C",
    )


def write_npy(out: IO[bytes], shape: tuple[int, ...], dtype: Any, blocks: Iterator[Any]) -> None:
    """Write an ``.npy`` (C order) of ``shape`` and ``dtype`` from consecutive C-ordered ``blocks``.

    Streams: only one block is in memory at a time.  Raises ``ValueError`` when the
    blocks do not add up to ``shape`` (a bug in the caller).
    """
    import numpy as np
    from numpy.lib import format as npformat

    dtype = np.dtype(dtype)
    npformat.write_array_header_1_0(
        out, {"descr": npformat.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
    )
    written = 0
    for block in blocks:
        data = np.ascontiguousarray(block, dtype=dtype)
        out.write(data.tobytes())
        written += data.nbytes
    if written != math.prod(shape) * dtype.itemsize:
        raise ValueError(f"wrote {written} bytes for shape {shape} of {dtype}")


def frames_last(array: Any, dtype: Any, plane: Callable[[int, int], Any] | None = None) -> Iterator[Any]:
    """Yield ``(height, width, channels)`` blocks, frame by frame, of a ``(C, F, H, W)`` array.

    ``plane(c, t)`` returns the plane to write (defaults to ``array[c, t]``).
    """
    import numpy as np

    get = plane or (lambda c, t: array[c, t])
    for t in range(int(array.shape[1])):
        yield np.stack([np.asarray(get(c, t)).astype(dtype, copy=False) for c in range(int(array.shape[0]))], axis=-1)
