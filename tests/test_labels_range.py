"""Label values that int32 cannot hold: refused by name, relabelled on request, kept where a format can.

DeepCell Label stores labels as int32.  A project whose ``y`` holds int64, uint32 or
uint64 values beyond int32 (or negative values) must not be written wrapped or
clipped: ``(1 << 32) | 5`` silently becoming 5 merges two cells.
"""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import tifffile

import dlformats
from dlformats import Cell, InconsistentDataError, Project
from dlformats.arrays import LazyArray

BIG = (1 << 32) | 5  # wraps to 5 in int32
H, W = 6, 5

# Formats storing labels as int32 only, with a file name for each.
INT32_FORMATS = [
    ("dcl-project-zip", "out.zip"),
    ("dcl-export-zip", "out.zip"),
    ("dcl-edit-zip", "out.zip"),
    ("label-zip", "out.zip"),
    ("trk", "out.trk"),
]


def labels_project(values: tuple[int, ...] = (5, BIG), dtype: str = "int64", frames: int = 2) -> Project:
    """Image (1, frames, H, W) uint8 and labels (1, frames, H, W): ``values`` in blocks of frame 0, then 5s."""
    X = np.arange(frames * H * W, dtype=np.uint8).reshape(1, frames, H, W)
    y = np.zeros((1, frames, H, W), dtype)
    for i, value in enumerate(values):
        y[0, 0, 2 * i : 2 * i + 2, :] = value
    y[0, 1:, 4:, :] = 5
    return Project(X=X, y=y)


def for_format(fmt: str, project: Project) -> Project:
    if fmt == "dcl-edit-zip":  # one frame, and the edit to send
        project.X, project.y = project.X[:, :1], project.y[:, :1]
        project.metadata["edit"] = {"action": "erode", "args": {"cell": 5}, "writeMode": "overwrite"}
    return project


def assert_nothing_written(folder) -> None:
    assert list(folder.iterdir()) == [], list(folder.iterdir())


# ------------------------------------------------------------------ refused
@pytest.mark.parametrize(("fmt", "name"), INT32_FORMATS)
def test_int32_formats_refuse_values_beyond_int32_by_name(tmp_path, fmt, name):
    project = for_format(fmt, labels_project())
    with pytest.raises(InconsistentDataError) as info:
        dlformats.write(project, tmp_path / name, format=fmt)
    text = str(info.value)
    assert str(BIG) in text and "y" in text and "feature 0 frame 0" in text
    assert "options={'relabel': True}" in text  # Python's syntax in Python
    assert info.value.problems and info.value.problems[0].part == "y"
    assert_nothing_written(tmp_path)


@pytest.mark.parametrize(
    ("values", "dtype", "shown"),
    [
        ((5, 1 << 40), "int64", "1099511627776"),
        ((7, 2**31 + 7, 2**32 - 1), "uint32", "2147483655, 4294967295"),
        ((1, 2**63 + 1), "uint64", "9223372036854775809"),
        ((3, -(2**31) - 1), "int64", "-2147483649"),
    ],
)
def test_values_beyond_int32_are_named(tmp_path, values, dtype, shown):
    with pytest.raises(InconsistentDataError, match=shown):
        dlformats.write(labels_project(values, dtype), tmp_path / "out.zip")
    assert_nothing_written(tmp_path)


def test_the_plane_holding_them_is_named(tmp_path):
    project = labels_project((5,))
    project.y[0, 1, 0, 0] = BIG
    with pytest.raises(InconsistentDataError, match="feature 0 frame 1"):
        dlformats.write(project, tmp_path / "out.zip")
    assert_nothing_written(tmp_path)


@pytest.mark.parametrize(("fmt", "name"), INT32_FORMATS)
@pytest.mark.parametrize("dtype", ["int64", "int32", "int8"])
def test_negative_labels_are_refused_not_zeroed(tmp_path, fmt, name, dtype):
    project = for_format(fmt, labels_project((5, -3), dtype))
    with pytest.raises(InconsistentDataError, match="negative values -3") as info:
        dlformats.write(project, tmp_path / name, format=fmt)
    assert "options={'relabel': True}" in str(info.value)
    assert_nothing_written(tmp_path)


