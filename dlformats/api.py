"""The library's front door: :func:`read`, :func:`read_all`, :func:`write`, :func:`convert`, :func:`info`."""

from __future__ import annotations

import os
import warnings
import weakref
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from .errors import (
    AmbiguousInputError,
    DLFormatsError,
    DLFormatsWarning,
    EnvironmentFailureError,
    InconsistentDataError,
    InvalidOptionError,
    NotMyFormat,
    _environment_failure,
    _plugin_crashed,
)
from .limits import DEFAULT_LIMITS, Limits
from .model import PARTS, Problem, Project, Provenance
from .registry import RegisteredFormat, get_registry
from .sources import Source, open_source
from .spec import INDEX_TARGETS, Option, ReadOptions, WriteOptions, _as_list


def _filled_parts(project: Project) -> list[str]:
    out = []
    for part in PARTS:
        value = getattr(project, part)
        if value is None:
            continue
        # Arrays must not be compared with []: numpy would compare element-wise.
        empty = part not in ("X", "y", "cells") and len(value) == 0
        if not empty:
            out.append(part)
    return out


def _stamp(project: Project, fmt: RegisteredFormat, source: Source) -> None:
    for part in _filled_parts(project):
        project.provenance.setdefault(part, Provenance(fmt.name, fmt.plugin, fmt.version, source.name))


def _read_source(
    src: Any,
    *,
    format: str | None,
    options: ReadOptions,
    requested: Mapping[str, Any],
    strict: bool = True,
    name: str | None = None,
) -> list[Project]:
    """Read one source; ``requested`` are the caller's format options, checked against each candidate's declaration.

    With ``strict`` false (options a labels source inherits from the image's) names the
    candidate does not declare are left out instead of refused.
    """
    registry = get_registry()
    source = open_source(src, limits=options.limits, name=name)
    try:
        candidates, notes = registry.reader_candidates(source, format)
    except BaseException:
        source.close()
        raise
    declined: list[str] = []
    for fmt in candidates:
        assert fmt.spec.read is not None
        try:
            opts = replace(options, extra=fmt.spec.parse_options(requested, writing=False, strict=strict))
            result = _as_list(fmt.spec.read(source, opts))
        except NotMyFormat as exc:
            declined.append(fmt.name)
            for note in notes:
                if note.format == fmt.name:
                    note.reason = f"declined: {exc.reason}"
            continue
        except DLFormatsError as exc:
            source.close()
            if not isinstance(exc, EnvironmentFailureError) and (
                env := _environment_failure(exc, path=source.name, doing="reading")
            ):  # e.g. "cannot open: too many open files" is not a corrupt file
                env.format, env.member = fmt.name, exc.member
                raise env from exc
            if exc.format is None:
                exc.format = fmt.name
            exc.located(source.name)
            raise
        except Exception as exc:
            source.close()
            raise _plugin_crashed(exc, stage="read", format=fmt.name, plugin=fmt.plugin, path=source.name) from exc
        if source.filename and fmt.spec.extension_match(source.filename) == 0:
            others = [f.name for f in registry.formats() if f.spec.extension_match(source.filename)]
            if others:
                warnings.warn(
                    f"{source.name}: content is {fmt.name}, although the name suggests {others[0]}; read as {fmt.name}",
                    DLFormatsWarning,
                    stacklevel=4,
                )
        for project in result:
            _stamp(project, fmt, source)
            project.metadata.setdefault("format", fmt.name)
            project.metadata.setdefault("plugin", fmt.plugin)
        # Readers keep their own handles for lazy arrays (tiffio files, memory maps):
        # the source's cached archive is closed now, a downloaded file once unused.
        source.release()
        if source.path is not None and source._cleanup is not None and result:
            _close_when_unused(source, result)
        return result
    error = registry.no_reader(
        source, notes, "no reader accepts this file" if candidates else "no format recognises this file"
    )
    source.close()
    raise error


