"""Tracking projects like the users', shared by the tests of the ctc and geff plugins and the conversions."""

from __future__ import annotations

import itertools

import numpy as np

from dlformats import Cell, Division, Project

H, W = 12, 14


def square(y: np.ndarray, t: int, value: int, row: int, col: int, size: int = 3) -> None:
    y[0, t, row : row + size, col : col + size] = value


def tracking_project() -> Project:
    """Seven frames: cell 1 divides into 2 and 3 at frame 2; cell 2 and cell 4 vanish and come back;
    frame 4 and frame 6 are empty; pixel values differ from cell numbers in some frames."""
    frames = 7
    y = np.zeros((1, frames, H, W), np.int32)
    cells = []

    def put(t: int, value: int, cell: int, row: int, col: int) -> None:
        square(y, t, value, row, col)
        cells.append(Cell(value, cell, t, 0))

    for t in (0, 1):
        put(t, 1, 1, 1, 1)
    for t in (2, 3, 5):
        put(t, 7 if t == 3 else 2, 2, 1, 0)
    for t in (2, 3):
        put(t, 3, 3, 1, 5)
    for t in (0, 3, 5):
        put(t, 9 if t == 5 else 4, 4, 7, 9)
    rng = np.random.default_rng(1)
    X = rng.integers(1, 255, (2, frames, H, W), dtype=np.uint8)
    return Project(X=X, y=y, cells=cells, divisions=[Division(1, [2, 3], 2)], frame_axis="T")


def expected_graph(project: Project) -> tuple[set, set]:
    """The tracking graph a project means: nodes ``(t, cell)``; a cell's consecutive appearances, and a
    dividing cell's last appearance before the division to each daughter's first, are edges."""
    frames: dict[int, list[int]] = {}
    for c in project.cells_or_derived():
        frames.setdefault(c.cell, []).append(c.t)
    nodes = {(t, cell) for cell, ts in frames.items() for t in ts}
    edges = set()
    for cell, ts in frames.items():
        ts = sorted(set(ts))
        edges |= {((a, cell), (b, cell)) for a, b in itertools.pairwise(ts)}
    for d in project.divisions:
        before = [t for t in frames.get(d.parent, []) if t < d.t]
        for daughter in d.daughters:
            if before and daughter in frames:
                edges.add(((max(before), d.parent), (min(frames[daughter]), daughter)))
    return nodes, edges
