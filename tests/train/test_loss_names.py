"""Losses given to fit by name: visionkit's names build its losses, Keras names that
would read the ignore value 255 as a class are refused for segmentation."""

import keras
import numpy as np
import pytest

from visionkit.train.loss_names import resolve_loss
from visionkit.train.losses import CrossEntropyDice, DiceLoss, FocalLoss, SegmentationCrossEntropy
from visionkit.vocabulary import get_task

SEGMENTATION = get_task("segmentation")


def _model(activation):
    inputs = keras.Input((4, 4, 3))
    return keras.Model(inputs, keras.layers.Conv2D(3, 1, activation=activation)(inputs))


LOGITS, SOFTMAX = _model(None), _model("softmax")


@pytest.mark.parametrize(("name", "cls"), [
    ("cross_entropy_dice", CrossEntropyDice), ("segmentation_cross_entropy",
                                              SegmentationCrossEntropy),
    ("dice_loss", DiceLoss), ("focal_loss", FocalLoss), ("CrossEntropyDice", CrossEntropyDice),
    ("visionkit>SegmentationCrossEntropy", SegmentationCrossEntropy)])
def test_visionkit_loss_names_build_its_losses_for_the_models_ending(name, cls):
    for model, from_logits in ((LOGITS, True), (SOFTMAX, False)):
        loss = resolve_loss(name, SEGMENTATION, model)
        assert type(loss) is cls and loss.from_logits is from_logits


def test_the_named_loss_leaves_out_the_ignored_pixels():
    # The loss built from the name equals the mean over the pixels that are not 255,
    # computed by hand from the logits.
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(1, 2, 2, 3)).astype("float32")
    masks = np.array([[[0, 2], [255, 1]]])
    loss = resolve_loss("segmentation_cross_entropy", SEGMENTATION, LOGITS)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.mean([log_p[0, 0, 0, 0], log_p[0, 0, 1, 2], log_p[0, 1, 1, 1]])
    np.testing.assert_allclose(float(loss(masks, logits)), expected, rtol=1e-5)


@pytest.mark.parametrize("name", ["sparse_categorical_crossentropy", "dice",
                                  "categorical_crossentropy"])
def test_keras_names_that_read_255_as_a_class_are_refused_for_segmentation(name):
    with pytest.raises(ValueError, match=rf"loss='{name}' is Keras's, which does not leave "
                                         r"out the ignore value 255.*'cross_entropy_dice'"):
        resolve_loss(name, SEGMENTATION, SOFTMAX)


def test_other_names_and_objects_go_to_keras_unchanged():
    classification = get_task("classification")
    assert resolve_loss("sparse_categorical_crossentropy", classification, SOFTMAX) == \
        "sparse_categorical_crossentropy"
    own = keras.losses.SparseCategoricalCrossentropy(ignore_class=255)
    assert resolve_loss(own, SEGMENTATION, SOFTMAX) is own
    assert resolve_loss(None, SEGMENTATION, SOFTMAX) is None
    assert resolve_loss("no_such_loss", SEGMENTATION, SOFTMAX) == "no_such_loss"
