"""TIFF images and label stacks (format ``tiff``), and multi-file OME-TIFF companions (``ome-companion``).

Reads plain TIFF, ImageJ hyperstacks, OME-TIFF (one file, or several files listed by the
first file's OME-XML or by a companion ``.companion.ome`` file), BigTIFF, either byte
order, strips or tiles, pyramids (the full-resolution level), deflate / LZW / zstd /
packbits / ... compression (imagecodecs), bool, integer and float samples, RGB(A)
interleaved or planar.  The file is opened through :mod:`dlformats.containers.tiffio`: the IFD chain
is walked first (loops, bad offsets, ``Limits.tiff_pages``), tifffile's warnings become
:class:`~dlformats.errors.CorruptFileError`, and planes are read lazily, one page at a time,
so a stack larger than memory converts.

Axes (letters ``TZBCSYX``; T, Z, B become frames, C and S channels, see
:mod:`dlformats.arrays`), first rule that applies:

1. ``axes=`` given by the caller: used as is, checked against the series' shape.
2. OME or ImageJ metadata, or another tifffile series kind with real axis letters:
   the file's axes (mapped by :func:`dlformats.containers.tiffio.series_axes`; a generic sequence
   ``I``/``Q`` becomes the first free of T, Z, B).
3. Otherwise (plain TIFF, tifffile "shaped"), by number of dimensions, keeping tifffile's
   page structure (``YX``, ``YXS`` for samples per pixel, ``SYX`` for planar samples):

   ========  =============  ==========================================
   dims      axes           note
   ========  =============  ==========================================
   2         ``YX``
   3         ``TYX``        a page stack is a time series (frames)
   4         ``CZYX``       DeepCell Label's usual layout
   5         ``TCZYX``      OME order; T and Z both > 1 needs ``select``
   ========  =============  ==========================================

   When such a plain array has no sample axis and its last dimension is 3 or 4, that
   dimension is taken as samples: 3-D ``(h, w, 3)`` is ``YXS``, 4-D is ``TYXS``.

Ambiguity is never resolved by silently keeping index 0:

* several series (or OME images): :class:`~dlformats.errors.AmbiguousInputError` with
  option ``series`` (``options={"series": N}``, ``--option series=N``);
* T and Z both longer than one: option ``select`` (``{"Z": 0}``, ``--select Z=0``);
* an ImageJ header written by tifffile (``ImageJ=1.11a``) claiming both channels and
  z-slices or times, with no channel metadata (LUTs, ranges, a composite mode): tifffile
  writes such a header for any 4-D or 5-D array it was not told the axes of, so the
  labels may be wrong (e.g. 20 time points of 5 z-slices stored as "5 channels, 20
  slices"): option ``axes`` (``axes="ZCYX"`` confirms the header).

Read as a separate labels source (``labels=``, role ``"labels"``) the array becomes ``y`` (int32;
int64, uint32 and uint64 labels keep their type) instead of ``X``.
Channel names come from the OME ``Channel Name`` attributes (``red``, ``green``,
``blue``, ``alpha`` for RGB(A) samples).  A file that is one part of a multi-file
OME-TIFF (OME-XML ``BinaryOnly``) reads as its own planes, with a warning naming the
companion file that describes the whole dataset.

Writing: ``X`` as an OME-TIFF of axes ``CTYX`` (``CZYX`` when the project's frames are
z-slices; B is written as T), original dtype (native byte order), photometric
``minisblack``, channel names in the OME ``Channel Name`` attributes, BigTIFF when over
2 GiB, one page per plane streamed from the (possibly lazy) array.  Write option
``part="y"`` writes ``y`` instead (the core picks it for a labels-only project), with
the feature names (int32; with DeepCell Label's export rule applied when it lists
cells, so values are cells; uint32 labels without cells as they are).  Values int32
cannot hold are refused by name (OME-TIFF has no 64-bit integers: write ``.npy`` or
``.npz``, or renumber them with write option ``relabel=true``).  Write option
``compression`` (``none``, ``zlib``, ``lzw``, ``zstd``, ``packbits``; default ``zlib``).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlformats import FormatSpec, Option, hookimpl
from dlformats.errors import (
    AmbiguousInputError,
    CorruptFileError,
    DLFormatsWarning,
    InvalidOptionError,
    NotMyFormat,
    UnsupportedFeatureError,
    usage,
)
from dlformats.spec import parts

if TYPE_CHECKING:
    from dlformats.model import Project
    from dlformats.sources import Source
    from dlformats.spec import ReadOptions, WriteOptions

SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
EXTENSIONS = (".ome.tiff", ".ome.tif", ".tiff", ".tif", ".btf", ".tf8")
COMPANION_EXTENSIONS = (".companion.ome", ".ome", ".ome.xml")

DEFAULT_LEAD = {0: "", 1: "T", 2: "CZ", 3: "TCZ"}
"""Axes of the leading (non-page) dimensions of a TIFF without axis metadata, by count."""

COMPRESSIONS = {"none": None, "zlib": "zlib", "deflate": "zlib", "lzw": "lzw", "zstd": "zstd", "packbits": "packbits"}

SERIES = Option(
    "series", int, None, minimum=0, help="the image series to read (0-based), required when the file holds several"
)

TIFFFILE_IMAGEJ_VERSION = "1.11a"  # what tifffile writes as the ImageJ version of its headers


# ------------------------------------------------------------------ reading
def _read(source: Source, options: ReadOptions) -> Project:
    from dlformats.containers import tiffio

    if source.is_dir or not source.head.startswith(SIGNATURES):
        raise NotMyFormat(f"content is {source.describe()}, not TIFF")
    # One handle over the source's open file: a file replaced meanwhile is read wholly as it was.
    tif = tiffio.open_tiff(
        source.open(), name=source.name, limits=options.limits, own=True, on_disk=source.file is not None
    )
    return _project_from(tif, source, options)


def _read_companion(source: Source, options: ReadOptions) -> Project:
    """A companion ``.ome`` XML file: open the first TIFF it lists, with the companion's OME-XML."""
    from dlformats.containers import tiffio

    xml = _companion_xml(source)
    if xml is None:
        raise NotMyFormat("not an OME-XML document listing TIFF files")
    if source.path is None:
        raise InvalidOptionError(
            "an OME companion file must be read from disk, beside the TIFF files it lists", path=source.name
        )
    names = tiffio.ome_file_names(xml)
    if not names:
        raise CorruptFileError("the OME companion file lists no TIFF files", path=source.name)
    first = names[0]
    if first != Path(first).name or first in (".", ".."):
        raise CorruptFileError(f"the OME companion names the file {first!r} outside its folder", path=source.name)
    path = source.path.parent / first
    if not path.is_file():
        raise CorruptFileError(f"file {first!r} listed by the OME companion is missing", path=source.name)
    tif = tiffio.open_tiff(path, name=source.name, limits=options.limits, omexml=xml)
    return _project_from(tif, source, options)


