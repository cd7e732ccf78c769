"""The public API (``dlformats/__init__.py`` and every public module): what each exports, and nothing else.

Every module of the package whose name has no leading underscore is public: it lists its
public names in ``__all__``, and every other name it defines is underscored.  What a plugin
author needs is importable from ``dlformats`` itself, and the shared container readers and
writers from ``dlformats.containers``.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import dlformats
import dlformats.containers


def _public_modules() -> list[str]:
    names = ["dlformats"]
    for info in pkgutil.walk_packages(dlformats.__path__, "dlformats."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


PUBLIC_MODULES = _public_modules()


def _defined_names(module: object) -> list[str]:
    """Names the module's own source binds at top level (imports excluded)."""
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                names += [t.id for t in ast.walk(target) if isinstance(t, ast.Name)]  # a, b = ... too
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return [n for n in names if not n.startswith("_")]


def test_the_public_modules_are_the_documented_ones():
    assert "dlformats.containers.tiffio" in PUBLIC_MODULES and "dlformats.api" in PUBLIC_MODULES
    contributing = (Path(__file__).parents[1] / "CONTRIBUTING.md").read_text(encoding="utf-8")
    undocumented = [m for m in PUBLIC_MODULES if f"`{m}`" not in contributing]
    assert not undocumented, f"CONTRIBUTING.md's table of the public API lacks {undocumented}"


@pytest.mark.parametrize("name", [m for m in PUBLIC_MODULES if m.count(".") >= 1 and m != "dlformats.containers"])
def test_every_public_module_has_its_test_module(name):
    *package, module = name.split(".")[1:]
    path = Path(__file__).parent.joinpath(*package, f"test_{module}.py")
    assert path.is_file(), f"{name} has no {path.relative_to(Path(__file__).parents[1])}"


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_public_module_lists_what_it_exports(name):
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
    missing = [n for n in exported if not hasattr(module, n) and importlib.util.find_spec(f"{name}.{n}") is None]
    assert not missing, f"{name}.__all__ names what it lacks: {missing}"
    unlisted = [n for n in _defined_names(module) if n not in exported]
    assert not unlisted, f"{name} defines public names outside __all__ (underscore them, or export them): {unlisted}"


def test_a_plugin_author_imports_everything_from_dlformats():
    needed = {
        "hookimpl",
        "FormatSpec",
        "Option",
        "parts",
        "ReadOptions",
        "WriteOptions",
        "Source",
        "open_source",
        "LazyArray",
        "Project",
        "Cell",
        "Division",
        "Spots",
        "CellType",
        "Limits",
        "NotMyFormat",
        "CorruptFileError",
        "UnsupportedFeatureError",
        "InvalidOptionError",
        "AmbiguousInputError",
        "InconsistentDataError",
        "UnsafeArchiveError",
        "DLFormatsWarning",
        "Registry",
        "use_registry",
    }
    assert needed <= set(dlformats.__all__)
    from dlformats.sources import Source

    assert dlformats.Source is Source and dlformats.parts("X", "y") == {"X", "y"}


def test_moved_and_private_helpers_are_gone():
    for old in ("tiffio", "npyio", "buffers", "zipwriter", "writemode", "jsonio", "archive"):
        with pytest.raises(ImportError):
            importlib.import_module(f"dlformats.{old}")
    for module, name in [
        ("dlformats.arrays", "nbytes"),
        ("dlformats.containers.jsonio", "int_key"),
        ("dlformats.registry", "reset_registry"),
        ("dlformats.spec", "as_list"),
        ("dlformats.errors", "plugin_crashed"),
    ]:
        assert not hasattr(importlib.import_module(module), name), f"{module}.{name} is still public"


def test_importing_the_whole_public_api_stays_light():
    code = (
        "import sys, dlformats, dlformats.containers\n"
        "for name in dlformats.__all__: getattr(dlformats, name)\n"
        "heavy = [m for m in ('numpy', 'tifffile', 'imageio', 'zarr', 'PIL') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == ""
