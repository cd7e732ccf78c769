"""SafeZip / SafeTar gaps: junk members unreachable, refused archives close their handle."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

from dlformats.archive import SafeTar, SafeZip
from dlformats.errors import CorruptFileError, UnsafeArchiveError
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
