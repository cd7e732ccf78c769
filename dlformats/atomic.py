"""Writes that never leave a half-written target: a temporary name in the target folder, renamed at the end.

The temporary is named ``.dlformats-<pid>-<random>.tmp`` whatever the target's name, so
that any name the file system accepts for the target works, and the process writing it
holds an exclusive ``flock`` on it until it is renamed or removed.  An interrupted write
(an exception, Ctrl-C, or SIGTERM/SIGHUP through the command) removes its temporary.  A
run killed outright (SIGKILL, a crash of the interpreter, a power cut) cannot: the next
write to the same folder removes such a leftover once nobody holds its lock and its
process is gone (see :func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import DLFormatsError, InvalidOptionError, _environment_failure

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no locks, so leftovers are never taken for stale
    fcntl = None  # type: ignore[assignment]

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)

TEMPORARY = re.compile(r"\.dlformats-([0-9]{1,10})-([0-9a-f]{12})(\.old)?\.tmp")
"""Names of dlformats' temporaries: ``.dlformats-<pid>-<12 hex digits>.tmp`` holds an output being
written (a file, or a folder for folder formats); ``...old.tmp`` is a folder holding the output
folder being replaced, under its own name, for the instant between the two renames."""

STALE_AFTER = 3600.0
"""Seconds after which an unlocked temporary is stale even though a process of its pid runs
(the pid was reused, or the file system does not share locks between machines)."""


@contextlib.contextmanager
def atomic_target(target: str | os.PathLike[str], *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it onto ``target``.

    The caller writes a file (or, with ``directory=True``, fills a folder) at the
    yielded path.  On any exception the temporary is removed and an existing
    ``target`` is left untouched.  Refused before anything is written: a symlinked
    target, a target whose folder does not exist, and an existing target that is not
    a regular file (a folder, a FIFO, a device, a socket) or, with ``directory=True``,
    not a folder.  Stale temporaries of killed runs in the folder are removed first.
    A failure of the machine (full disk, permission denied...) raises
    :class:`~dlformats.errors.EnvironmentFailureError` naming ``target``.
    """
    target = Path(target)
    if target.is_symlink():
        raise InvalidOptionError("refusing to write through a symbolic link", path=str(target))
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise InvalidOptionError(f"output folder {parent} does not exist", path=str(target))
    _check_target(target, directory)
    remove_stale_temporaries(parent)
    tmp, lock = _new_temporary(parent, target, directory=directory)
    try:
        yield tmp
        if not directory:
            try:
                with open(tmp, "rb+") as fh:
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            except OSError as exc:
                raise _failure(exc, target, "writing") from exc
        else:
            _replace_dir(tmp, target)
    except BaseException:
        _remove(tmp)
        raise
    finally:
        os.close(lock)


def _kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISREG, "a file"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def _check_target(target: Path, directory: bool) -> None:
    """Refuse an existing ``target`` that a rename would wrongly replace."""
    try:
        mode = target.lstat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _failure(exc, target, "checking the output") from exc
    if directory and not stat.S_ISDIR(mode):
        raise InvalidOptionError(
            f"output exists and is {_kind(mode)}, not a folder; refusing to replace it", path=str(target)
        )
    if not directory and not stat.S_ISREG(mode):
        raise InvalidOptionError(
            f"output exists and is {_kind(mode)}, not a regular file; refusing to replace it", path=str(target)
        )


