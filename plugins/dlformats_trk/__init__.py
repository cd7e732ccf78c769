"""deepcell-tracking files: formats ``trk`` (one movie) and ``trks`` (a batch of movies).

A tar archive, gzip-compressed (the current deepcell-tracking writer) or plain
(older ones), holding:

* ``lineage.json`` (``.trk``): the lineage, an object keyed by label, or
  ``lineages.json`` (``.trks``): a list of lineages, one per batch;
* ``raw.npy``: the image, ``(frames, height, width, channels)``, or
  ``(batch, frames, height, width, channels)`` in a ``.trks``;
* ``tracked.npy``: the labels, ``(frames, height, width, 1)`` int32 (batch first in a ``.trks``).

Reading gives ``X`` (channels, frames, height, width) in raw's dtype, ``y``
(1, frames, height, width) int32, ``frame_axis`` ``"T"``, one cell per label per
frame (value = cell = label) and the divisions of the lineage, checked against the
labels by every rule of a valid lineage: problems that leave the divisions well
defined become one :class:`~dlformats.DLFormatsWarning` (all listed in
``metadata["lineage_problems"]``), the others an
:class:`~dlformats.InconsistentDataError`.  A ``.trks`` gives one project per
batch (``dlformats.convert`` writes one output per batch; read one with
``options={"batch": N}``).  A ``.trks`` pads shorter movies with zeros to a common
length: trailing frames whose image and labels are all zero are dropped
(``options={"trim": False}`` keeps them; the count dropped is in
``metadata["padding_frames"]``).  Padding in height and width is kept, since
where it sits is not recorded.

Members are read in memory, never extracted, in one pass over the archive; links,
devices, unsafe names and pickled (object) arrays are refused.  Each ``.npy``
header is checked against :class:`~dlformats.Limits` (``array_bytes`` for each
array) before the rest of the member is decompressed, and the data is then
decompressed straight into the array; ``lineage.json`` is bounded by
``json_bytes``.  A member must hold exactly what its header declares, and a gzip
archive's CRC-32 must match.

Writing (``trk`` only) produces the layout deepcell-tracking writes: a gzip tar of
``lineage.json``, ``raw.npy`` and ``tracked.npy`` (see :mod:`.writer`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dlformats import FormatSpec, Option, Project, ReadOptions, WriteOptions, hookimpl
from dlformats.spec import parts

from .tarhead import first_member

if TYPE_CHECKING:
    from collections.abc import Callable

    from dlformats.sources import Source

_FIRST_MEMBERS = {"lineage.json": "trk", "lineages.json": "trks", "raw.npy": None, "tracked.npy": None}
"""Names a trk starts with, and which of the two formats each means (``None``: either)."""

READ_OPTIONS = (
    Option("batch", int, None, minimum=0, help="the batch of a .trks to read as the one project, instead of each"),
    Option("trim", bool, True, help="drop the all-zero frames a .trks pads shorter movies with"),
)


def _sniffer(fmt: str) -> Callable[[Source], bool | None]:
    def sniff(source: Source) -> bool | None:
        """True when the first member of the (gzip) tar is a trk member of this kind."""
        name = first_member(source.head)
        if name is None:
            return None
        # deepcell-tracking writes members at the top; allow one enclosing folder, as SafeTar does
        base = name.split("/", 1)[1] if name.count("/") == 1 else name
        if base not in _FIRST_MEMBERS:
            return False
        kind = _FIRST_MEMBERS[base]
        return kind is None or kind == fmt

    return sniff


def _read(source: Source, options: ReadOptions) -> Project | list[Project]:
    from .reader import read

    return read(source, options)


def _write(project: Project, path: Path, options: WriteOptions) -> None:
    from .writer import write

    write(project, path, options)


@hookimpl
def dlformats_formats() -> list[FormatSpec]:
    """Declare ``trk`` (read and write) and ``trks`` (read: one project per batch)."""
    return [
        FormatSpec(
            name="trk",
            description="deepcell-tracking .trk: image, tracked labels and lineage (gzip or plain tar)",
            extensions=(".trk",),
            sniff=_sniffer("trk"),
            reads=parts("X", "y", "cells", "divisions"),
            writes=parts("X", "y", "cells", "divisions"),
            read=_read,
            write=_write,
            frame_axes="T",  # deepcell-tracking movies: frames are time
            progress_unit="frames",
            read_options=READ_OPTIONS,
            write_options=(
                Option("feature", int, 0, index_of="features", help="the label feature to write (a trk holds one)"),
            ),
        ),
        FormatSpec(
            name="trks",
            description="deepcell-tracking .trks: a batch of tracked movies, read as one project per batch",
            extensions=(".trks",),
            sniff=_sniffer("trks"),
            reads=parts("X", "y", "cells", "divisions"),
            read=_read,
            read_options=READ_OPTIONS,
        ),
    ]
