"""The ctc plugin: Cell Tracking Challenge folders in and out, proven by the CTC's own validator and traccuracy.

The peers (``ctc_metrics``, ``traccuracy``) are imported inside the tests: they are slow to import, and a
missing peer must fail the test, not skip it.
"""

from __future__ import annotations

import io
import json
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from _tracking import H, W, expected_graph, square, tracking_project

import dlformats
from dlformats import (
    AmbiguousInputError,
    Cell,
    CorruptFileError,
    Division,
    DLFormatsWarning,
    InconsistentDataError,
    InvalidOptionError,
    Project,
    UnsupportedFeatureError,
    testing,
)

FIXTURES = testing.fixtures_dir()
needs_fixtures = pytest.mark.skipif(FIXTURES is None, reason="../shared/fixtures is absent")
FORMAT = "ctc"


def traccuracy_graph(folder: Path, *, checks: bool = True):
    """traccuracy's graph of a CTC folder; ``checks`` runs its format checks too (slow on long sequences)."""
    from traccuracy.loaders import load_ctc_data

    return load_ctc_data(str(folder), run_checks=checks).graph


def graph_in_cells(folder: Path, project: Project, prefix: str = "mask") -> tuple[set, set]:
    """traccuracy's graph of ``folder`` with each node named ``(t, cell)``: the project's cell under the
    node's pixels (so the written labels are checked against the project's own pixels)."""
    graph = traccuracy_graph(folder)
    cell_at = {(c.t, c.value): c.cell for c in project.cells_or_derived()}
    masks = {int(p.stem[len(prefix) :]): tifffile.imread(p) for p in folder.glob(f"{prefix}*.tif")}
    name = {}
    for node, attrs in graph.nodes(data=True):
        t, label = int(attrs["t"]), int(attrs["segmentation_id"])
        where = np.argwhere(masks[t] == label)[0]
        if masks[t].ndim == 3:  # one 3-D frame of Z-slices
            z, row, col = where
            name[node] = (int(z), cell_at[(int(z), int(project.label_frame(0, int(z))[row, col]))])
        else:
            row, col = where
            name[node] = (t, cell_at[(t, int(project.label_frame(0, t)[row, col]))])
    return set(name.values()), {(name[a], name[b]) for a, b in graph.edges}


def ctc_valid(folder: Path) -> int:
    import ctc_metrics

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ctc_metrics.validate_sequence(str(folder), threads=1)["Valid"]


def write_ctc(project: Project, folder: Path, **options) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DLFormatsWarning)
        dlformats.write(project, folder, format=FORMAT, options=options)
    return folder


def save_sequence(folder: Path, masks, tracks: str, *, prefix: str = "mask", track_file: str = "res_track.txt"):
    folder.mkdir(parents=True, exist_ok=True)
    for t, mask in enumerate(masks):
        if mask is not None:
            tifffile.imwrite(folder / f"{prefix}{t:03d}.tif", mask)
    (folder / track_file).write_text(tracks)
    return folder


# ------------------------------------------------------------------ declaration
def test_declared_and_import_light():
    fmt = testing.check_declared(FORMAT)
    assert fmt.spec.folder
    testing.check_import_light("dlformats_ctc")


# ------------------------------------------------------------------ writing, proven by the peers
def test_written_folder_is_valid_and_traccuracy_sees_the_project(tmp_path):
    project = tracking_project()
    out = write_ctc(project, tmp_path / "01_RES")
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"mask{t:03d}.tif" for t in range(7)] + ["res_track.txt"]  # every frame, empty ones too
    masks = [tifffile.imread(out / f"mask{t:03d}.tif") for t in range(7)]
    assert all(m.dtype == np.uint16 and m.shape == (H, W) for m in masks)
    assert not masks[4].any() and not masks[6].any()
    # gaps split a cell, the parent link kept; daughters start at the division
    lines = sorted(tuple(map(int, line.split())) for line in (out / "res_track.txt").read_text().splitlines())
    assert lines == [(1, 0, 1, 0), (2, 2, 3, 1), (3, 2, 3, 1), (4, 0, 0, 0), (5, 3, 3, 4), (6, 5, 5, 2), (7, 5, 5, 5)]
    assert ctc_valid(out) == 1
    assert graph_in_cells(out, project) == expected_graph(project)


