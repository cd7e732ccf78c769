"""Speed and memory of dlformats against the reference pipeline: one command, one table.

Run: ``python benchmarks/bench_speed.py`` (add ``--big-gb 8`` for the full larger-than-memory case;
``--quick`` for a smaller smoke run; ``--only many,disk`` for some sections).  Every file is generated
into a temporary folder and removed.

Rows (see issues "Speed and memory" and "Speed II"):

1. convert npz / TIFF (2 x 50 x 1024 x 1024 uint8 image + int32 labels) to a project zip, whole commands,
   interpreter start included: dlformats default output, dlformats with zstd, and the reference pipeline
   (``benchmarks/reference_pipeline.py``); MB/s of input, peak memory / input;
2. the export rule at 10 ... 10,000 cells per frame: dlformats' lookup table against one mask per cell;
   and end to end: ``dlformats convert`` of a project zip of 30 frames of 1024 x 1024 with 1,600 cells
   per frame, against the one-mask-per-cell rule alone on the same labels;
3. larger than memory: a generated N GB TIFF timelapse and an N GB npy converted with peak memory
   under 1 GB; ``dlformats info`` on the result;
4. start-up: ``import dlformats`` and ``dlformats formats``;
5. reading a project zip: time until the first frame is in hand, for few and many frames;
6. many cells: a project zip of 200 frames of 256 x 256 with 1,600 cells per frame (320,000 cells.json
   entries) converted to a project zip, against the plain json + tifffile script
   (``benchmarks/plain_roundtrip.py``); ``dlformats info`` on it;
7. at the speed of the disk: a 2 GB uint16 noise stack (npy, and uncompressed TIFF) converted to a project
   zip, against ``cp`` of the same file; ours includes the fsync of the atomic write, cp does not, so
   ``cp`` followed by ``sync`` of the copy is shown too.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DLF = [sys.executable, "-m", "dlformats.cli"]
rows: list[tuple[str, str, str, str, str]] = []


def row(what: str, ours: str, reference: str = "", ratio: str = "", target: str = "") -> None:
    rows.append((what, ours, reference, ratio, target))
    print(f"  {what}: {ours}" + (f" | reference {reference} | ratio {ratio}" if reference else ""), flush=True)


def run(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS in MB of one child process (measured by a wrapper, so children don't mix)."""
    wrapper = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "r = subprocess.run(sys.argv[1:], capture_output=True); s = time.perf_counter() - t; "
        "sys.stderr.buffer.write(r.stderr); "
        "print(s, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)"
    )
    out = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True)
    seconds, peak_kb, code = out.stdout.split()
    if int(code) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{out.stderr}")
    return float(seconds), int(peak_kb) / 1024


def best_of(n: int, cmd: list[str]) -> float:
    return min(run(cmd)[0] for _ in range(n))


def make_inputs(folder: Path, frames: int, size: int) -> tuple[Path, Path, Path, int]:
    import numpy as np
    import tifffile

    rng = np.random.default_rng(0)
    X = rng.normal(60, 25, (2, frames, size, size)).clip(0, 255).astype(np.uint8)  # noisy microscopy
    y = np.zeros((1, frames, size, size), np.int32)
    cell = 40
    for t in range(frames):
        label = 1
        for r in range(0, size - cell, cell + 8):
            for c in range(0, size - cell, cell + 8):
                y[0, t, r + t % 5 : r + cell, c : c + cell] = label
                label += 1
    npz = folder / "timelapse.npz"
    np.savez(npz, X=np.moveaxis(X, 0, -1), y=np.moveaxis(y, 0, -1))  # DeepCell layout (T, Y, X, C)
    tif = folder / "timelapse.ome.tif"
    tifffile.imwrite(tif, X, ome=True, metadata={"axes": "CTYX"}, photometric="minisblack")
    labels = folder / "timelapse.labels.tif"
    tifffile.imwrite(labels, y[0], metadata={"axes": "TYX"}, photometric="minisblack")
    return npz, tif, labels, X.nbytes + y.nbytes


