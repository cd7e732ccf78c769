"""Reading an OME-Zarr store into a project (see the package docstring for the rules)."""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dlformats.errors import (
    AmbiguousInputError,
    CorruptFileError,
    DLFormatsError,
    DLFormatsWarning,
    InconsistentDataError,
    InvalidOptionError,
    NotMyFormat,
    UnsafeArchiveError,
    UnsupportedFeatureError,
    usage,
)

from .store import ArrayInfo, StoreReader

if TYPE_CHECKING:
    from dlformats.model import Project
    from dlformats.sources import Source
    from dlformats.spec import ReadOptions

SIDECAR_KEY = "dlformats"
SIDECAR_VERSION = 1
BLOCK_BYTES = 64 << 20  # a chunk block spanning several planes is decoded once and kept for the next planes
NAME_LETTERS = {"t": "T", "time": "T", "c": "C", "channel": "C", "z": "Z", "y": "Y", "x": "X"}


# ------------------------------------------------------------------ metadata
@dataclass
class Group:
    """A zarr group's OME metadata.

    Attributes:
        path: the group's path in the store (``""`` for the root).
        zarr_format: 2 or 3.
        ome: the OME attributes (0.5: ``attributes["ome"]``; 0.4: the ``.zattrs`` object).
        attributes: every attribute of the group (for the dlformats key).
        member: the metadata file (for messages).
    """

    path: str
    zarr_format: int
    ome: dict[str, Any]
    attributes: dict[str, Any]
    member: str


@dataclass
class Multiscale:
    """One ``multiscales`` entry: axes ``(name, type)`` and the checked array of each level."""

    group: Group
    version: str
    axes: list[tuple[str, str | None]]
    levels: list[ArrayInfo] = field(default_factory=list)


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


def read_group(reader: StoreReader, path: str) -> Group | None:
    """The group at ``path``, or ``None`` when there is no zarr group there."""
    key = _join(path, "zarr.json")
    doc = reader.json(key)
    if doc is not None:
        if not isinstance(doc, dict):
            raise CorruptFileError("zarr.json must be a JSON object", path=reader.name, member=key)
        if doc.get("node_type") == "array":
            raise NotMyFormat(f"{path or 'the folder'} is a zarr array, not an OME-Zarr group")
        if doc.get("zarr_format") != 3 or doc.get("node_type") != "group":
            raise CorruptFileError("zarr.json is not a zarr v3 group", path=reader.name, member=key)
        attributes = doc.get("attributes", {})
        if not isinstance(attributes, dict):
            raise CorruptFileError("'attributes' must be an object", path=reader.name, member=key)
        ome = attributes.get("ome", {})
        if not isinstance(ome, dict):
            raise CorruptFileError("the 'ome' attribute must be an object", path=reader.name, member=key)
        return Group(path, 3, ome, attributes, key)
    key = _join(path, ".zattrs")
    attrs = reader.json(key)
    if attrs is None:
        if reader.json(_join(path, ".zgroup")) is not None:
            return Group(path, 2, {}, {}, _join(path, ".zgroup"))
        if reader.json(_join(path, ".zarray")) is not None:
            raise NotMyFormat(f"{path or 'the folder'} is a zarr array, not an OME-Zarr group")
        return None
    if not isinstance(attrs, dict):
        raise CorruptFileError(".zattrs must be a JSON object", path=reader.name, member=key)
    return Group(path, 2, attrs, attrs, key)


def _version(group: Group, entry: dict[str, Any], reader: StoreReader, *, strict: bool) -> str:
    where = {"path": reader.name, "member": group.member}
    if group.zarr_format == 3:
        version = group.ome.get("version")
        if version is None and not strict:
            return "0.5"  # ome-zarr-py writes label groups without a version
        if version != "0.5":
            raise UnsupportedFeatureError(
                f"OME-Zarr version {version!r} in zarr v3 is not supported (0.5 is)", hint="NGFF 0.4 and 0.5", **where
            )
        return "0.5"
    version = entry.get("version", group.ome.get("version"))
    if version is None:
        axes = entry.get("axes")
        if isinstance(axes, list) and axes and all(isinstance(a, dict) for a in axes):
            return "0.4"
    if version != "0.4":
        raise UnsupportedFeatureError(
            f"OME-Zarr version {version!r} is not supported (0.4 in zarr v2 and 0.5 in zarr v3 are)",
            hint="convert the store to NGFF 0.4 or 0.5, e.g. with ome-zarr-py",
            **where,
        )
    return "0.4"


