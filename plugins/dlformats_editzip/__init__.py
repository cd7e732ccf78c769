"""DeepCell Label's edit zip (one frame and one editing action, browser client -> server) and the server's answer.

The edit zip holds:

* ``edit.json``: ``{"width", "height", "action", "args", "writeMode"}``;
* ``cells.json``: the cells of the edited frame and feature (``{"value", "cell", "t", "c"}``);
* ``labeled.dat``: the frame's labels, int32, ``(height, width)``, C order, little-endian;
* ``raw.dat``: the frame's image, uint8, ``(height, width)``, only for actions that need it
  (``watershed``, ``threshold``, ``active_contour``).

:func:`read_edit` turns it into a checked :class:`EditRequest`: every size matches
its buffer, ``action`` is one of :data:`ACTIONS` and ``args`` are exactly that
action's arguments with the right types (``draw``'s ``trace`` is a JSON string of
``[[x, y], ...]`` points, parsed here); coordinates lie inside the frame (``x``
along width, ``y`` along height, in pixels).  A missing ``writeMode`` means
``"overlap"``, as on the server.  :func:`write_edit_answer` writes the answer the
client expects: ``labeled.dat`` first, then ``cells.json`` (the client reads them
by position).  In between, a server writes the mask its action made with the edit's
write mode: :func:`dlformats_editzip.writemode.write_mask`.

``dlformats.read`` also reads an edit zip, as a one-frame project: ``y`` is
``(1, 1, height, width)``, ``X`` is the image if sent, cells are re-based to frame 0
and feature 0, and ``metadata["edit"]`` holds the ``edit.json`` content plus the
frame ``t`` and feature ``c`` the cells came from.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from dlformats import FormatSpec, hookimpl
from dlformats.errors import CorruptFileError, InvalidOptionError, NotMyFormat, UnsupportedFeatureError
from dlformats.model import Cell
from dlformats.spec import parts

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from dlformats.limits import Limits
    from dlformats.model import Project
    from dlformats.sources import Source
    from dlformats.spec import ReadOptions, WriteOptions

FORMAT = "dcl-edit-zip"
EDIT = "edit.json"
WRITE_MODES = ("overlap", "overwrite", "exclude")
"""The write modes of DeepCell Label (the server defaults to ``overlap``, the client to ``exclude``);
:mod:`dlformats_editzip.writemode` applies them."""
DEFAULT_WRITE_MODE = "overlap"

# Argument kinds: "cell" >= 1, "label" >= 0 (0 is background), "count" >= 0, "size" >= 1,
# "x" in 0..width-1, "y" in 0..height-1, "flag" a boolean, "trace" a JSON string of [[x, y], ...].
ACTIONS: dict[str, dict[str, str]] = {
    "draw": {"trace": "trace", "brush_size": "size", "cell": "cell", "erase": "flag"},
    "trim_pixels": {"cell": "cell", "x": "x", "y": "y"},
    "flood": {"foreground": "label", "background": "label", "x": "x", "y": "y"},
    "watershed": {"cell": "cell", "new_cell": "cell", "x1": "x", "y1": "y", "x2": "x", "y2": "y"},
    "threshold": {"x1": "x", "y1": "y", "x2": "x", "y2": "y", "cell": "cell"},
    "active_contour": {"cell": "cell", "min_pixels": "count", "iterations": "count", "dilate": "count"},
    "erode": {"cell": "cell"},
    "dilate": {"cell": "cell"},
}
"""Each action of the edit zip and its arguments, by name, with their kind."""

NEEDS_IMAGE = frozenset({"watershed", "threshold", "active_contour"})
"""Actions the client sends ``raw.dat`` with."""

_KIND_TEXT = {
    "cell": "an integer >= 1",
    "label": "an integer >= 0",
    "count": "an integer >= 0",
    "size": "an integer >= 1",
    "flag": "true or false",
}


@dataclass
class EditRequest:
    """One edit sent by the browser client, checked.

    Attributes:
        action: one of :data:`ACTIONS`.
        args: the action's arguments (ints, a bool for ``erase``); ``draw``'s ``trace``
            is a list of ``(x, y)`` pixel points (``x`` along width, ``y`` along height).
        write_mode: ``"overlap"``, ``"overwrite"`` or ``"exclude"``.
        labels: the frame's labels, ``(height, width)`` int32.
        image: the frame's image, ``(height, width)`` uint8, or ``None`` when not sent.
        cells: the cells of the frame (all with the same ``t`` and ``c``).
    """

    action: str
    args: dict[str, Any]
    write_mode: str
    labels: np.ndarray
    image: np.ndarray | None = None
    cells: list[Cell] = field(default_factory=list)

    @property
    def height(self) -> int:
        """Frame height in pixels."""
        return int(self.labels.shape[0])

    @property
    def width(self) -> int:
        """Frame width in pixels."""
        return int(self.labels.shape[1])

    @property
    def frame(self) -> tuple[int, int] | None:
        """``(t, c)``, the frame and feature of :attr:`cells`, or ``None`` when there are no cells."""
        return (self.cells[0].t, self.cells[0].c) if self.cells else None

    def to_json(self) -> dict[str, Any]:
        """The ``edit.json`` content (``trace`` as the JSON string the client sends)."""
        return {
            "width": self.width,
            "height": self.height,
            "action": self.action,
            "args": _wire_args(self.action, self.args),
            "writeMode": self.write_mode,
        }


# ------------------------------------------------------------------ checking
def _wire_args(action: str, args: dict[str, Any]) -> dict[str, Any]:
    import json

    out = dict(args)
    if action == "draw" and not isinstance(out.get("trace"), str):
        # Compact, as the client's JSON.stringify writes it.
        out["trace"] = json.dumps([[int(x), int(y)] for x, y in out.get("trace", [])], separators=(",", ":"))
    return out


def _check_edit(obj: Any, where: dict[str, Any], limits: Limits) -> tuple[int, int, str, dict[str, Any], str]:
    """Check ``edit.json``; return ``(height, width, action, typed args, write mode)``."""
    from dlformats.containers import buffers

    if not isinstance(obj, dict):
        raise CorruptFileError(f"expected an object, found {type(obj).__name__}", **where)
    height = buffers.positive_int(obj, "height", **where)
    width = buffers.positive_int(obj, "width", **where)
    action = _choice(obj.get("action"), "action", ACTIONS, where)
    write_mode = _choice(obj.get("writeMode", DEFAULT_WRITE_MODE), "writeMode", WRITE_MODES, where)
    extra = sorted(set(obj) - {"height", "width", "action", "args", "writeMode"})
    if extra:
        raise CorruptFileError(f"unexpected keys {extra}; expected width, height, action, args, writeMode", **where)
    args = _check_args(action, obj.get("args"), height, width, where, limits)
    return height, width, action, args, write_mode


def _choice(value: Any, key: str, choices: Any, where: dict[str, Any]) -> str:
    """``value`` if it is one of ``choices``; an unknown name is unsupported, anything else corrupt."""
    if isinstance(value, str) and value in choices:
        return value
    error = UnsupportedFeatureError if isinstance(value, str) else CorruptFileError
    raise error(f"{key} {value!r} is not one of {', '.join(choices)}", **where)


def _check_args(
    action: str, args: Any, height: int, width: int, where: dict[str, Any], limits: Limits
) -> dict[str, Any]:
    spec = ACTIONS[action]
    if not isinstance(args, dict):
        raise CorruptFileError(f"{action}: 'args' must be an object, found {args!r}", **where)
    missing = [name for name in spec if name not in args]
    extra = sorted(set(args) - set(spec))
    if missing or extra:
        raise CorruptFileError(
            f"{action} takes arguments {', '.join(spec)}; "
            + "; ".join(filter(None, [missing and f"missing {missing}", extra and f"unexpected {extra}"])),
            **where,
        )
    out: dict[str, Any] = {}
    for name, kind in spec.items():
        value = args[name]
        text = f"{action}: argument {name!r}"
        if kind == "trace":
            out[name] = _check_trace(value, text, height, width, where, limits)
        elif kind == "flag":
            if not isinstance(value, bool):
                raise CorruptFileError(f"{text} must be true or false, found {value!r}", **where)
            out[name] = value
        elif kind in ("x", "y"):
            out[name] = _coordinate(value, kind, text, height, width, where)
        else:
            low = 1 if kind in ("cell", "size") else 0
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value < 2**31:
                raise CorruptFileError(f"{text} must be {_KIND_TEXT[kind]} below 2**31, found {value!r}", **where)
            out[name] = value
    return out


def _coordinate(value: Any, axis: str, text: str, height: int, width: int, where: dict[str, Any]) -> int:
    size, dim = (width, "width") if axis == "x" else (height, "height")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
        raise CorruptFileError(f"{text} must be an integer {axis} in 0..{size - 1} ({dim}), found {value!r}", **where)
    return value


def _check_trace(
    value: Any, text: str, height: int, width: int, where: dict[str, Any], limits: Limits
) -> list[tuple[int, int]]:
    from dlformats.containers.jsonio import load_json

    if not isinstance(value, str):
        raise CorruptFileError(
            f"{text} must be a JSON string of [[x, y], ...] points, found {type(value).__name__}", **where
        )
    points = load_json(value, limits=limits, **where)
    if not isinstance(points, list):
        raise CorruptFileError(f"{text} must encode a list of [x, y] points, found {points!r:.80}", **where)
    out = []
    for i, point in enumerate(points):
        if not isinstance(point, list) or len(point) != 2:
            raise CorruptFileError(f"{text}: point {i} must be [x, y], found {point!r:.80}", **where)
        x = _coordinate(point[0], "x", f"{text} point {i}", height, width, where)
        y = _coordinate(point[1], "y", f"{text} point {i}", height, width, where)
        out.append((x, y))
    return out


# ------------------------------------------------------------------ reading
def _sniff(source: Source) -> bool:
    names = source.zip_names()
    return names is not None and any(n.casefold() == EDIT for n in names)


def _read_request(source: Source, limits: Limits) -> EditRequest:
    import numpy as np

    from dlformats.containers import buffers, codecs

    archive, edit_name = source.zip_holding(EDIT)
    where = {"path": source.name, "member": edit_name}
    height, width, action, args, write_mode = _check_edit(archive.read_json(edit_name), where, limits)

    names = {n: archive.find(n) for n in ("labeled.dat", "cells.json", "raw.dat")}
    missing = [n for n in ("labeled.dat", "cells.json") if names[n] is None]
    if action in NEEDS_IMAGE and names["raw.dat"] is None:
        missing.append("raw.dat")
    if missing:
        need = "edit.json, cells.json, labeled.dat" + (" and raw.dat" if action in NEEDS_IMAGE else "")
        raise CorruptFileError(
            f"edit zip lacks {', '.join(missing)}; action {action} needs {need}",
            path=source.name,
            member=missing[0],
        )
    labels = buffers.read_buffer(archive, names["labeled.dat"], (height, width), "<i4", declared_by=edit_name)
    image = None
    if names["raw.dat"] is not None:
        image = buffers.read_buffer(archive, names["raw.dat"], (height, width), "<u1", declared_by=edit_name)
        image = np.array(image)
    cells_member = names["cells.json"]
    assert cells_member is not None
    cells, _ = codecs.cells_from_json(archive.read_json(cells_member), path=source.name, member=cells_member)
    frames = sorted({(cell.t, cell.c) for cell in cells})
    if len(frames) > 1:
        raise CorruptFileError(
            f"cells of one frame expected; found {len(frames)} (t, c) pairs: {frames[:5]}",
            path=source.name,
            member=cells_member,
        )
    return EditRequest(action, args, write_mode, np.array(labels), image, cells)


def read_edit(source: Any, *, limits: Limits | None = None) -> EditRequest:
    """Read and check an edit zip (a path, bytes or binary file object).

    Raises:
        CorruptFileError: a size, argument or member is wrong (the message says expected versus found).
        UnsupportedFeatureError: an unknown action or write mode.
        LimitExceededError: a buffer or JSON file over ``limits``.
        UnsafeArchiveError: an unsafe zip.
    """
    from dlformats.limits import DEFAULT_LIMITS
    from dlformats.sources import open_source

    limits = limits or DEFAULT_LIMITS
    with open_source(source, limits=limits) as src:
        try:
            return _read_request(src, limits)
        except NotMyFormat as exc:
            raise CorruptFileError(f"not an edit zip: {exc.reason}", path=src.name) from exc


def _read(source: Source, options: ReadOptions) -> Project:
    from dlformats.model import Project

    request = _read_request(source, options.limits)
    t, c = request.frame or (None, None)
    return Project(
        X=None if request.image is None else request.image[None, None],
        y=request.labels[None, None],
        cells=[Cell(cell.value, cell.cell, 0, 0) for cell in request.cells],
        metadata={"edit": {**request.to_json(), "t": t, "c": c}},
    )


# ------------------------------------------------------------------ writing
def _zip_bytes(members: list[tuple[str, bytes]]) -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buffer.getvalue()


def _frame_bytes(array: Any, dtype: str, shape: tuple[int, int] | None, what: str) -> bytes:
    import numpy as np

    array = np.asarray(array)
    if array.ndim != 2 or (shape is not None and array.shape != shape):
        want = f"{shape}" if shape is not None else "(height, width)"
        raise InvalidOptionError(f"{what} must have shape {want}, found {array.shape}")
    target = np.dtype(dtype)
    if array.dtype.kind not in "iub":
        raise InvalidOptionError(f"{what} must hold integers, found dtype {array.dtype}")
    if what == "labels":  # the one checked cast of labels: values beyond int32 are refused by name
        from dlformats.model import checked_labels

        array = checked_labels(array, negatives=True)
    if array.size:
        info = np.iinfo(target)
        low, high = int(array.min()), int(array.max())
        if low < info.min or high > info.max:
            raise InvalidOptionError(f"{what} values {low}..{high} do not fit in {target.name}")
    return np.ascontiguousarray(array, dtype=target).tobytes()


def edit_bytes(request: EditRequest) -> bytes:
    """The edit zip of ``request``, members in the client's order (edit.json, cells.json, labeled.dat, raw.dat)."""
    from dlformats.containers import codecs
    from dlformats.containers.jsonio import dump_json
    from dlformats.limits import DEFAULT_LIMITS

    edit = request.to_json()
    where = {"path": "<edit request>", "member": EDIT}
    _check_edit(edit, where, DEFAULT_LIMITS)  # never write what read_edit would refuse
    frames = sorted({(cell.t, cell.c) for cell in request.cells})
    if len(frames) > 1:
        raise InvalidOptionError(f"the cells of an edit share one frame and feature; found (t, c) pairs {frames[:5]}")
    shape = (request.height, request.width)
    members = [
        (EDIT, dump_json(edit)),
        ("cells.json", codecs.cells_to_json(request.cells)),
        ("labeled.dat", _frame_bytes(request.labels, "<i4", shape, "labels")),
    ]
    if request.image is not None:
        members.append(("raw.dat", _frame_bytes(request.image, "<u1", shape, "image")))
    elif request.action in NEEDS_IMAGE:
        raise InvalidOptionError(f"action {request.action} needs the image (raw.dat)")
    return _zip_bytes(members)


