"""dlformats.containers.tiffio: the guarded TIFF opener, the lazy series array and the axis mapping."""

from __future__ import annotations

import io
import struct
from types import SimpleNamespace

import numpy as np
import pytest
import tifffile

from dlformats import Limits
from dlformats.containers import tiffio
from dlformats.errors import AmbiguousInputError, CorruptFileError, LimitExceededError


def _stack(path, pages: int, **kw) -> np.ndarray:
    data = np.arange(pages * 4 * 5, dtype=np.uint8).reshape(pages, 4, 5)
    tifffile.imwrite(path, data, photometric="minisblack", metadata=None, **kw)
    return data


def _ifd_offsets(path) -> list[int]:
    with tifffile.TiffFile(path) as tif:
        return [page.offset for page in tif.pages]


def _set_next_ifd(path, ifd_offset: int, target: int) -> None:
    """Point the 'next IFD' field of the classic little-endian IFD at ``ifd_offset`` to ``target``."""
    raw = bytearray(path.read_bytes())
    count = struct.unpack_from("<H", raw, ifd_offset)[0]
    struct.pack_into("<I", raw, ifd_offset + 2 + 12 * count, target)
    path.write_bytes(bytes(raw))


def test_ifd_loop_longer_than_100_pages_is_refused(tmp_path):
    path = tmp_path / "loop.tif"
    _stack(path, 150)
    offsets = _ifd_offsets(path)
    # Last IFD back to the first: a loop of period 150, which makes tifffile itself spin forever.
    _set_next_ifd(path, offsets[-1], offsets[0])
    with pytest.raises(CorruptFileError, match="loops") as err:
        tiffio.open_tiff(path, name=str(path), limits=Limits())
    assert err.value.path == str(path)


def test_ifd_offset_past_end_is_refused(tmp_path):
    path = tmp_path / "past.tif"
    _stack(path, 3)
    offsets = _ifd_offsets(path)
    _set_next_ifd(path, offsets[1], path.stat().st_size + 100)
    with pytest.raises(CorruptFileError, match="outside the file") as err:
        tiffio.open_tiff(path, name="past.tif", member="inner/past.tif", limits=Limits())
    assert err.value.member == "inner/past.tif"
    assert "past.tif: inner/past.tif" in str(err.value)


def test_tag_values_past_end_are_refused(tmp_path):
    path = tmp_path / "tag.tif"
    _stack(path, 1)
    raw = bytearray(path.read_bytes())
    ifd = _ifd_offsets(path)[0]
    # Entry 0 becomes a LONG tag with a million values stored past the end of the file.
    struct.pack_into("<HHII", raw, ifd + 2, 254, 4, 1_000_000, len(raw))
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match="past the end"):
        tiffio.open_tiff(path, name="tag.tif", limits=Limits())


def test_page_cap(tmp_path):
    path = tmp_path / "many.tif"
    _stack(path, 20)
    with pytest.raises(LimitExceededError) as err:
        tiffio.open_tiff(path, name="many.tif", limits=Limits(tiff_pages=10))
    assert err.value.limit == "tiff_pages"
    tif = tiffio.open_tiff(path, name="many.tif", limits=Limits(tiff_pages=20))
    assert tif.series[0].shape == (20, 4, 5)
    tif.close()


@pytest.mark.parametrize("bigtiff", [False, True])
@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_walk_counts_pages_in_every_flavour(tmp_path, bigtiff, byteorder):
    path = tmp_path / "flavour.tif"
    _stack(path, 7, bigtiff=bigtiff, byteorder=byteorder)
    with open(path, "rb") as fh:
        assert tiffio.walk_ifds(fh, name="f", limits=Limits()) == 7


def test_not_a_tiff(tmp_path):
    with pytest.raises(CorruptFileError, match="not a TIFF"):
        tiffio.open_tiff(io.BytesIO(b"\x89PNG\r\n\x1a\n" + bytes(100)), name="x.tif", limits=Limits())


