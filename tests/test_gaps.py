"""Small correctness gaps in the core and the label zip, each with the behaviour a user relies on."""

from __future__ import annotations

import io
import json
import pickle
import zipfile

import numpy as np
import pytest

import dlformats
from dlformats import errors, hookimpl
from dlformats.arrays import LazyArray
from dlformats.cli import main
from dlformats.limits import Limits
from dlformats.model import Problem
from dlformats.registry import Registry, use_registry
from dlformats.sources import describe_head
from dlformats.spec import FormatSpec, parts
from dlformats.testing import make_project


@pytest.fixture
def registry():
    with use_registry(Registry(load=False)) as reg:
        yield reg


def npy_bytes(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


# ------------------------------------------------------------------ LazyArray
def test_lazy_array_checks_limits_before_materialising():
    view = LazyArray(np.zeros((4, 8, 8), np.uint16), "TYX", limits=Limits(array_bytes=300))
    assert view.plane(0, 3).shape == (8, 8)  # one plane (128 bytes) is fine
    with pytest.raises(dlformats.LimitExceededError) as info:
        np.asarray(view)
    assert info.value.found == 4 * 8 * 8 * 2 and info.value.limit == "array_bytes"
    assert np.asarray(LazyArray(np.zeros((4, 8, 8), np.uint16), "TYX")).shape == (1, 4, 8, 8)


def test_readers_give_their_limits_to_lazy_arrays(tmp_path):
    np.save(tmp_path / "stack.npy", np.zeros((4, 16, 16, 1), np.uint8))
    project = dlformats.read(tmp_path / "stack.npy", limits=Limits(array_bytes=512))  # mapped: reading is fine
    assert project.X[0, 3].shape == (16, 16)
    with pytest.raises(dlformats.LimitExceededError):
        np.asarray(project.X)


@pytest.mark.parametrize("letter", ["Y", "x"])
def test_select_of_a_plane_axis_is_refused(letter):
    with pytest.raises(dlformats.InvalidOptionError, match="Y and X are the plane"):
        LazyArray(np.zeros((2, 3, 4)), "ZYX", select={letter: 0})


# ------------------------------------------------------------------ errors
def _every_error() -> list[errors.DLFormatsError]:
    where = {"path": "a.zip", "member": "m", "format": "f", "hint": "h"}
    return [
        errors.DLFormatsError("r", **where),
        errors.CorruptFileError("r", **where),
        errors.UnsupportedFeatureError("r", **where),
        errors.LimitExceededError("big", limit="array_bytes", allowed=1, found=2, **where),
        errors.UnsafeArchiveError("r", **where),
        errors.InconsistentDataError("r", problems=[Problem("divisions", "bad", "error")], **where),
        errors.AmbiguousInputError("r", option="series", choices=[0, 1], **where),
        errors.InvalidOptionError("r", option="series", valid=["series (int >= 0)"], **where),
        errors.NotMyFormat("r", **where),
        errors.NoReaderError("r", detected="zip", candidates=[errors.Candidate("a", "b", "c")], install=["x"]),
        errors.NoWriterError("r", **where),
        errors.PluginCrashedError("r", stage="write", plugin="p", **where),
        errors.PluginError("r", plugins=["a", "b"], distributions=["d"], **where),
        errors.EnvironmentFailureError("r", errno=28, **where),
        errors.NetworkError("r", errno=None, **where),
        errors.SourceNotFoundError("no such file or folder", path="a.tif"),
        errors.PartsDroppedError("r", dropped=["y", "cells"], **where),
    ]


@pytest.mark.parametrize("error", _every_error(), ids=lambda e: type(e).__name__)
def test_every_error_survives_pickling(error):
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error) and str(back) == str(error) and back.args == error.args
    assert vars(back) == vars(error)


def test_every_error_class_is_covered():
    covered = {type(e) for e in _every_error()}
    declared = {getattr(errors, n) for n in errors.__all__}
    assert {c for c in declared if isinstance(c, type) and issubclass(c, errors.DLFormatsError)} <= covered


# ------------------------------------------------------------------ registry
def test_no_writer_at_all_says_so(registry):
    with pytest.raises(dlformats.NoWriterError) as info:
        registry.writer_for("out.zip")
    assert "one of  or" not in str(info.value) and "no installed plugin writes" in str(info.value)


class _CrashingValidator:
    @hookimpl
    def dlformats_validate(self, project):
        raise KeyError("boom")


