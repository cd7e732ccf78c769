"""Reading a geff into a project (see the package docstring)."""

from __future__ import annotations

import re
import warnings
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlformats import (
    AmbiguousInputError,
    Cell,
    CorruptFileError,
    Division,
    DLFormatsWarning,
    Limits,
    NotMyFormat,
    Project,
    ReadOptions,
    UnsupportedFeatureError,
)

from . import parse_options
from .store import (
    GEFF_KEY,
    attributes,
    check_array,
    check_name,
    find_geff_groups,
    inside,
    node_type,
    open_store,
    store_root,
)

if TYPE_CHECKING:
    from dlformats.sources import Source

METADATA_KEYS = frozenset(
    {
        "geff_version",
        "directed",
        "axes",
        "node_props_metadata",
        "edge_props_metadata",
        "sphere",
        "ellipsoid",
        "polygon",
        "track_node_props",
        "related_objects",
        "display_hints",
        "extra",
    }
)
"""The keys of geff 1.x metadata; others are refused, as geff's own validator does."""
AXIS_TYPES = ("space", "time", "channel", None)
DTYPES = frozenset(
    {
        "bool",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "float32",
        "float64",
        "bytes",
        "str",
    }
)
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.\d+)?(?:\.dev\d+)?(?:\+[a-zA-Z0-9]+)?")
MAPPED = ("cell", "c", "tracklet", "lineage")
SHOWN = 8


def read(source: Source, options: ReadOptions) -> Project:
    """Read the geff at (or inside) the folder ``source``."""
    opts = parse_options({**options.extra, "select": options.select or None}, writing=False)
    limits = options.limits
    if source.path is None or not source.is_dir:
        raise NotMyFormat("a geff is a zarr group: a folder on disk")
    folder = source.path
    if opts.group:
        candidate = folder / opts.group
        if not candidate.is_dir() or GEFF_KEY not in attributes(candidate, limits):
            raise CorruptFileError(f"group {opts.group!r} is not a geff group (no 'geff' attributes)", path=str(folder))
    else:
        groups = find_geff_groups(folder, limits)
        if not groups:
            raise NotMyFormat("a folder without geff metadata (a zarr group whose attributes hold 'geff')")
        if len(groups) > 1:
            raise AmbiguousInputError(
                f"the folder holds {len(groups)} geff groups", option="group", choices=groups, path=source.name
            )
        candidate = folder / groups[0]
    return _read_group(candidate, opts, limits, name=source.name)


def check_metadata(meta: Any, *, path: str) -> dict[str, Any]:
    """Check geff metadata as the spec (1.x) defines it; every problem is raised at once."""
    if not isinstance(meta, dict):
        raise CorruptFileError("the 'geff' attribute is not a JSON object", path=path)
    problems = []
    unknown = sorted(set(meta) - METADATA_KEYS)
    if unknown:
        problems.append(f"unknown metadata keys {unknown} (geff allows only {sorted(METADATA_KEYS)}; use 'extra')")
    version = meta.get("geff_version")
    match = _VERSION.fullmatch(version) if isinstance(version, str) else None
    if match is None:
        problems.append(f"geff_version {version!r:.40} is not a version")
    elif match.group(1) != "1":
        raise UnsupportedFeatureError(f"geff version {version} is not supported (1.x is)", path=path)
    if not isinstance(meta.get("directed"), bool):
        problems.append("'directed' must be true or false")
    for key in ("node_props_metadata", "edge_props_metadata"):
        props = meta.get(key)
        if not isinstance(props, dict):
            problems.append(f"{key!r} must be an object")
            continue
        for name, prop in props.items():
            if not isinstance(prop, dict) or prop.get("identifier") != name:
                problems.append(f"{key}[{name!r}] must be an object whose identifier is {name!r}")
            elif prop.get("dtype") not in DTYPES:
                problems.append(f"{key}[{name!r}]: dtype {prop.get('dtype')!r:.30} is not a geff dtype")
    axes = meta.get("axes")
    if axes is not None:
        if not isinstance(axes, list) or not all(isinstance(a, dict) and isinstance(a.get("name"), str) for a in axes):
            problems.append("'axes' must be a list of objects with a 'name'")
        else:
            names = [a["name"] for a in axes]
            if len(set(names)) != len(names):
                problems.append(f"axes {names} repeat a name")
            for a in axes:
                if a.get("type") not in AXIS_TYPES:
                    problems.append(f"axis {a['name']!r}: type {a.get('type')!r:.30} is not space, time or channel")
    related = meta.get("related_objects")
    if related is not None and not (
        isinstance(related, list) and all(isinstance(r, dict) and isinstance(r.get("type"), str) for r in related)
    ):
        problems.append("'related_objects' must be a list of objects with a 'type' and a 'path'")
    tracks = meta.get("track_node_props")
    if tracks is not None and not (isinstance(tracks, dict) and set(tracks) <= {"lineage", "tracklet"}):
        problems.append("'track_node_props' may name only 'lineage' and 'tracklet'")
    extra = meta.get("extra", {})
    if not isinstance(extra, dict):
        problems.append("'extra' must be an object")
    if problems:
        raise CorruptFileError("invalid geff metadata: " + "; ".join(problems), path=path)
    return meta


