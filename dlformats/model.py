"""The canonical in-memory project every reader produces and every writer consumes.

Axis conventions (DeepCell Label's):

* ``X``, the image: ``(channels, frames, height, width)``, original dtype, never rescaled.
* ``y``, the labels: ``(features, frames, height, width)``, int32 (readers keep
  int64, uint32 and uint64 labels as they are).  A pixel value encodes one or more
  cells through :attr:`Project.cells`; 0 is background.  Writers of int32 formats
  take planes through :func:`checked_labels`: values int32 cannot hold and negative
  values are an :class:`~dlformats.errors.InconsistentDataError`, never wrapped or
  clipped; :func:`relabel` (write option ``relabel=true``) renumbers them.
* "frames" is DeepCell Label's single axis for time, z or batch;
  :attr:`Project.frame_axis` records which (``"T"``, ``"Z"`` or ``"B"``).
* Spot coordinates are in pixels: ``x`` along width, ``y`` along height.

Arrays may be lazy: anything with ``shape``, ``dtype`` and ``__getitem__``
(a numpy memmap, a zarr array, :class:`dlformats.arrays.LazyArray`...).  Writers
pull them one ``[channel, frame]`` plane at a time.

This module imports numpy only inside the functions that need it, so that
``import dlformats`` stays light.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

PARTS = ("X", "y", "cells", "divisions", "spots", "channels", "features", "cell_types", "embeddings")
"""Names of the parts of a project, as used in :attr:`FormatSpec.reads` and provenance."""


@runtime_checkable
class ArrayLike(Protocol):
    """What dlformats needs of an array: a shape, a dtype and numpy-style slicing."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> Any: ...

    def __getitem__(self, key: Any) -> Any: ...


@dataclass(frozen=True, order=True)
class Cell:
    """One entry of ``cells.json``: pixel ``value`` of feature ``c`` encodes ``cell`` in frame ``t``."""

    value: int
    cell: int
    t: int
    c: int = 0


@dataclass
class Division:
    """Cell ``parent`` divides into ``daughters``; ``t`` is the first frame of the daughters."""

    parent: int
    daughters: list[int]
    t: int


@dataclass
class CellType:
    """A named group of cells of one feature, shown with ``color`` (``#rrggbb``)."""

    id: int
    name: str
    color: str = "#000000"
    feature: int = 0
    cells: list[int] = field(default_factory=list)


