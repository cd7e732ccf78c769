"""The OME-Zarr plugin, proved by the peers: ome-zarr-models validates what it writes, ome-zarr-py reads
the same pixels, stores written by ome-zarr-py (quirks included) read into the right project, and a
project zip survives zip -> OME-Zarr -> zip.  Then the bad input: typed errors naming store and array.

The peers (ome_zarr, ome_zarr_models) are imported inside the tests: they are slow to import, and a
missing peer must fail these tests, not skip them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

import dlformats
from dlformats import Cell, CellType, Limits, testing
from dlformats.errors import (
    AmbiguousInputError,
    CorruptFileError,
    DLFormatsError,
    DLFormatsWarning,
    InconsistentDataError,
    InvalidOptionError,
    LimitExceededError,
    NoReaderError,
    UnsafeArchiveError,
    UnsupportedFeatureError,
)
from dlformats.model import PARTS, apply_export_rule

FORMAT = "ome-zarr"
FIXTURES = testing.fixtures_dir()
DCL = FIXTURES / "deepcell-label" if FIXTURES else None
needs_fixtures = pytest.mark.skipif(FIXTURES is None, reason="../shared/fixtures is absent")
DCL_ZIPS = [
    "oneDivision.zip",
    "rgb.zip",
    "spots.zip",
    "history/oneDivision_2022-05-06_lineage-json.zip",
    "history/oneDivision_2022-06-03_nested-folder.zip",
    "history/spots_2022-04-19.zip",
    "history/testProject_2022-04-19.zip",
]


# ------------------------------------------------------------------ peers
def validate_with_models(store: Path) -> None:
    """ome-zarr-models validates the store, its labels group and every label image."""
    import ome_zarr_models

    root = ome_zarr_models.open_ome_zarr(store)
    labels_dir = store / "labels"
    if not labels_dir.is_dir():
        return
    labels = ome_zarr_models.open_ome_zarr(labels_dir)
    names = labels.ome_attributes.labels if hasattr(labels, "ome_attributes") else labels.attributes.labels
    levels = len(root.datasets[0])
    for name in names:
        image_label = ome_zarr_models.open_ome_zarr(labels_dir / name)
        assert type(image_label).__name__ == "ImageLabel"
        label_levels = len(image_label.ome_attributes.multiscales[0].datasets)
        assert label_levels == levels, f"{name}: label levels differ from the image's"


def read_with_ome_zarr(store: Path) -> dict[str, list[np.ndarray]]:
    """Every multiscale node ome-zarr-py's Reader finds: node path (relative) -> its levels as numpy."""
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for node in Reader(parse_url(str(store)))():
            if node.data:
                rel = os.path.relpath(str(node.zarr.path), str(store)).replace(os.sep, "/")
                out[rel] = [np.asarray(level) for level in node.data]
    return out


def write_with_ome_zarr(path: Path, image: np.ndarray | None, axes: str, labels: dict, version: str, **kw) -> Path:
    """A store written by ome-zarr-py: ``image`` with ``axes``, then each label ``{name: (array, axes)}``."""
    import zarr
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_image, write_labels

    fmt = FormatV05() if version == "0.5" else FormatV04()
    root = zarr.open_group(str(path), mode="w", zarr_format=fmt.zarr_format)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if image is not None:
            write_image(image, root, axes=axes, fmt=fmt, **kw)
        for name, (array, label_axes) in labels.items():
            write_labels(array, root, name=name, axes=label_axes, fmt=fmt)
    return path


def to_tcyx(project) -> np.ndarray:
    return np.moveaxis(np.asarray(project.X), 0, 1)


def exported(project) -> np.ndarray:
    """``y`` after DeepCell Label's export rule, as the store holds it."""
    if project.cells is None:
        return np.maximum(np.asarray(project.y), 0)
    return apply_export_rule(project.y, project.cells)[0]


# ------------------------------------------------------------------ declaration
def test_declared_and_light():
    fmt = testing.check_declared(FORMAT)
    assert fmt.spec.folder and fmt.spec.extensions == (".ome.zarr", ".zarr")
    testing.check_import_light("dlformats_omezarr")
    testing.check_import_light("dlformats")


def test_conformance_round_trip(tmp_path):
    project = testing.make_project(channels=2, frames=3, features=2, dtype="uint16")
    project.features = ["nuclear", "whole-cell"]
    back = testing.check_roundtrip(FORMAT, project, tmp_path / "out.ome.zarr")
    testing.check_sniff(FORMAT, tmp_path / "out.ome.zarr")
    assert back.frame_axis == "T"
    assert back.provenance["X"].format == FORMAT and back.provenance["cells"].format == FORMAT


