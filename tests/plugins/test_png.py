"""The PNG plugin: real fixtures, values never rescaled, palette indices, size checks before decoding, writer."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import dlformats
from dlformats import (
    CorruptFileError,
    DLFormatsWarning,
    InvalidOptionError,
    LimitExceededError,
    Limits,
    Project,
    UnsupportedFeatureError,
    testing,
)

FIXTURES = testing.fixtures_dir()
INTRO = FIXTURES / "intro-to-deepcell" if FIXTURES else None
needs_fixtures = pytest.mark.skipif(FIXTURES is None, reason="../shared/fixtures is absent")

# Facts from ../shared/fixtures/SOURCES.md: decoded (H, W[, samples]) shape, dtype, (min, max) where given.
EXPECTED = {
    "img_000000000_FITC_001.png": ((1080, 1280), "uint16", (71, 12342)),
    "img_000000000_Phase_000.png": ((1080, 1280), "uint16", (125, 19829)),
    "nuclear_model_input.png": ((517, 514, 4), "uint8", (0, 255)),
    "nuclear_model_output.png": ((515, 511, 4), "uint8", (0, 255)),
    "multiplex_model_output.png": ((515, 516, 4), "uint8", (0, 255)),
}


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def raw_png(width: int, height: int, depth: int, colour: int, rows: list[bytes], extra: tuple = ()) -> bytes:
    """A PNG built byte by byte (filter 0 on every row), to control the header exactly."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    idat = zlib.compress(b"".join(b"\x00" + r for r in rows))
    body = chunk(b"IHDR", ihdr) + b"".join(chunk(k, d) for k, d in extra) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def pil_png(image: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", **kw)
    return buf.getvalue()


def test_declared_and_light():
    testing.check_declared("png")
    testing.check_import_light("dlformats_png")


@needs_fixtures
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reads_every_fixture(name):
    shape, dtype, (lo, hi) = EXPECTED[name]
    path = INTRO / name
    testing.check_sniff("png", path)
    project = testing.check_read("png", path)
    samples = shape[2] if len(shape) == 3 else 1
    assert tuple(project.X.shape) == (samples, 1, *shape[:2])
    assert str(project.X.dtype) == dtype
    X = np.asarray(project.X)
    assert (int(X.min()), int(X.max())) == (lo, hi)  # 16-bit kept as it is, never rescaled
    assert project.y is None and project.listed_cells is None
    if samples == 4:
        assert project.channels == ["red", "green", "blue", "alpha"]
        with Image.open(path) as im:  # alpha kept as the fourth channel, exactly
            assert np.array_equal(X[3, 0], np.asarray(im.getchannel("A")))


@needs_fixtures
def test_fixture_as_labels_gives_int32_y():
    path = INTRO / "img_000000000_FITC_001.png"
    project = dlformats.read(path, labels=path)  # the labels source is read with role "labels"
    assert project.X.dtype == np.uint16
    assert project.y.dtype == np.int32 and tuple(project.y.shape) == (1, 1, 1080, 1280)
    assert int(np.asarray(project.y).max()) == 12342


@needs_fixtures
def test_content_decides_a_png_named_tif(tmp_path):
    target = tmp_path / "actually_png.tif"
    target.write_bytes((INTRO / "nuclear_model_output.png").read_bytes())
    testing.check_sniff("png", target)
    with pytest.warns(DLFormatsWarning):
        project = dlformats.read(target)
    assert project.metadata["format"] == "png"


def test_palette_mask_keeps_indices():
    indices = (np.arange(6 * 7).reshape(6, 7) % 5).astype(np.uint8)
    image = Image.fromarray(indices, mode="P")
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 0])
    data = pil_png(image)
    project = dlformats.read(data)
    assert tuple(project.X.shape) == (1, 1, 6, 7)  # not expanded to RGB
    assert np.array_equal(np.asarray(project.X)[0, 0], indices)
    labels = dlformats.read(data, labels=data)
    assert labels.y.dtype == np.int32 and np.array_equal(np.asarray(labels.y)[0, 0], indices)