def test_reads_back_the_same_cells_and_divisions(tmp_path):
    project = tracking_project()
    out = write_ctc(project, tmp_path / "01_RES")
    testing.check_sniff(FORMAT, out)
    back = testing.check_read(FORMAT, out)
    assert back.frame_axis == "T" and back.y.shape == (1, 7, H, W) and back.X is None
    # the same cells (values become track labels) and divisions; the gaps stay gaps of one cell
    assert {(c.cell, c.t) for c in back.cells} == {(c.cell, c.t) for c in project.cells}
    assert back.divisions == project.divisions
    assert back.provenance["y"].format == FORMAT
    # pixels: each track label sits where the cell was
    for t in range(7):
        mine = project.label_frame(0, t)
        theirs = back.label_frame(0, t)
        assert np.array_equal(mine > 0, theirs > 0)


def test_track_file_or_ground_truth_folder_is_a_source(tmp_path):
    project = tracking_project()
    out = write_ctc(project, tmp_path / "01_RES")
    testing.check_sniff(FORMAT, out / "res_track.txt")
    assert dlformats.read(out / "res_track.txt").divisions == project.divisions
    gt = write_ctc(project, tmp_path / "01_GT", layout="gt")
    assert sorted(p.name for p in gt.iterdir()) == ["TRA"]
    assert (gt / "TRA" / "man_track000.tif").is_file() and (gt / "TRA" / "man_track.txt").is_file()
    assert graph_in_cells(gt / "TRA", project, prefix="man_track") == expected_graph(project)
    for source in (gt, gt / "TRA", gt / "TRA" / "man_track.txt"):
        back = dlformats.read(source)
        assert back.metadata["ctc"]["layout"] == "gt" and back.divisions == project.divisions


def test_ground_truth_seg_frames_travel_as_a_second_feature(tmp_path):
    project = tracking_project()
    gt = write_ctc(project, tmp_path / "01_GT", layout="gt")
    seg = np.zeros((H, W), np.uint16)
    seg[1:4, 1:4] = 11
    seg[8:10, 2:5] = 12
    (gt / "SEG").mkdir()
    tifffile.imwrite(gt / "SEG" / "man_seg001.tif", seg)
    back = dlformats.read(gt)
    assert back.features == ["TRA", "SEG"] and back.y.shape == (2, 7, H, W)
    assert np.array_equal(back.label_frame(1, 1), seg) and not back.label_frame(1, 0).any()
    seg_cells = sorted(c for c in back.cells if c.c == 1)
    assert [(c.value, c.t) for c in seg_cells] == [(11, 1), (12, 1)]
    assert not {c.cell for c in seg_cells} & {c.cell for c in back.cells if c.c == 0}  # no id shared with TRA
    again = write_ctc(back, tmp_path / "02_GT", layout="gt")
    assert sorted(p.name for p in (again / "SEG").iterdir()) == ["man_seg001.tif"]
    assert np.array_equal(tifffile.imread(again / "SEG" / "man_seg001.tif"), seg)


@needs_fixtures
def test_deepcell_label_division_project_to_ctc(tmp_path):
    """DeepCell Label's oneDivision fixture: cell 31 divides into 134 and 135."""
    project = dlformats.read(FIXTURES / "deepcell-label/oneDivision.zip")
    out = write_ctc(project, tmp_path / "01_RES")
    assert ctc_valid(out) == 1
    nodes, edges = graph_in_cells(out, project)
    assert (nodes, edges) == expected_graph(project)
    assert ((0, 31), (1, 134)) in edges and ((0, 31), (1, 135)) in edges
    assert dlformats.read(out).divisions == [Division(31, [134, 135], 1)]


