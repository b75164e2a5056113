"""Losses given to fit by name: visionkit's names build its losses, Keras names that
would read the ignore value 255 as a class are refused for segmentation."""

import keras
import numpy as np
import pytest

from visionkit.train.loss_names import resolve_loss, resolve_metrics
from visionkit.train.losses import CrossEntropyDice, DiceLoss, FocalLoss, SegmentationCrossEntropy
from visionkit.train.segmentation_metrics import DiceCoefficient, PixelAccuracy, SegmentationMeanIoU
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


def test_visionkit_metric_names_build_its_metrics_and_keras_accuracy_is_refused():
    metrics = resolve_metrics(["mean_iou", "pixel_accuracy", "dice", "auc"], SEGMENTATION,
                              SOFTMAX, 3)
    assert [type(m) for m in metrics[:3]] == [SegmentationMeanIoU, PixelAccuracy,
                                              DiceCoefficient]
    assert metrics[0].num_classes == 3 and metrics[3] == "auc"
    # Keras's accuracy counts the ignored pixel as wrong: 2 of 4 instead of 2 of 3.
    masks = np.array([[[0, 1], [2, 255]]])
    scores = np.eye(3, dtype="float32")[np.array([[[0, 1], [0, 0]]])]
    metrics[1].update_state(masks, scores)
    assert float(metrics[1].result()) == pytest.approx(2 / 3)
    keras_accuracy = keras.metrics.SparseCategoricalAccuracy()
    keras_accuracy.update_state(masks, scores)
    assert float(keras_accuracy.result()) == pytest.approx(2 / 4)
    with pytest.raises(ValueError, match=r"metrics=\['accuracy'\] is Keras's, which counts "
                                         r"the pixels marked 255"):
        resolve_metrics(["accuracy"], SEGMENTATION, SOFTMAX, 3)
    assert resolve_metrics(["accuracy"], get_task("classification"), SOFTMAX, 3) == \
        ["accuracy"]
    assert resolve_metrics(None, SEGMENTATION, SOFTMAX, 3) is None
