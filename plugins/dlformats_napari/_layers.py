"""Projects as napari layer data tuples and back.

Layer data tuples are ``(data, metadata, layer_type)``, what napari's ``add_<layer_type>``
takes as ``add_<layer_type>(data, **metadata)``.  Every layer keeps the frames as its
first axis; image and labels layers are (frames, height, width), points ``(y, x)`` and
tracks rows ``[track_id, t, y, x]``, all in pixels.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from dlformats.errors import DLFormatsError, InconsistentDataError, UnsupportedFeatureError
from dlformats.model import Division, Project, Spots

if TYPE_CHECKING:
    import numpy as np

LayerData = tuple[Any, dict[str, Any], str]
"""``(data, metadata, layer_type)``."""

KEY = "dlformats"
"""Key of the layers' ``metadata`` where dlformats records what it read."""

FRAME_LABELS = {"T": "t", "Z": "z", "B": "b"}
"""Axis label of the frames axis, by :attr:`dlformats.Project.frame_axis`."""


# ------------------------------------------------------------------ reading
def project_to_layers(project: Project, *, source: str | None = None, prefix: str = "") -> list[LayerData]:
    """The layers showing ``project``: image, labels (one per feature), spots, tracks.

    Args:
        project: the project; its arrays stay lazy (each image channel and label
            feature is handed to napari as a dask array read one plane at a time).
        source: where the project was read from, recorded in the layers' metadata.
        prefix: put before every layer name (``"batch 1: "`` for a ``.trks`` batch).

    Returns:
        ``[(X, {... channel_axis=0 ...}, "image"), (y[f], {...}, "labels") for each
        feature, (spots, {...}, "points"), (tracks, {"graph": ...}, "tracks")]``;
        parts the project lacks give no layer.  The tracks layer is computed from the
        labels (each cell's centroid in each frame it appears in), which reads every
        label plane once; it is made when the project has divisions, or when it is a
        time-lapse read from a format that carries lineages (a trk, a CTC folder...).
    """
    frame_label = FRAME_LABELS.get(project.frame_axis, "t")
    common = {"frame_axis": project.frame_axis, "format": project.metadata.get("format"), "source": source}
    layers: list[LayerData] = []
    if project.X is not None:
        channels = project.num_channels
        names, meta = [], []
        for c in range(channels):
            given = project.channels[c] if c < len(project.channels) else ""
            shown = prefix + (given or ("image" if channels == 1 else f"channel {c}"))
            names.append(shown)
            meta.append({KEY: {**common, "channel": c, "name": given, "shown": shown}})
        layers.append(
            (
                lazy(project.X),
                {
                    "channel_axis": 0,
                    "name": names,
                    "metadata": meta,
                    "axis_labels": [(frame_label, "y", "x")] * channels,
                },
                "image",
            )
        )
    if project.y is not None:
        y = lazy(project.y)
        for f in range(project.num_features):
            given = project.features[f] if f < len(project.features) else ""
            shown = prefix + (given or ("labels" if project.num_features == 1 else f"feature {f}"))
            layers.append(
                (
                    y[f],
                    {
                        "name": shown,
                        "metadata": {KEY: {**common, "feature": f, "name": given, "shown": shown}},
                        "axis_labels": (frame_label, "y", "x"),
                    },
                    "labels",
                )
            )
    if project.spots is not None:
        layers.append(_spots_layer(project, prefix, common))
    if _wants_tracks(project):
        tracks, graph = tracks_of(project)
        if len(tracks):
            layers.append(
                (
                    tracks,
                    {
                        "name": prefix + "lineage",
                        "graph": graph,
                        "metadata": {KEY: dict(common)},
                        "axis_labels": (frame_label, "y", "x"),
                    },
                    "tracks",
                )
            )
    return layers


def lazy(array: Any) -> Any:
    """``array`` as napari should get it: numpy arrays as they are, anything else as a lazy dask array.

    The dask array reads one ``[channel, frame]`` plane of ``array`` per chunk, when
    napari shows it; nothing is read here.
    """
    import numpy as np

    if isinstance(array, np.ndarray):
        return array
    import dask.array as da

    shape = tuple(int(s) for s in array.shape)
    chunks = (1,) * (len(shape) - 2) + shape[-2:]
    # An explicit name: dask would otherwise hash the array, which may mean reading it.
    return da.from_array(
        array,
        chunks=chunks,
        name=f"dlformats-{uuid.uuid4().hex}",
        asarray=True,
        fancy=False,
        meta=np.empty((0,) * len(shape), dtype=array.dtype),
    )