def _read_group(group: Path, opts: Any, limits: Limits, *, name: str) -> Project:
    import numpy as np

    where = str(group)
    meta = check_metadata(attributes(group, limits)[GEFF_KEY], path=where)
    root, base = store_root(group, limits)
    store = open_store(root)

    def prop_path(kind: str, prop: str, part: str) -> str:
        check_name(prop, path=where, what=f"{kind} property")
        return "/".join(p for p in (base, kind, "props", prop, part) if p)

    def load(rel: str, what: str) -> Any:
        import zarr

        if node_type(root / rel, limits) != "array":
            raise CorruptFileError(f"missing {what} array {rel!r}", path=str(root))
        check_array(root, rel, limits, whole=True)
        try:
            return np.asarray(zarr.open_array(store=store, path=rel, mode="r")[...])
        except (ValueError, TypeError, KeyError, OSError, RuntimeError) as exc:
            raise CorruptFileError(f"cannot read the {what} array {rel!r}: {exc}", path=str(root)) from exc

    ids = load("/".join(p for p in (base, "nodes", "ids") if p), "node ids")
    edges = load("/".join(p for p in (base, "edges", "ids") if p), "edge ids")
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise CorruptFileError(f"nodes/ids must be one integer per node, not {ids.dtype} {ids.shape}", path=where)
    if edges.size == 0:
        edges = np.zeros((0, 2), np.int64)
    if edges.ndim != 2 or edges.shape[1] != 2 or edges.dtype.kind not in "iu":
        raise CorruptFileError(f"edges/ids must be E x 2 integers, not {edges.dtype} {edges.shape}", path=where)
    n = len(ids)
    props: dict[str, tuple[Any, Any]] = {}
    for prop, prop_meta in meta["node_props_metadata"].items():
        values = load(prop_path("nodes", prop, "values"), f"node property {prop!r}")
        missing = None
        if node_type(root / prop_path("nodes", prop, "missing"), limits) == "array":
            missing = load(prop_path("nodes", prop, "missing"), f"missing values of {prop!r}").astype(bool)
        if prop_meta.get("varlength"):
            data = load(prop_path("nodes", prop, "data"), f"data of {prop!r}")
            values = _unpack_varlength(values, data, prop, where)
        if len(values) != n or (missing is not None and len(missing) != n):
            raise CorruptFileError(f"node property {prop!r} has {len(values)} values for {n} nodes", path=where)
        props[prop] = (values, missing)
    edge_props = sorted(meta["edge_props_metadata"])
    if edge_props:
        warnings.warn(f"{where}: edge properties {edge_props} are not kept", DLFormatsWarning, stacklevel=4)

    axes = meta.get("axes") or []
    time_axis = next((a["name"] for a in axes if a.get("type") == "time"), None)
    if time_axis is None and any(a["name"] == "t" for a in axes):
        time_axis = "t"
    if time_axis is None or time_axis not in props:
        raise UnsupportedFeatureError(
            "the geff has no time axis: a DeepCell Label project needs the frame of every node", path=where
        )
    t = _whole(props[time_axis], time_axis, ids, where, low=0)
    seg_prop, seg_rel = _segmentation_of(meta, base, where)
    seg_values = None
    if seg_prop is not None and seg_prop in props:
        seg_values, seg_missing = props[seg_prop]
        seg_values = np.where(seg_missing, 0, seg_values) if seg_missing is not None else seg_values
        seg_values = _whole((seg_values, None), seg_prop, ids, where, low=0)
    c = _whole(props["c"], "c", ids, where, low=0) if "c" in props else np.zeros(n, np.int64)

    index = {int(v): i for i, v in enumerate(ids.tolist())}
    if len(index) != n:
        raise CorruptFileError("node ids repeat", path=where)
    src, dst = _edges(edges, index, t, bool(meta["directed"]), where)
    cell = _cells(props.get("cell"), src, dst, n, t, seg_values, ids, where)

    y = None
    frame_axis = "T"
    frame_of = t
    if opts.segmentation and seg_rel is not None:
        y, frame_axis, frame_of = _labels(root, seg_rel, store, axes, opts.select, limits, props, t, n, where)
        if frame_of is None:  # 3-D over time read as one slice, or one time point of 3-D: frames from pixels
            return _project_from_pixels(y, frame_axis, opts, t, c, cell, seg_values, src, dst, meta, props, axes)
    values = seg_values if seg_values is not None else cell
    values = np.where(values > 0, values, cell)
    cells = [
        Cell(int(v), int(k), int(f), int(ch))
        for v, k, f, ch in zip(values.tolist(), cell.tolist(), frame_of.tolist(), c.tolist())
    ]
    divisions = _divisions(src, dst, cell, frame_of) if frame_axis == "T" else []
    project = Project(y=y, cells=sorted(set(cells), key=lambda x: (x.t, x.c, x.cell, x.value)), divisions=divisions)
    project.frame_axis = frame_axis  # type: ignore[assignment]
    mapped = {time_axis, "cell", "c", seg_prop}
    if y is not None:
        mapped |= {a["name"] for a in axes if a.get("type") == "space"}
    mapped |= set((meta.get("track_node_props") or {}).values())
    project.metadata["geff"] = _kept(meta, props, mapped, frame_of, c, cell, values)
    return project


