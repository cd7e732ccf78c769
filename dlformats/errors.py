"""Typed errors raised by dlformats and its plugins.

Every error a user can meet derives from :class:`DLFormatsError`.  Errors carry
their facts as fields (``path``, ``member``, ``format``, ``hint`` ...), so callers
never need to match message text.  ``str(error)`` renders one line naming the
file, the archive member where there is one, the problem and, when known, what
to do about it.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any


class DLFormatsError(Exception):
    """Base class of every error dlformats raises on purpose.

    Attributes:
        reason: what is wrong, in one sentence.
        path: the file (or source name) the error is about, if any.
        member: the archive member (zip or tar) the error is about, if any.
        format: the name of the format whose reader or writer raised it, if known.
        hint: what the user can do about it, if known.
    """

    def __init__(
        self,
        reason: str,
        *,
        path: str | None = None,
        member: str | None = None,
        format: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.reason = reason
        self.path = None if path is None else str(path)
        self.member = member
        self.format = format
        self.hint = hint
        super().__init__(reason)

    def __reduce__(self) -> tuple[object, ...]:
        # Subclasses take keyword-only fields, which Exception's default pickling
        # (cls(*args)) would drop: rebuild from the fields themselves.
        return (_rebuild, (type(self), self.args, self.__dict__.copy()))

    def where(self) -> str:
        """Return ``path[:member]``, or an empty string when neither is known."""
        if self.path and self.member:
            return f"{self.path}: {self.member}"
        return self.path or self.member or ""

    def __str__(self) -> str:
        text = self.reason
        where = self.where()
        if where:
            text = f"{where}: {text}"
        if self.hint:
            text = f"{text} ({self.hint})"
        return text

    def located(self, path: str | None = None, member: str | None = None) -> DLFormatsError:
        """Fill in ``path`` and ``member`` where they are still unknown; return self."""
        if self.path is None and path is not None:
            self.path = str(path)
        if self.member is None and member is not None:
            self.member = member
        return self


def _rebuild(cls: type[DLFormatsError], args: tuple[object, ...], fields: dict[str, object]) -> DLFormatsError:
    """Unpickle an error: same class, args and fields, without calling ``__init__``."""
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(fields)
    return error


class CorruptFileError(DLFormatsError):
    """The file is damaged or is not what its format requires."""


class UnsupportedFeatureError(DLFormatsError):
    """The file is valid but uses a feature dlformats does not handle."""


class LimitExceededError(DLFormatsError):
    """A declared or actual size is over a :class:`dlformats.Limits` bound.

    Attributes:
        limit: the name of the ``Limits`` field that was exceeded.
        allowed: the bound.
        found: the size that was declared or met.
    """

    def __init__(self, reason: str, *, limit: str, allowed: int, found: int, **kw: object) -> None:
        self.limit = limit
        self.allowed = allowed
        self.found = found
        kw.setdefault("hint", f"raise it with {usage('limit', limit)} if you trust the file")
        super().__init__(f"{reason}: {found:,} > {limit} {allowed:,}", **kw)  # type: ignore[arg-type]


class UnsafeArchiveError(DLFormatsError):
    """An archive member is unsafe: a link, a device, a path escaping the archive, a duplicate..."""


class InconsistentDataError(DLFormatsError):
    """The parts of a project contradict each other so that the data is unusable.

    Attributes:
        problems: every problem found (see :meth:`dlformats.Project.validate`).
    """

    def __init__(self, reason: str, *, problems: Sequence[object] = (), **kw: object) -> None:
        self.problems = list(problems)
        super().__init__(reason, **kw)  # type: ignore[arg-type]


class AmbiguousInputError(DLFormatsError):
    """The file can be read in several ways; an option must choose one.

    Attributes:
        option: the read option that resolves it (e.g. ``"series"``, ``"axes"``).
        choices: the accepted values, when they can be listed.
    """

    def __init__(self, reason: str, *, option: str, choices: Sequence[object] = (), **kw: object) -> None:
        self.option = option
        self.choices = list(choices)
        super().__init__(reason, **kw)  # type: ignore[arg-type]


class InvalidOptionError(DLFormatsError):
    """An option given by the caller (``axes=``, ``format=``, a limit, a format's option...) is not valid.

    Attributes:
        option: the name of the option at fault, when there is one.
        valid: what is accepted instead (the options a format declares, or the values an
            option allows), as short descriptions; empty when not known.
    """

    def __init__(self, reason: str, *, option: str | None = None, valid: Sequence[str] = (), **kw: object) -> None:
        self.option = option
        self.valid = list(valid)
        super().__init__(reason, **kw)  # type: ignore[arg-type]


class SourceNotFoundError(InvalidOptionError, FileNotFoundError):
    """The source to read does not exist: a :class:`DLFormatsError` and a :class:`FileNotFoundError` alike.

    ``errno`` is ``ENOENT`` and ``filename`` the path, as ``open()`` would give them, so
    ``except FileNotFoundError`` and ``except DLFormatsError`` both catch it.
    """

    def __init__(self, reason: str = "no such file", **kw: Any) -> None:
        super().__init__(reason, **kw)
        self._os_fields()

    def _os_fields(self) -> None:
        self.errno, self.strerror, self.filename = _errno.ENOENT, self.reason, self.path

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_not_found, (type(self), self.args, self.__dict__.copy()))


def _rebuild_not_found(
    cls: type[SourceNotFoundError], args: tuple[object, ...], fields: dict[str, object]
) -> SourceNotFoundError:
    error = _rebuild(cls, args, fields)
    assert isinstance(error, SourceNotFoundError)
    error._os_fields()
    return error


class PartsDroppedError(UnsupportedFeatureError):
    """A write with ``strict=True`` (``--strict``) would leave parts of the project out.

    Raised before anything is written.

    Attributes:
        dropped: the parts the target format does not write (see :data:`dlformats.model.PARTS`),
            plus ``"frame_axis"`` when the file would record the frames as another axis.
    """

    def __init__(self, reason: str, *, dropped: Sequence[str] = (), **kw: object) -> None:
        self.dropped = list(dropped)
        super().__init__(reason, **kw)  # type: ignore[arg-type]


class NotMyFormat(DLFormatsError):  # noqa: N818 - a signal, named for what it says
    """Raised by a reader to decline a file that is not its format.

    The registry then lets the next candidate try.  A reader that finds a file of
    its own format broken must raise another :class:`DLFormatsError` instead.
    """


@dataclass
class Candidate:
    """One format considered for a file, and why it was or was not used."""

    format: str
    plugin: str
    reason: str


class NoReaderError(DLFormatsError):
    """No format could read the file.

    Attributes:
        detected: what the leading bytes say the file is (e.g. ``"zip archive"``).
        candidates: every format considered, with why it declined.
        failed_plugins: plugins that failed to load, and formats of plugins that failed to
            register, ``{plugin or "plugin (format name)": error text}``.
        install: packages that may add a reader.
    """

    def __init__(
        self,
        reason: str,
        *,
        detected: str = "",
        candidates: Sequence[Candidate] = (),
        failed_plugins: dict[str, str] | None = None,
        install: Sequence[str] = (),
        **kw: object,
    ) -> None:
        self.detected = detected
        self.candidates = list(candidates)
        self.failed_plugins = dict(failed_plugins or {})
        self.install = list(install)
        super().__init__(reason, **kw)  # type: ignore[arg-type]

    def __str__(self) -> str:
        parts = [super().__str__()]
        if self.detected:
            parts.append(f"detected: {self.detected}")
        if self.candidates:
            parts.append("candidates: " + "; ".join(f"{c.format} ({c.plugin}): {c.reason}" for c in self.candidates))
        else:
            parts.append("no format claims this file's content or extension")
        if self.failed_plugins:
            parts.append(
                "plugins or formats that failed to load: "
                + "; ".join(f"{name}: {err}" for name, err in sorted(self.failed_plugins.items()))
            )
        if self.install:
            parts.append("to install: " + ", ".join(self.install))
        return " | ".join(parts)


class NoWriterError(DLFormatsError):
    """No format can write to the requested target."""


_PLUGIN_STAGES = {"sniff": "sniffer", "read": "reader", "write": "writer", "validate": "dlformats_validate hook"}
"""The stages at which the core calls plugin code, and what that code is called in messages."""


class PluginCrashedError(DLFormatsError):
    """A plugin's code raised an unexpected exception: a bug in that plugin, not a problem of the file.

    Raised by the core (see :func:`_plugin_crashed`) when a sniffer, reader, writer or
    ``dlformats_validate`` hook lets anything but a :class:`DLFormatsError` escape.  The
    original exception is chained as ``__cause__``.  ``ReaderCrashedError`` is a deprecated
    name of this class.

    Attributes:
        stage: where it crashed: ``"sniff"``, ``"read"``, ``"write"`` or ``"validate"``.
        plugin: the plugin (entry-point) name.
        format: the format whose code crashed (``None`` for a ``dlformats_validate`` hook).
    """

    def __init__(self, reason: str, *, stage: str = "read", plugin: str | None = None, **kw: object) -> None:
        self.stage = stage
        self.plugin = plugin
        super().__init__(reason, **kw)  # type: ignore[arg-type]


def _plugin_crashed(
    exc: BaseException, *, stage: str, format: str | None, plugin: str | None, path: str | None = None
) -> DLFormatsError:
    """The error to raise (``raise _plugin_crashed(...) from exc``) when plugin code raised ``exc`` unexpectedly.

    Every place where the core calls plugin code (sniffers, readers, writers, validate
    hooks) routes unexpected exceptions through here, so that they are judged the same
    way: running out of memory is said so; a failure of the machine (an :class:`OSError`
    such as no space left or too many open files, raised or chained) is an
    :class:`EnvironmentFailureError`; anything else is a :class:`PluginCrashedError`
    naming the stage, the format and the plugin.
    """
    doing = {"sniff": "sniffing", "read": "reading", "write": "writing", "validate": "validating"}.get(stage, stage)
    env = _environment_failure(exc, path=path, doing=doing, writing=stage == "write")
    if env is not None:
        env.format = format
        return env
    if isinstance(exc, MemoryError):
        return DLFormatsError(f"out of memory while {doing}", path=path, format=format)
    what = _PLUGIN_STAGES.get(stage, stage)
    owner = f"of format {format!r} (plugin {plugin})" if format is not None else f"of plugin {plugin}"
    return PluginCrashedError(
        f"the {what} {owner} crashed: {type(exc).__name__}: {exc}",
        stage=stage,
        plugin=plugin,
        format=format,
        path=path,
        hint=f"a bug in plugin {plugin}; report it, or block the plugin with DLFORMATS_DISABLE_PLUGINS={plugin}",
    )


class EnvironmentFailureError(DLFormatsError):
    """The machine failed, not the file and not a plugin: no space left, permission denied, too many
    open files, an I/O error of the device, the network.

    Attributes:
        errno: the ``errno`` of the underlying :class:`OSError`, when there is one.
    """

    def __init__(self, reason: str, *, errno: int | None = None, **kw: object) -> None:
        self.errno = errno
        super().__init__(reason, **kw)  # type: ignore[arg-type]


class NetworkError(EnvironmentFailureError):
    """A download failed: the server could not be reached, broke the protocol, or was too slow."""


_ERRNO_WORDS = {
    _errno.ENOSPC: "no space left on the device",
    _errno.EDQUOT: "disk quota exceeded",
    _errno.EACCES: "permission denied",
    _errno.EPERM: "operation not permitted",
    _errno.EROFS: "the file system is read-only",
    _errno.EMFILE: "too many open files in this process",
    _errno.ENFILE: "too many open files on this system",
    _errno.EIO: "input/output error of the device",
    _errno.ENOMEM: "out of memory",
    _errno.EFBIG: "the file would be larger than this file system allows",
    _errno.ENAMETOOLONG: "the name is too long for this file system",
    _errno.ENOENT: "it does not exist",
    _errno.ENOTDIR: "a folder in its path is not a folder",
    _errno.EISDIR: "it is a folder",
    _errno.ESTALE: "stale network file handle",
}

_ERRNO_HINTS = {
    _errno.ENOSPC: "free some space or write to another disk",
    _errno.EDQUOT: "free some space or write to another disk",
    _errno.EACCES: "check the permissions of the file and its folder",
    _errno.EROFS: "write to another folder",
    _errno.EMFILE: "raise the limit of open files (ulimit -n) or open fewer at once",
}

_ENVIRONMENTAL = frozenset(
    {
        _errno.ENOSPC,
        _errno.EDQUOT,
        _errno.EACCES,
        _errno.EPERM,
        _errno.EROFS,
        _errno.EMFILE,
        _errno.ENFILE,
        _errno.EIO,
        _errno.ENOMEM,
        _errno.EFBIG,
        _errno.ESTALE,
    }
)
"""Errnos that say the machine failed whatever the code did; ENOENT, EISDIR... may be a plugin's bug."""


def environment_error(exc: OSError, *, path: str | None, doing: str = "") -> EnvironmentFailureError | None:
    """Translate an :class:`OSError` caused by the machine into an :class:`EnvironmentFailureError`.

    Returns ``None`` for errors that are not environmental (the caller treats those as its own).
    ``doing`` says what was attempted (``"writing"``), for the message; the original exception
    should be chained by the caller (``raise err from exc``).  The error's ``path`` is ``path``
    (else the file the ``OSError`` names); the message does not repeat it:
    ``out.zip: writing failed: no space left on the device (free some space or write to another disk)``.
    """
    words = _ERRNO_WORDS.get(exc.errno) if exc.errno is not None else None
    if words is None:
        return None
    if path is None and exc.filename is not None:
        path = str(exc.filename)
    reason = f"{doing} failed: {words}" if doing else words
    return EnvironmentFailureError(reason, errno=exc.errno, path=path, hint=_ERRNO_HINTS.get(exc.errno))


def _environment_failure(
    exc: BaseException, *, path: str | None, doing: str = "", writing: bool = False
) -> EnvironmentFailureError | None:
    """The :class:`EnvironmentFailureError` to raise instead of a plugin crash caused by the machine.

    Looks through ``exc`` and the exceptions it was raised from or while handling for an
    :class:`OSError` that only the machine causes (a full disk, permission denied, too many
    open files, an I/O error...), and translates it as :func:`environment_error` does.  With
    ``writing=True`` (``path`` is being written), a short write (an ``OSError`` without errno,
    as numpy's ``tofile`` raises) counts as a full disk when the device holding ``path`` has
    (almost) no space left.  Returns ``None`` when nothing in the chain is environmental: then
    it is a bug of the plugin.
    """
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    short_write: OSError | None = None
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError):
            if e.errno in _ENVIRONMENTAL:
                return environment_error(e, path=path, doing=doing)
            if e.errno is None and short_write is None:
                short_write = e
        todo += [e.__cause__, e.__context__]
    if writing and short_write is not None and path is not None and _out_of_space(path):
        full = OSError(_errno.ENOSPC, str(short_write))
        return environment_error(full, path=path, doing=doing)
    return None