# ------------------------------------------------------------------ the fixtures, both ways
@needs_fixtures
@pytest.mark.parametrize("version", ["0.5", "0.4"])
@pytest.mark.parametrize("name", DCL_ZIPS)
def test_project_zip_to_ome_zarr_and_back_is_identical(name, version, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DLFormatsWarning)
        original = dlformats.read(DCL / name)
    direct = dlformats.write(original, tmp_path / "direct.zip")
    store = dlformats.convert(DCL / name, tmp_path / "p.ome.zarr", write_options={"version": version, "levels": 2})[0]
    back = dlformats.convert(store, tmp_path / "back.zip")[0]
    a, b = dlformats.read(direct), dlformats.read(back)
    testing.assert_projects_equal(a, b)  # every part
    assert (a.frame_axis, a.channels, a.features) == (b.frame_axis, b.channels, b.features)
    assert b.metadata["sources"]["X"]["format"] == FORMAT  # the store's provenance is the zip's source now
    # the peers: the store is valid NGFF of the version asked, and holds the same pixels
    validate_with_models(store)
    found = read_with_ome_zarr(store)
    np.testing.assert_array_equal(found["."][0], to_tcyx(original))
    assert len(found["."]) == 2
    y = exported(original)
    meta = json.loads((store / ("zarr.json" if version == "0.5" else ".zattrs")).read_text())
    label_names = meta.get("attributes", meta)["dlformats"]["labels"]
    for c, label in enumerate(label_names):
        np.testing.assert_array_equal(found[f"labels/{label}"][0][:, 0], y[c])


@needs_fixtures
def test_fixture_store_layout(tmp_path):
    store = dlformats.convert(DCL / "spots.zip", tmp_path / "spots.ome.zarr")[0]
    meta = json.loads((store / "zarr.json").read_text())
    ome = meta["attributes"]["ome"]
    assert ome["version"] == "0.5"
    assert [(a["name"], a["type"]) for a in ome["multiscales"][0]["axes"]] == [
        ("t", "time"),
        ("c", "channel"),
        ("y", "space"),
        ("x", "space"),
    ]
    assert len(ome["omero"]["channels"]) == 3
    array = json.loads((store / "0" / "zarr.json").read_text())
    assert array["dimension_names"] == ["t", "c", "y", "x"]
    assert array["shape"] == [1, 3, 100, 100] and array["chunk_grid"]["configuration"]["chunk_shape"] == [
        1,
        1,
        100,
        100,
    ]
    labels = json.loads((store / "labels" / "zarr.json").read_text())["attributes"]["ome"]
    assert labels["version"] == "0.5" and len(labels["labels"]) == 2
    for name in labels["labels"]:
        image_label = json.loads((store / "labels" / name / "zarr.json").read_text())["attributes"]["ome"]
        assert image_label["image-label"]["version"] == "0.5"
        assert json.loads((store / "labels" / name / "0" / "zarr.json").read_text())["data_type"] == "int32"
    side = meta["attributes"]["dlformats"]
    assert side["version"] == 1 and side["spots"].startswith("x,y,cellID\n")
    assert set(side["cells"]) == {"value", "cell", "t", "c"}


