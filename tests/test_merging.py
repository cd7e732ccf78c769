"""Merging projects into one training file: deepcell-tf's npz, deepcell-tracking's trks, and a
DeepCell Label project whose frames are batches; shapes that cannot stack, padding and cropping.

The layouts are checked as their consumers load them: ``numpy.load`` of the npz (X and y as
deepcell-tf's data loaders take them), and the trks's members read as deepcell-tracking's
``load_trks`` reads them (``lineages.json``, ``raw.npy``, ``tracked.npy`` from the tar).
"""

from __future__ import annotations

import io
import json
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from test_batch import movie, save_trk

import dlformats
from dlformats import Cell, Division, InconsistentDataError, testing
from dlformats.cli import main

FIXTURES = testing.fixtures_dir()
needs_fixtures = pytest.mark.skipif(FIXTURES is None, reason="../shared/fixtures is absent")


def load_trks_layout(path: Path) -> dict:
    """What deepcell-tracking's ``load_trks`` returns for a ``.trks``: lineages, X and y, from the tar's members."""
    with tarfile.open(path, "r") as tar:
        members = [m.name for m in tar.getmembers()]
        assert members == ["lineages.json", "raw.npy", "tracked.npy"]
        lineages = json.loads(tar.extractfile("lineages.json").read().decode())
        X = np.load(io.BytesIO(tar.extractfile("raw.npy").read()), allow_pickle=False)
        y = np.load(io.BytesIO(tar.extractfile("tracked.npy").read()), allow_pickle=False)
    return {"lineages": lineages, "X": X, "y": y}


def channels_last(array) -> np.ndarray:
    """(C, F, H, W) -> (F, H, W, C)."""
    return np.moveaxis(np.asarray(array), 0, -1)


# ------------------------------------------------------------------ npz for deepcell-tf
@needs_fixtures
def test_npz_of_real_projects_has_the_shapes_deepcell_tf_expects(tmp_path):
    dcl = FIXTURES / "deepcell-label"
    sources = [dcl / "rgb.zip", dcl / "history" / "rgb_2022-06-08.zip"]
    dst = dlformats.merge(sources, tmp_path / "train.npz")
    with np.load(dst, allow_pickle=False) as npz:
        data = {k: npz[k] for k in npz.files}
    assert sorted(data) == ["X", "y"]
    X, y = data["X"], data["y"]
    assert X.shape == (2, 10, 10, 3) and X.dtype == np.uint8  # (batch, height, width, channels)
    assert y.shape == (2, 10, 10, 1) and y.dtype == np.int32  # (batch, height, width, features)
    for b, source in enumerate(sources):
        original = dlformats.read(source)
        np.testing.assert_array_equal(X[b], channels_last(original.X)[0])
        np.testing.assert_array_equal(y[b], channels_last(original.y)[0])

    # A project of another size stacks once padded: zeros at the bottom and right.
    padded = dlformats.merge([*sources, dcl / "history" / "testProject_2022-04-19.zip"], tmp_path / "p.npz", fit="pad")
    with np.load(padded) as npz:
        assert npz["X"].shape == (3, 38, 34, 3) and npz["y"].shape == (3, 38, 34, 1)
        np.testing.assert_array_equal(npz["X"][0, :10, :10], X[0])
        assert not npz["X"][0, 10:].any() and not npz["X"][0, :, 10:].any()


