"""Codecs for the small parts of a project: cells, divisions, lineages, spots, cell types, embeddings, channels.

Shared by every plugin that meets these files (project zips, label zips, trk,
export zips...).  Parsers take decoded JSON (see :func:`dlformats.containers.jsonio.load_json`)
or raw CSV bytes and raise :class:`~dlformats.errors.CorruptFileError` naming the
file and member; writers return bytes ready to store.
"""

from __future__ import annotations

import csv
import io
import math
import numbers
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import CorruptFileError, DLFormatsWarning, InconsistentDataError
from ..limits import DEFAULT_LIMITS, Limits
from ..model import Cell, CellTable, CellType, Division, Problem, Spots
from .jsonio import _int_key, dump_json, load_json


def _int(value: Any, what: str, where: dict[str, Any]) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise CorruptFileError(f"{what} must be an integer, found {value!r}", **where)
    return value


def _where(path: str | None, member: str | None) -> dict[str, Any]:
    return {"path": path, "member": member}


# ------------------------------------------------------------------- cells
def _cells_table(obj: list[Any]) -> tuple[CellTable, bool] | None:
    """The common case, columns at once: every entry an object of plain ints. ``None`` otherwise
    (the entry-by-entry parser then names the first bad entry)."""
    import numpy as np

    try:
        columns = [[e[key] for e in obj] for key in ("value", "cell", "t")]
        columns.append([e.get("c", 0) for e in obj])
    except (KeyError, TypeError, AttributeError):
        return None
    if not all(type(v) is int for column in columns for v in column):
        return None
    try:
        arrays = [np.array(column, dtype=np.int64) for column in columns]
    except OverflowError:
        return None
    return CellTable(*arrays), all("c" in e for e in obj)


