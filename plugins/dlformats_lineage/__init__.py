"""deepcell-tracking lineages (``lineage.json``) on their own: format ``lineage-json``.

A lineage is a JSON object keyed by label (a string of plain ASCII digits)::

    {"1": {"label": 1, "frames": [0, 1], "daughters": [2, 3], "parent": null,
           "frame_div": 2, "capped": true}, ...}

``frames`` are the 0-based frames where the label appears; ``frame_div`` (the
daughters' first frame) and ``capped`` are optional.  Older DeepCell Label files
say ``divisionFrame`` for ``frame_div``.

Reading gives a project without arrays: cells from ``frames`` (value = cell =
label, feature 0, one per frame) and divisions (see
:func:`dlformats.containers.codecs.lineage_to_divisions`).  Every rule of a valid lineage that
can be checked without the labels is checked at once: problems that leave the
divisions well defined are reported in one :class:`~dlformats.DLFormatsWarning`
(and listed in ``project.metadata["lineage_problems"]``); problems that leave a
division undefined raise :class:`~dlformats.InconsistentDataError` with every
problem in ``problems``.  Rules that need the labels (every label has an entry,
``frames`` equals where it occurs) are checked by readers that have them (``trk``).

Use it on its own, or as the companion of an image or label source:
``dlformats.read("movie.tif", labels="lineage.json")`` adds its cells and divisions.

Writing builds the lineage from the project's cells of one feature (option
``feature``, default 0; derived from the labels when the project lists no cells)
and its divisions, with Python integers only, and warns about any rule the
result breaks.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

from dlformats import (
    Cell,
    DLFormatsWarning,
    FormatSpec,
    NotMyFormat,
    Option,
    Problem,
    Project,
    ReadOptions,
    WriteOptions,
    hookimpl,
)
from dlformats.containers.codecs import divisions_to_lineage, lineage_to_divisions, report_lineage_problems
from dlformats.containers.jsonio import dump_json, load_json
from dlformats.sources import Source
from dlformats.spec import parts

FORMAT = "lineage-json"
ENTRY_FIELDS = frozenset(
    {"label", "frames", "daughters", "parent", "frame_div", "capped", "divisionFrame", "parentDivisionFrame"}
)
"""Keys of a lineage entry (deepcell-tracking's, plus DeepCell Label's older names)."""

_FIRST_KEY = re.compile(rb'\{\s*"([^"\\]{0,40})"\s*:\s*(.)')
_FIRST_FIELD = re.compile(rb'\{\s*"([^"\\]{0,40})"\s*:')


def _strip(head: bytes) -> bytes:
    return head.removeprefix(b"\xef\xbb\xbf").lstrip()


def sniff(source: Source) -> bool | None:
    """True for a JSON object keyed by integers whose first value starts with a lineage field."""
    head = _strip(source.head)
    if not head.startswith(b"{"):
        return False
    if re.match(rb"\{\s*\}\s*\Z", head):
        return None  # an empty object: an empty lineage, or something else
    first = _FIRST_KEY.match(head)
    if first is None:
        return None  # cut off within the 4 KiB head
    # A key that is not a plain integer (" 1", "1_0") still makes a lineage when its value starts
    # with a lineage field: claim it, so that the reader names the bad key instead of "no reader".
    if first.group(2) != b"{":
        return False
    field = _FIRST_FIELD.match(head, first.end(2) - 1)
    if field is None:
        return None
    return field.group(1).decode("ascii", "replace") in ENTRY_FIELDS


def _looks_like_lineage(obj: dict[str, Any]) -> bool:
    return not obj or any(isinstance(v, dict) and ENTRY_FIELDS & set(v) for v in obj.values())


def read(source: Source, options: ReadOptions) -> Project:
    """Read a lineage into a project of cells and divisions (no image, no labels)."""
    if not _strip(source.head).startswith(b"{"):
        raise NotMyFormat(f"content is {source.describe()}, not a JSON object")
    obj = load_json(source.read_bytes(), path=source.name, limits=options.limits)
    if not isinstance(obj, dict) or not _looks_like_lineage(obj):
        raise NotMyFormat("a JSON document, but not an object of lineage entries")
    divisions, problems = lineage_to_divisions(obj, path=source.name, member=None)
    messages = report_lineage_problems(problems, path=source.name)
    cells: set[Cell] = set()
    for key, entry in obj.items():
        label = int(key)  # lineage_to_divisions has checked every key (plain integers) and frame
        cells.update(Cell(label, label, int(t), 0) for t in entry.get("frames", []))
    project = Project(cells=sorted(cells), divisions=divisions, frame_axis="T")
    if messages:
        project.metadata["lineage_problems"] = messages
    return project


def _build_lineage(project: Project, feature: int) -> tuple[dict[str, Any], list[Problem]]:
    """The lineage of ``project``'s cells of ``feature`` and its divisions, and the rules it breaks."""
    cells = project.cells_or_derived()
    chosen = [c for c in cells if c.c == feature]
    lineage = divisions_to_lineage(chosen, project.divisions)
    _, problems = lineage_to_divisions(lineage)
    return lineage, problems


def write(project: Project, path: Path, options: WriteOptions) -> None:
    """Write ``lineage.json`` from the project's cells (of one feature) and divisions."""
    feature = options.extra["feature"]  # a feature of the project: the core checked it (index_of)
    lineage, problems = _build_lineage(project, feature)
    if project.num_features > 1:
        warnings.warn(
            f"a lineage holds one feature; wrote feature {feature} of {project.num_features}",
            DLFormatsWarning,
            stacklevel=2,
        )
    if problems:
        shown = "; ".join(p.message for p in problems[:10])
        warnings.warn(f"the lineage written breaks {len(problems)} rule(s): {shown}", DLFormatsWarning, stacklevel=2)
    path.write_bytes(dump_json(lineage))


@hookimpl
def dlformats_formats() -> list[FormatSpec]:
    """Declare ``lineage-json``."""
    return [
        FormatSpec(
            name=FORMAT,
            description="deepcell-tracking lineage.json: cells and divisions, every lineage rule checked",
            extensions=(".json",),
            sniff=sniff,
            reads=parts("cells", "divisions"),
            writes=parts("cells", "divisions"),
            read=read,
            write=write,
            write_options=(
                Option("feature", int, 0, index_of="features", help="the label feature whose cells to write"),
            ),
        )
    ]
