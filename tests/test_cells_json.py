"""cells.json parsed straight into columns: the same cells as the strict parser, or the strict parser's error."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dlformats
from dlformats import Cell, CorruptFileError, LimitExceededError, Limits, Project
from dlformats.containers.codecs import _cells_columns, cells_from_bytes, cells_from_json
from dlformats.containers.jsonio import load_json
from dlformats.model import CellTable

ENTRIES = [
    {"value": 1, "cell": 1, "t": 0, "c": 0},
    {"value": 12, "cell": 30, "t": 0, "c": 1},
    {"value": 7, "cell": 1234567, "t": 199, "c": 0},
]


def strict(data: bytes):
    """What the strict parser makes of ``data``: ``(cells, has_c)`` as plain lists, or the error's class."""
    try:
        cells, has_c = cells_from_json(load_json(data, member="cells.json"))
    except CorruptFileError:
        return CorruptFileError
    return list(cells), has_c


def columns(data: bytes):
    try:
        cells, has_c = cells_from_bytes(data)
    except CorruptFileError:
        return CorruptFileError
    return list(cells), has_c


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(ENTRIES),  # what dlformats and Python write
        json.dumps(ENTRIES, separators=(",", ":")),  # what a browser's JSON.stringify writes
        json.dumps(ENTRIES, indent=2),
        "\ufeff" + json.dumps(ENTRIES),
        json.dumps([{k: e[k] for k in ("value", "cell", "t")} for e in ENTRIES]),  # older files: no "c"
        json.dumps([{k: e[k] for k in ("t", "c", "cell", "value")} for e in ENTRIES]),  # other key order
        json.dumps([{"value": -3, "cell": 0, "t": -0, "c": 10**18 - 1}]),
        json.dumps(ENTRIES[:1]),
        " [ \n ] ",
    ],
)
def test_usual_documents_are_read_as_columns_with_the_strict_parsers_result(text):
    data = text.encode("utf-8")
    assert _cells_columns(data.removeprefix(b"\xef\xbb\xbf")) is not None  # the column path took it
    cells, has_c = cells_from_bytes(data)
    assert isinstance(cells, CellTable)
    assert (list(cells), has_c) == strict(data)


def test_many_entries_span_several_chunks():
    rng = np.random.default_rng(0)
    rows = rng.integers(-5, 10**6, (300_000, 4))
    text = json.dumps([{"value": int(v), "cell": int(k), "t": int(t), "c": int(c)} for v, k, t, c in rows])
    assert len(text) > 3 << 20  # several chunks of the column parser
    cells, has_c = cells_from_bytes(text.encode())
    assert has_c and isinstance(cells, CellTable)
    np.testing.assert_array_equal(np.stack([cells.value, cells.cell, cells.t, cells.c], 1), rows)


BASE = '[{"value": 1, "cell": 1, "t": 0, "c": 0}, {"value": 2, "cell": 2, "t": 0, "c": 0}]'
INDENTED = json.dumps(ENTRIES[:2], indent=2)


