"""Metric learning generalises to classes it never saw: train on digits 0-6, retrieve 7-9.

Measured (2 shared cores, under nice): see the module's assertions and the issue report.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import visionkit as vk
from visionkit.train.metric_losses import TripletLoss
from visionkit.train.retrieval_metrics import recall_at_k, verification_auc

SEEN = list(range(7))
UNSEEN = [7, 8, 9]
NAMES = [str(digit) for digit in range(10)]


def _digits(classes):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    keep = np.isin(bunch.target, classes)
    return (bunch.images[keep] * (255.0 / 16.0)).astype("float32"), bunch.target[keep]


@pytest.mark.slow
def test_trained_on_0_to_6_retrieves_unseen_7_to_9():
    keras.utils.set_random_seed(0)
    images, labels = _digits(SEEN)
    seen = vk.data.from_arrays(images, labels, class_names=NAMES, image_size=(32, 32),
                               validation_split=0.15, seed=0)
    balanced = vk.data.class_balanced(seen, classes_per_batch=7, images_per_class=8)
    unseen_images, unseen_labels = _digits(UNSEEN)
    unseen = vk.data.from_arrays(unseen_images, unseen_labels, class_names=NAMES,
                                 image_size=(32, 32), val_images=unseen_images,
                                 val_labels=unseen_labels, seed=0)
    model = vk.models.build("siamese", input_shape=(32, 32, 3), backbone="resnet18",
                            embedding_dim=32, backbone_options={"width_multiplier": 0.25})
    run = vk.train.fit(model, balanced, epochs=15, loss=TripletLoss(margin=0.2),
                       verbose=0, seed=0)
    metrics = vk.train.evaluate(run.model, unseen.val, task="embedding")
    print("unseen 7-9:", metrics)
    assert metrics["num_examples"] == len(unseen_labels) and metrics["num_classes"] == 3
    # The task's figures agree with the metric functions on the model's embeddings.
    batches = list(unseen.val)
    embeddings = run.model.predict(np.concatenate([x for x, _ in batches]), verbose=0)
    val_labels = np.concatenate([y for _, y in batches])
    assert metrics["recall_at_1"] == pytest.approx(recall_at_k(embeddings, val_labels, 1))
    assert metrics["verification_auc"] == pytest.approx(
        verification_auc(embeddings, val_labels))
    assert metrics["recall_at_1"] >= 0.9
    assert metrics["verification_auc"] >= 0.95