# ------------------------------------------------------------------ generated projects: T, Z, pyramids, versions
@pytest.mark.parametrize("version", ["0.5", "0.4"])
@pytest.mark.parametrize("frame_axis", ["T", "Z", "B"])
@pytest.mark.parametrize("levels", [1, 3])
def test_generated_projects_validate_and_read_the_same(version, frame_axis, levels, tmp_path):
    project = testing.make_project(channels=2, frames=4, height=37, width=29, features=2, dtype="uint16", overlap=True)
    project.frame_axis = frame_axis
    project.features = ["nuclear", "whole cell"]
    project.cell_types = [CellType(1, "T cell", "#ff0000", 0, [1, 3])]
    project.embeddings = [None, [0.5, 1.0], [1.5, -2.0]]
    store = dlformats.write(project, tmp_path / "gen.ome.zarr", options={"version": version, "levels": levels})
    validate_with_models(store)
    found = read_with_ome_zarr(store)
    X = np.asarray(project.X)
    image = X if frame_axis == "Z" else np.moveaxis(X, 0, 1)  # (c, z, y, x) or (t, c, y, x)
    assert len(found["."]) == levels
    np.testing.assert_array_equal(found["."][0], image)
    y = exported(project)
    for c, name in enumerate(["nuclear", "whole_cell"]):
        levels_found = found[f"labels/{name}"]
        assert len(levels_found) == levels
        for k, level in enumerate(levels_found):
            plane_axis = 0 if frame_axis == "Z" else 1
            expect = y[c][:, :: 2**k, :: 2**k]  # nearest: a label level holds only values of level 0
            np.testing.assert_array_equal(np.take(level, 0, axis=plane_axis), expect)
    back = dlformats.read(store)
    testing.assert_projects_equal(project, back, tuple(p for p in PARTS if p not in ("y", "cells")))
    np.testing.assert_array_equal(np.asarray(back.y), y)
    assert sorted(back.cells) == sorted(apply_export_rule(project.y, project.cells)[1])  # overlaps get new values
    assert back.frame_axis == frame_axis
    if levels > 1:
        with pytest.warns(DLFormatsWarning, match="spots are in full-resolution pixels"):
            small = dlformats.read(store, options={"level": 2})
        assert small.X.shape == (2, 4, 10, 8) and small.y.shape == (2, 4, 10, 8)
        np.testing.assert_array_equal(np.asarray(small.y)[0], y[0][:, ::4, ::4])
        means = np.asarray(small.X, dtype=np.float64)
        assert means.min() >= X.min() and means.max() <= X.max()  # averages of the image, in its dtype
        assert small.X.dtype == np.uint16


@pytest.mark.parametrize(
    ("compression", "version"), [("gzip", "0.4"), ("gzip", "0.5"), ("blosc", "0.5"), ("blosc", "0.4"), ("none", "0.5")]
)
def test_compression_options_read_back(compression, version, tmp_path):
    project = testing.make_project(dtype="float32")
    store = dlformats.write(
        project, tmp_path / "c.ome.zarr", options={"compression": compression, "version": version, "chunks": 16}
    )
    validate_with_models(store)
    testing.assert_projects_equal(project, dlformats.read(store), ("X", "y", "cells", "spots", "channels"))


def test_large_planes_are_tiled(tmp_path):
    project = testing.make_project(channels=1, frames=2, height=70, width=40)
    store = dlformats.write(project, tmp_path / "t.ome.zarr", options={"chunks": 32})
    array = json.loads((store / "0" / "zarr.json").read_text())
    assert array["chunk_grid"]["configuration"]["chunk_shape"] == [1, 1, 32, 32]
    testing.assert_arrays_equal(project.X, dlformats.read(store).X, "X")


def test_write_options_are_checked(tmp_path):
    project = testing.make_project()
    for options, words in (
        ({"version": "0.3"}, "version"),
        ({"levels": 0}, "levels"),
        ({"compression": "lzma"}, "compression"),
        ({"chunks": "big"}, "chunks"),
        ({"levels": 6}, "below 2 pixels"),
        ({"compression": "gzip", "compression_level": 12}, "above 9"),
    ):
        with pytest.raises(InvalidOptionError, match=words):
            dlformats.write(project, tmp_path / "x.ome.zarr", options=options)
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary folder
    store = dlformats.write(project, tmp_path / "x.ome.zarr", options={"version": 0.4})  # a number from --write-option
    assert (store / ".zattrs").is_file()


def test_labels_only_and_image_only_projects(tmp_path):
    full = testing.make_project()
    labels_only = dlformats.Project(y=full.y, cells=full.cells, features=["cells"], divisions=full.divisions)
    store = dlformats.write(labels_only, tmp_path / "labels.ome.zarr")
    validate_with_models(store)
    back = dlformats.read(store)
    assert back.X is None
    testing.assert_projects_equal(labels_only, back, ("y", "cells", "divisions", "features"))
    image_only = dlformats.Project(X=full.X, channels=full.channels)
    store = dlformats.write(image_only, tmp_path / "image.ome.zarr")
    validate_with_models(store)
    back = dlformats.read(store)
    assert back.y is None and not (store / "labels").exists()
    testing.assert_arrays_equal(full.X, back.X, "X")


def test_store_as_labels_of_another_image(tmp_path):
    project = testing.make_project()
    store = dlformats.write(project, tmp_path / "seg.ome.zarr")
    image = tmp_path / "image.npy"
    np.save(image, np.asarray(project.X)[0])  # (T, Y, X)
    merged = dlformats.read(image, labels=store, axes="TYX")
    assert merged.provenance["y"].format == FORMAT
    np.testing.assert_array_equal(np.asarray(merged.y), np.asarray(project.y))
    assert sorted(merged.cells) == sorted(project.cells)