def test_palette_labels_merge_with_an_image(tmp_path):
    image = tmp_path / "image.png"
    image.write_bytes(pil_png(Image.fromarray(np.full((4, 5), 200, np.uint8))))
    mask = np.array([[0, 1, 1, 0, 2]] * 4, np.uint8)
    palette = Image.fromarray(mask, mode="P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0])
    (tmp_path / "mask.png").write_bytes(pil_png(palette))
    project = dlformats.read(image, labels=tmp_path / "mask.png")
    assert np.array_equal(np.asarray(project.y)[0, 0], mask)
    assert sorted({c.cell for c in project.cells_or_derived()}) == [1, 2]


def test_sixteen_bit_gray_full_range_kept():
    values = np.array([[0, 1, 255, 256], [4095, 30000, 65534, 65535]], np.uint16)
    data = raw_png(4, 2, 16, 0, [row.astype(">u2").tobytes() for row in values])
    X = dlformats.read(data).X
    assert X.dtype == np.uint16 and np.array_equal(np.asarray(X)[0, 0], values)


@pytest.mark.parametrize("colour,samples", [(2, 3), (4, 2), (6, 4)])
def test_sixteen_bit_colour_is_not_truncated(colour, samples):
    # Pillow would return these as 8-bit; the plugin must give the stored 16-bit samples
    values = (np.arange(3 * 5 * samples).reshape(3, 5, samples) * 1009 % 65536).astype(np.uint16)
    data = raw_png(5, 3, 16, colour, [row.astype(">u2").tobytes() for row in values])
    X = dlformats.read(data).X
    assert X.dtype == np.uint16 and tuple(X.shape) == (samples, 1, 3, 5)
    assert np.array_equal(np.asarray(X)[:, 0], np.moveaxis(values, -1, 0))


def test_rgba_alpha_kept_as_a_channel():
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., 0] = 10
    rgba[..., 3] = np.arange(24).reshape(4, 6) * 10  # alpha varies: nothing composited or dropped
    project = dlformats.read(pil_png(Image.fromarray(rgba, mode="RGBA")))
    X = np.asarray(project.X)
    assert X.shape == (4, 1, 4, 6)
    assert np.array_equal(X[3, 0], rgba[..., 3]) and np.array_equal(X[0, 0], rgba[..., 0])


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_sub_byte_gray_gives_stored_values(depth):
    top = 2**depth - 1
    values = np.array([[v % (top + 1) for v in range(8)]], np.uint8)
    per = 8 // depth
    packed = bytearray()
    for i in range(0, 8, per):
        byte = 0
        for v in values[0, i : i + per]:
            byte = (byte << depth) | int(v)
        packed.append(byte)
    X = dlformats.read(raw_png(8, 1, depth, 0, [bytes(packed)])).X
    assert X.dtype == np.uint8 and np.array_equal(np.asarray(X)[0, 0], values)


def test_size_checked_from_the_header_before_decoding():
    # declares 200000 x 200000 RGBA 16-bit (320 GB) but holds one row: refused from the IHDR alone
    data = raw_png(200_000, 200_000, 16, 6, [b"\x00" * 8])
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(LimitExceededError) as info:
        dlformats.read(data, name="bomb.png")
    assert info.value.limit == "array_bytes" and info.value.found == 200_000 * 200_000 * 8
    assert "bomb.png" in str(info.value)
    assert Image.MAX_IMAGE_PIXELS == before  # Pillow's global is never touched


@needs_fixtures
def test_own_limit_applies_to_real_files():
    path = INTRO / "img_000000000_Phase_000.png"
    with pytest.raises(LimitExceededError):
        dlformats.read(path, limits=Limits(array_bytes=1080 * 1280 * 2 - 1))
    assert dlformats.read(path, limits=Limits(array_bytes=1080 * 1280 * 2)).X.shape == (1, 1, 1080, 1280)


def test_above_pillows_bomb_threshold_decodes_within_our_limit(monkeypatch):
    # Pillow refuses above 2 x MAX_IMAGE_PIXELS; with a file-local threshold the plugin uses libpng instead
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)
    values = np.arange(30, dtype=np.uint8).reshape(5, 6)
    X = dlformats.read(raw_png(6, 5, 8, 0, [bytes(r) for r in values])).X
    assert np.array_equal(np.asarray(X)[0, 0], values)


@needs_fixtures
@pytest.mark.parametrize("cut", [100, 5000])
def test_truncated_png_is_a_corrupt_file(cut):
    data = (INTRO / "nuclear_model_output.png").read_bytes()[:cut]
    with pytest.raises(CorruptFileError) as info:
        dlformats.read(data, name="cut.png")
    assert "cut.png" in str(info.value)


