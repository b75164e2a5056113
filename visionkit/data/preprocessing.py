"""`Preprocessing`: the one definition of "file bytes -> model pixels", as graph code.

Every path that turns an image into what a visionkit model receives calls this spec: the
tf.data sources that decode files (`image_folder`, `mask_folder`, COCO / VOC / YOLO), the
arrays sources' resize, the SavedModel's `serve_bytes` and `serving_default` signatures,
`vk.export.load(...)`, `visionkit predict` and `load_images` (the file reader for the
interpretation tools). The spec is a small frozen dataclass; `to_dict()` is the
`preprocessing` block of an export's `assets/visionkit.json`, readable by any client:

1. **Orientation** (`orientation="exif"`): the EXIF orientation tag (JPEG APP1, PNG
   `eXIf`, WebP `EXIF`) is read from the bytes by TensorFlow ops
   (`visionkit.data.exif`) and applied, so pixels are upright as an image viewer shows
   them. `"stored"` keeps the pixels as stored.
2. **Decoding**: JPEG through libjpeg (`tf.io.decode_jpeg`) with the accurate integer
   IDCT (`dct_method="INTEGER_ACCURATE"`, as PIL decodes), with DCT-domain scaling
   (`ratio` 2, 4 or 8) only when `dct_scaling=True` and the displayed source is at least
   that many times the target in both sides (chosen per file from the JPEG header, the
   same way everywhere); PNG, WebP, BMP, GIF (first frame) at full size.
3. **Channels** to 8-bit RGB: grayscale is replicated, alpha is dropped (the stored
   colour is kept, not composited), palettes are expanded, 16-bit samples keep their
   high byte (`v // 256`, within 1 grey level of `v * 255 / 65535`), CMYK JPEGs are
   converted by libjpeg.
4. **Resize** to `image_size` with `tf.image.resize(method=resize_method,
   antialias=antialias)` on float32, the image stretched to the target (`fit="stretch"`,
   the aspect ratio is not kept), then clipped to `value_range` (cubic and Lanczos
   kernels overshoot).
5. **Value range**: float32 in 0..255; models rescale inside their graph.

Defaults (used by an export made without `data`): EXIF orientation applied, no DCT
scaling, bilinear resize with antialiasing. With `dct_scaling=False`, the pixels of an
encoded file and of its decoded uint8 array (through `serving_default`) are the same ops
on the same decoded pixels; DCT scaling makes decoding faster for JPEGs at least 2x the
target but only encoded bytes can be decoded that way.

Example:

>>> import io, numpy as np
>>> from PIL import Image
>>> spec = Preprocessing(image_size=(8, 12))
>>> buffer = io.BytesIO()
>>> Image.fromarray(np.full((20, 30), 90, np.uint8)).save(buffer, "PNG")  # grayscale
>>> pixels = spec.pixels_from_bytes(tf.constant(buffer.getvalue()))
>>> tuple(pixels.shape), pixels.dtype.name, round(float(pixels[0, 0, 0]), 3)
((8, 12, 3), 'float32', 90.0)
>>> Preprocessing.from_dict(spec.to_dict()) == spec
True
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from visionkit.data.exif import exif_orientation

__all__ = ["Preprocessing", "RESIZE_METHODS", "check_pixel_values", "ORIENTATIONS", "FITS", "load_images",
           "JPEG_DCT_METHOD",
           "PREPROCESSING_FORMAT", "PREPROCESSING_VERSION"]

# Methods of `tf.image.resize` a spec accepts (every method a visionkit source accepts).
RESIZE_METHODS = ("bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5",
                  "gaussian", "mitchellcubic")
ORIENTATIONS = ("exif", "stored")
# How the image is brought to the target size: "stretch" resizes both sides to it.
FITS = ("stretch",)
# Scale factors libjpeg's DCT-domain decoding offers (`tf.io.decode_jpeg(ratio=)`).
DCT_RATIOS = (1, 2, 4, 8)
VALUE_RANGE = (0.0, 255.0)
# libjpeg's accurate integer IDCT (JDCT_ISLOW), the one PIL, OpenCV and browsers use.
# TensorFlow's default ("", the fast IDCT) differs from them by up to 6 grey levels, so
# an array a client decoded itself would not match the served bytes.
JPEG_DCT_METHOD = "INTEGER_ACCURATE"
# Identifies the block in `visionkit.json`; bump the version when its meaning changes.
PREPROCESSING_FORMAT = "visionkit.preprocessing"
PREPROCESSING_VERSION = 1
# The channel conversions of step 3 (fixed; recorded so a client can reproduce them).
CHANNEL_RULES = {"output": "rgb", "grayscale": "replicate", "alpha": "drop",
                 "palette": "expand", "16_bit": "high_byte", "cmyk": "libjpeg",
                 "animation": "first_frame"}


def check_image_size(image_size: Any, minimum: int = 1, reason: str = "") -> tuple[int, int]:
    """`image_size` as `(height, width)` integers of at least `minimum` pixels each.

    Args:
        image_size: the `(height, width)` a user gave.
        minimum: the smallest side, in pixels. Defaults to 1.
        reason: why the minimum, said after it in the error. Defaults to "".

    Returns:
        `(height, width)` as ints.

    Raises:
        ValueError: for a value that is not two integers, or a side below `minimum`.
    """
    try:
        height, width = (int(side) for side in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"Expected image_size as (height, width); received "
                         f"{image_size!r}.") from None
    if height < minimum or width < minimum:
        expected = ("a positive image_size" if minimum == 1
                    else f"image_size of at least ({minimum}, {minimum}){reason}")
        raise ValueError(f"Expected {expected}; received {image_size!r}.")
    return height, width


def check_pixel_values(images: np.ndarray, name: str = "images") -> None:
    """Checks that an array of training images holds raw pixels in 0..255.

    A visionkit model rescales its input itself (models own their preprocessing), so
    images scaled beforehand (`x / 255`, `x / 127.5 - 1`), 16-bit pixels or NaN would
    train a model on other pixels than it is served with, without any error.

    Args:
        images: numeric array `[N, H, W, C]` (any layout: every value is checked).
        name: the argument, named in the error. Defaults to "images".

    Raises:
        ValueError: for a boolean or non-numeric array, a non-finite value, values
            outside [0, 255], or float values whose largest is in (0, 1] (an array
            scaled to 0..1), naming the range found and the first image holding it.

    Example:

    >>> import numpy as np
    >>> check_pixel_values(np.full((2, 4, 4, 3), 200, np.uint8))
    >>> check_pixel_values(np.full((2, 4, 4, 3), 0.5, np.float32))
    Traceback (most recent call last):
    ...
    ValueError: Expected images of raw pixels in 0..255; received float values in [0.5, 0.5]: they look scaled to 0..1. visionkit models rescale their input themselves: pass the unscaled images (images * 255).
    """
    array = np.asarray(images)
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer)
                                   or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"Expected {name} of raw pixels in 0..255 (integer or float); "
                         f"received dtype {array.dtype}.")
    if array.size == 0:
        return
    per_image = array.reshape(len(array), -1) if array.ndim > 1 else array.reshape(1, -1)
    finite = np.isfinite(per_image)
    if not finite.all():
        first = int(np.flatnonzero(~finite.all(axis=1))[0])
        raise ValueError(f"Expected finite pixels in {name}; received "
                         f"{int((~finite).sum())} NaN or inf value(s), the first in "
                         f"{name}[{first}].")
    low, high = float(array.min()), float(array.max())
    if low < VALUE_RANGE[0] or high > VALUE_RANGE[1]:
        outside = (per_image < VALUE_RANGE[0]) | (per_image > VALUE_RANGE[1])
        first = int(np.flatnonzero(outside.any(axis=1))[0])
        cause = (" (16-bit pixels? pass images / 257)" if high > 255 and low >= 0 else
                 " (normalised images? pass the raw ones, e.g. (images + 1) * 127.5 for "
                 "-1..1)" if low < 0 else "")
        raise ValueError(f"Expected {name} of raw pixels in 0..255; received values in "
                         f"[{low:g}, {high:g}], the first outside in {name}[{first}]{cause}.")
    if np.issubdtype(array.dtype, np.floating) and 0.0 < high <= 1.0:
        raise ValueError(f"Expected {name} of raw pixels in 0..255; received float values "
                         f"in [{low:g}, {high:g}]: they look scaled to 0..1. visionkit models "
                         f"rescale their input themselves: pass the unscaled {name} "
                         f"({name} * 255).")


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How encoded image bytes (or decoded uint8 arrays) become model pixels.

    Args:
        image_size: `(height, width)` of the model's input, in pixels.
        resize_method: a `tf.image.resize` method (`RESIZE_METHODS`). Defaults to
            "bilinear".
        antialias: antialias when downscaling (`tf.image.resize(antialias=)`; no effect
            for "nearest"). Defaults to True.
        orientation: "exif" (apply the EXIF orientation tag) or "stored". Defaults to
            "exif".
        dct_scaling: decode JPEGs at least 2x the target DCT-scaled (faster; the same
            rule in the pipeline and in `serve_bytes`, but a decoded array given to
            `serving_default` is at full resolution). Defaults to False.
        fit: how the image meets the target size; only "stretch". Defaults to "stretch".
        source: where the spec came from, "data" or "defaults" (recorded in the export
            metadata). Defaults to "data".

    Raises:
        ValueError: for an unknown method, orientation or fit, or a bad `image_size`.
    """

    image_size: tuple[int, int]
    resize_method: str = "bilinear"
    antialias: bool = True
    orientation: str = "exif"
    dct_scaling: bool = False
    fit: str = "stretch"
    source: str = "data"

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_size", check_image_size(self.image_size))
        for name, allowed in (("resize_method", RESIZE_METHODS),
                              ("orientation", ORIENTATIONS), ("fit", FITS),
                              ("source", ("data", "defaults"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"Expected {name} to be one of {allowed}; received "
                                 f"{name}={getattr(self, name)!r}.")
        for name in ("antialias", "dct_scaling"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"Expected {name} to be True or False; received "
                                 f"{name}={getattr(self, name)!r}.")
            object.__setattr__(self, name, bool(getattr(self, name)))

    # -- serialization -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON block recorded in `assets/visionkit.json` (plain types only)."""
        return {
            "format": PREPROCESSING_FORMAT,
            "format_version": PREPROCESSING_VERSION,
            "source": self.source,
            "image_size": list(self.image_size),
            "orientation": self.orientation,
            "dct_scaling": self.dct_scaling,
            "jpeg_dct_method": JPEG_DCT_METHOD,
            "resize": {"method": self.resize_method, "antialias": self.antialias,
                       "fit": self.fit, "half_pixel_centers": True},
            "channels": dict(CHANNEL_RULES),
            "value_range": list(VALUE_RANGE),
            "dtype": "float32",
        }

    @classmethod
    def from_dict(cls, block: Mapping[str, Any]) -> Preprocessing:
        """The spec a `to_dict()` block describes.

        Raises:
            ValueError: if the block is not a visionkit preprocessing block of a known
                version.
        """
        if not isinstance(block, Mapping) or block.get("format") != PREPROCESSING_FORMAT:
            raise ValueError(f"Expected a preprocessing block with format="
                             f"{PREPROCESSING_FORMAT!r}; received {block!r}.")
        if block.get("format_version") != PREPROCESSING_VERSION:
            raise ValueError(f"Expected preprocessing format_version "
                             f"{PREPROCESSING_VERSION}; received "
                             f"{block.get('format_version')!r} (written by a newer "
                             "visionkit?).")
        resize = block["resize"]
        return cls(image_size=tuple(block["image_size"]), resize_method=resize["method"],
                   antialias=resize["antialias"], orientation=block["orientation"],
                   dct_scaling=block["dct_scaling"], fit=resize["fit"],
                   source=block.get("source", "data"))

    def replace(self, **changes: Any) -> Preprocessing:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    # -- graph code --------------------------------------------------------------------
    def orientation_of(self, contents: tf.Tensor) -> tf.Tensor:
        """int32 scalar: the EXIF orientation to apply (1 with `orientation="stored"`)."""
        if self.orientation == "stored":
            return tf.constant(1, tf.int32)
        return exif_orientation(contents)

    def dct_target(self, orientation: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor] | None:
        """The target `(height, width)` in stored pixels for the DCT rule, or None.

        EXIF orientations 5..8 swap the sides, so the stored image is compared with the
        target turned the same way.
        """
        if not self.dct_scaling:
            return None
        height, width = self.image_size
        turned = orientation >= 5
        return (tf.where(turned, width, height), tf.where(turned, height, width))

    def decode(self, contents: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Graph code: encoded bytes -> upright uint8 RGB pixels (steps 1-3).

        Args:
            contents: a scalar string tensor, the file's bytes (JPEG, PNG, WebP, BMP,
                GIF).

        Returns:
            `(image uint8 [h, w, 3], source_size int32 [2])`: the decoded, upright pixels
            (smaller than the source when DCT-scaled) and the upright source's
            `(height, width)` at full resolution.
        """
        from visionkit.data.decoding import decode_rgb
        from visionkit.data.files import apply_orientation

        orientation = self.orientation_of(contents)
        image, _, source_size = decode_rgb(contents, self.dct_target(orientation),
                                           dct_scaling=self.dct_scaling)
        image = apply_orientation(image, orientation)
        source_size = tf.where(orientation >= 5, tf.reverse(source_size, [0]), source_size)
        return image, source_size

    def resize(self, images: tf.Tensor) -> tf.Tensor:
        """Graph code: pixels (any dtype, `[H, W, 3]` or `[B, H, W, 3]`) -> model pixels.

        Pixels already at `image_size` pass unchanged (no kernel runs at scale 1).

        Returns:
            float32 `[*image_size, 3]` (or `[B, *image_size, 3]`) in 0..255.
        """
        pixels = tf.cast(images, tf.float32)
        shape = [*([None] if pixels.shape.rank == 4 else []), *self.image_size, 3]

        def resized():
            result = tf.image.resize(pixels, self.image_size, method=self.resize_method,
                                     antialias=self.antialias)
            return tf.cast(result, tf.float32)

        # At the target size the pixels pass unchanged: the Gaussian and Mitchell kernels
        # are not interpolating and would blur them even at scale 1.
        same = tf.reduce_all(tf.equal(tf.shape(pixels)[-3:-1], self.image_size))
        pixels = tf.ensure_shape(tf.cond(same, lambda: tf.identity(pixels), resized), shape)
        return tf.clip_by_value(pixels, *VALUE_RANGE)

    def pixels_from_bytes(self, contents: tf.Tensor) -> tf.Tensor:
        """Graph code: one file's bytes -> float32 `[*image_size, 3]` model pixels."""
        image, _ = self.decode(contents)
        return self.resize(image)


def load_images(paths: Sequence[str | os.PathLike], preprocessing: Preprocessing,
                ) -> np.ndarray:
    """Reads image files into the pixels a model trained with `preprocessing` receives.

    The reader for the interpretation tools (`vk.interpret.*` take arrays): the same
    graph code as the data pipeline and the exported model, never a Python re-decoding.

    Args:
        paths: image files (JPEG, PNG, WebP, BMP, GIF).
        preprocessing: the data set's spec (`data.preprocessing`), or an export's
            (`vk.export.load(path).preprocessing`).

    Returns:
        float32 `[N, height, width, 3]` in 0..255.

    Raises:
        FileNotFoundError: if a file does not exist.
        ValueError: naming a file TensorFlow cannot decode.

    Example:

    >>> import tempfile, numpy as np
    >>> from PIL import Image
    >>> path = tempfile.mktemp(suffix=".png")
    >>> Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(path)
    >>> load_images([path], Preprocessing(image_size=(4, 4))).shape
    (1, 4, 4, 3)
    """
    convert = tf.function(preprocessing.pixels_from_bytes, autograph=False,
                          input_signature=[tf.TensorSpec([], tf.string)])
    images = []
    for path in paths:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No such image file: {path!r}.")
        try:
            images.append(convert(tf.io.read_file(path)).numpy())
        except tf.errors.InvalidArgumentError as error:
            raise ValueError(f"Could not decode the image file {path!r}: expected JPEG, "
                             f"PNG, WebP, BMP or GIF contents ({error.message.splitlines()[0]})."
                             ) from None
    if not images:
        return np.zeros((0, *preprocessing.image_size, 3), np.float32)
    return np.stack(images)