def test_convert_command_both_ways(tmp_path):
    project = testing.make_project(channels=2, frames=3)
    src = dlformats.write(project, tmp_path / "project.zip")
    store, back = tmp_path / "out.ome.zarr", tmp_path / "back.zip"
    for a, b in ((src, store), (store, back)):
        run = subprocess.run([sys.executable, "-m", "dlformats.cli", "convert", str(a), str(b)], capture_output=True)
        assert run.returncode == 0, run.stderr
    testing.assert_projects_equal(dlformats.read(src), dlformats.read(back))
    assert dlformats.info(store)["format"] == FORMAT


# ------------------------------------------------------------------ stores written by ome-zarr-py
@pytest.mark.parametrize("version", ["0.5", "0.4"])
def test_reads_ome_zarr_py_time_series_with_labels(version, tmp_path):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 4000, (3, 2, 64, 48), dtype=np.uint16)  # t c y x
    cells = np.zeros((3, 1, 64, 48), np.int32)
    cells[:, :, 5:10, 5:10] = 7
    cells[1, :, 30:40, 20:30] = 12
    nuclei = (cells > 0).astype(np.uint8) * 3
    store = write_with_ome_zarr(
        tmp_path / "ts.ome.zarr", image, "tcyx", {"cells": (cells, "tcyx"), "nuclei": (nuclei, "tcyx")}, version
    )
    project = dlformats.read(store)
    assert project.metadata["format"] == FORMAT and project.frame_axis == "T"
    np.testing.assert_array_equal(np.asarray(project.X), np.moveaxis(image, 1, 0))
    assert project.features == ["cells", "nuclei"]
    np.testing.assert_array_equal(np.asarray(project.y), np.moveaxis(np.concatenate([cells, nuclei], 1), 1, 0))
    assert project.listed_cells is None  # derived from the pixels, as DeepCell Label does
    out = dlformats.write(project, tmp_path / "p.zip")
    zipped = dlformats.read(out)
    assert Cell(12, 12, 1, 0) in zipped.cells and Cell(3, 3, 0, 1) in zipped.cells


@pytest.mark.parametrize("version", ["0.5", "0.4"])
def test_reads_ome_zarr_py_z_stack_and_its_quirks(version, tmp_path):
    import ome_zarr_models

    rng = np.random.default_rng(2)
    image = rng.integers(0, 255, (2, 5, 40, 30), dtype=np.uint8)  # c z y x
    labels = np.zeros((5, 40, 30), np.uint32)
    labels[:, 5:10, 5:10] = 7
    labels[2, 20:30, 3:9] = 300
    # two image levels, but ome-zarr-py's labels get five
    store = write_with_ome_zarr(
        tmp_path / "z.ome.zarr", image, "czyx", {"nuclei": (labels, "zyx")}, version, scale_factors=(2,)
    )
    if version == "0.5":  # the quirks are real: the reference validator refuses the store
        with pytest.raises(Exception, match="validate"):
            ome_zarr_models.open_ome_zarr(store)
    project = dlformats.read(store)
    assert project.frame_axis == "Z" and project.X.shape == (2, 5, 40, 30) and project.y.dtype.kind in "iu"
    np.testing.assert_array_equal(np.asarray(project.X), image)
    np.testing.assert_array_equal(np.asarray(project.y)[0], labels)
    small = dlformats.read(store, options={"level": 1})
    assert small.X.shape == (2, 5, 20, 15) and small.y.shape == (1, 5, 20, 15)
    with pytest.raises(InvalidOptionError, match="level=2"):
        dlformats.read(store, options={"level": 2})  # the image has two levels; its labels have more


