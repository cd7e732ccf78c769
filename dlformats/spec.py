"""Declarations a plugin makes about a format: :class:`FormatSpec`, and the options readers and writers get."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InvalidOptionError, usage
from .limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    from .model import Project
    from .sources import Source

OPTION_TYPES: tuple[type, ...] = (bool, int, float, str)
"""The types an :class:`Option` may declare."""

INDEX_TARGETS = ("channels", "frames", "features")
"""What an integer write option may index (:attr:`Option.index_of`), checked against the project."""

_CORE_READ_OPTIONS = {
    "select": ("select ({axis letter: index})", "every format: keep one plane of an axis, e.g. {'Z': 0} (--select Z=0)")
}
"""Read options the core takes for every format (given to readers as :class:`ReadOptions` fields):
``{name: (summary, help)}``."""

_CORE_WRITE_OPTIONS = {
    "relabel": (
        "relabel (true/false)",
        "every format: renumber the labels to consecutive ids per feature first (values int32 cannot hold)",
    )
}
"""Write options the core takes for every format (applied before the writer runs): ``{name: (summary, help)}``."""

RESERVED_OPTION_NAMES = frozenset(
    {"select", "role", "axes", "limits", "format", "progress", "name", "labels", *_CORE_WRITE_OPTIONS}
)
"""Names a format may not declare: they are the core's own inputs."""

ROLES = ("image", "labels")

_FORMAT_NAME = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*\Z")
_OPTION_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_INTEGER = re.compile(r"\s*[-+]?[0-9]+\s*\Z")
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


