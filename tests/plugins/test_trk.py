"""The deepcell-tracking trk/trks plugin: the layout deepcell-tracking writes, lineages, batches, hostile tars."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from dlformats_trk.tarhead import first_member

import dlformats
from dlformats import (
    Cell,
    CorruptFileError,
    Division,
    DLFormatsWarning,
    InconsistentDataError,
    LimitExceededError,
    Limits,
    UnsafeArchiveError,
    UnsupportedFeatureError,
    testing,
)

T, H, W = 4, 10, 12

# Cell 1 lives in frames 0-1 and divides into 2 and 3 at frame 2; cell 4 lives throughout.
# As deepcell-tracking leaves it: frame_div and capped missing in some entries.
LINEAGE = {
    "1": {"label": 1, "frames": [0, 1], "daughters": [2, 3], "parent": None, "frame_div": 2, "capped": True},
    "2": {"label": 2, "frames": [2, 3], "daughters": [], "parent": 1},
    "3": {"label": 3, "frames": [2, 3], "daughters": [], "parent": 1, "frame_div": None},
    "4": {"label": 4, "frames": [0, 1, 2, 3], "daughters": [], "parent": None, "capped": False},
}


def movie(frames: int = T, channels: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """raw (T, Y, X, C) float32 and tracked (T, Y, X, 1) int32 matching LINEAGE."""
    rng = np.random.default_rng(seed)
    raw = rng.random((frames, H, W, channels)).astype(np.float32) + 0.01  # never exactly zero
    tracked = np.zeros((frames, H, W, 1), np.int32)
    tracked[:2, 1:4, 1:4] = 1
    tracked[2:, 1:4, 1:2] = 2
    tracked[2:, 1:4, 3:4] = 3
    tracked[:, 6:9, 6:10] = 4
    return raw, tracked


def save_like_deepcell_tracking(
    path: Path, lineage: object, raw: np.ndarray, tracked: np.ndarray, *, gz: bool = True, batches: bool = False
) -> Path:
    """Write a trk exactly as deepcell-tracking lays it out: json and np.save into files, then tar.add."""
    work = path.parent / (path.name + ".parts")
    work.mkdir()
    name = "lineages.json" if batches else "lineage.json"
    (work / name).write_text(json.dumps(lineage, indent=4))
    np.save(work / "raw.npy", raw)
    np.save(work / "tracked.npy", tracked)
    with tarfile.open(path, "w:gz" if gz else "w") as tar:
        for member in (name, "raw.npy", "tracked.npy"):
            tar.add(work / member, member)
    return path


def npy_bytes(arr: np.ndarray, **kw: object) -> bytes:
    out = io.BytesIO()
    np.save(out, arr, **kw)
    return out.getvalue()


def tar_of(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def good_members() -> list[tuple[tarfile.TarInfo, bytes]]:
    raw, tracked = movie()
    return [
        regular("lineage.json", json.dumps(LINEAGE).encode()),
        regular("raw.npy", npy_bytes(raw)),
        regular("tracked.npy", npy_bytes(tracked)),
    ]


# ---------------------------------------------------------------- conformance
def test_declared_and_import_light():
    trk = testing.check_declared("trk")
    trks = testing.check_declared("trks")
    assert trk.spec.write is not None and trks.spec.write is None
    testing.check_import_light("dlformats_trk")


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "plain"])
def test_deepcell_tracking_layout_reads_with_its_lineage(tmp_path, gz):
    raw, tracked = movie()
    path = save_like_deepcell_tracking(tmp_path / "movie.trk", LINEAGE, raw, tracked, gz=gz)
    testing.check_sniff("trk", path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a valid lineage gives no warning
        project = testing.check_read("trk", path)
    assert project.X.shape == (2, T, H, W) and project.X.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(project.X), raw.transpose(3, 0, 1, 2))
    assert project.y.shape == (1, T, H, W) and project.y.dtype == np.int32
    np.testing.assert_array_equal(np.asarray(project.y)[0], tracked[..., 0])
    assert project.frame_axis == "T"
    assert project.divisions == [Division(1, [2, 3], 2)]
    expected_cells = {Cell(v, v, t, 0) for v, e in LINEAGE.items() for v in [int(v)] for t in e["frames"]}
    assert set(project.cells) == expected_cells
    assert not project.validate(pixels=True)


def test_name_does_not_matter_content_does(tmp_path):
    raw, tracked = movie()
    path = save_like_deepcell_tracking(tmp_path / "tracks.tar.gz", LINEAGE, raw, tracked)
    testing.check_sniff("trk", path)
    data = path.read_bytes()
    project = dlformats.read(io.BytesIO(data))
    assert project.metadata["format"] == "trk" and project.divisions == [Division(1, [2, 3], 2)]


def test_converts_to_a_project_zip_with_divisions(tmp_path):
    raw, tracked = movie()
    src = save_like_deepcell_tracking(tmp_path / "movie.trk", LINEAGE, raw, tracked)
    [out] = dlformats.convert(src, tmp_path / "project.zip")
    with zipfile.ZipFile(out) as zf:
        divisions = json.loads(zf.read("divisions.json"))
    assert divisions == [{"parent": 1, "daughters": [2, 3], "t": 2}]
    back = dlformats.read(out)
    assert back.divisions == [Division(1, [2, 3], 2)]
    np.testing.assert_array_equal(np.asarray(back.X), raw.transpose(3, 0, 1, 2))


# ---------------------------------------------------------------- writing
def test_roundtrip_and_exact_layout(tmp_path):
    project = testing.make_project(channels=2, frames=3, dtype="uint16")
    path = tmp_path / "out.trk"
    testing.check_roundtrip("trk", project, path)
    assert path.read_bytes()[:2] == b"\x1f\x8b"  # gzip, as deepcell-tracking writes
    with tarfile.open(path) as tar:
        assert [m.name for m in tar.getmembers()] == ["lineage.json", "raw.npy", "tracked.npy"]
        assert all(m.isfile() for m in tar.getmembers())
        raw = tar.extractfile("raw.npy").read()
        tracked = tar.extractfile("tracked.npy").read()
        lineage = json.loads(tar.extractfile("lineage.json").read())
    # byte for byte what np.save writes for (T, Y, X, C) and (T, Y, X, 1) int32
    assert raw == npy_bytes(np.ascontiguousarray(np.asarray(project.X).transpose(1, 2, 3, 0)))
    assert tracked == npy_bytes(np.asarray(project.y).transpose(1, 2, 3, 0).astype(np.int32))
    assert lineage["1"] == {
        "label": 1,
        "frames": [0],
        "daughters": [3, 4],
        "parent": None,
        "frame_div": 1,
        "capped": True,
    }
    assert lineage["3"]["parent"] == 1 and lineage["3"]["frames"] == [1, 2]
    assert all(type(v) is int for e in lineage.values() for v in (e["label"], *e["frames"], *e["daughters"]))


def test_writer_applies_cells_and_refuses_overlaps(tmp_path):
    project = testing.make_project(frames=2)
    # value 2 means cell 7 in every frame: the trk must hold 7 and the lineage name 7
    project.cells = [c if c.value != 2 else Cell(2, 7, c.t, c.c) for c in project.cells]
    dlformats.write(project, tmp_path / "mapped.trk")
    back = dlformats.read(tmp_path / "mapped.trk")
    assert 7 in np.asarray(back.y) and 2 not in np.asarray(back.y)
    assert {c.cell for c in back.cells} == {1, 3, 4, 7}
    with pytest.raises(UnsupportedFeatureError, match="overlapping cells"):
        dlformats.write(testing.make_project(overlap=True), tmp_path / "overlap.trk")
    assert not (tmp_path / "overlap.trk").exists()


# ---------------------------------------------------------------- trks
def test_trks_two_batches_give_two_projects(tmp_path):
    raw0, tracked0 = movie(seed=1)
    raw1, tracked1 = movie(seed=2)
    # batch 1 is a shorter movie (3 frames) padded with one zero frame, as .trks files pad
    raw1[3] = 0
    tracked1[3] = 0
    lineage1 = json.loads(json.dumps(LINEAGE))
    for entry in lineage1.values():
        entry["frames"] = [f for f in entry["frames"] if f < 3]
    raw = np.stack([raw0, raw1])
    tracked = np.stack([tracked0, tracked1])
    path = save_like_deepcell_tracking(tmp_path / "both.trks", [LINEAGE, lineage1], raw, tracked, batches=True)
    testing.check_sniff("trks", path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        projects = dlformats.read_all(path)
    assert len(projects) == 2
    assert projects[0].X.shape == (2, 4, H, W) and projects[1].X.shape == (2, 3, H, W)
    assert projects[1].metadata["padding_frames"] == 1 and projects[1].metadata["batch"] == 1
    np.testing.assert_array_equal(np.asarray(projects[1].y)[0], tracked1[:3, ..., 0])
    assert all(p.divisions == [Division(1, [2, 3], 2)] for p in projects)

    one = dlformats.read(path, options={"batch": 1, "trim": False})
    assert one.X.shape == (2, 4, H, W)
    with pytest.raises(dlformats.AmbiguousInputError):
        dlformats.read(path)

    written = dlformats.convert(path, tmp_path / "out.trk")
    assert [p.name for p in written] == ["out_batch0.trk", "out_batch1.trk"]
    assert dlformats.read(written[1]).X.shape == (2, 3, H, W)


def test_trks_lineage_count_must_match_batches(tmp_path):
    raw, tracked = movie()
    path = save_like_deepcell_tracking(
        tmp_path / "bad.trks", [LINEAGE], raw[None].repeat(2, 0), tracked[None].repeat(2, 0), batches=True
    )
    with pytest.raises(InconsistentDataError, match=r"1 lineages .* 2 batches") as info:
        dlformats.read_all(path)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------- lineage rules
def test_lineage_problems_are_warned_all_at_once(tmp_path):
    lineage = json.loads(json.dumps(LINEAGE))
    lineage["1"]["frames"] = [0]  # but label 1 occurs in frames 0 and 1
    del lineage["4"]  # label 4 occurs but has no entry
    lineage["2"]["parent"] = None  # parent 1 lists it, it does not point back
    raw, tracked = movie()
    path = save_like_deepcell_tracking(tmp_path / "messy.trk", lineage, raw, tracked)
    with pytest.warns(DLFormatsWarning, match="lineage breaks") as record:
        project = dlformats.read(path)
    text = " ".join(str(w.message) for w in record)
    assert "label 4 occurs in the labels but has no lineage entry" in text
    assert "daughter 2 names parent None" in text
    assert "frames [0] differ" in text
    assert len(project.metadata["lineage_problems"]) >= 4  # the daughter start rule breaks too
    assert project.divisions == [Division(1, [2, 3], 2)]


def test_unusable_lineage_is_an_error_listing_every_problem(tmp_path):
    lineage = json.loads(json.dumps(LINEAGE))
    lineage["4"]["parent"] = 4  # its own parent
    lineage["4"]["daughters"] = [4]
    raw, tracked = movie()
    path = save_like_deepcell_tracking(tmp_path / "loop.trk", lineage, raw, tracked)
    with pytest.raises(InconsistentDataError, match="unusable") as info:
        dlformats.read(path)
    messages = [p.message for p in info.value.problems]
    assert "label 4 is its own parent" in messages and "label 4 lists itself as its own daughter" in messages
    assert info.value.path == str(path) and info.value.member == "lineage.json"


# ---------------------------------------------------------------- hostile and broken
def test_symlink_and_hardlink_members_are_refused(tmp_path):
    for kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
        link = tarfile.TarInfo("tracked.npy")
        link.type = kind
        link.linkname = "raw.npy"  # one member aliasing another
        members = good_members()
        path = tar_of(tmp_path / f"link{kind.decode()}.trk", [*members[:2], (link, None)])
        with pytest.raises(UnsafeArchiveError, match="link") as info:
            dlformats.read(path)
        assert str(path) in str(info.value)


def test_member_escaping_the_archive_is_refused(tmp_path):
    path = tar_of(tmp_path / "evil.trk", [*good_members(), regular("../x", b"boom")])
    with pytest.raises(UnsafeArchiveError, match=r"\.\.") as info:
        dlformats.read(path)
    assert "'../x'" in str(info.value)
    assert not (tmp_path.parent / "x").exists()


def test_pickled_npy_is_refused(tmp_path):
    members = good_members()
    pickled = npy_bytes(np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    path = tar_of(tmp_path / "pickle.trk", [members[0], regular("raw.npy", pickled), members[2]])
    with pytest.raises(UnsupportedFeatureError, match="unpickle") as info:
        dlformats.read(path)
    assert info.value.member == "raw.npy"


def test_declared_npy_size_is_checked_before_allocating(tmp_path):
    members = good_members()
    header = npy_bytes(np.zeros((1, 1, 1, 1), np.float32))[:-4]  # header only, no data

    def declaring(shape: bytes) -> bytes:
        text = header.replace(b"(1, 1, 1, 1)", shape).rstrip(b" \n")
        return text.ljust(len(header) - 1, b" ") + b"\n"

    big = tar_of(tmp_path / "big.trk", [members[0], regular("raw.npy", declaring(b"(100, 100, 100, 1)")), members[2]])
    with pytest.raises(CorruptFileError, match="bytes follow it"):
        dlformats.read(big)
    with pytest.raises(LimitExceededError) as info:
        dlformats.read(big, limits=Limits(array_bytes=1 << 20))
    assert info.value.limit == "array_bytes"
    huge = tar_of(
        tmp_path / "huge.trk", [members[0], regular("raw.npy", declaring(b"(99999, 99999, 999, 9)")), members[2]]
    )
    with pytest.raises(LimitExceededError):  # 360 TB declared in a few hundred bytes: refused before allocating
        dlformats.read(huge)


def test_missing_member_and_mismatched_shapes(tmp_path):
    members = good_members()
    path = tar_of(tmp_path / "partial.trk", members[:2])
    with pytest.raises(CorruptFileError, match=r"missing tracked\.npy"):
        dlformats.read(path)
    raw, tracked = movie()
    path = save_like_deepcell_tracking(tmp_path / "shapes.trk", LINEAGE, raw, tracked[:, :5])
    with pytest.raises(InconsistentDataError, match="disagree"):
        dlformats.read(path)


def test_unknown_members_are_ignored_with_a_warning(tmp_path):
    path = tar_of(tmp_path / "extra.trk", [*good_members(), regular("notes.txt", b"hello")])
    with pytest.warns(DLFormatsWarning, match=r"ignored members .*notes\.txt"):
        project = dlformats.read(path)
    assert project.metadata["ignored_members"] == ["notes.txt"]


def test_non_trk_archives_are_not_claimed(tmp_path):
    other = tar_of(tmp_path / "other.trk", [regular("notes.txt", b"hello")])
    with pytest.raises(dlformats.NoReaderError):
        dlformats.read(other)
    not_tar = tmp_path / "data.trk"
    not_tar.write_bytes(gzip.compress(b"just some text" * 100))
    with pytest.raises(dlformats.NoReaderError):
        dlformats.read(not_tar)


def test_first_member_follows_pax_and_long_names(tmp_path):
    def head(path: Path) -> bytes:
        return path.read_bytes()[:4096]

    pax = tmp_path / "pax.tar"
    with tarfile.open(pax, "w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "x"}) as tar:
        info = tarfile.TarInfo("lineage.json")
        info.pax_headers = {"path": "lineage.json", "mtime": "1.5"}
        tar.addfile(info, io.BytesIO(b""))
    assert first_member(head(pax)) == "lineage.json"
    gnu = tmp_path / "gnu.tar.gz"
    with tarfile.open(gnu, "w:gz", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(tarfile.TarInfo("d" * 120 + "/raw.npy"), io.BytesIO(b""))
    assert first_member(head(gnu)) == "d" * 120 + "/raw.npy"
    assert first_member(b"not a tar at all" * 40) == ""
    assert first_member(head(gnu)[:30]) is None  # too little inflated to tell
    assert first_member(head(pax)[:300]) == ""  # a plain file this short is no tar


def test_arrays_are_bounded_by_array_bytes_not_member_bytes(tmp_path):
    # Each .npy member is decompressed straight into its array: a trk reads when each array fits array_bytes.
    raw, tracked = movie()
    path = save_like_deepcell_tracking(tmp_path / "movie.trk", LINEAGE, raw, tracked)
    assert raw.nbytes > tracked.nbytes > 100
    project = dlformats.read(path, limits=Limits(member_bytes=100, array_bytes=raw.nbytes))
    np.testing.assert_array_equal(np.asarray(project.X), raw.transpose(3, 0, 1, 2))
    with pytest.raises(LimitExceededError) as info:
        dlformats.read(path, limits=Limits(array_bytes=raw.nbytes - 1))
    assert (info.value.limit, info.value.member) == ("array_bytes", "raw.npy")
    with pytest.raises(LimitExceededError) as info:
        dlformats.read(path, limits=Limits(json_bytes=100))
    assert (info.value.limit, info.value.member) == ("json_bytes", "lineage.json")


def test_members_in_a_folder_or_beside_one(tmp_path):
    members = good_members()
    folder = [regular("movie/" + info.name, data) for info, data in members]
    project = dlformats.read(tar_of(tmp_path / "folder.trk", folder))
    assert project.divisions == [Division(1, [2, 3], 2)]
    # A folder first, the trk members beside it: no folder is shared, so none is stripped.
    beside = tar_of(tmp_path / "beside.trk", [regular("docs/notes.txt", b"hi"), *members])
    with pytest.warns(DLFormatsWarning, match="docs/notes.txt"):
        project = dlformats.read(beside, format="trk")  # the sniffer looks at the first member only
    assert project.divisions == [Division(1, [2, 3], 2)]


def test_a_damaged_gzip_trailer_is_an_error_not_a_silent_read(tmp_path):
    raw, tracked = movie()
    path = save_like_deepcell_tracking(tmp_path / "movie.trk", LINEAGE, raw, tracked)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x40  # the CRC-32 of the content
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="CRC") as info:
        dlformats.read(path)
    assert info.value.path == str(path)
