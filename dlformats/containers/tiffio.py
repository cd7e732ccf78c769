"""Safe TIFF access for readers: open a TIFF with tifffile, guarded, and read a series lazily.

Used by the TIFF plugin and by any plugin holding TIFFs (the project zip holds OME-TIFFs).
tifffile is imported inside the functions, so importing this module stays light.

Guards (see ``HOSTILE_INPUT_FACTS.md``):

* :func:`walk_ifds` walks the IFD chain itself before tifffile sees the file: a chain
  that loops (tifffile only notices loops of period 100 and hangs on longer ones), an
  IFD or a tag value past the end of the file, or more than ``limits.tiff_pages``
  pages raise :class:`~dlformats.errors.CorruptFileError` or
  :class:`~dlformats.errors.LimitExceededError`.  Files named by a multi-file
  OME-TIFF are walked too, and must sit in the same folder.
* tifffile reports many problems in its log (missing OME planes zero-filled, a broken
  OME-XML falling back to another series...) and carries on; :func:`open_tiff` and the
  arrays of :func:`series_array` turn every warning or error tifffile logs or warns
  about the file into a :class:`~dlformats.errors.CorruptFileError`.
* :func:`series_array` checks declared sizes against ``limits.array_bytes`` (one
  plane) and ``limits.total_bytes`` (the series) before anything is allocated, and reads
  only the pages a request needs.

Axis letters: :func:`series_axes` maps tifffile's letters onto dlformats' ``TZBCSYX``:

========================  =====================================================
tifffile                  dlformats
========================  =====================================================
``X Y Z T C S``           the same letter
``I`` (sequence),         a frames axis: the first of ``T``, ``Z``, ``B`` that the
``Q`` (other)             series does not already have (``T`` for a plain stack)
anything else (``R`` tile, ``E`` lambda, ``A`` angle, ``P`` phase, ``H`` lifetime, ...)
                          :class:`~dlformats.errors.AmbiguousInputError` naming the
                          ``axes`` option (tifffile drops axes of length 1, so only
                          longer ones reach this)
========================  =====================================================
"""

from __future__ import annotations

import contextlib
import math
import os
import struct
import warnings
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import (
    AmbiguousInputError,
    CorruptFileError,
    DLFormatsError,
    UnsupportedFeatureError,
    environment_error,
)
from ..limits import Limits

# TIFF field types -> bytes per value (TIFF 6, BigTIFF); unknown types are left to tifffile.
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}

_GENERIC_AXES = "IQ"
"""tifffile letters for a sequence of unknown meaning; :func:`series_axes` makes them frames."""

_KNOWN_AXES = "XYZTCS"


def _where(name: str, member: str | None) -> dict[str, Any]:
    return {"path": name, "member": member}


# ------------------------------------------------------------------ IFD walk
def walk_ifds(
    fh: BinaryIO,
    *,
    name: str,
    member: str | None = None,
    limits: Limits,
    offset: int = 0,
    size: int | None = None,
    pages_before: int = 0,
    check_entries: bool = True,
    offsets: list[int] | None = None,
) -> int:
    """Walk the IFD chain of the TIFF at ``offset`` in ``fh``; return its number of pages.

    With ``check_entries=False`` only the chain itself is checked (a pointer chase, several
    times faster); the caller must then check each IFD's entries with :func:`_check_ifd`
    before tifffile parses it.  ``offsets``, when given, receives every IFD's offset.

    Checks, without trusting the file: the header; every IFD and every out-of-line tag
    value lies inside the ``size`` bytes of the TIFF (default: to the end of ``fh``);
    no IFD is visited twice (a loop of any period); at most ``limits.tiff_pages`` pages
    in all (``pages_before`` counts pages of other files of the same dataset).

    Raises:
        CorruptFileError: not a TIFF, a loop, an offset past the end.
        LimitExceededError: too many pages.
    """
    where = _where(name, member)
    if size is None:
        fh.seek(0, os.SEEK_END)
        size = fh.tell() - offset
    fh.seek(offset)
    header = fh.read(16)
    if len(header) < 8 or header[:2] not in (b"II", b"MM"):
        raise CorruptFileError("not a TIFF file (bad byte-order mark)", **where)
    bo = "<" if header[:2] == b"II" else ">"
    version = struct.unpack(bo + "H", header[2:4])[0]
    if version == 42:
        first = struct.unpack(bo + "I", header[4:8])[0]
        count_fmt, entry_size, off_fmt, head_size = "H", 12, "I", 8
    elif version == 43:
        if len(header) < 16:
            raise CorruptFileError("truncated BigTIFF header", **where)
        bytesize, zero = struct.unpack(bo + "HH", header[4:8])
        if bytesize != 8 or zero != 0:
            raise CorruptFileError(f"invalid BigTIFF header (offset size {bytesize})", **where)
        first = struct.unpack(bo + "Q", header[8:16])[0]
        count_fmt, entry_size, off_fmt, head_size = "Q", 20, "Q", 16
    else:
        raise CorruptFileError(f"not a TIFF file (version {version})", **where)
    count_size = struct.calcsize(count_fmt)
    off_size = struct.calcsize(off_fmt)
    value_room = off_size  # inline value bytes in an IFD entry
    visited: set[int] = set()
    pos = first
    pages = 0
    while pos:
        if pos in visited:
            raise CorruptFileError(f"the IFD chain loops back to offset {pos} after {pages} pages", **where)
        visited.add(pos)
        if pos < head_size or pos + count_size > size:
            raise CorruptFileError(f"IFD {pages} at offset {pos} lies outside the file ({size} bytes)", **where)
        pages += 1
        limits.check("tiff_pages", pages_before + pages, "too many TIFF pages", **where)
        fh.seek(offset + pos)
        count = struct.unpack(bo + count_fmt, fh.read(count_size))[0]
        end = pos + count_size + count * entry_size + off_size
        if count == 0 or end > size:
            raise CorruptFileError(
                f"IFD {pages - 1} at offset {pos} declares {count} entries, which do not fit in the file", **where
            )
        if offsets is not None:
            offsets.append(pos)
        if check_entries:
            block = fh.read(count * entry_size + off_size)
            _check_entries(block, count, bo, entry_size, off_fmt, value_room, size, pages - 1, where)
            pos = struct.unpack(bo + off_fmt, block[count * entry_size :])[0]
        else:
            fh.seek(offset + pos + count_size + count * entry_size)
            pos = struct.unpack(bo + off_fmt, fh.read(off_size))[0]
    if pages == 0:
        raise CorruptFileError("the TIFF has no pages (first IFD offset is 0)", **where)
    return pages