def _out_of_space(path: str) -> bool:
    """Whether the file system holding ``path`` (or its folder) has less than 1 MiB free."""
    if not hasattr(os, "statvfs"):
        return False
    for where in (path, os.path.dirname(path) or "."):
        try:
            st = os.statvfs(where)
        except (OSError, ValueError):
            continue
        free = st.f_bfree if hasattr(os, "geteuid") and os.geteuid() == 0 else st.f_bavail
        return free * st.f_frsize < (1 << 20)
    return False


@dataclass
class PluginFailure:
    """A plugin that could not be loaded, or one of its formats that could not be registered.

    Attributes:
        name: the plugin (entry-point) name.
        distribution: the distribution it comes from.
        error: what went wrong, in one line.
        format: the format that was not registered (a bad declaration, a name already
            taken), or ``None`` when the whole plugin failed.
    """

    name: str
    distribution: str
    error: str
    format: str | None = None

    @property
    def label(self) -> str:
        """``plugin`` for a plugin that failed, ``plugin (format name)`` for one format of it."""
        return self.name if self.format is None else f"{self.name} (format {self.format})"


class PluginError(DLFormatsError):
    """Plugins contradict each other, e.g. two declare the same format name.

    Attributes:
        plugins: the plugin (entry point) names involved.
        distributions: the distributions they come from.
    """

    def __init__(
        self, reason: str, *, plugins: Sequence[str] = (), distributions: Sequence[str] = (), **kw: object
    ) -> None:
        self.plugins = list(plugins)
        self.distributions = list(distributions)
        super().__init__(reason, **kw)  # type: ignore[arg-type]


