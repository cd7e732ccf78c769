"""One TIFF per frame: reading a frame file safely, and a lazy stack over a sequence of them."""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlformats import CorruptFileError, Limits, UnsupportedFeatureError


def signature(path: Path) -> tuple[int, int, int]:
    """What tells a file was replaced or changed: inode, size, modification time (ns)."""
    st = path.stat()
    return (st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass
class FrameFile:
    """The file of one frame (or, for 3-D ground truth, files of single slices) and its signature."""

    path: Path | None
    stamp: tuple[int, int, int] | None = None
    slices: dict[int, Path] = field(default_factory=dict)
    slice_stamps: dict[int, tuple[int, int, int]] = field(default_factory=dict)


def read_tiff(path: Path, limits: Limits, *, labels: bool) -> tuple[Any, str]:
    """Read one frame TIFF whole: ``(array, axes)`` with axes ``"YX"`` or ``"ZYX"`` (and ``C``, ``S`` for images).

    A leading axis of a plain multi-page file (tifffile calls it a sequence) is depth; so is a leading
    sample or channel axis of a mask (3 or 4 slices saved as planar RGB). Labels must be ``YX`` or
    ``ZYX``: samples last (an RGB mask) raise :class:`UnsupportedFeatureError`.
    """
    import numpy as np

    from dlformats.containers import tiffio

    name = str(path)
    tif = tiffio.open_tiff(path, name=name, limits=limits)
    try:
        series = tif.series[0]
        axes = tiffio.series_axes(series)
        array = tiffio.series_array(series, name=name, limits=limits)
        frame_axes = [a for a in axes if a in "TZB"]
        if len(frame_axes) > 1:
            raise UnsupportedFeatureError(
                f"a frame file holds one frame: axes {axes} of shape {array.shape} have several depth axes",
                path=name,
            )
        axes = axes.replace(frame_axes[0], "Z") if frame_axes else axes
        if labels and axes in ("SYX", "CYX"):
            axes = "ZYX"  # a 3-slice mask saved as planar RGB: masks have no samples, the peers read slices
        if labels and axes not in ("YX", "ZYX"):
            raise UnsupportedFeatureError(
                f"a mask must be YX or ZYX; this one has axes {axes} of shape {array.shape}", path=name
            )
        limits.check("array_bytes", math.prod(array.shape) * array.dtype.itemsize, "frame too large", path=name)
        data = np.asarray(array[...])
    finally:
        tif.close()
    return data, axes


class FrameStack:
    """A lazy ``(features, frames, Z, *frame axes)`` array over one TIFF per frame.

    ``files[f][t]`` is the :class:`FrameFile` of feature ``f`` at frame ``t`` (``None``: all zeros,
    as in the frames ground truth leaves unsegmented). Files are read whole, one frame at a time;
    the last frame read is kept (the planes of a 3-D frame are asked for one by one). A file that
    changed since it was first read raises :class:`CorruptFileError`: a read is one snapshot.
    Safe to share between threads.
    """

    def __init__(
        self,
        files: list[list[FrameFile | None]],
        frame_shape: tuple[int, ...],
        dtype: Any,
        *,
        labels: bool,
        limits: Limits,
        name: str,
    ) -> None:
        import numpy as np

        self._files = files
        self._frame_shape = tuple(frame_shape)
        self.shape = (len(files), len(files[0]), *self._frame_shape)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)
        self._labels = labels
        self._limits = limits
        self.name = name
        self._lock = threading.Lock()
        self._last: tuple[tuple[int, int], Any] | None = None

    def __repr__(self) -> str:
        return f"FrameStack(shape={self.shape}, dtype={self.dtype}, from {self.name})"

    def frame(self, f: int, t: int) -> Any:
        """The whole frame ``t`` of feature ``f``, shaped like ``frame_shape``, in :attr:`dtype`."""
        import numpy as np

        with self._lock:
            if self._last is not None and self._last[0] == (f, t):
                return self._last[1]
        entry = self._files[f][t]
        if entry is None:
            data = np.zeros(self._frame_shape, self.dtype)
        elif entry.path is not None:
            _unchanged(entry.path, entry.stamp)
            data, _ = read_tiff(entry.path, self._limits, labels=self._labels)
            if data.shape == self._frame_shape[1:] and self._frame_shape[0] == 1:
                data = data[None]  # a 2-D frame in a stack of frames with one slice
            if data.shape != self._frame_shape:
                raise CorruptFileError(
                    f"holds shape {data.shape}, unlike the frames before {self._frame_shape}", path=str(entry.path)
                )
            data = data.astype(self.dtype, copy=False)
        else:
            data = np.zeros(self._frame_shape, self.dtype)
            for z, path in sorted(entry.slices.items()):
                _unchanged(path, entry.slice_stamps.get(z))
                plane, _ = read_tiff(path, self._limits, labels=self._labels)
                if plane.shape != self._frame_shape[1:]:
                    raise CorruptFileError(
                        f"a slice of shape {plane.shape}, unlike the frames' {self._frame_shape[1:]}", path=str(path)
                    )
                data[z] = plane
        with self._lock:
            self._last = ((f, t), data)
        return data

    def __getitem__(self, key: Any) -> Any:
        if not isinstance(key, tuple):
            key = (key,)
        f, t, *rest = key
        return self.frame(int(f), int(t))[tuple(rest)]


def _unchanged(path: Path, stamp: tuple[int, int, int] | None) -> None:
    try:
        now = signature(path)
    except OSError as exc:
        raise CorruptFileError(f"the frame file disappeared since it was read: {exc.strerror}", path=str(path)) from exc
    if stamp is not None and now != stamp:
        raise CorruptFileError("the frame file changed since the folder was read; read it again", path=str(path))


def list_dir(folder: Path, limits: Limits) -> list[str]:
    """The names in ``folder``, at most ``limits.archive_entries`` of them."""
    names = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                names.append(entry.name)
                limits.check("archive_entries", len(names), "too many files in the folder", path=str(folder))
    except OSError as exc:
        raise CorruptFileError(f"cannot list the folder: {exc.strerror or exc}", path=str(folder)) from exc
    return names
