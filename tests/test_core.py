"""Core pieces every plugin leans on: strict JSON, safe archives, atomic writes, limits, the model, lazy arrays."""

from __future__ import annotations

import io
import itertools
import os
import stat
import tarfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlformats import (
    AmbiguousInputError,
    Cell,
    CellType,
    CorruptFileError,
    Division,
    InconsistentDataError,
    InvalidOptionError,
    LimitExceededError,
    Limits,
    Project,
    Spots,
    UnsafeArchiveError,
    UnsupportedFeatureError,
)
from dlformats.archive import SafeTar, SafeZip
from dlformats.arrays import LazyArray, check_axes
from dlformats.atomic import atomic_target
from dlformats.jsonio import dump_json, int_key, load_json
from dlformats.model import apply_export_rule, plan_export
from dlformats.sources import open_source


# ======================================================================= jsonio
@pytest.mark.parametrize(
    ("text", "why"),
    [
        (b'{"a": NaN}', "NaN"),
        (b"[Infinity]", "Infinity"),
        (b"[-Infinity]", "Infinity"),
        (b"[1e400]", "out of range"),
        (b"[-1e400]", "out of range"),
        (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
        (b'[{"v": {"x": 1, "x": 1}}]', "duplicate key 'x'"),
        (b"\xff\xfe[]", "not UTF-8"),
        (b"[1,]", "invalid JSON"),
    ],
)
def test_load_json_refuses_doubtful_documents(text, why):
    with pytest.raises(CorruptFileError, match=why) as info:
        load_json(text, path="p.zip", member="cells.json")
    assert (info.value.path, info.value.member) == ("p.zip", "cells.json")


def test_load_json_nesting_is_bounded():
    assert len(repr(load_json(b"[" * 64 + b"]" * 64))) == 128
    with pytest.raises(CorruptFileError, match="deeper than 64"):
        load_json(b"[" * 65 + b"]" * 65)
    with pytest.raises(CorruptFileError, match="nested"):
        load_json(b"[" * 200_000 + b"]" * 200_000)  # past the interpreter's recursion limit
    with pytest.raises(CorruptFileError, match="deeper than 3"):
        load_json(b'{"a": {"b": [[1]]}}', limits=Limits(json_depth=3))


def test_load_json_depth_ignores_brackets_inside_strings():
    # brackets in strings, escaped quotes and escaped backslashes do not nest anything
    doc = b'{"a": "[[[[{{{{", "b\\"[[[": [["\\\\", "]]]]"]], "c": "\\\\\\"[[["}'
    assert load_json(doc, limits=Limits(json_depth=3)) == {"a": "[[[[{{{{", 'b"[[[': [["\\", "]]]]"]], "c": '\\"[[['}
    with pytest.raises(CorruptFileError, match="deeper than 2"):
        load_json(doc, limits=Limits(json_depth=2))
    text = '["\u00e9[[[", [{"k": ["é"]}]]'  # str input, non-ASCII text
    assert load_json(text, limits=Limits(json_depth=4)) == ["é[[[", [{"k": ["é"]}]]
    with pytest.raises(CorruptFileError, match="deeper than 3"):
        load_json(text, limits=Limits(json_depth=3))


def test_load_json_accepts_plain_documents_and_a_bom():
    assert load_json(b'\xef\xbb\xbf{"a": [1, 2.5, "\\u00e9", null, true]}') == {"a": [1, 2.5, "é", None, True]}
    assert load_json('{"ünï": 1}') == {"ünï": 1}


def test_load_json_size_limit():
    with pytest.raises(LimitExceededError) as info:
        load_json(b"[" + b"1," * 100 + b"1]", limits=Limits(json_bytes=50), path="x.json")
    assert info.value.limit == "json_bytes" and info.value.path == "x.json"


@pytest.mark.parametrize("key", ["0", "17", "-3", "007"])
def test_int_key_accepts_plain_integers(key):
    assert int_key(key) == int(key)


ARABIC_INDIC_12, FULLWIDTH_1 = "\u0661\u0662", "\uff11"


@pytest.mark.parametrize("key", [" 1", "1 ", "1_0", "+1", ARABIC_INDIC_12, FULLWIDTH_1, "1.0", "", "0x1", "1\n", "1e3"])
def test_int_key_refuses_everything_else(key):
    with pytest.raises(CorruptFileError, match="not a plain integer") as info:
        int_key(key, what="label key", path="f.zip", member="cells.json")
    assert info.value.member == "cells.json"


def test_dump_json_numpy_values_and_no_nan():
    data = {"a": np.int64(3), "b": np.float32(0.5), "c": np.arange(3, dtype=np.uint8), "d": "é"}
    assert dump_json(data) == '{"a": 3, "b": 0.5, "c": [0, 1, 2], "d": "é"}'.encode()
    with pytest.raises(ValueError):
        dump_json([float("nan")])


# ======================================================================= archives
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


# ======================================================================= atomic writes
def test_atomic_success_replaces_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "out.zip"
    target.write_bytes(b"old")
    with atomic_target(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        tmp.write_bytes(b"new")
        assert target.read_bytes() == b"old"  # untouched until the end
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.zip"]


def test_atomic_failure_keeps_old_target_and_removes_temporary(tmp_path):
    target = tmp_path / "out.zip"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_target(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.zip"]
    with pytest.raises(KeyboardInterrupt), atomic_target(tmp_path / "new.zip") as tmp:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["out.zip"]


def test_atomic_folder_failure_keeps_old_folder(tmp_path):
    target = tmp_path / "out.zarr"
    target.mkdir()
    (target / "old").write_text("1")
    with pytest.raises(RuntimeError), atomic_target(target, directory=True) as tmp:
        (tmp / "new").write_text("2")
        raise RuntimeError
    assert [p.name for p in target.iterdir()] == ["old"]
    with atomic_target(target, directory=True) as tmp:
        (tmp / "new").write_text("2")
    assert [p.name for p in target.iterdir()] == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["out.zarr"]


def test_atomic_refuses_symlink_and_missing_folder(tmp_path):
    real = tmp_path / "real.zip"
    real.write_bytes(b"precious")
    link = tmp_path / "link.zip"
    link.symlink_to(real)
    with pytest.raises(InvalidOptionError, match="symbolic link"), atomic_target(link):
        pass
    assert real.read_bytes() == b"precious" and link.is_symlink()
    with pytest.raises(InvalidOptionError, match="does not exist"), atomic_target(tmp_path / "no" / "x.zip"):
        pass
    (tmp_path / "dir.zip").mkdir()
    with pytest.raises(InvalidOptionError, match="is a folder"), atomic_target(tmp_path / "dir.zip"):
        pass


def test_atomic_output_gets_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_target(tmp_path / "out.zip") as tmp:
            tmp.write_bytes(b"x")
        with atomic_target(tmp_path / "out.zarr", directory=True) as tmp:
            (tmp / "a").write_bytes(b"x")
    finally:
        os.umask(old)
    # Not the 0600 / 0700 of a private temporary file: others may read what the user wrote.
    assert stat.S_IMODE((tmp_path / "out.zip").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "out.zarr").stat().st_mode) == 0o755


# ======================================================================= limits
@pytest.mark.parametrize(
    ("items", "field", "value"),
    [
        (["array_bytes=1K"], "array_bytes", 1024),
        (["array-bytes=2m"], "array_bytes", 2 << 20),
        (["member_bytes=3G"], "member_bytes", 3 << 30),
        (["total_bytes=1T"], "total_bytes", 1 << 40),
        ([" json_depth = 7 "], "json_depth", 7),
        (["json_depth=0"], "json_depth", 0),
    ],
)
def test_limits_parse(items, field, value):
    limits = Limits.parse(items, base=Limits(csv_bytes=5))
    assert getattr(limits, field) == value and limits.csv_bytes == 5


@pytest.mark.parametrize(
    ("item", "why"),
    [
        ("nonsense=1", "bad limit"),
        ("array_bytes", "bad limit"),
        ("=5", "bad limit"),
        ("array_bytes=", "bad limit value"),
        ("array_bytes=1.5G", "bad limit value"),
        ("array_bytes=-1", "bad limit value"),
        ("array_bytes=12KB", "bad limit value"),
        ("array_bytes=" + ARABIC_INDIC_12, "bad limit value"),
        ("array_bytes=0x10", "bad limit value"),
        ("array_bytes=1_000", "bad limit value"),
    ],
)
def test_limits_parse_errors(item, why):
    with pytest.raises(InvalidOptionError, match=why) as info:
        Limits.parse([item])
    assert repr(item) in str(info.value)


def test_limit_check_carries_its_fields():
    Limits(array_bytes=10).check("array_bytes", 10, "fine")
    with pytest.raises(LimitExceededError) as info:
        Limits(array_bytes=10).check("array_bytes", 11, "frame too large", path="f.tif", member="p0")
    err = info.value
    assert (err.limit, err.allowed, err.found, err.path, err.member) == ("array_bytes", 10, 11, "f.tif", "p0")
    assert "--limit array_bytes=N" in str(err)


# ======================================================================= model
def base_project(**kw) -> Project:
    y = np.zeros((1, 2, 4, 4), np.int32)
    y[0, 0, :2, :2] = 1
    y[0, 1, 2:, 2:] = 2
    y[0, 1, :2, :2] = 1
    fields = {
        "X": np.zeros((2, 2, 4, 4), np.uint16),
        "y": y,
        "cells": [Cell(1, 1, 0), Cell(1, 1, 1), Cell(2, 2, 1)],
        "divisions": [],
        "channels": ["a", "b"],
    }
    fields.update(kw)
    return Project(**fields)


def problems(project: Project, pixels: bool = False) -> set[tuple[str, str]]:
    return {(p.part, p.severity) for p in project.validate(pixels=pixels)}


def test_sound_project_has_no_problems():
    project = base_project(divisions=[Division(1, [2], 1)])
    assert project.validate(pixels=True) == []
    assert project.check() == []


@pytest.mark.parametrize(
    ("changes", "expected", "text"),
    [
        ({"X": np.zeros((2, 4, 4), np.uint8)}, ("X", "error"), "4 dimensions"),
        ({"y": np.zeros((1, 2, 0, 4), np.int32)}, ("y", "error"), "empty axis"),
        ({"X": None, "y": None, "cells": None}, ("X", "error"), "neither"),
        ({"y": np.zeros((1, 2, 4, 4), np.complex64)}, ("y", "error"), "integers"),  # floats: checked per plane
        ({"y": np.zeros((1, 3, 4, 4), np.int32)}, ("y", "error"), "disagree"),
        ({"y": np.zeros((1, 2, 4, 5), np.int32)}, ("y", "error"), "disagree"),
        ({"channels": ["only one"]}, ("channels", "error"), "1 names for 2 channels"),
        ({"features": ["a", "b"]}, ("features", "error"), "2 names for 1 features"),
        ({"frame_axis": "Q"}, ("frame_axis", "error"), "T, Z or B"),
        ({"cells": [Cell(1, 1, 5)]}, ("cells", "error"), "frame 5 out of range"),
        ({"cells": [Cell(1, 1, 0, 3)]}, ("cells", "error"), "feature 3 out of range"),
        ({"cells": [Cell(0, 1, 0)]}, ("cells", "error"), "positive"),
        ({"cells": [Cell(1, 1, 0), Cell(1, 1, 0)]}, ("cells", "warning"), "more than once"),
        ({"divisions": [Division(1, [2], 9)]}, ("divisions", "error"), "frame out of range"),
        ({"divisions": [Division(1, [1, 2], 1)]}, ("divisions", "error"), "own daughter"),
        ({"divisions": [Division(1, [2, 2], 1)]}, ("divisions", "warning"), "listed twice"),
        ({"divisions": [Division(1, [7], 1)]}, ("divisions", "warning"), "absent from cells: [7]"),
        ({"divisions": [Division(1, [2], 1), Division(3, [2], 1)]}, ("divisions", "warning"), "daughter of both"),
        ({"cell_types": [CellType(1, "T cell", feature=4)]}, ("cell_types", "error"), "feature 4 out of range"),
        ({"spots": Spots([1.0, 2.0], [1.0], {})}, ("spots", "error"), "different lengths"),
    ],
)
def test_validate_finds_each_problem(changes, expected, text):
    found = base_project(**changes).validate()
    assert any((p.part, p.severity) == expected and text in p.message for p in found), found


def test_validate_pixels_finds_absent_and_unused_values():
    project = base_project(cells=[Cell(1, 1, 0), Cell(1, 1, 1), Cell(9, 9, 1)])
    assert problems(project) == set()  # without pixels nothing is read
    found = [str(p) for p in project.validate(pixels=True)]
    assert any("frame 1" in p and "[9]" in p and "absent" in p for p in found), found
    assert any("frame 1" in p and "[2]" in p and "used by no cell" in p for p in found), found


def test_check_raises_on_errors_and_returns_warnings():
    assert [p.part for p in base_project(cells=[Cell(1, 1, 0)] * 2).check()] == ["cells"]
    with pytest.raises(InconsistentDataError) as info:
        base_project(cells=[Cell(1, 1, 5)], channels=["x"]).check(path="p.zip")
    assert info.value.path == "p.zip" and {p.part for p in info.value.problems} == {"cells", "channels"}


# ---------------------------------------------------------------- export rule
def test_export_rule_overlap_out_of_order_and_several_features():
    y = np.zeros((2, 2, 3, 3), np.int32)
    y[0, 0] = [[1, 1, 0], [9, 9, 0], [4, 0, 77]]  # 9 = cells 2 and 5 overlapping; 4 = cell 8; 77 = no cell
    y[0, 1] = [[1, 1, 0], [2, 0, 0], [0, 0, 0]]
    y[1, 0] = [[3, 3, 3], [0, 0, 0], [0, 0, 6]]  # feature 1: 3 = cells 1 and 2; 6 = cells 1, 2 and 5
    y[1, 1] = [[1, 0, 0], [0, 0, 0], [0, 0, 0]]
    cells = [
        Cell(6, 5, 0, 1),
        Cell(9, 5, 0, 0),
        Cell(2, 2, 1, 0),
        Cell(1, 1, 0, 0),
        Cell(3, 2, 0, 1),
        Cell(4, 8, 0, 0),
        Cell(9, 2, 0, 0),
        Cell(1, 3, 1, 0),
        Cell(3, 1, 0, 1),
        Cell(6, 1, 0, 1),
        Cell(6, 2, 0, 1),
        Cell(1, 1, 1, 1),
        Cell(9, 2, 0, 0),  # listed twice: counts once
    ]
    out, new_cells = apply_export_rule(y, cells)
    assert out.dtype == np.int32
    # Largest cell is 8: overlapping sets get 9, 10... in order of value, per frame and feature.
    assert out[0, 0].tolist() == [[1, 1, 0], [9, 9, 0], [8, 0, 0]]
    assert out[0, 1].tolist() == [[3, 3, 0], [2, 0, 0], [0, 0, 0]]
    assert out[1, 0].tolist() == [[9, 9, 9], [0, 0, 0], [0, 0, 10]]
    assert out[1, 1].tolist() == [[1, 0, 0], [0, 0, 0], [0, 0, 0]]
    assert set(new_cells) == {
        Cell(1, 1, 0, 0), Cell(9, 2, 0, 0), Cell(9, 5, 0, 0), Cell(8, 8, 0, 0),
        Cell(3, 3, 1, 0), Cell(2, 2, 1, 0),
        Cell(9, 1, 0, 1), Cell(9, 2, 0, 1), Cell(10, 1, 0, 1), Cell(10, 2, 0, 1), Cell(10, 5, 0, 1),
        Cell(1, 1, 1, 1),
    }  # fmt: skip
    assert len(new_cells) == len(set(new_cells))
    shuffled, _ = apply_export_rule(y, list(reversed(cells)))
    np.testing.assert_array_equal(shuffled, out)


def test_export_rule_huge_and_negative_values():
    y = np.array([[[[2**30, -5, 7, 2**24 + 1]]]], np.int32)
    out, cells = apply_export_rule(y, [Cell(2**30, 4, 0), Cell(7, 3, 0), Cell(7, 4, 0)])
    assert out.tolist() == [[[[4, 0, 5, 0]]]] and set(cells) == {Cell(4, 4, 0), Cell(5, 3, 0), Cell(5, 4, 0)}
    out, _ = apply_export_rule(y, [Cell(7, 3, 0)])  # dense table path
    assert out.tolist() == [[[[0, 0, 3, 0]]]]


def export_reference(y: np.ndarray, cells: list[Cell]) -> tuple[np.ndarray, set[Cell]]:
    """The export rule, pixel by pixel and cell by cell: slow and obviously right."""
    top = max((c.cell for c in cells if c.value > 0), default=0)
    out = np.zeros(y.shape, np.int32)
    new_cells: set[Cell] = set()
    for c, t in itertools.product(range(y.shape[0]), range(y.shape[1])):
        members: dict[int, set[int]] = {}
        for cell in cells:
            if (cell.c, cell.t) == (c, t) and cell.value > 0:
                members.setdefault(cell.value, set()).add(cell.cell)
        mapping, next_value = {}, top + 1
        for value in sorted(members):
            if len(members[value]) == 1:
                mapping[value] = next(iter(members[value]))
            else:
                mapping[value], next_value = next_value, next_value + 1
            new_cells |= {Cell(mapping[value], m, t, c) for m in members[value]}
        for index in np.ndindex(y.shape[2:]):
            out[(c, t, *index)] = mapping.get(int(y[(c, t, *index)]), 0)
    return out, new_cells


@st.composite
def labels_and_cells(draw):
    features, frames = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    height, width = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    values = st.one_of(st.integers(-2, 8), st.sampled_from([2**24 + 3, 2**31 - 1]))
    flat = draw(
        st.lists(values, min_size=features * frames * height * width, max_size=features * frames * height * width)
    )
    y = np.array(flat, np.int32).reshape(features, frames, height, width)
    cell = st.builds(
        Cell,
        st.one_of(st.integers(-1, 9), st.just(2**24 + 3)),
        st.integers(1, 12),
        st.integers(0, frames - 1),
        st.integers(0, features - 1),
    )
    return y, draw(st.lists(cell, max_size=25))


@settings(max_examples=150, deadline=None)
@given(labels_and_cells())
def test_export_rule_matches_slow_reference(data):
    y, cells = data
    out, new_cells = apply_export_rule(y, cells)
    expected, expected_cells = export_reference(y, cells)
    np.testing.assert_array_equal(out, expected)
    assert set(new_cells) == expected_cells and len(new_cells) == len(expected_cells)
    # The plan, applied plane by plane, is what apply_export_rule did.
    plan = plan_export(cells)
    for c, t in itertools.product(range(y.shape[0]), range(y.shape[1])):
        np.testing.assert_array_equal(plan.apply(y[c, t], c, t), out[c, t])


# ======================================================================= lazy arrays
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
    assert "--select Z=0" in str(err) and "3 T and 4 Z" in str(err)


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
