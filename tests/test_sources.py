"""Where input comes from (path, bytes, file object, http(s) URL) and how content, not the name, picks the format."""

from __future__ import annotations

import functools
import gc
import http.server
import io
import tempfile
import threading
import urllib.parse
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

import dlformats
from dlformats.errors import (
    CorruptFileError,
    DLFormatsError,
    DLFormatsWarning,
    InvalidOptionError,
    LimitExceededError,
    NetworkError,
    NotMyFormat,
    UnsafeArchiveError,
)
from dlformats.sources import open_source


def _registered(name: str) -> bool:
    return name in {f.name for f in dlformats.get_registry().formats()}


def _need(name: str) -> None:
    assert _registered(name), f"the built-in {name} plugin is not registered"


def tif_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, array, photometric="minisblack")
    return buf.getvalue()


def png_bytes(array: np.ndarray) -> bytes:
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", array, extension=".png")


def label_zip_bytes(y: np.ndarray) -> bytes:
    """A label zip of batch/feature TIFFs for ``y`` (features, frames, height, width)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in range(y.shape[0]):
            for b in range(y.shape[1]):
                zf.writestr(f"batch_{b}_feature_{f}.tif", tif_bytes(y[f, b]))
    return buf.getvalue()


IMAGE = np.arange(9 * 7, dtype=np.uint16).reshape(9, 7) * 300
LABELS = np.random.default_rng(0).integers(0, 5, (2, 3, 9, 7)).astype(np.int32)


def read_quietly(src, **kw) -> dlformats.Project:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DLFormatsWarning)
        return dlformats.read(src, **kw)


# ---------------------------------------------------------------- local sources
def test_path_str_bytes_and_file_objects_read_alike(tmp_path):
    path = tmp_path / "labels.zip"
    path.write_bytes(label_zip_bytes(LABELS))
    with open(path, "rb") as fh:
        from_handle = read_quietly(fh)
        from_handle_y = np.asarray(from_handle.y)
    for src in (path, str(path), path.read_bytes(), io.BytesIO(path.read_bytes())):
        project = read_quietly(src)
        assert project.metadata["format"] == "label-zip", type(src)
        np.testing.assert_array_equal(np.asarray(project.y), LABELS)
    np.testing.assert_array_equal(from_handle_y, LABELS)


def test_a_file_object_read_from_the_middle_is_rewound(tmp_path):
    data = io.BytesIO(label_zip_bytes(LABELS))
    data.seek(100)
    np.testing.assert_array_equal(np.asarray(read_quietly(data).y), LABELS)


def test_text_mode_file_objects_and_other_things_are_refused(tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    with open(tmp_path / "a.txt") as fh, pytest.raises(InvalidOptionError, match="binary"):
        dlformats.read(io.StringIO(fh.read()))
    with pytest.raises(InvalidOptionError, match="int"):
        dlformats.read(42)
    with pytest.raises(InvalidOptionError, match="no such file"):
        dlformats.read(tmp_path / "missing.tif")


def test_in_memory_sources_are_bounded(tmp_path):
    with pytest.raises(LimitExceededError):
        dlformats.read(b"\0" * 2000, limits=dlformats.Limits(member_bytes=1000))
    with pytest.raises(LimitExceededError):
        dlformats.read(io.BytesIO(b"\0" * 2000), limits=dlformats.Limits(member_bytes=1000))


# ------------------------------------------------------------ names and content
@pytest.mark.parametrize("name", ["cells.TIF", "cells.tiff", "cells.ome.tif", "cells", "ядра_細胞.tif", "ядра 細胞"])
def test_tiff_under_any_name(tmp_path, name):
    _need("tiff")
    (tmp_path / name).write_bytes(tif_bytes(IMAGE))
    project = read_quietly(tmp_path / name)
    assert project.metadata["format"] == "tiff"
    np.testing.assert_array_equal(np.asarray(project.X)[0, 0], IMAGE)


def test_bytes_without_a_name_are_recognised_by_content():
    _need("tiff")
    _need("png")
    assert read_quietly(tif_bytes(IMAGE)).metadata["format"] == "tiff"
    assert read_quietly(png_bytes(IMAGE)).metadata["format"] == "png"


@pytest.mark.parametrize("name", ["cells.tif", "cells.TIFF"])
def test_png_named_tif_is_read_as_png_with_a_warning(tmp_path, name):
    _need("png")
    _need("tiff")
    (tmp_path / name).write_bytes(png_bytes(IMAGE))
    with pytest.warns(DLFormatsWarning, match="png"):
        project = dlformats.read(tmp_path / name)
    assert project.metadata["format"] == "png"
    np.testing.assert_array_equal(np.asarray(project.X)[0, 0], IMAGE)


def test_png_named_tif_given_as_bytes_with_a_name(tmp_path):
    _need("png")
    _need("tiff")
    with pytest.warns(DLFormatsWarning, match="png"):
        project = dlformats.read(png_bytes(IMAGE), name="cells.tif")
    assert project.metadata["format"] == "png"


def test_non_ascii_names_for_image_and_labels(tmp_path):
    _need("png")
    image = tmp_path / "ядра_細胞.png"
    image.write_bytes(png_bytes(IMAGE))
    labels = tmp_path / "метки_標識.zip"
    labels.write_bytes(label_zip_bytes(LABELS[:1, :1]))
    project = read_quietly(image, labels=labels)
    np.testing.assert_array_equal(np.asarray(project.y), LABELS[:1, :1])
    assert project.provenance["y"].source == str(labels)


# ------------------------------------------------------------------ http(s) URLs
class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files from a folder, plus ``/slow`` (answers only when released) and
    ``/stream/N`` (N bytes without a Content-Length)."""

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        if self.path == "/slow":
            self.server.release.wait(30)
            return
        if self.path.startswith("/stream/"):
            size = int(self.path.rsplit("/", 1)[1])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            for _ in range(0, size, 1 << 16):
                self.wfile.write(b"\0" * min(1 << 16, size))
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    httpd.release = threading.Event()
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield root, base
    finally:
        httpd.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def download_dir(tmp_path, monkeypatch):
    """Downloads go to a folder of their own, so the tests can see what is left behind."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_url_is_downloaded_and_read(server, download_dir):
    root, base = server
    (root / "labels.zip").write_bytes(label_zip_bytes(LABELS))
    project = read_quietly(f"{base}/labels.zip")
    assert project.metadata["format"] == "label-zip"
    np.testing.assert_array_equal(np.asarray(project.y), LABELS)
    assert project.provenance["y"].source == f"{base}/labels.zip"
    del project
    gc.collect()
    assert list(download_dir.iterdir()) == []  # the temporary copy goes with the project


def test_url_image_and_url_labels_stay_readable_after_the_merge(server, download_dir):
    _need("png")
    root, base = server
    (root / "ядра 細胞.png").write_bytes(png_bytes(IMAGE[None, :, :].repeat(1, 0)[0]))
    (root / "labels.zip").write_bytes(label_zip_bytes(LABELS[:, :1]))
    project = read_quietly(f"{base}/{urllib.parse.quote('ядра 細胞.png')}", labels=f"{base}/labels.zip")
    gc.collect()  # the labels' own project is gone; its planes are still wanted
    np.testing.assert_array_equal(np.asarray(project.y), LABELS[:, :1])
    np.testing.assert_array_equal(np.asarray(project.X)[0, 0], IMAGE)
    del project
    gc.collect()
    assert list(download_dir.iterdir()) == []


def test_url_over_the_size_cap(server, download_dir):
    root, base = server
    (root / "big.zip").write_bytes(label_zip_bytes(LABELS))
    small = dlformats.Limits(download_bytes=1000)
    with pytest.raises(LimitExceededError) as err:
        dlformats.read(f"{base}/big.zip", limits=small)  # refused on its Content-Length
    assert err.value.limit == "download_bytes" and err.value.path == f"{base}/big.zip"
    with pytest.raises(LimitExceededError) as err:
        dlformats.read(f"{base}/stream/300000", limits=small)  # no Content-Length: counted as it comes
    assert err.value.limit == "download_bytes"
    assert list(download_dir.iterdir()) == []


def test_url_not_found_is_a_typed_error(server, download_dir):
    _, base = server
    with pytest.raises(CorruptFileError) as err:
        dlformats.read(f"{base}/missing.tif")
    assert "404" in str(err.value) or "Not Found" in str(err.value)
    assert err.value.path == f"{base}/missing.tif"
    assert list(download_dir.iterdir()) == []


def test_url_timeout_is_a_typed_error(server, download_dir):
    _, base = server
    with pytest.raises(DLFormatsError) as err:
        dlformats.read(f"{base}/slow", limits=dlformats.Limits(download_seconds=1))
    assert "timed out" in str(err.value).lower()
    assert list(download_dir.iterdir()) == []


def test_url_nobody_listens_on(download_dir):
    with socket_closed_port() as port, pytest.raises(NetworkError, match="download failed"):
        dlformats.read(f"http://127.0.0.1:{port}/x.tif")


class socket_closed_port:  # noqa: N801 - used as a context manager, reads like one
    """A local port with nothing listening on it."""

    def __enter__(self) -> int:
        import socket

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        port = self._sock.getsockname()[1]
        self._sock.close()
        return port

    def __exit__(self, *exc: object) -> None:
        pass


def test_open_source_keeps_the_download_name(server, download_dir):
    root, base = server
    (root / "ядра_細胞.tif").write_bytes(b"II*\0")
    with open_source(f"{base}/{urllib.parse.quote('ядра_細胞.tif')}") as src:
        assert src.filename == "ядра_細胞.tif" and src.suffix == ".tif"
        assert src.path is not None and Path(src.path).parent.parent == download_dir
    assert list(download_dir.iterdir()) == []


def test_nul_bytes_are_not_text():
    assert open_source(b"abc\x00\x00def").describe() == "unrecognised binary data"
    assert open_source(b"plain words\n").describe() == "text"


def test_a_zip_format_known_by_its_members_opens_it_or_declines():
    def zipped(members):
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as zf:
            for name, data in members.items():
                zf.writestr(name, data)
        return out.getvalue()

    source = open_source(zipped({"dimensions.json": b"{}", "raw.dat": b""}), name="e.zip")
    archive, name = source.zip_holding("edit.json", "DIMENSIONS.json")
    assert name == "dimensions.json" and archive is source.zip()
    with pytest.raises(NotMyFormat, match=r"the zip has no edit\.json"):
        source.zip_holding("edit.json")
    with pytest.raises(NotMyFormat, match="content is text, not a zip archive"):
        open_source(b"plain words\n").zip_holding("edit.json")
    nested = open_source(zipped({"edit.json": b"{}", "inner.zip": b"PK\x03\x04"}), name="n.zip")
    with pytest.raises(UnsafeArchiveError, match="nested archive") as info:
        nested.zip_holding("edit.json")
    assert (info.value.path, info.value.member) == ("n.zip", "inner.zip")
