"""dlformats.model: a project validated part by part, and DeepCell Label's export rule."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlformats import Cell, CellType, Division, InconsistentDataError, Project, Spots
from dlformats.model import apply_export_rule, plan_export


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
    # cell 1 divides into 2 and 3: value 1 in frame 1 is cell 3
    project = base_project(cells=[Cell(1, 1, 0), Cell(1, 3, 1), Cell(2, 2, 1)], divisions=[Division(1, [2, 3], 1)])
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


_cell_rows = st.lists(
    st.tuples(st.integers(1, 40), st.integers(-3, 2**40), st.integers(0, 30), st.integers(0, 2)), max_size=300
)


@settings(max_examples=150, deadline=None)
@given(_cell_rows)
def test_distinct_cells_and_frame_spans_match_a_plain_count(rows):
    """The vectorised counts behind ``info`` and the division-timing check agree with set arithmetic."""
    from dlformats.model import CellTable, _frame_spans, _unique_ints

    table = CellTable([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows])
    assert table.distinct() == len({(c, cell) for _, cell, _, c in rows})
    single = CellTable(table.value, table.cell, table.t, np.zeros(len(rows), np.int64))
    assert single.distinct() == len({cell for _, cell, _, _ in rows})
    spans: dict[int, list[int]] = {}
    for _, cell, t, _ in rows:
        spans.setdefault(cell, []).append(t)
    assert _frame_spans(table) == {cell: (min(ts), max(ts)) for cell, ts in spans.items()}
    assert _unique_ints(table.cell).tolist() == sorted(spans)


def test_division_timing_from_listed_cells():
    """A parent still present where its daughters are, and a daughter appearing late, are reported."""
    cells = [Cell(1, 1, t, 0) for t in range(3)] + [Cell(2, 2, t, 0) for t in (2, 3)] + [Cell(3, 3, 3, 0)]
    y = np.zeros((1, 4, 4, 4), np.int32)
    for c in cells:
        y[0, c.t, c.value - 1, 0] = c.value
    project = Project(y=y, cells=cells, divisions=[Division(1, [2, 3], 2)])
    messages = [p.message for p in project.validate(pixels=False) if p.part == "divisions"]
    assert any("parent 1 is still present at frame 2" in m for m in messages), messages
    assert any("daughter 3 first appears at frame 3" in m for m in messages), messages
    assert not any("daughter 2 first appears" in m for m in messages), messages
