"""SafeZip / SafeTar: junk members unreachable, refused archives close their handle, members streamed."""

from __future__ import annotations

import gzip
import io
import stat
import tarfile
import tracemalloc
import warnings
import zipfile
import zlib

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dlformats.containers import archive as archive_module
from dlformats.containers.archive import SafeTar, SafeZip
from dlformats.errors import CorruptFileError, LimitExceededError, UnsafeArchiveError, UnsupportedFeatureError
from dlformats.limits import Limits
from dlformats.sources import open_source


def test_junk_members_cannot_be_read_by_their_stripped_name():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("data/a.txt", b"a")
        zf.writestr("data/.DS_Store", b"junk")
        zf.writestr("__MACOSX/data/._a.txt", b"fork")
    with SafeZip(open_source(out.getvalue())) as archive:
        assert archive.names == ["a.txt"] and archive.read("a.txt") == b"a"
        for hidden in (".DS_Store", "../__MACOSX/data/._a.txt", "data/a.txt"):
            with pytest.raises(CorruptFileError, match="not found"):
                archive.read(hidden)
            with pytest.raises(CorruptFileError, match="not found"):
                archive.info(hidden)


def test_read_head_decompresses_only_the_start():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.bin", bytes(range(256)) * 100)
    with SafeZip(open_source(out.getvalue())) as archive:
        assert archive.read_head("a.bin", 10) == bytes(range(10))


def _tar_with_link() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tf:
        info = tarfile.TarInfo("a.txt")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"a"))
        link = tarfile.TarInfo("b.txt")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tf.addfile(link)
    return out.getvalue()


def _tar_with_unsafe_name() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tf:
        info = tarfile.TarInfo("../a.txt")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"a"))
    return out.getvalue()


@pytest.mark.parametrize("data", [_tar_with_link(), _tar_with_unsafe_name()])
def test_refused_tar_closes_its_handle(data):
    source = open_source(data)
    opened = []
    real_open = source.open

    def recording_open():
        fh = real_open()
        opened.append(fh)
        return fh

    source.open = recording_open
    with pytest.raises(UnsafeArchiveError):
        SafeTar(source)
    assert opened and all(fh.closed for fh in opened)


# ------------------------------------------------------------- members streamed
def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def _declare(data: bytes, name: str, size: int) -> bytes:
    """``data`` (a zip) with member ``name``'s uncompressed size changed in both its headers."""
    out = bytearray(data)
    raw = name.encode()
    for signature, name_at, size_at in ((b"PK\x03\x04", 30, 22), (b"PK\x01\x02", 46, 24)):
        pos = out.find(signature)
        while pos >= 0:
            if out[pos + name_at : pos + name_at + len(raw)] == raw:
                out[pos + size_at : pos + size_at + 4] = size.to_bytes(4, "little")
            pos = out.find(signature, pos + 4)
    return bytes(out)


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_zip_members_stream_exactly_their_content(method):
    content = bytes(range(256)) * 5000  # 1.2 MiB: more than one step
    with SafeZip(open_source(_zip({"a.bin": content}, method))) as archive:
        assert archive.read("a.bin") == content
        with archive.stream("a.bin") as fh:
            assert fh.size == len(content)
            buffer = bytearray(len(content))
            assert fh.readinto(buffer) == len(content) and buffer == content
            assert fh.read(10) == b""


@pytest.mark.parametrize(("declared", "message"), [(100, "more than its declared 100 bytes"), (300, "ends after 200")])
def test_a_zip_member_must_hold_what_it_declares(declared, message):
    data = _declare(_zip({"a.bin": b"x" * 200}), "a.bin", declared)
    with SafeZip(open_source(data, name="a.zip")) as archive:
        with pytest.raises(CorruptFileError, match=message) as info:
            archive.read("a.bin")
    assert (info.value.path, info.value.member) == ("a.zip", "a.bin")