def _ome(size_z: int, ifds: list[int]) -> str:
    data = "".join(f'<TiffData FirstZ="{z}" IFD="{i}" PlaneCount="1"/>' for z, i in enumerate(ifds))
    return (
        '<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
        '<Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint8" '
        f'SizeX="5" SizeY="4" SizeZ="{size_z}" SizeC="1" SizeT="1">{data}</Pixels></Image></OME>'
    )


def test_tifffile_warning_about_missing_planes_becomes_error(tmp_path):
    path = tmp_path / "missing.ome.tif"
    data = np.ones((3, 4, 5), np.uint8)
    # OME-XML promises 4 planes, the file has 3: tifffile would zero-fill the fourth with a log warning.
    tifffile.imwrite(path, data, photometric="minisblack", metadata=None, description=_ome(4, [0, 1, 2, 99]))
    with pytest.raises(CorruptFileError, match="OME series") as err:
        tiffio.open_tiff(path, name=str(path), limits=Limits())
    assert err.value.path == str(path)


def test_broken_ome_xml_is_an_error_not_a_fallback(tmp_path):
    path = tmp_path / "broken.ome.tif"
    xml = _ome(3, [0, 1, 2]).replace("</Pixels>", "</Pixel>")
    tifffile.imwrite(path, np.ones((3, 4, 5), np.uint8), photometric="minisblack", metadata=None, description=xml)
    with pytest.raises(CorruptFileError):
        tiffio.open_tiff(path, name=str(path), limits=Limits())


def test_valid_ome_opens_quietly(tmp_path):
    path = tmp_path / "good.ome.tif"
    tifffile.imwrite(
        path, np.ones((3, 4, 5), np.uint8), photometric="minisblack", metadata=None, description=_ome(3, [0, 1, 2])
    )
    tif = tiffio.open_tiff(path, name=str(path), limits=Limits())
    assert tif.series[0].kind == "ome" and tiffio.series_axes(tif.series[0]) == "ZYX"
    tif.close()


def test_in_place_read_at_offset(tmp_path):
    inner = io.BytesIO()
    data = _stack(inner, 3, compression="zlib")
    tiff_bytes = inner.getvalue()
    prefix = b"some archive bytes before the member" * 3
    outer = tmp_path / "container.bin"
    outer.write_bytes(prefix + tiff_bytes + b"trailing bytes")
    for source in (outer, open(outer, "rb")):
        tif = tiffio.open_tiff(
            source, name=str(outer), member="X.ome.tiff", limits=Limits(), offset=len(prefix), size=len(tiff_bytes)
        )
        array = tiffio.series_array(tif.series[0], name=str(outer), member="X.ome.tiff", limits=Limits())
        assert array.shape == (3, 4, 5)
        np.testing.assert_array_equal(array[2], data[2])
        np.testing.assert_array_equal(np.asarray(array), data)
        tif.close()
        if not isinstance(source, type(outer)):
            source.close()


def test_series_array_reads_only_the_pages_asked_for(tmp_path):
    path = tmp_path / "lazy.tif"
    data = _stack(path, 3, compression="zlib")
    with tifffile.TiffFile(path) as tif:
        page2 = tif.pages[2]
        start, length = page2.dataoffsets[0], page2.databytecounts[0]
    raw = bytearray(path.read_bytes())
    raw[start : start + length] = b"\xff" * length  # page 2's deflate stream is garbage
    path.write_bytes(bytes(raw))
    tif = tiffio.open_tiff(path, name="lazy.tif", limits=Limits())
    array = tiffio.series_array(tif.series[0], name="lazy.tif", limits=Limits())
    np.testing.assert_array_equal(array[0], data[0])
    np.testing.assert_array_equal(array[1, 1:3, ::2], data[1, 1:3, ::2])
    with pytest.raises(CorruptFileError, match="page 2") as err:
        array[2]
    assert err.value.path == "lazy.tif"
    tif.close()