@dataclass
class Spots:
    """Spot coordinates (pixels; ``x`` along width, ``y`` along height) and further columns.

    ``columns`` holds every column other than ``x`` and ``y`` in file order, by
    header name.  In DeepCell Label these are cell assignments, one per feature (integers,
    ``None`` for an empty field); other columns are kept as they are (numbers or text).
    """

    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    columns: dict[str, list[Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.x)


@dataclass
class Provenance:
    """Which format, plugin (and its version) and source produced a part of a project."""

    format: str
    plugin: str
    version: str
    source: str


@dataclass(frozen=True)
class Problem:
    """One problem found by :meth:`Project.validate`.

    ``severity`` is ``"error"`` when the data is unusable as it stands (readers
    raise on these), ``"warning"`` when it is usable but suspicious.
    """

    part: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return f"{self.severity}: {self.part}: {self.message}"


@dataclass(eq=False)
class Project:
    """A DeepCell Label project: image, labels, cells, divisions, spots and their names.

    Attributes:
        X: image, ``(channels, frames, height, width)``, original dtype; may be lazy.
        y: labels, ``(features, frames, height, width)``, integers (int32; int64,
            uint32 and uint64 are checked plane by plane when written as int32); may be
            lazy; ``None`` when the source has no labels (writers then write zeros).
        cells: ``cells.json`` entries, always usable as a table (``len``, iteration,
            columns ``value``, ``cell``, ``t``, ``c``: a :class:`CellTable`).  When the
            source lists none (set ``None``), they are derived from the labels on first use,
            one cell per positive value per frame and feature, as DeepCell Label derives
            them (a :class:`DerivedCells`); :attr:`listed_cells` tells the two apart.
        divisions: cell divisions.
        spots: spot table, or ``None``.
        channels: names of the image channels (``""`` where unnamed), or empty.
        features: names of the label features, or empty.
        cell_types: cell types.
        embeddings: row ``i`` is the embedding of cell ``i`` (``None`` where absent), or ``None``.
        frame_axis: what the frames axis is: ``"T"`` (time), ``"Z"`` (depth) or ``"B"`` (batch).
        provenance: for each part name (see :data:`PARTS`), what produced it.
        metadata: anything else a reader wants to pass on (JSON-able values).
    """

    X: Any = None
    y: Any = None
    cells: list[Cell] | None = None
    divisions: list[Division] = field(default_factory=list)
    spots: Spots | None = None
    channels: list[str] = field(default_factory=list)
    features: list[str] = field(default_factory=list)
    cell_types: list[CellType] = field(default_factory=list)
    embeddings: list[Any] | None = None
    frame_axis: Literal["T", "Z", "B"] = "T"
    provenance: dict[str, Provenance] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("X", "y"):
            problem = _not_an_array(name, getattr(self, name))
            if problem:
                raise TypeError(f"Project.{name} {problem}")

    @property
    def listed_cells(self) -> list[Cell] | CellTable | None:
        """The cells the source listed (``cells.json``...), or ``None`` when :attr:`cells` are derived from the labels.

        Writers use it to choose between applying DeepCell Label's export rule to
        listed cells and deriving one cell per label value as they write.
        """
        return self.__dict__.get("_cells")

    def __repr__(self) -> str:
        """One short line: shapes, dtypes and counts (:meth:`describe` gives every part)."""
        items = [f"X={_array_text(self.X)}", f"y={_array_text(self.y)}"]
        if self.X is not None or self.y is not None:
            items.append(f"frames={self.num_frames} ({self.frame_axis})")
        listed = self.listed_cells
        items.append(f"cells={len(listed)}" if listed is not None else "cells=derived")
        for name in ("divisions", "cell_types"):
            if getattr(self, name):
                items.append(f"{name}={len(getattr(self, name))}")
        if self.spots is not None:
            items.append(f"spots={len(self.spots)}")
        if self.channels:
            items.append(f"channels={_names_text(self.channels)}")
        if self.features:
            items.append(f"features={_names_text(self.features)}")
        if self.embeddings is not None:
            items.append(f"embeddings={len(self.embeddings)}")
        return f"Project({', '.join(items)})"

    def describe(self, *, count_cells: bool = True) -> str:
        """Several lines describing every part, as ``dlformats info`` prints them (the long form of ``repr``).

        With ``count_cells`` (the default) derived cells are counted, which reads every label plane once.
        """
        rows = [
            ("X", _array_text(self.X, "channels, frames, height, width")),
            ("y", _array_text(self.y, "features, frames, height, width")),
            ("frames", f"{self.num_frames} ({self.frame_axis})"),
            ("channels", ", ".join(repr(c) for c in self.channels) or "-"),
            ("features", ", ".join(repr(c) for c in self.features) or "-"),
        ]
        listed = self.listed_cells
        if listed is not None or count_cells:
            table = CellTable.from_cells(self.cells)
            text = f"{len(table)} entries, {table.distinct()} distinct cells"
            rows.append(("cells", text + ("" if listed is not None else " (derived from the labels)")))
        else:
            rows.append(("cells", "derived from the labels"))
        rows += [
            ("divisions", str(len(self.divisions))),
            ("spots", str(len(self.spots)) if self.spots is not None else "0"),
            ("cell types", str(len(self.cell_types))),
            ("embeddings", str(len(self.embeddings)) if self.embeddings is not None else "0"),
        ]
        for part, prov in sorted(self.provenance.items()):
            rows.append((f"from ({part})", f"{prov.format} (plugin {prov.plugin}) {prov.source}"))
        width = max(len(k) for k, _ in rows) + 2
        return "\n".join(f"{k + ':':<{width}}{v}" for k, v in rows)

    # ---------------------------------------------------------------- shape
    @property
    def num_channels(self) -> int:
        """Number of image channels (0 without an image)."""
        return int(self.X.shape[0]) if self.X is not None else 0

    @property
    def num_features(self) -> int:
        """Number of label features (1 when there are no labels: writers write one of zeros)."""
        return int(self.y.shape[0]) if self.y is not None else 1

    @property
    def num_frames(self) -> int:
        """Number of frames (time points, z-slices or batches)."""
        ref = self.X if self.X is not None else self.y
        return int(ref.shape[1]) if ref is not None else 0

    @property
    def frame_shape(self) -> tuple[int, int]:
        """``(height, width)`` in pixels."""
        ref = self.X if self.X is not None else self.y
        if ref is None:
            return (0, 0)
        return (int(ref.shape[2]), int(ref.shape[3]))

    def image_frame(self, c: int, t: int) -> np.ndarray:
        """Return the ``(height, width)`` plane of image channel ``c`` at frame ``t`` as numpy."""
        import numpy as np

        return np.asarray(self.X[c, t])

    def label_frame(self, c: int, t: int, *, negatives: bool = False, wide: bool = False) -> np.ndarray:
        """Return the ``(height, width)`` int32 plane of label feature ``c`` at frame ``t``.

        Zeros when the project has no labels.  The plane goes through
        :func:`checked_labels`: values int32 cannot hold, negative values (unless
        ``negatives``) and non-integer values raise
        :class:`~dlformats.errors.InconsistentDataError` naming the feature, the frame
        and some of the values.  With ``wide=True`` int64, uint32 and uint64 planes
        come back as they are (for formats that store them).
        """
        import numpy as np

        if self.y is None:
            return np.zeros(self.frame_shape, np.int32)
        return checked_labels(self.y[c, t], feature=c, frame=t, negatives=negatives, wide=wide)

    def cells_or_derived(self) -> list[Cell]:
        """Return :attr:`cells`, or derive them from the labels (value = cell) when ``None``.

        Deriving reads every label plane once.
        """
        if self.listed_cells is not None:
            return self.listed_cells
        return derive_cells(self)

    # ------------------------------------------------------------ validation
    def validate(self, *, pixels: bool = True, recorded: bool = True) -> list[Problem]:
        """Return every problem found in the project, all at once (an empty list when it is sound).

        Each :class:`Problem` names its part and where it is (feature, frame, cell,
        division, spot rows).  Checks shapes and dtypes of ``X`` and ``y``, that they
        agree, the lengths of channel and feature names, cells (frames and features in
        range, duplicates), divisions (named cells exist, frames in range, a cell is not
        its own daughter, and their timing as deepcell-tracking's lineage check requires:
        every daughter first appears at the division's frame ``t`` and the parent last
        appears at ``t - 1``), cell types, embeddings, spot coordinates (finite, and
        inside the image: ``x`` in ``[-0.5, width - 0.5)``, ``y`` in ``[-0.5, height -
        0.5)``, pixel centres at whole numbers) and the problems a reader recorded in
        ``metadata["lineage_problems"]`` (a lineage breaking deepcell-tracking's rules).
        A project without ``X`` and ``y`` is sound when it holds other parts (a lineage or
        a spots table read on its own); its frames and features are then unknown, so
        only their signs are checked.

        With ``pixels=True`` (the default) it also reads every label plane once and
        reports values an int32 label cannot hold and negative values (errors: int32
        formats refuse them), and, when the project lists cells, cells whose value is
        absent from their frame and values present in a frame but used by no cell; the
        timing of divisions of a project without listed cells is checked against the
        cells derived from the labels.  ``pixels=False`` reads no pixels (what every
        read checks).  ``recorded=False`` leaves out what the reader recorded (and the
        division timing of a lineage whose reader found problems: it checked those rules
        itself), as reading does: the reader warned about them already.
        """
        problems: list[Problem] = []
        add = problems.append
        for name, arr in (("X", self.X), ("y", self.y)):
            if _not_an_array(name, arr):
                add(Problem(name, _not_an_array(name, arr)))
        if problems:
            return problems  # further checks need arrays
        for name, arr, axes in (("X", self.X, "channels"), ("y", self.y, "features")):
            if arr is None:
                continue
            shape = tuple(arr.shape)
            if len(shape) != 4:
                add(Problem(name, f"must have 4 dimensions ({axes}, frames, height, width), has shape {shape}"))
            elif 0 in shape:
                add(Problem(name, f"has an empty axis: shape {shape}"))
        # A project without arrays is still sound when it carries other parts: a
        # lineage or a spots table read on its own, later merged with an image.
        has_arrays = self.X is not None or self.y is not None
        if not has_arrays and not self.has_parts():
            add(Problem("X", "the project has neither an image nor labels, nor cells, divisions or spots"))
        if self.y is not None and len(self.y.shape) == 4:
            kind = getattr(self.y.dtype, "kind", "?")
            if kind not in "iubf":  # floats must hold whole numbers: checked plane by plane
                add(Problem("y", f"labels must be integers, found dtype {self.y.dtype}"))
        if (
            self.X is not None
            and self.y is not None
            and len(self.X.shape) == 4
            and len(self.y.shape) == 4
            and tuple(self.X.shape[1:]) != tuple(self.y.shape[1:])
        ):
            add(
                Problem(
                    "y",
                    f"labels (features, frames, height, width) {tuple(self.y.shape)} disagree with "
                    f"image (channels, frames, height, width) {tuple(self.X.shape)} in frames or size",
                )
            )
        if any(p.severity == "error" for p in problems):
            return problems  # further checks assume sound shapes

        if self.channels and len(self.channels) != self.num_channels:
            add(Problem("channels", f"{len(self.channels)} names for {self.num_channels} channels"))
        if self.features and self.y is not None and len(self.features) != self.num_features:
            add(Problem("features", f"{len(self.features)} names for {self.num_features} features"))
        if self.frame_axis not in ("T", "Z", "B"):
            add(Problem("frame_axis", f"must be T, Z or B, not {self.frame_axis!r}"))

        frames, features = self.num_frames, self.num_features
        # Without arrays the frame and feature counts are unknown: only signs are checked.
        span = f"0..{frames - 1}" if has_arrays else "0 and up"

        def in_range(i: int, n: int) -> bool:
            return 0 <= i < n if has_arrays else i >= 0

        known: set[int] = set()
        listed = self.listed_cells
        if listed is not None:
            found, known = _cell_problems(
                listed, frames if has_arrays else None, features if has_arrays else None, ids=bool(self.divisions)
            )
            problems.extend(found)

        daughters_seen: dict[int, int] = {}
        for d in self.divisions:
            if not in_range(d.t, frames):
                add(Problem("divisions", f"{_division_name(d)}: frame out of range {span}"))
            if d.parent in d.daughters:
                add(Problem("divisions", f"{_division_name(d)}: a cell cannot be its own daughter"))
            if len(set(d.daughters)) != len(d.daughters):
                add(Problem("divisions", f"{_division_name(d)}: a daughter is listed twice", "warning"))
            if listed is not None:
                missing = [c for c in [d.parent, *d.daughters] if c not in known]
                if missing:
                    text = f"{_division_name(d)}: names cells absent from cells: {missing}"
                    add(Problem("divisions", text, "warning"))
            for daughter in d.daughters:
                if daughter in daughters_seen and daughters_seen[daughter] != d.parent:
                    add(
                        Problem(
                            "divisions",
                            f"cell {daughter} is a daughter of both {daughters_seen[daughter]} and {d.parent}",
                            "warning",
                        )
                    )
                daughters_seen[daughter] = d.parent

        for ct in self.cell_types:
            if not 0 <= ct.feature < features:
                add(Problem("cell_types", f"cell type {ct.id} {ct.name!r}: feature {ct.feature} out of range"))
        if self.spots is not None:
            n = len(self.spots.x)
            if len(self.spots.y) != n or any(len(v) != n for v in self.spots.columns.values()):
                add(Problem("spots", "columns have different lengths"))
            elif not all(_finite_number(v) for v in (*self.spots.x, *self.spots.y)):
                add(Problem("spots", "coordinates must be finite numbers"))
            elif has_arrays and n:
                problems.extend(_spots_outside(self.spots, *self.frame_shape))

        recorded_problems = self.metadata.get("lineage_problems") or ()
        if recorded:
            for message in recorded_problems:
                add(Problem("divisions", f"the file's lineage: {message}", "warning"))
        timing = self.divisions and (recorded or not recorded_problems)

        spans: dict[int, tuple[int, int]] | None = None
        if listed is not None and timing:
            spans = _frame_spans(listed)
        if pixels and self.y is not None:
            seen_values: dict[int, set[int]] | None = {} if listed is None and timing else None
            problems.extend(_pixel_problems(self, seen_values))
            if seen_values is not None:
                spans = {cell: (min(ts), max(ts)) for cell, ts in seen_values.items() if ts}
        if spans is not None:
            problems.extend(_division_timing(self.divisions, spans))
        return problems

    def has_parts(self) -> bool:
        """True when the project holds anything besides ``X`` and ``y`` (listed cells, divisions, spots...)."""
        return (
            self.listed_cells is not None
            or bool(self.divisions)
            or self.spots is not None
            or bool(self.cell_types)
            or self.embeddings is not None
        )

    def check(self, *, path: str | None = None, pixels: bool = False) -> list[Problem]:
        """Validate (without what the reader recorded: it warned); raise :class:`InconsistentDataError` listing
        the errors, else return the warnings."""
        from .errors import InconsistentDataError

        problems = self.validate(pixels=pixels, recorded=False)
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            raise InconsistentDataError(
                "unusable project: "
                + "; ".join(f"{p.part}: {p.message}" for p in errors[:5])
                + (f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""),
                problems=problems,
                path=path,
            )
        return problems

    def summary(self) -> dict[str, Any]:
        """Return a JSON-able description: shapes, dtypes, names and counts."""

        def describe(arr: Any) -> dict[str, Any] | None:
            if arr is None:
                return None
            import numpy as np

            return {"shape": [int(s) for s in arr.shape], "dtype": str(np.dtype(arr.dtype))}

        return {
            "X": describe(self.X),
            "y": describe(self.y),
            "channels": list(self.channels),
            "features": list(self.features),
            "frames": self.num_frames,
            "frame_axis": self.frame_axis,
            "height": self.frame_shape[0],
            "width": self.frame_shape[1],
            "cells": len(self.listed_cells) if self.listed_cells is not None else None,
            "divisions": len(self.divisions),
            "spots": len(self.spots) if self.spots is not None else 0,
            "cell_types": len(self.cell_types),
            "embeddings": len(self.embeddings) if self.embeddings is not None else 0,
            "provenance": {k: vars(v) for k, v in self.provenance.items()},
        }


def _not_an_array(name: str, value: Any) -> str:
    """What is wrong with ``value`` as the array ``name`` (``""`` when it is an array or ``None``)."""
    if value is None or all(hasattr(value, a) for a in ("shape", "dtype", "__getitem__")):
        return ""
    axes = "channels" if name == "X" else "features"
    hint = " (wrap it in numpy.asarray)" if isinstance(value, (list, tuple)) else ""
    return (
        f"must be an array with shape and dtype ({axes}, frames, height, width), such as a numpy array, "
        f"not a {type(value).__name__}{hint}"
    )


def _finite_number(value: Any) -> bool:
    try:
        return not isinstance(value, bool) and math.isfinite(value)
    except TypeError:
        return False


def _cell_text(cell: Cell) -> str:
    return f"cell {cell.cell} (value {cell.value}, t {cell.t}, c {cell.c})"


def _array_text(arr: Any, axes: str = "") -> str:
    if arr is None:
        return "None"
    import numpy as np

    try:
        dtype = str(np.dtype(arr.dtype))
    except TypeError:
        dtype = str(arr.dtype)
    return f"{tuple(int(s) for s in arr.shape)} {dtype}" + (f"  ({axes})" if axes else "")


def _names_text(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:4])
    return f"[{shown}{', ...' if len(names) > 4 else ''}]" + (f" ({len(names)})" if len(names) > 4 else "")


