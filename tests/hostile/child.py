"""Run hostile cases in this (child) process, under a memory cap, a time limit and an audit hook.

Usage: ``python child.py MANIFEST.json``.  The manifest lists cases already written to
disk: ``{"id", "input", "labels", "out_dir", "out_name", "kwargs", "convert_kwargs", "limits", "read_ok",
"expect_ok", "check"}``.  For each case this process prints one JSON line
``{"id", "started": true}`` and then one with the outcome:

* ``read`` / ``convert``: ``"ok"`` or the error's type name, plus its MRO names,
  message and whether the message names the input file;
* ``violations``: audit events that wrote outside the case's output folder, opened a
  socket, started a process or unpickled;
* ``facts``: for a successful read, shapes and dtypes (and a read-back of the output).

The parent (``test_hostile.py``) compares the outcome with the case's expectation and
restarts a child after one that died (the "started" line tells which case killed it).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

MEMORY_CAP = int(1.5 * (1 << 30))
CASE_SECONDS = 20

_allowed: list[str] = []
_violations: list[str] = []

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_PATH_EVENTS = {
    "os.rename": 2,
    "os.replace": 2,
    "os.remove": 1,
    "os.rmdir": 1,
    "os.mkdir": 1,
    "os.truncate": 1,
    "os.chmod": 1,
    "os.chown": 1,
    "os.link": 2,
    "os.symlink": 2,
    "os.utime": 1,
    "shutil.copyfile": 2,
    "shutil.copymode": 2,
    "shutil.copystat": 2,
    "shutil.copytree": 2,
    "shutil.move": 2,
    "shutil.rmtree": 1,
    "shutil.chown": 1,
}
_FORBIDDEN = (
    "socket.",
    "urllib.Request",
    "http.client.",
    "ftplib.",
    "smtplib.",
    "subprocess.Popen",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "pickle.find_class",
    "shutil.unpack_archive",
    "shutil.make_archive",
    "tarfile.extractall",
    "webbrowser.open",
    "ctypes.call_function",
)


def _inside(path: Any) -> bool:
    if isinstance(path, int):  # a descriptor: opened (and checked) earlier
        return True
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    real = os.path.realpath(os.path.abspath(os.fspath(path)))
    return any(real == d or real.startswith(d + os.sep) for d in _allowed)


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _allowed:  # outside a case: imports, reporting
        return
    if event == "open":
        path, mode, flags = ((*tuple(args), None, None, None))[:3]
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS
        )
        if writing and not _inside(path):
            _violations.append(f"open for writing outside the output folder: {path!r} mode={mode!r}")
    elif event in _PATH_EVENTS:
        for path in args[: _PATH_EVENTS[event]]:
            if path is not None and not _inside(path):
                _violations.append(f"{event} outside the output folder: {path!r}")
    elif event.startswith(_FORBIDDEN):
        _violations.append(f"{event} {args!r:.200}")
        if event.startswith(("socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "pickle.")):
            raise RuntimeError(f"audit: {event} is forbidden while reading untrusted files")


class CaseTimeoutError(BaseException):
    """The case ran past its time limit (a hang)."""


def _alarm(signum: int, frame: Any) -> None:
    raise CaseTimeoutError("no result within the time limit")


def _describe(exc: BaseException, *paths: str | None) -> dict[str, Any]:
    text = str(exc)
    return {
        "type": type(exc).__name__,
        "mro": [c.__name__ for c in type(exc).__mro__],
        "message": text[:2000],
        "names_file": any(p and p in text for p in paths),
        "cause": type(exc.__cause__).__name__ if exc.__cause__ is not None else None,
        "traceback": "".join(traceback.format_exception(exc))[-4000:],
    }


def _listing(folder: Path) -> dict[str, str]:
    import hashlib

    out = {}
    for path in sorted(folder.iterdir()):
        if path.is_symlink():
            out[path.name] = "symlink -> " + os.readlink(path)
        elif path.is_file():
            out[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[path.name] = "folder"
    return out


def _facts(project: Any, values: bool = True) -> dict[str, Any]:
    import numpy as np

    facts: dict[str, Any] = {}
    for part in ("X", "y"):
        array = getattr(project, part)
        if array is not None:
            facts[part] = list(array.shape)
            facts[part + "_dtype"] = str(np.dtype(array.dtype))
            if values:  # reads every plane: lazy readers meet broken planes here
                facts[part + "_sum"] = float(np.asarray(array, dtype=np.float64).sum())
    if project.spots is not None:
        facts["spots"] = len(project.spots)
    return facts


def _canary(actions: list[str], outside: str) -> dict[str, str]:
    """Do forbidden things on purpose, to prove the hook, the memory cap and the time limit work."""
    import pickle
    import socket

    done = {}
    for action in actions:
        try:
            if action == "write_outside":
                with open(outside, "w") as fh:
                    fh.write("x")
            elif action == "rename_outside":
                os.replace(outside, outside + ".moved")
            elif action == "socket":
                with socket.socket() as sock:
                    sock.connect(("127.0.0.1", 9))
            elif action == "pickle":
                pickle.loads(pickle.dumps(Path))
            elif action == "allocate":
                bytearray(2 * MEMORY_CAP)
            elif action == "sleep":
                time.sleep(5)
            done[action] = "done"
        except (RuntimeError, OSError, MemoryError) as exc:
            done[action] = type(exc).__name__
    return done


def run_case(spec: dict[str, Any]) -> dict[str, Any]:
    import dlformats
    from dlformats import Limits

    limits = Limits().replace(**spec["limits"]) if spec["limits"] else None
    input_path = spec["input"]
    out_dir = Path(spec["out_dir"])
    target = out_dir / spec["out_name"]
    result: dict[str, Any] = {"id": spec["id"], "before": _listing(out_dir)}
    kwargs = dict(spec["kwargs"])
    if spec["labels"]:
        kwargs["labels"] = spec["labels"]
    _allowed[:] = [os.path.realpath(out_dir)]
    _violations.clear()
    started = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, spec.get("seconds", CASE_SECONDS))
    try:
        if spec.get("canary"):
            result["canary"] = _canary(spec["canary"], spec["outside"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                projects = dlformats.read_all(input_path, limits=limits, **kwargs)
                result["read"] = {"type": "ok"}
                one = len(projects) == 1
                result["facts"] = _facts(projects[0], not spec["read_ok"]) if one else {"batches": len(projects)}
            except dlformats.DLFormatsError as exc:
                result["read"] = _describe(exc, input_path, spec["labels"])
            convert_kwargs = {**kwargs, **spec["convert_kwargs"]}
            if "format" in convert_kwargs:
                convert_kwargs["from_format"] = convert_kwargs.pop("format")
            try:
                written = dlformats.convert(input_path, target, limits=limits, **convert_kwargs)
                result["convert"] = {"type": "ok", "written": [Path(p).name for p in written]}
                if spec["expect_ok"] and written:
                    back = dlformats.read_all(written[0], limits=limits)
                    result["readback"] = _facts(back[0])
                    if spec["out_name"].endswith(".csv"):
                        result["output_text"] = Path(written[0]).read_text("utf-8")[:2000]
            except dlformats.DLFormatsError as exc:
                result["convert"] = _describe(exc, input_path, spec["labels"], str(target))
    except CaseTimeoutError as exc:
        result.setdefault("read", {"type": "timeout", "message": str(exc)})
        result["convert"] = {"type": "timeout", "message": str(exc)}
    except Exception as exc:  # noqa: BLE001 - reported to the parent as a failure, not hidden
        where = "convert" if "read" in result else "read"
        result[where] = {**_describe(exc, input_path), "type": "escaped " + type(exc).__name__}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _allowed.clear()
    result["seconds"] = round(time.monotonic() - started, 3)
    result["violations"] = list(_violations)
    result["after"] = _listing(out_dir)
    return result


def main(manifest_path: str) -> int:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    signal.signal(signal.SIGALRM, _alarm)
    sys.dont_write_bytecode = True
    import numpy  # noqa: F401 - import the heavy libraries before the hook, so their loading is not audited
    import tifffile  # noqa: F401
    import zarr

    # zarr 3 runs its I/O on an asyncio loop, whose creation opens a socket pair (the loop's wake-up
    # channel, not the network): start it now, before the hook forbids sockets.
    zarr.create_array(store={}, shape=(1,), dtype="i1")[...]

    import dlformats

    dlformats.formats()
    sys.addaudithook(_hook)
    specs = json.loads(Path(manifest_path).read_text("utf-8"))
    for spec in specs:
        print(json.dumps({"id": spec["id"], "started": True}), flush=True)
        print(json.dumps(run_case(spec)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
