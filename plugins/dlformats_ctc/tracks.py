"""Planning CTC tracks from a project's cells and divisions (pure Python, no arrays).

A cell becomes one track per run of consecutive frames (a piece); a piece after a gap is the child of the
piece before it. A division links each daughter's first piece to the parent's last piece before the
division. CTC requires a parent to end before its children begin; a division breaking that is a
*conflict*, refused or detached (see :func:`plan_tracks`).
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field

from dlformats import Division

from . import MAX_LABEL


@dataclass(eq=False)
class Piece:
    """One track: ``cell``'s frames ``start..end``; ``parent`` the piece it continues or divides from."""

    cell: int
    start: int
    end: int
    parent: Piece | None = None
    cut: bool = False  # the parent's frames from a division on, detached: no link to its earlier pieces
    label: int = 0


@dataclass
class Plan:
    """The tracks to write, how to find the track of a cell in a frame, and what was changed or refused."""

    pieces: list[Piece]
    by_cell: dict[int, list[Piece]]
    conflicts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def label(self, cell: int, t: int) -> int:
        """The track label of ``cell`` in frame ``t`` (the cell must appear there)."""
        pieces = self.by_cell[cell]
        i = bisect_right([p.start for p in pieces], t) - 1
        return pieces[i].label

    def lines(self) -> list[tuple[int, int, int, int]]:
        """``(L, B, E, P)`` of every track, by label."""
        return sorted((p.label, p.start, p.end, p.parent.label if p.parent else 0) for p in self.pieces)


def _runs(frames: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for t in frames:
        if runs and t == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], t)
        else:
            runs.append((t, t))
    return runs


def plan_tracks(frames_of: dict[int, Iterable[int]], divisions: list[Division], *, detach: bool) -> Plan:
    """Plan the tracks of cells appearing in ``frames_of`` (cell -> frames) with their ``divisions``.

    With ``detach=False`` every division CTC cannot express is listed in :attr:`Plan.conflicts` (the
    caller refuses); with ``detach=True`` the offending piece becomes a track of its own and the change
    is listed in :attr:`Plan.notes`. Labels: each cell's first piece keeps the cell number when every
    label then fits in uint16, else pieces are numbered from 1 in order of first frame.
    """
    by_cell = {cell: [Piece(cell, a, b) for a, b in _runs(sorted(set(ts)))] for cell, ts in frames_of.items()}
    plan = Plan([], by_cell)
    linked: dict[int, Division] = {}

    def conflict(text: str, fix: str) -> None:
        if detach:
            plan.notes.append(f"{text}; {fix}")
        else:
            plan.conflicts.append(text)

    for d in sorted(divisions, key=lambda d: (d.t, d.parent)):
        what = f"the division of cell {d.parent} into {list(d.daughters)} at frame {d.t}"
        daughters = [c for c in dict.fromkeys(d.daughters) if c in by_cell and c != d.parent]
        pieces = by_cell.get(d.parent)
        if not daughters:
            continue
        if not pieces:
            plan.notes.append(f"{what}: cell {d.parent} has no labels, so its daughters have no parent track")
            continue
        late = [p for p in pieces if p.end >= d.t]
        if late:
            first_late = max(d.t, late[0].start)
            conflict(
                f"cell {d.parent} is still labelled in frame {first_late}, at or after {what} "
                "(in CTC a parent ends before its daughters begin)",
                f"its frames from {first_late} on were written as a track of their own",
            )
            if not detach:
                continue
            straddle = late[0]
            if straddle.start < d.t:
                rest = Piece(d.parent, d.t, straddle.end)
                straddle.end = d.t - 1
                pieces.insert(pieces.index(straddle) + 1, rest)
                late = [rest, *late[1:]]
            late[0].cut = True
        before = [p for p in pieces if p.end < d.t]
        if not before:
            conflict(
                f"cell {d.parent} appears only from frame {pieces[0].start} on, not before {what}",
                "its daughters were written without a parent",
            )
            continue
        parent = before[-1]
        for daughter in daughters:
            first = by_cell[daughter][0]
            if daughter in linked:
                other = linked[daughter]
                conflict(
                    f"cell {daughter} is a daughter of cell {other.parent} (frame {other.t}) and again in {what}",
                    "the second parent link was dropped",
                )
            elif first.start <= parent.end:
                conflict(
                    f"daughter {daughter} appears in frame {first.start}, not after the last frame {parent.end} "
                    f"of its parent cell {d.parent} before {what}",
                    "it was written without a parent",
                )
            else:
                first.parent = parent
                linked[daughter] = d
        if len(daughters) == 1:
            plan.notes.append(f"{what} has one daughter: CTC keeps the link, and reads it back as one cell continuing")
    for pieces in by_cell.values():
        for before, piece in itertools.pairwise(pieces):
            if piece.parent is None and not piece.cut:
                piece.parent = before
    for pieces in by_cell.values():
        plan.pieces.extend(pieces)
    _label(plan)
    return plan


def _label(plan: Plan) -> None:
    firsts = [pieces[0] for pieces in plan.by_cell.values() if pieces]
    later = sorted((p for pieces in plan.by_cell.values() for p in pieces[1:]), key=lambda p: (p.start, p.cell))
    top = max((p.cell for p in firsts), default=0)
    if top + len(later) <= MAX_LABEL and all(p.cell > 0 for p in firsts):
        for p in firsts:
            p.label = p.cell
        for i, p in enumerate(later, top + 1):
            p.label = i
        return
    for i, p in enumerate(sorted(plan.pieces, key=lambda p: (p.start, p.cell)), 1):
        p.label = i
