"""Lazy views that put any array into DeepCell Label's axis order, a plane at a time.

Readers describe their array with an axis string (letters from
:data:`AXIS_LETTERS`) and get back a :class:`LazyArray` shaped
``(channels, frames, height, width)``:

* ``T`` (time), ``Z`` (depth) and ``B`` (batch) map to frames; only one of them may
  have more than one plane, unless ``select`` picks a plane of the others;
* ``C`` (channel) and ``S`` (sample, e.g. RGB) map to channels (C major when both
  are present);
* ``Y`` and ``X`` are height and width and must be present;
* axes of length 1 are dropped.

Nothing is read until a plane is asked for; ``LazyArray[c, t]`` reads one plane.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import (
    AmbiguousInputError,
    CorruptFileError,
    InconsistentDataError,
    InvalidOptionError,
    UnsupportedFeatureError,
    usage,
)

if TYPE_CHECKING:
    from .limits import Limits

AXIS_LETTERS = "TZBCSYX"
"""Axis letters accepted in ``axes=``: T time, Z depth, B batch, C channel, S sample, Y height, X width."""

_FRAME_AXES = "TZB"


def check_axes(axes: str, shape: tuple[int, ...], *, path: str | None = None, letters: str = AXIS_LETTERS) -> str:
    """Validate an axis string against ``shape``; return it upper-cased.

    Raises :class:`InvalidOptionError` showing the shape and the accepted letters
    when a letter is unknown or repeated, the count differs from the number of
    dimensions, or Y or X is missing.
    """
    up = axes.upper()
    accepted = ", ".join(f"{ch}" for ch in letters)
    hint = f"shape is {tuple(shape)}; give one letter per dimension from {accepted} (T, Z, B = frames; C, S = channels)"
    if len(up) != len(shape):
        raise InvalidOptionError(
            f"axes {axes!r} have {len(up)} letters for {len(shape)} dimensions", path=path, hint=hint
        )
    unknown = sorted(set(up) - set(letters))
    if unknown:
        raise InvalidOptionError(f"axes {axes!r}: unknown letters {unknown}", path=path, hint=hint)
    if len(set(up)) != len(up):
        raise InvalidOptionError(f"axes {axes!r}: a letter is repeated", path=path, hint=hint)
    if "Y" not in up or "X" not in up:
        raise InvalidOptionError(f"axes {axes!r} must include Y and X", path=path, hint=hint)
    return up


class NumpyLike:
    """``len()``, ``size`` and ``nbytes`` from ``shape`` and ``dtype``, as numpy arrays have them, for
    arrays read on demand (code written for numpy arrays asks for them)."""

    shape: tuple[int, ...]
    dtype: Any

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes of the whole array once read (``numpy.asarray``); never all in memory before."""
        return self.size * self.dtype.itemsize


