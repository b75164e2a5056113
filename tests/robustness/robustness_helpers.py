"""Writers of broken PNG files for the robustness tests (the ordinary writers are in
`visionkit.testing`)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from visionkit.testing import noise, save_image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png_bytes(width: int, height: int, bit_depth: int, colour_type: int, raw: bytes) -> bytes:
    """A PNG from filtered scanlines `raw` (filter byte 0 + row bytes per row)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (PNG_SIGNATURE + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(raw))
            + png_chunk(b"IEND", b""))


def png_16bit(path: Path, pixels: np.ndarray) -> Path:
    """A 16-bit PNG (PIL cannot write 16-bit RGB): uint16 `[H, W, 3]` or `[H, W]`."""
    height, width = pixels.shape[:2]
    colour_type = 2 if pixels.ndim == 3 else 0
    rows = b"".join(b"\0" + pixels[y].astype(">u2").tobytes() for y in range(height))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(width, height, 16, colour_type, rows))
    return path


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG announcing `width` x `height` RGB pixels with a tiny IDAT (a cheap "bomb")."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(width, height, 8, 2, b"\0" * 64))
    return path


def png_with_bad_crc(path: Path, seed: int = 0) -> Path:
    """A valid PNG whose IDAT checksum is wrong (the pixel data itself is intact)."""
    save_image(path, noise(12, 16, seed))
    data = bytearray(path.read_bytes())
    start = data.find(b"IDAT")
    length = struct.unpack(">I", data[start - 4:start])[0]
    data[start + 4 + length] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def all_examples(data) -> tuple[np.ndarray, np.ndarray]:
    """Every (image, label) of a classification `Data` set's train split, unbatched."""
    images, labels = [], []
    for example in data.train_examples:
        images.append(example["images"].numpy())
        labels.append(int(example["labels"]))
    return np.stack(images), np.asarray(labels)