def test_reads_ome_zarr_py_five_dimensions_with_select(tmp_path):
    image = np.arange(2 * 3 * 4 * 10 * 8, dtype=np.uint16).reshape(2, 3, 4, 10, 8)  # t c z y x
    store = write_with_ome_zarr(tmp_path / "5d.ome.zarr", image, "tczyx", {}, "0.5", scale_factors=())
    with pytest.raises(AmbiguousInputError) as err:
        dlformats.read(store)
    assert err.value.option == "select"
    by_letter = dlformats.read(store, options={"select": {"Z": 2}})
    by_name = dlformats.read(store, options={"select": {"t": 1}})
    np.testing.assert_array_equal(np.asarray(by_letter.X), np.moveaxis(image[:, :, 2], 1, 0))
    np.testing.assert_array_equal(np.asarray(by_name.X), image[1])
    assert by_letter.frame_axis == "T" and by_name.frame_axis == "Z"
    with pytest.raises(InvalidOptionError, match="not an axis letter"):
        dlformats.read(store, options={"select": {"q": 0}})
    with pytest.raises(InvalidOptionError, match="not axes"):
        dlformats.read(store, options={"select_named": "q=0"})
    by_store_name = dlformats.read(store, options={"select_named": "z=2"})
    np.testing.assert_array_equal(np.asarray(by_store_name.X), np.asarray(by_letter.X))


def test_reads_labels_only_store_and_a_label_image_directly(tmp_path):
    labels = np.zeros((1, 3, 20, 16), np.uint16)
    labels[0, :, 2:6, 2:6] = 5
    store = write_with_ome_zarr(tmp_path / "seg.ome.zarr", None, "", {"cells": (labels, "czyx")}, "0.5")
    project = dlformats.read(store)
    assert project.X is None and project.features == ["cells"] and project.frame_axis == "Z"
    np.testing.assert_array_equal(np.asarray(project.y)[0], labels[0])
    direct = dlformats.read(store / "labels" / "cells")
    np.testing.assert_array_equal(np.asarray(direct.y), np.asarray(project.y))


def test_extra_label_image_added_by_another_tool(tmp_path):
    project = testing.make_project()
    store = dlformats.write(project, tmp_path / "p.ome.zarr")
    extra = np.zeros((3, 1, 12, 10), np.int32)
    extra[:, :, 0:2, 0:2] = 9
    import zarr
    from ome_zarr.format import FormatV05
    from ome_zarr.writer import write_labels

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_labels(extra, zarr.open_group(str(store), mode="r+"), name="more", axes="tcyx", fmt=FormatV05())
    with pytest.warns(DLFormatsWarning, match="not those dlformats wrote"):
        back = dlformats.read(store)
    assert back.features == ["feature_0", "more"] and back.listed_cells is None  # derived from the pixels again
    assert back.spots is not None and back.channels == project.channels  # parts not tied to the labels stay


# ------------------------------------------------------------------ lazy reading
def test_planes_come_from_their_chunks_and_missing_chunks_are_the_fill_value(tmp_path):
    project = testing.make_project(channels=1, frames=3)
    store = dlformats.write(project, tmp_path / "p.ome.zarr", options={"version": "0.4"})
    shutil.rmtree(store / "0" / "2")  # every chunk of frame 2 (v2 keys t/c/y/x)
    back = dlformats.read(store)
    np.testing.assert_array_equal(back.X[0, 1], np.asarray(project.X)[0, 1])
    assert not back.X[0, 2].any()  # documented: a missing chunk reads as fill_value (0 here)


def test_threads_get_the_right_planes(tmp_path):
    project = testing.make_project(channels=2, frames=6, height=32, width=32)
    store = dlformats.write(project, tmp_path / "p.ome.zarr")
    back = dlformats.read(store)
    expected = np.asarray(project.X)
    errors = []

    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(30):
            c, t = int(rng.integers(2)), int(rng.integers(6))
            if not np.array_equal(back.X[c, t], expected[c, t]):
                errors.append((c, t))

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []


def test_multi_plane_chunks_are_decoded_once_per_block(tmp_path):
    import zarr

    image = np.arange(6 * 2 * 16 * 12, dtype=np.uint16).reshape(6, 2, 16, 12)
    store = write_with_ome_zarr(tmp_path / "one-chunk.ome.zarr", image, "tcyx", {}, "0.5", scale_factors=())
    assert zarr.open_array(str(store / "s0"), mode="r").chunks[0] == 6  # the whole stack in one chunk
    project = dlformats.read(store)
    np.testing.assert_array_equal(np.asarray(project.X), np.moveaxis(image, 1, 0))


# ------------------------------------------------------------------ bad input
def _store(tmp_path: Path, version: str = "0.5", **options) -> Path:
    project = testing.make_project(channels=2, frames=3, height=12, width=10)
    tmp_path.mkdir(parents=True, exist_ok=True)
    return dlformats.write(project, tmp_path / "bad.ome.zarr", options={"version": version, **options})


