"""Writes that never leave a half-written target: a temporary name in the target folder, renamed at the end."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import DLFormatsError, InvalidOptionError


@contextlib.contextmanager
def atomic_target(target: str | os.PathLike[str], *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it onto ``target``.

    The caller writes a file (or, with ``directory=True``, fills a folder) at the
    yielded path.  On any exception the temporary is removed and an existing
    ``target`` is left untouched.  A symlinked target, or a target whose folder
    does not exist, is refused.
    """
    target = Path(target)
    if target.is_symlink():
        raise InvalidOptionError("refusing to write through a symbolic link", path=str(target))
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise InvalidOptionError(f"output folder {parent} does not exist", path=str(target))
    if target.exists() and target.is_dir() != directory:
        kind = "a folder" if target.is_dir() else "a file"
        raise InvalidOptionError(f"output exists and is {kind}", path=str(target))
    prefix = f".{target.name}."
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=parent))
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        if not directory:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        else:
            _replace_dir(tmp, target)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise


def _replace_dir(tmp: Path, target: Path) -> None:
    if not target.exists():
        os.replace(tmp, target)
        return
    old = target.with_name(f".{target.name}.old.tmp")
    if old.exists():
        raise DLFormatsError("a previous replacement was interrupted; remove it first", path=str(old))
    os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
