"""Reading a CTC folder into a project (see the package docstring for the layout and the rules)."""

from __future__ import annotations

import re
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlformats import (
    AmbiguousInputError,
    Cell,
    CorruptFileError,
    Division,
    DLFormatsWarning,
    InconsistentDataError,
    Limits,
    NotMyFormat,
    Problem,
    Project,
    ReadOptions,
    UnsupportedFeatureError,
)
from dlformats.model import INT32_MAX

from . import MASK_NAMES, SEG_NAME, SEG_SLICE_NAME, Layout, detect, parse_options
from .frames import FrameFile, FrameStack, list_dir, read_tiff, signature

if TYPE_CHECKING:
    from dlformats.sources import Source

_LINE = re.compile(r"-?\d{1,18}")
SHOWN = 8
"""Problems shown in an error's message (all are in its ``problems``)."""


@dataclass(frozen=True)
class Track:
    """One line of a track file: label, first and last frame (inclusive), parent label (0: none)."""

    label: int
    begin: int
    end: int
    parent: int
    line: int


def read(source: Source, options: ReadOptions) -> Project:
    """Read a CTC results, ground-truth or raw folder (or the folder of a track file)."""
    opts = parse_options({**options.extra, "select": options.select or None}, writing=False)
    if source.path is None:
        raise NotMyFormat("a CTC sequence is a folder on disk, not a stream")
    found = detect(source.path, opts.layout)
    if not found:
        raise NotMyFormat("neither a CTC folder (maskTTT.tif + res_track.txt, TRA/, tTTT.tif) nor its track file")
    if len(found) > 1:
        raise AmbiguousInputError(
            f"the folder holds several CTC sequences ({', '.join(f.kind for f in found)})",
            option="layout",
            choices=[f.kind for f in found],
            path=source.name,
        )
    layout = found[0]
    if layout.kind == "raw":
        return _read_raw(layout, opts.select, options.limits)
    return _read_tracked(layout, opts.select, options.limits)


