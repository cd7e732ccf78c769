"""Benchmark: convert a generated timelapse to a DeepCell Label project zip.

Generates a 2 x 50 x 1024 x 1024 uint8 image (noisy, like microscopy) with int32
labels (a few hundred square cells per frame) as an ``.npz`` (stored, so it can be
memory-mapped), then runs ``dlformats convert`` as a whole command (interpreter
start included) and prints MB/s of input and the peak resident memory of that
process, next to the input size.  Files live in a temporary folder, removed at the end.

Usage: ``python benchmarks/bench_convert.py [--frames 50] [--size 1024] [--keep DIR]``
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


def make_input(folder: Path, frames: int, size: int) -> tuple[Path, int]:
    import numpy as np

    rng = np.random.default_rng(0)
    X = np.empty((frames, size, size, 2), np.uint8)  # DeepCell npz layout: (B/T, Y, X, C)
    y = np.zeros((frames, size, size, 1), np.int32)
    cell = 40
    for t in range(frames):
        X[t] = rng.normal(60, 25, (size, size, 2)).clip(0, 255).astype(np.uint8)
        label = 1
        for r in range(0, size - cell, cell + 8):
            for c in range(0, size - cell, cell + 8):
                y[t, r : r + cell, c : c + cell, 0] = label
                label += 1
    path = folder / "timelapse.npz"
    np.savez(path, X=X, y=y)
    return path, X.nbytes + y.nbytes


def run(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of a child command."""
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{proc.stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak, before) * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--keep", help="keep the generated files in this folder")
    args = parser.parse_args()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="dlformats-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        src, nbytes = make_input(folder, args.frames, args.size)
        dlformats = [sys.executable, "-m", "dlformats.cli"]
        rows = []
        for label, extra in (("default (y deflate, X raw)", []), ("zstd", ["--write-option", "compression=zstd"])):
            out = folder / "project.zip"
            seconds, peak = run([*dlformats, "convert", str(src), str(out), *extra])
            rows.append((label, seconds, nbytes / seconds / 1e6, peak / 1e6, peak / nbytes, out.stat().st_size / 1e6))
            os.remove(out)
        print(
            f"input: 2 x {args.frames} x {args.size} x {args.size} uint8 image + int32 labels = {nbytes / 1e6:.0f} MB"
        )
        print(f"{'pipeline':<28} {'seconds':>8} {'MB/s':>8} {'peak MB':>8} {'peak/input':>10} {'zip MB':>8}")
        for label, seconds, rate, peak, ratio, size in rows:
            print(f"{label:<28} {seconds:8.2f} {rate:8.1f} {peak:8.0f} {ratio:10.2f} {size:8.1f}")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
