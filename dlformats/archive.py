"""Zip and tar archives read member by member, in memory, never extracted.

Both classes refuse, when opened: too many entries; absolute, ``..``, backslash,
drive-letter, NUL or control-character names; names that collide after
case-folding and Unicode NFC normalisation; links, devices and FIFOs; encrypted
zip entries and unknown compression methods.  macOS junk (``__MACOSX/``,
``._*``, ``.DS_Store``) and directories are skipped, and when every member sits
in one enclosing folder that folder is stripped from :attr:`names`.  Reading a
member counts its decompressed bytes against :class:`~dlformats.limits.Limits`.
"""

from __future__ import annotations

import io
import lzma
import stat
import tarfile
import unicodedata
import zipfile
import zlib
from typing import TYPE_CHECKING, BinaryIO

from .errors import CorruptFileError, DLFormatsError, UnsafeArchiveError, UnsupportedFeatureError

if TYPE_CHECKING:
    from .limits import Limits
    from .sources import Source

_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
# What tarfile lets through from a broken gzip or xz stream (a trk fuzz finding: zlib.error escaped).
_TAR_ERRORS = (tarfile.TarError, OSError, EOFError, ValueError, zlib.error, lzma.LZMAError)
ARCHIVE_SUFFIXES = (".zip", ".npz", ".tar", ".gz", ".tgz", ".trk", ".trks", ".7z", ".rar", ".bz2", ".xz")


def is_junk(name: str) -> bool:
    """True for members that carry no data: directories, macOS resource forks, ``.DS_Store``."""
    parts = name.split("/")
    base = parts[-1]
    return name.endswith("/") or parts[0] == "__MACOSX" or base.startswith("._") or base in (".DS_Store", "Thumbs.db")


def check_member_name(name: str, *, path: str) -> None:
    """Raise :class:`UnsafeArchiveError` for a name that could escape a folder or confuse a reader."""
    bad = None
    if not name:
        bad = "empty name"
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
        raise UnsafeArchiveError(f"unsafe member name ({bad})", path=path, member=repr(name))


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
        if name.lower().endswith(ARCHIVE_SUFFIXES):
            raise UnsafeArchiveError("nested archive member refused", path=archive.source.name, member=name)


class _Members:
    """Shared bookkeeping: logical names (prefix stripped) to real member names."""

    def __init__(self, raw: list[str], *, path: str, limits: Limits) -> None:
        limits.check("archive_entries", len(raw), "too many archive entries", path=path)
        seen: dict[str, str] = {}
        files = []
        for name in raw:
            check_member_name(name, path=path)
            key = _fold(name.rstrip("/"))
            if key in seen:
                raise UnsafeArchiveError(
                    f"ambiguous archive: {seen[key]!r} and {name!r} are the same name", path=path, member=name
                )
            seen[key] = name
            if not is_junk(name):
                files.append(name)
        self.prefix, self.names = _strip_common_folder(files)
        self.known = frozenset(self.names)

    def real(self, name: str) -> str:
        return self.prefix + name


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
        if is_junk(info.filename):
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

    def read(self, name: str) -> bytes:
        """Decompress member ``name`` into memory, bounded by ``limits.member_bytes``."""
        info = self.info(name)
        where = {"path": self.source.name, "member": name}
        self.limits.check("member_bytes", info.file_size, "archive member too large", **where)
        chunks = []
        total = 0
        try:
            with self._zf.open(info) as fh:
                while chunk := fh.read(1 << 20):
                    total += len(chunk)
                    self.limits.check("member_bytes", total, "archive member too large", **where)
                    chunks.append(chunk)
        except DLFormatsError:
            raise
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError, NotImplementedError) as exc:
            raise CorruptFileError(f"cannot decompress member: {exc}", **where) from exc
        except Exception as exc:  # zlib.error, lzma.LZMAError...
            raise CorruptFileError(f"cannot decompress member: {exc}", **where) from exc
        return b"".join(chunks)

    def read_head(self, name: str, size: int) -> bytes:
        """Decompress only the first ``size`` bytes of member ``name`` (fewer when it is shorter).

        Lets a reader check a header's declared sizes before decompressing the rest.
        """
        info = self.info(name)
        try:
            with self._zf.open(info) as fh:
                return fh.read(size)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError, NotImplementedError) as exc:
            raise CorruptFileError(f"cannot decompress member: {exc}", path=self.source.name, member=name) from exc
        except Exception as exc:  # zlib.error, lzma.LZMAError...
            raise CorruptFileError(f"cannot decompress member: {exc}", path=self.source.name, member=name) from exc

    def stored_range(self, name: str) -> tuple[int, int] | None:
        """``(offset, size)`` of an uncompressed member's bytes within the archive file, else ``None``.

        Lets readers map a stored member in place instead of copying it.
        """
        info = self.info(name)
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            return None
        if info.header_offset < 0:  # a central directory offset that zipfile's arithmetic makes negative
            raise CorruptFileError("bad local header offset", path=self.source.name, member=name)
        self._fh.seek(info.header_offset)
        header = self._fh.read(30)
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            raise CorruptFileError("bad local header", path=self.source.name, member=name)
        name_len = int.from_bytes(header[26:28], "little")
        extra_len = int.from_bytes(header[28:30], "little")
        offset = info.header_offset + 30 + name_len + extra_len
        if offset + info.file_size > self.source.size:
            raise CorruptFileError("member extends past the end of the archive", path=self.source.name, member=name)
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


