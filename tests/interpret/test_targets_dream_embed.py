"""Task targets (hand-computed), DeepDream, t-SNE embeddings and XLA compilation."""

from __future__ import annotations

import numpy as np
import pytest

import visionkit as vk
from visionkit.interpret.targets import ClassScore, SegmentationScore


def test_segmentation_target_by_hand():
    probabilities = np.zeros((1, 2, 3, 3), "float32")
    probabilities[0, :, :, 0] = 0.6  # background everywhere ...
    probabilities[0, 0, :2] = [0.1, 0.7, 0.2]  # ... except two pixels of class 1
    probabilities[0, 1, 2] = [0.2, 0.3, 0.5]  # and one of class 2
    probabilities[0, :, :, 1] = np.where(probabilities[0, :, :, 0] == 0.6, 0.3,
                                         probabilities[0, :, :, 1])
    target = SegmentationScore()
    state = target.prepare(probabilities)
    assert int(state[0][0]) == 1  # most frequent non-background class
    np.testing.assert_allclose(np.asarray(state[1][0]), [[1, 1, 0], [0, 0, 0]])
    np.testing.assert_allclose(target.score(probabilities, state), [0.7])
    region = np.array([[0, 0, 1], [0, 0, 1]], bool)
    explicit = SegmentationScore(class_id=2, region=region)
    np.testing.assert_allclose(explicit.score(probabilities, explicit.prepare(probabilities)),
                               [(0.0 + 0.5) / 2], rtol=1e-6)


def test_occlusion_and_grad_cam_on_a_segmenter():
    import keras

    keras.utils.set_random_seed(4)
    inputs = keras.Input((12, 16, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="seg_conv")(x)
    outputs = keras.layers.Conv2D(3, 1, activation="softmax", name="seg_out")(x)
    model = keras.Model(inputs, outputs)
    images = np.random.default_rng(0).uniform(0, 255, (2, 12, 16, 3)).astype("float32")
    target = SegmentationScore(class_id=1)
    heat = vk.interpret.occlusion(model, images, target=target, patch_size=4, stride=4)
    # Reference: non-overlapping patches, so each pixel's value is its own patch's drop.
    original = target.score(model(images), target.prepare(model(images))).numpy()
    copy = images.copy()
    copy[:, 4:8, 8:12] = images.mean(axis=(1, 2))[:, None, None]
    occluded = target.score(model(copy), target.prepare(model(images))).numpy()
    np.testing.assert_allclose(heat[:, 5, 9], original - occluded, atol=1e-6)
    assert vk.interpret.grad_cam(model, images, target=target, layer="seg_conv").shape == (2, 12, 16)


def test_class_score_rejects_a_segmenter_output():
    import keras

    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs))
    with pytest.raises(ValueError, match="outputs \\[batch, classes\\]"):
        vk.interpret.occlusion(model, np.zeros((1, 8, 8, 3)), target=ClassScore(0))


def test_deep_dream_tiles_keep_size_and_raise_the_activation(trained_digits):
    model, data = trained_digits
    image = np.asarray(next(iter(data.val))[0][0])
    large = np.repeat(np.repeat(image, 3, axis=0), 3, axis=1)  # 48x48, tiles of 20
    dream = vk.interpret.deep_dream(model, large, layers=["relu2"], octaves=2, steps=12,
                                    step_size=4.0, tile_size=20)
    assert dream.shape == large.shape and dream.dtype == np.uint8
    extractor = vk.interpret.feature_model(model, ["relu2"], include_output=False,
                                           input_shape=(None, None, 3))
    before = float(np.mean(extractor(large[None].astype("float32"))))
    after = float(np.mean(extractor(dream[None].astype("float32"))))
    assert after > 1.3 * before


def test_deep_dream_on_nested_backbone(nested_model):
    dream = vk.interpret.deep_dream(nested_model, np.full((30, 40, 3), 120.0),
                                    layers=["inner_conv2"], octaves=1, steps=3)
    assert dream.shape == (30, 40, 3) and len(np.unique(dream)) > 1


def test_tsne_of_trained_digits_features_is_trustworthy(trained_digits):
    model, data = trained_digits
    result = vk.interpret.embed(model, data.val, max_points=360)
    assert result.points.shape == (len(result.labels), 2) and result.layer == "avg_pool"
    assert result.trustworthiness >= 0.9
    assert (result.labels >= 0).all() and len(np.unique(result.labels)) == 10
    path = vk.plot.embedding_scatter(result.points, result.labels, result.images,
                                     thumbnails=10, path=None)
    assert len(path.axes[0].artists) == 10


@pytest.mark.parametrize("method", ["occlusion", "grad_cam", "saliency", "integrated_gradients",
                                    "filters", "deep_dream"])
def test_loops_compile_with_xla(tiny_model, tiny_images, method):
    """jit_compile=True builds an XLA cluster (it raises if an op cannot compile)."""
    interpret = vk.interpret
    calls = {
        "occlusion": lambda jit: interpret.occlusion(tiny_model, tiny_images[:1], target=0,
                                                     patch_size=8, stride=8, jit_compile=jit),
        "grad_cam": lambda jit: interpret.grad_cam(tiny_model, tiny_images, jit_compile=jit),
        "saliency": lambda jit: interpret.saliency(tiny_model, tiny_images, smooth_samples=2,
                                                   jit_compile=jit),
        "integrated_gradients": lambda jit: interpret.integrated_gradients(
            tiny_model, tiny_images, steps=4, jit_compile=jit),
        "filters": lambda jit: interpret.filters(tiny_model, "relu2", range(2), steps=3,
                                                 jitter=0, jit_compile=jit).astype(float),
        "deep_dream": lambda jit: interpret.deep_dream(tiny_model, tiny_images[0], ["conv2"],
                                                       octaves=1, steps=2, tile_size=16,
                                                       jit_compile=jit).astype(float),
    }
    compiled, plain = calls[method](True), calls[method](False)
    np.testing.assert_allclose(compiled, plain, rtol=1e-3, atol=2.0 if method in (
        "filters", "deep_dream") else 1e-4)


def test_a_unet_is_explained_through_the_segmentation_task():
    """The target comes from the task registry: no task argument, a real U-Net."""
    import keras

    keras.utils.set_random_seed(6)
    model = vk.models.build("unet", (16, 24, 3), 3, depth=1, filters=4)
    images = np.random.default_rng(0).uniform(0, 255, (2, 16, 24, 3)).astype("float32")
    target = vk.interpret.resolve_target(model, 2)
    assert isinstance(target, SegmentationScore)
    heat = vk.interpret.occlusion(model, images, target=2, patch_size=8, stride=8)
    outputs = model(images)
    state = target.prepare(outputs)
    copy = images.copy()
    copy[:, 8:16, 0:8] = images.mean(axis=(1, 2))[:, None, None]
    expected = target.score(outputs, state).numpy() - target.score(model(copy), state).numpy()
    np.testing.assert_allclose(heat[:, 12, 3], expected, atol=1e-6)
    assert vk.interpret.grad_cam(model, images, target=2).shape == (2, 16, 24)
