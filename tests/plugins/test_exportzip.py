"""The browser client's export zip: read as the client builds it, convert, round trip, refuse bad ones."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import dlformats
from dlformats import (
    Cell,
    CellType,
    CorruptFileError,
    LimitExceededError,
    Limits,
    NoReaderError,
    UnsupportedFeatureError,
    testing,
)
from dlformats.model import apply_export_rule

FORMAT = "dcl-export-zip"
JS = {
    "Uint8Array": "<u1",
    "Int8Array": "<i1",
    "Uint16Array": "<u2",
    "Int16Array": "<i2",
    "Uint32Array": "<u4",
    "Int32Array": "<i4",
    "Float32Array": "<f4",
    "Float64Array": "<f8",
}


def client_export_zip(
    path: Path,
    X: np.ndarray,
    y: np.ndarray,
    *,
    dtype: str,
    channels: list[str],
    cells: list[dict],
    cell_types: list[dict] | None = None,
    divisions: list[dict] | None = None,
    spots: list[list[float]] | None = None,
    dims: dict | None = None,
    drop: tuple[str, ...] = (),
    replace: dict[str, bytes] | None = None,
    compression: int = zipfile.ZIP_DEFLATED,
) -> Path:
    """Build an export zip as the client does: members in its order, buffers from typed arrays, JSON.stringify."""
    dimensions = {
        "width": X.shape[3],
        "height": X.shape[2],
        "duration": X.shape[1],
        "numChannels": X.shape[0],
        "numFeatures": y.shape[0],
        "dtype": dtype,
    }
    dimensions.update(dims or {})
    members = {
        "dimensions.json": json.dumps(dimensions).encode(),
        "labeled.dat": y.astype("<i4").tobytes(),
        "raw.dat": X.astype(JS.get(dtype, "<u1")).tobytes(),
        "channels.json": json.dumps(channels).encode(),
        "cells.json": json.dumps(cells).encode(),
        "cellTypes.json": json.dumps(cell_types or []).encode(),
        "divisions.json": json.dumps(divisions or []).encode(),
    }
    if spots is not None:  # the client writes "x,y\n" and rows joined by "\n", no trailing newline
        members["spots.csv"] = ("x,y\n" + "\n".join(",".join(map(str, s)) for s in spots)).encode()
    members.update(replace or {})
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            if name not in drop:
                zf.writestr(name, data)
    return path


def cell_dicts(cells: list[Cell]) -> list[dict]:
    return [{"value": c.value, "cell": c.cell, "t": c.t, "c": c.c} for c in cells]


@pytest.fixture
def project():
    """Two features, a non-square frame, overlapping cells 2 and 5 (value 9) in feature 0, frame 0."""
    p = testing.make_project(channels=2, frames=3, height=10, width=9, features=2, dtype="uint16", overlap=True)
    p.cell_types = [CellType(1, "nucleus", "#ff0000", 0, [1, 2])]
    return p


def export_of(project, path: Path, **kwargs) -> Path:
    args = {
        "dtype": "Uint16Array",
        "channels": project.channels,
        "cells": cell_dicts(project.cells),
        "cell_types": [{"id": 1, "name": "nucleus", "color": "#ff0000", "feature": 0, "cells": [1, 2]}],
        "divisions": [{"parent": d.parent, "daughters": d.daughters, "t": d.t} for d in project.divisions],
        "spots": [[1.5, 2.5], [3, 4.25], [0, 6]],
    }
    args.update(kwargs)
    return client_export_zip(path, project.X, project.y, **args)


# ------------------------------------------------------------------ reading
def test_reads_every_part_as_the_client_sent_it(tmp_path, project):
    path = export_of(project, tmp_path / "export.zip")
    back = testing.check_read(FORMAT, path)
    testing.assert_projects_equal(project, back, ("X", "y", "cells", "divisions", "channels", "cell_types"))
    assert back.X.dtype == np.uint16 and back.frame_shape == (10, 9)
    assert back.spots.x == [1.5, 3.0, 0.0] and back.spots.y == [2.5, 4.25, 6.0]  # the last line is kept


@pytest.mark.parametrize("name", sorted(JS))
@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED], ids=["stored", "deflated"])
def test_every_typed_array_name_is_understood(tmp_path, name, compression):
    dtype = np.dtype(JS[name])
    low, high = (np.iinfo(dtype).min, np.iinfo(dtype).max) if dtype.kind in "iu" else (-3e38, 3e38)
    X = np.linspace(low, high, 2 * 2 * 3 * 4).astype(dtype).reshape(2, 2, 3, 4)
    y = np.arange(2 * 3 * 4, dtype=np.int32).reshape(1, 2, 3, 4)
    path = client_export_zip(
        tmp_path / "e.zip", X, y, dtype=name, channels=["a", "b"], cells=[], compression=compression
    )
    back = dlformats.read(path)
    assert back.X.dtype == dtype.newbyteorder("=")
    np.testing.assert_array_equal(np.asarray(back.X), X)
    np.testing.assert_array_equal(np.asarray(back.y), y)


def test_cells_without_feature_get_the_feature_holding_their_value(tmp_path, project):
    cells = [{"value": 1, "cell": 1, "t": 0}]  # older client: no "c"; value 1 is in both features at frame 0
    back = dlformats.read(export_of(project, tmp_path / "e.zip", cells=cells))
    assert sorted(back.cells) == [Cell(1, 1, 0, 0), Cell(1, 1, 0, 1)]


def test_unnamed_channels_read_as_no_names(tmp_path, project):
    back = dlformats.read(export_of(project, tmp_path / "e.zip", channels=["", ""]))
    assert back.channels == []


# ------------------------------------------------------------------ convert
def test_convert_gives_the_project_zip_with_the_export_rule_applied(tmp_path, project):
    assert "dcl-project-zip" in {f["name"] for f in dlformats.formats()}, "the built-in project zip is not registered"
    src = export_of(project, tmp_path / "export.zip")
    dst = tmp_path / "project.zip"
    dlformats.convert(src, dst)
    back = dlformats.read(dst)
    assert back.metadata["format"] == "dcl-project-zip"
    y_rule, cells_rule = apply_export_rule(project.y, project.cells)
    testing.assert_arrays_equal(back.X, project.X, "X")
    testing.assert_arrays_equal(back.y, y_rule, "y")
    assert sorted(back.cells) == sorted(cells_rule)
    assert back.channels == project.channels
    assert [(t.name, t.cells) for t in back.cell_types] == [("nucleus", [1, 2])]
    # cells 2 and 5 shared value 9: now a value above every cell (5), encoding both
    shared = {c.cell for c in back.cells if (c.t, c.c) == (0, 0) and c.value == 6}
    assert shared == {2, 5}
    assert set(np.unique(np.asarray(back.y)[0, 0]).tolist()) == {0, 1, 6}


def test_convert_from_the_command_line(tmp_path, project):
    assert "dcl-project-zip" in {f["name"] for f in dlformats.formats()}, "the built-in project zip is not registered"
    src = export_of(project, tmp_path / "export.zip")
    run = subprocess.run(
        [sys.executable, "-m", "dlformats.cli", "convert", str(src), str(tmp_path / "project.zip")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert dlformats.read(tmp_path / "project.zip").metadata["format"] == "dcl-project-zip"


# ------------------------------------------------------------------ writing
@pytest.mark.parametrize("dtype", ["uint8", "int16", "float32", "float64", "uint32"])
def test_round_trip(tmp_path, dtype):
    project = testing.make_project(height=6, width=9, features=2, dtype=dtype, overlap=True)
    project.cell_types = [CellType(2, "dividing", "#00ff00", 1, [3, 4])]
    back = testing.check_roundtrip(FORMAT, project, tmp_path / "out.zip")
    assert back.spots is not None and back.spots.columns == {"cellID": [1, 2, None]}


def test_written_zip_is_what_the_client_writes(tmp_path):
    project = testing.make_project(height=4, width=3, dtype="int8")
    path = tmp_path / "out.zip"
    dlformats.write(project, path, format=FORMAT)
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == [
            "dimensions.json",
            "labeled.dat",
            "raw.dat",
            "channels.json",
            "cells.json",
            "cellTypes.json",
            "divisions.json",
            "spots.csv",
        ]
        dims = json.loads(zf.read("dimensions.json"))
        raw = zf.read("raw.dat")
    assert dims == {"width": 3, "height": 4, "duration": 3, "numChannels": 2, "numFeatures": 1, "dtype": "Int8Array"}
    assert raw == project.X.astype("<i1").tobytes()


def test_writer_refuses_an_image_dtype_javascript_cannot_hold(tmp_path):
    project = testing.make_project(dtype="int64")
    with pytest.raises(UnsupportedFeatureError, match="int64"):
        dlformats.write(project, tmp_path / "out.zip", format=FORMAT)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------- bad files
BAD = [
    ({"dims": {"height": 0}}, CorruptFileError, "'height' must be a positive integer, found 0"),
    ({"dims": {"width": -5}}, CorruptFileError, "'width' must be a positive integer, found -5"),
    ({"dims": {"duration": 3.0}}, CorruptFileError, "'duration' must be a positive integer, found 3.0 (float)"),
    ({"dims": {"numChannels": True}}, CorruptFileError, "found True (bool)"),
    ({"dims": {"numFeatures": "2"}}, CorruptFileError, "found '2' (str)"),
    ({"dims": {"height": None}}, CorruptFileError, "found None"),
    ({"dims": {"height": 8}}, CorruptFileError, "holds 2,160 bytes, expected 1,728 (2 x 3 x 8 x 9 values of 4 bytes"),
    ({"dims": {"width": 2**40, "height": 2**40}}, CorruptFileError, f"expected {24 * 2**80:,}"),
    ({"dims": {"dtype": "BigInt64Array"}}, UnsupportedFeatureError, "dtype 'BigInt64Array' is not one of Uint8Array"),
    ({"dims": {"dtype": 16}}, CorruptFileError, "found 16"),
    ({"dims": {"dtype": "Uint8Array"}}, CorruptFileError, "holds 1,080 bytes, expected 540"),
    ({"drop": ("labeled.dat",)}, CorruptFileError, "export zip lacks labeled.dat"),
    ({"drop": ("cells.json", "divisions.json")}, CorruptFileError, "lacks cells.json, divisions.json"),
    ({"replace": {"raw.dat": b"\0" * 1079}}, CorruptFileError, "holds 1,079 bytes, expected 1,080"),
    ({"replace": {"dimensions.json": b"[1, 2]"}}, CorruptFileError, "expected an object of sizes, found list"),
    ({"replace": {"dimensions.json": b'{"height": NaN}'}}, CorruptFileError, "NaN"),
    ({"replace": {"channels.json": b'["one"]'}}, CorruptFileError, "1 channel names, expected numChannels = 2"),
    ({"replace": {"cells.json": b'[{"value": 1}]'}}, CorruptFileError, "lacks 'cell'"),
]


@pytest.mark.parametrize(("change", "error", "text"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_export_zips_fail_with_a_typed_error_and_write_nothing(tmp_path, project, change, error, text):
    (tmp_path / "in").mkdir()
    out = tmp_path / "out"
    out.mkdir()
    src = export_of(project, tmp_path / "in" / "export.zip", **change)
    with pytest.raises(error) as info:
        dlformats.convert(src, out / "project.zip")
    assert text in str(info.value)
    assert str(src) in str(info.value)
    assert list(out.iterdir()) == []


def test_dimensions_are_checked_before_any_buffer_is_read(tmp_path, project, monkeypatch):
    from dlformats.containers.archive import SafeZip

    read = SafeZip.read
    seen = []
    monkeypatch.setattr(SafeZip, "read", lambda self, name: seen.append(name) or read(self, name))
    src = export_of(project, tmp_path / "export.zip", dims={"height": 2**31, "width": 2**31})
    with pytest.raises(CorruptFileError):
        dlformats.read(src)
    assert seen == ["dimensions.json"]


@pytest.mark.parametrize(("limit", "value"), [("array_bytes", 400), ("total_bytes", 1000)])
def test_buffers_over_the_limits_are_refused(tmp_path, project, limit, value):
    src = export_of(project, tmp_path / "export.zip")
    with pytest.raises(LimitExceededError) as info:
        dlformats.read(src, limits=Limits().replace(**{limit: value}))
    assert info.value.limit == limit and info.value.allowed == value


def test_a_stored_buffer_with_a_bad_crc_is_refused(tmp_path, project):
    src = export_of(project, tmp_path / "export.zip", compression=zipfile.ZIP_STORED)
    data = bytearray(src.read_bytes())
    at = data.index(project.X.astype("<u2").tobytes()[:40])
    data[at] ^= 0xFF
    src.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="CRC"):
        dlformats.read(src)


def test_a_zip_without_dimensions_json_is_not_an_export_zip(tmp_path, project):
    src = export_of(project, tmp_path / "export.zip", drop=("dimensions.json",))
    with pytest.raises(NoReaderError):
        dlformats.read(src, format=FORMAT)


# ------------------------------------------------------------- conformance
def test_conformance(tmp_path, project):
    testing.check_declared(FORMAT)
    testing.check_import_light("dlformats_exportzip")
    path = export_of(project, tmp_path / "export.zip")
    testing.check_sniff(FORMAT, path)
    testing.check_sniff(FORMAT, path.read_bytes(), file_name="labels.zip")
    testing.check_roundtrip(FORMAT, project, tmp_path / "round.zip")


def test_project_zips_are_not_claimed(tmp_path):
    fixtures = testing.fixtures_dir()
    if fixtures is None:
        pytest.skip("no fixtures")
    testing.check_sniff("dcl-project-zip", fixtures / "deepcell-label" / "oneDivision.zip")