@dataclass(frozen=True)
class Option:
    """One option a format's reader or writer takes, as :attr:`FormatSpec.read_options` / ``write_options`` declare.

    The caller gives options by name (``options={"series": 1}``, ``--option series=1``);
    the core checks each against the declaration before the reader or writer runs
    (unknown names and bad values are an :class:`~dlformats.errors.InvalidOptionError`
    listing the valid options) and hands the plugin every declared option, converted
    to its type, in ``options.extra`` (the default where the caller gave none).

    Attributes:
        name: lower-case identifier, letters, digits and ``_`` (``"series"``, ``"image_compression"``).
        type: ``bool``, ``int``, ``float`` or ``str``.  Strings (how the command line gives
            every value) are parsed: ``"3"`` for an ``int``, ``"false"``/``"no"``/``"0"`` for a ``bool``.
        default: the value given to the plugin when the caller gives none; ``None`` means
            "not given" (the plugin decides, e.g. "every batch").
        choices: the allowed values, when they can be listed (``("none", "zlib", "zstd")``);
            strings match case-insensitively and are given to the plugin as declared.
        help: what the option does, in one line.
        minimum: smallest allowed value of an ``int`` or ``float`` option.
        maximum: largest allowed value of an ``int`` or ``float`` option.
        index_of: for an ``int`` write option, the project dimension it indexes
            (``"channels"``, ``"frames"`` or ``"features"``): the core checks ``0 <= value < size``.
        writes: for a write option that picks *what* the writer writes (``part``: the image
            or the labels), the parts written for each of its choices, e.g.
            ``{"X": parts("X", "channels"), "y": parts("y", "features")}``; they replace
            :attr:`FormatSpec.writes` when the core says which parts a write leaves out, and
            the core names the option (``--write-option part=y``) for a part another choice
            writes.  When the caller does not give the option and the project lacks the
            default choice's array but has another choice's (labels alone: no image), the
            core gives the writer that choice.  Stored as ``((choice, parts), ...)``.
    """

    name: str
    type: type = str
    default: Any = None
    choices: tuple[Any, ...] = ()
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    index_of: str | None = None
    writes: Any = None

    def __post_init__(self) -> None:
        if isinstance(self.choices, (list, set, frozenset)):
            object.__setattr__(self, "choices", tuple(self.choices))
        if isinstance(self.writes, Mapping):
            pairs = tuple(
                (k, frozenset(v) if isinstance(v, (list, tuple, set, frozenset)) else v) for k, v in self.writes.items()
            )
            object.__setattr__(self, "writes", pairs)

    def parts_written(self, value: Any) -> frozenset[str] | None:
        """The parts written when this option is ``value`` (see :attr:`writes`), or ``None`` when it does not say."""
        for choice, written in self.writes or ():
            if choice == value:
                return written
        return None

    # ------------------------------------------------------------------ declaration
    def problems(self, *, writing: bool) -> list[str]:
        """What is wrong with this declaration (empty when it is sound)."""
        name = self.name
        if not isinstance(name, str) or not _OPTION_NAME.match(name):
            return [f"option name {name!r} must be lower-case letters, digits and '_', starting with a letter"]
        out = []
        if name in RESERVED_OPTION_NAMES:
            out.append(f"option {name!r}: the name is the core's own ({', '.join(sorted(RESERVED_OPTION_NAMES))})")
        if self.type not in OPTION_TYPES:
            return [*out, f"option {name!r}: type {self.type!r} is not one of bool, int, float, str"]
        if not isinstance(self.help, str) or not self.help.strip() or "\n" in self.help:
            out.append(f"option {name!r}: help must be one non-empty line")
        if not isinstance(self.choices, tuple):
            out.append(f"option {name!r}: choices must be a tuple of values, not {type(self.choices).__name__}")
        else:
            for choice in self.choices:
                if _convert(self.type, choice)[1] is not None or _convert(self.type, choice)[0] != choice:
                    out.append(f"option {name!r}: choice {choice!r} is not a {self.type.__name__}")
        for bound in ("minimum", "maximum"):
            value = getattr(self, bound)
            if value is not None and (self.type not in (int, float) or _convert(float, value)[1] is not None):
                out.append(f"option {name!r}: {bound} is for int and float options, and must be a number")
        if self.index_of is not None:
            if not writing or self.type is not int or self.index_of not in INDEX_TARGETS:
                out.append(f"option {name!r}: index_of is for int write options, one of {', '.join(INDEX_TARGETS)}")
        if self.writes is not None:
            out += self._writes_problems(writing)
        if self.default is not None and not out:
            try:
                if self.parse(self.default) != self.default:
                    raise ValueError(f"is not a {self.type.__name__}")
            except ValueError as exc:
                out.append(f"option {name!r}: default {self.default!r} {exc}")
        return out

    def _writes_problems(self, writing: bool) -> list[str]:
        from .model import PARTS

        name = self.name
        if not writing or not isinstance(self.writes, tuple) or not self.choices:
            return [f"option {name!r}: writes is for write options with choices, as {{choice: parts}}"]
        out = []
        for pair in self.writes:
            if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[1], frozenset)):
                return [f"option {name!r}: writes must map each choice to a set of parts"]
            choice, written = pair
            if choice not in self.choices:
                out.append(f"option {name!r}: writes names {choice!r}, which is not one of its choices")
            unknown = sorted(str(p) for p in written - set(PARTS))
            if unknown or not written:
                out.append(f"option {name!r}: writes for {choice!r} must name parts among {', '.join(PARTS)}")
        return out

    # ------------------------------------------------------------------ values
    def parse(self, value: Any) -> Any:
        """``value`` converted to :attr:`type` and checked; ``ValueError`` saying what is wrong otherwise."""
        converted, problem = _convert(self.type, value)
        if problem is not None:
            raise ValueError(problem)
        if self.choices:
            if converted not in self.choices and isinstance(converted, str):
                folded = [c for c in self.choices if isinstance(c, str) and c.casefold() == converted.casefold()]
                converted = folded[0] if len(folded) == 1 else converted
            if converted not in self.choices:
                raise ValueError("is not one of " + ", ".join(_show(c) for c in self.choices))
        if self.minimum is not None and converted < self.minimum:
            raise ValueError(f"is below the minimum {_show(self.minimum)}")
        if self.maximum is not None and converted > self.maximum:
            raise ValueError(f"is above the maximum {_show(self.maximum)}")
        return converted

    def summary(self) -> str:
        """``name (type and constraints)``, e.g. ``series (int >= 0)``, ``part (X/y)``."""
        if self.choices:
            return f"{self.name} ({'/'.join(_show(c) for c in self.choices)})"
        bounds = [f"{op} {_show(v)}" for op, v in ((">=", self.minimum), ("<=", self.maximum)) if v is not None]
        text = " ".join([self.type.__name__, ", ".join(bounds)]) if bounds else self.type.__name__
        if self.index_of is not None:
            text += f", a {self.index_of[:-1]} of the project"
        return f"{self.name} ({text})"

    def describe(self) -> str:
        """One line: ``name (type and constraints, default): help``."""
        default = "none" if self.default is None else _show(self.default)
        return f"{self.summary()[:-1]}, default {default}): {self.help}"

    def to_json(self) -> dict[str, Any]:
        """The declaration as JSON-able values (what ``dlformats formats --json`` prints)."""
        return {
            "name": self.name,
            "type": self.type.__name__,
            "default": self.default,
            "choices": list(self.choices),
            "help": self.help,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "index_of": self.index_of,
            "writes": None if self.writes is None else {str(k): sorted(v) for k, v in self.writes},
        }


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _convert(kind: type, value: Any) -> tuple[Any, str | None]:
    """``(value as kind, None)``, or ``(None, what is wrong)``."""
    if kind is bool:
        if isinstance(value, bool):
            return value, None
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE, None
        return None, "must be true or false"
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value, None
        if isinstance(value, str) and _INTEGER.match(value):
            return int(value), None
        return None, "must be an integer"
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value), None
        if isinstance(value, str):
            try:
                return float(value), None
            except ValueError:
                pass
        return None, "must be a number"
    if isinstance(value, str):
        return value, None
    if isinstance(value, (int, float)) and not isinstance(value, bool):  # version=0.4 given in Python
        return _show(value), None
    return None, "must be a string"


