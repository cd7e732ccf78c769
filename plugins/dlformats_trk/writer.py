"""Writing a project as a ``.trk``: gzip tar of ``lineage.json``, ``raw.npy``, ``tracked.npy``.

The arrays are streamed into the archive a frame at a time (never whole in memory).
"""

from __future__ import annotations

import io
import math
import tarfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dlformats import (
    Cell,
    DLFormatsWarning,
    InconsistentDataError,
    Project,
    UnsupportedFeatureError,
    WriteOptions,
)
from dlformats.containers.codecs import divisions_to_lineage
from dlformats.containers.jsonio import dump_json
from dlformats.containers.npyio import header_bytes
from dlformats.model import derive_cells, plan_export

from .reader import LINEAGE, RAW, TRACKED

COMPRESS_LEVEL = 6
"""gzip level: close to 9 in size on label masks, several times faster."""


def write(project: Project, path: Path, options: WriteOptions) -> None:
    """Write ``project`` as a ``.trk`` at ``path``.

    ``raw.npy`` is (frames, height, width, channels) in X's dtype (little-endian);
    zeros of one uint8 channel when the project has no image.  ``tracked.npy`` is
    (frames, height, width, 1) int32: the labels of one feature (option
    ``feature``, default 0) re-encoded so that each pixel holds its cell (DeepCell
    Label's export rule); a trk cannot express overlapping cells, so these are
    refused.  ``lineage.json`` comes from the cells and divisions, Python ints only.
    """
    import numpy as np

    if project.X is None and project.y is None:
        raise UnsupportedFeatureError("a trk needs an image or labels; the project has neither")
    feature = options.extra["feature"]  # a feature of the project: the core checked it (index_of)
    frames, (height, width) = project.num_frames, project.frame_shape
    # Cells derived from checked planes: label values int32 cannot hold are named, not planned.
    listed = project.listed_cells
    derived = listed if listed is not None else derive_cells(project, checked=True)
    cells = [c for c in derived if c.c == feature]
    _refuse_overlaps(cells)
    plan = plan_export(cells)
    lineage = divisions_to_lineage(plan.cells, project.divisions)
    if project.num_features > 1:
        warnings.warn(
            f"a trk holds one label feature; wrote feature {feature} of {project.num_features}",
            DLFormatsWarning,
            stacklevel=2,
        )

    channels = project.num_channels or 1
    raw_dtype = np.dtype(project.X.dtype if project.X is not None else np.uint8).newbyteorder("<")
    done = [0]
    total = 2 * frames

    def tick() -> None:
        done[0] += 1
        options.report(done[0], total)

    def raw_frames() -> Iterator[bytes]:
        for t in range(frames):
            if project.X is None:
                frame = np.zeros((height, width, 1), raw_dtype)
            else:
                planes = [_plane(project.image_frame(c, t), (height, width), "X", c, t) for c in range(channels)]
                frame = np.stack(planes, axis=-1).astype(raw_dtype, copy=False)
            yield frame.tobytes()
            tick()

    def tracked_frames() -> Iterator[bytes]:
        for t in range(frames):
            plane = _plane(project.label_frame(feature, t), (height, width), "y", feature, t)
            yield plan.apply(plane, feature, t).astype("<i4", copy=False).tobytes()
            tick()

    with tarfile.open(path, "w:gz", compresslevel=COMPRESS_LEVEL) as tar:
        _add(tar, LINEAGE, [dump_json(lineage)], None)
        raw_shape = (frames, height, width, channels)
        _add(tar, RAW, raw_frames(), (raw_shape, raw_dtype))
        _add(tar, TRACKED, tracked_frames(), ((frames, height, width, 1), np.dtype("<i4")))


def _refuse_overlaps(cells: list[Cell]) -> None:
    owners: dict[tuple[int, int], set[int]] = {}
    for c in cells:
        owners.setdefault((c.t, c.value), set()).add(c.cell)
    shared = sorted((key, sorted(ids)) for key, ids in owners.items() if len(ids) > 1)
    if shared:
        (t, value), ids = shared[0]
        raise UnsupportedFeatureError(
            f"a trk cannot express overlapping cells: value {value} in frame {t} encodes cells {ids}"
            + (f" ({len(shared) - 1} more such values)" if len(shared) > 1 else ""),
            hint="write a DeepCell Label project zip instead",
        )


def _plane(plane: Any, shape: tuple[int, int], part: str, c: int, t: int) -> Any:
    if tuple(plane.shape) != shape:
        raise InconsistentDataError(f"{part}[{c}, {t}] has shape {tuple(plane.shape)}, expected {shape}")
    return plane


def _add(tar: tarfile.TarFile, name: str, chunks: Any, array: tuple[tuple[int, ...], Any] | None) -> None:
    """Add member ``name`` from byte ``chunks``; with ``array=(shape, dtype)``, as an ``.npy`` of that array."""
    if array is None:
        data = b"".join(chunks)
        stream: Any = io.BytesIO(data)
        size = len(data)
    else:
        shape, dtype = array
        header = header_bytes(shape, dtype)
        size = len(header) + math.prod(shape) * dtype.itemsize
        stream = ChunkReader(_prefixed(header, chunks))
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(time.time())
    info.mode = 0o644
    tar.addfile(info, stream)


def _prefixed(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


class ChunkReader:
    """A read-only file object over a stream of byte chunks (what ``tarfile.addfile`` pulls from).

    Lets a member of known size be written a frame at a time, never whole in memory.
    """

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._current = b""
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        """Return up to ``size`` bytes (all that is left when ``size`` is negative)."""
        parts: list[bytes] = []
        need = size
        while need != 0:
            if self._pos >= len(self._current):
                nxt = next(self._chunks, None)
                if nxt is None:
                    break
                self._current, self._pos = nxt, 0
                continue
            end = len(self._current) if need < 0 else self._pos + need
            piece = self._current[self._pos : end]
            self._pos += len(piece)
            if need > 0:
                need -= len(piece)
            parts.append(piece)
        return b"".join(parts)
