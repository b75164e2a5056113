"""Reading and decoding image files inside tf.data, at the speed of the machine.

`FileDecoder` turns one file record (a dict holding a path) into an example: read the
bytes, decode them, turn them upright, resize to the target size, then let the source
finish the example (attach the label, decode and crop the mask, map the boxes). What the
pixels are is defined once, by the decoder's `Preprocessing` spec
(`visionkit.data.preprocessing`), which an exported model bakes into its signatures.
Two things can make it fast:

- With `dct_scaling=True` in the spec, JPEG files whose source (or crop window) is at
  least 2x the target in both sides are decoded with libjpeg's DCT scaling (`tf.io.decode_jpeg(ratio=2/4/8)`), which skips most
  of the decoding work. The choice is made per file in the graph from the JPEG header
  (`tf.image.extract_jpeg_shape`); other formats decode at full size. Content decides,
  not the file name.
- A random resized crop (the "standard" augmentation preset) is fused into decoding: the
  crop window is drawn from the header's size and `tf.io.decode_and_crop_jpeg` decodes
  only that window, then one resize brings it to the target size.

Example:

>>> import io, numpy as np, tensorflow as tf
>>> from PIL import Image
>>> buffer = io.BytesIO()
>>> Image.fromarray(np.full((64, 96, 3), 120, np.uint8)).save(buffer, format="JPEG")
>>> image, window, size = decode_rgb(tf.constant(buffer.getvalue()), target_size=(16, 16))
>>> tuple(image.shape), window.numpy().tolist()  # decoded at 1/4 scale: 64x96 -> 16x24
((16, 24, 3), [0, 0, 64, 96])
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import tensorflow as tf

from visionkit.data.files import apply_orientation
from visionkit.data.preprocessing import DCT_RATIOS, JPEG_DCT_METHOD, Preprocessing

__all__ = ["FileDecoder", "decode_rgb", "dct_ratio", "DCT_RATIOS"]

# A crop-window sampler: (source height, source width, seed [2]) -> int32 [4] window
# (y, x, height, width) in source pixels.
WindowSampler = Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]


def dct_ratio(height: tf.Tensor, width: tf.Tensor, target_size: tuple[int, int]) -> tf.Tensor:
    """The largest DCT scale ratio (1, 2, 4 or 8) that keeps both sides >= the target.

    Example:

    >>> int(dct_ratio(480, 640, (224, 224))), int(dct_ratio(480, 640, (128, 128)))
    (2, 2)
    >>> int(dct_ratio(480, 640, (100, 100))), int(dct_ratio(300, 640, (224, 224)))
    (4, 1)
    """
    height = tf.cast(height, tf.int32)
    width = tf.cast(width, tf.int32)
    ratio = tf.constant(1, tf.int32)
    for candidate in DCT_RATIOS[1:]:
        fits = (height >= candidate * target_size[0]) & (width >= candidate * target_size[1])
        ratio = tf.where(fits, tf.constant(candidate, tf.int32), ratio)
    return ratio


def _decode_jpeg(contents: tf.Tensor, ratio: tf.Tensor, window: tf.Tensor | None) -> tf.Tensor:
    """JPEG decoding at `ratio` (a tensor) of the whole image or of `window` (source px)."""
    def branch(fixed: int):
        def run():
            if window is None:
                return tf.io.decode_jpeg(contents, channels=3, ratio=fixed,
                                         dct_method=JPEG_DCT_METHOD)
            # With a ratio, libjpeg's crop window is in the scaled image's pixels.
            scaled = tf.stack([window[0] // fixed, window[1] // fixed,
                               tf.maximum(window[2] // fixed, 1),
                               tf.maximum(window[3] // fixed, 1)])
            return tf.io.decode_and_crop_jpeg(contents, scaled, channels=3, ratio=fixed,
                                              dct_method=JPEG_DCT_METHOD)
        return run

    index = tf.cast(tf.math.log(tf.cast(ratio, tf.float32)) / tf.math.log(2.0) + 0.5, tf.int32)
    image = tf.switch_case(index, [branch(fixed) for fixed in DCT_RATIOS])
    image.set_shape([None, None, 3])
    return image


def decode_rgb(contents: tf.Tensor, target_size: tuple[int, int] | None = None,
               sample_window: WindowSampler | None = None, seed: tf.Tensor | None = None,
               dct_scaling: bool = True) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Graph code: decodes encoded image bytes to uint8 RGB, optionally cropped.

    JPEG content is decoded DCT-scaled when the source (or crop window) is at least 2x
    `target_size` in both sides; PNG, BMP and GIF (first frame) decode at full size.
    With `sample_window`, only the sampled window is returned (JPEG decodes only it).

    Args:
        contents: a scalar string tensor, the file's bytes.
        target_size: `(height, width)` the caller resizes to (ints or int32 scalar
            tensors, in stored pixels); None decodes at full size.
        sample_window: draws the crop window from the source size and `seed`.
        seed: stateless seed `[2]` of `sample_window`.
        dct_scaling: allow DCT-scaled JPEG decoding. Defaults to True.

    Returns:
        `(image uint8 [h, w, 3], window int32 [4], source_size int32 [2])`: the decoded
        pixels (covering the window, possibly at 1/2, 1/4 or 1/8 scale), the window
        `(y, x, height, width)` in source pixels and the source's `(height, width)`.
    """
    def jpeg():
        shape = tf.image.extract_jpeg_shape(contents, output_type=tf.int32)
        window = (tf.stack([0, 0, shape[0], shape[1]]) if sample_window is None
                  else sample_window(shape[0], shape[1], seed))
        ratio = (dct_ratio(window[2], window[3], target_size)
                 if dct_scaling and target_size is not None else tf.constant(1))
        image = _decode_jpeg(contents, ratio, None if sample_window is None else window)
        return image, window, shape[:2]

    def other():
        image = tf.io.decode_image(contents, channels=3, dtype=tf.uint8,
                                   expand_animations=False)
        image.set_shape([None, None, 3])
        shape = tf.shape(image, out_type=tf.int32)
        if sample_window is None:
            return image, tf.stack([0, 0, shape[0], shape[1]]), shape[:2]
        window = sample_window(shape[0], shape[1], seed)
        image = image[window[0]:window[0] + window[2], window[1]:window[1] + window[3]]
        return image, window, shape[:2]

    image, window, source_size = tf.cond(tf.io.is_jpeg(contents), jpeg, other)
    image.set_shape([None, None, 3])
    return image, window, source_size


