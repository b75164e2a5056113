"""Helpers of the pixel-parity tests: an echo probe model and encoded files of every kind.

The echo model returns the pixels it receives, so the served outputs are the model
inputs. Classification serving applies softmax to outputs unless the model ends in one,
so the echo encodes pixels as logits `log(pixel + 1)` next to a reference logit
`log(REFERENCE)`; softmax keeps ratios, and `pixel = p_i / p_ref * REFERENCE - 1`.
"""

from __future__ import annotations

import io
import os

import keras
import numpy as np
from PIL import Image

import visionkit as vk

PROBE_SIZE = (8, 12)  # non-square: a swapped axis or a missed turn shows
REFERENCE = 256.0
ORIENTATIONS = tuple(range(1, 9))
SCALES = (1.0, 2.5, 5.0, 9.0)
FORMATS = ("JPEG", "PNG8", "PNG16", "gray", "RGBA", "palette", "CMYK", "WebP", "BMP", "GIF")
# Formats that cannot carry an EXIF orientation (no EXIF block in BMP or GIF).
NO_EXIF = ("BMP", "GIF")
METHODS = vk.data.folder.INTERPOLATIONS
EXTENSIONS = {"JPEG": ".jpg", "PNG8": ".png", "PNG16": ".png", "gray": ".png", "RGBA": ".png",
              "palette": ".png", "CMYK": ".jpg", "WebP": ".webp", "BMP": ".bmp", "GIF": ".gif"}


def skip_reason(file_format: str, orientation: int) -> str | None:
    if file_format in NO_EXIF and orientation != 1:
        return f"{file_format} cannot carry EXIF orientation {orientation}"
    return None


def cells() -> list[tuple[str, int, float]]:
    """Every (format, orientation, scale) file of the matrix, impossible ones included."""
    return [(f, o, s) for f in FORMATS for o in ORIENTATIONS for s in SCALES]


def file_name(file_format: str, orientation: int, scale: float) -> str:
    return f"{file_format}_o{orientation}_x{scale:g}"


def echo_model(num_outputs: int, image_size=PROBE_SIZE) -> keras.Model:
    """float32 pixels `[B, H, W, 3]` -> logits whose softmax encodes them exactly."""
    height, width = image_size
    pixels = height * width * 3
    if num_outputs < pixels + 1:
        raise ValueError(f"echo needs at least {pixels + 1} outputs; received {num_outputs}.")

    def encode(images):
        flat = keras.ops.reshape(images, (-1, pixels)) + 1.0
        batch = keras.ops.shape(flat)[0]
        tail = keras.ops.concatenate(
            [keras.ops.full((batch, 1), REFERENCE),
             keras.ops.ones((batch, num_outputs - pixels - 1))], axis=-1)
        return keras.ops.log(keras.ops.concatenate([flat, tail], axis=-1))

    inputs = keras.Input((height, width, 3))
    return keras.Model(inputs, keras.layers.Lambda(encode)(inputs), name="echo")


def decode_echo(probabilities: np.ndarray, image_size=PROBE_SIZE) -> np.ndarray:
    """The pixels `[B, H, W, 3]` an echo model received, from its served probabilities."""
    height, width = image_size
    pixels = height * width * 3
    probabilities = np.asarray(probabilities, np.float64)
    values = probabilities[:, :pixels] / probabilities[:, pixels:pixels + 1] * REFERENCE - 1
    return values.reshape(-1, height, width, 3)


def content(rows: int, columns: int, seed: int) -> np.ndarray:
    """Seeded uint8 RGB: gradients, a ripple and a few solid blocks (edges)."""
    y, x = np.mgrid[0:rows, 0:columns].astype(np.float32)
    rng = np.random.default_rng(seed)
    image = np.stack([255 * y / max(rows - 1, 1), 255 * x / max(columns - 1, 1),
                      128 + 110 * np.sin((x + 2 * y) / max(rows, columns) * 9)], -1)
    for _ in range(3):
        top, left = rng.integers(0, rows), rng.integers(0, columns)
        image[top:top + rows // 3, left:left + columns // 3] = rng.integers(0, 256, 3)
    return np.clip(image, 0, 255).astype(np.uint8)


def encode_file(file_format: str, orientation: int, scale: float, seed: int,
                image_size=PROBE_SIZE) -> bytes:
    """The encoded file of one matrix cell (stored pixels; EXIF tag `orientation`)."""
    rows = int(round(image_size[0] * scale))
    columns = int(round(image_size[1] * scale))
    rgb = content(rows, columns, seed)
    exif = Image.Exif()
    exif[0x0112] = orientation
    options = {"exif": exif} if file_format not in NO_EXIF else {}
    buffer = io.BytesIO()
    if file_format == "JPEG":
        Image.fromarray(rgb).save(buffer, "JPEG", quality=92, **options)
    elif file_format == "PNG8":
        Image.fromarray(rgb).save(buffer, "PNG", **options)
    elif file_format == "PNG16":
        deep = rgb[..., 0].astype(np.uint16) * 257 + rgb[..., 1].astype(np.uint16) % 257
        Image.fromarray(deep).save(buffer, "PNG", **options)
    elif file_format == "gray":
        Image.fromarray(rgb[..., 0]).save(buffer, "PNG", **options)
    elif file_format == "RGBA":
        alpha = rgb[..., 2]
        Image.fromarray(np.dstack([rgb, alpha])).save(buffer, "PNG", **options)
    elif file_format == "palette":
        Image.fromarray(rgb).quantize(64).save(buffer, "PNG", **options)
    elif file_format == "CMYK":
        Image.fromarray(rgb).convert("CMYK").save(buffer, "JPEG", quality=92, **options)
    elif file_format == "WebP":
        Image.fromarray(rgb).save(buffer, "WEBP", lossless=True, **options)
    elif file_format == "BMP":
        Image.fromarray(rgb).save(buffer, "BMP")
    elif file_format == "GIF":
        Image.fromarray(rgb).quantize(64).save(buffer, "GIF")
    else:
        raise ValueError(file_format)
    return buffer.getvalue()


# PIL's transposes per EXIF orientation (as `PIL.ImageOps.exif_transpose` applies them).
_PIL_TURNS = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
              6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}


def reference_array(contents: bytes, upright: bool = True) -> np.ndarray:
    """The decoded uint8 RGB array, by PIL (an independent decoder), upright by default.

    16-bit samples keep their high byte (PIL's RGB conversion of 16-bit grey clips).
    With `upright=False`, as stored.
    """
    with Image.open(io.BytesIO(contents)) as image:
        orientation = image.getexif().get(0x0112, 1) if upright else 1
        turn = _PIL_TURNS.get(orientation)
        turned = image.transpose(turn) if turn is not None else image
        if turned.mode in ("I;16", "I;16B", "I"):
            grey = (np.asarray(turned).astype(np.int64) >> 8).astype(np.uint8)
            return np.repeat(grey[..., None], 3, axis=-1)
        return np.asarray(turned.convert("RGB"))


def write_tree(root: str, files: dict[str, bytes]) -> None:
    """One class folder per file (class id = file's rank), so labels identify files."""
    for name, contents in files.items():
        folder = os.path.join(root, name)
        os.makedirs(folder, exist_ok=True)
        extension = EXTENSIONS.get(name.split("_")[0], ".png")
        with open(os.path.join(folder, "image" + extension), "wb") as file:
            file.write(contents)
