"""Declarations a plugin makes about a format: :class:`FormatSpec`, and the options readers and writers get."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    from .model import Project
    from .sources import Source

ReadResult = "Project | list[Project]"


@dataclass(frozen=True)
class ReadOptions:
    """What the caller asked of a reader.

    Attributes:
        axes: the caller's axis order for the source's array (e.g. ``"CZYX"``,
            letters from ``TZBCSYX``), overriding the file's own; ``None`` to use the file's.
        limits: resource bounds to enforce.
        extra: format-specific options (``series=``, ``plane=``...), passed through untouched.
    """

    axes: str | None = None
    limits: Limits = DEFAULT_LIMITS
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WriteOptions:
    """What the caller asked of a writer.

    Attributes:
        extra: format-specific options (``compression=``...), passed through untouched.
        progress: called with ``(done, total)`` units of work as the writer goes, or ``None``.
    """

    extra: dict[str, Any] = field(default_factory=dict)
    progress: Callable[[int, int], None] | None = None

    def report(self, done: int, total: int) -> None:
        """Report progress if anyone listens."""
        if self.progress is not None:
            self.progress(done, total)


Reader = Callable[["Source", ReadOptions], "Project | list[Project]"]
"""``read(source, options)``: return a project (or a list, for sources holding several,
such as ``.trks`` batches); raise :class:`~dlformats.errors.NotMyFormat` to decline."""

Writer = Callable[["Project", Path, WriteOptions], None]
"""``write(project, path, options)``: write the project to ``path``, a temporary file (or an
empty folder for a folder format) that the core renames onto the target afterwards."""

Sniffer = Callable[["Source"], "bool | None"]
"""``sniff(source)``: cheaply say whether the content is this format: ``True`` (it is),
``False`` (it is not: the reader will not be tried) or ``None`` (cannot tell)."""


@dataclass(frozen=True)
class FormatSpec:
    """A format a plugin provides.

    Attributes:
        name: unique name, lower-case (``"dcl-project-zip"``); used by ``format=`` and ``--from/--to``.
        description: one line for ``dlformats formats``.
        extensions: lower-case extensions with their dot, longest first is not required
            (``(".ome.tiff", ".ome.tif")``).
        signatures: leading bytes any of which identifies the content (e.g. ``b"\\x89PNG"``).
        sniff: a cheap content check (see :data:`Sniffer`); runs after ``signatures`` match,
            or alone when there are none.
        reads: project parts the reader fills (see :data:`dlformats.model.PARTS`).
        writes: project parts the writer keeps.
        read: the reader, or ``None`` for a write-only format.
        write: the writer, or ``None`` for a read-only format.
        folder: the format is a folder, not a file (the writer fills a folder).
        priority: breaks ties between formats equally matched by content and extension
            (higher wins).
        install_hint: what to install when this format's dependencies are missing.
    """

    name: str
    description: str = ""
    extensions: tuple[str, ...] = ()
    signatures: tuple[bytes, ...] = ()
    sniff: Sniffer | None = None
    reads: frozenset[str] = frozenset()
    writes: frozenset[str] = frozenset()
    read: Reader | None = None
    write: Writer | None = None
    folder: bool = False
    priority: int = 0
    install_hint: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "extensions", tuple(e.lower() for e in self.extensions))
        object.__setattr__(self, "reads", frozenset(self.reads))
        object.__setattr__(self, "writes", frozenset(self.writes))

    def extension_match(self, filename: str) -> int:
        """Length of the longest of :attr:`extensions` that ``filename`` ends with (0 if none)."""
        lower = filename.lower()
        return max((len(e) for e in self.extensions if lower.endswith(e)), default=0)


def parts(*names: str) -> frozenset[str]:
    """A frozenset of part names, checked against :data:`dlformats.model.PARTS`."""
    from .model import PARTS

    unknown = [n for n in names if n not in PARTS]
    if unknown:
        raise ValueError(f"unknown project parts {unknown}; known: {PARTS}")
    return frozenset(names)


def as_list(result: Project | Iterable[Project]) -> list[Project]:
    """Normalise a reader's result to a list of projects."""
    from .model import Project

    if isinstance(result, Project):
        return [result]
    return list(result)
