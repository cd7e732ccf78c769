"""Peak memory of reads, measured in a child process: bombs are refused from their headers, members held once.

Each test writes a file, reads it in a fresh interpreter and compares the child's peak
resident memory (``ru_maxrss``) with what the read may hold.  Files are built by
``cases.py`` in milliseconds: runs of zeros are compressed once and repeated.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cases  # noqa: E402

GB = 10**9
MiB = 1 << 20

CHILD = """
import json, resource, sys
import numpy, dlformats
dlformats.formats()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
outcome = {}
try:
    project = dlformats.read(sys.argv[1])
    outcome["shapes"] = [list(project.X.shape), list(project.y.shape)]
except dlformats.DLFormatsError as exc:
    outcome["error"] = type(exc).__name__
    outcome["limit"] = getattr(exc, "limit", None)
    outcome["member"] = exc.member
outcome["before"] = before
outcome["peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(outcome))
"""


def read_in_child(path: Path) -> dict[str, object]:
    """Read ``path`` with default limits in a new interpreter; its outcome and peak memory in bytes."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_a_trk_bomb_is_refused_from_its_header_with_little_memory(tmp_path: Path) -> None:
    """The reported file: a gzip trk whose raw.npy declares an absurd shape over 1.2 GiB of zeros."""
    path = tmp_path / "bomb.trk"
    path.write_bytes(cases.trk_bomb())
    assert path.stat().st_size < 20 * MiB
    outcome = read_in_child(path)
    assert (outcome.get("error"), outcome.get("limit"), outcome.get("member")) == (
        "LimitExceededError",
        "array_bytes",
        "raw.npy",
    ), outcome
    assert outcome["peak"] < GB, f"peak {outcome['peak'] / GB:.2f} GB reading a {path.stat().st_size:,}-byte file"
    assert outcome["peak"] - outcome["before"] < 64 * MiB, outcome  # the header only: nothing inflated


def test_a_large_trk_holds_each_array_once(tmp_path: Path) -> None:
    """A 150 MiB movie (zeros, so built fast) is decompressed straight into its arrays: no second copy."""
    frames, height, width = 100, 512, 512
    raw = (frames, height, width, 1)
    raw_bytes, tracked_bytes = frames * height * width * 2, frames * height * width * 4
    members = [
        ("lineage.json", [b"{}"], None),
        ("raw.npy", [cases.npy_header(raw, "<u2"), raw_bytes], None),
        ("tracked.npy", [cases.npy_header(raw, "<i4"), tracked_bytes], None),
    ]
    path = tmp_path / "movie.trk"
    path.write_bytes(cases.gzip_parts(cases.tar_parts(members)))
    outcome = read_in_child(path)
    assert outcome.get("shapes") == [[1, frames, height, width], [1, frames, height, width]], outcome
    held = raw_bytes + tracked_bytes
    assert outcome["peak"] - outcome["before"] < held * 1.25, f"{(outcome['peak'] - outcome['before']) / held:.2f}x"
