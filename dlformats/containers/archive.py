"""Zip and tar archives read member by member, in memory, never extracted.

Both classes refuse, when opened: too many entries; absolute, ``..``, backslash,
drive-letter, NUL or control-character names, and names over 4096 characters;
names that collide after case-folding and Unicode NFC normalisation; links,
devices and FIFOs; encrypted zip entries and unknown compression methods.  macOS
junk (``__MACOSX/``, ``._*``, ``.DS_Store``) and directories are skipped, and when
every member sits in one enclosing folder that folder is stripped from
:attr:`names`.

Members are streamed (:class:`MemberStream`): decompressed at most 1 MiB at a
time, never past the size the archive declares for them, checked to hold exactly
that size (and, in a zip, its CRC-32).  A reader checks a member's header (an
``.npy`` shape, say) against :class:`~dlformats.limits.Limits` from its first bytes,
before the rest is decompressed, and then decompresses straight into the buffer
the content needs; :meth:`SafeZip.read` and :meth:`SafeTar.read` hold a whole
member as bytes only after checking its declared size against a limit.
"""

from __future__ import annotations

import io
import stat
import threading
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from ..errors import CorruptFileError, DLFormatsError, UnsafeArchiveError, UnsupportedFeatureError, environment_error

if TYPE_CHECKING:
    import bz2
    import gzip
    import lzma
    import tarfile

    from ..limits import Limits
    from ..sources import Source

_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


def _tar_errors() -> tuple[type[BaseException], ...]:
    """What tarfile lets through from a damaged tar or a broken gzip or xz stream (a trk fuzz finding:
    zlib.error escaped); tarfile and lzma load when a tar is met, not at start-up."""
    import lzma
    import tarfile

    return (tarfile.TarError, OSError, EOFError, ValueError, zlib.error, lzma.LZMAError)


_ARCHIVE_SUFFIXES = (".zip", ".npz", ".tar", ".gz", ".tgz", ".trk", ".trks", ".7z", ".rar", ".bz2", ".xz")
_CHUNK = 1 << 20
"""Most bytes a member stream decompresses in one step (what a read holds beyond its destination)."""
_IN_CHUNK = 1 << 16  # compressed bytes fed to a decompressor at a time
_MAX_NAME = 4096  # PATH_MAX: a longer member name is never a real file's
_TAR_HEADER_BYTES = 1 << 20  # header bytes (blocks, pax records, GNU long names, sparse maps) of one tar member
_TAR_TAIL_BYTES = 1 << 20  # bytes read past a compressed tar's end-of-archive blocks to check its trailer
_TAR_NAME_BYTES = 32 << 20  # all member names of a tar together (kept for the checks; they compress very well)
_TAR_BLOCK = 512


def _is_junk(name: str) -> bool:
    """True for members that carry no data: directories, macOS resource forks, ``.DS_Store``."""
    parts = name.split("/")
    base = parts[-1]
    return name.endswith("/") or parts[0] == "__MACOSX" or base.startswith("._") or base in (".DS_Store", "Thumbs.db")


def _check_member_name(name: str, *, path: str) -> None:
    """Raise :class:`UnsafeArchiveError` for a name that could escape a folder or confuse a reader."""
    bad = None
    if not name:
        bad = "empty name"
    elif len(name) > _MAX_NAME:
        bad = f"name of {len(name):,} characters"
    elif name.startswith("/") or name.startswith("\\"):
        bad = "absolute path"
    elif "\\" in name:
        bad = "backslash in name"
    elif len(name) >= 2 and name[1] == ":":
        bad = "drive letter in name"
    elif any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        bad = "control character in name"
    elif any(part in ("..", ".") for part in name.rstrip("/").split("/")):
        bad = "'..' or '.' path component"
    if bad:
        shown = name if len(name) <= 200 else name[:200] + "..."
        raise UnsafeArchiveError(f"unsafe member name ({bad})", path=path, member=repr(shown))