_LABEL_PARTS = ("cells", "divisions", "cell_types", "features", "embeddings")
"""Parts that describe the labels: they travel with ``y``, never with the image."""


def _source_label(src: Any, default: str) -> str:
    """A short name of a source for messages (never the repr of its bytes)."""
    if isinstance(src, (str, os.PathLike)):
        return str(src)
    name = getattr(src, "name", None)
    return name if isinstance(name, str) else default


def _close_when_unused(source: Source, projects: list[Project]) -> None:
    """Close ``source`` (removing a downloaded copy) once its projects *and* their arrays are gone.

    Lazy arrays read from the source, and may outlive their project: the labels of a
    separate source are moved into the image's project by :func:`_merge_labels`.
    """
    owners: list[Any] = [*projects, *(a for p in projects for a in (p.X, p.y) if a is not None)]
    alive = [0]

    def release() -> None:
        alive[0] -= 1
        if alive[0] == 0:
            source.close()

    for owner in owners:
        try:
            weakref.finalize(owner, release)
        except TypeError:  # not weak-referenceable: the project's own finalizer covers it
            continue
        alive[0] += 1


def _merge_labels(image: Project, labels: Project, *, path: str) -> Project:
    """``image`` with the labels (and the parts describing them) of ``labels``.

    When ``labels`` brings an array (its ``y``, else its ``X`` read as labels), its
    frames and size must equal the image's, and the image's own cells, divisions,
    cell types, feature names and embeddings (which describe the labels being
    replaced) give way to those of ``labels``, absent ones included.  A labels source
    with no array (a lineage, a spots table) only adds the parts it has.
    """
    merged = replace(image, provenance=dict(image.provenance), metadata=dict(image.metadata))
    y = labels.y if labels.y is not None else labels.X
    if y is not None:
        ref = image.X if image.X is not None else image.y
        if ref is not None and tuple(ref.shape[1:]) != tuple(y.shape[1:]):
            raise InconsistentDataError(
                f"labels (features, frames, height, width) {tuple(y.shape)} disagree with image "
                f"(channels, frames, height, width) {tuple(ref.shape)} in frames or size",
                path=path,
            )
        if labels.y is None:
            from .arrays import LazyArray

            y = LazyArray(labels.X, "CTYX", labels=True, path=path)
        merged.y = y
        merged.cells = labels.cells
        merged.divisions = list(labels.divisions)
        merged.cell_types = list(labels.cell_types)
        merged.features = list(labels.features)
        merged.embeddings = labels.embeddings
        for part in ("y", *_LABEL_PARTS):
            merged.provenance.pop(part, None)
    else:
        if labels.cells is not None:
            merged.cells = labels.cells
        for part in ("divisions", "cell_types", "features"):
            if getattr(labels, part):
                setattr(merged, part, getattr(labels, part))
        if labels.embeddings is not None:
            merged.embeddings = labels.embeddings
    if labels.spots is not None:
        merged.spots = labels.spots
    for part, prov in labels.provenance.items():
        if part == "X":
            if labels.y is not None:
                continue  # the labels source's image is not used
            part = "y"
        if part != "channels":
            merged.provenance[part] = prov
    return merged


def _split_options(options: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, int]]:
    """The caller's options as ``(format options, the core's select)``."""
    from .spec import _parse_select

    given = dict(options or {})
    if not all(isinstance(k, str) for k in given):
        raise InvalidOptionError("option names must be strings", hint=f"got {sorted(map(repr, given))}")
    return given, _parse_select(given.pop("select", None))


