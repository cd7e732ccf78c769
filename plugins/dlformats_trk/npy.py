"""``.npy`` members of a trk: checked loading from bytes, and streamed writing.

Loading never unpickles: the header is parsed with numpy's header readers (a
Python literal, not a pickle), only bool, integer and float dtypes are accepted,
and the data is viewed in place (``numpy.frombuffer``, no copy) only after the
declared ``prod(shape) * itemsize`` has been checked against the limits and
against the bytes present.  Writing produces the exact bytes ``numpy.save`` would
(format 1.0 header, C order), one frame at a time.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from typing import Any

from dlformats.errors import CorruptFileError, DLFormatsError, UnsupportedFeatureError
from dlformats.limits import Limits

KINDS = "biuf"
"""Accepted dtype kinds: bool, signed and unsigned integers, floats."""


def load_npy(data: bytes, *, limits: Limits, path: str, member: str) -> Any:
    """Return the array stored in ``data`` (a read-only view of it), after checking its header.

    Raises ``CorruptFileError`` for a broken or truncated header or data,
    ``UnsupportedFeatureError`` for object (pickled), structured or other dtypes,
    ``LimitExceededError`` when the declared size is over ``limits.array_bytes``.
    """
    import numpy as np
    from numpy.lib import format as npformat

    where = {"path": path, "member": member}
    fh = io.BytesIO(data)
    try:
        version = npformat.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):
            # 3.0 differs from 2.0 only by UTF-8 field names, refused below anyway
            shape, fortran, dtype = npformat.read_array_header_2_0(fh)
        else:
            raise UnsupportedFeatureError(f".npy format version {version[0]}.{version[1]}", **where)
    except DLFormatsError:
        raise
    except Exception as exc:  # numpy raises ValueError, TypeError or SyntaxError for broken headers
        raise CorruptFileError(f"bad .npy header: {exc}", **where) from exc
    if dtype.hasobject:
        raise UnsupportedFeatureError(
            "object arrays are refused: loading them would unpickle Python objects",
            hint="save numeric arrays (bool, int, uint or float); dlformats never unpickles",
            **where,
        )
    if dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in KINDS:
        raise UnsupportedFeatureError(f"dtype {dtype} is not supported (bool, int, uint or float)", **where)
    if any(s < 0 for s in shape):
        raise CorruptFileError(f"header declares a negative dimension in shape {shape}", **where)
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    limits.check("array_bytes", nbytes, "array too large to hold in memory", **where)
    offset = fh.tell()
    present = len(data) - offset
    if present != nbytes:
        raise CorruptFileError(
            f"header declares shape {tuple(shape)} of {dtype} ({nbytes:,} bytes) but {present:,} bytes follow it",
            **where,
        )
    if count == 0:
        return np.zeros(shape, dtype)
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)


def npy_header(shape: tuple[int, ...], dtype: Any) -> bytes:
    """The ``.npy`` magic and header ``numpy.save`` writes for a C-order array of ``shape`` and ``dtype``."""
    from numpy.lib import format as npformat

    out = io.BytesIO()
    d = {"descr": npformat.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(int(s) for s in shape)}
    npformat.write_array_header_1_0(out, d)
    return out.getvalue()


class ChunkReader:
    """A read-only file object over a stream of byte chunks (what ``tarfile.addfile`` pulls from).

    Lets a member of known size be written a frame at a time, never whole in memory.
    """

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._current = b""
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        """Return up to ``size`` bytes (all that is left when ``size`` is negative)."""
        parts: list[bytes] = []
        need = size
        while need != 0:
            if self._pos >= len(self._current):
                nxt = next(self._chunks, None)
                if nxt is None:
                    break
                self._current, self._pos = nxt, 0
                continue
            end = len(self._current) if need < 0 else self._pos + need
            piece = self._current[self._pos : end]
            self._pos += len(piece)
            if need > 0:
                need -= len(piece)
            parts.append(piece)
        return b"".join(parts)
