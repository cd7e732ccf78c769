"""Raw ``.dat`` buffers whose shape is declared in a JSON file beside them (DeepCell Label's browser client).

The browser client cannot write TIFF, so it sends the server zips holding raw
array bytes (``labeled.dat``, ``raw.dat``: C order, little-endian) and a JSON file
(``dimensions.json`` or ``edit.json``) giving their sizes and, for the image, its
JavaScript typed-array name.  This module checks such declarations strictly and
reads a buffer only after its expected byte length (computed with Python ints, so
it cannot overflow) equals the member's declared size and fits the
:class:`~dlformats.limits.Limits`.

numpy is imported inside the functions that need it.
"""

from __future__ import annotations

import math
import zlib
from typing import TYPE_CHECKING, Any

from ..errors import CorruptFileError, UnsupportedFeatureError

if TYPE_CHECKING:
    import numpy as np

    from .archive import SafeZip

JS_DTYPES: dict[str, str] = {
    "Uint8Array": "<u1",
    "Uint8ClampedArray": "<u1",
    "Int8Array": "<i1",
    "Uint16Array": "<u2",
    "Int16Array": "<i2",
    "Uint32Array": "<u4",
    "Int32Array": "<i4",
    "Float32Array": "<f4",
    "Float64Array": "<f8",
}
"""JavaScript typed-array names the client may send, and the little-endian numpy dtype each holds."""

_CHUNK = 1 << 22


def js_dtype(name: Any, *, path: str | None = None, member: str | None = None) -> np.dtype:
    """The little-endian numpy dtype of JavaScript typed-array ``name`` (``"Uint16Array"`` -> ``<u2``).

    Raises :class:`CorruptFileError` when ``name`` is not a string and
    :class:`UnsupportedFeatureError` when it is an unknown name; both list the known names.
    """
    import numpy as np

    known = ", ".join(n for n in JS_DTYPES if n != "Uint8ClampedArray")
    if not isinstance(name, str):
        raise CorruptFileError(
            f"'dtype' must be a typed-array name ({known}), found {name!r}", path=path, member=member
        )
    if name not in JS_DTYPES:
        raise UnsupportedFeatureError(f"dtype {name!r} is not one of {known}", path=path, member=member)
    return np.dtype(JS_DTYPES[name])


def js_dtype_name(dtype: Any) -> str | None:
    """The JavaScript typed-array name holding numpy ``dtype`` (any byte order), or ``None`` if there is none."""
    import numpy as np

    little = np.dtype(dtype).newbyteorder("<")
    for name, code in JS_DTYPES.items():
        if np.dtype(code) == little and name != "Uint8ClampedArray":
            return name
    return None


def positive_int(obj: dict[str, Any], key: str, *, path: str | None = None, member: str | None = None) -> int:
    """``obj[key]`` as a positive ``int``; a missing key, a bool, a float or a value < 1 is a ``CorruptFileError``."""
    if key not in obj:
        raise CorruptFileError(f"lacks {key!r} (expected a positive integer)", path=path, member=member)
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CorruptFileError(
            f"{key!r} must be a positive integer, found {value!r} ({type(value).__name__})", path=path, member=member
        )
    return value


def check_size(archive: SafeZip, member: str, shape: tuple[int, ...], dtype: Any, *, declared_by: str) -> int:
    """Check that zip member ``member`` declares the size of a ``shape`` array of ``dtype``; return that size.

    Reads nothing.  Raises :class:`CorruptFileError` saying the expected and found
    byte counts (and what declared the shape: ``declared_by``) when they differ, and
    :class:`LimitExceededError` when the size is over ``limits.array_bytes``.
    """
    import numpy as np

    itemsize = np.dtype(dtype).itemsize
    expected = math.prod(int(s) for s in shape) * itemsize
    found = archive.info(member).file_size
    where = {"path": archive.source.name, "member": member}
    if found != expected:
        dims = " x ".join(str(s) for s in shape)
        raise CorruptFileError(
            f"holds {found:,} bytes, expected {expected:,} "
            f"({dims} values of {itemsize} bytes, as {declared_by} declares)",
            **where,
        )
    archive.limits.check("array_bytes", expected, "buffer too large", **where)
    return expected


def read_buffer(
    archive: SafeZip,
    member: str,
    shape: tuple[int, ...],
    dtype: Any,
    *,
    declared_by: str,
) -> np.ndarray:
    """Read zip member ``member`` as a C-order array of ``shape`` and little-endian ``dtype``.

    Before anything is read, :func:`check_size` compares the expected byte length
    ``prod(shape) * itemsize`` with the member's declared size and with
    ``limits.array_bytes``.  An uncompressed
    member of a zip on disk is memory-mapped in place (its CRC checked first, in
    chunks); otherwise it is decompressed into memory.  The result is read-only and
    in native byte order.
    """
    import numpy as np

    source = archive.source
    where = {"path": source.name, "member": member}
    dtype = np.dtype(dtype)
    expected = check_size(archive, member, shape, dtype, declared_by=declared_by)
    info = archive.info(member)
    disk = source.file  # the archive's own open file: never reopened by its path
    stored = archive.stored_range(member) if disk is not None and dtype.isnative else None
    if stored is not None and info.compress_size == expected:
        assert disk is not None
        offset, _ = stored
        _check_crc(source, offset, expected, info.CRC, where)
        from .npyio import map_array

        return map_array(disk, dtype, offset, shape)
    data = archive.read(member)
    if len(data) != expected:  # the zip's own size field lied; never reshape a short buffer
        raise CorruptFileError(f"holds {len(data):,} bytes, expected {expected:,}", **where)
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    return array if dtype.isnative else array.astype(dtype.newbyteorder("="))


def _check_crc(source: Any, offset: int, size: int, crc: int, where: dict[str, Any]) -> None:
    value = 0
    with source.open() as fh:
        fh.seek(offset)
        left = size
        while left:
            chunk = fh.read(min(_CHUNK, left))
            if not chunk:
                raise CorruptFileError("member truncated", **where)
            value = zlib.crc32(chunk, value)
            left -= len(chunk)
    if value != crc:
        raise CorruptFileError(f"bad CRC-32: {value:08x}, the archive says {crc:08x}", **where)


__all__ = ["JS_DTYPES", "check_size", "js_dtype", "js_dtype_name", "positive_int", "read_buffer"]
