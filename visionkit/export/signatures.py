"""The serving graph: a `tf.Module` with the `serving_default` and `serve_bytes` functions.

The module tracks the model's *variables*, its two functions and its metadata files as
`tf.saved_model.Asset`s, not the Keras model object. The SavedModel therefore holds plain
variables and graph functions, and `tf.saved_model.load` restores it in a process that
never imports visionkit (the graph is what Keras's own `ExportArchive` would write, plus
the assets).

Both functions turn their input into model pixels with the data set's `Preprocessing`
spec (`visionkit.data.preprocessing`), the same graph code the training pipeline ran:
`serve_bytes` decodes each file (EXIF orientation read from its bytes, the same DCT
rule, channels to RGB) and resizes it; `serving_default` resizes uint8 arrays with the
same method and antialiasing. They run the model in inference mode and hand its outputs,
cast to float32, to the task's `serving_outputs`, together with the original (upright)
image sizes `[B, 2]` as `(height, width)` int32. A third signature, `preprocess_bytes`,
returns the pixels `serve_bytes` gives the model (float32 `[B, H, W, 3]`, 0..255), so
any client can check what the model sees.

Example:

>>> import tempfile, numpy as np, tensorflow as tf, visionkit as vk
>>> model = vk.models.build("simple_cnn", input_shape=(8, 8, 3), num_classes=2,
...                         filters=(4,))
>>> module = ServingModule(model, vk.tasks.get_task("classification"), (8, 8))
>>> outputs = module.serving_default(tf.zeros([1, 20, 30, 3], tf.uint8))
>>> sorted(outputs), outputs["probabilities"].shape
(['class_id', 'probabilities'], TensorShape([1, 2]))
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from visionkit.data.preprocessing import Preprocessing
from visionkit.vocabulary import Task

__all__ = ["ServingModule", "IMAGES_SPEC", "ENCODED_IMAGES_SPEC", "resize_images",
           "serving_signatures", "SIGNATURE_NAMES"]

SIGNATURE_NAMES = ("serving_default", "serve_bytes", "preprocess_bytes")

IMAGES_SPEC = tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")
ENCODED_IMAGES_SPEC = tf.TensorSpec([None], tf.string, name="images")


def resize_images(images: tf.Tensor, image_size: Sequence[int],
                  preprocessing: Preprocessing | None = None) -> tf.Tensor:
    """Casts images to float32 and resizes them as the training pipelines do.

    `preprocessing.resize` (default spec: bilinear, half-pixel centres, antialiased),
    the call the data sources make; at the same size it returns the pixels unchanged.

    Args:
        images: `[B, H, W, 3]` or `[H, W, 3]` pixels of any dtype.
        image_size: `(height, width)` to resize to.
        preprocessing: the spec. Defaults to `Preprocessing(image_size)`.

    Returns:
        float32 images of the given size, in 0..255.
    """
    spec = preprocessing or Preprocessing(tuple(image_size))
    return spec.replace(image_size=tuple(image_size)).resize(images)


def _outputs_in_float32(outputs):
    """Casts floating outputs (e.g. float16 under a mixed-precision policy) to float32."""

    def cast(tensor):
        tensor = tf.convert_to_tensor(tensor)
        return tf.cast(tensor, tf.float32) if tensor.dtype.is_floating else tensor

    return tf.nest.map_structure(cast, outputs)


# Not `keras.export.ExportArchive`: its endpoints would serve these three signatures
# alike (it too traces `tf.function(fn, input_signature, autograph=False)` and calls
# `tf.saved_model.save`), but it saves only the variables and lookup tables of what it
# tracks: a `tf.saved_model.Asset` passed to `track()` is dropped (Keras 3.15 collects
# `TrackableResource`s only), and the contract's `assets/labels.txt` and
# `assets/visionkit.json` must travel with the SavedModel as tracked assets.
class ServingModule(tf.Module):
    """The exported object: model variables, serving functions and metadata assets.

    Args:
        model: the Keras model; only its variables are tracked.
        task: the task whose `serving_outputs` post-processes the model's outputs.
        image_size: `(height, width)` of the model's input.
        asset_paths: files to attach as `tf.saved_model.Asset`s (copied into the
            SavedModel's `assets/` folder under their base names). Defaults to none.
        preprocessing: how files and arrays become model pixels; its `image_size` must
            equal `image_size`. Defaults to `Preprocessing(image_size, source="defaults")`.

    Attributes:
        serving_default: `tf.function` on uint8 images `[B, H, W, 3]` of any size.
        serve_bytes: `tf.function` on encoded JPEG/PNG/WebP/BMP/GIF images, string `[B]`.
        preprocess_bytes: `tf.function` from encoded images to the model's input pixels.
        preprocessing: the spec.
        model_variables: the tracked variables of the model.
        assets: the tracked `tf.saved_model.Asset`s.
    """

    def __init__(self, model: keras.Model, task: Task, image_size: Sequence[int],
                 asset_paths: Sequence[str] = (),
                 preprocessing: Preprocessing | None = None) -> None:
        super().__init__(name="visionkit_serving")
        height, width = (int(size) for size in image_size)
        spec = preprocessing or Preprocessing((height, width), source="defaults")
        if spec.image_size != (height, width):
            raise ValueError(f"Expected preprocessing for image_size={(height, width)}; "
                             f"received preprocessing.image_size={spec.image_size}.")
        self.preprocessing = spec
        # Tracked: the weights (so they are saved) and the assets. The model object itself
        # is only closed over by the functions below, so no Keras object is serialized.
        self.model_variables = list(model.variables)
        self.assets = [tf.saved_model.Asset(path) for path in asset_paths]

        def run_model(model_inputs: tf.Tensor, image_sizes: tf.Tensor) -> dict[str, tf.Tensor]:
            outputs = _outputs_in_float32(model(model_inputs, training=False))
            return task.serving_outputs(outputs, image_sizes, model)

        def serve_images(images: tf.Tensor) -> dict[str, tf.Tensor]:
            shape = tf.shape(images)
            image_sizes = tf.tile(shape[1:3][tf.newaxis], [shape[0], 1])
            return run_model(spec.resize(images), image_sizes)

        def decode_one(encoded: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            image, source_size = spec.decode(encoded)
            return spec.resize(image), source_size

        def pixels(images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return tf.map_fn(
                decode_one, images,
                fn_output_signature=(tf.TensorSpec([height, width, 3], tf.float32),
                                     tf.TensorSpec([2], tf.int32)))

        def serve_encoded(images: tf.Tensor) -> dict[str, tf.Tensor]:
            return run_model(*pixels(images))

        def preprocess_encoded(images: tf.Tensor) -> dict[str, tf.Tensor]:
            model_inputs, image_sizes = pixels(images)
            return {"images": model_inputs, "image_sizes": image_sizes}

        # autograph=False, as keras.export.ExportArchive does: Keras layers are graph code.
        self.serving_default = tf.function(serve_images, input_signature=[IMAGES_SPEC],
                                           autograph=False)
        self.serve_bytes = tf.function(serve_encoded, input_signature=[ENCODED_IMAGES_SPEC],
                                       autograph=False)
        self.preprocess_bytes = tf.function(preprocess_encoded,
                                            input_signature=[ENCODED_IMAGES_SPEC],
                                            autograph=False)


def serving_signatures(module: ServingModule) -> dict[str, tf.types.experimental.ConcreteFunction]:
    """The signatures to save: `serving_default`, `serve_bytes`, `preprocess_bytes`.

    Args:
        module: the serving module.

    Returns:
        A dict from signature name to concrete function, for `tf.saved_model.save`.
    """
    return {"serving_default": module.serving_default.get_concrete_function(),
            "serve_bytes": module.serve_bytes.get_concrete_function(),
            "preprocess_bytes": module.preprocess_bytes.get_concrete_function()}
