"""PNG images and label masks (format ``png``), read and written without rescaling.

Reading: gray (1, 2, 4, 8 and 16 bit), gray + alpha, RGB and RGBA (8 and 16 bit) and
palette images.  Values are the stored samples, never rescaled: 16-bit stays ``uint16``,
1/2/4-bit gray gives ``uint8`` values ``0 .. 2**depth - 1`` (decoders scale those to
0..255; we undo it exactly), alpha is kept as a channel, and a palette image gives its
palette *indices* (label masks are often saved as palette PNGs), not colours.

The decoded array is ``(height, width)`` or ``(height, width, samples)`` (axes ``YX`` /
``YXS``) and becomes ``X`` as ``(channels, 1, height, width)``; read as a separate
labels source (role ``"labels"``) it becomes ``y`` (int32) instead.  An animated PNG with more than one
frame is refused (its frames are composited images, not a stack).

The size the IHDR header declares (width x height x samples x bytes per sample) is
checked against ``Limits.array_bytes`` before anything is decoded.  imageio (Pillow) is
given bytes, never a name it could resolve as a URL.  Pillow truncates 16-bit colour to
8 bits and refuses images above its global decompression-bomb threshold (which we never
change), so those are decoded with imagecodecs (libpng) instead.

Writing: one frame, one PNG.  ``X`` with 1, 2, 3 or 4 channels becomes gray, gray +
alpha, RGB or RGBA; dtypes ``uint8`` and ``uint16`` are written as they are (``bool`` as
``uint8`` 0/1); other dtypes are refused (PNG cannot hold them; write TIFF).  Write
options: ``frame=N`` picks the frame of a multi-frame project (required when there are
several), ``part="y"`` writes the labels of feature 0 instead of the image (as ``uint8``
when every value fits, else ``uint16``).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlformats import FormatSpec, Option, hookimpl
from dlformats.errors import (
    CorruptFileError,
    DLFormatsError,
    NotMyFormat,
    UnsupportedFeatureError,
    usage,
)
from dlformats.spec import parts

if TYPE_CHECKING:
    from dlformats.model import Project
    from dlformats.sources import Source
    from dlformats.spec import ReadOptions, WriteOptions

SIGNATURE = b"\x89PNG\r\n\x1a\n"

# colour type -> (samples per pixel, allowed bit depths, channel names)
_COLOUR_TYPES: dict[int, tuple[int, tuple[int, ...], tuple[str, ...]]] = {
    0: (1, (1, 2, 4, 8, 16), ()),
    2: (3, (8, 16), ("red", "green", "blue")),
    3: (1, (1, 2, 4, 8), ()),
    4: (2, (8, 16), ("gray", "alpha")),
    6: (4, (8, 16), ("red", "green", "blue", "alpha")),
}


@dataclass(frozen=True)
class PngHeader:
    """What the IHDR chunk (and the chunks before the image data) declare."""

    width: int
    height: int
    bit_depth: int
    colour_type: int
    interlaced: bool
    frames: int  # from an APNG ``acTL`` chunk; 1 for a still image

    @property
    def samples(self) -> int:
        """Samples per pixel (1 gray or palette, 2 gray + alpha, 3 RGB, 4 RGBA)."""
        return _COLOUR_TYPES[self.colour_type][0]

    @property
    def decoded_bytes(self) -> int:
        """Bytes of the decoded array: sub-byte samples decode to one byte each."""
        return self.width * self.height * self.samples * (2 if self.bit_depth == 16 else 1)


def read_header(source: Source) -> PngHeader:
    """Parse the IHDR chunk and walk the chunk list up to the first IDAT (for an APNG ``acTL``).

    Raises :class:`NotMyFormat` when the signature is absent and
    :class:`CorruptFileError` for a malformed header.
    """
    where = {"path": source.name}
    with source.open() as fh:
        if fh.read(8) != SIGNATURE:
            raise NotMyFormat("no PNG signature", **where)
        head = fh.read(25)
        if len(head) < 25 or head[4:8] != b"IHDR" or struct.unpack(">I", head[:4])[0] != 13:
            raise CorruptFileError("PNG does not start with a 13-byte IHDR chunk", **where)
        if zlib.crc32(head[4:21]) & 0xFFFFFFFF != struct.unpack(">I", head[21:25])[0]:
            raise CorruptFileError("PNG IHDR chunk has a bad CRC", **where)
        width, height, depth, colour, _compression, _filter, interlace = struct.unpack(">IIBBBBB", head[8:21])
        if not (0 < width < 2**31 and 0 < height < 2**31):
            raise CorruptFileError(f"PNG declares an invalid size {width} x {height}", **where)
        if colour not in _COLOUR_TYPES or depth not in _COLOUR_TYPES[colour][1]:
            raise CorruptFileError(f"PNG declares bit depth {depth} with colour type {colour}", **where)
        frames = 1
        while True:  # chunk headers only, seeking over data: bounded by the file size
            chunk = fh.read(8)
            if len(chunk) < 8:
                raise CorruptFileError("PNG ends before its image data", **where)
            length, kind = struct.unpack(">I4s", chunk)
            if kind == b"IDAT":
                break
            if kind == b"acTL" and length >= 4:
                count = fh.read(4)
                if len(count) < 4:
                    raise CorruptFileError("PNG ends inside its acTL chunk", **where)
                frames = struct.unpack(">I", count)[0]
                length -= 4
            fh.seek(length + 4, 1)  # data and CRC
    return PngHeader(width, height, depth, colour, bool(interlace), max(frames, 1))


def _pillow_refuses(header: PngHeader) -> bool:
    """True when Pillow would warn or refuse for size, judged from its (untouched) global setting."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    return limit is not None and header.width * header.height > limit


