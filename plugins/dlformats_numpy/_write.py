"""Writers of ``.npy`` and ``.npz`` in DeepCell's channels-last layout, streamed frame by frame."""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlformats.containers.npyio import NUMERIC_KINDS, write_npy
from dlformats.errors import UnsupportedFeatureError

if TYPE_CHECKING:
    from dlformats.model import Project
    from dlformats.spec import WriteOptions


def _image_dtype(project: Project) -> Any:
    import numpy as np

    dtype = np.dtype(project.X.dtype)
    if dtype.kind not in NUMERIC_KINDS or dtype.fields is not None:
        raise UnsupportedFeatureError(f"cannot write an image of dtype {dtype} (accepted: bool, int, uint, float)")
    return dtype


def _label_plane(project: Project) -> tuple[Any, Callable[[int, int], Any]]:
    """The dtype of the label planes written, and the planes.

    When the project lists cells, as DeepCell Label exports them: int32, each value
    its cell (values int32 cannot hold, or negative ones, are refused by name).
    Without cells, the labels as they are: int64, uint32 and uint64 keep their type
    (npy holds them), other types become int32 (checked; negative values kept).
    """
    import numpy as np

    from dlformats.model import label_dtype, plan_export

    if project.listed_cells is None:
        dtype = label_dtype(project.y.dtype, wide=True)
        wide = dtype != np.int32  # planes of any other type are cast to int32, checked
        return dtype, lambda c, t: project.label_frame(c, t, negatives=True, wide=wide)
    plan = plan_export(project.listed_cells)
    return np.dtype(np.int32), lambda c, t: plan.apply(project.label_frame(c, t), c, t)


def _counted(blocks: Iterator[Any], options: WriteOptions, done: list[int], total: int) -> Iterator[Any]:
    for block in blocks:
        yield block
        done[0] += 1
        options.report(done[0], total)


def _channels_last_shape(array: Any) -> tuple[int, int, int, int]:
    c, f, h, w = (int(s) for s in array.shape)
    return (f, h, w, c)


def write_npy_file(project: Project, path: Path, options: WriteOptions) -> None:
    """Write ``X`` (option ``part="y"``: the labels, see :func:`_label_plane`) as one ``(frames, H, W, C)`` npy."""

    part = options.extra["part"]
    array = project.X if part == "X" else project.y
    if array is None:
        raise UnsupportedFeatureError(f"the project has no {'image' if part == 'X' else 'labels'} to write")
    if part == "X":
        dtype, plane = _image_dtype(project), None
    else:
        dtype, plane = _label_plane(project)
    blocks = _counted(frames_last(array, dtype, plane), options, [0], int(array.shape[1]))
    with open(path, "wb") as out:
        write_npy(out, _channels_last_shape(array), dtype, blocks)


def write_npz_file(project: Project, path: Path, options: WriteOptions) -> None:
    """Write ``X.npy`` ``(frames, H, W, C)``, ``y.npy`` ``(frames, H, W, features)`` and the names.

    ``y`` is int32, or int64, uint32 or uint64 labels as they are when the project
    lists no cells (see :func:`_label_plane`).

    Option ``compress`` (default true) deflates the members; ``compress=false`` stores
    them, so that readers (dlformats, ``np.load(mmap_mode=...)`` on extracted members)
    can map them without decompressing.
    """
    import numpy as np

    method = zipfile.ZIP_DEFLATED if options.extra["compress"] else zipfile.ZIP_STORED
    arrays: list[tuple[str, Any, Any, Callable[[int, int], Any] | None]] = []
    if project.X is not None:
        arrays.append(("X", project.X, _image_dtype(project), None))
    if project.y is not None:
        arrays.append(("y", project.y, *_label_plane(project)))
    small: dict[str, Any] = {}
    if project.X is not None and any(project.channels):
        small["channels"] = np.array(project.channels, dtype=str)
    if project.y is not None and any(project.features):
        small["features"] = np.array(project.features, dtype=str)
    if project.embeddings:
        small["embeddings"] = _embeddings_array(project.embeddings)
    total = sum(int(a.shape[1]) for _, a, _, _ in arrays)
    done = [0]
    with zipfile.ZipFile(path, "w", compression=method, allowZip64=True) as zf:
        for name, array, dtype, plane in arrays:
            with zf.open(f"{name}.npy", "w", force_zip64=True) as out:
                blocks = _counted(frames_last(array, dtype, plane), options, done, total)
                write_npy(out, _channels_last_shape(array), dtype, blocks)
        for name, value in small.items():
            with zf.open(f"{name}.npy", "w") as out:
                write_npy(out, value.shape, value.dtype, iter([value]))


def _embeddings_array(rows: list[Any]) -> Any:
    """Rows of equal length; a missing row (``None``) becomes a row of NaN."""
    import numpy as np

    lengths = {len(r) for r in rows if r is not None}
    if len(lengths) > 1:
        raise UnsupportedFeatureError(f"embeddings of different lengths {sorted(lengths)} do not fit in one array")
    width = lengths.pop() if lengths else 0
    out = np.full((len(rows), width), np.nan)
    for i, row in enumerate(rows):
        if row is not None:
            out[i] = row
    return out


def frames_last(array: Any, dtype: Any, plane: Callable[[int, int], Any] | None = None) -> Iterator[Any]:
    """Yield ``(height, width, channels)`` blocks, frame by frame, of a ``(C, F, H, W)`` array.

    ``plane(c, t)`` returns the plane to write (defaults to ``array[c, t]``).
    """
    import numpy as np

    get = plane or (lambda c, t: array[c, t])
    for t in range(int(array.shape[1])):
        yield np.stack([np.asarray(get(c, t)).astype(dtype, copy=False) for c in range(int(array.shape[0]))], axis=-1)
