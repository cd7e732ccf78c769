"""dlformats.containers.jsonio: strict JSON for untrusted files (caps, finite numbers, no duplicate keys)."""

from __future__ import annotations

import numpy as np
import pytest

from dlformats import CorruptFileError, LimitExceededError, Limits
from dlformats.containers.jsonio import dump_json, load_json


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


def test_dump_json_numpy_values_and_no_nan():
    data = {"a": np.int64(3), "b": np.float32(0.5), "c": np.arange(3, dtype=np.uint8), "d": "é"}
    assert dump_json(data) == '{"a": 3, "b": 0.5, "c": [0, 1, 2], "d": "é"}'.encode()
    with pytest.raises(ValueError):
        dump_json([float("nan")])
