"""Hostile (and valid-but-odd) input files, built in memory by the tests themselves.

Each :class:`Case` is one file (plus, for some, a labels file or companions) and
what reading it must give: the names of the acceptable :class:`dlformats.DLFormatsError`
subclasses, or ``OK`` for odd files that must load and convert.  ``klass`` is the
hostile-input class it covers (see ``HOSTILE_INPUT_FACTS.md``); ``formats`` names the
readers whose fuzz corpus it seeds (``fuzz/make_corpus.py`` imports this module).

Nothing here comes from the shared fixtures: every byte is made by the code below.
"""

from __future__ import annotations

import functools
import io
import json
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

OK = "ok"
MiB = 1 << 20

# Error type names (kept as strings: the child process reports type names).
UNSAFE = ("UnsafeArchiveError",)
CORRUPT = ("CorruptFileError",)
LIMIT = ("LimitExceededError",)
UNSUPPORTED = ("UnsupportedFeatureError",)
INCONSISTENT = ("InconsistentDataError",)

CLASSES = (
    "path traversal",
    "links/devices",
    "declared sizes/bombs",
    "ambiguous names",
    "encrypted/unknown compression",
    "nested archives",
    "pickles",
    "IFD loops",
    "missing OME planes",
    "deflate bombs",
    "image bombs",
    "JSON",
    "CSV",
    ".dat size mismatch",
    "truncation",
    "symlinked target",
    "failure mid-write",
    "URL-like names",
    "tracking rules",
    "valid but odd",
)


@dataclass
class Case:
    """One input and what reading and converting it must give.

    Attributes:
        id: unique name (also the test id).
        klass: the hostile-input class covered (one of :data:`CLASSES`).
        filename: the input's file name (its extension drives format detection).
        data: the input's bytes.
        expect: ``OK``, or the acceptable error type names.
        formats: readers whose fuzz corpus this seeds.
        kwargs: extra keyword arguments for ``dlformats.read`` / ``convert`` (JSON-able).
        labels: optional ``(filename, bytes)`` given as ``labels=``.
        limits: ``Limits`` fields to override (JSON-able).
        companions: further files placed beside the input (multi-file formats).
        out_name: the conversion target's name in the output folder.
        convert_kwargs: extra keyword arguments for ``convert`` only (``to_format``...).
        check: for ``OK`` cases, facts about the project read: ``X``/``y`` shapes, dtype.
        symlink_target: make the target a symbolic link to a file outside the output folder.
        read_ok: the (lazy) read must succeed and only the conversion fail, mid-write.
        known_gap: why dlformats does not meet the expectation yet (the test is then an xfail
            that fails once the gap is closed, so the mark gets removed).
        tree: for a folder input (an OME-Zarr store, a CTC folder, a geff group named ``filename``): its
            files, relative path -> bytes (``data`` is then unused).
        links: symbolic links made in the input folder, relative path -> target (relative to the link);
            ``"."`` makes the input itself a link (its ``tree`` is written at the target).
        out_folder: the conversion target is a folder (a folder format): an earlier output there
            is a folder, which a failed conversion must leave alone.
    """

    id: str
    klass: str
    filename: str
    data: bytes
    expect: Any
    formats: tuple[str, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    labels: tuple[str, bytes] | None = None
    limits: dict[str, int] = field(default_factory=dict)
    companions: dict[str, bytes] = field(default_factory=dict)
    out_name: str = "out.zip"
    convert_kwargs: dict[str, Any] = field(default_factory=dict)
    check: dict[str, Any] = field(default_factory=dict)
    symlink_target: bool = False
    known_gap: str = ""
    read_ok: bool = False
    tree: dict[str, bytes] | None = None
    links: dict[str, str] = field(default_factory=dict)
    out_folder: bool = False


# ------------------------------------------------------------------ builders
def npy(array: Any) -> bytes:
    """``np.save`` bytes of ``array`` (never pickled)."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()


def npy_raw(header: str, payload: bytes = b"", *, version: int = 1) -> bytes:
    """An npy file with a hand-written header dict (no checks: it may lie)."""
    text = header.encode("latin-1")
    pre = 10 if version == 1 else 12
    pad = (-(pre + len(text) + 1)) % 64
    text = text + b" " * pad + b"\n"
    size = struct.pack("<H", len(text)) if version == 1 else struct.pack("<I", len(text))
    return b"\x93NUMPY" + bytes([version, 0]) + size + text + payload


def zip_bytes(members: list[tuple[str, bytes]], *, method: int = zipfile.ZIP_DEFLATED, mode: int = 0) -> bytes:
    """A zip of ``(name, data)`` members, names written exactly as given."""
    import warnings

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are what some cases are about
        for name, data in members:
            info = zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0))
            info.compress_type = method
            if mode:
                info.external_attr = mode << 16
            zf.writestr(info, data)
    return buf.getvalue()


def zip_members(data: bytes) -> list[tuple[str, bytes]]:
    """The ``(name, data)`` members of a (trusted, test-made) zip."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def rezip(
    data: bytes,
    *,
    drop: tuple[str, ...] = (),
    replace: dict[str, bytes] | None = None,
    add: list[tuple[str, bytes]] | None = None,
    rename: dict[str, str] | None = None,
    method: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    """A test-made zip with members dropped, replaced, renamed or added."""
    replace = replace or {}
    rename = rename or {}
    members = [(rename.get(n, n), replace.get(n, d)) for n, d in zip_members(data) if n not in drop]
    return zip_bytes(members + list(add or []), method=method)


def patch_zip(
    data: bytes, name: str, *, flags: int | None = None, method: int | None = None, size: int | None = None
) -> bytes:
    """Patch the local and central headers of member ``name``: flag bits, method, declared size."""
    out = bytearray(data)
    raw = name.encode("utf-8")
    pos = 0
    while (pos := out.find(b"PK\x03\x04", pos)) >= 0:
        n = struct.unpack_from("<H", out, pos + 26)[0]
        if bytes(out[pos + 30 : pos + 30 + n]) == raw:
            if flags is not None:
                struct.pack_into("<H", out, pos + 6, flags)
            if method is not None:
                struct.pack_into("<H", out, pos + 8, method)
            if size is not None:
                struct.pack_into("<I", out, pos + 22, size)
        pos += 4
    pos = 0
    while (pos := out.find(b"PK\x01\x02", pos)) >= 0:
        n = struct.unpack_from("<H", out, pos + 28)[0]
        if bytes(out[pos + 46 : pos + 46 + n]) == raw:
            if flags is not None:
                struct.pack_into("<H", out, pos + 8, flags)
            if method is not None:
                struct.pack_into("<H", out, pos + 10, method)
            if size is not None:
                struct.pack_into("<I", out, pos + 24, size)
        pos += 4
    return bytes(out)


def tar_bytes(members: list[tarfile.TarInfo | tuple[str, bytes]], *, gz: bool = True) -> bytes:
    """A tar (gzip-compressed by default) of members: ``(name, data)`` or ready ``TarInfo``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w", format=tarfile.GNU_FORMAT) as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mtime = 0
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def tar_special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    """A link, device or FIFO tar member."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mtime = 0
    return info


def ifd_tiff(
    pages: int = 1,
    *,
    width: int = 4,
    height: int = 4,
    loop_to: int | None = None,
    next_last: int = 0,
    first: int | None = None,
    compression: int = 1,
    strip: bytes | list[bytes] | None = None,
    bits: int = 8,
) -> bytes:
    """A hand-made little-endian classic TIFF of ``pages`` gray pages.

    ``loop_to`` makes the last IFD point back at page ``loop_to`` (an IFD cycle);
    ``next_last`` is the last IFD's next offset otherwise; ``first`` overrides the
    header's first-IFD offset; ``strip`` replaces each page's pixel data (with
    ``compression`` its TIFF compression code).
    """
    if strip is None:
        strip = bytes(range(width * height * bits // 8)) if width * height <= 256 else bytes(width * height)
    strips = strip if isinstance(strip, list) else [strip] * pages
    entries = 9
    ifd_size = 2 + entries * 12 + 4
    body = bytearray(b"II*\x00" + struct.pack("<I", 0))
    offsets = []
    for page in range(pages):
        strip = strips[page]
        data_off = len(body)
        body += strip
        if len(body) % 2:
            body += b"\x00"
        ifd_off = len(body)
        offsets.append(ifd_off)
        tags = [
            (256, 4, 1, width),
            (257, 4, 1, height),
            (258, 3, 1, bits),
            (259, 3, 1, compression),
            (262, 3, 1, 1),
            (273, 4, 1, data_off),
            (277, 3, 1, 1),
            (278, 4, 1, height),
            (279, 4, 1, len(strip)),
        ]
        ifd = struct.pack("<H", entries)
        for tag, typ, count, value in tags:
            ifd += struct.pack("<HHII", tag, typ, count, value)
        ifd += struct.pack("<I", 0)
        assert len(ifd) == ifd_size
        body += ifd
    for i, off in enumerate(offsets[:-1]):
        struct.pack_into("<I", body, off + 2 + entries * 12, offsets[i + 1])
    last = offsets[-1] + 2 + entries * 12
    struct.pack_into("<I", body, last, offsets[loop_to] if loop_to is not None else next_last)
    struct.pack_into("<I", body, 4, offsets[0] if first is None else first)
    return bytes(body)


def tiff(array: Any, **kwargs: Any) -> bytes:
    """``tifffile.imwrite`` bytes."""
    import tifffile

    kwargs.setdefault("photometric", "minisblack")  # else tifffile guesses RGB for a leading 3
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.asarray(array), **kwargs)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_raw(width: int, height: int, *, depth: int = 8, color: int = 0, idat: bytes | None = None) -> bytes:
    """A hand-made PNG whose IHDR says ``width`` x ``height`` (the IDAT may say anything)."""
    if idat is None:
        samples = {0: 1, 2: 3, 4: 2, 6: 4}.get(color, 1)
        row = b"\x00" + bytes(width * samples * depth // 8)
        idat = zlib.compress(row * height)
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def _write_with(fmt: str, name: str, project: Any = None, **options: Any) -> bytes:
    """Bytes of ``project`` (default: a small test project) written by dlformats' ``fmt`` writer."""
    import tempfile
    import warnings
    from pathlib import Path

    import dlformats
    from dlformats.testing import make_project

    project = project or make_project(channels=2, frames=3, height=12, width=10)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = Path(tmp) / name
        dlformats.write(project, out, format=fmt, options=options)
        return out.read_bytes()


@functools.cache
def valid(fmt: str) -> bytes:
    """A valid file of ``fmt`` written by dlformats (cached)."""
    names = {
        "tiff": "a.ome.tif",
        "npy": "a.npy",
        "npz": "a.npz",
        "trk": "a.trk",
        "png": "a.png",
        "lineage-json": "lineage.json",
        "spots-csv": "spots.csv",
    }
    options = {"frame": 0} if fmt == "png" else {}
    return _write_with(fmt, names.get(fmt, "a.zip"), **options)


def edit_zip(
    width: int = 5,
    height: int = 6,
    *,
    edit: dict[str, Any] | None = None,
    labeled: bytes | None = None,
    raw: bytes | None = None,
) -> bytes:
    """An edit zip (edit.json, cells.json, labeled.dat, optional raw.dat); any part may lie."""
    edit = (
        edit
        if edit is not None
        else {
            "width": width,
            "height": height,
            "action": "trim_pixels",
            "args": {"cell": 1, "x": 1, "y": 1},
            "writeMode": "overlap",
        }
    )
    if labeled is None:
        labels = np.zeros((height, width), "<i4")
        labels[1:3, 1:3] = 1
        labeled = labels.tobytes()
    members = [
        ("edit.json", json.dumps(edit).encode() if isinstance(edit, dict) else edit),
        ("cells.json", b'[{"value": 1, "cell": 1, "t": 0, "c": 0}]'),
        ("labeled.dat", labeled),
    ]
    if raw is not None:
        members.append(("raw.dat", raw))
    return zip_bytes(members)


def trk(
    raw: Any = None,
    tracked: Any = None,
    lineage: bytes | None = None,
    *,
    gz: bool = True,
    extra: list[Any] | None = None,
    names: tuple[str, str, str] = ("lineage.json", "raw.npy", "tracked.npy"),
) -> bytes:
    """A trk (tar of lineage.json, raw.npy, tracked.npy); any member may be replaced."""
    if raw is None:
        raw = np.arange(2 * 6 * 5, dtype=np.uint16).reshape(2, 6, 5, 1)
    if tracked is None:
        tracked = np.zeros((2, 6, 5, 1), np.int32)
        tracked[:, 1:3, 1:3, 0] = 1
    if lineage is None:
        lineage = b'{"1": {"label": 1, "frames": [0, 1], "daughters": [], "parent": null, "frame_div": null}}'
    raw_b = raw if isinstance(raw, bytes) else npy(raw)
    tracked_b = tracked if isinstance(tracked, bytes) else npy(tracked)
    members = [(names[0], lineage), (names[1], raw_b), (names[2], tracked_b)]
    return tar_bytes(members + list(extra or []), gz=gz)


def trks(batches: int = 2) -> bytes:
    """A valid .trks: ``batches`` movies of 2 frames, 6 x 5 pixels, one tracked cell each."""
    raw = np.arange(batches * 2 * 6 * 5, dtype=np.uint16).reshape(batches, 2, 6, 5, 1)
    tracked = np.zeros((batches, 2, 6, 5, 1), np.int32)
    tracked[:, :, 1:3, 1:3, 0] = 1
    lineage = {"1": {"label": 1, "frames": [0, 1], "daughters": [], "parent": None, "frame_div": None}}
    lineages = json.dumps([lineage] * batches).encode()
    return tar_bytes([("lineages.json", lineages), ("raw.npy", npy(raw)), ("tracked.npy", npy(tracked))])


def _gf2_times(matrix: list[int], vector: int) -> int:
    out, i = 0, 0
    while vector:
        if vector & 1:
            out ^= matrix[i]
        vector >>= 1
        i += 1
    return out


def crc32_zeros(crc: int, count: int) -> int:
    """``zlib.crc32(bytes(count), crc)`` in time logarithmic in ``count`` (zlib's crc32_combine method)."""
    op = [0xEDB88320] + [1 << i for i in range(31)]  # the CRC register after one zero bit
    for _ in range(3):  # ... after one zero byte
        op = [_gf2_times(op, row) for row in op]
    register = crc ^ 0xFFFFFFFF
    while count:
        if count & 1:
            register = _gf2_times(op, register)
        count >>= 1
        if count:
            op = [_gf2_times(op, row) for row in op]
    return register ^ 0xFFFFFFFF


def deflate_parts(parts: list[bytes | int]) -> tuple[bytes, int, int]:
    """Raw deflate of ``parts`` joined (an int stands for that many zero bytes): ``(data, crc32, length)``.

    Runs of zeros cost time in proportion to their compressed size: each MiB of zeros
    after a full flush compresses to the same ~1 KiB block, written out as often as
    needed, so a 1 GiB zero bomb is built in milliseconds.
    """
    co = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    out: list[bytes] = []
    crc = total = 0
    for part in parts:
        if isinstance(part, bytes):
            out.append(co.compress(part))
            crc, total = zlib.crc32(part, crc), total + len(part)
            continue
        whole, rest = divmod(part, MiB)
        if whole:
            out.append(co.flush(zlib.Z_FULL_FLUSH))  # after a reset, a MiB of zeros always compresses the same
            block = co.compress(bytes(MiB)) + co.flush(zlib.Z_FULL_FLUSH)
            out.append(block * whole)
        out.append(co.compress(bytes(rest)))
        crc, total = crc32_zeros(crc, part), total + part
    out.append(co.flush())
    return b"".join(out), crc, total


def gzip_parts(parts: list[bytes | int]) -> bytes:
    """A gzip file of ``parts`` joined (ints are runs of zeros, see :func:`deflate_parts`)."""
    data, crc, total = deflate_parts(parts)
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + data + struct.pack("<II", crc, total & 0xFFFFFFFF)


def tar_parts(members: list[tuple[str, list[bytes | int], int | None]]) -> list[bytes | int]:
    """The parts of a GNU tar of ``(name, content parts, declared size or None for the real one)``."""
    out: list[bytes | int] = []
    for name, content, declared in members:
        size = sum(p if isinstance(p, int) else len(p) for p in content)
        info = tarfile.TarInfo(name)
        info.size = size if declared is None else declared
        info.mtime = 0
        out.append(info.tobuf(tarfile.GNU_FORMAT))
        out.extend(content)
        out.append(bytes(-size % 512))
    out.append(bytes(1024))
    return out


def zip_parts(members: list[tuple[str, list[bytes | int], int | None]]) -> bytes:
    """A zip of deflated ``(name, content parts, declared size or None for the real one)`` (ints: runs of zeros)."""
    body, central = b"", b""
    for name, parts, declared in members:
        data, crc, total = deflate_parts(parts)
        size = total if declared is None else declared
        raw = name.encode()
        fields = (crc, len(data), size, len(raw))
        central += struct.pack("<4sHHHHHHIIIH", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, *fields)
        central += struct.pack("<HHHHII", 0, 0, 0, 0, 0, len(body)) + raw
        body += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0x21, *fields, 0) + raw + data
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(body), 0)
    return body + central + end


def npy_header(shape: tuple[int, ...], descr: str = "|u1") -> bytes:
    """The header of an ``.npy`` declaring ``shape`` of ``descr`` (no data)."""
    return npy_raw(f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape!r}, }}")