def _parse_select(value: Any) -> dict[str, int]:
    """The core's ``select`` option checked: ``{axis letter: plane index}``, letters upper-cased.

    Raises :class:`~dlformats.errors.InvalidOptionError` for anything else.  Whether the
    axes exist in the file, and the indices are in range, is checked when the axes are known.
    """
    from .arrays import AXIS_LETTERS

    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidOptionError(
            f"select={value!r} must map axis letters to plane indices, e.g. {{'Z': 0}}",
            option="select",
            hint=f"e.g. {usage('select', 'Z', 0)}",
        )
    out: dict[str, int] = {}
    for key, index in value.items():
        letter = str(key).upper()
        if len(letter) != 1 or letter not in AXIS_LETTERS:
            raise InvalidOptionError(
                f"select: {key!r} is not an axis letter", option="select", hint=f"use one of {', '.join(AXIS_LETTERS)}"
            )
        converted, problem = _convert(int, index)
        if problem is not None:
            raise InvalidOptionError(f"select: index {index!r} of axis {letter} {problem}", option="select")
        out[letter] = converted
    return out


@dataclass(frozen=True)
class ReadOptions:
    """What the caller asked of a reader.

    Attributes:
        axes: the caller's axis order for the source's array (e.g. ``"CZYX"``,
            letters from ``TZBCSYX``), overriding the file's own; ``None`` to use the file's.
        limits: resource bounds to enforce.
        extra: the format's own read options, as its :attr:`FormatSpec.read_options`
            declare them: every declared name, converted to its type, the default where the
            caller gave none (the core has refused unknown names and bad values).
        role: what the source is to the caller: ``"image"``, or ``"labels"`` (a separate
            labels source, or a source read as labels with ``read(..., role="labels")``:
            a reader of plain arrays then fills ``y``, with int32 labels, instead of ``X``;
            the core moves an array a reader put in ``X`` anyway to ``y``).
        select: ``{axis letter: plane index}`` planes to keep (letters upper-case), e.g.
            ``{"Z": 0}``; a reader applies the letters its array has (``LazyArray(select=...)``).
    """

    axes: str | None = None
    limits: Limits = DEFAULT_LIMITS
    extra: dict[str, Any] = field(default_factory=dict)
    role: str = "image"
    select: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InvalidOptionError(f"role {self.role!r} is not one of {', '.join(ROLES)}", option="role")
        object.__setattr__(self, "select", _parse_select(self.select))


