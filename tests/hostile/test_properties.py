"""Property tests: any supported array round-trips through every writer/reader pair; mutated files give typed errors.

Round trips: an array of any supported dtype (bool, u/int 8-64, float32/64), either byte
order and 2 to 5 dimensions is saved as ``.npy`` and read with ``axes=`` mapping its
dimensions onto (channels, frames, height, width); the project is then written by each
writer (TIFF, npy, npz, project zip, export zip, PNG where it applies) and read back:
the image must come back equal (values, shape; dtype up to byte order). A writer that
cannot hold the dtype or shape must say so with a ``DLFormatsError``, not crash.

Mutations: random byte changes, insertions, deletions and truncations of a valid file of
each format give either a project whose arrays materialise, or a ``DLFormatsError`` that
names the file, never another exception (``PluginCrashedError`` included) and never a hang
(each example runs under a 10 s alarm).
"""

from __future__ import annotations

import signal
import sys
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import dlformats
from dlformats import Limits
from dlformats.errors import DLFormatsError, PluginCrashedError

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cases  # noqa: E402

MiB = 1 << 20
LIMITS = Limits(array_bytes=64 * MiB, total_bytes=256 * MiB, member_bytes=64 * MiB, tiff_pages=10_000)
AXES = {2: "YX", 3: "TYX", 4: "CTYX", 5: "CTYXS"}
"""How an array of each rank is read: a 5-D array's C and S dimensions both become channels."""

DTYPES = ["bool", "u1", "u2", "u4", "u8", "i1", "i2", "i4", "i8", "f4", "f8"]
WRITERS = {
    # format: (file name, dtypes the format holds, most channels, most frames)
    "tiff": ("a.ome.tif", {"bool", "u1", "u2", "u4", "i1", "i2", "i4", "f4", "f8"}, None, None),
    "npy": ("a.npy", set(DTYPES), None, None),
    "npz": ("a.npz", set(DTYPES), None, None),
    "dcl-project-zip": ("p.zip", {"bool", "u1", "u2", "u4", "i1", "i2", "i4", "f4", "f8"}, None, None),
    "dcl-export-zip": ("e.zip", {"u1", "u2", "u4", "i1", "i2", "i4", "f4", "f8"}, None, None),
    "png": ("a.png", {"bool", "u1", "u2"}, 4, 1),
}


@contextmanager
def time_limit(seconds: float) -> Any:
    """Fail the example (instead of hanging the suite) when it runs past ``seconds``."""

    def alarm(signum: int, frame: Any) -> None:
        raise TimeoutError(f"no result after {seconds} s: a hang")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@st.composite
def images(draw: Any, max_channels: int | None = None, max_frames: int | None = None) -> tuple[np.ndarray, str]:
    """An array of a supported dtype and byte order with 2 to 5 small dimensions, and its axes."""
    rank = draw(st.integers(2, 5))
    axes = AXES[rank]
    sizes = []
    for letter in axes:
        if letter in "YX":
            sizes.append(draw(st.integers(1, 7)))
        elif letter == "T":
            sizes.append(draw(st.integers(1, max_frames or 3)))
        else:
            sizes.append(draw(st.integers(1, 2 if max_channels else 3)))
    code = draw(st.sampled_from(DTYPES))
    dtype = np.dtype(code)
    if dtype.itemsize > 1:
        dtype = dtype.newbyteorder(draw(st.sampled_from("<>")))
    array = draw(hnp.arrays(dtype, tuple(sizes)))
    return array, axes


def expected_ctyx(array: np.ndarray, axes: str) -> np.ndarray:
    """The (channels, frames, height, width) view dlformats must give for ``array`` read with ``axes``."""
    full = "CSTYX"
    present = [a for a in full if a in axes]
    view = np.transpose(array, [axes.index(a) for a in present])
    shape = dict(zip(present, view.shape))
    c = shape.get("C", 1) * shape.get("S", 1)
    return view.reshape(c, shape.get("T", 1), shape["Y"], shape["X"])


def _read_npy(array: np.ndarray, axes: str) -> dlformats.Project:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dlformats.read(cases.npy(array), name="input.npy", axes=axes)