def decode(source: Source, header: PngHeader) -> Any:
    """Decode to ``(height, width)`` or ``(height, width, samples)`` with the stored sample values."""
    import numpy as np

    data = source.read_bytes()
    where = {"path": source.name}
    palette = header.colour_type == 3
    use_libpng = (header.bit_depth == 16 and header.samples > 1) or _pillow_refuses(header)
    if palette and use_libpng:
        raise UnsupportedFeatureError(
            f"palette PNG of {header.width} x {header.height} pixels is above Pillow's decompression-bomb "
            "threshold, and the other decoder expands palettes to colours",
            hint="save the mask as 8/16-bit gray PNG or TIFF",
            **where,
        )
    try:
        if use_libpng:
            import imagecodecs

            array = imagecodecs.png_decode(data)
        else:
            import imageio.v3 as iio

            # bytes, not a name: imageio would resolve some strings as URLs
            array = iio.imread(data, plugin="pillow", mode="P" if palette else None)
    except DLFormatsError:
        raise
    except Exception as exc:  # Pillow, imageio and libpng raise many types for broken data
        raise CorruptFileError(f"cannot decode PNG: {type(exc).__name__}: {exc}", **where) from exc
    array = np.asarray(array)
    expected = (header.height, header.width) + ((header.samples,) if header.samples > 1 else ())
    if array.shape != expected:
        raise CorruptFileError(f"PNG decoded to shape {array.shape}, its header declares {expected}", **where)
    if header.bit_depth < 8 and not palette:
        # decoders stretch 1/2/4-bit gray to 0..255 (or give bool); the stored values are v / scale
        scale = 255 // (2**header.bit_depth - 1)
        array = (array.astype(np.uint8) // (1 if array.dtype == bool else scale)).astype(np.uint8)
    want = np.dtype(np.uint16 if header.bit_depth == 16 else np.uint8)
    if array.dtype != want:
        if array.dtype.kind not in "iu" or (array.size and (array.min() < 0 or array.max() > np.iinfo(want).max)):
            raise CorruptFileError(f"PNG decoded to {array.dtype}, expected {want}", **where)
        array = array.astype(want)
    return array


def _read(source: Source, options: ReadOptions) -> Project:
    from dlformats.arrays import LazyArray
    from dlformats.model import Project

    header = read_header(source)
    if header.frames > 1:
        raise UnsupportedFeatureError(
            f"animated PNG with {header.frames} frames",
            path=source.name,
            hint="export the frames as a TIFF stack (or one PNG per frame)",
        )
    options.limits.check("array_bytes", header.decoded_bytes, "PNG image too large to decode", path=source.name)
    options.limits.check("total_bytes", header.decoded_bytes, "PNG image too large", path=source.name)
    array = decode(source, header)
    axes = options.axes or ("YXS" if array.ndim == 3 else "YX")
    labels = options.role == "labels"
    # a select= meant for another source's axes (e.g. {"Z": 0} for a TIFF beside this mask) does not apply here
    select = {k: v for k, v in options.select.items() if k in axes.upper()}
    lazy = LazyArray(array, axes, labels=labels, select=select, path=source.name)
    meta = {
        "png": {
            "width": header.width,
            "height": header.height,
            "bit_depth": header.bit_depth,
            "colour_type": header.colour_type,
            "palette": header.colour_type == 3,
        }
    }
    if labels:
        return Project(y=lazy, frame_axis=lazy.frame_axis, metadata=meta)
    names = list(_COLOUR_TYPES[header.colour_type][2]) if options.axes is None else []
    return Project(X=lazy, channels=names, frame_axis=lazy.frame_axis, metadata=meta)


def _plane_to_write(project: Project, options: WriteOptions) -> Any:
    """The ``(height, width[, samples])`` array to encode, checked for what PNG can hold."""
    import numpy as np

    part = options.extra["part"]
    array = project.X if part == "X" else project.y
    if array is None:
        raise UnsupportedFeatureError(f"the project has no {'image' if part == 'X' else 'labels'} to write")
    nchan, nframes = int(array.shape[0]), int(array.shape[1])
    frame = options.extra["frame"]  # within the project's frames: the core checked it (index_of)
    if frame is None and nframes > 1:
        raise UnsupportedFeatureError(
            f"a PNG holds one frame; the project has {nframes}",
            hint=f"pick one with {usage('write', 'frame')}, or write a TIFF",
        )
    frame = 0 if frame is None else frame
    if part == "y":
        if nchan != 1:
            raise UnsupportedFeatureError(f"a label PNG holds one feature; the labels have {nchan}")
        from dlformats.model import checked_labels

        # whole numbers only (floats are never truncated); wide integers kept for the range check
        plane = checked_labels(array[0, frame], feature=0, frame=frame, negatives=True, wide=True)
        lo, hi = (int(plane.min()), int(plane.max())) if plane.size else (0, 0)
        if lo < 0 or hi > 65535:
            raise UnsupportedFeatureError(f"label values {lo}..{hi} do not fit in a 16-bit PNG", hint="write a TIFF")
        return plane.astype(np.uint8 if hi <= 255 else np.uint16)
    if nchan > 4:
        raise UnsupportedFeatureError(
            f"a PNG holds 1 to 4 channels (gray, gray+alpha, RGB, RGBA); the image has {nchan}", hint="write a TIFF"
        )
    dtype = np.dtype(array.dtype)
    if dtype.kind == "b":
        dtype = np.dtype(np.uint8)
    elif dtype.kind != "u" or dtype.itemsize > 2:
        raise UnsupportedFeatureError(
            f"a PNG holds uint8 or uint16 samples, the image is {dtype}", hint="write a TIFF to keep the values"
        )
    planes = [np.asarray(array[c, frame]).astype(dtype.newbyteorder("="), copy=False) for c in range(nchan)]
    return planes[0] if nchan == 1 else np.stack(planes, axis=-1)


def _write(project: Project, path: Path, options: WriteOptions) -> None:
    plane = _plane_to_write(project, options)
    options.report(0, 1)
    if plane.dtype.itemsize == 2 and plane.ndim == 3:
        import imagecodecs  # Pillow cannot write 16-bit colour

        data = imagecodecs.png_encode(plane)
        with open(path, "wb") as fh:
            fh.write(data)
    else:
        import imageio.v3 as iio

        with open(path, "wb") as fh:  # a file object: the temporary name has no .png extension
            iio.imwrite(fh, plane, plugin="pillow", extension=".png")
    options.report(1, 1)


@hookimpl
def dlformats_formats() -> list[FormatSpec]:
    """Declare the ``png`` format."""
    return [
        FormatSpec(
            name="png",
            description="PNG image or label mask (gray 8/16-bit, RGB(A), palette indices), one frame",
            extensions=(".png",),
            signatures=(SIGNATURE,),
            reads=parts("X", "y", "channels"),
            writes=parts("X"),
            read=_read,
            write=_write,
            progress_unit="files",
            install_hint="imageio, imagecodecs",
            write_options=(
                Option(
                    "part",
                    str,
                    "X",
                    choices=("X", "y"),
                    help="what to write: the image X, or the labels y",
                    writes={"X": parts("X"), "y": parts("y")},
                ),
                Option(
                    "frame",
                    int,
                    None,
                    index_of="frames",
                    help="the frame to write (0-based), required when the project has several",
                ),
            ),
        )
    ]
