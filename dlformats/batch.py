"""Batch conversion: many sources, each converted on its own, on any :class:`concurrent.futures.Executor`.

:func:`convert_many` turns files, folders and glob patterns into one task per source
(image/label pairs from a two-column CSV or a name pattern), skips outputs newer than
their sources, and runs the rest on a process pool of its own (``jobs`` workers), on a
Dask cluster (``scheduler="tcp://host:port"``, through ``Client(...).get_executor()``) or
on any executor given.  A source that fails is recorded (error type, message, seconds)
and the batch goes on; a worker process that dies (a crash of a native library, the
out-of-memory killer) costs only the sources it was converting.  Every output is
written atomically (see :mod:`dlformats.atomic`), so an interrupted batch leaves only
complete outputs, and running it again resumes where it stopped.

Importing this module is light: process pools, numpy and Dask load when a batch runs.
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import json
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import (
    DLFormatsError,
    InvalidOptionError,
    NetworkError,
    NoWriterError,
    UnsupportedFeatureError,
    environment_error,
)
from .limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    from concurrent.futures import Executor, Future

CONVERTED, SKIPPED, FAILED = "converted", "skipped", "failed"
"""The status of a source in a batch."""

_INTERRUPTED = "interrupted"
"""The status, in the report of a stopped batch, of sources not yet done."""

_DASK_EXTRA = "pip install 'dlformats[dask]'"


@dataclass
class BatchResult:
    """What became of one source of a batch.

    Attributes:
        source: the source as found (a path as given or walked, or a URL).
        labels: its separate labels file, or ``None``.
        status: ``"converted"``, ``"skipped"`` (its outputs are newer than it) or ``"failed"``.
        outputs: the files written (or found up to date); several for a source holding
            several projects (a ``.trks``: ``<name>_batch<N><ext>``).
        seconds: wall-clock seconds spent on it (0 when skipped).
        error_type: the class name of the error when it failed (``"CorruptFileError"``...).
        error: the error's one-line message when it failed.
        warnings: the warnings reading and writing it gave.
    """

    source: str
    labels: str | None = None
    status: str = CONVERTED
    outputs: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error_type: str | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The result as a JSON-able dict (one entry of the report's ``sources``)."""
        return asdict(self)


@dataclass
class BatchProgress:
    """How far a batch is, given to the ``progress`` callback after every source.

    Attributes:
        total: sources in the batch.
        converted, skipped, failed: sources done so far, by status.
        elapsed: seconds since the batch started.
    """

    total: int
    converted: int = 0
    skipped: int = 0
    failed: int = 0
    elapsed: float = 0.0

    @property
    def done(self) -> int:
        """Sources finished, whatever their status."""
        return self.converted + self.skipped + self.failed

    @property
    def rate(self) -> float:
        """Sources converted or failed per second (skipped ones cost nothing and do not count)."""
        worked = self.converted + self.failed
        return worked / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def seconds_left(self) -> float | None:
        """Estimated seconds until the batch ends, or ``None`` before the first source is done."""
        rate = self.rate
        if rate <= 0:
            return None
        return (self.total - self.done) / rate


@dataclass(frozen=True)
class _Task:
    """One source to convert: everything a worker needs, picklable (paths as strings)."""

    index: int
    source: str
    labels: str | None
    output: str
    to_format: str
    read: dict[str, Any]
    write_options: dict[str, Any]


