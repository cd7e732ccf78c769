"""Readers of ``.npy`` and ``.npz``: which array is what, axis orders, batches, names (see the package docstring)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlformats.errors import (
    AmbiguousInputError,
    CorruptFileError,
    DLFormatsWarning,
    InconsistentDataError,
    InvalidOptionError,
    NotMyFormat,
    UnsupportedFeatureError,
)

if TYPE_CHECKING:
    from dlformats.containers.archive import SafeZip
    from dlformats.model import CellType, Project
    from dlformats.sources import Source
    from dlformats.spec import ReadOptions

DEFAULT_AXES = {2: "YX", 3: "YXC", 4: "BYXC", 5: "BTYXC"}
"""DeepCell's channels-last layouts, by number of dimensions."""

_ALTERNATIVES = {
    2: ("YX", "XY"),
    3: ("YXC", "CYX", "TYX", "ZYX"),
    4: ("BYXC", "TYXC", "ZYXC", "CZYX", "ZCYX", "TCYX"),
    5: ("BTYXC", "BZYXC", "TCZYX", "TZCYX"),
}

IMAGE_NAMES = ("X", "raw")
LABEL_NAMES = ("y", "annotated", "labels", "label", "masks", "mask", "segmentation", "tracked")
CHANNEL_NAMES = ("channels", "channel_names")
FEATURE_NAMES = ("features", "feature_names")
CELL_TYPE_NAMES = ("cell_types",)
EMBEDDING_NAMES = ("embeddings",)
_RESERVED = {n.casefold() for n in LABEL_NAMES + CHANNEL_NAMES + FEATURE_NAMES + CELL_TYPE_NAMES + EMBEDDING_NAMES}

# colours given to cell types read from an npz (which has none), in order of first appearance
_TYPE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


# ------------------------------------------------------------------ axes
def default_axes(shape: tuple[int, ...], *, path: str, member: str | None = None) -> str:
    """DeepCell's channels-last axis order for ``shape``, refusing a layout that is plainly not channels-last.

    2-D ``YX``, 3-D ``YXC``, 4-D ``BYXC``, 5-D ``BTYXC``.  When the C axis of that
    order would be longer than the Y axis (a ``(frames, Y, X)`` or ``(C, Y, X)``
    stack), an :class:`AmbiguousInputError` asks for ``axes=``.
    """
    where = {"path": path, "member": member}
    nd = len(shape)
    if nd < 2:
        raise UnsupportedFeatureError(f"a {nd}-D array of shape {shape} is not an image", **where)
    axes = DEFAULT_AXES.get(nd)
    if axes is None:
        raise AmbiguousInputError(
            f"no default axis order for a {nd}-D array of shape {shape}",
            option="axes",
            hint="give axes= with one letter per dimension from TZBCSYX",
            **where,
        )
    sizes = dict(zip(axes, shape))
    if "C" in sizes and sizes["C"] > sizes["Y"]:
        raise AmbiguousInputError(
            f"shape {shape}: DeepCell's default order {axes} would give {sizes['C']} channels "
            f"of {sizes['Y']} x {sizes['X']} pixels",
            option="axes",
            choices=list(_ALTERNATIVES[nd]),
            hint=f"give the axis order, e.g. axes={_ALTERNATIVES[nd][1]!r}",
            **where,
        )
    return axes


def follow_axes(shape: tuple[int, ...], image_axes: str | None, *, path: str, member: str | None) -> str:
    """Axes of a labels array stored beside an image whose axes are ``image_axes``.

    The image's order when the ranks agree; the image's order without ``C`` when the
    labels have one dimension fewer; else the default for their rank.
    """
    if image_axes is not None:
        if len(shape) == len(image_axes):
            return image_axes
        if len(shape) == len(image_axes) - 1 and "C" in image_axes:
            return image_axes.replace("C", "")
    return default_axes(shape, path=path, member=member)


def batch_indices(
    axes: str, shape: tuple[int, ...], select: Mapping[str, int], batch: int | None, *, path: str
) -> list[int | None]:
    """The batches to read as separate projects: ``[None]`` for one project.

    A ``B`` axis beside a ``T`` or ``Z`` axis of more than one plane (DeepCell's 5-D
    ``(batch, frames, y, x, c)``) gives one project per batch (as ``.trks`` does);
    option ``batch=N`` (or ``select={"B": N}``) keeps one.
    """
    sizes = dict(zip(axes, shape))
    if batch is not None:
        if "B" not in sizes:
            raise InvalidOptionError(f"option batch={batch!r} given, but axes {axes} have no B axis", path=path)
        if not batch < sizes["B"]:
            raise InvalidOptionError(f"option batch={batch!r} out of range 0..{sizes['B'] - 1}", path=path)
        return [batch]
    if sizes.get("B", 1) > 1 and "B" not in select and any(sizes.get(a, 1) > 1 and a not in select for a in "TZ"):
        return list(range(sizes["B"]))
    return [None]


