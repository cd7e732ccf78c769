"""A conformance kit for format plugins, built-in and third-party.

Import it from your plugin's tests::

    from dlformats import testing

    def test_conformance(tmp_path):
        testing.check_declared("myformat")
        testing.check_roundtrip("myformat", testing.make_project(), tmp_path / "out.myf")

Every check raises ``AssertionError`` with a message saying what is wrong.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .model import PARTS, Cell, Division, Project, Spots

if TYPE_CHECKING:
    from .spec import FormatSpec

HEAVY_MODULES = ("numpy", "tifffile", "imageio", "zarr", "PIL", "imagecodecs")


def make_project(
    *,
    channels: int = 2,
    frames: int = 3,
    height: int = 12,
    width: int = 10,
    features: int = 1,
    dtype: str = "uint8",
    seed: int = 0,
    overlap: bool = False,
) -> Project:
    """A small, realistic project: noisy image, square cells, one division, a few spots.

    ``X`` is (channels, frames, height, width) of ``dtype``; ``y`` is
    (features, frames, height, width) int32 with cells 1 and 2 in frame 0 and cell 1
    dividing into 3 and 4 at frame 1.  With ``overlap=True`` cells 2 and 5 share value 9
    in frame 0 of feature 0.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    if info is not None:
        X = rng.integers(info.min, info.max, (channels, frames, height, width), endpoint=True, dtype=dtype)
    else:
        X = rng.normal(100, 20, (channels, frames, height, width)).astype(dtype)
    y = np.zeros((features, frames, height, width), np.int32)
    cells: list[Cell] = []
    for c in range(features):
        for t in range(frames):
            if t == 0:
                y[c, t, 1:4, 1:4] = 1
                cells.append(Cell(1, 1, t, c))
            else:
                y[c, t, 1:4, 1:3] = 3
                y[c, t, 1:4, 3:5] = 4
                cells += [Cell(3, 3, t, c), Cell(4, 4, t, c)]
            y[c, t, 6:9, 5:8] = 2
            cells.append(Cell(2, 2, t, c))
    if overlap:
        y[0, 0, 6:9, 5:8] = 9
        cells = [cl for cl in cells if not (cl.c == 0 and cl.t == 0 and cl.value == 2)]
        cells += [Cell(9, 2, 0, 0), Cell(9, 5, 0, 0)]
    divisions = [Division(1, [3, 4], 1)] if frames > 1 else []
    spots = Spots([1.5, 7.25, 2.0], [2.5, 6.75, 8.0], {"cellID": [1, 2, None]})
    return Project(
        X=X,
        y=y,
        cells=cells,
        divisions=divisions,
        spots=spots,
        channels=[f"channel {i}" for i in range(channels)],
        frame_axis="T",
    )


def assert_arrays_equal(a: Any, b: Any, what: str) -> None:
    """Assert two (possibly lazy) arrays have equal shape, dtype and values."""
    import numpy as np

    assert (a is None) == (b is None), f"{what}: one is None ({a!r} vs {b!r})"
    if a is None:
        return
    assert tuple(a.shape) == tuple(b.shape), f"{what}: shape {tuple(a.shape)} != {tuple(b.shape)}"
    assert np.dtype(a.dtype) == np.dtype(b.dtype), f"{what}: dtype {a.dtype} != {b.dtype}"
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=what)


def assert_projects_equal(a: Project, b: Project, parts: tuple[str, ...] = PARTS) -> None:
    """Assert two projects hold the same ``parts`` (arrays by value; cells as sets)."""
    for part in parts:
        va, vb = getattr(a, part), getattr(b, part)
        if part in ("X", "y"):
            assert_arrays_equal(va, vb, part)
        elif part == "cells":
            assert va is not None and vb is not None, f"cells: {va!r} vs {vb!r}"
            assert sorted(set(va)) == sorted(set(vb)), f"cells differ: {sorted(set(va))[:10]} vs {sorted(set(vb))[:10]}"
        elif part == "divisions":
            key = lambda d: (d.t, d.parent, sorted(d.daughters))  # noqa: E731
            assert sorted(map(key, va)) == sorted(map(key, vb)), f"divisions differ: {va} vs {vb}"
        else:
            assert va == vb, f"{part} differs: {va!r} vs {vb!r}"