# ------------------------------------------------------------------ the public entry point
def convert_many(
    sources: Iterable[Any],
    out_dir: str | os.PathLike[str],
    *,
    to: str,
    executor: Executor | None = None,
    jobs: int | None = None,
    scheduler: str | None = None,
    recursive: bool = False,
    overwrite: bool = False,
    pairs: str | os.PathLike[str] | None = None,
    match: tuple[str, str] | None = None,
    axes: str | None = None,
    labels_axes: str | None = None,
    from_format: str | None = None,
    labels_format: str | None = None,
    limits: Limits | None = None,
    options: Mapping[str, Any] | None = None,
    labels_options: Mapping[str, Any] | None = None,
    role: str = "image",
    write_options: Mapping[str, Any] | None = None,
    progress: Callable[[BatchProgress], None] | None = None,
    report: str | os.PathLike[str] | None = None,
) -> list[BatchResult]:
    """Convert every source to format ``to`` in ``out_dir``; return one :class:`BatchResult` per source.

    Args:
        sources: files, folders (every file a format claims by its extension; hidden
            files skipped; sub-folders only with ``recursive``), glob patterns
            (``"plate/*.tif"``, ``**`` with ``recursive``), ``http(s)://`` URLs, and
            ``(image, labels)`` pairs.
        out_dir: where outputs go, created if needed.  Each output keeps its source's
            folder relative to the folder all sources share, and the source's name with
            the extension of ``to`` (``a/b.ome.tif`` -> ``out/a/b.zip``); two sources
            that would share an output keep their whole names (``b.tif.zip``, ``b.png.zip``).
            A source holding several projects (a ``.trks``) gives ``<name>_batch<N><ext>``.
        to: the output format: a name from ``dlformats formats`` (``"dcl-project-zip"``,
            ``"npz"``) or an extension (``".npz"``).
        executor: where to run the conversions: any :class:`concurrent.futures.Executor`
            (a process pool, ``distributed.Client(...).get_executor()``...).  By default
            a process pool of ``jobs`` workers, made and shut down here.
        jobs: workers of the default process pool (default: the number of CPUs).
        scheduler: the address of a Dask scheduler (``"tcp://host:port"``) to run on
            instead; needs ``pip install 'dlformats[dask]'``.
        recursive: walk sub-folders of folder sources; ``**`` in glob patterns.
        overwrite: convert again sources whose outputs are newer than them (skipped otherwise).
        pairs: a CSV of ``image,labels`` rows (an optional header row ``image,labels``;
            relative paths are relative to the CSV's folder), added to ``sources``.
        match: ``(image pattern, labels pattern)``, each with one ``*``, such as
            ``("*_img.tif", "*_mask.tif")``: the files of ``sources`` matching the first are
            the images, each paired with the file beside it matching the second with the
            same ``*``; other files are left out.
        axes, labels_axes, from_format, labels_format, limits, options, labels_options, role:
            as for :func:`dlformats.convert`, applied to every source.
        write_options: format-specific write options, for every output.
        progress: called with a :class:`BatchProgress` after every source.
        report: write the report (JSON, see :func:`batch_report`) to this file at the end,
            also when the batch is interrupted.

    Raises:
        DLFormatsError: before anything runs, for a bad argument (an unknown format, a
            pattern matching nothing, no Dask...); never for a bad source, which is a
            failed result instead.
    """
    started = time.time()
    clock = time.monotonic()
    fmt_name, ext = _output_format(to)
    out = Path(out_dir)
    if match is not None:
        match = _check_match(match)
    items = list(sources)
    if pairs is not None:
        items += pairs_from_csv(pairs)
    if not items:
        raise InvalidOptionError("no sources given", hint="give files, folders, glob patterns or --pairs CSV")
    found = _collect(items, recursive=recursive, match=match, exclude=[out, *([Path(report)] if report else [])])
    if not found:
        raise InvalidOptionError("the sources hold no file any format reads", hint="check the paths and extensions")
    read = {
        "axes": axes,
        "labels_axes": labels_axes,
        "format": from_format,
        "labels_format": labels_format,
        "limits": limits or DEFAULT_LIMITS,
        "options": dict(options or {}),
        "labels_options": None if labels_options is None else dict(labels_options),
        "role": role,
    }
    outputs = _output_paths([image for image, _ in found], out, ext)
    tasks = [
        _Task(i, image, labels, str(outputs[i]), fmt_name, read, dict(write_options or {}))
        for i, (image, labels) in enumerate(found)
    ]
    _make_folder(out)
    results: list[BatchResult | None] = [None] * len(tasks)
    state = BatchProgress(total=len(tasks))

    def record(result: BatchResult, index: int) -> None:
        results[index] = result
        setattr(state, result.status, getattr(state, result.status) + 1)
        state.elapsed = time.monotonic() - clock
        if progress is not None:
            progress(replace(state))

    todo: list[_Task] = []
    for task in tasks:
        current = None if overwrite else _up_to_date(task)
        if current is None:
            todo.append(task)
        else:
            record(BatchResult(task.source, task.labels, SKIPPED, current), task.index)
    try:
        if todo:
            with _runner(executor, jobs, scheduler) as run:
                run(todo, record)
    except BaseException:
        if report is not None:
            done = [r or BatchResult(t.source, t.labels, _INTERRUPTED) for r, t in zip(results, tasks)]
            write_report(done, report, to=fmt_name, out_dir=out, started=started, interrupted=True)
        raise
    final = [r for r in results if r is not None]
    if report is not None:
        write_report(final, report, to=fmt_name, out_dir=out, started=started)
    return final