def answer_bytes(labels: Any, cells: list[Cell]) -> bytes:
    """The server's answer zip: ``labeled.dat`` (``(height, width)`` int32, little-endian), then ``cells.json``."""
    from dlformats.containers import codecs

    return _zip_bytes(
        [("labeled.dat", _frame_bytes(labels, "<i4", None, "labels")), ("cells.json", codecs.cells_to_json(cells))]
    )


def write_edit(target: str | os.PathLike[str] | IO[bytes], request: EditRequest) -> None:
    """Write ``request`` as an edit zip to a path (atomically) or a binary file object."""
    _put(target, edit_bytes(request))


def write_edit_answer(target: str | os.PathLike[str] | IO[bytes], labels: Any, cells: list[Cell]) -> None:
    """Write the answer to an edit: ``labels`` ``(height, width)`` and the frame's ``cells`` (with their t and c).

    ``target`` is a path (written under a temporary name and renamed: a failure leaves
    nothing behind) or a binary file object.
    """
    _put(target, answer_bytes(labels, cells))


def _put(target: str | os.PathLike[str] | IO[bytes], data: bytes) -> None:
    if isinstance(target, (str, os.PathLike)):
        from dlformats.atomic import atomic_target

        with atomic_target(target) as tmp:
            tmp.write_bytes(data)
    elif hasattr(target, "write"):
        target.write(data)
    else:
        raise InvalidOptionError(f"cannot write to a {type(target).__name__}; give a path or a binary file")


