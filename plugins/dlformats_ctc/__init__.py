"""Cell Tracking Challenge (CTC) folders: format ``ctc``, read and written.

Layouts (frame numbers ``TTT`` zero-padded, 0-based):

* results ``NN_RES/``: ``maskTTT.tif`` per frame and ``res_track.txt``;
* ground truth ``NN_GT/``: ``TRA/man_trackTTT.tif`` and ``TRA/man_track.txt``, with ``SEG/man_segTTT.tif``
  (or ``man_seg_TTT_ZZZ.tif``, one slice of a 3-D frame) for a subset of frames when present;
* raw images ``NN/``: ``tTTT.tif`` per frame.

Give the folder (``01_RES``, ``01_GT``, ``01_GT/TRA``, ``01``) or its track file. Each mask is one TIFF,
YX or ZYX (a 3-D frame), integer labels, 0 the background. The track file holds one line ``L B E P`` per
track (label, first and last frame inclusive, parent label or 0), separated by spaces or tabs.

Reading gives ``y`` (features, frames, height, width) int32, lazy, one frame file at a time: one feature
(the masks), two for ground truth with ``SEG/`` (``features == ["TRA", "SEG"]``). A sequence of 3-D frames
with one time point becomes Z-frames (``frame_axis == "Z"``); several time points of 3-D frames need
``select`` (``{"Z": k}`` keeps slice ``k`` of every frame, ``{"T": k}`` the 3-D frame ``k``). Frames are
taken from the digits of each name; a gap in the numbering is an error naming the missing frame. Cells: one
entry per label per frame (value = the label); a track continuing another one without a sibling (a cell
that vanished and came back) keeps the first track's cell, so ``cell`` is the label of the first track of
the chain; two or more children of one track are a division (``t`` = the daughters' first frame). Every
rule of the format is checked against the masks at once, and all problems found are raised together as an
:class:`~dlformats.InconsistentDataError` naming the file, frame and label. A raw folder gives ``X``.

Writing makes a results folder (``layout="gt"``: ``TRA/man_track*``, and ``SEG/`` from a feature named
``"SEG"``): every frame present, 3-digit frame numbers (4 from 1,000 frames), uint16 masks relabelled to
track labels (a cell's first track keeps its cell number when the numbers fit), a cell split into a new
track at every gap (parent = its previous piece), daughters' tracks whose parent is the dividing cell's
last piece. Z-frames make one 3-D frame. See :func:`parse_options` for the options.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlformats import FormatSpec, InvalidOptionError, Option, hookimpl
from dlformats.spec import parts

if TYPE_CHECKING:
    from dlformats import Project, ReadOptions, WriteOptions
    from dlformats.sources import Source

FORMAT = "ctc"
RES_TRACK = "res_track.txt"
GT_TRACK = "man_track.txt"
TRACK_FILES = (RES_TRACK, GT_TRACK)
LAYOUTS = ("res", "gt", "raw")
CONFLICTS = ("refuse", "detach")

READ_OPTIONS = (Option("layout", str, None, choices=LAYOUTS, help="which layout to read when a folder holds several"),)
WRITE_OPTIONS = (
    Option("layout", str, "res", choices=("res", "gt"), help="res: maskTTT.tif + res_track.txt; gt: TRA/ (+ SEG/)"),
    Option("feature", int, 0, index_of="features", help="the label feature written as masks"),
    Option("image", str, None, help="a new or empty folder (outside the results) for the image as raw tTTT.tif"),
    Option("conflicts", str, "refuse", choices=CONFLICTS, help="a division CTC cannot express: refuse, or detach"),
)
MAX_LABEL = 65535
"""uint16, the masks' type: the most tracks a folder written by dlformats holds."""

MASK_NAMES = {
    "res": re.compile(r"mask(\d+)\.tiff?"),
    "gt": re.compile(r"man_track(\d+)\.tiff?"),
    "raw": re.compile(r"t(\d+)\.tiff?"),
}
SEG_NAME = re.compile(r"man_seg(\d+)\.tiff?")
SEG_SLICE_NAME = re.compile(r"man_seg_(\d+)_(\d+)\.tiff?")


@dataclass(frozen=True)
class Options:
    """The ``ctc`` options, parsed (see :func:`parse_options`)."""

    layout: str | None = None
    feature: int = 0
    image: str | None = None
    conflicts: str = "refuse"
    select: Mapping[str, int] | None = None


