"""writeMode as a model operation: unit cases and hypothesis properties against a per-pixel set-of-cells model."""

from __future__ import annotations

import numpy as np
import pytest
from dlformats_editzip.writemode import WRITE_MODES, cell_sets, erase_mask, write_mask
from hypothesis import given, settings
from hypothesis import strategies as st

from dlformats import Cell, InvalidOptionError, UnsupportedFeatureError

T, C = 2, 1  # the frame and feature under test: cells of other frames must pass through


def pixel_sets(frame: np.ndarray, cells: list[Cell]) -> list[list[frozenset[int]]]:
    sets = cell_sets(cells, t=T, c=C)
    return [[sets.get(int(v), frozenset()) for v in row] for row in frame]


def test_overwrite_gives_a_new_cell_a_new_value_above_the_largest():
    frame = np.array([[0, 4, 4], [0, 0, 7]], np.int32)
    cells = [Cell(4, 1, T, C), Cell(7, 2, T, C)]
    mask = np.array([[1, 1, 0], [0, 0, 0]], bool)
    out, new = write_mask(frame, cells, mask, 3, "overwrite", t=T, c=C)
    assert out.tolist() == [[8, 8, 4], [0, 0, 7]]
    assert new == [Cell(4, 1, T, C), Cell(7, 2, T, C), Cell(8, 3, T, C)]


def test_overwrite_takes_pixels_from_other_cells_and_drops_a_cell_left_without_pixels():
    frame = np.array([[1, 1], [2, 3]], np.int32)
    cells = [Cell(1, 1, T, C), Cell(2, 2, T, C), Cell(3, 1, T, C), Cell(3, 2, T, C)]  # 3 = {1, 2}
    mask = np.array([[0, 0], [1, 1]], bool)
    out, new = write_mask(frame, cells, mask, 1, "overwrite", t=T, c=C)
    assert out.tolist() == [[1, 1], [1, 1]]  # cell 1's own value, reused
    assert new == [Cell(1, 1, T, C)]  # cell 2 lost every pixel; value 3 is gone


def test_exclude_writes_only_where_the_frame_is_zero():
    frame = np.array([[0, 5, 0]], np.int32)
    cells = [Cell(5, 2, T, C), Cell(6, 9, T, C)]  # value 6 (cell 9) is listed but absent
    out, new = write_mask(frame, cells, np.ones((1, 3), bool), 9, "exclude", t=T, c=C)
    assert out.tolist() == [[6, 5, 6]]  # cell 9 keeps its listed value 6
    assert new == [Cell(5, 2, T, C), Cell(6, 9, T, C)]


def test_overlap_reuses_the_value_that_already_encodes_the_set():
    frame = np.array([[1, 1, 2, 3, 0]], np.int32)
    cells = [Cell(1, 1, T, C), Cell(2, 2, T, C), Cell(3, 1, T, C), Cell(3, 2, T, C)]
    mask = np.array([[1, 0, 1, 1, 1]], bool)
    out, new = write_mask(frame, cells, mask, 2, "overlap", t=T, c=C)
    assert out.tolist() == [[3, 1, 2, 3, 2]]  # {1}+2 -> 3 = {1, 2}; {2}+2 -> 2; 0+2 -> 2
    assert new == cells


def test_overlap_numbers_new_sets_above_the_largest_value():
    frame = np.array([[1, 2, 0]], np.int32)
    cells = [Cell(1, 1, T, C), Cell(2, 2, T, C)]
    out, new = write_mask(frame, cells, np.ones((1, 3), bool), 5, "overlap", t=T, c=C)
    assert out.tolist() == [[4, 5, 3]]  # {5} from old value 0 first, then {1,5}, {2,5}
    assert cell_sets(new, t=T, c=C) == {3: {5}, 4: {1, 5}, 5: {2, 5}}  # values 1 and 2 left the frame


def test_values_no_cell_uses_are_cleared_first_and_other_frames_pass_through():
    frame = np.array([[7, 1, -3]], np.int32)
    other = Cell(7, 4, 0, 0)
    cells = [other, Cell(1, 1, T, C)]
    out, new = write_mask(frame, cells, np.zeros((1, 3), bool), 1, "overwrite", t=T, c=C)
    assert out.tolist() == [[0, 1, 0]]
    assert new == [other, Cell(1, 1, T, C)]


def test_erase_removes_only_that_cell():
    frame = np.array([[3, 3, 1]], np.int32)
    cells = [Cell(1, 1, T, C), Cell(3, 1, T, C), Cell(3, 2, T, C)]
    out, new = erase_mask(frame, cells, np.array([[1, 0, 1]], bool), 1, t=T, c=C)
    assert out.tolist() == [[4, 3, 0]]
    assert cell_sets(new, t=T, c=C) == {3: {1, 2}, 4: {2}}