__all__ = [
    "AmbiguousInputError",
    "Candidate",
    "CorruptFileError",
    "DLFormatsError",
    "DLFormatsWarning",
    "EnvironmentFailureError",
    "InconsistentDataError",
    "InvalidOptionError",
    "LimitExceededError",
    "NetworkError",
    "NoReaderError",
    "NoWriterError",
    "NotMyFormat",
    "PartsDroppedError",
    "PartsDroppedWarning",
    "PluginCrashedError",
    "PluginError",
    "PluginFailure",
    "SourceNotFoundError",
    "UnsafeArchiveError",
    "UnsupportedFeatureError",
    "command_syntax",
    "command_syntax_active",
    "environment_error",
    "usage",
]


class DLFormatsWarning(UserWarning):
    """Something suspicious but usable was found (e.g. divisions.json and lineage.json disagree)."""


class PartsDroppedWarning(DLFormatsWarning):
    """A write leaves parts of the project out: the target format does not hold them (:class:`PartsDroppedError`)."""


# ------------------------------------------------------------------ hints in the caller's syntax
_COMMAND_LINE: list[bool] = [False]


@contextlib.contextmanager
def command_syntax() -> Iterator[None]:
    """While the block runs, hints name options as the ``dlformats`` command takes them (``--select Z=0``).

    Outside it (the Python API) they name them as Python takes them (``options={'select': {'Z': 0}}``).
    The command wraps each run in it; it is process-wide, as the command is.
    """
    previous = _COMMAND_LINE[0]
    _COMMAND_LINE[0] = True
    try:
        yield
    finally:
        _COMMAND_LINE[0] = previous