def _spots_outside(spots: Spots, height: int, width: int) -> list[Problem]:
    """Spots whose pixel coordinates fall outside the ``height`` x ``width`` image (pixel centres at whole numbers)."""
    rows = [
        i
        for i, (x, y) in enumerate(zip(spots.x, spots.y))
        if not (-0.5 <= x < width - 0.5 and -0.5 <= y < height - 0.5)
    ]
    if not rows:
        return []
    shown = ", ".join(f"{i} (x {_number(spots.x[i])}, y {_number(spots.y[i])})" for i in rows[:5])
    more = f" and {len(rows) - 5:,} more" if len(rows) > 5 else ""
    return [
        Problem(
            "spots",
            f"{len(rows):,} of {len(spots):,} spots lie outside the {width} x {height} image "
            f"(x from -0.5 to {width - 0.5}, y from -0.5 to {height - 0.5}): rows {shown}{more}",
            "warning",
        )
    ]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _division_name(d: Division) -> str:
    """How a problem names a division (formatted only for the divisions that have one)."""
    return f"division of {d.parent} into {d.daughters} at frame {d.t}"


def _frame_spans(cells: Iterable[Cell]) -> dict[int, tuple[int, int]]:
    """For each cell id, the first and the last frame where it is listed (any feature).

    Vectorised: one sort of the (cell, frame) pairs and the ends of each cell's run, not a
    Python list per cell (16,000 tracked cells: 140 -> 10 ms).
    """
    import numpy as np

    table = CellTable.from_cells(cells)
    if len(table) == 0:
        return {}
    order = np.lexsort((table.t, table.cell))
    cell, t = table.cell[order], table.t[order]
    starts = np.flatnonzero(np.concatenate(([True], cell[1:] != cell[:-1])))
    ends = np.append(starts[1:], len(cell)) - 1
    return dict(zip(cell[starts].tolist(), zip(t[starts].tolist(), t[ends].tolist())))


