"""The DeepCell Label project zip: what DeepCell Label stores, opens and exports.

Members (see ``LABEL_FILE_FORMAT.md``):

* ``X.ome.tiff``: the image, OME-TIFF, axes CZYX (C = channels, OME Z = frames),
  original dtype, channel names in the OME ``Channel`` ``Name`` attributes;
* ``y.ome.tiff``: the labels, int32 OME-TIFF, CZYX (C = features, Z = frames);
* ``cells.json`` (value -> cell per frame ``t`` and feature ``c``), ``divisions.json``,
  ``spots.csv``, ``cellTypes.json``, ``embeddings.json``, ``channels.json``;
* ``dlformats.json`` (written by dlformats, ignored by DeepCell Label): what the
  frames axis is (T, Z or B), feature names and where each part came from.

Reading accepts what exists in the wild: both OME axis orders (ZCYX from the
project creator, CZYX from the exporter), members inside one folder, ``__MACOSX``
junk, ``cells.json`` with or without ``"c"`` and in the older dict form, and a
``lineage.json`` instead of (or beside) ``divisions.json`` (``divisions.json``
wins; a disagreement is a warning).  TIFFs stored uncompressed in a zip on disk
are read in place, a plane at a time.

Writing applies DeepCell Label's export rule to ``y`` plane by plane with one
lookup table per plane, streams planes into the TIFFs (so a project larger than
memory converts) and stores the TIFFs uncompressed in the zip (their pixels are
compressed inside the TIFF where that pays: labels with deflate by default).
Label values int32 cannot hold, and negative ones, are refused by name
(:func:`dlformats.model.checked_labels`); write option ``relabel=true`` renumbers
them first.

Write options (``--write-option key=value``): ``compression`` for y (``zlib``
default, ``zstd``, ``none``), ``image_compression`` for X (``auto`` default: deflate
only when a sample plane shrinks to half or less, as label-like or sparse
images do and noisy microscopy does not; ``none``, ``zlib``, ``zstd``), ``level``
(codec level, default 1).  DeepCell Label's viewer reads deflate and
uncompressed TIFFs; zstd needs a newer viewer.
"""

from __future__ import annotations

import io
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlformats import (
    CorruptFileError,
    FormatSpec,
    InvalidOptionError,
    Option,
    Project,
    UnsupportedFeatureError,
    hookimpl,
)
from dlformats.containers.jsonio import dump_json
from dlformats.errors import command_syntax_active
from dlformats.spec import parts
from dlformats_projectzip.zipwriter import MemberFile, ZipWriter

if TYPE_CHECKING:
    from dlformats.containers.archive import SafeZip
    from dlformats.sources import Source
    from dlformats.spec import ReadOptions, WriteOptions

FORMAT = "dcl-project-zip"
X_NAMES = ("X.ome.tiff", "X.ome.tif")
Y_NAMES = ("y.ome.tiff", "y.ome.tif")
SIDECAR = "dlformats.json"
CODECS = {"none": None, "zlib": "zlib", "deflate": "zlib", "zstd": "zstd", "auto": "auto"}
OME_PIXEL_TYPES = {"b1", "u1", "i1", "u2", "i2", "u4", "i4", "f4", "f8"}  # OME Pixels Type: no 64-bit integers
AUTO_MIN_SAVING = 0.5  # compress the image only when a sample plane shrinks to half or less


def _sniff(source: Source) -> bool | None:
    names = source.zip_names()
    if names is None:
        return False
    lower = {n.lower() for n in names}
    return any(n.lower() in lower for n in X_NAMES + Y_NAMES)


# ------------------------------------------------------------------ reading
SEEKABLE_ABOVE: int | None = None
"""Deflated TIFF members larger than this (bytes of content), or than ``member_bytes`` when ``None``,
are inflated on demand, never held whole.  Within ``member_bytes`` the whole-member path is kept by
default: libdeflate inflates 2-3x faster than the checkpointed zlib pass (a 500 MB member: ``info``
1.9 s whole, 3.0 s seekable), at the cost of holding the member."""