def read_multiscale(reader: StoreReader, group: Group, choice: int | None, *, strict: bool = True) -> Multiscale:
    """Parse and check the ``multiscales`` of ``group``: axes, levels, and that the arrays agree."""
    where = {"path": reader.name, "member": group.member}
    entries = group.ome.get("multiscales")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise CorruptFileError("'multiscales' must be a non-empty list of objects", **where)
    if choice is None:
        if len(entries) > 1:
            raise AmbiguousInputError(
                f"{group.path or 'the store'} holds {len(entries)} multiscale images",
                option="multiscale",
                choices=list(range(len(entries))),
                hint=f"pick one with {usage('option', 'multiscale')}",
                **where,
            )
        choice = 0
    if choice >= len(entries):
        raise InvalidOptionError(f"multiscale={choice} is not one of 0..{len(entries) - 1}", **where)
    entry = entries[choice]
    version = _version(group, entry, reader, strict=strict)
    axes = _axes(entry.get("axes"), where)
    datasets = entry.get("datasets")
    if not isinstance(datasets, list) or not datasets:
        raise CorruptFileError("'datasets' must be a non-empty list", **where)
    ms = Multiscale(group, version, axes)
    for i, ds in enumerate(datasets):
        if not isinstance(ds, dict) or not isinstance(ds.get("path"), str) or not ds["path"].strip("/"):
            raise CorruptFileError(f"dataset {i} has no 'path'", **where)
        _check_transforms(ds.get("coordinateTransformations"), len(axes), i, where)
        ms.levels.append(reader.array_info(_join(group.path, ds["path"]), group.zarr_format))
    _check_levels(ms, reader)
    return ms


def _axes(axes: Any, where: dict[str, Any]) -> list[tuple[str, str | None]]:
    if not isinstance(axes, list) or not 2 <= len(axes) <= 5:
        raise CorruptFileError(f"'axes' must list 2 to 5 axes, found {str(axes)[:80]}", **where)
    out: list[tuple[str, str | None]] = []
    for axis in axes:
        if not isinstance(axis, dict) or not isinstance(axis.get("name"), str) or not axis["name"]:
            raise CorruptFileError(f"axis {str(axis)[:60]} has no name", **where)
        kind = axis.get("type")
        if kind is not None and not isinstance(kind, str):
            raise CorruptFileError(f"axis {axis['name']!r}: 'type' must be a string", **where)
        out.append((axis["name"], kind))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise CorruptFileError(f"axis names {names} repeat a name", **where)
    return out


def _check_transforms(transforms: Any, ndim: int, index: int, where: dict[str, Any]) -> None:
    if transforms is None:
        return
    if not isinstance(transforms, list):
        raise CorruptFileError(f"dataset {index}: coordinateTransformations must be a list", **where)
    for tr in transforms:
        if not isinstance(tr, dict):
            raise CorruptFileError(f"dataset {index}: a coordinate transformation is not an object", **where)
        for key in ("scale", "translation"):
            if key in tr and (not isinstance(tr[key], list) or len(tr[key]) != ndim):
                raise CorruptFileError(
                    f"dataset {index}: {key} has {len(tr[key]) if isinstance(tr[key], list) else '?'} values "
                    f"for {ndim} axes",
                    **where,
                )