def test_npz_of_movies_with_names(tmp_path):
    paths = []
    for i, frames in enumerate((3, 3, 2)):
        project = testing.make_project(channels=2, frames=frames, seed=i)
        project.channels = ["nuclear", "" if i == 1 else "membrane"]  # an unnamed channel agrees with any name
        paths.append(dlformats.write(project, tmp_path / f"m{i}.zip"))
    with pytest.raises(InconsistentDataError) as info:
        dlformats.merge(paths, tmp_path / "movies.npz")
    assert str(info.value) == (
        f"{paths[2]}: (channels, frames, height, width) (2, 2, 12, 10) cannot stack with {paths[0]} "
        "(channels, frames, height, width) (2, 3, 12, 10): frames differ "
        "(pad or crop them to a common length with fit='pad' or fit='crop' (--fit pad, --fit crop))"
    )
    assert not (tmp_path / "movies.npz").exists()
    dst = dlformats.merge(paths, tmp_path / "movies.npz", fit="pad")
    with np.load(dst) as npz:
        X, y, channels = npz["X"], npz["y"], npz["channels"]
    assert X.shape == (3, 3, 12, 10, 2) and y.shape == (3, 3, 12, 10, 1)  # (batch, frames, height, width, C)
    assert channels.tolist() == ["nuclear", "membrane"]
    np.testing.assert_array_equal(X[2, :2], channels_last(dlformats.read(paths[2]).X))
    assert not X[2, 2].any() and not y[2, 2].any()  # the padding frame
    back = dlformats.read_all(dst)
    assert len(back) == 3 and all(p.channels == ["nuclear", "membrane"] for p in back)
    cropped = dlformats.merge(paths, tmp_path / "cropped.npz", fit="crop")
    with np.load(cropped) as npz:
        assert npz["X"].shape == (3, 2, 12, 10, 2)

    other = testing.make_project(channels=2, frames=3)
    other.channels = ["dapi", "membrane"]
    dlformats.write(other, tmp_path / "other.zip")
    with pytest.raises(InconsistentDataError, match=r"channels \['dapi', 'membrane'\] differ from"):
        dlformats.merge([paths[0], tmp_path / "other.zip"], tmp_path / "names.npz")
    dlformats.write(testing.make_project(channels=3, frames=3), tmp_path / "three.zip")
    with pytest.raises(
        InconsistentDataError,
        match=r"\(2, 3, 12, 10\) cannot stack with .*three.zip .*\(3, 3, 12, 10\): channels differ",
    ):
        dlformats.merge([tmp_path / "three.zip", paths[0]], tmp_path / "count.npz")


# ------------------------------------------------------------------ trks for deepcell-tracking
@needs_fixtures
def test_trks_has_the_load_trks_layout_and_reads_back_into_the_same_projects(tmp_path):
    one_division = FIXTURES / "deepcell-label" / "oneDivision.zip"  # 2 frames, 52 x 29, cell 31 divides
    raw, tracked, lineage = movie(3, seed=4)
    raw = raw[:, :13, :11]  # another size: padded
    tracked = tracked[:, :13, :11]
    raw = (raw * 200).astype(np.uint8) + 1
    trk = save_trk(tmp_path / "three.trk", lineage, raw, tracked)
    sources = [one_division, trk]
    with pytest.raises(InconsistentDataError, match="height and width differ"):
        dlformats.merge(sources, tmp_path / "train.trks")
    dst = dlformats.merge(sources, tmp_path / "train.trks", fit="pad")
    data = load_trks_layout(dst)
    X, y, lineages = data["X"], data["y"], data["lineages"]
    assert X.shape == (2, 3, 52, 29, 1) and X.dtype == np.uint8  # (batch, frames, height, width, channels)
    assert y.shape == (2, 3, 52, 29, 1) and y.dtype == np.int32
    original = dlformats.read(one_division)
    np.testing.assert_array_equal(X[0, :2], channels_last(original.X))
    np.testing.assert_array_equal(y[0, :2], channels_last(original.y))
    assert not X[0, 2].any() and not y[0, 2].any()  # frames padded as deepcell-tracking pads them
    np.testing.assert_array_equal(X[1, :, :13, :11], raw)
    np.testing.assert_array_equal(y[1, :, :13, :11], tracked)
    assert isinstance(lineages, list) and len(lineages) == 2
    assert lineages[0]["31"] == {
        "label": 31,
        "frames": [0],
        "daughters": [134, 135],
        "parent": None,
        "frame_div": 1,
        "capped": True,
    }
    assert lineages[0]["134"]["parent"] == 31 and lineages[0]["134"]["frames"] == [1]
    assert lineages[1] == {
        k: {**v, "frame_div": None, "capped": False} for k, v in lineage.items()
    }  # what the trk says, completed

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a lineage that disagreed with the labels would warn
        back = dlformats.read_all(dst)
    assert [p.X.shape for p in back] == [(1, 2, 52, 29), (1, 3, 52, 29)]
    testing.assert_projects_equal(back[0], original, parts=("X", "y", "cells", "divisions"))
    assert back[0].divisions == [Division(31, [134, 135], 1)]
    np.testing.assert_array_equal(np.asarray(back[1].X)[0, :, :13, :11], raw[..., 0])