def test_series_array_limits_before_allocation(tmp_path):
    path = tmp_path / "big.tif"
    _stack(path, 4)
    tif = tiffio.open_tiff(path, name="big.tif", limits=Limits())
    with pytest.raises(LimitExceededError) as err:
        tiffio.series_array(tif.series[0], name="big.tif", limits=Limits(total_bytes=79))
    assert err.value.limit == "total_bytes" and err.value.found == 80
    with pytest.raises(LimitExceededError) as err:
        tiffio.series_array(tif.series[0], name="big.tif", limits=Limits(array_bytes=19))
    assert err.value.limit == "array_bytes"
    array = tiffio.series_array(tif.series[0], name="big.tif", limits=Limits(array_bytes=40))
    assert array[1].shape == (4, 5)
    with pytest.raises(LimitExceededError):
        np.asarray(array)  # 80 bytes at once
    tif.close()


@pytest.mark.parametrize("planar", [False, True])
def test_rgb_pages_interleaved_and_planar(tmp_path, planar):
    path = tmp_path / "rgb.tif"
    rgb = np.random.default_rng(1).integers(0, 255, (2, 6, 7, 3), dtype=np.uint8)
    data = rgb.transpose(0, 3, 1, 2) if planar else rgb
    tifffile.imwrite(
        path, data, photometric="rgb", planarconfig="separate" if planar else "contig", metadata=None, tile=(16, 16)
    )
    tif = tiffio.open_tiff(path, name="rgb.tif", limits=Limits())
    series = tif.series[0]
    array = tiffio.series_array(series, name="rgb.tif", limits=Limits())
    axes = tiffio.series_axes(series)
    assert axes == ("TSYX" if planar else "TYXS")
    assert array.shape == data.shape
    np.testing.assert_array_equal(np.asarray(array), data)
    green = array[1, 1] if planar else array[1, :, :, 1]
    np.testing.assert_array_equal(green, rgb[1, :, :, 1])
    tif.close()


def test_series_axes_mapping():
    def fake(axes, shape):
        return SimpleNamespace(levels=None, axes=axes, shape=shape)

    assert tiffio.series_axes(fake("IYX", (3, 4, 5))) == "TYX"
    assert tiffio.series_axes(fake("QYX", (3, 4, 5))) == "TYX"
    assert tiffio.series_axes(fake("TQYX", (2, 3, 4, 5))) == "TZYX"
    assert tiffio.series_axes(fake("TCZYXS", (2, 2, 2, 4, 5, 3))) == "TCZYXS"
    with pytest.raises(AmbiguousInputError) as err:
        tiffio.series_axes(fake("RYX", (6, 4, 5)))
    assert err.value.option == "axes" and "'R'" in str(err.value)


def test_multifile_companion_fixture():
    from dlformats.testing import fixtures_dir

    root = fixtures_dir()
    if root is None:
        pytest.skip("no fixtures")
    folder = root / "viv" / "multifile"
    xml = (folder / "multifile.companion.ome").read_text()
    tif = tiffio.open_tiff(folder / "multifile-Z1.ome.tiff", name="companion", limits=Limits(), omexml=xml)
    array = tiffio.series_array(tif.series[0], name="companion", limits=Limits())
    assert (array.shape, tiffio.series_axes(tif.series[0])) == ((5, 24, 18), "ZYX")
    for z in range(5):
        np.testing.assert_array_equal(array[z], tifffile.imread(folder / f"multifile-Z{z + 1}.ome.tiff"))
    tif.close()
    with pytest.raises(LimitExceededError):  # pages of every file of the dataset count
        tiffio.open_tiff(folder / "multifile-Z1.ome.tiff", name="companion", limits=Limits(tiff_pages=3), omexml=xml)