def bench_convert(folder: Path, frames: int, size: int) -> None:
    print("1. convert", flush=True)
    npz, tif, labels, nbytes = make_inputs(folder, frames, size)
    mb = nbytes / 1e6
    out = folder / "out.zip"
    for label, src, extra in (
        ("npz", [str(npz)], []),
        ("TIFF", [str(tif), "--labels", str(labels)], []),
    ):
        ref_s, ref_peak = run([sys.executable, str(HERE / "reference_pipeline.py"), str(src[0]), str(out)])
        for codec, opts, target in (
            ("default", [], ">= 10x"),
            ("zstd", ["--write-option", "compression=zstd"], ">= 10x"),
        ):
            s, peak = run([*DLF, "convert", src[0], str(out), *src[1:], *extra, *opts])
            row(
                f"convert {label} -> zip, {codec} ({mb:.0f} MB in)",
                f"{mb / s:.0f} MB/s, peak {peak / mb:.2f} x input",
                f"{mb / ref_s:.0f} MB/s, peak {ref_peak / mb:.2f} x input",
                f"{(mb / s) / (mb / ref_s):.1f} x",
                f"{target}, peak < 1.2 x",
            )
        out.unlink(missing_ok=True)


def bench_export_rule() -> None:
    import numpy as np

    sys.path.insert(0, str(HERE))
    from reference_pipeline import export_rule_per_cell

    from dlformats.containers.codecs import cells_from_json

    print("2. export rule", flush=True)
    size = 1024
    frames = 8
    rates = []
    for per_frame in (10, 150, 1600, 10000):
        side = int(np.ceil(np.sqrt(per_frame)))
        block = size // side
        grid = np.arange(side * side, dtype=np.int32).reshape(side, side) + 1
        plane = np.kron(grid, np.ones((block, block), np.int32))
        plane = np.pad(plane, ((0, size - plane.shape[0]), (0, size - plane.shape[1])))
        plane[plane > per_frame] = 0
        y = np.stack([plane] * frames)[None]
        entries = [{"value": v, "cell": v, "t": t, "c": 0} for t in range(frames) for v in range(1, per_frame + 1)]
        entries += [{"value": 1, "cell": per_frame + 5, "t": t, "c": 0} for t in range(frames)]  # one overlap a frame
        cells, _ = cells_from_json(entries)  # as a project zip's cells.json is read
        ours = _best_rate(lambda cells=cells, y=y: _export_ours(cells, y), y.nbytes)
        rates.append(ours)
        ref = ratio = ""
        if per_frame <= 1600:
            first = [e for e in entries if e["t"] == 0]
            ref_rate = _best_rate(lambda y=y, first=first: export_rule_per_cell(y[:, :1], first), y[:, :1].nbytes, 1)
            ref = f"{ref_rate * 1000:.0f} MB/s"
            ratio = f"{ours / ref_rate:.1f} x"
        row(f"export rule, {per_frame} cells/frame", f"{ours:.2f} GB/s", ref, ratio, ">= 1 GB/s")
    row("export rule, slowest / fastest (10..10,000 cells)", f"{max(rates) / min(rates):.2f} x", "", "", "<= 1.5 x")


def _export_ours(cells, y) -> None:
    from dlformats.model import plan_export

    plan = plan_export(cells)
    for t in range(y.shape[1]):
        plan.apply(y[0, t], 0, t)


def _best_rate(work, nbytes: int, repeat: int = 10) -> float:
    """GB/s of the best of ``repeat`` timed runs, after one untimed warm-up run."""
    work()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return nbytes / best / 1e9