def _check_levels(ms: Multiscale, reader: StoreReader) -> None:
    names = [n for n, _ in ms.axes]
    first = ms.levels[0]
    space = [i for i, (_, kind) in enumerate(ms.axes) if kind == "space"] or list(range(len(names) - 2, len(names)))
    previous = first
    for level, info in enumerate(ms.levels):
        where = {"path": reader.name, "member": info.path}
        if len(info.shape) != len(names):
            raise CorruptFileError(
                f"the metadata declares {len(names)} axes ({', '.join(names)}) but array {info.path} has "
                f"{len(info.shape)} dimensions {list(info.shape)}",
                **where,
            )
        dims = info.dimension_names
        if dims is not None and any(d is not None and d != n for d, n in zip(dims, names)):
            raise CorruptFileError(
                f"array {info.path} has dimension_names {list(dims)}, but the axes are {names}", **where
            )
        if info.dtype != first.dtype:
            raise CorruptFileError(
                f"level {level} ({info.path}) is {info.dtype}, level 0 ({first.path}) is {first.dtype}", **where
            )
        for i, name in enumerate(names):
            if i in space:
                if info.shape[i] > previous.shape[i]:
                    raise CorruptFileError(
                        f"level {level} ({info.path}) is larger along {name} ({info.shape[i]}) than the level "
                        f"before ({previous.shape[i]})",
                        **where,
                    )
            elif info.shape[i] != first.shape[i]:
                raise CorruptFileError(
                    f"level {level} ({info.path}) has {info.shape[i]} {name}, level 0 has {first.shape[i]}", **where
                )
        previous = info


# ------------------------------------------------------------------ axes
def axis_letters(axes: list[tuple[str, str | None]], where: dict[str, Any]) -> list[str | None]:
    """DeepCell Label's letter of each axis (``None``: an axis with no meaning here)."""
    letters: list[str | None] = []
    space = [i for i, (_, kind) in enumerate(axes) if (kind or "").lower() == "space"]
    space_names = [axes[i][0].lower() for i in space]
    by_name = sorted(space_names) == sorted(set(space_names)) and set(space_names) <= {"x", "y", "z"}
    for i, (name, kind) in enumerate(axes):
        kind = (kind or "").lower()
        if kind == "time":
            letters.append("T")
        elif kind == "channel":
            letters.append("C")
        elif kind == "space":
            if by_name:
                letters.append(name.lower().upper())
            else:
                pos = len(space) - 1 - space.index(i)
                letters.append("XYZ"[pos] if pos < 3 else None)
        else:
            letters.append(NAME_LETTERS.get(name.lower()) if kind in ("", "custom") else None)
    known = [x for x in letters if x is not None]
    if len(set(known)) != len(known):
        raise CorruptFileError(f"axes {axes} give two axes the same meaning ({known})", **where)
    if "Y" not in known or "X" not in known:
        raise UnsupportedFeatureError(f"axes {[n for n, _ in axes]} have no y and x space axes", **where)
    return letters


