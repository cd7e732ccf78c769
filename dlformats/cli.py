"""The ``dlformats`` command: ``convert``, ``info``, ``formats``, ``validate``, ``batch`` and ``merge``.

Hints in its error messages use its own syntax (``--select Z=0``), not Python's
(:func:`dlformats.errors.command_syntax`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .errors import (
    AmbiguousInputError,
    DLFormatsError,
    DLFormatsWarning,
    EnvironmentFailureError,
    InvalidOptionError,
    command_syntax,
)
from .limits import Limits

EXIT_PROBLEMS = 1
"""``validate`` found problems, or a source of ``batch`` failed."""
EXIT_ERROR = 2
"""A typed error: bad input, a bad option, a plugin's failure..."""
EXIT_INTERNAL = 3
"""A bug: an exception that is not a typed error."""
EXIT_ENVIRONMENT = 4
"""The machine failed: disk full, permission denied, too many open files, the network."""
_STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")
"""Signals that stop the command cleanly (temporary removed, one line, exit 128 + the signal's number)."""


class _Interrupted(KeyboardInterrupt):
    """Raised in the main thread when one of :data:`_STOP_SIGNALS` arrives; ``signum`` says which.

    A ``KeyboardInterrupt``, so that everything unwinds as for Ctrl-C: the write under way
    removes its temporary (:func:`dlformats.atomic.atomic_target`).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """Turn SIGINT, SIGTERM and SIGHUP into :class:`_Interrupted` while the command runs.

    A signal the parent set to be ignored (``nohup``, a background job) stays ignored, and
    so does a repeated signal while the first one unwinds (the temporary is being removed).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping: list[int] = []

    def stop(signum: int, frame: Any) -> None:
        if stopping:
            return
        stopping.append(signum)
        raise _Interrupted(signum)

    previous: dict[int, Any] = {}
    for name in _STOP_SIGNALS:
        sig = getattr(signal, name, None)
        if sig is None:
            continue
        current = signal.getsignal(sig)
        if current is (signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL):
            previous[sig] = signal.signal(sig, stop)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _pairs(items: Sequence[str] | None, what: str) -> dict[str, Any]:
    """``KEY=VALUE`` items as a dict of strings (the core converts each to its option's declared type).

    ``select`` is the exception: its value is a JSON object of axis letters (``{"Z": 0}``).
    """
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidOptionError(f"bad {what} {item!r}", hint=f"use --{what} KEY=VALUE")
        out[key] = value
    if "select" in out:
        try:
            out["select"] = json.loads(out["select"])
        except ValueError as exc:
            raise InvalidOptionError(
                f"--{what} select={out['select']} is not a JSON object", option="select", hint='use select={"Z": 0}'
            ) from exc
    return out


def _read_options(args: argparse.Namespace) -> dict[str, Any]:
    options = _pairs(args.option, "option")
    select = _pairs(args.select, "select")
    if select:
        options["select"] = select
    return options


def _reading(args: argparse.Namespace) -> dict[str, Any]:
    """The read arguments shared by ``convert``, ``info`` and ``validate``."""
    labels_options = _pairs(args.labels_option, "labels-option") if args.labels_option else None
    return {
        "axes": args.axes,
        "labels_axes": args.labels_axes,
        "labels_format": args.labels_format,
        "limits": args.limits,
        "options": _read_options(args),
        "labels_options": labels_options,
        "role": args.role,
    }


_UNIT_NAMES = {"planes": "planes (image and labels)"}
"""How the progress bar explains a writer's unit (:attr:`FormatSpec.progress_unit`) the first time."""


class _Progress:
    """A progress bar on stderr, shown only on a terminal and only after the first second.

    It counts the units the writer reports (``unit``: the format's ``progress_unit``,
    e.g. planes of the image and labels, or frames), with the rate and the time left.
    """

    def __init__(self, label: str, stream: Any = None, *, unit: str = "planes") -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() and not os.environ.get("DLFORMATS_NO_PROGRESS")
        self.start = time.monotonic()
        self.label = label
        self.unit = unit
        self.shown = False

    def line(self, done: int, total: int, elapsed: float) -> str:
        """The bar's text after ``elapsed`` seconds with ``done`` of ``total`` units written."""
        width = 30
        done = max(0, min(done, total))
        filled = int(width * done / total)
        rate = done / elapsed if elapsed > 0 else 0.0
        left = f"{_duration((total - done) / rate)} left" if rate > 0 and done < total else ""
        speed = f"{rate:.1f} {self.unit}/s" if rate < 10 else f"{rate:.0f} {self.unit}/s"
        unit = _UNIT_NAMES.get(self.unit, self.unit)
        return (
            f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {100 * done / total:3.0f}% "
            f"{done}/{total} {unit}, {speed}" + (f", {left}" if left else "")
        )

    def __call__(self, done: int, total: int) -> None:
        elapsed = time.monotonic() - self.start
        if not self.enabled or elapsed < 1.0 or total <= 0:
            return
        self.stream.write("\r" + self.line(done, total, elapsed) + "\x1b[K")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def _duration(seconds: float) -> str:
    whole = round(seconds)
    if whole >= 3600:
        return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"
    return f"{whole // 60}:{whole % 60:02d}"