# ------------------------------------------------------------------ track file
def parse_tracks(data: bytes, *, name: str) -> tuple[list[Track], list[str]]:
    """Parse a track file (fields separated by spaces or tabs); return the tracks and every rule they break.

    Lines that are not four integers raise :class:`CorruptFileError`, all listed at once.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorruptFileError(f"not a text file: {exc.reason} at byte {exc.start}", path=name) from exc
    tracks: list[Track] = []
    bad: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 4 or not all(_LINE.fullmatch(f) for f in fields):
            bad.append(f"line {number}: {line.strip()[:40]!r}")
            continue
        label, begin, end, parent = (int(f) for f in fields)
        tracks.append(Track(label, begin, end, parent, number))
    if bad:
        raise CorruptFileError(
            f"{len(bad)} line(s) are not 'L B E P' (label, first frame, last frame, parent): "
            + "; ".join(bad[:SHOWN])
            + (f" (and {len(bad) - SHOWN} more)" if len(bad) > SHOWN else ""),
            path=name,
        )
    problems: list[str] = []
    lines: dict[int, list[int]] = defaultdict(list)
    for tr in tracks:
        lines[tr.label].append(tr.line)
    for label, at in lines.items():
        if len(at) > 1:
            problems.append(f"label {label} is listed {len(at)} times (lines {', '.join(map(str, at[:5]))})")
    by_label = {tr.label: tr for tr in tracks}
    for tr in tracks:
        where = f"line {tr.line}: track {tr.label}"
        if not 0 < tr.label <= INT32_MAX:
            problems.append(f"{where}: a label must be positive (and fit in int32)")
        if tr.begin < 0 or tr.end < tr.begin:
            problems.append(f"{where}: first frame {tr.begin} and last frame {tr.end} do not make a range")
        if tr.parent == 0:
            continue
        parent = by_label.get(tr.parent)
        if tr.parent < 0 or parent is None:
            problems.append(f"{where}: parent {tr.parent} is not a track of the file")
        elif tr.parent == tr.label:
            problems.append(f"{where}: a track cannot be its own parent")
        elif parent.end >= tr.begin:
            problems.append(
                f"{where} begins at frame {tr.begin}, but its parent {tr.parent} ends at frame {parent.end}"
                " (a parent must end before its child begins)"
            )
    return tracks, problems


# ------------------------------------------------------------------ frame files
def frame_files(folder: Path, pattern: re.Pattern[str], limits: Limits) -> tuple[dict[int, Path], list[str], list[str]]:
    """The frame files of ``folder`` by frame number (from the digits of each name).

    Returns the files, problems (a frame given twice, gaps in the numbering) and other TIFFs found.
    """
    found: dict[int, Path] = {}
    problems: list[str] = []
    ignored: list[str] = []
    width = 3
    prefix = pattern.pattern.split("(")[0]
    for name in sorted(list_dir(folder, limits)):
        match = pattern.fullmatch(name)
        if match is None:
            if name.lower().endswith((".tif", ".tiff")):
                ignored.append(name)
            continue
        digits = match.group(1)
        width = len(digits)
        t = int(digits)
        if t in found:
            problems.append(f"frame {t} is given twice: {found[t].name} and {name}")
            continue
        found[t] = folder / name
    if found:
        missing = sorted(set(range(max(found) + 1)) - set(found))
        if missing:
            shown = ", ".join(f"{t} ({prefix}{t:0{width}d}.tif)" for t in missing[:SHOWN])
            more = f" and {len(missing) - SHOWN} more" if len(missing) > SHOWN else ""
            problems.append(f"frame(s) missing from the numbering: {shown}{more}")
    return found, problems, ignored


def _names(files: dict[int, Path], frames: list[int]) -> str:
    shown = ", ".join(files[t].name for t in frames[:4])
    return shown + (f" and {len(frames) - 4} more" if len(frames) > 4 else "")


def _span(begin: int, end: int) -> str:
    return f"frame {begin}" if begin == end else f"frames {begin}-{end}"


def _frames(frames: list[int]) -> str:
    shown = ", ".join(map(str, frames[:4])) + (", ..." if len(frames) > 4 else "")
    return f"frame {shown}" if len(frames) == 1 else f"frames {shown}"


@dataclass
class _Scan:
    """What scanning the masks of one feature found."""

    files: list[FrameFile | None]
    present: dict[int, list[Any]]  # frame -> present labels of each slice
    shape: tuple[int, ...] | None
    dtypes: list[Any]


def _scan(
    files: dict[int, Path | dict[int, Path]],
    frames: int,
    shape: tuple[int, ...] | None,
    limits: Limits,
    problems: list[str],
    floats: list[str],
) -> _Scan:
    """Read every frame once: shapes, dtypes, the labels of each slice; problems are appended."""
    import numpy as np

    from dlformats.model import present_values

    out = _Scan([None] * frames, {}, shape, [])
    for t in sorted(files):
        entry = files[t]
        if isinstance(entry, dict):  # ground truth slices man_seg_TTT_ZZZ.tif of a 3-D frame
            file_record = FrameFile(None)
            planes: dict[int, Any] = {}
            for z, slice_path in sorted(entry.items()):
                file_record.slices[z] = slice_path
                file_record.slice_stamps[z] = signature(slice_path)
                planes[z], _ = read_tiff(slice_path, limits, labels=True)
            path = entry[min(entry)]
            depth = out.shape[0] if out.shape is not None else 1 + max(planes)
            shapes = {p.shape for p in planes.values()}
            if len(shapes) != 1 or any(p.ndim != 2 for p in planes.values()) or max(planes) >= depth:
                problems.append(f"{path.name} (frame {t}): slices do not fit the 3-D frames {out.shape}")
                continue
            first = planes[min(planes)]
            frame = np.zeros((depth, *first.shape), first.dtype)
            for z, plane in planes.items():
                frame[z] = plane
        else:
            path = entry
            stamp = signature(path)
            data, _ = read_tiff(path, limits, labels=True)
            frame = data if data.ndim == 3 else data[None]
            file_record = FrameFile(path, stamp)
        where = f"{path.name} (frame {t})"
        if frame.dtype.kind == "f":
            floats.append(path.name)
            continue
        if frame.dtype.kind not in "biu":
            raise UnsupportedFeatureError(f"masks of dtype {frame.dtype} are not supported", path=str(path))
        if out.shape is None:
            out.shape = frame.shape
        elif frame.shape != out.shape:
            problems.append(f"{where} has shape {frame.shape} (Z, Y, X), unlike the other frames' {out.shape}")
            continue
        if frame.size and frame.dtype.kind == "i" and int(frame.min()) < 0:
            problems.append(f"{where} holds the negative label {int(frame.min())}")
            continue
        if frame.size and int(frame.max()) > INT32_MAX:
            problems.append(f"{where} holds the label {int(frame.max())}, beyond int32")
            continue
        out.present[t] = [present_values(plane) for plane in frame]
        out.files[t] = file_record
        out.dtypes.append(frame.dtype)
    return out


def _seg_files(seg: Path, limits: Limits, problems: list[str]) -> dict[int, Path | dict[int, Path]]:
    files: dict[int, Path | dict[int, Path]] = {}
    for name in sorted(list_dir(seg, limits)):
        whole = SEG_NAME.fullmatch(name)
        part = SEG_SLICE_NAME.fullmatch(name)
        if whole:
            t = int(whole.group(1))
            if t in files:
                problems.append(f"SEG frame {t} is given twice ({name})")
            files[t] = seg / name
        elif part:
            t, z = int(part.group(1)), int(part.group(2))
            slices = files.setdefault(t, {})
            if not isinstance(slices, dict):
                problems.append(f"SEG frame {t} is given whole and as slices ({name})")
                continue
            slices[z] = seg / name
    return files


# ------------------------------------------------------------------ the project
def _read_tracked(layout: Layout, select: Any, limits: Limits) -> Project:
    import numpy as np

    from dlformats.arrays import LazyArray

    if layout.track is None:
        raise CorruptFileError("CTC masks without their track file (res_track.txt)", path=str(layout.folder))
    track_name = str(layout.track)
    try:
        size = layout.track.stat().st_size
        limits.check("member_bytes", size, "track file too large", path=track_name)
        tracks, problems = parse_tracks(layout.track.read_bytes(), name=track_name)
    except OSError as exc:
        raise CorruptFileError(f"cannot read the track file: {exc.strerror or exc}", path=track_name) from exc
    masks, frame_problems, ignored = frame_files(layout.folder, MASK_NAMES[layout.kind], limits)
    problems = frame_problems + problems
    folder = str(layout.folder)
    if not masks:
        pattern = "maskTTT.tif" if layout.kind == "res" else "man_trackTTT.tif"
        raise CorruptFileError(f"no mask files ({pattern}) beside {layout.track.name}", path=folder)
    frames = max(masks) + 1
    floats: list[str] = []
    tra = _scan(dict(masks), frames, None, limits, problems, floats)
    seg = None
    if layout.seg is not None:
        seg_files = _seg_files(layout.seg, limits, problems)
        beyond = sorted(t for t in seg_files if t >= frames)
        if beyond:
            problems.append(f"SEG frames {beyond[:SHOWN]} lie beyond the last mask (frame {frames - 1})")
        seg_files = {t: f for t, f in seg_files.items() if t < frames}
        seg = _scan(seg_files, frames, tra.shape, limits, problems, floats)
    if floats:
        raise UnsupportedFeatureError(
            f"masks must hold integer labels; {len(floats)} file(s) hold floating-point values: "
            + ", ".join(floats[:SHOWN]),
            path=folder,
        )
    problems += _consistency(tracks, tra.present, masks, frames, layout.track.name)
    if problems:
        raise InconsistentDataError(
            f"{len(problems)} problem(s) in the CTC sequence: "
            + "; ".join(problems[:SHOWN])
            + (f" (and {len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""),
            problems=[Problem("y", p) for p in problems],
            path=folder,
        )
    assert tra.shape is not None
    depth, height, width = tra.shape
    features = [tra.files] + ([seg.files] if seg is not None else [])
    limits.check("total_bytes", len(features) * frames * depth * height * width * 4, "sequence too large", path=folder)
    dtype = np.result_type(*tra.dtypes, *(seg.dtypes if seg is not None else []))
    stack = FrameStack(features, tra.shape, dtype, labels=True, limits=limits, name=folder)
    y = LazyArray(stack, "CTZYX", select=select, labels=True, path=folder, limits=limits)

    cell_of, divisions = _lineage(tracks)
    chosen = {k.upper(): int(v) for k, v in (select or {}).items()}
    over_z = depth > 1 and "Z" not in chosen
    over_t = frames > 1 and "T" not in chosen
    if over_z:
        planes = [(chosen.get("T", 0), z) for z in range(depth)]
    elif over_t:
        planes = [(t, chosen.get("Z", 0)) for t in range(frames)]
    else:
        planes = [(chosen.get("T", 0), chosen.get("Z", 0))]
    cells: list[Cell] = []
    for i, (t, z) in enumerate(planes):
        cells.extend(Cell(v, cell_of[v], i, 0) for v in tra.present[t][z].tolist())
    if seg is not None:
        offset = max(cell_of.values(), default=0)
        for i, (t, z) in enumerate(planes):
            if t in seg.present:
                cells.extend(Cell(v, v + offset, i, 1) for v in seg.present[t][z].tolist())
    project = Project(
        y=y,
        cells=cells,
        divisions=divisions if over_t else [],
        features=["TRA", "SEG"] if seg is not None else [],
        frame_axis=y.frame_axis,
    )
    project.metadata["ctc"] = {
        "layout": layout.kind,
        "track_file": layout.track.name,
        "frames": frames,
        "depth": depth,
        "tracks": len(tracks),
    }
    if seg is not None:
        project.metadata["ctc"]["seg_frames"] = sorted(seg.present)
    if ignored:
        project.metadata["ignored_files"] = ignored
        warnings.warn(
            f"{folder}: ignored TIFFs that are not frames of the sequence: {ignored[:SHOWN]}",
            DLFormatsWarning,
            stacklevel=3,
        )
    return project


def _consistency(
    tracks: list[Track], present: dict[int, list[Any]], masks: dict[int, Path], frames: int, track_name: str
) -> list[str]:
    """Every disagreement between the track file and the labels in the masks, one message per label."""
    problems: list[str] = []
    labels_at = {t: set().union(*(p.tolist() for p in per_slice)) for t, per_slice in present.items()}
    by_label: dict[int, Track] = {}
    for tr in tracks:
        by_label.setdefault(tr.label, tr)
    for tr in by_label.values():
        if tr.end >= frames:
            problems.append(
                f"track {tr.label} ends at frame {tr.end}, after the last mask (frame {frames - 1}, "
                f"{masks[frames - 1].name})"
            )
        absent = [t for t in range(max(tr.begin, 0), min(tr.end, frames - 1) + 1) if t in labels_at]
        absent = [t for t in absent if tr.label not in labels_at[t]]
        if absent:
            problems.append(
                f"label {tr.label} ({_span(tr.begin, tr.end)} in {track_name}) is absent from "
                f"{_names(masks, absent)} ({_frames(absent)})"
            )
    outside: dict[int, list[int]] = defaultdict(list)
    for t in sorted(labels_at):
        for label in labels_at[t]:
            tr = by_label.get(label)
            if tr is None or not tr.begin <= t <= tr.end:
                outside[label].append(t)
    for label, at in sorted(outside.items()):
        tr = by_label.get(label)
        listed = (
            f"{track_name} does not list it"
            if tr is None
            else f"{track_name} lists it for {_span(tr.begin, tr.end)} only"
        )
        problems.append(f"label {label} is in {_names(masks, at)} ({_frames(at)}), but {listed}")
    return problems


def _lineage(tracks: list[Track]) -> tuple[dict[int, int], list[Division]]:
    """Cells of the tracks (an only child continues its parent's cell) and the divisions (two or more children)."""
    children: dict[int, list[Track]] = defaultdict(list)
    for tr in tracks:
        if tr.parent:
            children[tr.parent].append(tr)
    cell_of: dict[int, int] = {}
    for tr in sorted(tracks, key=lambda tr: (tr.begin, tr.label)):
        only_child = tr.parent and len(children[tr.parent]) == 1
        cell_of[tr.label] = cell_of[tr.parent] if only_child else tr.label
    divisions = [
        Division(cell_of[parent], sorted(k.label for k in kids), min(k.begin for k in kids))
        for parent, kids in children.items()
        if len(kids) > 1
    ]
    divisions.sort(key=lambda d: (d.t, d.parent))
    return cell_of, divisions


def _read_raw(layout: Layout, select: Any, limits: Limits) -> Project:
    """A raw folder (``tTTT.tif``): the image, one file per frame, all of one shape and dtype."""
    import numpy as np

    from dlformats.arrays import LazyArray
    from dlformats.containers import tiffio

    files, problems, _ = frame_files(layout.folder, MASK_NAMES["raw"], limits)
    folder = str(layout.folder)
    first_shape: tuple[int, ...] | None = None
    first_axes = ""
    dtype: Any = None
    records: list[FrameFile | None] = [None] * (max(files) + 1 if files else 0)
    for t in sorted(files):
        path = files[t]
        stamp = signature(path)
        tif = tiffio.open_tiff(path, name=str(path), limits=limits)
        try:
            series = tif.series[0]
            axes = tiffio.series_axes(series)
            shape = tuple(int(s) for s in series.shape)
            file_dtype = np.dtype(series.dtype)
        finally:
            tif.close()
        frame_axes = [a for a in axes if a in "TZB"]
        if len(frame_axes) > 1:
            problems.append(f"{path.name} (frame {t}) has axes {axes}: a frame holds at most one depth axis")
            continue
        axes = axes.replace(frame_axes[0], "Z") if frame_axes else axes
        if first_shape is None:
            first_shape, first_axes, dtype = shape, axes, file_dtype
        elif (shape, axes, file_dtype) != (first_shape, first_axes, dtype):
            problems.append(
                f"{path.name} (frame {t}) is {axes} {shape} {file_dtype}, unlike the first frame's "
                f"{first_axes} {first_shape} {dtype}"
            )
            continue
        records[t] = FrameFile(path, stamp)
    if not files or first_shape is None:
        raise CorruptFileError("no readable frame files (tTTT.tif)", path=folder)
    if problems:
        raise InconsistentDataError(
            f"{len(problems)} problem(s) in the raw frames: " + "; ".join(problems[:SHOWN]),
            problems=[Problem("X", p) for p in problems],
            path=folder,
        )
    stack = FrameStack([records], first_shape, dtype, labels=False, limits=limits, name=folder)
    X = LazyArray(stack, "BT" + first_axes, select=select, path=folder, limits=limits)
    project = Project(X=X, frame_axis=X.frame_axis)
    project.metadata["ctc"] = {"layout": "raw", "frames": len(records), "frame_axes": first_axes}
    return project
