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
:data:`READ_OPTIONS` and :data:`WRITE_OPTIONS` (``dlformats formats ome-zarr``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlformats import FormatSpec, InvalidOptionError, Option, hookimpl
from dlformats.spec import parts

if TYPE_CHECKING:
    from dlformats.model import Project
    from dlformats.sources import Source
    from dlformats.spec import ReadOptions, WriteOptions

FORMAT = "ome-zarr"
EXTENSIONS = (".ome.zarr", ".zarr")
SIDECAR_KEY = "dlformats"
SNIFF_BYTES = 1 << 20

READ_OPTIONS = (
    Option("level", int, 0, minimum=0, maximum=64, help="pyramid level to read (0 = full resolution); labels alike"),
    Option("multiscale", int, None, minimum=0, help="which entry of 'multiscales' when a group holds several"),
    Option(
        "select_named",
        str,
        None,
        help="keep one plane of axes the store names, e.g. 'angle=0,view=1' (letters T, C, Z: use --select)",
    ),
)
WRITE_OPTIONS = (
    Option("version", str, "0.5", choices=("0.5", "0.4"), help="NGFF version: 0.5 (zarr v3) or 0.4 (zarr v2)"),
    Option("levels", int, 1, minimum=1, maximum=32, help="pyramid levels written, full resolution included"),
    Option("downscale", int, 2, minimum=2, maximum=16, help="factor between pyramid levels, in y and x"),
    Option("chunks", int, 4096, minimum=16, maximum=1 << 16, help="largest chunk edge in y and x (pixels)"),
    Option(
        "compression",
        str,
        "zstd",
        choices=("zstd", "blosc", "gzip", "none"),
        help="codec of every chunk (blosc: zstd inside, byte shuffle)",
    ),
    Option(
        "compression_level", int, None, minimum=0, maximum=22, help="codec level (default: zstd 1, blosc 5, gzip 1)"
    ),
)


def read_choices(options: ReadOptions) -> dict[str, Any]:
    """The declared read options (already checked by the core) plus ``select``: the core's
    letters (``options.select``) and the store's own axis names (``select_named``)."""
    opts = dict(options.extra)
    select: dict[str, Any] = dict(options.select or {})
    for item in (opts.pop("select_named", None) or "").split(","):
        if not item.strip():
            continue
        name, sep, index = item.partition("=")
        if not sep or not index.strip().isdigit():
            raise InvalidOptionError(
                f"read option select_named={item!r} must be NAME=INDEX", option="select_named", format="ome-zarr"
            )
        select[name.strip()] = int(index)
    opts["select"] = select or None
    return opts


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

    return read_store(source, options, read_choices(options))


def _write(project: Project, path: Path, options: WriteOptions) -> None:
    from .writer import write_store

    write_store(project, path, options, dict(options.extra))


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
            read_options=READ_OPTIONS,
            write_options=WRITE_OPTIONS,
            install_hint="zarr>=3 (pip install 'zarr>=3')",
        )
    ]