def _fold(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


def _strip_common_folder(names: list[str]) -> tuple[str, list[str]]:
    if not names or any("/" not in n for n in names):
        return "", names
    first = names[0].split("/", 1)[0]
    if all(n.split("/", 1)[0] == first for n in names):
        prefix = first + "/"
        return prefix, [n[len(prefix) :] for n in names]
    return "", names


def refuse_nested(archive: SafeZip | SafeTar) -> None:
    """Raise :class:`UnsafeArchiveError` if a data member of ``archive`` is itself an archive.

    Formats whose members are known (project, export and edit zips, trk) call this:
    an archive inside one is never read, and refusing it beats ignoring it silently.
    """
    for name in archive.names:
        if name.lower().endswith(_ARCHIVE_SUFFIXES):
            raise UnsafeArchiveError("nested archive member refused", path=archive.source.name, member=name)


class _Members:
    """Shared bookkeeping: logical names (prefix stripped) to real member names."""

    def __init__(self, raw: list[str], *, path: str, limits: Limits) -> None:
        limits.check("archive_entries", len(raw), "too many archive entries", path=path)
        seen: dict[str, str] = {}
        files = []
        for name in raw:
            _check_member_name(name, path=path)
            key = _fold(name.rstrip("/"))
            if key in seen:
                raise UnsafeArchiveError(
                    f"ambiguous archive: {seen[key]!r} and {name!r} are the same name", path=path, member=name
                )
            seen[key] = name
            if not _is_junk(name):
                files.append(name)
        self.prefix, self.names = _strip_common_folder(files)
        self.known = frozenset(self.names)

    def real(self, name: str) -> str:
        return self.prefix + name


class _Pieces(Protocol):
    """Where a :class:`MemberStream` takes its bytes from: a member's decompressed content, in order."""

    def next(self, limit: int) -> bytes:
        """The next 1 to ``limit`` bytes of content; ``b""`` when there is no more."""
        ...

    def close(self) -> None:
        """Release what the pieces hold."""
        ...


class MemberStream:
    """The content of one archive member, decompressed at most 1 MiB at a time.

    Gives exactly the ``size`` bytes the archive declares for the member: content that
    ends before, or goes on after, that size raises :class:`CorruptFileError` naming the
    member, as do a bad CRC-32 (zip) and any error of the decompressor.  The checks on
    the end of the member run as its last byte is read, so a reader that reads the
    declared size has all of them.  Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, pieces: _Pieces, size: int, *, path: str, member: str, crc: int | None = None) -> None:
        self.size = size
        self._pieces = pieces
        self._where = {"path": path, "member": member}
        self._crc = crc
        self._running = 0
        self._pos = 0
        self._finished = False

    def _next(self, limit: int) -> bytes:
        try:
            return self._pieces.next(limit)
        except DLFormatsError:
            raise
        except MemoryError:
            raise
        except Exception as exc:  # zlib.error, lzma.LZMAError, OSError, EOFError, tarfile.ReadError...
            raise CorruptFileError(f"cannot decompress member: {exc}", **self._where) from exc

    def _piece(self, limit: int) -> bytes:
        data = self._next(min(limit, self.size - self._pos, _CHUNK))
        if not data:
            raise CorruptFileError(f"member ends after {self._pos:,} of its {self.size:,} bytes", **self._where)
        if self._crc is not None:
            self._running = _crc32(data, self._running)
        self._pos += len(data)
        if self._pos == self.size:
            self._finish()
        return data

    def _finish(self) -> None:
        self._finished = True
        if self._next(1):
            raise CorruptFileError(f"member holds more than its declared {self.size:,} bytes", **self._where)
        if self._crc is not None and self._running != self._crc:
            raise CorruptFileError(f"bad CRC-32 {self._running:08x}, the archive says {self._crc:08x}", **self._where)

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that is left when ``size`` is negative), fewer only at the end."""
        if size < 0 and self._pos == 0 and self.size > 0 and not self._finished:
            whole = self._whole()
            if whole is not None:
                return whole
        left = self.size - self._pos
        want = left if size < 0 else min(size, left)
        if want == 0:
            if not self._finished and left == 0:
                self._finish()
            return b""
        first = self._piece(want)
        if len(first) == want:
            return first
        out = io.BytesIO()  # grows in place: no second copy of a large read
        out.write(first)
        done = len(first)
        while done < want:
            piece = self._piece(want - done)
            out.write(piece)
            done += len(piece)
        return out.getvalue()

    def _whole(self) -> bytes | None:
        """The whole member in one step where the pieces allow it (a deflated zip member: libdeflate,
        several times zlib's speed), with the same checks as piece by piece; else ``None``."""
        whole = getattr(self._pieces, "whole", None)
        if whole is None:
            return None
        try:
            data = whole(self.size)
        except DLFormatsError:
            raise
        except MemoryError:
            raise
        except Exception as exc:  # imagecodecs.DeflateError...
            if "INSUFFICIENT_SPACE" in str(exc):  # more than size + 1 bytes came out
                more = f"member holds more than its declared {self.size:,} bytes"
                raise CorruptFileError(more, **self._where) from None
            raise CorruptFileError(f"cannot decompress member: {exc}", **self._where) from exc
        if data is None:
            return None
        if len(data) < self.size:
            raise CorruptFileError(f"member ends after {len(data):,} of its {self.size:,} bytes", **self._where)
        if len(data) > self.size:
            raise CorruptFileError(f"member holds more than its declared {self.size:,} bytes", **self._where)
        if self._crc is not None:
            self._running = _crc32(data)
        self._pos = self.size
        self._finished = True
        if self._crc is not None and self._running != self._crc:
            raise CorruptFileError(f"bad CRC-32 {self._running:08x}, the archive says {self._crc:08x}", **self._where)
        return data

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` (a writable bytes-like object) from the stream; return the count (short only at the end)."""
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self.size:
            piece = self._piece(len(view) - done)
            view[done : done + len(piece)] = piece
            done += len(piece)
        if done < len(view) and not self._finished:
            self._finish()
        return done

    def close(self) -> None:
        """Release the member's decompressor and file handle."""
        self._pieces.close()

    def __enter__(self) -> MemberStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_member(stream: MemberStream, limits: Limits, limit: str) -> bytes:
    """All of ``stream``, whose declared size is checked against ``limit`` before anything is decompressed."""
    with stream:
        where = stream._where
        limits.check(limit, stream.size, "archive member too large", **where)
        return stream.read()


def _limit_for(name: str) -> str:
    """The limit bounding a member read whole: JSON and CSV documents have their own."""
    lower = name.lower()
    if lower.endswith(".json"):
        return "json_bytes"
    if lower.endswith(".csv"):
        return "csv_bytes"
    return "member_bytes"


class _ZipPieces:
    """The content of one zip member, decompressed with every step bounded.

    zipfile's own reader passes whole compressed reads to the bz2 and LZMA
    decompressors without an output bound (50 bytes of bzip2 can hold 45 MB);
    here every method is decompressed ``max_length`` bytes at a time.
    """

    def __init__(self, fh: BinaryIO, offset: int, info: zipfile.ZipInfo) -> None:
        self._fh = fh
        self._pos = offset
        self._left = info.compress_size
        self._method = info.compress_type
        self._d: Any = None
        if self._method == zipfile.ZIP_DEFLATED:
            self._d = zlib.decompressobj(-zlib.MAX_WBITS)
        elif self._method == zipfile.ZIP_BZIP2:
            import bz2

            self._d = bz2.BZ2Decompressor()

    def _raw(self, size: int) -> bytes:
        size = min(size, self._left)
        if size <= 0:
            return b""
        self._fh.seek(self._pos)
        data = self._fh.read(size)
        self._pos += len(data)
        self._left = self._left - len(data) if data else 0
        return data

    def whole(self, size: int) -> bytes | None:
        """All of a deflated member decompressed at once (at most ``size + 1`` bytes: one more tells a
        member holding more than it declares), or ``None`` where that does not apply."""
        if self._method != zipfile.ZIP_DEFLATED or self._left > size + (size >> 3) + (1 << 16):
            return None  # compressed data far larger than its content: piece by piece
        try:
            from imagecodecs import deflate_decode
        except ImportError:  # pragma: no cover - imagecodecs without libdeflate
            return None
        return bytes(deflate_decode(self._raw(self._left), out=size + 1, raw=True))

    def _lzma(self) -> Any:
        head = self._raw(4)
        if len(head) < 4:
            raise CorruptFileError("LZMA member too short for its header")
        props = self._raw(int.from_bytes(head[2:4], "little"))
        import lzma

        filters = [lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)]  # what zipfile itself does
        return lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=filters)

    def next(self, limit: int) -> bytes:
        if self._method == zipfile.ZIP_STORED:
            return self._raw(limit)
        if self._method == zipfile.ZIP_DEFLATED:
            d = self._d
            while not d.eof:
                data = d.unconsumed_tail or self._raw(_IN_CHUNK)
                if not data:
                    return b""  # the compressed data ends before the deflate stream does
                out = d.decompress(data, limit)
                if out:
                    return out
            return b""
        if self._d is None:
            self._d = self._lzma()
        d = self._d
        while not d.eof:
            data = self._raw(_IN_CHUNK) if d.needs_input else b""
            if d.needs_input and not data:
                return b""
            out = d.decompress(data, limit)
            if out:
                return out
            if not data:  # more output was promised and none came: stop rather than spin
                return b""
        return b""

    def close(self) -> None:
        self._fh.close()


class _TarPieces:
    """The content of one tar member, as tarfile's member reader gives it (decompressed by the tar stream)."""

    def __init__(self, fh: Any) -> None:
        self._fh = fh

    def next(self, limit: int) -> bytes:
        return self._fh.read(limit)

    def close(self) -> None:
        self._fh.close()


_SEGMENT = 4 << 20
"""Content bytes between two checkpoints of a :class:`SeekableMember` (and the size of each cached block)."""
_CACHED_SEGMENTS = 4
"""Inflated segments a :class:`SeekableMember` keeps (least recently used dropped first): a TIFF page read
touches the segment of its IFD and the one or two its pixels straddle; with two kept, reading a
500 MB member's planes in order inflated each segment about four times, with four once."""


class SeekableMember(io.RawIOBase):
    """A deflated zip member as a read-only, seekable file, inflated on demand in bounded memory.

    Nothing is written anywhere and the member is never held whole.  When opened, the
    member is inflated once from start to end, a bounded step at a time (the index
    pass): it must give exactly its declared ``file_size`` bytes with the CRC-32 the
    archive records, else :class:`~dlformats.errors.CorruptFileError` naming the file
    and the member.  Every ``segment`` bytes of content (4 MiB by default) the pass
    saves a checkpoint: the content offset, the offset of the next compressed byte and
    a copy of the inflater's state (``zlib.decompressobj().copy()``: its 32 KiB window
    and state, about 40 KiB), plus the CRC-32 of the segment that follows.  A 500 MB
    member has some 120 checkpoints, about 5 MB.

    A read at content offset ``p`` starts from the checkpoint of ``p``'s segment and
    inflates that segment (at most ``segment`` bytes, checked against the CRC-32 saved
    for it, so a file changed in place since it was opened is noticed); the last
    :data:`_CACHED_SEGMENTS` segments are kept, so sequential reads and repeated reads
    of one plane inflate each segment once.  So memory is bounded by the checkpoints
    plus ``_CACHED_SEGMENTS`` segments, whatever the member's size.

    Compressed bytes are read by position through the handle given (from
    ``Source.open()``: the archive's one open file, never its path again); the handle
    is closed with this object.  One lock guards position, cache and handle, so one
    object can be shared between threads (each read is whole under the lock).
    """

    def __init__(
        self, fh: BinaryIO, offset: int, info: zipfile.ZipInfo, *, path: str, member: str, segment: int = _SEGMENT
    ) -> None:
        super().__init__()
        if info.compress_type != zipfile.ZIP_DEFLATED:
            raise ValueError("SeekableMember reads deflated members only")
        self.size = info.file_size
        """The member's content size in bytes (as declared, and checked when opened)."""
        self._fh = fh
        self._start = offset
        self._csize = info.compress_size
        self._crc = info.CRC
        self._segment = max(1, segment)
        self._where = {"path": path, "member": member}
        self._lock = threading.Lock()
        self._pos = 0
        # per segment: (compressed offset of its first unconsumed byte, inflater state there, its CRC-32)
        self._checkpoints: list[tuple[int, Any, int]] = []
        self._cache: dict[int, bytes] = {}
        try:
            self._index()
        except BaseException:
            self.close()
            raise

    # -- compressed bytes
    def _raw(self, at: int, size: int) -> bytes:
        """Up to ``size`` compressed bytes from offset ``at`` of the member's compressed data."""
        size = min(size, self._csize - at)
        if size <= 0:
            return b""
        try:
            self._fh.seek(self._start + at)
            return self._fh.read(size)
        except OSError as exc:
            err = environment_error(exc, path=self._where["path"], doing="reading")
            if err is not None:
                raise err from exc
            raise CorruptFileError(f"cannot read member: {exc}", **self._where) from exc

    def _corrupt(self, message: str) -> CorruptFileError:
        return CorruptFileError(message, **self._where)

    def _inflate(self, d: Any, at: int, want: int, *, more: bool) -> tuple[list[bytes], int]:
        """Inflate ``want`` bytes with ``d`` from compressed offset ``at``, as pieces of at most
        :data:`_CHUNK`; returns them and the offset of the first compressed byte not consumed.
        With ``more``, one byte beyond ``want`` is asked for at the end (a member holding more
        than it declares)."""
        pieces: list[bytes] = []
        got = 0
        tail = b""
        while not d.eof:
            step = min(_CHUNK, want - got)
            if step == 0:
                if not more:
                    break
                step = 1
            if not tail:
                tail = self._raw(at, _IN_CHUNK)
                at += len(tail)
                if not tail:
                    break  # the compressed data ends before the deflate stream does
            try:
                out = d.decompress(tail, step)
            except zlib.error as exc:
                raise self._corrupt(f"cannot decompress member: {exc}") from exc
            tail = d.unconsumed_tail
            if out:
                if got + len(out) > want:
                    raise self._corrupt(f"member holds more than its declared {self.size:,} bytes")
                pieces.append(out)
                got += len(out)
        return pieces, at - len(tail)

    def _index(self) -> None:
        """Inflate the whole member once, checking its size and CRC-32, saving a checkpoint per segment."""
        d = zlib.decompressobj(-zlib.MAX_WBITS)
        at = 0
        crc = 0
        for start in range(0, max(self.size, 1), self._segment):
            want = min(self._segment, self.size - start)
            self._checkpoints.append((at, d.copy(), crc))
            pieces, at = self._inflate(d, at, want, more=start + want >= self.size)
            got = 0
            for piece in pieces:
                crc = _crc32(piece, crc)
                got += len(piece)
            del pieces
            if got < want:
                raise self._corrupt(f"member ends after {start + got:,} of its {self.size:,} bytes")
        if crc != self._crc:
            raise self._corrupt(f"bad CRC-32 {crc:08x}, the archive says {self._crc:08x}")
        if self.size == 0:
            self._checkpoints.clear()

    def _block(self, index: int) -> bytes:
        """Segment ``index`` of the content, inflated from its checkpoint (or from the cache)."""
        block = self._cache.pop(index, None)
        if block is None:
            at, state, crc = self._checkpoints[index]
            start = index * self._segment
            want = min(self._segment, self.size - start)
            pieces, _ = self._inflate(state.copy(), at, want, more=False)
            block = pieces[0] if len(pieces) == 1 else b"".join(pieces)
            del pieces
            end_crc = self._checkpoints[index + 1][2] if index + 1 < len(self._checkpoints) else self._crc
            if len(block) != want or _crc32(block, crc) != end_crc:
                raise self._corrupt("the member's content differs from what was read when it was opened")
            while len(self._cache) >= _CACHED_SEGMENTS:
                del self._cache[next(iter(self._cache))]
        self._cache[index] = block  # most recently used last
        return block

    # -- io.RawIOBase
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._checkclosed()
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        """Move to content offset ``pos`` (from the start, the current position or the end)."""
        with self._lock:
            self._checkclosed()
            if whence == io.SEEK_CUR:
                pos += self._pos
            elif whence == io.SEEK_END:
                pos += self.size
            elif whence != io.SEEK_SET:
                raise ValueError(f"invalid whence {whence}")
            if pos < 0:
                raise ValueError(f"negative seek position {pos}")
            self._pos = pos
            return pos

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` from the current position; short only at the end of the member."""
        view = memoryview(buffer).cast("B")
        with self._lock:
            self._checkclosed()
            pos = self._pos
            want = max(0, min(len(view), self.size - pos))
            done = 0
            while done < want:
                index, skip = divmod(pos + done, self._segment)
                block = self._block(index)
                n = min(want - done, len(block) - skip)
                view[done : done + n] = block[skip : skip + n]
                done += n
            self._pos = pos + done
            return done

    def _checkclosed(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on a closed member")

    def close(self) -> None:
        """Release the checkpoints, the cache and the file handle."""
        if not self.closed:
            with self._lock:
                self._checkpoints = []
                self._cache = {}
                self._fh.close()
        super().close()


class SafeZip:
    """A zip archive opened for safe, in-memory reading.

    Attributes:
        names: data member names, junk removed and a single enclosing folder stripped.
    """

    def __init__(self, source: Source) -> None:
        self.source = source
        self.limits: Limits = source.limits
        self._fh = source.open()
        try:
            self._zf = zipfile.ZipFile(self._fh)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            self._fh.close()
            raise CorruptFileError(f"not a readable zip archive: {exc}", path=source.name) from exc
        except NotImplementedError as exc:  # a central directory asking for zip version > 6.3
            self._fh.close()
            raise UnsupportedFeatureError(f"zip archive needs a newer reader: {exc}", path=source.name) from exc
        try:
            infos = self._zf.infolist()
            self._members = _Members([i.filename for i in infos], path=source.name, limits=self.limits)
            self._infos = {i.filename: i for i in infos}
            for info in infos:
                self._check_info(info)
        except BaseException:
            self.close()
            raise
        self.names = self._members.names

    def _check_info(self, info: zipfile.ZipInfo) -> None:
        where = {"path": self.source.name, "member": info.filename}
        mode = info.external_attr >> 16
        if mode and (stat.S_ISLNK(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode)):
            raise UnsafeArchiveError("link or device member", **where)
        if _is_junk(info.filename):
            return
        if info.flag_bits & 0x1:
            raise UnsupportedFeatureError("encrypted member", **where)
        if info.compress_type not in _ZIP_METHODS:
            raise UnsupportedFeatureError(f"unknown compression method {info.compress_type}", **where)

    def info(self, name: str) -> zipfile.ZipInfo:
        """The ``ZipInfo`` of logical member ``name``, which must be one of :attr:`names`.

        Junk members (``__MACOSX/``, ``._*``...) and directories are not members: a
        reader cannot reach them by a stripped name either.
        """
        if name not in self._members.known:
            raise CorruptFileError("member not found", path=self.source.name, member=name)
        return self._infos[self._members.real(name)]

    def find(self, *candidates: str) -> str | None:
        """The first logical name equal (case-insensitively) to one of ``candidates``, else ``None``."""
        folded = {n.casefold(): n for n in self.names}
        for cand in candidates:
            if cand.casefold() in folded:
                return folded[cand.casefold()]
        return None

    def stream(self, name: str) -> MemberStream:
        """Stream the content of member ``name`` (see :class:`MemberStream`); nothing is read yet.

        Its declared size is :attr:`MemberStream.size`: check it (or the header its
        first bytes hold) against the limits before reading the rest.
        """
        info = self.info(name)
        offset = self._data_offset(info, name)
        return MemberStream(
            _ZipPieces(self.source.open(), offset, info),
            info.file_size,
            path=self.source.name,
            member=name,
            crc=info.CRC,
        )

    def open_seekable(self, name: str, *, segment: int | None = None) -> SeekableMember:
        """A read-only, seekable file over deflated member ``name``, inflated on demand (see
        :class:`SeekableMember`): the member is inflated once here, checked, and never held whole.

        Its declared size is checked against ``total_bytes`` (it streams; ``member_bytes``
        bounds what is held whole).  ``segment``: content bytes between checkpoints
        (default :data:`_SEGMENT`, 4 MiB).  Close it (or use it as a context manager) when done.

        Raises:
            ValueError: the member is not deflated (a stored one has :meth:`stored_range`).
            CorruptFileError: the member does not inflate to its declared size and CRC-32.
            LimitExceededError: the declared size exceeds ``total_bytes``.
        """
        info = self.info(name)
        if info.compress_type != zipfile.ZIP_DEFLATED:
            raise ValueError(f"member {name!r} is not deflated")
        self.limits.check("total_bytes", info.file_size, "archive member too large", path=self.source.name, member=name)
        offset = self._data_offset(info, name)
        return SeekableMember(
            self.source.open(), offset, info, path=self.source.name, member=name, segment=segment or _SEGMENT
        )

    def read(self, name: str, *, limit: str | None = None) -> bytes:
        """Decompress member ``name`` into memory.

        Its declared size is checked against ``limit`` before anything is
        decompressed (by default ``json_bytes`` for ``.json`` members, ``csv_bytes``
        for ``.csv`` ones, else ``member_bytes``), and decompression stops at that
        size: a member holding more or less than it declares is refused.
        """
        return _read_member(self.stream(name), self.limits, limit or _limit_for(name))

    def read_json(self, name: str) -> Any:
        """The JSON document in member ``name`` (found case-insensitively, as :meth:`find`), or ``None`` without one.

        Parsed strictly by :func:`~dlformats.containers.jsonio.load_json` within the
        archive's limits (``json_bytes``, ``json_depth``); a broken document is a
        :class:`~dlformats.errors.CorruptFileError` naming the file and the member.
        """
        from .jsonio import load_json

        member = self.find(name)
        if member is None:
            return None
        return load_json(self.read(member), path=self.source.name, member=member, limits=self.limits)

    def read_head(self, name: str, size: int) -> bytes:
        """Decompress only the first ``size`` bytes of member ``name`` (fewer when it is shorter).

        Lets a reader check a header's declared sizes before decompressing the rest.
        """
        with self.stream(name) as fh:
            return fh.read(size)

    def _data_offset(self, info: zipfile.ZipInfo, name: str) -> int:
        """Where member ``info``'s (compressed) bytes start in the archive, from its local header."""
        where = {"path": self.source.name, "member": name}
        if info.header_offset < 0:  # a central directory offset that zipfile's arithmetic makes negative
            raise CorruptFileError("bad local header offset", **where)
        with self.source.open() as fh:
            fh.seek(info.header_offset)
            header = fh.read(30)
            if len(header) != 30 or header[:4] != b"PK\x03\x04":
                raise CorruptFileError("bad local header", **where)
            name_len = int.from_bytes(header[26:28], "little")
            extra_len = int.from_bytes(header[28:30], "little")
            local = fh.read(name_len)
        encoding = "utf-8" if info.flag_bits & 0x800 else "cp437"
        if local != info.orig_filename.encode(encoding, "replace"):
            raise CorruptFileError(f"the local header names {local[:200]!r}, the central directory another", **where)
        offset = info.header_offset + 30 + name_len + extra_len
        if offset + info.compress_size > self.source.size:
            raise CorruptFileError("member extends past the end of the archive", **where)
        return offset

    def stored_range(self, name: str) -> tuple[int, int] | None:
        """``(offset, size)`` of an uncompressed member's bytes within the archive file, else ``None``.

        Lets readers map a stored member in place instead of copying it.
        """
        info = self.info(name)
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            return None
        offset = self._data_offset(info, name)
        if info.file_size != info.compress_size:
            raise CorruptFileError("stored member whose sizes disagree", path=self.source.name, member=name)
        return offset, info.file_size

    def close(self) -> None:
        """Close the archive and its file handle."""
        try:
            self._zf.close()
        finally:
            self._fh.close()

    def __enter__(self) -> SafeZip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _TarStream:
    """The (decompressed) byte stream of a tar archive, as :mod:`tarfile` reads it.

    * While :attr:`header_bytes` is not ``None`` (tarfile reading a member's headers),
      reads count against :data:`_TAR_HEADER_BYTES`: tarfile reads pax records, GNU
      long names and sparse maps whole, whatever size they declare.
    * The last block read is kept, so the one-byte step back tarfile takes at the end
      of a member does not rewind a compressed stream to its start; forward seeks in a
      compressed stream decompress and discard 1 MiB at a time.
    """

    def __init__(self, inner: Any, *, compressed: bool, path: str) -> None:
        self._inner = inner
        self._compressed = compressed
        self._path = path
        self._pos = self._end = inner.tell()
        self._tail = b""
        self.header_bytes: int | None = 0

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            pos += self._pos
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation("a tar stream is not seekable from its end")
        if self._end - len(self._tail) <= pos <= self._end:
            self._pos = pos
            return pos
        if self._compressed and pos > self._end:
            self._pos = self._end
            while self._pos < pos:
                if not self._read_inner(min(_CHUNK, pos - self._pos)):
                    break  # past the end: tarfile finds no header there and says so
            self._pos = pos
            return pos
        self._inner.seek(pos)
        self._pos = self._end = pos
        self._tail = b""
        return pos

    def _read_inner(self, size: int) -> bytes:
        data = self._inner.read(size)
        self._pos += len(data)
        self._end += len(data)
        self._tail = data[-_TAR_BLOCK:] if len(data) >= _TAR_BLOCK else (self._tail + data)[-_TAR_BLOCK:]
        return data

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            raise RuntimeError("unbounded read of a tar stream")  # tarfile never asks; a bug if it does
        if self.header_bytes is not None:
            self.header_bytes += size
            if self.header_bytes > _TAR_HEADER_BYTES:
                raise UnsupportedFeatureError(
                    f"a tar member's headers (pax records, long names, sparse maps) exceed "
                    f"{_TAR_HEADER_BYTES:,} bytes; real ones hold a few hundred",
                    path=self._path,
                )
        out = b""
        if self._pos < self._end:
            start = len(self._tail) - (self._end - self._pos)
            out = self._tail[start : start + size]
            self._pos += len(out)
            size -= len(out)
        if size > 0:
            data = self._read_inner(size)
            out = out + data if out else data
        return out

    def drain(self) -> None:
        """Read on (at most :data:`_TAR_TAIL_BYTES`) to the end of a compressed stream, so its trailer is checked."""
        if not self._compressed:
            return
        self._pos = self._end
        left = _TAR_TAIL_BYTES
        while left > 0:
            data = self._read_inner(min(_CHUNK, left))
            if not data:
                return
            left -= len(data)


def _gzip(fh: BinaryIO) -> gzip.GzipFile:
    import gzip

    return gzip.GzipFile(fileobj=fh, mode="rb")


def _bz2(fh: BinaryIO) -> bz2.BZ2File:
    import bz2

    return bz2.BZ2File(fh)


def _xz(fh: BinaryIO) -> lzma.LZMAFile:
    import lzma

    return lzma.LZMAFile(fh)


_MAGICS = ((b"\x1f\x8b", _gzip), (b"BZh", _bz2), (b"\xfd7zXZ\x00", _xz))


class TarMember:
    """A data member met by :meth:`SafeTar.walk`: its name in the archive and its declared size.

    Attributes:
        name: the name as stored (any enclosing folder included).
        size: the declared size of its content, in bytes.
    """

    def __init__(self, tar: SafeTar, info: tarfile.TarInfo) -> None:
        self.name = info.name
        self.size = info.size
        self._tar = tar
        self._info = info

    def stream(self) -> MemberStream:
        """Stream the member's content (read it before the walk moves on: the archive is read once)."""
        return self._tar._stream_of(self._info, self.name)

    def read(self, *, limit: str = "member_bytes") -> bytes:
        """The whole content, its declared size checked against ``limit`` first."""
        return _read_member(self.stream(), self._tar.limits, limit)


class SafeTar:
    """A tar archive (plain, gzip, bzip2 or xz-compressed), read member by member in memory.

    Only regular files and folders are accepted.  Declared sizes are bounded by
    ``limits.total_bytes`` over the whole archive; a member read whole is bounded by
    ``limits.member_bytes`` (or the limit the caller names).  A compressed archive
    is read through to its trailer, so a gzip CRC-32 or length that does not match
    is an error.

    With ``scan=True`` (the default) every header is read when the archive is opened:
    :attr:`names`, :meth:`read` and :meth:`open` are then available, and each read
    of a compressed archive decompresses it again up to the member.  With
    ``scan=False`` a reader takes members in one pass with :meth:`walk` instead,
    checking each header before decompressing the member's content (and never
    decompressing a member it does not need to hold); :attr:`names` is set when the
    walk ends.
    """

    def __init__(self, source: Source, *, scan: bool = True) -> None:
        self.source = source
        self.limits: Limits = source.limits
        self._fh: BinaryIO = source.open()
        self._tf: tarfile.TarFile | None = None
        self._inner: Any = None
        self._walked = False
        self._by_name: dict[str, tarfile.TarInfo] = {}
        try:
            self._open()
            if scan:
                for _ in self.walk():
                    pass
        except BaseException:
            self.close()  # a refused archive must not leak its handle
            raise

    def _open(self) -> None:
        path = self.source.name
        magic = self._fh.read(6)
        self._fh.seek(0)
        opener = next((cls for prefix, cls in _MAGICS if magic.startswith(prefix)), None)
        try:
            self._inner = opener(self._fh) if opener is not None else self._fh
            self._stream = _TarStream(self._inner, compressed=opener is not None, path=path)
            import tarfile

            self._tf = tarfile.open(fileobj=self._stream, mode="r:")  # type: ignore[call-overload]
        except _tar_errors() as exc:
            raise CorruptFileError(f"not a readable tar archive: {exc}", path=path) from exc

    def _next(self) -> tarfile.TarInfo | None:
        assert self._tf is not None
        self._stream.header_bytes = 0
        try:
            member = self._tf.next()
        except _tar_errors() as exc:
            raise CorruptFileError(f"not a readable tar archive: {exc}", path=self.source.name) from exc
        finally:
            self._stream.header_bytes = None
        self._tf.members.clear()  # tarfile keeps every header it met; only what walk() keeps is needed
        return member

    def walk(self) -> Iterator[TarMember]:
        """Each data member in archive order (folders and macOS junk skipped), its header checked first.

        A member's content can be streamed while it is the current one.  Every
        header is checked as it comes (type, name, duplicates, entry count, declared
        total); when the walk ends, :attr:`names` is set and a compressed archive's
        trailer is checked.  Only one walk is possible.
        """
        if self._walked:
            raise RuntimeError("a SafeTar is walked once")
        self._walked = True
        path = self.source.name
        raw: list[str] = []
        seen: dict[str, str] = {}
        total = named = 0
        while (info := self._next()) is not None:
            self.limits.check("archive_entries", len(raw) + 1, "too many archive entries", path=path)
            named += len(info.name)
            if named > _TAR_NAME_BYTES:
                raise UnsafeArchiveError(f"member names total more than {_TAR_NAME_BYTES:,} characters", path=path)
            total += info.size
            self.limits.check("total_bytes", total, "archive declares too many bytes", path=path)
            if not info.isfile() and not info.isdir():
                raise UnsafeArchiveError("link, device or FIFO member", path=path, member=info.name[:200])
            name = info.name + ("/" if info.isdir() else "")
            _check_member_name(name, path=path)
            key = _fold(name.rstrip("/"))
            if key in seen:
                raise UnsafeArchiveError(
                    f"ambiguous archive: {seen[key]!r} and {name!r} are the same name", path=path, member=name
                )
            seen[key] = name
            info.pax_headers = {}
            raw.append(name)
            if info.isdir() or _is_junk(name):
                continue
            self._by_name[info.name] = info
            yield TarMember(self, info)
        try:
            self._stream.drain()
        except _tar_errors() as exc:
            raise CorruptFileError(f"the compressed archive is damaged: {exc}", path=path) from exc
        self._members = _Members(raw, path=path, limits=self.limits)
        self.names = self._members.names

    def real(self, name: str) -> str:
        """The stored name of logical member ``name`` (its enclosing folder put back)."""
        return self._members.real(name)

    def _stream_of(self, info: tarfile.TarInfo, name: str) -> MemberStream:
        assert self._tf is not None
        try:
            fh = self._tf.extractfile(info)
        except _tar_errors() as exc:
            raise CorruptFileError(f"cannot read member: {exc}", path=self.source.name, member=name) from exc
        if fh is None:  # not a regular file: never one walk() yields
            raise CorruptFileError("member has no content", path=self.source.name, member=name)
        return MemberStream(_TarPieces(fh), info.size, path=self.source.name, member=name)

    def stream(self, name: str) -> MemberStream:
        """Stream logical member ``name`` (after a scan: a compressed archive is decompressed up to it again)."""
        if not hasattr(self, "_members"):
            raise RuntimeError("members are known by name once the archive has been walked")
        member = self._by_name.get(self.real(name)) if name in self._members.known else None
        if member is None:
            raise CorruptFileError("member not found", path=self.source.name, member=name)
        return self._stream_of(member, name)

    def read(self, name: str, *, limit: str = "member_bytes") -> bytes:
        """The content of member ``name``, its declared size checked against ``limit`` first."""
        return _read_member(self.stream(name), self.limits, limit)

    def open(self, name: str) -> io.BytesIO:
        """The member's bytes as a seekable file object."""
        return io.BytesIO(self.read(name))

    def close(self) -> None:
        """Close the archive."""
        try:
            if self._tf is not None:
                self._tf.close()
            if self._inner is not None and self._inner is not self._fh:
                self._inner.close()
        finally:
            self._fh.close()

    def __enter__(self) -> SafeTar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["MemberStream", "SafeTar", "SafeZip", "SeekableMember", "TarMember", "refuse_nested"]


def _crc32(data: bytes, value: int = 0) -> int:
    """CRC-32 of ``data`` continuing from ``value`` (libdeflate's when imagecodecs has it: some 20 times zlib's)."""
    try:
        from imagecodecs import deflate_crc32

        return int(deflate_crc32(data, value))
    except (ImportError, AttributeError, RuntimeError, TypeError):  # pragma: no cover - imagecodecs without it
        return zlib.crc32(data, value)
