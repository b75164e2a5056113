"""Grad-CAM, saliency, integrated gradients and FGSM against independent references."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

import visionkit as vk


def reference_grad_cam(model, images, target, layer, extractor=None):
    """Grad-CAM written out with Keras's own sub-model of a flat model, per image; for a
    softmax classifier, of the logit (the head's kernel applied to its input by hand)."""
    if extractor is None:
        head = model.get_layer("predictions")
        extractor = keras.Model(model.inputs, [model.get_layer(layer).output, head.input])
        logits = lambda x: x @ head.kernel + head.bias  # noqa: E731
    else:
        logits = lambda x: x  # noqa: E731  (the nested model already ends in logits)
    maps = []
    for image in images:
        with tf.GradientTape() as tape:
            features, outputs = extractor(image[None])
            score = logits(outputs)[0, target]
        gradients = tape.gradient(score, features)[0].numpy()
        weights = gradients.mean(axis=(0, 1))
        cam = np.maximum((features[0].numpy() * weights).sum(axis=-1), 0)
        cam = tf.image.resize(cam[None, ..., None], images.shape[1:3])[0, ..., 0].numpy()
        maps.append((cam - cam.min()) / max(cam.max() - cam.min(), 1e-12))
    return np.stack(maps)


def test_grad_cam_matches_a_per_image_reference(tiny_model, tiny_images):
    cam = vk.interpret.grad_cam(tiny_model, tiny_images, target=1, layer="relu2")
    np.testing.assert_allclose(cam, reference_grad_cam(tiny_model, tiny_images, 1, "relu2"),
                               atol=1e-5)
    assert cam.shape == (3, 24, 32) and cam.min() >= 0 and cam.max() <= 1


def test_grad_cam_on_nested_backbone_layers(nested_model):
    images = np.random.default_rng(0).uniform(0, 255, (2, 20, 28, 3)).astype("float32")
    # The inner layer is reached through the rebuilt graph: the result must equal Grad-CAM
    # on an equivalent flat model made of the same layers.
    backbone = nested_model.get_layer("tiny_backbone")
    inputs = keras.Input((20, 28, 3))
    tensors = {"rescale": nested_model.get_layer("rescale")(inputs)}
    x = tensors["rescale"]
    for name in ("inner_conv1", "inner_pool", "inner_conv2"):
        x = tensors[name] = backbone.get_layer(name)(x)
    outputs = nested_model.get_layer("predictions")(nested_model.get_layer("avg_pool")(x))
    for layer in ("inner_conv1", "inner_conv2"):
        flat = keras.Model(inputs, [tensors[layer], outputs])
        cam = vk.interpret.grad_cam(nested_model, images, target=2, layer=layer)
        np.testing.assert_allclose(cam, reference_grad_cam(None, images, 2, layer, flat),
                                   atol=1e-5)


def test_grad_cam_on_keras_applications_backbone(mobilenet_model):
    images = np.random.default_rng(0).uniform(0, 255, (1, 32, 48, 3)).astype("float32")
    cam = vk.interpret.grad_cam(mobilenet_model, images, target=0)
    assert cam.shape == (1, 32, 48) and np.isfinite(cam).all()


def test_saliency_is_the_input_gradient(tiny_model, tiny_images):
    images = tf.constant(tiny_images)
    with tf.GradientTape() as tape:
        tape.watch(images)
        score = tf.reduce_sum(tiny_model(images)[:, 2])
    expected = np.abs(tape.gradient(score, images).numpy()).max(axis=-1)
    np.testing.assert_allclose(vk.interpret.saliency(tiny_model, tiny_images, target=2),
                               expected, rtol=1e-5, atol=1e-9)


def test_smoothgrad_is_seeded_and_differs_from_vanilla(tiny_model, tiny_images):
    first = vk.interpret.saliency(tiny_model, tiny_images, target=0, smooth_samples=4)
    again = vk.interpret.saliency(tiny_model, tiny_images, target=0, smooth_samples=4)
    vanilla = vk.interpret.saliency(tiny_model, tiny_images, target=0)
    np.testing.assert_allclose(first, again)
    assert not np.allclose(first, vanilla)


def test_integrated_gradients_completeness(nested_model):
    images = np.random.default_rng(1).uniform(0, 255, (2, 20, 28, 3)).astype("float32")
    attributions = vk.interpret.integrated_gradients(nested_model, images, target=1, steps=64)
    outputs = np.asarray(nested_model(images))[:, 1]
    base = np.asarray(nested_model(np.zeros_like(images)))[:, 1]
    np.testing.assert_allclose(attributions.sum(axis=(1, 2, 3)), outputs - base, rtol=0.02,
                               atol=1e-3)


def test_fgsm_moves_every_pixel_by_epsilon_and_lowers_the_score(nested_model):
    images = np.random.default_rng(2).uniform(20, 235, (2, 20, 28, 3)).astype("float32")
    result = vk.interpret.fgsm(nested_model, images, target=0, epsilon=4.0)
    np.testing.assert_allclose(np.abs(result["perturbation"]), 4.0, atol=1e-4)
    before = np.asarray(nested_model(images))[:, 0]
    after = np.asarray(nested_model(result["adversarial"]))[:, 0]
    assert (after < before).all()
    assert result["original_class"].tolist() == [0, 0]


def test_fgsm_flips_a_trained_classifier(trained_digits):
    model, data = trained_digits
    images, labels = next(iter(data.val))
    result = vk.interpret.fgsm(model, images, epsilon=48.0)
    predicted = np.asarray(model(images)).argmax(axis=1)
    np.testing.assert_array_equal(result["original_class"], predicted)
    np.testing.assert_array_equal(result["adversarial_class"],
                                  np.asarray(model(result["adversarial"])).argmax(axis=1))
    assert result["flipped"].mean() > 0.5
