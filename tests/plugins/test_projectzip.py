"""The DeepCell Label project zip plugin: real fixtures, export rule, round trips, the command."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

import dlformats
from dlformats import Cell, CorruptFileError, Division, DLFormatsWarning, Project, testing

FIXTURES = testing.fixtures_dir()
DCL = FIXTURES / "deepcell-label" if FIXTURES else None
needs_fixtures = pytest.mark.skipif(FIXTURES is None, reason="../shared/fixtures is absent")
FORMAT = "dcl-project-zip"

# Facts from ../shared/fixtures/SOURCES.md: (X shape, X dtype, y shape) as (C, F, H, W).
EXPECTED = {
    "oneDivision.zip": ((1, 2, 52, 29), "uint8", (1, 2, 52, 29), 5, 1, 0),
    "rgb.zip": ((3, 1, 10, 10), "uint8", (1, 1, 10, 10), 2, 0, 0),
    "spots.zip": ((3, 1, 100, 100), "uint8", (2, 1, 100, 100), 3, 0, 26),
    "history/oneDivision_2022-05-06_lineage-json.zip": ((1, 2, 52, 29), "uint8", (1, 2, 52, 29), 5, 1, 0),
    "history/oneDivision_2022-06-03_nested-folder.zip": ((1, 2, 52, 29), "uint8", (1, 2, 52, 29), 5, 1, 0),
    "history/rgb_2022-06-02_nested-folder.zip": ((3, 1, 38, 34), "uint8", (1, 1, 38, 34), 0, 0, 0),
    "history/rgb_2022-06-08.zip": ((3, 1, 10, 10), "uint8", (1, 1, 10, 10), 0, 0, 0),
    "history/spots_2022-04-19.zip": ((3, 1, 100, 100), "uint8", (2, 1, 100, 100), 3, 0, 26),
    "history/testProject_2022-04-19.zip": ((3, 1, 38, 34), "uint8", (1, 1, 38, 34), 0, 0, 0),
}


def test_declared_and_light():
    testing.check_declared(FORMAT)
    testing.check_import_light("dlformats_projectzip")


@needs_fixtures
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reads_every_fixture(name):
    xshape, xdtype, yshape, ncells, ndiv, nspots = EXPECTED[name]
    path = DCL / name
    testing.check_sniff(FORMAT, path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DLFormatsWarning)
        project = testing.check_read(FORMAT, path)
    assert tuple(project.X.shape) == xshape
    assert str(project.X.dtype) == xdtype
    assert tuple(project.y.shape) == yshape and project.y.dtype == np.int32
    assert len(project.cells) == ncells
    assert len(project.divisions) == ndiv
    assert (len(project.spots) if project.spots else 0) == nspots
    assert project.provenance["X"].format == FORMAT


@needs_fixtures
def test_one_division_values_and_frames_in_ome_z():
    project = dlformats.read(DCL / "oneDivision.zip")
    with zipfile.ZipFile(DCL / "oneDivision.zip") as zf:
        y = tifffile.imread(io.BytesIO(zf.read("y.ome.tiff")))  # (Z, Y, X): Z = frames
    np.testing.assert_array_equal(np.asarray(project.y)[0], y)
    assert project.divisions == [Division(31, [134, 135], 1)]
    assert Cell(134, 134, 1, 0) in project.cells


@needs_fixtures
def test_lineage_json_becomes_divisions_and_dict_cells_are_read():
    project = dlformats.read(DCL / "history/oneDivision_2022-05-06_lineage-json.zip")
    assert [(d.parent, sorted(d.daughters), d.t) for d in project.divisions] == [(31, [134, 135], 1)]
    assert sorted(project.cells) == sorted(
        [Cell(23, 23, 0), Cell(23, 23, 1), Cell(31, 31, 0), Cell(134, 134, 1), Cell(135, 135, 1)]
    )


@needs_fixtures
def test_cells_without_c_get_the_feature_holding_their_value():
    # spots.zip has two features; its cells.json has no "c": 12 is in feature 0, 6 and 13 in feature 1
    project = dlformats.read(DCL / "spots.zip")
    y = np.asarray(project.y)
    for cell in project.cells:
        assert cell.value in y[cell.c, cell.t], cell
    assert {(c.cell, c.c) for c in project.cells} == {(12, 0), (6, 1), (13, 1)}
    old = dlformats.read(DCL / "history/spots_2022-04-19.zip")  # the dict form says the same
    assert sorted(old.cells) == sorted(project.cells)


@needs_fixtures
def test_spots_real_file_crlf_floats_header():
    project = dlformats.read(DCL / "spots.zip")
    assert len(project.spots) == 26
    assert project.spots.x[0] == pytest.approx(86.6475)
    assert project.spots.y[0] == pytest.approx(45.35298)
    assert list(project.spots.columns) == ["cellID"]
    assert 13 in project.spots.columns["cellID"]


def _member_json(path: Path, name: str):
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read(name))


@needs_fixtures
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_convert_fixture_round_trip_with_command(name, tmp_path):
    out = tmp_path / "out.zip"
    run = subprocess.run(
        [sys.executable, "-m", "dlformats.cli", "convert", str(DCL / name), str(out)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    info = subprocess.run(
        [sys.executable, "-m", "dlformats.cli", "info", "--json", str(out)], capture_output=True, text=True
    )
    assert info.returncode == 0, info.stderr
    summary = json.loads(info.stdout)
    xshape, xdtype, yshape, ncells, ndiv, nspots = EXPECTED[name]
    assert summary["format"] == FORMAT
    assert summary["X"] == {"shape": list(xshape), "dtype": xdtype}
    assert summary["y"] == {"shape": list(yshape), "dtype": "int32"}
    assert (summary["cells"], summary["divisions"], summary["spots"]) == (ncells, ndiv, nspots)
    # tifffile reads what we wrote as OME-TIFF with axes C, Z, Y, X (squeezing nothing we need)
    with zipfile.ZipFile(out) as zf:
        for member, shape in (("X.ome.tiff", xshape), ("y.ome.tiff", yshape)):
            with tifffile.TiffFile(io.BytesIO(zf.read(member))) as tif:
                assert tif.is_ome
                series = tif.series[0]
                assert series.get_axes(False).replace("T", "").replace("S", "") == "CZYX"
                assert tuple(series.get_shape(False))[1:5] == shape
                assert tif.pages[0].photometric == tifffile.PHOTOMETRIC.MINISBLACK
        assert zf.getinfo("X.ome.tiff").compress_type == zipfile.ZIP_STORED
        cells = json.loads(zf.read("cells.json"))
        assert all(set(c) == {"value", "cell", "t", "c"} for c in cells)
    # pixels and cells survive the trip
    a, b = dlformats.read(DCL / name), dlformats.read(out)
    testing.assert_arrays_equal(a.X, b.X, "X")
    testing.assert_arrays_equal(a.y, b.y, "y")
    assert sorted(set(a.cells)) == sorted(set(b.cells))


def test_round_trip_everything(tmp_path):
    project = testing.make_project(channels=3, frames=4, features=2, dtype="uint16")
    project.features = ["nuclear", "whole-cell"]
    project.embeddings = [None, [0.5, 1.0], [1.5, -2.0]]
    project.frame_axis = "Z"
    from dlformats import CellType

    project.cell_types = [CellType(1, "T cell", "#ff0000", 0, [1, 2]), CellType(2, "B cell", "#00ff00", 1, [3])]
    back = testing.check_roundtrip(FORMAT, project, tmp_path / "p.zip")
    assert back.frame_axis == "Z"
    assert back.features == ["nuclear", "whole-cell"]


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"])
def test_image_dtype_is_kept(dtype, tmp_path):
    project = testing.make_project(dtype=dtype, frames=2)
    back = testing.check_roundtrip(FORMAT, project, tmp_path / "p.zip", parts=("X", "y", "cells"))
    assert back.X.dtype == np.dtype(dtype)


def test_width_3_or_4_is_not_mistaken_for_rgb(tmp_path):
    project = testing.make_project(channels=1, frames=2, height=5, width=3)
    testing.check_roundtrip(FORMAT, project, tmp_path / "p.zip", parts=("X", "y"))
    project = testing.make_project(channels=4, frames=1, height=4, width=4)
    testing.check_roundtrip(FORMAT, project, tmp_path / "q.zip", parts=("X", "y"))


def _slow_export(y, cells):
    """The export rule written plainly, per frame, feature and value."""
    y = np.asarray(y)
    out = np.zeros_like(y)
    top = max((c.cell for c in cells), default=0)
    new_cells = set()
    for c in range(y.shape[0]):
        for t in range(y.shape[1]):
            groups = {}
            for cell in cells:
                if cell.c == c and cell.t == t:
                    groups.setdefault(cell.value, set()).add(cell.cell)
            nxt = top + 1
            for value in sorted(groups):
                members = groups[value]
                if len(members) == 1:
                    (new,) = members
                else:
                    new, nxt = nxt, nxt + 1
                out[c, t][y[c, t] == value] = new
                new_cells |= {Cell(new, m, t, c) for m in members}
    return out, new_cells


def test_export_rule_overlaps_out_of_order_and_features(tmp_path):
    rng = np.random.default_rng(3)
    y = rng.integers(0, 8, (2, 3, 16, 16)).astype(np.int32)
    cells = []
    for c in range(2):
        for t in range(3):
            for v in range(1, 7):  # value 7 is used by no cell: must become 0
                cells.append(Cell(v, v + 10 * c, t, c))
            cells.append(Cell(3, 50, t, c))  # value 3 also encodes cell 50: overlap
    rng.shuffle(cells)  # order of cells.json must not matter
    cells.append(cells[0])  # a duplicate entry counts once
    project = Project(X=rng.integers(0, 255, (1, 3, 16, 16), dtype=np.uint8), y=y, cells=cells)
    dlformats.write(project, tmp_path / "p.zip")
    back = dlformats.read(tmp_path / "p.zip")
    want_y, want_cells = _slow_export(y, cells)
    np.testing.assert_array_equal(np.asarray(back.y), want_y)
    assert set(back.cells) == want_cells
    top = max(c.cell for c in cells)
    for c in range(2):
        for t in range(3):
            plane = np.asarray(back.y)[c, t]
            assert 7 not in plane or top >= 7  # unlisted value 7 is gone (or reused as a cell id)
            overlap_values = {cl.value for cl in back.cells if cl.cell == 50 and cl.t == t and cl.c == c}
            assert all(v > top for v in overlap_values)


def test_labels_without_cells_derive_one_cell_per_value(tmp_path):
    y = np.zeros((1, 2, 6, 6), np.int32)
    y[0, 0, :2, :2] = 4
    y[0, 1, 3:, 3:] = 9
    project = Project(X=np.zeros((1, 2, 6, 6), np.uint8), y=y)  # cells=None: the source said nothing
    dlformats.write(project, tmp_path / "p.zip")
    back = dlformats.read(tmp_path / "p.zip")
    assert sorted(back.cells) == [Cell(4, 4, 0, 0), Cell(9, 9, 1, 0)]
    np.testing.assert_array_equal(np.asarray(back.y), y)


def test_lazy_planes_from_stored_members(tmp_path):
    project = testing.make_project(frames=6)
    dlformats.write(project, tmp_path / "p.zip")
    back = dlformats.read(tmp_path / "p.zip")
    assert not isinstance(back.X, np.ndarray)  # lazy: nothing read yet
    np.testing.assert_array_equal(back.X[1, 4], project.X[1, 4])


def test_divisions_json_wins_over_lineage_with_warning(tmp_path):
    project = testing.make_project()
    dlformats.write(project, tmp_path / "p.zip")
    lineage = {
        "1": {"label": 1, "frames": [0], "daughters": [3, 4], "parent": None},
        "3": {"label": 3, "frames": [2], "daughters": [], "parent": 1},
        "4": {"label": 4, "frames": [2], "daughters": [], "parent": 1},
    }
    with zipfile.ZipFile(tmp_path / "p.zip", "a") as zf:
        zf.writestr("lineage.json", json.dumps(lineage))
    with pytest.warns(DLFormatsWarning, match="disagree"):
        back = dlformats.read(tmp_path / "p.zip")
    assert [(d.parent, d.t) for d in back.divisions] == [(1, 1)]


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_broken_members_give_typed_errors_naming_file_and_member(tmp_path):
    good = tmp_path / "good.zip"
    dlformats.write(testing.make_project(), good)
    with zipfile.ZipFile(good) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    bad = _zip(tmp_path / "bad.zip", {**members, "cells.json": b'[{"value": 1, "cell": NaN, "t": 0}]'})
    with pytest.raises(CorruptFileError) as err:
        dlformats.read(bad)
    assert "bad.zip" in str(err.value) and "cells.json" in str(err.value)
    bad = _zip(tmp_path / "bad2.zip", {**members, "X.ome.tiff": b"II*\x00" + b"\x00" * 20})
    with pytest.raises(dlformats.DLFormatsError) as err:
        dlformats.read(bad)
    assert "bad2.zip" in str(err.value) and "X.ome.tiff" in str(err.value)
    bad = _zip(tmp_path / "bad3.zip", {k: v for k, v in members.items() if k != "X.ome.tiff"})
    with pytest.raises(CorruptFileError, match=r"no X\.ome\.tiff"):
        dlformats.read(bad)


def test_failed_write_leaves_old_target_and_no_temporary(tmp_path):
    target = tmp_path / "p.zip"
    target.write_bytes(b"old")
    project = testing.make_project()
    project.spots.x.append(float("nan"))  # spots columns now disagree in length -> refused before writing
    with pytest.raises(dlformats.InconsistentDataError):
        dlformats.write(project, target)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.zip"]


def test_frames_larger_than_uint8_range_and_many_cells(tmp_path):
    y = np.arange(1, 64 * 64 + 1, dtype=np.int32).reshape(1, 1, 64, 64)
    cells = [Cell(int(v), int(v), 0, 0) for v in range(1, 64 * 64 + 1)]
    project = Project(X=np.zeros((1, 1, 64, 64), np.float32), y=y, cells=cells)
    dlformats.write(project, tmp_path / "p.zip")
    back = dlformats.read(tmp_path / "p.zip")
    np.testing.assert_array_equal(np.asarray(back.y), y)
    assert len(back.cells) == 64 * 64


@pytest.mark.parametrize("kind", ["runs", "noise-small", "noise-large", "empty", "constant"])
def test_values_of_derived_cells_equal_numpy_unique(kind):
    from dlformats.model import present_values

    rng = np.random.default_rng(5)
    plane = {
        "runs": np.repeat(rng.integers(0, 50, (40, 8)), 8, axis=1),
        "noise-small": rng.integers(0, 60, (40, 64)),
        "noise-large": rng.integers(0, 2**31 - 1, (40, 64)),
        "empty": np.zeros((0, 5)),
        "constant": np.full((6, 6), 9),
    }[kind].astype(np.int32)
    values = np.unique(plane)
    np.testing.assert_array_equal(present_values(plane), values[values > 0])


def test_members_that_are_not_simple_ome_go_through_the_series_path(tmp_path):
    # A plain (non-OME) TIFF stack as X and an OME y with pages in ZCT order: both read right.
    image = np.arange(3 * 5 * 6, dtype=np.uint16).reshape(3, 5, 6)  # frames, height, width
    labels = np.zeros((2, 3, 5, 6), np.int32)  # features, frames, height, width
    labels[1, 2, 1:3, 1:3] = 7
    x, y = io.BytesIO(), io.BytesIO()
    tifffile.imwrite(x, image, photometric="minisblack", metadata={"axes": "ZYX"})
    tifffile.imwrite(y, labels.transpose(1, 0, 2, 3), ome=True, photometric="minisblack", metadata={"axes": "ZCYX"})
    path = _zip(tmp_path / "p.zip", {"X.ome.tiff": x.getvalue(), "y.ome.tiff": y.getvalue(), "cells.json": b"[]"})
    project = dlformats.read(path)
    np.testing.assert_array_equal(np.asarray(project.X)[0], image)
    np.testing.assert_array_equal(np.asarray(project.y), labels)


def test_first_frame_of_a_long_movie_parses_few_pages(tmp_path, monkeypatch):
    X = np.zeros((1, 300, 4, 4), np.uint8)
    X[0, 299] = 5
    dlformats.write(Project(X=X, cells=[]), tmp_path / "p.zip")
    parsed = []
    original = tifffile.TiffPage.__init__

    def counting(self, *args, **kwargs):
        parsed.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(tifffile.TiffPage, "__init__", counting)
    project = dlformats.read(tmp_path / "p.zip")
    assert project.X[0, 299].max() == 5
    assert len(parsed) < 10  # X and y page 0 and page 299, not all 600 pages


def test_a_member_with_several_series_is_refused_not_cut(tmp_path):
    two = io.BytesIO()
    with tifffile.TiffWriter(two) as tif:
        tif.write(np.zeros((4, 4), np.uint8), photometric="minisblack")
        tif.write(np.ones((6, 6), np.uint8), photometric="minisblack")
    path = _zip(tmp_path / "p.zip", {"X.ome.tiff": two.getvalue(), "cells.json": b"[]"})
    with pytest.raises(dlformats.UnsupportedFeatureError, match="2 image series") as err:
        dlformats.read(path)
    assert err.value.member == "X.ome.tiff"


_NO_TIFFFILE = """
import json, sys
import numpy as np
import dlformats
from dlformats import cli

