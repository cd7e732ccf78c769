"""dlformats: read and write DeepCell Label projects and the formats around them.

Quick tour::

    import dlformats
    project = dlformats.read("movie.tif", labels="masks.zip")   # X: (C, F, H, W), y: (features, F, H, W)
    dlformats.write(project, "project.zip")                      # a DeepCell Label project zip
    dlformats.convert("tracks.trk", "project.zip")
    dlformats.convert_many(["plate/"], "out", to="dcl-project-zip")  # a folder, one result per file
    dlformats.merge(["a.trk", "b.trk"], "train.trks")            # many movies into one training file

Importing this package is light: numpy, the registry and every plugin load on
first use.

The public API is what this package exports (``__all__``), the shared container
readers and writers of :mod:`dlformats.containers`, the conformance kit
:mod:`dlformats.testing`, and the names each public module lists in its own
``__all__``; every other name is private (underscored).  A plugin author needs
``hookimpl``, ``FormatSpec``, ``Option``, ``parts``, ``ReadOptions``,
``WriteOptions``, ``Source``, ``LazyArray``, the model and the errors, all importable
from here (see CONTRIBUTING.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    AmbiguousInputError,
    CorruptFileError,
    DLFormatsError,
    DLFormatsWarning,
    EnvironmentFailureError,
    InconsistentDataError,
    InvalidOptionError,
    LimitExceededError,
    NetworkError,
    NoReaderError,
    NotMyFormat,
    NoWriterError,
    PartsDroppedError,
    PartsDroppedWarning,
    PluginCrashedError,
    PluginError,
    SourceNotFoundError,
    UnsafeArchiveError,
    UnsupportedFeatureError,
)
from .hookspecs import hookimpl
from .limits import Limits
from .model import Cell, CellType, Division, Problem, Project, Provenance, Spots, relabel
from .spec import FormatSpec, Option, ReadOptions, WriteOptions, parts

if TYPE_CHECKING:
    from .api import convert, formats, info, read, read_all, validate, write
    from .arrays import LazyArray
    from .batch import BatchProgress, BatchResult, convert_many
    from .merging import merge
    from .registry import Registry, get_registry, use_registry
    from .sources import Source, open_source

__version__ = "0.1.0"

_LAZY = {
    "read": "api",
    "read_all": "api",
    "write": "api",
    "convert": "api",
    "info": "api",
    "validate": "api",
    "formats": "api",
    "convert_many": "batch",
    "BatchResult": "batch",
    "BatchProgress": "batch",
    "merge": "merging",
    "LazyArray": "arrays",
    "Source": "sources",
    "open_source": "sources",
    "Registry": "registry",
    "get_registry": "registry",
    "use_registry": "registry",
}


def __getattr__(name: str) -> Any:
    if name == "ReaderCrashedError":  # the old name of PluginCrashedError
        import warnings

        warnings.warn("dlformats.ReaderCrashedError is renamed PluginCrashedError", DeprecationWarning, stacklevel=2)
        return PluginCrashedError
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dlformats' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, the lazily imported ones (``read``, ``read_all``, ``convert``, ``info``...) included."""
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AmbiguousInputError",
    "BatchProgress",
    "BatchResult",
    "Cell",
    "CellType",
    "CorruptFileError",
    "DLFormatsError",
    "DLFormatsWarning",
    "Division",
    "EnvironmentFailureError",
    "FormatSpec",
    "InconsistentDataError",
    "InvalidOptionError",
    "LazyArray",
    "LimitExceededError",
    "Limits",
    "NetworkError",
    "NoReaderError",
    "NoWriterError",
    "NotMyFormat",
    "Option",
    "PartsDroppedError",
    "PartsDroppedWarning",
    "PluginCrashedError",
    "PluginError",
    "Problem",
    "Project",
    "Provenance",
    "ReadOptions",
    "Registry",
    "Source",
    "SourceNotFoundError",
    "Spots",
    "UnsafeArchiveError",
    "UnsupportedFeatureError",
    "WriteOptions",
    "__version__",
    "convert",
    "convert_many",
    "formats",
    "get_registry",
    "hookimpl",
    "info",
    "merge",
    "open_source",
    "parts",
    "read",
    "read_all",
    "relabel",
    "use_registry",
    "validate",
    "write",
]
