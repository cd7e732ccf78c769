"""Big stacks at the speed of the disk: pixels copied file to file, zero planes compressed once, right CRCs."""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest
import tifffile
from dlformats_projectzip.zipwriter import ZipWriter, crc32_of_file

import dlformats
from dlformats import Project


def _check_zip(path, X, y=None):
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None  # every member's CRC-32 is right
        stored = tifffile.imread(io.BytesIO(zf.read("X.ome.tiff")))
    back = dlformats.read(path)
    np.testing.assert_array_equal(np.asarray(back.X), X)
    np.testing.assert_array_equal(stored.reshape(X.shape), X)
    expected_y = np.zeros((1, *X.shape[1:]), np.int32) if y is None else y
    np.testing.assert_array_equal(np.asarray(back.y), expected_y)
    return back


def _stack(dtype=np.uint16, frames=5, size=(48, 40)):
    rng = np.random.default_rng(7)
    return rng.integers(0, 60000 if dtype == np.uint16 else 250, (frames, *size)).astype(dtype)


@pytest.mark.parametrize("kind", ["npy", "tiff", "ome-tiff", "big-endian-tiff", "compressed-tiff"])
def test_uncompressed_stacks_convert_byte_for_byte(tmp_path, kind):
    stack = _stack()
    src = tmp_path / ("s.npy" if kind == "npy" else "s.ome.tif" if kind == "ome-tiff" else "s.tif")
    if kind == "npy":
        np.save(src, stack)
    elif kind == "ome-tiff":
        tifffile.imwrite(src, stack, ome=True, metadata={"axes": "ZYX"}, photometric="minisblack")
    else:
        data = stack.astype(">u2") if kind == "big-endian-tiff" else stack
        compression = "zlib" if kind == "compressed-tiff" else None
        tifffile.imwrite(src, data, metadata={"axes": "TYX"}, photometric="minisblack", compression=compression)
    project = dlformats.read(src, axes=None if kind == "ome-tiff" else "TYX")
    # what the file holds as the zip's TIFF does (little-endian, uncompressed) is copied file to file
    extent = project.X.plane_extent(0, 2)
    copies = extent is not None and extent[3] == np.dtype("<u2")
    assert copies == (kind in ("npy", "tiff", "ome-tiff"))
    if kind == "big-endian-tiff":
        assert extent is not None and extent[3] == np.dtype(">u2")  # there, but not the zip's bytes: read
    out = tmp_path / "out.zip"
    dlformats.write(project, out)
    _check_zip(out, stack[None])


def test_a_project_zip_converts_again_through_its_stored_members(tmp_path):
    stack = _stack(np.uint8)
    first = tmp_path / "a.zip"
    y = np.zeros((1, *stack.shape), np.int32)
    y[0, :, 5:9, 5:9] = 4
    dlformats.write(Project(X=stack[None], y=y), first)
    project = dlformats.read(first)
    assert project.X.plane_extent(0, 1) is not None and project.y.plane_extent(0, 1) is None  # labels are checked
    second = tmp_path / "b.zip"
    dlformats.write(project, second)
    _check_zip(second, stack[None], y)


def test_without_copy_file_range_the_bytes_are_read_and_written(tmp_path, monkeypatch):
    def refuse(*args):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refuse)
    stack = _stack()
    np.save(tmp_path / "s.npy", stack)
    dlformats.write(dlformats.read(tmp_path / "s.npy", axes="TYX"), tmp_path / "out.zip")
    _check_zip(tmp_path / "out.zip", stack[None])


def test_copy_from_refuses_a_source_shorter_than_said(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * 100)
    fd = os.open(src, os.O_RDONLY)
    try:
        with open(tmp_path / "a.zip", "w+b") as fh:
            archive = ZipWriter(fh)
            with archive.member("m.bin") as member, pytest.raises(OSError, match="ends"):
                member.copy_from(fd, 50, 100, crc=crc32_of_file(fd, 50, 50))
    finally:
        os.close(fd)


def test_image_only_projects_and_empty_frames_compress_planes_of_zeros_once(tmp_path, monkeypatch):
    import imagecodecs

    calls = []
    real = imagecodecs.deflate_encode

    def counting(data, *args, **kwargs):
        calls.append(np.asarray(data).shape)
        return real(data, *args, **kwargs)

    monkeypatch.setattr(imagecodecs, "deflate_encode", counting)
    X = np.zeros((1, 40, 300, 64), np.uint8)  # empty frames: the image compresses well, deflated
    X[0, 3, 10:20, 10:20] = 9
    path = tmp_path / "a.zip"
    dlformats.write(Project(X=X), path)
    back = _check_zip(path, X)
    assert len(back.cells) == 0
    # the labels (40 planes of zeros) and the 39 empty image frames: one strip per plane size, not one per plane
    strips_per_plane = 1
    assert len(calls) <= 2 * 2 + strips_per_plane + 2  # zero strips of X and y (full and last), frame 3's strips


@pytest.mark.parametrize("constant", [True, False])
def test_bool_images_are_packed_by_tifffile_compressed_or_not(tmp_path, constant):
    rng = np.random.default_rng(3)
    X = np.ones((1, 3, 5, 7), bool) if constant else rng.integers(0, 2, (1, 3, 5, 7)).astype(bool)
    np.save(tmp_path / "b.npy", X[0])
    for project in (Project(X=X), dlformats.read(tmp_path / "b.npy", axes="TYX")):
        dlformats.write(project, tmp_path / "b.zip")
        _check_zip(tmp_path / "b.zip", X)
