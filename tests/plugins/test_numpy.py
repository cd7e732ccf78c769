"""The numpy plugin (npy, npz): DeepCell layouts, naming rules, axes, batches, mapping, hostile headers, writers."""

from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npformat

import dlformats
from dlformats import (
    AmbiguousInputError,
    CorruptFileError,
    DLFormatsWarning,
    InconsistentDataError,
    InvalidOptionError,
    LimitExceededError,
    Limits,
    NoReaderError,
    UnsupportedFeatureError,
    testing,
)
from dlformats.model import Cell, apply_export_rule
from dlformats.registry import get_registry
from dlformats.sources import open_source

FIXTURES = testing.fixtures_dir()
needs_fixtures = pytest.mark.skipif(FIXTURES is None, reason="../shared/fixtures is absent")


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def forged_npy(descr: str, shape: tuple, data: bytes, fortran: bool = False) -> bytes:
    """An .npy whose header says what we want, whatever the data that follows."""
    buf = io.BytesIO()
    npformat.write_array_header_1_0(buf, {"descr": descr, "fortran_order": fortran, "shape": shape})
    return buf.getvalue() + data


def make_npz(path: Path, members: dict[str, bytes | np.ndarray], compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, value in members.items():
            zf.writestr(f"{name}.npy", value if isinstance(value, bytes) else npy_bytes(value))
    return path


def deepcell_arrays(batches: int = 3, height: int = 16, width: int = 20, channels: int = 2):
    rng = np.random.default_rng(1)
    X = rng.integers(0, 4000, (batches, height, width, channels)).astype(np.uint16)
    y = np.zeros((batches, height, width, 1), np.int32)
    y[:, 2:6, 3:8, 0] = 1
    y[1:, 9:12, 10:15, 0] = 2
    return X, y


def channels_first(a: np.ndarray) -> np.ndarray:
    """DeepCell's (B, Y, X, C) as DeepCell Label's (C, frames, Y, X)."""
    return np.moveaxis(a, -1, 0)


# ------------------------------------------------------------------ declarations, detection
def test_declared_and_light():
    testing.check_declared("npy")
    testing.check_declared("npz")
    testing.check_import_light("dlformats_numpy")


def test_sniff(tmp_path):
    X, y = deepcell_arrays()
    testing.check_sniff("npy", npy_bytes(X))
    testing.check_sniff("npz", make_npz(tmp_path / "train.npz", {"X": X, "y": y}))
    # content decides: an npz without a telling name is still an npz
    testing.check_sniff("npz", (tmp_path / "train.npz").read_bytes())


def candidates(path: Path) -> list[str]:
    src = open_source(path)
    try:
        return [f.name for f in get_registry().reader_candidates(src)[0]]
    finally:
        src.close()


@needs_fixtures
def test_npz_does_not_claim_a_deepcell_label_project_zip():
    assert "npz" not in candidates(FIXTURES / "deepcell-label" / "rgb.zip")


def test_zip_with_other_members_is_not_an_npz(tmp_path):
    path = tmp_path / "mixed.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("X.npy", npy_bytes(np.zeros((4, 4), np.uint8)))
        zf.writestr("cells.json", "[]")
    assert "npz" not in candidates(path)
    with pytest.raises(NoReaderError):
        dlformats.read(path, format="npz")


# ------------------------------------------------------------------ DeepCell layouts and naming rules
def test_deepcell_training_npz(tmp_path):
    X, y = deepcell_arrays()
    path = make_npz(tmp_path / "train.npz", {"X": X, "y": y})
    project = testing.check_read("npz", path)
    assert tuple(project.X.shape) == (2, 3, 16, 20) and project.X.dtype == np.uint16
    assert tuple(project.y.shape) == (1, 3, 16, 20) and project.y.dtype == np.int32
    assert project.frame_axis == "B"
    assert np.array_equal(np.asarray(project.X), channels_first(X))
    assert np.array_equal(np.asarray(project.y), channels_first(y))
    assert sorted({(c.value, c.t) for c in project.cells_or_derived()}) == [(1, 0), (1, 1), (1, 2), (2, 1), (2, 2)]


def test_raw_annotated_npz(tmp_path):
    # the older names; a top-level npz like this crashes the reference app
    X, y = deepcell_arrays()
    path = tmp_path / "old.npz"
    np.savez_compressed(path, raw=X, annotated=y)
    project = testing.check_read("npz", path)
    assert np.array_equal(np.asarray(project.X), channels_first(X))
    assert np.array_equal(np.asarray(project.y), channels_first(y))
    assert project.metadata["npz"] == {"image": "raw", "labels": "annotated", "unused": []}


def test_first_array_is_the_image_and_other_arrays_are_reported(tmp_path):
    path = tmp_path / "positional.npz"
    image = np.arange(5 * 6, dtype=np.float32).reshape(5, 6)
    np.savez(path, image, np.ones(3))  # arr_0, arr_1
    with pytest.warns(DLFormatsWarning, match="arr_1"):
        project = dlformats.read(path)
    assert np.array_equal(np.asarray(project.X)[0, 0], image) and project.y is None
    assert project.metadata["npz"]["unused"] == ["arr_1"]


def test_labels_by_documented_name(tmp_path):
    image = np.zeros((8, 9), np.uint8)
    masks = np.zeros((8, 9), np.uint16)
    masks[1:3, 1:3] = 5
    path = make_npz(tmp_path / "named.npz", {"image": image, "masks": masks})
    project = dlformats.read(path)
    assert project.metadata["npz"]["image"] == "image" and project.metadata["npz"]["labels"] == "masks"
    assert np.array_equal(np.asarray(project.y)[0, 0], masks)


def test_npz_as_a_separate_labels_source(tmp_path):
    image = np.zeros((6, 7), np.uint8)
    mask = (np.arange(42).reshape(6, 7) % 3).astype(np.int64)
    np.save(tmp_path / "image.npy", image)
    np.savez(tmp_path / "labels.npz", mask)  # arr_0 only: the first array becomes the labels
    project = dlformats.read(tmp_path / "image.npy", labels=tmp_path / "labels.npz")
    assert project.y.dtype == np.int64 and np.array_equal(np.asarray(project.y)[0, 0], mask)  # kept whole


def test_labels_with_one_dimension_fewer_follow_the_image(tmp_path):
    X, y = deepcell_arrays()
    path = make_npz(tmp_path / "noc.npz", {"X": X, "y": y[..., 0]})  # y (B, Y, X)
    project = dlformats.read(path)
    assert project.metadata["labels_axes"] == "BYX"
    assert np.array_equal(np.asarray(project.y), channels_first(y))


def test_names_cell_types_and_embeddings(tmp_path):
    X, y = deepcell_arrays()
    emb = np.array([[np.nan, np.nan], [0.5, 1.0], [2.0, -1.0]])
    path = make_npz(
        tmp_path / "named.npz",
        {
            "X": X,
            "y": y,
            "channel_names": np.array(["DAPI", "membrane"]),
            "cell_types": np.array(["", "T cell", "B cell"]),
            "embeddings": emb,
        },
    )
    project = testing.check_read("npz", path)
    assert project.channels == ["DAPI", "membrane"]
    assert [(t.id, t.name, t.cells) for t in project.cell_types] == [(1, "T cell", [1]), (2, "B cell", [2])]
    assert project.embeddings == [None, [0.5, 1.0], [2.0, -1.0]]


def test_names_must_match_channels_and_be_unicode(tmp_path):
    X, _ = deepcell_arrays()
    path = make_npz(tmp_path / "three.npz", {"X": X, "channels": np.array(["a", "b", "c"])})
    with pytest.raises(InconsistentDataError, match="3 names for 2 channels") as info:
        dlformats.read(path)
    assert info.value.member == "channels"
    buf = io.BytesIO()  # string names saved as objects: only a pickle could restore them
    np.save(buf, np.array(["a", "b"], dtype=object), allow_pickle=True)
    obj = buf.getvalue()
    with pytest.raises(UnsupportedFeatureError, match="object arrays"):
        dlformats.read(make_npz(tmp_path / "obj.npz", {"X": X, "channels": obj}))


# ------------------------------------------------------------------ axes and batches
def test_channels_first_stack_asks_for_axes(tmp_path):
    cyx = np.arange(3 * 32 * 40, dtype=np.uint16).reshape(3, 32, 40)
    path = make_npz(tmp_path / "cyx.npz", {"X": cyx})
    with pytest.raises(AmbiguousInputError) as info:
        dlformats.read(path)
    assert info.value.option == "axes" and "CYX" in info.value.choices
    project = dlformats.read(path, axes="CYX")
    assert np.array_equal(np.asarray(project.X)[:, 0], cyx)


def test_user_axes_override_and_are_validated(tmp_path):
    xy = np.arange(4 * 7, dtype=np.uint8).reshape(7, 4)  # stored (X, Y)
    path = tmp_path / "xy.npy"
    np.save(path, xy)
    assert np.array_equal(np.asarray(dlformats.read(path, axes="XY").X)[0, 0], xy.T)
    tzyx = np.zeros((2, 3, 5, 6), np.uint8)
    np.save(tmp_path / "tz.npy", tzyx)
    with pytest.raises(AmbiguousInputError) as info:
        dlformats.read(tmp_path / "tz.npy", axes="TZYX")
    assert info.value.option == "select"
    assert dlformats.read(tmp_path / "tz.npy", axes="TZYX", options={"select": {"Z": 1}}).X.shape == (1, 2, 5, 6)
    for bad in ("QYX", "YX", "YYXC"):
        with pytest.raises(InvalidOptionError, match="shape is"):
            dlformats.read(tmp_path / "tz.npy", axes=bad)


def test_five_d_batches_are_separate_projects(tmp_path):
    movies = np.arange(2 * 3 * 8 * 9, dtype=np.uint8).reshape(2, 3, 8, 9, 1)  # (batch, frames, y, x, c)
    tracked = (movies > 100).astype(np.int32)
    path = make_npz(tmp_path / "movies.npz", {"X": movies, "y": tracked})
    projects = dlformats.read_all(path)
    assert len(projects) == 2
    for b, project in enumerate(projects):
        assert project.X.shape == (1, 3, 8, 9) and project.frame_axis == "T"
        assert project.metadata["batch"] == b
        assert np.array_equal(np.asarray(project.X), channels_first(movies[b]))
        assert np.array_equal(np.asarray(project.y), channels_first(tracked[b]))
    with pytest.raises(AmbiguousInputError, match="2 projects"):
        dlformats.read(path)
    one = dlformats.read(path, options={"batch": 1})
    assert np.array_equal(np.asarray(one.X), channels_first(movies[1]))
    with pytest.raises(InvalidOptionError):
        dlformats.read(path, options={"batch": 2})
    written = dlformats.convert(path, tmp_path / "out.npz")
    assert [p.name for p in written] == ["out_batch0.npz", "out_batch1.npz"]


def test_five_d_with_one_batch_is_one_movie():
    movie = np.zeros((1, 4, 8, 9, 2), np.float32)
    project = dlformats.read(npy_bytes(movie))
    assert project.X.shape == (2, 4, 8, 9) and project.frame_axis == "T"


def test_six_d_needs_axes():
    with pytest.raises(AmbiguousInputError) as info:
        dlformats.read(npy_bytes(np.zeros((1, 1, 1, 1, 4, 4), np.uint8)))
    assert info.value.option == "axes"


# ------------------------------------------------------------------ dtypes, byte orders, memory order
@pytest.mark.parametrize("dtype", [">u2", ">f4", "<i8", "int8", "float16"])
def test_byte_orders_and_dtypes(tmp_path, dtype):
    a = (np.arange(6 * 7).reshape(6, 7) * 3 - 10 * (np.dtype(dtype).kind != "u")).astype(dtype)
    np.save(tmp_path / "a.npy", a)
    X = testing.check_read("npy", tmp_path / "a.npy").X
    assert X.dtype == np.dtype(dtype).newbyteorder("=")
    assert np.array_equal(np.asarray(X)[0, 0], a)


def test_fortran_order(tmp_path):
    X, _ = deepcell_arrays()
    fortran = np.asfortranarray(X)
    np.save(tmp_path / "f.npy", fortran)
    assert np.array_equal(np.asarray(dlformats.read(tmp_path / "f.npy").X), channels_first(X))
    assert np.array_equal(np.asarray(dlformats.read(npy_bytes(fortran)).X), channels_first(X))


def test_bool_masks(tmp_path):
    mask = np.zeros((5, 6), bool)
    mask[1:3, 2:4] = True
    np.save(tmp_path / "mask.npy", mask)
    assert dlformats.read(tmp_path / "mask.npy").X.dtype == np.bool_
    project = dlformats.read(tmp_path / "mask.npy", labels=tmp_path / "mask.npy")
    assert project.y.dtype == np.int32 and np.array_equal(np.asarray(project.y)[0, 0], mask.astype(np.int32))


@needs_fixtures
def test_real_object_array_refused_with_a_typed_error():
    path = FIXTURES / "polaris" / "Polaris_coords.npy"  # an object array of arrays, from a real project
    with pytest.raises(UnsupportedFeatureError, match="object arrays") as info:
        dlformats.read(path)
    assert str(path) in str(info.value)


def test_object_member_of_npz_refused(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, X=np.array([np.zeros(3), np.zeros(4)], dtype=object))  # savez pickles it
    with pytest.raises(UnsupportedFeatureError, match="object arrays") as info:
        dlformats.read(path)
    assert info.value.member == "X.npy"


@pytest.mark.parametrize("descr", ["<c8", "|S4", "<U3", "|V8", "<M8[s]"])
def test_other_dtypes_refused(descr):
    data = forged_npy(descr, (2, 2), b"\x00" * 4 * np.dtype(descr).itemsize)
    with pytest.raises(UnsupportedFeatureError):
        dlformats.read(data)


# ------------------------------------------------------------------ declared sizes, hostile headers
def test_declared_shape_larger_than_the_file(tmp_path):
    data = forged_npy("<u2", (1000, 1000), b"\x00" * 10)
    (tmp_path / "short.npy").write_bytes(data)
    for source in (tmp_path / "short.npy", data):
        with pytest.raises(CorruptFileError, match="2,000,000 bytes"):
            dlformats.read(source)
    for compression in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        path = make_npz(tmp_path / "short.npz", {"X": data}, compression)
        with pytest.raises(CorruptFileError) as info:
            dlformats.read(path)
        assert info.value.member == "X.npy" and str(path) in str(info.value)


def test_overflowing_shape_is_caught_before_allocating():
    # np.prod would wrap to 0 here; Python ints do not
    with pytest.raises(CorruptFileError, match="bytes"):
        dlformats.read(forged_npy("<u1", (2**32, 2**32), b""))


@pytest.mark.parametrize(
    "data",
    [
        b"\x93NUMPY\x01\x00\x10\x00{'descr': '<u",  # truncated header
        b"\x93NUMPY\x09\x00" + b"\x00" * 20,  # unknown version
        forged_npy("<u1", (2, 2), b"\x00" * 4)[:10] + b"{'descr': 'zz', 'fortran_order': 0, 'shape': (2,)}\n",
    ],
)
def test_broken_headers_are_typed_errors(data):
    with pytest.raises((CorruptFileError, UnsupportedFeatureError)):
        dlformats.read(data, name="broken.npy")


def test_negative_dimension_refused():
    header = "{'descr': '<u1', 'fortran_order': False, 'shape': (-2, 8), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    data = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\x00" * 16
    with pytest.raises(CorruptFileError, match="negative"):
        dlformats.read(data)


def test_limits_in_memory_versus_mapped(tmp_path):
    stack = np.zeros((4, 64, 64, 1), np.uint8)  # 16 KiB, 4 KiB a plane
    np.save(tmp_path / "stack.npy", stack)
    limits = Limits(array_bytes=64 * 64)
    # on disk it is mapped: only one plane at a time must fit
    assert dlformats.read(tmp_path / "stack.npy", limits=limits).X.shape == (1, 4, 64, 64)
    # in memory (and in a deflated member) the whole array must fit
    with pytest.raises(LimitExceededError):
        dlformats.read(npy_bytes(stack), limits=limits)
    path = make_npz(tmp_path / "stack.npz", {"X": stack}, zipfile.ZIP_DEFLATED)
    with pytest.raises(LimitExceededError) as info:
        dlformats.read(path, limits=limits)
    assert info.value.member == "X.npy"
    with pytest.raises(LimitExceededError):
        dlformats.read(tmp_path / "stack.npy", limits=Limits(total_bytes=1000))


def test_npy_on_disk_is_memory_mapped(tmp_path):
    a = np.zeros((3, 8, 8, 1), np.uint8)
    path = tmp_path / "mapped.npy"
    np.save(path, a)
    project = dlformats.read(path)
    offset = len(npy_bytes(a)) - a.nbytes
    with open(path, "r+b") as fh:  # change the file after reading: a mapped array sees it
        fh.seek(offset + 2 * 64)
        fh.write(b"\x07" * 64)
    assert int(np.asarray(project.X[0, 2]).max()) == 7


def test_stored_npz_member_on_disk_is_memory_mapped(tmp_path):
    X, y = deepcell_arrays()
    path = make_npz(tmp_path / "stored.npz", {"X": X, "y": y})
    project = dlformats.read(path)
    data = path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("X.npy")
    start = data.index(b"\x93NUMPY", info.header_offset)
    header_len = len(npy_bytes(X)) - X.nbytes
    with open(path, "r+b") as fh:
        fh.seek(start + header_len)
        fh.write(np.array([4321], "<u2").tobytes())
    assert int(np.asarray(project.X[0, 0])[0, 0]) == 4321


# ------------------------------------------------------------------ writers
def test_npz_roundtrip(tmp_path):
    project = testing.make_project(channels=2, frames=3, dtype="uint16")
    project.embeddings = [None, [1.0, 2.0], [3.0, 4.0]]
    project.features = ["whole cell"]
    back = testing.check_roundtrip("npz", project, tmp_path / "out.npz")
    assert back.channels == ["channel 0", "channel 1"]


@pytest.mark.parametrize("compress", [True, False])
def test_npz_is_deepcell_layout(tmp_path, compress):
    project = testing.make_project(channels=2, frames=3, height=12, width=10, overlap=True)
    dlformats.write(project, tmp_path / "out.npz", options={"compress": compress})
    with np.load(tmp_path / "out.npz", allow_pickle=False) as npz:
        assert npz["X"].shape == (3, 12, 10, 2) and npz["X"].dtype == np.uint8
        assert npz["y"].shape == (3, 12, 10, 1) and npz["y"].dtype == np.int32
        assert np.array_equal(npz["X"], np.moveaxis(np.asarray(project.X), 0, -1))
        # the export rule: value 9, shared by cells 2 and 5, becomes a value above every cell
        expected, _ = apply_export_rule(project.y, project.cells)
        assert np.array_equal(npz["y"], np.moveaxis(expected, 0, -1))
        assert 9 not in npz["y"][0]
        assert list(npz["channels"]) == ["channel 0", "channel 1"]
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(tmp_path / "out.npz") as zf:
        assert {i.compress_type for i in zf.infolist()} == {method}


def test_npz_writer_keeps_values_without_cells(tmp_path):
    y = np.zeros((1, 1, 4, 4), np.int32)
    y[0, 0, 1, 1] = 77
    project = dlformats.Project(X=np.zeros((1, 1, 4, 4), np.float64), y=y, cells=None)
    back = testing.check_roundtrip("npz", project, tmp_path / "plain.npz")
    assert back.cells_or_derived() == [Cell(77, 77, 0, 0)]


@pytest.mark.parametrize("dtype", ["uint8", "int16", "float32", "bool"])
def test_npy_roundtrip(tmp_path, dtype):
    project = testing.make_project(channels=3, frames=2, dtype="uint8")
    project.X = np.asarray(project.X).astype(dtype)
    testing.check_roundtrip("npy", project, tmp_path / "x.npy")
    assert np.load(tmp_path / "x.npy", allow_pickle=False).shape == (2, 12, 10, 3)


def test_npy_labels_written_with_part_y(tmp_path):
    project = testing.make_project(channels=1, frames=2)
    dlformats.write(project, tmp_path / "labels.npy", options={"part": "y"})
    back = dlformats.read(tmp_path / "labels.npy", labels=tmp_path / "labels.npy")
    assert np.array_equal(np.asarray(back.y), np.asarray(project.y))


def test_writer_progress_and_bad_options(tmp_path):
    seen = []
    project = testing.make_project(channels=1, frames=4)
    dlformats.write(project, tmp_path / "p.npz", progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (8, 8)  # 4 frames of X, 4 of y
    with pytest.raises(InvalidOptionError):
        dlformats.write(project, tmp_path / "p.npz", options={"compress": "maybe"})
    with pytest.raises(InvalidOptionError):
        dlformats.write(project, tmp_path / "p.npy", options={"part": "cells"})


def test_no_warning_for_a_clean_npz(tmp_path):
    X, y = deepcell_arrays()
    path = make_npz(tmp_path / "clean.npz", {"X": X, "y": y, "channels": np.array(["a", "b"])})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dlformats.read(path)


def test_npz_with_labels_only(tmp_path):
    _, y = deepcell_arrays()
    project = dlformats.read(make_npz(tmp_path / "only_y.npz", {"y": y}))
    assert project.X is None
    assert np.array_equal(np.asarray(project.y), channels_first(y))
