"""The geff plugin: tracking graphs in and out, proven by geff's own validators and readers, and traccuracy.

The peers (``geff``, ``traccuracy``) are imported inside the tests: they are slow to import, and a missing
peer must fail the test, not skip it.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from _tracking import H, W, expected_graph, tracking_project

import dlformats
from dlformats import (
    Cell,
    CorruptFileError,
    Division,
    DLFormatsWarning,
    LimitExceededError,
    Limits,
    NoReaderError,
    Project,
    UnsafeArchiveError,
    UnsupportedFeatureError,
    testing,
)

FIXTURES = testing.fixtures_dir()
needs_fixtures = pytest.mark.skipif(FIXTURES is None, reason="../shared/fixtures is absent")
FORMAT = "geff"


def write_geff(project: Project, path: Path, **options) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DLFormatsWarning)
        dlformats.write(project, path, format=FORMAT, options=options)
    return path


def validated(path: Path) -> dict:
    """geff's structure validation, then its in-memory read with graph, lineage and tracklet validation."""
    import geff
    from geff.validate.data import ValidationConfig

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # label_prop, written for traccuracy 0.4
        geff.validate_structure(str(path))
        config = ValidationConfig(graph=True, lineage=True, tracklet=True)
        return geff.core_io.read_to_memory(str(path), data_validation=config)


def geff_graph_in_cells(path: Path) -> tuple[set, set]:
    """``geff.read``'s graph with each node named ``(frame, cell)`` from its properties."""
    import geff

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        graph, _ = geff.read(str(path))
    name = {n: (int(a["t"]), int(a["cell"])) for n, a in graph.nodes(data=True)}
    return set(name.values()), {(name[a], name[b]) for a, b in graph.edges}


# ------------------------------------------------------------------ declaration
def test_declared_and_import_light():
    fmt = testing.check_declared(FORMAT)
    assert fmt.spec.folder and fmt.spec.extensions == (".geff",)
    testing.check_import_light("dlformats_geff")


# ------------------------------------------------------------------ writing, proven by the peers
def test_written_geff_passes_geffs_validation_and_reads_as_the_project(tmp_path):
    project = tracking_project()
    out = write_geff(project, tmp_path / "tracks.geff")
    memory = validated(out)
    assert len(memory["node_ids"]) == len(project.cells)
    meta = memory["metadata"]
    assert [(a.name, a.type, a.unit) for a in meta.axes] == [
        ("t", "time", "frame"),
        ("y", "space", "pixel"),
        ("x", "space", "pixel"),
    ]
    assert meta.track_node_props == {"tracklet": "tracklet", "lineage": "lineage"}
    assert geff_graph_in_cells(out) == expected_graph(project)
    props = memory["node_props"]
    entry = {(int(t), int(k)): i for i, (t, k) in enumerate(zip(props["t"]["values"], props["cell"]["values"]))}
    i = entry[(5, 4)]  # cell 4 in frame 5: value 9 in rows 7-9, columns 9-11
    assert props["seg_id"]["values"][i] == 9
    assert (props["y"]["values"][i], props["x"]["values"][i]) == (8.0, 10.0)


def test_traccuracy_loads_it_with_its_segmentation(tmp_path):
    from traccuracy.loaders import load_geff_data

    project = tracking_project()
    out = write_geff(project, tmp_path / "tracks.geff")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded = load_geff_data(str(out), load_geff_seg=True)
    assert np.array_equal(loaded.segmentation, project.y[0])
    graph = loaded.graph
    name = {n: (int(a["t"]), int(a["seg_id"])) for n, a in graph.nodes(data=True)}
    cell_at = {(c.t, c.value): c.cell for c in project.cells}
    named = {n: (t, cell_at[(t, v)]) for n, (t, v) in name.items()}
    assert (set(named.values()), {(named[a], named[b]) for a, b in graph.edges}) == expected_graph(project)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_roundtrip_in_both_zarr_formats(tmp_path, zarr_format):
    project = tracking_project()
    out = write_geff(project, tmp_path / "tracks.geff", zarr_format=zarr_format)
    assert (out / ("zarr.json" if zarr_format == 3 else ".zattrs")).is_file()
    validated(out)
    testing.check_sniff(FORMAT, out)
    back = testing.check_read(FORMAT, out)
    assert set(back.cells) == set(project.cells) and back.divisions == project.divisions
    testing.assert_arrays_equal(back.y, project.y, "y")
    graph_only = dlformats.read(out, options={"segmentation": False})
    assert graph_only.y is None and set(graph_only.cells) == set(project.cells)


