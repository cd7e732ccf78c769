"""Every registered format against the plugin boundary: a sound declaration, declared options, a round trip.

Parametrized over the formats the installed plugins register, so a new format is checked
the day it is added.  A built-in plugin or format that fails to register fails
``test_every_builtin_plugin_registers`` instead of silently dropping out of the others.
"""

from __future__ import annotations

import warnings
from importlib import metadata
from typing import Any

import pytest

import dlformats
from dlformats import testing
from dlformats.errors import InvalidOptionError
from dlformats.model import PARTS
from dlformats.registry import BUILTIN_DISTRIBUTION, ENTRY_POINT_GROUP, get_registry

FORMATS = [f.name for f in get_registry().formats()]
ROUND_TRIPPED = [f.name for f in get_registry().formats() if f.spec.read is not None and f.spec.write is not None]

# The small project each built-in format can hold; any other format gets testing.make_project().
PROJECTS: dict[str, dict[str, Any]] = {
    "png": {"channels": 1, "frames": 1},
    "dcl-edit-zip": {"channels": 1, "frames": 1},
    "trk": {"features": 1},
    "lineage-json": {"features": 1},
    "ctc": {"features": 1},
}
EDIT = {"action": "erode", "args": {"cell": 1}, "writeMode": "overlap"}


def _extension(name: str) -> str:
    """The format's first extension ("" for a folder format that declares none, such as ``ctc``)."""
    extensions = get_registry().get(name).spec.extensions
    return extensions[0] if extensions else ""


def test_every_builtin_plugin_registers():
    registry = get_registry()
    builtin = {ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if _is_builtin(ep)}
    assert builtin, "no built-in entry points: is dlformats installed (pip install -e .)?"
    failures = [f for f in registry.failures if f.distribution == BUILTIN_DISTRIBUTION]
    assert not failures, failures
    assert builtin <= set(registry.plugin_versions()), builtin - set(registry.plugin_versions())
    assert {f.plugin for f in registry.formats() if f.builtin} == builtin  # each declares at least one format


def _is_builtin(ep: metadata.EntryPoint) -> bool:
    return ep.dist is not None and ep.dist.name.replace("_", "-").lower() == BUILTIN_DISTRIBUTION


@pytest.mark.parametrize("name", FORMATS)
def test_declaration_is_sound(name):
    fmt = testing.check_declared(name)
    assert fmt.spec.problems() == []


@pytest.mark.parametrize("name", FORMATS)
def test_options_are_declared_and_unknown_ones_refused(name, tmp_path):
    spec = get_registry().get(name).spec
    for option in (*spec.read_options, *spec.write_options):
        assert option.help and option.describe().startswith(option.name)
    bogus = {"no_such_option": "1"}
    if spec.read is not None:  # refused before the reader runs: the bytes do not matter
        with pytest.raises(InvalidOptionError) as info:
            dlformats.read(b"not even data", format=name, name=f"in{_extension(name)}", options=bogus)
        assert info.value.option == "no_such_option" and info.value.format == name
        assert [v.split(" ")[0] for v in info.value.valid] == [o.name for o in spec.read_options] + ["select"]
    if spec.write is not None:
        target = tmp_path / f"out{_extension(name)}"
        with pytest.raises(InvalidOptionError) as info:
            dlformats.write(testing.make_project(), target, format=name, options=bogus)
        assert [v.split(" ")[0] for v in info.value.valid] == [o.name for o in spec.write_options] + ["relabel"]
        assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ROUND_TRIPPED)
def test_round_trip_of_a_small_project(name, tmp_path):
    project = testing.make_project(**PROJECTS.get(name, {}))
    if name == "dcl-edit-zip":
        project.metadata["edit"] = EDIT
    spec = get_registry().get(name).spec
    kept = tuple(p for p in PARTS if p in spec.reads and p in spec.writes)
    assert kept, f"{name} reads none of the parts it writes"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dlformats.DLFormatsWarning)
        testing.check_roundtrip(name, project, tmp_path / f"out{_extension(name)}", parts=kept)