class SafeTar:
    """A tar archive (plain or gzip-compressed) read member by member in memory.

    Only regular files are accepted; the total of decompressed member bytes is
    bounded by ``limits.member_bytes`` per member and ``limits.total_bytes`` overall.
    """

    def __init__(self, source: Source) -> None:
        self.source = source
        self.limits: Limits = source.limits
        self._fh: BinaryIO = source.open()
        try:
            self._open_members()
        except BaseException:
            self._fh.close()  # a refused archive must not leak its handle
            raise

    def _open_members(self) -> None:
        source = self.source
        try:
            self._tf = tarfile.open(fileobj=self._fh, mode="r:*")
            members = []
            total = 0
            while True:
                self.limits.check("archive_entries", len(members) + 1, "too many archive entries", path=source.name)
                member = self._tf.next()
                if member is None:
                    break
                total += member.size
                self.limits.check("total_bytes", total, "archive declares too many bytes", path=source.name)
                members.append(member)
        except _TAR_ERRORS as exc:
            raise CorruptFileError(f"not a readable tar archive: {exc}", path=source.name) from exc
        for m in members:
            if not m.isfile() and not m.isdir():
                raise UnsafeArchiveError("link, device or FIFO member", path=source.name, member=m.name)
        self._by_name = {m.name: m for m in members}
        self._members = _Members(
            [m.name + ("/" if m.isdir() else "") for m in members], path=source.name, limits=self.limits
        )
        self.names = self._members.names

    def read(self, name: str) -> bytes:
        """Return the bytes of member ``name`` (bounded by ``limits.member_bytes``)."""
        where = {"path": self.source.name, "member": name}
        member = self._by_name.get(self._members.real(name)) if name in self._members.known else None
        if member is None:
            raise CorruptFileError("member not found", **where)
        self.limits.check("member_bytes", member.size, "archive member too large", **where)
        try:
            fh = self._tf.extractfile(member)
            data = fh.read(member.size + 1) if fh is not None else b""
        except _TAR_ERRORS as exc:
            raise CorruptFileError(f"cannot read member: {exc}", **where) from exc
        if len(data) != member.size:
            raise CorruptFileError(f"member truncated: {len(data)} of {member.size} bytes", **where)
        return data

    def open(self, name: str) -> io.BytesIO:
        """The member's bytes as a seekable file object."""
        return io.BytesIO(self.read(name))

    def close(self) -> None:
        """Close the archive."""
        try:
            self._tf.close()
        finally:
            self._fh.close()

    def __enter__(self) -> SafeTar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