def test_a_zip_member_with_a_bad_crc_is_refused():
    data = bytearray(_zip({"a.bin": b"abcdefgh" * 10}, zipfile.ZIP_STORED))
    data[data.index(b"abcdefgh")] ^= 1
    with SafeZip(open_source(bytes(data))) as archive:
        with pytest.raises(CorruptFileError, match="CRC"):
            archive.read("a.bin")


def test_a_deflated_member_read_whole_is_checked_like_one_read_in_steps():
    content = bytes(range(256)) * 400
    good = _zip({"a.bin": content})
    with SafeZip(open_source(good, name="a.zip")) as archive:
        assert archive.read("a.bin") == content
        with archive.stream("a.bin") as fh:  # the same, a step at a time
            assert fh.read(1000) + fh.read() == content
    for broken, message in (
        (_declare(good, "a.bin", len(content) - 1), "more than its declared"),
        (_declare(good, "a.bin", len(content) + 1), "ends after"),
    ):
        with SafeZip(open_source(broken, name="a.zip")) as archive, pytest.raises(CorruptFileError, match=message):
            archive.read("a.bin")
    bad_crc = bytearray(good)
    at = bad_crc.find(b"PK\x01\x02") + 16  # the central directory's CRC-32
    bad_crc[at] ^= 1
    with SafeZip(open_source(bytes(bad_crc), name="a.zip")) as archive, pytest.raises(CorruptFileError, match="CRC"):
        archive.read("a.bin")
    cut = good.replace(good[40:60], bytes(20))  # a damaged deflate stream
    with SafeZip(open_source(cut, name="a.zip")) as archive, pytest.raises(CorruptFileError) as info:
        archive.read("a.bin")
    assert info.value.member == "a.bin"


def test_bzip2_members_are_decompressed_a_step_at_a_time():
    # 16 MiB of zeros in ~50 bytes of bzip2: zipfile's own reader inflates it all to give the first byte.
    data = _zip({"a.bin": bytes(16 << 20)}, zipfile.ZIP_BZIP2)
    assert len(data) < 1000
    with SafeZip(open_source(data)) as archive:
        tracemalloc.start()
        try:
            head = archive.read_head("a.bin", 64)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert head == bytes(64) and peak < 4 << 20


def test_json_and_csv_members_are_bounded_by_their_own_limits_before_decompressing():
    members = {"cells.json": b"[" + b"0," * 3000 + b"0]", "spots.csv": b"x,y\n" + b"1,2\n" * 500}
    data = _zip({**members, "a.bin": b"a" * 5000})
    limits = Limits(json_bytes=1000, csv_bytes=1000, member_bytes=1 << 20)
    with SafeZip(open_source(data, limits=limits)) as archive:
        for name, limit in (("cells.json", "json_bytes"), ("spots.csv", "csv_bytes")):
            with pytest.raises(LimitExceededError) as info:
                archive.read(name)
            assert (info.value.limit, info.value.member) == (limit, name)
        assert archive.read("a.bin") == b"a" * 5000
        assert archive.read("cells.json", limit="member_bytes") == members["cells.json"]


