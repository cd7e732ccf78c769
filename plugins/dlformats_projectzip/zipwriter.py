"""A zip writer whose members can be written in place by a seekable writer (such as tifffile).

Python's ``zipfile`` only offers members as forward-only streams, so a TIFF (whose
writer seeks back to patch offsets) would have to be built in a temporary file and
copied in.  :class:`ZipWriter` instead hands out the archive's own file handle,
positioned where the member's bytes go; tifffile writes an embedded TIFF whose
offsets are relative to that position.  The member's CRC-32 is computed from the
writes as they pass (seeks, holes and patches included: see :class:`MemberFile`),
never by reading the member back, and its header patched.  ZIP64 records are
written where sizes or offsets need them, so members and archives over 4 GiB work.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

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
    def member(self, name: str) -> Iterator[MemberFile]:
        """Yield a file positioned at the data of a new stored member, for a seekable writer.

        Write the member's bytes through it (seeking within them is fine; never before
        the start position).  On exit the member ends at the furthest byte written;
        its CRC-32 comes from the writes themselves.
        """
        entry = self._start(name, _STORED)
        self.fh.write(self._local_header(entry))
        start = self.fh.tell()
        self._open = True
        member = MemberFile(self.fh, start)
        try:
            yield member
        finally:
            self._open = False
        end = self.fh.seek(0, 2)
        entry.usize = entry.csize = end - start
        entry.crc = member.crc32(end - start)
        self.fh.seek(entry.offset)
        self.fh.write(self._local_header(entry))
        self.fh.seek(end)
        self.entries.append(entry)

    def add(self, name: str, data: bytes | Deflated, *, compress: bool = True) -> None:
        """Add a member holding ``data``, deflated unless ``compress=False`` (or already :func:`deflated`)."""
        if isinstance(data, Deflated):
            entry = self._start(name, _DEFLATED)
            payload = data.payload
            entry.crc, entry.usize, entry.csize = data.crc, data.size, len(payload)
        else:
            entry = self._start(name, _DEFLATED if compress else _STORED)
            payload = deflated(data).payload if compress else data
            entry.crc, entry.usize, entry.csize = crc32(data), len(data), len(payload)
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


# ------------------------------------------------------------------ checksums
@dataclass(frozen=True)
class Deflated:
    """A member's content deflated ahead of time (e.g. on another thread), for :meth:`ZipWriter.add`."""

    payload: bytes
    crc: int
    size: int


def deflated(data: bytes, level: int = 1) -> Deflated:
    """``data`` as a raw deflate stream with its CRC-32 (libdeflate when imagecodecs has it: faster and
    smaller than zlib's level 6 at its level 1)."""
    try:
        from imagecodecs import deflate_encode

        payload = deflate_encode(data, level=level, raw=True)
    except (ImportError, AttributeError, RuntimeError):  # pragma: no cover - imagecodecs without libdeflate
        packer = zlib.compressobj(level, zlib.DEFLATED, -15)
        payload = packer.compress(data) + packer.flush()
    return Deflated(bytes(payload), crc32(data), len(data))


def crc32(data: Any, value: int = 0) -> int:
    """CRC-32 of a bytes-like object, continuing from ``value`` (libdeflate's when available; the GIL is released)."""
    return _crc32()(data, value)


def _crc32() -> Any:
    global _CRC32
    if _CRC32 is None:
        try:
            from imagecodecs import deflate_crc32

            deflate_crc32(b"", 0)
            _CRC32 = deflate_crc32
        except (ImportError, AttributeError, RuntimeError, TypeError):  # pragma: no cover
            _CRC32 = zlib.crc32
    return _CRC32


_CRC32: Any = None
_POLY = 0xEDB88320
_ZERO_BYTES_LOCK = threading.Lock()
_ZERO_BYTES: list[list[int]] = []  # _ZERO_BYTES[k]: the CRC register's map over 2**k zero bytes (GF(2) 32x32)


def _times(matrix: list[int], vector: int) -> int:
    total, row = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[row]
        vector >>= 1
        row += 1
    return total


def _square(matrix: list[int]) -> list[int]:
    return [_times(matrix, column) for column in matrix]


