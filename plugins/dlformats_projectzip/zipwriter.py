"""A zip writer whose members can be written in place by a seekable writer (such as tifffile).

Python's ``zipfile`` only offers members as forward-only streams, so a TIFF (whose
writer seeks back to patch offsets) would have to be built in a temporary file and
copied in.  :class:`ZipWriter` instead hands out the archive's own file handle,
positioned where the member's bytes go; tifffile writes an embedded TIFF whose
offsets are relative to that position.  The member is then checksummed by reading
it back and its header patched.  ZIP64 records are written where sizes or offsets
need them, so members and archives over 4 GiB work.
"""

from __future__ import annotations

import contextlib
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
_END = struct.Struct("<4sHHHHIIH")
_END64 = struct.Struct("<4sQHHIIQQQQ")
_LOCATOR64 = struct.Struct("<4sIQI")
_MAX32 = 0xFFFFFFFF
_UTF8 = 0x800
_STORED, _DEFLATED = 0, 8


@dataclass
class _Entry:
    name: bytes
    flags: int
    method: int
    dostime: int
    dosdate: int
    crc: int
    csize: int
    usize: int
    offset: int


def _dos_time() -> tuple[int, int]:
    t = time.localtime()
    year = max(t.tm_year, 1980)
    return (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2), ((year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday


class ZipWriter:
    """Write a zip archive to an open, seekable binary file, member by member.

    Use :meth:`member` to let a seekable writer fill a stored member in place, and
    :meth:`add` for bytes (deflated by default).  :meth:`close` writes the central
    directory; the file handle stays the caller's.
    """

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.entries: list[_Entry] = []
        self._names: set[str] = set()
        self._open = False

    def _start(self, name: str, method: int) -> _Entry:
        if self._open:
            raise RuntimeError("a member is still being written")
        if name in self._names:
            raise ValueError(f"duplicate member {name!r}")
        self._names.add(name)
        encoded = name.encode("utf-8")
        flags = 0 if name.isascii() else _UTF8
        dostime, dosdate = _dos_time()
        return _Entry(encoded, flags, method, dostime, dosdate, 0, 0, 0, self.fh.tell())

    def _local_header(self, entry: _Entry) -> bytes:
        # Local headers always carry a ZIP64 field: the size is not known when they are written.
        extra = struct.pack("<HHQQ", 1, 16, entry.usize, entry.csize)
        return (
            _LOCAL.pack(
                b"PK\x03\x04", 45, entry.flags, entry.method, entry.dostime, entry.dosdate,
                entry.crc, _MAX32, _MAX32, len(entry.name), len(extra),
            )
            + entry.name
            + extra
        )  # fmt: skip

    @contextlib.contextmanager
    def member(self, name: str) -> Iterator[BinaryIO]:
        """Yield the archive's file handle positioned at the data of a new stored member.

        Write the member's bytes through it (seeking within them is fine; never before
        the start position).  On exit the member ends at the furthest byte written.
        """
        entry = self._start(name, _STORED)
        self.fh.write(self._local_header(entry))
        start = self.fh.tell()
        self._open = True
        try:
            yield self.fh
        finally:
            self._open = False
        end = self.fh.seek(0, 2)
        entry.usize = entry.csize = end - start
        crc = 0
        self.fh.seek(start)
        left = entry.usize
        while left:
            chunk = self.fh.read(min(left, 8 << 20))
            if not chunk:
                raise OSError(f"zip member {name!r} is shorter than written")
            crc = zlib.crc32(chunk, crc)
            left -= len(chunk)
        entry.crc = crc
        self.fh.seek(entry.offset)
        self.fh.write(self._local_header(entry))
        self.fh.seek(end)
        self.entries.append(entry)

    def add(self, name: str, data: bytes, *, compress: bool = True) -> None:
        """Add a member holding ``data``, deflated unless ``compress=False``."""
        entry = self._start(name, _DEFLATED if compress else _STORED)
        if compress:
            packer = zlib.compressobj(6, zlib.DEFLATED, -15)
            payload = packer.compress(data) + packer.flush()
        else:
            payload = data
        entry.crc, entry.usize, entry.csize = zlib.crc32(data), len(data), len(payload)
        self.fh.write(self._local_header(entry))
        self.fh.write(payload)
        self.entries.append(entry)

    def close(self) -> None:
        """Write the central directory and the end records."""
        start = self.fh.tell()
        for e in self.entries:
            big = [v for v in (e.usize, e.csize, e.offset) if v >= _MAX32]
            extra = struct.pack(f"<HH{len(big)}Q", 1, 8 * len(big), *big) if big else b""
            self.fh.write(
                _CENTRAL.pack(
                    b"PK\x01\x02", (3 << 8) | 45, 45, e.flags, e.method, e.dostime, e.dosdate, e.crc,
                    min(e.csize, _MAX32), min(e.usize, _MAX32), len(e.name), len(extra), 0, 0, 0,
                    0o100644 << 16, min(e.offset, _MAX32),
                )
                + e.name
                + extra
            )  # fmt: skip
        end = self.fh.tell()
        size, count = end - start, len(self.entries)
        if start >= _MAX32 or size >= _MAX32 or count >= 0xFFFF:
            self.fh.write(_END64.pack(b"PK\x06\x06", 44, (3 << 8) | 45, 45, 0, 0, count, count, size, start))
            self.fh.write(_LOCATOR64.pack(b"PK\x06\x07", 0, end, 1))
        entries = min(count, 0xFFFF)
        self.fh.write(_END.pack(b"PK\x05\x06", 0, 0, entries, entries, min(size, _MAX32), min(start, _MAX32), 0))