@functools.lru_cache(maxsize=32)
def _upright_decoder(spec: Preprocessing) -> Callable[[tf.Tensor], tuple]:
    """Bytes -> `(upright uint8 image, window, source_size)` for one preprocessing spec,
    as a tf.function traced once per process: every pipeline (and every access to
    `Data.train`) with the same spec calls it instead of re-tracing the decoders."""
    def decode(contents: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        orientation = spec.orientation_of(contents)
        image, window, source_size = decode_rgb(contents, spec.dct_target(orientation),
                                                dct_scaling=spec.dct_scaling)
        if spec.orientation != "stored":
            image = apply_orientation(image, orientation)
        return image, window, source_size

    return tf.function(decode, input_signature=[tf.TensorSpec([], tf.string)])


@functools.lru_cache(maxsize=32)
def _resizer(spec: Preprocessing) -> Callable[[tf.Tensor], tf.Tensor]:
    """`spec.resize` of one uint8 `[h, w, 3]` image as a tf.function traced once per
    process (see `_upright_decoder`)."""
    return tf.function(spec.resize, input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])


class FileDecoder:
    """Read + decode + resize of one file record, with an optional fused random crop.

    The pixels follow `preprocessing` (`visionkit.data.preprocessing.Preprocessing`),
    the definition the exported SavedModel bakes into its signatures: EXIF orientation
    read from the bytes in the graph, DCT scaling by the same rule, the same resize.

    Args:
        path_key: the record key holding the image file's path.
        image_size: `(height, width)` of the examples.
        finish: `(record, image float32 [H, W, 3], window int32 [4], source_size int32
            [2])` -> example dict; `window` is the part of the source image the example
            shows (`(y, x, height, width)` in stored source pixels, before the EXIF
            orientation is applied) and `source_size` the stored source's `(height,
            width)`, so a source crops its mask or maps its boxes the same way.
        interpolation: resize method of `tf.image.resize`, used when `preprocessing`
            is None. Defaults to "bilinear".
        dct_scaling: allow DCT-scaled JPEG decoding, used when `preprocessing` is None.
            Defaults to False.
        crops: whether `cropped` may be used (False when `finish` cannot crop its
            targets with the window, e.g. masks stored in another EXIF orientation than
            their image); the pipeline then crops decoded batches. Defaults to True.
        preprocessing: the full spec; its `image_size` must equal `image_size`.
            Defaults to `Preprocessing(image_size, interpolation, dct_scaling=...)`
            (EXIF orientation applied, antialiased resize).

    Calling it decodes the whole image; `cropped(record, sample_window, seed)` decodes a
    random window (the "standard" preset's crop, see `visionkit.data.augment`), drawn in
    the stored orientation (the crop's distribution is symmetric, so turning the image
    afterwards does not change it).

    Raises:
        ValueError: if `preprocessing.image_size` differs from `image_size`.

    Example:

    >>> decoder = FileDecoder("paths", (16, 16),
    ...                       lambda record, image, window, size: {"images": image})
    >>> decoder.path_key, decoder.preprocessing.resize_method
    ('paths', 'bilinear')
    """

    def __init__(self, path_key: str, image_size: tuple[int, int],
                 finish: Callable[[dict, tf.Tensor, tf.Tensor, tf.Tensor], dict],
                 interpolation: str = "bilinear", dct_scaling: bool = False,
                 crops: bool = True, preprocessing: Preprocessing | None = None) -> None:
        self.path_key = path_key
        self.crops = crops
        self.image_size = (int(image_size[0]), int(image_size[1]))
        if preprocessing is None:
            preprocessing = Preprocessing(self.image_size, resize_method=interpolation,
                                          dct_scaling=dct_scaling)
        if preprocessing.image_size != self.image_size:
            raise ValueError(f"Expected preprocessing for image_size={self.image_size}; "
                             f"received preprocessing.image_size={preprocessing.image_size}.")
        self.preprocessing = preprocessing
        self.finish = finish

    @property
    def interpolation(self) -> str:
        return self.preprocessing.resize_method

    # The stages, separately (`visionkit.data.profile` times them one by one).
    def read(self, record: dict) -> tf.Tensor:
        """The file's bytes."""
        return tf.io.read_file(record[self.path_key])

    def decode(self, record: dict, sample_window: WindowSampler | None = None,
               seed: tf.Tensor | None = None) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Read + decode + orientation: `(upright uint8 image, window, source_size)`."""
        spec = self.preprocessing
        contents = self.read(record)
        if sample_window is None:
            return _upright_decoder(spec)(contents)
        orientation = spec.orientation_of(contents)
        image, window, source_size = decode_rgb(contents, spec.dct_target(orientation),
                                                sample_window, seed,
                                                dct_scaling=spec.dct_scaling)
        if spec.orientation != "stored":
            image = apply_orientation(image, orientation)
        return image, window, source_size

    def resize(self, image: tf.Tensor) -> tf.Tensor:
        """Float32 `[H, W, 3]` at the target size, in 0..255."""
        if image.dtype == tf.uint8 and image.shape.rank == 3:
            return _resizer(self.preprocessing)(image)
        return self.preprocessing.resize(image)

    def __call__(self, record: dict) -> dict:
        image, window, source_size = self.decode(record)
        return self.finish(record, self.resize(image), window, source_size)

    def cropped(self, record: dict, sample_window: WindowSampler, seed: tf.Tensor) -> dict:
        """The example of a random window of the image (decoded only there for JPEG)."""
        image, window, source_size = self.decode(record, sample_window, seed)
        return self.finish(record, self.resize(image), window, source_size)