def test_multifile_names_outside_the_folder_are_refused(tmp_path):
    path = tmp_path / "a.ome.tif"
    xml = _ome(2, [0, 0]).replace(
        'IFD="0" PlaneCount="1"/>',
        'IFD="0" PlaneCount="1"><UUID FileName="../b.ome.tif">urn:uuid:2</UUID></TiffData>',
    )
    tifffile.imwrite(path, np.ones((4, 5), np.uint8), photometric="minisblack", metadata=None, description=xml)
    with pytest.raises(CorruptFileError, match="outside"):
        tiffio.open_tiff(path, name=str(path), limits=Limits())


def test_a_page_of_many_samples_is_decoded_once(tmp_path, monkeypatch):
    # Regression (tiff fuzz finding): a 143-byte TIFF declaring 65,535 samples per pixel made the
    # reader decode its one page once per sample plane: hours.  The last page decoded is kept.
    import numpy as np
    import tifffile

    import dlformats
    from dlformats.containers import tiffio

    image = np.random.default_rng(0).integers(0, 255, (4, 6, 300), dtype=np.uint8)  # Y, X, S
    tifffile.imwrite(tmp_path / "s.tif", image, planarconfig="contig", photometric="minisblack", extrasamples=[0] * 299)
    decoded = []
    original = tiffio.TiffSeriesArray._decode

    def counting(self, index):
        decoded.append(index)
        return original(self, index)

    monkeypatch.setattr(tiffio.TiffSeriesArray, "_decode", counting)
    project = dlformats.read(tmp_path / "s.tif")
    assert project.X.shape == (300, 1, 4, 6)
    np.testing.assert_array_equal(np.asarray(project.X)[:, 0], np.moveaxis(image, -1, 0))
    assert decoded == [0]


# ------------------------------------------------------------------ simple OME-TIFFs read by hand
def _ome_bytes(data: np.ndarray, **kw) -> bytes:
    """An OME-TIFF of ``data`` (C, Z, Y, X) as tifffile writes it, pages in OME order XYZCT."""
    out = io.BytesIO()
    tifffile.imwrite(out, data, ome=True, photometric="minisblack", metadata={"axes": "CZYX", **kw.pop("md", {})}, **kw)
    return out.getvalue()


@pytest.fixture
def tifffile_opens(monkeypatch):
    """Every ``tifffile.TiffFile`` opened from now on (to show what was read by hand)."""
    opened = []
    original = tifffile.TiffFile.__init__

    def counting(self, *args, **kwargs):
        opened.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(tifffile.TiffFile, "__init__", counting)
    return opened


@pytest.mark.parametrize("dtype", ["uint16", "float32", "int8", "bool"])
@pytest.mark.parametrize("bigtiff", [False, True])
@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_simple_ome_tiff_read_by_hand_in_every_flavour(byteorder, bigtiff, dtype, tifffile_opens):
    rng = np.random.default_rng(1)
    data = (rng.integers(0, 2, (2, 3, 7, 5)) if dtype == "bool" else rng.integers(-100, 100, (2, 3, 7, 5))).astype(
        dtype
    )
    raw = _ome_bytes(data, byteorder=byteorder, bigtiff=bigtiff, md={"Channel": {"Name": ["DAPI", "007"]}})
    planes = tiffio.ome_planes(io.BytesIO(raw), name="x.zip", member="X.ome.tiff", limits=Limits())
    assert planes is not None  # the simple path, not the series
    assert tifffile_opens == []  # shape, dtype and names known without tifffile
    assert planes.shape == (2, 3, 1, 7, 5) and planes.dtype == np.dtype(dtype)
    assert planes.channel_names == ["DAPI", "007"]  # as written (tifffile's dictionary would make "007" 7)
    for c in range(2):
        for z in range(3):
            np.testing.assert_array_equal(planes[c, z, 0], data[c, z])
    assert tifffile_opens == [1]  # opened once, at the first plane


def _with_description(data: np.ndarray, xml: str, **kw) -> bytes:
    out = io.BytesIO()
    tifffile.imwrite(out, data, photometric="minisblack", metadata=None, description=xml, **kw)
    return out.getvalue()