# ------------------------------------------------------------------ sources and outputs
def pairs_from_csv(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """The ``(image, labels)`` rows of a two-column CSV, paths relative to the CSV's folder.

    A first row ``image,labels`` (any of ``image/images/raw/x/src/source`` and
    ``labels/label/mask/masks/y/annotated``, any case) is a header and skipped.

    Raises:
        InvalidOptionError: the file cannot be read, or a row has not two non-empty fields.
    """
    import csv

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidOptionError(f"cannot read the pairs CSV: {exc}", path=str(path)) from exc
    rows = [r for r in csv.reader(text.splitlines()) if any(cell.strip() for cell in r)]
    if rows and _is_header(rows[0]):
        rows = rows[1:]
    out = []
    for number, row in enumerate(rows, 1):
        cells = [c.strip() for c in row]
        if len(cells) != 2 or not all(cells):
            raise InvalidOptionError(
                f"row {number} is {row!r}, not two paths", path=str(path), hint="write one 'image,labels' pair a line"
            )
        out.append(tuple(str(_beside(path, c)) for c in cells))
    return out  # type: ignore[return-value]


def _is_header(row: list[str]) -> bool:
    names = [c.strip().lower() for c in row]
    return (
        len(names) == 2
        and names[0] in ("image", "images", "raw", "x", "src", "source")
        and names[1] in ("labels", "label", "mask", "masks", "y", "annotated")
    )


def _beside(csv_path: Path, cell: str) -> str | Path:
    if _is_url(cell) or os.path.isabs(cell):
        return cell
    return csv_path.parent / cell


def _is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def _check_match(match: Sequence[str]) -> tuple[str, str]:
    if len(match) != 2:
        raise InvalidOptionError(
            f"match={match!r}", hint="give two patterns: images and labels, e.g. *_img.tif *_mask.tif"
        )
    for pattern in match:
        if pattern.count("*") != 1 or "/" in pattern or os.sep in pattern:
            raise InvalidOptionError(
                f"name pattern {pattern!r} must hold exactly one '*' and no folder",
                hint="e.g. --images '*_img.tif' --labels '*_mask.tif'",
            )
    return match[0], match[1]


def _claimed_extensions() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Extensions of readable formats: of files, and of folder formats (a folder source with that name)."""
    from .registry import get_registry

    files, folders = set(), set()
    for fmt in get_registry().formats():
        if fmt.spec.read is None:
            continue
        (folders if fmt.spec.folder else files).update(fmt.spec.extensions)
    return tuple(sorted(files)), tuple(sorted(folders))


def _collect(
    items: Iterable[Any], *, recursive: bool, match: tuple[str, str] | None, exclude: list[Path]
) -> list[tuple[str, str | None]]:
    """Expand sources into ``(image, labels)`` pairs, in order, each file once."""
    file_exts, folder_exts = _claimed_extensions()
    skip = [os.path.abspath(p) for p in exclude]
    seen: set[str] = set()
    out: list[tuple[str, str | None]] = []

    def add(image: str, labels: str | None) -> None:
        key = image if _is_url(image) else os.path.abspath(image)
        if key not in seen:
            seen.add(key)
            out.append((image, labels))

    def excluded(path: str) -> bool:
        full = os.path.abspath(path)
        return any(full == s or full.startswith(s + os.sep) for s in skip)

    def walk(folder: str) -> Iterator[str]:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            raise environment_error(exc, path=folder, doing="listing") or InvalidOptionError(
                f"cannot list the folder: {exc.strerror or exc}", path=folder
            ) from exc
        for entry in entries:
            if entry.name.startswith(".") or excluded(entry.path):
                continue
            lower = entry.name.lower()
            if entry.is_dir():
                if lower.endswith(folder_exts):
                    yield entry.path
                elif recursive:
                    yield from walk(entry.path)
            elif entry.is_file() and lower.endswith(file_exts):
                yield entry.path

    def expand(item: str) -> Iterator[str]:
        if _is_url(item):
            yield item
        elif os.path.isdir(item) and not item.lower().rstrip("/\\").endswith(folder_exts):
            yield from walk(item)
        elif os.path.lexists(item):
            yield item
        elif glob.has_magic(item):
            hits = sorted(glob.glob(item, recursive=recursive))
            if not hits:
                raise InvalidOptionError(f"the pattern {item!r} matches nothing")
            for hit in hits:
                if os.path.isdir(hit) and not hit.lower().endswith(folder_exts):
                    yield from walk(hit)
                elif not excluded(hit):
                    yield hit
        else:
            raise InvalidOptionError("no such file or folder", path=item)

    for item in items:
        if isinstance(item, tuple):
            if len(item) != 2:
                raise InvalidOptionError(f"source {item!r}", hint="give a pair as (image, labels)")
            add(os.fspath(item[0]), os.fspath(item[1]))
            continue
        if not isinstance(item, (str, os.PathLike)):
            raise TypeError(
                f"convert_many() takes paths, patterns or (image, labels) pairs, not a {type(item).__name__}"
            )
        for path in expand(os.fspath(item)):
            if match is None:
                add(path, None)
                continue
            name = os.path.basename(path)
            if fnmatch.fnmatchcase(name, match[0]):
                head, tail = match[0].split("*")
                core = name[len(head) : len(name) - len(tail)]
                add(path, os.path.join(os.path.dirname(path), match[1].replace("*", core)))
    return out


def _output_format(to: str) -> tuple[str, str]:
    """The format writing ``to`` (a format name or an extension) and the extension of its outputs."""
    from .registry import get_registry

    registry = get_registry()
    names = {f.name for f in registry.formats()}
    if to in names:
        fmt = registry.get(to)
        if fmt.spec.write is None:
            raise NoWriterError(f"format {to!r} cannot be written", format=to)
    else:
        ext = to if to.startswith(".") else f".{to}"
        try:
            fmt = registry.writer_for(f"out{ext}")
        except NoWriterError:
            raise InvalidOptionError(
                f"unknown output format {to!r}", hint="give a format name from 'dlformats formats' or an extension"
            ) from None
    return fmt.name, (fmt.spec.extensions[0] if fmt.spec.extensions else "")


def _strip_extension(name: str) -> str:
    """``name`` without the extension a format claims (``a.ome.tif`` -> ``a``), else without its last suffix."""
    from .registry import get_registry

    longest = max((f.spec.extension_match(name) for f in get_registry().formats()), default=0)
    if longest and longest < len(name):
        return name[:-longest]
    stem, dot, _ = name.rpartition(".")
    return stem if dot and stem else name


def _output_paths(images: list[str], out: Path, ext: str) -> list[Path]:
    """Each source's output: its folder relative to the sources' common folder, its name with ``ext``."""
    local = [not _is_url(s) for s in images]
    folders = [os.path.dirname(os.path.abspath(s.rstrip("/\\"))) for s, is_local in zip(images, local) if is_local]
    base = os.path.commonpath(folders) if folders else ""
    rel: list[str] = []
    for source, is_local in zip(images, local):
        if is_local:
            full = os.path.abspath(source.rstrip("/\\"))
            rel.append(os.path.relpath(full, base))
        else:
            rel.append(source.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "download")
    named = [os.path.join(os.path.dirname(r), _strip_extension(os.path.basename(r)) + ext) for r in rel]
    counts: dict[str, int] = {}
    for n in named:
        counts[os.path.normcase(n)] = counts.get(os.path.normcase(n), 0) + 1
    return [out / (n if counts[os.path.normcase(n)] == 1 else r + ext) for n, r in zip(named, rel)]


def _batch_name(dst: Path, index: int) -> Path:
    """The output of batch ``index`` of a source holding several projects, as :func:`dlformats.convert` names it."""
    name = dst.name
    dot = name.find(".")
    stem, suffix = (name[:dot], name[dot:]) if dot > 0 else (name, "")
    return dst.with_name(f"{stem}_batch{index}{suffix}")


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _up_to_date(task: _Task) -> list[str] | None:
    """The outputs of ``task`` when all are newer than its source and labels, else ``None``.

    A source holding several projects writes its batches last to first, so that
    batch 0 being there means they all are.
    """
    newest = 0
    for path in (task.source, task.labels):
        if path is None:
            continue
        if _is_url(path):
            continue  # nothing to compare: an output that is there is up to date
        stamp = _mtime(path)
        if stamp is None:
            return None  # let the worker report it
        newest = max(newest, stamp)
    dst = Path(task.output)
    stamp = _mtime(task.output)
    if stamp is not None and stamp > newest:
        return [task.output]
    first = _batch_name(dst, 0)
    stamp = _mtime(str(first))
    if stamp is None or stamp <= newest:
        return None
    found = []
    index = 0
    while (_mtime(str(path := _batch_name(dst, index))) or 0) > newest:
        found.append(str(path))
        index += 1
    return found


def _make_folder(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise environment_error(exc, path=str(path), doing="creating the output folder") or InvalidOptionError(
            f"cannot create the output folder: {exc.strerror or exc}", path=str(path)
        ) from exc


# ------------------------------------------------------------------ the worker side
class _Stopped(BaseException):
    """SIGTERM or SIGHUP reached a worker of the batch's own pool: unwind (removing the temporary) and exit."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _WorkerState(threading.local):
    busy = False
    records: list[str] | None = None


_STATE = _WorkerState()
_SHOWWARNING: list[Any] = []  # the showwarning that warnings outside a task go to


def _worker_init() -> None:
    """Initialise a worker of the batch's own process pool.

    SIGTERM and SIGHUP unwind the conversion under way (its temporary is removed)
    and end the worker; SIGINT is left to the batch, which stops its workers with
    SIGTERM.  A worker whose parent (the batch process, or the fork server that
    started it) died ends too.
    """

    def stop(signum: int, frame: Any) -> None:
        if _STATE.busy:
            _STATE.busy = False
            raise _Stopped(signum)
        os._exit(128 + signum)

    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    parent = os.getppid()

    def orphaned() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=orphaned, name="dlformats-batch-parent", daemon=True).start()