def _tiff_location(archive: SafeZip, name: str, source: Source) -> dict[str, Any]:
    """Where a TIFF member's bytes are, and how they are read.

    * stored uncompressed in a zip on disk: in place, through a handle on the archive's open file;
    * deflated, up to ``member_bytes`` (and :data:`SEEKABLE_ABOVE` when set): inflated whole into
      memory (libdeflate, the fastest path);
    * deflated and larger: a :class:`~dlformats.containers.archive.SeekableMember`, inflated once
      to check it and then on demand from checkpoints, in bounded memory (so ``member_bytes``
      does not apply; ``total_bytes`` does), nothing written to disk;
    * anything else (bzip2, LZMA, stored in an in-memory zip): whole in memory, within ``member_bytes``.
    """
    import zipfile

    stored = archive.stored_range(name) if source.file is not None else None
    if stored is not None:
        offset, size = stored
        # a handle over the archive's own open file: never the path, which may name another file by now
        return {"fh": source.open(), "offset": offset, "size": size}
    info = archive.info(name)
    if info.compress_type == zipfile.ZIP_DEFLATED and (
        info.file_size > source.limits.member_bytes or (SEEKABLE_ABOVE is not None and info.file_size > SEEKABLE_ABOVE)
    ):
        return {"fh": archive.open_seekable(name)}
    return {"fh": io.BytesIO(archive.read(name))}


def _ome_channel_names(tif: Any) -> list[str]:
    """Channel names in the OME-XML of a TIFF opened with tifffile (the series path)."""
    import tifffile

    if not tif.is_ome or not tif.ome_metadata:
        return []
    try:
        ome = tifffile.xml2dict(tif.ome_metadata)
    except Exception:  # noqa: BLE001 - names are optional; a broken OME-XML is reported by tiffio
        return []
    image = ome.get("OME", {}).get("Image", {})
    if isinstance(image, list):
        image = image[0] if image else {}
    channels = image.get("Pixels", {}).get("Channel", [])
    if isinstance(channels, dict):
        channels = [channels]
    names = [str(ch.get("Name", "")) if isinstance(ch, dict) else "" for ch in channels]
    return names if any(names) else []


def _lazy(archive: SafeZip, name: str, source: Source, *, labels: bool) -> tuple[Any, list[str]]:
    """A lazy (C, F, H, W) view of a TIFF member, and the channel names in its OME metadata.

    The usual member (one OME image, pages in DimensionOrder) is read page by page
    without parsing every page, so the first frame of a long movie comes at once; its
    shape, dtype and channel names come from its first IFD and OME-XML read by hand
    (tifffile is imported at the first plane read, so ``dlformats info`` never needs it).
    Any other TIFF goes through its tifffile series.  DeepCell Label keeps frames in
    OME Z (its client ignores T): LazyArray drops length-1 axes and refuses, naming the
    option, a file with both Z and T longer than one.
    """
    from dlformats.arrays import LazyArray
    from dlformats.containers import tiffio

    where = {"name": source.name, "member": name, "limits": source.limits}
    location = _tiff_location(archive, name, source)
    fh = location.pop("fh")
    tif = None
    try:
        array: Any = tiffio.ome_planes(fh, **location, **where)
        if array is not None:
            axes = "CZTYX"
            names = array.channel_names if any(array.channel_names) else []
        else:
            fh.seek(0)
            tif = tiffio.open_tiff(fh, **location, **where)
            if len(tif.series) != 1:
                raise UnsupportedFeatureError(
                    f"the TIFF holds {len(tif.series)} image series; a project zip member holds one",
                    path=source.name,
                    member=name,
                )
            series = tif.series[0]
            axes = tiffio.series_axes(series)
            array = tiffio.series_array(series, name=source.name, member=name, limits=source.limits)
            names = _ome_channel_names(tif)
    except BaseException:
        fh.close()
        raise
    # the handle lives as long as what reads through it: the planes (tifffile opens the file
    # through it at the first plane read, if ever) or the TIFF of the series
    weakref.finalize(array if tif is None else tif, fh.close)
    view = LazyArray(array, axes, labels=labels, path=f"{source.name}: {name}", default_frame_axis="T")
    if tif is not None:
        view._tiff = tif  # pages are read through this file: keep it as long as the view
    return view, names


