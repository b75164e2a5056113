"""Neural style transfer: an image with one picture's content and another's style.

The image starts from the content picture plus uniform noise and follows Adam on
`content_weight * content + style_weight * style + tv_weight * total_variation`:

- **content**: the mean squared difference between the image's and the content
  picture's features at `content_layers`, divided by the mean square of the content's
  features (so 1.0 means "as far as the features are large");
- **style**: for each of `style_layers`, the mean squared difference between the Gram
  matrices `G = F^T F / (h w)` (`[C, C]`, the channel correlations, indifferent to where
  things are) of the image and of the style picture, divided by the mean square of the
  style's Gram matrix, averaged over the layers;
- **total variation**: the mean squared difference of neighbouring pixels, in units of
  the 0..255 range squared.

Dividing each loss by its reference's size is a departure from Gatys et al.'s raw sums:
it makes the default weights work for any model, whatever its activations' scale. The
steps of each octave are one `tf.function` (`jit_compile=True` compiles them with XLA);
octaves run smallest first, the image upscaled between them.

Reference:
    - [A Neural Algorithm of Artistic Style](https://arxiv.org/abs/1508.06576) (Gatys,
      Ecker & Bethge, 2015).

Example:

>>> import numpy as np, visionkit as vk
>>> model = vk.models.build("simple_cnn", (None, None, 3), 3, filters=(4, 8))
>>> result = style_transfer(np.full((24, 32, 3), 100.0), np.zeros((16, 16, 3)),
...                         model=model, steps=2, verbose=0)
>>> result.image.shape, result.style_loss.shape
((24, 32, 3), (2,))
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from visionkit.interpret.adapter import adapt, check_images
from visionkit.interpret.checks import ArgumentError, check_finite_result, check_float, check_int
from visionkit.interpret.progress import progress_bar

__all__ = ["StyleTransfer", "gram_matrix", "style_transfer", "vgg_style_model"]

# Gatys et al.'s layers of VGG-19: style on the first convolution of each block, content
# on block 4 (the paper's figures use conv4_2).
VGG_STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1",
                    "block5_conv1")
VGG_CONTENT_LAYERS = ("block4_conv2",)
_ADAM_BETAS = (0.9, 0.999)
_ADAM_EPSILON = 1e-8
_EPSILON = 1e-12  # keeps the normalizing divisions finite on an all-zero reference


@dataclasses.dataclass
class StyleTransfer:
    """The result of `style_transfer`.

    Attributes:
        image: uint8 `[H, W, C]`, the content picture's size.
        content_loss: float32 `[steps * octaves]`, the (normalized) content loss before
            each step.
        style_loss: float32 `[steps * octaves]`, likewise.
        total_variation: float32 `[steps * octaves]`, likewise.
        content_layers, style_layers: the layers used.
    """

    image: np.ndarray
    content_loss: np.ndarray
    style_loss: np.ndarray
    total_variation: np.ndarray
    content_layers: list[str]
    style_layers: list[str]


def gram_matrix(features: Any) -> tf.Tensor:
    """Gram matrices `G[b] = F[b]^T F[b] / (h w)` of feature maps.

    Args:
        features: `[B, h, w, C]` float feature maps.

    Returns:
        float32 `[B, C, C]`.
    """
    features = tf.convert_to_tensor(features, tf.float32)
    shape = tf.shape(features)
    flat = tf.reshape(features, [shape[0], shape[1] * shape[2], shape[3]])
    return tf.linalg.matmul(flat, flat, transpose_a=True) / tf.cast(shape[1] * shape[2],
                                                                    tf.float32)


def vgg_style_model(weights: str | None = None) -> keras.Model:
    """VGG-19's convolutional part on raw 0..255 RGB pixels of any size.

    Args:
        weights: None (random initialization, nothing downloaded) or `"imagenet"`
            (Keras downloads the hash-checked weights once). Defaults to None.

    Returns:
        A `keras.Model` `[B, H, W, 3]` -> block 5's pooled features, with VGG's own layer
        names (`block1_conv1`, ...) and its Caffe preprocessing (BGR, ImageNet mean
        subtracted) inside.
    """
    if weights not in (None, "imagenet"):
        raise ArgumentError("weights", f"Expected weights None or 'imagenet'; received "
                            f"weights={weights!r}.")
    vgg = keras.applications.VGG19(include_top=False, weights=weights,
                                   input_shape=(None, None, 3))
    inputs = keras.Input((None, None, 3), name="images")
    mean = np.array([103.939, 116.779, 123.68], np.float32)  # keras' VGG (Caffe) BGR means
    bgr = keras.layers.Lambda(lambda x: x[..., ::-1] - mean, name="caffe_preprocess")(inputs)
    x = bgr
    for layer in vgg.layers[1:]:
        x = layer(x)
    return keras.Model(inputs, x, name="vgg19_style")


def _default_layers(adapter) -> tuple[list[str], list[str]]:
    convs = adapter.conv_layer_names()
    if not convs:
        raise ArgumentError("model", f"Style transfer needs convolution layers; model "
                            f"{adapter.model.name!r} has none.")
    if all(name in convs for name in VGG_STYLE_LAYERS + VGG_CONTENT_LAYERS):
        return list(VGG_CONTENT_LAYERS), list(VGG_STYLE_LAYERS)
    picks = sorted({round(i * (len(convs) - 1) / 4) for i in range(5)})
    return [convs[(len(convs) - 1) * 2 // 3]], [convs[i] for i in picks]


def style_transfer(content: Any, style: Any, model: keras.Model | None = None,
                   content_layers: Sequence[str] | str | None = None,
                   style_layers: Sequence[str] | str | None = None, steps: int = 100,
                   content_weight: float = 1.0, style_weight: float = 10.0,
                   tv_weight: float = 1e-4, learning_rate: float = 4.0, octaves: int = 1,
                   octave_scale: float = 1.4, noise: float = 48.0, seed: int = 0,
                   jit_compile: bool = False, verbose: int = 1) -> StyleTransfer:
    """Paints `content` in the style of `style` (Gatys et al., 2015).

    Args:
        content: `[H, W, C]` (or `[1, H, W, C]`) raw 0..255 pixels. A greyscale picture
            (`[H, W]` or one channel) for a 3-channel model is repeated in R, G and B,
            with a warning.
        style: `[h, w, C]` raw pixels, of any size.
        model: a convolutional Keras model on raw pixels that takes images of any size (a
            classifier, a backbone). Defaults to None: `vgg_style_model()` (VGG-19,
            random weights; pass `vgg_style_model("imagenet")` for the paper's).
        content_layers: layers of the content loss. Defaults to VGG's `block4_conv2`, or
            for another model the convolution two thirds of the way down.
        style_layers: layers of the style loss. Defaults to VGG's `blockN_conv1`, or five
            convolutions spread over another model.
        steps: Adam steps per octave. Defaults to 100.
        content_weight, style_weight, tv_weight: weights of the three (normalized)
            losses. Default to 1.0, 10.0 and 1e-4.
        learning_rate: Adam's step, in pixels (0..255). Defaults to 4.0.
        octaves: scales, smallest first. Defaults to 1.
        octave_scale: size ratio between octaves. Defaults to 1.4.
        noise: amplitude (pixels) of the uniform noise added to the content picture
            to start from. Defaults to 48.0.
        seed: seed of that noise. Defaults to 0.
        jit_compile: compile the step loop with XLA. Defaults to False.
        verbose: 1 shows a progress bar over the octaves when there are several.

    Shapes:
        content `[H, W, C]`, style `[h, w, C]` -> image `[H, W, C]`.

    Returns:
        A `StyleTransfer`: the uint8 image and the per-step loss histories.

    Raises:
        ArgumentError (a ValueError): naming `content` or `style` (not one image, or
            channels other than the model's), `model` (no convolutions), the layers
            (unknown), `steps`, the weights, `learning_rate`, `octaves`, `octave_scale`,
            `noise` or `seed`.
    """
    model = vgg_style_model() if model is None else model
    adapter = adapt(model, require_output=False)
    adapter.require_float_input("style_transfer")
    channels = adapter.input_shape[-1]
    content_array = _one_image(content, channels, model.name, "content")
    style_array = _one_image(style, channels, model.name, "style")
    default_content, default_style = _default_layers(adapter)
    content_names = _names(content_layers, default_content, "content_layers")
    style_names = _names(style_layers, default_style, "style_layers")
    for argument, names in (("content_layers", content_names), ("style_layers", style_names)):
        for name in names:
            adapter.check_spatial_layer(name, argument)
    steps = check_int(steps, "steps", minimum=1)
    weights = [check_float(value, name, minimum=0.0) for value, name in
               ((content_weight, "content_weight"), (style_weight, "style_weight"),
                (tv_weight, "tv_weight"))]
    learning_rate = check_float(learning_rate, "learning_rate", minimum=0.0, above=True)
    octaves = check_int(octaves, "octaves", minimum=1)
    octave_scale = check_float(octave_scale, "octave_scale", minimum=1.0)
    noise = check_float(noise, "noise", minimum=0.0)
    seed = check_int(seed, "seed", minimum=0)
    height, width = int(content_array.shape[1]), int(content_array.shape[2])
    sizes = [(max(8, round(height / octave_scale ** i)), max(8, round(width / octave_scale ** i)))
             for i in reversed(range(octaves))]
    adapter.check_input_size(content_names + style_names, sizes[0],
                             "octaves" if octaves > 1 else "content")
    adapter.check_input_size(style_names, tuple(style_array.shape[1:3]), "style")
    extractor = adapter.feature_model(content_names + style_names, include_output=False,
                                      input_shape=(None, None, channels))
    split = len(content_names)

    def features(images):
        outputs = extractor(images, training=False)
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        return outputs[:split], outputs[split:]

    style_grams = [gram_matrix(f) for f in features(style_array)[1]]
    run = tf.function(_step_loop(features, style_grams, steps, *weights, learning_rate),
                      jit_compile=bool(jit_compile), reduce_retracing=True)
    rng = np.random.default_rng(seed)
    image = tf.clip_by_value(content_array + rng.uniform(-noise, noise, content_array.shape)
                             .astype(np.float32), 0.0, 255.0)
    histories = []
    bar = progress_bar(octaves, "octave", verbose)
    for size in sizes:
        image = tf.image.resize(image, size)
        target = tf.image.resize(content_array, size)
        content_targets = features(target)[0]
        image, history = run(image, content_targets)
        histories.append(history.numpy())
        bar.update()
    image = tf.image.resize(image, (height, width)) if sizes[-1] != (height, width) else image
    check_finite_result(image.numpy(), "style_transfer")
    history = np.concatenate(histories, axis=1)
    return StyleTransfer(np.clip(np.round(image[0].numpy()), 0, 255).astype(np.uint8),
                         history[0], history[1], history[2], content_names, style_names)


def _one_image(image, channels, model_name, argument) -> tf.Tensor:
    try:
        values = np.asarray(image)
    except (TypeError, ValueError):
        values = None
    grey = values is not None and values.dtype.kind in "uif" and (
        values.ndim == 2 or (values.ndim in (3, 4) and values.shape[-1] == 1))
    if channels == 3 and grey:
        # A greyscale picture for a colour model: the same grey in R, G and B, said once.
        warnings.warn(f"{argument} is greyscale (shape {values.shape}) and model "
                      f"{model_name!r} takes 3 channels: its grey level is repeated in R, "
                      "G and B.", stacklevel=3)
        image = np.repeat(values[..., None] if values.ndim == 2 else values, 3, axis=-1)
    array = check_images(image, (None, None, channels), model_name, argument=argument)
    if array.shape[0] != 1:
        raise ArgumentError(argument, f"Expected one image [height, width, channels] as "
                            f"{argument}; received shape {tuple(array.shape)}.")
    return array


def _names(layers, default, argument) -> list[str]:
    if layers is None:
        return list(default)
    names = [layers] if isinstance(layers, str) else list(layers)
    if not names or not all(isinstance(n, str) for n in names):
        raise ArgumentError(argument, f"Expected {argument} as a layer name or a non-empty "
                            f"list of names; received {argument}={layers!r}.")
    return names


def _losses(features, style_grams, image, content_targets):
    content_features, style_features = features(image)
    content = tf.add_n([tf.reduce_mean(tf.square(f - t)) /
                        (tf.reduce_mean(tf.square(t)) + _EPSILON)
                        for f, t in zip(content_features, content_targets)]) / len(
        content_targets)
    style = tf.add_n([tf.reduce_mean(tf.square(gram_matrix(f) - g)) /
                      (tf.reduce_mean(tf.square(g)) + _EPSILON)
                      for f, g in zip(style_features, style_grams)]) / len(style_grams)
    variation = (tf.reduce_mean(tf.square(image[:, 1:] - image[:, :-1])) +
                 tf.reduce_mean(tf.square(image[:, :, 1:] - image[:, :, :-1])))
    return content, style, variation


def _step_loop(features, style_grams, steps, content_weight, style_weight, tv_weight,
               learning_rate):
    beta1, beta2 = _ADAM_BETAS

    def run(image, content_targets):
        first = tf.zeros_like(image)
        second = tf.zeros_like(image)
        history = tf.TensorArray(tf.float32, size=steps)
        for step in tf.range(steps):
            with tf.GradientTape() as tape:
                tape.watch(image)
                content, style, variation = _losses(features, style_grams, image,
                                                    content_targets)
                total = (content_weight * content + style_weight * style +
                         tv_weight * variation)
            gradient = tape.gradient(total, image)
            history = history.write(step, tf.stack([content, style, variation]))
            first = beta1 * first + (1 - beta1) * gradient
            second = beta2 * second + (1 - beta2) * tf.square(gradient)
            count = tf.cast(step + 1, tf.float32)
            corrected = learning_rate * tf.sqrt(1 - beta2 ** count) / (1 - beta1 ** count)
            image = tf.clip_by_value(image - corrected * first / (tf.sqrt(second) +
                                                                  _ADAM_EPSILON), 0.0, 255.0)
        return image, tf.transpose(history.stack())

    return run