def test_crash_in_a_validate_hook_names_the_plugin(registry):
    registry.register(_CrashingValidator(), "crashy")
    with pytest.raises(dlformats.PluginCrashedError, match="crashy") as info:
        dlformats.validate(make_project(), pixels=False)
    assert isinstance(info.value.__cause__, KeyError)
    assert (info.value.stage, info.value.plugin, info.value.format) == ("validate", "crashy", None)


class _Validator:
    @hookimpl
    def dlformats_validate(self, project):
        return [Problem("divisions", "from a plugin", "warning")]


def test_validate_hooks_still_contribute(registry):
    registry.register(_Validator(), "good")
    assert "from a plugin" in [p.message for p in dlformats.validate(make_project(), pixels=False)]


class _FailingWriter:
    @hookimpl
    def dlformats_formats(self):
        def write(project, path, options):
            raise dlformats.CorruptFileError(f"cannot write {path}", path=str(path))

        return [FormatSpec(name="failing", description="d", extensions=(".fail",), write=write, writes=parts("y"))]


def test_writer_error_names_the_target_not_the_temporary(registry, tmp_path):
    registry.register(_FailingWriter(), "failing")
    target = tmp_path / "out.fail"
    with pytest.raises(dlformats.CorruptFileError) as info:
        dlformats.write(make_project(), target)
    assert info.value.path == str(target)
    assert str(info.value) == f"{target}: cannot write {target}"
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ sources
def test_nul_bytes_are_not_text():
    assert describe_head(b"abc\x00\x00def") == "unrecognised binary data"
    assert describe_head(b"plain words\n") == "text"


# ------------------------------------------------------------------ label zip lineage
def _label_zip(path, lineage):
    y = np.zeros((2, 6, 5), np.int32)
    y[0, 1:3, 1:3] = 1
    y[1, 1:2, 1:2] = 2
    y[1, 3:4, 3:4] = 3
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("y.npy", npy_bytes(y))
        zf.writestr("lineage.json", json.dumps(lineage))
    return path


def test_label_zip_refuses_an_unusable_lineage(tmp_path):
    lineage = {"1": {"label": 1, "frames": [0], "daughters": [1], "parent": 1}}  # its own daughter
    with pytest.raises(dlformats.InconsistentDataError, match="lineage is unusable") as info:
        dlformats.read(_label_zip(tmp_path / "labels.zip", lineage))
    assert info.value.member == "lineage.json" and info.value.problems


def test_label_zip_warns_once_and_keeps_lineage_problems(tmp_path):
    lineage = {
        "1": {"label": 1, "frames": [0], "daughters": [2, 3], "parent": None, "frame_div": 5},  # a warning
        "2": {"label": 2, "frames": [1], "daughters": [], "parent": 1},
        "3": {"label": 3, "frames": [1], "daughters": [], "parent": 1},
    }
    with pytest.warns(dlformats.DLFormatsWarning, match="lineage breaks") as record:
        project = dlformats.read(_label_zip(tmp_path / "labels.zip", lineage))
    assert len([w for w in record if "lineage breaks" in str(w.message)]) == 1
    assert project.metadata["lineage_problems"]


# ------------------------------------------------------------------ labels options and format
@pytest.fixture
def zt_pair(tmp_path):
    image = np.arange(2 * 3 * 4 * 5, dtype=np.uint8).reshape(2, 3, 4, 5)
    labels = np.zeros((2, 3, 4, 5), np.int32)
    labels[0, :, 1, 1], labels[1, :, 2, 2] = 1, 2
    np.save(tmp_path / "image.npy", image)
    np.save(tmp_path / "labels.npy", labels)
    return tmp_path / "image.npy", tmp_path / "labels.npy", image, labels


def test_labels_options_replace_options_for_the_labels(zt_pair):
    image_path, labels_path, image, labels = zt_pair
    common = {"axes": "ZTYX", "labels_axes": "ZTYX", "options": {"select": {"Z": 1}}}
    shared = dlformats.read(image_path, labels_path, **common)
    assert np.array_equal(np.asarray(shared.y)[0], labels[1])  # options go to both by default
    project = dlformats.read(image_path, labels_path, **common, labels_options={"select": {"Z": 0}})
    assert np.array_equal(np.asarray(project.X)[0], image[1])
    assert np.array_equal(np.asarray(project.y)[0], labels[0])


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
