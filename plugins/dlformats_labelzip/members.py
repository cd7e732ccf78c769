"""Decoding the TIFF members of a label zip (one TIFF, or a batch/feature stack of TIFFs), and default axes.

``.npy`` members are read with :func:`dlformats.containers.npyio.from_member`.  Everything is
read from the archive in place or in memory (never extracted).  Declared sizes
(the TIFF tags) are checked against :class:`dlformats.Limits` before pixels are
allocated.  numpy and tifffile are imported inside functions so
that importing the plugin stays light.
"""

from __future__ import annotations

import io
import re
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dlformats.errors import (
    AmbiguousInputError,
    CorruptFileError,
    InconsistentDataError,
    InvalidOptionError,
    UnsupportedFeatureError,
    usage,
)

if TYPE_CHECKING:
    from dlformats.containers.archive import SafeZip
    from dlformats.sources import Source

STACK_NAME = re.compile(r"batch_([0-9]+)_feature_([0-9]+)\.tiff?\Z", re.IGNORECASE)
"""``<anything>batch_<b>_feature_<f>.tif(f)``: one plane of a batch/feature stack."""

DEFAULT_AXES = {2: "YX", 3: "BYX", 4: "BYXC", 5: "BTYXC"}
"""Axis order assumed for a single ``.npy`` or plain TIFF by number of dimensions
(DeepCell's channels-last layouts; B = frames, C = features)."""


def default_axes(shape: tuple[int, ...], *, path: str, member: str) -> str:
    """The documented default axis order for an array of ``shape``; raise if there is none."""
    axes = DEFAULT_AXES.get(len(shape))
    if axes is None:
        raise UnsupportedFeatureError(
            f"labels of shape {shape} have {len(shape)} dimensions; no default axis order",
            path=path,
            member=member,
            hint=f"give the axis order with {usage('axes', value='AXES', labels=True)}, letters TZBCSYX",
        )
    return axes


# ----------------------------------------------------------------- TIFF
@dataclass(frozen=True)
class TiffInfo:
    """Shape and dtype of a TIFF's chosen series."""

    shape: tuple[int, ...]
    dtype: Any


def _open(archive: SafeZip, member: str) -> Any:
    """Open a TIFF member with :func:`dlformats.containers.tiffio.open_tiff`: in place when stored uncompressed."""
    from dlformats.containers.tiffio import open_tiff

    name, limits = archive.source.name, archive.limits
    stored = archive.stored_range(member)
    if stored is not None and archive.source.file is not None:
        handle = archive.source.open()  # the archive's own open file: the same version of it
        offset, size = stored
        return open_tiff(handle, name=name, member=member, limits=limits, offset=offset, size=size, own=True)
    return open_tiff(io.BytesIO(archive.read(member)), name=name, member=member, limits=limits)


def _series(tif: Any, where: dict[str, str], index: int | None) -> Any:
    series = tif.series
    if index is not None:
        if not 0 <= index < len(series):
            raise InvalidOptionError(f"series {index} out of range 0..{len(series) - 1}", **where)
        return series[index]
    if len(series) > 1:
        shapes = [tuple(int(n) for n in s.shape) for s in series]
        raise AmbiguousInputError(
            f"the TIFF holds {len(series)} images of shapes {shapes}",
            option="series",
            choices=list(range(len(series))),
            hint=f"pick one with {usage('option', 'series')}",
            **where,
        )
    return series[0]


def tiff_info(archive: SafeZip, member: str) -> TiffInfo:
    """Shape and dtype of a TIFF member's only series, without decoding pixels."""
    import numpy as np

    where = {"path": archive.source.name, "member": member}
    with _open(archive, member) as tif:
        s = _series(tif, where, None)
        return TiffInfo(tuple(int(n) for n in s.shape), np.dtype(s.dtype))


def tiff_plane(archive: SafeZip, member: str) -> Any:
    """Decode a one-plane TIFF member (length-1 axes allowed) as a 2-D numpy array."""
    from dlformats.containers.tiffio import series_array

    where = {"path": archive.source.name, "member": member}
    with _open(archive, member) as tif:
        s = _series(tif, where, None)
        plane_2d(tuple(int(n) for n in s.shape), where)
        data = series_array(s, name=archive.source.name, member=member, limits=archive.limits)[...]
    return data.reshape(data.shape[-2:])


def tiff_series(archive: SafeZip, member: str, series: int | None) -> tuple[Any, str | None]:
    """A TIFF member's series as a lazy array, and its axes when the file's metadata names them.

    Only OME and ImageJ files name their axes; a plain TIFF's axes are left to the caller.
    """
    from dlformats.containers.tiffio import series_array, series_axes

    where = {"path": archive.source.name, "member": member}
    tif = _open(archive, member)
    try:
        s = _series(tif, where, series)
        array = series_array(s, name=archive.source.name, member=member, limits=archive.limits)
        axes = series_axes(s) if (tif.is_ome or tif.is_imagej) else None
    except BaseException:
        tif.close()
        raise
    weakref.finalize(array, tif.close)
    return array, axes


# ----------------------------------------------------- batch/feature stack
def plane_2d(shape: tuple[int, ...], where: dict[str, str]) -> tuple[int, int]:
    """``(height, width)`` of a stack member, which must be one plane (length-1 axes allowed)."""
    big = [n for n in shape if n != 1]
    if len(shape) < 2 or len(big) > 2:
        raise CorruptFileError(f"a batch/feature TIFF must hold one 2-D plane, found shape {shape}", **where)
    return (int(shape[-2]), int(shape[-1]))


class TiffStack:
    """Many one-plane TIFF members seen as one ``(features, batches, height, width)`` array.

    ``members[(f, b)]`` names the member holding feature ``f`` of batch ``b``
    (indices from 0, already put in numeric order).  Members are decoded only
    when a plane is asked for, from an archive of ``source`` that the stack opens
    for itself and closes when it is garbage-collected.
    """

    def __init__(
        self, source: Source, members: dict[tuple[int, int], str], shape: tuple[int, int, int, int], dtype: Any
    ) -> None:
        from dlformats.containers.archive import SafeZip

        self._archive = SafeZip(source)
        weakref.finalize(self, self._archive.close)
        self._lock = threading.Lock()  # the archive reads through one handle: one plane at a time
        self._members = members
        self.shape = shape
        self.dtype = dtype
        self.ndim = 4

    def __getitem__(self, key: tuple[Any, ...]) -> Any:
        import numpy as np

        f, b = key[0], key[1]
        member = self._members[(int(f), int(b))]
        where = {"path": self._archive.source.name, "member": member}
        with self._lock:
            plane = tiff_plane(self._archive, member)
        height, width = plane.shape
        if (height, width) != self.shape[2:]:
            raise InconsistentDataError(
                f"plane of {height}x{width} pixels, other planes are {self.shape[2]}x{self.shape[3]}", **where
            )
        return np.asarray(plane).reshape(height, width)[key[2:]]