def _edit(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def _ome(doc: dict) -> dict:
    return doc["attributes"]["ome"] if "attributes" in doc else doc


def _raises(kind, store: Path, *words: str, **kwargs) -> DLFormatsError:
    with pytest.raises(kind) as err:
        project = dlformats.read(store, **kwargs)
        np.asarray(project.X)
        np.asarray(project.y)
    text = str(err.value)
    assert str(store) in text, text
    for word in words:
        assert word in text, text
    return err.value


@pytest.mark.parametrize("version", ["0.5", "0.4"])
def test_axes_that_contradict_the_arrays(version, tmp_path):
    store = _store(tmp_path, version)
    meta = store / ("zarr.json" if version == "0.5" else ".zattrs")
    _edit(meta, lambda d: _ome(d)["multiscales"][0]["axes"].pop(0))
    _edit(meta, lambda d: [ds.update(coordinateTransformations=[]) for ds in _ome(d)["multiscales"][0]["datasets"]])
    _raises(CorruptFileError, store, "3 axes", "4 dimensions", "0")


def test_dimension_names_that_contradict_the_axes(tmp_path):
    store = _store(tmp_path)
    _edit(store / "0" / "zarr.json", lambda d: d.update(dimension_names=["c", "t", "y", "x"]))
    _raises(CorruptFileError, store, "dimension_names")


def test_levels_that_contradict_each_other(tmp_path):
    store = _store(tmp_path, levels=2)
    _edit(store / "1" / "zarr.json", lambda d: d.update(data_type="uint16"))
    _raises(CorruptFileError, store, "level 1", "uint16")
    store = _store(tmp_path / "b", levels=2)
    _edit(store / "1" / "zarr.json", lambda d: d.update(shape=[3, 2, 24, 5]))
    _raises(CorruptFileError, store, "larger along y")
    store = _store(tmp_path / "c", levels=2)
    _edit(store / "1" / "zarr.json", lambda d: d.update(shape=[2, 2, 6, 5]))
    _raises(CorruptFileError, store, "2 t")


def test_unknown_axis_type(tmp_path):
    import zarr

    image = np.zeros((4, 3, 10, 8), np.uint8)
    store = write_with_ome_zarr(tmp_path / "odd.ome.zarr", image, "tcyx", {}, "0.5", scale_factors=())
    _edit(store / "zarr.json", lambda d: _ome(d)["multiscales"][0]["axes"][0].update(name="angle", type="angular"))
    _edit(store / "s0" / "zarr.json", lambda d: d.update(dimension_names=["angle", "c", "y", "x"]))
    err = _raises(UnsupportedFeatureError, store, "angle", "angular", "4 planes")
    assert "options={'select_named': 'angle=0'}" in str(err)
    zarr.open_array(str(store / "s0"), mode="r+")[2] = 5
    project = dlformats.read(store, options={"select_named": "angle=2"})
    assert project.X.shape == (3, 1, 10, 8) and (np.asarray(project.X) == 5).all()


def test_float_labels_are_refused(tmp_path):
    store = _store(tmp_path, levels=2)  # ome-zarr-py refuses to write float labels: make them by hand
    for level in ("0", "1"):
        _edit(store / "labels" / "feature_0" / level / "zarr.json", lambda d: d.update(data_type="float32"))
    _raises(CorruptFileError, store, "labels/feature_0", "float32", "integers")


@pytest.mark.parametrize("version", ["0.5", "0.4"])
def test_damaged_chunk_is_a_typed_error(version, tmp_path):
    store = _store(tmp_path, version)
    chunk = store / "0" / ("c/1/0/0/0" if version == "0.5" else "1/0/0/0")
    chunk.write_bytes(chunk.read_bytes()[:7])
    err = _raises(CorruptFileError, store, "array 0")
    assert err.member == "0"


def test_symlink_leaving_the_store(tmp_path):
    store = _store(tmp_path)
    outside = tmp_path / "secret"
    outside.write_bytes(b"\x00" * 240)
    chunk = store / "0" / "c" / "1" / "0" / "0" / "0"
    chunk.unlink()
    chunk.symlink_to(outside)
    _raises(UnsafeArchiveError, store, "outside")
    meta_store = _store(tmp_path / "m")
    shutil.move(meta_store / "labels", tmp_path / "elsewhere")
    (meta_store / "labels").symlink_to(tmp_path / "elsewhere")
    _raises(UnsafeArchiveError, meta_store, "outside", "labels")
    planted = tmp_path / "up" / "image.ome.zarr"  # the store itself a link out of its folder
    planted.parent.mkdir()
    planted.symlink_to(_store(tmp_path / "elsewhere-store"))
    err = _raises(UnsafeArchiveError, planted, "outside its folder")
    assert "read " in str(err.hint)
    inside = _store(tmp_path / "i")  # a link that stays inside the store is fine
    os.rename(inside / "0", inside / "zero")
    (inside / "0").symlink_to("zero")
    assert dlformats.read(inside).X.shape == (2, 3, 12, 10)


def test_chunks_and_shapes_beyond_the_limits(tmp_path):
    store = _store(tmp_path)
    err = _raises(LimitExceededError, store, "chunk", limits=Limits(array_bytes=100))
    assert err.limit == "array_bytes"
    _edit(store / "0" / "zarr.json", lambda d: d.update(shape=[3, 2, 10**9, 10**9]))
    err = _raises(LimitExceededError, store, "too large")
    assert err.limit in ("total_bytes", "array_bytes")
    tiny = _store(tmp_path / "t")
    _edit(tiny / "0" / "zarr.json", lambda d: d.update(shape=[3, 2, 4096, 4096]))
    _edit(
        tiny / "0" / "zarr.json", lambda d: d["chunk_grid"]["configuration"].update(chunk_shape=[1, 1, 1, 1])
    )  # every pixel its own chunk
    _raises(UnsupportedFeatureError, tiny, "pieces")


def test_decompression_bomb_chunk(tmp_path):
    import gzip
    import zlib

    store = _store(tmp_path, "0.4", compression="gzip")
    chunk = store / "0" / "1" / "0" / "0" / "0"
    chunk.write_bytes(gzip.compress(bytes(50 << 20)))  # 50 MiB of zeros for a 120-byte chunk
    _raises(CorruptFileError, store, "decompresses", "120")
    z = _store(tmp_path / "z", "0.5")
    chunk = z / "0" / "c" / "1" / "0" / "0" / "0"
    import numcodecs

    chunk.write_bytes(numcodecs.Zstd(level=1).encode(bytes(50 << 20)))  # declares 50 MiB in its header
    _raises(CorruptFileError, z, "decompresses")
    assert zlib  # (the zlib path is the same trial as gzip)


def test_pickle_codecs_and_object_dtypes_are_refused(tmp_path):
    store = _store(tmp_path, "0.4")
    _edit(store / "0" / ".zarray", lambda d: d.update(compressor={"id": "pickle"}))
    _raises(UnsupportedFeatureError, store, "pickle")
    store = _store(tmp_path / "o", "0.4")
    _edit(store / "0" / ".zarray", lambda d: d.update(dtype="|O", filters=[{"id": "vlen-utf8"}]))
    _raises(UnsupportedFeatureError, store, "|O")
    store = _store(tmp_path / "v3")
    _edit(store / "0" / "zarr.json", lambda d: d["codecs"].append({"name": "numcodecs.pickle"}))
    _raises(UnsupportedFeatureError, store, "numcodecs.pickle")


def test_versions_and_collections(tmp_path):
    store = _store(tmp_path, "0.4")
    _edit(store / ".zattrs", lambda d: d["multiscales"][0].update(version="0.3"))
    _raises(UnsupportedFeatureError, store, "0.3")
    plate = tmp_path / "plate.ome.zarr"
    plate.mkdir()
    (plate / "zarr.json").write_text(
        json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {"ome": {"version": "0.5", "plate": {}}}})
    )
    _raises(UnsupportedFeatureError, plate, "plate", "A/1/0")


