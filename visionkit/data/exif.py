"""EXIF orientation read from encoded image bytes with TensorFlow ops (graph code).

TensorFlow's decoders return pixels as stored and ignore the EXIF orientation tag that
cameras write. `exif_orientation` finds the tag in the file's bytes inside the graph, so
the same rule runs in the tf.data pipeline and inside an exported SavedModel (no Python
on the serving side). It reads, as PIL's `Image.getexif()` does:

- JPEG: the first APP1 segment that starts with `Exif\\0\\0` (markers walked from SOI up
  to the start of scan);
- PNG: the `eXIf` chunk (chunks walked up to IEND);
- WebP: the `EXIF` chunk of the RIFF container (with or without an `Exif\\0\\0` prefix).

Inside the EXIF block (a TIFF structure, CIPA DC-008 / TIFF 6.0) it reads tag 0x0112 of
IFD0 in the block's byte order ("II" little-endian or "MM" big-endian). Values outside
1..8, truncated or malformed blocks and other formats (BMP, GIF) give 1 (as stored).

Only a few small slices of the file are read (`tf.strings.substr`), never the whole file.

Example:

>>> import io, numpy as np
>>> from PIL import Image
>>> exif = Image.Exif()
>>> exif[0x0112] = 6
>>> buffer = io.BytesIO()
>>> Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buffer, "JPEG", exif=exif)
>>> int(exif_orientation(tf.constant(buffer.getvalue())))
6
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["exif_orientation", "EXIF_ORIENTATION_TAG", "MAX_SEGMENTS"]

# The EXIF tag holding the orientation (TIFF 6.0 / CIPA DC-008): values 1..8.
EXIF_ORIENTATION_TAG = 0x0112
# At most this many JPEG segments / PNG or WebP chunks are walked before giving up.
MAX_SEGMENTS = 256
# At most this many IFD0 entries are read (real files hold a few dozen).
MAX_IFD_ENTRIES = 512
# Bytes of an IFD entry (tag, type, count, value: 2 + 2 + 4 + 4).
IFD_ENTRY_BYTES = 12
_EXIF_HEADER = b"Exif\x00\x00"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _bytes(contents: tf.Tensor, position: tf.Tensor, length: int) -> tf.Tensor:
    """int32 `[length]`: the file's bytes at `position`, zero past its end."""
    size = tf.cast(tf.strings.length(contents), tf.int64)
    position = tf.clip_by_value(tf.cast(position, tf.int64), 0, size)
    piece = tf.strings.substr(contents, position, tf.constant(length, tf.int64))
    values = tf.cast(tf.io.decode_raw(piece, tf.uint8), tf.int32)
    return tf.reshape(tf.pad(values, [[0, length - tf.shape(values)[0]]]), [length])


def _big_endian(values: tf.Tensor) -> tf.Tensor:
    result = tf.constant(0, tf.int64)
    for index in range(values.shape[0]):
        result = result * 256 + tf.cast(values[index], tf.int64)
    return result


def _little_endian(values: tf.Tensor) -> tf.Tensor:
    return _big_endian(tf.reverse(values, [0]))


def _equals(values: tf.Tensor, expected: bytes) -> tf.Tensor:
    return tf.reduce_all(tf.equal(values, tf.constant(list(expected), tf.int32)))


def _jpeg_exif_start(contents: tf.Tensor) -> tf.Tensor:
    """Offset of the TIFF header in the first Exif APP1 segment, or -1."""
    length = tf.cast(tf.strings.length(contents), tf.int64)

    def condition(position, found, step):
        return (found < 0) & (position >= 0) & (position + 4 <= length) & (step < MAX_SEGMENTS)

    def body(position, found, step):
        head = _bytes(contents, position, 10)
        marker = head[1]
        segment = _big_endian(head[2:4])
        is_marker = tf.equal(head[0], 0xFF)
        fill = is_marker & tf.equal(marker, 0xFF)
        # Standalone markers (TEM, RSTn) carry no length.
        standalone = tf.equal(marker, 0x01) | ((marker >= 0xD0) & (marker <= 0xD7))
        end = ~is_marker | tf.equal(marker, 0xDA) | tf.equal(marker, 0xD9)
        exif = is_marker & tf.equal(marker, 0xE1) & _equals(head[4:10], _EXIF_HEADER)
        found = tf.where(exif & ~end, position + 10, found)
        next_position = tf.where(fill, position + 1,
                                 tf.where(standalone, position + 2, position + 2 + segment))
        next_position = tf.where(end, tf.constant(-1, tf.int64), next_position)
        return next_position, found, step + 1

    _, found, _ = tf.while_loop(condition, body, (tf.constant(2, tf.int64),
                                                  tf.constant(-1, tf.int64),
                                                  tf.constant(0)))
    return found


