"""geff, the graph exchange file format for tracking (spec 1.3): format ``geff``, read and written.

A geff is a zarr group (v2 or v3; a ``.geff`` folder, or a ``tracks`` group inside a zarr store as
motile-tracker keeps it) whose attributes hold ``"geff"`` metadata, with ``nodes/ids``,
``nodes/props/<name>/values`` (and ``missing``), ``edges/ids`` (E x 2, source -> target) and
``edges/props``. traccuracy, ultrack, motile-tracker and TrackMate exchange tracks this way.

Writing (``dlformats.write(project, "tracks.geff")``): one node per cell entry with the properties ``t``
(the frame), ``y``, ``x`` (the centroid of the entry's pixels, in pixels), ``z`` (the slice, for
Z-frames, whose nodes all have ``t`` 0), ``seg_id`` (the pixel value), ``cell``, ``c`` (the feature,
for projects with several), ``tracklet`` and ``lineage`` (declared in ``track_node_props``); edges join a
cell's consecutive appearances and a dividing cell's last appearance before the division to each
daughter's first; ``axes`` say the types and units (``frame``, ``pixel``). The labels are written as the
array ``segmentation`` ((frames, height, width); (frames, features, ...) with several features;
(1, Z, height, width) for Z-frames), int32 as in the project, referenced by ``related_objects`` (with the
deprecated ``label_prop`` as well, which traccuracy 0.4 reads). zarr v2 unless ``zarr_format=3``.

Reading takes any valid geff: its time axis gives the frames; cells come from the ``cell`` property when
there is one, else from the graph (a chain of one-to-one edges is one cell, numbered by the ``seg_id`` of
its first node when those are unique); an edge between two cells is a division link (daughters grouped by
parent node, ``t`` = the daughters' first frame). With a ``labels`` related object (or ``seg_id`` and a
segmentation) the project gets ``y``, read lazily a plane at a time; without one it is a project of cells
and divisions. Node properties dlformats does not map (and the space axes of a graph without
segmentation) are kept in ``project.metadata["geff"]`` and written back; edge properties are dropped
with a warning. Metadata keys outside the spec, unsafe array codecs (pickle) or dtypes, paths leaving
the store and declared sizes over :class:`~dlformats.Limits` raise typed errors. See
:func:`parse_options` for the options.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlformats import FormatSpec, InvalidOptionError, Option, hookimpl
from dlformats.spec import parts

if TYPE_CHECKING:
    from dlformats import Project, ReadOptions, WriteOptions
    from dlformats.sources import Source

FORMAT = "geff"


@dataclass(frozen=True)
class Options:
    """The ``geff`` options, parsed (see :func:`parse_options`)."""

    group: str = ""
    segmentation: bool = True
    zarr_format: int = 2
    select: Mapping[str, int] | None = None


READ_OPTIONS = (
    Option("group", str, "", help="the geff group inside the folder, e.g. 'tracks' (default: found)"),
    Option("segmentation", bool, True, help="read the labels the geff's related_objects name; false: the graph alone"),
)
WRITE_OPTIONS = (
    Option("group", str, "", help="'' makes the folder the geff; a name (tracks) writes it beside 'segmentation'"),
    Option("segmentation", bool, True, help="write the labels; false writes the graph alone"),
    Option("zarr_format", int, 2, choices=(2, 3), help="zarr format version of the store"),
)


def parse_options(extra: Mapping[str, Any], *, writing: bool) -> Options:
    """The ``geff`` options as :class:`Options`: ``extra`` (plus ``select`` when reading) as the core gives them.

    The core has checked them against :data:`READ_OPTIONS` / :data:`WRITE_OPTIONS` (types,
    choices); only what depends on the value (``group`` a path inside the folder) is left.

    Read options:

    * ``group`` (str, default: found): the geff group inside the folder, e.g. ``"tracks"``; by default
      the folder itself when it is a geff, else its only child group that is one.
    * ``segmentation`` (bool, default True): read the labels the geff's ``related_objects`` name;
      False reads the graph alone (cells and divisions).
    * ``select`` (dict, default none): ``{"Z": k}`` or ``{"T": k}`` for 3-D segmentations over several
      time points (the shared option of array readers).

    Write options:

    * ``group`` (str, default ``""``): ``""`` makes the folder itself the geff group, with the labels in
      its child array ``segmentation``; a name (``"tracks"``) writes the geff as that child group and the
      labels beside it as ``segmentation`` (motile-tracker's layout, ``related_objects`` path
      ``../segmentation``).
    * ``segmentation`` (bool, default True): write the labels; False writes the graph alone.
    * ``zarr_format`` (int, default 2): 2 or 3.
    """
    group = extra["group"]
    if group and any(p in ("", ".", "..") for p in group.split("/")):
        raise InvalidOptionError(
            f"group {group!r} must be a path of group names inside the folder", option="group", format=FORMAT
        )
    if not writing:
        return Options(group=group, segmentation=extra["segmentation"], select=extra.get("select"))
    return Options(group=group, segmentation=extra["segmentation"], zarr_format=extra["zarr_format"])


def sniff(source: Source) -> bool | None:
    """True for a folder that is a geff group or holds one as a child (reads two small JSON files at most)."""
    from .store import find_geff_groups

    if not source.is_dir or source.path is None:
        return False
    return bool(find_geff_groups(source.path, source.limits))


def _read(source: Source, options: ReadOptions) -> Project:
    from .reader import read

    return read(source, options)


def _write(project: Project, path: Path, options: WriteOptions) -> None:
    from .writer import write

    write(project, path, options)


@hookimpl
def dlformats_formats() -> list[FormatSpec]:
    """Declare ``geff`` (a folder: read and write)."""
    return [
        FormatSpec(
            name=FORMAT,
            description="geff tracking graph (a zarr group): one node per cell entry, lineage edges, segmentation",
            extensions=(".geff",),
            sniff=sniff,
            reads=parts("y", "cells", "divisions"),
            writes=parts("y", "cells", "divisions"),
            read=_read,
            write=_write,
            folder=True,
            frame_axes="TZ",  # time points, or the z-slices of one 3-D frame (batches read back as time)
            read_options=READ_OPTIONS,
            write_options=WRITE_OPTIONS,
        )
    ]
