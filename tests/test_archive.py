"""SafeZip / SafeTar: junk members unreachable, refused archives close their handle, members streamed."""

from __future__ import annotations

import gzip
import io
import tarfile
import tracemalloc
import zipfile

import pytest

from dlformats import archive as archive_module
from dlformats.archive import SafeTar, SafeZip
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