def _chunk_exif_start(contents: tf.Tensor, first: int, name: bytes, end_name: bytes | None,
                      little_endian: bool) -> tf.Tensor:
    """Offset of the TIFF header in a PNG (`eXIf`) or WebP (`EXIF`) chunk, or -1.

    PNG chunks are `length (4, big-endian) | type (4) | data | crc (4)`; RIFF chunks are
    `type (4) | length (4, little-endian) | data | pad to even`.
    """
    length = tf.cast(tf.strings.length(contents), tf.int64)

    def condition(position, found, step):
        return (found < 0) & (position >= 0) & (position + 8 <= length) & (step < MAX_SEGMENTS)

    def body(position, found, step):
        head = _bytes(contents, position, 14)
        if little_endian:
            kind, size = head[0:4], _little_endian(head[4:8])
            following = position + 8 + size + size % 2
        else:
            kind, size = head[4:8], _big_endian(head[0:4])
            following = position + 12 + size
        data_start = position + 8
        prefixed = _equals(head[8:14], _EXIF_HEADER)
        hit = _equals(kind, name)
        found = tf.where(hit, tf.where(prefixed, data_start + 6, data_start), found)
        stop = hit | (_equals(kind, end_name) if end_name else tf.constant(False))
        return tf.where(stop, tf.constant(-1, tf.int64), following), found, step + 1

    _, found, _ = tf.while_loop(condition, body, (tf.constant(first, tf.int64),
                                                  tf.constant(-1, tf.int64),
                                                  tf.constant(0)))
    return found


def _tiff_orientation(contents: tf.Tensor, start: tf.Tensor) -> tf.Tensor:
    """The orientation tag of IFD0 of the TIFF structure at `start` (1 if absent/bad)."""
    header = _bytes(contents, start, 8)
    little = _equals(header[0:2], b"II")
    big = _equals(header[0:2], b"MM")

    def number(values):
        return tf.where(little, _little_endian(values), _big_endian(values))

    ifd = start + number(header[4:8])
    count = tf.minimum(number(_bytes(contents, ifd, 2)), MAX_IFD_ENTRIES)
    table = _bytes(contents, ifd + 2, MAX_IFD_ENTRIES * IFD_ENTRY_BYTES)
    entries = tf.reshape(table, [MAX_IFD_ENTRIES, IFD_ENTRY_BYTES])
    first, second = tf.cast(entries[:, 0], tf.int64), tf.cast(entries[:, 1], tf.int64)
    tags = tf.where(little, second * 256 + first, first * 256 + second)
    low, high = tf.cast(entries[:, 8], tf.int64), tf.cast(entries[:, 9], tf.int64)
    values = tf.where(little, high * 256 + low, low * 256 + high)
    matches = tf.equal(tags, EXIF_ORIENTATION_TAG) & (tf.range(MAX_IFD_ENTRIES,
                                                               dtype=tf.int64) < count)
    position = tf.argmax(tf.cast(matches, tf.int32), output_type=tf.int32)
    value = tf.where(tf.reduce_any(matches), values[position], 1)
    valid = (little | big) & (value >= 1) & (value <= 8)
    return tf.cast(tf.where(valid, value, 1), tf.int32)


def exif_orientation(contents: tf.Tensor) -> tf.Tensor:
    """The EXIF orientation (1..8) of an encoded image, read by TensorFlow ops.

    Args:
        contents: a scalar string tensor, the file's bytes (JPEG, PNG, WebP, BMP, GIF).

    Returns:
        int32 scalar: 1 = as stored, 2 mirrored, 3 turned 180 degrees, 4 flipped,
        5 transposed, 6 turned 90 degrees clockwise for display, 7 transverse, 8 turned
        90 degrees counter-clockwise; 1 when the file has no (valid) orientation.
    """
    return _exif_orientation_graph(tf.convert_to_tensor(contents, tf.string))


def _exif_orientation(contents: tf.Tensor) -> tf.Tensor:
    """`exif_orientation`'s graph, traced once per process (see below)."""
    head = _bytes(contents, tf.constant(0, tf.int64), 16)
    is_jpeg = _equals(head[0:2], b"\xff\xd8")
    is_png = _equals(head[0:8], _PNG_SIGNATURE)
    is_webp = _equals(head[0:4], b"RIFF") & _equals(head[8:12], b"WEBP")

    def none():
        return tf.constant(-1, tf.int64)

    start = tf.case([(is_jpeg, lambda: _jpeg_exif_start(contents)),
                     (is_png, lambda: _chunk_exif_start(contents, 8, b"eXIf", b"IEND", False)),
                     (is_webp, lambda: _chunk_exif_start(contents, 12, b"EXIF", None, True))],
                    default=none, exclusive=True)
    return tf.cond(start >= 0, lambda: _tiff_orientation(contents, start),
                   lambda: tf.constant(1, tf.int32))


# Every tf.data map and serving signature that decodes files calls the orientation reader;
# as one tf.function with a fixed signature it is traced once per process and each caller
# holds a call to it, instead of re-tracing its loops and branches into every pipeline.
_exif_orientation_graph = tf.function(_exif_orientation,
                                      input_signature=[tf.TensorSpec([], tf.string)])