def _cmd_convert(args: argparse.Namespace) -> int:
    from .api import convert
    from .registry import get_registry

    unit = get_registry().writer_for(args.dst, args.to_format).spec.progress_unit
    progress = _Progress(f"writing {os.path.basename(args.dst)}", unit=unit)
    try:
        written = convert(
            args.src,
            args.dst,
            labels=args.labels,
            from_format=args.from_format,
            to_format=args.to_format,
            **_reading(args),
            write_options=_pairs(args.write_option, "write-option"),
            progress=progress,
            strict=args.strict,
        )
    finally:
        progress.close()
    for path in written:
        print(path)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .api import info

    try:
        summary = info(args.src, labels=args.labels, format=args.from_format, raw=args.raw, **_reading(args))
    except AmbiguousInputError as exc:  # a file that needs a choice: --raw describes it as it is
        exc.hint = f"{exc.hint}; " if exc.hint else ""
        exc.hint += f"'dlformats info {args.src} --raw' shows what it holds"
        raise
    if args.raw:
        if args.json:
            print(json.dumps(summary, indent=2))
        else:
            _print_raw(summary)
        return 0
    for s in summary.get("batches", [summary]):
        if s.get("axes_from") == "default":
            note = s.get("axes_note") or "the file does not say"
            warnings.warn(
                f"{args.src}: axes {s['axes']} were assumed ({note}); --axes gives the real order, "
                "'dlformats info --raw' shows what the file holds",
                DLFormatsWarning,
                stacklevel=2,
            )
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    batches = summary.get("batches", [summary])
    for i, s in enumerate(batches):
        if len(batches) > 1:
            print(f"batch {i}:")
        print(f"format:     {s['format']} (plugin {s['plugin']})")
        if s.get("axes"):
            how = {"file": "from the file", "option": "from --axes", "default": "assumed"}.get(s["axes_from"], "")
            print(f"axes:       {s['axes']} ({how})")
        for part, axes in (("X", "channels, frames, height, width"), ("y", "features, frames, height, width")):
            d = s[part]
            print(f"{part}:          " + (f"{tuple(d['shape'])} {d['dtype']}  ({axes})" if d else "none"))
        print(f"frames:     {s['frames']} ({s['frame_axis']})")
        print(f"channels:   {', '.join(repr(c) for c in s['channels']) or '-'}")
        if s.get("features"):
            print(f"features:   {', '.join(repr(c) for c in s['features'])}")
        derived = " (derived from the labels)" if s.get("cells_derived") else ""
        print(f"cells:      {s['cells']} entries, {s['distinct_cells']} distinct cells{derived}")
        print(f"divisions:  {s['divisions']}")
        print(f"spots:      {s['spots']}")
        print(f"cell types: {s['cell_types']}")
    return 0


def _print_raw(raw: dict[str, Any]) -> None:
    """``info --raw`` as text: each series as the file holds it, and the choices it needs."""
    print(f"format:   {raw['format']} (plugin {raw['plugin']})")
    for s in raw.get("series", []):
        kind = f"{s['kind']} " if s.get("kind") else ""
        what = f" ({s['part']})" if s.get("part") else ""
        axes = f"axes {s['axes']}" if s.get("axes") else "as read"
        print(f"series {s['index']}{what}: {kind}{axes} shape {tuple(s['shape'])} {s['dtype']}")
        if s.get("levels"):
            print(f"  levels:      {', '.join(str(tuple(lv)) for lv in s['levels'])}")
        sizes = s.get("pixel_sizes") or {}
        if sizes:
            print("  pixel sizes: " + ", ".join(f"{a} {v:g} {u}".rstrip() for a, (v, u) in sizes.items()))
        if s.get("channels"):
            print(f"  channels:    {', '.join(repr(c) for c in s['channels'])}")
        maps = s.get("maps_to") or {}
        if "needs" in maps:
            print(f"  read as:     needs a choice ({maps['needs']['option']}): {maps['needs']['why']}")
        elif maps:
            arr = "X" if "X" in maps else "y"
            note = f"; assumed: {maps['axes_note']}" if maps.get("axes_note") else ""
            print(
                f"  read as:     axes {maps['axes']} ({maps['axes_from']}{note}) -> {arr} {tuple(maps[arr])} "
                f"(frames: {maps['frame_axis']})"
            )
    for c in raw.get("choices", []):
        print(f"choice:   {c.get('use') or c['option']}: {c['gives']} ({c['option']}: {', '.join(c['values'])})")
    if raw.get("note"):
        print(f"note:     {raw['note']}")


