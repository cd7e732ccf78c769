"""Benchmark: a DeepCell Label project zip to OME-Zarr and back, with peak memory, beside ``cp``.

Generates a project zip of ``--gb`` GB of pixels (image and labels together, raw): one uint16 channel
of noisy 1024 x 1024 planes (like microscopy, incompressible) and int32 labels holding a few hundred
square cells per frame, then times whole commands (interpreter start included):

* ``dlformats convert project.zip out.ome.zarr`` (NGFF 0.5, zstd; the zip's TIFFs read plane by plane),
* ``dlformats convert out.ome.zarr back.zip`` (planes read from the chunks),
* ``cp`` of the zip and ``cp -r`` of the store: the cost of merely moving those bytes on this disk.

MB/s are of the project's raw pixel bytes; peak is the resident memory of the command.  Files live in a
temporary folder, removed at the end.

Usage: ``python benchmarks/bench_omezarr.py [--gb 8] [--quick] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZE = 1024
DLF = [sys.executable, "-m", "dlformats.cli"]


class _Planes:
    """A lazy (1, frames, SIZE, SIZE) array generated plane by plane (noise, or square cells)."""

    def __init__(self, frames: int, labels: bool) -> None:
        import numpy as np

        self.shape = (1, frames, SIZE, SIZE)
        self.dtype = np.dtype(np.int32 if labels else np.uint16)
        self.labels = labels
        rng = np.random.default_rng(0)
        self.noise = rng.normal(400, 80, (SIZE, SIZE)).clip(0, 4095).astype(np.uint16)

    def __getitem__(self, key: tuple[int, int]) -> object:
        import numpy as np

        _, t = key[:2]
        if not self.labels:
            return np.roll(self.noise, t * 7, axis=1)
        plane = np.zeros((SIZE, SIZE), np.int32)
        cell, step, label = 40, 48, 1
        for r in range(0, SIZE - cell, step):
            for c in range(0, SIZE - cell, step):
                plane[r + t % 5 : r + cell, c : c + cell] = label
                label += 1
        return plane


def make_zip(path: Path, gigabytes: float) -> tuple[int, int]:
    """Write the generated project; return (frames, raw pixel bytes)."""
    import dlformats

    per_frame = SIZE * SIZE * (2 + 4)
    frames = max(2, int(gigabytes * 1e9 // per_frame))
    project = dlformats.Project(X=_Planes(frames, False), y=_Planes(frames, True), channels=["DNA"])
    dlformats.write(project, path)
    return frames, frames * per_frame


def run(cmd: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS in MB of one child command (measured by a
    wrapper process, so that children of this script do not mix)."""
    wrapper = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "r = subprocess.run(sys.argv[1:], capture_output=True); s = time.perf_counter() - t; "
        "sys.stderr.buffer.write(r.stderr); u = resource.getrusage(resource.RUSAGE_CHILDREN); "
        "print(s, u.ru_utime + u.ru_stime, u.ru_maxrss, r.returncode)"
    )
    out = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True)
    seconds, cpu, peak_kb, code = out.stdout.split()
    if int(code) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{out.stderr}")
    return float(seconds), float(cpu), int(peak_kb) / 1024


def disk_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=8.0, help="raw pixel bytes of the project, in GB (default 8)")
    parser.add_argument("--quick", action="store_true", help="a small run (0.3 GB)")
    parser.add_argument("--keep", help="work in this folder and keep the files")
    args = parser.parse_args()
    gigabytes = 0.3 if args.quick else args.gb
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="dlformats-bench-omezarr-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        src, store, back = folder / "project.zip", folder / "out.ome.zarr", folder / "back.zip"
        start = time.perf_counter()
        frames, raw = make_zip(src, gigabytes)
        print(
            f"input: project zip of 1 x {frames} x {SIZE} x {SIZE} uint16 image + int32 labels = {raw / 1e9:.2f} GB "
            f"of pixels, {disk_bytes(src) / 1e9:.2f} GB on disk (generated in {time.perf_counter() - start:.0f} s)",
            flush=True,
        )
        rows = []
        for label, a, b in (("zip -> OME-Zarr", src, store), ("OME-Zarr -> zip", store, back)):
            seconds, cpu, peak = run([*DLF, "convert", str(a), str(b)])
            copy = folder / "copy"
            cp_seconds, _, _ = run(["cp", "-r", str(a), str(copy)])
            shutil.rmtree(copy) if copy.is_dir() else copy.unlink()
            rows.append((label, seconds, cpu, peak, disk_bytes(a), disk_bytes(b), cp_seconds))
            print(f"  {label}: {seconds:.1f} s", flush=True)
        header = f"{'conversion':<18} {'seconds':>8} {'CPU s':>7} {'MB/s':>7} {'peak MB':>8} {'in GB':>6} {'out GB':>7}"
        print(f"{header} {'cp in (s)':>10} {'cp MB/s':>8}")
        for label, seconds, cpu, peak, size_in, size_out, cp_seconds in rows:
            print(
                f"{label:<18} {seconds:8.1f} {cpu:7.1f} {raw / seconds / 1e6:7.0f} {peak:8.0f} {size_in / 1e9:6.2f} "
                f"{size_out / 1e9:7.2f} {cp_seconds:10.1f} {size_in / cp_seconds / 1e6:8.0f}"
            )
        print(
            "MB/s: raw pixel bytes per wall second; CPU s: user + system seconds of the command (2 cores may "
            "give more than the wall time; a loaded machine gives less); cp MB/s: bytes on disk per second of "
            "copying the same input"
        )
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