def test_input_is_not_modified_and_output_is_int32():
    frame = np.array([[0, 1]], np.uint16)
    before = frame.copy()
    out, _ = write_mask(frame, [Cell(1, 1, 0)], np.array([[1, 1]]), 2, "overwrite")
    assert out.dtype == np.int32 and out.tolist() == [[2, 2]]
    np.testing.assert_array_equal(frame, before)


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"mode": "blend"}, "write mode 'blend' is not one of overlap, overwrite, exclude"),
        ({"cell": 0}, "found 0"),
        ({"cell": True}, "found True"),
        ({"cell": 2.0}, "found 2.0"),
        ({"mask": np.ones((3, 2), bool)}, "mask has shape (3, 2), expected the frame's (2, 3)"),
        ({"frame": np.zeros((2, 3), np.float32)}, "must hold integers, found dtype float32"),
        ({"frame": np.zeros((1, 2, 3), np.int32)}, "found shape (1, 2, 3)"),
    ],
)
def test_bad_arguments_are_typed_errors_saying_what_was_expected(kwargs, text):
    args = {"frame": np.zeros((2, 3), np.int32), "mask": np.ones((2, 3), bool), "cell": 1, "mode": "overlap"}
    args.update(kwargs)
    with pytest.raises(InvalidOptionError) as info:
        write_mask(args["frame"], [], args["mask"], args["cell"], args["mode"])
    assert text in str(info.value)


def test_running_out_of_int32_values_is_a_typed_error():
    top = 2**31 - 1
    frame = np.array([[top, 0]], np.int32)
    with pytest.raises(UnsupportedFeatureError):
        write_mask(frame, [Cell(top, 1, 0)], np.array([[0, 1]], bool), 2, "overwrite")


# ------------------------------------------------------------ properties
CELLS = st.integers(1, 5)
OPS = st.sampled_from([*WRITE_MODES, "erase"])


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[np.ndarray, list[Cell], list[tuple[np.ndarray, int, str]]]:
    height, width = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    # A valid starting frame: values 1..n encode distinct non-empty sets; value 9 is
    # listed by no cell (cleaned on the first write); value 8 is listed but absent.
    sets = draw(st.lists(st.frozensets(CELLS, min_size=1), max_size=4, unique=True))
    pixel = st.sampled_from([0, 9, *range(1, len(sets) + 1)])
    values = draw(st.lists(pixel, min_size=height * width, max_size=height * width))
    frame = np.array(values, np.int32).reshape(height, width)
    cells = [Cell(v, m, T, C) for v, s in enumerate(sets, start=1) for m in sorted(s)]
    if draw(st.booleans()):
        cells.append(Cell(8, draw(CELLS), T, C))
    cells.append(Cell(9, 1, T + 1, C))  # another frame's cell: must pass through untouched
    n = draw(st.integers(1, 6))
    ops = []
    for _ in range(n):
        mask = np.array(draw(st.lists(st.booleans(), min_size=height * width, max_size=height * width)), bool)
        ops.append((mask.reshape(height, width), draw(CELLS), draw(OPS)))
    return frame, cells, ops


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_any_sequence_of_writes_keeps_one_set_per_value_and_the_pixels_the_writes_imply(scenario):
    frame, cells, ops = scenario
    model = pixel_sets(frame, cells)  # unlisted values are no cell: the reference model starts cleaned
    other = [cl for cl in cells if (cl.t, cl.c) != (T, C)]
    for mask, cell, op in ops:
        before = cell_sets(cells, t=T, c=C)
        if op == "erase":
            frame, cells = erase_mask(frame, cells, mask, cell, t=T, c=C)
        else:
            frame, cells = write_mask(frame, cells, mask, cell, op, t=T, c=C)
        for i, j in zip(*np.nonzero(mask)):
            old = model[i][j]
            model[i][j] = {
                "overwrite": frozenset({cell}),
                "exclude": old or frozenset({cell}),
                "overlap": old | {cell},
                "erase": old - {cell},
            }[op]
        sets = cell_sets(cells, t=T, c=C)
        present = set(np.unique(frame).tolist()) - {0}
        assert present == set(sets), "every value in the frame is listed, and only those"
        assert all(sets.values()), "no value encodes the empty set"
        assert len(set(sets.values())) == len(sets), f"two values encode the same set: {sets}"
        assert pixel_sets(frame, cells) == model
        for value in present & set(before):
            assert sets[value] == before[value], f"value {value} changed meaning"
        if op in ("overwrite", "exclude"):
            written = {int(v) for v, s in zip(frame[mask], np.array(model, object)[mask]) if s == {cell}}
            assert len(written) <= 1, "the cell's value is one value"
        assert [cl for cl in cells if (cl.t, cl.c) != (T, C)] == other
        assert frame.dtype == np.int32
