"""Hook specifications of dlformats: what a plugin may implement, when each hook is called and what its result means.

A plugin is a module (or object) that implements some of these hooks, each marked
with :data:`hookimpl`, and is announced by an entry point in the group
``dlformats.plugins``::

    [project.entry-points."dlformats.plugins"]
    myformat = "my_package.my_module"

The built-in formats are plugins declared and loaded exactly this way.

How the core calls hooks (see :class:`dlformats.registry.Registry`):

* Only functions marked ``@hookimpl`` are implementations.  ``@hookimpl(specname="dlformats_formats")``
  implements a hook under another function name.  A function named like a hook but not
  marked, a marked function naming no hook here, a hook wrapper, or an implementation
  asking for an argument the hook does not give, fails its plugin (listed, with the reason,
  by ``dlformats formats``); the other plugins load.
* An implementation may take any subset of the hook's arguments, by name.
* Hooks are called plugin by plugin, in the order the plugins were loaded (entry points
  sorted by name), so that whatever one raises is reported under that plugin's name.

A plugin module should import only light modules at import time; heavy libraries
(numpy, tifffile, imageio, zarr) belong inside the reader and writer functions.
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

    Called once per process for each plugin, the first time a format is needed (never at
    ``import dlformats``), and again only when a registry gains a plugin.

    :returns: a list of :class:`dlformats.FormatSpec`, possibly empty.

    What the core does with the result:

    * every declaration is checked (:meth:`dlformats.FormatSpec.problems`: the name's
      pattern, extensions with their dot, ``reads``/``writes`` given exactly when
      ``read``/``write`` are, well-formed option declarations...); an unsound one is not
      registered and is reported, the plugin's other formats are;
    * format names are unique across all plugins: of two formats with one name, the
      built-in one keeps it (else the one loaded first, unless ``DLFORMATS_PREFER`` names
      the other); the other is reported, naming both distributions;
    * if the hook raises, or returns something other than a list of ``FormatSpec``, the
      plugin is reported as failed and none of its formats is registered.
    """
    raise NotImplementedError


@hookspec
def dlformats_validate(project: Project) -> list[Problem]:
    """Contribute checks to :func:`dlformats.validate` (after :meth:`dlformats.Project.validate`'s own).

    Called for every :func:`dlformats.validate` call, once per plugin implementing it.

    :param project: the project to check.  Must not be modified; read pixels of lazy
        arrays only when the check needs them.
    :returns: the problems found, as :class:`dlformats.Problem`, possibly none; the
        results of all plugins are concatenated.

    Anything but a :class:`dlformats.DLFormatsError` escaping the hook is reported as a
    :class:`dlformats.errors.PluginCrashedError` (stage ``"validate"``) naming the plugin.
    """
    raise NotImplementedError


__all__ = ["PROJECT_NAME", "dlformats_formats", "dlformats_validate", "hookimpl", "hookspec"]
