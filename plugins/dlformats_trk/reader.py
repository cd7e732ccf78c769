"""Reading ``.trk`` and ``.trks`` files into projects (see the package docstring for the layout)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from dlformats import (
    Cell,
    CorruptFileError,
    DLFormatsWarning,
    InconsistentDataError,
    InvalidOptionError,
    NotMyFormat,
    Project,
    ReadOptions,
    UnsupportedFeatureError,
)
from dlformats.containers.codecs import lineage_to_divisions, report_lineage_problems
from dlformats.containers.jsonio import load_json
from dlformats.containers.npyio import from_stream

from .tarhead import tar_bytes

if TYPE_CHECKING:
    from dlformats.sources import Source

LINEAGE = "lineage.json"
LINEAGES = "lineages.json"
RAW = "raw.npy"
TRACKED = "tracked.npy"
MEMBERS = (LINEAGE, LINEAGES, RAW, TRACKED)
_ABSENT = object()


def read(source: Source, options: ReadOptions) -> Project | list[Project]:
    """Read a ``.trk`` (one project) or ``.trks`` (one project per batch).

    Options (``options.extra``, declared in the package): ``batch`` (int or None) reads one
    batch of a ``.trks``; ``trim`` (bool) drops the zero padding at the end of each batch.

    The archive is read in one pass: each member's header (tar header, then the
    ``.npy`` header) is checked against the limits before its content is
    decompressed, and the arrays are decompressed straight into their buffers.
    """
    if tar_bytes(source.head) is None:
        raise NotMyFormat(f"content is {source.describe()}, not a tar or gzip archive")
    lineage, raw, tracked, names, lineage_name = _members(source, options)
    options.limits.check("total_bytes", raw.nbytes + tracked.nbytes, "arrays too large", path=source.name)
    extra = sorted(names - set(MEMBERS))
    if extra:
        warnings.warn(
            f"{source.name}: ignored members that are not part of a trk: {extra}", DLFormatsWarning, stacklevel=3
        )
    movies, lineages, batched = _batches(lineage, raw, tracked, path=source.name, member=lineage_name)
    trim = options.extra["trim"]
    chosen = _chosen_batches(options.extra["batch"], len(movies), path=source.name)
    projects = []
    for b in chosen:
        raw_b, tracked_b = movies[b]
        frames = _content_frames(raw_b, tracked_b) if batched and trim else raw_b.shape[0]
        member = f"{lineage_name}[{b}]" if batched else lineage_name
        project = _project(raw_b[:frames], tracked_b[:frames], lineages[b], path=source.name, member=member)
        if batched:
            project.metadata["batch"] = b
            project.metadata["padding_frames"] = int(raw_b.shape[0] - frames)
        if extra:
            project.metadata["ignored_members"] = extra
        projects.append(project)
    return projects if batched and options.extra["batch"] is None else projects[0]


def _members(source: Source, options: ReadOptions) -> tuple[Any, Any, Any, set[str], str]:
    """``(lineage, raw, tracked, member names, lineage member name)`` from one pass over the archive.

    A member is taken by its name with the folder of the first member stripped, as
    :class:`~dlformats.containers.archive.SafeTar` strips a folder every member shares, until a
    member outside that folder shows that none is shared.
    """
    from dlformats.containers.archive import SafeTar, refuse_nested

    limits = options.limits
    found: dict[str, Any] = {}
    prefix: str | None = None
    with SafeTar(source, scan=False) as tar:
        for member in tar.walk():
            if prefix is None:
                prefix = member.name.split("/", 1)[0] + "/" if "/" in member.name else ""
            elif not member.name.startswith(prefix):  # no folder holds every member: names stay whole
                prefix = ""
                found.clear()
            role = member.name[len(prefix) :]
            if role in (LINEAGE, LINEAGES):
                data = member.read(limit="json_bytes")
                found[member.name] = load_json(data, path=source.name, member=role, limits=limits)
            elif role in (RAW, TRACKED):
                with member.stream() as fh:
                    found[member.name] = from_stream(fh, member.size, limits=limits, path=source.name, member=role)
        names = set(tar.names)
        present = [m for m in MEMBERS if m in names]
        if not present:
            raise NotMyFormat(f"a tar archive without trk members ({', '.join(MEMBERS)})")
        refuse_nested(tar)
        if LINEAGE in names and LINEAGES in names:
            raise CorruptFileError(f"holds both {LINEAGE} and {LINEAGES}; a trk holds one", path=source.name)
        lineage_name = LINEAGE if LINEAGE in names else LINEAGES
        missing = [m for m in (lineage_name, RAW, TRACKED) if m not in names]
        if missing:
            raise CorruptFileError(
                f"not a complete trk: missing {', '.join(missing)} (has {', '.join(sorted(names)) or 'nothing'})",
                path=source.name,
            )
        lineage, raw, tracked = (found.get(tar.real(m), _ABSENT) for m in (lineage_name, RAW, TRACKED))
    if any(x is _ABSENT for x in (lineage, raw, tracked)):  # a layout the one pass misread: never silently
        raise CorruptFileError("trk members are not where the archive's layout puts them", path=source.name)
    return lineage, raw, tracked, names, lineage_name


def _batches(lineage: Any, raw: Any, tracked: Any, *, path: str, member: str) -> tuple[list[Any], list[Any], bool]:
    """Split into per-movie ``(raw (T, Y, X, C), tracked (T, Y, X, 1))`` pairs with their lineages."""
    where = {"path": path}
    if isinstance(lineage, dict):
        batched, lineages = False, [lineage]
    elif isinstance(lineage, list):
        # deepcell-tracking's loaders accept a one-lineage list around a single movie too
        batched, lineages = tracked.ndim != 4 or len(lineage) != 1, lineage
    else:
        raise CorruptFileError("must be an object (one lineage) or a list of lineages", path=path, member=member)
    dims = 5 if batched else 4
    layout = "(batch, frames, height, width, " if batched else "(frames, height, width, "
    if raw.ndim != dims:
        raise CorruptFileError(f"must be {layout}channels), found shape {raw.shape}", member=RAW, **where)
    if tracked.ndim != dims:
        raise CorruptFileError(f"must be {layout}1), found shape {tracked.shape}", member=TRACKED, **where)
    if tracked.shape[-1] != 1:
        raise UnsupportedFeatureError(
            f"holds {tracked.shape[-1]} label features (shape {tracked.shape}); a trk holds one",
            member=TRACKED,
            **where,
        )
    if raw.shape[:-1] != tracked.shape[:-1]:
        raise InconsistentDataError(
            f"raw.npy {layout}channels) {raw.shape} and tracked.npy {tracked.shape} disagree", **where
        )
    if not batched:
        return [(raw, tracked)], lineages, False
    if len(lineages) != raw.shape[0]:
        raise InconsistentDataError(
            f"{len(lineages)} lineages in {member} for {raw.shape[0]} batches in raw.npy", member=member, **where
        )
    return [(raw[b], tracked[b]) for b in range(raw.shape[0])], lineages, True


def _chosen_batches(batch: int | None, count: int, *, path: str) -> range | list[int]:
    if batch is None:
        return range(count)
    if not batch < count:
        raise InvalidOptionError(f"batch {batch!r} is not a batch of this file", path=path, hint=f"use 0..{count - 1}")
    return [batch]


def _content_frames(raw: Any, tracked: Any) -> int:
    """Frames before the trailing zero padding a ``.trks`` adds to shorter movies (at least 1).

    A trailing frame is padding when both its image and its labels are all zero:
    a real microscope frame is never exactly zero, and such a frame holds no cell.
    Padding in height or width is kept: its position is not recorded anywhere.
    """
    frames = raw.shape[0]
    while frames > 1 and not raw[frames - 1].any() and not tracked[frames - 1].any():
        frames -= 1
    return frames


def _project(raw: Any, tracked: Any, lineage: Any, *, path: str, member: str) -> Project:
    """One movie: raw (T, Y, X, C), tracked (T, Y, X, 1) -> X (C, T, Y, X), y (1, T, Y, X), cells, divisions."""
    import numpy as np

    from dlformats.arrays import LazyArray

    X = LazyArray(raw, "TYXC", path=path)
    y = LazyArray(tracked, "TYXC", labels=True, path=path)
    frames_of: dict[int, list[int]] = {}
    for t in range(y.shape[1]):
        values = np.unique(y.plane(0, t))
        if values.size and values[0] < 0:
            raise CorruptFileError(f"negative label {int(values[0])} in frame {t}", path=path, member=TRACKED)
        for v in values[values > 0].tolist():
            frames_of.setdefault(v, []).append(t)
    cells = sorted((Cell(v, v, t, 0) for v, ts in frames_of.items() for t in ts), key=lambda c: (c.t, c.value))
    divisions, problems = lineage_to_divisions(lineage, path=path, member=member, labels_frames=frames_of)
    messages = report_lineage_problems(problems, path=path, member=member)
    project = Project(X=X, y=y, cells=cells, divisions=divisions, frame_axis="T")
    if messages:
        project.metadata["lineage_problems"] = messages
    return project