@pytest.mark.parametrize(
    "text",
    [
        '[{"value": 1, "value": 2, "cell": 1, "t": 0, "c": 0}]',  # duplicate key in the first entry
        '[{"value": 1, "cell": 1, "t": 0, "c": 0}, {"value": 2, "value": 2, "t": 0, "c": 0}]',  # ... in a later one
        '[{"value": 1, "cell": 1, "t": 0, "c": 0, "c": 1}]',
        BASE.replace('"cell": 2', '"cell": NaN'),
        BASE.replace('"cell": 2', '"cell": Infinity'),
        BASE.replace('"cell": 2', '"cell": 1e400'),
        BASE.replace('"cell": 2', '"cell": 1.5'),
        BASE.replace('"cell": 2', '"cell": true'),
        BASE.replace('"cell": 2', '"cell": "2"'),
        BASE.replace('"cell": 2', '"cell": [2]'),
        BASE.replace('"cell": 2', '"cell": 02'),
        BASE.replace('"cell": 2', '"cell": -'),
        BASE.replace('"cell": 2', '"cell": 1-2'),
        BASE.replace('"cell": 2', '"cell": --2'),
        BASE.replace('"cell": 2', '"cell": -02'),
        BASE.replace('"value": 2, "cell": 2', '"value":2 2, "cell": '),  # two numbers in one slot, one empty
        BASE.replace('"value": 2, "cell": 2', '"va2lue": , "cell": 2'),  # a number hidden in a key
        INDENTED.replace('"cell": 30', '"cell": ').replace('"t": 0', '7"t": 0'),
        INDENTED.replace('"cell": 30,\n    ', '"cell": ,\n  7  '),  # a number in the whitespace before a key
        BASE.replace("}]", "},]"),  # trailing comma
        BASE.replace("}, {", "} {"),
        BASE[:-10],  # truncated
        BASE + " x",
        "[" * 5000 + "]" * 5000,
        '{"value": 1, "cell": 1, "t": 0, "c": 0}',  # an object, not a list
        '[{"value": 1, "cell": 1, "t": 0, "c": 0}, {"value": 2, "cell": 2, "t": 0, "c": 0, "x": 1}]',
        '[{"value": 1, "cell": 1, "t": 0, "c": 0}, {"value": 2, "cell": 2, "t": 0}]',
        '[{"value": 1, "cell": 1}]',
        '[{"value": 1, "cell": 1, "t": 0, "c": {"c": 0}}]',
    ],
)
def test_doubtful_documents_get_the_strict_parsers_answer(text):
    data = text.encode()
    expected = strict(data)
    assert columns(data) == expected


def test_duplicate_keys_are_refused_by_name():
    data = b'[{"value": 1, "cell": 1, "t": 0, "c": 0}, {"value": 2, "cell": 2, "cell": 3, "t": 0, "c": 0}]'
    with pytest.raises(CorruptFileError, match="duplicate key 'cell'") as info:
        cells_from_bytes(data, path="p.zip")
    assert (info.value.path, info.value.member) == ("p.zip", "cells.json")


def test_values_that_are_whole_floats_or_beyond_int64_still_read_through_the_strict_parser():
    assert columns(BASE.replace('"cell": 2', '"cell": 2.0').encode()) == strict(BASE.encode())
    big = BASE.replace('"cell": 2', f'"cell": {10**19}').encode()
    assert columns(big) == strict(big) and columns(big)[0][1].cell == 10**19


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(*[st.integers(-(10**19), 10**19)] * 4), max_size=6),
    st.sampled_from([(", ", ": "), (",", ":"), (",\n  ", " : ")]),
    st.lists(st.tuples(st.integers(0, 400), st.sampled_from(list(b' ,:{}[]"-0123456789.eEcvtx\n'))), max_size=3),
)
def test_any_edit_of_a_document_reads_as_the_strict_parser_reads_it(rows, separators, edits):
    entries = [{"value": v, "cell": k, "t": t, "c": c} for v, k, t, c in rows]
    data = bytearray(json.dumps(entries, separators=separators).encode())
    for at, byte in edits:  # overwrite, insert or delete a byte
        at %= len(data) + 1
        if byte in b"-0" and at < len(data):
            del data[at]
        elif byte in b"123":
            data.insert(at, byte)
        elif at < len(data):
            data[at] = byte
    assert columns(bytes(data)) == strict(bytes(data))


def _zip_with_cells(path, cells_json: bytes):
    buf = io.BytesIO()
    dlformats.write(Project(X=np.zeros((1, 2, 4, 4), np.uint8), cells=[]), path)
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            dst.writestr(name, cells_json if name == "cells.json" else src.read(name))
    path.write_bytes(buf.getvalue())
    return path