def _spots_layer(project: Project, prefix: str, common: dict[str, Any]) -> LayerData:
    import numpy as np

    spots = project.spots
    assert spots is not None
    coords = np.column_stack([np.asarray(spots.y, float), np.asarray(spots.x, float)]).reshape(-1, 2)
    height, width = project.frame_shape
    size = max(2.0, min(height, width) / 64) if height and width else 4.0
    return (
        coords,
        {
            "name": prefix + "spots",
            "features": _table(spots.columns, len(spots)),
            "size": size,
            "metadata": {KEY: dict(common)},
            "axis_labels": ("y", "x"),
        },
        "points",
    )


def _table(columns: dict[str, list[Any]], rows: int) -> Any:
    """The spot columns as a pandas table: integers with empty fields as nullable ``Int64``, text as strings."""
    import pandas as pd

    data = {}
    for name, values in columns.items():
        try:
            data[name] = pd.array(values)
        except (TypeError, ValueError):  # mixed kinds: kept as Python objects
            data[name] = pd.array(values, dtype=object)
    return pd.DataFrame(data, index=pd.RangeIndex(rows))


def _wants_tracks(project: Project) -> bool:
    if project.y is None:
        return False
    if project.divisions:
        return True
    if project.frame_axis != "T" or project.num_frames < 2:
        return False
    import dlformats

    fmt = project.metadata.get("format")
    return any(f["name"] == fmt and "divisions" in f.get("parts_read", ()) for f in dlformats.formats())