@needs_fixtures
def test_a_parent_labelled_after_its_division_is_refused_or_detached(tmp_path):
    """The 2022 oneDivision fixture: cell 23 divides into 134 and 135 at frame 1 but is still there."""
    project = dlformats.read(FIXTURES / "deepcell-label/history/oneDivision_2022-06-03_nested-folder.zip")
    with pytest.raises(UnsupportedFeatureError) as info:
        dlformats.write(project, tmp_path / "01_RES", format=FORMAT)
    text = str(info.value)
    assert "cell 23" in text and "[134, 135] at frame 1" in text and "conflicts=detach" in text
    assert "\n" not in text
    assert not (tmp_path / "01_RES").exists() and list(tmp_path.iterdir()) == []  # nothing written
    with pytest.warns(DLFormatsWarning, match="cell 23 is still labelled in frame 1"):
        dlformats.write(project, tmp_path / "01_RES", format=FORMAT, options={"conflicts": "detach"})
    out = tmp_path / "01_RES"
    assert ctc_valid(out) == 1
    lines = sorted(tuple(map(int, line.split())) for line in (out / "res_track.txt").read_text().splitlines())
    assert lines == [(23, 0, 0, 0), (31, 0, 0, 0), (134, 1, 1, 23), (135, 1, 1, 23), (136, 1, 1, 0)]
    _nodes, edges = graph_in_cells(out, project)
    assert edges == {((0, 23), (1, 134)), ((0, 23), (1, 135))}


def test_z_frames_make_one_3d_frame(tmp_path):
    y = np.zeros((1, 4, H, W), np.int32)
    for z in range(4):
        square(y, z, 5, 2, 2)
        square(y, z, 8, 7, 8)
    square(y, 3, 9, 0, 10, 2)
    project = Project(y=y, frame_axis="Z")
    out = write_ctc(project, tmp_path / "01_RES")
    assert sorted(p.name for p in out.iterdir()) == ["mask000.tif", "res_track.txt"]
    assert tifffile.imread(out / "mask000.tif").shape == (4, H, W)
    assert ctc_valid(out) == 1
    graph = traccuracy_graph(out)
    assert graph.number_of_nodes() == 3 and graph.number_of_edges() == 0
    assert {tuple(round(a[k]) for k in "zyx") for _, a in graph.nodes(data=True)} >= {(2, 8, 9)}
    back = dlformats.read(out)
    assert back.frame_axis == "Z" and back.y.shape == (1, 4, H, W)
    assert np.array_equal(np.asarray(back.y), y)


