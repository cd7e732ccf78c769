"""dlformats.atomic: a target is replaced whole or not at all; what a failed write leaves is nothing.

Killed runs, full disks and unusual targets are in ``test_targets.py``."""

from __future__ import annotations

import os
import stat

import pytest

from dlformats import InvalidOptionError
from dlformats.atomic import atomic_target


def test_atomic_success_replaces_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "out.zip"
    target.write_bytes(b"old")
    with atomic_target(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        tmp.write_bytes(b"new")
        assert target.read_bytes() == b"old"  # untouched until the end
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.zip"]


def test_atomic_failure_keeps_old_target_and_removes_temporary(tmp_path):
    target = tmp_path / "out.zip"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_target(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.zip"]
    with pytest.raises(KeyboardInterrupt), atomic_target(tmp_path / "new.zip") as tmp:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["out.zip"]


def test_atomic_folder_failure_keeps_old_folder(tmp_path):
    target = tmp_path / "out.zarr"
    target.mkdir()
    (target / "old").write_text("1")
    with pytest.raises(RuntimeError), atomic_target(target, directory=True) as tmp:
        (tmp / "new").write_text("2")
        raise RuntimeError
    assert [p.name for p in target.iterdir()] == ["old"]
    with atomic_target(target, directory=True) as tmp:
        (tmp / "new").write_text("2")
    assert [p.name for p in target.iterdir()] == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["out.zarr"]


def test_atomic_refuses_symlink_and_missing_folder(tmp_path):
    real = tmp_path / "real.zip"
    real.write_bytes(b"precious")
    link = tmp_path / "link.zip"
    link.symlink_to(real)
    with pytest.raises(InvalidOptionError, match="symbolic link"), atomic_target(link):
        pass
    assert real.read_bytes() == b"precious" and link.is_symlink()
    with pytest.raises(InvalidOptionError, match="does not exist"), atomic_target(tmp_path / "no" / "x.zip"):
        pass
    (tmp_path / "dir.zip").mkdir()
    with pytest.raises(InvalidOptionError, match="is a folder"), atomic_target(tmp_path / "dir.zip"):
        pass


def test_atomic_output_gets_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_target(tmp_path / "out.zip") as tmp:
            tmp.write_bytes(b"x")
        with atomic_target(tmp_path / "out.zarr", directory=True) as tmp:
            (tmp / "a").write_bytes(b"x")
    finally:
        os.umask(old)
    # Not the 0600 / 0700 of a private temporary file: others may read what the user wrote.
    assert stat.S_IMODE((tmp_path / "out.zip").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "out.zarr").stat().st_mode) == 0o755
