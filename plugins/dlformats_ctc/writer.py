"""Writing a project as a CTC folder (see the package docstring and :func:`dlformats_ctc.parse_options`)."""

from __future__ import annotations

import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

from dlformats import (
    Cell,
    DLFormatsWarning,
    InconsistentDataError,
    InvalidOptionError,
    Project,
    UnsupportedFeatureError,
    WriteOptions,
)

from . import GT_TRACK, MAX_LABEL, RES_TRACK, Options, parse_options
from .tracks import Plan, plan_tracks

SHOWN = 8


def frame_digits(frames: int) -> int:
    """Digits of the frame numbers: 3, 4 from 1,000 frames on (and more beyond 10,000)."""
    return max(3 if frames < 1000 else 4, len(str(frames - 1)))


def write(project: Project, path: Path, options: WriteOptions) -> None:
    """Write ``project`` into the empty folder ``path``: masks, track file (and ``SEG/`` for ``layout="gt"``)."""
    opts = parse_options(options.extra, writing=True)
    if project.y is None and project.listed_cells is None:
        raise UnsupportedFeatureError("a CTC folder holds label masks; the project has no labels")
    if project.y is None:
        raise UnsupportedFeatureError("a CTC folder holds label masks; the project lists cells but has no label image")
    image_folder = _image_folder(project, path, opts, options.target)
    feature = opts.feature
    z_frames = project.frame_axis == "Z"
    cells = [c for c in project.cells_or_derived() if c.c == feature]
    _refuse_overlaps(cells)
    if not cells:
        raise UnsupportedFeatureError(
            f"the project has no labelled cells in feature {feature}: the CTC tools reject a sequence without tracks"
        )
    distinct = len({c.cell for c in cells})
    if distinct > MAX_LABEL:
        raise UnsupportedFeatureError(
            f"the cells make at least {distinct:,} tracks; CTC masks are uint16 and hold at most {MAX_LABEL:,}"
        )
    plan = _plan(project, cells, opts, z_frames)
    seg = None
    if opts.layout == "gt" and "SEG" in project.features and project.features.index("SEG") != feature:
        seg = project.features.index("SEG")
    others = project.num_features - 1 - (seg is not None)
    if others:
        warnings.warn(
            f"a CTC folder holds one label feature; wrote feature {feature} of {project.num_features}",
            DLFormatsWarning,
            stacklevel=3,
        )

    frames = project.num_frames
    out_frames = 1 if z_frames else frames
    digits = frame_digits(out_frames)
    folder = path / "TRA" if opts.layout == "gt" else path
    folder.mkdir(exist_ok=True)
    prefix, track_name = ("man_track", GT_TRACK) if opts.layout == "gt" else ("mask", RES_TRACK)
    tables = _tables(cells, plan, z_frames)
    total = out_frames * (2 if seg is not None else 1) + (frames if image_folder else 0)
    done = 0
    for t in range(out_frames):
        planes = range(frames) if z_frames else [t]
        data = [_relabel(project.label_frame(feature, i), tables.get(i)) for i in planes]
        _save(folder / f"{prefix}{t:0{digits}d}.tif", data[0] if len(data) == 1 else _stack(data))
        done += 1
        options.report(done, total)
    lines = "".join(f"{label} {begin} {end} {parent}\n" for label, begin, end, parent in plan.lines())
    (folder / track_name).write_text(lines, "ascii")
    if seg is not None:
        done = _write_seg(project, seg, path / "SEG", z_frames, digits, options, done, total)
    if image_folder is not None:
        _write_image(project, image_folder, z_frames, digits, options, done, total)


def _plan(project: Project, cells: list[Cell], opts: Options, z_frames: bool) -> Plan:
    frames_of: dict[int, set[int]] = defaultdict(set)
    for c in cells:
        frames_of[c.cell].add(0 if z_frames else c.t)
    divisions = [] if z_frames else project.divisions
    if z_frames and project.divisions:
        warnings.warn(
            "the frames are Z-slices, written as one 3-D frame: the divisions were not written",
            DLFormatsWarning,
            stacklevel=4,
        )
    plan = plan_tracks(frames_of, divisions, detach=opts.conflicts == "detach")
    if plan.conflicts:
        raise UnsupportedFeatureError(
            f"{len(plan.conflicts)} division(s) CTC cannot express: "
            + "; ".join(plan.conflicts[:SHOWN])
            + (f" (and {len(plan.conflicts) - SHOWN} more)" if len(plan.conflicts) > SHOWN else ""),
            hint="fix the divisions, or write with the option conflicts=detach (such pieces become tracks)",
        )
    if len(plan.pieces) > MAX_LABEL:
        raise UnsupportedFeatureError(
            f"the cells make {len(plan.pieces):,} tracks; CTC masks are uint16 and hold at most {MAX_LABEL:,}"
        )
    for note in plan.notes:
        warnings.warn(note, DLFormatsWarning, stacklevel=4)
    return plan


def _refuse_overlaps(cells: list[Cell]) -> None:
    owners: dict[tuple[int, int], set[int]] = defaultdict(set)
    for c in cells:
        owners[(c.t, c.value)].add(c.cell)
    shared = sorted((t, value, sorted(ids)) for (t, value), ids in owners.items() if len(ids) > 1)
    if shared:
        shown = "; ".join(f"frame {t}: value {v} encodes cells {ids}" for t, v, ids in shared[:SHOWN])
        raise UnsupportedFeatureError(
            f"CTC cannot express overlapping cells (one pixel, one label): {shown}"
            + (f" (and {len(shared) - SHOWN} more)" if len(shared) > SHOWN else ""),
            hint="write a DeepCell Label project zip, or geff, instead",
        )