def _show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    records = _STATE.records
    if records is not None:
        records.append(str(message))
    elif _SHOWWARNING:
        _SHOWWARNING[0](message, category, filename, lineno, file, line)


@contextlib.contextmanager
def _recorded_warnings() -> Iterator[list[str]]:
    """_Record the warnings this thread gives meanwhile (other threads' warnings are shown as usual)."""
    if warnings.showwarning is not _show_warning:
        _SHOWWARNING[:] = [warnings.showwarning]
        warnings.showwarning = _show_warning
    records: list[str] = []
    previous, _STATE.records = _STATE.records, records
    try:
        yield records
    finally:
        _STATE.records = previous


def run_task(task: _Task) -> BatchResult:
    """Convert one source of a batch (what every worker runs; importable, so spawn-safe).

    Never raises for a bad source: the error is in the result.
    """
    result = BatchResult(task.source, task.labels)
    start = time.perf_counter()
    try:
        with _recorded_warnings() as caught:
            _STATE.busy = True
            try:
                result.outputs = _convert(task)
            except DLFormatsError as exc:
                result.status, result.error_type, result.error = FAILED, type(exc).__name__, str(exc)
            except Exception as exc:  # noqa: BLE001 - a bug of a plugin or of dlformats: recorded, the batch goes on
                result.status, result.error_type = FAILED, type(exc).__name__
                result.error = f"{task.source}: internal error: {type(exc).__name__}: {exc}"
            finally:
                _STATE.busy = False
        result.warnings = list(dict.fromkeys(caught))
    except _Stopped as stop:  # the temporary was removed on the way here
        os._exit(128 + stop.signum)
    result.seconds = round(time.perf_counter() - start, 6)
    return result