path = sys.argv[1]
assert cli.main(["info", path]) == 0
project = dlformats.read(path)
out = {"after_read": "tifffile" in sys.modules, "X": list(project.X.shape), "channels": project.channels}
out["plane"] = np.asarray(project.X[1, 2]).tolist()
out["labels"] = np.asarray(project.y[0, 1]).tolist()
out["after_plane"] = "tifffile" in sys.modules
print(json.dumps(out))
"""


def test_info_and_read_of_a_project_zip_need_no_tifffile_until_a_plane(tmp_path):
    # `dlformats info` and a lazy read learn shapes, dtypes and channel names from the TIFFs'
    # first IFD and OME-XML; tifffile comes in with the first pixel read.
    project = testing.make_project(channels=2, frames=4, dtype="uint16")
    project.channels = ["DAPI", "007"]
    dlformats.write(project, tmp_path / "full.zip")
    with zipfile.ZipFile(tmp_path / "full.zip") as zf:  # no channels.json: the names come from the OME-XML
        members = {n: zf.read(n) for n in zf.namelist() if n != "channels.json"}
    path = _zip(tmp_path / "p.zip", members)
    run = subprocess.run([sys.executable, "-c", _NO_TIFFFILE, str(path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["after_read"] is False
    assert out["X"] == [2, 4, 12, 10] and out["channels"] == ["DAPI", "007"]
    np.testing.assert_array_equal(np.array(out["plane"]), project.X[1, 2])
    np.testing.assert_array_equal(np.array(out["labels"]), np.asarray(dlformats.read(tmp_path / "full.zip").y[0, 1]))
    assert out["after_plane"] is True


@needs_fixtures
def test_deepcell_label_projects_read_without_tifffile():
    # Every TIFF DeepCell Label wrote in the fixtures is a simple OME-TIFF.  spots.zip is left out:
    # its cells.json has no "c", so the labels' pixels are read to find each cell's feature.
    names = [n for n in sorted(EXPECTED) if not n.endswith("spots.zip")]
    code = (
        "import json, sys, warnings, dlformats\n"
        "warnings.simplefilter('ignore')\n"
        "shapes = [[list(p.X.shape), list(p.y.shape)] for p in map(dlformats.read, sys.argv[1:])]\n"
        "print(json.dumps({'tifffile': 'tifffile' in sys.modules, 'shapes': shapes}))\n"
    )
    run = subprocess.run([sys.executable, "-c", code, *(str(DCL / n) for n in names)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["tifffile"] is False
    assert out["shapes"] == [[list(EXPECTED[n][0]), list(EXPECTED[n][2])] for n in names]


@pytest.mark.parametrize(
    "old, new",
    [('SizeX="5"', 'SizeX="6"'), ('Type="uint8"', 'Type="uint16"'), ('SizeZ="2"', 'SizeZ="3"'), ('IFD="0"', 'IFD="1"')],
)
def test_a_member_whose_ome_xml_disagrees_with_its_tags_errs_or_reads_right(old, new, tmp_path):
    # The hand parse leaves such a member to tifffile's series: a typed error or the right pixels.
    data = np.arange(2 * 4 * 5, dtype=np.uint8).reshape(2, 4, 5)
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
        '<Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint8" SizeX="5" SizeY="4" '
        'SizeZ="2" SizeC="1" SizeT="1"><Channel ID="Channel:0" SamplesPerPixel="1"/>'
        '<TiffData IFD="0" PlaneCount="2"/></Pixels></Image></OME>'
    )
    assert old in xml
    raw = io.BytesIO()
    tifffile.imwrite(raw, data, photometric="minisblack", metadata=None, description=xml.replace(old, new))
    path = _zip(tmp_path / "p.zip", {"X.ome.tiff": raw.getvalue(), "cells.json": b"[]"})
    try:
        X = np.asarray(dlformats.read(path).X)
    except dlformats.DLFormatsError as err:
        assert err.path == str(path) and err.member == "X.ome.tiff"
    else:
        np.testing.assert_array_equal(X, data[np.newaxis])


@pytest.mark.parametrize("read_a_plane", [False, True])
def test_the_open_file_lives_as_long_as_the_arrays_whether_or_not_a_plane_was_read(tmp_path, read_a_plane):
    import gc
    import pickle
    import weakref

    from dlformats.sources import open_source

    project = testing.make_project(frames=3)
    dlformats.write(project, tmp_path / "p.zip")
    source = open_source(tmp_path / "p.zip")
    back = dlformats.read(source)
    opened = weakref.ref(source.file)
    source.close()
    if read_a_plane:
        np.testing.assert_array_equal(back.X[1, 2], project.X[1, 2])
    gc.collect()
    assert opened() is not None  # the lazy arrays still read it
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(back.X)
    np.testing.assert_array_equal(back.X[0, 1], project.X[0, 1])
    del back
    gc.collect()
    assert opened() is None  # nothing reads it any more: its descriptor is closed


# ------------------------------------------------------------------ TIFF members deflated in the zip
def _deflated_copy(src: Path, dst: Path) -> Path:
    """``src`` rewritten the way DeepCell Label writes its project zips: every member deflated."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
    return dst