def test_negative_labels_are_refused_with_cells_too(tmp_path):
    project = labels_project((5, -3), "int32")
    project.cells = [Cell(5, 1, 0), Cell(5, 1, 1)]
    with pytest.raises(InconsistentDataError, match="negative values -3"):
        dlformats.write(project, tmp_path / "out.zip")
    assert_nothing_written(tmp_path)


# ------------------------------------------------------------------ fitting values are cast
@pytest.mark.parametrize("dtype", ["int64", "uint32", "uint64", ">i8"])
def test_wide_dtypes_whose_values_fit_are_cast_and_round_trip(tmp_path, dtype):
    project = labels_project((5, 2**31 - 1), dtype)
    for fmt, name in INT32_FORMATS:
        if fmt == "dcl-edit-zip":
            continue  # one frame only; covered below
        path = tmp_path / fmt / name
        path.parent.mkdir()
        dlformats.write(project, path, format=fmt)
        back = dlformats.read(path, format=fmt)
        assert back.y.dtype == np.int32, fmt
        np.testing.assert_array_equal(np.asarray(back.y), np.asarray(project.y).astype(np.int64), err_msg=fmt)
    edit = for_format("dcl-edit-zip", labels_project((5, 2**31 - 1), dtype))
    dlformats.write(edit, tmp_path / "edit.zip", format="dcl-edit-zip")
    back = dlformats.read(tmp_path / "edit.zip", format="dcl-edit-zip")
    np.testing.assert_array_equal(np.asarray(back.y), np.asarray(edit.y).astype(np.int64))


# ------------------------------------------------------------------ relabel
def test_relabel_maps_values_to_consecutive_ids_per_feature_and_rewrites_cells():
    y = np.zeros((2, 3, H, W), np.int64)
    y[0, 0, :2] = BIG
    y[0, 0, 2:4] = 5
    y[0, 1, :2] = BIG  # the same cell in a later frame keeps one id
    y[0, 2, 0, 0] = -4
    y[1, 0, :3] = 1 << 40
    y[1, 2, 3:] = 9
    cells = [Cell(BIG, 1, 0, 0), Cell(5, 2, 0, 0), Cell(BIG, 1, 1, 0), Cell(1 << 40, 3, 0, 1), Cell(9, 4, 2, 1)]
    project = Project(y=y, cells=cells, features=["a", "b"])
    out = dlformats.relabel(project)
    assert project.y is y and project.cells == cells  # the original is untouched
    assert out.y.dtype == np.int32 and tuple(out.y.shape) == y.shape
    new = np.asarray(out.y)
    # feature 0: -4, 5, BIG -> 1, 2, 3 (order of value); feature 1: 9, 1 << 40 -> 1, 2; 0 stays 0
    expected = np.zeros_like(new)
    expected[0, 0, :2], expected[0, 0, 2:4], expected[0, 1, :2], expected[0, 2, 0, 0] = 3, 2, 3, 1
    expected[1, 0, :3], expected[1, 2, 3:] = 2, 1
    np.testing.assert_array_equal(new, expected)
    np.testing.assert_array_equal(out.y[1, 2], expected[1, 2])  # planes one at a time, as writers read them
    rewritten = [Cell(3, 1, 0, 0), Cell(2, 2, 0, 0), Cell(3, 1, 1, 0), Cell(2, 3, 0, 1), Cell(1, 4, 2, 1)]
    assert sorted(out.cells) == sorted(rewritten)
    assert out.features == ["a", "b"] and isinstance(out.cells, list)
    from dlformats.model import CellTable

    table = dlformats.relabel(Project(y=y, cells=CellTable.from_cells(cells))).cells
    assert isinstance(table, CellTable) and sorted(table) == sorted(rewritten)
    assert [p for p in out.validate(pixels=True) if p.part == "y" and p.severity == "error"] == []