def bench_big(folder: Path, gigabytes: float) -> None:
    import numpy as np
    import tifffile

    print(f"3. larger than memory ({gigabytes} GB)", flush=True)
    size = 2048
    frames = max(1, int(gigabytes * 1e9 // (size * size)))
    tif = folder / "big.tif"
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 255, (size, size), dtype=np.uint8)
    with tifffile.TiffWriter(tif, bigtiff=True) as w:
        w.write(
            (np.roll(noise, t, axis=0) for t in range(frames)),
            shape=(frames, size, size),
            dtype=np.uint8,
            photometric="minisblack",
            metadata={"axes": "TYX"},
        )
    npy = folder / "big.npy"
    arr = np.lib.format.open_memmap(npy, mode="w+", dtype=np.uint8, shape=(frames, size, size))
    for t in range(frames):
        arr[t] = np.roll(noise, t, axis=1)
    arr.flush()
    del arr
    gb = tif.stat().st_size / 1e9
    out = folder / "big.zip"
    for label, src in (("TIFF", tif), ("npy", npy)):
        s, peak = run([*DLF, "convert", str(src), str(out), "--axes", "TYX"])
        row(
            f"convert {gb:.1f} GB {label} -> zip",
            f"{gb * 1000 / s:.0f} MB/s, peak {peak:.0f} MB",
            "",
            "",
            "peak < 1 GB",
        )
        if label == "TIFF":
            s, _ = run([*DLF, "info", str(out)])
            row(f"dlformats info on the {out.stat().st_size / 1e9:.1f} GB zip", f"{s * 1000:.0f} ms", "", "", "< 1 s")
            first = run_first_frame(out, warm=_small_zip(folder))
            row(f"first frame of a {frames}-frame project zip", f"{first * 1000:.0f} ms", "", "", "< 100 ms")
        out.unlink(missing_ok=True)
    tif.unlink()
    npy.unlink()


def _small_zip(folder: Path) -> Path:
    import numpy as np

    import dlformats

    path = folder / "warm.zip"
    if not path.exists():
        dlformats.write(dlformats.Project(X=np.zeros((1, 1, 8, 8), np.uint8)), path)
    return path


def run_first_frame(path: Path, warm: Path | None = None) -> float:
    """Seconds from ``dlformats.read`` to the first frame in hand, in a fresh process whose
    libraries are already loaded (by reading ``warm``, another project zip, first)."""
    code = (
        "import sys, time, dlformats\n"
        "if len(sys.argv) > 2: dlformats.read(sys.argv[2]).X[0, 0]\n"
        "t = time.perf_counter(); p = dlformats.read(sys.argv[1]); p.X[0, 0]; print(time.perf_counter() - t)"
    )
    args = [str(path)] + ([str(warm)] if warm else [])
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return float(out.stdout)


def bench_startup(folder: Path) -> None:
    print("4. start-up", flush=True)
    bare = best_of(7, [sys.executable, "-c", "pass"])
    imp = best_of(7, [sys.executable, "-c", "import dlformats"])
    row("import dlformats (added to a bare interpreter)", f"{(imp - bare) * 1000:.0f} ms", "", "", "< 50 ms")
    fmts = best_of(5, [*DLF, "formats"])
    row("dlformats formats", f"{fmts * 1000:.0f} ms", "", "", "< 300 ms")


def bench_first_frame(folder: Path) -> None:
    import numpy as np

    import dlformats

    print("5. lazy read", flush=True)
    warm = _small_zip(folder)
    for frames in (2, 400):
        X = np.zeros((1, frames, 256, 256), np.uint8)
        path = folder / f"f{frames}.zip"
        dlformats.write(dlformats.Project(X=X, y=np.zeros(X.shape, np.int32), cells=[]), path)
        seconds = run_first_frame(path, warm)
        row(f"first frame of a {frames}-frame project zip", f"{seconds * 1000:.0f} ms", "", "", "< 100 ms")


def bench_export_end_to_end(folder: Path, frames: int = 30, size: int = 1024, per_frame: int = 1600) -> None:
    """``dlformats convert`` of a project zip (whole command) against the one-mask-per-cell rule alone."""
    import numpy as np

    import dlformats
    from dlformats.model import CellTable

    sys.path.insert(0, str(HERE))
    from reference_pipeline import export_rule_per_cell

    print("2b. export rule end to end", flush=True)
    side = int(np.ceil(np.sqrt(per_frame)))
    block = size // side
    grid = np.arange(side * side, dtype=np.int32).reshape(side, side) + 1
    plane = np.kron(grid, np.ones((block, block), np.int32))
    plane = np.pad(plane, ((0, size - plane.shape[0]), (0, size - plane.shape[1])))
    plane[plane > per_frame] = 0
    y = np.stack([np.roll(plane, t, axis=1) for t in range(frames)])[None]
    rng = np.random.default_rng(3)
    X = rng.normal(60, 25, (1, frames, size, size)).clip(0, 255).astype(np.uint8)
    value = np.tile(np.arange(1, per_frame + 1), frames)
    t = np.repeat(np.arange(frames), per_frame)
    # every 97th value holds a second cell too: the rule gives those values new ones
    cell = np.concatenate([value, value[::97] + per_frame])
    value = np.concatenate([value, value[::97]])
    t = np.concatenate([t, t[::97]])
    src = folder / "export-src.zip"
    dlformats.write(dlformats.Project(X=X, y=y, cells=CellTable(value, cell, t, np.zeros_like(t))), src)
    out = folder / "export-out.zip"
    ours = min(run([*DLF, "convert", str(src), str(out)])[0] for _ in range(2))
    # the reference rule on a few frames, scaled to all of them (it costs the same per frame)
    sample = 3
    entries = [{"value": int(v), "cell": int(k), "t": int(f), "c": 0} for v, k, f in zip(value, cell, t) if f < sample]
    start = time.perf_counter()
    export_rule_per_cell(y[:, :sample], entries)
    ref = (time.perf_counter() - start) * frames / sample
    mb = y.nbytes / 1e6
    row(
        f"export rule end to end: convert zip ({frames} x {size}^2, {per_frame} cells/frame)",
        f"{ours:.2f} s ({mb / ours:.0f} MB/s of labels)",
        f"{ref:.1f} s (rule alone; {sample} frames timed x {frames // sample})",
        f"{ref / ours:.1f} x",
        ">= 25x",
    )
    src.unlink()
    out.unlink(missing_ok=True)


def make_many_cells_zip(path: Path, frames: int = 200, size: int = 256, per_frame: int = 1600) -> int:
    """A tracked movie's project zip: ``per_frame`` square cells per frame, the same ids in every frame."""
    import numpy as np

    import dlformats
    from dlformats.model import CellTable

    side = int(np.ceil(np.sqrt(per_frame)))
    block = size // side
    grid = np.arange(1, side * side + 1, dtype=np.int32).reshape(side, side)
    plane = np.kron(grid, np.ones((block, block), np.int32))
    plane = np.pad(plane, ((0, size - plane.shape[0]), (0, size - plane.shape[1])))
    plane[plane > per_frame] = 0
    rng = np.random.default_rng(2)
    X = rng.normal(60, 25, (1, frames, size, size)).clip(0, 255).astype(np.uint8)
    y = np.stack([plane] * frames)[None]
    value = np.tile(np.arange(1, per_frame + 1), frames)
    t = np.repeat(np.arange(frames), per_frame)
    dlformats.write(dlformats.Project(X=X, y=y, cells=CellTable(value, value, t, np.zeros_like(t))), path)
    return len(value)


def bench_many_cells(folder: Path, frames: int = 200) -> None:
    print("6. many cells", flush=True)
    src = folder / "many-cells.zip"
    count = make_many_cells_zip(src, frames=frames)
    out = folder / "many-out.zip"
    plain = min(run([sys.executable, str(HERE / "plain_roundtrip.py"), str(src), str(out)])[0] for _ in range(3))
    ours = min(run([*DLF, "convert", str(src), str(out)])[0] for _ in range(3))
    row(
        f"{count:,}-cell project zip -> zip (validated)",
        f"{ours:.2f} s",
        f"{plain:.2f} s (plain json + tifffile script)",
        f"{plain / ours:.2f} x",
        ">= 1.0x",
    )
    info = min(run([*DLF, "info", str(src)])[0] for _ in range(5))
    row(f"dlformats info on the {count:,}-cell zip", f"{info * 1000:.0f} ms", "", "", "< 300 ms")
    src.unlink()
    out.unlink(missing_ok=True)


def bench_disk_speed(folder: Path, gigabytes: float) -> None:
    """Uncompressible stacks at the speed of the disk: convert against ``cp`` of the same file."""
    import numpy as np
    import tifffile

    print(f"7. at the speed of the disk ({gigabytes} GB uint16 noise)", flush=True)
    size = 2048
    frames = max(1, int(gigabytes * 1e9 // (size * size * 2)))
    rng = np.random.default_rng(4)
    noise = rng.normal(1000, 200, (size, size)).clip(0, 65535).astype(np.uint16)  # microscopy-like noise
    npy = folder / "noise.npy"
    arr = np.lib.format.open_memmap(npy, mode="w+", dtype=np.uint16, shape=(frames, size, size))
    for t in range(frames):
        arr[t] = np.roll(noise, 7 * t, axis=1)
    arr.flush()
    del arr
    tif = folder / "noise.tif"
    with tifffile.TiffWriter(tif, bigtiff=True) as w:
        w.write(
            (np.roll(noise, 7 * t, axis=0) for t in range(frames)),
            shape=(frames, size, size),
            dtype=np.uint16,
            photometric="minisblack",
            metadata={"axes": "TYX"},
        )
    out = folder / "noise.zip"
    copy = folder / "copy.bin"
    for label, src in (("npy", npy), ("TIFF", tif)):
        gb = src.stat().st_size / 1e9
        cp = []
        durable = []
        ours = []
        peak = 0.0
        for _ in range(2):  # alternate, so that all see the same state of the disk
            cp.append(run(["cp", str(src), str(copy)])[0])
            copy.unlink()
            # the atomic write fsyncs the output before renaming it: a copy made as durable
            durable.append(run(["sh", "-c", 'cp "$0" "$1" && sync "$1"', str(src), str(copy)])[0])
            copy.unlink()
            s, p = run([*DLF, "convert", str(src), str(out), "--axes", "TYX"])
            ours.append(s)
            peak = max(peak, p)
            out.unlink()
        row(
            f"convert {gb:.1f} GB uint16 noise {label} -> zip",
            f"{gb * 1000 / min(ours):.0f} MB/s, peak {peak:.0f} MB",
            f"cp {gb * 1000 / min(cp):.0f} MB/s (cp + sync {gb * 1000 / min(durable):.0f} MB/s: "
            f"{min(durable) / min(ours):.2f} x)",
            f"{min(cp) / min(ours):.2f} x",
            ">= 0.5x, peak < 300 MB",
        )
    npy.unlink()
    tif.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description="dlformats speed and memory benchmarks")
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--big-gb", type=float, default=8.0, help="size of the larger-than-memory case (0 skips)")
    parser.add_argument("--disk-gb", type=float, default=2.0, help="size of the at-the-speed-of-the-disk case")
    parser.add_argument("--many-frames", type=int, default=200, help="frames of the many-cells project")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    sections = ("startup", "export", "convert", "first", "big", "many", "disk")
    parser.add_argument("--only", default=",".join(sections), help="comma-separated sections: " + ", ".join(sections))
    args = parser.parse_args()
    if args.quick:
        args.frames, args.big_gb, args.disk_gb, args.many_frames = 6, 0.2, 0.2, 20
    only = set(args.only.split(","))
    # Installed packages come with bytecode; a checkout run with PYTHONDONTWRITEBYTECODE would
    # compile dlformats afresh in every command timed.
    import compileall

    for package in (HERE.parent / "dlformats", HERE.parent / "plugins"):
        compileall.compile_dir(package, quiet=2)
    folder = Path(tempfile.mkdtemp(prefix="dlformats-bench-"))
    try:
        if "startup" in only:
            bench_startup(folder)
        if "export" in only:
            bench_export_rule()
            bench_export_end_to_end(folder, frames=6 if args.quick else 30)
        if "convert" in only:
            bench_convert(folder, args.frames, args.size)
        if "first" in only:
            bench_first_frame(folder)
        # before the sections that stream gigabytes through the page cache, which evict the
        # interpreter's and numpy's files: start-up-bound rows would then measure the disk
        if "many" in only:
            bench_many_cells(folder, args.many_frames)
        if "big" in only and args.big_gb > 0:
            bench_big(folder, args.big_gb)
        if "disk" in only and args.disk_gb > 0:
            bench_disk_speed(folder, args.disk_gb)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print()
    widths = [
        max(len(r[i]) for r in [("measure", "dlformats", "reference", "ratio", "target"), *rows]) for i in range(5)
    ]
    header = ("measure", "dlformats", "reference", "ratio", "target")
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths)))
    print(
        f"\nmachine: {os.cpu_count()} cores; python {sys.version.split()[0]}; "
        f"max RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


if __name__ == "__main__":
    main()
