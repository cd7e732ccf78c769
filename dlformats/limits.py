"""Resource bounds applied to every file dlformats reads.

Checked against *declared* sizes (npy headers, TIFF tags, zip and tar member
sizes, ``.dat`` dimensions) before anything is allocated, and against actual
sizes while decompressing.  Pass a :class:`Limits` to ``dlformats.read`` or set
them on the command line with ``--limit name=value``.

How the defaults are sized
--------------------------
Aim: no file smaller than 100 MB, however crafted, makes one read hold more than
about 1 GB.  A small file can claim much memory in two ways only:

* decompression: deflate reaches about 1000:1 and bzip2 far more, and label masks
  really do compress 1000:1, so the ratio cannot be capped - what is decompressed
  *whole* (an ``.npy`` member of a compressed ``.npz`` or ``.trk``, a member read as
  bytes, a decoded frame) is bounded by ``array_bytes`` or ``member_bytes``, whatever
  the file's own size;
* parsing: a JSON document takes up to about 50 times its size as Python objects
  (``[{},{},...]``), a CSV table about 80 times (measured), hence small
  ``json_bytes`` and ``csv_bytes``.  A project zip's ``cells.json`` in its usual form
  (a list of flat entries of integers) is parsed straight into int64 columns, about
  its own size again, so it is bounded by ``member_bytes`` instead; in any other form
  it is held to ``json_bytes``.

One read holds whole at most two arrays or members (an image and its labels: a
``.trk``'s ``raw.npy`` and ``tracked.npy``), plus a frame being decoded or a document
being parsed: 2 x 256 MiB + about 400 MB, under 1 GB with the interpreter.

What streams is not held, so it is bounded by ``total_bytes`` (the declared size,
1 TiB) only: an ``.npy`` or TIFF on disk, or a member stored uncompressed in a zip
on disk, is read a frame at a time, so an 8 GB stack still converts; only each
frame must fit ``array_bytes``.  A file that must be decompressed whole and is
legitimately larger (a ``.trk`` of a long, large movie, a compressed ``.npz``)
needs a higher limit: the error names it, e.g. ``--limit array_bytes=2G``, and a
``.trk`` then reads as long as each of its arrays fits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .errors import InvalidOptionError, LimitExceededError

_GiB = 1 << 30
_MiB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Bounds on what reading one source may allocate or walk.

    All sizes are in bytes unless the name says otherwise.

    Attributes:
        array_bytes: largest single array (or frame buffer) held in memory at once: an
            array decompressed whole (an ``.npy`` member of a compressed archive, a
            ``.trk``'s ``raw.npy`` or ``tracked.npy``), a decoded PNG, a TIFF page or the
            planes asked of a lazy array at once.  Default 256 MiB (see the module
            docstring for why).
        total_bytes: largest total declared size of all arrays of a source
            (lazy arrays count: a stack larger than memory streams, but is declared).
        member_bytes: largest archive member read whole into memory as bytes (a TIFF
            or other member decompressed to be parsed; ``.npy`` members are bounded by
            ``array_bytes`` instead, JSON and CSV ones by ``json_bytes`` and
            ``csv_bytes``), and largest in-memory source (bytes or a stream).
            A deflated TIFF member of a project zip above it is not refused but read
            in bounded memory, inflated on demand (``SeekableMember``).  Default 256 MiB.
        archive_entries: most members in a zip or tar archive.
        json_bytes: largest JSON document (up to ~50 times as much memory once
            parsed).  Default 8 MiB: a DeepCell Label ``cells.json`` of some 180,000
            cell-frame entries in the dict form (the usual list form is parsed into
            columns and bounded by ``member_bytes``: millions of entries).
        json_depth: deepest nesting of a JSON document.
        csv_bytes: largest CSV document (up to ~80 times as much memory once parsed).
            Default 8 MiB: some 300,000 spots.
        tiff_pages: most pages (IFDs) walked in a TIFF.
        download_bytes: largest file fetched from an ``http(s)://`` source (to disk).
        download_seconds: deadline for a whole download (connecting, headers, redirects and body), in seconds.
    """

    array_bytes: int = 256 * _MiB
    total_bytes: int = 1024 * _GiB
    member_bytes: int = 256 * _MiB
    archive_entries: int = 100_000
    json_bytes: int = 8 * _MiB
    json_depth: int = 64
    csv_bytes: int = 8 * _MiB
    tiff_pages: int = 1_000_000
    download_bytes: int = 16 * _GiB
    download_seconds: float = 60

    def check(self, name: str, found: int, what: str, **where: object) -> None:
        """Raise :class:`LimitExceededError` if ``found`` exceeds the limit ``name``."""
        allowed = getattr(self, name)
        if found > allowed:
            raise LimitExceededError(what, limit=name, allowed=allowed, found=found, **where)

    def replace(self, **changes: int) -> Limits:
        """Return a copy with some limits changed."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def parse(cls, items: list[str] | tuple[str, ...], base: Limits | None = None) -> Limits:
        """Build limits from ``["name=value", ...]``; values accept K, M, G suffixes (powers of 1024)."""
        names = {f.name for f in dataclasses.fields(cls)}
        changes: dict[str, int] = {}
        for item in items:
            name, sep, value = item.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in names:
                raise InvalidOptionError(
                    f"bad limit {item!r}", hint="use name=value with name one of " + ", ".join(sorted(names))
                )
            changes[name] = _parse_size(value.strip(), item)
        return dataclasses.replace(base or cls(), **changes)


def _parse_size(text: str, item: str) -> int:
    scale = 1
    suffixes = {"K": 1 << 10, "M": _MiB, "G": _GiB, "T": 1 << 40}
    if text[-1:].upper() in suffixes:
        scale = suffixes[text[-1].upper()]
        text = text[:-1]
    if not text.isascii() or not text.isdigit():
        raise InvalidOptionError(f"bad limit value in {item!r}", hint="use a whole number, optionally with K, M or G")
    return int(text) * scale


DEFAULT_LIMITS = Limits()


__all__ = ["DEFAULT_LIMITS", "Limits"]
