"""Writes that never leave a half-written target: a temporary name in the target folder, renamed at the end."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
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
    tmp = _new_temporary(parent, f".{target.name}.", directory=directory)
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


def _new_temporary(parent: Path, prefix: str, *, directory: bool) -> Path:
    """Create an empty file (or folder) with a fresh name in ``parent``.

    Unlike ``tempfile.mkstemp`` (mode 0600), it gets the permissions of any new
    file (0666 or 0777 less the umask), so the renamed output is not private.
    ``O_EXCL`` still refuses to follow a link planted under the chosen name.
    """
    for _ in range(100):
        tmp = parent / f"{prefix}{secrets.token_hex(6)}.tmp"
        try:
            if directory:
                tmp.mkdir(0o777)
            else:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        except OSError as exc:  # a read-only or full folder: the user's problem, not a bug
            raise DLFormatsError(f"cannot create a file in {parent}: {exc.strerror or exc}", path=str(parent)) from exc
        return tmp
    raise DLFormatsError("cannot find a free temporary name", path=str(parent))


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