def _gzip_tar(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_a_tar_is_walked_once_member_by_member():
    # sizes that are multiples of 512: tarfile steps back one byte after each (not a rewind of the gzip stream)
    members = [("m/lineage.json", b"{}"), ("m/raw.npy", bytes(range(256)) * 8), ("m/._raw.npy", b"junk")]
    members += [("m/notes.txt", b"n" * 1024), ("m/tracked.npy", b"t" * 2048)]
    source = open_source(_gzip_tar(members))
    seen = []
    with SafeTar(source, scan=False) as tar:
        for member in tar.walk():
            if member.name != "m/notes.txt":  # a member not read is skipped
                seen.append((member.name, member.size, member.read()))
        assert tar.names == ["lineage.json", "raw.npy", "notes.txt", "tracked.npy"]
        assert tar.real("raw.npy") == "m/raw.npy"
    assert seen == [(n, len(d), d) for n, d in members if n not in ("m/._raw.npy", "m/notes.txt")]
    with SafeTar(source) as tar:  # scanned: members by name, in any order
        assert tar.read("tracked.npy") == b"t" * 2048 and tar.read("lineage.json") == b"{}"


def test_a_compressed_tar_is_checked_to_its_trailer():
    data = bytearray(_gzip_tar([("a.txt", b"hello")]))
    data[-8] ^= 1  # the gzip CRC-32
    with pytest.raises(CorruptFileError, match="CRC") as info:
        SafeTar(open_source(bytes(data), name="a.trk"))
    assert info.value.path == "a.trk"


def test_a_huge_tar_header_is_refused_before_it_is_read():
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type, pax.size = tarfile.XHDTYPE, 64 << 20  # tarfile reads pax records whole
    data = gzip.compress(pax.tobuf(tarfile.USTAR_FORMAT) + bytes(64 << 20), 1)
    with pytest.raises(UnsupportedFeatureError, match="headers"):
        SafeTar(open_source(data, name="pax.tar.gz"))


def test_a_tar_member_must_hold_what_it_declares():
    info = tarfile.TarInfo("a.txt")
    info.size = 5000
    data = info.tobuf(tarfile.GNU_FORMAT) + b"x" * 100  # the archive ends inside the member
    with SafeTar(open_source(data, name="cut.tar"), scan=False) as tar:
        with pytest.raises(CorruptFileError) as err:
            for member in tar.walk():
                member.read()
    assert err.value.path == "cut.tar"


def test_overlong_member_names_are_refused():
    with pytest.raises(UnsafeArchiveError, match="name of 5,000 characters"):
        SafeZip(open_source(_zip({"a" * 5000: b"x"})))


def test_a_tar_of_many_long_names_is_refused(monkeypatch):
    # Names are kept for the checks; 100,000 names of 4,096 characters would compress to a few MB.
    monkeypatch.setattr(archive_module, "_TAR_NAME_BYTES", 1000)
    data = _gzip_tar([(f"{i:03d}-" + "n" * 200, b"x") for i in range(10)])
    with pytest.raises(UnsafeArchiveError, match="names total"):
        SafeTar(open_source(data))


# ------------------------------------------------------------------ names, caps and links (from test_core)
def zip_bytes(members: dict[str, bytes], *, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return buf.getvalue()


def safe_zip(data: bytes, limits: Limits | None = None) -> SafeZip:
    source = open_source(data, name="a.zip", limits=limits or Limits())
    return SafeZip(source)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../evil.json", "'..'"),
        ("proj/../../evil.json", "'..'"),
        ("proj/./x.json", "'.'"),
        ("/etc/passwd", "absolute"),
        ("\\windows\\evil", "absolute"),
        ("proj\\..\\evil.json", "backslash"),
        ("C:evil.json", "drive letter"),
        ("a\x1bb.json", "control character"),
    ],
)
def test_zip_unsafe_names_are_refused(name, why):
    data = zip_bytes({"ok.json": b"{}", name: b"x"})
    with pytest.raises(UnsafeArchiveError, match=why) as info:
        safe_zip(data)
    assert info.value.path == "a.zip" and info.value.member == repr(name)


@pytest.mark.parametrize(
    "names",
    [
        ("cells.json", "CELLS.json"),
        ("Straße.json", "STRASSE.json"),  # casefold
        ("caf\u00e9.json", "cafe\u0301.json"),  # NFC
        ("x.json", "x.json"),  # the same name twice
    ],
)
def test_zip_names_equal_after_folding_are_ambiguous(names):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the exact duplicate
        for name in names:
            zf.writestr(name, b"{}")
    with pytest.raises(UnsafeArchiveError, match="same name"):
        safe_zip(buf.getvalue())


def test_zip_symlink_member_is_refused_even_when_junk_looking():
    for name in ("link", "__MACOSX/._link"):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, b"/etc/passwd")
        with pytest.raises(UnsafeArchiveError, match="link"):
            safe_zip(buf.getvalue())