def _unpack_varlength(values: Any, data: Any, prop: str, where: str) -> list[Any]:
    import math

    out: list[Any] = []
    for row in values.tolist():
        if not isinstance(row, list) or not row:
            raise CorruptFileError(f"varlength property {prop!r}: bad offsets {row!r:.40}", path=where)
        offset, shape = int(row[0]), [int(s) for s in row[1:]]
        count = math.prod(shape)
        if offset < 0 or count < 0 or offset + count > len(data):
            raise CorruptFileError(f"varlength property {prop!r}: values past the end of its data", path=where)
        out.append(data[offset : offset + count].reshape(shape).tolist())
    return out


def _whole(prop: tuple[Any, Any], name: str, ids: Any, where: str, *, low: int) -> Any:
    """A property as int64, every value a whole number >= ``low`` and present."""
    import numpy as np

    values, missing = prop
    values = np.asarray(values)
    if values.ndim != 1 or values.dtype.kind not in "biuf":
        raise CorruptFileError(f"node property {name!r} must be one number per node", path=where)
    bad = np.zeros(len(values), bool) if missing is None else np.asarray(missing, bool)
    with np.errstate(invalid="ignore"):
        bad |= ~np.isfinite(values.astype(np.float64)) | (values.astype(np.float64) != np.round(values))
        bad |= values < low
    if bad.any():
        shown = ", ".join(f"node {ids[i]} ({values[i]!r})" for i in np.flatnonzero(bad)[:SHOWN].tolist())
        raise CorruptFileError(
            f"node property {name!r} must be a whole number >= {low} on every node: {shown}", path=where
        )
    return values.astype(np.int64)


def _segmentation_of(meta: dict[str, Any], base: str, where: str) -> tuple[str | None, str | None]:
    """The node property holding label values and the store path of the labels array (either may be None)."""
    for related in meta.get("related_objects") or []:
        if related.get("type") == "labels":
            prop = related.get("node_prop") or related.get("label_prop") or "seg_id"
            if not isinstance(prop, str):
                raise CorruptFileError(f"related object {related!r:.80}: node_prop must be a name", path=where)
            return prop, inside(base, related.get("path"), path=where)
    return "seg_id", None  # the usual name of the label value, even without the labels at hand


