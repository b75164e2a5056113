"""Metric learning on classes never seen: train on digits 0-6, retrieve and verify 7-9.

The configuration is the recipe's (pipelines/digits_siamese.yaml, read here): a siamese
network on the digits at 16x16 whose backbone is "plain_cnn", four 3x3 ReLU
convolutions (32, 32, 2x2 pool, 64, 64) without batch norm, flattened (4,096 features,
`pooling="flatten"`) and L2-normalised without a projection (`embedding_dim=None`),
batch-hard triplet loss (margin 0.1), P x K = 7 x 8, Adam 1e-3 at a constant rate, 7
epochs keeping the epoch of lowest loss on the held-out 15% of 0-6, no augmentation.
One run per seed (0, 1, 2; the seed draws the split, the weights and the batches).
Measured on 2 shared cores (339 s for the three): verification AUC on the 533 images
of 7-9 0.946, 0.936, 0.916 (mean 0.933, spread 0.030), recall@1 0.996, 0.998, 0.996,
recall@5 1.000, 1.000, 0.998 (the same networks untrained: AUC 0.821, 0.837, 0.836).
The same seed-0 configuration written as a hand-built network gave 0.930 in an earlier
process: runs are not bit-reproducible across processes on this CPU. The former
recipe (ResNet-18 a quarter wide on 32x32, global average pooling, batch norm, a 64-d
projection, semi-hard, margin 0.2, translation/rotation/zoom augmentation, 3 epochs)
gave recall@1 0.929 and AUC 0.674.

The AUC is computed right: it equals scikit-learn's roc_auc_score over every distinct
pair on unit-length embeddings (test_retrieval_metrics.py, on the model's own outputs
too; Euclidean distance on unit vectors orders pairs as cosine similarity does): all
141,778 pairs of the 533 images (179, 174, 180 of 7, 8, 9), 47,092 of one class and
94,686 of two, no sampling. Given the embeddings it has no noise; the training does:
0.916-0.946 over three seeds, and 0.01-0.03 from one epoch to the next within a fit. Raw
8x8 pixels of 7-9 give 0.823 (cosine 0.811; per pair of classes 7/8 0.82, 7/9 0.88,
8/9 0.76), PCA fit on 0-6 0.815, LDA fit on 0-6 0.757, NCA fit on 0-6 0.788, a
within-class whitening of the pixels fit on 0-6 (KISSME-like) 0.70-0.78, and only an
LDA fit on 7-9 themselves (the classes to be verified) 0.994.

What moved the AUC on unseen classes (each a run on digits 0-6, figures on 7-9):
- Where the embedding is taken: with a 64-d projection after the features, the
  projection was the worst layer of the network (3 seeds at 8x8, 2-8 epochs: 0.73-0.84)
  and the convolutions before it the best (0.85-0.89); concatenating 3 seeds'
  embeddings did not help (0.80-0.84). Without the projection, 0.86-0.87 at 8x8 and
  stable over epochs (untrained 0.849), where the projection fell from 0.856 (epoch 3)
  to 0.828 (epoch 4).
- The spatial layout: flattening the last map instead of global average pooling, +0.02
  to +0.05 on the features before the projection (semi-hard: 0.86-0.88 vs 0.81-0.87).
- Batch norm and resolution: the same plain network at 16x16 reached 0.89-0.91 over 4
  epochs (semi-hard; at 32x32 0.88-0.905; a third block of 128, 0.87-0.92; twice as
  wide 0.90-0.92); a batch-norm network at 16x16 0.65-0.74 (ResNet-18 with batch norm
  at 32x32: 0.67-0.74, with batch statistics 0.70).
- Mining and margin, at 16x16 without projection: batch-hard rose to 0.93-0.95 where
  semi-hard stayed at 0.89-0.91 (one-epoch fits in a row, each with its own warmup and
  cosine decay: 0.851, 0.889, 0.905, 0.936, 0.935, 0.935, 0.948, 0.926, 0.933 after
  epochs 1-9). In one 7-epoch fit: cosine schedule 0.909; constant rate 0.923 (10
  epochs, last epoch kept: 0.920); margin 0.5 0.878, 0.2 0.923, 0.1 0.930, 0.05 0.913;
  at margin 0.1, batches of 7 x 16 0.914, translation/rotation/zoom augmentation 0.807.
None reached 0.95 (the best, 0.948, in one epoch of nine), nor did any other loss or
setting tried:
- losses at 8x8 (a plain Keras loop, 10 epochs, figures every 2, 64-d projection): normalised softmax (a cosine classifier,
  scale 16) 0.77-0.82 (scale 4: 0.77-0.80), softmax cross-entropy's features 0.83-0.86,
  multi-similarity (Wang et al. 2019) 0.78-0.82, supervised contrastive (Khosla et al.
  2020; temperature 0.1) 0.74-0.81 (0.5: 0.72-0.76), contrastive (margin 0.5)
  0.80-0.81, batch-hard triplet 0.80-0.87, semi-hard 0.79-0.86 (margin 0.5:
  0.76-0.85); at 16x16 without projection contrastive (margin 0.5) 0.85-0.88,
  semi-hard margin 0.5 0.90-0.91;
- a batch-norm "neck" before the normalisation 0.74-0.83; a wider network (64, 256-d)
  0.76-0.89; learning rate 3e-4 0.80-0.82;
- augmentation: +-1 pixel shifts at 8x8 0.76-0.80; translation/rotation/zoom at 16x16
  0.88-0.92 (the same as without); rotations of 0-6 as 21 extra classes (as Vinyals et
  al. 2016 did on Omniglot) 0.77-0.81, with flips (56 classes, normalised softmax)
  0.69-0.80; a self-supervised (SimCLR) term on two augmented views next to supervised
  contrastive 0.65-0.74, SimCLR alone 0.60-0.65.
With a projection, or with semi-hard mining, the figures on 7-9 peaked after 1-3
epochs and fell: the more the network separated 0-6, the less its distances ordered
the pairs of 7-9 (8 and 9 are the closest
pair, 0.76 on raw pixels). Seven training classes give the embedding few directions to
learn; recall@1 >= 0.9 is met by raw pixels (0.991) and by the untrained network as
well, so it alone does not show that training on 0-6 helped, while the AUC does (0.821-0.837
untrained -> 0.916-0.946).

Measured on top of the recipe's configuration without reaching 0.95 (seed 0 unless
said; figures after each epoch of one fit, on 7-9; "0-6 val" is the held-out 15% of the
training classes, the only split a choice may read):
- the course of one fit (12 epochs): 0.876, 0.919, 0.940, 0.926, 0.938, 0.930, 0.932,
  0.924, 0.904, 0.889, 0.897, 0.915, while everything measured on 0-6 val kept
  improving (AUC 0.956 -> 0.999, loss 0.103 -> 0.010): choosing the epoch by 0-6 val
  (lowest loss or highest AUC) picks late epochs (0.915 of 12, 0.924 of 10), never the
  peak on 7-9, which moves from seed to seed and is not for the test classes to choose;
- weight averaging: Keras's `use_ema=True` (momentum 0.99, evaluated with the averaged
  weights) 0.839 after epoch 1 rising to 0.936 (epoch 8), 0.926 at epoch 12; averaging
  the weights of the last 2, 3, 5 or 6 epochs (SWA-like) 0.900-0.909;
- Adam 3e-4 for 15 epochs: peak 0.9505 after epoch 8, then 0.903-0.942 (0.903 last; the
  lowest 0-6 val loss, epoch 13, 0.933); SWA of its last 2-7 epochs 0.902-0.922;
- centering the features on the mean of the 0-6 training images before normalising
  (SimpleShot's CL2N, Wang et al. 2019): 0.880-0.934 (below the plain features from
  epoch 3 on); pooled multi-scale features (the first stage's pooled map and the last
  map, each normalised, concatenated): 0.847-0.921;
- dropout 0.5 before the normalisation: 0.862-0.927 (0.905 after 10 epochs);
- a rho-regularisation-like term (after Roth et al. 2020: with probability 0.3 an
  anchor's hardest negative is replaced by a random other positive, keeping
  within-class spread), 20 epochs: 0.841 rising to 0.945 (epoch 10), then 0.905-0.928;
  with EMA 0.99 steady at 0.925-0.928 over epochs 12-19 (0.925 at 20), SWA 0.921-0.923.
- choosing the epoch by held-out training classes instead of images (train on 0-4,
  validate on every image of 5-6): 7-9 fell to 0.819-0.892 (five training classes
  instead of seven), and the held-out classes' AUC peaked at epoch 7 (0.968) where 7-9
  peaked at epoch 2 (correlation over 12 epochs 0.30): the epoch it picks gave 0.871.
Measured later, without reaching 0.95 either (the recipe's network written by hand
with each change, every variant over seeds 0, 1, 2 in one process; figures on 7-9 per
seed, then the mean; recall@1 stayed 0.96-1.00 throughout; "+9 shifts" is the test-time
augmentation below applied to the same networks):
- the recipe's configuration itself, again: 0.951, 0.899, 0.915 (mean 0.922; 0-6 val
  AUC 0.9996), one more measure of the spread between processes and seeds;
- test-time augmentation of the embedding (the mean of the unit embeddings of the image
  shifted by -1, 0, +1 pixel at 16x16, renormalised), on those networks: 5 shifts
  (none, up, down, left, right) 0.959, 0.912, 0.919 (mean 0.930), 9 shifts 0.961,
  0.916, 0.917 (mean 0.931): +0.01 on every variant below too, never enough; 0-6 val
  did not see it (0.9996 -> 0.9991), so no split of 0-6 would have chosen it;
- the soft-margin batch-hard triplet, softplus(d_ap - d_an) instead of the hinge
  (Hermans et al. 2017): 0.856, 0.868, 0.877 (mean 0.867; +9 shifts 0.878; 0-6 val
  0.9987): like a large margin (0.5 gave 0.878) it never stops pushing 0-6 apart;
- each image's pixels standardised (zero mean, unit standard deviation) before the
  network: 0.893, 0.893, 0.909 (mean 0.898; +9 shifts 0.905);
- each image's pixels scaled to unit L2 norm (times the square root of their count, so
  a pixel is ~1) before the network: 0.941, 0.902, 0.918 (mean 0.920; +9 shifts 0.952,
  0.910, 0.925, mean 0.929): the same as without;
- a multi-layer embedding (the last maps of both stages flattened, 8,192 + 4,096
  features, each L2-normalised, concatenated, normalised): 0.909, 0.912, 0.907 (mean
  0.909; +9 shifts 0.915; 0-6 val 0.9976);
- three plain_cnn branches in one model (different initialisations, their unit
  embeddings concatenated, 12,288-d, three times the cost of training and inference):
  one triplet loss on the concatenation 0.935, 0.892, 0.907 (mean 0.911; +9 shifts
  0.919); a triplet loss per branch (an ensemble of three branches trained
  independently on the same batches) 0.945, 0.920, 0.928 (mean 0.931; +9 shifts 0.949,
  0.922, 0.931, mean 0.934), the best of these and still below 0.95 on every seed;
- distance-weighted negatives (Wu et al. 2017; inverse density of the 4,096-d sphere,
  distances clipped at 0.5, none past 1.4, the farthest positive, margin 0.1): 0.929,
  0.895, 0.912 (mean 0.912; +9 shifts 0.917). At 4,096 dimensions the weights pick
  the nearest negative beyond 0.5 almost surely: close to batch-hard (and the
  non-negative ReLU features are not spread over the sphere, as the weights assume).
Test-time flips are not valid for digits and were not tried.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest

import visionkit as vk
from visionkit.config import load_recipe
from visionkit.run import metric_loss_from_recipe
from visionkit.train.retrieval_metrics import recall_at_k, verification_auc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPE = os.path.join(ROOT, "pipelines", "digits_siamese.yaml")
SEEN = list(range(7))
UNSEEN = [7, 8, 9]
NAMES = [str(digit) for digit in range(10)]
SEEDS = (0, 1, 2)


def _digits(classes):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    keep = np.isin(bunch.target, classes)
    return (bunch.images[keep] * (255.0 / 16.0)).astype("float32"), bunch.target[keep]


def _train_on_seen_and_evaluate_unseen(recipe, seed):
    """The recipe's network, loss, batches and training on digits 0-6 (its validation
    split held out of them), evaluated on every image of 7-9."""
    size = tuple(recipe.data.image_size)
    images, labels = _digits(SEEN)
    seen = vk.data.from_arrays(images, labels, class_names=NAMES, image_size=size,
                               validation_split=recipe.data.validation_split, seed=seed)
    section = recipe.metric_learning
    balanced = vk.data.class_balanced(seen, classes_per_batch=section.classes_per_batch,
                                      images_per_class=section.images_per_class)
    unseen_images, unseen_labels = _digits(UNSEEN)
    unseen = vk.data.from_arrays(unseen_images, unseen_labels, class_names=NAMES,
                                 image_size=size, val_images=unseen_images,
                                 val_labels=unseen_labels, seed=seed)
    keras.utils.set_random_seed(seed)
    model = vk.models.build(recipe.model.name, input_shape=(*size, 3), **recipe.model.args)
    untrained = vk.train.evaluate(model, unseen.val, task="embedding")
    train = recipe.train
    run = vk.train.fit(model, balanced, epochs=train.epochs,
                       loss=metric_loss_from_recipe(recipe), optimizer=train.optimizer, learning_rate=train.learning_rate,
                       schedule=train.schedule, verbose=0, seed=seed)
    metrics = vk.train.evaluate(run.model, unseen.val, task="embedding")
    print(f"seed {seed}: unseen 7-9 {metrics}, epoch kept {run.weights_epoch}, "
          f"untrained {untrained}")
    assert metrics["num_examples"] == len(unseen_labels) and metrics["num_classes"] == 3
    # The task's figures agree with the metric functions on the model's embeddings.
    batches = list(unseen.val)
    embeddings = run.model.predict(np.concatenate([x for x, _ in batches]), verbose=0)
    val_labels = np.concatenate([y for _, y in batches])
    assert metrics["recall_at_1"] == pytest.approx(recall_at_k(embeddings, val_labels, 1))
    assert metrics["verification_auc"] == pytest.approx(
        verification_auc(embeddings, val_labels))
    return metrics


@pytest.fixture(scope="module")
def unseen_metrics():
    """One training run per seed of the recipe's configuration (about 70 s each)."""
    recipe = load_recipe(RECIPE)
    per_seed = [_train_on_seen_and_evaluate_unseen(recipe, seed) for seed in SEEDS]
    aucs = [m["verification_auc"] for m in per_seed]
    print(f"verification AUC over seeds {SEEDS}: {np.round(aucs, 4).tolist()}, mean "
          f"{np.mean(aucs):.4f}, spread (max - min) {np.ptp(aucs):.4f}")
    return per_seed


@pytest.mark.slow
def test_recall_at_1_on_unseen_digits(unseen_metrics):
    assert all(m["recall_at_1"] >= 0.9 for m in unseen_metrics)


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=(
    "not met: verification AUC on 7-9 of the recipe's configuration 0.946, 0.936, 0.916 "
    "over seeds 0-2 (mean 0.933); weight averaging, selection on 0-6, lower rates, "
    "centering, spread regularisation, soft-margin or distance-weighted triplets, "
    "test-time shifts and three-branch ensembles stayed below 0.95 too (module docstring)"))
def test_verification_auc_on_unseen_digits(unseen_metrics):
    assert np.mean([m["verification_auc"] for m in unseen_metrics]) >= 0.95
