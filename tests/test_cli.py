"""The ``dlformats`` command: listing formats, describing and validating files, and how errors look.

Runs the command in a fresh interpreter, as a user would.  Files come from the example
plugin's ``.dlex`` format (installed once per session, see ``test_example_plugin``) and
from the shared DeepCell Label fixtures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_example_plugin import DLEX, _env
from test_example_plugin import site as site  # the session fixture installing the example plugin

import dlformats
from dlformats import testing
from dlformats.cli import main


def run(*args: str, site: Path | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dlformats.cli", *args], capture_output=True, text=True, env=_env(site), cwd=cwd
    )


def assert_one_line_error(done: subprocess.CompletedProcess, *needles: str) -> str:
    """A failed command: non-zero exit, one line on stderr naming what it must, no traceback."""
    assert done.returncode != 0
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("dlformats: error: ") and "Traceback" not in done.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture
def dlex(tmp_path) -> Path:
    path = tmp_path / "cells.dlex"
    path.write_bytes(DLEX)
    return path


def fixture_zip(name: str) -> Path:
    root = testing.fixtures_dir()
    if root is None:
        pytest.skip("shared fixtures not present")
    return root / "deepcell-label" / name


# ------------------------------------------------------------------ formats
def test_formats_table_lists_builtins_and_third_party(site):
    done = run("formats", site=site)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:4] == ["format", "r/w", "plugin", "distribution"]
    rows = {line.split()[0]: line.split() for line in lines[1:] if not line.startswith(("FAILED", "blocked"))}
    assert rows["dcl-project-zip"][1] == "rw" and "dlformats" in rows["dcl-project-zip"]
    assert rows["dlex"][1:5] == ["rw", "example", "dlformats-example-plugin", "0.1.0"]
    assert rows["dlex"][-1] == ".dlex"


def test_formats_json(site):
    done = run("formats", "--json", site=site)
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert set(listing) == {"formats", "failed_plugins", "blocked_plugins"}
    names = [f["name"] for f in listing["formats"]]
    assert names == sorted(names) and "dcl-project-zip" in names and "dlex" in names
    for f in listing["formats"]:
        assert {"name", "plugin", "distribution", "version", "extensions", "reads", "writes"} <= set(f)
        assert f["version"], f
    builtin = next(f for f in listing["formats"] if f["name"] == "dcl-project-zip")
    assert builtin["distribution"] == "dlformats" and builtin["builtin"] is True and ".zip" in builtin["extensions"]
    assert listing["failed_plugins"] == [] and listing["blocked_plugins"] == []


# ------------------------------------------------------------------ info
def test_info_json_on_a_real_project_zip():
    path = fixture_zip("oneDivision.zip")
    done = run("info", str(path), "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["format"] == "dcl-project-zip" and info["plugin"] == "dcl-project-zip"
    assert info["X"] == {"shape": [1, 2, 52, 29], "dtype": "uint8"}
    assert info["y"] == {"shape": [1, 2, 52, 29], "dtype": "int32"}
    assert (info["frames"], info["cells"], info["divisions"], info["spots"]) == (2, 5, 1, 0)
    assert info["channels"] == []  # this file names no channel


def test_info_text(site, dlex):
    done = run("info", str(dlex), site=site)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "format:     dlex (plugin example)" in out
    assert "X:          none" in out and "y:          (1, 2, 3, 4) int32" in out
    assert "cells:      4 entries, 4 distinct cells" in out and "frames:     2 (T)" in out


def test_info_json_on_a_plugin_format(site, dlex):
    done = run("info", str(dlex), "--json", site=site)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert (info["format"], info["plugin"], info["X"], info["cells"]) == ("dlex", "example", None, 4)
    assert info["provenance"]["y"]["version"] == "0.1.0"


def test_warnings_go_to_stderr_as_one_line(site, tmp_path):
    path = tmp_path / "dup.dlex"
    path.write_bytes(DLEX.replace(b"cells 4\n", b"cells 5\n1 1 0\n"))  # cell 1 listed twice
    done = run("info", str(path), site=site)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("dlformats: warning: ") and "more than once" in done.stderr
    assert "Traceback" not in done.stderr and "warnings.warn" not in done.stderr


# ------------------------------------------------------------------ validate
def test_validate_clean_file_exits_0(site, dlex):
    done = run("validate", str(dlex), site=site)
    assert (done.returncode, done.stdout.strip()) == (0, f"{dlex}: no problems found")


def test_validate_reports_every_problem_and_exits_1(site, tmp_path):
    path = tmp_path / "odd.dlex"
    # value 9 is listed but absent from frame 0; value 5 of frame 1 is used by no cell.
    path.write_bytes(DLEX.replace(b"cells 4\n", b"cells 4\n9 9 0\n").replace(b"5 5 1\n", b""))
    done = run("validate", str(path), site=site)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines)
    assert any("[9]" in line and "absent" in line for line in lines), lines
    assert any("[5]" in line and "used by no cell" in line for line in lines), lines


def test_validate_unusable_file_is_an_error(site, tmp_path):
    path = tmp_path / "bad.dlex"
    path.write_bytes(DLEX.replace(b"5 5 1\n", b"5 5 7\n"))  # frame 7 of 2
    assert_one_line_error(run("validate", str(path), site=site), str(path), "frame 7")


# ------------------------------------------------------------------ errors
def test_missing_file(tmp_path):
    done = run("info", str(tmp_path / "nope.zip"))
    assert done.returncode == 2
    assert assert_one_line_error(done) == f"dlformats: error: {tmp_path / 'nope.zip'}: no such file or folder"


def test_debug_shows_the_traceback(tmp_path):
    done = run("--debug", "info", str(tmp_path / "nope.zip"))
    assert done.returncode == 2
    assert "Traceback (most recent call last)" in done.stderr and "SourceNotFoundError" in done.stderr
    assert done.stderr.splitlines()[-1] == f"dlformats: error: {tmp_path / 'nope.zip'}: no such file or folder"


def test_corrupt_file_names_file_and_line(site, tmp_path):
    path = tmp_path / "broken.dlex"
    path.write_bytes(DLEX.replace(b"0 2 2 1", b"0 2 two 1"))
    assert_one_line_error(run("info", str(path), site=site), str(path), "line 5")


def test_unrecognised_file_names_file_and_candidates(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    line = assert_one_line_error(run("info", str(path)), str(path), "detected: text", "dcl-project-zip")
    assert "candidates" in line


def test_no_writer_for_extension(site, dlex, tmp_path):
    done = run("convert", str(dlex), str(tmp_path / "out.unknown"), site=site)
    assert_one_line_error(done, "out.unknown", "--to")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cells.dlex"]  # nothing left behind


def test_usage_error_exits_2_without_traceback():
    done = run("info")
    assert done.returncode == 2 and "usage:" in done.stderr and "Traceback" not in done.stderr


# ------------------------------------------------------------------ --limit
@pytest.mark.parametrize(
    ("limit", "needle"),
    [
        ("nonsense=1", "bad limit 'nonsense=1'"),
        ("array_bytes", "bad limit 'array_bytes'"),
        ("array_bytes=1.5G", "bad limit value"),
        ("array_bytes=-1", "bad limit value"),
        ("array_bytes=", "bad limit value"),
        ("array_bytes=١٢", "bad limit value"),
    ],
)
def test_bad_limit_is_one_line_error(dlex, limit, needle):
    line = assert_one_line_error(run("info", str(dlex), "--limit", limit), needle)
    if "value" not in needle:
        assert "array_bytes" in line and "json_depth" in line  # lists the valid names


def test_limit_applies_and_names_itself(site, dlex):
    line = assert_one_line_error(run("info", str(dlex), "--limit", "array-bytes=10", site=site), str(dlex))
    assert "array_bytes" in line and "96 > array_bytes 10" in line and "--limit array_bytes=N" in line
    done = run("info", str(dlex), "--limit", "array_bytes=1K", "--limit", "json_depth=3", site=site)
    assert done.returncode == 0, done.stderr


# ------------------------------------------------------------------ a separate labels file (in process)
def test_cli_labels_option(zt_pair, tmp_path):
    image_path, labels_path, image, labels = zt_pair
    out = tmp_path / "out.npz"
    argv = ["convert", str(image_path), str(out), "--labels", str(labels_path), "--axes", "ZTYX"]
    argv += ["--labels-axes", "ZTYX", "--select", "Z=1", "--labels-option", 'select={"z": 0}']
    assert main(argv) == 0
    back = dlformats.read(out)
    assert np.array_equal(np.asarray(back.y)[0], labels[0]) and np.array_equal(np.asarray(back.X)[0], image[1])


def test_convert_and_cli_honour_the_labels_format(zt_pair, tmp_path, capsys):
    image_path, labels_path, _, _ = zt_pair
    kw = {"axes": "ZTYX", "labels_axes": "ZTYX", "options": {"select": {"Z": 0}}}
    with pytest.raises(dlformats.DLFormatsError) as info:
        dlformats.convert(image_path, tmp_path / "o.npz", labels=labels_path, labels_format="tiff", **kw)
    assert info.value.path == str(labels_path) and "tiff" in str(info.value)
    assert dlformats.convert(image_path, tmp_path / "o.npz", labels=labels_path, labels_format="npy", **kw)
    argv = ["convert", str(image_path), str(tmp_path / "c.npz"), "--labels", str(labels_path), "--labels-from", "tiff"]
    assert main([*argv, "--axes", "ZTYX", "--labels-axes", "ZTYX", "--select", "Z=0"]) == 2
    assert "tiff" in capsys.readouterr().err