def cells_from_bytes(
    data: bytes,
    *,
    path: str | None = None,
    member: str | None = "cells.json",
    limits: Limits = DEFAULT_LIMITS,
) -> tuple[Sequence[Cell], bool]:
    """Parse the bytes of ``cells.json``; return ``(cells, has_c)`` as :func:`cells_from_json` does.

    The usual form, a list of flat objects of integers written alike (what DeepCell
    Label and dlformats write), is parsed straight into the columns of a
    :class:`~dlformats.model.CellTable`: no Python object per cell, about the
    document's own size in memory, so it is bounded by ``limits.member_bytes`` (the
    caller reads the member with that limit).  Anything else goes through
    :func:`~dlformats.jsonio.load_json` (``json_bytes``, depth, duplicate keys, finite
    numbers) and :func:`cells_from_json`, which names the first bad entry.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    columns = _cells_columns(data)
    if columns is not None:
        return columns
    return cells_from_json(load_json(data, path=path, member=member, limits=limits), path=path, member=member)


_WS = rb"[ \t\n\r]*"
_OPEN = re.compile(_WS + rb"\[" + _WS + rb"\Z")
_CLOSE = re.compile(_WS + rb"\]" + _WS + rb"\Z")
_SEPARATOR = re.compile(_WS + rb"," + _WS + rb"\Z")
_EMPTY = re.compile(_WS + rb"\[" + _WS + rb"\]" + _WS + rb"\Z")
_NUMBER_RUN = re.compile(rb"[0-9-]+")
_CELL_KEYS = ({"value", "cell", "t"}, {"value", "cell", "t", "c"})
_CHUNK = 1 << 20  # bytes parsed at once: the masks of a chunk stay in the CPU's cache


def _cells_columns(data: bytes) -> tuple[CellTable, bool] | None:
    """``cells.json`` in its usual form, parsed on the bytes into columns; ``None`` for any other document.

    Every entry must be written like the first one (same keys in the same order, same
    whitespace), only the integers differing.  The first entry is parsed strictly;
    then the document without its number characters must equal ``[`` + that entry
    without them, repeated with the first separator, + ``]``, and each run of number
    characters must sit where a value of that skeleton goes, one run per value: so every
    other byte is the first entry's, and no number hides in a key or between entries.
    Each run must be a JSON integer (``-?(0|[1-9][0-9]*)``) of at most 18 digits.
    Duplicate keys, nesting, floats, NaN or anything else make it ``None``, and the
    strict parser then says what is wrong.
    """
    import json

    import numpy as np

    start = data.find(b"{")
    if start < 0:
        return (CellTable([], [], [], []), True) if _EMPTY.match(data) else None
    end = data.rfind(b"}") + 1
    first_end = data.find(b"}", start) + 1
    if not _OPEN.match(data, 0, start) or not _CLOSE.match(data, end):
        return None
    first = data[start:first_end]
    try:
        pairs = json.loads(first, object_pairs_hook=lambda p: p)
    except ValueError:
        return None
    keys = [k for k, _ in pairs]
    if not isinstance(pairs, list) or set(keys) not in _CELL_KEYS or len(keys) != len(set(keys)):
        return None
    if not all(type(v) is int and -(10**18) < v < 10**18 for _, v in pairs):
        return None
    separator = b""
    if end > first_end:
        following = data.find(b"{", first_end)
        separator = data[first_end:following]
        if following < 0 or not _SEPARATOR.match(separator):
            return None
    runs = list(_NUMBER_RUN.finditer(first))
    if len(runs) != len(keys):
        return None
    template = first.translate(None, _NUMBER_BYTES)
    slots = np.array([run.start() - sum(len(r.group()) for r in runs[:i]) for i, run in enumerate(runs)], np.int64)
    gaps = np.diff(np.append(slots, slots[0] + len(template) + len(separator)))
    shape = _Skeleton(template, template + separator, slots, len(keys), gaps)
    boundary = b"}" + separator
    # Chunks end after a "}" followed by the separator (whose bytes the search itself checks); each
    # chunk's other bytes are checked against the skeleton, so together every byte is accounted for.
    bounds = []
    at = start
    while at < end:
        cut = data.find(boundary, at + _CHUNK, end) if at + _CHUNK < end else -1
        stop = end if cut < 0 else cut + 1
        bounds.append((at, stop))
        at = stop + len(separator)
    parts = _parse_chunks(data, bounds, shape)
    if parts is None:
        return None
    table = np.concatenate(parts).reshape(-1, len(keys)).T
    columns = dict(zip(keys, table))
    has_c = "c" in columns
    c = columns["c"] if has_c else np.zeros(table.shape[1], np.int64)
    return CellTable(columns["value"], columns["cell"], columns["t"], c), has_c


_NUMBER_BYTES = b"0123456789-"


def _parse_chunks(data: bytes, bounds: list[tuple[int, int]], shape: _Skeleton) -> list[Any] | None:
    """:func:`_chunk_numbers` of every chunk, in order (``None`` if any is not shaped like ``shape``).

    With more than one core and chunk, a second thread takes the later half of the chunks
    (numpy releases the GIL in the array passes; 320,000 cells: 58 -> 40 ms on two cores).
    """
    import os
    import threading

    half = len(bounds) // 2 if (os.cpu_count() or 1) > 1 else 0
    later: list[Any] = []
    failed: list[BaseException] = []

    def work() -> None:
        try:
            later.extend(_chunk_numbers(data, at, stop, shape) for at, stop in bounds[half:])
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            failed.append(exc)

    helper = threading.Thread(target=work, name="dlformats-cells", daemon=True) if half else None
    if helper is not None:
        helper.start()
    try:
        parts = [_chunk_numbers(data, at, stop, shape) for at, stop in bounds[: half or len(bounds)]]
    finally:
        if helper is not None:
            helper.join()
    if failed:
        raise failed[0]
    parts.extend(later if helper is not None else [])
    return None if any(p is None for p in parts) else parts


@dataclass(frozen=True)
class _Skeleton:
    """An entry of ``cells.json`` without its number characters, and where its values go."""

    template: bytes  # the first entry, numbers removed
    unit: bytes  # the same followed by the separator
    slots: Any  # where each value sits in ``template`` (int64 array)
    width: int  # values per entry
    gaps: Any  # bytes from each value to the next (the last: to the first of the next entry)


def _chunk_numbers(data: bytes, at: int, stop: int, shape: _Skeleton) -> Any:
    """The integers of ``data[at:stop]`` (whole entries, separated), in order, or ``None`` unless it is
    entries shaped like ``shape`` (see :func:`_cells_columns`)."""
    import numpy as np

    chunk = np.frombuffer(data, np.uint8, stop - at, at)
    digits = chunk - np.uint8(48)  # a digit's value where it is one
    digit = digits < 10
    signed = data.find(b"-", at, stop) >= 0
    number = digit | (chunk == ord("-")) if signed else digit
    edges = np.empty(len(number) + 1, bool)  # where a run of number characters starts or ends
    edges[0], edges[-1] = number[0], number[-1]
    np.not_equal(number[1:], number[:-1], out=edges[1:-1])
    found = np.flatnonzero(edges)
    starts, ends = found[0::2], found[1::2]
    entries = len(starts) // shape.width
    if len(starts) != entries * shape.width or not entries:
        return None
    if data[at:stop].translate(None, _NUMBER_BYTES) != shape.unit * (entries - 1) + shape.template:
        return None
    # Each run sits where a value goes: the first at its slot, and the bytes between runs as
    # many as between slots (so the places in the chunk without its numbers are the slots').
    gaps = np.empty(len(starts), np.int64)
    np.subtract(starts[1:], ends[:-1], out=gaps[:-1])
    gaps[-1] = shape.gaps[-1]
    if int(starts[0]) != int(shape.slots[0]) or not bool((gaps.reshape(-1, shape.width) == shape.gaps).all()):
        return None
    lengths = ends - starts
    negative = None
    if signed:  # a minus only opens a run, and digits follow it
        negative = chunk[starts] == ord("-")
        if int(np.count_nonzero(negative)) != int(np.count_nonzero(chunk == ord("-"))):
            return None
        starts = starts + negative
        lengths = ends - starts
        if not bool(np.all(lengths > 0)):
            return None
    longest = int(lengths.max())
    lead = digits[starts]
    if longest > 18 or (longest > 1 and bool(np.any((lead == 0) & (lengths > 1)))):
        return None  # beyond int64, or a leading zero
    # Digit by digit from the right, all numbers at once: the k-th last digit counts where a number has k.
    out = digits.take(ends - 1).astype(np.int64)
    scale = 1
    for k in range(2, longest + 1):
        scale *= 10
        more = digits.take(ends - k, mode="clip")  # (clipped: before a short first number)
        np.multiply(more, lengths >= k, out=more, casting="unsafe")
        out += more.astype(np.int64) * scale
    if negative is not None:
        out[negative] *= -1
    return out


def cells_from_json(
    obj: Any, *, path: str | None = None, member: str | None = "cells.json"
) -> tuple[Sequence[Cell], bool]:
    """Parse ``cells.json``; return ``(cells, has_c)``.

    Accepts the list form ``[{"value", "cell", "t"[, "c"]}]`` and the older dict form
    ``{feature: {label: {"label": l, "frames": [t, ...]}}}`` (value = cell = label).
    ``has_c`` is False when list entries lack ``"c"`` (they get ``c = 0``; a caller
    with pixels may assign the right feature, see :func:`assign_features`).
    """
    where = _where(path, member)
    cells: list[Cell] = []
    if isinstance(obj, list):
        columns = _cells_table(obj)
        if columns is not None:
            return columns
        has_c = True
        for i, entry in enumerate(obj):
            if not isinstance(entry, dict):
                raise CorruptFileError(f"entry {i} is not an object", **where)
            try:
                value, cell, t = entry["value"], entry["cell"], entry["t"]
            except KeyError as exc:
                raise CorruptFileError(f"entry {i} lacks {exc.args[0]!r}", **where) from None
            if "c" not in entry:
                has_c = False
            cells.append(
                Cell(
                    _int(value, f"entry {i} value", where),
                    _int(cell, f"entry {i} cell", where),
                    _int(t, f"entry {i} t", where),
                    _int(entry.get("c", 0), f"entry {i} c", where),
                )
            )
        return cells, has_c
    if isinstance(obj, dict):
        for fkey, labels in obj.items():
            feature = _int_key(fkey, what="feature key", **where)
            if not isinstance(labels, dict):
                raise CorruptFileError(f"feature {fkey}: expected an object of labels", **where)
            for lkey, info in labels.items():
                label = _int_key(lkey, what="label key", **where)
                frames = info.get("frames", []) if isinstance(info, dict) else None
                if not isinstance(frames, list):
                    raise CorruptFileError(f"label {lkey}: 'frames' must be a list", **where)
                for t in frames:
                    cells.append(Cell(label, label, _int(t, f"label {lkey} frame", where), feature))
        return cells, True
    raise CorruptFileError("expected a list of cells", **where)


def cells_to_json(cells: Iterable[Cell]) -> bytes:
    """Serialise cells as ``[{"value", "cell", "t", "c"}]``, always with ``"c"``."""
    if isinstance(cells, CellTable):  # integers only: written from the columns, no object per cell
        if len(cells) == 0:
            return b"[]"
        columns = [cells.value, cells.cell, cells.t, cells.c]
        pieces = [b'{"value": ', b', "cell": ', b', "t": ', b', "c": ', b"}, "]
        return b"[" + _format_rows(columns, pieces)[:-2] + b"]"
    return dump_json([{"value": c.value, "cell": c.cell, "t": c.t, "c": c.c} for c in cells])


_POW10 = [10**k for k in range(19)]
_FILL = 0xFF  # never in the text: marks the unused width of a number
_ROWS = 1 << 16  # rows formatted at once (a few MB of text: cache-friendly)


def _format_rows(columns: list[Any], pieces: list[bytes]) -> bytes:
    """``pieces[0] + str(columns[0][i]) + pieces[1] + ... + pieces[-1]`` for every row ``i``, joined.

    Vectorised: each row is laid out at a fixed width (numbers right-aligned, the
    unused width filled with a byte never in JSON text), then the filler is dropped.
    Columns are int64; ``pieces`` ASCII, one more than the columns.
    """
    import numpy as np

    n = len(columns[0])
    low = min((int(col.min()) for col in columns), default=0) if n else 0
    if low == np.iinfo(np.int64).min:  # no magnitude in int64: the rare slow way
        rows = zip(*(col.tolist() for col in columns))
        text = "".join("".join(p.decode() + str(v) for p, v in zip(pieces, row)) + pieces[-1].decode() for row in rows)
        return text.encode()
    widths = []
    for col in columns:
        top = int(np.abs(col).max()) if n else 0
        digits = next(k for k in range(1, 20) if k == 19 or top < _POW10[k])
        widths.append((digits, bool(n and int(col.min()) < 0)))
    width = sum(len(p) for p in pieces) + sum(d + s for d, s in widths)
    out = []
    for first in range(0, n, _ROWS):
        block = np.empty((min(_ROWS, n - first), width), np.uint8)
        at = 0
        for j, piece in enumerate(pieces):
            block[:, at : at + len(piece)] = np.frombuffer(piece, np.uint8)
            at += len(piece)
            if j == len(columns):
                break
            digits, signed = widths[j]
            col = columns[j][first : first + len(block)]
            field = block[:, at : at + digits + signed]
            q = np.abs(col).astype(np.uint32 if digits <= 9 else np.uint64)
            for d in range(digits):  # right to left; leading zeros become filler
                place = field[:, digits + signed - 1 - d]
                np.add(q % 10, 48, out=place, casting="unsafe")
                if d:
                    place[q == 0] = _FILL
                q //= 10
            if signed:
                field[:, 0] = _FILL
                rows = np.flatnonzero(col < 0)
                length = np.searchsorted(np.array(_POW10[1:], np.int64), np.abs(col[rows]), side="right") + 1
                field[rows, digits + signed - 1 - length] = ord("-")
            at += digits + signed
        flat = block.ravel()
        out.append(flat[flat != _FILL].tobytes())
    return b"".join(out)


def assign_features(cells: list[Cell], y: Any) -> list[Cell]:
    """Give cells read without ``"c"`` the feature(s) whose labels hold their value at their frame.

    ``y`` is the labels, ``(features, frames, height, width)``; a lazy array is read one
    plane per (feature, frame) a cell needs, each plane once.  A cell whose value
    appears in several features is listed once per feature; one whose value appears
    nowhere (or whose frame ``y`` lacks) keeps ``c = 0``.  With one feature there is
    nothing to choose: the cells are returned as they are.
    """
    import numpy as np

    features, frames = int(y.shape[0]), int(y.shape[1])
    if features == 1:
        return list(cells)
    cache: dict[tuple[int, int], set[int]] = {}

    def present(c: int, t: int) -> set[int]:
        if (c, t) not in cache:
            cache[(c, t)] = set(np.unique(np.asarray(y[c, t])).tolist()) if 0 <= t < frames else set()
        return cache[(c, t)]

    out: list[Cell] = []
    for cell in cells:
        hits = [c for c in range(features) if cell.value in present(c, cell.t)]
        out.extend(Cell(cell.value, cell.cell, cell.t, f) for f in hits) if hits else out.append(cell)
    return out


# --------------------------------------------------------------- divisions
def divisions_from_json(obj: Any, *, path: str | None = None, member: str | None = "divisions.json") -> list[Division]:
    """Parse ``divisions.json``: ``[{"parent": p, "daughters": [d, ...], "t": t}]``."""
    where = _where(path, member)
    if not isinstance(obj, list):
        raise CorruptFileError("expected a list of divisions", **where)
    out = []
    for i, entry in enumerate(obj):
        if not isinstance(entry, dict) or not isinstance(entry.get("daughters"), list):
            raise CorruptFileError(f"division {i} needs 'parent', 'daughters' (a list) and 't'", **where)
        try:
            out.append(
                Division(
                    _int(entry["parent"], f"division {i} parent", where),
                    [_int(d, f"division {i} daughter", where) for d in entry["daughters"]],
                    _int(entry["t"], f"division {i} t", where),
                )
            )
        except KeyError as exc:
            raise CorruptFileError(f"division {i} lacks {exc.args[0]!r}", **where) from None
    return out


def divisions_to_json(divisions: Iterable[Division]) -> bytes:
    """Serialise divisions as ``[{"parent", "daughters", "t"}]``."""
    return dump_json([{"parent": d.parent, "daughters": list(d.daughters), "t": d.t} for d in divisions])


# ----------------------------------------------------------------- lineage
def lineage_to_divisions(
    obj: Any,
    *,
    path: str | None = None,
    member: str | None = "lineage.json",
    labels_frames: dict[int, list[int]] | None = None,
) -> tuple[list[Division], list[Problem]]:
    """Convert a deepcell-tracking lineage (``{"label": {...}}``) to divisions, checking every rule.

    Each label with daughters gives one division at the daughters' first frame (from
    their ``frames``; else ``frame_div``/``divisionFrame``; else the parent's last
    frame + 1).  ``frame_div`` and ``capped`` are optional.

    Returns the divisions and every rule of a valid lineage that the file breaks,
    all at once: a key names its own ``label``; labels are positive; ``frames`` are
    listed once each; parent and daughters exist and point at each other; a
    daughter starts right after its parent's last frame; ``frame_div``, when given,
    is the daughters' first frame; and, when ``labels_frames`` gives the (0-based)
    frames where each label occurs, every label has an entry, every entry's label
    occurs, and ``frames`` equals where it occurs.  Problems after which the
    divisions are still well defined have severity ``"warning"``; those that leave
    a division undefined (no frame to place it at, a cell its own parent or
    daughter, a label that is not positive) are ``"error"``.

    Malformed structure (not an object, keys that are not plain integers, entries
    that are not objects, frames, daughters or parent that are not integers,
    negative frames) raises :class:`CorruptFileError`.
    """
    where = _where(path, member)
    if not isinstance(obj, dict):
        raise CorruptFileError("lineage must be an object keyed by label", **where)
    problems: list[Problem] = []

    def warn(msg: str) -> None:
        problems.append(Problem("divisions", msg, "warning"))

    def error(msg: str) -> None:
        problems.append(Problem("divisions", msg, "error"))

    tracks: dict[int, dict[str, Any]] = {}
    for key, entry in obj.items():
        label = _int_key(key, what="lineage key", **where)
        if not isinstance(entry, dict):
            raise CorruptFileError(f"label {key}: entry must be an object", **where)
        frames = entry.get("frames", [])
        daughters = entry.get("daughters", []) or []
        if not isinstance(frames, list) or not isinstance(daughters, list):
            raise CorruptFileError(f"label {key}: 'frames' and 'daughters' must be lists", **where)
        frame_list = [_int(f, f"label {key} frame", where) for f in frames]
        if any(f < 0 for f in frame_list):
            raise CorruptFileError(f"label {key}: negative frame in {frame_list}", **where)
        parent = entry.get("parent")
        frame_div = entry.get("frame_div", entry.get("divisionFrame"))
        if frame_div is not None and (isinstance(frame_div, bool) or not isinstance(frame_div, int)):
            warn(f"label {label}: frame_div {frame_div!r} is not an integer; ignored")
            frame_div = None
        tracks[label] = {
            "label": _int(entry.get("label", label), f"label {key} label", where),
            "frames": sorted(set(frame_list)),
            "daughters": [_int(d, f"label {key} daughter", where) for d in daughters],
            "parent": None if parent is None else _int(parent, f"label {key} parent", where),
            "frame_div": frame_div,
        }
        if len(set(frame_list)) != len(frame_list):
            warn(f"label {label}: a frame is listed more than once in {frame_list}")

    divisions = []
    for label, tr in sorted(tracks.items()):
        if tr["label"] != label:
            warn(f"key {label} holds label {tr['label']}; the key is used")
        if label <= 0:
            error(f"label {label}: labels must be positive")
        parent = tr["parent"]
        if parent == label:
            error(f"label {label} is its own parent")
        elif parent is not None:
            if parent not in tracks:
                warn(f"label {label}: parent {parent} has no entry")
            elif label not in tracks[parent]["daughters"]:
                warn(f"label {label}: parent {parent} does not list it as a daughter")
        daughters = tr["daughters"]
        if label in daughters:
            error(f"label {label} lists itself as its own daughter")
            daughters = [d for d in daughters if d != label]
        if len(set(daughters)) != len(daughters):
            warn(f"label {label}: a daughter is listed more than once in {daughters}")
            daughters = list(dict.fromkeys(daughters))
        if not daughters:
            if tr["frame_div"] is not None:
                warn(f"label {label}: frame_div {tr['frame_div']} is set but it has no daughters")
            continue
        last = tr["frames"][-1] if tr["frames"] else None
        starts = []
        for d in daughters:
            if d not in tracks:
                warn(f"label {label}: daughter {d} has no entry")
                continue
            if tracks[d]["parent"] != label:
                warn(f"label {label}: daughter {d} names parent {tracks[d]['parent']}")
            if tracks[d]["frames"]:
                first = tracks[d]["frames"][0]
                starts.append(first)
                if last is not None and first != last + 1:
                    warn(
                        f"label {label}: daughter {d} starts at frame {first}, "
                        f"not right after the parent's last frame {last}"
                    )
        frame_div = tr["frame_div"]
        if starts:
            t = min(starts)
            if frame_div is not None and frame_div != t:
                known = " (the parent's last frame: a known off-by-one)" if frame_div == last else ""
                warn(f"label {label}: frame_div {frame_div} is not the daughters' first frame {t}{known}")
        elif frame_div is not None:
            t = frame_div
        elif last is not None:
            t = last + 1
        else:
            error(f"label {label}: cannot tell when it divides (no frames for it or its daughters, no frame_div)")
            continue
        divisions.append(Division(label, list(daughters), t))
    if labels_frames is not None:
        for label, frames in sorted(labels_frames.items()):
            if label not in tracks:
                warn(f"label {label} occurs in the labels but has no lineage entry")
            elif sorted(set(frames)) != tracks[label]["frames"]:
                warn(f"label {label}: frames {tracks[label]['frames']} differ from where it occurs {sorted(frames)}")
        for label in sorted(tracks):
            if label not in labels_frames:
                warn(f"label {label} has a lineage entry but does not occur in the labels")
    return divisions, problems


def report_lineage_problems(problems: list[Problem], *, path: str | None, member: str | None = None) -> list[str]:
    """Act on the problems :func:`lineage_to_divisions` found; return their messages.

    Raises :class:`InconsistentDataError` (every problem in ``problems``) when any is
    an error; else emits one :class:`~dlformats.errors.DLFormatsWarning` listing the
    first ten (readers keep the full list in ``project.metadata``).
    """
    import warnings

    errors = [p for p in problems if p.severity == "error"]
    if errors:
        shown = "; ".join(p.message for p in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise InconsistentDataError(f"lineage is unusable: {shown}{more}", problems=problems, path=path, member=member)
    if problems:
        where = ": ".join(w for w in (path, member) if w)
        shown = "; ".join(p.message for p in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        warnings.warn(f"{where}: lineage breaks {len(problems)} rule(s): {shown}{more}", DLFormatsWarning, stacklevel=3)
    return [p.message for p in problems]


def merge_divisions(
    divisions_json: Any,
    lineage_json: Any,
    *,
    path: str | None,
    divisions_member: str | None = "divisions.json",
    lineage_member: str | None = "lineage.json",
) -> tuple[list[Division], list[str]]:
    """Divisions of a zip that may hold ``divisions.json``, ``lineage.json``, both or neither.

    Takes decoded JSON (``None`` where the member is absent).  ``divisions.json``
    wins; when both exist and disagree, a :class:`~dlformats.errors.DLFormatsWarning`
    says so.  The lineage's problems are reported by :func:`report_lineage_problems`
    (raising when it is unusable); their messages are returned for ``metadata``.
    """
    import warnings

    divisions = None
    if divisions_json is not None:
        divisions = divisions_from_json(divisions_json, path=path, member=divisions_member)
    messages: list[str] = []
    if lineage_json is not None:
        from_lineage, problems = lineage_to_divisions(lineage_json, path=path, member=lineage_member)
        messages = report_lineage_problems(problems, path=path, member=lineage_member)
        if divisions is None:
            divisions = from_lineage
        elif _division_keys(divisions) != _division_keys(from_lineage):
            warnings.warn(
                f"{path}: {divisions_member} and {lineage_member} disagree; {divisions_member} is used",
                DLFormatsWarning,
                stacklevel=3,
            )
    return divisions or [], messages


def _division_keys(divisions: list[Division]) -> list[tuple[int, int, tuple[int, ...]]]:
    return sorted((d.t, d.parent, tuple(sorted(d.daughters))) for d in divisions)


def divisions_to_lineage(cells: Iterable[Cell], divisions: Iterable[Division]) -> dict[str, Any]:
    """Build a deepcell-tracking lineage from cells and divisions (keys are label strings)."""
    frames: dict[int, set[int]] = {}
    for cell in cells:
        frames.setdefault(cell.cell, set()).add(cell.t)
    parent_of: dict[int, int] = {}
    daughters_of: dict[int, list[int]] = {}
    div_frame: dict[int, int] = {}
    for d in divisions:
        daughters_of.setdefault(d.parent, []).extend(d.daughters)
        div_frame[d.parent] = d.t
        for x in d.daughters:
            parent_of[x] = d.parent
    labels = sorted(set(frames) | set(parent_of) | set(daughters_of))
    return {
        str(label): {
            "label": int(label),
            "frames": sorted(int(t) for t in frames.get(label, ())),
            "daughters": [int(x) for x in daughters_of.get(label, [])],
            "parent": parent_of.get(label),
            "frame_div": div_frame.get(label),
            "capped": label in daughters_of,
        }
        for label in labels
    }


# ------------------------------------------------------------------- spots
def _formula_safe(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# Unambiguous on purpose: "[0-9]+\.?[0-9]*" splits a run of digits in n ways, so a 60,000-digit
# field that is not a number took seconds to reject (spots-csv fuzz finding).
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\Z")
_INTEGER = re.compile(r"[+-]?[0-9]+\Z")


def spots_from_csv(
    data: bytes, *, path: str | None = None, member: str | None = "spots.csv", limits: Limits = DEFAULT_LIMITS
) -> Spots:
    """Parse ``spots.csv``: a header, then one row per spot; CRLF or LF; float coordinates.

    The header must name an ``x`` and a ``y`` column (any case); DeepCell Label puts
    them first (``x,y[,cell assignment per feature...]``), other tables (e.g. a
    pandas export with an unnamed index column first) anywhere.  Every other column
    is kept by header name, in file order: integers where every value is an integer
    (cell assignments), floats where every value is a number, else text; empty
    fields of a numeric column become ``None``.  Numbers are plain ASCII decimals
    (``1_0``, non-ASCII digits, ``nan`` and ``inf`` are not numbers); coordinates
    must be finite.  Blank lines are skipped.
    """
    where = _where(path, member)
    limits.check("csv_bytes", len(data), "CSV too large", **where)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptFileError(f"CSV is not UTF-8: {exc}", **where) from exc
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            if row:
                rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise CorruptFileError(f"bad CSV at line {reader.line_num}: {exc}", **where) from exc
    if not rows:
        return Spots()
    header = [h.strip() for h in rows[0][1]]
    folded = [h.casefold() for h in header]
    hint = "spots.csv needs a header row naming an x and a y column, e.g. x,y,cellID"
    for axis in ("x", "y"):
        if folded.count(axis) != 1:
            found = f"no {axis!r} column" if axis not in folded else f"several {axis!r} columns"
            raise CorruptFileError(f"header has {found}: {header[:12]}", hint=hint, **where)
    if len(set(header)) != len(header):
        raise CorruptFileError(f"duplicate column names in header {header}", **where)
    ix, iy = folded.index("x"), folded.index("y")
    others = [i for i in range(len(header)) if i not in (ix, iy)]
    xs: list[float] = []
    ys: list[float] = []
    raw: list[list[str]] = [[] for _ in others]
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise CorruptFileError(f"line {line} has {len(row)} fields, the header has {len(header)}", **where)
        xs.append(_finite(row[ix], line, "x", where))
        ys.append(_finite(row[iy], line, "y", where))
        for col, i in zip(raw, others):
            col.append(row[i].strip())
    columns = {header[i]: _column(values) for i, values in zip(others, raw)}
    return Spots(xs, ys, columns)


def _finite(text: str, line: int, what: str, where: dict[str, Any]) -> float:
    text = text.strip()
    value = float(text) if _NUMBER.match(text) else None
    if value is None:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise CorruptFileError(f"line {line}: {what} {shown!r} is not a number", **where)
    if not math.isfinite(value):
        raise CorruptFileError(f"line {line}: {what} {text!r} is not finite", **where)
    return value


def _column(values: list[str]) -> list[Any]:
    if all(v == "" or _INTEGER.match(v) for v in values):
        return [None if v == "" else int(v) for v in values]
    if all(v == "" or _NUMBER.match(v) for v in values):
        floats = [None if v == "" else float(v) for v in values]
        if all(f is None or math.isfinite(f) for f in floats):
            return floats
    return values


def spots_to_csv(spots: Spots) -> bytes:
    """Serialise spots as CSV with a header and a trailing newline (LF).

    Coordinates keep full float precision; text that could be read as a
    spreadsheet formula is prefixed with ``'``.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names = list(spots.columns)
    writer.writerow(["x", "y", *(_formula_safe(n) for n in names)])
    cols = [spots.columns[n] for n in names]
    for i, (x, y) in enumerate(zip(spots.x, spots.y)):
        row = [_num(x), _num(y)]
        for col in cols:
            v = col[i]
            if v is None:
                row.append("")
            elif isinstance(v, numbers.Integral):
                row.append(str(int(v)))
            elif isinstance(v, numbers.Real):
                row.append(_float(v))  # "2.0", not "2": the column reads back as floats
            else:
                row.append(_formula_safe(str(v)))
        writer.writerow(row)
    return out.getvalue().encode("utf-8")


