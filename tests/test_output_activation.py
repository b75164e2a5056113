"""The activation that produces a model's output, however the model spells its ending.

A model that ends in probabilities must not get a second softmax from the loss or the
served outputs: `keras.layers.Softmax`, `keras.ops.softmax`, a float32
`Activation("linear")` after a softmax (mixed precision) and a nested model all end in
probabilities.
"""

import keras
import numpy as np
import pytest

from visionkit.tasks import get_task
from visionkit.train.checks import final_activation
from visionkit.vocabulary import ends_in_probabilities, output_activation

_SIZE = (4, 4, 3)


def _endings():
    inputs = keras.Input(_SIZE)
    scores = keras.layers.Conv2D(3, 1, name="scores")(inputs)
    softmax_conv = keras.layers.Conv2D(3, 1, activation="softmax")(inputs)
    inner = keras.Model(inputs, softmax_conv)
    return {
        "softmax layer": (keras.Model(inputs, keras.layers.Softmax()(scores)), "softmax"),
        "ops.softmax": (keras.Model(inputs, keras.ops.softmax(scores)), "softmax"),
        "ops.sigmoid": (keras.Model(inputs, keras.ops.sigmoid(scores)), "sigmoid"),
        "activation layer": (keras.Model(inputs, keras.layers.Activation("softmax")(scores)),
                             "softmax"),
        "float32 linear after softmax": (keras.Model(inputs, keras.layers.Activation(
            "linear", dtype="float32")(softmax_conv)), "softmax"),
        "reshape after softmax": (keras.Model(inputs, keras.layers.Reshape((16, 3))(
            softmax_conv)), "softmax"),
        "nested model": (keras.Sequential([keras.Input(_SIZE), inner]), "softmax"),
        "logits": (keras.Model(inputs, scores), "linear"),
        "float32 linear after logits": (keras.Model(inputs, keras.layers.Activation(
            "linear", dtype="float32")(scores)), "linear"),
    }


ENDINGS = _endings()


@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_the_output_activation_is_found_through_the_models_ending(ending):
    model, expected = ENDINGS[ending]
    assert output_activation(model) == expected
    assert final_activation(model) == expected
    assert ends_in_probabilities(model) == (expected in ("softmax", "sigmoid"))


def _naive_cross_entropy_dice(masks, probabilities, smooth=1.0):
    """Cross-entropy over pixels plus 1 - mean soft Dice over classes, in loops."""
    flat_p = probabilities.reshape(-1, probabilities.shape[-1]).astype(np.float64)
    flat_t = masks.reshape(-1)
    cross_entropy = np.mean([-np.log(flat_p[i, t]) for i, t in enumerate(flat_t)])
    dices = []
    for c in range(flat_p.shape[1]):
        truth = (flat_t == c).astype(np.float64)
        dices.append((2 * np.sum(truth * flat_p[:, c]) + smooth)
                     / (truth.sum() + flat_p[:, c].sum() + smooth))
    return cross_entropy + 1.0 - np.mean(dices)


def test_segmentation_loss_takes_a_softmax_layers_output_as_probabilities():
    model, _ = ENDINGS["softmax layer"]
    rng = np.random.default_rng(0)
    images = rng.normal(size=(2, *_SIZE)).astype("float32")
    masks = rng.integers(0, 3, (2, 4, 4)).astype("int32")
    probabilities = keras.ops.convert_to_numpy(model(images))
    loss = get_task("segmentation").loss(model)
    assert loss.from_logits is False
    np.testing.assert_allclose(float(loss(masks, probabilities)),
                               _naive_cross_entropy_dice(masks, probabilities), rtol=1e-5)


class _UserSoftmax(keras.layers.Layer):
    """A layer class of the user's whose call is a softmax no attribute shows."""

    def call(self, x):
        return keras.ops.softmax(x * 2.0)


def _opaque_classifier(ending):
    keras.utils.set_random_seed(1)
    inputs = keras.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255.0)(inputs))
    return keras.Model(inputs, ending(keras.layers.Dense(3)(pooled)))


OPAQUE = {
    "lambda softmax": (lambda: keras.layers.Lambda(lambda t: keras.ops.softmax(t)),
                       "softmax", r"gives probabilities summing to 1"),
    "user layer softmax": (_UserSoftmax, "softmax", r"gives probabilities summing to 1"),
    "lambda sigmoid": (lambda: keras.layers.Lambda(lambda t: keras.ops.sigmoid(t)),
                       "linear", r"values all lie in 0\.\.1"),
}


@pytest.mark.parametrize("ending", sorted(OPAQUE))
def test_an_output_layer_hiding_its_activation_is_probed_and_said_once(ending):
    build, expected, said = OPAQUE[ending]
    model = _opaque_classifier(build())
    with pytest.warns(UserWarning, match=said) as caught:
        assert output_activation(model) == expected
        assert ends_in_probabilities(model) == (expected == "softmax")
    assert len([w for w in caught if "cannot see" in str(w.message)]) == 1


def test_served_outputs_of_a_lambda_softmax_are_its_probabilities_not_a_second_softmax():
    # The export's signature asks while tracing: the probe runs eagerly all the same.
    import tensorflow as tf

    model = _opaque_classifier(keras.layers.Lambda(lambda t: keras.ops.softmax(5.0 * t)))
    images = np.random.default_rng(0).uniform(0, 255, (4, 8, 8, 3)).astype("float32")
    task = get_task("classification")

    @tf.function
    def serve(batch):
        return task.serving_outputs(model(batch), tf.zeros((4, 2), tf.int32), model)

    with pytest.warns(UserWarning, match="cannot see"):
        served = serve(tf.constant(images))
    np.testing.assert_allclose(served["probabilities"].numpy(),
                               keras.ops.convert_to_numpy(model(images)), rtol=1e-6)
    assert task.loss(model).get_config()["from_logits"] is False


def test_a_linear_lambda_stays_logits_without_a_word():
    import warnings

    model = _opaque_classifier(keras.layers.Lambda(lambda t: 50.0 * t - 7.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert output_activation(model) == "linear"