class ArraySource:
    """A zarr array with some axes fixed, read a plane at a time through a one-block cache.

    When a chunk spans several planes (ome-zarr-py stores small stacks in one chunk), the block
    of planes sharing those chunks is decoded once (up to :data:`BLOCK_BYTES`) and the next
    planes come from it.  Errors of zarr or its codecs become ``CorruptFileError`` naming the
    store and the array.
    """

    def __init__(self, array: Any, info: ArrayInfo, fixed: dict[int, int], name: str) -> None:
        self._array = array
        self._info = info
        self._fixed = fixed
        self._keep = [i for i in range(len(info.shape)) if i not in fixed]
        self.shape = tuple(info.shape[i] for i in self._keep)
        self.dtype = info.dtype
        self._name = name
        self._lock = threading.Lock()
        self._block: tuple[tuple[Any, ...], Any] | None = None

    def __getitem__(self, key: Any) -> Any:
        if not isinstance(key, tuple):
            key = (key,)
        full: list[Any] = [slice(None)] * len(self._info.shape)
        for i, value in self._fixed.items():
            full[i] = value
        for i, value in zip(self._keep, key):
            full[i] = value
        try:
            return self._read(tuple(full))
        except (DLFormatsError, MemoryError):
            raise
        except Exception as exc:
            raise CorruptFileError(
                f"cannot read array {self._info.path}: {type(exc).__name__}: {exc}",
                path=self._name,
                member=self._info.path,
            ) from exc

    def _read(self, index: tuple[Any, ...]) -> Any:
        info = self._info
        ints = [i for i, v in enumerate(index) if isinstance(v, (int, np.integer))]
        plain = all(isinstance(v, (int, np.integer)) or v == slice(None) for v in index)
        if not plain or not ints:
            return self._array[index]
        block_index: list[Any] = []
        local: list[Any] = []
        planes = 1
        for i, v in enumerate(index):
            if i in ints:
                size = info.chunks[i]
                start = (int(v) // size) * size
                stop = min(start + size, info.shape[i])
                block_index.append(slice(start, stop))
                local.append(int(v) - start)
                planes *= stop - start
            else:
                block_index.append(slice(None))
                local.append(slice(None))
        rest = math.prod(info.shape[i] for i in range(len(index)) if i not in ints)
        if planes == 1 or planes * rest * info.dtype.itemsize > BLOCK_BYTES:
            return self._array[index]
        bkey = tuple((s.start, s.stop) for s in block_index)
        with self._lock:
            cached = self._block
        if cached is None or cached[0] != bkey:
            data = self._array[tuple(block_index)]
            cached = (bkey, data)
            with self._lock:
                self._block = cached
        return cached[1][tuple(local)]


def _pick(
    select: Mapping[str, Any], axes: list[tuple[str, str | None]], letters: list[str | None]
) -> tuple[dict[int, int], list[str]]:
    """Axis position -> index for each ``select`` key naming one of ``axes`` (by name, then by letter),
    and the keys naming none."""
    chosen: dict[int, int] = {}
    unknown: list[str] = []
    for key, value in select.items():
        text = str(key)
        pos = next((i for i, (n, _) in enumerate(axes) if n == text), None)
        if pos is None:
            pos = next((i for i, (n, _) in enumerate(axes) if n.lower() == text.lower()), None)
        if pos is None:
            pos = next((i for i, letter in enumerate(letters) if letter == text.upper()), None)
        if pos is None:
            unknown.append(text)
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidOptionError(f"select {key}={value!r} must be a whole number")
        chosen[pos] = value
    return chosen, unknown


def lazy_view(
    reader: StoreReader,
    ms: Multiscale,
    level: int,
    select: Mapping[str, Any],
    *,
    labels: bool,
    strict_select: bool,
    label_image: bool = False,
) -> Any:
    """A :class:`~dlformats.arrays.LazyArray` (channels, frames, height, width) of level ``level``.

    ``labels`` reads int32 planes (as labels); ``label_image`` (an NGFF label image) refuses floats.
    """
    from dlformats.arrays import LazyArray

    info = ms.levels[level]
    where = {"path": reader.name, "member": info.path}
    letters = axis_letters(ms.axes, where)
    chosen, unknown = _pick(select, ms.axes, letters)
    if strict_select and unknown:
        names = [n for n, _ in ms.axes]
        raise InvalidOptionError(
            f"select names {unknown}, which are not axes of the image ({', '.join(names)})",
            hint="select by axis name or by letter T, C, Z",
            **where,
        )
    fixed: dict[int, int] = {}
    letter_select: dict[str, int] = {}
    for i, letter in enumerate(letters):
        name, kind = ms.axes[i]
        size = info.shape[i]
        if i in chosen and not 0 <= chosen[i] < size:
            raise InvalidOptionError(f"select {name}={chosen[i]} out of range 0..{size - 1}", **where)
        if letter is None:
            if i in chosen:
                fixed[i] = chosen[i]
            elif size == 1:
                fixed[i] = 0
            else:
                raise UnsupportedFeatureError(
                    f"axis {name!r} of type {kind!r} has {size} planes and no meaning in DeepCell Label",
                    hint=f"keep one of them with {usage('option', 'select_named', f'{name}=0')}",
                    **where,
                )
        elif i in chosen:
            if letter in ("Y", "X"):
                raise InvalidOptionError(f"select cannot pick a plane of axis {name}: it is the plane itself", **where)
            letter_select[letter] = chosen[i]
    if label_image and info.dtype.kind == "f":
        raise CorruptFileError(
            f"label image {ms.group.path} has {info.dtype} pixels; NGFF label images hold integers", **where
        )
    array = reader.open(info)
    source = ArraySource(array, info, fixed, reader.name)
    axes = "".join(letter for i, letter in enumerate(letters) if i not in fixed)  # type: ignore[misc]
    return LazyArray(
        source,
        axes,
        select=letter_select,
        labels=labels,
        path=f"{reader.name}: {info.path}",
        default_frame_axis="Z" if "Z" in axes and "T" not in axes else "T",
        limits=reader.limits,
    )


# ------------------------------------------------------------------ labels
@dataclass
class LabelImage:
    path: str
    name: str
    multiscale: Multiscale


def read_labels(reader: StoreReader, base: str, group: Group, choice: int | None) -> list[LabelImage]:
    """Every label image listed by the labels group ``group`` (at ``base``)."""
    where = {"path": reader.name, "member": group.member}
    names = group.ome.get("labels")
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip("/") for n in names):
        raise CorruptFileError("'labels' must be a list of label image paths", **where)
    if len(set(names)) != len(names):
        raise CorruptFileError(f"'labels' lists a label image twice: {names}", **where)
    out = []
    for name in names:
        path = _join(base, name)
        node = read_group(reader, path)
        if node is None:
            raise CorruptFileError(f"'labels' lists {name!r}, but there is no such group", **where)
        if "multiscales" not in node.ome:
            raise CorruptFileError(f"label image {path} has no 'multiscales'", path=reader.name, member=node.member)
        out.append(LabelImage(path, name, read_multiscale(reader, node, choice, strict=False)))
    return out