# ------------------------------------------------------------------ the cases
def _traversal() -> list[Case]:
    k = "path traversal"
    out = []
    pz = valid("dcl-project-zip")
    for tag, bad in (
        ("dotdot", "../X.ome.tiff"),
        ("abs", "/X.ome.tiff"),
        ("backslash", "..\\X.ome.tiff"),
        ("drive", "C:X.ome.tiff"),
        ("control", "X\x01.ome.tiff"),
        ("dot", "a/./X.ome.tiff"),
    ):
        out.append(
            Case(
                f"projectzip-traversal-{tag}",
                k,
                "project.zip",
                rezip(pz, rename={"X.ome.tiff": bad}),
                UNSAFE,
                ("dcl-project-zip", "label-zip"),
            )
        )
    npz = valid("npz")
    out.append(
        Case("npz-traversal-dotdot", k, "arrays.npz", rezip(npz, rename={"X.npy": "../X.npy"}), UNSAFE, ("npz",))
    )
    out.append(Case("npz-traversal-abs", k, "arrays.npz", rezip(npz, rename={"X.npy": "/tmp/X.npy"}), UNSAFE, ("npz",)))
    ez = valid("dcl-export-zip")
    out.append(
        Case(
            "exportzip-traversal",
            k,
            "export.zip",
            rezip(ez, rename={"raw.dat": "a/../../raw.dat"}),
            UNSAFE,
            ("dcl-export-zip",),
        )
    )
    lz = valid("label-zip")
    out.append(
        Case(
            "labelzip-traversal",
            k,
            "labels.zip",
            rezip(lz, rename={"batch_0_feature_0.tif": "../batch_0_feature_0.tif"}),
            UNSAFE,
            ("label-zip",),
        )
    )
    out.append(
        Case(
            "editzip-traversal",
            k,
            "edit.zip",
            rezip(edit_zip(), rename={"labeled.dat": "/labeled.dat"}),
            UNSAFE,
            ("dcl-edit-zip",),
        )
    )
    for tag, bad in (("dotdot", "../raw.npy"), ("abs", "/raw.npy")):
        out.append(
            Case(
                f"trk-traversal-{tag}",
                k,
                "movie.trk",
                trk(names=("lineage.json", bad, "tracked.npy")),
                UNSAFE,
                ("trk",),
            )
        )
    return out


