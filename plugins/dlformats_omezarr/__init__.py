"""OME-Zarr (NGFF 0.4 and 0.5) images with their label images: format ``ome-zarr``, a folder.

An OME-Zarr store is a zarr group (``.ome.zarr`` or ``.zarr``) holding a multiscale image,
highest resolution first, and a ``labels/`` group of label images, each a multiscale image of
integers with ``image-label`` metadata.  NGFF 0.4 is zarr v2 (metadata in ``.zattrs``, ``.zarray``);
0.5 is zarr v3 (metadata in ``zarr.json``, under the ``ome`` attribute, ``dimension_names`` on
every array).  Pixels are read and written with ``zarr``, one plane at a time.

Reading
-------
* The image's axes are mapped to DeepCell Label's by their types and names: ``time`` is T,
  ``channel`` is C, ``space`` axes are Z, Y and X (by name ``z``/``y``/``x``, else by order: the
  last two are Y and X); an axis of another type is named by ``t``, ``c``, ``z``, ``y``, ``x``,
  else it has no meaning here and must have length 1 or be picked with ``select``.  ``X`` is
  (channels, frames, height, width) in the store's dtype; frames are T, or Z when there is no
  T longer than one (both longer than one: pick one plane of one with ``select``).
* ``select`` (``--select Z=3``) keeps one plane of an axis, by letter or by the axis' own name.
* The full-resolution level unless ``level=N`` asks for another (labels are read at the same level).
* Each label image in ``labels/`` becomes a feature of ``y`` (int32; a label image with a
  channel axis gives one feature per channel), named by its path; a store holding only labels
  (or a label image opened directly) gives a project without ``X``.  With the read option
  ``role="labels"`` (``--labels store.ome.zarr``) the store's label images are the labels, or its
  image when it has none.
* Channel names come from ``omero`` channel labels.
* Tolerated quirks of ome-zarr-py's own output: a 0.5 ``labels`` group without ``version``;
  label images with more levels than the image (the extra ones are ignored).
* A missing chunk reads as the array's ``fill_value``, as the zarr specification says (writers
  such as ome-zarr-py leave out chunks that hold only the fill value); a chunk that is present
  but cannot be decoded, or declares more bytes than its chunk holds, is a
  :class:`~dlformats.errors.CorruptFileError` naming the store, the array and the chunk.
* Refused with typed errors naming the store and the node: metadata contradicting the arrays
  (axis count, ``dimension_names``, dtypes or shapes of levels), unknown NGFF versions, float or
  other non-integer label images, dtypes other than bool / integers / floats, codecs outside
  the zarr core set (gzip, zstd, blosc, crc32c, sharding; for zarr v2 also zlib, lz4, bz2, lzma;
  never a pickle), any file of the store that is a symbolic link leading outside the store
  folder, and chunks or arrays larger than :class:`~dlformats.Limits` allow (``array_bytes``
  for one chunk or plane, ``total_bytes`` for the image).  Plates, wells and bioformats2raw
  collections are refused with a hint naming the image group to open instead.

The dlformats key
-----------------
What NGFF cannot hold is kept in the attribute ``"dlformats"`` of the root group (beside
``"ome"`` in 0.5, beside ``"multiscales"`` in 0.4), so that a project zip -> OME-Zarr -> project
zip loses nothing.  It is an object::

    {"version": 1,
     "frame_axis": "T" | "Z" | "B",           # what the frames are ("B" is stored as a t axis)
     "channels": [str, ...],                  # image channel names, exactly
     "features": [str, ...],                  # feature names, exactly (label paths are sanitised)
     "labels": [str, ...],                    # the label image path of each feature, in order
     "cells": {"value": [int], "cell": [int], "t": [int], "c": [int]},   # cells.json as columns
     "divisions": [...], "cellTypes": [...], "embeddings": [...] | null,  # as in a project zip
     "spots": "x,y,...\\n..." | null,          # spots.csv text
     "sources": {part: {format, plugin, version, source}}}               # provenance

The label images hold ``y`` after DeepCell Label's export rule (as a project zip does): a value
is a cell, overlapping cells get new values listed in ``cells``.  When the label images no
longer match ``labels`` (another tool added or removed one), the keys describing labels are
ignored with a warning and cells are derived from the pixels.

Writing
-------
NGFF 0.5 (zarr v3) by default, 0.4 (zarr v2) with ``version=0.4``.  The image is (t, c, y, x)
for time (and batch) frames and (c, z, y, x) for z-frames, with ``omero`` channel labels and
display windows; ``labels/<feature>`` holds one label image per feature with the same axes
(channel length 1), int32, ``image-label`` with ``version`` and ``source``.  Optional pyramid
levels (``levels=N``): the image is averaged over ``downscale`` x ``downscale`` blocks, labels
take the top-left pixel of each block (never averaged); image and labels get the same number of
levels.  One chunk per plane (tiles of ``chunks`` pixels when a plane is larger), so a plane
is one read.  Planes are streamed: a stack larger than memory converts.  Options are listed in
:data:`OPTIONS` and parsed by :func:`parse_options`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlformats import FormatSpec, InvalidOptionError, hookimpl
from dlformats.spec import parts

if TYPE_CHECKING:
    from dlformats.model import Project
    from dlformats.sources import Source
    from dlformats.spec import ReadOptions, WriteOptions

FORMAT = "ome-zarr"
EXTENSIONS = (".ome.zarr", ".zarr")
SIDECAR_KEY = "dlformats"
SNIFF_BYTES = 1 << 20

# name -> (mode, type, default, allowed, help).  ``allowed`` is a tuple of values, or (low, high) bounds for ints.
OPTIONS: dict[str, tuple[str, type, Any, Any, str]] = {
    "level": ("read", int, 0, (0, 64), "pyramid level to read (0 = full resolution); labels are read at the same"),
    "multiscale": ("read", int, None, (0, 1 << 16), "which entry of 'multiscales' when a group holds several"),
    "select": ("read", dict, None, None, "keep one plane of an axis: {letter or axis name: index}, e.g. {'Z': 0}"),
    "version": ("write", str, "0.5", ("0.5", "0.4"), "NGFF version: 0.5 (zarr v3) or 0.4 (zarr v2)"),
    "levels": ("write", int, 1, (1, 32), "pyramid levels written, full resolution included"),
    "downscale": ("write", int, 2, (2, 16), "factor between levels, in y and x"),
    "chunks": ("write", int, 4096, (16, 1 << 16), "largest chunk edge in y and x (pixels)"),
    "compression": ("write", str, "zstd", ("zstd", "blosc", "gzip", "none"), "codec of every chunk"),
    "compression_level": ("write", int, None, (0, 22), "codec level (default: zstd 1, blosc 5, gzip 1)"),
}


def parse_options(extra: Mapping[str, Any], mode: str) -> dict[str, Any]:
    """Every option of ``mode`` (``"read"`` or ``"write"``) with its value from ``extra`` or its default.

    Read options:

    * ``level`` (int, default 0): the pyramid level to read, 0 = full resolution.
    * ``multiscale`` (int, default none): which ``multiscales`` entry, needed only when a group has several.
    * ``select`` (mapping axis -> index, default none): keep one plane of an axis, by letter
      (``T``, ``Z``, ``C``...) or by the store's axis name.

    Write options:

    * ``version`` (str, default ``"0.5"``): ``"0.5"`` (zarr v3) or ``"0.4"`` (zarr v2); numbers accepted.
    * ``levels`` (int, default 1): pyramid levels, full resolution included.
    * ``downscale`` (int, default 2): factor between levels in y and x.
    * ``chunks`` (int, default 4096): largest chunk edge in y and x (pixels); a plane no larger is one chunk.
    * ``compression`` (str, default ``"zstd"``): ``zstd``, ``blosc`` (zstd inside, byte shuffle), ``gzip``, ``none``.
    * ``compression_level`` (int, default per codec): zstd 1, blosc 5, gzip 1.

    Unknown keys are left alone (they may be another format's).  Raises
    :class:`~dlformats.errors.InvalidOptionError` naming the option and what it accepts.
    """
    out: dict[str, Any] = {}
    for name, (kind, typ, default, allowed, text) in OPTIONS.items():
        if kind != mode:
            continue
        value = extra.get(name, default)
        if value is None or value is default:
            out[name] = value
            continue
        if name == "version" and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = f"{float(value):.1f}"
        if typ is int:
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value.strip())
            if isinstance(value, bool) or not isinstance(value, int) or not allowed[0] <= value <= allowed[1]:
                raise InvalidOptionError(
                    f"option {name}={value!r} must be a whole number from {allowed[0]} to {allowed[1]}", hint=text
                )
        elif typ is str:
            value = str(value).lower()
            if value not in allowed:
                raise InvalidOptionError(f"option {name}={value!r} is not one of {', '.join(allowed)}", hint=text)
        elif typ is dict and not isinstance(value, Mapping):
            raise InvalidOptionError(f"option {name}={value!r} must map axes to indices, e.g. {{'Z': 0}}", hint=text)
        out[name] = value
    return out


OME_KEYS = ("multiscales", "labels", "image-label", "plate", "well", "bioformats2raw.layout")


def _sniff(source: Source) -> bool | None:
    """A folder whose root metadata holds OME-Zarr keys; ``None`` for a zarr folder that does not say."""
    import json

    if not source.is_dir or source.path is None:
        return False
    root = source.path
    found = False
    for name in ("zarr.json", ".zattrs", ".zgroup", ".zarray"):
        path = root / name
        try:
            if not path.is_file():
                continue
            found = True
            if os.path.getsize(path) > SNIFF_BYTES:  # a long list of cells in the dlformats key: look at the start
                with open(path, "rb") as fh:
                    head = fh.read(1 << 16)
                return True if b'"multiscales"' in head or b'"ome"' in head else None
            doc = json.loads(path.read_bytes())
        except (OSError, ValueError, RecursionError):
            return None  # unreadable metadata: the reader names the problem
        if isinstance(doc, dict):
            attrs = doc.get("attributes", {}) if name == "zarr.json" else doc
            ome = attrs.get("ome") if isinstance(attrs, dict) else None
            if isinstance(ome, dict) or (isinstance(attrs, dict) and any(k in attrs for k in OME_KEYS)):
                return True
    return None if found or (root / "labels").is_dir() else False


def _read(source: Source, options: ReadOptions) -> Project:
    from .reader import read_store

    return read_store(source, options, parse_options(options.extra, "read"))


def _write(project: Project, path: Path, options: WriteOptions) -> None:
    from .writer import write_store

    write_store(project, path, options, parse_options(options.extra, "write"))


@hookimpl
def dlformats_formats() -> list[FormatSpec]:
    """The OME-Zarr folder format."""
    everything = parts("X", "y", "cells", "divisions", "spots", "channels", "features", "cell_types", "embeddings")
    return [
        FormatSpec(
            name=FORMAT,
            description="OME-Zarr (NGFF 0.4 / 0.5) image with label images, read and written lazily with zarr",
            extensions=EXTENSIONS,
            sniff=_sniff,
            reads=everything,
            writes=everything,
            read=_read,
            write=_write,
            folder=True,
            install_hint="zarr>=3 (pip install 'zarr>=3')",
        )
    ]
