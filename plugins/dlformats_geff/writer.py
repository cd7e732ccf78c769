"""Writing a project as a geff (see the package docstring and :func:`dlformats_geff.parse_options`)."""

from __future__ import annotations

import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

from dlformats import Cell, DLFormatsWarning, Project, WriteOptions

from . import parse_options

GEFF_VERSION = "1.3"
TARGET_CHUNK = 1 << 20
"""Elements per chunk of the node and edge arrays."""


def write(project: Project, path: Path, options: WriteOptions) -> None:
    """Write ``project`` as a geff group in the empty folder ``path`` (see the package docstring)."""
    import numpy as np
    import zarr
    from zarr.storage import LocalStore

    opts = parse_options(options.extra, writing=True)
    z_frames = project.frame_axis == "Z"
    labels = project.y is not None
    cells = sorted(set(project.cells_or_derived()), key=lambda x: (x.t, x.c, x.cell, x.value))
    multi = (project.num_features > 1) if labels else any(c.c for c in cells)
    n = len(cells)
    frame = np.array([c.t for c in cells], np.int64)
    feature = np.array([c.c for c in cells], np.int64)
    props: dict[str, tuple[Any, Any]] = {
        "t": (np.zeros(n, np.int64) if z_frames else frame, None),
        "seg_id": (np.array([c.value for c in cells], np.int64), None),
        "cell": (np.array([c.cell for c in cells], np.int64), None),
    }
    if multi:
        props["c"] = (feature, None)
    names = ["t", *(["c"] if multi else []), *(["z"] if z_frames else []), "y", "x"]
    with warnings.catch_warnings():
        # zarr 3 warns that fixed-length strings have no zarr v3 specification yet (geff writes them too)
        warnings.filterwarnings("ignore", message=".*does not have a Zarr V3 specification.*")
        root = zarr.open_group(store=LocalStore(path), mode="w", zarr_format=opts.zarr_format)
        geff = root.create_group(opts.group) if opts.group else root
        segmentation = None
        if labels and opts.segmentation:
            holder = root if opts.group else geff
            segmentation = _segmentation_array(project, holder, z_frames, multi, opts.zarr_format, names)
        if labels:
            if z_frames:
                props["z"] = (frame.astype(np.float64), None)
            rows, cols = _planes(project, cells, segmentation, z_frames, multi, options)
            props["y"], props["x"] = (rows, None), (cols, None)
    src, dst = _edges(project, cells, z_frames)
    tracklet, lineage = _tracks(n, src, dst)
    props["tracklet"], props["lineage"] = (tracklet, None), (lineage, None)
    kept_meta, kept = _kept(project, cells, skip=set(props))
    props.update(kept)

    axes = [_axis(project, "t", "time", "frame", props["t"][0])]
    if multi:
        axes.append({"name": "c", "type": "channel"})
    if labels:
        axes += [_axis(project, name, "space", "pixel", props[name][0]) for name in ("z", "y", "x") if name in props]
    else:
        axes += _kept_axes(project, kept)
    meta: dict[str, Any] = {
        "geff_version": GEFF_VERSION,
        "directed": True,
        "axes": axes,
        "node_props_metadata": {name: _prop_meta(name, v, kept_meta.get(name)) for name, (v, _) in props.items()},
        "edge_props_metadata": {},
        "track_node_props": {"tracklet": "tracklet", "lineage": "lineage"},
        "display_hints": {"display_horizontal": "x", "display_vertical": "y", "display_time": "t"} if labels else None,
        "extra": _extra(project),
    }
    if meta["display_hints"] is None:
        del meta["display_hints"]
    elif z_frames:
        meta["display_hints"]["display_depth"] = "z"

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have a Zarr V3 specification.*")
        nodes = geff.create_group("nodes")
        _array(nodes, "ids", np.arange(n, dtype=np.int64))
        node_props = nodes.create_group("props")
        for name, (values, missing) in props.items():
            group = node_props.create_group(name)
            if isinstance(values, tuple):  # varlength: (offsets and shapes, flat data)
                _array(group, "values", values[0])
                _array(group, "data", values[1])
            else:
                _array(group, "values", values)
            if missing is not None:
                _array(group, "missing", missing)
        edges = geff.create_group("edges")
        _array(edges, "ids", np.stack([src, dst], 1).astype(np.int64).reshape(-1, 2))
        edges.create_group("props")
        if segmentation is not None:
            relative = "../segmentation" if opts.group else "segmentation"
            meta["related_objects"] = [
                {"type": "labels", "path": relative, "node_prop": "seg_id", "label_prop": "seg_id"}
            ]
        geff.attrs["geff"] = meta


