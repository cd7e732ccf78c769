"""Speed and memory of dlformats against the reference pipeline: one command, one table.

Run: ``python benchmarks/bench_speed.py`` (add ``--big-gb 8`` for the full larger-than-memory case;
``--quick`` for a smaller smoke run).  Every file is generated into a temporary folder and removed.

Rows (see issue "Speed and memory"):

1. convert npz / TIFF (2 x 50 x 1024 x 1024 uint8 image + int32 labels) to a project zip, whole commands,
   interpreter start included: dlformats default output, dlformats with zstd, and the reference pipeline
   (``benchmarks/reference_pipeline.py``); MB/s of input, peak memory / input;
2. the export rule at 10 ... 10,000 cells per frame: dlformats' lookup table against one mask per cell;
3. larger than memory: a generated N GB TIFF timelapse and an N GB npy converted with peak memory
   under 1 GB; ``dlformats info`` on the result;
4. start-up: ``import dlformats`` and ``dlformats formats``;
5. reading a project zip: time until the first frame is in hand, for few and many frames.
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
            ("default", [], ">= 5x"),
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


def main() -> None:
    parser = argparse.ArgumentParser(description="dlformats speed and memory benchmarks")
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--big-gb", type=float, default=8.0, help="size of the larger-than-memory case (0 skips)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.frames, args.big_gb = 6, 0.2
    folder = Path(tempfile.mkdtemp(prefix="dlformats-bench-"))
    try:
        bench_startup(folder)
        bench_export_rule()
        bench_convert(folder, args.frames, args.size)
        bench_first_frame(folder)
        if args.big_gb > 0:
            bench_big(folder, args.big_gb)
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