def _convert(task: _Task) -> list[str]:
    from .api import read_all, write

    dst = Path(task.output)
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise environment_error(exc, path=str(dst.parent), doing="creating the output folder") or InvalidOptionError(
            f"cannot create the output folder: {exc.strerror or exc}", path=str(dst.parent)
        ) from exc
    read = dict(task.read)
    projects = read_all(task.source, task.labels, **read)
    targets = [dst] if len(projects) == 1 else [_batch_name(dst, i) for i in range(len(projects))]
    # Last to first: batch 0 being there tells a rerun that every batch is.
    for i in reversed(range(len(projects))):
        write(projects[i], targets[i], format=task.to_format, options=task.write_options)
        projects[i] = None  # type: ignore[call-overload]
    return [str(t) for t in targets]


# ------------------------------------------------------------------ running the tasks
_Record = Callable[[BatchResult, int], None]


@contextlib.contextmanager
def _runner(
    executor: Executor | None, jobs: int | None, scheduler: str | None
) -> Iterator[Callable[[list[_Task], _Record], None]]:
    if executor is not None and scheduler is not None:
        raise InvalidOptionError("give an executor or a scheduler, not both")
    if executor is not None:
        yield lambda tasks, record: _run_on(executor, tasks, record, window=None)
        return
    if scheduler is not None:
        with _dask_executor(scheduler) as dask:
            yield lambda tasks, record: _run_on(dask, tasks, record, window=None)
        return
    workers = _jobs(jobs)
    yield lambda tasks, record: _run_on_pool(workers, tasks, record)


