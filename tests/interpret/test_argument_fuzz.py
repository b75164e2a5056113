"""Fuzzing the interpretation arguments: a result is finite, or an ArgumentError names the
argument; never NaN, never a raw TensorFlow error.

Hypothesis draws each argument from its valid range and from values users pass by
mistake (zero, negatives, fractions, NaN, infinity, strings, bools, wrong image ranks,
dtypes, channels and sizes). Derandomized, so every run tries the same cases.
"""

from __future__ import annotations

import inspect
import os

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import visionkit as vk
from visionkit.interpret.checks import ArgumentError

# Cases per test in the default run; set VISIONKIT_FUZZ_EXAMPLES=200 for a longer search.
EXAMPLES = int(os.environ.get("VISIONKIT_FUZZ_EXAMPLES", "8"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SIDE = 12


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((SIDE, SIDE, 3)), keras.layers.Rescaling(1 / 255),
                             keras.layers.Conv2D(4, 3, padding="same", activation="relu",
                                                 name="conv"),
                             keras.layers.MaxPooling2D(2, name="pool"),
                             keras.layers.Conv2D(4, 3, activation="relu", name="valid_conv"),
                             keras.layers.GlobalAveragePooling2D(name="gap"),
                             keras.layers.Dense(3, activation="softmax", name="head")],
                            name="fuzzed")


BAD = st.sampled_from([0, -1, -7, 0.5, 2.5, float("nan"), float("inf"), -float("inf"),
                       "3", None, True, [2], 10**9 + 0.5])


def ints(low, high):
    return st.one_of(st.integers(low, high), BAD)


def floats(low, high):
    return st.one_of(st.floats(low, high, allow_nan=False), BAD)


@st.composite
def images(draw, single=False):
    good = draw(st.booleans())
    dtype = draw(st.sampled_from(["float32", "uint8", "float64", "int32", "bool"] +
                                 ([] if good else ["complex64", "str"])))
    if good:
        shape = (SIDE, SIDE, 3) if single else (draw(st.integers(1, 2)), SIDE, SIDE, 3)
    else:
        rank = draw(st.integers(1, 5))
        shape = tuple(draw(st.lists(st.integers(0, 14), min_size=rank, max_size=rank)))
    values = np.random.default_rng(len(shape)).uniform(0, 255, shape)
    if not good and dtype.startswith("float") and values.size and draw(st.booleans()):
        values.flat[0] = draw(st.sampled_from([np.nan, np.inf]))
    return values.astype(dtype)


TARGETS = st.one_of(st.none(), st.integers(-2, 4), st.lists(st.integers(-1, 3), max_size=3),
                    st.sampled_from([1.5, "cat", [0.0, 1.0], True]))
LAYERS = st.sampled_from(["conv", "pool", "valid_conv", "gap", "head", "missing", 3, None])


def check(function, *args, **kwargs):
    """Runs the call: any result is finite, any error an ArgumentError naming one of the
    function's arguments."""
    names = set(inspect.signature(function).parameters)
    try:
        result = function(*args, **kwargs)
    except ArgumentError as error:
        assert error.argument in names, (error.argument, str(error))
        assert error.argument in str(error) or "layer" in str(error)
        return
    values = result.values() if isinstance(result, dict) else [result]
    for value in values:
        array = np.asarray(getattr(value, "features", value))
        if array.dtype.kind == "f":
            assert np.isfinite(array).all()


@FUZZ
@given(images=images(), target=TARGETS, patch_size=ints(1, 14), stride=ints(1, 14),
       baseline=st.one_of(st.sampled_from(["mean", "black", [1.0, 2.0, 3.0], [1.0, 2.0]]),
                          floats(0, 255)),
       batch_size=ints(1, 64))
def test_occlusion_arguments(model, images, target, patch_size, stride, baseline, batch_size):
    check(vk.interpret.occlusion, model, images, target=target, patch_size=patch_size,
          stride=stride, baseline=baseline, batch_size=batch_size, verbose=0)


@FUZZ
@given(images=images(), target=TARGETS, layer=LAYERS, smooth=ints(0, 3), noise=floats(0, 1),
       steps=ints(1, 6), baseline=st.one_of(floats(0, 255), st.just(np.zeros((5, 5)))),
       epsilon=floats(0, 300), output=st.sampled_from([None, None, 0, 1, "head", "x"]))
def test_gradient_method_arguments(model, images, target, layer, smooth, noise, steps,
                                   baseline, epsilon, output):
    check(vk.interpret.grad_cam, model, images, target=target, layer=layer, output=output)
    check(vk.interpret.saliency, model, images, target=target, smooth_samples=smooth,
          noise=noise, output=output)
    check(vk.interpret.integrated_gradients, model, images, target=target, steps=steps,
          baseline=baseline)
    check(vk.interpret.fgsm, model, images, target=target, epsilon=epsilon)


@FUZZ
@given(images=images(), layer=LAYERS, layers=st.sampled_from([None, [], ["conv"], "pool",
                                                              ["conv", "nope"], [3]]),
       filters=st.one_of(st.none(), st.lists(st.integers(-1, 5), max_size=3), BAD),
       steps=ints(1, 3), step_size=floats(0, 10), jitter=ints(0, 3), blur_every=ints(0, 2),
       decay=floats(0, 1), octaves=ints(1, 3), octave_scale=floats(0.5, 3),
       k=ints(1, 4), batch_size=ints(1, 4))
def test_layer_method_arguments(model, images, layer, layers, filters, steps, step_size,
                                jitter, blur_every, decay, octaves, octave_scale, k,
                                batch_size):
    check(vk.interpret.activations, model, images, layers=layers, batch_size=batch_size)
    check(vk.interpret.filters, model, layer, filters=filters, steps=steps,
          step_size=step_size, jitter=jitter, blur_every=blur_every, decay=decay,
          octaves=octaves, octave_scale=octave_scale, verbose=0)
    check(vk.interpret.top_activating, model, images, layer, 1 if k == 2 else k, k=k,
          batch_size=batch_size)


@FUZZ
@given(image=st.one_of(images(single=True),
                       st.integers(1, 40).map(lambda s: np.full((s, s + 3, 3), 90.0))),
       layers=st.sampled_from([None, "conv", ["valid_conv"], ["gap"], ["nope"]]),
       octaves=ints(1, 4), octave_scale=floats(0.5, 4), steps=ints(1, 2),
       step_size=floats(0, 4), tile_size=ints(1, 40), jitter=st.one_of(st.none(), ints(0, 4)))
def test_deep_dream_arguments(model, image, layers, octaves, octave_scale, steps, step_size,
                              tile_size, jitter):
    check(vk.interpret.deep_dream, model, image, layers=layers, octaves=octaves,
          octave_scale=octave_scale, steps=steps, step_size=step_size, tile_size=tile_size,
          jitter=jitter, verbose=0)


@FUZZ
@given(count=st.integers(0, 8), layer=LAYERS, method=st.sampled_from(["pca", "tsne", "umap"]),
       pca_dims=ints(1, 60), perplexity=floats(0, 50), n_iter=ints(1, 5),
       max_points=st.one_of(st.none(), ints(1, 10)))
def test_embed_arguments(model, count, layer, method, pca_dims, perplexity, n_iter,
                         max_points):
    data = np.random.default_rng(count).uniform(0, 255, (count, SIDE, SIDE, 3))
    check(vk.interpret.embed, model, data, layer=layer, method=method, pca_dims=pca_dims,
          perplexity=perplexity, n_iter=n_iter, max_points=max_points, verbose=0)