def _division_timing(divisions: Iterable[Division], spans: dict[int, tuple[int, int]]) -> list[Problem]:
    """Divisions whose timing deepcell-tracking's lineage check refuses.

    A division at ``t`` (the daughters' first frame) needs every daughter to first
    appear at ``t`` and the parent to last appear at ``t - 1``: a parent still present
    where its daughters appear, or gone frames before, is refused by
    ``deepcell_tracking``.  ``spans`` gives each cell's first and last frame.
    """
    out = []
    for d in divisions:
        parent = spans.get(d.parent)
        if parent:
            last = parent[1]
            if last >= d.t:
                out.append(
                    Problem(
                        "divisions",
                        f"{_division_name(d)}: parent {d.parent} is still present at frame {last}, where its daughters "
                        f"are; deepcell-tracking needs its last frame to be {d.t - 1}, right before theirs",
                        "warning",
                    )
                )
            elif last < d.t - 1:
                out.append(
                    Problem(
                        "divisions",
                        f"{_division_name(d)}: parent {d.parent} last appears at frame {last}; deepcell-tracking needs "
                        f"its last frame to be {d.t - 1}, right before its daughters' first",
                        "warning",
                    )
                )
        for daughter in d.daughters:
            frames = spans.get(daughter)
            if frames and frames[0] != d.t:
                out.append(
                    Problem(
                        "divisions",
                        f"{_division_name(d)}: daughter {daughter} first appears at frame {frames[0]}, "
                        "not at the division's frame",
                        "warning",
                    )
                )
    return out


def _cell_problems(
    cells: Iterable[Cell], frames: int | None, features: int | None, *, ids: bool = True
) -> tuple[list[Problem], set[int]]:
    """Problems of ``cells`` (frames and features in range, or only non-negative when ``None``;
    positive ids; repeats), in the order a pass cell by cell meets them, and the set of cell ids
    (empty unless ``ids``).

    Vectorised over the columns of a :class:`CellTable`: a few numpy passes however many
    cells, and Python work only for the cells that have a problem.
    """
    import numpy as np

    try:
        table = CellTable.from_cells(cells)
    except (OverflowError, TypeError, ValueError):  # ids beyond int64, or not numbers: cell by cell
        return _cell_problems_slow(cells, frames, features)
    t, c, value, cell = table.t, table.c, table.value, table.cell
    bad_t = (t < 0) if frames is None else (t < 0) | (t >= frames)
    bad_c = (c < 0) if features is None else (c < 0) | (c >= features)
    bad_id = (value <= 0) | (cell <= 0)
    repeat = _repeated_rows([t, c, value, cell])
    problems: list[Problem] = []
    span = "0 and up" if frames is None else f"0..{frames - 1}"
    fspan = "0 and up" if features is None else f"0..{features - 1}"
    for i in np.flatnonzero(bad_t | bad_c | bad_id | repeat).tolist():
        one = table[i]
        text = _cell_text(one)
        if bad_t[i]:
            problems.append(Problem("cells", f"{text}: frame {one.t} out of range {span}"))
        if bad_c[i]:
            problems.append(Problem("cells", f"{text}: feature {one.c} out of range {fspan}"))
        if bad_id[i]:
            problems.append(Problem("cells", f"{text}: value and cell must be positive"))
        if repeat[i]:
            problems.append(Problem("cells", f"{text} is listed more than once", "warning"))
    return problems, set(_unique_ints(cell).tolist()) if ids else set()


def _cell_problems_slow(
    cells: Iterable[Cell], frames: int | None, features: int | None
) -> tuple[list[Problem], set[int]]:
    """:func:`_cell_problems` for cells whose ids numpy cannot hold."""
    problems: list[Problem] = []
    span = "0 and up" if frames is None else f"0..{frames - 1}"
    fspan = "0 and up" if features is None else f"0..{features - 1}"
    seen: set[Cell] = set()
    known: set[int] = set()
    for cell in cells:
        if cell.t < 0 or (frames is not None and cell.t >= frames):
            problems.append(Problem("cells", f"{_cell_text(cell)}: frame {cell.t} out of range {span}"))
        if cell.c < 0 or (features is not None and cell.c >= features):
            problems.append(Problem("cells", f"{_cell_text(cell)}: feature {cell.c} out of range {fspan}"))
        if cell.value <= 0 or cell.cell <= 0:
            problems.append(Problem("cells", f"{_cell_text(cell)}: value and cell must be positive"))
        if cell in seen:
            problems.append(Problem("cells", f"{_cell_text(cell)} is listed more than once", "warning"))
        seen.add(cell)
        known.add(cell.cell)
    return problems, known


def _unique_ints(values: Any) -> Any:
    """The sorted distinct values of a 1-D integer array (``np.unique``), by counting when the values
    span a range no wider than a few times their number (cell ids usually do), else by sorting."""
    import numpy as np

    if len(values) == 0:
        return np.unique(values)
    low, high = int(values.min()), int(values.max())
    if high - low < 4 * len(values) + 1024:
        return np.flatnonzero(np.bincount(values - low)).astype(values.dtype) + low
    return np.unique(values)


