"""Many projects into one training file, along the batch axis: :func:`merge`.

Three layouts, chosen by the target's format (``to=``, else its extension):

* ``.npz`` (format ``npz``), as deepcell-tf trains on: ``X`` ``(batch, height, width,
  channels)`` and ``y`` ``(batch, height, width, features)`` when every project has one
  frame, else ``X`` ``(batch, frames, height, width, channels)`` and ``y`` ``(batch,
  frames, height, width, features)``; ``channels`` and ``features`` name them when the
  projects do.  ``y`` is int32, re-encoded by DeepCell Label's export rule for projects
  that list their cells (each value then its cell).  Write option ``compress`` (default
  true) deflates the members.
* ``.trks`` (format ``trks``), as deepcell-tracking stores a batch of movies: a gzip tar
  of ``lineages.json`` (one lineage per batch), ``raw.npy`` ``(batch, frames, height,
  width, channels)`` and ``tracked.npy`` ``(batch, frames, height, width, 1)`` int32, each
  label its cell.  Shorter movies are padded with zero frames at the end, as
  deepcell-tracking pads them (:func:`dlformats.read_all` drops that padding again).
  Write option ``feature`` (default 0) picks the label feature; overlapping cells are
  refused (a trk cannot hold them).
* any other format (a DeepCell Label project zip, a TIFF...): one project whose frames
  are the batches (``frame_axis`` ``"B"``): the frames of every project one after the
  other, cell ids renumbered so that no two projects share one (divisions and cell types
  follow), written with :func:`dlformats.write`.

Every project of every source (a ``.trks`` holds several) is one batch, in the order
of the sources.  Channels (and label features) must agree in number, and in name where
both projects name them; images of different dtypes are stacked in the dtype that holds
both (numpy's promotion).  Projects of different height or width (or, for ``.npz``,
frames) cannot stack: an :class:`~dlformats.errors.InconsistentDataError` names the
project and both shapes, unless ``fit="pad"`` (zeros after, at the bottom and right, up
to the largest) or ``fit="crop"`` (the top-left part of the smallest size; cells cut
away are dropped, and divisions naming them).

Memory stays bounded: shapes and cells are read first, then each source is read again
while its planes are written, one frame at a time.
"""

from __future__ import annotations

import os
import tarfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DLFormatsError, DLFormatsWarning, InconsistentDataError, InvalidOptionError, UnsupportedFeatureError
from .limits import DEFAULT_LIMITS, Limits
from .model import Cell, CellType, Division, Project

FITS = ("error", "pad", "crop")


@dataclass
class _Entry:
    """One project to merge: where it comes from, its shapes and the parts the output needs."""

    source: int
    batch: int
    name: str
    x_shape: tuple[int, ...] | None
    y_shape: tuple[int, ...] | None
    x_dtype: Any
    y_dtype: Any
    channels: list[str]
    features: list[str]
    cells: list[Cell] | None
    divisions: list[Division]
    cell_types: list[CellType]
    embeddings: list[Any] | None
    has_spots: bool
    plan: Any = None
    frame_offset: int = 0
    cell_offset: int = 0

    @property
    def frames(self) -> int:
        shape = self.x_shape or self.y_shape
        return int(shape[1]) if shape else 0

    @property
    def size(self) -> tuple[int, int]:
        shape = self.x_shape or self.y_shape
        return (int(shape[2]), int(shape[3])) if shape else (0, 0)

    def shape_text(self) -> str:
        shape = self.x_shape or self.y_shape
        what = "(channels, frames, height, width)" if self.x_shape else "(features, frames, height, width)"
        return f"{what} {tuple(shape) if shape else None}"


@dataclass
class _Target:
    height: int
    width: int
    frames: int
    channels: int
    features: int
    x_dtype: Any
    y_dtype: Any
    channel_names: list[str] = field(default_factory=list)
    feature_names: list[str] = field(default_factory=list)