def _check_entries(
    block: bytes,
    count: int,
    bo: str,
    entry_size: int,
    off_fmt: str,
    value_room: int,
    size: int,
    page: int,
    where: dict[str, Any],
) -> None:
    # A tag whose values lie past the end would make tifffile allocate what it declares.
    n_fmt = bo + ("HHI" if entry_size == 12 else "HHQ")
    head = struct.calcsize(n_fmt)
    for i in range(count):
        entry = block[i * entry_size : (i + 1) * entry_size]
        tag, dtype, n = struct.unpack(n_fmt, entry[:head])
        itemsize = _TYPE_SIZES.get(dtype)
        if itemsize is None:
            continue
        nbytes = n * itemsize
        if nbytes <= value_room:
            continue
        value_offset = struct.unpack(bo + off_fmt, entry[head:])[0]
        if value_offset + nbytes > size:
            raise CorruptFileError(
                f"tag {tag} of IFD {page} declares {nbytes:,} bytes at offset {value_offset}, "
                f"past the end of the file ({size:,} bytes)",
                **where,
            )


# ------------------------------------------------------------------ tifffile problems
_COLLECTOR: Any = None


def _collector() -> Any:
    """A logging handler keeping the messages of WARNING or worse (logging is imported only with tifffile)."""
    global _COLLECTOR
    import logging

    if _COLLECTOR is None:

        class _Collector(logging.Handler):
            def __init__(self) -> None:
                super().__init__(logging.WARNING)
                self.messages: list[str] = []

            def emit(self, record: logging.LogRecord) -> None:
                self.messages.append(record.getMessage())

        _COLLECTOR = _Collector
    return _COLLECTOR()


@contextlib.contextmanager
def tifffile_problems(name: str, member: str | None = None, what: str = "tifffile") -> Iterator[None]:
    """Turn warnings and log records (WARNING or worse) tifffile emits inside the block into errors.

    Raises :class:`CorruptFileError` naming the file and quoting tifffile; exceptions other
    than :class:`DLFormatsError` raised inside become :class:`CorruptFileError` too.
    """
    import logging

    logger = logging.getLogger("tifffile")
    collector = _collector()
    propagate = logger.propagate
    logger.addHandler(collector)
    logger.propagate = False  # reported as our error instead
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield
            except DLFormatsError:
                raise
            except MemoryError:
                raise
            except Exception as exc:
                raise CorruptFileError(f"{what}: {type(exc).__name__}: {exc}", **_where(name, member)) from exc
    finally:
        logger.removeHandler(collector)
        logger.propagate = propagate
    messages = list(collector.messages)
    for w in caught:
        if _is_tifffile_warning(w):
            messages.append(str(w.message))
        else:  # not about the file: pass it on untouched
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    if messages:
        text = "; ".join(dict.fromkeys(_strip_repr(m) for m in messages))
        raise CorruptFileError(f"{what} reports a problem with the file: {text[:500]}", **_where(name, member))


def _is_tifffile_warning(w: warnings.WarningMessage) -> bool:
    if issubclass(w.category, (ResourceWarning, DeprecationWarning, PendingDeprecationWarning, FutureWarning)):
        return False  # about how tifffile is used or cleaned up, not about the file
    return "tifffile" in (w.filename or "")


def _strip_repr(message: str) -> str:
    # "<tifffile.TiffFile 'x.tif'> OME series ..." -> "OME series ..." (we name the file ourselves)
    if message.startswith("<tifffile.") and "> " in message:
        return message.split("> ", 1)[1]
    return message


# ------------------------------------------------------------------ open
def open_tiff(
    fh: BinaryIO | str | Path,
    *,
    name: str,
    member: str | None = None,
    limits: Limits,
    offset: int = 0,
    size: int | None = None,
    omexml: str | None = None,
    own: bool = False,
    on_disk: bool = False,
) -> Any:
    """Open a TIFF safely and return a ``tifffile.TiffFile`` with its series already parsed.

    The IFD walk and tifffile read the same open file (a path is opened once), so a
    file replaced meanwhile cannot be checked in one version and parsed in another.
    Reads through the returned file take its handle's lock (``filehandle.lock``), so
    lazy arrays over it may be shared between threads.

    Args:
        fh: a path, or a seekable binary handle (kept open by the returned object).
        name: the file's name for messages (the archive's, when ``member`` is given).
        member: the archive member holding the TIFF, if any.
        limits: ``tiff_pages`` bounds the pages walked (all files of a multi-file OME-TIFF).
        offset: where the TIFF starts in ``fh`` (a TIFF stored uncompressed inside a zip).
        size: the TIFF's length in bytes from ``offset`` (default: to the end).
        omexml: OME-XML to use instead of the file's own (a companion ``.ome`` file).
        own: close the handle ``fh`` once the returned file is gone (or opening fails).
        on_disk: the handle reads a file on disk whose ``fh.name`` is its path: the other
            files of a multi-file OME-TIFF are looked for beside it (a path ``fh`` implies it).

    Raises:
        CorruptFileError: a loop or bad offset in the IFD chain, an OME-XML tifffile cannot
            use, files of a multi-file OME-TIFF outside the folder, anything tifffile
            warns about or fails on.
        LimitExceededError: more pages than ``limits.tiff_pages``.
    """
    import tifffile

    where = _where(name, member)
    if isinstance(fh, (str, Path)):
        fh, own, on_disk = _open_path(fh, where), True, True
    # other files of a multi-file OME-TIFF can only be found beside a file on disk
    path: Path | None = Path(fh.name) if on_disk and member is None else None
    try:
        pages = walk_ifds(fh, name=name, member=member, limits=limits, offset=offset, size=size)
        fh.seek(0)
        kwargs: dict[str, Any] = {}
        if offset or size is not None:
            kwargs.update(offset=offset, size=size)
        if omexml is not None:
            kwargs["omexml"] = omexml
        if path is None:
            kwargs["_multifile"] = False
        with tifffile_problems(name, member, "tifffile cannot open the file"):
            if path is not None:  # tifffile takes the folder of the other files from the handle's name
                tif = tifffile.TiffFile(fh, **kwargs)
            else:
                tif = tifffile.TiffFile(fh, name=_base(name, member), **kwargs)
    except BaseException:
        if own:
            fh.close()
        raise
    try:
        ome = omexml if omexml is not None else (tif.ome_metadata if tif.is_ome else None)
        others = _other_files(ome, _base(name, member)) if ome else []
        if others and (path is None or member is not None):
            raise UnsupportedFeatureError(
                f"a multi-file OME-TIFF whose other files ({', '.join(others[:3])}...) can only be read from disk",
                **where,
            )
        if others:
            assert path is not None
            _walk_companions(others, path, name=name, limits=limits, pages=pages)
        with tifffile_problems(name, member, "tifffile cannot read the series"):
            series = tif.series
            for s in series:
                _ = s.levels
        if ome and not _binary_only(ome) and (not series or series[0].kind != "ome"):
            raise CorruptFileError(
                "the file's OME-XML metadata cannot be used (tifffile fell back to "
                f"{series[0].kind if series else 'no'} series)",
                **where,
            )
        if not series:
            raise CorruptFileError("the TIFF holds no image series", **where)
    except BaseException:
        tif.close()
        if own:
            fh.close()
        raise
    _shared(tif)
    # Lazy arrays keep the TiffFile (through its series) alive; once nothing does, the
    # handle is closed here rather than left to the garbage collector.  A handle the
    # caller still owns is not tifffile's to close and stays open.
    if own:
        weakref.finalize(tif, fh.close)
    return tif