# ------------------------------------------------------------------ loading
def _load_member(
    source: Source, archive: SafeZip, member: str, options: ReadOptions, *, kinds: str = "biuf", small: bool = False
) -> Any:
    """Map (stored member of a file on disk) or read (deflated, or in memory) one npz member.

    ``small`` members (names, embeddings) become Python lists, so they are bounded
    like the JSON files they stand for (``limits.json_bytes``) and may hold strings.
    """
    from dlformats.containers import npyio

    limit = "json_bytes" if small else "array_bytes"
    array = npyio.from_member(archive, member, limits=options.limits, kinds=kinds, limit=limit)
    if small:  # a mapped member is checked here, before it becomes a list
        options.limits.check(limit, array.nbytes, "array too large to hold in memory", path=source.name, member=member)
    return array


def _load_npy(source: Source, options: ReadOptions) -> Any:
    """Map an ``.npy`` file on disk; view an in-memory one without copying."""
    from dlformats.containers import npyio

    if source.file is not None:  # mapped from the source's open file, never reopened by name
        return npyio.map_file(source.file, limits=options.limits, name=source.name)
    return npyio.from_bytes(source.read_bytes(), limits=options.limits, path=source.name)


# ------------------------------------------------------------------ projects
@dataclass
class _Arrays:
    """What a source holds, by role, before axes are applied."""

    image: Any = None
    labels: Any = None
    image_member: str | None = None
    labels_member: str | None = None
    channels: list[str] = field(default_factory=list)
    features: list[str] = field(default_factory=list)
    cell_types: list[CellType] = field(default_factory=list)
    embeddings: list[Any] | None = None
    name_members: dict[str, str] = field(default_factory=dict)  # part -> member, for messages
    metadata: dict[str, Any] = field(default_factory=dict)


def _projects(arrays: _Arrays, source: Source, options: ReadOptions) -> list[Project]:
    """Apply axes, batches and names to the arrays: one project per batch."""
    from dlformats.arrays import LazyArray, check_axes
    from dlformats.model import Project

    path = source.name
    labels_role = options.role == "labels"
    select = options.select
    if arrays.image is None:  # an npz holding labels only
        labels_role = True
    main, main_member = (arrays.labels, arrays.labels_member) if labels_role else (arrays.image, arrays.image_member)
    if main is None:
        raise CorruptFileError("no array to read", path=path)
    shape = tuple(int(s) for s in main.shape)
    if options.axes is not None:
        axes = check_axes(options.axes, shape, path=path)
    else:
        axes = default_axes(shape, path=path, member=main_member)
    lab_axes = None
    if not labels_role and arrays.labels is not None:
        lab_axes = follow_axes(tuple(arrays.labels.shape), axes, path=path, member=arrays.labels_member)
    batches = batch_indices(axes, shape, select, options.extra["batch"], path=path)
    meta = {**arrays.metadata, "axes": axes, "axes_from": "option" if options.axes is not None else "default"}
    if options.axes is None:
        meta["axes_note"] = f"numpy arrays carry no axis names: read in DeepCell's channels-last order {axes}"
    if lab_axes is not None:
        meta["labels_axes"] = lab_axes

    def view(array: Any, array_axes: str, member: str | None, batch: int | None, labels: bool) -> LazyArray:
        sel = {k: v for k, v in select.items() if k in array_axes}
        if batch is not None and "B" in array_axes:
            sel["B"] = batch
        where = f"{path}: {member}" if member else path
        lazy = LazyArray(array, array_axes, select=sel, labels=labels, path=where, limits=options.limits)
        plane = lazy.shape[2] * lazy.shape[3] * lazy.dtype.itemsize
        options.limits.check("array_bytes", plane, "one plane too large", path=path, member=member)
        return lazy

    projects = []
    for batch in batches:
        if labels_role:
            X, y = None, view(main, axes, main_member, batch, True)
        else:
            X = view(main, axes, main_member, batch, False)
            y = None if lab_axes is None else view(arrays.labels, lab_axes, arrays.labels_member, batch, True)
        ref = X if X is not None else y
        _check_names(arrays, X, y, path)
        project = Project(
            X=X,
            y=y,
            channels=list(arrays.channels) if X is not None else [],
            features=list(arrays.features) if y is not None else [],
            cell_types=list(arrays.cell_types),
            embeddings=arrays.embeddings,
            frame_axis=ref.frame_axis,
            metadata=dict(meta) if batch is None else {**meta, "batch": batch},
        )
        projects.append(project)
    return projects


def _check_names(arrays: _Arrays, X: Any, y: Any, path: str) -> None:
    for part, arr, names in (("channels", X, arrays.channels), ("features", y, arrays.features)):
        if arr is not None and names and len(names) != arr.shape[0]:
            raise InconsistentDataError(
                f"{len(names)} names for {arr.shape[0]} {part}",
                path=path,
                member=arrays.name_members.get(part),
            )


