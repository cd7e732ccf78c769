"""Resource bounds applied to every file dlformats reads.

Checked against *declared* sizes (npy headers, TIFF tags, zip and tar member
sizes, ``.dat`` dimensions) before anything is allocated, and against actual
sizes while decompressing.  Pass a :class:`Limits` to ``dlformats.read`` or set
them on the command line with ``--limit name=value``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .errors import InvalidOptionError, LimitExceededError

GiB = 1 << 30
MiB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Bounds on what reading one source may allocate or walk.

    All sizes are in bytes unless the name says otherwise.

    Attributes:
        array_bytes: largest single array (or frame buffer) held in memory at once.
        total_bytes: largest total declared size of all arrays of a source
            (lazy arrays count: a stack larger than memory streams, but is declared).
        member_bytes: largest decompressed archive member read into memory.
        archive_entries: most members in a zip or tar archive.
        json_bytes: largest JSON document.
        json_depth: deepest nesting of a JSON document.
        csv_bytes: largest CSV document.
        tiff_pages: most pages (IFDs) walked in a TIFF.
        download_bytes: largest file fetched from an ``http(s)://`` source.
        download_seconds: timeout for each network operation of a download.
    """

    array_bytes: int = 4 * GiB
    total_bytes: int = 1024 * GiB
    member_bytes: int = 4 * GiB
    archive_entries: int = 100_000
    json_bytes: int = 256 * MiB
    json_depth: int = 64
    csv_bytes: int = 1 * GiB
    tiff_pages: int = 1_000_000
    download_bytes: int = 16 * GiB
    download_seconds: int = 60

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
    suffixes = {"K": 1 << 10, "M": MiB, "G": GiB, "T": 1 << 40}
    if text[-1:].upper() in suffixes:
        scale = suffixes[text[-1].upper()]
        text = text[:-1]
    if not text.isascii() or not text.isdigit():
        raise InvalidOptionError(f"bad limit value in {item!r}", hint="use a whole number, optionally with K, M or G")
    return int(text) * scale


DEFAULT_LIMITS = Limits()
