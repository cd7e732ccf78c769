"""dlformats.testing: the conformance kit catches what it is meant to catch in a plugin, and passes sound ones."""

from __future__ import annotations

import numpy as np
import pytest

import dlformats
from dlformats import FormatSpec, Project, parts, testing
from dlformats.containers.npyio import from_bytes


def _npy_format(name: str, *, signature: bytes = b"\x93NUMPY", spoil: bool = False) -> FormatSpec:
    """Labels saved as .npy; ``spoil`` makes the writer change one pixel, as a buggy plugin would."""

    def read(source, options):
        y = from_bytes(source.read_bytes(), path=source.name, limits=source.limits)
        return Project(y=y.reshape(1, *y.shape).astype(np.int32), cells=None)

    def write(project, path, options):
        y = np.asarray(project.y)[0].copy()
        y[0, 0, 0] += int(spoil)
        with open(path, "wb") as fh:
            np.save(fh, y)

    return FormatSpec(
        name=name,
        description="labels as npy",
        extensions=(f".{name}",),
        signatures=(signature,),
        read=read,
        write=write,
        reads=parts("y"),
        writes=parts("y"),
    )


@pytest.fixture
def stubs():
    registry = dlformats.Registry(load=False)
    registry.register(testing.plugin_of(_npy_format("good"), _npy_format("spoiled", spoil=True)), "stubs")
    with dlformats.use_registry(registry):
        yield registry


def test_a_sound_round_trip_passes_and_a_lossy_writer_is_caught(stubs, tmp_path):
    project = testing.make_project()
    back = testing.check_roundtrip("good", project, tmp_path / "a.good")
    assert back.provenance["y"].format == "good"
    with pytest.raises(AssertionError, match=r"Arrays are not equal\ny\nMismatched elements: 1 / 360"):
        testing.check_roundtrip("spoiled", project, tmp_path / "a.spoiled")


def test_check_sniff_names_the_format_chosen_instead(stubs, tmp_path):
    with open(tmp_path / "a.good", "wb") as fh:
        np.save(fh, np.zeros((2, 2), np.int32))
    testing.check_sniff("good", tmp_path / "a.good")
    with pytest.raises(AssertionError, match=r"expected 'spoiled' first .* got \['good', 'spoiled'\]"):
        testing.check_sniff("spoiled", tmp_path / "a.good")


def test_check_import_light_catches_a_heavy_import(tmp_path, monkeypatch):
    (tmp_path / "heavy_plugin.py").write_text("import numpy\n")
    (tmp_path / "light_plugin.py").write_text("import json\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    testing.check_import_light("light_plugin")
    with pytest.raises(AssertionError, match="heavy_plugin pulled in heavy modules: numpy"):
        testing.check_import_light("heavy_plugin")


def test_projects_compare_cells_as_sets_and_every_other_part_exactly():
    a, b = testing.make_project(), testing.make_project()
    b.cells = list(reversed(b.cells))
    testing.assert_projects_equal(a, b)
    b.channels = ["other", "names"]
    with pytest.raises(AssertionError, match="channels differs"):
        testing.assert_projects_equal(a, b)
    with pytest.raises(AssertionError, match="X: dtype uint8 != uint16"):
        testing.assert_arrays_equal(a.X, a.X.astype(np.uint16), "X")


def test_the_sample_project_is_sound_and_may_overlap():
    project = testing.make_project(features=2, overlap=True)
    assert project.y.shape == (2, 3, 12, 10) and project.X.shape == (2, 3, 12, 10)
    assert [p for p in project.validate(pixels=True) if p.severity == "error"] == []
    assert {c.cell for c in project.cells if (c.value, c.t, c.c) == (9, 0, 0)} == {2, 5}


def test_fixtures_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DLFORMATS_FIXTURES", str(tmp_path))
    assert testing.fixtures_dir() == tmp_path
    monkeypatch.setenv("DLFORMATS_FIXTURES", str(tmp_path / "absent"))
    assert testing.fixtures_dir() is None