def _companion_xml(source: Source) -> str | None:
    head = source.head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith(b"<") or b"<OME" not in source.head or source.is_dir:
        return None
    limits = source.limits
    limits.check("json_bytes", source.size, "OME companion file too large", path=source.name)
    try:
        text = source.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptFileError("the OME companion file is not UTF-8 text", path=source.name) from exc
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise CorruptFileError("the OME companion file declares a DTD or entities; refused", path=source.name)
    return text


def _sniff_companion(source: Source) -> bool:
    head = source.head
    return not source.is_dir and head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<") and b"<OME" in head


def _project_from(tif: Any, source: Source, options: ReadOptions) -> Project:
    import weakref

    from dlformats.model import Project

    try:
        series, index = _choose_series(tif, source, options)
        array, axes, how = _array_and_axes(tif, series, source, options)
        view = _lazy_view(array, axes, source, options)
        names = _channel_names(tif, series, index, axes, options)
        _warn_binary_only(tif, source)
    except BaseException:
        tif.close()
        raise
    weakref.finalize(view, tif.close)
    view._tiff = tif  # the file stays open as long as the view lives
    note = _assumed(tif, series, axes, how)
    meta = {
        "axes": axes,
        "axes_from": "default" if note else how,
        **({"axes_note": note} if note else {}),
        "tiff_kind": str(series.kind),
        "tiff_series": index,
        "tiff_shape": [int(s) for s in array.shape],
        "byteorder": "big" if tif.byteorder == ">" else "little",
        "bigtiff": bool(tif.is_bigtiff),
    }
    if options.role == "labels":
        return Project(y=view, features=names, frame_axis=view.frame_axis, metadata=meta)
    return Project(X=view, channels=names, frame_axis=view.frame_axis, metadata=meta)