def _open_path(path: str | Path, where: dict[str, Any]) -> BinaryIO:
    """A handle over the file at ``path``, opened once (see :class:`dlformats.sources.OpenFile`)."""
    from ..sources import OpenFile

    try:
        file = OpenFile.open(path)
    except OSError as exc:
        raise environment_error(exc, path=where.get("path"), doing="opening") or CorruptFileError(
            f"cannot open: {exc.strerror or exc}", **where
        ) from exc
    if file is None:
        raise CorruptFileError("not a regular file", **where)
    return file.handle()


def _shared(tif: Any) -> None:
    """Make tifffile take its handle's lock around every seek and read of ``tif`` (threads share lazy arrays)."""
    tif.filehandle.set_lock(True)


def _base(name: str, member: str | None) -> str:
    return os.path.basename(member if member else name) or "file.tif"


def ome_file_names(omexml: str) -> list[str]:
    """File names listed by ``<UUID FileName=...>`` in an OME-XML document, in order, once each."""
    return list(dict.fromkeys(name for name, _ in _ome_uuids(omexml)))


def _ome_uuids(omexml: str) -> list[tuple[str, str]]:
    import re

    out = []
    for attrs, text in re.findall(r"<(?:\w+:)?UUID\b([^>]*)>([^<]*)<", omexml):
        found = re.search(r"\bFileName\s*=\s*\"([^\"]*)\"", attrs)
        if found:
            out.append((found.group(1), text.strip()))
    return out


def _other_files(omexml: str, own_name: str) -> list[str]:
    """Files other than this one that a (multi-file) OME-XML needs."""
    import re

    root = re.search(r"<(?:\w+:)?OME\b[^>]*?\bUUID\s*=\s*\"([^\"]*)\"", omexml)
    root_uuid = root.group(1).strip() if root else None
    others = [name for name, uuid in _ome_uuids(omexml) if uuid != root_uuid and name.lower() != own_name.lower()]
    return list(dict.fromkeys(others))


def _binary_only(omexml: str) -> bool:
    return "BinaryOnly" in omexml[:4096]


def _walk_companions(others: list[str], path: Path, *, name: str, limits: Limits, pages: int) -> None:
    # tifffile opens the other files of a multi-file OME-TIFF itself: walk them first.
    for other in others:
        if not other or other != os.path.basename(other) or other in (".", "..") or "\\" in other or "\0" in other:
            raise CorruptFileError(f"OME-XML names the file {other!r} outside the TIFF's folder", path=name)
        sibling = path.parent / other
        if not sibling.is_file():
            raise CorruptFileError(f"file {other!r} of this multi-file OME-TIFF is missing", path=name)
        with open(sibling, "rb") as handle:
            pages += walk_ifds(handle, name=str(sibling), limits=limits, pages_before=pages)


# ------------------------------------------------------------------ axes
def series_axes(series: Any) -> str:
    """Axis letters (``TZBCSYX``) of the full-resolution level of ``series``, one per dimension.

    See the module docstring for the mapping from tifffile's letters.

    Raises:
        AmbiguousInputError: an axis dlformats cannot place (``R`` tiles, ``E`` lambda...);
            the ``axes`` option resolves it.
    """
    level = _level0(series)
    axes = str(level.axes).upper()
    shape = tuple(int(s) for s in level.shape)
    out = []
    free = [a for a in "TZB" if a not in axes]
    for letter, length in zip(axes, shape):
        if letter in _KNOWN_AXES:
            out.append(letter)
        elif letter in _GENERIC_AXES and free:
            out.append(free.pop(0))
        else:
            names = {"R": "tile", "E": "lambda", "A": "angle", "P": "phase", "H": "lifetime", "M": "mosaic"}
            raise AmbiguousInputError(
                f"the TIFF has an axis {letter!r} ({names.get(letter, 'unknown meaning')}) of length {length} "
                f"in axes {axes} of shape {shape}",
                option="axes",
                hint="give axes= with one letter per dimension from T, Z, B, C, S, Y, X",
            )
    return "".join(out)


def _level0(series: Any) -> Any:
    levels = getattr(series, "levels", None)
    return levels[0] if levels else series


# ------------------------------------------------------------------ lazy array
def series_array(series: Any, *, name: str, member: str | None = None, limits: Limits) -> TiffSeriesArray:
    """A lazy array over the full-resolution level of a tifffile series.

    Indexing reads only the pages needed (one page per plane for most files).
    Declared sizes are checked first: one page against ``limits.array_bytes``, the whole
    series against ``limits.total_bytes``.
    """
    return TiffSeriesArray(series, name=name, member=member, limits=limits)


_GUARDED = False


def _lzw_schedule(early: bool) -> tuple[Any, Any, Any]:
    """Bit widths, bit offsets and table sizes (entries when read) of the codes of one LZW run (the
    codes after a CLEAR), by index.

    The first code after a CLEAR adds no table entry; each later one adds one, and the width
    grows when the table reaches 511/1023/2047 entries (TIFF's "early change", MSB streams) or
    512/1024/2048 (old LSB streams).  4,096 entries is the most a table holds.
    """
    import numpy as np

    k = np.arange(_LZW_RUN, dtype=np.int64)
    table = 258 + np.maximum(k - 1, 0)  # entries before code k is read
    steps = (511, 1023, 2047) if early else (512, 1024, 2048)
    widths = 9 + sum((table >= step).astype(np.int64) for step in steps)
    return widths, np.concatenate(([0], np.cumsum(widths)[:-1])), table


_LZW_RUN = 4096 - 258 + 2  # codes of a run: the first, one per free table entry, and the CLEAR or EOI ending it
_LZW_SCHEDULES: dict[bool, tuple[Any, Any, Any]] = {}