def _failure(exc: OSError, target: Path, doing: str) -> DLFormatsError:
    """The error for an ``OSError`` met while writing ``target``: a failure of the machine when it is one."""
    env = _environment_failure(exc, path=str(target), doing=doing, writing=True)
    if env is not None:
        return env
    return DLFormatsError(f"{doing} failed: {exc.strerror or exc}", path=str(target))


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _lock(fd: int) -> bool | None:
    """Take an exclusive ``flock`` on ``fd`` without waiting: True, False when another holds it,
    None when locks are not available here."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return None
    return True


def _new_temporary(parent: Path, target: Path, *, directory: bool, suffix: str = ".tmp") -> tuple[Path, int]:
    """Create an empty file (or folder) with a fresh name in ``parent``; return it and a locked descriptor.

    Unlike ``tempfile.mkstemp`` (mode 0600), it gets the permissions of any new
    file (0666 or 0777 less the umask), so the renamed output is not private.
    ``O_EXCL`` (``mkdir``) still refuses to follow a link planted under the chosen name.
    The caller closes the descriptor (releasing the lock) once the temporary is gone.
    """
    for _ in range(100):
        tmp = parent / f".dlformats-{os.getpid()}-{secrets.token_hex(6)}{suffix}"
        made = False
        try:
            if directory:
                tmp.mkdir(0o777)
                made = True
                fd = os.open(tmp, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW)
            else:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:  # a read-only or full folder: the user's problem, not a bug
            if made:
                _remove(tmp)
            raise _failure(exc, target, "creating a temporary file in its folder") from exc
        try:
            # Without locks (no fcntl, a file system without them) nothing ever takes the
            # temporary for stale.  Once locked, no other process removes it; before, one may
            # have (or may hold the lock): then try another name.
            locked = _lock(fd)
            ours = _same(os.stat(tmp, follow_symlinks=False), os.fstat(fd))
        except FileNotFoundError:
            locked, ours = False, False
        except BaseException:
            os.close(fd)
            _remove(tmp)
            raise
        if locked is False or not ours:
            os.close(fd)
            if ours:
                _remove(tmp)
            continue
        return tmp, fd
    raise DLFormatsError("cannot find a free temporary name", path=str(parent))


def _remove(path: Path) -> None:
    """Remove a temporary of ours (a file, or a folder with what is in it), never following a link."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return
    if stat.S_ISDIR(mode):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _replace_dir(tmp: Path, target: Path) -> None:
    """Put the folder ``tmp`` in place of ``target``, an existing folder or nothing.

    An existing folder is first moved, under its own name, into a locked temporary
    folder (``.dlformats-<pid>-<random>.old.tmp``); should the process die before the
    end, :func:`remove_stale_temporaries` moves it back when nothing took its place.
    """
    if not os.path.lexists(target):
        try:
            os.replace(tmp, target)
        except OSError as exc:
            raise _failure(exc, target, "writing") from exc
        return
    parent = target.parent if str(target.parent) else Path(".")
    box, lock = _new_temporary(parent, target, directory=True, suffix=".old.tmp")
    old = box / target.name
    try:
        try:
            os.replace(target, old)
            os.replace(tmp, target)
        except OSError as exc:
            raise _failure(exc, target, "writing") from exc
    finally:
        # Decided by what is on disk, not by how far the code got: an interruption may
        # come between any two steps.  Should putting the previous output back fail,
        # the box (and the output in it) stays for remove_stale_temporaries.
        try:
            if os.path.lexists(old) and not os.path.lexists(target):
                os.replace(old, target)
            shutil.rmtree(box, ignore_errors=True)
        finally:
            os.close(lock)


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporaries killed runs left in ``folder``; return what was removed.

    Only entries named exactly like dlformats' temporaries (:data:`TEMPORARY`) are
    considered, never through a symbolic link, and one is stale only when its lock is
    free (its writer is gone) and either its process (the pid in its name) no longer runs
    or it has not changed for :data:`STALE_AFTER` seconds.  The previous output folder of
    a killed replacement (``...old.tmp``) is moved back under its own name when nothing
    took its place, else removed.  Anything that cannot be checked is left alone.
    """
    removed: list[Path] = []
    if fcntl is None:
        return removed
    try:
        with os.scandir(folder) as entries:
            candidates = [(e.name, m) for e in entries if (m := TEMPORARY.fullmatch(e.name))]
    except OSError:
        return removed
    for name, match in candidates:
        path = Path(folder, name)
        with contextlib.suppress(OSError):
            if _remove_if_stale(path, int(match[1]), old=match[3] is not None):
                removed.append(path)
    return removed


def _pid_alive(pid: int) -> bool:
    if os.name != "posix" or pid <= 0:
        return True  # cannot tell: count it as running
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _remove_if_stale(path: Path, pid: int, *, old: bool) -> bool:
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        flags = os.O_RDONLY | _O_DIRECTORY
    elif stat.S_ISREG(st.st_mode) and not old:
        flags = os.O_RDONLY | _O_NONBLOCK
    else:
        return False
    fd = os.open(path, flags | _O_NOFOLLOW)
    try:
        if not _same(os.fstat(fd), st) or not _lock(fd):
            return False  # replaced meanwhile, or its writer holds it
        if _pid_alive(pid) and time.time() - max(st.st_mtime, st.st_ctime) < STALE_AFTER:
            return False  # its process runs: maybe just before taking the lock
        if not _same(os.lstat(path), st):
            return False
        if not stat.S_ISDIR(st.st_mode):
            path.unlink()
            return True
        if old:
            _restore(path)
        shutil.rmtree(path, ignore_errors=True)
        return not os.path.lexists(path)
    finally:
        os.close(fd)


def _restore(box: Path) -> None:
    """Move the previous output a killed replacement left in ``box`` back, unless something took its place."""
    for entry in os.scandir(box):
        dest = box.parent / entry.name
        if os.path.lexists(dest):
            continue  # the replacement (or a later write) is in place: the old one is obsolete
        os.rename(entry.path, dest)  # an error keeps the box, and the data in it


__all__ = ["STALE_AFTER", "TEMPORARY", "atomic_target", "remove_stale_temporaries"]