def _num(v: Any) -> str:
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return str(v)
    f = _float(v)
    return f if not float(v).is_integer() or abs(float(v)) >= 1e15 else str(int(float(v)))


def _float(v: Any) -> str:
    f = float(v)
    if not math.isfinite(f):
        raise InconsistentDataError(f"cannot write the non-finite number {v!r} to spots.csv")
    return repr(f)


# ------------------------------------------------------- cell types, embeddings, channels
def cell_types_from_json(obj: Any, *, path: str | None = None, member: str | None = "cellTypes.json") -> list[CellType]:
    """Parse ``cellTypes.json``: ``[{"id", "name", "color", "feature", "cells"}]``."""
    where = _where(path, member)
    if not isinstance(obj, list):
        raise CorruptFileError("expected a list of cell types", **where)
    out = []
    for i, e in enumerate(obj):
        if not isinstance(e, dict):
            raise CorruptFileError(f"cell type {i} is not an object", **where)
        cells = e.get("cells", [])
        if not isinstance(cells, list):
            raise CorruptFileError(f"cell type {i}: 'cells' must be a list", **where)
        out.append(
            CellType(
                _int(e.get("id", i + 1), f"cell type {i} id", where),
                str(e.get("name", "")),
                str(e.get("color", "#000000")),
                _int(e.get("feature", 0), f"cell type {i} feature", where),
                [_int(c, f"cell type {i} cell", where) for c in cells],
            )
        )
    return out


