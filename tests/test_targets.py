"""Where outputs go: targets that are not files, temporaries of interrupted and killed runs,
failures of the machine (full disk, too many open files, permissions) and misuse of the API.

Interrupted and killed runs are real ``dlformats convert`` processes writing through a plugin
whose writers take their time (installed for the session as a user installs a plugin: a
folder with its dist-info on ``PYTHONPATH``), stopped by the signals schedulers send.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import dlformats
from dlformats import FormatSpec, testing, use_registry
from dlformats.atomic import TEMPORARY, atomic_target, remove_stale_temporaries
from dlformats.errors import EnvironmentFailureError, InvalidOptionError, PluginCrashedError
from dlformats.model import PARTS
from dlformats.registry import Registry
from dlformats.testing import make_project

# ------------------------------------------------------------------ helpers
SLOW_PLUGIN = '''
"""Formats whose writers take their time (about 30 s at most), and one whose disk is full."""
import errno
import os
import time

from dlformats import FormatSpec, hookimpl
from dlformats.spec import parts

ALL = parts("X", "y", "cells", "divisions", "spots", "channels", "features", "cell_types", "embeddings")


def _slow_file(project, path, options):
    with open(path, "wb") as fh:
        for _ in range(3000):
            fh.write(b"x" * 4096)
            fh.flush()
            time.sleep(0.01)


def _slow_folder(project, path, options):
    for i in range(3000):
        (path / f"part{i}").write_bytes(b"x" * 4096)
        time.sleep(0.01)


def _full(project, path, options):
    with open(path, "wb") as fh:
        fh.write(b"x" * 4096)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@hookimpl
def dlformats_formats():
    return [
        FormatSpec(name="slow-file", description="slow", extensions=(".slow",), write=_slow_file, writes=ALL),
        FormatSpec(
            name="slow-folder", description="slow dir", extensions=(".slowdir",), write=_slow_folder, writes=ALL,
            folder=True,
        ),
        FormatSpec(name="disk-full", description="full disk", extensions=(".full",), write=_full, writes=ALL),
    ]
'''


@pytest.fixture(scope="session")
def slow_site(tmp_path_factory) -> Path:
    """A folder holding the ``slowfmt`` plugin and the dist-info whose entry point announces it."""
    site = tmp_path_factory.mktemp("slow-plugin")
    (site / "slowfmt.py").write_text(SLOW_PLUGIN)
    info = site / "slowfmt-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: slowfmt\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[dlformats.plugins]\nslow = slowfmt\n")
    return site


def _env(site: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DLFORMATS_DISABLE_PLUGINS", "PYTHONPATH")}
    env["PYTHONPATH"] = str(site)
    env["DLFORMATS_NO_PROGRESS"] = "1"
    return env


@pytest.fixture
def src(tmp_path) -> Path:
    """A small image to convert, in its own folder."""
    folder = tmp_path / "in"
    folder.mkdir()
    path = folder / "image.npy"
    np.save(path, np.arange(2 * 8 * 8, dtype=np.uint16).reshape(2, 8, 8, 1))  # frames, height, width, channels
    return path


def cli(site: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dlformats.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(site),
    )


def temporaries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if TEMPORARY.fullmatch(p.name))


def wait_for_temporary(folder: Path, process: subprocess.Popen) -> Path:
    """The temporary ``process`` writes in ``folder``, once it holds data."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        found = temporaries(folder)
        if found and ((found[0].is_dir() and any(found[0].iterdir())) or found[0].stat().st_size > 0):
            return found[0]
        time.sleep(0.01)
    process.kill()
    raise AssertionError(f"no temporary appeared: {process.communicate()}")


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def dead_pid() -> int:
    """The pid of a process that has ended (and been waited for)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


EVERY_PART = frozenset(PARTS)


@pytest.fixture
def use_formats():
    """A function making dlformats use only the given formats (no entry points) for the rest of the test."""
    with contextlib.ExitStack() as stack:

        def use(*specs: FormatSpec) -> None:
            declared = [
                dataclasses.replace(
                    spec,
                    description=spec.description or f"test format {spec.name}",
                    reads=spec.reads or (EVERY_PART if spec.read else frozenset()),
                    writes=spec.writes or (EVERY_PART if spec.write else frozenset()),
                )
                for spec in specs
            ]
            reg = Registry(load=False, disabled=set())
            reg.register(testing.plugin_of(*declared), "fake", distribution="fake", version="1.0")
            stack.enter_context(use_registry(reg))

        yield use


def writer_failing_with(exc: BaseException):
    def write(project, path, options):
        with open(path, "wb") as fh:
            fh.write(b"half")
        raise exc

    return write


def mount_tmpfs(folder: Path, options: str) -> bool:
    """Mount a tmpfs on ``folder``; False where that is not allowed (only root, with the capability, may).

    The tests then check the same guarantees another way (a file-size limit, an unprivileged user).
    """
    folder.mkdir(exist_ok=True)
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    except FileNotFoundError:
        return False
    return done.returncode == 0


def _limit_file_size() -> None:
    """In a child: files may not grow past 1 MiB (EFBIG, SIGXFSZ ignored), as on a full small disk."""
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


@pytest.fixture
def mounts():
    mounted: list[Path] = []
    yield mounted
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


# ------------------------------------------------------------------ targets that are not files
def test_fifo_target_is_refused_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "fifo.zip"
    os.mkfifo(fifo)
    with pytest.raises(InvalidOptionError, match="named pipe") as info:
        dlformats.write(make_project(), fifo)
    assert info.value.path == str(fifo) and str(fifo) in str(info.value)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert names(tmp_path) == ["fifo.zip"]  # nothing was written beside it


def test_command_refuses_a_fifo_target(tmp_path, src, slow_site):
    fifo = tmp_path / "fifo.zip"
    os.mkfifo(fifo)
    process = cli(slow_site, "convert", str(src), str(fifo))
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert err.splitlines() == [
        f"dlformats: error: {fifo}: output exists and is a named pipe (FIFO), not a regular file; "
        "refusing to replace it"
    ]
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and names(tmp_path) == ["fifo.zip", "in"]


def test_device_target_is_refused_untouched(tmp_path):
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Root could replace /dev/null itself should this regress: use a null device of our own.
        device = tmp_path / "null"
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    else:
        device = Path("/dev/null")  # /dev is not writable: a regression cannot touch it
    folder = device.parent
    before, before_names = device.lstat(), set(os.listdir(folder))
    with pytest.raises(InvalidOptionError, match="character device") as info:
        dlformats.write(make_project(), device, format="npz")
    assert info.value.path == str(device)
    after = device.lstat()
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev and after.st_ino == before.st_ino
    assert set(os.listdir(folder)) == before_names


def test_socket_target_is_refused(tmp_path):
    path = tmp_path / "s.npy"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        with pytest.raises(InvalidOptionError, match="is a socket"):
            dlformats.write(make_project(), path)
        assert stat.S_ISSOCK(path.lstat().st_mode)
    assert names(tmp_path) == ["s.npy"]


def test_folder_target_must_be_a_folder(tmp_path):
    (tmp_path / "file.zarr").write_bytes(b"precious")
    os.mkfifo(tmp_path / "fifo.zarr")
    with (
        pytest.raises(InvalidOptionError, match="is a file, not a folder"),
        atomic_target(tmp_path / "file.zarr", directory=True),
    ):
        raise AssertionError("not reached")
    with pytest.raises(InvalidOptionError, match="named pipe"), atomic_target(tmp_path / "fifo.zarr", directory=True):
        raise AssertionError("not reached")
    assert (tmp_path / "file.zarr").read_bytes() == b"precious"
    assert names(tmp_path) == ["fifo.zarr", "file.zarr"]


# ------------------------------------------------------------------ temporary names
@pytest.mark.parametrize("length", [240, 255])
def test_longest_legal_target_names_work(tmp_path, length):
    project = make_project()
    target = tmp_path / ("a" * (length - 4) + ".zip")
    dlformats.write(project, target)
    assert names(tmp_path) == [target.name]
    assert np.array_equal(np.asarray(dlformats.read(target).y), np.asarray(project.y))
    folder = tmp_path / ("b" * length)
    folder.mkdir()
    (folder / "old").write_text("1")
    with atomic_target(folder, directory=True) as tmp:  # a replacement moves the old folder aside
        (tmp / "new").write_text("2")
    assert names(folder) == ["new"]


def test_temporary_name_is_short_and_names_its_process(tmp_path):
    with atomic_target(tmp_path / ("c" * 251 + ".zip")) as tmp:
        match = TEMPORARY.fullmatch(tmp.name)
        assert match and int(match[1]) == os.getpid() and len(tmp.name) < 40
        assert tmp.parent == tmp_path
        tmp.write_bytes(b"x")


# ------------------------------------------------------------------ interrupted and killed runs
@pytest.mark.parametrize(
    ("signame", "target"),
    [("SIGTERM", "out.slow"), ("SIGHUP", "out.slow"), ("SIGINT", "out.slow"), ("SIGTERM", "out.slowdir")],
)
def test_stop_signal_removes_the_temporary_and_says_so(tmp_path, src, slow_site, signame, target):
    out = tmp_path / "out"
    out.mkdir()
    existing = out / target
    if target.endswith("dir"):
        existing.mkdir()
        (existing / "old").write_bytes(b"old")
    else:
        existing.write_bytes(b"old")
    process = cli(slow_site, "convert", str(src), str(existing))
    tmp = wait_for_temporary(out, process)
    # Another write to the folder meanwhile leaves the live writer's temporary alone.
    dlformats.write(make_project(), out / "other.npz")
    assert tmp.exists()
    signum = getattr(signal, signame)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 128 + signum, stderr
    assert stderr.splitlines() == [f"dlformats: interrupted by {signame}"] and stdout == ""
    assert names(out) == sorted([target, "other.npz"])  # no temporary left
    if target.endswith("dir"):
        assert names(existing) == ["old"]
    else:
        assert existing.read_bytes() == b"old"


@pytest.mark.parametrize("target", ["out.slow", "out.slowdir"])
def test_temporary_of_a_killed_run_is_removed_by_the_next_write(tmp_path, src, slow_site, target):
    out = tmp_path / "out"
    out.mkdir()
    process = cli(slow_site, "convert", str(src), str(out / target))
    tmp = wait_for_temporary(out, process)
    process.kill()  # SIGKILL: nothing can clean up
    process.communicate(timeout=20)
    assert tmp.exists()
    dlformats.write(make_project(), out / "next.npz")
    assert names(out) == ["next.npz"]


def test_folder_of_a_replacement_killed_halfway_is_moved_back(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    target = out / "result.zarr"
    target.mkdir()
    (target / "data").write_bytes(b"precious")
    # The state a replacement leaves when killed between its two renames: the previous
    # output moved aside into a locked temporary folder, the new one not yet in place.
    code = f"""
        import time
        from pathlib import Path
        from dlformats.atomic import _new_temporary
        target = Path({str(target)!r})
        box, lock = _new_temporary(target.parent, target, directory=True, suffix=".old.tmp")
        Path(target).rename(box / target.name)
        print("ready", flush=True)
        time.sleep(30)
    """
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "ready\n"
    (box,) = temporaries(out)
    assert box.name.endswith(".old.tmp") and not target.exists()
    assert remove_stale_temporaries(out) == []  # its process still runs and holds the lock
    child.kill()
    child.communicate(timeout=20)
    dlformats.write(make_project(), out / "next.npz")
    assert names(out) == ["next.npz", "result.zarr"]
    assert (target / "data").read_bytes() == b"precious"


def test_replaced_folder_left_beside_its_successor_is_removed(tmp_path):
    target = tmp_path / "result.zarr"
    target.mkdir()
    (target / "new").write_bytes(b"new")
    box = tmp_path / f".dlformats-{dead_pid()}-0123456789ab.old.tmp"
    (box / "result.zarr").mkdir(parents=True)
    (box / "result.zarr" / "old").write_bytes(b"old")
    assert remove_stale_temporaries(tmp_path) == [box]
    assert names(tmp_path) == ["result.zarr"] and names(target) == ["new"]


def test_only_exact_temporary_names_of_ended_processes_are_removed(tmp_path):
    pid = dead_pid()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.zip").write_bytes(b"keep")
    folder = tmp_path / "out"
    folder.mkdir()
    stale = folder / f".dlformats-{pid}-0123456789ab.tmp"
    stale.write_bytes(b"half")
    stale_dir = folder / f".dlformats-{pid}-ba9876543210.tmp"
    stale_dir.mkdir()
    (stale_dir / "part").write_bytes(b"half")
    (stale_dir / "link").symlink_to(outside / "keep.zip")
    kept = [
        f".out.zip.{'a' * 12}.tmp",  # the old naming
        f".dlformats-{pid}-xyz.tmp",
        f"dlformats-{pid}-0123456789ab.tmp",
        f".dlformats-{pid}-0123456789ab.tmp.zip",
        f".dlformats-{pid}-0123456789ab.old.tmp",  # a file: the replaced output is a folder
        "unrelated.zip",
    ]
    for name in kept:
        (folder / name).write_bytes(b"user data")
    link = folder / f".dlformats-{pid}-111111111111.tmp"
    link.symlink_to(outside)
    fifo = folder / f".dlformats-{pid}-222222222222.tmp"
    os.mkfifo(fifo)
    removed = remove_stale_temporaries(folder)
    assert sorted(removed) == sorted([stale, stale_dir])
    assert names(folder) == sorted([*kept, link.name, fifo.name])
    assert names(outside) == ["keep.zip"] and (outside / "keep.zip").read_bytes() == b"keep"


def test_unlocked_temporary_of_a_running_process_is_kept_until_stale(tmp_path, monkeypatch):
    # Our own pid, no lock: what a writer looks like between creating its temporary and locking it.
    fresh = tmp_path / f".dlformats-{os.getpid()}-0123456789ab.tmp"
    fresh.write_bytes(b"")
    assert remove_stale_temporaries(tmp_path) == [] and fresh.exists()
    monkeypatch.setattr("dlformats.atomic.STALE_AFTER", 0.0)  # as if an hour had passed: the pid was reused
    assert remove_stale_temporaries(tmp_path) == [fresh]


def test_locked_temporary_is_kept_even_when_old(tmp_path, monkeypatch):
    monkeypatch.setattr("dlformats.atomic.STALE_AFTER", 0.0)
    with atomic_target(tmp_path / "out.zip") as tmp:
        tmp.write_bytes(b"x")
        assert remove_stale_temporaries(tmp_path) == [] and tmp.exists()
        with atomic_target(tmp_path / "other.zip") as other:
            other.write_bytes(b"y")
        assert tmp.exists()
    assert names(tmp_path) == ["other.zip", "out.zip"]


# ------------------------------------------------------------------ failures of the machine
def test_full_disk_is_an_environment_failure(tmp_path, mounts, slow_site, src):
    disk = tmp_path / "disk"
    disk.mkdir()
    noise = np.random.default_rng(0).integers(0, 65535, (1, 4, 512, 512), dtype=np.uint16)  # 2 MB, incompressible
    np.save(src, noise[0][..., None])
    if mount_tmpfs(disk, "size=1m"):  # a real 1 MB disk
        mounts.append(disk)
        expected, words, limit = errno.ENOSPC, "no space left on the device", None
    else:  # no mounting here: a 1 MiB file-size limit fails the writes the same way (EFBIG)
        expected, words, limit = errno.EFBIG, "the file would be larger than this file system allows", _limit_file_size
    code = f"""
        import json, numpy as np, dlformats
        noise = np.load({str(src)!r})[..., 0][None]
        out = []
        for name in ("out.zip", "out.tif", "out.npz"):
            try:
                dlformats.write(dlformats.Project(X=noise), {str(disk)!r} + "/" + name)
                out.append(None)
            except Exception as exc:
                crashed = isinstance(exc, dlformats.PluginCrashedError)
                cause = isinstance(exc.__cause__, OSError)
                out.append([type(exc).__name__, getattr(exc, "errno", None), exc.path, str(exc), crashed, cause])
        print(json.dumps(out))
    """
    run = [sys.executable, "-c", textwrap.dedent(code)]
    done = subprocess.run(run, capture_output=True, text=True, timeout=60, preexec_fn=limit, check=False)
    assert done.returncode == 0, done.stderr
    for name, got in zip(("out.zip", "out.tif", "out.npz"), json.loads(done.stdout.splitlines()[-1])):
        assert got is not None, f"{name} was written on a full disk"
        kind, code_, path, text, crashed, cause = got
        assert (kind, code_, path) == ("EnvironmentFailureError", expected, str(disk / name)), got
        assert text.startswith(f"{disk / name}: writing failed: {words}"), got
        assert not crashed and cause, got  # the machine's OSError chained, not a plugin crash
    assert names(disk) == []
    process = subprocess.Popen(
        [sys.executable, "-m", "dlformats.cli", "convert", str(src), str(disk / "cli.zip")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(slow_site),
        preexec_fn=limit,
    )
    _, err = process.communicate(timeout=60)
    assert process.returncode == 4, err
    assert len(err.splitlines()) == 1 and err.startswith(
        f"dlformats: error: {disk / 'cli.zip'}: writing failed: {words}"
    )
    assert names(disk) == []


def test_writer_failing_for_want_of_space_is_an_environment_failure(tmp_path, use_formats):
    use_formats(
        FormatSpec(name="full", extensions=(".full",), write=writer_failing_with(OSError(errno.ENOSPC, "No space"))),
        FormatSpec(name="quota", extensions=(".quota",), write=writer_failing_with(OSError(errno.EDQUOT, "Quota"))),
    )
    (tmp_path / "out.full").write_bytes(b"old")
    with pytest.raises(EnvironmentFailureError, match="no space left on the device") as info:
        dlformats.write(make_project(), tmp_path / "out.full")
    assert info.value.errno == errno.ENOSPC and info.value.format == "full"
    assert info.value.path == str(tmp_path / "out.full")
    with pytest.raises(EnvironmentFailureError, match="disk quota exceeded"):
        dlformats.write(make_project(), tmp_path / "out.quota")
    assert names(tmp_path) == ["out.full"] and (tmp_path / "out.full").read_bytes() == b"old"


def test_short_write_on_a_full_disk_says_the_disk_is_full(use_formats, tmp_path, monkeypatch):
    # numpy's tofile reports a short write without an errno: only the free space tells why.
    short = OSError("262144 requested and 262002 written")
    use_formats(FormatSpec(name="short", extensions=(".short",), write=writer_failing_with(short)))
    with pytest.raises(PluginCrashedError):  # with space left, it is the plugin's problem
        dlformats.write(make_project(), tmp_path / "a.short")

    class Full:
        f_bavail = f_bfree = 3
        f_frsize = 4096

    monkeypatch.setattr("dlformats.errors.os.statvfs", lambda path: Full)
    with pytest.raises(EnvironmentFailureError, match="no space left") as info:
        dlformats.write(make_project(), tmp_path / "a.short")
    assert info.value.__cause__ is short
    assert names(tmp_path) == []


def test_command_exit_status_for_a_failure_of_the_machine(tmp_path, src, slow_site):
    process = cli(slow_site, "convert", str(src), str(tmp_path / "out.full"))
    out, err = process.communicate(timeout=60)
    assert err.splitlines() == [
        f"dlformats: error: {tmp_path / 'out.full'}: writing failed: no space left on the device "
        "(free some space or write to another disk)"
    ]
    assert process.returncode == 4 and out == ""
    assert names(tmp_path) == ["in"]


def test_too_many_open_files_while_writing(tmp_path):
    code = f"""
        import json, os, resource
        import dlformats
        from dlformats.testing import make_project
        project = make_project()
        folder = {str(tmp_path)!r}
        dlformats.write(project, os.path.join(folder, "warm.npz"))  # plugins and their imports loaded
        os.remove(os.path.join(folder, "warm.npz"))
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        held = []
        try:
            while True:
                held.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        os.close(held.pop())  # one descriptor left: enough for the temporary, not for the writer
        try:
            dlformats.write(project, os.path.join(folder, "out.npz"))
            out = {{"type": None}}
        except Exception as exc:
            out = {{"type": type(exc).__name__, "message": str(exc), "errno": getattr(exc, "errno", None)}}
        for fd in held:
            os.close(fd)
        out["left"] = sorted(os.listdir(folder))
        print(json.dumps(out))
    """
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.splitlines()[-1])
    assert got["type"] == "EnvironmentFailureError", got
    assert got["errno"] == errno.EMFILE and "too many open files in this process" in got["message"], got
    assert got["message"].startswith(str(tmp_path / "out.npz")), got
    assert got["left"] == []


def test_machine_failures_while_reading_are_not_plugin_crashes(tmp_path, use_formats):
    def emfile(source, options):
        raise OSError(errno.EMFILE, "Too many open files")

    def eio_sniff(source):
        raise OSError(errno.EIO, "Input/output error")

    use_formats(
        FormatSpec(name="emfile", extensions=(".emf",), read=emfile),
        FormatSpec(name="eio", extensions=(".eio",), signatures=(b"EIO!",), sniff=eio_sniff, read=emfile),
    )
    (tmp_path / "a.emf").write_bytes(b"data")
    with pytest.raises(EnvironmentFailureError, match="reading failed: too many open files") as info:
        dlformats.read(tmp_path / "a.emf")
    assert info.value.path == str(tmp_path / "a.emf") and info.value.errno == errno.EMFILE
    (tmp_path / "a.eio").write_bytes(b"EIO! data")
    with pytest.raises(EnvironmentFailureError, match="input/output error") as info:
        dlformats.read(tmp_path / "a.eio")
    assert info.value.errno == errno.EIO


def test_plugin_bugs_stay_plugin_crashes(tmp_path, use_formats):
    use_formats(
        FormatSpec(name="enoent", extensions=(".enoent",), write=writer_failing_with(FileNotFoundError(2, "x"))),
        FormatSpec(name="bug", extensions=(".bug",), write=writer_failing_with(KeyError("k"))),
    )
    for name in ("a.enoent", "a.bug"):
        with pytest.raises(PluginCrashedError, match="crashed"):
            dlformats.write(make_project(), tmp_path / name)
    assert names(tmp_path) == []


def test_permission_denied_by_the_folder(tmp_path, mounts):
    folder = tmp_path / "locked"
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # root ignores permissions: a read-only file system
        if not mount_tmpfs(folder, "ro,size=1m"):
            pytest.fail("as root, a read-only tmpfs must be mountable for this test (tests run as root in CI)")
        mounts.append(folder)
        expected, words = errno.EROFS, "the file system is read-only"
    else:
        folder.mkdir()
        folder.chmod(0o555)
        expected, words = errno.EACCES, "permission denied"
    try:
        with pytest.raises(EnvironmentFailureError) as info:
            dlformats.write(make_project(), folder / "out.zip")
    finally:
        if expected == errno.EACCES:
            folder.chmod(0o755)
    assert info.value.errno == expected and info.value.path == str(folder / "out.zip")
    assert str(info.value).startswith(
        f"{folder / 'out.zip'}: creating a temporary file in its folder failed: {words}"
    ), info.value
    assert names(folder) == []


def test_permission_denied_to_a_writer(tmp_path, use_formats):
    denied = PermissionError(errno.EACCES, "Permission denied", "/somewhere/.dlformats-1-0123456789ab.tmp")
    use_formats(FormatSpec(name="denied", extensions=(".den",), write=writer_failing_with(denied)))
    with pytest.raises(EnvironmentFailureError) as info:
        dlformats.write(make_project(), tmp_path / "out.den")
    assert str(info.value) == (
        f"{tmp_path / 'out.den'}: writing failed: permission denied (check the permissions of the file and its folder)"
    )
    assert names(tmp_path) == []


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_failures_finishing_the_write_are_environment_failures(tmp_path, monkeypatch, failing):
    target = tmp_path / "out.zip"
    target.write_bytes(b"old")

    def fail(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(f"dlformats.atomic.os.{failing}", fail)
    with pytest.raises(EnvironmentFailureError, match="writing failed: input/output error of the device") as info:
        with atomic_target(target) as tmp:
            tmp.write_bytes(b"new")
    monkeypatch.undo()
    assert info.value.path == str(target) and info.value.errno == errno.EIO
    assert names(tmp_path) == ["out.zip"] and target.read_bytes() == b"old"


# ------------------------------------------------------------------ misuse of the API
def test_write_needs_a_project_and_a_path(tmp_path):
    with pytest.raises(TypeError, match=r"write\(\) needs a dlformats.Project to write, not None"):
        dlformats.write(None, tmp_path / "out.zip")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a dict"):
        dlformats.write({"X": np.zeros((1, 1, 2, 2))}, tmp_path / "out.zip")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"write\(\) needs the output path as a str or os.PathLike, not None"):
        dlformats.write(make_project(), None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"convert\(\) needs the output path"):
        dlformats.convert(b"anything", 3)  # type: ignore[arg-type]
    assert names(tmp_path) == []


def test_project_arrays_must_be_arrays(tmp_path):
    with pytest.raises(TypeError, match=r"Project.X must be an array with shape and dtype .*not a list"):
        dlformats.Project(X=[[1, 2]])
    with pytest.raises(TypeError, match=r"Project.y must be an array .*\(features, frames, height, width\)"):
        dlformats.Project(y="labels")
    project = make_project()
    project.X = [[1, 2]]  # set after construction: refused when written or validated
    with pytest.raises(dlformats.InconsistentDataError, match="X: must be an array") as info:
        dlformats.write(project, tmp_path / "out.zip")
    assert info.value.path == str(tmp_path / "out.zip")
    assert [p.part for p in project.validate()] == ["X"]
    assert names(tmp_path) == []


def test_folder_replacement_failing_halfway_puts_the_previous_folder_back(tmp_path, monkeypatch):
    target = tmp_path / "out.zarr"
    target.mkdir()
    (target / "old").write_bytes(b"old")
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst) == target and Path(src).parent == tmp_path:  # the new folder, after the old one moved aside
            raise OSError(errno.EIO, "Input/output error")
        real_replace(src, dst)

    monkeypatch.setattr("dlformats.atomic.os.replace", replace)
    with pytest.raises(EnvironmentFailureError, match="input/output error"):
        with atomic_target(target, directory=True) as tmp:
            (tmp / "new").write_bytes(b"new")
    monkeypatch.undo()
    assert names(tmp_path) == ["out.zarr"] and names(target) == ["old"]


def test_typed_errors_caused_by_the_machine_say_so(tmp_path, use_formats):
    """A plugin that calls "too many open files" a corrupt file is corrected by the core."""

    def read(source, options):
        try:
            raise OSError(errno.EMFILE, "Too many open files")
        except OSError as exc:
            raise dlformats.CorruptFileError("cannot open: Too many open files", member="y.ome.tiff") from exc

    def write(project, path, options):
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as exc:
            raise dlformats.DLFormatsError(f"cannot write {path}") from exc

    use_formats(FormatSpec(name="mislabel", extensions=(".mis",), read=read, write=write))
    (tmp_path / "a.mis").write_bytes(b"data")
    with pytest.raises(EnvironmentFailureError) as info:
        dlformats.read(tmp_path / "a.mis")
    assert str(info.value).startswith(f"{tmp_path / 'a.mis'}: y.ome.tiff: reading failed: too many open files")
    assert info.value.format == "mislabel" and isinstance(info.value.__cause__, dlformats.CorruptFileError)
    with pytest.raises(EnvironmentFailureError, match="writing failed: no space left on the device") as info:
        dlformats.write(make_project(), tmp_path / "b.mis")
    assert info.value.path == str(tmp_path / "b.mis")
    assert names(tmp_path) == ["a.mis"]


def test_too_many_open_files_when_opening_a_source(tmp_path):
    source = tmp_path / "a.npy"
    np.save(source, np.zeros((4, 4), np.uint8))
    code = f"""
        import json, os, resource
        import dlformats
        dlformats.read({str(source)!r})  # plugins and their imports loaded
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        held = []
        try:
            while True:
                held.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        try:
            dlformats.read({str(source)!r})
            out = {{"type": None}}
        except Exception as exc:
            out = {{"type": type(exc).__name__, "message": str(exc), "errno": getattr(exc, "errno", None)}}
        for fd in held:
            os.close(fd)
        print(json.dumps(out))
    """
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.splitlines()[-1])
    assert got["type"] == "EnvironmentFailureError" and got["errno"] == errno.EMFILE, got
    assert got["message"].startswith(str(source)) and "too many open files" in got["message"], got
