"""Faithfulness and sanity metrics against naive per-image loops, SciPy and hand values."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.linalg
import tensorflow as tf
from scipy.ndimage import gaussian_filter
from scipy.stats import spearmanr

import visionkit as vk
from visionkit.interpret import metrics
from visionkit.interpret.imputation import impute, noisy_linear_imputation


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(5).uniform(0, 255, (3, 24, 32, 3)).astype("float32")


@pytest.fixture(scope="module")
def maps():
    # Ties on purpose (rounded values): the order among ties is row-major.
    return np.round(np.random.default_rng(6).uniform(0, 4, (3, 24, 32))).astype("float32")


def naive_curve(model, images, maps, target, fractions, fills, reveal=False, least=False):
    """One forward pass per image and level, the order written with NumPy."""
    scores = np.zeros((len(images), len(fractions)))
    for b, (image, heat) in enumerate(zip(images, maps)):
        flat = heat.reshape(-1)
        order = np.argsort(flat if least else -flat, kind="stable")
        for level, fraction in enumerate(fractions):
            chosen = np.zeros(flat.size, bool)
            chosen[order[:int(np.round(fraction * flat.size))]] = True
            hidden = (~chosen if reveal else chosen).reshape(heat.shape)
            copy = np.where(hidden[..., None], fills[b], image)
            scores[b, level] = float(model(copy[None], training=False)[0, target[b]])
    return scores


def test_deletion_and_insertion_equal_a_naive_loop(tiny_model, images, maps):
    images, maps, target = images[:2], maps[:2], [0, 2]
    fractions = np.linspace(0, 1, 5)
    curve = metrics.deletion(tiny_model, images, maps, target=target, steps=4,
                             fill="constant", value=17.0, batch_size=7)
    expected = naive_curve(tiny_model, images, maps, target, fractions,
                           np.full_like(images, 17.0))
    np.testing.assert_allclose(curve.scores, expected, atol=1e-5)
    np.testing.assert_allclose(curve.auc, np.trapezoid(expected, fractions, axis=1),
                               atol=1e-5)
    assert curve.fill == "constant 17" and curve.order == "deletion"
    blurred = gaussian_filter(images, sigma=(0, 2, 2, 0), mode="reflect", truncate=2.0)
    curve = metrics.insertion(tiny_model, images, maps, target=target, steps=4, sigma=2.0)
    expected = naive_curve(tiny_model, images, maps, target, fractions, blurred,
                           reveal=True)
    np.testing.assert_allclose(curve.scores, expected, atol=1e-5)
    assert curve.fill == "blur (Gaussian, sigma 2 px)"


def laplace_imputation(image, hidden):
    """The ROAD system solved directly with SciPy (weights 1/6 direct, 1/12 diagonal)."""
    height, width = hidden.shape
    index = -np.ones(hidden.shape, int)
    unknown = np.argwhere(hidden)
    index[hidden] = np.arange(len(unknown))
    matrix = scipy.sparse.lil_matrix((len(unknown), len(unknown)))
    rhs = np.zeros((len(unknown), image.shape[-1]))
    for n, (i, j) in enumerate(unknown):
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                y, x = i + di, j + dj
                if (di or dj) and 0 <= y < height and 0 <= x < width:
                    weight = 1 / 12 if di and dj else 1 / 6
                    matrix[n, n] += weight
                    if hidden[y, x]:
                        matrix[n, index[y, x]] -= weight
                    else:
                        rhs[n] += weight * image[y, x]
    result = image.astype(np.float64).copy()
    result[hidden] = scipy.sparse.linalg.spsolve(matrix.tocsr(), rhs)
    return result


def test_noisy_linear_imputation_solves_the_road_system(images):
    hidden = np.random.default_rng(0).uniform(size=(2, 24, 32)) < 0.8
    hidden[1, 4:20, 6:26] = True  # a large hole as well
    filled = noisy_linear_imputation(images[:2], hidden, noise=0.0)
    for k in range(2):
        # Conjugate gradients stop at residuals below 1e-3 pixel levels.
        np.testing.assert_allclose(filled[k], laplace_imputation(images[k], hidden[k]),
                                   atol=0.05)
    noisy = noisy_linear_imputation(images[:2], hidden, noise=0.01, seed=1)
    difference = (noisy - filled)[np.broadcast_to(hidden[..., None], noisy.shape)]
    assert abs(difference.std() - 2.55) < 0.1
    np.testing.assert_array_equal(noisy[~hidden], images[:2][~hidden])


def test_imputation_traced_for_any_image_size_matches_the_sparse_solve(images):
    # A function traced once for every size (as tf.function's reduce_retracing does
    # after calls with several sizes) sees no static height or width.
    any_size = tf.function(impute, input_signature=[
        tf.TensorSpec([None, None, None, 3]), tf.TensorSpec([None, None, None]),
        tf.TensorSpec([]), tf.TensorSpec([2], tf.int32)])
    hidden = np.random.default_rng(1).uniform(size=(1, 24, 32)) < 0.5
    for height, width in ((24, 32), (9, 13)):
        part = hidden[:, :height, :width]
        filled = any_size(images[:1, :height, :width].astype(np.float32),
                          part.astype(np.float32), 0.0, tf.constant([0, 0])).numpy()
        np.testing.assert_allclose(
            filled[0], laplace_imputation(images[0, :height, :width], part[0]), atol=0.05)


def test_road_morf_and_lerf_score_imputed_copies(tiny_model, images, maps):
    images, maps, target = images[:2], maps[:2], [2, 0]
    percentages = (0.25, 0.75)
    for order in ("morf", "lerf"):
        curve = metrics.road(tiny_model, images, maps, target=target, order=order,
                             percentages=percentages, noise=0.0)
        for b in range(2):
            flat = maps[b].reshape(-1)
            ranking = np.argsort(flat if order == "lerf" else -flat, kind="stable")
            for level, fraction in enumerate(percentages):
                hidden = np.zeros(flat.size, bool)
                hidden[ranking[:int(round(fraction * flat.size))]] = True
                copy = noisy_linear_imputation(images[b:b + 1], hidden.reshape(24, 32), 0.0)
                expected = float(tiny_model(copy, training=False)[0, target[b]])
                assert abs(curve.scores[b, level] - expected) < 1e-4
        np.testing.assert_allclose(curve.auc, curve.scores.mean(axis=1))
        assert curve.order == order and curve.fill.startswith("road")


def test_segmenter_curve_uses_the_segmentation_target(images):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((24, 32, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    segmenter = keras.Model(inputs, keras.layers.Conv2D(3, 1, activation="softmax")(x))
    maps = metrics.random_map(images)
    curve = metrics.deletion(segmenter, images, maps, target=1, steps=2, fill="constant")
    target = vk.interpret.resolve_target(segmenter, 1)
    outputs = segmenter(images)
    state = target.prepare(outputs)
    np.testing.assert_allclose(curve.scores[:, 0], target.score(outputs, state), atol=1e-6)
    black = segmenter(np.zeros_like(images))
    np.testing.assert_allclose(curve.scores[:, -1], target.score(black, state), atol=1e-6)


def test_sparseness_is_the_gini_index():
    maps = np.random.default_rng(0).normal(size=(4, 5, 6))
    values = np.sort(np.abs(maps.reshape(4, -1)), axis=1)
    n = values.shape[1]
    expected = ((2 * np.arange(1, n + 1) - n - 1) * values).sum(1) / (n * values.sum(1))
    np.testing.assert_allclose(metrics.sparseness(maps), expected, rtol=1e-6)
    one_hot = np.zeros((1, 4, 5))
    one_hot[0, 2, 3] = 7
    np.testing.assert_allclose(metrics.sparseness(one_hot), [1 - 1 / 20])
    np.testing.assert_allclose(metrics.sparseness(np.ones((1, 3, 3))), [0.0], atol=1e-12)
    np.testing.assert_allclose(metrics.sparseness(np.zeros((1, 3, 3))), [0.0])


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    first = np.round(rng.normal(size=(5, 6, 7)), 1)
    second = np.round(first + rng.normal(size=first.shape), 0)  # many ties
    second[0] = np.maximum(second[0], 0)
    expected = [spearmanr(a.ravel(), b.ravel()).statistic for a, b in zip(first, second)]
    np.testing.assert_allclose(metrics.spearman(first, second), expected, atol=1e-10)


def test_randomization_test_restores_weights_and_tells_edges_from_cams(tiny_model,
                                                                       tiny_images):
    before = [np.array(v) for v in tiny_model.weights]
    cams = metrics.randomization_test(tiny_model, tiny_images, "grad_cam", layer="relu2")
    edges = metrics.randomization_test(
        tiny_model, tiny_images, lambda model, images, target=None: metrics.edge_map(images))
    for variable, value in zip(tiny_model.weights, before):
        np.testing.assert_array_equal(np.array(variable), value)
    assert cams.layers == ["predictions", "bn2", "conv2", "bn1", "conv1"]
    assert cams.correlations.shape == (5, 3) and cams.maps.shape == (6, 3, 24, 32)
    np.testing.assert_allclose(edges.correlations, 1.0)
    assert cams.mean[-1] < 0.9
    expected = [spearmanr(a.ravel(), b.ravel()).statistic
                for a, b in zip(cams.maps[0], cams.maps[2])]
    np.testing.assert_allclose(cams.correlations[1], np.nan_to_num(expected), atol=1e-10)
    # The map of the trained model is the one grad_cam gives now (weights restored).
    np.testing.assert_allclose(cams.maps[0], vk.interpret.grad_cam(
        tiny_model, tiny_images, target=cams_target(tiny_model, tiny_images), layer="relu2"),
        atol=1e-6)


def cams_target(model, images):
    return np.asarray(model(images)).argmax(axis=1)


def test_bad_arguments_are_named(tiny_model, tiny_images):
    good = metrics.random_map(tiny_images)
    for call, argument in [
        (lambda: metrics.deletion(tiny_model, tiny_images, good[:, :5]), "maps"),
        (lambda: metrics.deletion(tiny_model, tiny_images, good, fill="grey"), "fill"),
        (lambda: metrics.insertion(tiny_model, tiny_images, good, sigma=0), "sigma"),
        (lambda: metrics.deletion(tiny_model, tiny_images, good, steps=0), "steps"),
        (lambda: metrics.road(tiny_model, tiny_images, good, order="most"), "order"),
        (lambda: metrics.road(tiny_model, tiny_images, good, percentages=[1.5]),
         "percentages"),
        (lambda: metrics.randomization_test(tiny_model, tiny_images, "no_such"), "method"),
        (lambda: metrics.randomization_test(tiny_model, tiny_images, layers=["relu2"]),
         "layers"),
        (lambda: metrics.spearman(good, good[:2]), "second"),
    ]:
        with pytest.raises(vk.interpret.ArgumentError) as error:
            call()
        assert error.value.argument == argument
    nan_maps = good.copy()
    nan_maps[0, 0, 0] = np.nan
    with pytest.raises(vk.interpret.ArgumentError, match="NaN"):
        metrics.deletion(tiny_model, tiny_images, nan_maps)


def test_xla_compiled_deletion_equals_the_graph_one(tiny_model, tiny_images):
    maps = metrics.random_map(tiny_images)
    graph = metrics.deletion(tiny_model, tiny_images, maps, target=1, steps=3)
    xla = metrics.deletion(tiny_model, tiny_images, maps, target=1, steps=3, jit_compile=True)
    np.testing.assert_allclose(xla.scores, graph.scores, atol=1e-5)