def _write(project: Project, path: Path, options: WriteOptions) -> None:
    """Write a one-frame project holding ``metadata["edit"]`` (as :func:`dlformats.read` gives it) as an edit zip."""
    edit = project.metadata.get("edit")
    if not isinstance(edit, dict):
        raise UnsupportedFeatureError(
            "an edit zip needs the edit to send: metadata['edit'] = {'action', 'args', 'writeMode'}",
            hint="read an edit zip, or build an EditRequest and call dlformats_editzip.write_edit",
        )
    ref = project.y if project.y is not None else project.X
    if ref is None or tuple(ref.shape[:2]) != (1, 1) or (project.X is not None and project.X.shape[0] != 1):
        shapes = {k: tuple(v.shape) for k, v in (("X", project.X), ("y", project.y)) if v is not None}
        raise UnsupportedFeatureError(f"an edit zip holds one frame of one channel and feature; found {shapes}")
    t, c = edit.get("t") or 0, edit.get("c") or 0
    request = EditRequest(
        action=edit.get("action", ""),
        args=dict(edit.get("args") or {}),
        write_mode=edit.get("writeMode", DEFAULT_WRITE_MODE),
        labels=project.label_frame(0, 0),
        image=None if project.X is None else project.image_frame(0, 0),
        cells=[Cell(cell.value, cell.cell, t, c) for cell in project.cells_or_derived()],
    )
    path.write_bytes(edit_bytes(request))


@hookimpl
def dlformats_formats() -> list[FormatSpec]:
    return [
        FormatSpec(
            name=FORMAT,
            description="DeepCell Label browser client's edit zip (edit.json, labeled.dat, cells.json, raw.dat)",
            extensions=(".zip",),
            signatures=(b"PK\x03\x04", b"PK\x05\x06"),
            sniff=_sniff,
            reads=parts("X", "y", "cells"),
            writes=parts("X", "y", "cells"),
            read=_read,
            write=_write,
        )
    ]


__all__ = [
    "ACTIONS",
    "NEEDS_IMAGE",
    "WRITE_MODES",
    "EditRequest",
    "answer_bytes",
    "edit_bytes",
    "read_edit",
    "write_edit",
    "write_edit_answer",
]