@dataclass(frozen=True)
class WriteOptions:
    """What the caller asked of a writer.

    Attributes:
        extra: the format's own write options, as its :attr:`FormatSpec.write_options`
            declare them: every declared name, converted to its type, the default where the
            caller gave none (the core has refused unknown names and bad values).
        progress: called with ``(done, total)`` units of work as the writer goes, or ``None``.
        target: the path the output will have once complete (the writer writes a temporary
            path in the same folder, renamed onto ``target`` at the end), or ``None`` when unknown.
    """

    extra: dict[str, Any] = field(default_factory=dict)
    progress: Callable[[int, int], None] | None = None
    target: Path | None = None

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

    The core checks every declaration when it loads the plugin (see :meth:`problems`): a
    format whose declaration is unsound is not registered, and is listed, with the reason,
    by ``dlformats formats`` and in "no reader" errors; the plugin's other formats work.

    Attributes:
        name: unique name: lower-case letters and digits, words joined by ``-``, starting
            with a letter (``"dcl-project-zip"``); what ``format=`` and ``--from/--to`` take.
        description: one line for ``dlformats formats``.
        extensions: extensions with their dot (``(".ome.tiff", ".ome.tif")``), lower-cased
            here; the longest one a file name ends with counts.
        signatures: leading bytes any of which identifies the content (e.g. ``b"\\x89PNG"``).
        sniff: a cheap content check (see :data:`Sniffer`); runs after ``signatures`` match,
            or alone when there are none.
        reads: project parts the reader fills (see :data:`dlformats.model.PARTS`); given
            exactly when ``read`` is.
        writes: project parts the writer keeps; given exactly when ``write`` is.
        read: the reader, or ``None`` for a write-only format.
        write: the writer, or ``None`` for a read-only format.
        folder: the format is a folder, not a file (the writer fills a folder).
        priority: breaks ties between formats equally matched by content and extension
            (higher wins).
        install_hint: what to install when this format's dependencies are missing.
        read_options: the options the reader takes (see :class:`Option`); the core refuses
            any other (besides its own ``select``, given as :attr:`ReadOptions.select`).
        write_options: the options the writer takes.
        frame_axes: what the written file can record the frames as, letters of ``TZB``
            (``"B"`` for npy, which reads back as batches); a project whose
            :attr:`~dlformats.Project.frame_axis` is not among them is written as the first,
            and the core says so before writing.
        progress_unit: what the writer counts when it reports progress (``"planes"``: one
            ``(height, width)`` plane of the image or of the labels; ``"frames"``, ``"files"``...).
        describe: for ``dlformats info --raw``: ``describe(source, options)`` returns what the
            file holds before any mapping, as JSON-able values: ``{"series": [{"axes": ...,
            "shape": [...], "dtype": ..., "pixel_sizes": {...}, "channels": [...]}, ...],
            "choices": [...]}`` (see :func:`dlformats.info`); ``None`` to let the core
            describe the project read.
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
    read_options: tuple[Option, ...] = ()
    write_options: tuple[Option, ...] = ()
    frame_axes: str = "TZB"
    progress_unit: str = "planes"
    describe: Callable[[Source, ReadOptions], dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        # Normalise what is well-typed; anything else is left for problems() to report.
        if isinstance(self.extensions, (list, tuple)):
            lowered = tuple(e.lower() if isinstance(e, str) else e for e in self.extensions)
            object.__setattr__(self, "extensions", lowered)
        for field_name in ("reads", "writes"):
            value = getattr(self, field_name)
            if isinstance(value, (list, tuple, set, frozenset)):
                object.__setattr__(self, field_name, frozenset(value))
        for field_name in ("signatures", "read_options", "write_options"):
            value = getattr(self, field_name)
            if isinstance(value, list):
                object.__setattr__(self, field_name, tuple(value))

    def extension_match(self, filename: str) -> int:
        """Length of the longest of :attr:`extensions` that ``filename`` ends with (0 if none)."""
        lower = filename.lower()
        return max((len(e) for e in self.extensions if lower.endswith(e)), default=0)

    # ------------------------------------------------------------------ declaration
    def problems(self) -> list[str]:
        """Everything wrong with this declaration, one sentence each (empty when it is sound)."""
        from .model import PARTS

        out: list[str] = []
        if not isinstance(self.name, str) or not _FORMAT_NAME.match(self.name):
            out.append(
                f"name {self.name!r} must be lower-case letters and digits, words joined by '-', "
                "starting with a letter (e.g. 'dcl-project-zip')"
            )
        if not isinstance(self.description, str) or not self.description.strip() or "\n" in self.description:
            out.append("description must be one non-empty line")
        if not isinstance(self.extensions, tuple) or not all(isinstance(e, str) for e in self.extensions):
            out.append(f"extensions must be a tuple of strings such as ('.foo',), not {self.extensions!r}")
        else:
            for ext in self.extensions:
                if not ext.startswith(".") or len(ext) < 2 or any(c in ext for c in "/\\*? \t"):
                    out.append(f"extension {ext!r} must be a dot and a suffix, e.g. '.{ext.strip('.') or 'foo'}'")
        if not isinstance(self.signatures, tuple) or not all(isinstance(b, bytes) and b for b in self.signatures):
            out.append("signatures must be a tuple of non-empty bytes")
        if not isinstance(self.frame_axes, str) or not self.frame_axes or set(self.frame_axes) - set("TZB"):
            out.append(f"frame_axes must be letters of TZB, e.g. 'TZB' or 'T', not {self.frame_axes!r}")
        if not isinstance(self.progress_unit, str) or not self.progress_unit.strip():
            out.append("progress_unit must name what the writer counts, e.g. 'planes'")
        for hook in ("sniff", "read", "write", "describe"):
            value = getattr(self, hook)
            if value is not None and not callable(value):
                out.append(f"{hook} must be a function or None, not {type(value).__name__}")
        if self.read is None and self.write is None:
            out.append("it neither reads nor writes: give read= or write=")
        for hook, listed in (("read", "reads"), ("write", "writes")):
            value = getattr(self, listed)
            if not isinstance(value, frozenset):
                out.append(f"{listed} must be a set of part names, e.g. parts('X', 'y')")
                continue
            unknown = sorted(str(p) for p in value - set(PARTS))
            if unknown:
                out.append(f"{listed} names unknown parts {unknown}; parts are {', '.join(PARTS)}")
            if (getattr(self, hook) is None) != (not value):
                role = "reader" if hook == "read" else "writer"
                out.append(f"{listed} must list the parts exactly when there is a {role} ({hook}=)")
        if not isinstance(self.folder, bool):
            out.append("folder must be True or False")
        if isinstance(self.priority, bool) or not isinstance(self.priority, int):
            out.append("priority must be an integer")
        if not isinstance(self.install_hint, str):
            out.append("install_hint must be a string")
        for writing, field_name in ((False, "read_options"), (True, "write_options")):
            out += self._option_problems(field_name, writing)
        return out

    def _option_problems(self, field_name: str, writing: bool) -> list[str]:
        declared = getattr(self, field_name)
        if not isinstance(declared, tuple) or not all(isinstance(o, Option) for o in declared):
            return [f"{field_name} must be a tuple of Option"]
        out: list[str] = []
        if declared and (self.write if writing else self.read) is None:
            out.append(f"{field_name} given, but there is no {'writer' if writing else 'reader'}")
        names = [o.name for o in declared]
        out += [f"{field_name}: {name!r} is declared twice" for name in sorted(set(names)) if names.count(name) > 1]
        for option in declared:
            out += [f"{field_name}: {p}" for p in option.problems(writing=writing)]
        return out

    def written_parts(self, options: Mapping[str, Any]) -> frozenset[str]:
        """The parts a write with these (parsed) write options keeps: :attr:`writes`, or what a
        ``writes``-declaring option (:attr:`Option.writes`) says for its value."""
        for option in self.write_options:
            chosen = option.parts_written(options.get(option.name, option.default))
            if chosen is not None:
                return chosen
        return self.writes

    # ------------------------------------------------------------------ options
    def option_summary(self, *, writing: bool) -> str:
        """The valid read (write) options in one line, for error messages."""
        declared = self.write_options if writing else self.read_options
        shown = [o.summary() for o in declared]
        if not writing:
            shown += [summary for summary, _ in _CORE_READ_OPTIONS.values()]
        kind = "write" if writing else "read"
        if not shown:
            return f"format {self.name!r} takes no {kind} options"
        return f"valid {kind} options: " + ", ".join(shown)

    def parse_options(self, given: Mapping[str, Any], *, writing: bool, strict: bool = True) -> dict[str, Any]:
        """The format's options from what the caller gave: every declared name, converted, defaults filled in.

        Raises :class:`~dlformats.errors.InvalidOptionError` listing the valid options for a
        bad value, and for a name the format does not declare unless ``strict`` is false
        (options a labels source inherits from the image's are only applied where declared).
        """
        declared = {o.name: o for o in (self.write_options if writing else self.read_options)}
        out = {name: option.default for name, option in declared.items()}
        kind = "write" if writing else "read"
        valid = [o.describe() for o in declared.values()]
        core = _CORE_WRITE_OPTIONS if writing else _CORE_READ_OPTIONS
        valid += [f"{summary}: {text}" for summary, text in core.values()]
        hint = f"{self.option_summary(writing=writing)}; details: dlformats formats {self.name}"
        for key, value in given.items():
            option = declared.get(key)
            if option is None:
                if strict:
                    raise InvalidOptionError(
                        f"unknown {kind} option {key!r} for format {self.name!r}",
                        option=str(key),
                        valid=valid,
                        format=self.name,
                        hint=hint,
                    )
                continue
            if value is None:
                continue
            try:
                out[key] = option.parse(value)
            except ValueError as exc:
                raise InvalidOptionError(
                    f"{kind} option {key}={value!r} of format {self.name!r} {exc}",
                    option=key,
                    valid=valid,
                    format=self.name,
                    hint=option.describe(),
                ) from None
        return out

    def to_json(self) -> dict[str, Any]:
        """The declaration as JSON-able values (without the functions)."""
        return {
            "name": self.name,
            "description": self.description,
            "extensions": list(self.extensions),
            "reads": self.read is not None,
            "writes": self.write is not None,
            "parts_read": sorted(self.reads),
            "parts_written": sorted(self.writes),
            "read_options": [o.to_json() for o in self.read_options],
            "write_options": [o.to_json() for o in self.write_options],
            "folder": self.folder,
            "frame_axes": self.frame_axes,
            "progress_unit": self.progress_unit,
            "describes_raw": self.describe is not None,
            "priority": self.priority,
            "install_hint": self.install_hint,
        }


def parts(*names: str) -> frozenset[str]:
    """A frozenset of part names, checked against :data:`dlformats.model.PARTS`."""
    from .model import PARTS

    unknown = [n for n in names if n not in PARTS]
    if unknown:
        raise ValueError(f"unknown project parts {unknown}; known: {PARTS}")
    return frozenset(names)


def _as_list(result: Project | Iterable[Project]) -> list[Project]:
    """Normalise a reader's result to a list of projects."""
    from .model import Project

    if isinstance(result, Project):
        return [result]
    return list(result)


__all__ = [
    "INDEX_TARGETS",
    "OPTION_TYPES",
    "RESERVED_OPTION_NAMES",
    "ROLES",
    "FormatSpec",
    "Option",
    "ReadOptions",
    "Reader",
    "Sniffer",
    "WriteOptions",
    "Writer",
    "parts",
]