class LazyArray(NumpyLike):
    """An array viewed as ``(channels, frames, height, width)``, read one plane at a time.

    Attributes:
        shape: ``(channels, frames, height, width)``.
        dtype: the numpy dtype of planes returned.  With ``labels=True``: int32, or
            int64, uint32 and uint64 kept whole (writers of int32 formats check them);
            float planes must hold whole numbers within int32 (else
            :class:`~dlformats.errors.CorruptFileError`).
        frame_axis: which source axis became frames (``"T"``, ``"Z"`` or ``"B"``).
        ndim, size, nbytes: as numpy's (4; elements; bytes once read).
        limits: when given, ``numpy.asarray(view)`` first checks the whole array's
            size against ``limits.array_bytes`` (planes are always allowed).
    """

    def __init__(
        self,
        source: Any,
        axes: str,
        *,
        select: Mapping[str, int] | None = None,
        dtype: Any = None,
        labels: bool = False,
        path: str | None = None,
        default_frame_axis: str = "T",
        limits: Limits | None = None,
    ) -> None:
        import numpy as np

        shape = tuple(int(s) for s in source.shape)
        axes = check_axes(axes, shape, path=path, letters=AXIS_LETTERS)
        if 0 in shape:
            # A zero-length axis holds no plane to show; indexing it would fail later, far from the file.
            raise UnsupportedFeatureError(f"array of shape {shape} (axes {axes}) holds no pixels", path=path)
        self.path = path
        select = {k.upper(): int(v) for k, v in (select or {}).items()}
        for letter, index in select.items():
            if letter in ("Y", "X"):
                raise InvalidOptionError(
                    f"select cannot pick a plane of axis {letter}: Y and X are the plane itself",
                    path=path,
                    hint="select picks one index of a T, Z, B, C or S axis, e.g. select={'Z': 0}",
                )
            if letter not in axes:
                raise InvalidOptionError(f"select names axis {letter!r}, absent from axes {axes}", path=path)
            size = shape[axes.index(letter)]
            if not 0 <= index < size:
                raise InvalidOptionError(f"select {letter}={index} out of range 0..{size - 1}", path=path)
        sizes = dict(zip(axes, shape))
        frame_axes = [a for a in _FRAME_AXES if a in axes and sizes[a] > 1 and a not in select]
        if len(frame_axes) > 1:
            first, second = frame_axes[:2]
            raise AmbiguousInputError(
                f"axes {axes} of shape {shape} have {sizes[first]} {first} and {sizes[second]} {second} planes; "
                "DeepCell Label has one frames axis",
                option="select",
                choices=[f"{a}=0..{sizes[a] - 1}" for a in frame_axes],
                path=path,
                hint=f"keep one plane of one axis, e.g. {usage('select', second, 0)}",
            )
        self.frame_axis = frame_axes[0] if frame_axes else default_frame_axis
        self._frame = frame_axes[0] if frame_axes else None
        self._chan = [a for a in "CS" if a in axes and sizes[a] > 1 and a not in select]
        self._fixed = {
            a: (select[a] if a in select else 0) for a in axes if a not in ("Y", "X", self._frame, *self._chan)
        }
        self._axes = axes
        self._source = source
        self._sizes = sizes
        nchan = 1
        for a in self._chan:
            nchan *= sizes[a]
        self.shape = (nchan, sizes[self._frame] if self._frame else 1, sizes["Y"], sizes["X"])
        src_dtype = np.dtype(source.dtype)
        if labels:
            if src_dtype.kind not in "biuf":
                raise UnsupportedFeatureError(f"labels of dtype {src_dtype} are not supported", path=path)
            from .model import label_dtype

            # int64, uint32 and uint64 labels are kept whole: writers of int32 formats check them
            self.dtype = label_dtype(src_dtype, wide=True)
        else:
            if src_dtype.kind not in "biuf":
                raise UnsupportedFeatureError(f"images of dtype {src_dtype} are not supported", path=path)
            self.dtype = np.dtype(dtype) if dtype is not None else src_dtype.newbyteorder("=")
        self._labels = labels
        self.limits = limits
        self.ndim = 4

    def _source_index(self, c: int, t: int) -> tuple[Any, ...]:
        index: list[Any] = []
        rem = c
        chan_index: dict[str, int] = {}
        for a in reversed(self._chan):
            chan_index[a] = rem % self._sizes[a]
            rem //= self._sizes[a]
        for a in self._axes:
            if a in ("Y", "X"):
                index.append(slice(None))
            elif a == self._frame:
                index.append(t)
            elif a in chan_index:
                index.append(chan_index[a])
            else:
                index.append(self._fixed[a])
        return tuple(index)

    def plane(self, c: int, t: int) -> Any:
        """Return the ``(height, width)`` numpy plane of channel ``c`` at frame ``t``."""
        import numpy as np

        if not (0 <= c < self.shape[0] and 0 <= t < self.shape[1]):
            raise IndexError(f"plane ({c}, {t}) out of range for shape {self.shape}")
        plane = np.asarray(self._source[self._source_index(c, t)])
        if self._axes.index("Y") > self._axes.index("X"):
            plane = plane.T
        return self._convert(plane)

    def plane_extent(self, c: int, t: int) -> tuple[int, int, int, Any] | None:
        """Where plane ``(c, t)`` lies in a file, byte for byte: ``(descriptor, offset, nbytes, dtype)``
        with ``dtype`` the file's (byte order included), or ``None`` (labels, a transposed plane,
        a source that reads by decoding).  A writer whose output holds the same bytes may copy
        them file to file instead of reading the plane."""
        if not (0 <= c < self.shape[0] and 0 <= t < self.shape[1]):
            raise IndexError(f"plane ({c}, {t}) out of range for shape {self.shape}")
        extent = getattr(self._source, "extent", None)
        if self._labels or extent is None or self._axes.index("Y") > self._axes.index("X"):
            return None
        return extent(self._source_index(c, t))

    def _convert(self, plane: Any) -> Any:
        if not self._labels:
            return plane.astype(self.dtype, copy=False)
        from .model import checked_labels

        try:
            return checked_labels(plane, negatives=True, wide=True).astype(self.dtype, copy=False)
        except InconsistentDataError as exc:  # float labels: the file holds what no label can be
            raise CorruptFileError(exc.reason, path=self.path) from exc

    def __getitem__(self, key: Any) -> Any:
        import numpy as np

        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (4 - len(key))
        if len(key) > 4:
            raise IndexError("too many indices")
        # range() turns slices into indices and negative integers into positive ones, like numpy.
        cs = range(self.shape[0])[key[0]]
        ts = range(self.shape[1])[key[1]]
        if isinstance(cs, range) or isinstance(ts, range):
            clist = cs if isinstance(cs, range) else [cs]
            tlist = ts if isinstance(ts, range) else [ts]
            out = (
                np.stack([np.stack([self.plane(c, t)[key[2], key[3]] for t in tlist]) for c in clist])
                if len(clist) and len(tlist)
                else np.empty((len(clist), len(tlist), 0, 0), self.dtype)
            )
            if not isinstance(ts, range):
                out = out[:, 0]
            if not isinstance(cs, range):
                out = out[0]
            return out
        return self.plane(cs, ts)[key[2], key[3]]

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        import numpy as np

        if self.limits is not None:
            self.limits.check(
                "array_bytes", _nbytes(self.shape, self.dtype), "array too large to hold in memory", path=self.path
            )
        out = np.empty(self.shape, self.dtype)
        for c in range(self.shape[0]):
            for t in range(self.shape[1]):
                out[c, t] = self.plane(c, t)
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return f"LazyArray(shape={self.shape}, dtype={self.dtype}, from axes {self._axes!r})"


def _nbytes(shape: tuple[int, ...], dtype: Any) -> int:
    """Bytes an array of ``shape`` and ``dtype`` would take (Python ints: no overflow)."""
    import math

    import numpy as np

    return math.prod(int(s) for s in shape) * np.dtype(dtype).itemsize


_T = TypeVar("_T")


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetch(items: Iterable[_T], depth: int = 3, *, name: str = "dlformats-prefetch") -> Iterator[_T]:
    """``items`` in order, produced on a helper thread at most ``depth`` ahead of the caller.

    For writers: the next planes are read and computed (numpy and most codecs release the
    GIL) while the caller compresses and writes the current one.  An exception raised while
    producing an item is raised here, in its place.  Closing the iterator early (a ``break``,
    an error in the caller) stops the helper thread before this returns.
    """
    import queue
    import threading

    pending: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                pending.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put(_Failed(exc))
            return
        put(end)

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while (item := pending.get()) is not end:
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join()


__all__ = ["AXIS_LETTERS", "LazyArray", "NumpyLike", "check_axes", "prefetch"]