def test_relabel_without_cells_keeps_cells_derived():
    out = dlformats.relabel(labels_project())
    assert out.listed_cells is None and out.cells.derived
    assert np.unique(np.asarray(out.y)).tolist() == [0, 1, 2]
    assert sorted(out.cells_or_derived()) == [Cell(1, 1, 0), Cell(1, 1, 1), Cell(2, 2, 0)]


@pytest.mark.parametrize(("fmt", "name"), INT32_FORMATS)
def test_write_option_relabel_writes_what_would_be_refused(tmp_path, fmt, name):
    project = for_format(fmt, labels_project((5, BIG, -3)))
    path = tmp_path / name
    dlformats.write(project, path, format=fmt, options={"relabel": True})
    back = dlformats.read(path, format=fmt)
    y = np.asarray(back.y)
    # three distinct cells in frame 0, and the 5 of later frames is the 5 of frame 0
    block = [int(y[0, 0, 2 * i, 0]) for i in range(3)]
    assert len(set(block)) == 3 and 0 not in block
    if y.shape[1] > 1:
        assert int(y[0, 1, 5, 0]) == block[0]
    values = {c.value for c in back.cells_or_derived()}
    assert values == set(block)


def test_relabel_option_with_cells_gives_each_pixel_its_cell(tmp_path):
    project = labels_project()
    project.cells = [Cell(5, 1, 0), Cell(BIG, 2, 0), Cell(5, 1, 1)]
    dlformats.write(project, tmp_path / "out.zip", options={"relabel": True})
    back = dlformats.read(tmp_path / "out.zip")
    y = np.asarray(back.y)
    assert (y[0, 0, 0, 0], y[0, 0, 2, 0], y[0, 1, 5, 0]) == (1, 2, 1)
    assert sorted(back.cells) == [Cell(1, 1, 0), Cell(1, 1, 1), Cell(2, 2, 0)]


def test_relabel_option_must_be_a_boolean(tmp_path):
    with pytest.raises(dlformats.InvalidOptionError, match="relabel"):
        dlformats.write(labels_project(), tmp_path / "out.zip", options={"relabel": "maybe"})
    assert_nothing_written(tmp_path)


def test_relabel_refuses_non_integer_labels():
    project = Project(y=np.array([[[[1.5, 0.0]]]]))
    with pytest.raises(InconsistentDataError, match="non-integer"):
        dlformats.relabel(project)


def test_command_line_names_the_values_and_relabels_on_request(tmp_path, capsys):
    from dlformats.cli import main

    y = np.zeros((2, H, W, 1), np.int64)
    y[0, :2], y[0, 2:4], y[1, :2] = BIG, 5, BIG
    np.savez(tmp_path / "in.npz", X=np.ones((2, H, W, 1), np.uint8), y=y)
    out = tmp_path / "out.zip"
    assert main(["convert", str(tmp_path / "in.npz"), str(out)]) == 2
    err = capsys.readouterr().err
    assert str(BIG) in err and "--write-option relabel=true" in err and not out.exists()
    assert main(["convert", str(tmp_path / "in.npz"), str(out), "--write-option", "relabel=true"]) == 0
    back = np.asarray(dlformats.read(out).y)[0]
    assert (back[0, 0, 0], back[0, 2, 0], back[1, 0, 0]) == (2, 1, 2)


# ------------------------------------------------------------------ validate
def test_validate_pixels_reports_values_int32_cannot_hold():
    project = labels_project((5, BIG, -3))
    problems = [p for p in project.validate(pixels=True) if p.part == "y" and p.severity == "error"]
    text = " ".join(p.message for p in problems)
    assert str(BIG) in text and "-3" in text and "feature 0 frame 0" in text
    assert [p for p in project.validate(pixels=False) if p.severity == "error"] == []  # nothing read
    project.cells = [Cell(5, 5, 0), Cell(5, 5, 1)]
    text = " ".join(p.message for p in project.validate(pixels=True) if p.part == "y")
    assert str(BIG) in text and "-3" in text


def test_validate_pixels_is_quiet_on_sound_labels():
    assert [p for p in labels_project((5, 2**31 - 1)).validate(pixels=True) if p.severity == "error"] == []


