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


class _CountingFile(io.FileIO):
    """A file that counts the bytes read from it."""

    read_bytes = 0

    def read(self, size=-1):
        data = super().read(size)
        self.read_bytes += len(data)
        return data

    def readinto(self, buffer):
        n = super().readinto(buffer)
        self.read_bytes += n or 0
        return n


def test_members_are_checksummed_as_written_never_read_back(tmp_path):
    # tifffile seeks past each IFD, writes the strips, fills the IFD in and patches the previous
    # one's next-IFD pointer: the CRC comes from those writes, without reading the member
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (2, 5, 64, 48), dtype=np.uint8)
    path = tmp_path / "a.zip"
    with _CountingFile(path, "w+") as raw, io.BufferedRandom(raw) as fh:
        archive = ZipWriter(fh)
        with archive.member("X.ome.tiff") as member:
            with tifffile.TiffWriter(member, ome=True) as tif:
                tif.write(
                    image, photometric="minisblack", metadata={"axes": "CZYX"}, compression="zlib", rowsperstrip=8
                )
        with archive.member("plain.tif") as member:
            tifffile.imwrite(member, image[0])
        archive.close()
        fh.flush()
        assert raw.read_bytes == 0
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        np.testing.assert_array_equal(tifffile.imread(io.BytesIO(zf.read("X.ome.tiff"))), image)
        np.testing.assert_array_equal(tifffile.imread(io.BytesIO(zf.read("plain.tif"))), image[0])


def test_crc_of_holes_patches_and_overwritten_large_writes(tmp_path):
    rng = np.random.default_rng(1)
    big = rng.integers(0, 255, 100_000, dtype=np.uint8).tobytes()
    path = tmp_path / "a.zip"
    with open(path, "w+b") as fh:
        archive = ZipWriter(fh)
        with archive.member("m.bin") as member:
            start = member.tell()
            member.write(b"head")
            member.seek(start + 50)  # a hole of zeros
            member.write(big)
            member.write(memoryview(np.arange(10, dtype=np.int32)))  # any buffer
            member.seek(start + 10)
            member.write(b"in the hole")
            member.seek(start + 1)
            member.write(b"E")  # a patch over a small write
            member.seek(start + 1000)
            member.write(b"patch over a large write")  # read back: rare, but right
            member.seek(start + 200_000)  # a hole at the end: the member ends at the furthest byte
            member.write(b"")
            member.seek(start + 150_000)
            member.write(b"tail")
        archive.close()
    expected = bytearray(150_004)
    expected[0:4] = b"head"
    expected[50 : 50 + len(big)] = big
    expected[50 + len(big) : 90 + len(big)] = np.arange(10, dtype=np.int32).tobytes()
    expected[10:21] = b"in the hole"
    expected[1:2] = b"E"
    expected[1000:1024] = b"patch over a large write"
    expected[150_000:] = b"tail"
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        assert zf.read("m.bin") == bytes(expected)


def test_member_file_has_no_file_descriptor_so_every_write_is_seen(tmp_path):
    with open(tmp_path / "a.zip", "w+b") as fh:
        archive = ZipWriter(fh)
        with archive.member("m.bin") as member:
            with pytest.raises(io.UnsupportedOperation):
                member.fileno()
            member.write(b"x")
            with pytest.raises(ValueError, match="before the start"):
                member.seek(0)
                member.write(b"y")
            member.seek(0, os.SEEK_END)
        archive.close()


def test_crc32_combine_and_zeros_agree_with_zlib():
    import zlib

    from dlformats_projectzip.zipwriter import crc32_combine, crc32_zeros

    rng = np.random.default_rng(2)
    for n1, n2 in ((0, 0), (1, 0), (0, 7), (1000, 3), (5, 70_000)):
        a, b = rng.bytes(n1), rng.bytes(n2)
        assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)
        assert crc32_zeros(n2, zlib.crc32(a)) == zlib.crc32(bytes(n2), zlib.crc32(a))
