"""The plugin registry: finds format plugins through entry points and chooses readers and writers.

Plugins are discovered in the entry-point group ``dlformats.plugins``, lazily (on
the first call that needs a format, never at ``import dlformats``) and once per
process.  Each entry point is loaded on its own, and each format declared on its
own: a plugin that fails to import, whose hooks do not fit :mod:`dlformats.hookspecs`,
or whose ``dlformats_formats`` hook raises, and a format whose declaration is unsound
or whose name is taken, are recorded in :attr:`Registry.failures` and reported, never
fatal to the others.  ``DLFORMATS_DISABLE_PLUGINS=name1,name2`` blocks plugins by
entry-point name (or distribution name).

Format names are unique.  Of two formats declaring one name, the one named by
``DLFORMATS_PREFER=format=plugin`` (a plugin or distribution name; several pairs
separated by commas) keeps it; else the built-in one; else the one of the plugin
loaded first (entry points are loaded in order of their names).  The other is
listed as failed, with both distributions and how to choose it.

Choosing a reader (see :meth:`Registry.reader_candidates`) is deterministic:

1. an explicit ``format=`` wins;
2. then content: a format whose signature or sniff claims the leading bytes or
   container members comes before one that cannot tell; a format whose content
   check says "no" is not tried;
3. then the longest matching extension;
4. then ``priority`` (higher first);
5. then a third-party plugin before a built-in one;
6. then the format name.

Tests and notebooks build their own registry (``Registry(load=False)`` plus
:meth:`Registry.register`) and make the API use it with :func:`use_registry`.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from .errors import (
    Candidate,
    DLFormatsError,
    InvalidOptionError,
    NoReaderError,
    NotMyFormat,
    NoWriterError,
    PluginError,
    PluginFailure,
    _plugin_crashed,
    usage,
)
from .spec import FormatSpec

if TYPE_CHECKING:
    from .model import Problem, Project
    from .sources import Source

ENTRY_POINT_GROUP = "dlformats.plugins"
DISABLE_ENV = "DLFORMATS_DISABLE_PLUGINS"
PREFER_ENV = "DLFORMATS_PREFER"
BUILTIN_DISTRIBUTION = "dlformats"
_HOOKS = tuple(name for name in vars(hookspecs) if name.startswith(f"{hookspecs.PROJECT_NAME}_"))
"""The hooks of :mod:`dlformats.hookspecs`."""


def _canonical(distribution: str) -> str:
    """A distribution name as pip compares them: ``Foo_Bar.baz`` and ``foo-bar-baz`` are one."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


@dataclass(frozen=True)
class _EntryPoint:
    """One entry point of a group: ``name = value`` of the installed ``distribution`` at ``version``."""

    name: str
    value: str
    distribution: str
    version: str

    def load(self) -> Any:
        """Import the module the value names and return the object (``module`` or ``module:attr.attr``)."""
        import importlib

        found = _ENTRY_VALUE.match(self.value)
        if not found:
            raise ValueError(f"malformed entry point value {self.value!r}")
        obj = importlib.import_module(found.group("module"))
        for attr in filter(None, (found.group("attr") or "").split(".")):
            obj = getattr(obj, attr)
        return obj


_ENTRY_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")


def _entry_points(group: str) -> list[_EntryPoint]:
    """The entry points of ``group`` of every distribution on ``sys.path``, the first of a name winning.

    What :func:`importlib.metadata.entry_points` returns, found without importing
    :mod:`importlib.metadata` (whose ``email`` imports and ``METADATA`` parsing cost a
    command 30 ms of start-up): ``*.dist-info`` and ``*.egg-info`` folders of each
    folder on ``sys.path``, their ``entry_points.txt``, and the ``Name`` and ``Version``
    headers of the distributions that have the group.  Where that is not everything
    (a zip, an old ``.egg`` or another non-folder on ``sys.path``, a meta-path finder of
    distributions other than the standard one), :mod:`importlib.metadata` answers instead.
    """
    import importlib.machinery
    import sys

    finders = [f for f in sys.meta_path if hasattr(f, "find_distributions")]
    entries = [entry for entry in sys.path if isinstance(entry, str)]  # what PathFinder looks at
    if finders != [importlib.machinery.PathFinder] or any(
        entry.lower().endswith(".egg") or (entry and not os.path.isdir(entry) and os.path.exists(entry))
        for entry in entries
    ):
        return _entry_points_by_metadata(group)
    out: list[_EntryPoint] = []
    seen: set[str] = set()
    for entry in entries:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:
            continue
        for folder in names:
            stem, dot, suffix = folder.rpartition(".")
            if not dot or suffix.lower() not in ("dist-info", "egg-info"):
                continue
            key = _canonical(stem.split("-", 1)[0])
            if key in seen:
                continue
            path = os.path.join(entry or ".", folder)
            if not os.path.isdir(path):
                continue
            seen.add(key)
            listed = _group_entries(os.path.join(path, "entry_points.txt"), group)
            if not listed:
                continue
            name, version = _name_version(path, suffix.lower(), stem)
            out.extend(_EntryPoint(n, v, name, version) for n, v in listed)
    return out