def _choose_series(tif: Any, source: Source, options: ReadOptions) -> tuple[Any, int]:
    series = list(tif.series)
    choice = options.extra["series"]
    described = "; ".join(
        f"{i}: {s.kind} {s.levels[0].axes if s.levels else s.axes} {tuple(s.shape)} {s.dtype}"
        for i, s in enumerate(series)
    )
    if choice is None:
        if len(series) > 1:
            raise AmbiguousInputError(
                f"the TIFF holds {len(series)} image series ({described})",
                option="series",
                choices=list(range(len(series))),
                path=source.name,
                hint=f"pick one with {usage('option', 'series', labels=options.role == 'labels')}",
            )
        return series[0], 0
    if not 0 <= choice < len(series):
        raise InvalidOptionError(
            f"series={choice!r} is not one of 0..{len(series) - 1}", path=source.name, hint=f"series: {described}"
        )
    return series[choice], choice


def _array_and_axes(tif: Any, series: Any, source: Source, options: ReadOptions) -> tuple[Any, str, str]:
    """The lazy series array, its axes and where they came from (``option``, ``file``, ``default``).

    ``default`` where the file says nothing of its page stack (plain TIFF pages read as
    time points, a last dimension of 3 or 4 read as colour samples); one page read as
    ``YX``, ``YXS`` or ``SYX`` is the file's own structure.
    """
    from dlformats.arrays import check_axes
    from dlformats.containers import tiffio

    array = tiffio.series_array(series, name=source.name, limits=options.limits)
    if options.axes is not None:
        return array, check_axes(options.axes, array.shape, path=source.name), "option"
    level = series.levels[0] if series.levels else series
    letters = str(level.axes).upper()
    if series.kind in ("ome", "imagej") or set(letters) - set("IQYXS"):
        axes = tiffio.series_axes(series)
        if series.kind == "imagej":
            _check_imagej_guess(tif, axes, array.shape, source)
        return array, axes, "file"
    axes = _default_axes(letters, array.shape, source)
    # One page read as its own structure (YX, YXS, SYX) is what the file says; stacked pages are assumed.
    return array, axes, "file" if axes == letters and set(letters) <= set("YXS") else "default"


def _default_axes(letters: str, shape: tuple[int, ...], source: Source) -> str:
    """Axes of a TIFF without axis metadata (see the module docstring)."""
    page = re.search(r"[YXS]*$", letters).group(0)  # type: ignore[union-attr]
    lead = len(letters) - len(page)
    if "S" not in page and page.endswith("YX") and lead >= 1 and shape[-1] in (3, 4):
        page, lead = "YXS", lead - 1  # channels-last colour: (..., h, w, 3 or 4)
    if lead not in DEFAULT_LEAD:
        raise AmbiguousInputError(
            f"the TIFF has {len(shape)} dimensions {tuple(shape)} and no axis metadata",
            option="axes",
            path=source.name,
            hint=f"give {usage('axes', value='AXES')} with one letter per dimension from T, Z, B, C, S, Y, X",
        )
    return DEFAULT_LEAD[lead] + page


