"""dlformats.containers.buffers: raw typed buffers read only when their declared shape matches their bytes."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from test_archive import _zip  # members of a zip in memory

from dlformats import CorruptFileError, LimitExceededError, Limits, UnsupportedFeatureError
from dlformats.containers.buffers import check_size, js_dtype, js_dtype_name, positive_int, read_buffer
from dlformats.sources import open_source


@pytest.mark.parametrize(
    ("name", "dtype"),
    [("Uint8Array", "<u1"), ("Uint8ClampedArray", "<u1"), ("Int16Array", "<i2"), ("Float64Array", "<f8")],
)
def test_typed_array_names_give_little_endian_dtypes(name, dtype):
    assert js_dtype(name) == np.dtype(dtype)


def test_an_unknown_or_malformed_dtype_is_refused_with_the_known_names():
    with pytest.raises(UnsupportedFeatureError, match="'BigInt64Array' is not one of Uint8Array") as info:
        js_dtype("BigInt64Array", path="e.zip", member="dimensions.json")
    assert (info.value.path, info.value.member) == ("e.zip", "dimensions.json")
    with pytest.raises(CorruptFileError, match="must be a typed-array name"):
        js_dtype(8)


def test_dtype_names_for_writing_ignore_byte_order_and_have_no_clamped_array():
    assert js_dtype_name(np.dtype(">u2")) == "Uint16Array"
    assert js_dtype_name(np.uint8) == "Uint8Array"
    assert js_dtype_name(np.int64) is None and js_dtype_name(np.bool_) is None


@pytest.mark.parametrize(("obj", "problem"), [({}, "lacks 'width'"), ({"width": True}, "bool"), ({"width": 0}, "0")])
def test_sizes_must_be_positive_integers(obj, problem):
    with pytest.raises(CorruptFileError, match=problem):
        positive_int(obj, "width", path="e.zip", member="dimensions.json")
    assert positive_int({"width": 7}, "width") == 7


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_a_buffer_is_read_as_declared_in_native_byte_order(tmp_path, method):
    values = np.arange(12, dtype="<u2").reshape(3, 4)
    path = tmp_path / "e.zip"
    path.write_bytes(_zip({"raw.dat": values.tobytes()}, method))
    with open_source(path) as source:
        array = read_buffer(source.zip(), "raw.dat", (3, 4), "<u2", declared_by="dimensions.json")
        assert array.dtype.isnative and array.tolist() == values.tolist()


def test_a_declaration_that_disagrees_with_the_bytes_is_refused_before_reading():
    archive = open_source(_zip({"labeled.dat": bytes(24)}), name="e.zip").zip()
    with pytest.raises(CorruptFileError, match=r"holds 24 bytes, expected 32 \(2 x 4 values of 4 bytes") as info:
        read_buffer(archive, "labeled.dat", (2, 4), "<i4", declared_by="dimensions.json")
    assert "dimensions.json declares" in str(info.value) and info.value.member == "labeled.dat"
    assert check_size(archive, "labeled.dat", (2, 3), "<i4", declared_by="dimensions.json") == 24


def test_a_buffer_over_array_bytes_is_refused_by_its_declared_size():
    archive = open_source(_zip({"raw.dat": bytes(4096)}), name="e.zip", limits=Limits(array_bytes=1024)).zip()
    with pytest.raises(LimitExceededError) as info:
        read_buffer(archive, "raw.dat", (64, 64), "<u1", declared_by="dimensions.json")
    assert info.value.limit == "array_bytes" and info.value.found == 4096
