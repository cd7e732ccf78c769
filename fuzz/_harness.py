"""Shared atheris harness: feed bytes to ``dlformats.read_all(data, format=..., name=...)``.

Only :class:`dlformats.DLFormatsError` may escape a read, except
:class:`dlformats.errors.PluginCrashedError` (the core's wrapper for a bare
exception escaping a plugin: a bug) and the core's "out of memory" error.  Every
array of every project read is then materialised, so lazy readers are exercised
too.  Limits are small so one input cannot take the machine's memory.
"""

from __future__ import annotations

import pkgutil
import sys
import warnings
from typing import Any

MiB = 1 << 20
PLUGINS = (
    "dlformats_projectzip",
    "dlformats_tiff",
    "dlformats_png",
    "dlformats_numpy",
    "dlformats_trk",
    "dlformats_lineage",
    "dlformats_labelzip",
    "dlformats_spots",
    "dlformats_exportzip",
    "dlformats_editzip",
)


def _import_everything() -> None:
    """Import dlformats and every plugin module (instrumented when called under ``instrument_imports``)."""
    import importlib

    import dlformats

    for _, modname, _ in pkgutil.walk_packages(dlformats.__path__, "dlformats."):
        importlib.import_module(modname)
    for plugin in PLUGINS:
        module = importlib.import_module(plugin)
        for _, modname, _ in pkgutil.walk_packages(getattr(module, "__path__", []), plugin + "."):
            importlib.import_module(modname)
    dlformats.formats()  # load the registry now, not during the first input


def fuzz_limits() -> Any:
    """Limits small enough that a hostile input cannot exhaust memory, large enough for the seeds."""
    from dlformats import Limits

    return Limits(
        array_bytes=64 * MiB,
        total_bytes=256 * MiB,
        member_bytes=64 * MiB,
        archive_entries=10_000,
        json_bytes=16 * MiB,
        csv_bytes=16 * MiB,
        tiff_pages=10_000,
    )


def read_and_touch(data: bytes, fmt: str, name: str, limits: Any) -> None:
    """Read ``data`` as ``fmt`` and materialise every array; only DLFormatsError is allowed out (not crashes)."""
    import numpy as np

    import dlformats
    from dlformats.errors import DLFormatsError, PluginCrashedError

    try:
        projects = dlformats.read_all(data, format=fmt, name=name, limits=limits)
        for project in projects:
            for array in (project.X, project.y):
                if array is not None:
                    np.asarray(array)
            project.validate(pixels=False)
    except PluginCrashedError:
        raise
    except DLFormatsError as exc:
        if str(exc.reason).startswith("out of memory"):
            raise
        if not exc.path:
            raise AssertionError(f"error does not name the file: {exc!r}") from exc


def main(fmt: str, name: str) -> None:
    """Run the fuzzer for format ``fmt``; inputs are named ``name`` (extension matching and messages)."""
    import atheris

    with atheris.instrument_imports(include=["dlformats", *PLUGINS]):
        _import_everything()
    warnings.simplefilter("ignore")
    limits = fuzz_limits()

    def test_one(data: bytes) -> None:
        read_and_touch(bytes(data), fmt, name, limits)

    atheris.Setup(sys.argv, test_one)
    atheris.Fuzz()