def _jobs(jobs: int | None) -> int:
    if jobs is None:
        return max(1, os.cpu_count() or 1)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise InvalidOptionError(f"jobs={jobs!r}", hint="give a number of worker processes, 1 or more")
    return jobs


@contextlib.contextmanager
def _dask_executor(address: str) -> Iterator[Executor]:
    """``Client(address).get_executor()``, the client closed afterwards."""
    try:
        from distributed import Client
    except ImportError:
        raise UnsupportedFeatureError(
            "running on a Dask scheduler needs dask.distributed, which is not installed", hint=_DASK_EXTRA
        ) from None
    try:
        client = Client(address, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise NetworkError(
            f"cannot reach the Dask scheduler at {address}: {exc}",
            hint="check the address (tcp://host:port) and that the scheduler runs",
        ) from exc
    try:
        yield client.get_executor(pure=False)
    finally:
        client.close()


def _outcome(task: _Task, future: Future[Any]) -> BatchResult:
    """The result of a finished future: the worker's, or a failure saying what became of the worker."""
    try:
        result = future.result()
    except Exception as exc:  # noqa: BLE001 - the executor's own failure (a lost worker...): the source failed
        return BatchResult(
            task.source,
            task.labels,
            FAILED,
            error_type=type(exc).__name__,
            error=f"{task.source}: the worker failed: {type(exc).__name__}: {exc}",
        )
    if not isinstance(result, BatchResult):
        return BatchResult(task.source, task.labels, FAILED, error_type="TypeError", error=f"bad result {result!r}")
    return result


def _run_on(executor: Executor, tasks: list[_Task], record: _Record, *, window: int | None) -> None:
    """Run ``tasks`` on ``executor``, at most ``window`` at once; record each result as it comes."""
    from concurrent.futures import FIRST_COMPLETED, wait

    queue = list(reversed(tasks))
    running: dict[Future[Any], _Task] = {}
    try:
        while queue or running:
            while queue and (window is None or len(running) < window):
                task = queue.pop()
                running[executor.submit(run_task, task)] = task
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                task = running.pop(future)
                record(_outcome(task, future), task.index)
    except BaseException:
        for future in running:
            future.cancel()
        raise


def _run_on_pool(workers: int, tasks: list[_Task], record: _Record) -> None:
    """Run ``tasks`` on a process pool of ``workers``, surviving workers that die.

    At most two tasks per worker are in flight, so when a worker dies (the pool is then
    broken) the suspects are few: each is tried again alone in a pool of its own, and
    fails with ``WorkerCrashed`` should its worker die again.  Tasks not yet submitted
    go on in a new pool.
    """
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    queue = list(reversed(tasks))
    while queue:
        pool = _new_pool(min(workers, len(queue)))
        running: dict[Future[Any], _Task] = {}
        suspects: list[_Task] = []
        try:
            while queue or running:
                while queue and len(running) < 2 * workers:
                    task = queue.pop()
                    try:
                        running[pool.submit(run_task, task)] = task
                    except BrokenProcessPool:
                        queue.append(task)
                        break
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                broken = False
                for future in done:
                    task = running.pop(future)
                    if isinstance(future.exception(), BrokenProcessPool):
                        suspects.append(task)
                        broken = True
                    else:
                        record(_outcome(task, future), task.index)
                if broken:
                    suspects += running.values()
                    running.clear()
                    break
        except BaseException:
            _stop_pool(pool)
            raise
        _stop_pool(pool, graceful=not suspects)
        for task in sorted(suspects, key=lambda t: t.index):
            record(_alone(task), task.index)


def _new_pool(workers: int) -> Any:
    """A process pool whose workers start as :func:`_worker_init` says.

    On Linux a single-threaded process forks its workers (the quickest start); a process
    running threads (forking it could copy a lock held by one of them) uses a fork server,
    and other systems their default (spawn on macOS and Windows).  Workers only import
    :func:`run_task`, so every start method works.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context()
    if sys.platform.startswith("linux"):
        method = "fork" if threading.active_count() == 1 else "forkserver"
        context = multiprocessing.get_context(method)
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init)


def _alone(task: _Task) -> BatchResult:
    """Run ``task`` in a pool of its own: its result, or ``WorkerCrashed`` when that worker dies too."""
    from concurrent.futures.process import BrokenProcessPool

    pool = _new_pool(1)
    try:
        future = pool.submit(run_task, task)
        processes = list(getattr(pool, "_processes", {}).values())
        try:
            return future.result()
        except BrokenProcessPool:
            for p in processes:
                p.join(5)
            codes = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
            how = f" (exit code {codes[0]}{_signal_name(codes[0])})" if codes else ""
            return BatchResult(
                task.source,
                task.labels,
                FAILED,
                error_type="WorkerCrashed",
                error=f"{task.source}: the worker process converting it died{how}",
            )
        except Exception as exc:  # noqa: BLE001 - anything else the pool raises: the source failed
            return BatchResult(task.source, task.labels, FAILED, error_type=type(exc).__name__, error=str(exc))
    finally:
        _stop_pool(pool)


def _signal_name(code: int) -> str:
    if code >= 0:
        return ""
    try:
        return f": {signal.Signals(-code).name}"
    except ValueError:
        return ""


def _stop_pool(pool: Any, *, graceful: bool = False) -> None:
    """Shut ``pool`` down; unless ``graceful``, stop its workers with SIGTERM (they remove their temporaries)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    if graceful:
        pool.shutdown(wait=True)
        return
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        if p.is_alive():
            with contextlib.suppress(OSError):
                p.terminate()
    deadline = time.monotonic() + 20
    for p in processes:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            with contextlib.suppress(OSError):
                p.kill()
            p.join(5)


# ------------------------------------------------------------------ the report
def batch_report(
    results: Sequence[BatchResult],
    *,
    to: str,
    out_dir: str | os.PathLike[str],
    started: float | None = None,
    interrupted: bool = False,
) -> dict[str, Any]:
    """The report of a batch, as a JSON-able dict.

    ``{"dlformats": version, "to": format, "out_dir": ..., "started": ISO time, "interrupted": bool,
    "summary": {"converted": n, "skipped": n, "failed": n[, "interrupted": n]}, "sources": [...]}``,
    one entry per source (see :meth:`BatchResult.to_dict`), in the order of the sources.
    """
    from . import __version__

    summary = {CONVERTED: 0, SKIPPED: 0, FAILED: 0}
    for r in results:
        summary[r.status] = summary.get(r.status, 0) + 1
    stamp = None
    if started is not None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started))
    return {
        "dlformats": __version__,
        "to": to,
        "out_dir": str(out_dir),
        "started": stamp,
        "interrupted": interrupted,
        "summary": summary,
        "sources": [r.to_dict() for r in results],
    }