def test_motile_tracker_layout_tracks_beside_segmentation(tmp_path):
    project = tracking_project()
    store = write_geff(project, tmp_path / "movie.geff", group="tracks")
    assert sorted(p.name for p in store.iterdir() if not p.name.startswith(".")) == ["segmentation", "tracks"]
    validated(store / "tracks")
    for source in (store, store / "tracks"):
        back = dlformats.read(source)
        assert set(back.cells) == set(project.cells)
        testing.assert_arrays_equal(back.y, project.y, "y")
    from traccuracy.loaders import load_geff_data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded = load_geff_data(str(store / "tracks"), load_geff_seg=True)
    assert np.array_equal(loaded.segmentation, project.y[0])


def test_overlapping_cells_z_frames_and_several_features_travel(tmp_path):
    overlap = testing.make_project(overlap=True, features=2)
    out = write_geff(overlap, tmp_path / "overlap.geff")
    validated(out)
    back = dlformats.read(out)
    assert set(back.cells) == set(overlap.cells) and back.divisions == overlap.divisions
    assert {Cell(9, 2, 0, 0), Cell(9, 5, 0, 0)} <= set(back.cells)  # one value, two cells: kept
    testing.assert_arrays_equal(back.y, overlap.y, "y")
    meta = validated(out)["metadata"]
    assert [a.name for a in meta.axes] == ["t", "c", "y", "x"]

    y = np.zeros((1, 3, H, W), np.int32)
    y[0, :, 2:5, 2:5] = 4
    y[0, 2, 8:10, 8:10] = 6
    stack = Project(y=y, frame_axis="Z")
    out = write_geff(stack, tmp_path / "stack.geff")
    memory = validated(out)
    assert sorted(memory["node_props"]["z"]["values"].tolist()) == [0, 1, 2, 2]
    assert set(memory["node_props"]["t"]["values"].tolist()) == {0}
    back = dlformats.read(out)
    assert back.frame_axis == "Z" and set(back.cells) == set(stack.cells_or_derived())
    testing.assert_arrays_equal(back.y, y, "y")


@needs_fixtures
def test_deepcell_label_zip_to_geff_keeps_a_parent_outliving_its_division(tmp_path):
    """The 2022 oneDivision fixture: cell 23 divides at frame 1 but is still there; geff can say so."""
    project = dlformats.read(FIXTURES / "deepcell-label/history/oneDivision_2022-06-03_nested-folder.zip")
    out = write_geff(project, tmp_path / "one.geff")
    validated(out)
    _nodes, edges = geff_graph_in_cells(out)
    assert edges == {((0, 23), (1, 23)), ((0, 23), (1, 134)), ((0, 23), (1, 135))}
    back = dlformats.read(out)
    assert back.divisions == [Division(23, [134, 135], 1)] and set(back.cells) == set(project.cells)


