"""dlformats.spec: what a plugin declares (formats, their parts and options) and the options readers get.

How the core applies declared options before a reader or writer runs, from the API and the command
line, is in ``test_options.py``; how the registry refuses an unsound declaration, in ``test_registry.py``.
"""

from __future__ import annotations

import pytest

from dlformats import FormatSpec, InvalidOptionError, Option, parts
from dlformats.spec import ReadOptions


@pytest.mark.parametrize(
    ("option", "given", "expected"),
    [
        (Option("n", int, help="h"), "3", 3),
        (Option("n", int, help="h"), " -2 ", -2),
        (Option("n", int, help="h"), 7, 7),
        (Option("x", float, help="h"), "0.5", 0.5),
        (Option("x", float, help="h"), 2, 2.0),
        (Option("b", bool, help="h"), "false", False),
        (Option("b", bool, help="h"), "Yes", True),
        (Option("b", bool, help="h"), True, True),
        (Option("s", str, choices=("zlib", "zstd"), help="h"), "ZSTD", "zstd"),
        (Option("s", str, choices=("X", "y"), help="h"), "y", "y"),
        (Option("s", str, help="h"), "007.tif", "007.tif"),
    ],
)
def test_values_are_converted_to_the_declared_type(option, given, expected):
    value = option.parse(given)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("option", "given", "problem"),
    [
        (Option("n", int, help="h"), "1.5", "must be an integer"),
        (Option("n", int, help="h"), True, "must be an integer"),
        (Option("n", int, minimum=0, help="h"), "-1", "below the minimum 0"),
        (Option("n", int, maximum=9, help="h"), 10, "above the maximum 9"),
        (Option("b", bool, help="h"), "maybe", "must be true or false"),
        (Option("b", bool, help="h"), 1, "must be true or false"),
        (Option("s", str, choices=("X", "y"), help="h"), "Z", "is not one of X, y"),
        (Option("s", str, help="h"), [12], "must be a string"),
    ],
)
def test_bad_values_say_what_is_wrong(option, given, problem):
    with pytest.raises(ValueError, match=problem):
        option.parse(given)


def test_read_options_carry_the_cores_inputs_as_fields():
    opts = ReadOptions(role="labels", select={"z": "2"})
    assert opts.role == "labels" and opts.select == {"Z": 2} and opts.extra == {}
    with pytest.raises(InvalidOptionError, match="role 'label'"):
        ReadOptions(role="label")
    with pytest.raises(InvalidOptionError, match="must map axis letters"):
        ReadOptions(select="Z=1")
    with pytest.raises(InvalidOptionError, match="'Q' is not an axis letter"):
        ReadOptions(select={"Q": 0})


def test_parts_are_checked_against_the_projects_parts():
    assert parts("X", "cells") == frozenset({"X", "cells"})
    with pytest.raises(ValueError, match=r"unknown project parts \['masks'\]"):
        parts("y", "masks")


def test_a_sound_declaration_has_no_problems_and_matches_its_longest_extension():
    spec = FormatSpec(
        name="ome-foo",
        description="d",
        extensions=(".foo", ".OME.foo"),
        read=lambda source, options: None,
        reads=parts("y"),
        read_options=(Option("series", int, None, minimum=0, help="which series"),),
    )
    assert spec.problems() == [] and spec.extensions == (".foo", ".ome.foo")
    assert spec.extension_match("cells.ome.foo") == len(".ome.foo") and spec.extension_match("cells.bar") == 0