def test_bad_header_crc_and_bad_depth_are_corrupt():
    data = bytearray(raw_png(2, 2, 8, 0, [b"\x00\x00"] * 2))
    data[29] ^= 0xFF  # inside the IHDR CRC
    with pytest.raises(CorruptFileError, match="CRC"):
        dlformats.read(bytes(data))
    with pytest.raises(CorruptFileError, match="bit depth 16 with colour type 3"):
        dlformats.read(raw_png(2, 2, 16, 3, [b"\x00" * 4] * 2))


def test_animated_png_refused_not_silently_cut():
    frames = [Image.fromarray(np.full((4, 4), v, np.uint8)) for v in (10, 20)]
    buf = io.BytesIO()
    frames[0].save(buf, format="PNG", save_all=True, append_images=frames[1:])
    with pytest.raises(UnsupportedFeatureError, match="2 frames"):
        dlformats.read(buf.getvalue())


def test_imageio_is_given_bytes_never_a_name(monkeypatch, tmp_path):
    import imageio.v3 as iio

    seen = []
    real = iio.imread

    def spy(uri, *args, **kwargs):
        seen.append(type(uri))
        return real(uri, *args, **kwargs)

    monkeypatch.setattr(iio, "imread", spy)
    target = tmp_path / "http:example.com.png"  # a name imageio could take for a URL
    target.write_bytes(pil_png(Image.fromarray(np.zeros((3, 3), np.uint8))))
    dlformats.read(target)
    assert seen == [bytes]


# ------------------------------------------------------------------ writer
@pytest.mark.parametrize(
    "channels,dtype", [(1, "uint8"), (1, "uint16"), (3, "uint8"), (4, "uint8"), (3, "uint16"), (4, "uint16")]
)
def test_roundtrip(tmp_path, channels, dtype):
    project = testing.make_project(channels=channels, frames=1, dtype=dtype, height=9, width=13)
    back = testing.check_roundtrip("png", project, tmp_path / "out.png")
    assert back.X.dtype == np.dtype(dtype)


def test_multi_frame_needs_a_frame_choice(tmp_path):
    project = testing.make_project(channels=1, frames=3)
    with pytest.raises(UnsupportedFeatureError, match="'frame': N"):
        dlformats.write(project, tmp_path / "out.png")
    assert not list(tmp_path.iterdir())  # nothing left behind
    dlformats.write(project, tmp_path / "out.png", options={"frame": 2})
    back = dlformats.read(tmp_path / "out.png")
    assert np.array_equal(np.asarray(back.X)[0, 0], np.asarray(project.X)[0, 2])
    with pytest.raises(InvalidOptionError):
        dlformats.write(project, tmp_path / "out.png", options={"frame": 3})


def test_writer_refuses_what_png_cannot_hold(tmp_path):
    with pytest.raises(UnsupportedFeatureError, match="1 to 4 channels"):
        dlformats.write(testing.make_project(channels=5, frames=1), tmp_path / "five.png")
    with pytest.raises(UnsupportedFeatureError, match="float32"):
        dlformats.write(testing.make_project(channels=1, frames=1, dtype="float32"), tmp_path / "float.png")


def test_labels_written_and_read_back_as_labels(tmp_path):
    y = np.zeros((1, 1, 6, 6), np.int32)
    y[0, 0, 1:3, 1:3] = 300  # needs 16 bits
    y[0, 0, 4:, 4:] = 7
    project = Project(X=np.zeros((1, 1, 6, 6), np.uint8), y=y)
    dlformats.write(project, tmp_path / "mask.png", options={"part": "y"})
    back = dlformats.read(tmp_path / "mask.png", labels=tmp_path / "mask.png")
    assert np.array_equal(np.asarray(back.y), y)
    y[0, 0, 0, 0] = 70000
    with pytest.raises(UnsupportedFeatureError, match="16-bit"):
        dlformats.write(project, tmp_path / "big.png", options={"part": "y"})


def test_select_for_the_image_does_not_break_a_png_mask(tmp_path):
    zstack = np.arange(3 * 5 * 6, dtype=np.uint16).reshape(3, 5, 6)
    np.save(tmp_path / "zstack.npy", zstack)
    mask = np.zeros((5, 6), np.uint8)
    mask[1:3, 1:4] = 1
    (tmp_path / "mask.png").write_bytes(pil_png(Image.fromarray(mask)))
    project = dlformats.read(
        tmp_path / "zstack.npy", labels=tmp_path / "mask.png", axes="ZYX", options={"select": {"Z": 1}}
    )
    assert np.array_equal(np.asarray(project.X)[0, 0], zstack[1])
    assert np.array_equal(np.asarray(project.y)[0, 0], mask)
