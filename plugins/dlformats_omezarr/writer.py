"""Writing a project as an OME-Zarr store, plane by plane (see the package docstring for the layout)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlformats.errors import DLFormatsError, InvalidOptionError, UnsupportedFeatureError, environment_error

from .reader import SIDECAR_KEY, SIDECAR_VERSION

if TYPE_CHECKING:
    from dlformats.model import Project
    from dlformats.spec import WriteOptions

DEFAULT_LEVELS = {"zstd": 1, "blosc": 5, "gzip": 1}
PREFETCH = 3  # planes read ahead of the one being compressed and written
BATCH_BYTES = 32 << 20  # planes written in one zarr assignment (their chunks are compressed in parallel)
MAX_BATCH = 8


def write_store(project: Project, path: Path, options: WriteOptions, opts: dict[str, Any]) -> None:
    """Fill the empty folder ``path`` with ``project`` as OME-Zarr ``opts["version"]``."""
    try:
        _write(project, path, options, opts)
    except DLFormatsError:
        raise
    except OSError as exc:
        err = environment_error(exc, path=str(path), doing="writing the OME-Zarr store")
        if err is None:
            raise
        raise err from exc


class _Layout:
    """Axes, shapes and chunking shared by the image and the label images."""

    def __init__(self, project: Project, opts: dict[str, Any]) -> None:
        ref = project.X if project.X is not None else project.y
        _, self.frames, self.height, self.width = (int(s) for s in ref.shape)
        self.zframes = project.frame_axis == "Z"
        self.version = opts["version"]
        self.zarr_format = 3 if self.version == "0.5" else 2
        if self.zframes:  # (c, z, y, x)
            self.axes = [("c", "channel"), ("z", "space"), ("y", "space"), ("x", "space")]
        else:  # (t, c, y, x): time first, as NGFF requires; batch frames are written as time
            self.axes = [("t", "time"), ("c", "channel"), ("y", "space"), ("x", "space")]
        self.names = [n for n, _ in self.axes]
        factor = opts["downscale"]
        self.factor = factor
        self.sizes: list[tuple[int, int]] = []
        for level in range(opts["levels"]):
            scale = factor**level
            h, w = math.ceil(self.height / scale), math.ceil(self.width / scale)
            if level and (h < 2 or w < 2) and (self.height >= 2 and self.width >= 2):
                raise InvalidOptionError(
                    f"levels={opts['levels']} with downscale={factor} shrinks a {self.height} x {self.width} "
                    f"plane below 2 pixels at level {level}",
                    hint=f"use levels={max(1, level)} or fewer",
                )
            self.sizes.append((h, w))
        self.edge = opts["chunks"]
        self.codec = opts["compression"]
        self.codec_level = opts["compression_level"]
        if self.codec_level is None:
            self.codec_level = DEFAULT_LEVELS.get(self.codec, 0)
        if self.codec in ("gzip", "blosc") and self.codec_level > 9:
            raise InvalidOptionError(f"compression_level={self.codec_level} is above 9, the most {self.codec} takes")

    def shape(self, channels: int, level: int) -> tuple[int, ...]:
        h, w = self.sizes[level]
        return (channels, self.frames, h, w) if self.zframes else (self.frames, channels, h, w)

    def chunks(self, level: int) -> tuple[int, ...]:
        h, w = self.sizes[level]
        return (1, 1, min(h, self.edge), min(w, self.edge))

    def compressors(self) -> Any:
        if self.codec == "none":
            return None
        if self.zarr_format == 3:
            from zarr.codecs import BloscCodec, GzipCodec, ZstdCodec

            if self.codec == "zstd":
                return [ZstdCodec(level=self.codec_level)]
            if self.codec == "gzip":
                return [GzipCodec(level=self.codec_level)]
            return [BloscCodec(cname="zstd", clevel=self.codec_level, shuffle="shuffle")]
        import numcodecs

        if self.codec == "zstd":
            return [numcodecs.Zstd(level=self.codec_level)]
        if self.codec == "gzip":
            return [numcodecs.GZip(level=self.codec_level)]
        return [numcodecs.Blosc(cname="zstd", clevel=self.codec_level, shuffle=numcodecs.Blosc.SHUFFLE)]

    def create(self, group: Any, channels: int, dtype: Any) -> list[Any]:
        """The level arrays ``0``, ``1``... of a multiscale image in ``group``."""
        arrays = []
        for level in range(len(self.sizes)):
            kwargs: dict[str, Any] = {}
            if self.zarr_format == 3:
                kwargs["dimension_names"] = self.names
            else:
                kwargs["chunk_key_encoding"] = {"name": "v2", "separator": "/"}  # NGFF 0.4 requires "/"
            arrays.append(
                group.create_array(
                    str(level),
                    shape=self.shape(channels, level),
                    dtype=dtype,
                    chunks=self.chunks(level),
                    compressors=self.compressors(),
                    filters=None,
                    fill_value=0,
                    **kwargs,
                )
            )
        return arrays

    def multiscale(self, name: str) -> dict[str, Any]:
        scales = [[1.0, 1.0, float(self.factor**k), float(self.factor**k)] for k in range(len(self.sizes))]
        entry: dict[str, Any] = {
            "name": name,
            "axes": [{"name": n, "type": kind} for n, kind in self.axes],
            "datasets": [
                {"path": str(k), "coordinateTransformations": [{"type": "scale", "scale": scale}]}
                for k, scale in enumerate(scales)
            ],
        }
        if self.zframes:
            entry["datasets"] = [
                {**d, "coordinateTransformations": [{"type": "scale", "scale": [1.0, *s[1:]]}]}
                for d, s in zip(entry["datasets"], scales)
            ]
        if self.zarr_format == 2:
            entry["version"] = "0.4"
        return entry

    def attributes(self, ome: dict[str, Any]) -> dict[str, Any]:
        """OME attributes as the version stores them: under ``ome`` (0.5) or at the top (0.4)."""
        if self.zarr_format == 3:
            return {"ome": {"version": "0.5", **ome}}
        return ome


def _image_dtype(project: Project) -> Any:
    dtype = np.dtype(project.X.dtype)
    if dtype.kind not in "biuf" or dtype.itemsize > 8:
        raise UnsupportedFeatureError(f"OME-Zarr images here are bool, integers or floats, not {dtype}")
    return dtype.newbyteorder("=")


def _down_image(plane: Any, factor: int) -> Any:
    """The mean of each ``factor`` x ``factor`` block (edges repeated), in the plane's dtype."""
    h, w = plane.shape
    H, W = math.ceil(h / factor), math.ceil(w / factor)
    padded = np.pad(plane, ((0, H * factor - h), (0, W * factor - w)), mode="edge")
    work = np.float32 if plane.dtype.itemsize <= 2 and plane.dtype.kind != "f" else np.float64
    mean = padded.reshape(H, factor, W, factor).astype(work).mean(axis=(1, 3))
    if plane.dtype.kind == "b":
        return mean >= 0.5
    if plane.dtype.kind in "iu":
        info = np.iinfo(plane.dtype)
        return np.clip(np.rint(mean), info.min, info.max).astype(plane.dtype)
    return mean.astype(plane.dtype)