def test_zip_encrypted_member_is_refused():
    data = bytearray(zip_bytes({"X.npy": b"payload"}))
    # Set bit 0 (encrypted) of the general-purpose flags in the local and the central header.
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    data[local + 6] |= 1
    data[central + 8] |= 1
    with pytest.raises(UnsupportedFeatureError, match="encrypted") as info:
        safe_zip(bytes(data))
    assert info.value.member == "X.npy"


def test_zip_junk_skipped_and_single_folder_stripped():
    data = zip_bytes(
        {
            "project/": b"",
            "project/X.ome.tiff": b"tiff",
            "project/cells.json": b"[]",
            "__MACOSX/project/._X.ome.tiff": b"fork",
            "project/._cells.json": b"fork",
            "project/.DS_Store": b"junk",
        }
    )
    with safe_zip(data) as archive:
        assert sorted(archive.names) == ["X.ome.tiff", "cells.json"]
        assert archive.read("cells.json") == b"[]"
        assert archive.find("CELLS.JSON", "other") == "cells.json" and archive.find("nope") is None
        with pytest.raises(CorruptFileError, match="not found"):
            archive.read("project/cells.json")  # names are the stripped ones


def test_zip_two_folders_are_kept():
    with safe_zip(zip_bytes({"a/x.json": b"1", "b/y.json": b"2", "z.json": b"3"})) as archive:
        assert sorted(archive.names) == ["a/x.json", "b/y.json", "z.json"]


def test_zip_member_size_and_entry_caps():
    data = zip_bytes({"small": b"x" * 10, "big": b"y" * 5000})  # deflated: the archive is small
    with safe_zip(data, Limits(member_bytes=1000)) as archive:
        assert archive.read("small") == b"x" * 10
        with pytest.raises(LimitExceededError) as info:
            archive.read("big")
    assert (info.value.limit, info.value.found, info.value.member) == ("member_bytes", 5000, "big")
    with pytest.raises(LimitExceededError, match="archive_entries"):
        safe_zip(data, Limits(archive_entries=1))


def test_zip_lying_size_is_still_bounded():
    data = bytearray(zip_bytes({"big": b"z" * 100_000}))
    central = data.find(b"PK\x01\x02")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")  # declared size: 10 bytes
    local = data.find(b"PK\x03\x04")
    data[local + 22 : local + 26] = (10).to_bytes(4, "little")
    with safe_zip(bytes(data), Limits(member_bytes=1000)) as archive:
        try:
            out = archive.read("big")
        except CorruptFileError:
            return
    assert len(out) <= 1000


def test_zip_stored_range_points_at_the_bytes():
    data = zip_bytes({"folder/X.npy": b"0123456789", "folder/c.json": b"[]"}, method=zipfile.ZIP_STORED)
    with safe_zip(data) as archive:
        offset, size = archive.stored_range("X.npy")
        assert data[offset : offset + size] == b"0123456789"
    with safe_zip(zip_bytes({"X.npy": b"0" * 100})) as archive:
        assert archive.stored_range("X.npy") is None  # deflated


def test_not_a_zip_is_corrupt():
    with pytest.raises(CorruptFileError, match="not a readable zip"):
        safe_zip(b"PK\x03\x04 but nothing else")


def tar_bytes(members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tf.addfile(info, io.BytesIO(m[1]))
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["w", "w:gz"])
def test_tar_reads_regular_members(mode):
    data = tar_bytes([("raw.npy", b"abc"), ("lineages.json", b"[]")], mode)
    with SafeTar(open_source(data, name="a.trk")) as archive:
        assert sorted(archive.names) == ["lineages.json", "raw.npy"]
        assert archive.read("raw.npy") == b"abc" and archive.open("lineages.json").read() == b"[]"


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE])
def test_tar_links_and_devices_are_refused(kind):
    link = tarfile.TarInfo("tracked.npy")
    link.type = kind
    link.linkname = "raw.npy"
    with pytest.raises(UnsafeArchiveError, match="link, device or FIFO") as info:
        SafeTar(open_source(tar_bytes([("raw.npy", b"abc"), link]), name="a.trk"))
    assert info.value.member == "tracked.npy"