def _repeated_rows(cols: list[Any]) -> Any:
    """A boolean array marking each row of the 1-D int columns ``cols`` equal to an earlier row."""
    import numpy as np

    n = len(cols[0])
    out = np.zeros(n, bool)
    if n < 2:
        return out
    packed = _pack(cols)
    if packed is not None:
        key = packed[0]
        if bool(np.all(key[1:] > key[:-1])):
            return out  # sorted and distinct, as cells.json usually is
        order = np.argsort(key, kind="stable")
        ordered = key[order]
        same = ordered[1:] == ordered[:-1]
    else:
        order = np.lexsort(cols[::-1])  # stable: the first of equal rows comes first
        same = np.ones(n - 1, bool)
        for col in cols:
            ordered = col[order]
            same &= ordered[1:] == ordered[:-1]
    out[order[1:][same]] = True
    return out


def _pixel_problems(project: Project, seen_values: dict[int, set[int]] | None = None) -> Iterator[Problem]:
    """Problems of the label planes; ``seen_values`` (when given) collects ``{value: frames where present}``."""
    import numpy as np

    listed_cells = project.listed_cells
    listed_in = _values_by_plane(listed_cells) if listed_cells is not None else {}
    nothing = np.zeros(0, np.int64)
    for c in range(project.num_features):
        for t in range(project.num_frames):
            plane = np.asarray(project.y[c, t])
            issues = label_problems(plane)
            for issue in issues:
                yield Problem("y", f"feature {c} frame {t}: {issue}")
            if seen_values is not None and not (issues and plane.dtype.kind not in "iub"):
                for value in present_values(plane).tolist():
                    seen_values.setdefault(value, set()).add(t)
            if listed_cells is None or (issues and plane.dtype.kind not in "iub"):
                continue
            listed = listed_in.get((c, t), nothing)
            if issues or isinstance(listed, set):  # values beyond int32 (or listed beyond int64): exact ints
                present = set(np.unique(plane).tolist()) - {0}
                listed = set(listed.tolist()) if not isinstance(listed, set) else listed
                absent, unused = sorted(listed - present), sorted(present - listed)
            else:  # every value is an int32 of at least 0: sorted arrays
                present = present_values(plane)
                absent = np.setdiff1d(listed, present, assume_unique=True).tolist()
                unused = np.setdiff1d(present, listed, assume_unique=True).tolist()
            if absent:
                yield Problem("cells", f"feature {c} frame {t}: values {absent[:20]} listed but absent", "warning")
            if unused:
                yield Problem("y", f"feature {c} frame {t}: values {unused[:20]} used by no cell", "warning")


def _values_by_plane(cells: Iterable[Cell]) -> dict[tuple[int, int], Any]:
    """The distinct values listed per ``(feature, frame)``, ascending: int64 arrays, or sets of
    Python ints when some do not fit in int64."""
    import numpy as np

    try:
        table = CellTable.from_cells(cells)
    except OverflowError:
        out: dict[tuple[int, int], Any] = {}
        for cell in cells:
            out.setdefault((cell.c, cell.t), set()).add(cell.value)
        return out
    if len(table) == 0:
        return {}
    (c, t, value), _ = _sorted_unique([table.c, table.t, table.value])
    starts = np.flatnonzero(np.concatenate(([True], (c[1:] != c[:-1]) | (t[1:] != t[:-1]))))
    ends = np.append(starts[1:], len(c))
    return {(int(c[a]), int(t[a])): value[a:b] for a, b in zip(starts.tolist(), ends.tolist())}


# --------------------------------------------------------------- label values
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def _relabel_hint() -> str:
    """What to do about label values int32 cannot hold, or negative ones, in the caller's syntax."""
    from .errors import command_syntax_active, usage

    python = "" if command_syntax_active() else " or dlformats.relabel(project)"
    return (
        f"relabel them to consecutive ids with {usage('write', 'relabel', True)}{python}, "
        "or write .npy/.npz, which keep 64-bit labels"
    )


def _wide(dtype: Any) -> bool:
    """True for integer dtypes holding values int32 cannot: int64, uint32, uint64."""
    return dtype.kind in "iu" and dtype.itemsize >= 4 and not (dtype.kind == "i" and dtype.itemsize == 4)


def label_dtype(dtype: Any, *, wide: bool = False) -> np.dtype:
    """The dtype :func:`checked_labels` gives planes of ``dtype``: int32, or with ``wide`` the wide dtype itself."""
    import numpy as np

    dtype = np.dtype(dtype)
    return dtype.newbyteorder("=") if wide and _wide(dtype) else np.dtype(np.int32)


def _some(values: Any) -> str:
    """A few distinct ``values``, ascending, for a message."""
    import numpy as np

    distinct = np.unique(values)
    shown = ", ".join(str(v) for v in distinct[:5].tolist())
    return shown + (f" and {len(distinct) - 5} more" if len(distinct) > 5 else "")


def label_problems(plane: Any, *, negatives: bool = False) -> list[str]:
    """What keeps a label plane from being stored as int32, each naming some offending values.

    Non-integer (or non-finite) values, values beyond int32 and, unless ``negatives``,
    negative values.  An empty list when the plane can be cast without loss.  Reads
    the plane once or twice (min and max); the offending values only on failure.
    """
    import numpy as np

    plane = np.asarray(plane)
    kind = plane.dtype.kind
    if kind not in "biuf":
        return [f"labels of dtype {plane.dtype} are not integers"]
    if plane.size == 0 or kind == "b" or (kind == "u" and plane.dtype.itemsize <= 2):
        return []
    out: list[str] = []
    if kind == "f":
        with np.errstate(invalid="ignore"):
            broken = ~np.isfinite(plane) | (plane != np.round(plane))
        if broken.any():
            out.append(f"non-integer values {_some(plane[broken])}")
            plane = plane[~broken]
            if plane.size == 0:
                return out
    low, high = plane.min(), plane.max()
    if high > INT32_MAX or (kind != "u" and low < INT32_MIN):
        beyond = plane > INT32_MAX
        if kind != "u":
            beyond |= plane < INT32_MIN
        out.append(f"values {_some(plane[beyond])} do not fit in int32 ({INT32_MIN}..{INT32_MAX})")
    if not negatives and kind != "u" and low < 0:
        below = (plane < 0) & (plane >= INT32_MIN)
        if below.any():
            out.append(f"negative values {_some(plane[below])} (a label is 0, background, or positive)")
    return out