def test_not_an_ome_zarr(tmp_path):
    import zarr

    plain = tmp_path / "plain.zarr"
    zarr.open_group(str(plain), mode="w").create_array("a", shape=(4, 4), dtype="u1")
    with pytest.raises(NoReaderError, match="without OME-Zarr metadata"):
        dlformats.read(plain)
    empty = tmp_path / "empty.ome.zarr"
    empty.mkdir()
    with pytest.raises(NoReaderError):
        dlformats.read(empty)


def test_broken_metadata_names_the_store_and_file(tmp_path):
    store = _store(tmp_path)
    (store / "labels" / "zarr.json").write_text("{not json")
    err = _raises(CorruptFileError, store, "labels/zarr.json")
    assert err.member == "labels/zarr.json"
    store = _store(tmp_path / "l")
    _edit(store / "labels" / "zarr.json", lambda d: _ome(d)["labels"].append("ghost"))
    _raises(CorruptFileError, store, "ghost")
    store = _store(tmp_path / "s")
    _edit(store / "zarr.json", lambda d: d["attributes"]["dlformats"].update(cells={"value": [1.5]}))
    _raises(CorruptFileError, store, "dlformats key")


def test_labels_of_another_size(tmp_path):
    store = _store(tmp_path)
    other = testing.make_project(channels=1, frames=3, height=14, width=10)
    dlformats.write(other, tmp_path / "other.ome.zarr")
    label = store / "labels" / "feature_0"
    shutil.rmtree(label)
    shutil.copytree(tmp_path / "other.ome.zarr" / "labels" / "feature_0", label)
    _raises(InconsistentDataError, store, "labels/feature_0", "14")


