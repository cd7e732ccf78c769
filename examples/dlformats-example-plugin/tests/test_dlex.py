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
    with pytest.raises(dlformats.UnsupportedFeatureError):
        dlformats.write(testing.make_project(features=2), tmp_path / "out.dlex")