def _down_labels(plane: Any, factor: int) -> Any:
    """The top-left pixel of each ``factor`` x ``factor`` block: labels are never averaged."""
    return np.ascontiguousarray(plane[::factor, ::factor])


def safe_names(features: list[str], count: int) -> list[str]:
    """A path-safe, unique label image name per feature (the exact names go to the dlformats key)."""
    out: list[str] = []
    for i in range(count):
        name = features[i] if i < len(features) else ""
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or f"feature_{i}"
        base, n = name, 2
        while name.lower() in {o.lower() for o in out}:
            name, n = f"{base}_{n}", n + 1
        out.append(name)
    return out


def _write(project: Project, path: Path, options: WriteOptions, opts: dict[str, Any]) -> None:
    import zarr
    from zarr.storage import LocalStore

    from dlformats.containers import codecs
    from dlformats.model import CellTable, plan_export, present_values

    if project.X is None and project.y is None:
        raise InvalidOptionError("the project has neither an image nor labels to write", path=str(path))
    layout = _Layout(project, opts)
    channels = project.num_channels
    features = int(project.y.shape[0]) if project.y is not None else 0
    total = (channels + features) * layout.frames
    done = 0
    root = zarr.open_group(store=LocalStore(path), mode="w", zarr_format=layout.zarr_format)

    omero: list[dict[str, Any]] = []
    if project.X is not None:
        dtype = _image_dtype(project)
        arrays = layout.create(root, channels, dtype)
        for c in range(channels):
            low, high = math.inf, -math.inf
            batch = _Batch(arrays, layout, c, dtype, _down_image)
            for t, plane in _frames(project.image_frame, c, layout.frames):
                plane = np.ascontiguousarray(plane, dtype=dtype)
                if plane.size:
                    low, high = min(low, _finite(plane, np.nanmin)), max(high, _finite(plane, np.nanmax))
                done += batch.add(t, plane)
                options.report(done, total)
            done += batch.flush()
            options.report(done, total)
            omero.append(_omero_channel(project, c, dtype, low, high))

    names = safe_names(project.features, features)
    listed = project.listed_cells
    plan = plan_export(listed) if listed is not None and project.y is not None else None
    derived: list[tuple[Any, int, int]] = []
    if project.y is not None:
        labels_group = root if project.X is None else root.create_group("labels")
        for c, name in enumerate(names):
            group = labels_group.create_group(name)
            batch = _Batch(layout.create(group, 1, np.int32), layout, 0, np.dtype(np.int32), _down_labels)
            for t, plane in _frames(project.label_frame, c, layout.frames):
                if plan is not None:
                    plane = plan.apply(plane, c, t)
                else:  # no cells: every positive value is its own cell; negatives become 0
                    plane = np.maximum(plane, 0, dtype=np.int32) if plane.size and plane.min() < 0 else plane
                    derived.append((present_values(plane), t, c))
                done += batch.add(t, np.ascontiguousarray(plane, dtype=np.int32))
                options.report(done, total)
            done += batch.flush()
            options.report(done, total)
            label_meta: dict[str, Any] = {"version": layout.version}
            if project.X is not None:
                label_meta["source"] = {"image": "../../"}
            group.attrs.update(layout.attributes({"multiscales": [layout.multiscale(name)], "image-label": label_meta}))
        labels_group.attrs.update(layout.attributes({"labels": names}))

    side: dict[str, Any] = {
        "version": SIDECAR_VERSION,
        "frame_axis": project.frame_axis,
        "channels": list(project.channels),
        "features": list(project.features),
        "labels": names,
        "sources": {part: vars(p) for part, p in project.provenance.items()},
    }
    if project.y is not None:
        cells = plan.cells if plan is not None else _derived_cells(derived, CellTable)
        side["cells"] = {k: getattr(cells, k).tolist() for k in ("value", "cell", "t", "c")}
    import json

    side["divisions"] = json.loads(codecs.divisions_to_json(project.divisions))
    side["cellTypes"] = json.loads(codecs.cell_types_to_json(project.cell_types))
    embeddings = project.embeddings
    side["embeddings"] = json.loads(codecs.embeddings_to_json(embeddings)) if embeddings is not None else None
    side["spots"] = codecs.spots_to_csv(project.spots).decode("utf-8") if project.spots is not None else None
    attrs: dict[str, Any] = {}
    if project.X is not None:
        ome = {"multiscales": [layout.multiscale("image")], "omero": {"channels": omero}}
        if layout.zarr_format == 2:
            ome["omero"]["version"] = "0.4"
        attrs.update(layout.attributes(ome))
    attrs[SIDECAR_KEY] = side
    with zarr.config.set({"json_indent": None}):  # the dlformats key may list a million cells: no indentation
        root.attrs.update(attrs)