def test_tar_traversal_and_size_caps():
    with pytest.raises(UnsafeArchiveError, match=r"'\.\.'"):
        SafeTar(open_source(tar_bytes([("../raw.npy", b"abc")]), name="a.trk"))
    data = tar_bytes([("raw.npy", b"a" * 5000)], "w:gz")
    with SafeTar(open_source(data, name="a.trk", limits=Limits(member_bytes=1000))) as archive:
        with pytest.raises(LimitExceededError, match="member_bytes"):
            archive.read("raw.npy")
    with pytest.raises(LimitExceededError, match="total_bytes"):
        SafeTar(open_source(data, name="a.trk", limits=Limits(total_bytes=100)))


def test_read_json_finds_a_member_by_name_and_parses_it_strictly():
    members = {
        "Folder/Cells.JSON": b'[{"value": 1}]',
        "Folder/bad.json": b'{"a": 1, "a": 2}',
        "Folder/big.json": b"[" + b"1," * 100 + b"1]",
    }
    with SafeZip(open_source(_zip(members), name="p.zip", limits=Limits(json_bytes=100))) as archive:
        assert archive.read_json("cells.json") == [{"value": 1}]  # any case, enclosing folder stripped
        assert archive.read_json("lineage.json") is None  # absent
        with pytest.raises(CorruptFileError, match="duplicate key 'a'") as info:
            archive.read_json("bad.json")
        assert (info.value.path, info.value.member) == ("p.zip", "bad.json")
        with pytest.raises(LimitExceededError, match="json_bytes"):
            archive.read_json("big.json")


# ------------------------------------------------------------------ deflated members read by position
def _mostly_zeros(size: int, seed: int = 0) -> bytes:
    """``size`` bytes of zeros with runs of noise: compresses well, yet every segment differs."""
    import random

    rng = random.Random(seed)
    out = bytearray(size)
    for at in range(0, size, 4099):
        out[at : at + 64] = rng.randbytes(min(64, size - at))
    return bytes(out)


SEEK_CONTENT = _mostly_zeros(300_001)
SEEK_SEGMENT = 10_000  # 31 checkpoints over SEEK_CONTENT
SEEK_ZIP = _zip({"dir/a.bin": SEEK_CONTENT})


@settings(max_examples=200, deadline=None)
@given(
    reads=st.lists(
        st.tuples(st.integers(0, len(SEEK_CONTENT) + 50), st.integers(0, 3 * SEEK_SEGMENT)), min_size=1, max_size=8
    )
)
@example(reads=[(SEEK_SEGMENT - 3, 6), (len(SEEK_CONTENT) - 5, 100), (0, 0), (2 * SEEK_SEGMENT, SEEK_SEGMENT)])
@example(reads=[(len(SEEK_CONTENT), 10), (SEEK_SEGMENT * 30, 2 * SEEK_SEGMENT), (1, len(SEEK_CONTENT))])
def test_a_deflated_member_reads_at_any_offset_like_its_inflated_bytes(reads):
    with SafeZip(open_source(SEEK_ZIP, name="a.zip")) as archive:
        with archive.open_seekable("a.bin", segment=SEEK_SEGMENT) as fh:
            assert fh.seekable() and fh.readable() and fh.size == len(SEEK_CONTENT)
            for offset, length in reads:
                assert fh.seek(offset) == offset
                assert fh.read(length) == SEEK_CONTENT[offset : offset + length]
                assert fh.tell() == min(offset + length, max(offset, len(SEEK_CONTENT)))


def test_a_deflated_member_reads_like_a_file():
    with SafeZip(open_source(SEEK_ZIP, name="a.zip")) as archive:
        with archive.open_seekable("a.bin", segment=SEEK_SEGMENT) as fh:
            assert fh.seek(-10, io.SEEK_END) == len(SEEK_CONTENT) - 10
            assert fh.read() == SEEK_CONTENT[-10:]
            fh.seek(5)
            assert fh.seek(7, io.SEEK_CUR) == 12
            buffer = bytearray(SEEK_SEGMENT * 2 + 1)
            assert fh.readinto(buffer) == len(buffer) and buffer == SEEK_CONTENT[12 : 12 + len(buffer)]
            fh.seek(0)
            assert fh.read() == SEEK_CONTENT
        with pytest.raises(ValueError):
            fh.read(1)  # closed