def _check_imagej_guess(tif: Any, axes: str, shape: tuple[int, ...], source: Source) -> None:
    meta = tif.imagej_metadata or {}
    if str(meta.get("ImageJ", "")) != TIFFFILE_IMAGEJ_VERSION:
        return
    if any(key in meta for key in ("LUTs", "Ranges", "Labels")) or meta.get("mode") not in (None, "grayscale"):
        return  # the writer described its channels: the header is deliberate
    sizes = dict(zip(axes, shape))
    frames = [a for a in "TZ" if sizes.get(a, 1) > 1]
    if sizes.get("C", 1) > 1 and frames:
        described = ", ".join(f"{sizes[a]} {name}" for a, name in (("C", "channels"), *[(f, f) for f in frames]))
        raise AmbiguousInputError(
            f"the ImageJ header says {described} (axes {axes}, shape {tuple(shape)}) but was written by tifffile, "
            "which labels any array that way unless told its axes, so the channels may really be z-slices or times",
            option="axes",
            choices=[axes],
            path=source.name,
            hint=f"confirm the header with {usage('axes', value=axes)}, or give the real order"
            f"{_alternative(axes, sizes)} (plus {usage('select', 'Z', 0)} when both T and Z are longer than one)",
        )


def _alternative(axes: str, sizes: dict[str, int]) -> str:
    """An example axes string reading the 'channels' as the missing one of T and Z."""
    if "T" in axes and "Z" in axes:
        return ""
    if "Z" in axes:  # "ZCYX": the slices are times and the channels z-slices
        alt = axes.replace("Z", "T").replace("C", "Z")
        return f", e.g. {usage('axes', value=alt)} if the {sizes['Z']} 'slices' are times of {sizes['C']} z-slices"
    alt = axes.replace("C", "Z")
    return f", e.g. {usage('axes', value=alt)} if the {sizes['C']} 'channels' are z-slices"


def _assumed(tif: Any, series: Any, axes: str, how: str) -> str:
    """Why the axes are an assumption (``""`` when they are not): the note ``info`` gives with ``axes_from``.

    Default axes of a plain TIFF; a generic sequence axis (tifffile's ``I``/``Q``) placed
    as T, Z or B; an ImageJ stack that is not a hyperstack (ImageJ, and tifffile, call the
    images of any plain stack "slices", whatever they are).
    """
    if how == "option":
        return ""
    level = series.levels[0] if series.levels else series
    letters = str(level.axes).upper()
    generic = [a for a in "IQ" if a in letters]
    if generic and len(letters) == len(axes):
        placed = axes[letters.index(generic[0])]
        return f"the file's generic sequence axis {generic[0]} was read as {placed}"
    if how == "default":
        return f"the file has no axis metadata; its dimensions were read as {axes}, the default for plain TIFFs"
    if series.kind == "imagej":
        meta = tif.imagej_metadata or {}
        stack = [k for k in ("channels", "slices", "frames") if int(meta.get(k, 1) or 1) > 1]
        if not meta.get("hyperstack") and len(stack) == 1 and stack[0] != "channels":
            n = int(meta[stack[0]])
            letter = "Z" if stack[0] == "slices" else "T"
            names = meta.get("Labels")
            named = f" (named {', '.join(map(str, names[:4]))})" if isinstance(names, list) and names else ""
            return (
                f"an ImageJ stack that is not a hyperstack: its {n} images{named} are called {stack[0]} "
                f"whatever they are, and were read as {letter}; {usage('axes', value='CYX')} reads them as channels"
            )
    return ""


def _lazy_view(array: Any, axes: str, source: Source, options: ReadOptions) -> Any:
    from dlformats.arrays import LazyArray

    return LazyArray(
        array,
        axes,
        select=options.select,
        labels=options.role == "labels",
        path=source.name,
        default_frame_axis="Z" if "Z" in axes and "T" not in axes else "T",
    )


def _channel_names(tif: Any, series: Any, index: int, axes: str, options: ReadOptions) -> list[str]:
    """OME channel names (or red/green/blue/alpha for RGB samples) when they fit the channels read."""
    if options.axes is not None:
        return []
    sizes = dict(zip(axes, series.levels[0].shape if series.levels else series.shape))
    select = options.select
    names = _ome_channel_names(tif, index) if series.kind == "ome" else []
    if names and len(names) == sizes.get("C", 1) and sizes.get("S", 1) == 1 and any(names):
        if "C" in select:
            return [names[int(select["C"])]]
        return names if len(names) > 1 or "C" in axes else names[:1]
    keyframe = series.keyframe
    try:
        rgb = int(keyframe.photometric) == 2
    except (TypeError, ValueError):  # a Photometric tag with no value (tifffile gives b''): tiff fuzz finding
        rgb = False
    if sizes.get("C", 1) == 1 and sizes.get("S", 1) in (3, 4) and "S" not in select and rgb:
        return ["red", "green", "blue", "alpha"][: sizes["S"]]
    return []