def _labels_group(reader: StoreReader, root: Group) -> tuple[str, Group] | None:
    if "labels" in root.ome and "multiscales" not in root.ome:
        return "", root  # the store is a labels group
    node = read_group(reader, _join(root.path, "labels"))
    if node is None:
        return None
    if "labels" not in node.ome:
        return None
    return node.path, node


# ------------------------------------------------------------------ the project
def read_store(source: Source, options: ReadOptions, opts: dict[str, Any]) -> Project:
    """Read an OME-Zarr folder (see the package docstring)."""
    from dlformats.model import Project

    if source.path is None or not source.is_dir:
        raise NotMyFormat("an OME-Zarr store is a folder")
    _refuse_escaping_link(source)
    reader = StoreReader(source.path, source.name, options.limits)
    root = read_group(reader, "")
    if root is None:
        raise NotMyFormat("the folder holds no zarr metadata (zarr.json or .zattrs)")
    _refuse_collections(root, reader)
    role = options.role
    select = opts["select"] or {}
    level = opts["level"]
    choice = opts["multiscale"]

    image = read_multiscale(reader, root, choice) if "multiscales" in root.ome else None
    found = _labels_group(reader, root) if image is None or "image-label" not in root.ome else None
    label_images: list[LabelImage] = []
    if image is not None and "image-label" in root.ome:
        label_images = [LabelImage(root.path, source.filename or "labels", image)]
        image = None  # a label image opened directly
    elif found is not None:
        label_images = read_labels(reader, found[0], found[1], choice)
    if image is None and not label_images:
        if "labels" in root.ome or "multiscales" in root.ome:
            raise CorruptFileError("the store lists no label images and has no image", path=reader.name)
        raise NotMyFormat("a zarr group without OME-Zarr metadata (no 'multiscales' or 'labels')")

    for ms in ([image] if image is not None else []) + [li.multiscale for li in label_images]:
        if level >= len(ms.levels):
            raise InvalidOptionError(
                f"level={level}, but {ms.group.path or 'the image'} has levels 0..{len(ms.levels) - 1}",
                path=reader.name,
            )

    X = None
    if image is not None:
        X = lazy_view(reader, image, level, select, labels=role == "labels" and not label_images, strict_select=True)
    label_select = {k: v for k, v in select.items() if str(k).upper() != "C"}  # C of labels is features
    ys = [
        lazy_view(reader, li.multiscale, level, label_select, labels=True, strict_select=False, label_image=True)
        for li in label_images
    ]
    ref = X if X is not None else (ys[0] if ys else None)
    for li, view in zip(label_images, ys):
        if tuple(view.shape[1:]) != tuple(ref.shape[1:]):
            raise InconsistentDataError(
                f"label image {li.path} is (features, frames, height, width) {tuple(view.shape)}, but the image is "
                f"(channels, frames, height, width) {tuple(ref.shape)}",
                path=reader.name,
                member=li.path,
            )
    y = _stack(ys, reader.name) if ys else None
    features: list[str] = []
    for li, view in zip(label_images, ys):
        features += [li.name] if view.shape[0] == 1 else [f"{li.name}[{c}]" for c in range(view.shape[0])]
    channels = _omero_names(image, X) if image is not None else []
    frame_axis = (X if X is not None else ys[0]).frame_axis
    project = Project(X=X, y=y, channels=channels, features=features, frame_axis=frame_axis)
    project.metadata.update(
        {
            "ngff_version": (image or label_images[0].multiscale).version,
            "zarr_format": root.zarr_format,
            "level": level,
            "axes": [n for n, _ in (image or label_images[0].multiscale).axes],
        }
    )
    _apply_sidecar(project, root, reader, [li.name for li in label_images], level)
    if role == "labels" and project.X is not None:
        if project.y is None:
            project.y, project.features = project.X, list(project.channels)
        project.X, project.channels = None, []
    return project