def check_declared(name: str) -> Any:
    """Assert format ``name`` is registered through an entry point, with a sound declaration; return it.

    Sound: :meth:`dlformats.FormatSpec.problems` finds nothing (the core would not have
    registered it otherwise, and says why in ``dlformats formats``), and it has a description.
    """
    from .registry import get_registry

    registry = get_registry()
    names = [f.name for f in registry.formats()]
    assert name in names, f"format {name!r} not registered; have {names}; failed plugins: {registry.failed_plugins()}"
    fmt = registry.get(name)
    problems = fmt.spec.problems()
    assert not problems, f"{name}: {problems}"
    return fmt


def plugin_of(*specs: FormatSpec) -> Any:
    """A plugin object declaring ``specs``, for :meth:`dlformats.registry.Registry.register` in tests and notebooks::

    registry = Registry(load=False)
    registry.register(testing.plugin_of(FormatSpec(name="mine", ...)), "mine")
    with dlformats.use_registry(registry):
        dlformats.read("cells.mine")
    """
    import types

    from .hookspecs import hookimpl

    return types.SimpleNamespace(dlformats_formats=hookimpl(lambda: list(specs)))


def check_sniff(name: str, source: Any, *, file_name: str | None = None) -> None:
    """Assert that format ``name`` is the first reader chosen for ``source`` (by content and name)."""
    from .registry import get_registry
    from .sources import open_source

    src = open_source(source, name=file_name)
    try:
        order, notes = get_registry().reader_candidates(src)
    finally:
        src.close()
    chosen = order[0].name if order else None
    assert chosen == name, f"expected {name!r} first for {src.name}, got {[f.name for f in order]}; notes: {notes}"


def check_read(name: str, source: Any, **kwargs: Any) -> Project:
    """Read ``source`` (detected, not forced) and assert format ``name`` read it, with provenance and no errors."""
    from .api import read

    project = read(source, **kwargs)
    assert project.metadata.get("format") == name, f"read by {project.metadata.get('format')!r}, not {name!r}"
    for part, prov in project.provenance.items():
        assert prov.format, f"provenance of {part} has no format"
    if project.X is not None or project.y is not None:
        assert "X" in project.provenance or "y" in project.provenance, "no provenance for X or y"
    else:  # a project of parts only (a lineage, a spots table)
        assert project.provenance, "no provenance for any part"
    errors = [p for p in project.validate() if p.severity == "error"]
    assert not errors, f"read project has errors: {errors}"
    return project


def check_roundtrip(
    name: str,
    project: Project,
    path: str | os.PathLike[str],
    *,
    parts: tuple[str, ...] | None = None,
    **read_kwargs: Any,
) -> Project:
    """Write ``project`` with format ``name`` to ``path``, read it back, assert the ``parts`` it writes are equal."""
    from .api import read, write
    from .registry import get_registry

    fmt = get_registry().get(name)
    write(project, path, format=name)
    back = read(path, format=name, **read_kwargs)
    keep = parts if parts is not None else tuple(p for p in PARTS if p in fmt.spec.writes and p in fmt.spec.reads)
    assert_projects_equal(project, back, keep)
    for part in keep:
        value = getattr(back, part)
        # ``in (None, [], {})`` would compare numpy arrays element-wise.
        if value is not None and (part in ("X", "y") or len(value) > 0):
            assert part in back.provenance, f"no provenance recorded for {part}"
            assert back.provenance[part].format == name
    return back


def check_import_light(module: str) -> None:
    """Assert that importing ``module`` in a fresh interpreter imports none of the heavy libraries."""
    code = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        f"print(','.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, f"importing {module} failed: {out.stderr.strip()[-500:]}"
    heavy = out.stdout.strip()
    assert not heavy, f"importing {module} pulled in heavy modules: {heavy}"


def fixtures_dir() -> Path | None:
    """``../shared/fixtures`` beside the repository, or ``DLFORMATS_FIXTURES``, if present."""
    env = os.environ.get("DLFORMATS_FIXTURES")
    if env:
        return Path(env) if Path(env).is_dir() else None
    here = Path(__file__).resolve().parent.parent
    for candidate in (here.parent / "shared" / "fixtures", Path.cwd().parent / "shared" / "fixtures"):
        if candidate.is_dir():
            return candidate
    return None


__all__ = [
    "HEAVY_MODULES",
    "assert_arrays_equal",
    "assert_projects_equal",
    "check_declared",
    "check_import_light",
    "check_read",
    "check_roundtrip",
    "check_sniff",
    "fixtures_dir",
    "make_project",
    "plugin_of",
]