def _check_lzw(data: Any) -> None:
    """Refuse an LZW stream whose first code after a CLEAR is not a literal byte (or EOI).

    imagecodecs 2026.3 takes such a code as the start of a string it then reads from the
    table entry the code names, which the CLEAR emptied: stale or never-set pointers, so
    a corrupt strip crashed the interpreter (SIGSEGV, found by fuzzing) or worse.  Only the
    code boundaries are walked, a run (CLEAR to CLEAR) at a time with numpy; codes beyond
    the table are left to imagecodecs, which refuses them itself.
    """
    import numpy as np

    raw = np.frombuffer(data, np.uint8)
    if len(raw) < 2:
        return
    msb = not (raw[0] == 0 and raw[1] & 1)
    if msb not in _LZW_SCHEDULES:
        _LZW_SCHEDULES[msb] = _lzw_schedule(early=msb)
    widths, offsets, table = _LZW_SCHEDULES[msb]
    padded = np.concatenate((raw, np.zeros(4, np.uint8))).astype(np.uint32)
    n = len(raw)
    # the 4 bytes from each byte on, as one word (most significant first for MSB streams): one
    # gather per code instead of four
    if msb:
        words = (padded[:n] << 24) | (padded[1 : n + 1] << 16) | (padded[2 : n + 2] << 8) | padded[3 : n + 3]
    else:
        words = padded[:n] | (padded[1 : n + 1] << 8) | (padded[2 : n + 2] << 16) | (padded[3 : n + 3] << 24)
    del padded

    bits = len(raw) * 8
    at = 9  # after the CLEAR the stream starts with (imagecodecs checks that one)
    while at + 9 <= bits:
        where = at + offsets
        inside = where + widths <= bits
        where, width = where[inside], widths[inside]
        if not len(where):
            return
        word, shift = words[where >> 3], (where & 7).astype(np.uint32)
        mask = ((1 << width) - 1).astype(np.uint32)
        codes = ((word >> (32 - shift - width.astype(np.uint32))) if msb else (word >> shift)) & mask
        first = int(codes[0])
        if first == 256:  # CLEAR again
            at += 9
            continue
        if first == 257:
            return  # EOI
        if first > 255:
            raise ValueError(f"corrupt LZW data: code {first} right after a CLEAR, where only a byte may come")
        # a run ends at a CLEAR or EOI, or at a code beyond the table (which imagecodecs refuses)
        stops = np.flatnonzero((codes[1:] == 256) | (codes[1:] == 257) | (codes[1:] > table[1 : len(codes)])) + 1
        if not len(stops) or int(codes[stops[0]]) != 256:
            return  # EOI, a code imagecodecs refuses, or the data or table ending first
        end = int(stops[0])
        at = int(where[end] + width[end])


def _lzw_decode(data: Any, *, out: Any = None, **kwargs: Any) -> Any:
    """imagecodecs' LZW decoding, after :func:`_check_lzw` (see there why)."""
    import imagecodecs

    _check_lzw(data)
    return imagecodecs.lzw_decode(data, out=out, **kwargs)


def _guard_decoders() -> None:
    """Have tifffile decode LZW through :func:`_lzw_decode` (once per process)."""
    global _GUARDED
    if _GUARDED:
        return
    import tifffile

    codecs = getattr(tifffile.TIFF.DECOMPRESSORS, "_codecs", None)
    if isinstance(codecs, dict):
        codecs[5] = _lzw_decode
    _GUARDED = True


def _check_page(
    page: Any, index: int, shape: tuple[int, ...], dtype: Any, limits: Limits, where: dict[str, Any]
) -> None:
    """Check a page before decoding it: tifffile decodes each page at its own declared size.

    The page must match the first page's shape and dtype, and its strips or tiles must fit
    ``limits.array_bytes`` (tifffile allocates a whole chunk at the size the tags declare: a
    fuzzed TileLength of 3.8e9 asked for 7 GiB to decode a 256 x 65792 page).
    """
    import numpy as np

    _guard_decoders()
    if tuple(page.shape) != shape or np.dtype(page.dtype) != dtype:
        raise CorruptFileError(
            f"page {index} declares shape {tuple(page.shape)} {page.dtype}, unlike the first page's {shape} {dtype}",
            **where,
        )
    chunk_bytes = math.prod(int(n) for n in page.chunks) * np.dtype(page.dtype).itemsize
    limits.check("array_bytes", chunk_bytes, f"TIFF tile or strip of page {index} too large", **where)
    # tifffile reads each strip or tile at the byte count its tags declare: one past the end of the
    # file would ask for that many bytes (a fuzzed StripByteCounts of 4e9 raised a bare MemoryError)
    size = getattr(getattr(page.parent, "filehandle", None), "size", None)
    offsets = np.asarray(page.dataoffsets, np.uint64)  # tag values: 0 ... 2**64 - 1
    counts = np.asarray(page.databytecounts, np.uint64)
    if size is not None and len(counts) == len(offsets) and len(counts):
        end = np.uint64(int(size))
        outside = (counts > 0) & ((offsets > end) | (counts > end - np.minimum(offsets, end)))
        if bool(outside.any()):
            k = int(np.flatnonzero(outside)[0])
            raise CorruptFileError(
                f"page {index}: strip or tile {k} of {int(counts[k]):,} bytes at offset {int(offsets[k]):,} "
                f"lies outside the TIFF ({int(size):,} bytes)",
                **where,
            )