def _edges(edges: Any, index: dict[int, int], t: Any, directed: bool, where: str) -> tuple[Any, Any]:
    """Edges as node indices, oriented forward in time; self, unknown and same-frame edges are refused."""
    import numpy as np

    pairs = edges.tolist()
    unknown = [p for p in pairs if p[0] not in index or p[1] not in index]
    if unknown:
        raise CorruptFileError(f"{len(unknown)} edge(s) name unknown nodes, e.g. {unknown[:SHOWN]}", path=where)
    src = np.array([index[a] for a, _ in pairs], np.int64)
    dst = np.array([index[b] for _, b in pairs], np.int64)
    if not directed:
        swap = t[src] > t[dst]
        src, dst = np.where(swap, dst, src), np.where(swap, src, dst)
    backward = np.flatnonzero(t[dst] <= t[src])
    if len(backward):
        shown = ", ".join(
            f"{pairs[i][0]} (frame {t[src[i]]}) -> {pairs[i][1]} (frame {t[dst[i]]})" for i in backward[:4]
        )
        raise UnsupportedFeatureError(
            f"{len(backward)} edge(s) do not go forward in time, which a lineage cannot hold: {shown}", path=where
        )
    if len(src):
        keep = np.unique(np.stack([src, dst], 1), axis=0)
        src, dst = keep[:, 0], keep[:, 1]
    return src, dst


def _cells(cell_prop: Any, src: Any, dst: Any, n: int, t: Any, seg: Any, ids: Any, where: str) -> Any:
    """The cell of every node: the ``cell`` property, or one cell per chain of one-to-one edges."""
    import numpy as np

    if cell_prop is not None:
        return _whole(cell_prop, "cell", ids, where, low=1)
    out_deg = np.bincount(src, minlength=n)
    in_deg = np.bincount(dst, minlength=n)
    head = np.arange(n)
    successor = {}
    for a, b in zip(src.tolist(), dst.tolist()):
        if out_deg[a] == 1 and in_deg[b] == 1:
            successor[a] = b
    continued = set(successor.values())
    starts = [i for i in np.argsort(t, kind="stable").tolist() if i not in continued]
    chains = []
    for s in starts:
        chain = [s]
        while chain[-1] in successor:
            chain.append(successor[chain[-1]])
        chains.append(chain)
    firsts = [int(seg[ch[0]]) if seg is not None else 0 for ch in chains]
    numbered = seg is not None and all(f > 0 for f in firsts) and len(set(firsts)) == len(firsts)
    for number, chain in enumerate(chains, 1):
        head[chain] = firsts[number - 1] if numbered else number
    return head.astype(np.int64)


def _divisions(src: Any, dst: Any, cell: Any, frame: Any) -> list[Division]:
    """Edges between different cells, grouped by parent node: the daughters, first frame of the earliest."""
    by_parent: dict[int, list[int]] = defaultdict(list)
    for a, b in zip(src.tolist(), dst.tolist()):
        if cell[a] != cell[b]:
            by_parent[a].append(b)
    found = {
        (int(cell[a]), tuple(sorted({int(cell[b]) for b in kids})), int(min(frame[b] for b in kids)))
        for a, kids in by_parent.items()
    }  # one division per feature holding it: counted once
    return [Division(parent, list(daughters), t) for parent, daughters, t in sorted(found, key=lambda d: (d[2], d[0]))]


def _labels(
    root: Path,
    rel: str,
    store: Any,
    axes: list[dict[str, Any]],
    select: Any,
    limits: Limits,
    props: dict[str, Any],
    t: Any,
    n: int,
    where: str,
) -> tuple[Any, str, Any]:
    """The labels array as a lazy ``y``, the frame axis, and each node's frame (``None``: find it in the pixels)."""
    import numpy as np
    import zarr

    from dlformats.arrays import LazyArray

    seg_where = str(root / rel)
    if node_type(root / rel, limits) != "array":
        raise CorruptFileError(f"the segmentation {rel!r} named by related_objects is missing", path=where)
    facts = check_array(root, rel, limits, whole=False)
    array = zarr.open_array(store=store, path=rel, mode="r")
    if np.dtype(array.dtype).kind not in "biu":
        raise UnsupportedFeatureError(f"the segmentation holds {array.dtype}, not integer labels", path=seg_where)
    letters = _letters(axes, len(facts["shape"]), seg_where)
    y = LazyArray(array, letters, select=select, labels=True, path=seg_where, limits=limits)
    shape = dict(zip(letters, facts["shape"]))
    frames = shape.get("T", 1)
    if t.size and int(t.max()) >= frames:
        raise CorruptFileError(
            f"nodes lie in frame {int(t.max())}, beyond the segmentation's {frames} frames", path=where
        )
    depth = shape.get("Z", 1)
    if depth == 1:
        return y, "T", t
    if y.frame_axis == "Z" and "z" in props and "cell" in props:
        z = props["z"][0]
        if np.all(np.asarray(z) == np.round(z)):  # one node per slice, as dlformats writes Z-frames
            return y, "Z", np.asarray(z).astype(np.int64)
    return y, y.frame_axis, None