def tracks_of(project: Project) -> tuple[np.ndarray, dict[int, list[int]]]:
    """Tracks and lineage graph of ``project``, as napari's tracks layer takes them.

    Returns:
        ``(rows, graph)``: ``rows`` is (N, 4) float64 ``[track_id, t, y, x]``, one row per
        cell and frame it appears in, at the centroid (pixels) of its pixels in every
        feature, sorted by track and frame; ``track_id`` is the cell id.  ``graph`` is
        ``{daughter: [parent]}`` from the divisions, for cells that appear in the labels.
        Reads every label plane once.
    """
    import numpy as np

    from dlformats.model import CellTable, checked_labels

    y = project.y
    table = CellTable.from_cells(project.cells) if project.cells is not None else None
    width = project.frame_shape[1]
    parts: list[np.ndarray] = []  # rows of [cell, t, pixels, sum of rows, sum of columns]
    for c in range(project.num_features):
        for t in range(project.num_frames):
            plane = checked_labels(y[c, t], feature=c, frame=t, negatives=True, wide=True)
            flat = plane.ravel()
            where = np.flatnonzero(flat > 0)
            if where.size == 0:
                continue
            values, inverse = np.unique(flat[where], return_inverse=True)
            count = np.bincount(inverse).astype(np.float64)
            sum_r = np.bincount(inverse, weights=where // width)
            sum_c = np.bincount(inverse, weights=where % width)
            if table is None:  # no cell list: each value is a cell
                cells, pick = values.astype(np.float64), np.arange(len(values))
            else:
                rows = np.flatnonzero((table.c == c) & (table.t == t))
                listed = table.value[rows]
                pos = np.minimum(np.searchsorted(values, listed), len(values) - 1)
                hit = values[pos] == listed
                cells, pick = table.cell[rows][hit].astype(np.float64), pos[hit]
            parts.append(np.column_stack([cells, np.full(len(cells), t), count[pick], sum_r[pick], sum_c[pick]]))
    if not parts:
        return np.zeros((0, 4)), {}
    rows = np.concatenate(parts)
    order = np.lexsort((rows[:, 1], rows[:, 0]))
    rows = rows[order]
    starts = np.flatnonzero(np.concatenate(([True], np.any(rows[1:, :2] != rows[:-1, :2], axis=1))))
    sums = np.add.reduceat(rows[:, 2:], starts, axis=0)
    tracks = np.column_stack([rows[starts, 0], rows[starts, 1], sums[:, 1] / sums[:, 0], sums[:, 2] / sums[:, 0]])
    ids = set(np.unique(tracks[:, 0]).astype(np.int64).tolist())
    graph: dict[int, list[int]] = {}
    for division in project.divisions:
        if division.parent not in ids:
            continue
        for daughter in division.daughters:
            if daughter in ids and division.parent not in graph.setdefault(daughter, []):
                graph[daughter].append(division.parent)
    return tracks, graph


# ------------------------------------------------------------------ writing
def layers_to_project(layers: Sequence[LayerData]) -> Project:
    """A project from image, labels, points and tracks layer data tuples.

    * each image layer is one channel (an RGB layer three), (frames, height, width) or
      (height, width); its name is the channel's name;
    * each labels layer is one feature, named after the layer;
    * a points layer gives the spots: its last two coordinates are ``y`` and ``x``
      (pixels), its features the spot table's other columns;
    * a tracks layer gives the divisions: its graph's ``{daughter: [parent]}`` grouped
      by parent, each division at the first frame of its daughters.

    Layers of other types are ignored.  Cells are left for the writer to derive (one
    per label value, frame and feature: cell = value, as track ids are).  Arrays stay
    lazy: the writer reads one plane at a time.

    Raises:
        InconsistentDataError: layers disagree in frames or size, or two layers of a
            kind that holds one (points, tracks).
        UnsupportedFeatureError: a layer with more axes than (frames, height, width), a
            track with two parents.
    """
    import numpy as np

    from dlformats.arrays import LazyArray

    images: list[tuple[str, Any]] = []
    labels: list[tuple[str, Any]] = []
    points: list[LayerData] = []
    tracks: list[LayerData] = []
    frame_axis: str | None = None
    for data, meta, kind in layers:
        name = _given_name(meta)
        if kind in ("image", "labels"):
            frame_axis = frame_axis or _frame_axis(meta)
            if meta.get("multiscale") and isinstance(data, (list, tuple)):
                data = data[0]  # the full resolution
            if kind == "image" and meta.get("rgb"):
                letters = "RGBA"
                for k in range(int(data.shape[-1])):
                    images.append((f"{name} {letters[k]}", _Channel(data, name, k)))
            else:
                (images if kind == "image" else labels).append((name, _frames(data, name, kind)))
        elif kind == "points":
            points.append((data, meta, kind))
        elif kind == "tracks":
            tracks.append((data, meta, kind))
    arrays = [a for _, a in images + labels]
    if len({a.shape for a in arrays}) > 1:
        shapes = ", ".join(f"{n!r} {a.shape}" for n, a in images + labels)
        raise InconsistentDataError(
            f"image and labels layers differ in frames or size (frames, height, width): {shapes}",
            hint="every image and labels layer must have the same frames, height and width",
        )
    for kind, found in (("points", points), ("tracks", tracks)):
        if len(found) > 1:
            raise InconsistentDataError(
                f"{len(found)} {kind} layers; a project holds one", hint=f"save one {kind} layer"
            )
    X = y = None
    if images:
        dtype = np.result_type(*(a.dtype for _, a in images))
        X = LazyArray(_Stack([a for _, a in images], dtype), "CTYX")
    if labels:
        dtype = np.result_type(*(a.dtype for _, a in labels))
        y = LazyArray(_Stack([a for _, a in labels], dtype), "CTYX", labels=True)
    project = Project(
        X=X,
        y=y,
        channels=[n for n, _ in images] if images else [],
        features=[n for n, _ in labels] if labels else [],
        frame_axis=frame_axis or "T",  # type: ignore[arg-type]
    )
    if not any(project.channels):
        project.channels = []
    if not any(project.features):
        project.features = []
    if points:
        project.spots = _spots(*points[0][:2])
    if tracks:
        project.divisions = _divisions(*tracks[0][:2])
    return project


def _given_name(meta: dict[str, Any]) -> str:
    """The layer's name, or the name the file gave it when the layer still shows the default for an unnamed one."""
    name = str(meta.get("name") or "")
    info = (meta.get("metadata") or {}).get(KEY) or {}
    if isinstance(info, dict) and info.get("shown") == name and "name" in info:
        return str(info["name"])
    return name


def _frame_axis(meta: dict[str, Any]) -> str | None:
    info = (meta.get("metadata") or {}).get(KEY) or {}
    if isinstance(info, dict) and info.get("frame_axis") in FRAME_LABELS:
        return str(info["frame_axis"])
    labels = meta.get("axis_labels") or ()
    if len(labels) == 3:
        first = str(labels[0]).upper()
        if first in FRAME_LABELS:
            return first
    return None


def _frames(data: Any, name: str, kind: str) -> Any:
    """``data`` as (frames, height, width): (height, width) gets one frame."""
    ndim = len(data.shape)
    if ndim == 3:
        return data
    if ndim == 2:
        return _OneFrame(data)
    raise UnsupportedFeatureError(
        f"{kind} layer {name!r} has {ndim} axes {tuple(data.shape)}; a DeepCell Label project has "
        "(frames, height, width) per channel or feature",
        hint="split it into layers of (frames, height, width), e.g. one per channel",
    )


class _OneFrame:
    """A (height, width) array seen as (1, height, width)."""

    def __init__(self, data: Any) -> None:
        self._data = data
        self.shape = (1, *(int(s) for s in data.shape))
        self.dtype = data.dtype

    def __getitem__(self, key: Any) -> Any:
        import numpy as np

        return np.asarray(self._data)[None][key]


class _Channel:
    """Channel ``k`` of an RGB(A) layer, (frames, height, width, k) or (height, width, k)."""

    def __init__(self, data: Any, name: str, k: int) -> None:
        if len(data.shape) not in (3, 4):
            raise UnsupportedFeatureError(
                f"RGB image layer {name!r} has {len(data.shape)} axes {tuple(data.shape)}",
                hint="an RGB layer must be (height, width, 3) or (frames, height, width, 3)",
            )
        self._data = data
        self._k = k
        self._frames = len(data.shape) == 4
        self.shape = (int(data.shape[0]) if self._frames else 1, int(data.shape[-3]), int(data.shape[-2]))
        self.dtype = data.dtype

    def __getitem__(self, key: Any) -> Any:
        import numpy as np

        t, *rest = key if isinstance(key, tuple) else (key,)
        plane = self._data[t, ..., self._k] if self._frames else self._data[..., self._k]
        return np.asarray(plane)[tuple(rest)]


class _Stack:
    """Layers' (frames, height, width) arrays as one (layers, frames, height, width) array, read plane by plane."""

    def __init__(self, arrays: list[Any], dtype: Any) -> None:
        import numpy as np

        self._arrays = arrays
        self.shape = (len(arrays), *(int(s) for s in arrays[0].shape))
        self.dtype = np.dtype(dtype)

    def __getitem__(self, key: tuple[Any, ...]) -> Any:
        import numpy as np

        c, t, *rest = key
        return np.asarray(self._arrays[c][t], dtype=self.dtype)[tuple(rest)]


def _spots(data: Any, meta: dict[str, Any]) -> Spots:
    import numpy as np

    coords = np.asarray(data, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] < 2:
        raise UnsupportedFeatureError(f"points layer {meta.get('name')!r} of shape {coords.shape} has no (y, x)")
    if coords.shape[1] > 2 and len(coords) and np.ptp(coords[:, :-2], axis=0).any():
        raise UnsupportedFeatureError(
            f"points layer {meta.get('name')!r} has points in different frames; DeepCell Label spots are (y, x) only",
            hint="keep the points of one frame, or drop their frame coordinate",
        )
    columns: dict[str, list[Any]] = {}
    features = meta.get("features")
    if features is not None and len(getattr(features, "columns", ())):
        for name in features.columns:
            columns[str(name)] = [_plain(v) for v in features[name].tolist()]
    return Spots(x=coords[:, -1].tolist(), y=coords[:, -2].tolist(), columns=columns)


def _plain(value: Any) -> Any:
    """A table value as a plain Python value; missing ones (NaN, NA, None) as ``None``."""
    import pandas as pd

    try:
        if value is None or pd.isna(value):
            return None
    except (TypeError, ValueError):  # not a scalar: kept as it is
        pass
    return value.item() if hasattr(value, "item") else value


def _divisions(data: Any, meta: dict[str, Any]) -> list[Division]:
    import numpy as np

    rows = np.asarray(data, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] < 4:
        raise UnsupportedFeatureError(
            f"tracks layer {meta.get('name')!r} of shape {rows.shape} is not rows of [track_id, t, (z), y, x]"
        )
    first: dict[int, int] = {}
    for track, t in zip(rows[:, 0].astype(np.int64).tolist(), rows[:, 1].tolist()):
        first[track] = min(first.get(track, int(t)), int(t))
    daughters: dict[int, list[int]] = {}
    for child, parents in (meta.get("graph") or {}).items():
        parents = _as_list(parents)
        if len(parents) > 1:
            raise UnsupportedFeatureError(
                f"track {child} of layer {meta.get('name')!r} has {len(parents)} parents {parents}; "
                "DeepCell Label divisions have one parent",
            )
        for parent in parents:
            daughters.setdefault(int(parent), []).append(int(child))
    out = []
    for parent, kids in sorted(daughters.items()):
        kids = sorted(set(kids))
        starts = [first[k] for k in kids if k in first]
        if not starts:
            continue
        out.append(Division(parent=parent, daughters=kids, t=min(starts)))
    return out


def _as_list(value: Any) -> list[int]:
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        return [int(v) for v in value]
    return [int(value)]


def one_line(exc: DLFormatsError) -> str:
    """The error as one line, for a notification."""
    return " ".join(str(exc).split())