def checked_labels(
    plane: Any,
    *,
    feature: int | None = None,
    frame: int | None = None,
    negatives: bool = False,
    wide: bool = False,
) -> np.ndarray:
    """The one conversion of a ``(height, width)`` label plane to int32: checked, never wrapped.

    bool, uint8 and uint16 planes are cast; int8, int16 and int32 planes are cast once
    found non-negative (or with ``negatives=True``); int64, uint32, uint64 and float
    planes only when every value is a whole number within int32 (and non-negative).
    With ``wide=True`` int64, uint32 and uint64 planes are returned as they are, in
    native byte order, unchecked (for formats that store them).

    Raises:
        InconsistentDataError: naming part ``y``, ``feature`` and ``frame`` when given,
            some offending values and how to relabel; its ``problems`` hold one
            :class:`Problem` of part ``y``.
    """
    import numpy as np

    plane = np.asarray(plane)
    dtype = plane.dtype
    kind, size = dtype.kind, dtype.itemsize
    if kind == "b" or (kind == "u" and size <= 2):
        return plane.astype(np.int32, copy=False)
    if wide and _wide(dtype):
        return plane.astype(dtype.newbyteorder("="), copy=False)
    if kind == "i" and size <= 4 and (negatives or plane.size == 0 or plane.min() >= 0):
        return plane.astype(np.int32, copy=False)
    issues = label_problems(plane, negatives=negatives)
    if not issues:
        return plane.astype(np.int32, copy=False)
    from .errors import InconsistentDataError

    where = "" if feature is None and frame is None else f"feature {feature} frame {frame}: "
    message = where + "; ".join(issues)
    whole = all(issue.startswith("non-integer") or issue.startswith("labels of dtype") for issue in issues)
    raise InconsistentDataError(
        f"labels (y) {message}",
        problems=[Problem("y", message)],
        hint="labels must be whole numbers: round them or cast them to an integer type" if whole else _relabel_hint(),
    )


def relabel(project: Project) -> Project:
    """A copy of ``project`` whose label values are consecutive ids per feature, as int32.

    Per feature, the distinct values of every frame (and the values of its cells)
    become ``1, 2, 3...`` in ascending order, negative values first; 0 stays 0.  The
    mapping is the same in every frame of a feature, and :attr:`Project.cells` get
    their ``value`` rewritten with it (cell ids, divisions and everything else are
    unchanged).  Reads every label plane once now, to find the values; the new ``y``
    is lazy and maps each plane when it is read.  The project itself is not modified.

    Raises:
        InconsistentDataError: non-integer labels, or uint64 values beyond int64.
    """
    import numpy as np

    out = replace(project, provenance=dict(project.provenance), metadata=dict(project.metadata))
    y = project.y
    if y is None or 0 in tuple(y.shape) or len(tuple(y.shape)) != 4:
        return out
    features, frames = int(y.shape[0]), int(y.shape[1])
    listed = project.listed_cells
    table = CellTable.from_cells(listed) if listed is not None else None
    tables: list[tuple[Any, Any]] = []
    for c in range(features):
        found = [_distinct_nonzero(y[c, t], c, t) for t in range(frames)]
        if table is not None:
            found.append(table.value[(table.c == c) & (table.value != 0)])
        old = np.union1d(np.concatenate(found), np.zeros(1, np.int64))
        if len(old) - 1 > INT32_MAX:
            from .errors import InconsistentDataError

            raise InconsistentDataError(f"labels (y) feature {c} hold {len(old) - 1} values, more than int32 ids")
        rank = np.arange(len(old), dtype=np.int64)
        zero = int(np.searchsorted(old, 0))
        new = np.where(rank < zero, rank + 1, rank).astype(np.int32)
        new[zero] = 0
        tables.append((old, new))
    from .arrays import LazyArray

    out.y = LazyArray(_Relabelled(y, tables), "CTYX", labels=True)
    if table is not None:
        value = table.value.copy()
        for c, (old, new) in enumerate(tables):
            rows = table.c == c
            value[rows] = new[np.searchsorted(old, table.value[rows])]
        cells = CellTable(value, table.cell, table.t, table.c)
        out.cells = cells if isinstance(listed, CellTable) else list(cells)
    return out


def _distinct_nonzero(plane: Any, c: int, t: int) -> Any:
    """The distinct non-zero values of a label plane, as int64."""
    import numpy as np

    plane = checked_labels(plane, feature=c, frame=t, negatives=True, wide=True)
    if plane.dtype == np.uint64 and plane.size and int(plane.max()) > np.iinfo(np.int64).max:
        from .errors import InconsistentDataError

        big = plane[plane > np.iinfo(np.int64).max]
        raise InconsistentDataError(
            f"labels (y) feature {c} frame {t}: values {_some(big)} are beyond int64 and cannot be relabelled"
        )
    values = present_values(plane)
    if plane.dtype.kind == "i" and plane.size and plane.min() < 0:
        values = np.concatenate([np.unique(plane[plane < 0]).astype(np.int64), values])
    return values


class _Relabelled:
    """``(features, frames, height, width)`` labels mapped through one sorted table per feature."""

    def __init__(self, y: Any, tables: list[tuple[Any, Any]]) -> None:
        import numpy as np

        self._y = y
        self._tables = tables
        self.shape = tuple(int(s) for s in y.shape)
        self.dtype = np.dtype(np.int32)
        self.ndim = 4

    def __getitem__(self, key: tuple[Any, ...]) -> Any:
        import numpy as np

        c, t, rest = key[0], key[1], key[2:]
        old, new = self._tables[c]
        plane = checked_labels(self._y[c, t], feature=c, frame=t, negatives=True, wide=True).astype(np.int64)
        flat = plane.ravel()
        starts = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        runs = len(starts) < flat.size // 8  # labels come in runs: look up one value per run
        if runs:
            starts = np.concatenate(([0], starts))
            flat = flat[starts]
        pos = np.minimum(np.searchsorted(old, flat), len(old) - 1)
        if not np.array_equal(old[pos], flat):
            from .errors import InconsistentDataError

            raise InconsistentDataError(f"labels (y) feature {c} frame {t} changed while being relabelled")
        out = new[pos]
        if runs:
            out = np.repeat(out, np.diff(np.append(starts, plane.size)))
        out = out.reshape(plane.shape)
        return out[rest] if rest else out


def present_values(plane: Any) -> Any:
    """The positive values of an integer label plane, ascending, as int64.

    Labels come in runs: every value present starts a run, so the values where a
    row-major scan changes are all that need sorting.  Noise-like planes fall back
    to a count table (small values) or a full unique.
    """
    import numpy as np

    flat = plane.ravel()
    if flat.size == 0:
        return np.zeros(0, np.int64)
    starts = np.flatnonzero(flat[1:] != flat[:-1])
    if len(starts) < flat.size // 8:
        values = np.unique(np.append(flat[starts + 1], flat[0]))
    else:
        top = int(flat.max())
        if flat.dtype == np.int32 and top < (1 << 24) and int(flat.min()) >= 0:
            counts = np.bincount(flat.view(np.uint32), minlength=top + 1)  # uint32: no int64 copy
            return np.flatnonzero(counts[1:]) + 1
        values = np.unique(flat)
    return values[values > 0].astype(np.int64)


def derive_cells(project: Project, *, checked: bool = False) -> list[Cell]:
    """One cell per positive label value per frame and feature, with cell = value.

    This is what DeepCell Label does for labels that come without ``cells.json``.
    Reads every label plane once.  Values int32 cannot hold are kept, unless
    ``checked``: then planes go through :func:`checked_labels`, which refuses them
    (and negative values) by name.
    """

    cells: list[Cell] = []
    if project.y is None:
        return cells
    lenient = not checked
    for c in range(project.num_features):
        for t in range(project.num_frames):
            values = present_values(project.label_frame(c, t, negatives=lenient, wide=lenient))
            cells.extend(Cell(v, v, t, c) for v in values.tolist())
    return cells