def _links() -> list[Case]:
    k = "links/devices"
    out = []
    base = [("lineage.json", b"{}"), ("tracked.npy", npy(np.zeros((1, 4, 4, 1), np.int32)))]
    for tag, kind, link in (
        ("symlink", tarfile.SYMTYPE, "/etc/passwd"),
        ("hardlink", tarfile.LNKTYPE, "tracked.npy"),
        ("chardev", tarfile.CHRTYPE, ""),
        ("fifo", tarfile.FIFOTYPE, ""),
    ):
        members = [*base, tar_special("raw.npy", kind, link)]
        out.append(Case(f"trk-{tag}", k, "movie.trk", tar_bytes(members), UNSAFE, ("trk",)))
    trks_members = [
        ("lineages.json", b"[{}]"),
        ("tracked.npy", npy(np.zeros((1, 1, 4, 4, 1), np.int32))),
        tar_special("raw.npy", tarfile.LNKTYPE, "tracked.npy"),
    ]
    out.append(Case("trks-hardlink", k, "movies.trks", tar_bytes(trks_members), UNSAFE, ("trks",)))
    link = zip_bytes([("X.npy", b"/etc/passwd")], mode=0o120777)
    out.append(Case("npz-symlink-member", k, "arrays.npz", link, UNSAFE, ("npz",)))
    pz = zip_members(valid("dcl-project-zip"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in pz:
            info = zipfile.ZipInfo(name)
            if name == "cells.json":
                info.external_attr = 0o120777 << 16
                data = b"/etc/passwd"
            zf.writestr(info, data)
    out.append(Case("projectzip-symlink-member", k, "project.zip", buf.getvalue(), UNSAFE, ("dcl-project-zip",)))
    return out


def _sizes() -> list[Case]:
    k = "declared sizes/bombs"
    out = []
    huge = npy_raw("{'descr': '|u1', 'fortran_order': False, 'shape': (1000000, 1000000, 10), }", b"\0" * 64)
    out.append(Case("npy-declared-huge", k, "big.npy", huge, LIMIT, ("npy",)))
    overflow = npy_raw("{'descr': '<u8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", b"\0" * 64)
    out.append(Case("npy-shape-overflow", k, "wrap.npy", overflow, LIMIT + CORRUPT, ("npy",)))
    short = npy_raw("{'descr': '<u2', 'fortran_order': False, 'shape': (10, 20, 30), }", b"\0" * 100)
    out.append(Case("npy-short-data", k, "short.npy", short, CORRUPT, ("npy",)))
    negative = npy_raw("{'descr': '<u2', 'fortran_order': False, 'shape': (-4, 5), }", b"\0" * 64)
    out.append(Case("npy-negative-shape", k, "neg.npy", negative, CORRUPT, ("npy",)))
    big_header = b"\x93NUMPY\x02\x00" + struct.pack("<I", 1 << 30) + b"{'descr'"
    out.append(Case("npy-huge-header-length", k, "hdr.npy", big_header, CORRUPT, ("npy",)))
    out.append(Case("npz-declared-huge", k, "arrays.npz", zip_bytes([("X.npy", huge)]), LIMIT, ("npz",)))
    # A deflate bomb with an honest declared size: 64 MiB of zeros in 64 KiB, over a 16 MiB array limit
    # (an .npy member is decompressed straight into its array: array_bytes bounds it, not member_bytes).
    bomb = zip_bytes([("X.npy", npy(np.zeros((64, 1024, 1024), np.uint8)))])
    out.append(Case("npz-bomb-member-limit", k, "bomb.npz", bomb, LIMIT, ("npz",), limits={"array_bytes": 16 * MiB}))
    # The same member declaring 1 KiB: the archive lies, decompression must stop at the declared size.
    out.append(Case("npz-bomb-lying-size", k, "liar.npz", patch_zip(bomb, "X.npy", size=1024), CORRUPT, ("npz",)))
    out.append(
        Case(
            "projectzip-declared-member-size",
            k,
            "project.zip",
            patch_zip(valid("dcl-project-zip"), "cells.json", size=2**31),
            LIMIT + CORRUPT,
            ("dcl-project-zip",),
            limits={"member_bytes": 64 * MiB},
        )
    )
    entries = zip_bytes([(f"junk{i}.txt", b"") for i in range(300)])
    out.append(
        Case(
            "zip-too-many-entries",
            k,
            "project.zip",
            entries,
            LIMIT,
            ("dcl-project-zip",),
            limits={"archive_entries": 100},
        )
    )
    out.append(
        Case(
            "tiff-declared-huge-plane",
            k,
            "huge.tif",
            ifd_tiff(width=200000, height=200000, strip=b"\0" * 16),
            LIMIT,
            ("tiff",),
        )
    )
    out.append(
        Case("tiff-too-many-pages", k, "pages.tif", ifd_tiff(pages=200), LIMIT, ("tiff",), limits={"tiff_pages": 100})
    )
    out.append(
        Case("tiff-strip-past-end", k, "strip.tif", ifd_tiff(width=64, height=64, strip=b"\0" * 64), CORRUPT, ("tiff",))
    )
    big_tar = tarfile.TarInfo("raw.npy")
    big_tar.size = 2**41
    raw = tar_bytes([("lineage.json", b"{}")], gz=False)[:-1024]  # drop the end-of-archive blocks
    raw += big_tar.tobuf(tarfile.GNU_FORMAT) + b"\0" * 2048
    out.append(Case("trk-declared-huge-member", k, "movie.trk", raw, LIMIT + CORRUPT, ("trk",)))
    # A 9 KiB gzip tar whose first member is 64 MiB of zeros: the cost is capped by total_bytes.
    zeros = tar_bytes(
        [
            ("lineage.json", b"{}"),
            ("padding.bin", bytes(64 * MiB)),
            ("raw.npy", npy(np.zeros((1, 4, 4, 1)))),
            ("tracked.npy", npy(np.zeros((1, 4, 4, 1), np.int32))),
        ]
    )
    out.append(Case("trk-zero-member-before", k, "movie.trk", zeros, LIMIT, ("trk",), limits={"total_bytes": 16 * MiB}))
    raw_trk = npy_raw("{'descr': '<u2', 'fortran_order': False, 'shape': (100000, 100000, 100, 1), }", b"\0" * 64)
    out.append(Case("trk-raw-declared-huge", k, "movie.trk", trk(raw=raw_trk), LIMIT, ("trk",)))
    ez = valid("dcl-export-zip")
    dims = {
        "width": 100000,
        "height": 100000,
        "duration": 100,
        "numChannels": 2,
        "numFeatures": 1,
        "dtype": "Uint8Array",
    }
    out.append(
        Case(
            "exportzip-declared-huge",
            k,
            "export.zip",
            rezip(ez, replace={"dimensions.json": json.dumps(dims).encode()}),
            LIMIT + CORRUPT,
            ("dcl-export-zip",),
        )
    )
    out.append(
        Case(
            "editzip-declared-huge",
            k,
            "edit.zip",
            edit_zip(width=100000, height=100000, labeled=bytes(120)),
            LIMIT + CORRUPT,
            ("dcl-edit-zip",),
        )
    )
    out.append(
        Case(
            "json-too-large",
            k,
            "lineage.json",
            b'{"1": {"label": 1, "frames": [' + b"0, " * 800 + b"0]}}",
            LIMIT,
            ("lineage-json",),
            limits={"json_bytes": 1024},
        )
    )
    out.append(
        Case(
            "csv-too-large",
            k,
            "spots.csv",
            b"x,y\n" + b"1.5,2.5\n" * 500,
            LIMIT,
            ("spots-csv",),
            limits={"csv_bytes": 1024},
        )
    )
    return out


BOMB = 1200 * MiB
"""Zeros behind a hostile member's header: ~1.2 MB of gzip, more than a 1 GB read may hold."""


def trk_parts(raw: list[bytes | int], *, declared: int | None = None) -> bytes:
    """A gzip trk whose ``raw.npy`` is made of ``raw`` (ints: runs of zeros), declaring its size or ``declared``."""
    lineage, _, tracked = (parts[0] for _, parts, _ in _tar_members(trk()))
    members = [("lineage.json", [lineage], None), ("raw.npy", raw, declared), ("tracked.npy", [tracked], None)]
    return gzip_parts(tar_parts(members))


def trk_bomb() -> bytes:
    """The reported bomb: raw.npy's header declares an absurd shape; 1.2 GiB of zeros follow, in ~1.2 MB."""
    return trk_parts([npy_header((100000, 1000, 1000, 1), "<u2"), BOMB])


def _streamed() -> list[Case]:
    """Members streamed: headers checked before the rest is decompressed; exactly the declared size."""
    k = "declared sizes/bombs"
    out = []
    good = trk()
    _, raw, _ = (parts[0] for _, parts, _ in _tar_members(good))
    out.append(Case("trk-raw-bomb-huge-shape", k, "bomb.trk", trk_bomb(), LIMIT))
    # The same bomb telling the truth: a 1.2 GiB uint8 movie, over array_bytes, refused before it is inflated.
    honest = npy_header((1200, 1024, 1024, 1))
    out.append(Case("trk-raw-bomb-honest-shape", k, "honest.trk", trk_parts([honest, BOMB]), LIMIT))
    # The tar member holds more, or less, than its .npy header declares.
    out.append(Case("trk-raw-longer-than-declared", k, "long.trk", trk(raw=raw + bytes(64)), CORRUPT, ("trk",)))
    out.append(Case("trk-raw-shorter-than-declared", k, "short.trk", trk(raw=raw[:-10]), CORRUPT, ("trk",)))
    # The tar header declares more than the archive holds: the member runs into the end of the archive.
    past = trk_parts([raw], declared=len(raw) + 8192)
    out.append(Case("trk-member-past-the-end", k, "past.trk", past, CORRUPT, ("trk",)))
    # A pax header of 1.2 GiB before the members: tarfile would read it whole.
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type, pax.size = tarfile.XHDTYPE, BOMB
    pax_bomb = gzip_parts([pax.tobuf(tarfile.USTAR_FORMAT), BOMB, *tar_parts(_tar_members(good))])
    out.append(Case("trk-pax-header-bomb", k, "pax.trk", pax_bomb, UNSUPPORTED + LIMIT))
    # The gzip trailer's CRC-32 does not match the content.
    bad_crc = good[:-8] + struct.pack("<I", struct.unpack("<I", good[-8:-4])[0] ^ 1) + good[-4:]
    out.append(Case("trk-gzip-bad-crc", k, "crc.trk", bad_crc, CORRUPT, ("trk",)))
    # npz members: a bomb whose header declares an absurd shape, one whose header tells the truth, and
    # members whose zip entry declares more or less than their .npy header.
    npz_huge = zip_parts([("X.npy", [npy_header((100000, 100000, 10)), BOMB], None)])
    out.append(Case("npz-member-bomb-huge-shape", k, "bomb.npz", npz_huge, LIMIT))
    npz_honest = zip_parts([("X.npy", [npy_header((1200, 1024, 1024)), BOMB], None)])
    out.append(Case("npz-member-bomb-honest-shape", k, "honest.npz", npz_honest, LIMIT))
    a = npy(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    for tag, declared in (("more", len(a) + 64), ("less", len(a) - 8)):
        liar = zip_parts([("X.npy", [a], declared)])
        out.append(Case(f"npz-member-declares-{tag}", k, f"{tag}.npz", liar, CORRUPT, ("npz",)))
    # A project zip whose cells.json is a 1.2 GiB bomb: refused from its declared size (json_bytes).
    members = [(n, [d], None) for n, d in zip_members(valid("dcl-project-zip")) if n != "cells.json"]
    json_bomb = zip_parts([*members, ("cells.json", [b"[", BOMB], None)])
    out.append(Case("projectzip-cells-json-bomb", k, "project.zip", json_bomb, LIMIT))
    return out


def _tar_members(data: bytes) -> list[tuple[str, list[bytes | int], None]]:
    """The members of a (trusted, test-made) tar as :func:`tar_parts` takes them."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [(m.name, [tar.extractfile(m).read()], None) for m in tar.getmembers()]  # type: ignore[union-attr]


def _ambiguous() -> list[Case]:
    k = "ambiguous names"
    out = []
    pz = valid("dcl-project-zip")
    members = zip_members(pz)
    x = dict(members)["X.ome.tiff"]
    out.append(
        Case(
            "projectzip-duplicate",
            k,
            "project.zip",
            zip_bytes([*members, ("X.ome.tiff", x)]),
            UNSAFE,
            ("dcl-project-zip",),
        )
    )
    out.append(
        Case(
            "projectzip-case-duplicate",
            k,
            "project.zip",
            zip_bytes([*members, ("x.OME.tiff", x)]),
            UNSAFE,
            ("dcl-project-zip",),
        )
    )
    out.append(
        Case(
            "projectzip-nfc-duplicate",
            k,
            "project.zip",
            zip_bytes([*members, ("caf\u00e9.json", b"{}"), ("cafe\u0301.json", b"{}")]),
            UNSAFE,
            ("dcl-project-zip",),
        )
    )
    npz = zip_members(valid("npz"))
    xnpy = dict(npz)["X.npy"]
    out.append(
        Case(
            "npz-X-and-X.npy",
            k,
            "arrays.npz",
            zip_bytes([*npz, ("X", xnpy)]),
            UNSAFE + CORRUPT + ("NoReaderError",),
            ("npz",),
            kwargs={"format": "npz"},
        )
    )
    out.append(Case("npz-duplicate", k, "arrays.npz", zip_bytes([*npz, ("X.npy", xnpy)]), UNSAFE, ("npz",)))
    out.append(
        Case(
            "exportzip-duplicate",
            k,
            "export.zip",
            zip_bytes([*zip_members(valid("dcl-export-zip")), ("CELLS.json", b"[]")]),
            UNSAFE,
            ("dcl-export-zip",),
        )
    )
    dup = trk(extra=[("raw.npy", npy(np.zeros((2, 6, 5, 1), np.uint16)))])
    out.append(Case("trk-duplicate", k, "movie.trk", dup, UNSAFE, ("trk",)))
    return out


def _encrypted() -> list[Case]:
    k = "encrypted/unknown compression"
    pz = valid("dcl-project-zip")
    npz = valid("npz")
    return [
        Case(
            "projectzip-encrypted",
            k,
            "project.zip",
            patch_zip(pz, "cells.json", flags=1),
            UNSUPPORTED,
            ("dcl-project-zip",),
        ),
        Case("npz-encrypted", k, "arrays.npz", patch_zip(npz, "X.npy", flags=1), UNSUPPORTED, ("npz",)),
        Case("npz-method-99", k, "arrays.npz", patch_zip(npz, "X.npy", method=99), UNSUPPORTED, ("npz",)),
        Case(
            "exportzip-method-12",
            k,
            "export.zip",
            patch_zip(valid("dcl-export-zip"), "raw.dat", method=98),
            UNSUPPORTED,
            ("dcl-export-zip",),
        ),
        Case(
            "labelzip-encrypted",
            k,
            "labels.zip",
            patch_zip(valid("label-zip"), "batch_0_feature_0.tif", flags=1),
            UNSUPPORTED,
            ("label-zip",),
        ),
    ]


def _nested() -> list[Case]:
    k = "nested archives"
    pz = valid("dcl-project-zip")
    inner = zip_bytes([("X.npy", npy(np.zeros((4, 4), np.uint8)))])
    return [
        Case(
            "labelzip-holds-zip",
            k,
            "labels.zip",
            zip_bytes([("inner.zip", valid("label-zip"))]),
            ("NoReaderError",),
            ("label-zip",),
        ),
        Case(
            "projectzip-xtiff-is-zip",
            k,
            "project.zip",
            rezip(pz, replace={"X.ome.tiff": pz}),
            CORRUPT + UNSAFE,
            ("dcl-project-zip",),
        ),
        Case("npz-member-is-zip", k, "arrays.npz", zip_bytes([("X.npy", inner)]), CORRUPT + UNSAFE, ("npz",)),
        Case("trk-raw-is-tar", k, "movie.trk", trk(raw=valid("trk")), CORRUPT + UNSAFE, ("trk",)),
    ]


def _nested_members() -> list[Case]:
    """Archives holding an archive beside their usual members: the contract says refuse them."""
    k = "nested archives"
    inner = zip_bytes([("a.txt", b"x")])
    return [
        Case(
            "projectzip-holds-zip",
            k,
            "project.zip",
            rezip(valid("dcl-project-zip"), add=[("inner.zip", inner)]),
            UNSAFE,
            ("dcl-project-zip",),
        ),
        Case(
            "exportzip-holds-zip",
            k,
            "export.zip",
            rezip(valid("dcl-export-zip"), add=[("inner.zip", inner)]),
            UNSAFE,
            ("dcl-export-zip",),
        ),
        Case(
            "trk-holds-tar",
            k,
            "movie.trk",
            trk(extra=[("inner.tar.gz", valid("trk"))]),
            UNSAFE,
            ("trk",),
        ),
    ]


def _pickles() -> list[Case]:
    k = "pickles"
    import pickle

    obj = np.array([{"a": 1}, None], dtype=object)
    buf = io.BytesIO()
    np.save(buf, obj, allow_pickle=True)
    pickled = buf.getvalue()
    # A header whose descr is '|O' with a payload that would run code if unpickled.
    payload = pickle.dumps(print, protocol=2)
    evil = npy_raw("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", payload)
    evil_eval = npy_raw("{'descr': __import__('os').getcwd(), 'fortran_order': False, 'shape': (1,), }", b"\0")
    return [
        Case("npy-object", k, "obj.npy", pickled, UNSUPPORTED + CORRUPT, ("npy",)),
        Case("npy-object-code", k, "evil.npy", evil, UNSUPPORTED + CORRUPT, ("npy",)),
        Case("npy-header-eval", k, "eval.npy", evil_eval, CORRUPT, ("npy",)),
        Case(
            "npy-structured",
            k,
            "rec.npy",
            npy(np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")])),
            UNSUPPORTED + CORRUPT,
            ("npy",),
        ),
        Case("npy-unicode", k, "str.npy", npy(np.array(["a", "b"])), UNSUPPORTED + CORRUPT, ("npy",)),
        Case("npy-complex", k, "cplx.npy", npy(np.zeros((4, 4), np.complex64)), UNSUPPORTED, ("npy",)),
        Case("npz-object", k, "obj.npz", zip_bytes([("X.npy", pickled)]), UNSUPPORTED + CORRUPT, ("npz",)),
        Case("trk-object", k, "movie.trk", trk(raw=pickled), UNSUPPORTED + CORRUPT, ("trk",)),
        Case(
            "labelzip-object",
            k,
            "labels.zip",
            zip_bytes([("labels.npy", pickled)]),
            UNSUPPORTED + CORRUPT,
            ("label-zip",),
        ),
    ]


def _ifd_loops() -> list[Case]:
    k = "IFD loops"
    pz = valid("dcl-project-zip")
    loop150 = ifd_tiff(pages=150, loop_to=0)
    return [
        Case("tiff-self-loop", k, "loop1.tif", ifd_tiff(pages=1, loop_to=0), CORRUPT, ("tiff",)),
        Case("tiff-loop-period-150", k, "loop150.tif", loop150, CORRUPT, ("tiff",)),
        Case("tiff-loop-period-2", k, "loop2.tif", ifd_tiff(pages=3, loop_to=1), CORRUPT, ("tiff",)),
        Case("tiff-next-past-end", k, "next.tif", ifd_tiff(pages=2, next_last=10**6), CORRUPT, ("tiff",)),
        Case("tiff-first-past-end", k, "first.tif", ifd_tiff(first=10**9), CORRUPT, ("tiff",)),
        Case("tiff-first-odd-zero", k, "zero.tif", ifd_tiff(first=0), CORRUPT, ("tiff",)),
        Case(
            "projectzip-x-loop",
            k,
            "project.zip",
            rezip(pz, replace={"X.ome.tiff": loop150}),
            CORRUPT,
            ("dcl-project-zip",),
        ),
        Case("labelzip-loop", k, "labels.zip", zip_bytes([("labels.tif", loop150)]), CORRUPT, ("label-zip",)),
        Case(
            "tiff-labels-loop",
            k,
            "image.tif",
            tiff(np.zeros((4, 4), np.uint8)),
            CORRUPT,
            ("tiff",),
            labels=("mask.tif", ifd_tiff(pages=120, loop_to=3)),
        ),
    ]


_OME = """<?xml version="1.0" encoding="UTF-8"?>
<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" UUID="urn:uuid:{own}">
<Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint8" SizeX="8" SizeY="8" SizeC="1"
 SizeZ="1" SizeT="{t}" BigEndian="false"><Channel ID="Channel:0:0" SamplesPerPixel="1"/>{tiffdata}</Pixels></Image>
</OME>"""


ONE = "00000000-0000-0000-0000-000000000001"
TWO = "00000000-0000-0000-0000-000000000002"


def _ome(t: int, tiffdata: str, own: str = "00000000-0000-0000-0000-000000000001") -> str:
    return _OME.format(t=t, tiffdata=tiffdata, own=own)


def _missing_planes() -> list[Case]:
    k = "missing OME planes"
    plane = np.arange(64, dtype=np.uint8).reshape(8, 8)
    three = _ome(3, '<TiffData IFD="0" PlaneCount="3"/>')
    one_page = tiff(plane, description=three, metadata=None)
    other = (
        '<TiffData FirstT="0" IFD="0" PlaneCount="1"><UUID FileName="part0.ome.tif">'
        "urn:uuid:00000000-0000-0000-0000-000000000001</UUID></TiffData>"
        '<TiffData FirstT="1" IFD="0" PlaneCount="1"><UUID FileName="part1.ome.tif">'
        "urn:uuid:00000000-0000-0000-0000-000000000002</UUID></TiffData>"
    )
    multi = tiff(plane, description=_ome(2, other), metadata=None)
    pz = valid("dcl-project-zip")
    both = "".join(
        f'<TiffData FirstT="{t}" IFD="0" PlaneCount="1"><UUID FileName="{name}">urn:uuid:{uuid}</UUID></TiffData>'
        for t, (name, uuid) in enumerate((("part0.ome.tif", ONE), ("part1.ome.tif", TWO)))
    )
    part0 = tiff(plane, description=_ome(2, both, own=ONE), metadata=None)
    part1 = tiff(plane + 1, description=_ome(2, both, own=TWO), metadata=None)
    escape = both.replace("part1.ome.tif", "../part1.ome.tif")
    absolute = both.replace("part1.ome.tif", "/etc/passwd")
    companion = _ome(2, both, own=ONE).replace("part0.ome.tif", "../part0.ome.tif").encode()
    extra = [
        Case(
            "ome-multifile",
            "valid but odd",
            "part0.ome.tif",
            part0,
            OK,
            ("tiff",),
            companions={"part1.ome.tif": part1},
            check={"X": [1, 2, 8, 8]},
        ),
        Case(
            "ome-multifile-dotdot",
            "path traversal",
            "part0.ome.tif",
            tiff(plane, description=_ome(2, escape, own=ONE), metadata=None),
            CORRUPT + UNSAFE,
            ("tiff",),
            companions={"part1.ome.tif": part1},
        ),
        Case(
            "ome-multifile-absolute",
            "path traversal",
            "part0.ome.tif",
            tiff(plane, description=_ome(2, absolute, own=ONE), metadata=None),
            CORRUPT + UNSAFE,
            ("tiff",),
        ),
        Case(
            "ome-companion-dotdot",
            "path traversal",
            "set.companion.ome",
            companion,
            CORRUPT + UNSAFE,
            ("ome-companion",),
            companions={"part0.ome.tif": part0, "part1.ome.tif": part1},
        ),
    ]
    return [
        *extra,
        Case("ome-missing-planes", k, "planes.ome.tif", one_page, CORRUPT, ("tiff",)),
        Case("ome-missing-file", k, "part0.ome.tif", multi, CORRUPT, ("tiff",)),
        Case(
            "ome-ifd-past-pages",
            k,
            "ifd.ome.tif",
            tiff(plane, description=_ome(1, '<TiffData IFD="5"/>'), metadata=None),
            CORRUPT,
            ("tiff",),
        ),
        Case(
            "projectzip-missing-planes",
            k,
            "project.zip",
            rezip(pz, replace={"X.ome.tiff": one_page}),
            CORRUPT + INCONSISTENT,
            ("dcl-project-zip",),
        ),
    ]


def _deflate() -> list[Case]:
    k = "deflate bombs"
    blob = zlib.compress(bytes(128 * MiB), 9)
    row = b"\x00" + bytes(64)
    png_idat = zlib.compress(row * 64 + bytes(128 * MiB), 9)
    return [
        Case(
            "tiff-deflate-strip-bomb",
            k,
            "deflate.tif",
            ifd_tiff(width=16, height=16, compression=8, strip=blob),
            (*CORRUPT, OK),
            ("tiff",),
        ),
        Case(
            "tiff-deflate-strip-bomb-big-plane",
            k,
            "deflate2.tif",
            ifd_tiff(width=4096, height=4096, compression=8, strip=blob),
            (*CORRUPT, OK),
            ("tiff",),
        ),
        Case("png-idat-bomb", k, "bomb.png", png_raw(64, 64, idat=png_idat), (*CORRUPT, OK), ("png",)),
        Case(
            "labelzip-tiff-deflate-bomb",
            k,
            "labels.zip",
            zip_bytes([("labels.tif", ifd_tiff(width=16, height=16, compression=8, strip=blob))]),
            (*CORRUPT, OK),
            ("label-zip",),
            convert_kwargs={"to_format": "label-zip"},
        ),
    ]


def _image_bombs() -> list[Case]:
    k = "image bombs"
    return [
        Case("png-ihdr-huge", k, "huge.png", png_raw(100000, 100000, idat=zlib.compress(b"\0" * 100)), LIMIT, ("png",)),
        Case(
            "png-ihdr-max",
            k,
            "max.png",
            png_raw(2**31 - 1, 2**31 - 1, idat=zlib.compress(b"\0")),
            LIMIT + CORRUPT,
            ("png",),
        ),
        Case(
            "png-rgba16-huge",
            k,
            "rgba.png",
            png_raw(40000, 40000, depth=16, color=6, idat=zlib.compress(b"\0")),
            LIMIT,
            ("png",),
        ),
        Case(
            "png-over-pillow-threshold",
            k,
            "pillow.png",
            png_raw(20000, 10000, idat=zlib.compress(b"\0" * 100)),
            LIMIT,
            ("png",),
            limits={"array_bytes": 64 * MiB},
        ),
        Case("png-zero-size", k, "zero.png", png_raw(0, 0, idat=zlib.compress(b"")), CORRUPT + UNSUPPORTED, ("png",)),
        Case(
            "labelzip-png-labels-huge",
            k,
            "image.png",
            png_raw(8, 8),
            LIMIT,
            ("png",),
            labels=("mask.png", png_raw(100000, 100000, idat=zlib.compress(b"\0"))),
        ),
    ]


def _lineage(obj: Any) -> bytes:
    return obj if isinstance(obj, bytes) else json.dumps(obj).encode()


def _json() -> list[Case]:
    k = "JSON"
    entry = '{"label": 1, "frames": [0], "daughters": [], "parent": null}'
    docs = {
        "nan": b'{"1": {"label": 1, "frames": [NaN], "daughters": [], "parent": null}}',
        "infinity": b'{"1": {"label": 1, "frames": [0], "daughters": [], "parent": null, "x": Infinity}}',
        "1e400": b'{"1": {"label": 1e400, "frames": [0], "daughters": [], "parent": null}}',
        "duplicate-key": (f'{{"1": {entry}, "1": {entry}}}').encode(),
        "deep": b'{"1": {"label": 1, "frames": ' + b"[" * 100000 + b"]" * 100000 + b"}}",
        "depth-100": b'{"1": {"label": 1, "frames": ' + b"[" * 100 + b"]" * 100 + b"}}",
        "space-int-key": (f'{{" 1": {entry}}}').encode(),
        "underscore-int-key": ('{{"1_0": {}}}'.format(entry.replace('"label": 1', '"label": 10'))).encode(),
        "arabic-int-key": (f'{{"\u0661": {entry}}}').encode(),
        "not-utf8": b'{"1": {"label": 1, "frames": [0], "daughters": [], "parent": null, "n": "\xff\xfe"}}',
        "truncated": b'{"1": {"label": 1, "frames": [0',
        "wrong-type": b'{"1": {"label": 1, "frames": "0", "daughters": [], "parent": null}}',
    }
    out = []
    for tag, doc in docs.items():
        out.append(
            Case(
                f"lineage-json-{tag}",
                k,
                "lineage.json",
                doc,
                CORRUPT + INCONSISTENT,
                ("lineage-json",),
                out_name="out.json",
            )
        )
    for tag in ("nan", "duplicate-key", "deep", "space-int-key", "arabic-int-key"):
        out.append(Case(f"trk-lineage-{tag}", k, "movie.trk", trk(lineage=docs[tag]), CORRUPT + INCONSISTENT, ("trk",)))
    pz = valid("dcl-project-zip")
    cells = {
        "nan": b'[{"value": 1, "cell": NaN, "t": 0, "c": 0}]',
        "duplicate-key": b'[{"value": 1, "value": 2, "cell": 1, "t": 0, "c": 0}]',
        "deep": b"[" * 5000 + b"]" * 5000,
        "float-id": b'[{"value": 1.5, "cell": 1, "t": 0, "c": 0}]',
        "bool-id": b'[{"value": true, "cell": 1, "t": 0, "c": 0}]',
    }
    for tag, doc in cells.items():
        out.append(
            Case(
                f"projectzip-cells-{tag}",
                k,
                "project.zip",
                rezip(pz, replace={"cells.json": doc}),
                CORRUPT + INCONSISTENT,
                ("dcl-project-zip",),
            )
        )
    out.append(
        Case(
            "projectzip-divisions-nan",
            k,
            "project.zip",
            rezip(pz, replace={"divisions.json": b'[{"parent": NaN, "daughters": [3, 4], "t": 1}]'}),
            CORRUPT + INCONSISTENT,
            ("dcl-project-zip",),
        )
    )
    ez = valid("dcl-export-zip")
    out.append(
        Case(
            "exportzip-dimensions-nan",
            k,
            "export.zip",
            rezip(
                ez,
                replace={
                    "dimensions.json": b'{"width": NaN, "height": 12, "duration": 3, '
                    b'"numChannels": 2, "numFeatures": 1, "dtype": "Uint8Array"}'
                },
            ),
            CORRUPT,
            ("dcl-export-zip",),
        )
    )
    out.append(
        Case(
            "exportzip-dimensions-float",
            k,
            "export.zip",
            rezip(
                ez,
                replace={
                    "dimensions.json": b'{"width": 10.0, "height": 12, "duration": 3, '
                    b'"numChannels": 2, "numFeatures": 1, "dtype": "Uint8Array"}'
                },
            ),
            CORRUPT,
            ("dcl-export-zip",),
        )
    )
    out.append(
        Case(
            "editzip-json-duplicate",
            k,
            "edit.zip",
            edit_zip(
                edit=b'{"width": 5, "width": 6, "height": 6, "action": "trim_pixels", '
                b'"args": {"cell": 1, "x": 1, "y": 1}, "writeMode": "overlap"}'
            ),
            CORRUPT,
            ("dcl-edit-zip",),
        )
    )
    out.append(
        Case(
            "editzip-bad-action",
            k,
            "edit.zip",
            edit_zip(edit={"width": 5, "height": 6, "action": "__import__", "args": {}, "writeMode": "x"}),
            CORRUPT + UNSUPPORTED,
            ("dcl-edit-zip",),
        )
    )
    return out


def _csv() -> list[Case]:
    k = "CSV"
    out = []
    docs = {
        "huge-field": b"x,y,note\n1.5,2.5," + b"a" * 200000 + b"\n",
        "huge-number-field": b"x,y\n" + b"1" * 200000 + b",2.5\n",
        "ragged-long": b"x,y\n1.5,2.5,7\n",
        "ragged-short": b"x,y,cell\n1.5\n",
        "nan": b"x,y\nnan,2.5\n",
        "inf": b"x,y\n1.5,inf\n",
        "1e400": b"x,y\n1e400,2.5\n",
        "not-a-number": b"x,y\n1.5,abc\n",
        "no-xy": b"a,b\n1,2\n",
        "duplicate-header": b"x,y,x\n1,2,3\n",
        "nul-byte": b"x,y\n1.5,2\x00.5\n",
        "not-utf8": b"x,y,n\n1.5,2.5,\xff\xfe\n",
    }
    for tag, doc in docs.items():
        # A NUL byte makes the file binary: no reader may claim it.
        expect = (*CORRUPT, "NoReaderError") if tag == "nul-byte" else CORRUPT
        out.append(Case(f"spots-csv-{tag}", k, "spots.csv", doc, expect, ("spots-csv",), out_name="out.csv"))
    pz = valid("dcl-project-zip")
    out.append(
        Case(
            "projectzip-spots-nan",
            k,
            "project.zip",
            rezip(pz, replace={"spots.csv": b"x,y\nnan,1\n"}),
            CORRUPT,
            ("dcl-project-zip",),
        )
    )
    out.append(
        Case(
            "projectzip-spots-ragged",
            k,
            "project.zip",
            rezip(pz, replace={"spots.csv": b"x,y\n1,2,3\n"}),
            CORRUPT,
            ("dcl-project-zip",),
        )
    )
    out.append(
        Case(
            "exportzip-spots-huge-field",
            k,
            "export.zip",
            rezip(valid("dcl-export-zip"), replace={"spots.csv": b"x,y\n" + b"9" * 200000 + b",1\n"}),
            CORRUPT,
            ("dcl-export-zip",),
        )
    )
    out.append(
        Case(
            "spots-csv-bom",
            "valid but odd",
            "spots.csv",
            b"\xef\xbb\xbfx,y\r\n1.5,2.5\r\n3,4\r\n",
            OK,
            ("spots-csv",),
            out_name="out.csv",
            check={"spots": 2},
        )
    )
    out.append(
        Case(
            "spots-csv-formula",
            "valid but odd",
            "spots.csv",
            b'x,y,note\n1.5,2.5,=HYPERLINK("http://x")\n3,4,@SUM(A1)\n',
            OK,
            ("spots-csv",),
            out_name="out.csv",
            check={"spots": 2, "no_formula": True},
        )
    )
    return out


def _dat() -> list[Case]:
    k = ".dat size mismatch"
    ez = valid("dcl-export-zip")
    members = dict(zip_members(ez))
    return [
        Case(
            "exportzip-raw-short",
            k,
            "export.zip",
            rezip(ez, replace={"raw.dat": members["raw.dat"][:-1]}),
            CORRUPT,
            ("dcl-export-zip",),
        ),
        Case(
            "exportzip-raw-long",
            k,
            "export.zip",
            rezip(ez, replace={"raw.dat": members["raw.dat"] + b"\0" * 4}),
            CORRUPT,
            ("dcl-export-zip",),
        ),
        Case(
            "exportzip-labeled-short",
            k,
            "export.zip",
            rezip(ez, replace={"labeled.dat": members["labeled.dat"][:100]}),
            CORRUPT,
            ("dcl-export-zip",),
        ),
        Case(
            "exportzip-labeled-missing", k, "export.zip", rezip(ez, drop=("labeled.dat",)), CORRUPT, ("dcl-export-zip",)
        ),
        Case(
            "exportzip-dtype-unknown",
            k,
            "export.zip",
            rezip(
                ez,
                replace={
                    "dimensions.json": b'{"width": 10, "height": 12, "duration": 3, "numChannels": 2, '
                    b'"numFeatures": 1, "dtype": "BigInt64Array"}'
                },
            ),
            UNSUPPORTED + CORRUPT,
            ("dcl-export-zip",),
        ),
        Case(
            "exportzip-zero-width",
            k,
            "export.zip",
            rezip(
                ez,
                replace={
                    "dimensions.json": b'{"width": 0, "height": 12, "duration": 3, "numChannels": 2, '
                    b'"numFeatures": 1, "dtype": "Uint8Array"}'
                },
            ),
            CORRUPT,
            ("dcl-export-zip",),
        ),
        Case("editzip-labeled-short", k, "edit.zip", edit_zip(labeled=b"\0" * 7), CORRUPT, ("dcl-edit-zip",)),
        Case("editzip-labeled-long", k, "edit.zip", edit_zip(labeled=b"\0" * (4 * 30 + 4)), CORRUPT, ("dcl-edit-zip",)),
        Case(
            "editzip-raw-short",
            k,
            "edit.zip",
            edit_zip(
                edit={
                    "width": 5,
                    "height": 6,
                    "action": "threshold",
                    "args": {"x1": 0, "y1": 0, "x2": 4, "y2": 5, "cell": 2},
                    "writeMode": "overlap",
                },
                raw=b"\0" * 29,
            ),
            CORRUPT,
            ("dcl-edit-zip",),
        ),
        Case(
            "editzip-negative-size",
            k,
            "edit.zip",
            edit_zip(width=-5, height=-6, labeled=b""),
            CORRUPT,
            ("dcl-edit-zip",),
        ),
    ]


def _truncation() -> list[Case]:
    k = "truncation"
    out = []
    for fmt, name, readers in (
        ("tiff", "cut.ome.tif", ("tiff",)),
        ("png", "cut.png", ("png",)),
        ("npy", "cut.npy", ("npy",)),
        ("npz", "cut.npz", ("npz",)),
        ("trk", "cut.trk", ("trk",)),
        ("dcl-project-zip", "cut.zip", ("dcl-project-zip",)),
        ("dcl-export-zip", "cut.zip", ("dcl-export-zip",)),
        ("label-zip", "cut.zip", ("label-zip",)),
    ):
        data = valid(fmt)
        for frac in (2, 10):
            cut = data[: len(data) * (frac - 1) // frac]
            out.append(
                Case(
                    f"{fmt}-truncated-{frac - 1}of{frac}",
                    k,
                    name,
                    cut,
                    (*CORRUPT, "NoReaderError"),
                    readers,
                    kwargs={"format": fmt},
                )
            )
    plain = trk(gz=False)
    # tarfile pads to 10 KiB: cut inside the last member's data (5 blocks in), not in the padding.
    out.append(Case("trk-plain-truncated", k, "cut.trk", plain[: 512 * 5 + 100], CORRUPT, ("trk",)))
    out.append(Case("trk-gzip-trailing-garbage", k, "junk.trk", trk() + b"garbage", (*CORRUPT, OK), ("trk",)))
    out.append(Case("empty-file", k, "empty.tif", b"", ("NoReaderError", *CORRUPT), ("tiff",)))
    out.append(Case("edit-zip-empty", k, "edit.zip", zip_bytes([]), ("NoReaderError", *CORRUPT), ("dcl-edit-zip",)))
    return out


def _mid_write() -> list[Case]:
    """Files whose third plane is broken: lazy readers accept them, the writer fails while streaming."""
    k = "failure mid-write"
    good = zlib.compress(bytes(range(16)))
    broken = ifd_tiff(pages=3, compression=8, strip=[good, good, b"not deflate data"])
    out = []
    targets = (("out.zip", {}), ("out.ome.tif", {"to_format": "tiff"}), ("out.npz", {}), ("out.trk", {}))
    for target, to in (*targets, ("out.ome.zarr", {})):
        out.append(
            Case(
                f"mid-write-{target}",
                k,
                "broken.tif",
                broken,
                CORRUPT,
                ("tiff",),
                out_name=target,
                convert_kwargs=to,
                read_ok=True,
            )
        )
    pz = valid("dcl-project-zip")
    out.append(
        Case(
            "mid-write-projectzip-y",
            k,
            "project.zip",
            rezip(pz, replace={"y.ome.tiff": broken}),
            CORRUPT + INCONSISTENT,
            ("dcl-project-zip",),
            out_name="out.npz",
        )
    )
    return out


def _url_names() -> list[Case]:
    """Names imageio or a URL opener could resolve ("imageio:", "http:"): the file itself must be read."""
    k = "URL-like names"
    png = png_raw(10, 12, idat=zlib.compress((b"\x00" + bytes(range(10))) * 12))
    return [
        Case("png-named-imageio", k, "imageio:chelsea.png", png, OK, ("png",), check={"X": [1, 1, 12, 10]}),
        Case("png-named-http", k, "http:example.png", png, OK, ("png",), check={"X": [1, 1, 12, 10]}),
        Case(
            "tiff-named-https",
            k,
            "https:example.tif",
            tiff(np.ones((12, 10), np.uint8)),
            OK,
            ("tiff",),
            check={"X": [1, 1, 12, 10]},
        ),
        Case(
            "png-labels-named-imageio",
            k,
            "image.png",
            png,
            OK,
            ("png",),
            labels=("imageio:astronaut.png", png),
            check={"y": [1, 1, 12, 10]},
        ),
    ]


def _symlink_target() -> list[Case]:
    return [
        Case(
            "symlinked-target",
            "symlinked target",
            "image.tif",
            tiff(np.zeros((4, 4), np.uint8)),
            ("InvalidOptionError",),
            ("tiff",),
            symlink_target=True,
        )
    ]


def _odd() -> list[Case]:
    k = "valid but odd"
    out = []
    img = (np.arange(3 * 12 * 10) % 251).astype(np.uint16).reshape(3, 12, 10)
    out.append(
        Case(
            "tiff-big-endian",
            k,
            "be.tif",
            tiff(img, byteorder=">"),
            OK,
            ("tiff",),
            check={"X": [1, 3, 12, 10], "dtype": "uint16"},
        )
    )
    out.append(Case("tiff-bigtiff", k, "big.tif", tiff(img, bigtiff=True), OK, ("tiff",), check={"X": [1, 3, 12, 10]}))
    out.append(
        Case(
            "tiff-big-endian-frames",
            k,
            "bet.tif",
            tiff(img, byteorder=">", metadata={"axes": "TYX"}),
            OK,
            ("tiff",),
            check={"X": [1, 3, 12, 10], "dtype": "uint16"},
        )
    )
    rgb = (np.arange(3 * 12 * 10) % 256).astype(np.uint8).reshape(3, 12, 10)
    out.append(
        Case(
            "tiff-planar-rgb",
            k,
            "planar.tif",
            tiff(rgb, photometric="rgb", planarconfig="separate"),
            OK,
            ("tiff",),
            check={"X": [3, 1, 12, 10]},
        )
    )
    mask = np.zeros((12, 10), bool)
    mask[2:5, 3:7] = True
    out.append(
        Case(
            "tiff-bool-mask-labels",
            k,
            "image.tif",
            tiff(img[0]),
            OK,
            ("tiff",),
            labels=("mask.tif", tiff(mask)),
            check={"X": [1, 1, 12, 10], "y": [1, 1, 12, 10]},
        )
    )
    tyx = {"axes": "TYX"}
    out.append(
        Case(
            "npy-big-endian",
            k,
            "be.npy",
            npy(img.astype(">u2")),
            OK,
            ("npy",),
            kwargs=tyx,
            check={"X": [1, 3, 12, 10], "dtype": "uint16"},
        )
    )
    out.append(
        Case(
            "npy-fortran",
            k,
            "f.npy",
            npy(np.asfortranarray(img)),
            OK,
            ("npy",),
            kwargs=tyx,
            check={"X": [1, 3, 12, 10]},
        )
    )
    out.append(
        Case(
            "npy-bool-labels",
            k,
            "image.npy",
            npy(img[0]),
            OK,
            ("npy",),
            labels=("mask.npy", npy(mask)),
            check={"y": [1, 1, 12, 10]},
        )
    )
    out.append(
        Case(
            "npy-big-endian-float64",
            k,
            "f8.npy",
            npy(img.astype(">f8")),
            OK,
            ("npy",),
            kwargs=tyx,
            check={"dtype": "float64"},
        )
    )
    out.append(
        Case(
            "trk-uncompressed",
            k,
            "plain.trk",
            trk(gz=False),
            OK,
            ("trk",),
            check={"X": [1, 2, 6, 5], "y": [1, 2, 6, 5]},
        )
    )
    empty = trk(tracked=np.zeros((2, 6, 5, 1), np.int32), lineage=b"{}")
    out.append(Case("trk-empty-lineage", k, "empty.trk", empty, OK, ("trk",), check={"y": [1, 2, 6, 5]}))
    out.append(Case("lineage-empty", k, "lineage.json", b"{}", OK, ("lineage-json",), out_name="out.json"))
    out.append(
        Case("tiff-non-ascii-name", k, "donn\u00e9es_\u6838.tif", tiff(img), OK, ("tiff",), check={"X": [1, 3, 12, 10]})
    )
    pz = valid("dcl-project-zip")
    nested = zip_bytes(
        [(f"donn\u00e9es \u6838/{n}", d) for n, d in zip_members(pz)]
        + [("__MACOSX/donn\u00e9es \u6838/._X.ome.tiff", b"junk")]
    )
    out.append(
        Case(
            "projectzip-non-ascii-folder",
            k,
            "proj\u00e9t.zip",
            nested,
            OK,
            ("dcl-project-zip",),
            check={"X": [2, 3, 12, 10], "y": [1, 3, 12, 10]},
        )
    )
    gray16 = png_raw(10, 12, depth=16, idat=zlib.compress((b"\x00" + bytes(range(20))) * 12))
    out.append(Case("png-16-bit", k, "g16.png", gray16, OK, ("png",), check={"X": [1, 1, 12, 10], "dtype": "uint16"}))
    return out


# ------------------------------------------------------------------ OME-Zarr stores (folder inputs)
def ome_zarr_tree(version: str = "0.5", edit: Any = None, **options: Any) -> dict[str, bytes]:
    """The files of a small OME-Zarr store written by dlformats; ``edit(folder)`` may change it first."""
    import tempfile
    import warnings
    from pathlib import Path

    import dlformats
    from dlformats.testing import make_project

    project = make_project(channels=2, frames=3, height=12, width=10)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        store = Path(tmp) / "s.ome.zarr"
        dlformats.write(project, store, options={"version": version, **options})
        if edit is not None:
            edit(store)
        return {p.relative_to(store).as_posix(): p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file()}


def retree(
    tree: dict[str, bytes],
    *,
    edit: dict[str, Any] | None = None,
    replace: dict[str, bytes] | None = None,
    drop: tuple[str, ...] = (),
) -> dict[str, bytes]:
    """A copy of a store's files with JSON documents changed (``edit``: key -> function of the
    parsed document), files replaced or added, and files (or every file under a folder) dropped."""
    out = {k: v for k, v in tree.items() if not any(k == d or k.startswith(d + "/") for d in drop)}
    for key, change in (edit or {}).items():
        doc = json.loads(out[key])
        change(doc)
        out[key] = json.dumps(doc).encode()
    out.update(replace or {})
    return out


def _ome_attrs(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["attributes"]["ome"] if "attributes" in doc else doc


def _sharded(store: Any) -> None:
    """Rewrite level 0 of the image as a sharded zarr v3 array (4 chunks of 6 x 5 per shard)."""
    import shutil

    import zarr

    data = zarr.open_array(str(store / "0"), mode="r")[:]
    shutil.rmtree(store / "0")
    array = zarr.open_group(str(store), mode="r+").create_array(
        "0", shape=data.shape, dtype=data.dtype, chunks=(1, 1, 6, 5), shards=(1, 1, 12, 10), dimension_names="tcyx"
    )
    array[:] = data


def _image_only_level_0(store: Any) -> None:
    """ome-zarr-py's quirks: a 0.5 labels group without version, more label levels than image levels."""
    root, labels = store / "zarr.json", store / "labels" / "zarr.json"
    doc = json.loads(root.read_text())
    doc["attributes"]["ome"]["multiscales"][0]["datasets"] = doc["attributes"]["ome"]["multiscales"][0]["datasets"][:1]
    root.write_text(json.dumps(doc))
    doc = json.loads(labels.read_text())
    del doc["attributes"]["ome"]["version"]
    labels.write_text(json.dumps(doc))


def _channel_axis_as_z(store: Any) -> None:
    """Call the channel axis a z space axis everywhere: the image then has T and Z longer than one."""
    for meta in store.rglob("zarr.json"):
        doc = json.loads(meta.read_text())
        if doc.get("dimension_names"):
            doc["dimension_names"] = ["z" if n == "c" else n for n in doc["dimension_names"]]
        for ms in doc.get("attributes", {}).get("ome", {}).get("multiscales", []):
            ms["axes"] = [{"name": "z", "type": "space"} if a["name"] == "c" else a for a in ms["axes"]]
        meta.write_text(json.dumps(doc))


def _ome_zarr() -> list[Case]:
    """OME-Zarr stores: folders whose files (metadata, chunks, links) are hostile one at a time."""
    v5 = ome_zarr_tree("0.5")
    v4 = ome_zarr_tree("0.4")
    gz = ome_zarr_tree("0.4", compression="gzip")
    chunk5, chunk4 = "0/c/1/0/0/0", "0/1/0/0/0"
    meta5, arr5, arr4 = "zarr.json", "0/zarr.json", "0/.zarray"
    fmt = ("ome-zarr",)
    name = "image.ome.zarr"

    def case(id: str, klass: str, tree: dict[str, bytes], expect: Any, **kw: Any) -> Case:
        return Case(id, klass, name, b"", expect, fmt, tree=tree, **kw)

    def first_dataset(path: str) -> Any:
        return lambda d: _ome_attrs(d)["multiscales"][0]["datasets"][0].update(path=path)

    def up(key: str) -> str:
        return "../" * (key.count("/") + 1)

    big_zstd = bytearray(b"\x28\xb5\x2f\xfd\xa0") + (1 << 40).to_bytes(8, "little") + b"\x01\x00\x00"
    blosc_liar = bytes([2, 1, 1, 1]) + (2**31 - 1).to_bytes(4, "little") + bytes(8) + bytes(8)
    deep = b'{"zarr_format": 3, "node_type": "group", "attributes": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001
    t_and_z = ome_zarr_tree("0.5", edit=_channel_axis_as_z)
    return [
        # path traversal
        case(
            "omezarr-dataset-path-escapes",
            "path traversal",
            retree(v5, edit={meta5: first_dataset("../../../etc")}),
            UNSAFE,
        ),
        case(
            "omezarr-label-name-escapes",
            "path traversal",
            retree(v5, edit={"labels/zarr.json": lambda d: _ome_attrs(d).update(labels=["../../x"])}),
            UNSAFE,
        ),
        # links leading out of the store
        case(
            "omezarr-chunk-symlink-outside",
            "links/devices",
            retree(v5, drop=(chunk5,)),
            UNSAFE,
            companions={"outside.bin": bytes(240)},
            links={chunk5: up(chunk5) + "outside.bin"},
        ),
        case(
            "omezarr-metadata-symlink-outside",
            "links/devices",
            retree(v5, drop=("labels/zarr.json",)),
            UNSAFE,
            companions={"outside.json": v5["labels/zarr.json"]},
            links={"labels/zarr.json": "../../outside.json"},
        ),
        case(
            "omezarr-store-is-a-link-outside",
            "links/devices",
            v5,
            UNSAFE,
            links={".": "../outside.ome.zarr"},
        ),
        # declared sizes
        case(
            "omezarr-shape-huge",
            "declared sizes/bombs",
            retree(v5, edit={arr5: lambda d: d.update(shape=[3, 2, 10**7, 10**7])}),
            LIMIT,
        ),
        case(
            "omezarr-chunk-huge",
            "declared sizes/bombs",
            retree(
                v5,
                edit={arr5: lambda d: d["chunk_grid"]["configuration"].update(chunk_shape=[3, 2, 1 << 16, 1 << 16])},
            ),
            LIMIT,
        ),
        case(
            "omezarr-one-pixel-chunks",
            "declared sizes/bombs",
            retree(
                v4,
                edit={arr4: lambda d: d.update(shape=[3, 2, 8192, 8192], chunks=[1, 1, 1, 1])},
            ),
            UNSUPPORTED + LIMIT,
        ),
        # decompression bombs
        case(
            "omezarr-gzip-chunk-bomb",
            "deflate bombs",
            retree(gz, replace={chunk4: zlib.compress(bytes(16 * MiB), 9)}),
            CORRUPT,
        ),
        case(
            "omezarr-gzip-chunk-bomb-large",
            "deflate bombs",
            retree(gz, replace={chunk4: zlib.compress(bytes(128 * MiB), 1)}),
            CORRUPT,
        ),
        case(
            "omezarr-zstd-declares-a-terabyte", "deflate bombs", retree(v5, replace={chunk5: bytes(big_zstd)}), CORRUPT
        ),
        case(
            "omezarr-blosc-declares-2gb",
            "deflate bombs",
            retree(ome_zarr_tree("0.5", compression="blosc"), replace={chunk5: blosc_liar}),
            CORRUPT,
        ),
        # pickles
        case(
            "omezarr-v2-pickle-compressor",
            "pickles",
            retree(v4, edit={arr4: lambda d: d.update(compressor={"id": "pickle"})}),
            UNSUPPORTED,
        ),
        case(
            "omezarr-v2-object-dtype",
            "pickles",
            retree(v4, edit={arr4: lambda d: d.update(dtype="|O", filters=[{"id": "pickle"}])}),
            UNSUPPORTED,
        ),
        case(
            "omezarr-v3-numcodecs-pickle",
            "pickles",
            retree(v5, edit={arr5: lambda d: d["codecs"].append({"name": "numcodecs.pickle"})}),
            UNSUPPORTED,
        ),
        # JSON
        case(
            "omezarr-metadata-nan",
            "JSON",
            retree(v5, replace={arr5: v5[arr5].replace(b'"fill_value": 0', b'"fill_value": NaN')}),
            CORRUPT,
        ),
        case("omezarr-metadata-deep", "JSON", retree(v5, replace={meta5: deep}), CORRUPT),
        case(
            "omezarr-metadata-duplicate-keys",
            "JSON",
            retree(
                v5, replace={meta5: v5[meta5].replace(b'"zarr_format": 3', b'"zarr_format": 3, "zarr_format": 2', 1)}
            ),
            CORRUPT,
        ),
        case(
            "omezarr-dlformats-key-bad-cells",
            "JSON",
            retree(v5, edit={meta5: lambda d: d["attributes"]["dlformats"].update(cells={"value": ["x"]})}),
            CORRUPT,
        ),
        case(
            "omezarr-metadata-too-large",
            "JSON",
            v5,
            LIMIT,
            limits={"json_bytes": 512},
        ),
        # truncation
        case("omezarr-chunk-truncated", "truncation", retree(v5, replace={chunk5: v5[chunk5][:9]}), CORRUPT),
        case("omezarr-chunk-empty", "truncation", retree(v4, replace={chunk4: b""}), CORRUPT),
        case("omezarr-array-metadata-truncated", "truncation", retree(v5, replace={arr5: v5[arr5][:40]}), CORRUPT),
        # missing planes
        case(
            "omezarr-missing-chunks-read-as-fill",
            "missing OME planes",
            retree(v5, drop=("0/c/2", "labels/feature_0/0/c/2")),
            OK,
            check={"X": [2, 3, 12, 10], "y": [1, 3, 12, 10]},
        ),
        case("omezarr-missing-array", "missing OME planes", retree(v5, drop=("0",)), CORRUPT),
        case(
            "omezarr-axes-disagree-with-array",
            "missing OME planes",
            retree(v4, edit={".zattrs": lambda d: d["multiscales"][0]["axes"].pop(1)}),
            CORRUPT,
        ),
        # ambiguity
        case("omezarr-t-and-z", "ambiguous names", t_and_z, ("AmbiguousInputError",)),
        case(
            "omezarr-two-multiscales",
            "ambiguous names",
            retree(v5, edit={meta5: lambda d: _ome_attrs(d)["multiscales"].append(_ome_attrs(d)["multiscales"][0])}),
            ("AmbiguousInputError",),
        ),
        # valid but odd
        case(
            "omezarr-ome-zarr-py-quirks",
            "valid but odd",
            ome_zarr_tree("0.5", levels=2, edit=_image_only_level_0),
            OK,
            check={"X": [2, 3, 12, 10], "y": [1, 3, 12, 10]},
        ),
        case(
            "omezarr-sharded",
            "valid but odd",
            ome_zarr_tree("0.5", edit=_sharded),
            OK,
            check={"X": [2, 3, 12, 10], "y": [1, 3, 12, 10]},
        ),
        case(
            "omezarr-v04-blosc",
            "valid but odd",
            ome_zarr_tree("0.4", compression="blosc"),
            OK,
            check={"X": [2, 3, 12, 10]},
        ),
        # failures while writing, from an OME-Zarr and into one
        case(
            "omezarr-mid-write-broken-chunk",
            "failure mid-write",
            retree(v5, replace={"0/c/2/1/0/0": b"not zstd data"}),
            CORRUPT,
            read_ok=True,
        ),
        Case(
            "symlinked-target-ome-zarr",
            "symlinked target",
            "image.tif",
            tiff(np.zeros((4, 4), np.uint8)),
            ("InvalidOptionError",),
            ("tiff",),
            symlink_target=True,
            out_name="out.ome.zarr",
        ),
    ]


def tiff_ifd(tags: list[tuple[int, int, int, int]], data: bytes = b"") -> bytes:
    """A one-page little-endian TIFF with exactly ``tags`` (single values) and ``data`` at offset 8."""
    body = b"II*\x00" + struct.pack("<I", 8 + len(data) + len(data) % 2) + data + b"\x00" * (len(data) % 2)
    ifd = struct.pack("<H", len(tags))
    for tag, typ, count, value in sorted(tags):
        ifd += struct.pack("<HHII", tag, typ, count, value)
    return body + ifd + struct.pack("<I", 0)


def _fuzz_findings() -> list[Case]:
    """Inputs the fuzzers found crashing or exhausting a reader, rebuilt by hand (see fuzz/README.md)."""
    out = []
    # npy of shape (0, 6, 5, 2): LazyArray indexed a zero-length axis (IndexError) when read.
    empty = npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 6, 5, 2), }")
    out.append(Case("fuzz-npy-zero-length-axis", "declared sizes/bombs", "empty.npy", empty, UNSUPPORTED, ("npy",)))
    out.append(
        Case(
            "fuzz-npz-zero-length-axis",
            "declared sizes/bombs",
            "empty.npz",
            zip_bytes([("X.npy", empty)]),
            UNSUPPORTED,
            ("npz",),
        )
    )
    out.append(
        Case(
            "fuzz-trk-zero-frames",
            "declared sizes/bombs",
            "empty.trk",
            trk(raw=np.zeros((0, 6, 5, 1), np.uint16), tracked=np.zeros((0, 6, 5, 1), np.int32)),
            UNSUPPORTED + CORRUPT,
            ("trk",),
        )
    )
    # A zero dimension beside dimensions whose product overflows int64: numpy's "array is too big"
    # ValueError escaped the npy parser (the byte count, 0, passed every check).
    zero_big = npy_raw("{'descr': '|u1', 'fortran_order': False, 'shape': (3, 0, 4444444444444444444, 5), }")
    out.append(
        Case("fuzz-npy-zero-and-overflow", "declared sizes/bombs", "zero.npy", zero_big, CORRUPT + LIMIT, ("npy",))
    )
    out.append(
        Case(
            "fuzz-trk-zero-and-overflow",
            "declared sizes/bombs",
            "zero.trk",
            trk(raw=zero_big),
            CORRUPT + LIMIT + UNSUPPORTED,
            ("trk",),
        )
    )
    # Long runs of digits that are not numbers: the number pattern backtracked quadratically
    # (4 s for 62,000 digits); ten 130,000-digit fields would take minutes, past the time limit.
    digits = b"1" * 130_000 + b"a"
    header = b"x,y," + b",".join(b"c%d" % i for i in range(10)) + b"\n"
    slow = header + b"1,2," + b",".join([digits] * 10) + b"\n"
    out.append(
        Case("fuzz-spots-csv-digit-runs", "CSV", "spots.csv", slow, (*CORRUPT, OK), ("spots-csv",), out_name="out.csv")
    )
    out.append(
        Case(
            "fuzz-spots-csv-digit-run-x",
            "CSV",
            "spots.csv",
            b"x,y\n" + digits + b",2\n",
            CORRUPT,
            ("spots-csv",),
            out_name="out.csv",
        )
    )
    # A gzip tar whose deflate stream breaks after 38 KiB (past the 4 KiB the trk sniffer inflates):
    # zlib.error escaped SafeTar while it walked the member headers.
    import random

    noise = random.Random(5).randbytes(65536)
    plain = tar_bytes([("lineage.json", b"{}"), ("notes.bin", noise), ("raw.npy", b"x")], gz=False)
    deflate = zlib.compressobj(6, zlib.DEFLATED, 31)
    broken_gz = deflate.compress(plain[:40000]) + deflate.flush(zlib.Z_FULL_FLUSH) + b"\x07" + bytes(64)
    out.append(Case("fuzz-trk-broken-deflate-block", "truncation", "broken.trk", broken_gz, CORRUPT, ("trk",)))
    out.append(Case("fuzz-trks-broken-deflate-block", "truncation", "broken.trks", broken_gz, CORRUPT, ("trks",)))
    # The end record's central-directory offset raised by 1000: zipfile's arithmetic gives the first
    # member a negative local-header offset, and mapping that stored member in place failed with
    # "negative seek value" (label-zip fuzz finding).
    for fmt, name in (("label-zip", "shifted.zip"), ("dcl-project-zip", "shifted.zip")):
        shifted = bytearray(rezip(valid(fmt), method=zipfile.ZIP_STORED))
        end = shifted.rfind(b"PK\x05\x06")
        struct.pack_into("<I", shifted, end + 16, struct.unpack_from("<I", shifted, end + 16)[0] + 1000)
        out.append(Case(f"fuzz-{fmt}-negative-header-offset", "truncation", name, bytes(shifted), CORRUPT, (fmt,)))
    # A Photometric tag of type BYTE with no value: tifffile gives b'' and int(b'') escaped the
    # TIFF reader while it named RGB channels (tiff fuzz finding, second round).
    no_value = [
        (256, 4, 1, 4),
        (257, 4, 1, 4),
        (258, 3, 1, 8),
        (259, 3, 1, 1),
        (262, 1, 0, 0),
        (273, 4, 1, 8),
        (277, 3, 1, 4),
        (278, 4, 1, 4),
        (279, 4, 1, 64),
    ]
    out.append(
        Case(
            "fuzz-tiff-photometric-without-value",
            "truncation",
            "rgba.tif",
            tiff_ifd(no_value, bytes(64)),
            (*CORRUPT, OK),
            ("tiff",),
        )
    )
    # PNG ending inside an acTL chunk: struct.error escaped the header scan.
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 0, 0, 0, 0))
    actl = b"\x89PNG\r\n\x1a\n" + ihdr + struct.pack(">I4s", 8, b"acTL") + b"\x00\x00"
    out.append(Case("fuzz-png-actl-at-eof", "truncation", "apng.png", actl, CORRUPT, ("png",)))
    # A tiled TIFF whose TileLength is 3,841,983,488: tifffile allocated the whole tile (7 GiB) to decode it.
    tags = [
        (256, 4, 1, 64),
        (257, 4, 1, 64),
        (258, 3, 1, 16),
        (259, 3, 1, 5),
        (262, 3, 1, 1),
        (277, 3, 1, 1),
        (322, 4, 1, 64),
        (323, 4, 1, 3841983488),
        (324, 4, 1, 8),
        (325, 4, 1, 16),
    ]
    out.append(
        Case("fuzz-tiff-huge-tile", "declared sizes/bombs", "tiled.tif", tiff_ifd(tags, bytes(16)), LIMIT, ("tiff",))
    )
    strips = [
        (256, 4, 1, 64),
        (257, 4, 1, 64),
        (258, 3, 1, 8),
        (259, 3, 1, 8),
        (262, 3, 1, 1),
        (273, 4, 1, 8),
        (277, 3, 1, 1),
        (278, 4, 1, 4000000000),
        (279, 4, 1, 16),
    ]
    out.append(
        Case(
            "fuzz-tiff-huge-rowsperstrip",
            "declared sizes/bombs",
            "strips.tif",
            tiff_ifd(strips, bytes(16)),
            LIMIT + CORRUPT,
            ("tiff",),
        )
    )
    # A central directory asking for zip version 6.4 (found by the hypothesis mutations): zipfile's
    # NotImplementedError escaped SafeZip.
    for fmt, name in (("npz", "v64.npz"), ("dcl-project-zip", "v64.zip")):
        data = bytearray(valid(fmt))
        struct.pack_into("<H", data, data.find(b"PK\x01\x02") + 6, 64)
        out.append(
            Case(f"fuzz-{fmt}-zip-version-6.4", "encrypted/unknown compression", name, bytes(data), UNSUPPORTED, (fmt,))
        )
    pz = valid("dcl-project-zip")
    out.append(
        Case(
            "fuzz-projectzip-huge-tile",
            "declared sizes/bombs",
            "project.zip",
            rezip(pz, replace={"y.ome.tiff": tiff_ifd(tags, bytes(16))}, method=zipfile.ZIP_STORED),
            LIMIT + CORRUPT + INCONSISTENT,
            ("dcl-project-zip",),
        )
    )
    return out