class _Batch:
    """Consecutive planes of one channel, written together at every level.

    zarr compresses the chunks of one assignment on several threads, so a few planes
    (up to :data:`BATCH_BYTES`) are gathered before each write; each level is shrunk from
    the one above it.
    """

    def __init__(self, arrays: list[Any], layout: _Layout, c: int, dtype: Any, down: Any) -> None:
        self.arrays, self.layout, self.c, self.down = arrays, layout, c, down
        plane_bytes = max(1, layout.height * layout.width * np.dtype(dtype).itemsize)
        self.size = max(1, min(MAX_BATCH, BATCH_BYTES // plane_bytes))
        self.planes: list[Any] = []
        self.first = 0

    def add(self, t: int, plane: Any) -> int:
        """Keep ``plane`` (frame ``t``); write the batch when full.  Returns the planes written."""
        if not self.planes:
            self.first = t
        self.planes.append(plane)
        return self.flush() if len(self.planes) >= self.size else 0

    def flush(self) -> int:
        planes, self.planes = self.planes, []
        if not planes:
            return 0
        stop = self.first + len(planes)
        index = (self.c, slice(self.first, stop)) if self.layout.zframes else (slice(self.first, stop), self.c)
        for level, array in enumerate(self.arrays):
            if level:
                planes = [self.down(p, self.layout.factor) for p in planes]
            array[index] = np.stack(planes)
        return len(planes)


def _finite(plane: Any, reduce: Any) -> float:
    if plane.dtype.kind == "f":
        finite = plane[np.isfinite(plane)]
        return float(reduce(finite)) if finite.size else math.nan
    return float(reduce(plane))


def _omero_channel(project: Project, c: int, dtype: Any, low: float, high: float) -> dict[str, Any]:
    """An omero channel: its name, a grey colour and a display window from the data's range."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = float(info.min), float(info.max)
    elif dtype.kind == "b":
        lo, hi = 0.0, 1.0
    else:
        lo, hi = (low, high) if math.isfinite(low) and math.isfinite(high) else (0.0, 1.0)
    start = low if math.isfinite(low) else lo
    end = high if math.isfinite(high) else hi
    channel: dict[str, Any] = {
        "color": "FFFFFF",
        "window": {"min": lo, "max": hi, "start": start, "end": end},
        "active": True,
    }
    name = project.channels[c] if c < len(project.channels) else ""
    if name:
        channel["label"] = name
    return channel


def _derived_cells(planes: list[tuple[Any, int, int]], table: Any) -> Any:
    """One cell per positive value per frame and feature (value = cell)."""
    if not planes:
        return table([], [], [], [])
    values = np.concatenate([v for v, _, _ in planes])
    t = np.concatenate([np.full(len(v), t) for v, t, _ in planes])
    c = np.concatenate([np.full(len(v), c) for v, _, c in planes])
    order = np.lexsort((values, c, t))
    return table(values[order], values[order], t[order], c[order])


def _frames(frame: Any, c: int, frames: int) -> Any:
    """``(t, frame(c, t))`` for every frame, read on a helper thread ahead of the caller.

    The source's decoding (a TIFF page, a zarr chunk) overlaps the compression and writing
    of the previous plane; at most :data:`PREFETCH` planes wait in memory.
    """
    from dlformats.arrays import prefetch

    return prefetch(((t, frame(c, t)) for t in range(frames)), PREFETCH, name="dlformats-omezarr-planes")
