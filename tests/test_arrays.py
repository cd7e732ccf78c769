"""dlformats.arrays: lazy views in DeepCell Label's axis order, a plane at a time."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import dlformats
from dlformats import AmbiguousInputError, CorruptFileError, InvalidOptionError, UnsupportedFeatureError
from dlformats.arrays import LazyArray, check_axes, prefetch
from dlformats.limits import Limits


class CountingArray:
    """An array that counts how many times it is indexed (to prove laziness)."""

    def __init__(self, array: np.ndarray) -> None:
        self.array, self.shape, self.dtype, self.reads = array, array.shape, array.dtype, 0

    def __getitem__(self, key):
        self.reads += 1
        return self.array[key]


@pytest.mark.parametrize("axes", ["".join(p) for p in itertools.permutations("TCYX")])
def test_every_axis_order_matches_numpy_transpose(axes):
    sizes = {"T": 3, "C": 2, "Y": 4, "X": 5}
    src = np.arange(np.prod([sizes[a] for a in axes]), dtype=np.uint16).reshape([sizes[a] for a in axes])
    expected = np.transpose(src, [axes.index(a) for a in "CTYX"])
    lazy = LazyArray(src, axes.lower())
    assert lazy.shape == expected.shape == (2, 3, 4, 5) and lazy.dtype == np.uint16
    np.testing.assert_array_equal(np.asarray(lazy), expected)
    np.testing.assert_array_equal(lazy[1, 2], expected[1, 2])
    np.testing.assert_array_equal(lazy[:, 1], expected[:, 1])
    np.testing.assert_array_equal(lazy[-1, -2, 1:3, ::2], expected[-1, -2, 1:3, ::2])
    np.testing.assert_array_equal(lazy[-1, :], expected[-1, :])


@pytest.mark.parametrize(
    ("axes", "shape", "to_ctyx", "frame_axis"),
    [
        ("YXS", (4, 5, 3), lambda a: a.transpose(2, 0, 1)[:, None], "T"),
        ("ZCXY", (3, 2, 5, 4), lambda a: a.transpose(1, 0, 3, 2), "Z"),
        ("CSYX", (2, 3, 4, 5), lambda a: a.reshape(6, 1, 4, 5), "T"),  # C major
        ("BTYX", (1, 4, 2, 3), lambda a: a, "T"),  # B of length 1 dropped
        ("TYXC", (1, 2, 3, 1), lambda a: a.transpose(3, 0, 1, 2), "T"),
    ],
)
def test_channel_and_frame_mapping(axes, shape, to_ctyx, frame_axis):
    src = np.arange(np.prod(shape), dtype=np.int16).reshape(shape)
    lazy = LazyArray(src, axes)
    np.testing.assert_array_equal(np.asarray(lazy), to_ctyx(src))
    assert lazy.frame_axis == frame_axis


def test_reads_one_plane_at_a_time():
    src = CountingArray(np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5))
    lazy = LazyArray(src, "TCYX")
    assert src.reads == 0
    lazy[1, 0]
    assert src.reads == 1


def test_select_picks_a_plane_of_an_extra_axis():
    src = np.arange(3 * 4 * 5 * 6).reshape(3, 4, 5, 6)
    lazy = LazyArray(src, "TZYX", select={"z": 2})
    assert lazy.shape == (1, 3, 5, 6) and lazy.frame_axis == "T"
    np.testing.assert_array_equal(np.asarray(lazy)[0], src[:, 2])
    lazy = LazyArray(src, "TZYX", select={"T": 1})
    np.testing.assert_array_equal(np.asarray(lazy)[0], src[1])
    assert lazy.frame_axis == "Z"
    with pytest.raises(InvalidOptionError, match="out of range"):
        LazyArray(src, "TZYX", select={"Z": 4})
    with pytest.raises(InvalidOptionError, match="absent"):
        LazyArray(src, "TZYX", select={"C": 0})


def test_time_and_depth_together_are_ambiguous_with_the_option_to_fix_it():
    with pytest.raises(AmbiguousInputError) as info:
        LazyArray(np.zeros((3, 4, 5, 6)), "TZYX", path="stack.tif")
    err = info.value
    assert err.option == "select" and err.choices == ["T=0..2", "Z=0..3"] and err.path == "stack.tif"
    assert "options={'select': {'Z': 0}}" in str(err) and "3 T and 4 Z" in str(err)


@pytest.mark.parametrize(
    ("axes", "shape", "why"),
    [
        ("TYX", (2, 3, 4, 5), "3 letters for 4 dimensions"),
        ("TQYX", (2, 3, 4, 5), "unknown letters ['Q']"),
        ("TTYX", (2, 3, 4, 5), "repeated"),
        ("TCZY", (2, 3, 4, 5), "must include Y and X"),
    ],
)
def test_check_axes_errors_show_shape_and_letters(axes, shape, why):
    with pytest.raises(InvalidOptionError, match=why.replace("[", r"\[").replace("]", r"\]")) as info:
        check_axes(axes, shape, path="f.npy")
    text = str(info.value)
    assert str(shape) in text and "T, Z, B, C, S, Y, X" in text and text.startswith("f.npy: ")
    assert check_axes("tcyx", shape) == "TCYX"


def test_labels_become_int32_and_bad_labels_are_typed_errors():
    lazy = LazyArray(np.array([[1.0, 2.0], [0.0, 3.0]], np.float32), "YX", labels=True)
    assert lazy.dtype == np.int32 and lazy[0, 0].tolist() == [[1, 2], [0, 3]]
    with pytest.raises(CorruptFileError, match="non-integer"):
        LazyArray(np.array([[1.5]]), "YX", labels=True)[0, 0]
    with pytest.raises(CorruptFileError, match="non-integer"):
        LazyArray(np.array([[np.nan]]), "YX", labels=True)[0, 0]
    wide = LazyArray(np.array([[2**31]], np.uint32), "YX", labels=True)  # kept whole: writers check it
    assert wide.dtype == np.uint32 and wide[0, 0].tolist() == [[2**31]]
    with pytest.raises(UnsupportedFeatureError, match="complex"):
        LazyArray(np.zeros((2, 2), np.complex64), "YX")


def test_image_keeps_its_dtype_in_native_byte_order():
    src = np.arange(6, dtype=">u2").reshape(2, 3)
    lazy = LazyArray(src, "YX")
    assert lazy.dtype == np.dtype("=u2")
    assert lazy[0, 0].dtype.isnative and lazy[0, 0].tolist() == src.tolist()


def test_memmap_source(tmp_path: Path):
    path = tmp_path / "a.dat"
    data = np.arange(2 * 3 * 4, dtype=np.int32).reshape(2, 3, 4)
    data.tofile(path)
    mm = np.memmap(path, np.int32, "r", shape=(2, 3, 4))
    lazy = LazyArray(mm, "TYX", labels=True)
    np.testing.assert_array_equal(lazy[0, 1], data[1])


def test_lazy_array_checks_limits_before_materialising():
    view = LazyArray(np.zeros((4, 8, 8), np.uint16), "TYX", limits=Limits(array_bytes=300))
    assert view.plane(0, 3).shape == (8, 8)  # one plane (128 bytes) is fine
    with pytest.raises(dlformats.LimitExceededError) as info:
        np.asarray(view)
    assert info.value.found == 4 * 8 * 8 * 2 and info.value.limit == "array_bytes"
    assert np.asarray(LazyArray(np.zeros((4, 8, 8), np.uint16), "TYX")).shape == (1, 4, 8, 8)


def test_readers_give_their_limits_to_lazy_arrays(tmp_path):
    np.save(tmp_path / "stack.npy", np.zeros((4, 16, 16, 1), np.uint8))
    project = dlformats.read(tmp_path / "stack.npy", limits=Limits(array_bytes=512))  # mapped: reading is fine
    assert project.X[0, 3].shape == (16, 16)
    with pytest.raises(dlformats.LimitExceededError):
        np.asarray(project.X)


@pytest.mark.parametrize("letter", ["Y", "x"])
def test_select_of_a_plane_axis_is_refused(letter):
    with pytest.raises(dlformats.InvalidOptionError, match="Y and X are the plane"):
        LazyArray(np.zeros((2, 3, 4)), "ZYX", select={letter: 0})


def test_prefetch_keeps_order_bounds_what_waits_and_raises_in_place():
    made = []

    def planes():
        for t in range(6):
            made.append(t)
            if t == 4:
                raise KeyError("plane 4")
            yield t

    got = []
    with pytest.raises(KeyError, match="plane 4"):
        for t in prefetch(planes(), depth=2):
            if t == 0:
                time.sleep(0.2)  # the helper runs ahead, but no more than depth planes wait
                assert len(made) <= 4
            got.append(t)
    assert got == [0, 1, 2, 3]


def test_leaving_a_prefetch_early_stops_its_thread():
    endless = prefetch(itertools.count(), depth=2, name="endless-planes")
    assert [next(endless) for _ in range(3)] == [0, 1, 2]
    assert "endless-planes" in [t.name for t in threading.enumerate()]
    endless.close()
    assert "endless-planes" not in [t.name for t in threading.enumerate()]


@pytest.mark.parametrize("labels", [False, True])
def test_size_and_nbytes_are_numpys(labels):
    """Code written for numpy arrays (``a.size``, ``a.nbytes``) works on a lazy project array unread."""
    source = np.arange(2 * 3 * 5 * 7, dtype=np.uint16).reshape(3, 2, 5, 7)
    view = LazyArray(source, "TCYX", labels=labels)
    whole = np.asarray(view)
    assert (view.ndim, view.size, view.nbytes) == (whole.ndim, whole.size, whole.nbytes)
