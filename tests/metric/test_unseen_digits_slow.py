"""Metric learning on classes never seen: train on digits 0-6, retrieve and verify 7-9.

One training run (module fixture) serves both tests: a siamese ResNet-18 a quarter wide,
64 dimensions, semi-hard triplet loss (margin 0.2), P x K = 7 x 8, translation/rotation/
zoom augmentation, Adam 1e-3 with cosine decay, 3 epochs. Measured on 2 shared cores
(load about 14, 152 s): recall@1 0.929, recall@5 0.985, verification AUC 0.674 on the
533 images of 7-9.

Other runs (evaluated every few epochs): without augmentation recall@1 reached 0.848
(batch-hard, 15 epochs; AUC 0.72) and 0.865 (contrastive, margin 1, 5 epochs; AUC 0.69);
with augmentation, batch-hard gave 0.946 after 5 epochs and 0.906 after 20 (AUC
0.72 -> 0.69; 0.889 and AUC 0.70 in a 6-epoch run), semi-hard 0.961 after 2 epochs and
0.882 after 10 (AUC 0.74 -> 0.59). The figures on the unseen classes were best after 2-5
epochs and fell as the seen classes were fitted better.

The AUC computation is not the cause: it equals scikit-learn's roc_auc_score over every
distinct pair (test_retrieval_metrics.py, on the model's own outputs too), and the
pairwise-class AUCs agree (7/8 0.66, 7/9 0.75, 8/9 0.62 in the semi-hard run: within-class
mean distances 0.41-0.50, between 0.50-0.55). Nor is batch norm: with batch statistics
instead of the moving ones, 0.704; the pooled features before the projection, 0.697.
The representation is what falls short, and no learned metric tried reaches 0.95 on
classes it never saw: the same network untrained scores recall@1 0.953, AUC 0.727;
contrastive loss (margin 0.5) with the augmentation peaks at AUC 0.756 (epoch 3) and
ends at 0.726 after 8 epochs (recall@1 0.893); on the raw 8x8 pixels of 7-9, scikit-
learn gives 0.823 as they are, 0.815 after a PCA fit on 0-6 (20 components), 0.757
after LDA fit on 0-6, 0.788 after NCA fit on 0-6, and 0.994 only for an LDA fit on 7-9
themselves (the classes to be verified). Recall@1 >= 0.9 is met by the untrained network
and by raw pixels (0.991) as well: it does not show that training on 0-6 helped.
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
EPOCHS = 3
MINING = "semi_hard"


def _digits(classes):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    keep = np.isin(bunch.target, classes)
    return (bunch.images[keep] * (255.0 / 16.0)).astype("float32"), bunch.target[keep]


@pytest.fixture(scope="module")
def unseen_metrics():
    keras.utils.set_random_seed(0)
    images, labels = _digits(SEEN)
    augment = [keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=0),
               keras.layers.RandomRotation(0.05, fill_mode="constant", seed=0),
               keras.layers.RandomZoom(0.1, fill_mode="constant", seed=0)]
    seen = vk.data.from_arrays(images, labels, class_names=NAMES, image_size=(32, 32),
                               validation_split=0.15, seed=0, augment=augment)
    balanced = vk.data.class_balanced(seen, classes_per_batch=7, images_per_class=8)
    unseen_images, unseen_labels = _digits(UNSEEN)
    unseen = vk.data.from_arrays(unseen_images, unseen_labels, class_names=NAMES,
                                 image_size=(32, 32), val_images=unseen_images,
                                 val_labels=unseen_labels, seed=0)
    model = vk.models.build("siamese", input_shape=(32, 32, 3), backbone="resnet18",
                            embedding_dim=64, backbone_options={"width_multiplier": 0.25})
    untrained = vk.train.evaluate(model, unseen.val, task="embedding")
    run = vk.train.fit(model, balanced, epochs=EPOCHS,
                       loss=TripletLoss(margin=0.2, mining=MINING), learning_rate=1e-3,
                       verbose=0, seed=0)
    metrics = vk.train.evaluate(run.model, unseen.val, task="embedding")
    print("unseen 7-9:", metrics, "untrained:", untrained)
    assert metrics["num_examples"] == len(unseen_labels) and metrics["num_classes"] == 3
    # The task's figures agree with the metric functions on the model's embeddings.
    batches = list(unseen.val)
    embeddings = run.model.predict(np.concatenate([x for x, _ in batches]), verbose=0)
    val_labels = np.concatenate([y for _, y in batches])
    assert metrics["recall_at_1"] == pytest.approx(recall_at_k(embeddings, val_labels, 1))
    assert metrics["verification_auc"] == pytest.approx(
        verification_auc(embeddings, val_labels))
    return metrics


@pytest.mark.slow
def test_recall_at_1_on_unseen_digits(unseen_metrics):
    assert unseen_metrics["recall_at_1"] >= 0.9


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=(
    "not met: verification AUC on 7-9 measured 0.674 in this configuration (untrained "
    "network 0.727); at best 0.74 (semi-hard, 2 epochs), 0.72 (batch-hard), 0.756 "
    "(contrastive, margin 0.5, 3 epochs), falling with further training; raw 8x8 pixels "
    "0.82, linear metrics fit on 0-6 (LDA 0.76, NCA 0.79) lower still (module docstring)"))
def test_verification_auc_on_unseen_digits(unseen_metrics):
    assert unseen_metrics["verification_auc"] >= 0.95
