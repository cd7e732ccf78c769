"""Hook specifications of dlformats, for plugin authors.

A plugin is a module (or object) that implements some of these hooks, marked
with :data:`hookimpl`, and is announced by an entry point in the group
``dlformats.plugins``::

    [project.entry-points."dlformats.plugins"]
    myformat = "my_package.my_module"

The built-in formats are plugins declared and loaded exactly this way.  A plugin
module should import only light modules at import time; heavy libraries (numpy,
tifffile, imageio, zarr) belong inside the reader and writer functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .model import Problem, Project
    from .spec import FormatSpec

PROJECT_NAME = "dlformats"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marks a hook specification (used by dlformats itself)."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marks a hook implementation in a plugin: ``@hookimpl def dlformats_formats(): ...``."""


@hookspec
def dlformats_formats() -> list[FormatSpec]:
    """Declare the formats this plugin reads and/or writes.

    Called once per process, the first time a format is needed.  Return a list of
    :class:`dlformats.FormatSpec`.  Format names must be unique across all
    installed plugins: two plugins declaring the same name is an error naming both.

    All implementations are called; their results are concatenated.
    """
    raise NotImplementedError


@hookspec
def dlformats_validate(project: Project) -> list[Problem]:
    """Contribute extra checks to :meth:`dlformats.Project.validate` via ``dlformats.validate``.

    Return a (possibly empty) list of :class:`dlformats.Problem`.  Must not modify
    ``project`` and should not read pixels of lazy arrays unless necessary.

    All implementations are called; their results are concatenated.
    """
    raise NotImplementedError
