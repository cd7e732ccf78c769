"""The browser client's edit zip and the server's answer: every action and writeMode, non-square frames, bad zips."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from dlformats_editzip import ACTIONS, EditRequest, read_edit, write_edit, write_edit_answer
from dlformats_editzip.writemode import write_mask

import dlformats
from dlformats import (
    Cell,
    CorruptFileError,
    InconsistentDataError,
    InvalidOptionError,
    LimitExceededError,
    Limits,
    UnsupportedFeatureError,
    testing,
)

FORMAT = "dcl-edit-zip"
H, W = 5, 8  # non-square on purpose: the reference server swaps height and width for raw.dat
LABELS = np.zeros((H, W), np.int32)
LABELS[1:3, 1:4] = 1
LABELS[3:5, 5:8] = 2
LABELS[0, 7] = 3  # a corner pixel: (y 0, x 7) is only in range when width is 8
IMAGE = (np.arange(H * W) * 7 % 256).astype(np.uint8).reshape(H, W)
T, C = 4, 1
CELLS = [{"value": 1, "cell": 1, "t": T, "c": C}, {"value": 2, "cell": 2, "t": T, "c": C}]
CELLS.append({"value": 3, "cell": 3, "t": T, "c": C})

ARGS = {
    "draw": {"trace": "[[0,0],[7,4],[3,2]]", "brush_size": 2, "cell": 4, "erase": False},
    "trim_pixels": {"cell": 1, "x": 7, "y": 4},
    "flood": {"foreground": 5, "background": 0, "x": 0, "y": 4},
    "watershed": {"cell": 1, "new_cell": 6, "x1": 1, "y1": 1, "x2": 3, "y2": 2},
    "threshold": {"x1": 0, "y1": 0, "x2": 7, "y2": 4, "cell": 7},
    "active_contour": {"cell": 2, "min_pixels": 20, "iterations": 100, "dilate": 0},
    "erode": {"cell": 1},
    "dilate": {"cell": 2},
}
USES_RAW = {"active_contour", "threshold", "watershed"}


def client_edit_zip(
    path: Path,
    action: str,
    *,
    args: dict | None = None,
    write_mode: str | None = "exclude",
    edit: dict | None = None,
    cells: list[dict] | None = None,
    labels: np.ndarray = LABELS,
    image: np.ndarray | None = IMAGE,
    drop: tuple[str, ...] = (),
    replace: dict[str, bytes] | None = None,
) -> Path:
    """Build an edit zip as the client does: edit.json, cells.json, labeled.dat, then raw.dat for image actions."""
    body = {"width": labels.shape[1], "height": labels.shape[0], "action": action, "args": args or ARGS[action]}
    if write_mode is not None:  # JSON.stringify drops an undefined writeMode
        body["writeMode"] = write_mode
    body.update(edit or {})
    members = {
        "edit.json": json.dumps(body).encode(),
        "cells.json": json.dumps(CELLS if cells is None else cells).encode(),
        "labeled.dat": labels.astype("<i4").tobytes(),
    }
    if action in USES_RAW and image is not None:
        members["raw.dat"] = image.astype("<u1").tobytes()
    members.update(replace or {})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            if name not in drop:
                zf.writestr(name, data)
    return path


# ------------------------------------------------------------------ reading
@pytest.mark.parametrize("write_mode", ["overlap", "overwrite", "exclude", None])
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_every_action_and_write_mode_reads_and_round_trips(tmp_path, action, write_mode):
    path = client_edit_zip(tmp_path / "edit.zip", action, write_mode=write_mode)
    request = read_edit(path)
    assert request.action == action
    assert request.write_mode == (write_mode or "overlap")  # the server's default
    assert (request.height, request.width) == (H, W)
    np.testing.assert_array_equal(request.labels, LABELS)
    if action in USES_RAW:
        np.testing.assert_array_equal(request.image, IMAGE)
    else:
        assert request.image is None
    assert request.cells == [Cell(v, v, T, C) for v in (1, 2, 3)] and request.frame == (T, C)
    expected_args = dict(ARGS[action])
    if action == "draw":
        expected_args["trace"] = [(0, 0), (7, 4), (3, 2)]
    assert request.args == expected_args

    again = tmp_path / "again.zip"
    write_edit(again, request)
    back = read_edit(again)
    assert (back.action, back.args, back.write_mode, back.cells) == (
        action,
        request.args,
        request.write_mode,
        request.cells,
    )
    np.testing.assert_array_equal(back.labels, LABELS)
    assert (back.image is None) == (request.image is None)
    with zipfile.ZipFile(again) as zf:
        assert json.loads(zf.read("edit.json"))["args"] == ARGS[action]  # trace written back as a JSON string
        assert zf.namelist()[:3] == ["edit.json", "cells.json", "labeled.dat"]


def test_read_as_a_project_and_written_back(tmp_path):
    path = client_edit_zip(tmp_path / "edit.zip", "watershed", write_mode="overwrite")
    project = testing.check_read(FORMAT, path)
    assert project.y.shape == (1, 1, H, W) and project.X.shape == (1, 1, H, W) and project.X.dtype == np.uint8
    np.testing.assert_array_equal(project.y[0, 0], LABELS)
    np.testing.assert_array_equal(project.X[0, 0], IMAGE)
    assert sorted(project.cells) == [Cell(v, v, 0, 0) for v in (1, 2, 3)]
    edit = project.metadata["edit"]
    assert (edit["action"], edit["writeMode"], edit["t"], edit["c"]) == ("watershed", "overwrite", T, C)
    assert edit["args"] == ARGS["watershed"]
    out = tmp_path / "out.zip"
    dlformats.write(project, out, format=FORMAT)
    assert read_edit(out).cells == [Cell(v, v, T, C) for v in (1, 2, 3)]  # frame and feature restored
    testing.check_roundtrip(FORMAT, project, tmp_path / "round.zip")


def test_edit_zips_are_chosen_by_content(tmp_path):
    path = client_edit_zip(tmp_path / "labels.zip", "erode")
    testing.check_sniff(FORMAT, path)
    testing.check_sniff(FORMAT, path.read_bytes(), file_name="labels.zip")


def test_conformance():
    testing.check_declared(FORMAT)
    testing.check_import_light("dlformats_editzip")


def test_raw_dat_is_read_as_height_by_width(tmp_path):
    image = np.zeros((H, W), np.uint8)
    image[0, W - 1] = 255  # top-right corner; read as (width, height) it would land elsewhere
    request = read_edit(client_edit_zip(tmp_path / "e.zip", "threshold", image=image))
    assert request.image.shape == (H, W) and request.image[0, W - 1] == 255 and request.image.sum() == 255


# ------------------------------------------------------------------ answer
def parse_answer_as_the_client_does(data: bytes, height: int, width: int) -> tuple[np.ndarray, list[dict]]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        entries = zf.infolist()  # the client reads entries by position: 0 labels, 1 cells
        labeled = np.frombuffer(zf.read(entries[0]), "<i4").reshape(height, width)
        cells = json.loads(zf.read(entries[1]))
    return labeled, cells


@pytest.mark.parametrize("write_mode", ["overlap", "overwrite", "exclude"])
def test_server_round_trip_with_the_write_mode(tmp_path, write_mode):
    """Read an edit, write a mask with its writeMode, answer: what a server on dlformats does."""
    request = read_edit(client_edit_zip(tmp_path / "e.zip", "dilate", write_mode=write_mode))
    mask = np.zeros((H, W), bool)
    mask[2:4, 2:6] = True  # over cell 1, background and cell 2
    t, c = request.frame
    labels, cells = write_mask(request.labels, request.cells, mask, 2, request.write_mode, t=t, c=c)
    answer = tmp_path / "answer.zip"
    write_edit_answer(answer, labels, cells)
    with zipfile.ZipFile(answer) as zf:
        assert zf.namelist() == ["labeled.dat", "cells.json"]
    got, got_cells = parse_answer_as_the_client_does(answer.read_bytes(), H, W)
    np.testing.assert_array_equal(got, labels)
    assert all(cell["t"] == T and cell["c"] == C for cell in got_cells)
    by_value = {}
    for cell in got_cells:
        by_value.setdefault(cell["value"], set()).add(cell["cell"])
    assert set(by_value) == set(np.unique(got).tolist()) - {0}
    pixel = by_value.get(int(got[2, 2]), set())  # was cell 1
    assert pixel == {"overlap": {1, 2}, "overwrite": {2}, "exclude": {1}}[write_mode]
    assert by_value[int(got[3, 4])] == {2}  # was background


def test_answer_to_a_file_object():
    buffer = io.BytesIO()
    write_edit_answer(buffer, LABELS, [Cell(1, 1, T, C), Cell(9, 4, T, C)])
    got, cells = parse_answer_as_the_client_does(buffer.getvalue(), H, W)
    np.testing.assert_array_equal(got, LABELS)
    assert cells == [{"value": 1, "cell": 1, "t": T, "c": C}, {"value": 9, "cell": 4, "t": T, "c": C}]


@pytest.mark.parametrize(
    ("labels", "error", "text"),
    [
        (np.zeros((1, 2, 3), np.int32), InvalidOptionError, "must have shape (height, width)"),
        (np.full((2, 2), 2**40), InconsistentDataError, "values 1099511627776 do not fit in int32"),
    ],
)
def test_a_bad_answer_writes_nothing(tmp_path, labels, error, text):
    with pytest.raises(error) as info:
        write_edit_answer(tmp_path / "answer.zip", labels, [])
    assert text in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_writing_an_invalid_request_is_refused(tmp_path):
    bad = EditRequest("flood", {"foreground": 1, "background": 0, "x": W, "y": 0}, "overlap", LABELS)
    with pytest.raises(CorruptFileError, match=r"x in 0\.\.7"):
        write_edit(tmp_path / "e.zip", bad)
    without_image = EditRequest("threshold", ARGS["threshold"], "exclude", LABELS)
    with pytest.raises(InvalidOptionError, match="needs the image"):
        write_edit(tmp_path / "e.zip", without_image)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------- bad files
def draw(**changes):
    return {**ARGS["draw"], **changes}


BAD = [
    ({"edit": {"action": "paint"}}, UnsupportedFeatureError, "action 'paint' is not one of draw, trim_pixels"),
    ({"edit": {"action": 3}}, CorruptFileError, "action 3 is not one of"),
    ({"write_mode": "blend"}, UnsupportedFeatureError, "writeMode 'blend' is not one of overlap, overwrite, exclude"),
    ({"write_mode": None, "edit": {"writeMode": None}}, CorruptFileError, "writeMode None"),
    ({"edit": {"height": 2.5}}, CorruptFileError, "'height' must be a positive integer, found 2.5 (float)"),
    ({"edit": {"width": 0}}, CorruptFileError, "'width' must be a positive integer, found 0"),
    ({"edit": {"width": True}}, CorruptFileError, "found True (bool)"),
    ({"edit": {"height": W, "width": H}}, CorruptFileError, "x in 0..4 (width), found 7"),
    (
        {"edit": {"height": 4}, "args": draw(trace="[[0, 0]]")},
        CorruptFileError,
        "holds 160 bytes, expected 128 (4 x 8 values of 4 bytes",
    ),
    ({"edit": {"extra": 1}}, CorruptFileError, "unexpected keys ['extra']"),
    ({"edit": {"args": []}}, CorruptFileError, "'args' must be an object"),
    ({"args": draw(brush_size=0)}, CorruptFileError, "'brush_size' must be an integer >= 1 below 2**31, found 0"),
    ({"args": draw(cell=True)}, CorruptFileError, "'cell' must be an integer >= 1"),
    ({"args": draw(erase="no")}, CorruptFileError, "'erase' must be true or false, found 'no'"),
    ({"args": draw(trace=[[1, 1]])}, CorruptFileError, "must be a JSON string of [[x, y], ...] points, found list"),
    ({"args": draw(trace="[[1, 1]")}, CorruptFileError, "invalid JSON"),
    ({"args": draw(trace="[[1, 1, 1]]")}, CorruptFileError, "point 0 must be [x, y]"),
    ({"args": draw(trace="[[1, 5]]")}, CorruptFileError, "point 0 must be an integer y in 0..4 (height), found 5"),
    ({"args": draw(trace="[[-1, 0]]")}, CorruptFileError, "found -1"),
    ({"args": {"cell": 1, "x": 0}}, CorruptFileError, "draw takes arguments trace, brush_size, cell, erase; missing"),
    ({"args": draw(color=1)}, CorruptFileError, "unexpected ['color']"),
    ({"drop": ("labeled.dat",)}, CorruptFileError, "edit zip lacks labeled.dat"),
    ({"drop": ("cells.json",)}, CorruptFileError, "edit zip lacks cells.json"),
    (
        {"replace": {"cells.json": json.dumps([*CELLS, {"value": 1, "cell": 1, "t": 0, "c": C}]).encode()}},
        CorruptFileError,
        "cells of one frame expected; found 2 (t, c) pairs",
    ),
    ({"replace": {"labeled.dat": b"\0" * 159}}, CorruptFileError, "holds 159 bytes, expected 160"),
    ({"replace": {"edit.json": b'{"height": 5, "height": 5}'}}, CorruptFileError, "duplicate key"),
]


@pytest.mark.parametrize(("change", "error", "text"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_edit_zips_fail_with_a_typed_error_and_write_nothing(tmp_path, change, error, text):
    (tmp_path / "in").mkdir()
    out = tmp_path / "out"
    out.mkdir()
    src = client_edit_zip(tmp_path / "in" / "edit.zip", "draw", **change)
    with pytest.raises(error) as info:
        read_edit(src)
    assert text in str(info.value) and str(src) in str(info.value)
    with pytest.raises(error):
        dlformats.convert(src, out / "project.zip", from_format=FORMAT)
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("action", sorted(USES_RAW))
def test_image_actions_need_raw_dat(tmp_path, action):
    src = client_edit_zip(tmp_path / "e.zip", action, image=None)
    with pytest.raises(CorruptFileError, match=f"edit zip lacks raw.dat; action {action} needs"):
        read_edit(src)


def test_a_raw_dat_of_the_wrong_size_is_refused(tmp_path):
    src = client_edit_zip(tmp_path / "e.zip", "threshold", image=np.zeros((W, W), np.uint8))
    with pytest.raises(CorruptFileError, match="holds 64 bytes, expected 40"):
        read_edit(src)


def test_buffers_over_the_limit_are_refused(tmp_path):
    src = client_edit_zip(tmp_path / "e.zip", "erode")
    with pytest.raises(LimitExceededError) as info:
        read_edit(src, limits=Limits().replace(array_bytes=100))
    assert info.value.found == H * W * 4


def test_not_an_edit_zip(tmp_path):
    src = client_edit_zip(tmp_path / "e.zip", "erode", drop=("edit.json",))
    with pytest.raises(CorruptFileError, match="not an edit zip"):
        read_edit(src)
    with pytest.raises(CorruptFileError, match="not an edit zip"):
        read_edit(b"plain text")