@functools.lru_cache(maxsize=1)
def all_cases() -> tuple[Case, ...]:
    """Every case (built once)."""
    groups = (
        _traversal,
        _links,
        _sizes,
        _streamed,
        _ambiguous,
        _encrypted,
        _nested,
        _nested_members,
        _pickles,
        _ifd_loops,
        _missing_planes,
        _deflate,
        _image_bombs,
        _json,
        _csv,
        _dat,
        _truncation,
        _symlink_target,
        _mid_write,
        _url_names,
        _odd,
        _fuzz_findings,
        _ome_zarr,
        _tracking,
    )
    cases = tuple(c for group in groups for c in group())
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    assert all(c.klass in CLASSES for c in cases)
    return cases


def counts() -> dict[str, int]:
    """How many cases cover each class."""
    out = dict.fromkeys(CLASSES, 0)
    for case in all_cases():
        out[case.klass] += 1
    return out


# ------------------------------------------------------------------ tracking folders: CTC and geff
def folder_tree(fmt: str, name: str, project: Any = None, mutate: Any = None, **options: Any) -> dict[str, bytes]:
    """The files of a folder written by dlformats' ``fmt`` writer, by path inside it (``mutate(folder)``
    may change the folder first)."""
    import tempfile
    import warnings
    from pathlib import Path

    import dlformats
    from dlformats.testing import make_project

    project = project or make_project(channels=1, frames=3, height=12, width=10)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = Path(tmp) / name
        dlformats.write(project, out, format=fmt, options=options)
        if mutate is not None:
            mutate(out)
        return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def ctc_tree(masks: list[Any], tracks: str | bytes, *, prefix: str = "mask", track: str = "res_track.txt") -> dict:
    """A CTC folder: ``masks[t]`` (arrays, ready TIFF bytes, or None for a missing frame) and a track file."""
    files = {}
    for t, mask in enumerate(masks):
        if mask is not None:
            files[f"{prefix}{t:03d}.tif"] = mask if isinstance(mask, bytes) else tiff(mask)
    files[track] = tracks.encode() if isinstance(tracks, str) else tracks
    return files