class TiffSeriesArray:
    """Numpy-style read access to a tifffile series, a page at a time.

    Attributes:
        shape: the series' shape (tifffile's squeezed shape, axes as :func:`series_axes`).
        dtype: native-byte-order numpy dtype.
        ndim: number of dimensions.
    """

    def __init__(self, series: Any, *, name: str, member: str | None = None, limits: Limits) -> None:
        import numpy as np

        self._where = _where(name, member)
        self._name, self._member, self._limits = name, member, limits
        level = _level0(series)
        self._level = level
        self._tif = getattr(series, "parent", None)  # keeps the file open while the array lives
        self.shape: tuple[int, ...] = tuple(int(s) for s in level.shape)
        self.ndim = len(self.shape)
        self.dtype = np.dtype(level.dtype).newbyteorder("=")
        itemsize = self.dtype.itemsize
        limits.check("total_bytes", math.prod(self.shape) * itemsize, "TIFF series too large", **self._where)
        with tifffile_problems(name, member, "tifffile cannot index the series' pages"):
            keyframe = level.keyframe
            pages = list(level.pages)
        if keyframe is None:
            raise CorruptFileError("the series has no pages", **self._where)
        self._key_shape = tuple(int(s) for s in keyframe.shape)
        self._key_dtype = np.dtype(keyframe.dtype)
        page_items = math.prod(int(s) for s in keyframe.shape)
        split = self.ndim
        while split > 0 and math.prod(self.shape[split:]) < page_items:
            split -= 1
        if math.prod(self.shape[split:]) != page_items:
            raise UnsupportedFeatureError(
                f"pages of shape {tuple(keyframe.shape)} do not tile the series shape {self.shape}", **self._where
            )
        self._split = split  # dimensions before `split` index pages; the rest is one page
        self._page_shape = self.shape[split:]
        limits.check("array_bytes", page_items * itemsize, "TIFF page too large", **self._where)
        nplanes = math.prod(self.shape[:split])
        for parent in {id(p.parent): p.parent for p in pages if p is not None}.values():
            parent.filehandle.set_lock(True)  # other files of a multi-file OME-TIFF too: threads share the array
        self._pages = pages
        self._contiguous: int | None = None
        self._last: tuple[int, Any] | None = None
        if len(self._pages) != nplanes:
            offset = getattr(level, "dataoffset", None)
            if offset is None or keyframe.bitspersample % 8 or keyframe.compression != 1:
                raise UnsupportedFeatureError(
                    f"series of shape {self.shape} stored in {len(self._pages)} pages is not supported",
                    **self._where,
                )
            self._contiguous = int(offset)  # e.g. ImageJ hyperstacks over 4 GB: one IFD, raw planes after it
            self._file_dtype = np.dtype(level.dtype).newbyteorder(level.parent.byteorder)

    def __len__(self) -> int:
        return self.shape[0] if self.shape else 0

    def __repr__(self) -> str:
        return f"TiffSeriesArray(shape={self.shape}, dtype={self.dtype})"

    def page(self, index: int) -> Any:
        """Return page (plane group) ``index`` in C order of the leading dimensions, shaped like the page part.

        The last page decoded is kept: the planes of a page holding samples (RGB, or
        thousands of samples in a hostile file) are asked for one at a time, and each
        would otherwise decode the whole page again.
        """
        cached = self._last
        if cached is not None and cached[0] == index:
            return cached[1]
        data = self._decode(index)
        self._last = (index, data)
        return data

    def _decode(self, index: int) -> Any:
        import numpy as np

        if self._contiguous is not None:
            return self._contiguous_page(index)
        page = self._pages[index]
        if page is None:
            raise CorruptFileError(f"page {index} of the series is missing from the file", **self._where)
        with tifffile_problems(self._name, self._member, f"tifffile cannot index page {index}"):
            _check_page(page, index, self._key_shape, self._key_dtype, self._limits, self._where)
        fh = page.parent.filehandle
        with tifffile_problems(self._name, self._member, f"tifffile cannot decode page {index}"):
            if page.parent is self._tif:
                data = page.asarray()  # tifffile takes the handle's lock to seek and read
            else:  # the other files of a multi-file OME-TIFF: tifffile closed them after parsing
                with fh.lock:  # one thread at a time opens, reads and closes such a file again
                    reopened = fh.closed
                    if reopened:
                        fh.open()
                    try:
                        data = page.asarray()
                    finally:
                        if reopened:
                            fh.close()
        data = np.asarray(data)
        if data.size != math.prod(self._page_shape):
            raise CorruptFileError(
                f"page {index} holds {data.size} values, expected {math.prod(self._page_shape)}", **self._where
            )
        return data.reshape(self._page_shape).astype(self.dtype, copy=False)

    def _contiguous_page(self, index: int) -> Any:
        import numpy as np

        nbytes = math.prod(self._page_shape) * self.dtype.itemsize
        fh = self._level.parent.filehandle
        offset = self._contiguous + index * nbytes
        if offset + nbytes > fh.size:  # also keeps a huge declared offset from overflowing seek (fuzz finding)
            raise CorruptFileError(f"plane {index} lies past the end of the file", **self._where)
        with fh.lock:
            fh.seek(offset)
            data = fh.read(nbytes)
        if len(data) != nbytes:
            raise CorruptFileError(f"plane {index} is cut short by the end of the file", **self._where)
        return np.frombuffer(data, self._file_dtype).reshape(self._page_shape).astype(self.dtype)

    def __getitem__(self, key: Any) -> Any:
        import numpy as np

        if not isinstance(key, tuple):
            key = (key,)
        if any(k is Ellipsis for k in key):
            at = key.index(Ellipsis)
            key = key[:at] + (slice(None),) * (self.ndim - len(key) + 1) + key[at + 1 :]
        if len(key) > self.ndim:
            raise IndexError(f"too many indices for shape {self.shape}")
        key = key + (slice(None),) * (self.ndim - len(key))
        lead: list[list[int]] = []
        keep: list[bool] = []
        for k, length in zip(key[: self._split], self.shape[: self._split]):
            if isinstance(k, slice):
                lead.append(list(range(length))[k])
                keep.append(True)
            else:
                i = int(k)
                if not -length <= i < length:
                    raise IndexError(f"index {i} out of range for axis of length {length}")
                lead.append([i % length])
                keep.append(False)
        tail = key[self._split :]
        count = math.prod(len(ix) for ix in lead)
        strides = [math.prod(self.shape[d + 1 : self._split]) for d in range(self._split)]
        out: Any = None
        import itertools

        for n, combo in enumerate(itertools.product(*lead)):
            flat = sum(i * s for i, s in zip(combo, strides))
            part = self.page(flat)[tail]
            if out is None:
                lead_shape = [len(ix) for ix, kept in zip(lead, keep) if kept]
                self._limits.check("array_bytes", count * part.nbytes, "requested TIFF region too large", **self._where)
                out = np.empty((count, *part.shape), self.dtype)
            out[n] = part
        if out is None:
            tail_shape = np.empty(self._page_shape, self.dtype)[tail].shape
            return np.empty([len(ix) for ix, kept in zip(lead, keep) if kept] + list(tail_shape), self.dtype)
        return out.reshape(*lead_shape, *out.shape[1:])

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        data = self[...]
        return data if dtype is None else data.astype(dtype)

    def extent(self, key: Any) -> tuple[int, int, int, Any] | None:
        """Where the page ``self[key]`` selects lies in the file, byte for byte:
        ``(descriptor, offset, nbytes, dtype)``; ``None`` unless ``key`` is one whole page
        stored uncompressed and contiguous in the file (see :func:`page_extent`)."""
        if not isinstance(key, tuple) or len(key) != self.ndim or self._split == 0:
            return None
        if any(k != slice(None) for k in key[self._split :]):
            return None
        if not all(isinstance(k, int) and 0 <= k < n for k, n in zip(key[: self._split], self.shape)):
            return None
        index = 0
        for k, n in zip(key[: self._split], self.shape[: self._split]):
            index = index * n + k
        nbytes = math.prod(self._page_shape) * self.dtype.itemsize
        fh = self._level.parent.filehandle
        if self._contiguous is not None:
            return _file_extent(fh, self._contiguous + index * nbytes, nbytes, self._file_dtype)
        page = self._pages[index]
        if page is None or page.parent is not self._tif:
            return None
        with tifffile_problems(self._name, self._member, f"tifffile cannot index page {index}"):
            _check_page(page, index, self._key_shape, self._key_dtype, self._limits, self._where)
            return page_extent(page, nbytes)


