"""Source lifetime: the core closes a source's cached archive after every read; lazy arrays keep their own handles."""

from __future__ import annotations

import gc
import io
import warnings
import zipfile

import numpy as np
import pytest
import tifffile

import dlformats
from dlformats.sources import Source, open_source
from dlformats.testing import make_project


def _tif(plane: np.ndarray) -> bytes:
    out = io.BytesIO()
    tifffile.imwrite(out, plane, photometric="minisblack")
    return out.getvalue()


def _label_stack_zip(path, compression):
    with zipfile.ZipFile(path, "w", compression) as zf:
        for b in range(3):
            zf.writestr(f"m_batch_{b}_feature_0.tif", _tif(np.full((6, 5), b + 1, np.uint16)))
    return path


def _npz(path, compression):
    with zipfile.ZipFile(path, "w", compression) as zf:
        out = io.BytesIO()
        np.save(out, np.arange(2 * 6 * 5, dtype=np.uint8).reshape(2, 6, 5, 1))
        zf.writestr("X.npy", out.getvalue())
    return path


def _project_zip(path, compression):
    dlformats.write(
        make_project(), path, options={"compression": "none" if compression == zipfile.ZIP_STORED else "zlib"}
    )
    return path


@pytest.fixture(params=[zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED], ids=["stored", "deflated"])
def compression(request):
    return request.param


@pytest.mark.parametrize(
    "make, name",
    [(_project_zip, "p.zip"), (_label_stack_zip, "labels.zip"), (_npz, "x.npz")],
    ids=["project-zip", "label-zip-stack", "npz"],
)
def test_reads_leave_no_handle_for_the_garbage_collector(tmp_path, make, name, compression):
    path = make(tmp_path / name, compression)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        project = dlformats.read(path)
        gc.collect()  # the Source is gone: its archive must have been closed, not collected open
        # lazy arrays still read after the source's archive was closed
        for array in (project.X, project.y):
            if array is not None:
                assert np.asarray(array).shape == tuple(array.shape)
        del project, array
        gc.collect()  # arrays gone: the handles they kept are closed by their owners
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []


def test_release_closes_the_cached_archive_but_keeps_a_download(tmp_path):
    folder = tmp_path / "download"
    folder.mkdir()
    path = _npz(folder / "x.npz", zipfile.ZIP_STORED)
    source = Source(name="http://example/x.npz", path=path, filename="x.npz", cleanup=folder)
    first = source.zip()
    handle = first._fh
    source.release()
    assert handle.closed and path.exists()
    again = source.zip()  # reopened on demand
    assert again is not first and again.names == ["X.npy"]
    source.close()
    assert again._fh.closed and not folder.exists()


def test_caller_source_stays_usable_after_a_read(tmp_path):
    source = open_source(_npz(tmp_path / "x.npz", zipfile.ZIP_DEFLATED))
    dlformats.read(source)
    assert source.zip_names() == ["X.npy"]
    source.close()