def _tables(cells: list[Cell], plan: Plan, z_frames: bool) -> dict[int, tuple[Any, Any]]:
    """For each frame, sorted pixel values and the track label each becomes."""
    import numpy as np

    pairs: dict[int, dict[int, int]] = defaultdict(dict)
    for c in cells:
        pairs[c.t][c.value] = plan.label(c.cell, 0 if z_frames else c.t)
    out = {}
    for t, mapping in pairs.items():
        values = np.array(sorted(mapping), np.int64)
        out[t] = (values, np.array([mapping[v] for v in values.tolist()], np.int32))
    return out


def _relabel(plane: Any, table: tuple[Any, Any] | None) -> Any:
    """``plane`` with each listed value replaced by its track label, other values by 0, as uint16."""
    import numpy as np

    plane = np.asarray(plane)
    if table is None or len(table[0]) == 0:
        return np.zeros(plane.shape, np.uint16)
    values, labels = table
    top = int(values[-1])
    if top < (1 << 24):
        lut = np.zeros(top + 2, np.uint16)
        lut[values] = labels
        return np.take(lut, plane, mode="clip")  # negatives to slot 0, beyond the top to the last: both 0
    pos = np.minimum(np.searchsorted(values, plane), len(values) - 1)
    return np.where(values[pos] == plane, labels[pos], 0).astype(np.uint16)


def _stack(planes: list[Any]) -> Any:
    import numpy as np

    return np.stack(planes)


def _save(path: Path, data: Any) -> None:
    import tifffile

    tifffile.imwrite(path, data, photometric="minisblack", compression="zlib", metadata=None)


def _write_seg(
    project: Project,
    feature: int,
    folder: Path,
    z_frames: bool,
    digits: int,
    options: WriteOptions,
    done: int,
    total: int,
) -> int:
    """``SEG/man_segTTT.tif`` for the frames where feature ``feature`` holds labels (pixel values kept)."""
    import numpy as np

    folder.mkdir()
    frames = project.num_frames
    for t in range(1 if z_frames else frames):
        planes = [project.label_frame(feature, i) for i in (range(frames) if z_frames else [t])]
        data = planes[0] if len(planes) == 1 else np.stack(planes)
        done += 1
        options.report(done, total)
        if not data.any():
            continue
        low, high = int(data.min()), int(data.max())
        if low < 0 or high > MAX_LABEL:
            raise UnsupportedFeatureError(
                f"SEG frame {t} holds labels {low}..{high}; CTC masks are uint16 (0..{MAX_LABEL:,})"
            )
        _save(folder / f"man_seg{t:0{digits}d}.tif", data.astype(np.uint16))
    return done


def _image_folder(project: Project, path: Path, opts: Options, target: Path | None) -> Path | None:
    """The folder named by the ``image`` option, checked before anything is written."""
    if opts.image is None:
        return None
    if project.X is None:
        raise InvalidOptionError("image= asks for the image, but the project has none")
    folder = Path(opts.image).absolute()
    # ``path`` is the temporary folder the core renames onto ``target`` at the end.
    outputs = {path.absolute(), *([] if target is None else [Path(target).absolute()])}
    if any(results in folder.parents or folder == results for results in outputs):
        raise InvalidOptionError(
            f"image={opts.image!r} names the results folder itself: the CTC tools read every .tif there as a mask",
            hint="name a sibling folder, e.g. 01 beside 01_RES",
        )
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InvalidOptionError(
            f"image={opts.image!r} exists and is not an empty folder; dlformats does not overwrite it",
            path=str(folder),
        )
    if not folder.parent.is_dir():
        raise InvalidOptionError(f"the folder holding image={opts.image!r} does not exist", path=str(folder))
    return folder


def _write_image(
    project: Project, folder: Path, z_frames: bool, digits: int, options: WriteOptions, done: int, total: int
) -> None:
    """The image in the CTC raw layout ``tTTT.tif``, written beside and renamed at the end like the results."""
    import numpy as np

    from dlformats.atomic import atomic_target

    channels, frames = project.num_channels, project.num_frames
    with atomic_target(folder, directory=True) as tmp:
        for t in range(1 if z_frames else frames):
            planes = range(frames) if z_frames else [t]
            data = np.stack([np.stack([project.image_frame(c, i) for c in range(channels)]) for i in planes])
            if data.shape[0] != len(planes) or data.shape[2:] != project.frame_shape:
                raise InconsistentDataError(f"image frame {t} has shape {data.shape[2:]}, not {project.frame_shape}")
            data = data[:, 0] if channels == 1 else data  # (Z, C, Y, X) or (Z, Y, X)
            data = data[0] if not z_frames else data
            _save_image(tmp / f"t{t:0{digits}d}.tif", data, z_frames, channels)
            done += len(planes)
            options.report(done, total)


def _save_image(path: Path, data: Any, z_frames: bool, channels: int) -> None:
    import tifffile

    axes = ("Z" if z_frames else "") + ("C" if channels > 1 else "") + "YX"
    tifffile.imwrite(path, data, photometric="minisblack", metadata={"axes": axes})
