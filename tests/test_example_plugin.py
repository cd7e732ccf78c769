"""The example third-party plugin, installed as a user would, found through its entry point alone.

One ``pip install --target`` per session (of a copy, so that the build leaves nothing in
the repository); every check then runs in a fresh interpreter whose ``PYTHONPATH`` holds
that target, and uses only the public API and the ``dlformats`` command.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "dlformats-example-plugin"
DIST = "dlformats-example-plugin"

DLEX = (
    b"DLEX 1\nsize 2 3 4\n"
    b"frame 0\n0 0 1 1\n0 2 2 1\n0 0 0 0\n"
    b"frame 1\n0 0 0 0\n0 5 5 0\n0 0 0 0\n"
    b"cells 4\n1 1 0\n2 2 0\n2 7 0\n5 5 1\n"
)


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """A folder the example plugin is installed into (with its dist-info and entry point)."""
    work = tmp_path_factory.mktemp("example-plugin")
    source = work / "src"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = work / "site"
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(source)]
    # Offline first, with the environment's setuptools; it needs the 'wheel' package before
    # setuptools 70.1, which a fresh virtual environment lacks: then let pip fetch the backend.
    done = subprocess.run([*cmd, "--no-build-isolation"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert list(target.glob("dlformats_example_plugin-*.dist-info")), sorted(p.name for p in target.iterdir())
    return target


def _env(site: Path | None, disable: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DLFORMATS_DISABLE_PLUGINS", "PYTHONPATH")}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    if disable is not None:
        env["DLFORMATS_DISABLE_PLUGINS"] = disable
    return env


def _cli(
    site: Path | None, *args: str, disable: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dlformats.cli", *args],
        capture_output=True,
        text=True,
        env=_env(site, disable),
        cwd=cwd,
        check=False,
    )


def _python(site: Path | None, code: str, *, disable: str | None = None, cwd: Path | None = None) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=_env(site, disable),
        cwd=cwd,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _formats(site: Path | None, disable: str | None = None) -> dict:
    done = _cli(site, "formats", "--json", disable=disable)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_listed_with_its_distribution_and_version(site):
    listing = _formats(site)
    dlex = [f for f in listing["formats"] if f["name"] == "dlex"]
    assert dlex, listing
    assert dlex[0]["plugin"] == "example"
    assert dlex[0]["distribution"] == DIST
    assert dlex[0]["version"] == "0.1.0"
    assert dlex[0]["builtin"] is False
    assert dlex[0]["extensions"] == [".dlex"] and dlex[0]["reads"] and dlex[0]["writes"]
    # The human-readable listing names it too.
    text = _cli(site, "formats").stdout
    assert any(line.startswith("dlex") and DIST in line for line in text.splitlines()), text


def test_not_there_without_the_install(site):
    # Found through the installed entry point, not because the module lies around in the repository.
    assert "dlex" not in {f["name"] for f in _formats(None)["formats"]}


def test_chosen_for_its_extension_by_read(site, tmp_path):
    (tmp_path / "cells.dlex").write_bytes(DLEX)
    (tmp_path / "not-really.dlex").write_bytes(b"just some text\n")
    out = _python(
        site,
        """
        import json, dlformats
        p = dlformats.read("cells.dlex")
        try:
            dlformats.read("not-really.dlex")
            refused = None
        except dlformats.NoReaderError as exc:
            refused = {c.format: c.reason for c in exc.candidates}
        print(json.dumps({
            "format": p.metadata["format"], "plugin": p.metadata["plugin"],
            "provenance": vars(p.provenance["y"]), "shape": list(p.y.shape), "cells": len(p.cells),
            "row": p.y[0, 1, 1].tolist(), "refused": refused,
        }))
        """,
        cwd=tmp_path,
    )
    assert (out["format"], out["plugin"]) == ("dlex", "example")
    assert out["provenance"] == {"format": "dlex", "plugin": "example", "version": "0.1.0", "source": "cells.dlex"}
    assert out["shape"] == [1, 2, 3, 4] and out["cells"] == 4 and out["row"] == [0, 5, 5, 0]
    # The extension alone does not make the plugin read a file whose content is not its own.
    assert "dlex" in out["refused"] and "not this format" in out["refused"]["dlex"]


@pytest.mark.parametrize("disable", ["example", DIST, "numpy, example"])
def test_blocked_by_environment(site, tmp_path, disable):
    listing = _formats(site, disable=disable)
    assert "dlex" not in {f["name"] for f in listing["formats"]}
    assert "example" in listing["blocked_plugins"]
    assert listing["formats"], "blocking one plugin must leave the others"

    (tmp_path / "cells.dlex").write_bytes(DLEX)
    out = _python(
        site,
        """
        import json, dlformats
        try:
            dlformats.read("cells.dlex")
            print(json.dumps({"error": None}))
        except dlformats.NoReaderError as exc:
            print(json.dumps({"error": str(exc), "path": exc.path, "detected": exc.detected,
                              "candidates": [c.format for c in exc.candidates]}))
        """,
        disable=disable,
        cwd=tmp_path,
    )
    assert out["error"] is not None, "a blocked plugin still read the file"
    assert out["path"] == "cells.dlex" and out["detected"] == "text"
    assert out["candidates"] and "dlex" not in out["candidates"]
    assert all(name in out["error"] for name in out["candidates"])

    done = _cli(site, "info", "cells.dlex", disable=disable, cwd=tmp_path)
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and "cells.dlex" in done.stderr and "Traceback" not in done.stderr


def test_convert_both_ways(site, tmp_path):
    # A project zip with an image of the same frames and size as the labels to swap in.
    _python(
        site,
        """
        import dlformats
        from dlformats import testing
        dlformats.write(testing.make_project(channels=1, frames=3, height=12, width=10, features=1), "src.zip")
        print("{}")
        """,
        cwd=tmp_path,
    )
    # project zip -> dlex
    done = _cli(site, "convert", "src.zip", "cells.dlex", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "cells.dlex").read_bytes().startswith(b"DLEX 1\nsize 3 12 10\n")
    # dlex (as the labels) -> project zip
    done = _cli(site, "convert", "src.zip", "back.zip", "--labels", "cells.dlex", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = _python(
        site,
        """
        import json, numpy as np, dlformats
        src, back = dlformats.read("src.zip"), dlformats.read("back.zip")
        merged = dlformats.read("src.zip", labels="cells.dlex")
        print(json.dumps({
            "y_equal": bool(np.array_equal(np.asarray(src.y), np.asarray(back.y))),
            "cells_equal": sorted(src.cells) == sorted(back.cells),
            "y_from": merged.provenance["y"].format, "cells_from": merged.provenance["cells"].format,
            "X_from": merged.provenance["X"].format,
        }))
        """,
        cwd=tmp_path,
    )
    assert out == {
        "y_equal": True,
        "cells_equal": True,
        "y_from": "dlex",
        "cells_from": "dlex",
        "X_from": "dcl-project-zip",
    }
    # --to names the format when the extension does not.
    done = _cli(site, "convert", "cells.dlex", "copy.txt", "--to", "dlex", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "copy.txt").read_bytes() == (tmp_path / "cells.dlex").read_bytes()


def test_third_party_wins_a_tie_with_a_builtin(site, tmp_path):
    (tmp_path / "cells.dlex").write_bytes(DLEX)
    out = _python(
        site,
        """
        import json, types, dlformats
        from dlformats import FormatSpec, hookimpl, Project, NotMyFormat
        from dlformats.sources import open_source

        def make(priority):
            def read(source, options):
                raise NotMyFormat("a stand-in built-in")
            plugin = types.SimpleNamespace(dlformats_formats=hookimpl(lambda: [FormatSpec(
                name=f"aaa-builtin-{priority}", description="stand-in", extensions=(".dlex",),
                signatures=(b"DLEX 1\\n",), read=read, priority=priority, reads=frozenset({"y"}))]))
            return plugin

        registry = dlformats.get_registry()
        registry.register(make(0), "aaa-tie", distribution="dlformats")
        registry.register(make(1), "aaa-higher", distribution="dlformats")
        order = [f.name for f in registry.reader_candidates(open_source("cells.dlex"))[0]]
        print(json.dumps({"order": order, "read_by": dlformats.read("cells.dlex").metadata["format"]}))
        """,
        cwd=tmp_path,
    )
    # Equal content, extension and priority: the third-party plugin comes before the built-in,
    # although the built-in's name sorts first; a higher priority still beats both.
    assert out["order"] == ["aaa-builtin-1", "dlex", "aaa-builtin-0"]
    assert out["read_by"] == "dlex"  # the higher-priority stand-in declined; dlex was next


def test_the_plugins_own_conformance_suite_passes(site):
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        capture_output=True,
        text=True,
        env=_env(site),
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout


def test_options_listed_checked_and_given_typed(site, tmp_path):
    described = json.loads(_cli(site, "formats", "dlex", "--json").stdout)
    assert described["distribution"] == DIST and described["plugin"] == "example"
    assert [(o["name"], o["type"], o["minimum"]) for o in described["read_options"]] == [("frame", "int", 0)]
    assert [(o["name"], o["index_of"]) for o in described["write_options"]] == [("feature", "features")]
    text = _cli(site, "formats", "dlex").stdout
    assert "  frame (int >= 0, default none): read only this frame (0-based)" in text

    (tmp_path / "cells.dlex").write_bytes(DLEX)
    done = _cli(site, "info", "cells.dlex", "--option", "frame=1", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["y"]["shape"] == [1, 1, 3, 4]
    for args, needle in [
        (["info", "cells.dlex", "--option", "foo=1"], "unknown read option 'foo' for format 'dlex'"),
        (["info", "cells.dlex", "--option", "frame=last"], "read option frame='last' of format 'dlex' must be"),
        (["convert", "cells.dlex", "out.dlex", "--write-option", "feature=1"], "the project has 1 features"),
        (["convert", "cells.dlex", "out.dlex", "--write-option", "foo=y"], "valid write options: feature (int"),
    ]:
        done = _cli(site, *args, cwd=tmp_path)
        assert done.returncode == 2 and needle in done.stderr, (args, done.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cells.dlex"]
