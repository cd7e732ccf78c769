"""Where a file comes from: a path, bytes, a binary file object or an ``http(s)://`` URL.

Readers receive a :class:`Source`.  It opens fresh, seekable binary handles,
knows the file's name and leading bytes, and, for zip files, the member names
(junk such as ``__MACOSX/`` removed, a single enclosing folder stripped), so that
plugins can recognise content cheaply.  A URL is downloaded once, to a temporary
file, with a size cap and a timeout; nothing else in dlformats touches the network.

A file on disk is opened once, when its :class:`Source` is made, and every byte of
it is read from that one :class:`OpenFile` (positional reads, ``os.pread``): a file
atomically replaced while it is read (a temporary file renamed over it, as careful
writers do) is read wholly as it was when the source was opened, however long lazy
arrays keep reading it.  Readers never reopen a source by its path; other files of
a multi-file dataset (OME-TIFF companions) are sources of their own.
"""

from __future__ import annotations

import io
import os
import stat
import threading
import warnings
import weakref
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Union

from .errors import DLFormatsError, InvalidOptionError, SourceNotFoundError, environment_error
from .limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    from .containers.archive import SafeZip

SourceLike = Union[str, os.PathLike, bytes, bytearray, memoryview, IO[bytes], "Source"]
"""Anything :func:`open_source` accepts."""

_HEAD_BYTES = 4096

_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation
_PREAD = hasattr(os, "pread")
_MAX_READ = 1 << 30  # Linux reads at most 2 GiB at once; larger reads go in pieces