def _deflated_project(tmp_path: Path, **shape: int) -> tuple[Project, Path]:
    project = testing.make_project(**shape)
    dlformats.write(project, tmp_path / "stored.zip", options={"image_compression": "none"})
    return project, _deflated_copy(tmp_path / "stored.zip", tmp_path / "deflated.zip")


def _planes_equal(got, want) -> None:
    assert tuple(got.shape) == tuple(want.shape) and got.dtype == want.dtype
    for c in range(want.shape[0]):
        for t in range(want.shape[1]):
            np.testing.assert_array_equal(np.asarray(got[c, t]), np.asarray(want[c, t]), err_msg=f"plane {c}, {t}")


def test_a_deflated_image_over_member_bytes_is_read_plane_by_plane(tmp_path):
    project, path = _deflated_project(tmp_path, channels=2, frames=6, height=64, width=48, dtype="uint16")
    with zipfile.ZipFile(path) as zf:
        x_size = zf.getinfo("X.ome.tiff").file_size
        assert zf.getinfo("X.ome.tiff").compress_type == zipfile.ZIP_DEFLATED
    limits = dlformats.Limits(member_bytes=x_size // 2)  # was: LimitExceededError naming member_bytes
    back = dlformats.read(path, limits=limits)
    _planes_equal(back.X, project.X)
    _planes_equal(back.y, project.y)
    assert {c.cell for c in back.cells} == {c.cell for c in project.cells}


def test_threads_share_a_project_read_from_deflated_members(tmp_path, monkeypatch):
    import random
    import threading

    import dlformats_projectzip

    from dlformats.containers import archive

    project, path = _deflated_project(tmp_path, channels=3, frames=10, height=64, width=40, features=2, seed=5)
    monkeypatch.setattr(dlformats_projectzip, "SEEKABLE_ABOVE", 0)
    monkeypatch.setattr(archive, "_SEGMENT", 5000)  # many checkpoints: threads cross them all the time
    back = dlformats.read(path)
    want = {"X": np.asarray(project.X), "y": np.asarray(project.y)}
    errors: list[str] = []
    barrier = threading.Barrier(8)

    def work(seed: int) -> None:
        rng = random.Random(seed)
        barrier.wait()
        for _ in range(40):
            part = rng.choice(["X", "y"])
            c, t = rng.randrange(want[part].shape[0]), rng.randrange(want[part].shape[1])
            try:
                plane = np.asarray(getattr(back, part)[c, t])
            except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                errors.append(f"{part}[{c}, {t}]: {type(exc).__name__}: {exc}")
                continue
            if not np.array_equal(plane, want[part][c, t]):
                errors.append(f"{part}[{c}, {t}] wrong")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [], errors[:3]


@needs_fixtures
def test_fixtures_read_the_same_through_deflated_members_read_by_position(monkeypatch):
    import dlformats_projectzip

    from dlformats.containers import archive

    def read_all():
        out = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DLFormatsWarning)
            for name in EXPECTED:
                project = dlformats.read(DCL / name)
                out[name] = (np.asarray(project.X), np.asarray(project.y))
        return out

    before = read_all()
    opened: list[str] = []
    real = archive.SafeZip.open_seekable

    def counted(self, name, **kwargs):
        opened.append(name)
        return real(self, name, **kwargs)

    monkeypatch.setattr(archive.SafeZip, "open_seekable", counted)
    monkeypatch.setattr(dlformats_projectzip, "SEEKABLE_ABOVE", 0)
    monkeypatch.setattr(archive, "_SEGMENT", 1000)  # several checkpoints even in these small members
    after = read_all()
    assert len(opened) == 2 * (len(EXPECTED) - 1)  # every TIFF but rgb.zip's, stored in place
    for name, (X, y) in before.items():
        np.testing.assert_array_equal(after[name][0], X, err_msg=name)
        np.testing.assert_array_equal(after[name][1], y, err_msg=name)
