"""Format options: declared per format, checked by the core before a reader or writer runs, given typed.

An unknown option or a bad value is an ``InvalidOptionError`` listing the format's valid
options, from the API and from the command line; the core's own inputs (the role of a
source, ``select``, ``axes``) are fields of ``ReadOptions``, never entries of ``extra``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import types

import numpy as np
import pytest
import tifffile

import dlformats
from dlformats import FormatSpec, InvalidOptionError, Option, Project, hookimpl
from dlformats.cli import main
from dlformats.registry import Registry, use_registry
from dlformats.spec import ReadOptions, parts

# ------------------------------------------------------------------ declarations and values


# ------------------------------------------------------------------ a hand-built format receives typed options
class _Recording:
    """A format whose reader and writer record the options they are given."""

    def __init__(self) -> None:
        self.read_with: list[ReadOptions] = []
        self.written_with: list[dict] = []

    @hookimpl
    def dlformats_formats(self):
        def read(source, options):
            self.read_with.append(options)
            return Project(y=np.zeros((1, 2, 3, 3), np.int32), cells=[])

        def write(project, path, options):
            self.written_with.append(dict(options.extra))
            path.write_bytes(b"rec")

        return [
            FormatSpec(
                name="rec",
                description="records its options",
                extensions=(".rec",),
                read=read,
                reads=parts("y", "cells"),
                write=write,
                writes=parts("y"),
                read_options=(
                    Option("level", int, 1, minimum=0, help="a number"),
                    Option("trim", bool, True, help="a switch"),
                ),
                write_options=(
                    Option("codec", str, "zlib", choices=("none", "zlib"), help="a choice"),
                    Option("feature", int, 0, index_of="features", help="an index"),
                ),
            )
        ]


@pytest.fixture
def recording(tmp_path):
    rec = _Recording()
    registry = Registry(load=False, disabled=set())
    registry.register(rec, "recording", distribution="rec-dist")
    with use_registry(registry):
        (tmp_path / "in.rec").write_bytes(b"rec")
        yield rec


def test_reader_gets_every_declared_option_typed_with_defaults(recording, tmp_path):
    dlformats.read(tmp_path / "in.rec")
    assert recording.read_with[-1].extra == {"level": 1, "trim": True}
    assert recording.read_with[-1].role == "image" and recording.read_with[-1].select == {}
    assert (
        main(["info", str(tmp_path / "in.rec"), "--option", "level=4", "--option", "trim=no", "--select", "z=0"]) == 0
    )
    opts = recording.read_with[-1]
    assert opts.extra == {"level": 4, "trim": False} and opts.select == {"Z": 0}
    dlformats.read(tmp_path / "in.rec", labels=tmp_path / "in.rec")
    assert [o.role for o in recording.read_with[-2:]] == ["image", "labels"]


def test_writer_gets_every_declared_option_typed_with_defaults(recording, tmp_path):
    dlformats.write(dlformats.read(tmp_path / "in.rec"), tmp_path / "out.rec")
    assert recording.written_with[-1] == {"codec": "zlib", "feature": 0}
    argv = ["convert", str(tmp_path / "in.rec"), str(tmp_path / "out2.rec"), "--write-option", "codec=NONE"]
    assert main(argv) == 0
    assert recording.written_with[-1] == {"codec": "none", "feature": 0}


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"foo": 1}, "unknown read option 'foo' for format 'rec'"),
        ({"role": "labels"}, "unknown read option 'role'"),
        ({"axes": "YX"}, "unknown read option 'axes'"),
        ({"level": "high"}, "read option level='high' of format 'rec' must be an integer"),
        ({"level": -1}, "is below the minimum 0"),
        ({"select": {"Z": "first"}}, "index 'first' of axis Z must be an integer"),
    ],
)
def test_unknown_or_bad_read_option_fails_before_the_reader_runs(recording, tmp_path, options, needle):
    with pytest.raises(InvalidOptionError) as info:
        dlformats.read(tmp_path / "in.rec", options=options)
    assert needle in str(info.value) and not recording.read_with
    if info.value.option == "select":
        return
    assert info.value.format == "rec" and info.value.path == str(tmp_path / "in.rec")
    assert [v.split(" ")[0] for v in info.value.valid] == ["level", "trim", "select"]
    if "unknown" in needle:
        assert "valid read options: level (int >= 0), trim (bool), select ({axis letter: index})" in str(info.value)
    else:  # a bad value: what the option takes
        assert "(level (int >= 0, default 1): a number)" in str(info.value)


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"foo": "y"}, "unknown write option 'foo' for format 'rec'"),
        ({"select": {"Z": 0}}, "unknown write option 'select'"),
        ({"codec": "lzma"}, "write option codec='lzma' of format 'rec' is not one of none, zlib"),
        ({"feature": 1}, "write option feature=1 of format 'rec': the project has 1 features"),
    ],
)
def test_unknown_or_bad_write_option_fails_before_the_writer_runs(recording, tmp_path, options, needle):
    project = dlformats.read(tmp_path / "in.rec")
    with pytest.raises(InvalidOptionError) as info:
        dlformats.write(project, tmp_path / "out.rec", options=options)
    assert needle in str(info.value) and not recording.written_with
    assert info.value.path == str(tmp_path / "out.rec") and info.value.format == "rec"
    assert list(tmp_path.iterdir()) == [tmp_path / "in.rec"]
    if "unknown" in needle:
        assert "valid write options: codec (none/zlib), feature (int, a feature of the project)" in str(info.value)


def test_inherited_options_apply_to_the_labels_only_where_declared(recording, tmp_path):
    import dlformats_numpy

    dlformats.get_registry().register(dlformats_numpy, "numpy", distribution="dlformats")
    image = tmp_path / "image.npy"
    np.save(image, np.zeros((2, 2, 3, 3, 1), np.uint8))  # (batch, frames, y, x, c)
    # batch is an option of npy, not of rec: the labels, which inherit the image's options, leave it out...
    dlformats.read(image, labels=tmp_path / "in.rec", options={"batch": 0, "select": {"Z": 0}})
    assert recording.read_with[-1].extra == {"level": 1, "trim": True}
    assert recording.read_with[-1].select == {"Z": 0} and recording.read_with[-1].role == "labels"
    # ... while the image's own options are checked against the image's format.
    with pytest.raises(InvalidOptionError, match="unknown read option 'level' for format 'npy'"):
        dlformats.read(image, labels=tmp_path / "in.rec", options={"level": 2})
    dlformats.read(image, labels=tmp_path / "in.rec", options={"batch": 1}, labels_options={"level": 2})
    assert recording.read_with[-1].extra == {"level": 2, "trim": True}
    # ... but options given for the labels themselves are checked like any other.
    with pytest.raises(InvalidOptionError, match="unknown read option 'batch' for format 'rec'"):
        dlformats.read(image, labels=tmp_path / "in.rec", labels_options={"batch": 0})


# ------------------------------------------------------------------ the built-in formats, from the command line
def _run(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "dlformats.cli", *args], capture_output=True, text=True, cwd=cwd, check=False
    )


@pytest.fixture
def movie(tmp_path):
    tifffile.imwrite(tmp_path / "movie.tif", np.zeros((3, 8, 9), np.uint8), photometric="minisblack")
    return tmp_path


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (
            ["info", "movie.tif", "--option", "foo=1"],
            ["movie.tif: unknown read option 'foo' for format 'tiff'", "series (int >= 0)", "select"],
        ),
        (
            ["info", "movie.tif", "--option", "role=label"],
            ["unknown read option 'role' for format 'tiff'", "series (int >= 0)"],
        ),
        (["info", "movie.tif", "--option", "series=first"], ["read option series='first'", "must be an integer"]),
        (
            ["convert", "movie.tif", "out.zip", "--write-option", "foo=y"],
            [
                "out.zip: unknown write option 'foo' for format 'dcl-project-zip'",
                "compression (none/zlib/deflate/zstd)",
            ],
        ),
        (
            ["convert", "movie.tif", "out.png", "--write-option", "frame=3"],
            ["write option frame=3 of format 'png': the project has 3 frames", "use frame=0..2"],
        ),
        (["convert", "movie.tif", "out.tif", "--write-option", "compression=lzma"], ["is not one of none, zlib"]),
    ],
)
def test_cli_refuses_unknown_options_with_the_valid_list(movie, args, needles):
    done = _run(*args, cwd=movie)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    for needle in needles:
        assert needle in done.stderr, (needle, done.stderr)
    assert sorted(p.name for p in movie.iterdir()) == ["movie.tif"]


def test_cli_options_reach_the_builtin_formats_typed(movie):
    done = _run("convert", "movie.tif", "frame.png", "--write-option", "frame=2", "--write-option", "part=X", cwd=movie)
    assert done.returncode == 0, done.stderr
    done = _run("convert", "movie.tif", "plain.npz", "--write-option", "compress=false", cwd=movie)
    assert done.returncode == 0, done.stderr
    import zipfile

    with zipfile.ZipFile(movie / "plain.npz") as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}


def test_formats_command_describes_one_format_and_its_options(movie):
    done = _run("formats", "tiff", cwd=movie)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.startswith("tiff: ") and "plugin:        tiff (dlformats" in text
    assert "reads parts:   X, channels, features, y" in text and "writes parts:  X, channels" in text
    assert "  series (int >= 0, default none): " in text and "  select ({axis letter: index}): " in text
    assert "  compression (none/zlib/deflate/lzw/zstd/packbits, default zlib): " in text
    described = json.loads(_run("formats", "png", "--json", cwd=movie).stdout)
    assert described["plugin"] == "png" and described["extensions"] == [".png"]
    assert described["read_options"] == [] and [o["name"] for o in described["write_options"]] == ["part", "frame"]
    frame = described["write_options"][1]
    assert (frame["type"], frame["default"], frame["index_of"]) == ("int", None, "frames") and frame["help"]
    listing = json.loads(_run("formats", "--json", cwd=movie).stdout)
    npz = next(f for f in listing["formats"] if f["name"] == "npz")
    assert [o["name"] for o in npz["read_options"]] == ["batch"]
    assert [o["name"] for o in npz["write_options"]] == ["compress"]
    done = _run("formats", "no-such-format", cwd=movie)
    assert done.returncode == 2 and "unknown format 'no-such-format'" in done.stderr and "tiff" in done.stderr


def test_plugin_object_without_options_accepts_only_select(tmp_path):
    def read(source, options):
        assert options.extra == {}
        return Project(y=np.zeros((1, 1, 2, 2), np.int32), cells=[])

    spec = FormatSpec(name="bare", description="d", extensions=(".bare",), read=read, reads=parts("y"))
    registry = Registry(load=False, disabled=set())
    registry.register(types.SimpleNamespace(dlformats_formats=hookimpl(lambda: [spec])), "bare")
    (tmp_path / "f.bare").write_bytes(b"x")
    with use_registry(registry):
        dlformats.read(tmp_path / "f.bare", options={"select": {"Z": 0}})
        with pytest.raises(InvalidOptionError, match=r"valid read options: select \(\{axis letter: index\}\)"):
            dlformats.read(tmp_path / "f.bare", options={"series": 0})
