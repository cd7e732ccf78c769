"""A read is one snapshot of its file, and a lazy project may be shared between threads.

Careful writers replace a file atomically (a temporary file renamed over it, as
``dlformats.write`` does).  A reader that opens the file by name more than once
would mix the old and the new file; these tests replace files in a loop while
reading them, and pull planes of one lazy project from eight threads.
"""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dlformats
from dlformats import CorruptFileError, testing

READ_SECONDS = 1.5  # each replace test reads for this long, with a writer replacing the file throughout


def _versions(tmp_path: Path, suffix: str, write: Any) -> tuple[list[bytes], list[dict[str, Any]]]:
    """Two valid files that differ in every part, as bytes, and what each reads as."""
    contents, expected = [], []
    for seed in (0, 1):
        path = tmp_path / f"v{seed}{suffix}"
        write(path, seed)
        contents.append(path.read_bytes())
        expected.append(_materialise(dlformats.read(path)))
    for part in expected[0]:
        assert not _same(expected[0][part], expected[1][part]), f"the two versions must differ in {part}"
    return contents, expected


def _materialise(project: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"X": np.asarray(project.X)}
    if project.y is not None:
        out["y"] = np.asarray(project.y)
    if project.listed_cells is not None:
        out["cells"] = sorted((c.value, c.cell, c.t, c.c) for c in project.cells)
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and bool(np.array_equal(a, b))
    return a == b


def _replacing(target: Path, contents: list[bytes], stop: threading.Event) -> None:
    """Atomically replace ``target`` by each version in turn until ``stop`` is set."""
    n = 0
    while not stop.is_set():
        tmp = target.with_name(f".{target.name}.{n}.tmp")
        tmp.write_bytes(contents[n % 2])
        os.replace(tmp, target)
        n += 1
        time.sleep(0.0005)


def _read_while_replaced(tmp_path: Path, suffix: str, write: Any) -> None:
    contents, expected = _versions(tmp_path, suffix, write)
    target = tmp_path / f"target{suffix}"
    target.write_bytes(contents[0])
    stop = threading.Event()
    writer = threading.Thread(target=_replacing, args=(target, contents, stop), daemon=True)
    writer.start()
    reads, seen, torn, errors = 0, set(), [], []
    try:
        deadline = time.monotonic() + READ_SECONDS
        while time.monotonic() < deadline:
            try:
                got = _materialise(dlformats.read(target))
            except CorruptFileError as exc:
                errors.append(str(exc))
                continue
            finally:
                reads += 1
            matches = [v for v, want in enumerate(expected) if all(_same(got[p], want[p]) for p in want)]
            if matches:
                seen.add(matches[0])
            else:
                torn.append({p: [v for v, want in enumerate(expected) if _same(got[p], want[p])] for p in got})
    finally:
        stop.set()
        writer.join()
    assert errors == [], f"{len(errors)} of {reads} reads raised CorruptFileError, e.g. {errors[0]}"
    assert torn == [], f"{len(torn)} of {reads} reads mixed the two files (part: versions matched): {torn[:3]}"
    assert reads >= 10


def _project_zip(path: Path, seed: int) -> None:
    project = testing.make_project(seed=seed, frames=4, height=40, width=36)
    if seed:  # other cells too: value 2 is cell 5 here
        project.y[project.y == 2] = 5
        project.cells = [
            type(c)(5 if c.value == 2 else c.value, 5 if c.cell == 2 else c.cell, c.t, c.c) for c in project.cells
        ]
    # uncompressed TIFFs: both files have the same layout, so a mix of the two reads without an error
    dlformats.write(project, path, options={"compression": "none", "image_compression": "none"})


def _ome_tiff(path: Path, seed: int) -> None:
    project = testing.make_project(seed=seed, frames=4, height=40, width=36)
    project.y, project.cells, project.divisions, project.spots = None, None, [], None
    dlformats.write(project, path, options={"compression": "none"})


def _npy(path: Path, seed: int) -> None:
    np.save(path, np.random.default_rng(seed).integers(0, 255, (6, 40, 36, 2), dtype=np.uint8))


def test_project_zip_replaced_while_read_reads_one_whole_file(tmp_path):
    _read_while_replaced(tmp_path, ".zip", _project_zip)


def test_ome_tiff_replaced_while_read_reads_one_whole_file(tmp_path):
    _read_while_replaced(tmp_path, ".ome.tif", _ome_tiff)


def test_npy_replaced_while_read_reads_one_whole_file(tmp_path):
    _read_while_replaced(tmp_path, ".npy", _npy)


def test_lazy_planes_read_after_the_file_was_replaced_come_from_the_file_read(tmp_path):
    contents, expected = _versions(tmp_path, ".zip", _project_zip)
    target = tmp_path / "target.zip"
    target.write_bytes(contents[0])
    project = dlformats.read(target)
    tmp = tmp_path / "new.zip"
    tmp.write_bytes(contents[1])
    os.replace(tmp, target)
    assert _same(_materialise(project)["X"], expected[0]["X"])
    assert _same(np.asarray(project.y), expected[0]["y"])


# ------------------------------------------------------------------ threads
THREADS = 8
READS_PER_THREAD = 60


def _shared_reads(project: Any, want: dict[str, np.ndarray]) -> None:
    barrier = threading.Barrier(THREADS)
    errors: list[str] = []
    wrong: list[tuple[str, int, int]] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        barrier.wait()
        for _ in range(READS_PER_THREAD):
            part = rng.choice(list(want))
            array = getattr(project, part)
            c, t = rng.randrange(array.shape[0]), rng.randrange(array.shape[1])
            try:
                plane = np.asarray(array[c, t])
            except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                errors.append(f"{part}[{c}, {t}]: {type(exc).__name__}: {exc}")
                continue
            if not np.array_equal(plane, want[part][c, t]):
                wrong.append((part, c, t))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = THREADS * READS_PER_THREAD
    assert errors == [], f"{len(errors)} of {total} plane reads failed, e.g. {errors[:3]}"
    assert wrong == [], f"{len(wrong)} of {total} planes were wrong, e.g. {wrong[:3]}"


