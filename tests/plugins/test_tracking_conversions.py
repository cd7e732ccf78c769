"""Every tracking format to every other, through the project: trk, trks, DeepCell Label project zips, CTC, geff.

What must survive each conversion: which cell every pixel belongs to in every frame, and the divisions.
Pixel values may change on the way (CTC writes track labels, the project zip applies DeepCell Label's
export rule), cell numbers may not.
"""

from __future__ import annotations

import io
import json
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from _tracking import H, W, tracking_project

import dlformats
from dlformats import DLFormatsWarning, Project

TARGETS = {"dcl-project-zip": "movie.zip", "trk": "movie.trk", "ctc": "movie_RES", "geff": "movie.geff"}


def cell_images(project: Project) -> np.ndarray:
    """(frames, height, width): the cell under each pixel (0 for none), from the labels and the cells."""
    out = np.zeros((project.num_frames, *project.frame_shape), np.int64)
    cells = project.cells_or_derived()
    for t in range(project.num_frames):
        table = {c.value: c.cell for c in cells if c.t == t and c.c == 0}
        plane = project.label_frame(0, t)
        for value, cell in table.items():
            out[t][plane == value] = cell
    return out


def convert(src: Path, dst: Path, **kwargs) -> list[Path]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DLFormatsWarning)
        return dlformats.convert(src, dst, **kwargs)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """The same tracking project written in each tracking format dlformats writes."""
    root = tmp_path_factory.mktemp("sources")
    project = tracking_project()
    out = {}
    for fmt, name in TARGETS.items():
        options = {"image": str(root / "movie")} if fmt == "ctc" else {}  # the CTC raw layout, beside
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DLFormatsWarning)
            out[fmt] = dlformats.write(project, root / name, format=fmt, options=options)
    # CTC results and geff hold no image, a project zip needs one: the user gives it beside the labels
    images = {"ctc": root / "movie", "geff": dlformats.write(Project(X=project.X), root / "movie.tif")}
    return project, out, images


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("source", list(TARGETS))
def test_every_direction_keeps_cells_pixels_and_divisions(sources, tmp_path, source, target):
    project, files, images = sources
    if target == "dcl-project-zip" and source in images:
        written = convert(images[source], tmp_path / TARGETS[target], labels=files[source])
    else:
        written = convert(files[source], tmp_path / TARGETS[target], to_format=target)
    back = dlformats.read(written[0])
    assert back.metadata["format"] == target
    assert back.divisions == project.divisions
    assert {(c.cell, c.t) for c in back.cells_or_derived()} == {(c.cell, c.t) for c in project.cells}
    assert np.array_equal(cell_images(back), cell_images(project))


def test_trks_batches_become_one_ctc_folder_and_one_geff_each(tmp_path):
    """A .trks of two movies (the second shorter, zero-padded as deepcell-tracking pads it)."""
    frames = 4
    raw = np.random.default_rng(0).random((2, frames, H, W, 1)).astype(np.float32) + 0.01
    tracked = np.zeros((2, frames, H, W, 1), np.int32)
    tracked[0, :2, 1:4, 1:4] = 1
    tracked[0, 2:, 1:4, 1:3] = 2
    tracked[0, 2:, 1:4, 3:5] = 3
    tracked[1, :3, 6:9, 6:9] = 5
    raw[1, 3] = 0  # the padding of the shorter movie
    lineages = [
        {
            "1": {"label": 1, "frames": [0, 1], "daughters": [2, 3], "parent": None, "frame_div": 2},
            "2": {"label": 2, "frames": [2, 3], "daughters": [], "parent": 1},
            "3": {"label": 3, "frames": [2, 3], "daughters": [], "parent": 1},
        },
        {"5": {"label": 5, "frames": [0, 1, 2], "daughters": [], "parent": None}},
    ]
    trks = tmp_path / "movies.trks"
    with tarfile.open(trks, "w") as tar:
        for name, data in (
            ("lineages.json", json.dumps(lineages).encode()),
            ("raw.npy", raw),
            ("tracked.npy", tracked),
        ):
            if not isinstance(data, bytes):
                buf = io.BytesIO()
                np.save(buf, data)
                data = buf.getvalue()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    folders = convert(trks, tmp_path / "movies_RES", to_format="ctc")
    assert [p.name for p in folders] == ["movies_RES_batch0", "movies_RES_batch1"]
    first = dlformats.read(folders[0])
    assert first.divisions == [dlformats.Division(1, [2, 3], 2)]
    assert dlformats.read(folders[1]).y.shape == (1, 3, H, W)  # the padding frame dropped
    import ctc_metrics

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert [ctc_metrics.validate_sequence(str(f), threads=1)["Valid"] for f in folders] == [1, 1]
    graphs = convert(trks, tmp_path / "movies.geff")
    assert [p.name for p in graphs] == ["movies_batch0.geff", "movies_batch1.geff"]
    assert dlformats.read(graphs[0]).divisions == first.divisions
    assert np.array_equal(cell_images(dlformats.read(graphs[1])), cell_images(dlformats.read(folders[1])))