def _xml(size_x: int, size_y: int, pixel_type: str, size_z: int = 2) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
        f'<Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="{pixel_type}" SizeX="{size_x}" '
        f'SizeY="{size_y}" SizeZ="{size_z}" SizeC="1" SizeT="1"><Channel ID="Channel:0" SamplesPerPixel="1"/>'
        f'<TiffData IFD="0" PlaneCount="{size_z}"/></Pixels></Image></OME>'
    )


@pytest.mark.parametrize(
    "xml",
    [
        _xml(6, 4, "uint8"),  # SizeX disagrees with ImageWidth (5)
        _xml(5, 4, "uint16"),  # Pixels Type disagrees with BitsPerSample (8)
        _xml(5, 4, "int8"),  # ... and with SampleFormat (unsigned)
        _xml(5, 4, "uint8", size_z=3),  # more planes than pages
        _xml(5, 4, "uint8").replace('IFD="0"', 'IFD="1"'),  # planes start at another IFD
        _xml(5, 4, "uint8").replace("<TiffData ", '<TiffData FirstZ="1" '),
        _xml(5, 4, "uint8").replace('<TiffData IFD="0" PlaneCount="2"/>', "<TiffData/>"),
        _xml(5, 4, "uint8").replace("/></Pixels>", "/><TiffData/></Pixels>"),  # two TiffData
        _xml(5, 4, "uint8").replace('SamplesPerPixel="1"', 'SamplesPerPixel="3"'),
        _xml(5, 4, "uint8").replace('"XYZCT"', '"XYZCX"'),
        _xml(5, 4, "uint8").replace('SizeX="5"', 'SizeX="5.0"'),
        _xml(5, 4, "uint8").replace("</Image>", '</Image><Image ID="Image:1"/>'),
        _xml(5, 4, "uint8").replace(
            'PlaneCount="2"/>', 'PlaneCount="2"><UUID FileName="x.ome.tif">urn:uuid:1</UUID></TiffData>'
        ),
        _xml(5, 4, "uint8").replace("</OME>", "</OMEX>"),  # broken XML
    ],
)
def test_unusual_ome_tiffs_are_left_to_the_series_path(xml):
    data = np.arange(2 * 4 * 5, dtype=np.uint8).reshape(2, 4, 5)
    raw = _with_description(data, xml)
    assert tiffio.ome_planes(io.BytesIO(raw), name="x.tif", limits=Limits()) is None
    # the control: the same file with the right OME-XML is read by hand
    good = _with_description(data, _xml(5, 4, "uint8"))
    planes = tiffio.ome_planes(io.BytesIO(good), name="x.tif", limits=Limits())
    assert planes is not None and planes.shape == (1, 2, 1, 4, 5)
    np.testing.assert_array_equal(planes[0, 1, 0], data[1])


def test_a_description_over_the_json_limit_is_left_to_the_series_path():
    data = np.zeros((2, 4, 5), np.uint8)
    xml = _xml(5, 4, "uint8").replace("<Image ", "<!--" + "x" * 5000 + "--><Image ")
    raw = _with_description(data, xml)
    assert tiffio.ome_planes(io.BytesIO(raw), name="x.tif", limits=Limits(json_bytes=4096)) is None
    assert tiffio.ome_planes(io.BytesIO(raw), name="x.tif", limits=Limits()) is not None