def _roundtrip(fmt: str, array: np.ndarray, axes: str) -> None:
    name, dtypes, max_c, max_t = WRITERS[fmt]
    project = _read_npy(array, axes)
    want = expected_ctyx(array, axes)
    assert np.array_equal(np.asarray(project.X), want, equal_nan=want.dtype.kind == "f")
    code = array.dtype.str[1:] if array.dtype != bool else "bool"
    holds = code in dtypes and (max_c is None or want.shape[0] <= max_c) and (max_t is None or want.shape[1] <= max_t)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Path(tmp) / name
        if not holds:
            with pytest.raises(DLFormatsError) as info:
                dlformats.write(project, path, format=fmt)
            assert not isinstance(info.value, PluginCrashedError), info.value
            assert list(Path(tmp).iterdir()) == [], "a refused write left a file behind"
            return
        dlformats.write(project, path, format=fmt)
        # npy and npz are written channels-last (DeepCell's layout, frames first), with no axis
        # metadata: tiny frames with more channels than rows need the order said.
        axes = "TYXC" if fmt in ("npy", "npz") else None
        back = dlformats.read(path, format=fmt, axes=axes)
        got = np.asarray(back.X)
    assert got.shape == want.shape, (got.shape, want.shape)
    if fmt == "png" and want.dtype == bool:
        assert got.dtype == np.uint8  # PNG has no bool: 0/1 bytes
        want = want.astype(np.uint8)
    else:
        assert got.dtype == want.dtype.newbyteorder("="), (got.dtype, want.dtype)
    assert np.array_equal(got, want, equal_nan=want.dtype.kind == "f")


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("fmt", [f for f in WRITERS if f != "png"])
@SETTINGS
@given(data=images())
def test_roundtrip(fmt: str, data: tuple[np.ndarray, str]) -> None:
    _roundtrip(fmt, *data)


@pytest.mark.parametrize("code", ["u8", "i8"])
def test_projectzip_refuses_64bit_integers(code: str) -> None:
    # OME-TIFF has no 64-bit integer pixel type: a typed refusal, nothing written
    _roundtrip("dcl-project-zip", np.arange(6, dtype=code).reshape(2, 3), "YX")


@SETTINGS
@given(data=images(max_channels=4, max_frames=1))
def test_roundtrip_png(data: tuple[np.ndarray, str]) -> None:
    _roundtrip("png", *data)


# ------------------------------------------------------------------ mutations
MUTATED = {
    # format: (name the bytes are given, how to make a valid file)
    "tiff": ("m.ome.tif", lambda: cases.valid("tiff")),
    "png": ("m.png", lambda: cases.valid("png")),
    "npy": ("m.npy", lambda: cases.valid("npy")),
    "npz": ("m.npz", lambda: cases.valid("npz")),
    "trk": ("m.trk", lambda: cases.valid("trk")),
    "trks": ("m.trks", cases.trks),
    "lineage-json": ("lineage.json", lambda: cases.valid("lineage-json")),
    "spots-csv": ("spots.csv", lambda: b"x,y,cell\n1.5,2.5,1\n3,4,\n"),
    "label-zip": ("labels.zip", lambda: cases.valid("label-zip")),
    "dcl-project-zip": ("project.zip", lambda: cases.valid("dcl-project-zip")),
    "dcl-export-zip": ("export.zip", lambda: cases.valid("dcl-export-zip")),
    "dcl-edit-zip": ("edit.zip", cases.edit_zip),
}


@st.composite
def mutations(draw: Any, data: bytes) -> bytes:
    """``data`` with 1 to 8 random edits: byte changes, inserts, deletes, a truncation."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["set", "set", "set", "insert", "delete", "truncate", "flip"]))
        if not out:
            break
        at = draw(st.integers(0, len(out) - 1))
        if kind == "set":
            out[at] = draw(st.integers(0, 255))
        elif kind == "flip":
            out[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del out[at : at + draw(st.integers(1, 8))]
        else:
            del out[at:]
    return bytes(out)


def _read_mutant(fmt: str | None, name: str, data: bytes) -> None:
    with time_limit(10), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            projects = dlformats.read_all(data, format=fmt, name=name, limits=LIMITS)
            for project in projects:
                for array in (project.X, project.y):
                    if array is not None:
                        np.asarray(array)
        except PluginCrashedError:
            raise
        except DLFormatsError as exc:
            assert name in str(exc), f"the error does not name the file: {exc}"


def _mutation_test(fmt: str) -> Any:
    name, make = MUTATED[fmt]

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        # Half the time the format is detected (every sniffer sees the bytes), else it is forced.
        detect = data.draw(st.booleans())
        _read_mutant(None if detect else fmt, name, data.draw(mutations(make())))

    return check


@pytest.mark.parametrize("fmt", sorted(MUTATED))
def test_mutations_give_typed_errors(fmt: str) -> None:
    _mutation_test(fmt)()
