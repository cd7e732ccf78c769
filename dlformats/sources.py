"""Where a file comes from: a path, bytes, a binary file object or an ``http(s)://`` URL.

Readers receive a :class:`Source`.  It opens fresh, seekable binary handles,
knows the file's name and leading bytes, and, for zip files, the member names
(junk such as ``__MACOSX/`` removed, a single enclosing folder stripped), so that
plugins can recognise content cheaply.  A URL is downloaded once, to a temporary
file, with a size cap and a timeout; nothing else in dlformats touches the network.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Union

from ._download import _download
from .errors import DLFormatsError, InvalidOptionError
from .limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    from .archive import SafeZip

SourceLike = Union[str, os.PathLike, bytes, bytearray, memoryview, IO[bytes], "Source"]
"""Anything :func:`open_source` accepts."""

HEAD_BYTES = 4096


def describe_head(head: bytes) -> str:
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

    Attributes:
        name: a name for messages (the path, the URL, or ``<bytes>``).
        path: a real file on disk, when there is one (for memory mapping, companions).
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
    ) -> None:
        self.name = name
        self.path = path
        self._data = data
        self.filename = filename
        self.limits = limits
        self._cleanup = cleanup
        self._head: bytes | None = None
        self._zip: SafeZip | bool | None = False

    # ----------------------------------------------------------- access
    def open(self) -> BinaryIO:
        """Return a new seekable binary handle positioned at the start."""
        if self.path is not None:
            try:
                return open(self.path, "rb")
            except OSError as exc:
                raise DLFormatsError(f"cannot open: {exc.strerror or exc}", path=self.name) from exc
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
        """Size in bytes."""
        if self.path is not None:
            return self.path.stat().st_size
        return len(self._data or b"")

    @property
    def is_dir(self) -> bool:
        """True when the source is a folder (multi-file formats such as OME-Zarr or CTC)."""
        return self.path is not None and self.path.is_dir()

    @property
    def head(self) -> bytes:
        """The first bytes (up to 4096)."""
        if self._head is None and self.is_dir:
            self._head = b""
        if self._head is None:
            with self.open() as fh:
                self._head = fh.read(HEAD_BYTES)
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

    def describe(self) -> str:
        """What the leading bytes say this is."""
        return describe_head(self.head)

    def zip(self) -> SafeZip | None:
        """The file opened as a :class:`~dlformats.archive.SafeZip`, or ``None`` if it is not a zip.

        Opened once and cached; unsafe archives raise here.
        """
        if self._zip is False:
            if not self.head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
                self._zip = None
            else:
                from .archive import SafeZip

                self._zip = SafeZip(self)
        return self._zip or None

    def zip_names(self) -> list[str] | None:
        """Member names of a zip (junk removed, one enclosing folder stripped), or ``None``."""
        archive = self.zip()
        return None if archive is None else archive.names

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
        """Release cached handles and remove a downloaded temporary file."""
        self.release()
        if self._cleanup is not None:
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
        return _download(src, limits)
    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if not path.exists():
            raise InvalidOptionError("no such file", path=str(path))
        return Source(name=str(path), path=path, filename=path.name, limits=limits)
    if hasattr(src, "read"):
        fname = getattr(src, "name", None)
        if isinstance(fname, str) and os.path.isfile(fname) and hasattr(src, "fileno"):
            path = Path(fname)
            return Source(name=name or str(path), path=path, filename=path.name, limits=limits)
        try:
            if hasattr(src, "seek"):
                src.seek(0)
            data = src.read(limits.member_bytes + 1)
        except OSError as exc:
            raise DLFormatsError(f"cannot read file object: {exc}", path=name or "<stream>") from exc
        if not isinstance(data, bytes):
            raise InvalidOptionError("file object must be opened in binary mode", path=name or "<stream>")
        limits.check("member_bytes", len(data), "stream too large", path=name or "<stream>")
        label = name or (fname if isinstance(fname, str) else "<stream>")
        return Source(name=label, data=data, filename=os.path.basename(label) if name or fname else "", limits=limits)
    raise InvalidOptionError(f"cannot read from a {type(src).__name__}; give a path, bytes, a binary file or a URL")