@pytest.mark.parametrize("lie", ["dtype", "height", "pages"])
def test_tifffile_seeing_the_file_otherwise_than_the_hand_parse_is_an_error(lie, monkeypatch):
    # Should the tags read by hand and tifffile ever disagree, no plane is returned as the wrong thing.
    data = np.arange(2 * 3 * 4 * 5, dtype=np.uint8).reshape(2, 3, 4, 5)
    raw = _ome_bytes(data)
    original = tiffio._hand_plan

    def lying(fh, ifds, **kw):
        plan = original(fh, ifds, **kw)
        if lie == "dtype":
            plan.dtype = "int8"
        elif lie == "height":
            plan.sizes["Y"] = 2
        else:
            ifds.append(ifds[-1])
            plan.sizes["T"] = 2
        return plan

    monkeypatch.setattr(tiffio, "_hand_plan", lying)
    planes = tiffio.ome_planes(io.BytesIO(raw), name="p.zip", member="X.ome.tiff", limits=Limits())
    with pytest.raises(CorruptFileError, match="tifffile reads the TIFF unlike its tags") as err:
        planes[0, 0, 0]
    assert err.value.path == "p.zip" and err.value.member == "X.ome.tiff"


def test_the_declared_total_is_held_to_the_limit_before_any_plane():
    raw = _ome_bytes(np.zeros((2, 3, 40, 50), np.uint16))
    with pytest.raises(LimitExceededError):
        tiffio.ome_planes(io.BytesIO(raw), name="x.tif", limits=Limits(total_bytes=2 * 3 * 40 * 50 * 2 - 1))


def test_planes_read_by_hand_do_not_pickle():
    import pickle

    planes = tiffio.ome_planes(io.BytesIO(_ome_bytes(np.zeros((1, 2, 4, 5), np.uint8))), name="x.tif", limits=Limits())
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(planes)