def test_trks_crop_drops_cells_cut_away_and_their_divisions(tmp_path):
    big = testing.make_project(channels=1, frames=3, height=12, width=10)
    # Cell 2 (rows 6-8, columns 5-7 of every frame) lies outside the top-left 6 x 5; cells 3 and 4, the
    # daughters of cell 1, sit inside it (rows 1-3, columns 1-2 and 3-4).
    small = testing.make_project(channels=1, frames=3, height=6, width=5, seed=1)
    small.cells, small.divisions = None, []  # its cell 2 would lie outside it: cells from the labels
    for name, project in (("big", big), ("small", small)):
        dlformats.write(project, tmp_path / f"{name}.zip")
    dst = dlformats.merge([tmp_path / "big.zip", tmp_path / "small.zip"], tmp_path / "crop.trks", fit="crop")
    data = load_trks_layout(dst)
    assert data["X"].shape == (2, 3, 6, 5, 1)
    kept = {int(v) for v in np.unique(data["y"][0])} - {0}
    assert kept == {int(k) for k in data["lineages"][0]}  # the lineage lists exactly the cells left
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = dlformats.read_all(dst)
    assert kept == {1, 3, 4} and {c.cell for c in back[0].cells} == kept
    assert back[0].divisions == [Division(1, [3, 4], 1)]


# ------------------------------------------------------------------ frames as batches
@needs_fixtures
def test_project_zip_whose_frames_are_batches(tmp_path):
    dcl = FIXTURES / "deepcell-label"
    sources = [dcl / "oneDivision.zip", dcl / "history" / "oneDivision_2022-06-03_nested-folder.zip"]
    first, second = (dlformats.read(s) for s in sources)
    dst = dlformats.merge(sources, tmp_path / "batches.zip")
    merged = dlformats.read(dst)
    assert merged.frame_axis == "B" and merged.X.shape == (1, 4, 52, 29) and merged.y.shape == (1, 4, 52, 29)
    np.testing.assert_array_equal(np.asarray(merged.X), np.concatenate([np.asarray(first.X), np.asarray(second.X)], 1))
    # The second project's cells are renumbered after the first's (largest cell 135): no cell spans two batches.
    shift = 135
    y = np.asarray(merged.y)
    np.testing.assert_array_equal(y[:, :2], np.asarray(first.y))
    expected = np.asarray(second.y)
    np.testing.assert_array_equal(y[:, 2:], np.where(expected > 0, expected + shift, 0))
    assert sorted(merged.cells) == sorted(
        [*first.cells, *(Cell(c.cell + shift, c.cell + shift, c.t + 2, c.c) for c in second.cells)]
    )
    assert merged.divisions == [Division(31, [134, 135], 1), Division(23 + shift, [134 + shift, 135 + shift], 3)]


# ------------------------------------------------------------------ the command
def test_merge_command(tmp_path, capsys):
    for i in range(2):
        dlformats.write(testing.make_project(frames=2, seed=i), tmp_path / f"s{i}.trk")
    dlformats.write(testing.make_project(frames=2, height=8, seed=3), tmp_path / "small.trk")
    assert main(["merge", str(tmp_path / "s0.trk"), str(tmp_path / "s1.trk"), str(tmp_path / "out.trks")]) == 0
    assert capsys.readouterr().out == f"{tmp_path / 'out.trks'}\n"
    assert len(dlformats.read_all(tmp_path / "out.trks")) == 2
    pattern = str(tmp_path / "*.trk")
    assert main(["merge", pattern, str(tmp_path / "all.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dlformats: error: {tmp_path / 'small.trk'}: ") and "height and width differ" in err
    assert main(["merge", pattern, str(tmp_path / "all.npz"), "--fit", "pad"]) == 0
    with np.load(tmp_path / "all.npz") as npz:
        assert npz["X"].shape == (3, 2, 12, 10, 2)