def merge(
    sources: Iterable[Any],
    dst: str | os.PathLike[str],
    *,
    to: str | None = None,
    fit: str = "error",
    recursive: bool = False,
    pairs: str | os.PathLike[str] | None = None,
    match: tuple[str, str] | None = None,
    axes: str | None = None,
    labels_axes: str | None = None,
    from_format: str | None = None,
    labels_format: str | None = None,
    limits: Limits | None = None,
    options: Mapping[str, Any] | None = None,
    labels_options: Mapping[str, Any] | None = None,
    role: str = "image",
    write_options: Mapping[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Merge the projects of ``sources`` into one file ``dst``, one batch per project; return ``dst``.

    Args:
        sources: files, folders, glob patterns and ``(image, labels)`` pairs, as for
            :func:`dlformats.convert_many` (``recursive``, ``pairs`` and ``match`` too).
        dst: the output; ``.npz`` and ``.trks`` give deepcell-tf's and deepcell-tracking's
            layouts, any other format one project whose frames are the batches.
        to: the output format (a name or an extension), instead of ``dst``'s extension.
        fit: ``"error"`` (default), ``"pad"`` or ``"crop"``, for projects whose height or
            width (for ``.npz``, frames) differ.
        axes, labels_axes, from_format, labels_format, limits, options, labels_options, role:
            as for :func:`dlformats.convert`, for every source.
        write_options: for ``.npz`` ``compress``; for ``.trks`` ``feature``; otherwise the
            write options of the format.
        progress: called with ``(done, total)`` frames written.

    Raises:
        InconsistentDataError: projects that cannot stack, naming the project and both shapes.
        DLFormatsError: a source that cannot be read (naming it), or a bad argument.
    """
    from .batch import _collect, pairs_from_csv

    if fit not in FITS:
        raise InvalidOptionError(f"fit={fit!r}", hint="use fit='error', 'pad' or 'crop' (--fit)")
    dst = Path(dst)
    if match is not None:
        from .batch import _check_match

        match = _check_match(match)
    items = list(sources)
    if pairs is not None:
        items += pairs_from_csv(pairs)
    found = _collect(items, recursive=recursive, match=match, exclude=[dst])
    if not found:
        raise InvalidOptionError("no sources to merge", hint="give files, folders, glob patterns or pairs")
    kind = _kind(dst, to)
    read = {
        "axes": axes,
        "labels_axes": labels_axes,
        "format": from_format,
        "labels_format": labels_format,
        "limits": limits or DEFAULT_LIMITS,
        "options": dict(options or {}),
        "labels_options": None if labels_options is None else dict(labels_options),
        "role": role,
    }
    opened = _Opened(found, read)
    entries = opened.survey()
    wopts = dict(write_options or {})
    target = _target(entries, kind, fit)
    needs_cells = kind == "trks" or kind == "frames"
    for e in entries:
        cropped = e.size != (target.height, target.width) and fit == "crop"
        if e.y_shape is not None and (cropped or (needs_cells and e.cells is None)):
            _cells_from_pixels(opened, e, target, keep=e.cells is not None)
        if cropped:
            _drop_divisions_of_absent_cells(e)
    if kind == "npz":
        return _write_npz(opened, entries, target, dst, wopts, progress)
    if kind == "trks":
        return _write_trks(opened, entries, target, dst, wopts, progress)
    return _write_frames(opened, entries, target, dst, kind, wopts, progress)


def _kind(dst: Path, to: str | None) -> str:
    """``"npz"``, ``"trks"``, or the name of the format that writes ``dst`` (frames as batches)."""
    from .registry import get_registry

    wanted = (to or "").lower().lstrip(".")
    if wanted in ("npz", "trks"):
        return wanted
    if to is None and dst.name.lower().endswith((".npz", ".trks")):
        return dst.name.lower().rsplit(".", 1)[1]
    registry = get_registry()
    if to is not None and to not in {f.name for f in registry.formats()}:
        ext = to if to.startswith(".") else f".{to}"
        return registry.writer_for(f"out{ext}").name
    return registry.writer_for(str(dst), to).name


# ------------------------------------------------------------------ reading, twice
class _Opened:
    """The sources, read one at a time: a survey of every project, then each again for its planes.

    Keeps the projects of one source at a time (the one being written), so that
    memory and open files stay bounded however many sources are merged.  Thread-safe
    (writers may fetch planes on a helper thread).
    """

    def __init__(self, found: list[tuple[str, str | None]], read: dict[str, Any]) -> None:
        self.found = found
        self.read = read
        self._lock = threading.RLock()
        self._index: int | None = None
        self._projects: list[Project] = []
        self._entries: list[_Entry] = []

    def _read(self, index: int) -> list[Project]:
        from .api import read_all

        image, labels = self.found[index]
        return read_all(image, labels, **self.read)

    def survey(self) -> list[_Entry]:
        entries: list[_Entry] = []
        for i, (image, _) in enumerate(self.found):
            projects = self._read(i)
            for b, p in enumerate(projects):
                name = image if len(projects) == 1 else f"{image} [batch {b}]"
                entries.append(
                    _Entry(
                        source=i,
                        batch=b,
                        name=name,
                        x_shape=None if p.X is None else tuple(int(s) for s in p.X.shape),
                        y_shape=None if p.y is None else tuple(int(s) for s in p.y.shape),
                        x_dtype=None if p.X is None else p.X.dtype,
                        y_dtype=None if p.y is None else p.y.dtype,
                        channels=list(p.channels),
                        features=list(p.features),
                        cells=None if p.cells is None else list(p.cells),
                        divisions=list(p.divisions),
                        cell_types=list(p.cell_types),
                        embeddings=None if p.embeddings is None else list(p.embeddings),
                        has_spots=p.spots is not None and len(p.spots) > 0,
                    )
                )
            del projects
        self._entries = entries
        return entries

    def project(self, entry: _Entry) -> Project:
        """``entry``'s project, reading its source again unless it is the one held."""
        with self._lock:
            if self._index != entry.source:
                self._projects = []
                self._index = None
                projects = self._read(entry.source)
                mine = [e for e in self._entries if e.source == entry.source]
                if len(projects) != len(mine) or any(
                    _shape(p.X) != e.x_shape or _shape(p.y) != e.y_shape for p, e in zip(projects, mine)
                ):
                    raise InconsistentDataError(
                        "the file changed while it was being merged", path=self.found[entry.source][0]
                    )
                self._projects, self._index = projects, entry.source
            return self._projects[entry.batch]

    def release(self) -> None:
        with self._lock:
            self._projects, self._index = [], None


def _shape(array: Any) -> tuple[int, ...] | None:
    return None if array is None else tuple(int(s) for s in array.shape)


# ------------------------------------------------------------------ the common shape
def _target(entries: list[_Entry], kind: str, fit: str) -> _Target:
    import numpy as np

    with_x = [e for e in entries if e.x_shape is not None]
    with_y = [e for e in entries if e.y_shape is not None]
    empty = [e for e in entries if e.x_shape is None and e.y_shape is None]
    if empty:
        raise InconsistentDataError("has neither an image nor labels to merge", path=empty[0].name)
    if with_x and len(with_x) != len(entries):
        lacking = next(e for e in entries if e.x_shape is None)
        raise InconsistentDataError(
            f"has no image, while {with_x[0].name} has one {with_x[0].shape_text()}", path=lacking.name
        )
    _same(with_x, lambda e: e.x_shape[0], "channels", "(channels, frames, height, width)", lambda e: e.x_shape)
    _same(with_y, lambda e: e.y_shape[0], "label features", "(features, frames, height, width)", lambda e: e.y_shape)
    sizes = {e.size for e in entries}
    frames = {e.frames for e in entries}
    first = entries[0]
    if len(sizes) > 1 and fit == "error":
        other = next(e for e in entries if e.size != first.size)
        raise InconsistentDataError(
            f"{other.shape_text()} cannot stack with {first.name} {first.shape_text()}: height and width differ",
            path=other.name,
            hint="pad or crop them to a common size with fit='pad' or fit='crop' (--fit pad, --fit crop)",
        )
    pick = max if fit == "pad" else min
    height = pick(h for h, _ in sizes)
    width = pick(w for _, w in sizes)
    if kind == "npz" and len(frames) > 1:
        if fit == "error":
            other = next(e for e in entries if e.frames != first.frames)
            raise InconsistentDataError(
                f"{other.shape_text()} cannot stack with {first.name} {first.shape_text()}: frames differ",
                path=other.name,
                hint="pad or crop them to a common length with fit='pad' or fit='crop' (--fit pad, --fit crop)",
            )
        n_frames = pick(frames)
    else:
        n_frames = max(frames)
    x_dtype = np.result_type(*[np.dtype(e.x_dtype) for e in with_x]) if with_x else None
    y_dtype = np.result_type(*[np.dtype(e.y_dtype) for e in with_y]) if with_y else None
    return _Target(
        height=height,
        width=width,
        frames=n_frames,
        channels=with_x[0].x_shape[0] if with_x else 0,
        features=with_y[0].y_shape[0] if with_y else 0,
        x_dtype=x_dtype,
        y_dtype=y_dtype,
        channel_names=_names(with_x, "channels"),
        feature_names=_names(with_y, "features"),
    )


def _same(entries: list[_Entry], count: Callable[[_Entry], int], what: str, axes: str, shape: Any) -> None:
    if not entries:
        return
    first = entries[0]
    for e in entries[1:]:
        if count(e) != count(first):
            raise InconsistentDataError(
                f"{axes} {shape(e)} cannot stack with {first.name} {axes} {shape(first)}: {what} differ",
                path=e.name,
            )


def _names(entries: list[_Entry], part: str) -> list[str]:
    """The names of the channels (features) all projects agree on; an error naming both when they differ."""
    named = [e for e in entries if any(getattr(e, part))]
    if not named:
        return []
    first = named[0]
    for e in named[1:]:
        a, b = getattr(first, part), getattr(e, part)
        if any(x and y and x != y for x, y in zip(a, b)):
            raise InconsistentDataError(
                f"{part} {b} differ from {a} of {first.name}",
                path=e.name,
                hint=f"rename the {part} of one of them so that they agree",
            )
    width = len(getattr(first, part))
    return [next((getattr(e, part)[i] for e in named if getattr(e, part)[i]), "") for i in range(width)]


# ------------------------------------------------------------------ planes
def _fit(plane: Any, height: int, width: int) -> Any:
    """``plane`` cut to its top-left ``height`` x ``width``, or padded with zeros at the bottom and right."""
    import numpy as np

    h, w = plane.shape
    if (h, w) == (height, width):
        return plane
    out = np.zeros((height, width), plane.dtype)
    out[: min(h, height), : min(w, width)] = plane[:height, :width]
    return out


def _located(entry: _Entry, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except DLFormatsError as exc:
        exc.located(entry.name)
        raise


def _image_plane(opened: _Opened, e: _Entry, target: _Target, c: int, t: int) -> Any:
    import numpy as np

    if e.x_shape is None or t >= e.frames:
        return np.zeros((target.height, target.width), target.x_dtype or np.uint8)
    plane = _located(e, lambda: opened.project(e).image_frame(c, t))
    return _fit(plane, target.height, target.width).astype(target.x_dtype, copy=False)


def _raw_label_plane(opened: _Opened, e: _Entry, c: int, t: int, *, wide: bool = False) -> Any:
    """The label plane of ``e`` as stored (checked int32, or the wide type itself with ``wide``)."""
    return _located(e, lambda: opened.project(e).label_frame(c, t, wide=wide))


def _label_plane(opened: _Opened, e: _Entry, target: _Target, c: int, t: int) -> Any:
    """The int32 label plane written: each value its cell when ``e`` has an export plan."""
    import numpy as np

    if e.y_shape is None or t >= e.frames or c >= e.y_shape[0]:
        return np.zeros((target.height, target.width), np.int32)
    plane = _raw_label_plane(opened, e, c, t)
    if e.plan is not None:
        plane = e.plan.apply(plane, c, t)
    return _fit(plane, target.height, target.width)


def _cells_from_pixels(opened: _Opened, e: _Entry, target: _Target, *, keep: bool) -> None:
    """Cells of ``e`` as its (fitted) label planes show them.

    With ``keep``, ``e``'s own cells whose value is still present in their frame;
    otherwise one cell per value per frame (value = cell).
    """
    from .model import present_values

    assert e.y_shape is not None
    present: dict[tuple[int, int], set[int]] = {}
    for c in range(e.y_shape[0]):
        for t in range(e.frames):
            plane = _fit(_raw_label_plane(opened, e, c, t, wide=not keep), target.height, target.width)
            present[(c, t)] = set(present_values(plane).tolist())
    if keep and e.cells is not None:
        e.cells = [cell for cell in e.cells if cell.value in present.get((cell.c, cell.t), ())]
    else:
        e.cells = [Cell(v, v, t, c) for (c, t), values in sorted(present.items()) for v in sorted(values)]


def _drop_divisions_of_absent_cells(e: _Entry) -> None:
    """Divisions of cells that cropping removed: daughters absent dropped, and divisions left without any."""
    if e.cells is None:
        return
    alive = {cell.cell for cell in e.cells}
    kept = []
    for d in e.divisions:
        daughters = [x for x in d.daughters if x in alive]
        if d.parent in alive and daughters:
            kept.append(Division(d.parent, daughters, d.t))
    e.divisions = kept


def _frame_blocks(
    opened: _Opened,
    entries: list[_Entry],
    frames: int,
    plane: Callable[[_Entry, int, int], Any],
    count: int,
    tick: Callable[[], None],
) -> Iterator[Any]:
    """``(height, width, count)`` blocks, batch by batch and frame by frame: the C order of ``(B, T, H, W, count)``."""
    import numpy as np

    for e in entries:
        for t in range(frames):
            yield np.stack([plane(e, c, t) for c in range(count)], axis=-1)
            tick()
    opened.release()


def _ticker(progress: Callable[[int, int], None] | None, total: int) -> Callable[[], None]:
    done = [0]

    def tick() -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total)

    return tick


def _declared_options(options: Mapping[str, Any], format_name: str) -> dict[str, Any]:
    """``options`` checked against the write options format ``format_name`` declares (its defaults filled in)."""
    from .registry import get_registry

    return get_registry().get(format_name).spec.parse_options(options, writing=True)


def _plans(entries: list[_Entry], feature: int | None = None) -> None:
    """DeepCell Label's export rule for each entry that lists cells (of ``feature`` only, when given)."""
    from .model import plan_export

    for e in entries:
        if e.cells is None:
            e.plan = None
            continue
        cells = e.cells if feature is None else [c for c in e.cells if c.c == feature]
        e.plan = _located(e, lambda cells=cells: plan_export(cells))


# ------------------------------------------------------------------ .npz
def _write_npz(
    opened: _Opened,
    entries: list[_Entry],
    target: _Target,
    dst: Path,
    options: dict[str, Any],
    progress: Callable[[int, int], None] | None,
) -> Path:
    import zipfile

    import numpy as np

    from .atomic import atomic_target
    from .containers.npyio import write_npy

    compress = _declared_options(options, "npz")["compress"]
    _plans(entries)
    batch = len(entries)
    lead = (batch,) if target.frames == 1 and all(e.frames == 1 for e in entries) else (batch, target.frames)
    frames = target.frames
    has_x, has_y = target.x_dtype is not None, target.y_dtype is not None
    tick = _ticker(progress, batch * frames * (int(has_x) + int(has_y)))
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with atomic_target(dst) as tmp, zipfile.ZipFile(tmp, "w", compression=method, allowZip64=True) as zf:
        if has_x:
            shape = (*lead, target.height, target.width, target.channels)
            blocks = _frame_blocks(
                opened, entries, frames, lambda e, c, t: _image_plane(opened, e, target, c, t), target.channels, tick
            )
            with zf.open("X.npy", "w", force_zip64=True) as out:
                write_npy(out, shape, np.dtype(target.x_dtype).newbyteorder("<"), blocks)
        if has_y:
            shape = (*lead, target.height, target.width, target.features)
            blocks = _frame_blocks(
                opened, entries, frames, lambda e, c, t: _label_plane(opened, e, target, c, t), target.features, tick
            )
            with zf.open("y.npy", "w", force_zip64=True) as out:
                write_npy(out, shape, np.dtype("<i4"), blocks)
        for name, values in (("channels", target.channel_names), ("features", target.feature_names)):
            if any(values):
                array = np.array(values, dtype=str)
                with zf.open(f"{name}.npy", "w") as out:
                    write_npy(out, array.shape, array.dtype, iter([array]))
    return dst


# ------------------------------------------------------------------ .trks
class _Chunks:
    """A file object reading a stream of byte chunks (what ``tarfile.addfile`` pulls a member from)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = bytearray()

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out


def _add_member(tar: tarfile.TarFile, name: str, size: int, chunks: Iterator[bytes]) -> None:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(time.time())
    info.mode = 0o644
    tar.addfile(info, _Chunks(chunks))


def _refuse_overlaps(e: _Entry, feature: int) -> None:
    owners: dict[tuple[int, int], set[int]] = {}
    for cell in e.cells or ():
        if cell.c == feature:
            owners.setdefault((cell.t, cell.value), set()).add(cell.cell)
    shared = sorted((key, sorted(ids)) for key, ids in owners.items() if len(ids) > 1)
    if shared:
        (t, value), ids = shared[0]
        raise UnsupportedFeatureError(
            f"a trks cannot hold overlapping cells: value {value} in frame {t} encodes cells {ids}",
            path=e.name,
            hint="merge into an .npz or a DeepCell Label project zip instead",
        )


def _write_trks(
    opened: _Opened,
    entries: list[_Entry],
    target: _Target,
    dst: Path,
    options: dict[str, Any],
    progress: Callable[[int, int], None] | None,
) -> Path:
    import math

    import numpy as np

    from .atomic import atomic_target
    from .containers.codecs import divisions_to_lineage
    from .containers.jsonio import dump_json
    from .containers.npyio import header_bytes

    feature = _declared_options(options, "trk")["feature"]  # a .trks holds what a .trk holds, per batch
    if not 0 <= feature < max(target.features, 1):
        raise InvalidOptionError(
            f"write option feature={feature!r} is not a label feature", hint=f"use 0..{max(target.features, 1) - 1}"
        )
    if target.features > 1:
        warnings.warn(
            f"a trks holds one label feature; wrote feature {feature} of {target.features}",
            DLFormatsWarning,
            stacklevel=3,
        )
    for e in entries:
        _refuse_overlaps(e, feature)
    _plans(entries, feature)
    lineages = [
        divisions_to_lineage(e.plan.cells if e.plan is not None else [], e.divisions if e.plan is not None else [])
        for e in entries
    ]
    batch, frames, height, width = len(entries), target.frames, target.height, target.width
    channels = target.channels or 1
    raw_dtype = np.dtype(target.x_dtype if target.x_dtype is not None else np.uint8).newbyteorder("<")
    tracked_dtype = np.dtype("<i4")
    tick = _ticker(progress, 2 * batch * frames)

    def raw() -> Iterator[bytes]:
        if target.x_dtype is None:
            zero = np.zeros((height, width, 1), raw_dtype).tobytes()
            for _ in range(batch * frames):
                yield zero
                tick()
            return
        for block in _frame_blocks(
            opened, entries, frames, lambda e, c, t: _image_plane(opened, e, target, c, t), channels, tick
        ):
            yield block.astype(raw_dtype, copy=False).tobytes()

    def tracked() -> Iterator[bytes]:
        for block in _frame_blocks(
            opened, entries, frames, lambda e, c, t: _label_plane(opened, e, target, feature, t), 1, tick
        ):
            yield block.astype(tracked_dtype, copy=False).tobytes()

    def npy(shape: tuple[int, ...], dtype: Any, body: Iterator[bytes]) -> tuple[int, Iterator[bytes]]:
        header = header_bytes(shape, dtype)

        def chunks() -> Iterator[bytes]:
            yield header
            yield from body

        return len(header) + math.prod(shape) * dtype.itemsize, chunks()

    with atomic_target(dst) as tmp, tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
        text = dump_json(lineages)
        _add_member(tar, "lineages.json", len(text), iter([text]))
        _add_member(tar, "raw.npy", *npy((batch, frames, height, width, channels), raw_dtype, raw()))
        _add_member(tar, "tracked.npy", *npy((batch, frames, height, width, 1), tracked_dtype, tracked()))
    return dst


# ------------------------------------------------------------------ frames as batches
class _Stacked:
    """The frames of every entry one after the other: ``(channels or features, frames, height, width)``."""

    def __init__(self, entries: list[_Entry], shape: tuple[int, int, int, int], dtype: Any, plane: Any) -> None:
        self.shape = shape
        self.dtype = dtype
        self.ndim = 4
        self._plane = plane
        self._starts = [e.frame_offset for e in entries]
        self._entries = entries

    def __getitem__(self, key: tuple[Any, ...]) -> Any:
        import bisect

        c, t = int(key[0]), int(key[1])
        i = bisect.bisect_right(self._starts, t) - 1
        e = self._entries[i]
        plane = self._plane(e, c, t - e.frame_offset)
        return plane[key[2:]] if len(key) > 2 else plane


def _write_frames(
    opened: _Opened,
    entries: list[_Entry],
    target: _Target,
    dst: Path,
    fmt: str,
    options: dict[str, Any],
    progress: Callable[[int, int], None] | None,
) -> Path:
    import numpy as np

    from .api import write
    from .arrays import LazyArray

    offset = cell_offset = 0
    for e in entries:
        e.frame_offset, e.cell_offset = offset, cell_offset
        offset += e.frames
        cell_offset += max((cell.cell for cell in e.cells or ()), default=0)
    total = offset
    if any(e.has_spots for e in entries):
        warnings.warn(
            "spots are left out: a spots table has no frame to say which batch a spot belongs to",
            DLFormatsWarning,
            stacklevel=3,
        )

    def image(e: _Entry, c: int, t: int) -> Any:
        return _image_plane(opened, e, target, c, t)

    def labels(e: _Entry, c: int, t: int) -> Any:
        if e.y_shape is None:
            return np.zeros((target.height, target.width), target.y_dtype)
        plane = _raw_label_plane(opened, e, c, t, wide=True)
        return _fit(plane, target.height, target.width).astype(target.y_dtype, copy=False)

    X = None
    if target.x_dtype is not None:
        shape = (target.channels, total, target.height, target.width)
        X = LazyArray(_Stacked(entries, shape, target.x_dtype, image), "CBYX", default_frame_axis="B")
    y = None
    if target.y_dtype is not None:
        shape = (target.features, total, target.height, target.width)
        y = LazyArray(_Stacked(entries, shape, target.y_dtype, labels), "CBYX", labels=True, default_frame_axis="B")
    cells: list[Cell] = []
    divisions: list[Division] = []
    types: dict[tuple[str, int], CellType] = {}
    embeddings: dict[int, Any] = {}
    for e in entries:
        for cell in e.cells or ():
            cells.append(Cell(cell.value, cell.cell + e.cell_offset, cell.t + e.frame_offset, cell.c))
        for d in e.divisions:
            divisions.append(
                Division(d.parent + e.cell_offset, [x + e.cell_offset for x in d.daughters], d.t + e.frame_offset)
            )
        for ct in e.cell_types:
            merged = types.setdefault(
                (ct.name, ct.feature), CellType(len(types) + 1, ct.name, ct.color, ct.feature, [])
            )
            merged.cells.extend(x + e.cell_offset for x in ct.cells)
        for i, row in enumerate(e.embeddings or ()):
            if row is not None and i > 0:
                embeddings[i + e.cell_offset] = row
    rows: list[Any] | None = None
    if embeddings:
        rows = [embeddings.get(i) for i in range(max(embeddings) + 1)]
    project = Project(
        X=X,
        y=y,
        cells=cells if any(e.cells is not None for e in entries) else None,
        divisions=divisions,
        channels=list(target.channel_names),
        features=list(target.feature_names),
        cell_types=list(types.values()),
        embeddings=rows,
        frame_axis="B",
        metadata={"merged_from": [e.name for e in entries]},
    )
    try:
        return write(project, dst, format=fmt, options=options, progress=progress)
    finally:
        opened.release()


__all__ = ["FITS", "merge"]
