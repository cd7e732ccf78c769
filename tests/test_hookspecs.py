"""dlformats.hookspecs: the hooks as the core calls them (``dlformats_formats`` is in ``test_registry.py``).

``dlformats_validate(project)`` of every plugin adds its problems to ``dlformats.validate``;
a hook that raises is a crash of its plugin, named, with the stage ``validate``.
"""

from __future__ import annotations

import pytest

import dlformats
from dlformats import hookimpl
from dlformats.model import Problem
from dlformats.testing import make_project


class _CrashingValidator:
    @hookimpl
    def dlformats_validate(self, project):
        raise KeyError("boom")


def test_crash_in_a_validate_hook_names_the_plugin(registry):
    registry.register(_CrashingValidator(), "crashy")
    with pytest.raises(dlformats.PluginCrashedError, match="crashy") as info:
        dlformats.validate(make_project(), pixels=False)
    assert isinstance(info.value.__cause__, KeyError)
    assert (info.value.stage, info.value.plugin, info.value.format) == ("validate", "crashy", None)


class _Validator:
    @hookimpl
    def dlformats_validate(self, project):
        return [Problem("divisions", "from a plugin", "warning")]


def test_validate_hooks_still_contribute(registry):
    registry.register(_Validator(), "good")
    assert "from a plugin" in [p.message for p in dlformats.validate(make_project(), pixels=False)]