def _refuse_escaping_link(source: Source) -> None:
    """A store that is itself a symbolic link must stay in the folder holding the link.

    An upload or an unpacked archive can plant ``image.ome.zarr -> /somewhere``; a user who
    trusts the link passes the real path instead.
    """
    import os

    path = source.path
    assert path is not None
    if not path.is_symlink():
        return
    folder = os.path.realpath(path.parent)
    real = os.path.realpath(path)
    if not real.startswith(folder + os.sep):
        raise UnsafeArchiveError(
            "the store is a symbolic link leading outside its folder",
            path=source.name,
            hint=f"if you trust it, read {real} itself",
        )


def _refuse_collections(root: Group, reader: StoreReader) -> None:
    where = {"path": reader.name, "member": root.member}
    if "plate" in root.ome or "well" in root.ome:
        kind = "plate" if "plate" in root.ome else "well"
        raise UnsupportedFeatureError(
            f"the store is an HCS {kind}, a collection of images",
            hint="read one field of view, e.g. STORE/A/1/0",
            **where,
        )
    if "bioformats2raw.layout" in root.ome and "multiscales" not in root.ome:
        raise UnsupportedFeatureError(
            "the store is a bioformats2raw collection of images", hint="read one image of it, e.g. STORE/0", **where
        )


def _stack(views: list[Any], name: str) -> Any:
    """Several label images as one (features, frames, height, width) lazy array."""
    from dlformats.arrays import LazyArray

    if len(views) == 1:
        return views[0]
    return LazyArray(_Stacked(views), "CTYX", labels=True, path=name)


class _Stacked:
    """Label images one after the other along the first axis, indexed ``[c, t, :, :]``."""

    def __init__(self, views: list[Any]) -> None:
        self._views = views
        self._where = [(v, c) for v in views for c in range(v.shape[0])]
        first = views[0].shape
        self.shape = (len(self._where), first[1], first[2], first[3])
        self.dtype = np.dtype(np.int32)

    def __getitem__(self, key: tuple[Any, ...]) -> Any:
        view, c = self._where[key[0]]
        return view.plane(c, key[1])[key[2:]]


