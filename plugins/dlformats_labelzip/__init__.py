"""The ``label-zip`` format: the zip of labels DeepCell Label accepts beside an image.

A label zip holds the labels as one of:

* a single ``.npy`` array (never unpickled; memory-mapped when stored uncompressed);
* a single TIFF;
* many one-plane TIFFs named ``<anything>batch_<b>_feature_<f>.tif`` (or ``.tiff``),
  stacked by batch (frames) and feature in the order of the numbers, whatever their
  order inside the zip.  The numbers must cover every (batch, feature) pair from the
  smallest to the largest of each; a missing pair is a :class:`CorruptFileError` naming it;

plus, optionally, ``spots.csv``, ``lineage.json`` (deepcell-tracking), and the
``cells.json`` / ``divisions.json`` of an earlier project.  macOS junk and one
enclosing folder are ignored (see :class:`dlformats.containers.archive.SafeZip`).

The result is a project with labels only: ``y`` is ``(features, frames, height,
width)`` int32 and ``X`` is ``None``; give it as ``labels=`` to :func:`dlformats.read`
to pair it with an image.  A single array's axis order comes from ``labels_axes=``,
else from an OME or ImageJ TIFF's metadata, else from its number of dimensions
(:data:`members.DEFAULT_AXES`): 2-D ``YX``; 3-D ``BYX`` (frames, height, width);
4-D ``BYXC`` (frames, height, width, features: DeepCell's channels-last layout);
5-D ``BTYXC``.  Read option ``member`` picks the array member when a zip holds several.

The writer stores ``y`` as ``batch_<frame>_feature_<feature>.tif`` planes (int32,
min-is-black) with ``cells.json``, ``divisions.json`` and ``spots.csv``; the image is
not part of a label zip.
"""

from __future__ import annotations

import io
import math
import posixpath
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlformats import FormatSpec, Option, hookimpl
from dlformats.errors import (
    AmbiguousInputError,
    CorruptFileError,
    DLFormatsError,
    DLFormatsWarning,
    InconsistentDataError,
    InvalidOptionError,
    NotMyFormat,
    usage,
)
from dlformats.spec import parts

if TYPE_CHECKING:
    from dlformats.containers.archive import SafeZip
    from dlformats.model import Cell, Division, Project
    from dlformats.sources import Source
    from dlformats.spec import ReadOptions, WriteOptions

FORMAT = "label-zip"
PART_FILES = ("spots.csv", "lineage.json", "cells.json", "divisions.json")
"""Optional members beside the labels, at the top of the zip."""

# Members that make a zip another format: a DeepCell Label project zip, or the
# browser client's export and edit zips.
_OTHER_FORMAT_MEMBERS = {
    "x.ome.tiff": "a DeepCell Label project zip (X.ome.tiff)",
    "y.ome.tiff": "a DeepCell Label project zip (y.ome.tiff)",
    "x.ome.tif": "a DeepCell Label project zip (X.ome.tif)",
    "y.ome.tif": "a DeepCell Label project zip (y.ome.tif)",
    "dimensions.json": "a DeepCell Label export zip (dimensions.json)",
    "edit.json": "a DeepCell Label edit zip (edit.json)",
}
_NESTED_ARCHIVES = (".zip", ".npz", ".tar", ".tgz", ".gz", ".trk", ".trks", ".7z", ".rar")


@dataclass
class Layout:
    """What a zip's member names say about it.

    Attributes:
        decline: why this is not a label zip, or ``None``.
        npys: ``.npy`` members.
        tiffs: ``.tif``/``.tiff`` members.
        stack: ``{member: (batch, feature)}`` for TIFFs named like a batch/feature stack.
        parts: ``{"cells.json": member, ...}`` for the optional members present.
        others: members this format does not use.
    """

    decline: str | None = None
    npys: list[str] = field(default_factory=list)
    tiffs: list[str] = field(default_factory=list)
    stack: dict[str, tuple[int, int]] = field(default_factory=dict)
    parts: dict[str, str] = field(default_factory=dict)
    others: list[str] = field(default_factory=list)