def _ome_channel_names(tif: Any, index: int) -> list[str]:
    import tifffile

    try:
        ome = tifffile.xml2dict(tif.ome_metadata or "")
    except Exception:  # noqa: BLE001 - tifffile parsed this OME-XML already; names are optional
        return []
    images = ome.get("OME", {}).get("Image", [])
    images = images if isinstance(images, list) else [images]
    if index >= len(images) or not isinstance(images[index], dict):
        return []
    channels = images[index].get("Pixels", {}).get("Channel", [])
    channels = channels if isinstance(channels, list) else [channels]
    return [str(ch.get("Name", "")) if isinstance(ch, dict) else "" for ch in channels]


def _warn_binary_only(tif: Any, source: Source) -> None:
    ome = tif.ome_metadata if tif.is_ome else None
    if not ome or "BinaryOnly" not in ome[:4096]:
        return
    found = re.search(r'MetadataFile\s*=\s*"([^"]*)"', ome)
    companion = found.group(1) if found else "its companion file"
    warnings.warn(
        f"{source.name}: this file is one part of a multi-file OME-TIFF; only its own planes are read. "
        f"Read {companion} to get the whole dataset",
        DLFormatsWarning,
        stacklevel=2,
    )


# ------------------------------------------------------------------ describing (info --raw)
def _describe(source: Source, options: ReadOptions) -> dict[str, Any]:
    """What the TIFF holds before any mapping: each series' axes, shape, dtype, pixel sizes, channel names."""
    from dlformats.containers import tiffio

    if source.is_dir or not source.head.startswith(SIGNATURES):
        raise NotMyFormat(f"content is {source.describe()}, not TIFF")
    tif = tiffio.open_tiff(
        source.open(), name=source.name, limits=options.limits, own=True, on_disk=source.file is not None
    )
    try:
        return _described(tif, source, options)
    finally:
        tif.close()


def _describe_companion(source: Source, options: ReadOptions) -> dict[str, Any]:
    from dlformats.containers import tiffio

    xml = _companion_xml(source)
    if xml is None or source.path is None:
        raise NotMyFormat("not an OME-XML document listing TIFF files on disk")
    names = tiffio.ome_file_names(xml)
    first = names[0] if names else ""
    path = source.path.parent / first
    if not first or first != Path(first).name or not path.is_file():
        raise CorruptFileError("the OME companion file does not name a TIFF beside it", path=source.name)
    tif = tiffio.open_tiff(path, name=source.name, limits=options.limits, omexml=xml)
    try:
        return _described(tif, source, options)
    finally:
        tif.close()


def _described(tif: Any, source: Source, options: ReadOptions) -> dict[str, Any]:
    from dataclasses import replace

    every = list(tif.series)
    out: list[dict[str, Any]] = []
    choices: list[dict[str, Any]] = []
    if len(every) > 1:
        choices.append(
            {
                "option": "series",
                "values": [str(i) for i in range(len(every))],
                "gives": "one image series (see series)",
                "use": usage("option", "series"),
            }
        )
    for index, series in enumerate(every):
        level = series.levels[0] if series.levels else series
        entry: dict[str, Any] = {
            "index": index,
            "kind": str(series.kind),
            "axes": str(level.axes),
            "shape": [int(n) for n in level.shape],
            "dtype": str(series.dtype),
            "pixel_sizes": _pixel_sizes(tif, series, index),
            "channels": _ome_channel_names(tif, index) if series.kind == "ome" else [],
        }
        if not any(entry["channels"]):
            entry["channels"] = []
        if len(series.levels) > 1:
            entry["levels"] = [[int(n) for n in lv.shape] for lv in series.levels]
        if series.kind == "imagej" and tif.imagej_metadata:
            entry["imagej"] = {k: v for k, v in tif.imagej_metadata.items() if isinstance(v, (int, float, str, bool))}
        opts = replace(options, extra={**options.extra, "series": index})
        maps: dict[str, Any] = {}
        try:
            array, axes, how = _array_and_axes(tif, series, source, opts)
            note = _assumed(tif, series, axes, how)
            maps = {"axes": axes, "axes_from": "default" if note else how, **({"axes_note": note} if note else {})}
            view = _lazy_view(array, axes, source, opts)
            role = "y" if options.role == "labels" else "X"
            maps.update({role: list(view.shape), "frame_axis": view.frame_axis})
        except AmbiguousInputError as exc:
            maps["needs"] = {"option": exc.option, "values": [str(c) for c in exc.choices], "why": exc.reason}
            if exc.option == "select":
                choices.append(_frame_choice(maps.get("axes", ""), entry["shape"], index, len(every)))
            else:
                choices.append(
                    {
                        "option": exc.option,
                        "values": [str(c) for c in exc.choices],
                        "gives": exc.hint or exc.reason,
                        "use": usage("axes", value=(exc.choices or ["AXES"])[0]),
                    }
                )
        entry["maps_to"] = maps
        out.append(entry)
    return {"series": out, "choices": choices, "needs_choice": bool(choices)}