def page_extent(page: Any, nbytes: int) -> tuple[int, int, int, Any] | None:
    """``(descriptor, offset, nbytes, dtype)`` of a page's pixels when the file holds them as they are:
    uncompressed, one sample, not tiled, no predictor or bit order, in one contiguous run of
    ``nbytes``; else ``None``."""
    import numpy as np

    key = getattr(page, "keyframe", None) or page  # a TiffFrame has its tags on its key frame
    if (
        key.compression != 1
        or key.samplesperpixel != 1
        or 322 in key.tags  # tiled
        or not page.is_final
        or len(page.dataoffsets) == 0
        or sum(int(n) for n in page.databytecounts) != nbytes
    ):
        return None
    dtype = np.dtype(page.dtype).newbyteorder(page.parent.byteorder)
    return _file_extent(page.parent.filehandle, int(page.dataoffsets[0]), nbytes, dtype)


def _file_extent(fh: Any, offset: int, nbytes: int, dtype: Any) -> tuple[int, int, int, Any] | None:
    """The extent of ``nbytes`` at ``offset`` of tifffile's handle ``fh`` in its real file, if it has one."""
    base = getattr(fh, "_offset", None)  # where the TIFF starts in the file (a zip member stored in place)
    try:
        fd = fh.fileno()
    except (OSError, AttributeError, ValueError):  # in memory: nothing to copy from
        return None
    if not isinstance(base, int) or base < 0 or offset < 0:
        return None
    start = base + offset
    if start + nbytes > os.fstat(fd).st_size:
        return None  # decoding it says what is wrong
    return fd, start, nbytes, dtype


# ------------------------------------------------------------------ OME planes without a series
def _layout(fh: BinaryIO, offset: int) -> tuple[str, str, int, str, int]:
    """Byte order, count format, entry size, offset format and inline room of the TIFF at ``offset``."""
    fh.seek(offset)
    header = fh.read(4)
    bo = "<" if header[:2] == b"II" else ">"
    if struct.unpack(bo + "H", header[2:4])[0] == 43:
        return bo, "Q", 20, "Q", 8
    return bo, "H", 12, "I", 4


def _check_ifd(fh: BinaryIO, ifd: int, page: int, *, name: str, member: str | None, offset: int, size: int) -> None:
    """Check one IFD's tag values lie inside the file (the part of :func:`walk_ifds` a quick walk skips)."""
    bo, count_fmt, entry_size, off_fmt, room = _layout(fh, offset)
    count_size = struct.calcsize(count_fmt)
    fh.seek(offset + ifd)
    count = struct.unpack(bo + count_fmt, fh.read(count_size))[0]
    block = fh.read(count * entry_size + struct.calcsize(off_fmt))
    _check_entries(block, count, bo, entry_size, off_fmt, room, size, page, _where(name, member))


# IFD 0 tags read by hand for a simple OME-TIFF (TIFF 6 and the ImageDepth extension).
_WIDTH, _LENGTH, _BITS, _PHOTOMETRIC, _DESCRIPTION, _SAMPLES, _SAMPLE_FORMAT, _DEPTH = (
    256,
    257,
    258,
    262,
    270,
    277,
    339,
    32997,
)
_HAND_TAGS = frozenset((_WIDTH, _LENGTH, _BITS, _PHOTOMETRIC, _DESCRIPTION, _SAMPLES, _SAMPLE_FORMAT, _DEPTH))
_NUMBER_TYPES = {3: "H", 4: "I", 16: "Q"}  # SHORT, LONG, LONG8

_TIFF_DTYPES = {
    (1, 1): "bool",
    (1, 8): "uint8",
    (1, 16): "uint16",
    (1, 32): "uint32",
    (2, 8): "int8",
    (2, 16): "int16",
    (2, 32): "int32",
    (3, 32): "float32",
    (3, 64): "float64",
}
"""(SampleFormat, BitsPerSample) -> numpy dtype, for the pixel types an OME ``Pixels Type`` names."""

_OME_DTYPES = {
    "bit": "bool",
    "uint8": "uint8",
    "uint16": "uint16",
    "uint32": "uint32",
    "int8": "int8",
    "int16": "int16",
    "int32": "int32",
    "float": "float32",
    "double": "float64",
}
"""OME ``Pixels Type`` -> numpy dtype."""


class _NotSimpleError(Exception):
    """Not the simple OME-TIFF read by hand: tifffile's series path decides."""


class _OmePlan:
    """What the tags of IFD 0 and its OME-XML say about a simple OME-TIFF."""

    def __init__(self, sizes: dict[str, int], order: str, dtype: str, channel_names: list[str]) -> None:
        self.sizes = sizes  # X, Y, Z, C, T
        self.order = order  # C, Z and T, fastest first
        self.dtype = dtype  # numpy dtype name (native byte order)
        self.channel_names = channel_names


def _ifd_values(fh: BinaryIO, ifd: int, *, offset: int, limits: Limits) -> dict[int, Any]:
    """The tags of :data:`_HAND_TAGS` in the IFD at ``ifd``: numbers as ``int``, the description as bytes.

    The IFD's entries must have been checked (:func:`_check_ifd`): every value lies inside the TIFF.
    """
    bo, count_fmt, entry_size, off_fmt, room = _layout(fh, offset)
    head = bo + ("HHI" if entry_size == 12 else "HHQ")
    head_size = struct.calcsize(head)
    count_size = struct.calcsize(count_fmt)
    fh.seek(offset + ifd)
    count = struct.unpack(bo + count_fmt, fh.read(count_size))[0]
    block = fh.read(count * entry_size)
    if len(block) != count * entry_size:
        raise _NotSimpleError("IFD cut short")
    values: dict[int, Any] = {}
    for i in range(count):
        entry = block[i * entry_size : (i + 1) * entry_size]
        tag, kind, n = struct.unpack(head, entry[:head_size])
        if tag not in _HAND_TAGS:
            continue
        if tag in values:
            raise _NotSimpleError(f"tag {tag} twice")
        field = entry[head_size:]
        if tag == _DESCRIPTION:
            if kind != 2 or n > limits.json_bytes:  # ASCII, and a sane size (else tifffile reads it)
                raise _NotSimpleError("description not ASCII or too long")
            if n <= room:
                data = field[:n]
            else:
                fh.seek(offset + struct.unpack(bo + off_fmt, field)[0])
                data = fh.read(n)
            if len(data) != n:
                raise _NotSimpleError("description cut short")
            values[tag] = data
        else:
            fmt = _NUMBER_TYPES.get(kind)
            if fmt is None or n != 1 or struct.calcsize(fmt) > room:
                raise _NotSimpleError(f"tag {tag} is not one number")
            values[tag] = struct.unpack(bo + fmt, field[: struct.calcsize(fmt)])[0]
    return values


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]  # namespaces vary (OME 2016-06 and older): match local names


