"""Example dlformats plugin: the ``.dlex`` text format, a label image of one feature and its cells.

This module is the whole plugin.  dlformats finds it through the entry point
``example = "dlformats_example"`` in the group ``dlformats.plugins`` (see
``pyproject.toml``) and calls :func:`dlformats_formats` once to learn what it
provides.  The format itself is described in ``README.md``::

    DLEX 1
    size F H W           frames, height, width
    frame t              H lines of W label values (t = 0 .. F-1)
    cells N              N lines "value cell t"

Options: the reader takes ``frame`` (read one frame only) and the writer ``feature``
(which label feature to write).  They are declared in the :class:`FormatSpec`, so the
core refuses unknown names and bad values before the reader or writer runs, shows them
in ``dlformats formats dlex``, and hands them over converted (``--option frame=1`` gives
the integer 1 in ``options.extra["frame"]``).

Only light modules are imported here: numpy is imported inside the reader and
the writer, so that ``dlformats formats`` stays fast however many plugins exist.
"""

from __future__ import annotations

import re
from pathlib import Path

# Everything a plugin needs is importable from dlformats itself (its __all__); shared
# container readers and writers (zip, JSON, TIFF, npy) are in dlformats.containers.
from dlformats import (
    Cell,
    CorruptFileError,
    FormatSpec,
    InvalidOptionError,
    NotMyFormat,
    Option,
    Project,
    ReadOptions,
    Source,
    UnsupportedFeatureError,
    WriteOptions,
    hookimpl,
    parts,
)

MAGIC = b"DLEX 1\n"
_INTEGER = re.compile(r"-?[0-9]+")


@hookimpl
def dlformats_formats() -> list[FormatSpec]:
    """Declare the one format this plugin provides."""
    return [
        FormatSpec(
            name="dlex",
            description="dlformats example: a label image of one feature and its cells, as text",
            extensions=(".dlex",),
            signatures=(MAGIC,),  # content check: files starting with anything else are not tried
            reads=parts("y", "cells"),
            writes=parts("y", "cells"),
            read=read_dlex,
            write=write_dlex,
            install_hint="pip install dlformats-example-plugin",
            read_options=(Option("frame", int, None, minimum=0, help="read only this frame (0-based)"),),
            write_options=(
                # index_of: the core checks 0 <= feature < the project's number of features.
                Option(
                    "feature",
                    int,
                    None,
                    index_of="features",
                    help="the label feature to write, required when the project has several",
                ),
            ),
        )
    ]


class _Lines:
    """The file's meaningful lines with their 1-based numbers, so errors can say where."""

    def __init__(self, text: str, path: str) -> None:
        self.path = path
        self.items = [
            (n, line.strip())
            for n, line in enumerate(text.splitlines(), 1)
            if line.strip() and not line.lstrip().startswith("#")
        ]
        self.pos = 0

    def next(self, what: str) -> tuple[int, list[str]]:
        if self.pos >= len(self.items):
            raise CorruptFileError(f"file ends where {what} was expected", path=self.path)
        number, line = self.items[self.pos]
        self.pos += 1
        return number, line.split()

    def ints(self, what: str, count: int, keyword: str | None = None) -> list[int]:
        """The next line as ``count`` integers, after ``keyword`` when given."""
        number, words = self.next(what)
        if keyword is not None:
            if not words or words[0] != keyword:
                found = " ".join(words)[:40]
                raise CorruptFileError(f"line {number}: expected {what!r}, found {found!r}", path=self.path)
            words = words[1:]
        if len(words) != count or not all(_INTEGER.fullmatch(w) for w in words):
            raise CorruptFileError(f"line {number}: expected {count} integers for {what}", path=self.path)
        return [int(w) for w in words]


def read_dlex(source: Source, options: ReadOptions) -> Project:
    """Read a ``.dlex`` file: ``y`` is (1, frames, height, width) int32, plus its cells.

    With option ``frame=N``, only frame ``N``: ``y`` is (1, 1, height, width), cells of that frame at t = 0.
    """
    import numpy as np

    if not source.head.startswith(MAGIC):
        # Only reached when forced with format="dlex": say "not mine", the core reports it.
        raise NotMyFormat("does not start with 'DLEX 1'")
    try:
        text = source.read_bytes().decode("ascii")
    except UnicodeDecodeError as exc:
        raise CorruptFileError(f"not ASCII text: {exc}", path=source.name) from exc
    lines = _Lines(text, source.name)
    lines.next("the magic line")
    frames, height, width = lines.ints("size F H W", 3, "size")
    if min(frames, height, width) <= 0:
        raise CorruptFileError(f"size {frames} {height} {width} must be positive", path=source.name)
    # Check the declared size before allocating: a 10-byte file may claim terabytes.
    source.limits.check("array_bytes", frames * height * width * 4, "label image too large", path=source.name)
    y = np.zeros((1, frames, height, width), np.int32)
    for t in range(frames):
        lines.ints(f"frame {t}", 1, "frame")
        for row in range(height):
            values = lines.ints(f"row {row} of frame {t}", width)
            if not all(-(2**31) <= v < 2**31 for v in values):
                raise CorruptFileError(f"frame {t} row {row}: label values must fit in int32", path=source.name)
            y[0, t, row] = values
    (count,) = lines.ints("cells N", 1, "cells")
    cells = [Cell(value, cell, t, 0) for value, cell, t in (lines.ints("value cell t", 3) for _ in range(count))]
    frame = options.extra["frame"]  # an int >= 0 or None: the core checked and converted it
    if frame is not None:
        if frame >= frames:
            raise InvalidOptionError(f"frame {frame} is not a frame of this file", hint=f"use 0..{frames - 1}")
        y = y[:, frame : frame + 1]
        cells = [Cell(c.value, c.cell, 0, 0) for c in cells if c.t == frame]
    return Project(y=y, cells=cells, frame_axis="T")


def write_dlex(project: Project, path: Path, options: WriteOptions) -> None:
    """Write one label feature of ``project.y`` and its cells to ``path`` (a temporary file the core renames).

    The feature is option ``feature`` (checked by the core to be one of the project's), or the only one.
    """
    import numpy as np

    feature = options.extra["feature"]
    if feature is None and project.num_features > 1:
        raise UnsupportedFeatureError(
            f"the dlex format holds one label feature; this project has {project.num_features}",
            hint="pick one with --write-option feature=N, or convert to a DeepCell Label project zip (.zip)",
        )
    feature = feature or 0
    frames, (height, width) = project.num_frames, project.frame_shape
    chosen = [c for c in project.cells_or_derived() if c.c == feature]
    cells = sorted(chosen, key=lambda c: (c.t, c.value, c.cell))
    with open(path, "w", encoding="ascii", newline="\n") as out:
        out.write(f"DLEX 1\nsize {frames} {height} {width}\n")
        for t in range(frames):
            out.write(f"frame {t}\n")
            np.savetxt(out, project.label_frame(feature, t), fmt="%d", delimiter=" ")
            options.report(t + 1, frames)
        out.write(f"cells {len(cells)}\n")
        out.writelines(f"{c.value} {c.cell} {c.t}\n" for c in cells)
