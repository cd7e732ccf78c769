"""The plugin registry: finds format plugins through entry points and chooses readers and writers.

Plugins are discovered in the entry-point group ``dlformats.plugins``, lazily (on
the first call that needs a format, never at ``import dlformats``) and once per
process.  Each entry point is loaded on its own: one that fails to import is
recorded in :attr:`Registry.failures` and reported, never fatal to the others.
``DLFORMATS_DISABLE_PLUGINS=name1,name2`` blocks plugins by entry-point name (or
distribution name).

Choosing a reader (see :meth:`Registry.reader_candidates`) is deterministic:

1. an explicit ``format=`` wins;
2. then content: a format whose signature or sniff claims the leading bytes or
   container members comes before one that cannot tell; a format whose content
   check says "no" is not tried;
3. then the longest matching extension;
4. then ``priority`` (higher first);
5. then a third-party plugin before a built-in one;
6. then the format name.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from importlib import metadata
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
    ReaderCrashedError,
    environment_failure,
)
from .spec import FormatSpec

if TYPE_CHECKING:
    from .model import Problem, Project
    from .sources import Source

ENTRY_POINT_GROUP = "dlformats.plugins"
DISABLE_ENV = "DLFORMATS_DISABLE_PLUGINS"
BUILTIN_DISTRIBUTION = "dlformats"


def _canonical(distribution: str) -> str:
    """A distribution name as pip compares them: ``Foo_Bar.baz`` and ``foo-bar-baz`` are one."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


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


@dataclass(frozen=True)
class _Match:
    fmt: RegisteredFormat
    content: int  # 1 claimed by content, 0 cannot tell, -1 content says no
    ext: int
    note: str

    def key(self) -> tuple[Any, ...]:
        return (-self.content, -self.ext, -self.fmt.spec.priority, self.fmt.builtin, self.fmt.name)