def _over_zeros(register: int, count: int) -> int:
    """The CRC register after ``count`` zero bytes: a product of at most 64 precomputed matrices."""
    k = 0
    while count:
        if len(_ZERO_BYTES) <= k:
            with _ZERO_BYTES_LOCK:  # threads extend the table one at a time, in order
                while len(_ZERO_BYTES) <= k:
                    if _ZERO_BYTES:
                        _ZERO_BYTES.append(_square(_ZERO_BYTES[-1]))
                    else:
                        one_bit = [_POLY] + [1 << n for n in range(31)]
                        _ZERO_BYTES.append(_square(_square(_square(one_bit))))
        if count & 1:
            register = _times(_ZERO_BYTES[k], register)
        count >>= 1
        k += 1
    return register


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """CRC-32 of ``a + b`` from ``crc32(a)``, ``crc32(b)`` and ``len(b)`` (zlib's crc32_combine), in O(log length)."""
    return _over_zeros(crc1, length2) ^ crc2


def crc32_zeros(count: int, value: int = 0) -> int:
    """``crc32(bytes(count), value)`` without the bytes."""
    return _over_zeros(value ^ 0xFFFFFFFF, count) ^ 0xFFFFFFFF


_WRITE_BACK = 16 << 20  # bytes of a member handed to the disk at a time
_KEEP = 4096  # writes up to this size are kept, so that later patches over them are applied in memory


