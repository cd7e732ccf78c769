"""The napari plugin (plugins/dlformats_napari): npe2 manifest, reader, writer, in real napari without Qt.

napari and npe2 are test dependencies: this module fails, never skips, when they are missing.
Each format is one line of ``CASES``; a new format (CTC folder, geff, OME-Zarr) is one more line.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

with warnings.catch_warnings():  # npe2's models use pydantic 1 idioms that pydantic 2 deprecates
    warnings.simplefilter("ignore", DeprecationWarning)
    import npe2
    from napari.components import ViewerModel
    from napari.layers.utils.stack_utils import split_channels
    from napari.utils.notifications import NotificationSeverity, notification_manager

import dlformats
from dlformats import Cell, Division, testing
from dlformats.arrays import LazyArray

PLUGIN = "dlformats"
FIXTURES = testing.fixtures_dir()
MANIFEST = Path(__file__).resolve().parents[2] / "plugins" / "dlformats_napari" / "napari.yaml"
FRAME_LABELS = {"T": "t", "Z": "z", "B": "b"}


@pytest.fixture(scope="module", autouse=True)
def _plugins() -> None:
    npe2.PluginManager.instance().discover()  # what napari does at start-up


# --------------------------------------------------------------------- sources
def dcl_fixture(name: str) -> Callable[[Path], Path]:
    def make(_: Path) -> Path:
        if FIXTURES is None:
            pytest.skip("../shared/fixtures is absent")
        return FIXTURES / "deepcell-label" / name

    return make


def make_trk(tmp: Path) -> Path:
    """A 2-channel trk as deepcell-tracking writes it: cell 1 divides into 2 and 3 at frame 2, cell 4 throughout."""
    frames, h, w = 4, 10, 12
    rng = np.random.default_rng(1)
    raw = (rng.random((frames, h, w, 2)) + 0.01).astype(np.float32)
    tracked = np.zeros((frames, h, w, 1), np.int32)
    tracked[:2, 1:4, 1:4] = 1
    tracked[2:, 1:4, 1:2] = 2
    tracked[2:, 1:4, 3:4] = 3
    tracked[:, 6:9, 6:10] = 4
    lineage = {
        "1": {"label": 1, "frames": [0, 1], "daughters": [2, 3], "parent": None, "frame_div": 2},
        "2": {"label": 2, "frames": [2, 3], "daughters": [], "parent": 1, "frame_div": None},
        "3": {"label": 3, "frames": [2, 3], "daughters": [], "parent": 1, "frame_div": None},
        "4": {"label": 4, "frames": [0, 1, 2, 3], "daughters": [], "parent": None, "frame_div": None},
    }
    parts = tmp / "trk-parts"
    parts.mkdir()
    (parts / "lineage.json").write_text(json.dumps(lineage))
    np.save(parts / "raw.npy", raw)
    np.save(parts / "tracked.npy", tracked)
    path = tmp / "movie.trk"
    with tarfile.open(path, "w:gz") as tar:
        for member in ("lineage.json", "raw.npy", "tracked.npy"):
            tar.add(parts / member, member)
    return path


def make_tiff(tmp: Path) -> Path:
    """An OME-TIFF time-lapse (T, C, Y, X) with named channels."""
    import tifffile

    data = np.random.default_rng(2).integers(0, 4000, (3, 2, 16, 20), dtype=np.uint16)
    path = tmp / "movie.ome.tif"
    tifffile.imwrite(path, data, metadata={"axes": "TCYX", "Channel": {"Name": ["DAPI", "GFP"]}})
    return path


def make_npz(tmp: Path) -> Path:
    """DeepCell training data: X and y channels-last (batch, Y, X, C), with channel and feature names."""
    rng = np.random.default_rng(3)
    X = rng.integers(0, 255, (2, 16, 20, 2), dtype=np.uint8)
    y = np.zeros((2, 16, 20, 2), np.int32)
    y[:, 2:6, 2:6, 0] = 1
    y[:, 8:12, 8:12, 1] = 5
    path = tmp / "train.npz"
    np.savez(path, X=X, y=y, channels=np.array(["DAPI", "GFP"]), features=np.array(["whole-cell", "nuclear"]))
    return path


def converted(suffix: str) -> Callable[[Path], Path]:
    """The trk movie converted by dlformats to another format (a geff, an OME-Zarr)."""

    def make(tmp: Path) -> Path:
        return dlformats.convert(make_trk(tmp), tmp / f"movie{suffix}")[0]

    return make


def make_ctc(tmp: Path) -> Path:
    """The trk movie as a CTC results folder (masks + res_track.txt: labels and lineage, no image)."""
    out = tmp / "01_RES"
    dlformats.write(dlformats.read(make_trk(tmp)), out, format="ctc")
    return out


@dataclass
class Case:
    """A source and what napari must get from it.

    ``layers`` counts the layer data tuples by type (the image is one tuple, split by
    ``channel_axis``); ``graph``, when given, is the tracks layer's ``{daughter: [parent]}``
    (it is always checked against the divisions dlformats reads); ``saved`` is false for
    sources a DeepCell Label zip cannot hold (labels without an image).
    """

    id: str
    make: Callable[[Path], Path]
    layers: dict[str, int]
    graph: dict[int, list[int]] | None = None
    saved: bool = True


CASES = [
    Case(
        "dcl-divisions", dcl_fixture("oneDivision.zip"), {"image": 1, "labels": 1, "tracks": 1}, {134: [31], 135: [31]}
    ),
    Case("dcl-spots", dcl_fixture("spots.zip"), {"image": 1, "labels": 2, "points": 1}),
    Case("dcl-rgb", dcl_fixture("rgb.zip"), {"image": 1, "labels": 1}),
    Case("trk", make_trk, {"image": 1, "labels": 1, "tracks": 1}, {2: [1], 3: [1]}),
    Case("ome-tiff", make_tiff, {"image": 1}),
    Case("npz", make_npz, {"image": 1, "labels": 2}),
    Case("ctc", make_ctc, {"labels": 1, "tracks": 1}, {2: [1], 3: [1]}, saved=False),
    Case("geff", converted(".geff"), {"labels": 1, "tracks": 1}, {2: [1], 3: [1]}, saved=False),
    Case("ome-zarr", converted(".ome.zarr"), {"image": 1, "labels": 1, "tracks": 1}, {2: [1], 3: [1]}),
]
SAVED = [c for c in CASES if c.saved]


@pytest.fixture(params=CASES, ids=[c.id for c in CASES])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Case, Path]:
    return request.param, request.param.make(tmp_path)


@pytest.fixture(params=SAVED, ids=[c.id for c in SAVED])
def saved_case(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Case, Path]:
    return request.param, request.param.make(tmp_path)


def default_names(given: list[str], count: int, one: str, many: str) -> list[str]:
    return [(given[i] if i < len(given) else "") or (one if count == 1 else f"{many} {i}") for i in range(count)]


def by_kind(layers: list) -> dict[str, list]:
    out: dict[str, list] = {}
    for layer in layers:
        out.setdefault(layer[2], []).append(layer)
    return out


def check_tracks(tracks: np.ndarray, project: dlformats.Project, samples: int = 40) -> None:
    """Rows are cells (track id = cell id) in frames they appear in, at their pixels' centroid (checked on a sample)."""
    cells = project.cells_or_derived()
    keys = sorted({(c.cell, c.t) for c in cells})
    rows = {(int(track), int(t)): (row, col) for track, t, row, col in tracks}
    assert len(rows) == len(tracks) and set(rows) <= set(keys)
    assert np.all(np.diff(tracks[:, 0]) >= 0)  # sorted by track
    for key in keys[:: max(1, len(keys) // samples)]:
        mask = np.zeros(project.frame_shape, bool)
        for c in cells:
            if (c.cell, c.t) == key:
                mask |= np.asarray(project.y[c.c, c.t]) == c.value
        if mask.any():
            assert rows[key] == pytest.approx(tuple(np.mean(np.nonzero(mask), axis=1))), key
        else:
            assert key not in rows


# ----------------------------------------------------------------- manifest
def test_npe2_validate_passes_for_the_installed_distribution():
    out = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", PLUGIN, "--imports"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "valid" in out.stdout


def test_writer_lists_the_extension_of_every_installed_writer():
    manifest = yaml.safe_load(MANIFEST.read_text())
    (writer,) = manifest["contributions"]["writers"]
    listed = set(writer["filename_extensions"])
    assert writer["filename_extensions"][0] == ".zip"  # the default: a DeepCell Label project
    wanted = {e for f in dlformats.formats() if f["writes"] for e in f["extensions"]}
    assert wanted - listed == set(), f"add {sorted(wanted - listed)} to napari.yaml"
    (reader,) = manifest["contributions"]["readers"]
    assert reader["accepts_directories"] is True


def test_import_dlformats_imports_nothing_of_napari(tmp_path: Path):
    path = make_tiff(tmp_path)
    code = (
        "import sys, dlformats; dlformats.formats(); dlformats.read(sys.argv[1]); "
        "import dlformats_napari, dlformats_napari._reader, dlformats_napari._writer; "
        "heavy = ('napari', 'npe2', 'dask', 'pandas', 'vispy', 'pydantic', 'qtpy'); "
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
    code = "import sys, dlformats; dlformats.formats(); print('dlformats_napari' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "False", out.stderr


# ------------------------------------------------------------------- reading
def test_npe2_read_gives_the_project_as_layers(case: tuple[Case, Path]):
    spec, path = case
    layers = npe2.read([str(path)], stack=False, plugin_name=PLUGIN)
    project = dlformats.read(path)
    assert dict(Counter(kind for _, _, kind in layers)) == spec.layers
    kinds = by_kind(layers)
    frame = FRAME_LABELS[project.frame_axis]

    for image, meta, _ in kinds.get("image", []):
        assert meta["channel_axis"] == 0
        assert image.shape == project.X.shape and image.dtype == project.X.dtype
        assert meta["name"] == default_names(project.channels, project.num_channels, "image", "channel")
        assert meta["axis_labels"] == [(frame, "y", "x")] * project.num_channels
        assert np.array_equal(np.asarray(image), np.asarray(project.X))
        assert {m["dlformats"]["frame_axis"] for m in meta["metadata"]} == {project.frame_axis}

    labels = kinds.get("labels", [])
    names = default_names(project.features, project.num_features, "labels", "feature") if labels else []
    assert [m["name"] for _, m, _ in labels] == names
    for f, (data, meta, _) in enumerate(labels):
        assert data.shape == project.y.shape[1:] and data.dtype == project.y.dtype
        assert meta["axis_labels"] == (frame, "y", "x")
        assert np.array_equal(np.asarray(data), np.asarray(project.y[f]))

    for data, meta, _ in kinds.get("points", []):
        assert data.shape == (len(project.spots), 2)
        assert np.allclose(data[:, 0], project.spots.y) and np.allclose(data[:, 1], project.spots.x)
        table = meta["features"]
        assert list(table.columns) == list(project.spots.columns)
        for column, values in project.spots.columns.items():
            assert [None if v is None or v != v else v for v in table[column].astype(object).tolist()] == values

    for data, meta, _ in kinds.get("tracks", []):
        graph = {d: [div.parent] for div in project.divisions for d in div.daughters}
        assert meta["graph"] == graph
        if spec.graph is not None:
            assert graph == spec.graph
        assert data.shape[1] == 4
        check_tracks(data, project)


def test_lazy_projects_stay_lazy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Opening reads no image plane: napari gets dask arrays over dlformats' lazy arrays."""
    reads = []
    plane = LazyArray.plane
    monkeypatch.setattr(LazyArray, "plane", lambda self, c, t: reads.append((c, t)) or plane(self, c, t))
    path = make_npz(tmp_path)
    layers = npe2.read([str(path)], stack=False, plugin_name=PLUGIN)
    assert reads == []
    image = by_kind(layers)["image"][0][0]
    assert not isinstance(image, np.ndarray) and type(image).__module__.startswith("dask")
    assert np.asarray(image[1, 0]).shape == (16, 20)
    assert reads == [(1, 0)]  # one plane, when it is shown


def test_viewer_opens_every_layer_without_qt(case: tuple[Case, Path]):
    spec, path = case
    viewer = ViewerModel()
    added = viewer.open(path, plugin=PLUGIN)
    project = dlformats.read(path)
    counts = Counter(type(layer).__name__.lower() for layer in added)
    assert counts["image"] == project.num_channels
    assert {k: v for k, v in counts.items() if k != "image"} == {k: v for k, v in spec.layers.items() if k != "image"}
    channels = default_names(project.channels, project.num_channels, "image", "channel")
    assert [layer.name for layer in added if type(layer).__name__ == "Image"] == channels
    assert viewer.dims.axis_labels == (FRAME_LABELS[project.frame_axis], "y", "x")
    assert viewer.dims.range[0].stop == project.num_frames - 1  # frames are the first axis
    for layer in added:
        if type(layer).__name__ == "Tracks" and spec.graph is not None:
            assert layer.graph == spec.graph


def test_dropping_a_project_zip_or_trk_opens_it_with_dlformats(tmp_path: Path):
    """No plugin named (drag and drop): dlformats is the one reader of these files."""
    for path in (make_project_zip(tmp_path), make_trk(tmp_path)):
        added = ViewerModel().open(path, plugin=None)
        assert {"Image", "Labels", "Tracks"} <= {type(layer).__name__ for layer in added}, path


# ------------------------------------------------------------------- writing
def as_napari_adds(layers: list) -> list:
    """Layer data tuples as napari adds them: the image split into one layer per channel."""
    out = []
    for data, meta, kind in layers:
        if kind == "image" and "channel_axis" in meta:
            meta = dict(meta)
            out.extend(split_channels(data, meta.pop("channel_axis"), **meta))
        else:
            out.append((data, meta, kind))
    return out


def assert_same_project(got: dlformats.Project, want: dlformats.Project) -> None:
    assert np.array_equal(np.asarray(got.X), np.asarray(want.X))
    if want.y is not None:
        assert np.array_equal(np.asarray(got.y), np.asarray(want.y))
    assert got.channels == want.channels
    assert got.features == want.features
    assert sorted(got.cells_or_derived()) == sorted(want.cells_or_derived())
    assert got.divisions == want.divisions
    assert (got.spots is None) == (want.spots is None)
    if want.spots is not None:
        assert (got.spots.x, got.spots.y, got.spots.columns) == (want.spots.x, want.spots.y, want.spots.columns)


def test_npe2_write_of_read_layers_gives_the_project_back(saved_case: tuple[Case, Path], tmp_path: Path):
    _, path = saved_case
    layers = as_napari_adds(npe2.read([str(path)], stack=False, plugin_name=PLUGIN))
    out = tmp_path / "saved.zip"
    assert npe2.write(str(out), layers, plugin_name=PLUGIN) == [str(out)]
    got = dlformats.read(out)
    assert got.metadata["format"] == "dcl-project-zip"
    assert_same_project(got, dlformats.read(path))


def test_npe2_write_of_layers_made_in_napari(tmp_path: Path):
    """Layers a user made: names become channel and feature names, the tracks graph the divisions."""
    rng = np.random.default_rng(4)
    frames, h, w = 3, 12, 14
    labels = np.zeros((frames, h, w), np.int32)
    labels[0, 2:5, 2:5] = 1
    labels[1:, 2:5, 2:4] = 2
    labels[1:, 8:11, 8:12] = 3
    labels[:, 9:11, 1:3] = 7
    tracks = np.array(
        [[1, 0, 3, 3], [2, 1, 3, 2.5], [2, 2, 3, 2.5], [3, 1, 9, 9.5], [3, 2, 9, 9.5], [7, 0, 9.5, 1.5]], float
    )
    import pandas as pd

    layers = [
        (rng.integers(0, 60000, (frames, h, w), dtype=np.uint16), {"name": "DAPI"}, "image"),
        (rng.integers(0, 60000, (frames, h, w), dtype=np.uint16), {"name": "GFP"}, "image"),
        (labels, {"name": "nuclear"}, "labels"),
        (
            np.array([[3.0, 3.5], [9.25, 9.0]]),
            {"name": "spots", "features": pd.DataFrame({"nuclear": pd.array([1, None], dtype="Int64")})},
            "points",
        ),
        (tracks, {"name": "lineage", "graph": {2: [1], 3: [1]}}, "tracks"),
    ]
    out = tmp_path / "made.zip"
    assert npe2.write(str(out), layers, plugin_name=PLUGIN) == [str(out)]
    project = dlformats.read(out)
    assert project.channels == ["DAPI", "GFP"] and project.features == ["nuclear"]
    assert np.array_equal(np.asarray(project.X), np.stack([layers[0][0], layers[1][0]]))
    assert np.array_equal(np.asarray(project.y[0]), labels)
    assert project.divisions == [Division(parent=1, daughters=[2, 3], t=1)]
    expected = {Cell(1, 1, 0), Cell(7, 7, 0), *(Cell(v, v, t) for t in (1, 2) for v in (2, 3, 7))}
    assert set(project.cells) == expected
    assert (project.spots.y, project.spots.x, project.spots.columns) == (
        [3.0, 9.25],
        [3.5, 9.0],
        {"nuclear": [1, None]},
    )


@pytest.mark.parametrize(("suffix", "fmt"), [(".trk", "trk"), (".npz", "npz"), (".ome.tif", "tiff")])
def test_the_extension_chooses_the_format(tmp_path: Path, suffix: str, fmt: str):
    layers = as_napari_adds(npe2.read([str(make_trk(tmp_path))], stack=False, plugin_name=PLUGIN))
    out = tmp_path / f"saved{suffix}"
    assert npe2.write(str(out), layers, plugin_name=PLUGIN) == [str(out)]
    got, want = dlformats.read(out), dlformats.read(tmp_path / "movie.trk")
    assert got.metadata["format"] == fmt
    assert np.array_equal(np.asarray(got.X), np.asarray(want.X))
    if fmt == "trk":
        assert got.divisions == want.divisions and np.array_equal(np.asarray(got.y), np.asarray(want.y))


def test_viewer_save_all_layers_writes_the_project(tmp_path: Path):
    """File > Save All Layers: real napari layers (tracks included) back to a project zip."""
    if FIXTURES is None:
        pytest.skip("../shared/fixtures is absent")
    source = FIXTURES / "deepcell-label" / "oneDivision.zip"
    viewer = ViewerModel()
    viewer.open(source, plugin=PLUGIN)
    out = tmp_path / "saved.zip"
    assert viewer.layers.save(str(out), plugin=PLUGIN) == [str(out)]
    got, want = dlformats.read(out), dlformats.read(source)
    assert_same_project(got, want)
    assert got.divisions == [Division(parent=31, daughters=[134, 135], t=1)]


# -------------------------------------------------------------------- errors
def errors_since(start: int) -> list[str]:
    return [n.message for n in notification_manager.records[start:] if n.severity == NotificationSeverity.ERROR]


def broken_zips(tmp: Path) -> list[Path]:
    """A truncated project zip (its sniffer fails) and one whose cells.json is not JSON (its reader fails)."""
    good = make_project_zip(tmp)
    truncated = tmp / "truncated.zip"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    import zipfile

    bad_json = tmp / "bad-cells.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad_json, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, b"{not json" if item.filename == "cells.json" else src.read(item))
    return [truncated, bad_json]


def make_project_zip(tmp: Path) -> Path:
    return dlformats.write(testing.make_project(), tmp / "good.zip")


@pytest.mark.parametrize("which", [0, 1], ids=["truncated", "bad-cells-json"])
def test_a_read_error_is_a_one_line_notification(tmp_path: Path, which: int):
    path = broken_zips(tmp_path)[which]
    start = len(notification_manager.records)
    assert ViewerModel().open(path, plugin=PLUGIN) == []
    (message,) = errors_since(start)
    assert "\n" not in message and message.startswith(str(path))
    assert npe2.read([str(path)], stack=False, plugin_name=PLUGIN) == [(None,)]  # napari's "nothing to show"


def test_a_write_error_is_a_one_line_notification(tmp_path: Path):
    layers = [
        (np.zeros((2, 8, 8), np.uint8), {"name": "DAPI"}, "image"),
        (np.zeros((3, 8, 8), np.int32), {"name": "nuclear"}, "labels"),
    ]
    out = tmp_path / "bad.zip"
    start = len(notification_manager.records)
    assert npe2.write(str(out), layers, plugin_name=PLUGIN) == []
    (message,) = errors_since(start)
    assert "\n" not in message and str(out) in message and "'DAPI' (2, 8, 8)" in message
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_a_file_with_nothing_to_show_says_so(tmp_path: Path):
    cells = [Cell(1, 1, 0), Cell(2, 2, 1), Cell(3, 3, 1)]
    lineage = dlformats.Project(cells=cells, divisions=[Division(1, [2, 3], 1)])
    path = dlformats.write(lineage, tmp_path / "lineage.json")
    start = len(notification_manager.records)
    assert ViewerModel().open(path, plugin=PLUGIN) == []
    (note,) = notification_manager.records[start:]
    assert note.severity == NotificationSeverity.WARNING and note.message.startswith(f"{path}: nothing to show")


def test_files_no_format_claims_are_declined(tmp_path: Path):
    from dlformats_napari._reader import get_reader

    (tmp_path / "notes.txt").write_text("a plain note\n")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.txt").write_text("another\n")
    for name in ("notes.txt", "folder", "missing.zip"):
        assert get_reader(str(tmp_path / name)) is None, name
    with pytest.raises(ValueError, match="refused"):
        npe2.read([str(tmp_path / "notes.txt")], stack=False, plugin_name=PLUGIN)
    assert get_reader(str(make_project_zip(tmp_path))) is not None
    assert get_reader("https://example.org/data/movie.trk?download=1") is not None
    assert get_reader("https://example.org/data/notes.txt") is None
