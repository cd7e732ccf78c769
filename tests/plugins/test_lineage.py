"""The lineage-json plugin: deepcell-tracking lineage.json in and out, every rule of a valid lineage."""

from __future__ import annotations

import json
import warnings
import zipfile

import pytest

import dlformats
from dlformats import (
    Cell,
    CorruptFileError,
    Division,
    DLFormatsWarning,
    InconsistentDataError,
    NoReaderError,
    testing,
)

FIXTURES = testing.fixtures_dir()
needs_fixtures = pytest.mark.skipif(FIXTURES is None, reason="../shared/fixtures is absent")
FORMAT = "lineage-json"

# Cell 1 (frames 0-1) divides into 2 and 3 at frame 2; 4 has a gap at frame 1.
# frame_div and capped are missing in some entries, as in files from the wild.
LINEAGE = {
    "1": {"label": 1, "frames": [0, 1], "daughters": [2, 3], "parent": None, "frame_div": 2, "capped": True},
    "2": {"label": 2, "frames": [2, 3], "daughters": [], "parent": 1},
    "3": {"label": 3, "frames": [2], "daughters": [], "parent": 1, "frame_div": None},
    "4": {"label": 4, "frames": [0, 2, 3], "daughters": [], "parent": None, "capped": False},
}


def write_json(path, obj):
    path.write_text(json.dumps(obj, indent=4))
    return path


def test_declared_and_import_light():
    testing.check_declared(FORMAT)
    testing.check_import_light("dlformats_lineage")