class MemberFile(io.RawIOBase):
    """The archive's file seen from one member: positions are the archive's, writes pass through
    and are logged with their CRC-32 (small ones with their bytes).

    :meth:`crc32` then assembles the member's CRC from the log: later writes over earlier
    ones win (small overlaps are painted in memory), never-written gaps are zeros, and
    large writes join through :func:`crc32_combine`.  Only a large write that something
    later overwrote is read back from the file.  ``fileno()`` is unsupported on purpose:
    writes that bypass :meth:`write` could not be checksummed.
    """

    def __init__(self, fh: BinaryIO, start: int) -> None:
        super().__init__()
        self._fh = fh
        self._start = start
        self._log: list[tuple[int, int, int, int, bytes | None]] = []  # start, end, order, crc, bytes
        self._run = (start, start)  # the current run of consecutive writes not yet handed to the disk
        self.name = getattr(fh, "name", "zip member")
        self.mode = "w+b"

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        raise io.UnsupportedOperation("a zip member has no file descriptor of its own")

    def tell(self) -> int:
        return self._fh.tell()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._fh.seek(offset, whence)

    def flush(self) -> None:
        if not self._fh.closed:  # also called when this view is garbage collected, maybe after the archive
            self._fh.flush()

    def read(self, size: int | None = -1) -> bytes:
        return self._fh.read(-1 if size is None else size)

    def readinto(self, buffer: Any) -> int:
        return self._fh.readinto(buffer)  # type: ignore[attr-defined]

    @property
    def start(self) -> int:
        """Where the member's bytes start in the archive (positions are the archive's)."""
        return self._start

    def write(self, data: Any, *, crc: int | None = None) -> int:
        """Write ``data`` (any C-contiguous buffer) at the current position; ``crc``, when
        the caller computed it already (e.g. on another thread), is its CRC-32."""
        view = memoryview(data).cast("B")
        at = self._fh.tell() - self._start
        if at < 0:
            raise ValueError("cannot write before the start of the member")
        written = self._fh.write(view)
        if written is None or written != len(view):
            raise OSError(f"short write to zip member: {written} of {len(view)} bytes")
        if len(view):
            kept = bytes(view) if len(view) <= _KEEP else None
            self._log.append((at, at + len(view), len(self._log), crc32(view) if crc is None else crc, kept))
            first, last = self._run
            here = self._start + at
            first = first if here == last else here  # a seek starts another run
            last = here + len(view)
            if last - first >= _WRITE_BACK and self._write_back(first, last):
                first = last
            self._run = (first, last)
        return len(view)

    def copy_from(self, fd: int, offset: int, nbytes: int, crc: int) -> None:
        """Write ``nbytes`` of the file ``fd`` from ``offset`` here, file to file (``os.copy_file_range``:
        the kernel copies, nothing passes through memory here), whose CRC-32 the caller computed.

        Where the kernel cannot copy (another file system, an old kernel), the bytes are read
        and written in 8 MiB blocks instead.  Raises ``OSError`` when ``fd`` holds fewer bytes.
        """
        self._fh.flush()
        at = self._fh.tell()
        if at < self._start:
            raise ValueError("cannot write before the start of the member")
        done = 0
        copy = getattr(os, "copy_file_range", None)
        try:
            out = self._fh.fileno()
        except (OSError, AttributeError, ValueError):
            copy = None
        while copy is not None and done < nbytes:
            try:
                step = copy(fd, out, nbytes - done, offset + done, at + done)
            except OSError:
                if done:
                    raise
                copy = None  # EXDEV, ENOSYS, EINVAL...: read and write instead
                break
            if step == 0:
                raise OSError(f"the source ends {nbytes - done} bytes before the data to copy")
            done += step
        self._fh.seek(at + done)
        while done < nbytes:
            block = os.pread(fd, min(8 << 20, nbytes - done), offset + done)
            if not block:
                raise OSError(f"the source ends {nbytes - done} bytes before the data to copy")
            self._fh.write(block)
            done += len(block)
        relative = at - self._start
        self._log.append((relative, relative + nbytes, len(self._log), crc, None))
        first, last = self._run
        first = first if at == last else at
        last = at + nbytes
        if last - first >= _WRITE_BACK and self._write_back(first, last):
            first = last
        self._run = (first, last)

    def _write_back(self, first: int, last: int) -> bool:
        """Have the kernel start writing ``[first, last)`` to disk now and drop it from the page cache.

        A large member otherwise sits in the page cache as dirty pages until the final
        fsync, which then waits for all of it (and the kernel throttles the writer on
        the way); written back as it goes, the disk works while the pixels are copied.
        """
        advise = getattr(os, "posix_fadvise", None)
        if advise is None:
            return False
        try:
            self._fh.flush()
            advise(self._fh.fileno(), first, last - first, os.POSIX_FADV_DONTNEED)
        except (OSError, AttributeError, ValueError):  # no descriptor (an in-memory file): nothing to hand over
            return False
        return True

    def crc32(self, size: int) -> int:
        """The CRC-32 of the member's first ``size`` bytes, from the log of writes."""
        crc, at = 0, 0
        for start, end, value, data in self._pieces():
            if start >= size:
                break
            if start > at:
                crc = crc32_zeros(start - at, crc)
            if end > size:  # cannot happen: the member ends at its furthest byte
                raise OSError("zip member is shorter than written")
            crc = crc32(data, crc) if data is not None else crc32_combine(crc, value, end - start)
            at = end
        return crc32_zeros(size - at, crc) if size > at else crc

    def _pieces(self) -> Iterator[tuple[int, int, int, bytes | None]]:
        """Disjoint ``(start, end, crc, bytes or None)`` pieces of the final content, in order."""
        cluster: list[tuple[int, int, int, int, bytes | None]] = []
        reach = -1
        for write in sorted(self._log):
            if cluster and write[0] >= reach:
                yield from self._resolve(cluster)
                cluster = []
            cluster.append(write)
            reach = max(reach, write[1]) if len(cluster) > 1 else write[1]
        if cluster:
            yield from self._resolve(cluster)

    def _resolve(self, cluster: list[tuple[int, int, int, int, bytes | None]]) -> Iterator[Any]:
        """One piece from overlapping writes: the last write wins."""
        if len(cluster) == 1:
            start, end, _, value, data = cluster[0]
            yield start, end, value, data
            return
        # a write entirely covered by a later one leaves no trace
        live = [w for w in cluster if not any(o[2] > w[2] and o[0] <= w[0] and o[1] >= w[1] for o in cluster)]
        low, high = min(w[0] for w in live), max(w[1] for w in live)
        if len(live) == 1:
            yield live[0][0], live[0][1], live[0][3], live[0][4]
            return
        if all(w[4] is not None for w in live):
            painted = bytearray(high - low)
            for start, end, _, _, data in sorted(live, key=lambda w: w[2]):
                painted[start - low : end - low] = data  # type: ignore[assignment]
            yield low, high, 0, bytes(painted)
            return
        # a large write partly overwritten later: its bytes are read back (never happens with tifffile)
        here = self._fh.tell()
        self._fh.seek(self._start + low)
        data = self._fh.read(high - low)
        self._fh.seek(here)
        if len(data) != high - low:
            raise OSError("zip member is shorter than written")
        yield low, high, 0, data


def crc32_of_file(fd: int, offset: int, nbytes: int) -> int:
    """CRC-32 of ``nbytes`` of the file ``fd`` from ``offset``, read through a memory map (no copy),
    unmapped at once so that the pages do not stay resident."""
    import mmap

    if nbytes == 0:
        return 0
    skip = offset % mmap.ALLOCATIONGRANULARITY
    with mmap.mmap(fd, nbytes + skip, prot=mmap.PROT_READ, offset=offset - skip) as mapped:
        with memoryview(mapped) as view:
            return crc32(view[skip:])