def classify(names: list[str], filename: str) -> Layout:
    """Sort member ``names`` (junk removed, enclosing folder stripped) of a zip called ``filename``."""
    from .members import STACK_NAME

    layout = Layout()
    for name in names:
        lower = name.casefold()
        base = posixpath.basename(lower)
        if base in _OTHER_FORMAT_MEMBERS:
            layout.decline = f"it is {_OTHER_FORMAT_MEMBERS[base]}"
            return layout
        if lower.endswith(_NESTED_ARCHIVES):
            layout.decline = f"it holds an archive ({name}), not labels"
            return layout
        if lower.endswith(".npy"):
            layout.npys.append(name)
        elif lower.endswith((".tif", ".tiff")):
            layout.tiffs.append(name)
            match = STACK_NAME.search(name)
            if match:
                layout.stack[name] = (int(match.group(1)), int(match.group(2)))
        elif lower in PART_FILES:
            layout.parts[lower] = name
        else:
            layout.others.append(name)
    if layout.npys and len(layout.npys) == len(names) and filename.lower().endswith(".npz"):
        layout.decline = "it is an npz (numpy arrays saved together)"
    elif len(layout.npys) > 1:
        layout.decline = f"it holds {len(layout.npys)} .npy arrays (an npz-style archive), a label zip holds one"
    elif not layout.npys and not layout.tiffs:
        layout.decline = "it holds no .npy or TIFF labels"
    return layout


def _sniff(source: Source) -> bool | None:
    names = source.zip_names()
    if names is None:
        return False
    layout = classify(names, source.filename)
    if layout.decline:
        return False
    if layout.others or (layout.npys and layout.tiffs):
        return None  # unknown members: a zip of something else that happens to hold a TIFF
    return True


# ------------------------------------------------------------------- read
def _read(source: Source, options: ReadOptions) -> Project:
    from dlformats.model import Project

    archive = source.zip()
    if archive is None:
        raise NotMyFormat(f"content is {source.describe()}, not a zip archive")
    layout = classify(archive.names, source.filename)
    if layout.decline:
        raise NotMyFormat(layout.decline)
    if layout.others:
        warnings.warn(
            f"{source.name}: label zip members not used: {', '.join(layout.others[:10])}"
            + (f" and {len(layout.others) - 10} more" if len(layout.others) > 10 else ""),
            DLFormatsWarning,
            stacklevel=3,
        )
    # Lazy labels hold their own handles (a TiffStack its own archive): the core
    # closes this one when the read returns.
    y, kind = _labels(archive, layout, options)
    cells = _cells(archive, layout, y)
    divisions, lineage_problems = _divisions(archive, layout)
    spots = None
    if "spots.csv" in layout.parts:
        from dlformats.containers.codecs import spots_from_csv

        member = layout.parts["spots.csv"]
        spots = spots_from_csv(archive.read(member), path=source.name, member=member, limits=options.limits)
    return Project(
        X=None,
        y=y,
        cells=cells,
        divisions=divisions,
        spots=spots,
        frame_axis=y.frame_axis if y.frame_axis in ("T", "Z", "B") else "B",
        metadata={"label_zip_layout": kind, **({"lineage_problems": lineage_problems} if lineage_problems else {})},
    )