# ------------------------------------------------------------------ geff written by geff
def geffs_own(path: Path, zarr_format: int, *, segmentation: bool, frames: int = 5) -> tuple[Path, np.ndarray]:
    """A tracking graph written by geff itself, as other tools write it: no ``cell`` property, node ids of
    their own, a track resuming after a gap under a new seg_id, extra properties, and (optionally) the
    labels beside it as motile-tracker stores them."""
    import geff
    import networkx as nx
    import zarr
    from geff_spec import GeffMetadata, RelatedObject

    seg = np.zeros((frames, H, W), np.uint16)
    graph = nx.DiGraph()

    def node(i: int, t: int, value: int, row: int, col: int, **extra) -> None:
        seg[t, row : row + 2, col : col + 2] = value
        graph.add_node(i, t=t, y=row + 0.5, x=col + 0.5, seg_id=value, **extra)

    for t in range(3):
        node(100 + t, t, 5, 1, 1, score=0.5 + t, name=f"a{t}", vec=np.array([t, 2.0 * t]))
    for t in (3, 4):
        node(110 + t, t, 6, 1, 0, score=1.0, name="b", vec=np.array([0.0, 0.0]))
        node(120 + t, t, 7, 1, 4, score=2.0, name="c", vec=np.array([1.0, 1.0]))
    node(130, 0, 8, 8, 8, score=3.0, name="d", vec=np.array([3.0, 3.0]))
    node(132, 2, 9, 8, 9, score=4.0, name="d2", vec=np.array([4.0, 4.0]))
    graph.add_edges_from([(100, 101), (101, 102), (102, 113), (102, 123), (113, 114), (123, 124), (130, 132)])
    if segmentation:
        store = path
        zarr.open_group(str(store), mode="w", zarr_format=zarr_format)
        zarr.create_array(str(store), name="segmentation", data=seg, zarr_format=zarr_format)
        meta = GeffMetadata(
            directed=True,
            node_props_metadata={},
            edge_props_metadata={},
            related_objects=[RelatedObject(type="labels", path="../segmentation", node_prop="seg_id")],
        )
        target = store / "tracks"
    else:
        meta, target = None, path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        geff.write(
            graph,
            str(target),
            metadata=meta,
            axis_names=["t", "y", "x"],
            axis_types=["time", "space", "space"],
            axis_units=["frame", "pixel", "pixel"],
            zarr_format=zarr_format,
        )
    return path, seg


GEFFS_CELLS = {(5, 5, t) for t in range(3)} | {(6, 6, t) for t in (3, 4)} | {(7, 7, t) for t in (3, 4)}
GEFFS_CELLS |= {(8, 8, 0), (9, 8, 2)}  # the track resuming after a gap stays cell 8


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("segmentation", [True, False], ids=["with-segmentation", "graph-only"])
def test_geff_written_by_geff_reads_right(tmp_path, zarr_format, segmentation):
    path, seg = geffs_own(tmp_path / "theirs.zarr", zarr_format, segmentation=segmentation)
    project = dlformats.read(path)
    assert {(c.value, c.cell, c.t) for c in project.cells} == GEFFS_CELLS
    assert project.divisions == [Division(5, [6, 7], 3)]
    if segmentation:
        assert np.array_equal(np.asarray(project.y)[0], seg)
    else:
        assert project.y is None
    # what dlformats does not map is kept, and written back on the same nodes
    kept = project.metadata["geff"]["node_props"]
    assert {"score", "name", "vec"} <= set(kept) and (not segmentation) == ("y" in kept)
    out = write_geff(project, tmp_path / "again.geff")
    memory = validated(out)
    props = memory["node_props"]
    by_key = {(int(t), int(v)): i for i, (t, v) in enumerate(zip(props["t"]["values"], props["seg_id"]["values"]))}
    i = by_key[(2, 9)]
    assert props["score"]["values"][i] == 4.0 and props["name"]["values"][i] == "d2"
    assert props["vec"]["values"][i].tolist() == [4.0, 4.0]
    if not segmentation:  # the source's positions are the only ones there are: they stay axes
        assert [a.name for a in memory["metadata"].axes] == ["t", "y", "x"] and props["y"]["values"][i] == 8.5


# ------------------------------------------------------------------ the real sequence
@pytest.fixture(scope="module")
def hela_geff(tmp_path_factory):
    if FIXTURES is None:
        pytest.skip("../shared/fixtures is absent")
    source = FIXTURES / "traccuracy/Fluo-N2DL-HeLa/01_RES"
    out = tmp_path_factory.mktemp("hela") / "hela.geff"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DLFormatsWarning)
        dlformats.convert(source, out)
    return source, out


