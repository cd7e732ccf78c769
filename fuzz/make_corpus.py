"""Build the fuzzers' seed corpora in ``fuzz/corpus/<format>/`` (not committed; run before fuzzing).

Seeds are (1) small real files from the shared fixtures (``dlformats.testing.fixtures_dir()``),
read where they are and copied only into the ignored corpus folder; (2) valid files the
project writes itself with its writers; (3) the hostile files of the test suite
(``tests/hostile/cases.py``).  Usage: ``python fuzz/make_corpus.py [format ...]``.
"""

from __future__ import annotations

import hashlib
import io
import sys
import tarfile
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MAX_SEED = 256 << 10

# format -> (fixture suffixes, how the fuzzer names its input)
FORMATS: dict[str, tuple[str, ...]] = {
    "tiff": (".tif", ".tiff"),
    "png": (".png",),
    "npy": (".npy",),
    "npz": (".npz",),
    "trk": (".trk",),
    "trks": (".trks",),
    "lineage-json": (".json",),
    "spots-csv": (".csv",),
    "label-zip": (".zip",),
    "dcl-project-zip": (".zip",),
    "dcl-export-zip": (".zip",),
    "dcl-edit-zip": (".zip",),
    "ome-companion": (".ome", ".ome.xml"),
}


def fixture_seeds(fmt: str) -> Iterator[bytes]:
    from dlformats.testing import fixtures_dir

    root = fixtures_dir()
    if root is None:
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name.lower().endswith(FORMATS[fmt]) and path.stat().st_size <= MAX_SEED:
            yield path.read_bytes()


def _write(project: object, fmt: str, name: str, **options: object) -> bytes:
    import dlformats

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / name
        dlformats.write(project, out, format=fmt, options=options)  # type: ignore[arg-type]
        return out.read_bytes()


def _trks(trk: bytes) -> bytes:
    """A two-batch .trks built from the members of a .trk."""
    import numpy as np

    src = tarfile.open(fileobj=io.BytesIO(trk))
    raw = np.load(io.BytesIO(src.extractfile("raw.npy").read()))
    tracked = np.load(io.BytesIO(src.extractfile("tracked.npy").read()))
    lineage = src.extractfile("lineage.json").read()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for member, data in (
            ("raw.npy", np.stack([raw, raw])),
            ("tracked.npy", np.stack([tracked, tracked])),
            ("lineages.json", b"[" + lineage + b"," + lineage + b"]"),
        ):
            if not isinstance(data, bytes):
                buf = io.BytesIO()
                np.save(buf, data)
                data = buf.getvalue()
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def written_seeds(fmt: str) -> Iterator[bytes]:
    from dlformats.testing import make_project

    small = make_project(channels=1, frames=2, height=8, width=6)
    wide = make_project(channels=2, frames=1, height=6, width=5, dtype="float32")
    if fmt in ("tiff", "npy", "npz", "dcl-project-zip", "dcl-export-zip", "label-zip", "trk"):
        names = {"tiff": "a.ome.tif", "npy": "a.npy", "npz": "a.npz", "trk": "a.trk"}
        for project in (small, wide):
            yield _write(project, fmt, names.get(fmt, "a.zip"))
    if fmt == "tiff":
        yield _write(small, "tiff", "b.tif")
    if fmt == "trks":
        yield _trks(_write(small, "trk", "a.trk"))
    if fmt == "png":
        yield _write(small, "png", "a.png", frame=0)
    if fmt in ("lineage-json", "spots-csv"):
        yield _write(small, fmt, "lineage.json" if fmt == "lineage-json" else "spots.csv")
    if fmt == "dcl-edit-zip":
        import numpy as np
        from dlformats_editzip import EditRequest, edit_bytes

        labels = np.zeros((6, 5), np.int32)
        labels[1:3, 1:3] = 1
        yield edit_bytes(EditRequest("trim_pixels", {"cell": 1, "x": 1, "y": 1}, "overlap", labels))
        image = (np.arange(30, dtype=np.uint8) * 7).reshape(6, 5)
        args = {"x1": 0, "y1": 0, "x2": 4, "y2": 5, "cell": 2}
        yield edit_bytes(EditRequest("threshold", args, "overwrite", labels, image=image))


def hostile_seeds(fmt: str) -> Iterator[bytes]:
    sys.path.insert(0, str(ROOT / "tests" / "hostile"))
    try:
        import cases
    except ImportError:
        return
    for case in cases.all_cases():
        if fmt in case.formats and len(case.data) <= MAX_SEED:
            yield case.data


def main(argv: list[str]) -> int:
    warnings.simplefilter("ignore")
    wanted = argv or list(FORMATS)
    for fmt in wanted:
        folder = HERE / "corpus" / fmt
        folder.mkdir(parents=True, exist_ok=True)
        count = 0
        for source in (fixture_seeds, written_seeds, hostile_seeds):
            for data in source(fmt):
                (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)
                count += 1
        print(f"{fmt}: {count} seeds in {folder.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