def _cmd_formats(args: argparse.Namespace) -> int:
    from .api import formats
    from .registry import get_registry

    if args.name is not None:
        return _show_format(args.name, as_json=args.json)
    rows = formats()
    registry = get_registry()
    failed = [
        {"plugin": f.name, "distribution": f.distribution, "format": f.format, "error": f.error}
        for f in registry.failures
    ]
    if args.json:
        print(json.dumps({"formats": rows, "failed_plugins": failed, "blocked_plugins": registry.blocked}, indent=2))
        return 0
    print(f"{'format':<22} {'r/w':<4} {'plugin':<16} {'distribution':<24} extensions")
    for r in rows:
        rw = ("r" if r["reads"] else "-") + ("w" if r["writes"] else "-")
        dist = f"{r['distribution']} {r['version']}".strip()
        print(f"{r['name']:<22} {rw:<4} {r['plugin']:<16} {dist:<24} {' '.join(r['extensions'])}")
    for f in registry.failures:
        what = f"plugin {f.name}" if f.format is None else f"format {f.format} of plugin {f.name}"
        print(f"FAILED {what} ({f.distribution}): {f.error}")
    for name in registry.blocked:
        print(f"blocked plugin {name}")
    return 0


def _show_format(name: str, *, as_json: bool) -> int:
    """``dlformats formats NAME``: the declaration of one format, its options and its plugin."""
    from .registry import get_registry
    from .spec import _CORE_READ_OPTIONS

    fmt = get_registry().get(name)
    if as_json:
        print(json.dumps(fmt.to_json(), indent=2))
        return 0
    spec = fmt.spec
    print(f"{spec.name}: {spec.description}")
    print(
        f"plugin:        {fmt.plugin} ({fmt.distribution} {fmt.version}{', built-in' if fmt.builtin else ''})".rstrip()
    )
    print(f"extensions:    {' '.join(spec.extensions) or '-'}{' (a folder)' if spec.folder else ''}")
    print(f"reads parts:   {', '.join(sorted(spec.reads)) if spec.read else '- (not readable)'}")
    chosen = [
        f"{o.name}={choice}: {', '.join(sorted(parts))}"
        for o in spec.write_options
        for choice, parts in o.writes or ()
        if choice != o.default
    ]
    also = f" ({'; '.join(chosen)})" if chosen else ""
    print(f"writes parts:  {', '.join(sorted(spec.writes)) + also if spec.write else '- (not writable)'}")
    if spec.write is not None:
        others = "" if len(spec.frame_axes) == 3 else f" (others are written as {spec.frame_axes[0]})"
        print(f"frames as:     {', '.join(spec.frame_axes)}{others}")
        print(f"progress in:   {spec.progress_unit}")
    if spec.read is not None:
        print("read options (--option KEY=VALUE):")
        core = [f"{summary}: {text}" for summary, text in _CORE_READ_OPTIONS.values()]
        for line in [o.describe() for o in spec.read_options] + core:
            print(f"  {line}")
    if spec.write is not None:
        print("write options (--write-option KEY=VALUE):" + ("" if spec.write_options else " none"))
        for option in spec.write_options:
            print(f"  {option.describe()}")
    if spec.install_hint:
        print(f"needs:         {spec.install_hint}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from .api import read_all, validate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # what reading warns about, validate reports
        projects = read_all(
            args.src,
            args.labels,
            format=args.from_format,
            **_reading(args),
        )
    problems = [p for project in projects for p in validate(project)]
    for p in problems:
        print(f"{args.src}: {p}")
    if not problems:
        print(f"{args.src}: no problems found")
    else:
        errors = sum(p.severity == "error" for p in problems)
        print(f"{args.src}: {len(problems)} problem(s): {errors} error(s), {len(problems) - errors} warning(s)")
    return EXIT_PROBLEMS if problems else 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``dlformats`` command."""
    parser = argparse.ArgumentParser(
        prog="dlformats",
        description="Convert microscopy images, labels and lineages to and from DeepCell Label projects.",
        epilog=(
            "exit status: 0 done, 1 validate found problems or a batch source failed, "
            "2 error (input, option, plugin), 3 internal error, "
            "4 the machine failed (disk full, permission denied, too many open files, network), "
            "128+N stopped by signal N (SIGINT, SIGTERM, SIGHUP: the output being written is removed)"
        ),
    )
    from . import __version__

    parser.add_argument("--debug", action="store_true", help="show tracebacks (anywhere on the line)")
    parser.add_argument("--version", action="version", version=f"dlformats {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def add_parser(name: str, **kw: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, **kw)
        # SUPPRESS: a subcommand without --debug leaves the main parser's value alone
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
        return p

    def reading(p: argparse.ArgumentParser) -> None:
        p.add_argument("src", help="file, folder or http(s):// URL to read")
        p.add_argument(
            "--role",
            choices=("image", "labels"),
            default="image",
            help="labels: read SRC itself as labels (a mask alone: y filled, cells derived, no image)",
        )
        p.add_argument("--labels", help="separate labels file (TIFF, label zip, trk, npy...)")
        p.add_argument("--axes", help="axis order of the image, letters TZBCSYX (e.g. CZYX, YXC)")
        p.add_argument("--labels-axes", help="axis order of the labels")
        p.add_argument("--from", dest="from_format", help="read with this format (see 'dlformats formats')")
        p.add_argument("--select", action="append", metavar="AXIS=INDEX", help="keep one plane of an axis (e.g. Z=0)")
        p.add_argument("--labels-from", dest="labels_format", help="read --labels with this format")
        p.add_argument(
            "--option",
            action="append",
            metavar="KEY=VALUE",
            help="read option of the format (e.g. series=1; 'dlformats formats FORMAT' lists them); "
            "applies to --labels too unless --labels-option is given",
        )
        p.add_argument(
            "--labels-option",
            action="append",
            metavar="KEY=VALUE",
            help='read option for --labels alone (e.g. series=0, select={"Z": 0}); replaces --option/--select for it',
        )
        p.add_argument(
            "--limit", action="append", default=[], metavar="NAME=VALUE", help="raise or lower a resource limit"
        )

    p = add_parser("convert", help="convert SRC to DST (.zip = DeepCell Label project zip)")
    reading(p)
    p.add_argument("dst", help="output file; the format comes from --to or its extension")
    p.add_argument("--to", dest="to_format", help="write with this format")
    p.add_argument(
        "--strict",
        action="store_true",
        help="refuse (before writing) when DST's format would leave parts out, instead of warning",
    )
    p.add_argument(
        "--write-option",
        action="append",
        metavar="KEY=VALUE",
        help="write option of the format (e.g. compression=zstd; 'dlformats formats FORMAT' lists them)",
    )
    p.set_defaults(func=_cmd_convert)

    p = add_parser("info", help="describe what SRC is and holds")
    reading(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--raw",
        action="store_true",
        help="describe the file as it is, before any mapping: series, axes, shapes, pixel sizes, the choices it needs",
    )
    p.set_defaults(func=_cmd_info)

    p = add_parser("formats", help="list every format and plugin, or describe one format and its options")
    p.add_argument("name", nargs="?", help="a format to describe: parts, extensions, read and write options, plugin")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_formats)

    p = add_parser("validate", help="report every problem in SRC; exit 1 if any")
    reading(p)
    p.set_defaults(func=_cmd_validate)

    # batch and merge: many sources, each with the read options of convert (dlformats.batch, dlformats.merging)
    def many(p: argparse.ArgumentParser, what: str) -> None:
        reading(p)
        src = next(a for a in p._actions if a.dest == "src")
        src.nargs, src.help = "*", f"files, folders or glob patterns {what}"
        p.add_argument("--recursive", action="store_true", help="walk sub-folders; ** in glob patterns")
        p.add_argument("--pairs", metavar="CSV", help="a CSV of 'image,labels' rows (relative to the CSV's folder)")
        p.add_argument("--images", metavar="PATTERN", help="with --labels: images by name, e.g. '*_img.tif'")
        p.add_argument("--labels", metavar="PATTERN", help="labels beside each image by name, e.g. '*_mask.tif'")
        p.add_argument("--write-option", action="append", metavar="KEY=VALUE", help="format-specific write option")

    p = sub.add_parser(
        "batch", help="convert many files into --out DIR; exit 1 if any failed", conflict_handler="resolve"
    )
    many(p, "to convert (a folder: every file a format reads)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder; outputs keep the sources' sub-folders")
    p.add_argument("--to", dest="to_format", required=True, help="output format name or extension (e.g. npz, .zip)")
    p.add_argument("--jobs", type=int, help="worker processes (default: the number of CPUs)")
    p.add_argument(
        "--scheduler",
        default=os.environ.get("DASK_SCHEDULER_ADDRESS") or None,
        metavar="ADDRESS",
        help="run on this Dask scheduler (tcp://host:port; default $DASK_SCHEDULER_ADDRESS)",
    )
    p.add_argument("--report", metavar="FILE", help="write a JSON report of every source")
    p.add_argument("--overwrite", action="store_true", help="convert again sources whose outputs are newer")
    p.set_defaults(func=_cmd_batch)

    p = sub.add_parser("merge", help="merge many projects into one training file DST", conflict_handler="resolve")
    many(p, "to merge, one batch per project, then DST")
    p.add_argument(
        "dst", help="output: .npz (deepcell-tf), .trks (deepcell-tracking), or any format (frames = batches)"
    )
    p.add_argument("--to", dest="to_format", help="write with this format")
    p.add_argument("--fit", choices=("error", "pad", "crop"), default="error", help="projects of different sizes")
    p.set_defaults(func=_cmd_merge)
    return parser


def _many(args: argparse.Namespace) -> dict[str, Any]:
    """The arguments ``batch`` and ``merge`` share."""
    if (args.images is None) != (args.labels is None):
        raise InvalidOptionError(
            "--images and --labels go together", hint="e.g. --images '*_img.tif' --labels '*_mask.tif'"
        )
    if not args.src and not args.pairs:
        raise InvalidOptionError("no sources given", hint="give files, folders, glob patterns or --pairs CSV")
    return {
        "recursive": args.recursive,
        "pairs": args.pairs,
        "match": (args.images, args.labels) if args.images is not None else None,
        "from_format": args.from_format,
        **_reading(args),
        "write_options": _pairs(args.write_option, "write-option"),
    }


def _cmd_batch(args: argparse.Namespace) -> int:
    from .batch import CONVERTED, FAILED, ProgressLine, convert_many, summary_line

    progress, start = ProgressLine(), time.monotonic()
    try:
        results = convert_many(
            args.src,
            args.out,
            to=args.to_format,
            jobs=args.jobs,
            scheduler=args.scheduler,
            overwrite=args.overwrite,
            report=args.report,
            progress=progress,
            **_many(args),
        )
    finally:
        progress.close()
    for r in results:
        if r.status == FAILED:
            print(f"dlformats: failed ({r.error_type}): {r.error}", file=sys.stderr)
        elif r.status == CONVERTED:
            print("\n".join(r.outputs))
    print(f"dlformats: batch: {summary_line(results, time.monotonic() - start)}", file=sys.stderr)
    return EXIT_PROBLEMS if any(r.status == FAILED for r in results) else 0


def _cmd_merge(args: argparse.Namespace) -> int:
    from .merging import merge

    progress = _Progress("merging")
    try:
        print(merge(args.src, args.dst, to=args.to_format, fit=args.fit, progress=progress, **_many(args)))
    finally:
        progress.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return its exit status."""
    # dlformats does no linear algebra: without this, importing numpy starts one OpenBLAS thread
    # per core, which spin for a while and take a small machine's cores from the conversion.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.func
    try:
        if hasattr(args, "limit"):
            args.limits = Limits.parse(args.limit)
        with warnings.catch_warnings(), _stop_on_signals(), command_syntax():
            warnings.simplefilter("default")
            warnings.showwarning = _show_warning  # type: ignore[assignment]
            return run(args)
    except DLFormatsError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"dlformats: error: {exc}", file=sys.stderr)
        return EXIT_ENVIRONMENT if isinstance(exc, EnvironmentFailureError) else EXIT_ERROR
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, _Interrupted) else signal.SIGINT
        print(f"dlformats: interrupted by {signal.Signals(signum).name}", file=sys.stderr)
        return 128 + signum
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - a bug: say so in one line; --debug shows where
        if args.debug:
            traceback.print_exc()
        print(f"dlformats: internal error: {type(exc).__name__}: {exc} (run with --debug for details)", file=sys.stderr)
        return EXIT_INTERNAL


def _show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    print(f"dlformats: warning: {message}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


__all__ = ["EXIT_ENVIRONMENT", "EXIT_ERROR", "EXIT_INTERNAL", "EXIT_PROBLEMS", "build_parser", "main"]