@pytest.mark.parametrize("compression", ["zlib", "none"])
def test_threads_share_one_lazy_project_zip(tmp_path, compression):
    project = testing.make_project(channels=3, frames=12, height=96, width=80, features=2, seed=3)
    path = tmp_path / "p.zip"
    dlformats.write(project, path, options={"compression": compression, "image_compression": compression})
    want = _materialise(dlformats.read(path))
    _shared_reads(dlformats.read(path), {"X": want["X"], "y": want["y"]})


@pytest.mark.parametrize("compression", ["zlib", "none"])
def test_threads_share_one_lazy_ome_tiff(tmp_path, compression):
    project = testing.make_project(channels=3, frames=12, height=96, width=80, seed=4)
    project.y, project.cells, project.divisions, project.spots = None, None, [], None
    path = tmp_path / "x.ome.tif"
    dlformats.write(project, path, options={"compression": compression})
    _shared_reads(dlformats.read(path), {"X": np.asarray(project.X)})


def test_threads_share_one_lazy_npy(tmp_path):
    data = np.random.default_rng(5).integers(0, 255, (12, 64, 48, 3), dtype=np.uint8)
    path = tmp_path / "x.npy"
    np.save(path, data)
    project = dlformats.read(path)
    _shared_reads(project, {"X": np.asarray(project.X)})
    assert np.array_equal(np.asarray(project.X), np.moveaxis(data, -1, 0))


def test_threads_share_one_lazy_multifile_ome_tiff(tmp_path):
    import tifffile

    planes = np.random.default_rng(6).integers(0, 65535, (6, 48, 40), dtype=np.uint16)
    tiffdata = "".join(
        f'<TiffData FirstZ="{z}" IFD="0" PlaneCount="1"><UUID FileName="part{z}.ome.tif">urn:uuid:{z}</UUID></TiffData>'
        for z in range(len(planes))
    )
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" '
        'UUID="urn:uuid:0"><Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint16" '
        f'SizeX="40" SizeY="48" SizeZ="{len(planes)}" SizeC="1" SizeT="1"><Channel ID="Channel:0"/>{tiffdata}'
        "</Pixels></Image></OME>"
    )
    for z, plane in enumerate(planes):  # the first file describes all of them; the others hold one plane each
        tifffile.imwrite(
            tmp_path / f"part{z}.ome.tif",
            plane,
            photometric="minisblack",
            metadata=None,
            description=xml if z == 0 else None,
        )
    project = dlformats.read(tmp_path / "part0.ome.tif")
    assert project.X.shape == (1, len(planes), 48, 40)
    _shared_reads(project, {"X": planes[np.newaxis]})


def test_threads_share_one_lazy_label_zip_stack(tmp_path):
    import io
    import zipfile

    import tifffile

    labels = np.random.default_rng(7).integers(0, 50, (2, 6, 32, 24), dtype=np.int32)  # (features, batches, h, w)
    path = tmp_path / "labels.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for f in range(labels.shape[0]):
            for b in range(labels.shape[1]):
                out = io.BytesIO()
                tifffile.imwrite(out, labels[f, b], photometric="minisblack")
                zf.writestr(f"movie_batch_{b}_feature_{f}.tif", out.getvalue())
    project = dlformats.read(path)
    assert project.y.shape == labels.shape
    _shared_reads(project, {"y": labels})


# ------------------------------------------------------------------ the source's open file
def test_source_reads_the_file_it_opened_after_a_replace(tmp_path):
    from dlformats.sources import open_source

    path = tmp_path / "a.bin"
    path.write_bytes(b"old content, longer than the new")
    source = open_source(path)
    with open(path, "rb") as fobj:
        from_object = open_source(fobj)  # a file object: its own open file, not its name
    (tmp_path / "b.bin").write_bytes(b"new")
    os.replace(tmp_path / "b.bin", path)
    for src in (source, from_object):
        assert src.size == 32 and src.read_bytes() == b"old content, longer than the new"
        first, second = src.open(), src.open()
        with first, second:  # handles of one source keep positions of their own
            assert first.read(3) == b"old" and second.read(3) == b"old"
            first.seek(-3, os.SEEK_END)
            assert first.read() == b"new" and second.read(8) == b" content"
        src.close()
    assert open_source(path).read_bytes() == b"new"


@pytest.mark.parametrize("make, suffix", [(_project_zip, ".zip"), (_ome_tiff, ".ome.tif"), (_npy, ".npy")])
def test_lazy_arrays_keep_the_open_file_and_let_it_go(tmp_path, make, suffix):
    import gc
    import weakref

    from dlformats.sources import open_source

    path = tmp_path / f"a{suffix}"
    make(path, 0)
    want = _materialise(dlformats.read(path))
    source = open_source(path)
    project = dlformats.read(source)
    opened = weakref.ref(source.file)
    source.close()
    gc.collect()
    assert opened() is not None  # the lazy arrays still read it
    assert _same(np.asarray(project.X), want["X"])
    del project
    gc.collect()
    assert opened() is None  # nothing reads it any more: its descriptor is closed


def test_a_project_over_an_open_file_does_not_pickle(tmp_path):
    import pickle

    _npy(tmp_path / "a.npy", 0)
    project = dlformats.read(tmp_path / "a.npy")
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(project)
    assert pickle.loads(pickle.dumps(np.asarray(project.X))).shape == project.X.shape