def test_3d_ground_truth_with_seg_slices(tmp_path):
    """3-D ground truth: TRA masks of 3 slices (which tifffile saves as planar RGB), SEG of single slices."""
    gt = tmp_path / "01_GT"
    (gt / "TRA").mkdir(parents=True)
    (gt / "SEG").mkdir()
    mask = np.zeros((3, H, W), np.uint16)
    mask[:, 1:4, 1:4] = 1
    for t in range(2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # tifffile says it will stop doing so
            tifffile.imwrite(gt / "TRA" / f"man_track{t:03d}.tif", mask)
    (gt / "TRA" / "man_track.txt").write_text("1 0 1 0\n")
    seg = np.zeros((H, W), np.uint16)
    seg[2:5, 2:5] = 7
    tifffile.imwrite(gt / "SEG" / "man_seg_001_002.tif", seg)
    with pytest.raises(AmbiguousInputError, match="2 T and 3 Z planes"):
        dlformats.read(gt)
    frame1 = dlformats.read(gt, options={"select": {"T": 1}})
    assert frame1.features == ["TRA", "SEG"] and frame1.frame_axis == "Z" and frame1.y.shape == (2, 3, H, W)
    assert np.array_equal(frame1.label_frame(1, 2), seg) and not frame1.label_frame(1, 1).any()
    assert {(c.value, c.t, c.c) for c in frame1.cells} == {(1, 0, 0), (1, 1, 0), (1, 2, 0), (7, 2, 1)}


def test_masks_without_their_track_file_are_named(tmp_path):
    folder = tmp_path / "01_RES"
    folder.mkdir()
    tifffile.imwrite(folder / "mask000.tif", np.ones((H, W), np.uint16))
    with pytest.raises(CorruptFileError, match=r"masks without their track file \(res_track.txt\)"):
        dlformats.read(folder)


def test_3d_frames_over_time_need_select(tmp_path):
    masks = []
    for t in range(3):
        m = np.zeros((2, H, W), np.uint16)
        m[:, 2:5, 2 + t : 5 + t] = 1
        m[1, 8:10, 8:10] = 2
        masks.append(m)
    folder = save_sequence(tmp_path / "01_RES", masks, "1 0 2 0\n2 0 2 0\n")
    with pytest.raises(AmbiguousInputError) as info:
        dlformats.read(folder)
    assert info.value.option == "select"
    slice1 = dlformats.read(folder, options={"select": {"Z": 1}})
    assert slice1.frame_axis == "T" and slice1.y.shape == (1, 3, H, W)
    assert {(c.value, c.t) for c in slice1.cells} == {(v, t) for v in (1, 2) for t in range(3)}
    frame2 = dlformats.read(folder, options={"select": {"T": 2}})
    assert frame2.frame_axis == "Z" and frame2.y.shape == (1, 2, H, W)
    assert {(c.value, c.t) for c in frame2.cells} == {(1, 0), (1, 1), (2, 1)}
    assert ctc_valid(folder) == 1


def test_a_thousand_frames_get_four_digits(tmp_path):
    frames = 1001
    y = np.zeros((1, frames, 6, 6), np.int32)
    y[0, :, 1:3, 1:3] = 1
    y[0, 500:, 4:6, 4:6] = 2
    y[0, 700:720] = 0  # a gap in both cells: new tracks, parents kept
    project = Project(y=y, frame_axis="T")
    out = write_ctc(project, tmp_path / "01_RES")
    names = sorted(p.name for p in out.glob("mask*.tif"))
    assert len(names) == frames and names[0] == "mask0000.tif" and names[-1] == "mask1000.tif"
    lines = sorted(tuple(map(int, line.split())) for line in (out / "res_track.txt").read_text().splitlines())
    assert lines == [(1, 0, 699, 0), (2, 500, 699, 0), (3, 720, 1000, 1), (4, 720, 1000, 2)]
    assert ctc_valid(out) == 1  # the CTC's own checks; traccuracy's repeat them, slowly, frame by frame
    graph = traccuracy_graph(out, checks=False)
    assert (
        graph.number_of_nodes() == (1001 - 20) + (501 - 20) and graph.number_of_edges() == graph.number_of_nodes() - 2
    )
    back = dlformats.read(out)
    assert {(c.cell, c.t) for c in back.cells} == {(c.value, c.t) for c in project.cells_or_derived()}


def test_trk_to_ctc_to_trk_keeps_pixels_lineage_and_divisions(tmp_path):
    """A trk as deepcell-tracking writes it, with a parent that vanishes and comes back before dividing."""
    frames = 6
    raw = np.random.default_rng(0).random((frames, H, W, 1)).astype(np.float32)
    tracked = np.zeros((frames, H, W, 1), np.int32)
    tracked[[0, 1, 3], 1:4, 1:4] = 1  # cell 1: frames 0, 1, (gap), 3; divides at 4
    tracked[4:, 1:4, 1:3] = 2
    tracked[4:, 1:4, 3:5] = 3
    tracked[:, 7:10, 7:10] = 4
    lineage = {
        "1": {"label": 1, "frames": [0, 1, 3], "daughters": [2, 3], "parent": None, "frame_div": 4, "capped": True},
        "2": {"label": 2, "frames": [4, 5], "daughters": [], "parent": 1, "frame_div": None, "capped": False},
        "3": {"label": 3, "frames": [4, 5], "daughters": [], "parent": 1, "frame_div": None, "capped": False},
        "4": {"label": 4, "frames": list(range(frames)), "daughters": [], "parent": None},
    }
    trk = tmp_path / "movie.trk"
    with tarfile.open(trk, "w:gz") as tar:
        for name, data in (("lineage.json", json.dumps(lineage).encode()), ("raw.npy", raw), ("tracked.npy", tracked)):
            if not isinstance(data, bytes):
                buf = io.BytesIO()
                np.save(buf, data)
                data = buf.getvalue()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    dlformats.convert(trk, tmp_path / "01_RES", to_format=FORMAT)
    out = tmp_path / "01_RES"
    lines = sorted(tuple(map(int, line.split())) for line in (out / "res_track.txt").read_text().splitlines())
    assert (5, 3, 3, 1) in lines and (2, 4, 5, 5) in lines and (3, 4, 5, 5) in lines  # the link across the gap
    assert ctc_valid(out) == 1
    dlformats.convert(out, tmp_path / "back.trk")
    with tarfile.open(tmp_path / "back.trk") as tar:
        back_tracked = np.load(io.BytesIO(tar.extractfile("tracked.npy").read()))
        back_lineage = json.loads(tar.extractfile("lineage.json").read())
    assert np.array_equal(back_tracked, tracked)
    for label, entry in lineage.items():
        got = back_lineage[label]
        assert (got["frames"], got["daughters"], got["parent"]) == (
            entry["frames"],
            entry["daughters"],
            entry["parent"],
        )
    assert dlformats.read(tmp_path / "back.trk").divisions == [Division(1, [2, 3], 4)]


# ------------------------------------------------------------------ the real sequence
@pytest.fixture(scope="module")
def hela(tmp_path_factory):
    """The HeLa sequence of traccuracy's examples, read, written back, and both seen by traccuracy."""
    if FIXTURES is None:
        pytest.skip("../shared/fixtures is absent")
    source = FIXTURES / "traccuracy/Fluo-N2DL-HeLa/01_RES"
    project = dlformats.read(source)
    out = write_ctc(project, tmp_path_factory.mktemp("hela") / "01_RES")
    # the source is the peers' own valid example: its graph is the reference, its checks are theirs
    return {"source": source, "project": project, "out": out, "theirs": traccuracy_graph(source, checks=False)}


def by_position(graph) -> tuple[set, set]:
    """Nodes named by frame and centroid (the same pixels have the same centroid, whatever their label)."""
    name = {n: (int(a["t"]), round(float(a["y"]), 3), round(float(a["x"]), 3)) for n, a in graph.nodes(data=True)}
    assert len(set(name.values())) == len(name)
    return set(name.values()), {(name[a], name[b]) for a, b in graph.edges}


@needs_fixtures
def test_hela_reads_as_traccuracy_sees_it(hela):
    graph, project = hela["theirs"], hela["project"]
    assert (graph.number_of_nodes(), graph.number_of_edges()) == (8600, 8535)
    assert project.y.shape == (1, 92, 700, 1100) and len(project.cells) == 8600 and len(project.divisions) == 106
    cell_at = {(c.t, c.value): c.cell for c in project.cells}
    name = {n: (int(a["t"]), cell_at[(int(a["t"]), int(a["segmentation_id"]))]) for n, a in graph.nodes(data=True)}
    theirs = (set(name.values()), {(name[a], name[b]) for a, b in graph.edges})
    assert theirs == expected_graph(project)
    dividing = {name[n] for n in graph if graph.out_degree(n) > 1}
    assert len(dividing) == 106
    assert dividing == {(d.t - 1, d.parent) for d in project.divisions}


@needs_fixtures
def test_hela_written_back_is_valid_and_the_same_graph(hela):
    assert ctc_valid(hela["out"]) == 1
    assert by_position(traccuracy_graph(hela["out"])) == by_position(hela["theirs"])
    back = dlformats.read(hela["out"])
    assert {(c.cell, c.t) for c in back.cells} == {(c.cell, c.t) for c in hela["project"].cells}
    assert back.divisions == hela["project"].divisions


# ------------------------------------------------------------------ bad input
def test_tab_separated_track_files_and_long_frame_numbers_read(tmp_path):
    mask = np.zeros((H, W), np.uint16)
    mask[2:5, 2:5] = 3
    folder = tmp_path / "seq"
    folder.mkdir()
    tifffile.imwrite(folder / "mask0000.tif", mask)
    tifffile.imwrite(folder / "mask0001.tif", mask)
    (folder / "res_track.txt").write_text("3\t0\t1\t0\r\n\n")
    project = dlformats.read(folder)
    assert {(c.value, c.t) for c in project.cells} == {(3, 0), (3, 1)}


def test_every_independent_problem_is_reported_at_once(tmp_path):
    good = np.zeros((H, W), np.uint16)
    good[1:3, 1:3] = 1
    extra = good.copy()
    extra[6:8, 6:8] = 5  # label 5: in the mask, not in the track file
    other = np.zeros((H + 1, W), np.uint16)
    folder = save_sequence(
        tmp_path / "01_RES",
        [good, extra, None, good, other],  # frame 2 missing; frame 4 of another shape
        "1 0 3 0\n2 0 1 0\n2 1 1 0\n7 3 3 1\n",  # 2 listed twice and absent; 7 begins before its parent ends
    )
    with pytest.raises(InconsistentDataError) as info:
        dlformats.read(folder)
    text = " | ".join(p.message for p in info.value.problems)
    assert str(folder) in str(info.value)
    assert "frame(s) missing from the numbering: 2 (mask002.tif)" in text
    assert "label 2 is listed 2 times" in text
    assert "track 7 begins at frame 3, but its parent 1 ends at frame 3" in text
    assert "label 5 is in mask001.tif (frame 1), but res_track.txt does not list it" in text
    assert "label 7 (frame 3 in res_track.txt) is absent from mask003.tif" in text
    assert "mask004.tif (frame 4) has shape (1, 13, 14)" in text
    assert "label 2 (frames 0-1 in res_track.txt) is absent from mask000.tif, mask001.tif" in text


def test_float_masks_and_broken_track_lines_are_typed_errors(tmp_path):
    folder = save_sequence(tmp_path / "a", [np.ones((H, W), np.float32)] * 2, "1 0 1 0\n")
    with pytest.raises(UnsupportedFeatureError, match=r"2 file\(s\) hold floating-point values: mask000.tif"):
        dlformats.read(folder)
    folder = save_sequence(tmp_path / "b", [np.ones((H, W), np.uint16)], "1 0 0\nx 0 0 0\n1 0 0 0\n")
    with pytest.raises(CorruptFileError, match=r"2 line\(s\) are not 'L B E P'.*line 1: '1 0 0'.*line 2"):
        dlformats.read(folder)


def test_writer_refuses_overlaps_and_too_many_tracks_and_writes_nothing(tmp_path):
    project = testing.make_project(overlap=True)
    with pytest.raises(UnsupportedFeatureError, match=r"frame 0: value 9 encodes cells \[2, 5\]"):
        dlformats.write(project, tmp_path / "01_RES", format=FORMAT)
    y = np.zeros((1, 1, 4, 4), np.int32)
    many = Project(y=y, cells=[Cell(v, v, 0, 0) for v in range(1, 65538)])
    with pytest.raises(UnsupportedFeatureError, match="65,537 tracks; CTC masks are uint16 and hold at most 65,535"):
        dlformats.write(many, tmp_path / "01_RES", format=FORMAT)
    assert list(tmp_path.iterdir()) == []


def test_image_goes_to_a_raw_folder_the_user_names(tmp_path):
    project = tracking_project()
    out = write_ctc(project, tmp_path / "01_RES", image=str(tmp_path / "01"))
    assert not [p for p in out.iterdir() if p.name.startswith("t")]
    raw = sorted(p.name for p in (tmp_path / "01").iterdir())
    assert raw == [f"t{t:03d}.tif" for t in range(7)]
    assert np.array_equal(tifffile.imread(tmp_path / "01" / "t003.tif"), project.X[:, 3])
    assert ctc_valid(out) == 1
    both = dlformats.read(tmp_path / "01", labels=out)
    assert np.array_equal(np.asarray(both.X), project.X) and both.divisions == project.divisions
    (tmp_path / "02").mkdir()
    (tmp_path / "02" / "keep.txt").write_text("mine")
    for image in (str(tmp_path / "02"), str(tmp_path / "02_RES")):
        with pytest.raises(InvalidOptionError):
            dlformats.write(project, tmp_path / "02_RES", format=FORMAT, options={"image": image})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["01", "01_RES", "02"]
    assert [p.name for p in (tmp_path / "02").iterdir()] == ["keep.txt"]