# --------------------------------------------------------------- export rule
class CellTable(Sequence[Cell]):
    """Cells held as four int64 columns (``value``, ``cell``, ``t``, ``c``): a read-only sequence of :class:`Cell`.

    Projects with tens of thousands of cells per frame use it so that planning the
    export rule costs numpy operations, not Python work per cell.  It iterates,
    indexes, compares and hashes its items exactly like a ``list[Cell]``.
    """

    __slots__ = ("c", "cell", "t", "value")

    def __init__(self, value: Any, cell: Any, t: Any, c: Any) -> None:
        import numpy as np

        self.value, self.cell, self.t, self.c = (np.asarray(a, dtype=np.int64).reshape(-1) for a in (value, cell, t, c))
        if not len(self.value) == len(self.cell) == len(self.t) == len(self.c):
            raise ValueError("CellTable columns must have equal lengths")

    @classmethod
    def from_cells(cls, cells: Iterable[Cell]) -> CellTable:
        """Build a table from any iterable of :class:`Cell` (one pass)."""
        import numpy as np

        if isinstance(cells, CellTable):
            return cells
        flat = np.fromiter(
            (x for cell in cells for x in (cell.value, cell.cell, cell.t, cell.c)), dtype=np.int64
        ).reshape(-1, 4)
        return cls(flat[:, 0], flat[:, 1], flat[:, 2], flat[:, 3])

    def __len__(self) -> int:
        return len(self.value)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return CellTable(self.value[index], self.cell[index], self.t[index], self.c[index])
        return Cell(int(self.value[index]), int(self.cell[index]), int(self.t[index]), int(self.c[index]))

    def __iter__(self) -> Iterator[Cell]:
        columns = (self.value.tolist(), self.cell.tolist(), self.t.tolist(), self.c.tolist())
        return (Cell(v, k, t, c) for v, k, t, c in zip(*columns))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (CellTable, list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-looking sequence, like list

    def __repr__(self) -> str:
        return f"CellTable({len(self)} cells)"

    derived = False
    """True for cells derived from the labels (:class:`DerivedCells`), false for cells a source listed."""

    def distinct(self) -> int:
        """The number of distinct cells: ``(feature, cell)`` pairs (an entry is one cell in one frame)."""
        import numpy as np

        if len(self) == 0:
            return 0
        # flat sorts: an order of magnitude faster than ``np.unique(..., axis=1)`` on a 2-row stack
        if self.c.min() == self.c.max():
            return len(_unique_ints(self.cell))
        order = np.lexsort((self.cell, self.c))
        c, cell = self.c[order], self.cell[order]
        return int(np.count_nonzero((c[1:] != c[:-1]) | (cell[1:] != cell[:-1]))) + 1


class DerivedCells(CellTable):
    """The cells of a project whose source listed none, derived from its labels on first use.

    One cell per positive label value per frame and feature, with cell = value (what
    DeepCell Label does for labels that come without ``cells.json``).  Nothing is read
    until a column, the length or an item is asked for; then every label plane is read
    once and the table kept.  :attr:`Project.cells` gives one whenever
    :attr:`Project.listed_cells` is ``None``; assigning it to a project's ``cells``
    means "derive them" for that project.
    """

    __slots__ = ("_project",)
    derived = True

    def __init__(self, project: Project) -> None:
        self._project: Project | None = project

    def __getattr__(self, name: str) -> Any:
        if name in CellTable.__slots__:
            self._derive()
            return object.__getattribute__(self, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _derive(self) -> None:
        import numpy as np

        project = self._project
        assert project is not None
        values: list[Any] = []
        ts: list[Any] = []
        cs: list[Any] = []
        if project.y is not None:
            for c in range(project.num_features):
                for t in range(project.num_frames):
                    found = present_values(project.label_frame(c, t, negatives=True, wide=True))
                    values.append(found)
                    ts.append(np.full(len(found), t, np.int64))
                    cs.append(np.full(len(found), c, np.int64))
        value = np.concatenate(values) if values else np.zeros(0, np.int64)
        CellTable.__init__(
            self,
            value,
            value,
            np.concatenate(ts) if ts else value,
            np.concatenate(cs) if cs else value,
        )
        self._project = None

    def __repr__(self) -> str:
        if self._project is not None:
            return "DerivedCells(from the labels, not read yet)"
        return f"DerivedCells({len(self)} cells, from the labels)"


class CellList(list):  # type: ignore[type-arg]
    """Listed cells given as a list: still a ``list[Cell]``, with a :class:`CellTable`'s columns.

    A project keeps cells given as a list (or any iterable but a :class:`CellTable`) in one
    of these, so that ``project.cells.value``, ``.cell``, ``.t``, ``.c`` and
    :meth:`distinct` work whatever the reader gave.  Columns are built on each access.
    """

    derived = False

    def _column(self, name: str) -> Any:
        import numpy as np

        return np.fromiter((getattr(cell, name) for cell in self), np.int64, count=len(self))

    @property
    def value(self) -> Any:
        """Pixel values, int64."""
        return self._column("value")

    @property
    def cell(self) -> Any:
        """Cell ids, int64."""
        return self._column("cell")

    @property
    def t(self) -> Any:
        """Frames, int64."""
        return self._column("t")

    @property
    def c(self) -> Any:
        """Features, int64."""
        return self._column("c")

    def distinct(self) -> int:
        """The number of distinct cells: ``(feature, cell)`` pairs."""
        return len({(cell.c, cell.cell) for cell in self})


def _get_cells(self: Project) -> CellList | CellTable:
    listed = self.__dict__.get("_cells")
    return listed if listed is not None else DerivedCells(self)


def _set_cells(self: Project, value: Iterable[Cell] | None) -> None:
    if value is None or isinstance(value, DerivedCells):
        value = None
    elif not isinstance(value, (CellTable, CellList)):
        value = CellList(value)
    self.__dict__["_cells"] = value


Project.cells = property(  # type: ignore[assignment]
    _get_cells,
    _set_cells,
    doc="The cells (``cells.json`` entries) as a table: those listed, else derived from the labels (see Project).",
)


@dataclass
class ExportPlan:
    """How to re-encode each label plane under DeepCell Label's export rule.

    Built by :func:`plan_export` from the cells alone; apply it plane by plane
    with :meth:`apply`.  ``cells`` is the rewritten ``cells.json``.
    """

    cells: CellTable
    tables: dict[tuple[int, int], tuple[Any, Any]]  # (c, t) -> (sorted old values, new values)

    def apply(self, plane: np.ndarray, c: int, t: int, out: np.ndarray | None = None) -> np.ndarray:
        """Re-encode the label plane of feature ``c`` at frame ``t``: one pass through a lookup table.

        ``out``, an int32 array of the plane's shape, receives the result when given
        (reusing one buffer saves a fresh allocation per plane).
        """
        import numpy as np

        plane = np.asarray(plane)
        old, new = self.tables.get((c, t), (None, None))
        if old is None or len(old) == 0:
            if out is None:
                return np.zeros(plane.shape, np.int32)
            out[...] = 0
            return out
        top = int(old[-1])
        if plane.dtype.kind not in "iu":  # bool, or floats: whole numbers only, never truncated
            plane = checked_labels(plane, feature=c, frame=t, negatives=True)
        if top < (1 << 24):
            # Dense table; take(mode="clip") sends negatives to slot 0 and values above the
            # largest listed one to the last slot, and both slots map to 0.
            lut = np.zeros(top + 2, np.int32)
            lut[old] = new
            return np.take(lut, plane, mode="clip", out=out)
        pos = np.searchsorted(old, plane)
        pos = np.minimum(pos, len(old) - 1)
        hit = old[pos] == plane
        result = np.where(hit, new[pos], 0).astype(np.int32)
        if out is None:
            return result
        out[...] = result
        return out


def _pack(cols: list[np.ndarray]) -> tuple[np.ndarray, list[int], list[int]] | None:
    """One int64 key ordering rows like the columns do (first most significant), with the
    columns' lows and spans to unpack it; ``None`` when the key would overflow."""
    import numpy as np

    lows = [int(col.min()) for col in cols]
    spans = [int(col.max()) - low + 1 for col, low in zip(cols, lows)]
    if math.prod(spans) >= (1 << 62):
        return None
    key = cols[0].astype(np.int64)  # a copy: the operations below work in place
    key -= lows[0]
    for col, low, span in zip(cols[1:], lows[1:], spans[1:]):
        key *= span
        key += col
        key -= low
    return key, lows, spans


def _sorted_unique(cols: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Sort rows of 1-D int columns lexicographically (first most significant); drop duplicate rows.

    Returns the columns and a boolean array marking the first row of each group of
    equal leading columns (all but the last).  When the ranges allow, the rows are
    packed into one int64 key, sorted, and unpacked: an order of magnitude faster
    than ``np.lexsort`` plus gathering every column.
    """
    import numpy as np

    n = len(cols[0])
    if n == 0:
        return cols, np.zeros(0, bool)
    packed = _pack(cols)
    if packed is not None:
        key, lows, spans = packed
        key.sort()
        if n > 1 and not bool(np.all(key[1:] != key[:-1])):
            key = key[np.concatenate(([True], key[1:] != key[:-1]))]
        out = []
        rest = key
        for low, span in zip(lows[:0:-1], spans[:0:-1]):
            rest, col = np.divmod(rest, span)
            col += low
            out.append(col)
        rest += lows[0]
        out.append(rest)
        cols = out[::-1]
        lead = key // spans[-1]
        head = np.ones(len(key), bool)
        head[1:] = lead[1:] != lead[:-1]
        return cols, head
    order = np.lexsort(cols[::-1])
    cols = [col[order] for col in cols]
    head = np.zeros(n, bool)
    head[0] = True
    for col in cols[:-1]:
        head[1:] |= col[1:] != col[:-1]
    repeat = ~head
    repeat[1:] &= cols[-1][1:] == cols[-1][:-1]
    if not repeat.any():
        return cols, head
    keep = ~repeat
    return [col[keep] for col in cols], head[keep]


def plan_export(cells: Iterable[Cell]) -> ExportPlan:
    """Plan DeepCell Label's export rule for ``y``, per frame and per feature.

    A value used by no cell becomes 0; a value used by exactly one cell becomes
    that cell; a value used by several cells becomes a new value strictly greater
    than every cell of the project (numbered in order of value).  Order of the
    input does not matter; duplicate entries count once.  Vectorised: the cost per
    cell is a few numpy operations, so a plane's one lookup pass dominates.
    The rewritten cells come ordered by frame and feature.
    """
    import numpy as np

    table = CellTable.from_cells(cells)
    keep = table.value > 0
    if not keep.all():
        table = CellTable(table.value[keep], table.cell[keep], table.t[keep], table.c[keep])
    if len(table) == 0:
        return ExportPlan(CellTable([], [], [], []), {})
    (t, c, value, cell), first_of_group = _sorted_unique([table.t, table.c, table.value, table.cell])
    n = len(value)
    top_cell = int(cell.max())
    starts = np.flatnonzero(np.concatenate(([True], (t[1:] != t[:-1]) | (c[1:] != c[:-1]))))
    new_value = np.empty(n, np.int64)
    tables: dict[tuple[int, int], tuple[Any, Any]] = {}
    repeats = False
    # Frame by frame: the arrays stay small (cache- and allocator-friendly) and a shared
    # value's rank within its frame is simply its order.
    for a, b in itertools.pairwise([*starts.tolist(), n]):
        first = np.flatnonzero(first_of_group[a:b])
        counts = np.diff(np.append(first, b - a))
        g_new = cell[a:b][first]
        shared = np.flatnonzero(counts > 1)
        if top_cell + len(shared) > np.iinfo(np.int32).max:
            from .errors import UnsupportedFeatureError

            raise UnsupportedFeatureError("the export rule needs label values beyond int32")
        g_new[shared] = top_cell + 1 + np.arange(len(shared))
        tables[(int(c[a]), int(t[a]))] = (value[a:b][first], g_new.astype(np.int32))
        new_value[a:b] = np.repeat(g_new, counts)
        # a cell alone under two values of one frame gets both mapped to it: it must be listed once
        single = np.repeat(counts == 1, counts)
        if not repeats and not bool(np.all((cell[a:b] == value[a:b]) | ~single)):
            repeats = True
    if repeats:
        (t, c, new_value, cell), _ = _sorted_unique([t, c, new_value, cell])
    return ExportPlan(CellTable(new_value, cell, t, c), tables)


def apply_export_rule(y: Any, cells: Iterable[Cell]) -> tuple[np.ndarray, list[Cell]]:
    """Return ``(y', cells')``: ``y`` (features, frames, height, width) re-encoded by the export rule."""
    import numpy as np

    plan = plan_export(cells)
    out = np.empty(tuple(y.shape), np.int32)
    for c in range(y.shape[0]):
        for t in range(y.shape[1]):
            out[c, t] = plan.apply(np.asarray(y[c, t]), c, t)
    return out, list(plan.cells)


__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "PARTS",
    "ArrayLike",
    "Cell",
    "CellList",
    "CellTable",
    "CellType",
    "DerivedCells",
    "Division",
    "ExportPlan",
    "Problem",
    "Project",
    "Provenance",
    "Spots",
    "apply_export_rule",
    "checked_labels",
    "derive_cells",
    "label_dtype",
    "label_problems",
    "plan_export",
    "present_values",
    "relabel",
]
