"""Batch conversion: a folder of real files and broken ones, each converted on its own, reruns, pairs,
a batch stopped by SIGTERM, a worker that dies.

The lab folder mixes real files of other projects (DeepCell Label project zips, deepcell-tf and
Polaris TIFFs, an intro-to-deepcell PNG) with tracking files made the way deepcell-tracking makes
them and broken files (a truncated TIFF, random bytes named .zip, a pickled npy, a gzip of garbage
named .trk).  Stopped and crashing batches are real ``dlformats batch`` processes using a plugin
installed for the session (a folder with its dist-info on ``PYTHONPATH``).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import dlformats
from dlformats import testing
from dlformats.atomic import TEMPORARY
from dlformats.batch import BatchProgress, _output_paths, pairs_from_csv

FIXTURES = testing.fixtures_dir()
needs_fixtures = pytest.mark.skipif(FIXTURES is None, reason="../shared/fixtures is absent")

REAL = {
    "projects/oneDivision.zip": "deepcell-label/oneDivision.zip",
    "projects/rgb.zip": "deepcell-label/rgb.zip",
    "projects/spots.zip": "deepcell-label/spots.zip",
    "images/phase.tif": "deepcell-tf/phase.tif",
    "images/rotated_90.tif": "deepcell-tf/rotated_90.tif",
    "images/MERFISH_cropped.tiff": "polaris/MERFISH_cropped.tiff",
    "images/nuclear_model_output.png": "intro-to-deepcell/nuclear_model_output.png",
}
BROKEN = {
    "broken/truncated.tif": "CorruptFileError",
    "broken/notaproject.zip": "NoReaderError",
    "broken/coords.npy": "UnsupportedFeatureError",
    "broken/garbage.trk": "NoReaderError",
}


def save_trk(path: Path, lineage: object, raw: np.ndarray, tracked: np.ndarray, *extra: str) -> Path:
    """A trk or trks laid out as deepcell-tracking writes it: json and np.save into files, then tar.add."""
    work = path.parent / (path.name + ".parts")
    work.mkdir()
    name = "lineages.json" if raw.ndim == 5 else "lineage.json"
    (work / name).write_text(json.dumps(lineage))
    np.save(work / "raw.npy", raw)
    np.save(work / "tracked.npy", tracked)
    for member in extra:
        (work / member).write_text("a member a trk does not have")
    with tarfile.open(path, "w:gz") as tar:
        for member in (name, "raw.npy", "tracked.npy", *extra):
            tar.add(work / member, member)
    shutil.rmtree(work)
    return path


def movie(frames: int, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    rng = np.random.default_rng(seed)
    raw = (rng.random((frames, 16, 20, 1)) + 0.01).astype(np.float32)
    tracked = np.zeros((frames, 16, 20, 1), np.int32)
    tracked[:, 2:6, 2:6] = 1
    tracked[:, 9:14, 10:18] = 2
    lineage = {str(k): {"label": k, "frames": list(range(frames)), "daughters": [], "parent": None} for k in (1, 2)}
    return raw, tracked, lineage


def make_lab(root: Path) -> Path:
    """The lab folder: real files, tracking files, broken files and files no format claims."""
    assert FIXTURES is not None
    for rel, src in REAL.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(FIXTURES / src, root / rel)
    (root / "tracks").mkdir()
    raw0, tracked0, lineage0 = movie(3, 0)
    raw1, tracked1, lineage1 = movie(3, 1)
    save_trk(root / "tracks" / "one.trk", lineage0, raw0, tracked0)
    save_trk(root / "tracks" / "extra.trk", lineage1, raw1, tracked1, "notes.txt")  # read with a warning
    save_trk(
        root / "tracks" / "movies.trks", [lineage0, lineage1], np.stack([raw0, raw1]), np.stack([tracked0, tracked1])
    )
    (root / "broken").mkdir()
    (root / "broken" / "truncated.tif").write_bytes((FIXTURES / "deepcell-tf/phase.tif").read_bytes()[:3000])
    (root / "broken" / "notaproject.zip").write_bytes(np.random.default_rng(0).bytes(500))
    shutil.copyfile(FIXTURES / "polaris/Polaris_coords.npy", root / "broken" / "coords.npy")
    (root / "broken" / "garbage.trk").write_bytes(gzip.compress(b"garbage" * 100))
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden.tif").write_bytes(b"never looked at")
    return root


WARNING = "lab/tracks/extra.trk: ignored members that are not part of a trk: ['notes.txt']"


def expected_outputs(out: Path) -> dict[str, list[Path]]:
    want = {f"lab/{rel}": [out / Path(rel).parent / (Path(rel).name.split(".")[0] + ".zip")] for rel in REAL}
    want["lab/tracks/one.trk"] = [out / "tracks" / "one.zip"]
    want["lab/tracks/extra.trk"] = [out / "tracks" / "extra.zip"]
    want["lab/tracks/movies.trks"] = [out / "tracks" / f"movies_batch{i}.zip" for i in range(2)]
    return want


def names(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if TEMPORARY.fullmatch(p.name)]


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dlformats.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env or {**os.environ, "DLFORMATS_NO_PROGRESS": "1"},
        timeout=120,
        check=False,
    )


def statuses(report: dict) -> dict[str, str]:
    return {s["source"]: s["status"] for s in report["sources"]}


# ------------------------------------------------------------------ the mixed folder
@needs_fixtures
def test_folder_of_real_and_broken_files(tmp_path):
    make_lab(tmp_path / "lab")
    out = tmp_path / "out"
    done = run_cli("batch", "lab", "--recursive", "--out", "out", "--to", "dcl-project-zip", "--report", "r.json",
                   "--jobs", "2", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1, done.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    by_source = {s["source"]: s for s in report["sources"]}
    want = expected_outputs(Path("out"))
    assert set(by_source) == set(want) | {f"lab/{b}" for b in BROKEN}  # nothing else: no .txt, no hidden file
    for source, outputs in want.items():
        entry = by_source[source]
        assert entry["status"] == "converted", entry
        assert entry["outputs"] == [str(p) for p in outputs]
        assert entry["error_type"] is None and entry["seconds"] > 0
        assert entry["warnings"] == ([WARNING] if source.endswith("extra.trk") else [])
    for broken, error_type in BROKEN.items():
        entry = by_source[f"lab/{broken}"]
        assert (entry["status"], entry["error_type"], entry["outputs"]) == ("failed", error_type, [])
        assert entry["error"].startswith(f"lab/{broken}: ") and entry["seconds"] > 0
    assert report["summary"] == {"converted": len(want), "skipped": 0, "failed": len(BROKEN)}
    # One line per failure on stderr, a summary, and the outputs on stdout.
    failed_lines = [line for line in done.stderr.splitlines() if line.startswith("dlformats: failed (")]
    assert len(failed_lines) == len(BROKEN) and "coords.npy" in "".join(failed_lines)
    assert done.stderr.splitlines()[-1].startswith(f"dlformats: batch: {len(want) + len(BROKEN)} sources: ")
    assert sorted(done.stdout.split()) == sorted(str(p) for ps in want.values() for p in ps)
    # The outputs hold what the sources hold; only complete outputs, nothing for broken files.
    assert names(out) == sorted(str(p.relative_to("out")) for ps in want.values() for p in ps)
    assert not temporaries(tmp_path)
    for source, outputs in want.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dlformats.DLFormatsWarning)  # extra.trk: checked in the report
            originals = dlformats.read_all(tmp_path / source)
        for original, output in zip(originals, outputs):
            back = dlformats.read(tmp_path / output)
            testing.assert_arrays_equal(back.X, original.X, f"{output} X")
            assert back.num_frames == original.num_frames

    # A rerun skips what is up to date and tries the broken files again.
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.zip")}
    again = run_cli("batch", "lab", "--recursive", "--out", "out", "--to", "dcl-project-zip", "--report", "r.json",
                    "--jobs", "2", cwd=tmp_path)  # fmt: skip
    assert again.returncode == 1 and again.stdout == ""
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["summary"] == {"converted": 0, "skipped": len(want), "failed": len(BROKEN)}
    assert all(s["outputs"] == [str(p) for p in want[s["source"]]] for s in report["sources"] if s["source"] in want)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.zip")} == stamps

    # A source changed since its output was written is converted again, the others not.
    changed = tmp_path / "lab" / "images" / "phase.tif"
    os.utime(changed, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    rerun = run_cli("batch", "lab", "--recursive", "--out", "out", "--to", "dcl-project-zip", "--jobs", "1",
                    cwd=tmp_path)  # fmt: skip
    assert rerun.returncode == 1 and rerun.stdout.split() == ["out/images/phase.zip"]

    # Fixing the broken files makes the exit status 0; --overwrite converts everything again.
    shutil.rmtree(tmp_path / "lab" / "broken")
    redo = run_cli("batch", "lab", "--recursive", "--out", "out", "--to", "dcl-project-zip", "--report", "r.json",
                   "--overwrite", "--jobs", "2", cwd=tmp_path)  # fmt: skip
    assert redo.returncode == 0, redo.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["summary"] == {"converted": len(want), "skipped": 0, "failed": 0}
    assert all(p.stat().st_mtime_ns > stamps[p] for p in stamps)


def test_api_results_progress_and_skips(tmp_path):
    folder = tmp_path / "plate"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    for well in ("a", "b"):
        for i in range(2):
            np.save(folder / well / f"field{i}.npy", np.full((1, 8, 8, 1), i, np.uint16))
    np.save(folder / "b" / "broken.npy", np.zeros((1, 8, 8, 1), np.uint16))
    (folder / "b" / "broken.npy").write_bytes((folder / "b" / "broken.npy").read_bytes()[:100])  # truncated
    seen: list[BatchProgress] = []
    results = dlformats.convert_many([folder], tmp_path / "out", to="npz", jobs=2, recursive=True, progress=seen.append)
    assert [(r.source, r.status) for r in results] == [
        (str(folder / "a" / "field0.npy"), "converted"),
        (str(folder / "a" / "field1.npy"), "converted"),
        (str(folder / "b" / "broken.npy"), "failed"),
        (str(folder / "b" / "field0.npy"), "converted"),
        (str(folder / "b" / "field1.npy"), "converted"),
    ]
    assert results[2].error_type == "CorruptFileError" and str(folder / "b" / "broken.npy") in results[2].error
    assert results[0].outputs == [str(tmp_path / "out" / "a" / "field0.npz")]
    assert np.asarray(dlformats.read(results[4].outputs[0]).X).max() == 1
    assert [p.done for p in seen] == [1, 2, 3, 4, 5] and seen[-1].failed == 1 and seen[-1].converted == 4
    assert seen[-1].rate > 0 and seen[-1].seconds_left == 0
    # Without recursive only the folder's own files; a rerun skips them without running anything.
    again = dlformats.convert_many([folder / "a"], tmp_path / "out2", to=".npz", jobs=1)
    assert [r.status for r in again] == ["converted", "converted"]
    skipped = dlformats.convert_many([folder / "a"], tmp_path / "out2", to=".npz", executor=_NoExecutor())
    assert [(r.status, r.seconds) for r in skipped] == [("skipped", 0.0), ("skipped", 0.0)]


class _NoExecutor:
    def submit(self, *args, **kwargs):
        raise AssertionError("nothing should run")


def test_glob_patterns_pairs_and_name_patterns(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for name in ("s1", "s2"):
        np.save(data / f"{name}_img.npy", rng.integers(0, 255, (1, 10, 12, 2), dtype=np.uint8))
        mask = np.zeros((1, 10, 12, 1), np.int32)
        mask[0, 2:5, 3:7] = 7
        np.save(data / f"{name}_mask.npy", mask)
    np.save(data / "s3_img.npy", np.zeros((1, 10, 12, 2), np.uint8))  # its mask is missing
    results = dlformats.convert_many(
        [data], tmp_path / "out", to="dcl-project-zip", jobs=1, match=("*_img.npy", "*_mask.npy")
    )
    assert [(Path(r.source).name, r.labels and Path(r.labels).name, r.status) for r in results] == [
        ("s1_img.npy", "s1_mask.npy", "converted"),
        ("s2_img.npy", "s2_mask.npy", "converted"),
        ("s3_img.npy", "s3_mask.npy", "failed"),
    ]
    assert results[2].error_type == "SourceNotFoundError" and "s3_mask.npy: no such file" in results[2].error
    project = dlformats.read(results[0].outputs[0])
    assert project.X.shape == (2, 1, 10, 12) and int(np.asarray(project.y).max()) == 7

    (data / "pairs.csv").write_text("image,labels\ns2_img.npy,s1_mask.npy\n")
    assert pairs_from_csv(data / "pairs.csv") == [(str(data / "s2_img.npy"), str(data / "s1_mask.npy"))]
    results = dlformats.convert_many([], tmp_path / "csv", to="npz", pairs=data / "pairs.csv", jobs=1)
    assert [(r.status, r.labels) for r in results] == [("converted", str(data / "s1_mask.npy"))]
    (data / "bad.csv").write_text("a.npy\n")
    with pytest.raises(dlformats.InvalidOptionError, match="row 1"):
        pairs_from_csv(data / "bad.csv")

    results = dlformats.convert_many([str(data / "*_mask.npy")], tmp_path / "glob", to="npz", jobs=1)
    assert [Path(r.source).name for r in results] == ["s1_mask.npy", "s2_mask.npy"]
    with pytest.raises(dlformats.InvalidOptionError, match="matches nothing"):
        dlformats.convert_many([str(data / "*.tif")], tmp_path / "none", to="npz")
    with pytest.raises(dlformats.InvalidOptionError, match="unknown output format"):
        dlformats.convert_many([data], tmp_path / "none", to="nosuchformat")
    with pytest.raises(dlformats.InvalidOptionError, match="exactly one"):
        dlformats.convert_many([data], tmp_path / "none", to="npz", match=("*_img*.npy", "*_mask.npy"))


def test_output_names_keep_folders_and_never_collide(tmp_path):
    out = tmp_path / "out"
    a, b = tmp_path / "x" / "a", tmp_path / "x" / "b"
    sources = [str(a / "m.ome.tif"), str(a / "m.png"), str(b / "m.ome.tif"), str(a / "n.tif")]
    assert _output_paths(sources, out, ".zip") == [
        out / "a" / "m.ome.tif.zip",
        out / "a" / "m.png.zip",
        out / "b" / "m.zip",
        out / "a" / "n.zip",
    ]


def test_trks_batches_are_resumed_whole(tmp_path):
    raw0, tracked0, lineage0 = movie(2, 0)
    trks = save_trk(tmp_path / "two.trks", [lineage0, lineage0], np.stack([raw0, raw0]), np.stack([tracked0] * 2))
    out = tmp_path / "out"
    first = dlformats.convert_many([trks], out, to="npz", jobs=1)
    assert first[0].outputs == [str(out / "two_batch0.npz"), str(out / "two_batch1.npz")]
    assert dlformats.convert_many([trks], out, to="npz", jobs=1)[0].status == "skipped"
    # Batches are written last to first: without batch 0 the source was not finished.
    (out / "two_batch0.npz").unlink()
    again = dlformats.convert_many([trks], out, to="npz", jobs=1)
    assert again[0].status == "converted" and len(again[0].outputs) == 2


def test_spawned_workers_give_the_same_results(tmp_path):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    for i in range(3):
        np.save(tmp_path / f"f{i}.npy", np.full((2, 6, 6, 1), i, np.uint8))
    (tmp_path / "f3.npy").write_bytes(b"\x93NUMPY broken")
    default = dlformats.convert_many([tmp_path], tmp_path / "a", to="npz", jobs=2)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        spawned = dlformats.convert_many([tmp_path], tmp_path / "b", to="npz", executor=pool)

    def key(results, out):
        return [(r.status, [str(Path(o).relative_to(out)) for o in r.outputs], r.error_type) for r in results]

    assert key(default, tmp_path / "a") == key(spawned, tmp_path / "b")
    assert [r.status for r in spawned] == ["converted"] * 3 + ["failed"]


def test_import_stays_light():
    code = (
        "import sys, dlformats, dlformats.batch, dlformats.merging; dlformats.convert_many; dlformats.merge; "
        "print(','.join(m for m in ('numpy', 'concurrent.futures.process', 'multiprocessing', 'dask', "
        "'distributed') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


# ------------------------------------------------------------------ stopped and crashing batches
SLOW_PLUGIN = '''
"""A writer that takes its time (a complete output is 40960 bytes) and a reader that kills its process."""
import os
import signal
import time

from dlformats import FormatSpec, Project, hookimpl
from dlformats.spec import parts

ALL = parts("X", "y", "cells", "divisions", "spots", "channels", "features", "cell_types", "embeddings")


def _slow(project, path, options):
    with open(path, "wb") as fh:
        for _ in range(10):
            fh.write(b"x" * 4096)
            fh.flush()
            time.sleep(0.04)


def _crash(source, options):
    os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer does


@hookimpl
def dlformats_formats():
    return [
        FormatSpec(name="slow-out", description="slow", extensions=(".slow",), write=_slow, writes=ALL),
        FormatSpec(name="crashing", description="crashes", extensions=(".crash",), read=_crash, reads=ALL),
    ]
'''
COMPLETE = 40960


@pytest.fixture(scope="module")
def slow_env(tmp_path_factory) -> dict[str, str]:
    site = tmp_path_factory.mktemp("slow-site")
    (site / "slowout.py").write_text(SLOW_PLUGIN)
    info = site / "slowout-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: slowout\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[dlformats.plugins]\nslowout = slowout\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DLFORMATS_DISABLE_PLUGINS", "PYTHONPATH")}
    return {**env, "PYTHONPATH": str(site), "DLFORMATS_NO_PROGRESS": "1"}


def test_sigterm_leaves_only_complete_outputs_and_the_rerun_resumes(tmp_path, slow_env):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(12):
        np.save(src / f"s{i:02d}.npy", np.full((1, 4, 4, 1), i, np.uint8))
    out = tmp_path / "out"
    args = ["batch", "src", "--out", "out", "--to", "slow-out", "--jobs", "2", "--report", "r.json"]
    process = subprocess.Popen(
        [sys.executable, "-m", "dlformats.cli", *args],
        cwd=tmp_path,
        env=slow_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (out.is_dir() and list(out.glob("*.slow"))):
            assert process.poll() is None, process.communicate()
            time.sleep(0.02)
        assert temporaries(out), "the workers should be writing"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert stderr.splitlines()[-1] == "dlformats: interrupted by SIGTERM"
    written = sorted(out.glob("*.slow"))
    assert 1 <= len(written) < 12
    assert not temporaries(tmp_path)  # the workers removed what they were writing
    assert all(p.stat().st_size == COMPLETE for p in written)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["interrupted"] is True
    assert report["summary"]["converted"] == len(written)
    assert report["summary"]["interrupted"] == 12 - len(written)

    rerun = run_cli(*args, cwd=tmp_path, env=slow_env)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["summary"] == {"converted": 12 - len(written), "skipped": len(written), "failed": 0}
    assert len(list(out.glob("*.slow"))) == 12 and all(p.stat().st_size == COMPLETE for p in out.glob("*.slow"))


def test_a_worker_that_dies_fails_its_source_only(tmp_path, slow_env):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        np.save(src / f"s{i}.npy", np.full((1, 4, 4, 1), i, np.uint8))
    (src / "boom.crash").write_bytes(b"anything")
    done = run_cli("batch", "src", "--out", "out", "--to", "npz", "--jobs", "2", "--report", "r.json",
                   cwd=tmp_path, env=slow_env)  # fmt: skip
    assert done.returncode == 1, done.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    crashed = [s for s in report["sources"] if s["status"] == "failed"]
    assert [(s["source"], s["error_type"]) for s in crashed] == [("src/boom.crash", "WorkerCrashed")]
    assert "SIGKILL" in crashed[0]["error"]
    assert report["summary"] == {"converted": 6, "skipped": 0, "failed": 1}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"s{i}.npz" for i in range(6)]