def parse_options(extra: Mapping[str, Any], *, writing: bool) -> Options:
    """The ``ctc`` options as :class:`Options`: ``extra`` (plus ``select`` when reading) as the core gives them.

    The core has checked them against :data:`READ_OPTIONS` / :data:`WRITE_OPTIONS` (types,
    choices, ``feature`` a feature of the project); only what depends on the value is left.

    Read options:

    * ``layout`` (str, default: detected): ``"res"``, ``"gt"`` or ``"raw"``, for a folder holding several.
    * ``select`` (dict, default none): ``{"Z": k}`` or ``{"T": k}`` for 3-D frames over several time
      points (the shared option of array readers).

    Write options:

    * ``layout`` (str, default ``"res"``): ``"res"`` writes ``maskTTT.tif`` + ``res_track.txt``;
      ``"gt"`` writes ``TRA/man_trackTTT.tif`` + ``TRA/man_track.txt`` (and ``SEG/`` from a feature
      named ``"SEG"``).
    * ``feature`` (int, default 0): the label feature written as masks.
    * ``image`` (str, default none): a folder (new or empty, outside the results folder) to receive the
      image in the CTC raw layout ``tTTT.tif``, (channels, height, width) or (Z, channels, height, width)
      per frame in the image's dtype. The image never goes into the results folder: the CTC tools read
      every ``.tif`` there as a mask.
    * ``conflicts`` (str, default ``"refuse"``): what to do with a division CTC cannot express (a parent
      still labelled in or after its daughters' first frame, a daughter appearing before its parent's
      last frame, a parent absent before the division): ``"refuse"`` raises one error naming every such
      cell and division; ``"detach"`` writes the offending piece as a track of its own (the parent's
      frames from the division on get a new track with no parent; a daughter that starts too early keeps
      no parent link).
    """
    if not writing:
        return Options(layout=extra["layout"], select=extra.get("select"))
    image = extra["image"]
    if image == "":
        raise InvalidOptionError("image='' must name a folder", option="image", format=FORMAT)
    return Options(layout=extra["layout"], feature=extra["feature"], image=image, conflicts=extra["conflicts"])


@dataclass(frozen=True)
class Layout:
    """Where a CTC sequence's files are: ``kind`` (res, gt, raw), the mask folder, the track file, SEG."""

    kind: str
    folder: Path
    track: Path | None = None
    seg: Path | None = None


def detect(path: Path, layout: str | None = None) -> list[Layout]:
    """The CTC layouts found at ``path`` (a folder or a track file), most specific first; no file is read."""
    if path.is_file():
        if path.name == RES_TRACK:
            return [Layout("res", path.parent, path)]
        if path.name == GT_TRACK:
            return [Layout("gt", path.parent, path, _seg_beside(path.parent))]
        return []
    if not path.is_dir():
        return []
    try:
        with os.scandir(path) as entries:
            names = {e.name for _, e in zip(range(1_000_000), entries)}
    except OSError:
        return []
    found = []
    if RES_TRACK in names:
        found.append(Layout("res", path, path / RES_TRACK))
    if GT_TRACK in names:
        found.append(Layout("gt", path, path / GT_TRACK, _seg_beside(path)))
    elif "TRA" in names and (path / "TRA" / GT_TRACK).is_file():
        seg = path / "SEG"
        found.append(Layout("gt", path / "TRA", path / "TRA" / GT_TRACK, seg if seg.is_dir() else None))
    if not found and any(MASK_NAMES["raw"].fullmatch(n) for n in names):
        found.append(Layout("raw", path))
    if not found and any(MASK_NAMES["res"].fullmatch(n) for n in names):
        found.append(Layout("res", path))  # masks without their track file: the reader says so
    if layout is not None:
        found = [f for f in found if f.kind == layout]
    return found


def _seg_beside(tra: Path) -> Path | None:
    seg = tra.parent / "SEG"
    return seg if tra.name == "TRA" and seg.is_dir() else None


def sniff(source: Source) -> bool | None:
    """True for a folder holding a CTC sequence (or raw frames), or for a CTC track file on disk."""
    if source.path is None:
        return False
    return bool(detect(source.path))


def _read(source: Source, options: ReadOptions) -> Project:
    from .reader import read

    return read(source, options)


def _write(project: Project, path: Path, options: WriteOptions) -> None:
    from .writer import write

    write(project, path, options)


@hookimpl
def dlformats_formats() -> list[FormatSpec]:
    """Declare ``ctc`` (a folder: read and write)."""
    return [
        FormatSpec(
            name=FORMAT,
            description="Cell Tracking Challenge folder: maskTTT.tif + res_track.txt (or TRA/, SEG/; raw tTTT.tif)",
            sniff=sniff,
            reads=parts("X", "y", "cells", "divisions", "features"),
            writes=parts("y", "cells", "divisions"),
            read=_read,
            write=_write,
            folder=True,
            frame_axes="TZ",  # time points, or the z-slices of one 3-D frame
            progress_unit="files",
            read_options=READ_OPTIONS,
            write_options=WRITE_OPTIONS,
        )
    ]