def _labels(archive: SafeZip, layout: Layout, options: ReadOptions) -> tuple[Any, str]:
    """The labels as a lazy (features, frames, height, width) int32 array, and which layout held them."""
    chosen = options.extra["member"]
    arrays = layout.npys + layout.tiffs
    if chosen is not None:
        if chosen not in arrays:
            raise InvalidOptionError(
                f"member {chosen!r} is not an array of this zip",
                path=archive.source.name,
                hint="choose one of " + ", ".join(repr(a) for a in arrays),
            )
        return _single(archive, chosen, options), "npy" if chosen in layout.npys else "tiff"
    if len(layout.npys) == 1 and not layout.tiffs:
        return _single(archive, layout.npys[0], options), "npy"
    if not layout.npys and layout.tiffs and len(layout.stack) == len(layout.tiffs):
        return _stack(archive, layout.stack, options), "batch-feature tiffs"
    if not layout.npys and len(layout.tiffs) == 1:
        return _single(archive, layout.tiffs[0], options), "tiff"
    unnamed = [t for t in layout.tiffs if t not in layout.stack]
    raise AmbiguousInputError(
        f"the zip holds {len(arrays)} arrays ({', '.join(arrays[:6])}{'...' if len(arrays) > 6 else ''}); "
        "a label zip holds one .npy, one TIFF, or TIFFs all named <anything>batch_<b>_feature_<f>.tif"
        + (f" (not so named: {', '.join(unnamed[:4])})" if unnamed and layout.stack else ""),
        option="member",
        choices=arrays,
        path=archive.source.name,
        hint=f"pick one with {usage('option', 'member', 'NAME', labels=options.role == 'labels')}",
    )


def _select(options: ReadOptions, axes: str) -> dict[str, int]:
    # The same options go to the image and the labels; a plane pick for an axis the
    # labels lack (e.g. the image's Z) is the image's business, not an error here.
    return {k: v for k, v in options.select.items() if k in axes.upper()}


def _single(archive: SafeZip, member: str, options: ReadOptions) -> Any:
    from dlformats.arrays import LazyArray
    from dlformats.containers.npyio import from_member

    from .members import default_axes, tiff_series

    path = archive.source.name
    where = {"path": path, "member": member}
    if member.casefold().endswith(".npy"):
        array, file_axes = from_member(archive, member, limits=options.limits), None
    else:
        array, file_axes = tiff_series(archive, member, options.extra["series"])
    shape = tuple(int(s) for s in array.shape)
    axes = options.axes or file_axes or default_axes(shape, **where)
    try:
        return LazyArray(
            array,
            axes,
            select=_select(options, axes),
            labels=True,
            path=path,
            default_frame_axis="B",
            limits=options.limits,
        )
    except DLFormatsError as exc:
        raise exc.located(path, member) from None