# ------------------------------------------------------------------ lossless formats keep them
@pytest.mark.parametrize("dtype", ["int64", "uint64", "uint32"])
def test_npz_and_npy_keep_wide_labels(tmp_path, dtype):
    values = (5, BIG) if dtype != "uint32" else (5, 2**32 - 2)
    project = labels_project(values, dtype)
    dlformats.write(project, tmp_path / "out.npz")
    with np.load(tmp_path / "out.npz") as npz:
        assert npz["y"].dtype == np.dtype(dtype)
        np.testing.assert_array_equal(np.moveaxis(npz["y"], -1, 0), project.y)
    back = dlformats.read(tmp_path / "out.npz")
    np.testing.assert_array_equal(np.asarray(back.y), project.y)
    dlformats.write(project, tmp_path / "y.npy", options={"part": "y"})
    np.testing.assert_array_equal(np.moveaxis(np.load(tmp_path / "y.npy"), -1, 0), project.y)


def test_npz_keeps_negative_labels(tmp_path):
    project = labels_project((5, -3), "int32")
    dlformats.write(project, tmp_path / "out.npz")
    np.testing.assert_array_equal(np.asarray(dlformats.read(tmp_path / "out.npz").y), project.y)


def test_tiff_keeps_uint32_labels_and_refuses_int64_beyond_int32(tmp_path):
    project = labels_project((5, 2**32 - 2), "uint32")
    project.X = None
    dlformats.write(project, tmp_path / "y.ome.tif")
    stored = tifffile.imread(tmp_path / "y.ome.tif")
    assert stored.dtype == np.uint32
    np.testing.assert_array_equal(stored, project.y[0])
    wide = labels_project()
    wide.X = None
    with pytest.raises(InconsistentDataError, match=str(BIG)):
        dlformats.write(wide, tmp_path / "wide.ome.tif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["y.ome.tif"]


def test_label_png_refuses_values_beyond_16_bits(tmp_path):
    project = labels_project((5, BIG), frames=1)
    with pytest.raises(dlformats.UnsupportedFeatureError, match="16-bit"):
        dlformats.write(project, tmp_path / "y.png", options={"part": "y"})
    assert_nothing_written(tmp_path)


# ------------------------------------------------------------------ read side
def test_a_uint32_label_file_is_read_whole_and_relabelled_on_request(tmp_path):
    image = np.arange(2 * H * W, dtype=np.uint8).reshape(2, H, W)
    labels = np.zeros((2, H, W), np.uint32)
    labels[:, :2] = 7
    labels[0, 3:] = 2**32 - 9  # a value int32 cannot hold, beside a small one
    tifffile.imwrite(tmp_path / "image.tif", image)
    tifffile.imwrite(tmp_path / "labels.tif", labels)
    project = dlformats.read(tmp_path / "image.tif", labels=tmp_path / "labels.tif", axes="TYX", labels_axes="TYX")
    np.testing.assert_array_equal(np.asarray(project.y)[0], labels)  # nothing lost on reading
    out = tmp_path / "out" / "project.zip"
    out.parent.mkdir()
    with pytest.raises(InconsistentDataError, match=str(2**32 - 9)):
        dlformats.write(project, out)
    assert_nothing_written(out.parent)
    dlformats.write(project, out, options={"relabel": True})
    y = np.asarray(dlformats.read(out).y)[0]
    assert (y[0, 0, 0], y[1, 0, 0], y[0, 3, 0]) == (1, 1, 2)


def test_lazy_labels_keep_wide_integers_and_check_floats():
    lazy = LazyArray(np.array([[2**31, 3]], np.uint32), "YX", labels=True)
    assert lazy.dtype == np.uint32 and lazy[0, 0].tolist() == [[2**31, 3]]
    lazy = LazyArray(np.array([[BIG, -1]], ">i8"), "YX", labels=True)
    assert lazy.dtype == np.int64 and lazy[0, 0].tolist() == [[BIG, -1]]
    assert LazyArray(np.array([[-2, 3]], np.int16), "YX", labels=True)[0, 0].dtype == np.int32
    with pytest.raises(dlformats.CorruptFileError, match=r"3000000000\.0 do not fit in int32"):
        LazyArray(np.array([[3e9]]), "YX", labels=True)[0, 0]


def test_export_zip_members_hold_what_was_asked(tmp_path):
    project = labels_project((5, 2**31 - 1), "uint64")
    dlformats.write(project, tmp_path / "out.zip", format="dcl-export-zip")
    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        labeled = np.frombuffer(zf.read("labeled.dat"), "<i4").reshape(1, 2, H, W)
    np.testing.assert_array_equal(labeled, project.y.astype(np.int64))


class PlanesOnly:
    """A (features, frames, H, W) int64 array that hands out planes and records any request for all of it."""

    def __init__(self, y: np.ndarray) -> None:
        self._y, self.shape, self.dtype, self.whole = y, y.shape, y.dtype, False

    def __getitem__(self, key):
        if not (isinstance(key, tuple) and len(key) == 2):
            self.whole = True
        return self._y[key]

    def __array__(self, dtype=None, copy=None):
        self.whole = True
        return self._y


def test_lazy_labels_are_checked_a_plane_at_a_time(tmp_path):
    y = np.zeros((1, 4, H, W), np.int64)
    y[0, :, 0, 0] = 5
    y[0, 2, 1, 1] = BIG
    project = Project(X=np.zeros((1, 4, H, W), np.uint8), y=PlanesOnly(y))
    with pytest.raises(InconsistentDataError, match="feature 0 frame 2"):
        dlformats.write(project, tmp_path / "out.zip")
    assert not project.y.whole
    assert_nothing_written(tmp_path)
    dlformats.write(project, tmp_path / "out.zip", options={"relabel": True})
    assert not project.y.whole
    assert np.unique(np.asarray(dlformats.read(tmp_path / "out.zip").y)).tolist() == [0, 1, 2]


def test_export_rule_refuses_to_truncate_float_labels():
    from dlformats.model import apply_export_rule

    with pytest.raises(InconsistentDataError, match=r"non-integer values 1\.5"):
        apply_export_rule(np.array([[[[1.5, 1.0]]]]), [Cell(1, 1, 0)])
    out, _ = apply_export_rule(np.array([[[[2.0, 1.0]]]]), [Cell(1, 1, 0)])
    assert out.tolist() == [[[[0, 1]]]]


# ------------------------------------------------------------------ float labels
FLOAT_FORMATS = [*INT32_FORMATS, ("npz", "out.npz"), ("png", "out.png")]


@pytest.mark.parametrize(("fmt", "name"), FLOAT_FORMATS)
def test_float_labels_with_fractions_are_refused_never_truncated(tmp_path, fmt, name):
    project = for_format(fmt, labels_project((5, 7), "float64", frames=1 if fmt == "png" else 2))
    project.y[0, 0, 0, 0] = 1.5
    options = {"part": "y"} if fmt == "png" else None
    with pytest.raises(InconsistentDataError, match=r"non-integer values 1\.5") as info:
        dlformats.write(project, tmp_path / name, format=fmt, options=options)
    assert "round them" in str(info.value)
    assert_nothing_written(tmp_path)


@pytest.mark.parametrize(("fmt", "name"), FLOAT_FORMATS)
def test_float_labels_holding_whole_numbers_are_written(tmp_path, fmt, name):
    project = for_format(fmt, labels_project((5, 7), "float32", frames=1 if fmt == "png" else 2))
    options = {"part": "y"} if fmt == "png" else None
    dlformats.write(project, tmp_path / name, format=fmt, options=options)
    back = dlformats.read(tmp_path / name, format=fmt)
    y = back.y if back.y is not None else back.X  # a PNG reads back as an image
    np.testing.assert_array_equal(np.asarray(y), project.y)


def test_validate_pixels_reports_fractions():
    project = labels_project((5, 7), "float64")
    project.y[0, 1, 0, 0] = np.nan
    assert [p for p in project.validate(pixels=False) if p.severity == "error"] == []
    problems = [str(p) for p in project.validate(pixels=True) if p.severity == "error"]
    assert problems == ["error: y: feature 0 frame 1: non-integer values nan"]
