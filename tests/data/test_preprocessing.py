"""The Preprocessing spec and the in-graph EXIF orientation reader, against PIL."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

import visionkit as vk
from visionkit.data.exif import exif_orientation
from visionkit.data.preprocessing import Preprocessing

_orientation = tf.function(exif_orientation, autograph=False,
                           input_signature=[tf.TensorSpec([], tf.string)])


def _encode(file_format: str, orientation: int | None, size=(6, 10), **options) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"  # another tag before the orientation
    if orientation is not None:
        exif[0x0112] = orientation
    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, file_format, exif=exif, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("file_format", ["JPEG", "PNG", "WEBP"])
def test_orientation_matches_pil_for_every_value(file_format):
    for orientation in (None, 1, 2, 3, 4, 5, 6, 7, 8, 0, 9, 300):
        contents = _encode(file_format, orientation)
        expected = Image.open(io.BytesIO(contents)).getexif().get(0x0112, 1)
        expected = expected if 1 <= expected <= 8 else 1  # what visionkit's scan records
        assert int(_orientation(contents)) == expected, (file_format, orientation)


def _tiff(byte_order: str, orientation: int) -> bytes:
    mark = "<" if byte_order == "II" else ">"
    entries = [(0x010F, 2, 4, b"abc\x00"), (0x0112, 3, 1, struct.pack(mark + "HH", orientation, 0))]
    body = byte_order.encode() + struct.pack(mark + "HI", 42, 8) + struct.pack(mark + "H", 2)
    for tag, kind, count, value in entries:
        body += struct.pack(mark + "HHI", tag, kind, count) + value
    return body + b"\x00\x00\x00\x00"


@pytest.mark.parametrize("byte_order", ["II", "MM"])
def test_orientation_in_either_byte_order_after_other_segments(byte_order):
    base = _encode("JPEG", None)
    # An APP2 segment before the Exif APP1, as ICC profiles often are.
    app2 = b"\xff\xe2" + struct.pack(">H", 2 + 10) + b"ICC_PROFIL"
    exif = b"Exif\x00\x00" + _tiff(byte_order, 8)
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + len(exif)) + exif
    contents = base[:2] + app2 + app1 + base[2:]
    assert Image.open(io.BytesIO(contents)).getexif()[0x0112] == 8
    assert int(_orientation(contents)) == 8


def test_damaged_and_foreign_bytes_read_as_stored():
    jpeg = _encode("JPEG", 6)
    start = jpeg.index(b"Exif")
    for contents in (b"", b"not an image", jpeg[:start + 12],  # cut inside the block
                     jpeg[:start] + b"Exig" + jpeg[start + 4:]):  # not an Exif header
        assert int(_orientation(contents)) == 1
    for file_format in ("BMP", "GIF"):
        buffer = io.BytesIO()
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buffer, file_format)
        assert int(_orientation(buffer.getvalue())) == 1


def test_decode_turns_like_pil_and_scales_by_displayed_sides():
    """Orientation 6 swaps the sides: the DCT rule compares the displayed image."""
    contents = _encode("JPEG", 6, size=(40, 160), quality=95)
    spec = Preprocessing((32, 8), dct_scaling=True)
    image, source_size = spec.decode(tf.constant(contents))
    # Displayed 160x40 is 5x (32, 8): ratio 4 -> 40x10. Compared as stored (40x160 vs
    # 32x8) it would decode at ratio 1.
    assert tuple(image.shape) == (40, 10, 3)
    assert source_size.numpy().tolist() == [160, 40]
    full, _ = spec.replace(dct_scaling=False).decode(tf.constant(contents))
    upright = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(contents))))
    assert np.abs(full.numpy().astype(int) - upright).max() == 0  # accurate IDCT, as PIL


def test_spec_round_trips_through_json_and_rejects_bad_fields():
    spec = Preprocessing((24, 32), resize_method="lanczos3", antialias=False,
                         orientation="stored", dct_scaling=True)
    block = json.loads(json.dumps(spec.to_dict()))
    assert Preprocessing.from_dict(block) == spec
    assert block["resize"]["method"] == "lanczos3" and block["channels"]["16_bit"] == "high_byte"
    with pytest.raises(ValueError, match="resize_method.*'cubic'"):
        Preprocessing((8, 8), resize_method="cubic")
    with pytest.raises(ValueError, match="orientation"):
        Preprocessing((8, 8), orientation="upright")
    with pytest.raises(ValueError, match="format_version"):
        Preprocessing.from_dict({**block, "format_version": 99})


def test_image_folder_records_its_options(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / name / "x.png")
    data = vk.data.image_folder(tmp_path, image_size=(4, 6), interpolation="area",
                                preprocessing={"antialias": False}, validation_split=0.0)
    assert data.preprocessing == Preprocessing((4, 6), resize_method="area", antialias=False)
    with pytest.raises(ValueError, match="dct_scaling"):
        vk.data.image_folder(tmp_path, image_size=(4, 6), validation_split=0.0,
                             preprocessing={"dct_scaling": "yes"})


def test_load_images_reads_files_as_the_pipeline_and_names_bad_ones(tmp_path):
    path = tmp_path / "turned.jpg"
    path.write_bytes(_encode("JPEG", 8, size=(12, 20), quality=95))
    spec = Preprocessing((5, 3))
    pixels = vk.data.load_images([path], spec)
    assert pixels.shape == (1, 5, 3, 3) and pixels.dtype == np.float32
    upright = np.asarray(ImageOps.exif_transpose(Image.open(path)), np.float32)
    expected = tf.image.resize(upright, (5, 3), antialias=True).numpy()
    assert np.abs(pixels[0] - expected).max() <= 1.0
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a picture")
    with pytest.raises(ValueError, match="bad.png"):
        vk.data.load_images([bad], spec)