def _stack(archive: SafeZip, named: dict[str, tuple[int, int]], options: ReadOptions) -> Any:
    from dlformats.arrays import LazyArray

    from .members import TiffStack, plane_2d, tiff_info

    path = archive.source.name
    if options.axes:
        raise InvalidOptionError(
            f"labels_axes {options.axes!r} cannot apply to batch/feature TIFFs",
            path=path,
            hint="their names give the batch (frames) and feature of each plane",
        )
    grid: dict[tuple[int, int], str] = {}
    for name, key in sorted(named.items(), key=lambda item: (item[1], item[0])):
        if key in grid:
            raise CorruptFileError(
                f"batch {key[0]} feature {key[1]} is given twice: {grid[key]!r} and {name!r}", path=path, member=name
            )
        grid[key] = name
    batches = range(min(b for b, _ in grid), max(b for b, _ in grid) + 1)
    features = range(min(f for _, f in grid), max(f for _, f in grid) + 1)
    missing = [(b, f) for b in batches for f in features if (b, f) not in grid]
    if missing:
        shown = ", ".join(f"batch {b} feature {f}" for b, f in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise CorruptFileError(
            f"batch/feature TIFFs incomplete: no file for {shown}{more} "
            f"(batches {batches.start}..{batches.stop - 1}, features {features.start}..{features.stop - 1})",
            path=path,
            hint="add the missing file(s), named <anything>batch_<b>_feature_<f>.tif",
        )
    # Every member's header is checked now, so a wrong-sized plane is reported when
    # reading, not half-way through a conversion.
    first: tuple[str, tuple[int, int]] | None = None
    dtype = None
    for key in sorted(grid):
        name = grid[key]
        where = {"path": path, "member": name}
        info = tiff_info(archive, name)
        plane = plane_2d(info.shape, where)
        if first is None:
            first, dtype = (name, plane), info.dtype
        elif plane != first[1]:
            raise InconsistentDataError(
                f"plane of {plane[0]}x{plane[1]} pixels, but {first[0]!r} is {first[1][0]}x{first[1][1]}", **where
            )
    assert first is not None
    shape = (len(features), len(batches), *first[1])
    options.limits.check("total_bytes", math.prod(shape) * 4, "labels too large", path=path)
    members = {(f - features.start, b - batches.start): name for (b, f), name in grid.items()}
    stack = TiffStack(archive.source, members, shape, dtype)
    return LazyArray(stack, "CBYX", labels=True, path=path, default_frame_axis="B", limits=options.limits)


def _cells(archive: SafeZip, layout: Layout, y: Any) -> list[Cell] | None:
    member = layout.parts.get("cells.json")
    if member is None:
        return None
    from dlformats.containers.codecs import assign_features, cells_from_bytes

    # read up to member_bytes: the usual form is parsed into columns, anything else held to json_bytes
    data = archive.read(member, limit="member_bytes")
    cells, has_c = cells_from_bytes(data, path=archive.source.name, member=member, limits=archive.limits)
    return cells if has_c else assign_features(cells, y)


def _divisions(archive: SafeZip, layout: Layout) -> tuple[list[Division], list[str]]:
    """The divisions (``divisions.json`` wins over ``lineage.json``) and the lineage's problems."""
    from dlformats.containers.codecs import merge_divisions

    return merge_divisions(
        archive.read_json("divisions.json"),  # None when absent
        archive.read_json("lineage.json"),
        path=archive.source.name,
        divisions_member=layout.parts.get("divisions.json", "divisions.json"),
        lineage_member=layout.parts.get("lineage.json", "lineage.json"),
    )


# ------------------------------------------------------------------ write
def _write(project: Project, path: Path, options: WriteOptions) -> None:
    import zipfile

    import tifffile

    from dlformats.containers.codecs import cells_to_json, divisions_to_json, spots_to_csv

    features, frames = project.num_features, project.num_frames
    total = features * frames
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        done = 0
        for b in range(frames):
            for f in range(features):
                buf = io.BytesIO()
                # minisblack: tifffile would otherwise guess RGB for planes 3 or 4 pixels wide.
                tifffile.imwrite(buf, project.label_frame(f, b), photometric="minisblack")
                zf.writestr(f"batch_{b}_feature_{f}.tif", buf.getvalue())
                done += 1
                options.report(done, total)
        if project.listed_cells is not None:
            zf.writestr("cells.json", cells_to_json(project.listed_cells))
        if project.divisions:
            zf.writestr("divisions.json", divisions_to_json(project.divisions))
        if project.spots is not None:
            zf.writestr("spots.csv", spots_to_csv(project.spots))


@hookimpl
def dlformats_formats() -> list[FormatSpec]:
    """Declare the ``label-zip`` format."""
    return [
        FormatSpec(
            name=FORMAT,
            description="zip of labels (one .npy, one TIFF or batch_<b>_feature_<f>.tif planes) "
            "with optional spots.csv, lineage.json, cells.json, divisions.json",
            extensions=(".zip",),
            signatures=(b"PK\x03\x04", b"PK\x05\x06"),
            sniff=_sniff,
            reads=parts("y", "cells", "divisions", "spots"),
            writes=parts("y", "cells", "divisions", "spots"),
            read=_read,
            write=_write,
            frame_axes="B",  # batch_<b>_feature_<f>.tif: the frames read back as batches
            read_options=(
                Option("member", str, None, help="the array member holding the labels, when the zip holds several"),
                Option("series", int, None, minimum=0, help="the image series of a TIFF member that holds several"),
            ),
            # Below the project zip, which also ends in .zip and is the usual target.
            priority=-10,
        )
    ]
