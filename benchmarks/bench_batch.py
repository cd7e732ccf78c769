"""Benchmark: a batch of small files, ``dlformats batch --jobs 2`` against a shell loop of ``dlformats convert``.

Generates ``--files`` small timelapses (default 200 OME-less TIFFs of 10 frames of 256 x 256 uint16,
noisy like microscopy) in a temporary folder, then converts them all to DeepCell Label project zips
twice in the same run: once with one ``dlformats batch SRC --out OUT --to dcl-project-zip --jobs N``
command, once with a ``bash`` loop running ``dlformats convert`` per file (an interpreter start per
file, as users script it today).  Prints one table: seconds, files per second and the speed-up of the
batch over the loop.  A last row converts again: every output is up to date, so all are skipped.

Usage: ``python benchmarks/bench_batch.py [--files 200] [--frames 10] [--size 256] [--jobs 2] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_inputs(folder: Path, files: int, frames: int, size: int) -> None:
    import numpy as np
    import tifffile

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(files):
        image = rng.normal(600, 150, (frames, size, size)).clip(0, 65535).astype(np.uint16)
        tifffile.imwrite(folder / f"field{i:04d}.tif", image, metadata={"axes": "TYX"})


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", help="keep the generated files in this folder")
    args = parser.parse_args()

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="dlformats-bench-batch-"))
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DLFORMATS_NO_PROGRESS": "1"}
    dlformats = [sys.executable, "-m", "dlformats.cli"]
    try:
        src = root / "src"
        if not src.is_dir():
            make_inputs(src, args.files, args.frames, args.size)
        for out in ("out-loop", "out-batch"):
            shutil.rmtree(root / out, ignore_errors=True)
        (root / "out-loop").mkdir()
        loop = (
            f'for f in "{src}"/*.tif; do n=$(basename "$f" .tif); '
            f'"{sys.executable}" -m dlformats.cli convert "$f" "{root}/out-loop/$n.zip" >/dev/null || exit 1; done'
        )
        rows = []
        seconds = timed(["bash", "-c", loop], env)
        rows.append(("shell loop of dlformats convert", seconds))
        batch = [*dlformats, "batch", str(src), "--out", str(root / "out-batch"), "--to", "dcl-project-zip"]
        seconds = timed([*batch, "--jobs", str(args.jobs)], env)
        rows.append((f"dlformats batch --jobs {args.jobs}", seconds))
        seconds = timed([*batch, "--jobs", str(args.jobs)], env)
        rows.append((f"dlformats batch --jobs {args.jobs} (rerun: all skipped)", seconds))
        made = sorted(p.name for p in (root / "out-batch").iterdir())
        assert made == sorted(p.name for p in (root / "out-loop").iterdir()) and len(made) == args.files

        loop_seconds = rows[0][1]
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(
            f"{args.files} files of {args.frames} x {args.size} x {args.size} uint16 -> dcl-project-zip; "
            f"{os.cpu_count()} CPUs, load {load:.1f}"
        )
        print(f"{'method':<48} {'seconds':>8} {'files/s':>8} {'speed-up':>9}")
        for name, secs in rows:
            print(f"{name:<48} {secs:>8.1f} {args.files / secs:>8.1f} {loop_seconds / secs:>8.1f}x")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