def test_a_deflated_member_read_by_position_is_checked_when_opened():
    good = _zip({"a.bin": SEEK_CONTENT})
    bad_crc = bytearray(good)
    bad_crc[bad_crc.find(b"PK\x01\x02") + 16] ^= 1  # the central directory's CRC-32
    damaged = bytearray(good)
    damaged[100:140] = bytes(40)  # inside the deflate stream
    for broken, message in (
        (_declare(good, "a.bin", len(SEEK_CONTENT) - 1), "more than its declared"),
        (_declare(good, "a.bin", len(SEEK_CONTENT) - SEEK_SEGMENT), "more than its declared"),
        (_declare(good, "a.bin", len(SEEK_CONTENT) + 1), "ends after 300,001 of its 300,002"),
        (_declare(good, "a.bin", 10 * len(SEEK_CONTENT)), "ends after 300,001"),
        (bytes(bad_crc), "bad CRC"),
        (bytes(damaged), "decompress|CRC|ends after|more than"),
    ):
        with SafeZip(open_source(broken, name="a.zip")) as archive:
            with pytest.raises(CorruptFileError, match=message) as info:
                archive.open_seekable("a.bin", segment=SEEK_SEGMENT)
        assert (info.value.path, info.value.member) == ("a.zip", "a.bin")


def test_a_deflated_member_read_by_position_is_bounded_by_total_bytes_only():
    limits = Limits(member_bytes=len(SEEK_ZIP), total_bytes=len(SEEK_CONTENT))  # the zip in memory: 6 kB
    with SafeZip(open_source(SEEK_ZIP, name="a.zip", limits=limits)) as archive:
        with archive.open_seekable("a.bin") as fh:
            assert fh.read() == SEEK_CONTENT
    with SafeZip(open_source(SEEK_ZIP, name="a.zip", limits=Limits(total_bytes=1000))) as archive:
        with pytest.raises(LimitExceededError) as info:
            archive.open_seekable("a.bin")
    assert (info.value.limit, info.value.member) == ("total_bytes", "a.bin")
    with SafeZip(open_source(_zip({"a.bin": b"abc"}, zipfile.ZIP_STORED))) as archive:
        with pytest.raises(ValueError, match="not deflated"):
            archive.open_seekable("a.bin")


_SEEK_MEMORY_CHILD = """
import json, random, resource, sys, zlib
import imagecodecs  # loaded for its CRC-32 at the first read: not part of what the member costs
from dlformats.containers.archive import SafeZip
from dlformats.sources import open_source
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
with SafeZip(open_source(sys.argv[1])) as archive, archive.open_seekable("big.bin") as fh:
    crc = 0
    while piece := fh.read(1 << 20):
        crc = zlib.crc32(piece, crc)
    rng = random.Random(0)
    for _ in range(50):
        fh.seek(rng.randrange(fh.size))
        fh.read(3 << 20)
    size = fh.size
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"before": before, "peak": peak, "crc": crc, "size": size}))
"""


def test_a_200_mb_deflated_member_is_read_in_bounded_memory(tmp_path):
    import json
    import subprocess
    import sys

    block = bytearray(1 << 20)
    block[:4096] = _mostly_zeros(4096, seed=1)
    blocks = 200
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf, zf.open("big.bin", "w") as out:
        for _ in range(blocks):
            out.write(block)
    crc = 0
    for _ in range(blocks):
        crc = zlib.crc32(block, crc)
    done = subprocess.run(
        [sys.executable, "-c", _SEEK_MEMORY_CHILD, str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.splitlines()[-1])
    assert (outcome["size"], outcome["crc"]) == (blocks << 20, crc)
    growth = outcome["peak"] - outcome["before"]
    assert growth < 48 << 20, f"reading a {blocks} MiB member grew the peak by {growth / (1 << 20):.0f} MiB"