def _frame_choice(axes: str, shape: list[int], index: int, count: int) -> dict[str, Any]:
    """The choice a series with both T and Z longer than one needs: which plane of one of them to keep."""
    sizes = dict(zip(axes, shape))
    which = "" if count == 1 else f" of series {index}"
    gives = [
        f"{letter}=i keeps one {name}{which} (i in 0..{sizes[letter] - 1}): the frames are its {sizes[other]} {other}"
        for letter, name, other in (("Z", "z-slice", "T"), ("T", "time point", "Z"))
        if sizes.get(letter, 1) > 1 and sizes.get(other, 1) > 1
    ]
    return {
        "option": "select",
        "values": [f"{a}=0..{sizes[a] - 1}" for a in "TZ" if sizes.get(a, 1) > 1],
        "gives": "; ".join(gives),
        "use": usage("select", "Z", 0),
    }


_UNITS = {2: "inch", 3: "centimeter"}


def _pixel_sizes(tif: Any, series: Any, index: int) -> dict[str, list[Any]]:
    """``{axis: [size, unit]}`` where the file gives them: OME physical sizes, ImageJ spacing, TIFF resolution."""
    out: dict[str, list[Any]] = {}
    if series.kind == "ome":
        import tifffile

        try:
            images = tifffile.xml2dict(tif.ome_metadata or "").get("OME", {}).get("Image", [])
        except Exception:  # noqa: BLE001 - already parsed once by tifffile; sizes are optional
            images = []
        images = images if isinstance(images, list) else [images]
        pixels = images[index].get("Pixels", {}) if index < len(images) and isinstance(images[index], dict) else {}
        for axis in "XYZ":
            size = pixels.get(f"PhysicalSize{axis}")
            if isinstance(size, (int, float)):
                out[axis] = [float(size), str(pixels.get(f"PhysicalSize{axis}Unit", "µm"))]
        step = pixels.get("TimeIncrement")
        if isinstance(step, (int, float)):
            out["T"] = [float(step), str(pixels.get("TimeIncrementUnit", "s"))]
        return out
    page = series.keyframe
    meta = tif.imagej_metadata if series.kind == "imagej" else None
    unit = str(meta.get("unit", "")) if meta else ""
    try:
        tags = page.tags
        res_unit = int(tags["ResolutionUnit"].value) if "ResolutionUnit" in tags else 2
        for axis, tag in (("X", "XResolution"), ("Y", "YResolution")):
            if tag in tags:
                num, den = tags[tag].value
                if num and den and (num, den) != (1, 1) and (meta or res_unit in _UNITS):
                    out[axis] = [den / num, unit or _UNITS.get(res_unit, "")]
    except (KeyError, TypeError, ValueError):
        pass
    if meta:
        if isinstance(meta.get("spacing"), (int, float)):
            out["Z"] = [float(meta["spacing"]), unit]
        if isinstance(meta.get("finterval"), (int, float)):
            out["T"] = [float(meta["finterval"]), str(meta.get("tunit", "s"))]
    return out