def _read(source: Source, options: ReadOptions) -> Project:
    from dlformats.containers import codecs

    archive, _ = source.zip_holding(*X_NAMES, *Y_NAMES)
    x_name = archive.find(*X_NAMES)
    y_name = archive.find(*Y_NAMES)
    if x_name is None:
        raise CorruptFileError("project zip has y.ome.tiff but no X.ome.tiff", path=source.name)
    member_json = archive.read_json

    X, ome_channels = _lazy(archive, x_name, source, labels=False)
    y = None
    features: list[str] = []
    if y_name is not None:
        y, features = _lazy(archive, y_name, source, labels=True)
    sidecar = member_json(SIDECAR) or {}
    if not isinstance(sidecar, dict):
        raise CorruptFileError("expected an object", path=source.name, member=SIDECAR)
    frame_axis = sidecar.get("frame_axis", "T")
    if frame_axis not in ("T", "Z", "B"):
        raise CorruptFileError(f"frame_axis must be T, Z or B, not {frame_axis!r}", path=source.name, member=SIDECAR)
    if isinstance(sidecar.get("features"), list):
        features = [str(f) for f in sidecar["features"]]

    cells = None
    cells_name = archive.find("cells.json")
    if cells_name is not None:
        # read as bytes up to member_bytes: the usual form is parsed into columns, anything else
        # is held to json_bytes by the strict parser
        cells, has_c = codecs.cells_from_bytes(
            archive.read(cells_name, limit="member_bytes"), path=source.name, member=cells_name, limits=source.limits
        )
        if not has_c and y is not None and y.shape[0] > 1:
            cells = codecs.assign_features(cells, y)

    divisions, lineage_problems = codecs.merge_divisions(
        member_json("divisions.json"), member_json("lineage.json"), path=source.name
    )
    spots = None
    spots_name = archive.find("spots.csv")
    if spots_name is not None:
        spots = codecs.spots_from_csv(
            archive.read(spots_name), path=source.name, member=spots_name, limits=source.limits
        )
    cell_types_json = member_json("cellTypes.json")
    embeddings_json = member_json("embeddings.json")
    channels_json = member_json("channels.json")
    channels = codecs.channels_from_json(channels_json, path=source.name) if channels_json is not None else ome_channels
    project = Project(
        X=X,
        y=y,
        cells=cells,
        divisions=divisions,
        spots=spots,
        channels=channels,
        features=features,
        cell_types=codecs.cell_types_from_json(cell_types_json, path=source.name) if cell_types_json else [],
        embeddings=codecs.embeddings_from_json(embeddings_json, path=source.name)
        if embeddings_json is not None
        else None,
        frame_axis=frame_axis,
    )
    if isinstance(sidecar.get("sources"), dict):
        project.metadata["sources"] = sidecar["sources"]
    if lineage_problems:
        project.metadata["lineage_problems"] = lineage_problems
    return project


# ------------------------------------------------------------------ writing
def _codec(options: WriteOptions, key: str) -> tuple[str, int] | None:
    codec = CODECS[options.extra[key]]
    if codec is None:
        return None
    level = options.extra["level"]
    if codec == "zlib" and level > 9:
        raise InvalidOptionError(f"write option level={level}: deflate levels are 0..9", option="level")
    return (codec, level)


def _auto_codec(sample: Any, level: int) -> tuple[str, int] | None:
    """Deflate the image only if a sample of it shrinks well: noisy microscopy barely does."""
    import zlib

    import numpy as np

    raw = np.ascontiguousarray(sample).tobytes()[: 256 << 10]  # a quarter MiB tells
    if not raw:
        return None
    return ("zlib", level) if len(zlib.compress(raw, 1)) <= AUTO_MIN_SAVING * len(raw) else None


def _ome_metadata(names: list[str]) -> dict[str, Any]:
    metadata: dict[str, Any] = {"axes": "CZYX"}
    if names:
        metadata["Channel"] = {"Name": list(names)}
    return metadata