def _planes(
    project: Project, cells: list[Cell], segmentation: Any, z_frames: bool, multi: bool, options: WriteOptions
) -> tuple[Any, Any]:
    """One pass over the label planes: each written to ``segmentation`` (when given), and the row and column
    centroid (pixels) of each cell entry's value in its plane; NaN where the value is absent."""
    import numpy as np

    rows = np.full(len(cells), np.nan)
    cols = np.full(len(cells), np.nan)
    by_plane: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, cell in enumerate(cells):
        by_plane[(cell.c, cell.t)].append(i)
    width = project.frame_shape[1]
    planes = [(c, t) for c in range(project.num_features) for t in range(project.num_frames)]
    for done, (c, t) in enumerate(planes, 1):
        if (c, t) not in by_plane and segmentation is None:
            continue
        plane = project.label_frame(c, t)
        if segmentation is not None:
            if z_frames:
                segmentation[(0, c, t) if multi else (0, t)] = plane
            else:
                segmentation[(t, c) if multi else (t,)] = plane
        options.report(done, len(planes))
        if (c, t) not in by_plane:
            continue
        flat = plane.ravel()
        at = by_plane[(c, t)]
        wanted = np.array([cells[i].value for i in at], np.int64)
        top = int(wanted.max())
        if top < (1 << 24):
            pixels = np.flatnonzero((flat > 0) & (flat <= top))  # labels are sparse: count only their pixels
            values = flat[pixels]
            counts = np.bincount(values, minlength=top + 1)
            sum_r = np.bincount(values, weights=pixels // width, minlength=top + 1)
            sum_c = np.bincount(values, weights=pixels % width, minlength=top + 1)
            with np.errstate(invalid="ignore", divide="ignore"):
                rows[at] = sum_r[wanted] / counts[wanted]
                cols[at] = sum_c[wanted] / counts[wanted]
        else:
            for i, value in zip(at, wanted.tolist()):
                pixels = np.flatnonzero(flat == value)
                if pixels.size:
                    rows[i], cols[i] = (pixels // width).mean(), (pixels % width).mean()
    absent = int(np.isnan(rows).sum())
    if absent:
        warnings.warn(
            f"{absent} cell entries have no pixels; their nodes' y and x are NaN", DLFormatsWarning, stacklevel=4
        )
    return rows, cols


def _edges(project: Project, cells: list[Cell], z_frames: bool) -> tuple[Any, Any]:
    """A cell's consecutive appearances, and each division's parent (last node before it) to each daughter."""
    import numpy as np

    if z_frames:
        if project.divisions:
            warnings.warn(
                "the frames are Z-slices (one time point): the divisions were not written",
                DLFormatsWarning,
                stacklevel=4,
            )
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    first_in_frame: dict[tuple[int, int], dict[int, int]] = defaultdict(dict)
    for i, cell in enumerate(cells):  # cells are sorted: the lowest value of a frame comes first
        first_in_frame[(cell.c, cell.cell)].setdefault(cell.t, i)
    src: list[int] = []
    dst: list[int] = []
    for by_frame in first_in_frame.values():
        nodes = [by_frame[t] for t in sorted(by_frame)]
        src += nodes[:-1]
        dst += nodes[1:]
    skipped = []
    for d in project.divisions:
        for (c, cell), by_frame in first_in_frame.items():
            if cell != d.parent:
                continue
            before = [t for t in by_frame if t < d.t]
            if not before:
                continue
            parent_t = max(before)
            for daughter in d.daughters:
                frames = first_in_frame.get((c, daughter))
                if not frames:
                    continue
                first = min(frames)
                if first <= parent_t:
                    skipped.append(f"{daughter} (frame {first}) of {d.parent} (frame {parent_t})")
                    continue
                src.append(by_frame[parent_t])
                dst.append(frames[first])
    if skipped:
        warnings.warn(
            f"daughters appearing before their parent's last frame have no edge from it: {skipped[:8]}",
            DLFormatsWarning,
            stacklevel=4,
        )
    pairs = sorted(set(zip(src, dst)))
    return np.array([p[0] for p in pairs], np.int64), np.array([p[1] for p in pairs], np.int64)


def _tracks(n: int, src: Any, dst: Any) -> tuple[Any, Any]:
    """Tracklet ids (maximal chains of one-to-one edges) and lineage ids (connected components), from 1."""
    import numpy as np

    out_deg = np.bincount(src, minlength=n)
    in_deg = np.bincount(dst, minlength=n)

    def components(pairs: list[tuple[int, int]]) -> Any:
        parent = list(range(n))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for a, b in pairs:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
        roots = [find(i) for i in range(n)]
        numbers: dict[int, int] = {}
        return np.array([numbers.setdefault(r, len(numbers) + 1) for r in roots], np.int64)

    pairs = list(zip(src.tolist(), dst.tolist()))
    chains = [(a, b) for a, b in pairs if out_deg[a] == 1 and in_deg[b] == 1]
    return components(chains), components(pairs)


def _kept(project: Project, cells: list[Cell], *, skip: set[str]) -> tuple[dict[str, Any], dict[str, tuple[Any, Any]]]:
    """Node properties kept from a geff read earlier, matched to the nodes by (frame, feature, cell, value);
    those named like a property written here (``skip``) give way."""
    import numpy as np

    stored = (project.metadata.get("geff") or {}).get("node_props") or {}
    if not isinstance(stored, dict):
        return {}, {}
    index = {(c.t, c.c, c.cell, c.value): i for i, c in enumerate(cells)}
    metas: dict[str, Any] = {}
    out: dict[str, tuple[Any, Any]] = {}
    dropped = []
    for name, entry in stored.items():
        if name in skip or not isinstance(entry, dict) or not isinstance(entry.get("rows"), list):
            continue
        meta = entry.get("metadata") if isinstance(entry.get("metadata"), dict) else {}
        values: list[Any] = [None] * len(cells)
        for row in entry["rows"]:
            if isinstance(row, list) and len(row) == 5:
                i = index.get(tuple(row[:4]))
                if i is not None:
                    values[i] = row[4]
        missing = np.array([v is None for v in values], bool)
        try:
            built = _values(values, meta)
        except (ValueError, TypeError):
            dropped.append(name)
            continue
        metas[name] = meta
        out[name] = (built, missing if missing.any() else None)
    if dropped:
        warnings.warn(f"node properties {dropped} could not be written back", DLFormatsWarning, stacklevel=4)
    return metas, out


def _values(values: list[Any], meta: dict[str, Any]) -> Any:
    """A property's values as an array, or ``(offsets and shapes, data)`` for a varlength property."""
    import numpy as np

    dtype = meta.get("dtype", "float64")
    if meta.get("varlength"):
        arrays = [np.asarray([] if v is None else v, dtype=dtype) for v in values]
        ndim = max((a.ndim for a in arrays), default=1)
        arrays = [a.reshape((0,) * ndim) if a.size == 0 and a.ndim != ndim else a for a in arrays]
        offsets, data, at = [], [], 0
        for a in arrays:
            offsets.append((at, *a.shape))
            data.append(a.ravel())
            at += a.size
        flat = np.concatenate(data) if data else np.zeros(0, dtype)
        return (np.array(offsets, np.uint64), flat.astype(dtype))
    if dtype == "str":
        return np.array(["" if v is None else str(v) for v in values], dtype=str)
    present = next((v for v in values if v is not None), 0)
    blank = np.zeros_like(np.asarray(present, dtype=dtype)).tolist()
    return np.array([blank if v is None else v for v in values], dtype=dtype)


def _kept_axes(project: Project, kept: dict[str, tuple[Any, Any]]) -> list[dict[str, Any]]:
    """The source's space axes whose values were kept (a graph read without its segmentation)."""
    import numpy as np

    out = []
    for axis in (project.metadata.get("geff") or {}).get("axes") or []:
        name = axis.get("name") if isinstance(axis, dict) else None
        if name in kept and axis.get("type") == "space":
            values, missing = kept[name]
            if missing is None and not isinstance(values, tuple) and np.asarray(values).ndim == 1:
                out.append({k: v for k, v in axis.items() if k not in ("min", "max")} | _range(values))
    return out


def _axis(project: Project, name: str, kind: str, unit: str, values: Any) -> dict[str, Any]:
    """An axis in ``unit``; the source's scale carried over when it measured the same unit."""
    axis: dict[str, Any] = {"name": name, "type": kind, "unit": unit, **_range(values)}
    for old in (project.metadata.get("geff") or {}).get("axes") or []:
        if isinstance(old, dict) and old.get("name") == name and old.get("unit") in (None, unit):
            for key in ("scale", "scaled_unit", "offset"):
                if old.get(key) is not None:
                    axis[key] = old[key]
    return axis


def _range(values: Any) -> dict[str, float]:
    import numpy as np

    values = np.asarray(values, np.float64)
    finite = values[np.isfinite(values)]
    if not finite.size:
        return {}
    return {"min": float(finite.min()), "max": float(finite.max())}


def _prop_meta(name: str, values: Any, source: dict[str, Any] | None) -> dict[str, Any]:
    import numpy as np

    varlength = isinstance(values, tuple)
    array = values[1] if varlength else np.asarray(values)
    dtype = "str" if array.dtype.kind == "U" else array.dtype.name
    meta: dict[str, Any] = {"identifier": name, "dtype": dtype, "varlength": varlength}
    descriptions = {
        "t": "frame of the cell entry",
        "y": "centroid row of the entry's pixels",
        "x": "centroid column of the entry's pixels",
        "z": "Z-slice of the entry",
        "seg_id": "pixel value of the entry in the segmentation",
        "cell": "DeepCell Label cell",
        "c": "DeepCell Label label feature",
        "tracklet": "maximal chain of one-to-one edges",
        "lineage": "connected component",
    }
    if name in descriptions:
        meta["description"] = descriptions[name]
        if name in ("y", "x", "z"):
            meta["unit"] = "pixel"
    for key in ("unit", "name", "description"):
        if source and isinstance(source.get(key), str):
            meta[key] = source[key]
    return meta


def _extra(project: Project) -> dict[str, Any]:
    from dlformats import __version__

    extra = dict((project.metadata.get("geff") or {}).get("extra") or {})
    extra["dlformats"] = {"version": __version__, "frame_axis": project.frame_axis, "features": list(project.features)}
    return extra


def _array(group: Any, name: str, data: Any) -> None:
    rows = max(1, TARGET_CHUNK // max(1, int(_prod(data.shape[1:]))))
    chunks = (max(1, min(len(data), rows)), *data.shape[1:])
    array = group.create_array(name, shape=data.shape, dtype=data.dtype, chunks=chunks)
    if data.size:
        array[...] = data


def _prod(shape: tuple[int, ...]) -> int:
    out = 1
    for s in shape:
        out *= int(s)
    return out


def _segmentation_array(
    project: Project, holder: Any, z_frames: bool, multi: bool, zarr_format: int, names: list[str]
) -> Any:
    """The empty array ``segmentation``: (T, [C,] Y, X), or (1, [C,] Z, Y, X) for Z-frames, int32, a plane per chunk."""
    import numpy as np

    features, frames = project.num_features, project.num_frames
    height, width = project.frame_shape
    lead = (1, features, frames) if z_frames else (frames, features)
    if not multi:
        lead = (1, frames) if z_frames else (frames,)
    extra = {"dimension_names": names} if zarr_format == 3 else {}
    return holder.create_array(
        "segmentation",
        shape=(*lead, height, width),
        dtype=np.int32,
        chunks=(*(1,) * len(lead), height, width),
        fill_value=0,
        **extra,
    )