# ------------------------------------------------------------------ writing
def _write(project: Project, path: Path, options: WriteOptions) -> None:
    import numpy as np
    import tifffile

    part = options.extra.get("part", "X")
    if part == "X" and project.X is not None:
        array, names, labels = project.X, list(project.channels), False
    elif part == "y" and project.y is not None:
        array, names, labels = project.y, list(project.features), True
    else:
        what = "an image (X)" if part == "X" else "labels (y)"
        raise InvalidOptionError(f"the project has no {what} to write", path=str(path), option="part")
    compression = COMPRESSIONS[options.extra["compression"]]
    channels, frames, height, width = (int(s) for s in array.shape)
    # Labels are int32 (checked: nothing wraps), or uint32 kept as it is; OME holds no 64-bit integers.
    keep = labels and project.listed_cells is None and np.dtype(array.dtype).str[1:] == "u4"
    dtype = (np.dtype(np.uint32) if keep else np.dtype(np.int32)) if labels else np.dtype(array.dtype).newbyteorder("=")
    if dtype.kind in "iu" and dtype.itemsize > 4:
        # OME pixel types stop at 32-bit integers; tifffile raises OmeXmlError (a crash, to the core).
        raise UnsupportedFeatureError(
            f"OME-TIFF cannot hold {dtype} pixels",
            path=str(path),
            hint="convert the image to a 32-bit integer or float64 type, or write .npy/.npz",
        )
    plan = None
    if labels and project.listed_cells is not None:
        from dlformats.model import plan_export

        plan = plan_export(project.listed_cells)
    total = channels * frames

    def planes() -> Any:
        done = 0
        for c in range(channels):
            for t in range(frames):
                if not labels:
                    plane = np.asarray(array[c, t])
                elif plan is not None:
                    plane = plan.apply(project.label_frame(c, t), c, t)
                else:
                    plane = project.label_frame(c, t, negatives=True, wide=keep)
                yield np.ascontiguousarray(plane, dtype=dtype)
                done += 1
                options.report(done, total)

    frame_letter = "Z" if project.frame_axis == "Z" else "T"
    metadata: dict[str, Any] = {"axes": f"C{frame_letter}YX"}
    if names and len(names) == channels:
        metadata["Channel"] = {"Name": [str(n) for n in names]}
    nbytes = total * height * width * dtype.itemsize
    with tifffile.TiffWriter(path, bigtiff=nbytes > (2**31 - 2**25), ome=True) as tif:
        tif.write(
            planes(),
            shape=(channels, frames, height, width),
            dtype=dtype,
            photometric="minisblack",
            compression=compression,
            metadata=metadata,
        )
    options.report(total, total)  # tifffile stops pulling planes once it has them all


@hookimpl
def dlformats_formats() -> list[FormatSpec]:
    """The TIFF format and the OME companion format."""
    return [
        FormatSpec(
            name="tiff",
            description="TIFF, BigTIFF, ImageJ and OME-TIFF images or label stacks (any axes, lazily read)",
            extensions=EXTENSIONS,
            signatures=SIGNATURES,
            reads=parts("X", "y", "channels", "features"),
            writes=parts("X", "channels"),
            read=_read,
            write=_write,
            describe=_describe,
            frame_axes="TZ",
            install_hint="tifffile, imagecodecs",
            read_options=(SERIES,),
            write_options=(
                Option(
                    "compression",
                    str,
                    "zlib",
                    choices=tuple(COMPRESSIONS),
                    help="how the planes are compressed (deflate is zlib)",
                ),
                Option(
                    "part",
                    str,
                    "X",
                    choices=("X", "y"),
                    help="what to write: the image X, or the labels y (int32, one value per cell)",
                    writes={"X": parts("X", "channels"), "y": parts("y", "features")},
                ),
            ),
        ),
        FormatSpec(
            name="ome-companion",
            description="multi-file OME-TIFF described by a companion .ome XML file beside its TIFFs",
            extensions=COMPANION_EXTENSIONS,
            sniff=_sniff_companion,
            reads=parts("X", "y", "channels", "features"),
            read=_read_companion,
            describe=_describe_companion,
            install_hint="tifffile, imagecodecs",
            read_options=(SERIES,),
        ),
    ]
