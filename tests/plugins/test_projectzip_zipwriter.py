"""dlformats_projectzip.zipwriter: members written in place by tifffile, read back by zipfile; ZIP64 past 4 GiB."""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest
import tifffile
from dlformats_projectzip.zipwriter import ZipWriter


def test_in_place_tiff_and_deflated_members_read_back(tmp_path):
    image = np.arange(2 * 3 * 4 * 5, dtype=np.uint16).reshape(2, 3, 4, 5)
    path = tmp_path / "a.zip"
    with open(path, "w+b") as fh:
        archive = ZipWriter(fh)
        with archive.member("X.ome.tiff") as member:
            with tifffile.TiffWriter(member, ome=True) as tif:
                tif.write(image, photometric="minisblack", metadata={"axes": "CZYX"})
        archive.add("cells.json", b"[]")
        archive.add("ünïcode.csv", b"x,y\n1,2\n", compress=False)
        archive.close()
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None  # every CRC right
        infos = {i.filename: i for i in zf.infolist()}
        assert infos["X.ome.tiff"].compress_type == zipfile.ZIP_STORED
        assert infos["cells.json"].compress_type == zipfile.ZIP_DEFLATED
        assert zf.read("ünïcode.csv") == b"x,y\n1,2\n"
        np.testing.assert_array_equal(tifffile.imread(io.BytesIO(zf.read("X.ome.tiff"))), image)


def test_duplicate_names_and_nested_members_are_refused(tmp_path):
    with open(tmp_path / "a.zip", "w+b") as fh:
        archive = ZipWriter(fh)
        archive.add("a.json", b"{}")
        with pytest.raises(ValueError, match="duplicate"):
            archive.add("a.json", b"{}")
        with archive.member("b.bin") as member, pytest.raises(RuntimeError, match="still being written"):
            member.write(b"1")
            archive.add("c.json", b"{}")


@pytest.mark.skipif(os.environ.get("DLFORMATS_SKIP_BIG") == "1", reason="DLFORMATS_SKIP_BIG=1")
def test_zip64_member_over_4_gib(tmp_path):
    # A sparse member of 4 GiB + 1 byte: ZIP64 sizes in the central directory, readable by zipfile.
    path = tmp_path / "big.zip"
    size = (1 << 32) + 1
    with open(path, "w+b") as fh:
        archive = ZipWriter(fh)
        with archive.member("big.bin") as member:
            member.seek(size - 1, os.SEEK_CUR)
            member.write(b"\x01")
        archive.add("after.json", b"[1]")
        archive.close()
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("big.bin")
        assert info.file_size == size
        assert zf.read("after.json") == b"[1]"  # offsets past 4 GiB resolved through ZIP64
        with zf.open("big.bin") as member:
            member.seek(size - 1)
            assert member.read() == b"\x01"