def _first_reads_at_once(planes, data: np.ndarray, threads: int) -> list[object]:
    """Thread ``t`` reads planes ``[c, t]`` for every ``c``, all starting together; what went wrong."""
    import threading

    barrier = threading.Barrier(threads)
    wrong: list[object] = []

    def first_read(t: int) -> None:
        barrier.wait()
        try:
            for c in range(data.shape[0]):
                if not np.array_equal(planes[c, t, 0], data[c, t]):
                    wrong.append((c, t))
        except Exception as exc:  # noqa: BLE001 - every failure is shown
            wrong.append(exc)

    workers = [threading.Thread(target=first_read, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return wrong


def test_first_plane_read_by_8_threads_at_once_opens_tifffile_once(tmp_path, tifffile_opens):
    data = np.random.default_rng(2).integers(0, 60000, (2, 8, 24, 20)).astype(np.uint16)
    path = tmp_path / "x.ome.tif"
    path.write_bytes(_ome_bytes(data, compression="zlib"))
    for _ in range(5):  # a fresh array each round: the race is on the first access
        planes = tiffio.ome_planes(path, name=str(path), limits=Limits())
        opened_before = len(tifffile_opens)
        assert _first_reads_at_once(planes, data, 8) == []
        assert len(tifffile_opens) - opened_before == 1


def _huge_strip_count(data: bytes, page: int) -> bytes:
    """``data`` (a TIFF) with page ``page``'s first StripByteCounts value set to 0xFFFFFFF0."""
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        tag = tif.pages[page].tags["StripByteCounts"]
        at = tag.valueoffset if tag.count > 1 else tag.offset + 8  # inline value: after code, type, count
        kind = tag.dtype
    out = bytearray(data)
    struct.pack_into("<I" if kind == 4 else "<H", out, at, 0xFFFFFFF0 if kind == 4 else 0xFFF0)
    return bytes(out)


@pytest.mark.parametrize("how", ["project zip", "tiff file"])
def test_strip_byte_count_past_the_end_is_refused_not_allocated(tmp_path, how):
    """A fuzzed StripByteCounts far past the end made tifffile ask for that many bytes (a bare MemoryError)."""
    import zipfile

    import dlformats
    from dlformats import Project

    rng = np.random.default_rng(5)
    y = rng.integers(0, 5, (1, 3, 32, 48), dtype=np.int32)
    if how == "project zip":
        good = tmp_path / "good.zip"
        dlformats.write(Project(X=y[:, :, :, :].astype(np.uint8), y=y), good)
        with zipfile.ZipFile(good) as zf:
            members = {i.filename: zf.read(i.filename) for i in zf.infolist()}
        members["y.ome.tiff"] = _huge_strip_count(members["y.ome.tiff"], 1)
        path = tmp_path / "bad.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in members.items():
                zf.writestr(name, data)
        read = lambda: np.asarray(dlformats.read(path).y)  # noqa: E731
    else:
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, y[0].astype(np.uint16), photometric="minisblack")
        path = tmp_path / "bad.tif"
        path.write_bytes(_huge_strip_count(buffer.getvalue(), 1))
        read = lambda: np.asarray(dlformats.read(path, axes="TYX").X)  # noqa: E731
    with pytest.raises(CorruptFileError) as info:
        read()
    assert "lies outside the TIFF" in str(info.value) and info.value.path == str(path)


# Four bytes of pillow's tiled, planar LZW TIFF changed (found by fuzzing dlformats.read): imagecodecs'
# lzw_decode, given the output size as tifffile gives it, crashed the interpreter (SIGSEGV).
_LZW_CRASH = {331: 66, 2003: 159, 2691: 198, 3986: 28}


def test_corrupt_lzw_strip_is_an_error_not_a_crash(tmp_path):
    import subprocess
    import sys

    from dlformats.testing import fixtures_dir

    root = fixtures_dir()
    if root is None:
        pytest.skip("../shared/fixtures is absent")
    data = bytearray((root / "pillow" / "tiff_tiled_planar_lzw.tiff").read_bytes())
    for at, value in _LZW_CRASH.items():
        data[at] = value
    path = tmp_path / "corrupt_lzw.tiff"
    path.write_bytes(bytes(data))
    script = (
        "import sys, numpy, dlformats\n"
        "try:\n"
        "    numpy.asarray(dlformats.read(sys.argv[1]).X)\n"
        "except dlformats.errors.CorruptFileError as exc:\n"
        "    print('refused:', exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"the reader crashed (return code {done.returncode}): {done.stderr[-2000:]}"
    assert "refused:" in done.stdout and "LZW" in done.stdout, done.stdout + done.stderr
    assert "corrupt_lzw.tiff" in done.stdout


def _lzw_codes(codes: list[tuple[int, int]]) -> bytes:
    """An MSB LZW stream of ``(code, width)`` pairs."""
    bits = "".join(format(code, f"0{width}b") for code, width in codes)
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""


def test_lzw_code_after_clear_must_be_a_byte():
    """imagecodecs reads a string from the table entry such a code names (emptied by the CLEAR): refused first."""
    good = _lzw_codes([(256, 9), (65, 9), (66, 9), (258, 9), (257, 9)])
    tiffio._check_lzw(good)
    assert imagecodecs_lzw(good) == b"ABAB"
    for bad in (
        [(256, 9), (300, 9), (65, 9), (257, 9)],  # right after the first CLEAR
        [(256, 9), (65, 9), (66, 9), (256, 9), (258, 9), (257, 9)],  # after a later CLEAR
        [(256, 9), (256, 9), (511, 9), (257, 9)],  # after repeated CLEARs
    ):
        with pytest.raises(ValueError, match="right after a CLEAR"):
            tiffio._check_lzw(_lzw_codes(bad))


def imagecodecs_lzw(data: bytes) -> bytes:
    import imagecodecs

    return imagecodecs.lzw_decode(data)


@pytest.mark.parametrize("n", [0, 1, 300, 5000, 70000, 400000])
def test_lzw_check_passes_every_encoder_stream(n):
    """No false refusal: streams of every length, with table resets, pass and decode as encoded."""
    import imagecodecs

    rng = np.random.default_rng(n)
    runs = np.repeat(rng.integers(0, 3, n // 40 + 1), 40)[:n].astype(np.uint8)
    for data in (rng.integers(0, 256, n, np.uint8), runs):
        stream = imagecodecs.lzw_encode(data.tobytes())
        tiffio._check_lzw(stream)
        assert imagecodecs.lzw_decode(stream) == data.tobytes()