def _children(element: Any, name: str) -> list[Any]:
    return [child for child in element if isinstance(child.tag, str) and _local(child.tag) == name]


def _only(element: Any, name: str) -> Any:
    found = _children(element, name)
    if len(found) != 1:
        raise _NotSimpleError(f"{len(found)} {name} elements")
    return found[0]


def _whole(value: str | None, default: int | None = None) -> int:
    """A non-negative integer attribute, written plainly."""
    if value is None:
        if default is None:
            raise _NotSimpleError("a size is missing")
        return default
    value = value.strip()
    if not (value.isascii() and value.isdigit()):
        raise _NotSimpleError(f"not a whole number: {value[:20]!r}")
    return int(value)


def _hand_plan(fh: BinaryIO, ifds: list[int], *, offset: int, limits: Limits) -> _OmePlan:
    """Read IFD 0's tags and OME-XML by hand, without tifffile; :class:`_NotSimpleError` unless the file is simple.

    Simple (the rules :func:`ome_planes` documents): one sample per pixel, a pixel type OME
    names and agreeing with the OME ``Pixels Type``, one OME ``Image`` with one ``Pixels``, a
    ``DimensionOrder`` starting ``XY``, ``SizeC x SizeZ x SizeT`` pages, ``SizeY x SizeX``
    the size of IFD 0, channels of one sample, at most one ``TiffData`` starting at IFD 0
    and plane 0 and naming no other file.
    """
    tags = _ifd_values(fh, ifds[0], offset=offset, limits=limits)
    width, height = tags.get(_WIDTH), tags.get(_LENGTH)
    if not width or not height:
        raise _NotSimpleError("no image size")
    if tags.get(_SAMPLES, 1) != 1 or tags.get(_PHOTOMETRIC) == 2 or tags.get(_DEPTH, 1) != 1:
        raise _NotSimpleError("several samples, RGB or a volume per page")
    dtype = _TIFF_DTYPES.get((tags.get(_SAMPLE_FORMAT, 1), tags.get(_BITS, 1)))
    if dtype is None:
        raise _NotSimpleError("a pixel type OME does not name")
    raw = tags.get(_DESCRIPTION)
    if raw is None:
        raise _NotSimpleError("no description")
    text = raw.rstrip(b"\0").decode("utf-8").strip()  # (not UTF-8: tifffile's series path decides)
    if not text[-10:].strip().endswith("OME>"):  # how tifffile tells OME-XML
        raise _NotSimpleError("not OME-XML")
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise _NotSimpleError("a DTD")  # entities are left to tifffile's path
    from xml.etree import ElementTree

    root = ElementTree.fromstring(text)
    if _local(root.tag) != "OME":
        raise _NotSimpleError("root is not OME")
    pixels = _only(_only(root, "Image"), "Pixels")
    order = pixels.get("DimensionOrder", "")
    if len(order) != 5 or not order.startswith("XY") or sorted(order[2:]) != ["C", "T", "Z"]:
        raise _NotSimpleError(f"DimensionOrder {order[:20]!r}")
    sizes = {k: _whole(pixels.get(f"Size{k}")) for k in "XYZCT"}
    if min(sizes.values()) < 1 or sizes["C"] * sizes["Z"] * sizes["T"] != len(ifds):
        raise _NotSimpleError("sizes do not match the pages")
    channels = _children(pixels, "Channel")
    if any(_whole(ch.get("SamplesPerPixel"), 1) != 1 for ch in channels):
        raise _NotSimpleError("a channel of several samples")
    tiffdata = _children(pixels, "TiffData")
    if len(tiffdata) > 1:
        raise _NotSimpleError("planes mapped one by one")
    if tiffdata:
        (data,) = tiffdata
        if not data.attrib and not len(data):
            raise _NotSimpleError("an empty TiffData")  # as tifffile's dictionary of the OME-XML has it: no mapping
        if "UUID" in data.attrib or _children(data, "UUID"):
            raise _NotSimpleError("planes in other files")
        if any(_whole(data.get(k), 0) for k in ("IFD", "FirstC", "FirstZ", "FirstT")):
            raise _NotSimpleError("planes start elsewhere")
    if _OME_DTYPES.get(pixels.get("Type", "")) != dtype:
        raise _NotSimpleError("Pixels Type disagrees with BitsPerSample and SampleFormat")
    if (height, width) != (sizes["Y"], sizes["X"]):
        raise _NotSimpleError("SizeY x SizeX disagree with the first page")
    return _OmePlan(sizes, order[2:], dtype, [ch.get("Name", "") for ch in channels])