def cell_types_to_json(cell_types: Iterable[CellType]) -> bytes:
    """Serialise cell types."""
    return dump_json(
        [
            {"id": t.id, "name": t.name, "color": t.color, "feature": t.feature, "cells": list(t.cells)}
            for t in cell_types
        ]
    )


def embeddings_from_json(obj: Any, *, path: str | None = None, member: str | None = "embeddings.json") -> list[Any]:
    """Parse ``embeddings.json``: a list whose row ``i`` is cell ``i``'s vector of numbers, or ``null``."""
    where = _where(path, member)
    if not isinstance(obj, list):
        raise CorruptFileError("expected a list of embeddings", **where)
    for i, row in enumerate(obj):
        if row is None:
            continue
        if not isinstance(row, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row):
            raise CorruptFileError(f"embedding {i} must be a list of numbers or null", **where)
    return obj


def embeddings_to_json(embeddings: list[Any]) -> bytes:
    """Serialise embeddings."""
    return dump_json(embeddings)


def channels_from_json(obj: Any, *, path: str | None = None, member: str | None = "channels.json") -> list[str]:
    """Parse ``channels.json``: a list of channel names (``null`` becomes ``""``)."""
    where = _where(path, member)
    if not isinstance(obj, list):
        raise CorruptFileError("expected a list of channel names", **where)
    return ["" if n is None else str(n) for n in obj]


def channels_to_json(names: list[str]) -> bytes:
    """Serialise channel names."""
    return dump_json(list(names))


__all__ = [
    "assign_features",
    "cell_types_from_json",
    "cell_types_to_json",
    "cells_from_bytes",
    "cells_from_json",
    "cells_to_json",
    "channels_from_json",
    "channels_to_json",
    "divisions_from_json",
    "divisions_to_json",
    "divisions_to_lineage",
    "embeddings_from_json",
    "embeddings_to_json",
    "lineage_to_divisions",
    "merge_divisions",
    "report_lineage_problems",
    "spots_from_csv",
    "spots_to_csv",
]
