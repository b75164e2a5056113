"""Every method of vk.interpret on every model shape a user brings, against references
written here: naive loops and GradientTapes over the models' own layers, per image.

Model shapes (the family that breaks explainers on the tf-keras-vis, tf-explain and
keras trackers): a Sequential CNN, a functional one, a Sequential backbone nesting a
functional block inside a functional model, a keras.applications backbone (slow), a
model with two heads explained with `output=`, one sigmoid unit (binary), independent
sigmoids (multi-label), logits, a softmax as its own layer, and a subclassed model whose
inner layers cannot be reached (layer methods refused, naming the argument).

Scores the references use: softmax heads score the class probability, logits the
logit, a binary sigmoid p (class 1) or 1 - p (class 0), a multi-label model its class's
own sigmoid; Grad-CAM differentiates the pre-activation (z, or -z for binary class 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

import visionkit as vk
from visionkit.interpret.checks import ArgumentError
from visionkit.interpret.filters import start_images

SIDE = 16
IMAGES = np.random.default_rng(7).uniform(0, 255, (2, SIDE, SIDE, 3)).astype("float32")


@dataclass
class Shape:
    model: keras.Model
    kind: str  # softmax | logits | binary | multilabel
    features: Callable  # images -> the explained layer's map, through the layers themselves
    logits: Callable  # that map -> the head's pre-activation [B, K]
    layer: str | None  # a Conv2D explained by the layer methods (None: unreachable)
    conv: Any = None  # that Conv2D layer object
    kwargs: dict = field(default_factory=dict)  # output= for the scoring methods
    side: int = SIDE

    def num_classes(self):
        return 2 if self.kind == "binary" else int(self.model_outputs()[-1])

    def model_outputs(self):
        return self.logits(self.features(self.images(1))).shape

    def images(self, count=2):
        rng = np.random.default_rng(7)
        return rng.uniform(0, 255, (count, self.side, self.side, 3)).astype("float32")

    def probability_scores(self, logits, classes):
        """[B] scores of `classes` from logits [B, K] (the output the model returns)."""
        logits = tf.cast(logits, tf.float32)
        if self.kind == "binary":
            p = tf.sigmoid(logits[:, 0])
            return tf.where(classes == 1, p, 1.0 - p)
        values = {"softmax": tf.nn.softmax, "logits": tf.identity,
                  "multilabel": tf.sigmoid}[self.kind](logits)
        return tf.gather(values, classes, axis=1, batch_dims=1)

    def logit_scores(self, logits, classes):
        logits = tf.cast(logits, tf.float32)
        if self.kind == "binary":
            return tf.where(classes == 1, logits[:, 0], -logits[:, 0])
        return tf.gather(logits, classes, axis=1, batch_dims=1)

    def predicted(self, images):
        logits = self.logits(self.features(images)).numpy()
        if self.kind == "binary":
            return (logits[:, 0] > 0).astype(np.int32)
        return logits.argmax(axis=1).astype(np.int32)

    def score(self, images, classes):
        return self.probability_scores(self.logits(self.features(images)), classes)


def _dense_logits(dense):
    def logits(features):
        pooled = tf.reduce_mean(tf.cast(features, tf.float32), axis=[1, 2])
        return pooled @ dense.kernel + dense.bias
    return logits


def _conv(name, filters=4):
    return keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=name)


def _head(kind, classes=3, name="head"):
    activation = {"softmax": "softmax", "logits": None, "binary": "sigmoid",
                  "multilabel": "sigmoid"}[kind]
    return keras.layers.Dense(1 if kind == "binary" else classes, activation=activation,
                              name=name)


def _flat(kind, sequential=False, classes=3):
    keras.utils.set_random_seed(3)
    rescale, conv = keras.layers.Rescaling(1 / 255.0), _conv("conv")
    pool, dense = keras.layers.GlobalAveragePooling2D(), _head(kind, classes)
    if sequential:
        model = keras.Sequential([keras.Input((SIDE, SIDE, 3)), rescale, conv, pool, dense],
                                 name="sequential_cnn")
    else:
        inputs = keras.Input((SIDE, SIDE, 3))
        model = keras.Model(inputs, dense(pool(conv(rescale(inputs)))), name="functional_cnn")
    return Shape(model, kind, lambda x: conv(rescale(x)), _dense_logits(dense), "conv", conv)


def build(name: str) -> Shape:
    if name == "sequential":
        return _flat("softmax", sequential=True)
    if name == "functional":
        return _flat("softmax")
    if name in ("binary", "multilabel", "logits"):
        return _flat(name, classes=4)
    if name == "softmax_layer":
        keras.utils.set_random_seed(4)
        conv, dense = _conv("conv"), keras.layers.Dense(3, name="logits")
        inputs = keras.Input((SIDE, SIDE, 3))
        x = keras.layers.GlobalAveragePooling2D()(conv(keras.layers.Rescaling(1 / 255)(inputs)))
        model = keras.Model(inputs, keras.layers.Softmax(name="probabilities")(dense(x)))
        return Shape(model, "softmax", lambda x: conv(x / 255.0), _dense_logits(dense), "conv",
                     conv)
    if name == "nested_sequential":
        # functional > Sequential backbone > functional block > the explained conv
        keras.utils.set_random_seed(5)
        first, deep = _conv("backbone_conv"), _conv("deep_conv", 5)
        block_input = keras.Input((SIDE, SIDE, 4))
        block = keras.Model(block_input, deep(block_input), name="block")
        backbone = keras.Sequential([keras.Input((SIDE, SIDE, 3)), first, block],
                                    name="backbone")
        dense = _head("softmax")
        inputs = keras.Input((SIDE, SIDE, 3))
        x = backbone(keras.layers.Rescaling(1 / 255.0)(inputs))
        model = keras.Model(inputs, dense(keras.layers.GlobalAveragePooling2D()(x)))
        return Shape(model, "softmax", lambda x: deep(first(x / 255.0)), _dense_logits(dense),
                     "deep_conv", deep)
    if name == "applications":
        keras.utils.set_random_seed(6)
        backbone = keras.applications.MobileNetV3Small(
            input_shape=(32, 32, 3), include_top=False, weights=None, alpha=0.75,
            minimalistic=True, include_preprocessing=True)
        conv = [layer for layer in backbone.layers
                if isinstance(layer, keras.layers.Conv2D)][-1]
        reader = keras.Model(backbone.input, conv.output)  # Keras's own sub-model
        dense = _head("logits")
        inputs = keras.Input((32, 32, 3))
        tail = backbone(inputs)
        model = keras.Model(inputs, dense(keras.layers.GlobalAveragePooling2D()(tail)))
        # The head reads the backbone's last map; conv's map reaches it through the last
        # activation (minimalistic: ReLU), which the logits reference applies by hand.
        last = backbone.layers[-1]

        def logits(features):
            return _dense_logits(dense)(last(features) if last is not conv else features)
        return Shape(model, "logits", reader, logits, conv.name, conv, side=32)
    if name == "two_heads":
        keras.utils.set_random_seed(8)
        conv = _conv("conv")
        first, second = _head("softmax", name="digit"), _head("multilabel", 5, name="tags")
        inputs = keras.Input((SIDE, SIDE, 3))
        pooled = keras.layers.GlobalAveragePooling2D()(conv(keras.layers.Rescaling(1 / 255)(
            inputs)))
        model = keras.Model(inputs, {"digit": first(pooled), "tags": second(pooled)})
        return Shape(model, "multilabel", lambda x: conv(x / 255.0), _dense_logits(second),
                     "conv", conv, kwargs={"output": "tags"})
    if name == "subclassed":
        keras.utils.set_random_seed(9)

        class Subclassed(keras.Model):
            def __init__(self):
                super().__init__(name="subclassed")
                self.conv, self.pool = _conv("conv"), keras.layers.GlobalAveragePooling2D()
                self.dense = _head("softmax")

            def call(self, x):
                return self.dense(self.pool(self.conv(x / 255.0)))

        model = Subclassed()
        model(IMAGES[:1])
        return Shape(model, "softmax", lambda x: model.conv(x / 255.0),
                     _dense_logits(model.dense), None, model.conv)
    raise KeyError(name)


# "applications" (a MobileNetV3Small backbone, 32x32) runs with the slow tests.
SHAPES = ["sequential", "functional", "nested_sequential", "applications", "two_heads",
          "binary", "multilabel", "logits", "softmax_layer", "subclassed"]
_BUILT: dict = {}


def shape_of(name) -> Shape:
    if name not in _BUILT:
        _BUILT[name] = build(name)
    return _BUILT[name]


def _classes(shape):
    return np.array([1, 0], np.int32)


# ------------------------------------------------------------------ references
def ref_occlusion(shape, images, classes, patch, stride):
    maps = []
    for image, class_id in zip(images, classes):
        fill = image.mean(axis=(0, 1))
        copies, boxes = [], []
        for top in range(0, image.shape[0], stride):
            for left in range(0, image.shape[1], stride):
                copy = image.copy()
                copy[top:top + patch, left:left + patch] = fill
                copies.append(copy)
                boxes.append((top, left))
        ids = np.full(len(copies), class_id, np.int32)
        original = shape.score(image[None], ids[:1]).numpy()[0]
        drops = original - shape.score(np.stack(copies), ids).numpy()
        total, count = np.zeros(image.shape[:2]), np.zeros(image.shape[:2])
        for (top, left), drop in zip(boxes, drops):
            total[top:top + patch, left:left + patch] += drop
            count[top:top + patch, left:left + patch] += 1
        maps.append(total / count)
    return np.stack(maps)


def ref_grad_cam(shape, images, classes):
    maps = []
    for image, class_id in zip(images, classes):
        with tf.GradientTape() as tape:
            features = shape.features(image[None])
            score = shape.logit_scores(shape.logits(features), tf.constant([class_id]))
        gradients = tape.gradient(score, features)[0].numpy()
        cam = np.maximum((features[0].numpy() * gradients.mean(axis=(0, 1))).sum(-1), 0)
        cam = tf.image.resize(cam[None, ..., None], image.shape[:2])[0, ..., 0].numpy()
        maps.append((cam - cam.min()) / max(cam.max() - cam.min(), 1e-12))
    return np.stack(maps)


def input_gradient(shape, image, class_id):
    image = tf.constant(image[None])
    with tf.GradientTape() as tape:
        tape.watch(image)
        score = shape.score(image, tf.constant([class_id]))
    return tape.gradient(score, image)[0].numpy()


def ref_saliency(shape, images, classes):
    return np.stack([np.abs(input_gradient(shape, image, c)).max(axis=-1)
                     for image, c in zip(images, classes)])


def ref_integrated_gradients(shape, images, classes, steps):
    result = []
    for image, class_id in zip(images, classes):
        total = np.zeros_like(image)
        for step in range(steps + 1):
            weight = 0.5 if step in (0, steps) else 1.0
            total += weight * input_gradient(shape, image * step / steps, class_id)
        result.append(image * total / steps)
    return np.stack(result)


def ref_fgsm(shape, images, classes, epsilon):
    return np.stack([np.clip(image - epsilon * np.sign(input_gradient(shape, image, c)), 0, 255)
                     for image, c in zip(images, classes)])


def ref_filters(shape, ids, step_size):
    start = start_images(ids, (shape.side, shape.side), 3, seed=0)
    images = tf.constant(start)
    with tf.GradientTape() as tape:
        tape.watch(images)
        features = shape.features(images)
        loss = sum(tf.reduce_mean(features[i, ..., int(f)]) for i, f in enumerate(ids))
    gradients = tape.gradient(loss, images).numpy()
    gradients /= gradients.std(axis=(1, 2, 3), keepdims=True) + 1e-8
    return np.clip(np.round(np.clip(start + step_size * gradients, 0, 255)), 0, 255)


def ref_deep_dream(shape, image, step_size):
    tensor = tf.constant(image[None])
    with tf.GradientTape() as tape:
        tape.watch(tensor)
        loss = tf.reduce_mean(shape.features(tensor))
    gradient = tape.gradient(loss, tensor).numpy()
    gradient /= gradient.std() + 1e-8
    return np.clip(np.round(np.clip(image + step_size * gradient[0], 0, 255)), 0, 255)


# ------------------------------------------------------------------ the matrix
LAYER_METHODS = {"grad_cam", "activations", "filters", "filter_activations", "top_activating",
                 "deep_dream", "embed", "weights"}


def run_cell(name, method):
    shape = shape_of(name)
    model, images, classes = shape.model, shape.images(), _classes(shape)
    out = shape.kwargs
    if method == "occlusion":
        result = vk.interpret.occlusion(model, images, target=classes, patch_size=6, stride=4,
                                        verbose=0, **out)
        np.testing.assert_allclose(result, ref_occlusion(shape, images, classes, 6, 4),
                                   rtol=1e-4, atol=1e-6)
        default = vk.interpret.occlusion(model, images, patch_size=16, stride=16, verbose=0,
                                         **out)
        expected = ref_occlusion(shape, images, shape.predicted(images), 16, 16)
        np.testing.assert_allclose(default, expected, rtol=1e-4, atol=1e-6)
    elif method == "grad_cam":
        cam = vk.interpret.grad_cam(model, images, target=classes, layer=shape.layer, **out)
        np.testing.assert_allclose(cam, ref_grad_cam(shape, images, classes), atol=1e-4)
        default = vk.interpret.grad_cam(model, images, layer=shape.layer, **out)
        np.testing.assert_allclose(default, ref_grad_cam(shape, images, shape.predicted(images)),
                                   atol=1e-4)
    elif method == "saliency":
        np.testing.assert_allclose(
            vk.interpret.saliency(model, images, target=classes, **out),
            ref_saliency(shape, images, classes), rtol=1e-3, atol=1e-7)
    elif method == "integrated_gradients":
        np.testing.assert_allclose(
            vk.interpret.integrated_gradients(model, images, target=classes, steps=4, **out),
            ref_integrated_gradients(shape, images, classes, 4), rtol=1e-3, atol=1e-6)
    elif method == "fgsm":
        result = vk.interpret.fgsm(model, images, target=classes, epsilon=4.0, **out)
        np.testing.assert_allclose(result["adversarial"], ref_fgsm(shape, images, classes, 4.0),
                                   atol=1e-3)
        np.testing.assert_array_equal(result["original_class"], classes)
    elif method == "activations":
        maps = vk.interpret.activations(model, images, layers=[shape.layer])
        np.testing.assert_allclose(maps[shape.layer], shape.features(images), rtol=1e-5,
                                   atol=1e-6)
    elif method == "filter_activations":
        values = vk.interpret.filter_activations(model, shape.layer, images, filters=[0, 2])
        expected = tf.reduce_mean(shape.features(images), axis=[1, 2]).numpy()[:, [0, 2]]
        np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-6)
    elif method == "filters":
        pictures = vk.interpret.filters(model, shape.layer, filters=[0, 1], steps=1, jitter=0,
                                        step_size=8.0, verbose=0)
        expected = ref_filters(shape, [0, 1], 8.0)
        assert np.abs(pictures.astype(float) - expected).max() <= 1
    elif method == "top_activating":
        result = vk.interpret.top_activating(model, images, shape.layer, 1, k=2)
        strongest = shape.features(images).numpy()[..., 1].reshape(len(images), -1).max(axis=1)
        np.testing.assert_array_equal(result["indices"], np.argsort(-strongest, kind="stable"))
        np.testing.assert_allclose(result["scores"], np.sort(strongest)[::-1], rtol=1e-5)
    elif method == "deep_dream":
        dream = vk.interpret.deep_dream(model, images[0], layers=[shape.layer], octaves=1,
                                        steps=1, step_size=2.0, tile_size=shape.side,
                                        jitter=0, verbose=0)
        assert np.abs(dream.astype(float) - ref_deep_dream(shape, images[0], 2.0)).max() <= 1
    elif method == "embed":
        many = shape.images(6)
        result = vk.interpret.embed(model, many, layer=shape.layer, method="pca", verbose=0)
        expected = tf.reduce_mean(shape.features(many), axis=[1, 2]).numpy()
        np.testing.assert_allclose(result.features, expected, rtol=1e-5, atol=1e-6)
    elif method == "weights":
        tiles = vk.interpret.weights(model, layer=shape.layer)
        kernel = np.transpose(np.asarray(shape.conv.kernel), (3, 0, 1, 2))
        kernel = np.repeat(kernel.mean(-1, keepdims=True), 3, -1) if kernel.shape[-1] != 3 \
            else kernel
        low = kernel.min(axis=(1, 2, 3), keepdims=True)
        high = kernel.max(axis=(1, 2, 3), keepdims=True)
        # a constant tile (a 1x1 kernel over one channel mean) is all zeros
        np.testing.assert_allclose(tiles, (kernel - low) / np.maximum(high - low, 1e-12),
                                   rtol=1e-5, atol=1e-6)
    else:
        raise KeyError(method)


METHODS = ["occlusion", "grad_cam", "saliency", "integrated_gradients", "fgsm", "activations",
           "filter_activations", "filters", "top_activating", "deep_dream", "embed", "weights"]


# The layer-reading methods do not depend on the head: on the shapes that differ from
# another only by their head, those cells run with the slow tests.
_HEAD_ONLY = {"functional", "logits", "softmax_layer", "binary", "multilabel"}
_READERS = LAYER_METHODS - {"grad_cam"}
CELLS = [pytest.param(name, method, marks=pytest.mark.slow)
         if name == "applications" or (name in _HEAD_ONLY and method in _READERS)
         else (name, method)
         for name in SHAPES for method in METHODS]


@pytest.mark.parametrize("name, method", CELLS)
def test_method_on_model_shape_equals_the_reference(name, method):
    shape = shape_of(name)
    if shape.layer is None and method in LAYER_METHODS:
        # A subclassed model's inner layers are not reachable: refused, naming the layer.
        layer = shape.conv.name
        calls = {"grad_cam": lambda: vk.interpret.grad_cam(shape.model, IMAGES),
                 "activations": lambda: vk.interpret.activations(shape.model, IMAGES, [layer]),
                 "filters": lambda: vk.interpret.filters(shape.model, layer, [0], steps=1),
                 "filter_activations": lambda: vk.interpret.filter_activations(
                     shape.model, layer, IMAGES),
                 "top_activating": lambda: vk.interpret.top_activating(shape.model, IMAGES,
                                                                       layer, 0),
                 "deep_dream": lambda: vk.interpret.deep_dream(shape.model, IMAGES[0], [layer]),
                 "embed": lambda: vk.interpret.embed(shape.model, shape.images(6), layer=layer),
                 "weights": lambda: vk.interpret.weights(shape.model)}
        with pytest.raises(ArgumentError) as error:
            calls[method]()
        assert error.value.argument in ("layer", "layers")
        assert "subclassed" in str(error.value) or "no reachable" in str(error.value)
        return
    run_cell(name, method)


SCORING = {"occlusion": lambda m, x, **k: vk.interpret.occlusion(m, x, verbose=0, **k),
           "grad_cam": vk.interpret.grad_cam, "saliency": vk.interpret.saliency,
           "integrated_gradients": vk.interpret.integrated_gradients,
           "fgsm": vk.interpret.fgsm}


@pytest.mark.parametrize("method", sorted(SCORING))
def test_two_heads_need_output_and_reject_unknown_ones(method):
    shape = shape_of("two_heads")
    with pytest.raises(ArgumentError, match=r"2 outputs \['digit', 'tags'\].*output=") as error:
        SCORING[method](shape.model, IMAGES)
    assert error.value.argument == "output"
    with pytest.raises(ArgumentError, match=r"output=.*received output='colour'"):
        SCORING[method](shape.model, IMAGES, output="colour")
    with pytest.raises(ArgumentError, match=r"received output=2"):
        SCORING[method](shape.model, IMAGES, output=2)


def test_two_heads_by_index_equal_by_name_and_differ_between_heads():
    shape = shape_of("two_heads")
    by_name = vk.interpret.grad_cam(shape.model, IMAGES, target=1, layer="conv", output="tags")
    by_index = vk.interpret.grad_cam(shape.model, IMAGES, target=1, layer="conv", output=1)
    first = vk.interpret.grad_cam(shape.model, IMAGES, target=1, layer="conv", output="digit")
    np.testing.assert_allclose(by_name, by_index)
    assert not np.allclose(by_name, first, atol=1e-3)


def test_heads_are_read_as_their_kind():
    kinds = {name: vk.interpret.ModelAdapter(shape_of(name).model,
                                             **shape_of(name).kwargs).head.kind
             for name in ["sequential", "binary", "multilabel", "logits", "softmax_layer",
                          "nested_sequential", "two_heads", "subclassed"]}
    assert kinds == {"sequential": "softmax", "binary": "binary", "multilabel": "multilabel",
                     "logits": "logits", "softmax_layer": "softmax",
                     "nested_sequential": "softmax", "two_heads": "multilabel",
                     "subclassed": "softmax"}


def test_binary_targets_are_its_two_classes():
    shape = shape_of("binary")
    with pytest.raises(ArgumentError, match=r"class ids in \[0, 1\].*target=2"):
        vk.interpret.saliency(shape.model, IMAGES, target=2)


def test_layers_that_are_not_spatial_are_refused_with_those_that_are():
    shape = shape_of("nested_sequential")
    dense = shape.model.layers[-1].name
    with pytest.raises(ArgumentError, match=r"spatial map.*'backbone_conv', 'deep_conv'\]"):
        vk.interpret.grad_cam(shape.model, IMAGES, layer=dense)
    with pytest.raises(ArgumentError, match="spatial map"):
        vk.interpret.filters(shape.model, dense, [0], steps=1)
    assert vk.interpret.conv_layer_names(shape.model) == ["backbone_conv", "deep_conv"]
    assert vk.interpret.find_layer(shape.model, "deep_conv") is shape.conv