def _rows_per_strip(shape: tuple[int, ...], dtype: Any) -> int:
    """About 1 MiB strips: several per plane, so that one plane compresses on both cores."""
    height, width = shape[2], shape[3]
    return max(1, min(height, (1 << 20) // max(1, width * dtype.itemsize)))


def _write_stored(member: MemberFile, planes: Any, shape: tuple[int, ...], dtype: Any, names: list[str]) -> None:
    """An uncompressed OME-TIFF: tifffile lays out the header and IFDs around a hole, then every
    plane goes from its source buffer straight into the hole (no copy, checksummed in passing)."""
    import math

    import tifffile

    if dtype.kind == "b":  # never extents: see _extents
        _write_bilevel(member, (plane for plane, _ in planes), shape, dtype, names, None)
        return
    with tifffile.TiffWriter(member, bigtiff=_needs_bigtiff(shape, dtype), ome=True) as tif:
        found = tif.write(
            None,
            shape=shape,
            dtype=dtype,
            photometric="minisblack",
            metadata=_ome_metadata(names),
            rowsperstrip=_rows_per_strip(shape, dtype),
            returnoffset=True,
        )
    assert found is not None
    offset, page = found  # where the pixels of every page go, one after the other; bytes of one page
    if page != shape[2] * shape[3] * dtype.itemsize:
        raise RuntimeError(f"tifffile laid out pages of {page} bytes for {shape} {dtype}")
    end = member.seek(0, 2)
    member.seek(member.start + offset)
    for plane, crc in planes:
        if isinstance(plane, tuple):  # (descriptor, offset, nbytes): the same bytes in the source file
            member.copy_from(*plane, crc=crc)
        else:
            member.write(plane, crc=crc)
    if member.tell() != member.start + offset + math.prod(shape) * dtype.itemsize:
        raise RuntimeError("the planes written do not fill the image")
    member.seek(end)


def _write_bilevel(
    member: MemberFile, planes: Any, shape: tuple[int, ...], dtype: Any, names: list[str], codec: Any
) -> None:
    """A bool image: tifffile packs 8 pixels a byte (and compresses that), so it writes the pixels itself."""
    import tifffile

    with tifffile.TiffWriter(member, bigtiff=_needs_bigtiff(shape, dtype), ome=True) as tif:
        tif.write(
            planes,
            shape=shape,
            dtype=dtype,
            photometric="minisblack",
            metadata=_ome_metadata(names),
            compression=codec[0] if codec else None,
            compressionargs={"level": codec[1]} if codec else None,
        )


def _write_encoded(
    member: MemberFile, strips: Any, shape: tuple[int, ...], dtype: Any, names: list[str], codec: tuple[str, int]
) -> None:
    """A compressed OME-TIFF from strips compressed ahead (see :class:`_Strips`)."""
    import tifffile

    with tifffile.TiffWriter(member, bigtiff=_needs_bigtiff(shape, dtype), ome=True) as tif:
        tif.write(
            strips,
            shape=shape,
            dtype=dtype,
            photometric="minisblack",
            metadata=_ome_metadata(names),
            compression=codec[0],
            compressionargs={"level": codec[1]},
            rowsperstrip=_rows_per_strip(shape, dtype),
        )


class _Strips:
    """Compress planes into TIFF strips on both cores, in order; planes of zeros (the labels of an
    image-only project, empty frames) are compressed once and reused."""

    def __init__(self, codec: tuple[str, int], shape: tuple[int, ...], dtype: Any) -> None:
        import threading

        import imagecodecs

        name, self.level = codec
        self._encode = imagecodecs.zstd_encode if name == "zstd" else imagecodecs.deflate_encode
        self.rows = _rows_per_strip(shape, dtype)
        self.height, self.width = shape[2], shape[3]
        self.dtype = dtype
        self._zeros: list[bytes] | None = None
        self._lock = threading.Lock()

    def zeros(self) -> list[bytes]:
        """The strips of a plane of zeros (one strip compressed, or two when the last is shorter)."""
        import numpy as np

        with self._lock:
            if self._zeros is None:
                full, last = divmod(self.height, self.rows)
                strip = self._encode(np.zeros((self.rows, self.width), self.dtype), level=self.level)
                tail = [self._encode(np.zeros((last, self.width), self.dtype), level=self.level)] if last else []
                self._zeros = [strip] * full + tail
            return self._zeros

    def strips(self, plane: Any) -> list[bytes]:
        """The compressed strips of one ``(height, width)`` plane."""
        if not plane.any():
            return self.zeros()
        return [self._encode(plane[r : r + self.rows], level=self.level) for r in range(0, self.height, self.rows)]

    def run(self, jobs: Any, report: Any, workers: int = 2, ahead: int = 4) -> Any:
        """Yield the strips of every plane, in order; ``jobs`` yields callables giving each plane's strips."""
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        pending: deque[Any] = deque()
        with ThreadPoolExecutor(workers, thread_name_prefix="dlformats-strips") as pool:
            try:
                # a plane is reported once encoded, before its strips are handed on: the consumer
                # stops asking after the last strip, so a report after it would never run
                for job in jobs:
                    pending.append(pool.submit(job))
                    if len(pending) >= ahead:
                        strips = pending.popleft().result()
                        report()
                        yield from strips
                while pending:
                    strips = pending.popleft().result()
                    report()
                    yield from strips
            finally:
                for future in pending:
                    future.cancel()


def _needs_bigtiff(shape: tuple[int, ...], dtype: Any) -> bool:
    import math

    return math.prod(shape) * dtype.itemsize > (1 << 32) - (1 << 25)


_WRITING = threading.Lock()
"""One project zip written at a time per process.  The writer keeps both cores busy by itself;
two writes in threads of one process (a Dask worker with several threads) crashed once in CI
with a ``BufferError`` not reproduced since, so they take turns until the cause is found."""


def _write(project: Project, path: Path, options: WriteOptions) -> None:
    with _WRITING:
        _write_project(project, path, options)


def _write_project(project: Project, path: Path, options: WriteOptions) -> None:
    import numpy as np

    from dlformats.arrays import prefetch
    from dlformats.containers import codecs
    from dlformats.model import plan_export, present_values
    from dlformats_projectzip.zipwriter import crc32, crc32_of_file, deflated

    if project.X is None:
        how = (
            "dlformats convert IMAGE out.zip --labels FILE"
            if command_syntax_active()
            else "dlformats.convert(IMAGE, 'out.zip', labels=FILE)"
        )
        raise InvalidOptionError(
            "the project has no image (X), and a DeepCell Label project needs one: labels alone are not written "
            "over an invented image",
            hint=f"give the image as the source and the labels beside it: {how}",
        )
    x_dtype = np.dtype(project.X.dtype).newbyteorder("<")  # tifffile writes little-endian TIFFs
    if x_dtype.str[1:] not in OME_PIXEL_TYPES:
        raise UnsupportedFeatureError(
            f"OME-TIFF cannot hold a {np.dtype(project.X.dtype)} image",
            hint="DeepCell Label images are bool, 8-, 16- or 32-bit integers or floats; cast the image first",
        )
    y_dtype = np.dtype("<i4")
    channels, frames, height, width = (int(s) for s in project.X.shape)
    features = project.num_features
    x_shape, y_shape = (channels, frames, height, width), (features, frames, height, width)
    total = (channels + features) * frames
    done = 0

    def report() -> None:
        nonlocal done
        done += 1
        options.report(done, total)

    def image(c: int, t: int) -> Any:
        return np.ascontiguousarray(project.image_frame(c, t), dtype=x_dtype)

    plan = plan_export(project.listed_cells) if project.listed_cells is not None else None
    derived: list[Any] = []  # (values, t, c) per plane, when cells come from the labels

    def labels(c: int, t: int) -> Any:
        plane = project.label_frame(c, t)  # checked: int32 and never negative
        if plan is not None:
            return plan.apply(plane, c, t)
        derived.append((present_values(plane), t, c))  # no cells.json: every positive value is its own cell
        return plane

    image_codec = _codec(options, "image_compression")
    if image_codec is not None and image_codec[0] == "auto":
        image_codec = _auto_codec(project.image_frame(0, frames // 2), image_codec[1])
    label_codec = _codec(options, "compression")
    sidecar = {
        "frame_axis": project.frame_axis,
        "features": list(project.features),
        "sources": {part: vars(p) for part, p in project.provenance.items()},
    }
    from concurrent.futures import ThreadPoolExecutor

    # The TIFFs are written straight into their zip members (stored: their pixels are
    # compressed inside the TIFF where that pays), so nothing is copied afterwards; the
    # cells.json of a plan is written and deflated meanwhile on another thread.
    with open(path, "w+b") as fh, ThreadPoolExecutor(1, thread_name_prefix="dlformats-cells") as aside:
        cells_json = aside.submit(lambda: deflated(codecs.cells_to_json(plan.cells))) if plan is not None else None
        archive = ZipWriter(fh)
        with archive.member("X.ome.tiff") as member:
            if image_codec is None:
                extents = _extents(project.X, channels, frames, x_dtype)

                def stored() -> Any:
                    for c in range(channels):
                        for t in range(frames):
                            if extents is not None:  # copied file to file; checksummed here meanwhile
                                where = extents[c * frames + t]
                                yield where, crc32_of_file(*where)
                            else:
                                plane = image(c, t)
                                yield plane, crc32(plane)  # read and checksummed while the last plane is written
                            report()

                _write_stored(
                    member, prefetch(stored(), name="dlformats-projectzip-planes"), x_shape, x_dtype, project.channels
                )
            elif x_dtype.kind == "b":
                planes = (image(c, t) for c in range(channels) for t in range(frames))
                _write_bilevel(member, planes, x_shape, x_dtype, project.channels, image_codec)
            else:
                encoder = _Strips(image_codec, x_shape, x_dtype)
                jobs = (lambda c=c, t=t: encoder.strips(image(c, t)) for c in range(channels) for t in range(frames))
                _write_encoded(member, encoder.run(jobs, report), x_shape, x_dtype, project.channels, image_codec)
        with archive.member("y.ome.tiff") as member:
            if label_codec is None:

                def stored_labels() -> Any:
                    for c in range(features):
                        for t in range(frames):
                            plane = labels(c, t).astype(y_dtype, copy=False)
                            yield plane, crc32(plane)
                            report()

                _write_stored(
                    member,
                    prefetch(stored_labels(), name="dlformats-projectzip-planes"),
                    y_shape,
                    y_dtype,
                    project.features,
                )
            else:
                encoder = _Strips(label_codec, y_shape, y_dtype)
                if project.y is None:  # an image-only project: labels of zeros, compressed once
                    jobs = (encoder.zeros for _ in range(features * frames))
                else:
                    jobs = (
                        lambda c=c, t=t: encoder.strips(labels(c, t).astype(y_dtype, copy=False))
                        for c in range(features)
                        for t in range(frames)
                    )
                _write_encoded(member, encoder.run(jobs, report), y_shape, y_dtype, project.features, label_codec)
        archive.add("cells.json", cells_json.result() if cells_json else codecs.cells_to_json(_derived_cells(derived)))
        archive.add("divisions.json", codecs.divisions_to_json(project.divisions))
        archive.add("cellTypes.json", codecs.cell_types_to_json(project.cell_types))
        if project.channels:
            archive.add("channels.json", codecs.channels_to_json(project.channels))
        if project.embeddings is not None:
            archive.add("embeddings.json", codecs.embeddings_to_json(project.embeddings))
        if project.spots is not None:
            archive.add("spots.csv", codecs.spots_to_csv(project.spots))
        archive.add(SIDECAR, dump_json(sidecar))
        archive.close()


def _extents(X: Any, channels: int, frames: int, dtype: Any) -> list[tuple[int, int, int]] | None:
    """Where every plane of ``X`` lies in its file, byte for byte as the TIFF stores it (``dtype``),
    or ``None``: then planes are read and written (decoded sources, other byte orders...)."""
    import os

    where = getattr(X, "plane_extent", None)
    if where is None or dtype.kind == "b" or not hasattr(os, "copy_file_range"):  # Linux copies file to file
        return None  # (and a TIFF packs bilevel pixels 8 to a byte)
    out = []
    for c in range(channels):
        for t in range(frames):
            found = where(c, t)
            if found is None or found[3] != dtype or found[2] != dtype.itemsize * X.shape[2] * X.shape[3]:
                return None
            out.append(found[:3])
    return out


def _derived_cells(planes: list[Any]) -> Any:
    """One cell per positive value per frame and feature (value = cell), as DeepCell Label derives them."""
    import numpy as np

    from dlformats.model import CellTable

    if not planes:
        return CellTable([], [], [], [])
    values = np.concatenate([v for v, _, _ in planes])
    t = np.concatenate([np.full(len(v), t) for v, t, _ in planes])
    c = np.concatenate([np.full(len(v), c) for v, _, c in planes])
    order = np.lexsort((values, c, t))
    return CellTable(values[order], values[order], t[order], c[order])


@hookimpl
def dlformats_formats() -> list[FormatSpec]:
    """The DeepCell Label project zip."""
    everything = parts("X", "y", "cells", "divisions", "spots", "channels", "features", "cell_types", "embeddings")
    return [
        FormatSpec(
            name=FORMAT,
            description="DeepCell Label project zip (X.ome.tiff, y.ome.tiff, cells.json, divisions.json...)",
            extensions=(".zip",),
            sniff=_sniff,
            reads=everything,
            writes=everything,
            read=_read,
            write=_write,
            priority=10,
            write_options=(
                Option(
                    "compression",
                    str,
                    "zlib",
                    choices=("none", "zlib", "deflate", "zstd"),
                    help="codec of the labels' TIFF (deflate is zlib; zstd needs a newer viewer)",
                ),
                Option(
                    "image_compression",
                    str,
                    "auto",
                    choices=("auto", "none", "zlib", "deflate", "zstd"),
                    help="codec of the image's TIFF; auto deflates only when a sample plane shrinks to half or less",
                ),
                # labels shrink ~200:1 even at level 1; higher levels cost CPU for little
                Option("level", int, 1, minimum=0, maximum=22, help="codec level (deflate 0..9, zstd 1..22)"),
            ),
        )
    ]