def read_npy(source: Source, options: ReadOptions) -> list[Project]:
    """Read an ``.npy``: its array is the image (or the labels, with ``role="labels"``)."""
    if not source.head.startswith(b"\x93NUMPY"):
        raise NotMyFormat("no .npy signature", path=source.name)
    array = _load_npy(source, options)
    if options.role == "labels":
        return _projects(_Arrays(labels=array), source, options)
    return _projects(_Arrays(image=array), source, options)


def npz_members(source: Source) -> dict[str, str] | None:
    """``{array name: member}`` of a zip whose members are all ``.npy``; ``None`` otherwise."""
    names = source.zip_names()
    if not names or not all(n.lower().endswith(".npy") for n in names):
        return None
    return {n[:-4]: n for n in names}


def _find(members: dict[str, str], candidates: tuple[str, ...]) -> str | None:
    folded = {name.casefold(): name for name in members}
    for cand in candidates:
        if cand.casefold() in folded:
            return folded[cand.casefold()]
    return None


def read_npz(source: Source, options: ReadOptions) -> list[Project]:
    """Read an ``.npz``: image, labels and names chosen by array name (see the package docstring)."""
    members = npz_members(source)
    if members is None:
        raise NotMyFormat("not a zip of .npy members", path=source.name)
    archive = source.zip()
    assert archive is not None
    labels_role = options.role == "labels"
    image_name = _find(members, IMAGE_NAMES)
    if image_name is None:
        image_name = next((n for n in members if n.casefold() not in _RESERVED), None)
    labels_name = _find(members, LABEL_NAMES)
    if labels_role and labels_name is None:
        labels_name, image_name = image_name, None
    elif labels_role:
        image_name = None
    if image_name is None and labels_name is None:
        raise CorruptFileError("the npz holds no image or labels array", path=source.name)
    arrays = _Arrays()
    used = {n for n in (image_name, labels_name) if n is not None}
    if image_name is not None:
        arrays.image, arrays.image_member = _load_member(source, archive, members[image_name], options), image_name
    if labels_name is not None:
        arrays.labels, arrays.labels_member = _load_member(source, archive, members[labels_name], options), labels_name

    def names_of(name: str) -> list[str]:
        used.add(name)
        return _names(_load_member(source, archive, members[name], options, kinds="U", small=True), source, name)

    for part, candidates in (("channels", CHANNEL_NAMES), ("features", FEATURE_NAMES)):
        name = _find(members, candidates)
        if name is not None and labels_role and part == "channels":
            used.add(name)  # a labels source has no image channels to name
        elif name is not None:
            setattr(arrays, part, names_of(name))
            arrays.name_members[part] = name
    name = _find(members, CELL_TYPE_NAMES)
    if name is not None:
        arrays.cell_types = _cell_types(names_of(name))
    name = _find(members, EMBEDDING_NAMES)
    if name is not None:
        arrays.embeddings = _embeddings(_load_member(source, archive, members[name], options, small=True), source, name)
        used.add(name)
    unused = [n for n in members if n not in used]
    if unused:
        warnings.warn(
            f"{source.name}: npz arrays {unused} are not part of a DeepCell Label project and were not read",
            DLFormatsWarning,
            stacklevel=2,
        )
    arrays.metadata["npz"] = {"image": image_name, "labels": labels_name, "unused": unused}
    return _projects(arrays, source, options)


# ------------------------------------------------------------------ names, cell types, embeddings
def _names(array: Any, source: Source, member: str) -> list[str]:
    if array.ndim != 1:
        raise UnsupportedFeatureError(
            f"names must be a 1-D array of strings, found shape {tuple(array.shape)}", path=source.name, member=member
        )
    return [str(s) for s in array.tolist()]


def _cell_types(per_cell: list[str]) -> list[CellType]:
    """Entry ``i`` names the type of cell ``i`` (``""`` for none): one :class:`CellType` per distinct name."""
    from dlformats.model import CellType

    by_name: dict[str, CellType] = {}
    for cell, name in enumerate(per_cell):
        if not name:
            continue
        if name not in by_name:
            by_name[name] = CellType(len(by_name) + 1, name, _TYPE_COLOURS[len(by_name) % len(_TYPE_COLOURS)])
        by_name[name].cells.append(cell)
    return list(by_name.values())


def _embeddings(array: Any, source: Source, member: str) -> list[Any]:
    """Row ``i`` is cell ``i``'s vector; a row of NaN only means "no embedding" (``None``)."""
    import numpy as np

    where = {"path": source.name, "member": member}
    if array.ndim != 2:
        raise UnsupportedFeatureError(f"embeddings must be 2-D (cells, dims), found shape {array.shape}", **where)
    values = np.asarray(array, dtype=np.float64)
    rows: list[Any] = []
    for i, row in enumerate(values):
        if row.size and np.all(np.isnan(row)):
            rows.append(None)
        elif not np.all(np.isfinite(row)):
            raise CorruptFileError(f"embedding row {i} holds non-finite values", **where)
        else:
            rows.append(row.tolist())
    return rows
