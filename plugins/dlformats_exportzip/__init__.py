"""DeepCell Label's export zip: the whole project as the browser client sends it to the server.

The client cannot write OME-TIFF, so it zips raw buffers and JSON files:

* ``dimensions.json``: ``{"width", "height", "duration", "numChannels", "numFeatures", "dtype"}``,
  ``dtype`` the JavaScript typed-array name of the image (``Uint8Array``, ``Int8Array``,
  ``Uint16Array``, ``Int16Array``, ``Uint32Array``, ``Int32Array``, ``Float32Array``, ``Float64Array``);
* ``labeled.dat``: the labels, int32, ``(features, frames, height, width)``;
* ``raw.dat``: the image, ``(channels, frames, height, width)`` in ``dtype``;
* ``channels.json``, ``cells.json``, ``cellTypes.json``, ``divisions.json`` and an optional ``spots.csv``.

Buffers are C order and little-endian whatever the machine.  Every size is
checked against the buffers' byte lengths before anything is read.  The reader
returns the project exactly as sent (no export rule); the project zip writer
(format ``dcl-project-zip``) applies DeepCell Label's export rule, so
``dlformats convert export.zip project.zip`` gives the project zip the server stores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dlformats import FormatSpec, Option, hookimpl
from dlformats.errors import CorruptFileError, UnsupportedFeatureError
from dlformats.spec import parts

if TYPE_CHECKING:
    from pathlib import Path

    from dlformats.model import Project
    from dlformats.sources import Source
    from dlformats.spec import ReadOptions, WriteOptions

FORMAT = "dcl-export-zip"
DIMENSIONS = "dimensions.json"
REQUIRED = ("labeled.dat", "raw.dat", "channels.json", "cells.json", "cellTypes.json", "divisions.json")
SIZES = ("height", "width", "duration", "numChannels", "numFeatures")
PARTS = parts("X", "y", "cells", "divisions", "spots", "channels", "cell_types")


def _sniff(source: Source) -> bool:
    names = source.zip_names()
    return names is not None and any(n.casefold() == DIMENSIONS.casefold() for n in names)


# ------------------------------------------------------------------ reading
def _read(source: Source, options: ReadOptions) -> Project:
    from dlformats.containers import buffers, codecs
    from dlformats.model import Project

    archive, dims_name = source.zip_holding(DIMENSIONS)
    limits = options.limits
    dims = archive.read_json(dims_name)
    where = {"path": source.name, "member": dims_name}
    if not isinstance(dims, dict):
        raise CorruptFileError(f"expected an object of sizes, found {type(dims).__name__}", **where)
    height, width, frames, channels, features = (buffers.positive_int(dims, key, **where) for key in SIZES)
    if "dtype" not in dims:
        raise CorruptFileError("lacks 'dtype' (the typed-array name of raw.dat, e.g. 'Uint8Array')", **where)
    dtype = buffers.js_dtype(dims["dtype"], **where)

    names = {n: archive.find(n) for n in REQUIRED}
    missing = [n for n, found in names.items() if found is None]
    if missing:
        raise CorruptFileError(
            f"export zip lacks {', '.join(missing)}; it must hold dimensions.json, {', '.join(REQUIRED)}",
            path=source.name,
            member=missing[0],
        )
    shapes = {
        "labeled.dat": ((features, frames, height, width), "<i4"),
        "raw.dat": ((channels, frames, height, width), dtype),
    }
    # Every size against its buffer first, then the total: a lying dimensions.json is
    # reported as such rather than as a limit; nothing is read until both pass.
    total = sum(
        buffers.check_size(archive, names[n], shape, kind, declared_by=dims_name) for n, (shape, kind) in shapes.items()
    )
    limits.check("total_bytes", total, "declared buffers too large", **where)
    y, X = (
        buffers.read_buffer(archive, names[n], shape, kind, declared_by=dims_name)
        for n, (shape, kind) in shapes.items()
    )

    def json_member(name: str) -> Any:
        return archive.read_json(names[name])

    channel_names = codecs.channels_from_json(json_member("channels.json"), path=source.name)
    if len(channel_names) != channels:
        raise CorruptFileError(
            f"{len(channel_names)} channel names, expected numChannels = {channels}",
            path=source.name,
            member=names["channels.json"],
        )
    if not any(channel_names):  # all unnamed: the model says so with an empty list
        channel_names = []
    cells_name = names["cells.json"]  # read up to member_bytes: the usual form is parsed into columns
    cells, has_c = codecs.cells_from_bytes(
        archive.read(cells_name, limit="member_bytes"), path=source.name, member=cells_name, limits=limits
    )
    if not has_c:
        cells = codecs.assign_features(cells, y)
    cell_types = codecs.cell_types_from_json(
        json_member("cellTypes.json"), path=source.name, member=names["cellTypes.json"]
    )
    divisions = codecs.divisions_from_json(
        json_member("divisions.json"), path=source.name, member=names["divisions.json"]
    )
    spots_name = archive.find("spots.csv")
    spots = None
    if spots_name is not None:
        spots = codecs.spots_from_csv(archive.read(spots_name), path=source.name, member=spots_name, limits=limits)
    return Project(
        X=X,
        y=y,
        cells=cells,
        divisions=divisions,
        spots=spots,
        channels=channel_names,
        cell_types=cell_types,
        frame_axis="T",
        metadata={"dtype": dims["dtype"]},
    )


# ------------------------------------------------------------------ writing
def _write(project: Project, path: Path, options: WriteOptions) -> None:
    """Write the members in the client's order; buffers streamed a plane at a time, little-endian."""
    import zipfile

    import numpy as np

    from dlformats.containers import buffers, codecs
    from dlformats.containers.jsonio import dump_json

    if project.X is None:
        raise UnsupportedFeatureError("an export zip needs an image (raw.dat); this project has only labels")
    dtype = np.dtype(project.X.dtype)
    js_name = buffers.js_dtype_name(dtype)
    if js_name is None:
        known = ", ".join(sorted({str(np.dtype(v).newbyteorder("=")) for v in buffers.JS_DTYPES.values()}))
        raise UnsupportedFeatureError(
            f"image dtype {dtype} has no JavaScript typed array", hint=f"convert the image to one of {known}"
        )
    channels, frames, height, width = (int(s) for s in project.X.shape)
    features = project.num_features
    dims = {
        "width": width,
        "height": height,
        "duration": frames,
        "numChannels": channels,
        "numFeatures": features,
        "dtype": js_name,
    }
    compression = zipfile.ZIP_DEFLATED if options.extra["compress"] else zipfile.ZIP_STORED
    total, done = (features + channels) * frames, 0
    little = dtype.newbyteorder("<")
    with zipfile.ZipFile(path, "w", compression=compression, compresslevel=1 if compression else None) as zf:
        zf.writestr("dimensions.json", dump_json(dims))
        for member, count, plane in (
            ("labeled.dat", features, lambda c, t: project.label_frame(c, t).astype("<i4", copy=False)),
            ("raw.dat", channels, lambda c, t: np.asarray(project.image_frame(c, t), dtype=little)),
        ):
            with zf.open(member, "w", force_zip64=True) as fh:
                for c in range(count):
                    for t in range(frames):
                        fh.write(np.ascontiguousarray(plane(c, t)).tobytes())
                        done += 1
                        options.report(done, total)
        zf.writestr("channels.json", codecs.channels_to_json(list(project.channels) or [""] * channels))
        zf.writestr("cells.json", codecs.cells_to_json(project.cells_or_derived()))
        zf.writestr("cellTypes.json", codecs.cell_types_to_json(project.cell_types))
        zf.writestr("divisions.json", codecs.divisions_to_json(project.divisions))
        if project.spots is not None:
            zf.writestr("spots.csv", codecs.spots_to_csv(project.spots))


@hookimpl
def dlformats_formats() -> list[FormatSpec]:
    return [
        FormatSpec(
            name=FORMAT,
            description="DeepCell Label browser client's export zip (dimensions.json, labeled.dat, raw.dat...)",
            extensions=(".zip",),
            signatures=(b"PK\x03\x04", b"PK\x05\x06"),
            sniff=_sniff,
            reads=PARTS,
            writes=PARTS,
            read=_read,
            write=_write,
            frame_axes="T",  # dimensions.json has a duration: frames read back as time
            write_options=(Option("compress", bool, True, help="deflate the members (level 1); false stores them"),),
        )
    ]
