"""Spot tables (``spots.csv``) as DeepCell Label reads and writes them: format ``spots-csv``.

A header row naming an ``x`` and a ``y`` column, then one row per spot.
Coordinates are pixels (``x`` along width, ``y`` along height), floats; line ends
are CRLF or LF.  DeepCell Label writes ``x,y[,cell assignment per feature...]``;
tables from elsewhere (e.g. a pandas export whose first, unnamed column is the
index) may hold ``x`` and ``y`` anywhere.  Every other column is kept, by name and
in file order (see :func:`dlformats.containers.codecs.spots_from_csv`).

A spots table alone gives a project of spots only (no image, no labels); merge
it with an image with ``dlformats.read(image, labels="spots.csv")``.  The writer
writes ``x,y`` first, then the other columns, with a header and a trailing
newline (DeepCell Label's own exporter omits the newline and its reader then drops
the last spot).
"""

from __future__ import annotations

import codecs
import csv
import warnings
from pathlib import Path

from dlformats import DLFormatsWarning, FormatSpec, NotMyFormat, Project, ReadOptions, WriteOptions, hookimpl
from dlformats.containers.codecs import spots_from_csv, spots_to_csv
from dlformats.errors import CorruptFileError, environment_error
from dlformats.sources import Source
from dlformats.spec import parts

FORMAT = "spots-csv"


def _header(head: bytes) -> list[str] | None:
    """The header fields of a CSV from its leading bytes, or ``None`` if they are not text with a full line."""
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8) :]
    end = head.find(b"\n")
    if end < 0 or b"\x00" in head[:end]:
        return None
    try:
        line = head[:end].decode("utf-8")
    except UnicodeDecodeError:
        return None
    try:
        return next(csv.reader([line.rstrip("\r")]), [])
    except csv.Error:
        return None


def sniff(source: Source) -> bool | None:
    """True for text whose first line names an ``x`` and a ``y`` column; False for binary content."""
    head = source.head
    if not head or b"\x00" in head:
        return False
    fields = _header(head)
    if fields is None:
        return None
    names = [f.strip().casefold() for f in fields]
    if names.count("x") == 1 and names.count("y") == 1:
        return True
    return None  # a CSV without x and y: the reader explains what is needed


def read(source: Source, options: ReadOptions) -> Project:
    """Read a spots table into a project holding only :attr:`Project.spots`."""
    head = source.head
    if b"\x00" in head:
        raise NotMyFormat(f"content is {source.describe()}, not a CSV table")
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise environment_error(exc, path=source.name, doing="reading") or CorruptFileError(
            f"cannot read: {exc}", path=source.name
        ) from exc
    spots = spots_from_csv(data, path=source.name, member=None, limits=options.limits)
    return Project(spots=spots)


def write(project: Project, path: Path, options: WriteOptions) -> None:
    """Write the project's spots as ``spots.csv`` (a project without spots gives a header only, with a warning)."""
    from dlformats.model import Spots

    if project.spots is None:
        warnings.warn("the project has no spots; writing an empty spots table", DLFormatsWarning, stacklevel=2)
    path.write_bytes(spots_to_csv(project.spots if project.spots is not None else Spots()))


@hookimpl
def dlformats_formats() -> list[FormatSpec]:
    """Declare ``spots-csv``."""
    return [
        FormatSpec(
            name=FORMAT,
            description="spot table (spots.csv): header with x and y columns, more columns kept",
            extensions=(".csv",),
            sniff=sniff,
            reads=parts("spots"),
            writes=parts("spots"),
            read=read,
            write=write,
        )
    ]
