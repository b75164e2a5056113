"""The CAM family against per-image references written with GradientTape and NumPy.

The references run on a flat model rebuilt from the layers of the nested backbone (so a
wrong nested-layer lookup would disagree), one image at a time, on non-square 20x28
inputs.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import visionkit as vk

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def flat(nested_model):
    """(function from images to {layer: map} and the logits, made of the same layers)."""
    backbone = nested_model.get_layer("tiny_backbone")
    inputs = keras.Input((20, 28, 3))
    tensors = {}
    x = nested_model.get_layer("rescale")(inputs)
    for name in ("inner_conv1", "inner_pool", "inner_conv2"):
        x = tensors[name] = backbone.get_layer(name)(x)
    outputs = nested_model.get_layer("predictions")(nested_model.get_layer("avg_pool")(x))
    return keras.Model(inputs, [tensors["inner_conv1"], tensors["inner_conv2"], outputs])


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(3).uniform(0, 255, (2, 20, 28, 3)).astype("float32")


def tape(flat, image, target):
    """Activations and gradients of the target logit, per layer, for one image."""
    with tf.GradientTape() as recorder:
        first, second, logits = flat(image[None])
        score = logits[0, target]
    grads = recorder.gradient(score, [first, second])
    return ([first[0].numpy().astype(np.float64), second[0].numpy().astype(np.float64)],
            [g[0].numpy().astype(np.float64) for g in grads])


def upsample_and_scale(cam, size, scale=True):
    cam = tf.image.resize(cam[None, ..., None].astype(np.float32), size)[0, ..., 0].numpy()
    return (cam - cam.min()) / max(cam.max() - cam.min(), 1e-12) if scale else cam


def reference_plus_plus(activation, gradient):
    squared, cubed = gradient ** 2, gradient ** 3
    denominator = 2 * squared + activation.sum(axis=(0, 1)) * cubed
    alpha = np.where(denominator != 0, squared / np.where(denominator == 0, 1, denominator),
                     0)
    weights = (alpha * np.maximum(gradient, 0)).sum(axis=(0, 1))
    return np.maximum((activation * weights).sum(-1), 0)


def test_grad_cam_plus_plus_and_hires_cam_match_references(nested_model, flat, images):
    plus = vk.interpret.grad_cam_plus_plus(nested_model, images, target=1, layer="inner_conv2")
    hires = vk.interpret.hires_cam(nested_model, images, target=1, layer="inner_conv2")
    for index, image in enumerate(images):
        activations, gradients = tape(flat, image, 1)
        expected = reference_plus_plus(activations[1], gradients[1])
        np.testing.assert_allclose(plus[index], upsample_and_scale(expected, (20, 28)),
                                   atol=TOLERANCE)
        expected = np.maximum((activations[1] * gradients[1]).sum(-1), 0)
        np.testing.assert_allclose(hires[index], upsample_and_scale(expected, (20, 28)),
                                   atol=TOLERANCE)
    assert plus.shape == hires.shape == (2, 20, 28)


def test_hires_cam_differs_from_grad_cam_where_gradients_vary(nested_model, images):
    """The element-wise product is not Grad-CAM's pooled weights (inner_conv1 sits before
    a max pooling, so its gradients vary over positions)."""
    hires = vk.interpret.hires_cam(nested_model, images, target=0, layer="inner_conv1")
    grad = vk.interpret.grad_cam(nested_model, images, target=0, layer="inner_conv1")
    assert np.abs(hires - grad).max() > 0.05


def test_layer_cam_over_two_nested_layers_matches_reference(nested_model, flat, images):
    cam = vk.interpret.layer_cam(nested_model, images, target=2,
                                 layers=["inner_conv1", "inner_conv2"])
    for index, image in enumerate(images):
        activations, gradients = tape(flat, image, 2)
        per_layer = [upsample_and_scale(np.maximum((a * np.maximum(g, 0)).sum(-1), 0),
                                        (20, 28)) for a, g in zip(activations, gradients)]
        fused = np.maximum(*per_layer)
        expected = (fused - fused.min()) / max(fused.max() - fused.min(), 1e-12)
        np.testing.assert_allclose(cam[index], expected, atol=TOLERANCE)


def test_score_cam_matches_one_forward_pass_per_mask(nested_model, flat, images):
    # batch_size 5 does not divide the 2 x 6 masked copies: the last chunk is partial.
    cam = vk.interpret.score_cam(nested_model, images, target=0, layer="inner_conv2",
                                 batch_size=5, normalize=False)
    for index, image in enumerate(images):
        activation = flat(image[None])[1][0].numpy().astype(np.float64)
        scores = []
        for channel in range(activation.shape[-1]):
            mask = upsample_and_scale(activation[..., channel], (20, 28))
            if activation[..., channel].max() == activation[..., channel].min():
                mask = np.zeros_like(mask)
            scores.append(float(flat((image * mask[..., None])[None])[2][0, 0]))
        weights = np.exp(np.array(scores) - max(scores))
        weights /= weights.sum()
        expected = upsample_and_scale(np.maximum((activation * weights).sum(-1), 0), (20, 28),
                                      scale=False)
        np.testing.assert_allclose(cam[index], expected, atol=TOLERANCE, rtol=1e-5)


def test_score_cam_batch_size_does_not_change_the_maps(nested_model, images):
    one = vk.interpret.score_cam(nested_model, images, target=0, batch_size=1)
    many = vk.interpret.score_cam(nested_model, images, target=0, batch_size=64)
    np.testing.assert_allclose(one, many, atol=TOLERANCE)


def test_eigen_cam_is_the_first_principal_component(nested_model, flat, images):
    cam = vk.interpret.eigen_cam(nested_model, images, layer="inner_conv2")
    for index, image in enumerate(images):
        activation = flat(image[None])[1][0].numpy().astype(np.float64)
        matrix = activation.reshape(-1, activation.shape[-1])
        centred = matrix - matrix.mean(axis=0)
        component = np.linalg.svd(centred, full_matrices=False)[2][0]
        component = component if component.sum() >= 0 else -component
        expected = (centred @ component).reshape(activation.shape[:2])
        np.testing.assert_allclose(cam[index], upsample_and_scale(expected, (20, 28)),
                                   atol=TOLERANCE)


def test_eigen_cam_needs_no_target_on_a_model_with_two_outputs():
    inputs = keras.Input((12, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, [keras.layers.Dense(2, name="a")(pooled),
                                 keras.layers.Dense(4, name="b")(pooled)])
    images = np.random.default_rng(0).uniform(0, 255, (2, 12, 16, 3)).astype("float32")
    assert vk.interpret.eigen_cam(model, images, layer="conv").shape == (2, 12, 16)


def test_softmax_head_is_explained_on_its_logit(tiny_model, tiny_images):
    """On a softmax classifier HiResCAM differentiates the logit, like Grad-CAM."""
    head = tiny_model.get_layer("predictions")
    extractor = keras.Model(tiny_model.inputs, [tiny_model.get_layer("relu2").output,
                                                head.input])
    cam = vk.interpret.hires_cam(tiny_model, tiny_images, target=2, layer="relu2")
    for index, image in enumerate(tiny_images):
        with tf.GradientTape() as recorder:
            features, pooled = extractor(image[None])
            score = (pooled @ head.kernel + head.bias)[0, 2]
        gradient = recorder.gradient(score, features)[0].numpy()
        expected = np.maximum((features[0].numpy() * gradient).sum(-1), 0)
        np.testing.assert_allclose(cam[index], upsample_and_scale(expected, (24, 32)),
                                   atol=TOLERANCE)


@pytest.mark.parametrize("method", ["grad_cam_plus_plus", "hires_cam", "layer_cam",
                                    "score_cam", "eigen_cam"])
def test_xla_compiled_maps_equal_the_graph_ones(method, tiny_model, tiny_images):
    function = getattr(vk.interpret, method)
    np.testing.assert_allclose(function(tiny_model, tiny_images[:1], jit_compile=True),
                               function(tiny_model, tiny_images[:1]), atol=1e-4)


def test_bad_layers_are_named(tiny_model, tiny_images):
    with pytest.raises(vk.interpret.ArgumentError) as error:
        vk.interpret.layer_cam(tiny_model, tiny_images, layers=[])
    assert error.value.argument == "layers"
    with pytest.raises(vk.interpret.ArgumentError) as error:
        vk.interpret.layer_cam(tiny_model, tiny_images, layers=["relu2", "predictions"])
    assert error.value.argument == "layers" and "predictions" in str(error.value)
    with pytest.raises(vk.interpret.ArgumentError) as error:
        vk.interpret.score_cam(tiny_model, tiny_images, batch_size=0)
    assert error.value.argument == "batch_size"