class OpenFile:
    """One open file, read by position: shared by a :class:`Source`, its handles and lazy arrays over it.

    Reads never move a shared position (``os.pread``), so any number of handles and
    threads may read at once.  The descriptor stays open as long as anything refers
    to this object and is closed when the last reference goes, so lazy arrays that
    keep one keep reading the very file their source opened, even after the name
    was given to another file.  It cannot be pickled: it is an open file of this process.

    Attributes:
        name: the file's path (as given), for messages and to find files beside it.
    """

    def __init__(self, fd: int, name: str) -> None:
        self._fd = fd
        self.name = name
        self._lock = None if _PREAD else threading.Lock()
        self._finalizer = weakref.finalize(self, os.close, fd)

    @classmethod
    def open(cls, path: str | os.PathLike) -> OpenFile | None:
        """Open the regular file ``path`` for reading; ``None`` when it is not a regular file.

        Raises ``OSError`` when the file cannot be opened.
        """
        # O_NONBLOCK: opening a FIFO must not wait for a writer (regular files ignore it)
        nonblock = getattr(os, "O_NONBLOCK", 0)
        fd = os.open(path, os.O_RDONLY | _O_BINARY | nonblock)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                return None
            if nonblock:
                os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return cls(fd, os.fspath(path))

    def fileno(self) -> int:
        """The file descriptor (to memory-map the file); never close it yourself."""
        return self._fd

    @property
    def size(self) -> int:
        """Size in bytes of the open file (``fstat``, not the path)."""
        return os.fstat(self._fd).st_size

    def pread(self, size: int, offset: int) -> bytes:
        """``size`` bytes from ``offset``, fewer only at the end of the file."""
        chunks = []
        while size > 0:
            chunk = self._pread(min(size, _MAX_READ), offset)
            if not chunk:
                break
            chunks.append(chunk)
            size -= len(chunk)
            offset += len(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _pread(self, size: int, offset: int) -> bytes:
        if self._lock is None:
            return os.pread(self._fd, size, offset)
        with self._lock:
            os.lseek(self._fd, offset, os.SEEK_SET)
            return os.read(self._fd, size)

    def readinto(self, buffer: Any, offset: int) -> int:
        """Fill ``buffer`` from ``offset``; return the number of bytes read."""
        view = memoryview(buffer).cast("B")[:_MAX_READ]  # short reads are fine: io.BufferedReader asks again
        if self._lock is None and hasattr(os, "preadv"):
            return os.preadv(self._fd, [view], offset)
        data = self._pread(len(view), offset)
        view[: len(data)] = data
        return len(data)

    def handle(self) -> BinaryIO:
        """A new buffered, seekable binary handle over the file, with its own position, at the start."""
        return io.BufferedReader(_PositionalReader(self))

    def __reduce__(self) -> Any:
        raise TypeError(
            f"an open file ({self.name}) cannot be pickled: read the file again in the other process, "
            "or pickle numpy.asarray() of the arrays"
        )

    def __repr__(self) -> str:
        return f"OpenFile({self.name!r})"


class _PositionalReader(io.RawIOBase):
    """A raw handle reading an :class:`OpenFile` at a position of its own."""

    def __init__(self, file: OpenFile) -> None:
        super().__init__()
        self._file: OpenFile | None = file
        self._pos = 0
        self.name = file.name
        self.mode = "rb"

    def _opened(self) -> OpenFile:
        if self._file is None:
            raise ValueError("I/O operation on closed file")
        return self._file

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        # tifffile needs one to find the other files of a multi-file OME-TIFF; the descriptor
        # is shared by every handle: map it or read it by position, never move its offset.
        return self._opened().fileno()

    def readinto(self, buffer: Any) -> int:
        n = self._opened().readinto(buffer, self._pos)
        self._pos += n
        return n

    def readall(self) -> bytes:
        file = self._opened()
        data = file.pread(max(file.size - self._pos, 0), self._pos)
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        file = self._opened()
        if whence == os.SEEK_SET:
            pos = offset
        elif whence == os.SEEK_CUR:
            pos = self._pos + offset
        elif whence == os.SEEK_END:
            pos = file.size + offset
        else:
            raise ValueError(f"invalid whence ({whence})")
        if pos < 0:
            raise OSError(22, "Invalid argument: negative seek position")
        self._pos = pos
        return pos

    def tell(self) -> int:
        self._opened()
        return self._pos

    def close(self) -> None:
        super().close()
        self._file = None  # the descriptor closes once nothing else refers to it

    def _dealloc_warn(self, source: object) -> None:  # what io.BufferedReader calls when collected open
        if self._file is not None:
            warnings.warn(f"unclosed file {source!r}", ResourceWarning, stacklevel=2, source=source)

    def __del__(self) -> None:
        if not self.closed:
            self._dealloc_warn(self)
        super().__del__()

    def __repr__(self) -> str:
        return f"<dlformats handle {self.name!r} at {self._pos}>"


def _describe_head(head: bytes) -> str:
    """Name the kind of file its leading bytes show (for messages)."""
    kinds = [
        (b"PK\x03\x04", "zip archive"),
        (b"PK\x05\x06", "empty zip archive"),
        (b"II*\x00", "TIFF (little-endian)"),
        (b"MM\x00*", "TIFF (big-endian)"),
        (b"II+\x00", "BigTIFF (little-endian)"),
        (b"MM\x00+", "BigTIFF (big-endian)"),
        (b"\x89PNG\r\n\x1a\n", "PNG image"),
        (b"\x93NUMPY", "numpy .npy array"),
        (b"\x1f\x8b", "gzip data"),
        (b"\xff\xd8\xff", "JPEG image"),
        (b"\x89HDF", "HDF5 file"),
        (b"<?xml", "XML document"),
    ]
    for magic, kind in kinds:
        if head.startswith(magic):
            return kind
    if len(head) > 262 and head[257:262] == b"ustar":
        return "tar archive"
    if not head:
        return "empty file"
    stripped = head.lstrip()
    if stripped[:1] in (b"{", b"["):
        return "JSON document"
    if b"\x00" in head:  # text never holds NUL bytes, even when they decode as UTF-8
        return "unrecognised binary data"
    try:
        head.decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "unrecognised binary data"


class Source:
    """A readable file, however it was given.

    A file on disk is opened when the source is made (see :attr:`file`); every handle
    :meth:`open` returns reads that open file, so all reads of one source see one
    version of the file even if another is renamed over its path meanwhile.

    Attributes:
        name: a name for messages (the path, the URL, or ``<bytes>``).
        path: the file's path on disk, when there is one: for messages, for folder
            sources and for the other files of a multi-file dataset beside it.  Read
            the file itself through :meth:`open` or :attr:`file`, never by this path.
        filename: the base name used for extension matching (may be empty).
    """

    def __init__(
        self,
        *,
        name: str,
        path: Path | None = None,
        data: bytes | None = None,
        filename: str = "",
        limits: Limits = DEFAULT_LIMITS,
        cleanup: Path | None = None,
        file: OpenFile | None = None,
    ) -> None:
        self.name = name
        self.path = path
        self._data = data
        self.filename = filename
        self.limits = limits
        self._cleanup = cleanup
        self._head: bytes | None = None
        self._zip: SafeZip | bool | None = False
        self._file = file
        self._irregular = False  # a folder, FIFO or device: nothing to open once and keep
        if file is None and path is not None:
            try:
                self._open_file()
            except OSError:
                pass  # reported, as the core reports it, by the first open()

    # ----------------------------------------------------------- access
    @property
    def file(self) -> OpenFile | None:
        """The open file every read of this source goes through; ``None`` for bytes, folders and non-regular files.

        Memory maps and positional reads of lazy arrays use it; keeping a reference
        keeps the file open (and the version of it this source opened).
        """
        if self._file is None and self.path is not None and not self._irregular:
            try:
                self._open_file()
            except OSError as exc:
                if self.path.is_dir():  # where a folder cannot be opened as a file (Windows)
                    self._irregular = True
                    return None
                raise environment_error(exc, path=self.name, doing="opening") or DLFormatsError(
                    f"cannot open: {exc.strerror or exc}", path=self.name
                ) from exc
        return self._file

    def _open_file(self) -> None:
        assert self.path is not None
        self._file = OpenFile.open(self.path)
        self._irregular = self._file is None

    def open(self) -> BinaryIO:
        """Return a new seekable binary handle positioned at the start.

        Handles of one source read the same open file, each at its own position
        (safe to use from different threads, one handle per thread).
        """
        if self.path is not None:
            file = self.file
            if file is not None:
                return file.handle()
            try:  # a FIFO or device: no snapshot to keep, read it as it comes
                return open(self.path, "rb")
            except OSError as exc:
                raise environment_error(exc, path=self.name, doing="opening") or DLFormatsError(
                    f"cannot open: {exc.strerror or exc}", path=self.name
                ) from exc
        return io.BytesIO(self._data or b"")

    def read_bytes(self) -> bytes:
        """Return the whole content (bounded by ``limits.member_bytes``)."""
        if self._data is not None:
            return self._data
        self.limits.check("member_bytes", self.size, "file too large to read into memory", path=self.name)
        with self.open() as fh:
            return fh.read()

    @property
    def size(self) -> int:
        """Size in bytes (of the open file: the same file every read sees)."""
        if self.path is not None:
            file = self.file
            return file.size if file is not None else self.path.stat().st_size
        return len(self._data or b"")

    @property
    def is_dir(self) -> bool:
        """True when the source is a folder (multi-file formats such as OME-Zarr or CTC)."""
        return self._file is None and self.path is not None and self.path.is_dir()

    @property
    def head(self) -> bytes:
        """The first bytes (up to 4096)."""
        if self._head is None and self.is_dir:
            self._head = b""
        if self._head is None:
            with self.open() as fh:
                self._head = fh.read(_HEAD_BYTES)
        return self._head

    @property
    def suffix(self) -> str:
        """All extensions of :attr:`filename`, lower-cased (``".ome.tiff"``)."""
        name = self.filename.lower()
        dot = name.find(".", 1 if name.startswith(".") else 0)
        return name[dot:] if dot >= 0 else ""

    def has_extension(self, ext: str) -> bool:
        """True when :attr:`filename` ends with ``ext`` (case-insensitive, ``".tif"`` style)."""
        return self.filename.lower().endswith(ext.lower())

    def describe(self, *, entries: bool = False) -> str:
        """What the leading bytes say this is; for a folder, that it is one (with ``entries``, a few of them)."""
        if self.is_dir:
            assert self.path is not None
            try:
                names = sorted(os.listdir(self.path))
            except OSError:
                return "folder"
            if not names:
                return "empty folder"
            if not entries:
                return "folder"
            shown = ", ".join(e + ("/" if (self.path / e).is_dir() else "") for e in names[:5])
            more = f" and {len(names) - 5} more" if len(names) > 5 else ""
            return f"folder holding {shown}{more}"
        return _describe_head(self.head)

    def zip(self) -> SafeZip | None:
        """The file opened as a :class:`~dlformats.containers.archive.SafeZip`, or ``None`` if it is not a zip.

        Opened once and cached; unsafe archives raise here.
        """
        if self._zip is False:
            if not self.head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
                self._zip = None
            else:
                from .containers.archive import SafeZip

                self._zip = SafeZip(self)
        return self._zip or None

    def zip_names(self) -> list[str] | None:
        """Member names of a zip (junk removed, one enclosing folder stripped), or ``None``."""
        archive = self.zip()
        return None if archive is None else archive.names

    def zip_holding(self, *members: str) -> tuple[SafeZip, str]:
        """The zip of a format known by its members: ``(archive, name)``, ``name`` the first of ``members`` it holds.

        Names match case-insensitively, as :meth:`~dlformats.containers.archive.SafeZip.find`.
        Raises :class:`~dlformats.errors.NotMyFormat` when the source is not a zip or holds
        none of ``members`` (the next candidate reader may take it), and
        :class:`~dlformats.errors.UnsafeArchiveError` when a member is itself an archive: a
        format whose members are known never reads one (see
        :func:`~dlformats.containers.archive.refuse_nested`).
        """
        from .containers.archive import refuse_nested
        from .errors import NotMyFormat

        archive = self.zip()
        if archive is None:
            raise NotMyFormat(f"content is {self.describe()}, not a zip archive")
        found = archive.find(*members)
        if found is None:
            raise NotMyFormat(f"the zip has no {' or '.join(members)}")
        refuse_nested(archive)
        return archive, found

    def sibling(self, name: str) -> Path | None:
        """A file next to this one on disk (for multi-file formats), or ``None``."""
        if self.path is None:
            return None
        return self.path.parent / name

    # ----------------------------------------------------------- lifetime
    def release(self) -> None:
        """Close cached handles (the :meth:`zip` archive); the source stays usable and reopens them on demand.

        A downloaded temporary file is kept: lazy arrays may still read it (see :meth:`close`).
        The core calls this after every read; a reader whose arrays read lazily from
        the file keeps handles of its own.
        """
        if self._zip not in (False, None):
            self._zip.close()  # type: ignore[union-attr]
        self._zip = False

    def close(self) -> None:
        """Release cached handles and the open file, and remove a downloaded temporary file.

        Lazy arrays that still read the file keep it open until they are gone; a later
        :meth:`open` opens the path again (a new version of the file, if it was replaced).
        """
        self.release()
        self._file = None
        if self._cleanup is not None:
            import shutil

            shutil.rmtree(self._cleanup, ignore_errors=True)
            self._cleanup = None

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Source({self.name!r})"


def open_source(src: Any, *, limits: Limits = DEFAULT_LIMITS, name: str | None = None) -> Source:
    """Turn a path, bytes, binary file object or URL into a :class:`Source`."""
    if isinstance(src, Source):
        return src
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
        limits.check("member_bytes", len(data), "in-memory source too large", path=name or "<bytes>")
        return Source(name=name or "<bytes>", data=data, filename=name or "", limits=limits)
    if isinstance(src, str) and src.lower().startswith(("http://", "https://")):
        from ._download import _download

        return _download(src, limits)
    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if not path.exists():
            raise SourceNotFoundError("no such file or folder", path=str(path))
        return Source(name=str(path), path=path, filename=path.name, limits=limits)
    if hasattr(src, "read"):
        fname = getattr(src, "name", None)
        if isinstance(fname, str) and os.path.isfile(fname) and hasattr(src, "fileno"):
            path = Path(fname)
            return Source(name=name or str(path), path=path, filename=path.name, limits=limits, file=_dup(src, path))
        try:
            if hasattr(src, "seek"):
                src.seek(0)
            data = src.read(limits.member_bytes + 1)
        except OSError as exc:
            where = name or "<stream>"
            raise environment_error(exc, path=where, doing="reading") or DLFormatsError(
                f"cannot read file object: {exc}", path=where
            ) from exc
        if not isinstance(data, bytes):
            raise InvalidOptionError("file object must be opened in binary mode", path=name or "<stream>")
        limits.check("member_bytes", len(data), "stream too large", path=name or "<stream>")
        label = name or (fname if isinstance(fname, str) else "<stream>")
        return Source(name=label, data=data, filename=os.path.basename(label) if name or fname else "", limits=limits)
    raise InvalidOptionError(f"cannot read from a {type(src).__name__}; give a path, bytes, a binary file or a URL")


def _dup(src: Any, path: Path) -> OpenFile | None:
    """The open file behind a file object (its descriptor duplicated), or ``None`` to open ``path`` instead."""
    try:
        fd = os.dup(src.fileno())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return None
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            if _PREAD:
                os.pread(fd, 0, 0)  # readable? (a file opened for writing only is not)
            return OpenFile(fd, os.fspath(path))
    except OSError:
        pass
    os.close(fd)
    return None


__all__ = ["OpenFile", "Source", "SourceLike", "open_source"]