def _json_edit(tree: dict[str, bytes], member: str, edit: Any) -> dict[str, bytes]:
    doc = json.loads(tree[member])
    edit(doc)
    return {**tree, member: json.dumps(doc).encode()}


def _tracking() -> list[Case]:
    """Cell Tracking Challenge folders and geff groups: rules broken, sizes declared, paths, codecs."""
    k = "tracking rules"
    ctc, geff = ("ctc",), ("geff",)
    one = np.zeros((8, 9), np.uint16)
    one[1:4, 1:4] = 1
    two = one.copy()
    two[5:7, 5:7] = 2
    out = [
        Case("ctc-missing-frame", k, "01_RES", b"", INCONSISTENT, ctc, tree=ctc_tree([one, None, one], "1 0 2 0\n")),
        Case(
            "ctc-track-file-and-masks-disagree",
            k,
            "01_RES",
            b"",
            INCONSISTENT,
            ctc,
            tree=ctc_tree([two, one], "1 0 1 0\n3 0 1 0\n"),  # 2 only in the masks, 3 only in the file
        ),
        Case(
            "ctc-parent-ends-after-child-begins",
            k,
            "01_RES",
            b"",
            INCONSISTENT,
            ctc,
            tree=ctc_tree([two, two], "1 0 1 0\n2 0 1 1\n"),
        ),
        Case("ctc-duplicate-labels", k, "01_RES", b"", INCONSISTENT, ctc, tree=ctc_tree([one], "1 0 0 0\n1 0 0 0\n")),
        Case(
            "ctc-masks-of-different-shapes",
            k,
            "01_RES",
            b"",
            INCONSISTENT,
            ctc,
            tree=ctc_tree([one, np.pad(one, 1)], "1 0 1 0\n"),
        ),
        Case(
            "ctc-float-masks",
            k,
            "01_RES",
            b"",
            UNSUPPORTED,
            ctc,
            tree=ctc_tree([one.astype(np.float32)] * 2, "1 0 1 0\n"),
        ),
        Case(
            "ctc-track-file-not-numbers",
            "CSV",
            "01_RES",
            b"",
            CORRUPT,
            ctc,
            tree=ctc_tree([one], b"1 0 0 0\n=cmd|' /C calc'!A0\n\xff\xfe 1 2\n"),
        ),
        Case(
            "ctc-track-file-too-large",
            "declared sizes/bombs",
            "01_RES",
            b"",
            LIMIT,
            ctc,
            tree=ctc_tree([one], "1 0 0 0\n" * 200),
            limits={"member_bytes": 1000},
        ),
        Case(
            "ctc-truncated-mask",
            "truncation",
            "01_RES",
            b"",
            CORRUPT,
            ctc,
            tree=ctc_tree([one, tiff(one)[:150]], "1 0 1 0\n"),
        ),
        Case(
            "ctc-mask-image-bomb",
            "image bombs",
            "01_RES",
            b"",
            LIMIT + CORRUPT,
            ctc,
            tree=ctc_tree([ifd_tiff(width=100000, height=100000, strip=b"\0" * 16)], "1 0 0 0\n"),
        ),
        Case(
            "ctc-frame-number-twice",
            "ambiguous names",
            "01_RES",
            b"",
            INCONSISTENT,
            ctc,
            tree={**ctc_tree([one, one], "1 0 1 0\n"), "mask1.tif": tiff(one)},
        ),
        Case(
            "ctc-two-track-files",
            "ambiguous names",
            "01_RES",
            b"",
            ("AmbiguousInputError",),
            ctc,
            tree={**ctc_tree([one], "1 0 0 0\n"), "man_track.txt": b"1 0 0 0\n", "man_track000.tif": tiff(one)},
        ),
        Case(
            "ctc-tabs-and-four-digit-frames",
            "valid but odd",
            "01_RES",
            b"",
            OK,
            ctc,
            tree={
                "mask0000.tif": tiff(two),
                "mask0001.tif": tiff(one),
                "res_track.txt": b"1\t0\t1\t0\r\n2\t0\t0\t0\r\n",
            },
            out_name="out.trk",
            check={"y": [1, 2, 8, 9]},
        ),
    ]
    base = folder_tree("geff", "a.geff")

    def meta(edit: Any) -> dict[str, bytes]:
        return _json_edit(base, ".zattrs", lambda doc: edit(doc["geff"]))

    def array(member: str, edit: Any) -> dict[str, bytes]:
        return _json_edit(base, member, edit)

    def backward(folder: Any) -> None:
        import zarr

        edges = zarr.open_array(str(folder / "edges" / "ids"), mode="r+")
        pairs = edges[...]
        pairs[0] = pairs[0][::-1]
        edges[...] = pairs

    seg_gone = {name: data for name, data in base.items() if not name.startswith("segmentation/")}
    out += [
        Case(
            "geff-unknown-metadata-key",
            "JSON",
            "a.geff",
            b"",
            CORRUPT,
            geff,
            tree=meta(lambda m: m.update(colour="blue")),
        ),
        Case("geff-attributes-not-json", "JSON", "a.geff", b"", CORRUPT, geff, tree={**base, ".zattrs": b"{'geff':"}),
        Case("geff-missing-segmentation", "truncation", "a.geff", b"", CORRUPT, geff, tree=seg_gone),
        Case(
            "geff-segmentation-path-leaves-the-store",
            "path traversal",
            "a.geff",
            b"",
            UNSAFE,
            geff,
            tree=meta(lambda m: m["related_objects"][0].update(path="../../../../etc")),
        ),
        Case(
            "geff-property-name-traversal",
            "path traversal",
            "a.geff",
            b"",
            UNSAFE,
            geff,
            tree=meta(
                lambda m: m["node_props_metadata"].update(
                    {"../../x": {"identifier": "../../x", "dtype": "int64", "varlength": False}}
                )
            ),
        ),
        Case(
            "geff-pickle-codec",
            "pickles",
            "a.geff",
            b"",
            UNSUPPORTED,
            geff,
            tree=array("nodes/props/cell/values/.zarray", lambda a: a.update(dtype="|O", filters=[{"id": "pickle"}])),
        ),
        Case(
            "geff-declared-node-count",
            "declared sizes/bombs",
            "a.geff",
            b"",
            LIMIT,
            geff,
            tree=array("nodes/ids/.zarray", lambda a: a.update(shape=[10**12], chunks=[10**12])),
        ),
        Case(
            "geff-segmentation-chunk-bomb",
            "declared sizes/bombs",
            "a.geff",
            b"",
            LIMIT,
            geff,
            tree=array("segmentation/.zarray", lambda a: a.update(chunks=[3, 100_000, 100_000])),
        ),
        Case(
            "geff-edge-backward-in-time",
            k,
            "a.geff",
            b"",
            UNSUPPORTED,
            geff,
            tree=folder_tree("geff", "a.geff", mutate=backward),
        ),
        Case(
            "geff-zarr-v3",
            "valid but odd",
            "a.geff",
            b"",
            OK,
            geff,
            tree=folder_tree("geff", "a.geff", zarr_format=3),
            out_name="out.trk",
            check={"y": [1, 3, 12, 10]},
        ),
    ]
    # a label plane that breaks while the folder is written: nothing of it may remain
    good = zlib.compress(bytes(range(16)))
    broken = ifd_tiff(pages=3, compression=8, strip=[good, good, b"not deflate data"])
    for target, to in (("out_RES", "ctc"), ("out.geff", "geff")):
        out.append(
            Case(
                f"mid-write-{to}",
                "failure mid-write",
                "image.tif",
                ifd_tiff(pages=3),
                CORRUPT,
                ("tiff",),
                labels=("broken.tif", broken),
                out_name=target,
                convert_kwargs={"to_format": to},
                read_ok=True,
                out_folder=True,
            )
        )
    return out


if __name__ == "__main__":
    for name, n in counts().items():
        print(f"{n:4d}  {name}")
    print(f"{len(all_cases()):4d}  total")