def test_failed_write_leaves_nothing(tmp_path):
    class Broken:
        shape = (1, 3, 12, 10)
        dtype = np.dtype(np.uint8)

        def __getitem__(self, key):
            if key[1] == 2:
                raise CorruptFileError("plane 2 is unreadable", path="source.tif")
            return np.zeros((12, 10), np.uint8)

    target = tmp_path / "out.ome.zarr"
    target.mkdir()
    (target / "keep").write_text("an earlier output")
    with pytest.raises(CorruptFileError, match="plane 2"):
        dlformats.write(dlformats.Project(X=Broken()), target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.ome.zarr"]
    assert [p.name for p in target.iterdir()] == ["keep"]


def test_found_by_content_without_extension(tmp_path):
    store = _store(tmp_path)
    _edit(store / "zarr.json", lambda d: d["attributes"]["dlformats"].update(sources={"note": "x" * (2 << 20)}))
    plain = tmp_path / "dataset"
    store.rename(plain)
    testing.check_sniff(FORMAT, plain)  # a root zarr.json of 2 MB: the start tells
    assert dlformats.read(plain).X.shape == (2, 3, 12, 10)
    geff = tmp_path / "tracks"
    geff.mkdir()
    (geff / "zarr.json").write_text(
        json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {"geff": {"related_objects": "labels"}}})
    )
    with pytest.raises(CorruptFileError) as info:  # another zarr format's group: its own reader says what is wrong
        dlformats.read(geff)
    assert info.value.format == "geff"


@pytest.mark.parametrize("whole_shards", [True, False])
def test_sharded_arrays_are_read_and_their_chunks_checked(whole_shards, tmp_path):
    import numcodecs
    import zarr

    project = testing.make_project(channels=2, frames=3, height=12, width=10)
    store = dlformats.write(project, tmp_path / "s.ome.zarr")
    data = zarr.open_array(str(store / "0"), mode="r")[:]
    shutil.rmtree(store / "0")
    shards = (1, 2, 12, 10) if whole_shards else (3, 2, 12, 10)  # a plane is a whole shard, or part of one
    array = zarr.open_group(str(store), mode="r+").create_array(
        "0", shape=data.shape, dtype=data.dtype, chunks=(1, 1, 6, 5), shards=shards, dimension_names="tcyx"
    )
    array[:] = data
    testing.assert_arrays_equal(project.X, dlformats.read(store).X, "X")
    # point the first inner chunk of a shard at a stream that declares 50 MiB for its 30 bytes
    shard = next(p for p in (store / "0").rglob("*") if p.is_file() and p.name != "zarr.json")
    raw = shard.read_bytes()
    count = int(np.prod(shards)) // 30
    data_part, index = raw[: -(16 * count + 4)], np.frombuffer(raw[-(16 * count + 4) : -4], "<u8").copy()
    bomb = numcodecs.Zstd(level=1).encode(bytes(50 << 20))
    index[0], index[1] = len(data_part), len(bomb)
    shard.write_bytes(data_part + bomb + bytes(numcodecs.CRC32C().encode(index.tobytes())))
    _raises(CorruptFileError, store, "decompresses")


def test_an_image_without_label_images_serves_as_labels(tmp_path):
    masks = np.zeros((1, 2, 8, 6), np.float32)
    masks[0, :, 1:4, 1:4] = 3.0  # a float mask image with whole values, as some tools save them
    store = dlformats.write(dlformats.Project(X=masks), tmp_path / "masks.ome.zarr")
    image = tmp_path / "image.npy"
    np.save(image, np.ones((2, 8, 6), np.uint8))
    project = dlformats.read(image, labels=store, axes="TYX")
    assert project.y.dtype == np.int32 and np.asarray(project.y).max() == 3