def write_report(
    results: Sequence[BatchResult],
    path: str | os.PathLike[str],
    *,
    to: str,
    out_dir: str | os.PathLike[str],
    started: float | None = None,
    interrupted: bool = False,
) -> Path:
    """Write :func:`batch_report` to ``path`` (atomically); return the path."""
    from .atomic import atomic_target

    report = batch_report(results, to=to, out_dir=out_dir, started=started, interrupted=interrupted)
    path = Path(path)
    if str(path.parent):
        _make_folder(path.parent)
    with atomic_target(path) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------ the command
class ProgressLine:
    """Progress of a batch on one line of stderr: done, failed, rate, time left.

    Shown only on a terminal (and not with ``DLFORMATS_NO_PROGRESS``), from the first second on.
    """

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() and not os.environ.get("DLFORMATS_NO_PROGRESS")
        self.start = time.monotonic()
        self.shown = False

    def __call__(self, state: BatchProgress) -> None:
        if not self.enabled or time.monotonic() - self.start < 1.0:
            return
        left = state.seconds_left
        eta = "" if left is None else f", {_duration(left)} left"
        self.stream.write(
            f"\rbatch: {state.done}/{state.total} done, {state.failed} failed, {state.rate:.1f} files/s{eta}\x1b[K"
        )
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def summary_line(results: Sequence[BatchResult], seconds: float) -> str:
    """``"200 sources: 197 converted, 0 skipped, 3 failed in 12.3 s"``."""
    count = {s: sum(r.status == s for r in results) for s in (CONVERTED, SKIPPED, FAILED)}
    return (
        f"{len(results)} sources: {count[CONVERTED]} converted, {count[SKIPPED]} skipped, "
        f"{count[FAILED]} failed in {seconds:.1f} s"
    )


__all__ = [
    "CONVERTED",
    "FAILED",
    "SKIPPED",
    "BatchProgress",
    "BatchResult",
    "ProgressLine",
    "batch_report",
    "convert_many",
    "pairs_from_csv",
    "run_task",
    "summary_line",
    "write_report",
]