def test_reads_cells_and_divisions(tmp_path):
    path = write_json(tmp_path / "lineage.json", LINEAGE)
    testing.check_sniff(FORMAT, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a valid lineage gives no warning
        project = testing.check_read(FORMAT, path)
    assert project.X is None and project.y is None
    assert project.divisions == [Division(1, [2, 3], 2)]
    assert set(project.cells) == {
        Cell(label, label, t, 0) for label, e in ((int(k), e) for k, e in LINEAGE.items()) for t in e["frames"]
    }
    assert project.provenance["divisions"].format == FORMAT


def test_sniff_is_content_based(tmp_path):
    path = write_json(tmp_path / "tracks.txt", LINEAGE)  # a name that says nothing
    testing.check_sniff(FORMAT, path)
    # the dict form of an old cells.json is keyed by feature, not by label: not a lineage
    cells_dict = write_json(tmp_path / "cells.json", {"0": {"23": {"label": 23, "frames": [0, 1]}}})
    with pytest.raises(NoReaderError):
        dlformats.read(cells_dict)
    listing = write_json(tmp_path / "list.json", [1, 2, 3])
    with pytest.raises(NoReaderError):
        dlformats.read(listing)


@needs_fixtures
def test_deepcell_label_lineage_of_2022():
    """The lineage.json DeepCell Label kept in its project zips in 2022 (``divisionFrame`` naming)."""
    zip_path = FIXTURES / "deepcell-label/history/oneDivision_2022-05-06_lineage-json.zip"
    with zipfile.ZipFile(zip_path) as zf:
        data = zf.read("lineage.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        project = dlformats.read(data, name="lineage.json")
    assert project.metadata["format"] == FORMAT
    assert project.divisions == [Division(31, [134, 135], 1)]
    assert set(project.cells) == {
        Cell(23, 23, 0),
        Cell(23, 23, 1),
        Cell(31, 31, 0),
        Cell(134, 134, 1),
        Cell(135, 135, 1),
    }


@needs_fixtures
def test_adds_divisions_to_labels_from_another_source(tmp_path):
    lineage = {
        "23": {"label": 23, "frames": [0, 1], "daughters": [], "parent": None},
        "31": {"label": 31, "frames": [0], "daughters": [134, 135], "parent": None},
        "134": {"label": 134, "frames": [1], "daughters": [], "parent": 31},
        "135": {"label": 135, "frames": [1], "daughters": [], "parent": 31},
    }
    path = write_json(tmp_path / "lineage.json", lineage)
    project = dlformats.read(FIXTURES / "deepcell-label/oneDivision.zip", labels=path)
    assert project.y is not None and project.y.shape == (1, 2, 52, 29)
    assert project.divisions == [Division(31, [134, 135], 1)]
    assert project.provenance["divisions"].format == FORMAT


def test_every_broken_rule_is_reported_at_once(tmp_path):
    lineage = json.loads(json.dumps(LINEAGE))
    lineage["2"]["parent"] = 4  # parent 1 lists it as a daughter; it names 4, which does not list it
    lineage["3"]["frames"] = [3]  # starts a frame late
    lineage["1"]["frame_div"] = 1  # the parent's last frame: the off-by-one found in the wild
    lineage["4"]["label"] = 5  # key and label disagree
    lineage["4"]["frames"] = [0, 0, 2]  # a frame twice
    path = write_json(tmp_path / "messy.json", lineage)
    with pytest.warns(DLFormatsWarning) as record:
        project = dlformats.read(path)
    problems = project.metadata["lineage_problems"]
    expected = [
        "daughter 2 names parent 4",
        "label 2: parent 4 does not list it as a daughter",
        "daughter 3 starts at frame 3, not right after the parent's last frame 1",
        "frame_div 1 is not the daughters' first frame 2 (the parent's last frame: a known off-by-one)",
        "key 4 holds label 5",
        "a frame is listed more than once",
    ]
    for text in expected:
        assert any(text in p for p in problems), (text, problems)
    assert len(record) == 1 and "6 rule(s)" in str(record[0].message)  # one warning naming them all
    assert project.divisions == [Division(1, [2, 3], 2)]


def test_unusable_lineage_raises_with_every_problem(tmp_path):
    lineage = json.loads(json.dumps(LINEAGE))
    lineage["4"]["parent"] = 4
    lineage["0"] = {"label": 0, "frames": [1], "daughters": [], "parent": None}
    lineage["7"] = {"label": 7, "frames": [], "daughters": [8], "parent": None}
    lineage["8"] = {"label": 8, "frames": [], "daughters": [], "parent": 7}
    path = write_json(tmp_path / "broken.json", lineage)
    with pytest.raises(InconsistentDataError) as info:
        dlformats.read(path)
    errors = [p.message for p in info.value.problems if p.severity == "error"]
    assert errors == [
        "label 0: labels must be positive",
        "label 4 is its own parent",
        "label 7: cannot tell when it divides (no frames for it or its daughters, no frame_div)",
    ]
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{" 1": {"label": 1, "frames": [0]}}', "not a plain integer"),
        ('{"1_0": {"label": 10, "frames": [0]}}', "not a plain integer"),
        ('{"1": {"label": 1, "frames": [-1]}}', "negative frame"),
        ('{"1": {"label": 1, "frames": [NaN]}}', "non-finite"),
        ('{"1": {"label": 1, "frames": [0]}, "1": {"label": 1, "frames": [1]}}', "duplicate key"),
        ('{"1": {"label": 1, "frames": "0, 1"}}', "must be lists"),
        ('{"1": {"label": 1, "frames": [0], "parent": "2"}}', "must be an integer"),
    ],
)
def test_malformed_lineages_are_corrupt(tmp_path, text, reason):
    path = tmp_path / "lineage.json"
    path.write_text(text)
    with pytest.raises(CorruptFileError, match=reason) as info:
        dlformats.read(path, format=FORMAT)
    assert str(path) in str(info.value)


def test_empty_lineage_is_an_empty_project(tmp_path):
    path = write_json(tmp_path / "lineage.json", {})
    project = dlformats.read(path)
    assert project.metadata["format"] == FORMAT
    assert project.cells == [] and project.divisions == []


def test_roundtrip_writes_python_ints(tmp_path):
    path = tmp_path / "out.json"
    testing.check_roundtrip(FORMAT, testing.make_project(), path)
    written = json.loads(path.read_text())
    assert written["1"] == {
        "label": 1,
        "frames": [0],
        "daughters": [3, 4],
        "parent": None,
        "frame_div": 1,
        "capped": True,
    }
    assert written["3"]["parent"] == 1 and written["2"]["frames"] == [0, 1, 2]


def test_writer_warns_about_rules_the_project_breaks(tmp_path):
    project = testing.make_project(frames=3)
    project.divisions = [Division(2, [3, 4], 1)]  # but cell 2 lives on in frames 1 and 2
    with pytest.warns(DLFormatsWarning, match="not right after the parent's last frame 2"):
        dlformats.write(project, tmp_path / "bad.json", format=FORMAT)
    assert json.loads((tmp_path / "bad.json").read_text())["3"]["parent"] == 2
