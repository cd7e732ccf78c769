"""dlformats.containers.codecs: DeepCell Label's part files parsed strictly and written back as it writes them."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from dlformats import Cell, CorruptFileError, Division, DLFormatsWarning, Spots
from dlformats.arrays import LazyArray
from dlformats.containers import codecs

ARABIC_INDIC_12, FULLWIDTH_1 = "\u0661\u0662", "\uff11"


# ------------------------------------------------------------------ cells
def test_cells_in_both_forms():
    listed, has_c = codecs.cells_from_json([{"value": 3, "cell": 1, "t": 0, "c": 1}, {"value": 4, "cell": 2, "t": 2}])
    assert list(listed) == [Cell(3, 1, 0, 1), Cell(4, 2, 2, 0)] and has_c is False
    keyed, has_c = codecs.cells_from_json({"1": {"7": {"label": 7, "frames": [0, 2]}}})
    assert list(keyed) == [Cell(7, 7, 0, 1), Cell(7, 7, 2, 1)] and has_c is True
    written = json.loads(codecs.cells_to_json(listed))
    assert written == [{"value": 3, "cell": 1, "t": 0, "c": 1}, {"value": 4, "cell": 2, "t": 2, "c": 0}]


@pytest.mark.parametrize("key", ["0", "17", "-3", "007"])
def test_keys_of_the_older_cells_form_are_plain_integers(key):
    cells, _ = codecs.cells_from_json({"0": {key: {"frames": [0]}}})
    assert list(cells) == [Cell(int(key), int(key), 0, 0)]


@pytest.mark.parametrize("key", [" 1", "1 ", "1_0", "+1", ARABIC_INDIC_12, FULLWIDTH_1, "1.0", "", "0x1", "1\n", "1e3"])
def test_any_other_key_is_refused_by_name(key):
    with pytest.raises(CorruptFileError, match=r"label key .* is not a plain integer") as info:
        codecs.cells_from_json({"0": {key: {"frames": [0]}}}, path="f.zip", member="cells.json")
    assert (info.value.path, info.value.member) == ("f.zip", "cells.json")


def test_cells_without_a_feature_get_the_features_whose_labels_hold_them():
    y = np.zeros((2, 2, 2, 2), np.int32)
    y[0, 0, 0, 0] = 5  # value 5: feature 0 at frame 0, and feature 1 too
    y[1, 0, 1, 1] = 5
    y[1, 1, 0, 1] = 6  # value 6: feature 1 only, at frame 1
    cells = [Cell(5, 1, 0), Cell(6, 2, 1), Cell(9, 3, 0), Cell(6, 4, 7)]  # 9 nowhere; frame 7 beyond y
    assigned = codecs.assign_features(cells, y)
    assert assigned == [Cell(5, 1, 0, 0), Cell(5, 1, 0, 1), Cell(6, 2, 1, 1), Cell(9, 3, 0, 0), Cell(6, 4, 7, 0)]


def test_assigning_features_reads_each_plane_it_needs_once():
    y = np.zeros((3, 4, 2, 2), np.int32)
    y[2, 1] = 8
    reads = []

    class Counting:
        shape, dtype = y.shape, y.dtype

        def __getitem__(self, key):
            reads.append(key)
            return y[key]

    lazy = LazyArray(Counting(), "CTYX", labels=True)
    assert codecs.assign_features([Cell(8, 1, 1), Cell(8, 2, 1), Cell(1, 3, 1)], lazy)[:2] == [
        Cell(8, 1, 1, 2),
        Cell(8, 2, 1, 2),
    ]
    assert len(reads) == 3  # frame 1 of each feature, once
    assert codecs.assign_features([Cell(8, 1, 1)], y[:1]) == [Cell(8, 1, 1)]  # one feature: nothing to choose


# ------------------------------------------------------------------ divisions and lineage
def test_divisions_round_trip_and_divisions_json_wins_over_a_lineage():
    divisions = [Division(1, [2, 3], 4)]
    assert codecs.divisions_from_json(json.loads(codecs.divisions_to_json(divisions))) == divisions
    cells = [Cell(1, 1, t) for t in range(4)] + [Cell(v, v, t) for v in (2, 3) for t in (4, 5)]
    lineage = codecs.divisions_to_lineage(cells, divisions)
    assert lineage["1"]["daughters"] == [2, 3] and lineage["2"]["parent"] == 1 and lineage["1"]["frame_div"] == 4
    assert codecs.lineage_to_divisions(lineage) == (divisions, [])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert codecs.merge_divisions(None, lineage, path="p.zip") == (divisions, [])
    with pytest.warns(DLFormatsWarning, match="divisions.json and lineage.json disagree"):
        merged, _ = codecs.merge_divisions([{"parent": 1, "daughters": [2], "t": 4}], lineage, path="p.zip")
    assert merged == [Division(1, [2], 4)]


# ------------------------------------------------------------------ spots
def test_spots_round_trip_and_text_that_looks_like_a_formula_is_defused():
    spots = Spots([1.5, 2.0], [3.25, 4.0], {"cell": [1, None], "note": ["ok", "=HYPERLINK(1)"]})
    data = codecs.spots_to_csv(spots)
    assert data.splitlines()[2].endswith(b",'=HYPERLINK(1)")
    back = codecs.spots_from_csv(data)
    assert back.x == [1.5, 2.0] and back.y == [3.25, 4.0]
    assert back.columns == {"cell": [1, None], "note": ["ok", "'=HYPERLINK(1)"]}