class OmePlanes:
    """The planes of a single-file OME-TIFF, read by page index without parsing every page.

    Opening a long OME-TIFF with tifffile's series parses every IFD; a project zip
    only needs the page holding one (c, z, t) plane.  This array maps
    ``[c, z, t, y, x]`` through the OME ``DimensionOrder`` to a page, checks that page's
    IFD, and decodes it alone.  Shape ``(C, Z, T, height, width)``.

    Shape, dtype and :attr:`channel_names` come from IFD 0's tags and OME-XML read by
    hand; tifffile opens the file at the first page read (once, whichever thread comes
    first) and must see IFD 0 the same way, else :class:`~dlformats.errors.CorruptFileError`.
    An array over an open file: it cannot be pickled.
    """

    def __init__(self, fh: BinaryIO, ifds: list[int], plan: _OmePlan, **where: Any) -> None:
        import threading

        import numpy as np

        self._handle, self._ifds = fh, ifds
        self._where = where
        sizes = plan.sizes
        self.shape = (sizes["C"], sizes["Z"], sizes["T"], sizes["Y"], sizes["X"])
        self.ndim = 5
        self.dtype = np.dtype(plan.dtype)
        self.channel_names: list[str] = list(plan.channel_names)
        """OME ``Channel Name`` of each channel, ``""`` where a channel has none."""
        stride = 1
        self._strides: dict[str, int] = {}
        for letter in plan.order:
            self._strides[letter] = stride
            stride *= sizes[letter]
        self._checked: set[int] = {0}
        self._tif: Any = None
        self._opening = threading.Lock()

    def _tiff(self) -> Any:
        """tifffile's view of the file, opened at the first call (threads wait for the one opening it)."""
        tif = self._tif
        if tif is None:
            with self._opening:
                tif = self._tif
                if tif is None:
                    tif = self._tif = self._open()
        return tif

    def _open(self) -> Any:
        import numpy as np
        import tifffile

        name, member = self._where["name"], self._where["member"]
        self._handle.seek(0)
        with tifffile_problems(name, member, "tifffile cannot open the file"):
            tif = tifffile.TiffFile(
                self._handle,
                name=_base(name, member),
                offset=self._where["offset"],
                size=self._where["size"],
                _multifile=False,
            )
        try:
            with tifffile_problems(name, member, "tifffile cannot open the file"):
                key = tif.pages.first
                seen = (
                    int(key.offset),
                    tuple(int(s) for s in key.shape),
                    None if key.dtype is None else np.dtype(key.dtype),
                    int(key.samplesperpixel),
                    len(tif.pages),
                    bool(tif.is_ome),
                )
            expected = (self._ifds[0], tuple(self.shape[3:]), self.dtype, 1, len(self._ifds), True)
            if seen != expected:
                what = ("first IFD at", "page shape", "dtype", "samples per pixel", "pages", "OME")
                differ = ", ".join(f"{w} {s} not {e}" for w, s, e in zip(what, seen, expected) if s != e)
                raise CorruptFileError(
                    f"tifffile reads the TIFF unlike its tags and OME-XML read first ({differ})",
                    path=name,
                    member=member,
                )
        except BaseException:
            tif.close()
            raise
        _shared(tif)
        return tif

    def _checked_page(self, index: int) -> Any:
        """Page ``index``, its IFD and tags checked when first met (under the handle's lock)."""
        name, member = self._where["name"], self._where["member"]
        tif = self._tiff()
        fh = tif.filehandle
        # tifffile's handle has one position: seeks and reads take its lock (pixels decode outside it)
        with fh.lock:
            if index not in self._checked:
                # tifffile's handle: its positions already start at the TIFF
                _check_ifd(fh, self._ifds[index], index, name=name, member=member, offset=0, size=self._where["size"])
                self._checked.add(index)
            with tifffile_problems(name, member, f"tifffile cannot read page {index}"):
                page = tif.pages[index]
                if int(page.offset) != self._ifds[index]:
                    raise CorruptFileError(
                        f"tifffile finds page {index} at offset {page.offset}, not at IFD offset {self._ifds[index]}",
                        path=name,
                        member=member,
                    )
                _check_page(page, index, tuple(self.shape[3:]), self.dtype, self._where["limits"], _where(name, member))
        return page

    def _page(self, index: int) -> Any:
        import numpy as np

        page = self._checked_page(index)
        with tifffile_problems(self._where["name"], self._where["member"], f"tifffile cannot read page {index}"):
            return np.asarray(page.asarray()).astype(self.dtype, copy=False)

    def __getitem__(self, key: Any) -> Any:
        if not isinstance(key, tuple) or len(key) < 3 or not all(isinstance(k, int) for k in key[:3]):
            raise IndexError("OmePlanes takes [c, z, t, ...] with integer c, z and t")
        c, z, t = key[:3]
        index = c * self._strides["C"] + z * self._strides["Z"] + t * self._strides["T"]
        return self._page(index)[key[3:]] if len(key) > 3 else self._page(index)

    def extent(self, key: Any) -> tuple[int, int, int, Any] | None:
        """Where plane ``[c, z, t, :, :]`` lies in the file, byte for byte (see :func:`page_extent`), or ``None``."""
        if not isinstance(key, tuple) or len(key) != 5 or any(k != slice(None) for k in key[3:]):
            return None
        c, z, t = key[:3]
        if not all(isinstance(k, int) and 0 <= k < n for k, n in zip((c, z, t), self.shape)):
            return None
        index = c * self._strides["C"] + z * self._strides["Z"] + t * self._strides["T"]
        page = self._checked_page(index)
        with self._tif.filehandle.lock:  # the extent may look at the handle (its file and offset)
            return page_extent(page, self.shape[3] * self.shape[4] * self.dtype.itemsize)

    def __reduce__(self) -> Any:
        name, member = self._where["name"], self._where["member"]
        raise TypeError(
            f"planes read from an open file ({name}{': ' + member if member else ''}) cannot be pickled: "
            "read the file again in the other process, or pickle numpy.asarray() of the arrays"
        )

    def __repr__(self) -> str:
        return f"OmePlanes(shape={self.shape}, dtype={self.dtype})"


def ome_planes(
    fh: BinaryIO | str | Path,
    *,
    name: str,
    member: str | None = None,
    limits: Limits,
    offset: int = 0,
    size: int | None = None,
) -> OmePlanes | None:
    """A simple single-file OME-TIFF for plane-by-plane reading, or ``None``.

    Simple means: one image, one sample per pixel, pages in ``DimensionOrder`` from IFD 0
    and exactly ``C x Z x T`` of them (what DeepCell Label and dlformats write), the
    size and pixel type of IFD 0 those of the OME ``Pixels``.  Anything else returns
    ``None``: use :func:`open_tiff` and its series.  The IFD chain is walked (loops,
    bounds, ``tiff_pages``) and IFD 0's tags and OME-XML are read by hand, without
    importing tifffile; tifffile opens the file at the first page read, and each page's
    tags are checked when it is first read.  The array reads through ``fh`` (a handle
    given stays the caller's to close once the array is gone; a path is opened here and
    closed with the array).

    Raises:
        CorruptFileError: a loop or bad offset in the IFD chain, a tag value past the end.
        LimitExceededError: more pages than ``limits.tiff_pages``, more than
            ``limits.total_bytes`` declared.
    """
    where = _where(name, member)
    handle: Any = _open_path(fh, where) if isinstance(fh, (str, Path)) else fh
    try:
        if size is None:
            size = handle.seek(0, os.SEEK_END) - offset
        ifds: list[int] = []
        walk_ifds(
            handle, name=name, member=member, limits=limits, offset=offset, size=size, check_entries=False, offsets=ifds
        )
        _check_ifd(handle, ifds[0], 0, name=name, member=member, offset=offset, size=size)
        try:
            plan: _OmePlan | None = _hand_plan(handle, ifds, offset=offset, limits=limits)
        except (_NotSimpleError, ValueError, SyntaxError, struct.error, UnicodeDecodeError):
            plan = None  # anything unusual: the full series path decides and reports (ParseError is a SyntaxError)
        if plan is None:
            if handle is not fh:
                handle.close()
            return None
        import numpy as np

        itemsize = np.dtype(plan.dtype).itemsize
        limits.check("total_bytes", math.prod(plan.sizes.values()) * itemsize, "OME-TIFF too large", **where)
    except BaseException:
        if handle is not fh:
            handle.close()
        raise
    planes = OmePlanes(handle, ifds, plan, name=name, member=member, offset=offset, size=size, limits=limits)
    if handle is not fh:
        weakref.finalize(planes, handle.close)
    return planes


__all__ = [
    "OmePlanes",
    "TiffSeriesArray",
    "ome_file_names",
    "ome_planes",
    "open_tiff",
    "page_extent",
    "series_array",
    "series_axes",
    "tifffile_problems",
    "walk_ifds",
]