def read_all(
    images: Any,
    labels: Any = None,
    *,
    axes: str | None = None,
    labels_axes: str | None = None,
    format: str | None = None,
    labels_format: str | None = None,
    limits: Limits | None = None,
    options: Mapping[str, Any] | None = None,
    labels_options: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> list[Project]:
    """Read every project a source holds (``.trks`` files hold one per batch).

    Same arguments as :func:`read`.
    """
    limits = limits or DEFAULT_LIMITS
    requested, select = _split_options(options)
    opts = ReadOptions(axes=axes, limits=limits, role="image", select=select)
    projects = _read_source(images, format=format, options=opts, requested=requested, name=name)
    if labels is not None:
        # The labels inherit the image's options unless given their own; an inherited option
        # their format does not declare was meant for the image, and is left out.
        inherited = labels_options is None
        lrequested, lselect = (requested, select) if inherited else _split_options(labels_options)
        lopts = ReadOptions(axes=labels_axes, limits=limits, role="labels", select=lselect)
        label_projects = _read_source(
            labels, format=labels_format, options=lopts, requested=lrequested, strict=not inherited
        )
        labels_name = _source_label(labels, "<labels>")
        if len(label_projects) != len(projects):
            raise InconsistentDataError(
                f"{len(projects)} image projects but {len(label_projects)} label projects", path=labels_name
            )
        projects = [_merge_labels(p, lp, path=labels_name) for p, lp in zip(projects, label_projects)]
    src_name = name or (str(images) if isinstance(images, (str, os.PathLike)) else "<input>")
    for project in projects:
        for problem in project.check(path=src_name):
            warnings.warn(f"{src_name}: {problem}", DLFormatsWarning, stacklevel=2)
    return projects


def read(
    images: Any,
    labels: Any = None,
    *,
    axes: str | None = None,
    labels_axes: str | None = None,
    format: str | None = None,
    labels_format: str | None = None,
    limits: Limits | None = None,
    options: Mapping[str, Any] | None = None,
    labels_options: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> Project:
    """Read a project from ``images`` (and optionally a separate ``labels`` source).

    Args:
        images: a path, bytes, binary file object or ``http(s)://`` URL.
        labels: optional separate source of labels (a TIFF, a label zip, a ``.trk``...),
            merged into the project; its frames and size must match the image's.
        axes: axis order of the image array (letters ``TZBCSYX``), overriding the file's.
        labels_axes: the same for ``labels``.
        format: read with this format (see ``dlformats formats``) instead of detecting it.
        labels_format: the same for ``labels``.
        limits: resource bounds (defaults: :class:`Limits`).
        options: the read options of the source's format, as it declares them (``dlformats
            formats FORMAT`` lists them), e.g. ``{"series": 1}``, plus ``"select"``, taken by
            every format: ``{"select": {"Z": 0}}`` keeps one plane of an axis.  An option the
            format does not declare, or a bad value, is an :class:`InvalidOptionError` listing
            the valid ones.  They apply to ``labels`` too unless ``labels_options`` is given
            (there, only the options the labels' format declares).
        labels_options: read options for ``labels`` alone (``select``, ``series``,
            ``member``...), replacing ``options`` for it.
        name: a file name for in-memory sources (used for extension matching and messages).

    Returns:
        The project, with ``X`` as (channels, frames, height, width) and ``y`` as
        (features, frames, height, width); arrays may be lazy.

    Raises:
        DLFormatsError: a subclass naming the file, the member and the problem.
    """
    projects = read_all(
        images,
        labels,
        axes=axes,
        labels_axes=labels_axes,
        format=format,
        labels_format=labels_format,
        limits=limits,
        options=options,
        labels_options=labels_options,
        name=name,
    )
    if len(projects) != 1:
        raise AmbiguousInputError(
            f"the source holds {len(projects)} projects",
            option="read_all",
            path=name or str(images),
            hint="use dlformats.read_all(...) to get every one, or pick one with options={'batch': N}",
        )
    return projects[0]


def write(
    project: Project,
    dst: str | os.PathLike[str],
    *,
    format: str | None = None,
    options: Mapping[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``project`` to ``dst``; the format comes from ``format`` or ``dst``'s extension.

    ``options`` are the write options of the format, as it declares them (``dlformats
    formats FORMAT`` lists them), e.g. ``{"compression": "zstd"}``; an option the format
    does not declare, or a bad value, is an :class:`InvalidOptionError` listing the valid
    ones.  The file is written under a temporary name in ``dst``'s folder and renamed at
    the end: a failure leaves an existing ``dst`` untouched and nothing behind.
    Returns the path written.

    Option ``relabel`` (any format; default false): with ``True`` the labels are
    first renumbered to consecutive ids per feature (:func:`dlformats.relabel`),
    so that values int32 cannot hold, or negative ones, can be written to the
    int32 formats, which otherwise refuse them.

    Raises:
        TypeError: ``project`` is not a :class:`Project` or ``dst`` not a path.
        DLFormatsError: a subclass naming ``dst`` and the problem;
            :class:`~dlformats.errors.EnvironmentFailureError` when the machine failed
            (full disk, permission denied, too many open files...).
    """
    if not isinstance(project, Project):
        raise TypeError(f"write() needs a dlformats.Project to write, not {_type_name(project)}")
    dst = _target_path(dst, "write")
    fmt = get_registry().writer_for(str(dst), format)
    project.check(path=str(dst))
    extra = dict(options or {})
    relabel_value = extra.pop("relabel", False)
    try:
        extra = fmt.spec.parse_options(extra, writing=True)
        _check_indices(fmt, extra, project)
        relabelling = _relabel_option(relabel_value)
    except DLFormatsError as exc:
        raise exc.located(str(dst)) from None
    if relabelling:
        from .model import relabel

        try:
            project = relabel(project)
        except DLFormatsError as exc:
            exc.located(str(dst))
            raise
    from .atomic import atomic_target

    assert fmt.spec.write is not None
    wopts = WriteOptions(extra=extra, progress=progress, target=dst)
    with atomic_target(dst, directory=fmt.spec.folder) as tmp:
        try:
            fmt.spec.write(project, tmp, wopts)
        except DLFormatsError as exc:
            if not isinstance(exc, EnvironmentFailureError) and (
                env := _environment_failure(exc, path=str(dst), doing="writing")
            ):
                env.format, env.member = fmt.name, exc.member
                raise env from exc
            _at_target(exc, fmt, tmp, dst)
            raise
        except Exception as exc:
            crashed = _plugin_crashed(exc, stage="write", format=fmt.name, plugin=fmt.plugin, path=str(dst))
            raise _at_target(crashed, fmt, tmp, dst) from exc
    return dst


def _at_target(error: DLFormatsError, fmt: RegisteredFormat, tmp: Path, dst: Path) -> DLFormatsError:
    """``error`` of a writer, naming its format and the target (the writer only knows the temporary name)."""
    if error.format is None:
        error.format = fmt.name
    if error.path is not None:
        error.path = error.path.replace(str(tmp), str(dst))
    error.reason = error.reason.replace(str(tmp), str(dst))
    error.args = (error.reason, *error.args[1:])
    return error.located(str(dst))


def _check_indices(fmt: RegisteredFormat, extra: Mapping[str, Any], project: Project) -> None:
    """Write options that index the project's channels, frames or features (``Option.index_of``) must be in range."""
    sizes = dict(zip(INDEX_TARGETS, (project.num_channels, project.num_frames, project.num_features)))
    for option in fmt.spec.write_options:
        value = extra.get(option.name)
        if option.index_of is None or value is None:
            continue
        size = sizes[option.index_of]
        if not 0 <= value < size:
            raise InvalidOptionError(
                f"write option {option.name}={value} of format {fmt.name!r}: the project has {size} {option.index_of}",
                option=option.name,
                format=fmt.name,
                hint=f"use {option.name}=0..{size - 1}" if size else f"the project has no {option.index_of}",
            )


def _relabel_option(value: Any) -> bool:
    """The core's write option ``relabel`` (every format) as a bool."""
    try:
        return Option("relabel", bool).parse(value)
    except ValueError as exc:
        raise InvalidOptionError(
            f"write option relabel={value!r} {exc}", option="relabel", hint="relabel=true or relabel=false"
        ) from None


def _type_name(value: object) -> str:
    return "None" if value is None else f"a {type(value).__name__}"


def _target_path(dst: object, caller: str) -> Path:
    """``dst`` as a :class:`Path`; a ``TypeError`` saying what is expected for anything but a path."""
    if not isinstance(dst, (str, os.PathLike)):
        raise TypeError(f"{caller}() needs the output path as a str or os.PathLike, not {_type_name(dst)}")
    return Path(dst)


def convert(
    src: Any,
    dst: str | os.PathLike[str],
    *,
    labels: Any = None,
    axes: str | None = None,
    labels_axes: str | None = None,
    from_format: str | None = None,
    labels_format: str | None = None,
    to_format: str | None = None,
    limits: Limits | None = None,
    options: Mapping[str, Any] | None = None,
    labels_options: Mapping[str, Any] | None = None,
    write_options: Mapping[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Read ``src`` (plus optional ``labels``) and write it to ``dst``.

    ``from_format``/``labels_format``, ``options``/``labels_options`` are :func:`read`'s
    ``format``/``labels_format``, ``options``/``labels_options``.  A source holding
    several projects (a ``.trks``) gives one output per batch, named
    ``<dst stem>_batch<N><dst suffix>``.  Returns the paths written.
    """
    _target_path(dst, "convert")
    projects = read_all(
        src,
        labels,
        axes=axes,
        labels_axes=labels_axes,
        format=from_format,
        labels_format=labels_format,
        limits=limits,
        options=options,
        labels_options=labels_options,
    )
    dst = Path(dst)
    if len(projects) == 1:
        return [write(projects[0], dst, format=to_format, options=write_options, progress=progress)]
    name = dst.name
    dot = name.find(".")
    stem, suffix = (name[:dot], name[dot:]) if dot > 0 else (name, "")
    return [
        write(p, dst.with_name(f"{stem}_batch{i}{suffix}"), format=to_format, options=write_options, progress=progress)
        for i, p in enumerate(projects)
    ]


def info(
    src: Any,
    *,
    labels: Any = None,
    axes: str | None = None,
    labels_axes: str | None = None,
    format: str | None = None,
    labels_format: str | None = None,
    limits: Limits | None = None,
    options: Mapping[str, Any] | None = None,
    labels_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Describe a source: format, plugin, shapes and dtypes of X and y, names and counts (JSON-able).

    Arguments as :func:`read`.  Reads no pixels except to count cells when the source lists none.
    """
    projects = read_all(
        src,
        labels,
        axes=axes,
        labels_axes=labels_axes,
        format=format,
        labels_format=labels_format,
        limits=limits,
        options=options,
        labels_options=labels_options,
    )
    out = []
    for project in projects:
        summary = project.summary()
        summary["cells_derived"] = project.cells is None
        if project.cells is None:
            summary["cells"] = len(project.cells_or_derived())
        summary = {"format": project.metadata.get("format"), "plugin": project.metadata.get("plugin"), **summary}
        out.append(summary)
    if len(out) == 1:
        return out[0]
    return {"format": out[0]["format"], "plugin": out[0]["plugin"], "batches": out}


def validate(project: Project, *, pixels: bool = True) -> list[Problem]:
    """Every problem in ``project``: its own checks (reading pixels unless ``pixels=False``) plus plugins'."""
    return project.validate(pixels=pixels) + get_registry().extra_problems(project)


def formats() -> list[dict[str, Any]]:
    """Every registered format as a JSON-able dict: declaration (parts, extensions, options) and plugin.

    What ``dlformats formats --json`` prints under ``"formats"``.
    """
    return [f.to_json() for f in get_registry().formats()]


__all__ = ["convert", "formats", "info", "read", "read_all", "validate", "write"]
