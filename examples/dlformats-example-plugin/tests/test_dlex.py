"""Tests of the dlex plugin, written as a third-party author would: install the package, then use the kit.

Run with ``pytest examples/dlformats-example-plugin/tests`` after ``pip install ./examples/dlformats-example-plugin``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import dlformats
from dlformats import testing

SMALL = (
    b"DLEX 1\nsize 2 3 4\n"
    b"frame 0\n0 0 1 1\n0 2 2 1\n0 0 0 0\n"
    b"frame 1\n# a comment\n0 0 0 0\n0 5 5 0\n0 0 0 0\n"
    b"cells 4\n1 1 0\n2 2 0\n2 7 0\n5 5 1\n"
)


def test_declared_through_its_entry_point() -> None:
    fmt = testing.check_declared("dlex")
    assert fmt.distribution == "dlformats-example-plugin"


def test_import_is_light() -> None:
    testing.check_import_light("dlformats_example")


def test_chosen_by_content_and_extension(tmp_path: Path) -> None:
    path = tmp_path / "cells.dlex"
    path.write_bytes(SMALL)
    testing.check_sniff("dlex", path)


def test_reads_labels_and_cells(tmp_path: Path) -> None:
    path = tmp_path / "cells.dlex"
    path.write_bytes(SMALL)
    project = testing.check_read("dlex", path)
    assert project.y.shape == (1, 2, 3, 4) and project.y.dtype == "int32"
    assert project.y[0, 1, 1].tolist() == [0, 5, 5, 0]
    assert dlformats.Cell(2, 7, 0, 0) in project.cells and len(project.cells) == 4


def test_roundtrip(tmp_path: Path) -> None:
    project = testing.make_project(features=1, overlap=True)
    testing.check_roundtrip("dlex", project, tmp_path / "out.dlex")


def test_broken_file_is_a_corrupt_file_error_with_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.dlex"
    path.write_bytes(SMALL.replace(b"0 2 2 1", b"0 2 x 1"))
    with pytest.raises(dlformats.CorruptFileError, match="line 5"):
        dlformats.read(path)


def test_several_features_refused(tmp_path: Path) -> None:
    with pytest.raises(dlformats.UnsupportedFeatureError, match="feature=N"):
        dlformats.write(testing.make_project(features=2), tmp_path / "out.dlex")


def test_options_are_declared() -> None:
    spec = testing.check_declared("dlex").spec
    assert [o.name for o in spec.read_options] == ["frame"]
    assert [o.name for o in spec.write_options] == ["feature"]


def test_read_one_frame(tmp_path: Path) -> None:
    path = tmp_path / "cells.dlex"
    path.write_bytes(SMALL)
    project = dlformats.read(path, options={"frame": "1"})  # as the command line gives it: a string
    assert project.y.shape == (1, 1, 3, 4) and project.y[0, 0, 1].tolist() == [0, 5, 5, 0]
    assert project.cells == [dlformats.Cell(5, 5, 0, 0)]
    with pytest.raises(dlformats.InvalidOptionError, match="frame 2 is not a frame of this file"):
        dlformats.read(path, options={"frame": 2})
    with pytest.raises(dlformats.InvalidOptionError, match="below the minimum 0"):
        dlformats.read(path, options={"frame": -1})


def test_write_one_feature_of_several(tmp_path: Path) -> None:
    project = testing.make_project(features=2)
    project.y[1] = project.y[1] * 10
    project.cells = [dlformats.Cell(c.value * (10 if c.c else 1), c.cell, c.t, c.c) for c in project.cells]
    dlformats.write(project, tmp_path / "second.dlex", options={"feature": 1})
    back = dlformats.read(tmp_path / "second.dlex")
    assert back.y[0].tolist() == project.y[1].tolist()
    with pytest.raises(dlformats.InvalidOptionError, match="the project has 2 features"):
        dlformats.write(project, tmp_path / "third.dlex", options={"feature": 2})


def test_unknown_option_is_refused_with_the_valid_ones(tmp_path: Path) -> None:
    path = tmp_path / "cells.dlex"
    path.write_bytes(SMALL)
    with pytest.raises(dlformats.InvalidOptionError, match=r"valid read options: frame \(int >= 0\)"):
        dlformats.read(path, options={"frames": 1})