def _letters(axes: list[dict[str, Any]], ndim: int, where: str) -> str:
    """Axis letters of the segmentation from the geff's axes (their order), else ``TYX`` / ``TZYX``."""
    letters = []
    spaces = [a["name"] for a in axes if a.get("type") == "space"]
    space_letters = dict(zip(spaces, "ZYX"[3 - len(spaces) :] if len(spaces) <= 3 else ""))
    for a in axes:
        kind = a.get("type")
        if kind == "time":
            letters.append("T")
        elif kind == "channel":
            letters.append("C")
        elif kind == "space" and a["name"] in space_letters:
            letters.append(space_letters[a["name"]])
    if len(letters) == ndim and len(set(letters)) == ndim and {"T", "Y", "X"} <= set(letters):
        return "".join(letters)
    if ndim in (3, 4):
        return "TYX" if ndim == 3 else "TZYX"
    raise UnsupportedFeatureError(f"a segmentation of {ndim} dimensions does not match the axes", path=where)


def _project_from_pixels(
    y: Any,
    frame_axis: str,
    opts: Any,
    t: Any,
    c: Any,
    cell: Any,
    seg: Any,
    src: Any,
    dst: Any,
    meta: dict[str, Any],
    props: dict[str, Any],
    axes: list[dict[str, Any]],
) -> Project:
    """3-D segmentations: the frames are slices of one time point, or one slice of every time point;
    each node's cell is listed in the frames where its value is present."""
    from dlformats.model import present_values

    if seg is None:
        raise UnsupportedFeatureError("3-D labels need a seg_id on every node to find their slices")
    chosen = {k.upper(): int(v) for k, v in (opts.select or {}).items()}
    present = [set(present_values(y.plane(0, f)).tolist()) for f in range(y.shape[1])]
    cells = set()
    for i in range(len(t)):
        if frame_axis == "Z":
            if int(t[i]) != chosen.get("T", 0):
                continue
            frames = [f for f in range(len(present)) if int(seg[i]) in present[f]]
        else:
            frames = [int(t[i])] if int(seg[i]) in present[int(t[i])] else []
        cells.update(Cell(int(seg[i]), int(cell[i]), f, int(c[i])) for f in frames)
    divisions = _divisions(src, dst, cell, t) if frame_axis == "T" else []
    project = Project(y=y, cells=sorted(cells, key=lambda x: (x.t, x.c, x.cell, x.value)), divisions=divisions)
    project.frame_axis = frame_axis  # type: ignore[assignment]
    return project


def _kept(
    meta: dict[str, Any], props: dict[str, Any], mapped: set[Any], t: Any, c: Any, cell: Any, values: Any
) -> dict[str, Any]:
    """Node properties dlformats does not map, keyed by node (frame, feature, cell, value), with their metadata."""
    import numpy as np

    kept: dict[str, Any] = {}
    for name, (prop_values, missing) in props.items():
        if name in mapped:
            continue
        prop_meta = dict(meta["node_props_metadata"][name])
        if prop_meta.get("dtype") == "bytes":
            continue
        as_list = prop_values if isinstance(prop_values, list) else np.asarray(prop_values).tolist()
        rows = []
        for i, value in enumerate(as_list):
            absent = missing is not None and bool(missing[i])
            rows.append([int(t[i]), int(c[i]), int(cell[i]), int(values[i]), None if absent else value])
        kept[name] = {"metadata": prop_meta, "rows": rows}
    out: dict[str, Any] = {"node_props": kept}
    out["axes"] = [dict(a) for a in meta.get("axes") or []]
    if meta.get("extra"):
        out["extra"] = meta["extra"]
    return out