def _omero_names(image: Multiscale, X: Any) -> list[str]:
    omero = image.group.ome.get("omero")
    if not isinstance(omero, dict) or not isinstance(omero.get("channels"), list):
        return []
    names = [str(ch.get("label", "")) if isinstance(ch, dict) else "" for ch in omero["channels"]]
    if len(names) != X.shape[0] or not any(names):
        return []
    return names


# ------------------------------------------------------------------ the dlformats key
def _apply_sidecar(project: Project, root: Group, reader: StoreReader, label_names: list[str], level: int) -> None:
    from dlformats.containers import codecs

    side = root.attributes.get(SIDECAR_KEY)
    if side is None:
        return
    member = f"{root.member} ({SIDECAR_KEY} key)"
    where = {"path": reader.name, "member": member}
    if not isinstance(side, dict):
        raise CorruptFileError(f"the {SIDECAR_KEY!r} attribute must be an object", **where)
    if side.get("version") != SIDECAR_VERSION:
        raise UnsupportedFeatureError(
            f"the {SIDECAR_KEY!r} attribute has version {side.get('version')!r}; this dlformats reads version 1",
            hint="upgrade dlformats",
            **where,
        )
    frame_axis = side.get("frame_axis", project.frame_axis)
    if frame_axis not in ("T", "Z", "B"):
        raise CorruptFileError(f"frame_axis must be T, Z or B, not {frame_axis!r}", **where)
    if frame_axis == "B" and project.frame_axis == "T":
        project.frame_axis = "B"
    channels = side.get("channels")
    if channels is not None:
        names = codecs.channels_from_json(channels, path=reader.name, member=member)
        if project.X is not None and len(names) in (0, project.num_channels):
            project.channels = names
    labels = side.get("labels", [])
    if labels != label_names:
        if labels or label_names:
            warnings.warn(
                f"{reader.name}: the label images ({label_names}) are not those dlformats wrote ({labels}); "
                "cells, divisions, cell types and embeddings stored with them are ignored",
                DLFormatsWarning,
                stacklevel=2,
            )
    else:
        features = side.get("features", [])
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
            raise CorruptFileError("'features' must be a list of names", **where)
        if len(features) in (0, project.num_features if project.y is not None else 0):
            project.features = features
        cells = side.get("cells")
        if cells is not None:
            project.cells = _cells(cells, where)
        if side.get("divisions") is not None:
            project.divisions = codecs.divisions_from_json(side["divisions"], path=reader.name, member=member)
        if side.get("cellTypes") is not None:
            project.cell_types = codecs.cell_types_from_json(side["cellTypes"], path=reader.name, member=member)
        if side.get("embeddings") is not None:
            project.embeddings = codecs.embeddings_from_json(side["embeddings"], path=reader.name, member=member)
    spots = side.get("spots")
    if spots is not None:
        if not isinstance(spots, str):
            raise CorruptFileError("'spots' must be CSV text", **where)
        if level == 0:
            project.spots = codecs.spots_from_csv(
                spots.encode("utf-8"), path=reader.name, member=member, limits=reader.limits
            )
        else:
            warnings.warn(
                f"{reader.name}: spots are in full-resolution pixels; not kept when reading level {level}",
                DLFormatsWarning,
                stacklevel=2,
            )
    sources = side.get("sources")
    if isinstance(sources, dict):
        project.metadata["sources"] = sources


def _cells(obj: Any, where: dict[str, Any]) -> Any:
    from dlformats.model import CellTable

    if not isinstance(obj, dict) or set(obj) != {"value", "cell", "t", "c"}:
        raise CorruptFileError("'cells' must be an object of four columns: value, cell, t, c", **where)
    columns = [obj[k] for k in ("value", "cell", "t", "c")]
    if not all(isinstance(col, list) for col in columns) or len({len(col) for col in columns}) != 1:
        raise CorruptFileError("the cell columns must be lists of equal length", **where)
    if not all(type(v) is int and -(2**62) < v < 2**62 for col in columns for v in col):
        raise CorruptFileError("the cell columns must hold whole numbers", **where)
    return CellTable(*columns)