class Registry:
    """The set of format plugins available to this process.

    Use :func:`get_registry` for the shared instance; build your own with
    ``Registry(load=False)`` plus :meth:`register` in tests.
    """

    def __init__(self, *, load: bool = True, disabled: set[str] | None = None) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self._formats: dict[str, RegisteredFormat] | None = None
        self._plugins: list[tuple[str, str, str, object]] = []  # name, dist, version, module
        self._load_failures: list[PluginFailure] = []
        self.failures: list[PluginFailure] = []  # load failures, then bad declarations (rebuilt with the formats)
        self.blocked: list[str] = []
        if disabled is None:
            disabled = {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}
        self.disabled = disabled
        self._loaded = not load
        self._lock = threading.Lock()

    # ----------------------------------------------------------- loading
    def register(self, plugin: object, name: str, *, distribution: str = "<local>", version: str = "") -> None:
        """Register a plugin object or module directly (tests, notebooks)."""
        if self._is_disabled(name, distribution):
            self.blocked.append(name)
            return
        self._pm.register(plugin, name=name)
        self._plugins.append((name, distribution, version, plugin))
        self._formats = None

    def _is_disabled(self, name: str, distribution: str) -> bool:
        return name in self.disabled or _canonical(distribution) in {_canonical(d) for d in self.disabled}

    def _load_entry_points(self) -> None:
        try:
            eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
        except Exception as exc:  # noqa: BLE001 - broken metadata on sys.path
            self._load_failures.append(PluginFailure("<entry points>", "?", f"cannot list entry points: {exc}"))
            return
        seen: set[str] = set()
        for ep in sorted(eps, key=lambda e: (e.name, e.value)):
            dist = ep.dist.name if ep.dist is not None else "?"
            version = ep.dist.version if ep.dist is not None else ""
            if dist.replace("_", "-").lower() == BUILTIN_DISTRIBUTION:
                dist = BUILTIN_DISTRIBUTION
            if (ep.name, ep.value) in seen:  # the same distribution visible twice on sys.path
                continue
            seen.add((ep.name, ep.value))  # type: ignore[arg-type]
            if self._is_disabled(ep.name, dist):
                self.blocked.append(ep.name)
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # noqa: BLE001 - one broken plugin must not stop the others
                self._load_failures.append(PluginFailure(ep.name, dist, f"{type(exc).__name__}: {exc}"))
                continue
            try:
                self.register(plugin, ep.name, distribution=dist, version=version)
            except Exception as exc:  # noqa: BLE001 - pluggy validation errors, duplicate names
                self._load_failures.append(PluginFailure(ep.name, dist, f"{type(exc).__name__}: {exc}"))

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
            formats: dict[str, RegisteredFormat] = {}
            for name, dist, version, plugin in self._plugins:
                impl = getattr(plugin, "dlformats_formats", None)
                if impl is None:
                    continue
                try:
                    specs = list(impl())
                except Exception as exc:  # noqa: BLE001 - isolate a broken plugin
                    failures.append(PluginFailure(name, dist, f"dlformats_formats() failed: {exc!r}"))
                    continue
                bad = [s for s in specs if not isinstance(s, FormatSpec)]
                if bad:
                    kind = type(bad[0]).__name__
                    failures.append(PluginFailure(name, dist, f"dlformats_formats() returned a {kind}, not FormatSpec"))
                    continue
                for spec in specs:
                    reg = RegisteredFormat(spec, name, dist, version)
                    other = formats.get(spec.name)
                    if other is not None:
                        raise PluginError(
                            f"format {spec.name!r} is declared twice: by plugin {other.plugin!r} of distribution "
                            f"{other.distribution!r} and by plugin {name!r} of distribution {dist!r}",
                            plugins=[other.plugin, name],
                            distributions=[other.distribution, dist],
                            hint=f"uninstall one, or block one with {DISABLE_ENV}={name}",
                        )
                    formats[spec.name] = reg
            self._formats = formats
            return formats

    # ----------------------------------------------------------- queries
    def formats(self) -> list[RegisteredFormat]:
        """Every registered format, by name."""
        return sorted(self._ensure().values(), key=lambda f: f.name)

    def get(self, name: str) -> RegisteredFormat:
        """The format called ``name``; raise :class:`InvalidOptionError` listing the known names."""
        formats = self._ensure()
        if name not in formats:
            known = ", ".join(sorted(formats)) or "none"
            raise InvalidOptionError(f"unknown format {name!r}", hint=f"known formats: {known}")
        return formats[name]

    def failed_plugins(self) -> dict[str, str]:
        """``{plugin: error}`` for plugins that failed to load."""
        self._ensure()
        return {f.name: f.error for f in self.failures}

    def plugin_versions(self) -> dict[str, tuple[str, str]]:
        """``{plugin: (distribution, version)}`` for loaded plugins."""
        self._ensure()
        return {name: (dist, version) for name, dist, version, _ in self._plugins}

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
                if (env := environment_failure(exc, path=source.name, doing="reading")) is not None:
                    raise env from exc
                raise ReaderCrashedError(
                    f"the sniffer of format {spec.name!r} (plugin {fmt.plugin}) crashed: {type(exc).__name__}: {exc}",
                    path=source.name,
                    format=spec.name,
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
                hint = "pass --to FORMAT (see 'dlformats formats')"
            else:
                hint = "name the output with one of " + ", ".join(exts) + " or pass --to FORMAT"
            raise NoWriterError("no format writes files with this extension", path=target, hint=hint)
        return scored[0][1]

    def no_reader(self, source: Source, notes: list[Candidate], reason: str) -> NoReaderError:
        """Build the error for a file no reader took."""
        formats = self._ensure()
        install = sorted({f.spec.install_hint for f in formats.values() if f.spec.install_hint})
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
        # Called plugin by plugin (not through the hook relay) so that a crash names its plugin;
        # an implementation may take a subset of the hook's arguments, as pluggy allows.
        kwargs = {"project": project}
        for impl in reversed(self._pm.hook.dlformats_validate.get_hookimpls()):
            try:
                out.extend(impl.function(*(kwargs[a] for a in impl.argnames)) or [])
            except DLFormatsError:
                raise
            except Exception as exc:
                if (env := environment_failure(exc, path=None, doing="validating")) is not None:
                    raise env from exc
                raise ReaderCrashedError(
                    f"the dlformats_validate hook of plugin {impl.plugin_name} crashed: {type(exc).__name__}: {exc}",
                    hint=f"a bug in plugin {impl.plugin_name}; block it with {DISABLE_ENV}={impl.plugin_name}",
                ) from exc
        return out


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry (created, not loaded, on first use)."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = Registry()
    return _REGISTRY


def reset_registry() -> None:
    """Forget the process-wide registry, so that the next use rediscovers plugins (tests)."""
    global _REGISTRY
    _REGISTRY = None