def _group_entries(path: str, group: str) -> list[tuple[str, str]]:
    """The ``name = value`` lines of section ``[group]`` of an ``entry_points.txt`` (none when absent)."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        return []
    out: list[tuple[str, str]] = []
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif section == group and "=" in line:
            name, _, value = line.partition("=")
            out.append((name.strip(), value.strip()))
    return out


def _name_version(path: str, suffix: str, stem: str) -> tuple[str, str]:
    """``Name`` and ``Version`` from the headers of a distribution's METADATA (or PKG-INFO)."""
    found: dict[str, str] = {}
    try:
        with open(os.path.join(path, "METADATA" if suffix == "dist-info" else "PKG-INFO"), encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    break  # the headers end at the first empty line
                key, sep, value = line.partition(":")
                if sep and key in ("Name", "Version") and key not in found:
                    found[key] = value.strip()
                if len(found) == 2:
                    break
    except OSError:
        pass
    name, _, version = stem.partition("-")
    return found.get("Name", name), found.get("Version", version.split("-", 1)[0])


def _entry_points_by_metadata(group: str) -> list[_EntryPoint]:
    from importlib import metadata

    out: list[_EntryPoint] = []
    described: dict[int, tuple[str, str]] = {}  # a distribution's METADATA is parsed on every access: once
    for ep in metadata.entry_points(group=group):
        if ep.dist is not None and id(ep.dist) not in described:
            meta = ep.dist.metadata
            described[id(ep.dist)] = (meta["Name"], meta["Version"])
        dist, version = described[id(ep.dist)] if ep.dist is not None else ("?", "")
        out.append(_EntryPoint(ep.name, ep.value, dist, version))
    return out


def _one_line(exc: BaseException) -> str:
    text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    return f"{type(exc).__name__}: {text}"


def _parse_prefer(text: str) -> dict[str, str]:
    """``"png=my-plugin, npz=other-dist"`` as ``{format: plugin or distribution}``."""
    out: dict[str, str] = {}
    for item in text.split(","):
        name, sep, owner = item.partition("=")
        if sep and name.strip() and owner.strip():
            out[name.strip()] = owner.strip()
    return out


@dataclass(frozen=True)
class RegisteredFormat:
    """A :class:`FormatSpec` with where it came from."""

    spec: FormatSpec
    plugin: str
    distribution: str
    version: str

    @property
    def builtin(self) -> bool:
        """True for formats shipped with dlformats itself."""
        return self.distribution == BUILTIN_DISTRIBUTION

    @property
    def name(self) -> str:
        return self.spec.name

    def to_json(self) -> dict[str, Any]:
        """The declaration and its origin as JSON-able values (what ``dlformats formats --json`` prints)."""
        return {
            **self.spec.to_json(),
            "plugin": self.plugin,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
        }


@dataclass(frozen=True)
class _Plugin:
    name: str
    distribution: str
    version: str
    module: object


@dataclass(frozen=True)
class _Match:
    fmt: RegisteredFormat
    content: int  # 1 claimed by content, 0 cannot tell, -1 content says no
    ext: int
    note: str

    def key(self) -> tuple[Any, ...]:
        return (-self.content, -self.ext, -self.fmt.spec.priority, self.fmt.builtin, self.fmt.name)


def _call(impl: Any, kwargs: Mapping[str, Any]) -> Any:
    """Call one hook implementation with the arguments it asks for (a subset of the hook's, as pluggy allows)."""
    return impl.function(*(kwargs[name] for name in impl.argnames))


class Registry:
    """The set of format plugins available to this process.

    Use :func:`get_registry` for the shared instance; build your own with
    ``Registry(load=False)`` plus :meth:`register`, and make the API use it with
    :func:`use_registry`.

    Args:
        load: discover plugins through entry points (on first use).
        disabled: plugin or distribution names to block; default from ``DLFORMATS_DISABLE_PLUGINS``.
        prefer: ``{format name: plugin or distribution}`` that keeps a contested format
            name; default from ``DLFORMATS_PREFER``.
    """

    def __init__(
        self, *, load: bool = True, disabled: set[str] | None = None, prefer: Mapping[str, str] | None = None
    ) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self._formats: dict[str, RegisteredFormat] | None = None
        self._plugins: list[_Plugin] = []
        self._load_failures: list[PluginFailure] = []
        self.failures: list[PluginFailure] = []  # load failures, then bad declarations (rebuilt with the formats)
        self.blocked: list[str] = []
        if disabled is None:
            disabled = {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}
        self.disabled = disabled
        self.prefer = dict(_parse_prefer(os.environ.get(PREFER_ENV, "")) if prefer is None else prefer)
        self._loaded = not load
        self._lock = threading.RLock()

    # ----------------------------------------------------------- loading
    def register(self, plugin: object, name: str, *, distribution: str = "<local>", version: str = "") -> None:
        """Register a plugin object or module directly (tests, notebooks).

        A plugin that does not fit the hook specifications is recorded in :attr:`failures`,
        as one found through an entry point would be.
        """
        with self._lock:
            self._formats = None
            if self._is_disabled(name, distribution):
                self.blocked.append(name)
                return
            problem = self._add(plugin, name)
            if problem is not None:
                self._load_failures.append(PluginFailure(name, distribution, problem))
                return
            self._plugins.append(_Plugin(name, distribution, version, plugin))

    def _add(self, plugin: object, name: str) -> str | None:
        """Register ``plugin`` with pluggy and check its hooks; return what is wrong, or ``None``."""
        # pluggy takes only marked functions; an unmarked one named like a hook would be ignored in silence.
        unmarked = [
            h for h in _HOOKS if callable(getattr(plugin, h, None)) and self._pm.parse_hookimpl_opts(plugin, h) is None
        ]
        if unmarked:
            return f"{', '.join(unmarked)} is not marked @hookimpl (from dlformats import hookimpl)"
        try:
            self._pm.register(plugin, name=name)
        except Exception as exc:  # noqa: BLE001 - an argument the hook does not give, a name taken, ...
            if self._pm.get_plugin(name) is plugin:  # pluggy keeps what it registered before failing
                self._pm.unregister(plugin)
            return _one_line(exc)
        problems = []
        for caller in self._pm.get_hookcallers(plugin) or []:
            for impl in caller.get_hookimpls():
                if impl.plugin is not plugin:
                    continue
                function = getattr(impl.function, "__name__", caller.name)
                if not caller.has_spec():
                    problems.append(
                        f"{function} implements {caller.name!r}, not a dlformats hook ({', '.join(_HOOKS)})"
                    )
                elif impl.hookwrapper or impl.wrapper:
                    problems.append(f"{function} is a hook wrapper of {caller.name}; dlformats calls no wrappers")
        if problems:
            self._pm.unregister(plugin)
            return "; ".join(problems)
        return None

    def _is_disabled(self, name: str, distribution: str) -> bool:
        return name in self.disabled or _canonical(distribution) in {_canonical(d) for d in self.disabled}

    def _load_entry_points(self) -> None:
        try:
            eps = _entry_points(ENTRY_POINT_GROUP)
        except Exception as exc:  # noqa: BLE001 - broken metadata on sys.path
            self._load_failures.append(PluginFailure("<entry points>", "?", f"cannot list entry points: {exc}"))
            return
        seen: set[tuple[str, str]] = set()
        for ep in sorted(eps, key=lambda e: (e.name, e.value)):
            dist = ep.distribution
            if _canonical(dist) == BUILTIN_DISTRIBUTION:
                dist = BUILTIN_DISTRIBUTION
            if (ep.name, ep.value) in seen:  # the same distribution visible twice on sys.path
                continue
            seen.add((ep.name, ep.value))
            if self._is_disabled(ep.name, dist):
                self.blocked.append(ep.name)
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # noqa: BLE001 - one broken plugin must not stop the others
                self._load_failures.append(PluginFailure(ep.name, dist, f"{type(exc).__name__}: {exc}"))
                continue
            self.register(plugin, ep.name, distribution=dist, version=ep.version)

    def _ensure(self) -> dict[str, RegisteredFormat]:
        if self._formats is not None:
            return self._formats
        with self._lock:
            if self._formats is not None:  # another thread built them while this one waited
                return self._formats
            if not self._loaded:
                self._loaded = True
                self._load_entry_points()
            # Rebuilt from scratch each time (register() resets the formats): no failure is listed twice.
            self.failures = failures = list(self._load_failures)
            self._formats = self._assign_names(self._declared(failures), failures)
            return self._formats

    def _declared(self, failures: list[PluginFailure]) -> list[RegisteredFormat]:
        """Every sound declaration, plugin by plugin in loading order; the others go to ``failures``."""
        out: list[RegisteredFormat] = []
        impls = self._pm.hook.dlformats_formats.get_hookimpls()
        for plugin in self._plugins:
            for impl in (i for i in impls if i.plugin is plugin.module):
                for item in self._declare(plugin, impl):
                    if isinstance(item, RegisteredFormat):
                        out.append(item)
                    else:
                        failures.append(item)
        return out

    @staticmethod
    def _declare(plugin: _Plugin, impl: Any) -> list[RegisteredFormat | PluginFailure]:
        """The formats one ``dlformats_formats`` implementation declares, or why each is refused."""
        where = (plugin.name, plugin.distribution)
        try:
            result = _call(impl, {})
            specs = list(result) if isinstance(result, (list, tuple)) else None
        except Exception as exc:  # noqa: BLE001 - isolate a broken plugin
            return [PluginFailure(*where, f"dlformats_formats() failed: {_one_line(exc)}")]
        if specs is None:
            return [PluginFailure(*where, f"dlformats_formats() returned a {type(result).__name__}, not a list")]
        out: list[RegisteredFormat | PluginFailure] = []
        for index, spec in enumerate(specs):
            if not isinstance(spec, FormatSpec):
                kind = type(spec).__name__
                out.append(
                    PluginFailure(*where, f"dlformats_formats() returned a {kind} (item {index}), not FormatSpec")
                )
                continue
            problems = spec.problems()
            if problems:
                out.append(PluginFailure(*where, "declaration refused: " + "; ".join(problems), str(spec.name)))
            else:
                out.append(RegisteredFormat(spec, plugin.name, plugin.distribution, plugin.version))
        return out

    def _assign_names(
        self, declared: list[RegisteredFormat], failures: list[PluginFailure]
    ) -> dict[str, RegisteredFormat]:
        """One format per name: the preferred, else the built-in, else the first loaded; the others fail."""
        groups: dict[str, list[RegisteredFormat]] = {}
        for fmt in declared:
            groups.setdefault(fmt.name, []).append(fmt)
        formats: dict[str, RegisteredFormat] = {}
        for name, group in groups.items():
            wanted = self.prefer.get(name)
            preferred = [
                f
                for f in group
                if wanted in (f.plugin, f.distribution) or _canonical(f.distribution) == _canonical(wanted or "")
            ]
            if wanted is not None and not preferred:
                failures.append(
                    PluginFailure(
                        wanted,
                        "?",
                        f"{PREFER_ENV} gives format {name!r} to {wanted!r}, which does not declare it",
                        name,
                    )
                )
            if preferred:
                owner, why = preferred[0], f"chosen by {PREFER_ENV}"
            elif any(f.builtin for f in group):
                owner, why = next(f for f in group if f.builtin), "built-in formats keep their names"
            else:
                owner, why = group[0], "the plugin loaded first keeps it"
            formats[name] = owner
            for other in group:
                if other is owner:
                    continue
                failures.append(
                    PluginFailure(
                        other.plugin,
                        other.distribution,
                        f"format name {name!r} is taken by plugin {owner.plugin!r} of distribution "
                        f"{owner.distribution!r} ({why}); to use the one of {other.distribution!r} instead, "
                        f"set {PREFER_ENV}={name}={other.plugin} or block the other with {DISABLE_ENV}={owner.plugin}",
                        name,
                    )
                )
        return formats

    # ----------------------------------------------------------- queries
    def formats(self) -> list[RegisteredFormat]:
        """Every registered format, by name."""
        return sorted(self._ensure().values(), key=lambda f: f.name)

    def get(self, name: str) -> RegisteredFormat:
        """The format called ``name``.

        Raises :class:`PluginError` when a plugin declared it but it could not be registered
        (saying why), else :class:`InvalidOptionError` listing the known names.
        """
        formats = self._ensure()
        if name in formats:
            return formats[name]
        failed = [f for f in self.failures if f.format == name]
        if failed:
            raise PluginError(
                f"format {name!r} is not available: "
                + "; ".join(f"plugin {f.name!r} of {f.distribution!r}: {f.error}" for f in failed),
                plugins=[f.name for f in failed],
                distributions=[f.distribution for f in failed],
                hint="see 'dlformats formats'",
            )
        known = ", ".join(sorted(formats)) or "none"
        raise InvalidOptionError(
            f"unknown format {name!r}", option="format", valid=sorted(formats), hint=f"known formats: {known}"
        )

    def failed_plugins(self) -> dict[str, str]:
        """``{plugin: error}`` for plugins that failed to load, ``{"plugin (format name)": error}`` for formats."""
        self._ensure()
        return {f.label: f.error for f in self.failures}

    def plugin_versions(self) -> dict[str, tuple[str, str]]:
        """``{plugin: (distribution, version)}`` for loaded plugins."""
        self._ensure()
        return {p.name: (p.distribution, p.version) for p in self._plugins}

    def reader_candidates(
        self, source: Source, format: str | None = None
    ) -> tuple[list[RegisteredFormat], list[Candidate]]:
        """Return the readers to try, in order, and every format considered with why it was (not) chosen."""
        formats = self._ensure()
        if format is not None:
            fmt = self.get(format)
            if fmt.spec.read is None:
                raise InvalidOptionError(f"format {format!r} cannot be read", hint="it is write-only")
            return [fmt], [Candidate(fmt.name, fmt.plugin, "chosen by format=")]
        matches: list[_Match] = []
        for fmt in formats.values():
            if fmt.spec.read is None:
                continue
            matches.append(self._match(fmt, source))
        tried = sorted((m for m in matches if m.content >= 0 and (m.content > 0 or m.ext > 0)), key=_Match.key)
        declined = [m for m in matches if not (m.content >= 0 and (m.content > 0 or m.ext > 0))]
        notes = [Candidate(m.fmt.name, m.fmt.plugin, m.note) for m in tried]
        notes += [Candidate(m.fmt.name, m.fmt.plugin, m.note) for m in sorted(declined, key=lambda m: m.fmt.name)]
        return [m.fmt for m in tried], notes

    def _match(self, fmt: RegisteredFormat, source: Source) -> _Match:
        spec = fmt.spec
        ext = spec.extension_match(source.filename)
        if ext:
            ext_note = f"extension {source.filename[-ext:]}"
        elif spec.extensions:
            ext_note = f"extension {' / '.join(spec.extensions)}"
        else:
            ext_note = "no extension declared"
        content = 0
        note = ""
        head = source.head
        if spec.signatures:
            if any(head.startswith(sig) for sig in spec.signatures):
                content = 1
                note = "leading bytes match"
            else:
                content = -1
                note = f"content is {source.describe()}, not this format"
        if spec.sniff is not None and content >= 0:
            declined = ""
            try:
                said = spec.sniff(source)
            except NotMyFormat as exc:  # a sniffer may decline the way a reader does
                said, declined = False, f": {exc.reason}"
            except DLFormatsError:
                raise
            except Exception as exc:
                raise _plugin_crashed(
                    exc, stage="sniff", format=spec.name, plugin=fmt.plugin, path=source.name
                ) from exc
            if said is True:
                content, note = 1, "content matches"
            elif said is False:
                content, note = -1, f"content ({source.describe()}) is not this format{declined}"
        if content == 0:
            if ext:
                note = f"matched by {ext_note}"
            elif spec.extensions:
                note = f"content unknown and {ext_note} does not match"
            else:
                note = f"content unknown and {ext_note}"
        elif content > 0 and ext:
            note += f"; {ext_note}"
        return _Match(fmt, content, ext, note)

    def writer_for(self, target: str, format: str | None = None) -> RegisteredFormat:
        """The format to write ``target`` with: ``format`` if given, else the longest matching extension."""
        if format is not None:
            fmt = self.get(format)
            if fmt.spec.write is None:
                raise NoWriterError(f"format {format!r} cannot be written", path=target, format=format)
            return fmt
        writers = [f for f in self._ensure().values() if f.spec.write is not None]
        scored = sorted(
            ((f.spec.extension_match(os.path.basename(target)), f) for f in writers),
            key=lambda p: (-p[0], -p[1].spec.priority, p[1].builtin, p[1].name),
        )
        if not scored or scored[0][0] == 0:
            exts = sorted({e for f in writers for e in f.spec.extensions})
            if not writers:
                hint = "no installed plugin writes any format; install one (see 'dlformats formats')"
            elif not exts:
                hint = f"pass {usage('write_format')} (see 'dlformats formats')"
            else:
                hint = "name the output with one of " + ", ".join(exts) + f" or pass {usage('write_format')}"
            raise NoWriterError("no format writes files with this extension", path=target, hint=hint)
        return scored[0][1]

    def no_reader(self, source: Source, notes: list[Candidate], reason: str) -> NoReaderError:
        """Build the error for a file no reader took."""
        formats = self._ensure()
        install = _missing_packages(f.spec.install_hint for f in formats.values())
        return NoReaderError(
            reason,
            path=source.name,
            detected=source.describe(),
            candidates=notes,
            failed_plugins=self.failed_plugins(),
            install=install,
        )

    def extra_problems(self, project: Project) -> list[Problem]:
        """Problems contributed by plugins through ``dlformats_validate``."""
        self._ensure()
        out: list[Problem] = []
        impls = self._pm.hook.dlformats_validate.get_hookimpls()
        for plugin in self._plugins:  # one at a time, in loading order, so that a crash names its plugin
            for impl in (i for i in impls if i.plugin is plugin.module):
                try:
                    out.extend(_call(impl, {"project": project}) or [])
                except DLFormatsError:
                    raise
                except Exception as exc:
                    raise _plugin_crashed(exc, stage="validate", format=None, plugin=plugin.name) from exc
        return out


def _missing_packages(hints: Iterable[str]) -> list[str]:
    """The packages named by install hints (``"tifffile, imagecodecs"``) that are not installed, each once.

    An item that is not a plain distribution name (``"zarr>=3 (pip install 'zarr>=3')"``,
    ``"pip install foo"``) is checked by the name it gives and kept as written when missing.
    """
    out: list[str] = []
    for hint in hints:
        for item in (i.strip() for i in (hint or "").split(",")):
            found = re.match(r"(?:pip3? install\s+)?['\"]?([A-Za-z0-9][A-Za-z0-9._-]*)", item)
            if not found or item in out:
                continue
            from importlib import metadata

            try:
                metadata.distribution(found.group(1))
            except metadata.PackageNotFoundError:
                out.append(item)
            except Exception:  # noqa: BLE001 - unreadable metadata: say nothing rather than guess
                continue
    return out


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry (created, not loaded, on first use)."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = Registry()
    return _REGISTRY


@contextmanager
def use_registry(registry: Registry) -> Iterator[Registry]:
    """Make :func:`dlformats.read`, ``write``, ``convert``, ``formats``... use ``registry`` inside a ``with`` block.

    For tests and notebooks::

        registry = Registry(load=False)  # no entry points: exactly the plugins registered here
        registry.register(my_module, "mine")
        with use_registry(registry):
            project = dlformats.read("cells.mine")

    The previous registry is restored when the block ends.  The registry is process-wide
    while the block runs (other threads see it too).
    """
    global _REGISTRY
    previous = _REGISTRY
    _REGISTRY = registry
    try:
        yield registry
    finally:
        _REGISTRY = previous


__all__ = [
    "BUILTIN_DISTRIBUTION",
    "DISABLE_ENV",
    "ENTRY_POINT_GROUP",
    "PREFER_ENV",
    "RegisteredFormat",
    "Registry",
    "get_registry",
    "use_registry",
]