_PLACEHOLDERS = frozenset({"N", "NAME", "FILE", "AXES", "INDEX", "VALUE"})


def command_syntax_active() -> bool:
    """True while the ``dlformats`` command runs (hints then use its syntax, see :func:`command_syntax`)."""
    return _COMMAND_LINE[0]


def _py(value: object) -> str:
    """``value`` as Python source; a placeholder (``N``, ``NAME``...) stays as it is."""
    if isinstance(value, str) and value in _PLACEHOLDERS:
        return value
    return repr(value)


def _cmd(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def usage(kind: str, name: str = "", value: object = "N", *, labels: bool = False) -> str:
    """How the caller gives an option, in the caller's syntax (see :func:`command_syntax`), for a hint.

    ``kind`` is ``"option"`` (a read option of the format), ``"write"`` (a write option),
    ``"select"`` (``name`` an axis letter, ``value`` a plane index), ``"axes"`` (``value``
    the letters), ``"limit"``, ``"role"`` or ``"flag"`` (a switch such as ``strict``);
    ``labels=True`` for the separate labels source.
    E.g. ``usage("option", "series")`` is ``options={'series': N}`` in Python and
    ``--option series=N`` on the command line.
    """
    command = _COMMAND_LINE[0]
    prefix = "labels_" if labels else ""
    flag = "--labels-" if labels else "--"
    if kind == "option":
        if command:
            return f"{flag}option {name}={_cmd(value)}"
        return f"{prefix}options={{{name!r}: {_py(value)}}}"
    if kind == "write":
        return f"--write-option {name}={_cmd(value)}" if command else f"options={{{name!r}: {_py(value)}}}"
    if kind == "select":
        if command and labels:
            return "--labels-option 'select={\"%s\": %s}'" % (name, _cmd(value))  # noqa: UP031
        if command:
            return f"--select {name}={_cmd(value)}"
        return f"{prefix}options={{'select': {{{name!r}: {_py(value)}}}}}"
    if kind == "axes":
        return f"{flag}axes {value}" if command else f"{prefix}axes={_py(value)}"
    if kind == "limit":
        return f"--limit {name}={_cmd(value)}" if command else f"limits=Limits({name}={_py(value)})"
    if kind == "role":
        return f"--role {value}" if command else f"role={_py(value)}"
    if kind == "write_format":
        return "--to FORMAT" if command else "format='FORMAT' (to_format= in convert)"
    if kind == "flag":  # a switch: --strict / strict=True
        return f"--{name.replace('_', '-')}" if command else f"{name}=True"
    raise ValueError(f"unknown kind of option {kind!r}")


def __getattr__(name: str) -> object:
    if name == "ReaderCrashedError":
        import warnings

        warnings.warn(
            "dlformats.errors.ReaderCrashedError is renamed PluginCrashedError", DeprecationWarning, stacklevel=2
        )
        return PluginCrashedError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