@needs_fixtures
def test_hela_to_geff_is_the_graph_traccuracy_sees(hela_geff):
    from traccuracy.loaders import load_ctc_data, load_geff_data

    source, out = hela_geff
    memory = validated(out)
    assert (len(memory["node_ids"]), len(memory["edge_ids"])) == (8600, 8535)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ours = load_geff_data(str(out), load_geff_seg=True)
    theirs = load_ctc_data(str(source), run_checks=False)

    def by_position(graph):
        name = {n: (int(a["t"]), round(float(a["y"]), 3), round(float(a["x"]), 3)) for n, a in graph.nodes(data=True)}
        return set(name.values()), {(name[a], name[b]) for a, b in graph.edges}

    assert by_position(ours.graph) == by_position(theirs.graph)
    assert sum(1 for n in ours.graph if ours.graph.out_degree(n) > 1) == 106
    assert ours.segmentation.shape == (92, 700, 1100)


# ------------------------------------------------------------------ bad input
def _attrs_path(path: Path) -> Path:
    return path / ".zattrs"


def test_unknown_metadata_keys_and_missing_segmentation_are_typed_errors(tmp_path):
    out = write_geff(tracking_project(), tmp_path / "a.geff")
    attrs = json.loads(_attrs_path(out).read_text())
    attrs["geff"]["colour"] = "blue"
    attrs["geff"]["directed"] = "yes"
    _attrs_path(out).write_text(json.dumps(attrs))
    with pytest.raises(CorruptFileError) as info:
        dlformats.read(out)
    assert "unknown metadata keys ['colour']" in str(info.value) and "'directed'" in str(info.value)
    assert str(out) in str(info.value)

    out = write_geff(tracking_project(), tmp_path / "b.geff")
    attrs = json.loads(_attrs_path(out).read_text())
    attrs["geff"]["related_objects"][0]["path"] = "labels"
    _attrs_path(out).write_text(json.dumps(attrs))
    with pytest.raises(CorruptFileError, match="the segmentation 'labels' named by related_objects is missing"):
        dlformats.read(out)
    attrs["geff"]["related_objects"][0]["path"] = "../../elsewhere"
    _attrs_path(out).write_text(json.dumps(attrs))
    with pytest.raises(UnsafeArchiveError, match="leaves the zarr store"):
        dlformats.read(out)


def test_unsafe_codecs_big_chunks_and_backward_edges_are_refused(tmp_path):
    out = write_geff(tracking_project(), tmp_path / "a.geff")
    zarray = out / "nodes" / "props" / "cell" / "values" / ".zarray"
    meta = json.loads(zarray.read_text())
    meta["dtype"], meta["filters"] = "|O", [{"id": "pickle"}]
    zarray.write_text(json.dumps(meta))
    with pytest.raises(UnsupportedFeatureError, match="codec 'pickle' is not supported"):
        dlformats.read(out)

    out = write_geff(tracking_project(), tmp_path / "b.geff")
    seg = out / "segmentation" / ".zarray"
    meta = json.loads(seg.read_text())
    meta["chunks"] = [7, 100_000, 100_000]
    seg.write_text(json.dumps(meta))
    with pytest.raises(LimitExceededError, match="zarr chunk too large"):
        dlformats.read(out, limits=Limits(array_bytes=1 << 30))

    out = write_geff(tracking_project(), tmp_path / "c.geff")
    import zarr

    edges = zarr.open_array(str(out / "edges" / "ids"), mode="r+")
    pairs = edges[...]
    pairs[0] = pairs[0][::-1]
    edges[...] = pairs
    with pytest.raises(UnsupportedFeatureError, match="do not go forward in time"):
        dlformats.read(out)


def test_a_plain_folder_holding_a_geff_is_not_a_geff(tmp_path):
    (tmp_path / "runs").mkdir()
    write_geff(tracking_project(), tmp_path / "runs" / "a.geff")
    with pytest.raises(NoReaderError):  # a folder of results, not a zarr store with a tracks group
        dlformats.read(tmp_path / "runs")
    assert dlformats.read(tmp_path / "runs" / "a.geff").provenance["y"].format == FORMAT
