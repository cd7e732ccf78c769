"""DeepCell Label's write modes: writing one cell's mask into a labelled frame whose values may encode several cells.

What a server answering an edit zip does once the edit's action has made its mask:
``labels, cells = write_mask(request.labels, request.cells, mask, cell, request.write_mode, t=t, c=c)``,
then :func:`dlformats_editzip.write_edit_answer`.

A frame of labels (``(height, width)`` int32) and the cells of that frame
(:class:`~dlformats.model.Cell` entries with its ``t`` and ``c``) say which cells
each pixel belongs to: a pixel of value ``v`` belongs to every cell listed with
value ``v``; 0 belongs to none.  So a *value encodes a set of cells*.

:func:`write_mask` adds ``cell`` to the pixels of a boolean mask in one of three
modes, and :func:`erase_mask` removes it.  Precisely, with ``S(p)`` the set of
cells of pixel ``p``:

1. **Cleaning** comes first: pixels whose value no cell lists (and negative
   values) become 0, ``S(p) = {}``.
2. Under the mask, the new set is

   * ``overwrite``: ``{cell}``.  The pixel leaves every other cell it belonged
     to; a cell whose every pixel is overwritten disappears from the frame.
   * ``exclude``: ``{cell}`` where ``S(p)`` is empty (the frame is 0), else
     unchanged.
   * ``overlap``: ``S(p) | {cell}``.
   * erasing (:func:`erase_mask`): ``S(p) - {cell}``.

   Outside the mask nothing changes.
3. **Values.**  A pixel whose new set is empty gets 0.  Otherwise it gets the
   smallest value that already encodes exactly its new set (among the values the
   cells list, whether or not they occur in the frame).  A set no value encodes
   gets a new value, one above the largest value listed or used so far (new sets
   are numbered in order of the old pixel value they come from).  In particular
   *the cell's value* written by ``overwrite`` and ``exclude`` is the smallest
   value encoding exactly ``{cell}``, or a new value if the cell has none yet.
   Values never change meaning: a value keeps encoding the set it encoded.
4. The returned cells list, for this frame and feature, exactly the values that
   occur in the new frame (each with every cell it encodes, sorted by value then
   cell); entries for values no longer in the frame are dropped.  Cells of other
   frames or features are passed through unchanged, in their order, first.

After any sequence of writes starting from a frame whose values each encode a
distinct set, every value in the frame encodes exactly one non-empty set of
cells and no two values encode the same set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal

from dlformats import Cell, InvalidOptionError, UnsupportedFeatureError
from dlformats.model import INT32_MAX

from . import WRITE_MODES

if TYPE_CHECKING:
    import numpy as np

WriteMode = Literal["overlap", "overwrite", "exclude"]


def cell_sets(cells: Iterable[Cell], *, t: int = 0, c: int = 0) -> dict[int, frozenset[int]]:
    """For frame ``t`` of feature ``c``: each positive value listed in ``cells`` and the set of cells it encodes."""
    by_value: dict[int, set[int]] = {}
    for cell in cells:
        if cell.t == t and cell.c == c and cell.value > 0:
            by_value.setdefault(cell.value, set()).add(cell.cell)
    return {v: frozenset(s) for v, s in by_value.items()}


def write_mask(
    frame: Any,
    cells: Iterable[Cell],
    mask: Any,
    cell: int,
    mode: str = "overlap",
    *,
    t: int = 0,
    c: int = 0,
) -> tuple[np.ndarray, list[Cell]]:
    """Write ``cell`` under ``mask`` into ``frame`` with write mode ``mode``; return ``(new_frame, new_cells)``.

    Args:
        frame: ``(height, width)`` integer labels of frame ``t`` of feature ``c``; not modified.
        cells: cells of the project or of this frame; only entries with this ``t`` and ``c`` are used.
        mask: ``(height, width)`` booleans (non-zero is true): the pixels to write.
        cell: the cell written, a positive integer.
        mode: ``"overwrite"``, ``"exclude"`` or ``"overlap"`` (see the module documentation).
        t: the frame of ``frame``.
        c: the feature of ``frame``.

    Returns:
        The new ``(height, width)`` int32 frame and the new cells (see the module documentation).

    Raises:
        InvalidOptionError: unknown mode, non-positive cell, or arrays of the wrong shape or dtype.
        UnsupportedFeatureError: a new value is needed and none is left below 2**31.
    """
    if mode not in WRITE_MODES:
        raise InvalidOptionError(f"write mode {mode!r} is not one of {', '.join(WRITE_MODES)}")
    target = frozenset((_positive(cell),))
    changes: dict[str, Callable[[frozenset[int]], frozenset[int]]] = {
        "overwrite": lambda old: target,
        "exclude": lambda old: old if old else target,
        "overlap": lambda old: old | target,
    }
    return _rewrite(frame, cells, mask, changes[mode], t=t, c=c)


def erase_mask(
    frame: Any, cells: Iterable[Cell], mask: Any, cell: int, *, t: int = 0, c: int = 0
) -> tuple[np.ndarray, list[Cell]]:
    """Remove ``cell`` from the pixels under ``mask``; other cells of those pixels stay.

    Same arguments, cleaning and value rules as :func:`write_mask`.
    """
    gone = frozenset((_positive(cell),))
    return _rewrite(frame, cells, mask, lambda old: old - gone, t=t, c=c)


def _positive(cell: Any) -> int:
    import numbers

    if isinstance(cell, bool) or not isinstance(cell, numbers.Integral) or not 0 < int(cell) <= INT32_MAX:
        raise InvalidOptionError(f"cell must be a positive integer below 2**31, found {cell!r}")
    return int(cell)


def _rewrite(
    frame: Any,
    cells: Iterable[Cell],
    mask: Any,
    change: Callable[[frozenset[int]], frozenset[int]],
    *,
    t: int,
    c: int,
) -> tuple[np.ndarray, list[Cell]]:
    import numpy as np

    frame = np.asarray(frame)
    mask = np.asarray(mask)
    if frame.ndim != 2:
        raise InvalidOptionError(f"frame must be (height, width), found shape {frame.shape}")
    if frame.dtype.kind not in "iu":
        raise InvalidOptionError(f"frame must hold integers, found dtype {frame.dtype}")
    if mask.shape != frame.shape:
        raise InvalidOptionError(f"mask has shape {mask.shape}, expected the frame's {frame.shape}")
    mask = mask.astype(bool, copy=False)
    cells = list(cells)
    others = [cl for cl in cells if not (cl.t == t and cl.c == c)]
    encoded = cell_sets(cells, t=t, c=c)

    # Cleaning: values no cell lists (negatives included) become 0.  Values above
    # int32 cannot be listed, so comparing in int64 is safe for any integer frame.
    out = frame.astype(np.int64)
    listed = np.fromiter(sorted(encoded), dtype=np.int64, count=len(encoded))
    out[~np.isin(out, listed)] = 0
    out = out.astype(np.int32)

    value_of: dict[frozenset[int], int] = {}
    for value in sorted(encoded, reverse=True):  # the smallest value of a set wins
        value_of[encoded[value]] = value
    next_value = max(encoded, default=0) + 1

    old_values, inverse = np.unique(out[mask], return_inverse=True)
    new_values = np.zeros(len(old_values), np.int32)
    for i, old in enumerate(old_values.tolist()):
        new_set = change(encoded.get(old, frozenset()))
        if not new_set:
            continue
        value = value_of.get(new_set)
        if value is None:
            if next_value > INT32_MAX:
                raise UnsupportedFeatureError("no int32 label value is left for a new set of cells")
            value = value_of[new_set] = next_value
            encoded[value] = new_set
            next_value += 1
        new_values[i] = value
    out[mask] = new_values[inverse.reshape(-1)]

    present = np.unique(out).tolist()
    new_cells = [Cell(v, member, t, c) for v in present if v > 0 for member in sorted(encoded[v])]
    return out, others + new_cells


__all__ = ["WRITE_MODES", "WriteMode", "cell_sets", "erase_mask", "write_mask"]