def test_a_project_zips_cells_json_beyond_json_bytes_reads_in_its_usual_form_only(tmp_path):
    entries = [{"value": 1, "cell": i, "t": i % 2, "c": 0} for i in range(1, 3000)]
    usual = _zip_with_cells(tmp_path / "usual.zip", json.dumps(entries).encode())
    limits = Limits(json_bytes=4096)
    project = dlformats.read(usual, limits=limits)
    assert isinstance(project.cells, CellTable) and project.cells[-1] == Cell(1, 2999, 1, 0)
    # the dict form is held to json_bytes: it is parsed into Python objects
    dict_form = {"0": {str(i): {"label": i, "frames": [0]} for i in range(1, 3000)}}
    other = _zip_with_cells(tmp_path / "dict.zip", json.dumps(dict_form).encode())
    with pytest.raises(LimitExceededError) as info:
        dlformats.read(other, limits=limits)
    assert (info.value.limit, info.value.member) == ("json_bytes", "cells.json")
    with pytest.raises(LimitExceededError) as info:  # and the usual form by member_bytes
        dlformats.read(usual, limits=limits.replace(member_bytes=4096))
    assert (info.value.limit, info.value.member) == ("member_bytes", "cells.json")


def _pixel_problems_one_by_one(project):
    """What the pixel checks report, computed the plain way (sets of Python ints per plane)."""
    from dlformats.model import label_problems

    out = []
    listed: dict = {}
    for cell in project.cells:
        listed.setdefault((cell.c, cell.t), set()).add(cell.value)
    for c in range(project.y.shape[0]):
        for t in range(project.y.shape[1]):
            plane = np.asarray(project.y[c, t])
            issues = label_problems(plane)
            out += [f"y: feature {c} frame {t}: {i}" for i in issues]
            if issues and plane.dtype.kind not in "iub":
                continue
            present = {int(v) for v in np.unique(plane).tolist()} - {0}  # label values are whole numbers
            there = listed.get((c, t), set())
            if sorted(there - present):
                out.append(f"cells: feature {c} frame {t}: values {sorted(there - present)[:20]} listed but absent")
            if sorted(present - there):
                out.append(f"y: feature {c} frame {t}: values {sorted(present - there)[:20]} used by no cell")
    return out


@pytest.mark.parametrize("dtype", [np.int32, np.uint16, np.int64, np.float32, bool])
def test_pixel_checks_report_absent_and_unused_values_per_plane(dtype):
    rng = np.random.default_rng(11)
    y = rng.integers(0, 40, (2, 4, 16, 16))
    if dtype is bool:
        y = y > 30
    y = y.astype(dtype)
    if dtype == np.int64:
        y[1, 2, 0, 0] = 2**40  # beyond int32: reported, and compared exactly
        y[0, 1, 0, 0] = -3
    cells = [Cell(int(v), int(v) + 1000, t, c) for c in range(2) for t in range(4) for v in range(0, 45, 3)]
    cells += [Cell(7, 7, 9, 0), Cell(5, 5, 1, 3)]  # a frame and a feature without planes
    project = Project(y=y, cells=cells)
    found = [f"{p.part}: {p.message}" for p in project.validate(pixels=True) if "feature" in p.message]
    expected = _pixel_problems_one_by_one(project)
    assert [
        m for m in found if "listed but absent" in m or "used by no cell" in m or "int32" in m or "negative" in m
    ] == [m for m in expected]
    assert any("used by no cell" in m for m in expected) and any("listed but absent" in m for m in expected)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(*[st.integers(-2, 6)] * 4), max_size=40),
    st.sampled_from([(5, 2), (None, None)]),
)
def test_vectorised_cell_checks_say_what_a_pass_cell_by_cell_says(rows, sizes):
    from dlformats.model import _cell_problems, _cell_problems_slow

    cells = [Cell(*row) for row in rows]
    frames, features = sizes
    fast = _cell_problems(cells, frames, features)
    assert fast == _cell_problems_slow(cells, frames, features)
    assert _cell_problems(CellTable.from_cells(cells), frames, features) == fast
    huge = [*cells, Cell(2**70, 1, 0, 0)]  # beyond int64: still checked
    assert _cell_problems(huge, frames, features) == _cell_problems_slow(huge, frames, features)
