"""Siamese embedding networks: one backbone, shared by every image, to a unit-length vector.

A siamese (or triplet) network applies the same weights to each image of a pair (or
triplet) and compares the embeddings. Trained with online mining, the two (or three)
branches are the images of one batch going through one model, so the registry's
`siamese` is that single shared branch: raw pixels in, an L2-normalised embedding out.
`siamese_pair` wraps it into the two-input form (a distance per pair of images) for
users who feed explicit pairs; both branches are the same layers.

Reference:
    - [Signature Verification using a "Siamese" Time Delay Neural Network](
      https://papers.nips.cc/paper/1993/hash/288cc0ff022877bd3df94bc9360b9c5d-Abstract.html)
      (Bromley et al., NIPS 1993)
    - [Dimensionality Reduction by Learning an Invariant Mapping](
      https://doi.org/10.1109/CVPR.2006.100) (Hadsell, Chopra & LeCun, CVPR 2006)
    - [FaceNet](https://arxiv.org/abs/1503.03832) (Schroff et al., CVPR 2015): the
      embedding is constrained to the unit hypersphere, `||f(x)||_2 = 1`.
    - [Generalization in Metric Learning: Should the Embedding Layer be the Embedding
      Layer?](https://arxiv.org/abs/1803.03310) (Vo & Hays, WACV 2019): features before
      the projection retrieve unseen classes better (`embedding_dim=None`).

Example:

>>> import visionkit as vk
>>> model = vk.models.build("siamese", input_shape=(32, 32, 3), backbone="resnet18",
...                         embedding_dim=16, backbone_options={"width_multiplier": 0.125})
>>> model.output_shape
(None, 16)
"""

from __future__ import annotations

import os
from typing import Any

import keras

from visionkit.models.backbones import backbone_features
from visionkit.models.common import raw_image_input
from visionkit.models.embedding.plain_cnn import PLAIN_CNN, plain_cnn_features
from visionkit.models.layers.euclidean_distance import EuclideanDistance
from visionkit.models.registry import register
from visionkit.vocabulary import ends_in_probabilities

__all__ = ["POOLINGS", "siamese", "siamese_pair"]

# How a feature map [B, h, w, C] becomes a vector: global average pooling ([B, C]) or
# flattening ([B, h * w * C], keeping the spatial layout).
POOLINGS = ("avg", "flatten")


def _deepest(features: Any) -> keras.KerasTensor:
    """The deepest map of a P-dict (largest `n` of `Pn`), or the tensor itself."""
    if isinstance(features, dict):
        if not features:
            raise ValueError("Expected a backbone that returns feature maps; it returned an "
                             "empty dict.")
        return features[max(features, key=lambda key: int(str(key).lstrip("P") or 0))]
    return features


@register("siamese", task="embedding")
def siamese(
    input_shape: tuple[int, int, int] = (64, 64, 3),
    backbone: str | keras.Model = "resnet18",
    embedding_dim: int | None = 64,
    backbone_options: dict[str, Any] | None = None,
    backbone_weights: str | os.PathLike | None = None,
    dropout: float = 0.0,
    name: str = "siamese",
    pooling: str = "avg",
) -> keras.Model:
    """The shared branch of a siamese network: backbone -> pool -> dense -> L2 norm.

    Args:
        input_shape: `(height, width, channels)` of raw 0..255 images. Defaults to
            (64, 64, 3).
        backbone: a name from `vk.models.available_backbones()` (wired into this model's
            graph, so every layer is addressable by name), "plain_cnn" (3x3 ReLU
            convolutions without batch norm, `visionkit.models.embedding.plain_cnn`;
            option `stages`, for images from 8x8), or a `keras.Model` taking raw images
            and returning a P-dict, a feature map `[B, h, w, C]` or features `[B, C]`.
            Defaults to "resnet18".
        embedding_dim: dimensions of the embedding (a dense projection of the pooled
            features), or None for no projection: the pooled (or flattened, for a
            backbone returning `[B, C]`) features themselves, L2-normalised. Trained on
            digits 0-6 (8x8, a small flattened CNN, semi-hard triplets), the unseen
            7-9's verification AUC was 0.86-0.87 over 5 epochs without the projection,
            0.856 then 0.828 (epochs 3, 4) with 64 dimensions; at 16x16 without it,
            0.902 (semi-hard) and 0.930 (batch-hard, margin 0.1;
            tests/metric/test_unseen_digits_slow.py). Defaults to 64.
        backbone_options: options of a named backbone (e.g. `{"width_multiplier":
            0.25}`, or `{"stages": [[32, 32], [64, 64]]}` for "plain_cnn"). Defaults to
            None.
        backbone_weights: weights of a named backbone ("imagenet" for keras.applications
            families). Defaults to None (random).
        dropout: dropout before the projection. Defaults to 0.
        name: model name. Defaults to "siamese".
        pooling: how the backbone's deepest map `[B, h, w, C]` becomes features:
            "avg" (global average pooling, `[B, C]`) or "flatten" (`[B, h * w * C]`, the
            spatial layout kept; layer "flatten"). Ignored for a backbone returning
            features `[B, C]`. On the unseen digits flattening scored 0.02-0.05 higher
            verification AUC than averaging. Defaults to "avg".

    Shapes:
        Input `[B, H, W, C]` raw pixels; output float32 `[B, embedding_dim]` (`[B, C]`,
        the backbone's features, for None) of unit Euclidean length (layer "embedding", a `keras.layers.UnitNormalization`).

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: for `embedding_dim < 1`, dropout outside [0, 1), an unknown backbone,
            option or pooling, or a backbone model whose output is not a feature map or ends in
            class probabilities (a classifier's head, e.g. keras.applications with
            `include_top=True`).
    """
    if embedding_dim is not None and (
            isinstance(embedding_dim, bool) or not isinstance(embedding_dim, (int, float))
            or int(embedding_dim) != embedding_dim or int(embedding_dim) < 1):
        raise ValueError(f"Expected embedding_dim as an integer >= 1 or None; received "
                         f"embedding_dim={embedding_dim!r}.")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"Expected 0 <= dropout < 1; received dropout={dropout!r}.")
    if pooling not in POOLINGS:
        raise ValueError(f"Expected pooling to be one of {POOLINGS}; received "
                         f"pooling={pooling!r}.")
    inputs = raw_image_input(input_shape)
    if isinstance(backbone, keras.Model):
        if backbone_options or backbone_weights is not None:
            raise ValueError("backbone_options and backbone_weights apply to a backbone "
                             "given by name; received a keras.Model as backbone.")
        if ends_in_probabilities(backbone):
            raise ValueError(
                f"Expected a backbone returning features; received the model "
                f"{backbone.name!r}, whose last layer {backbone.layers[-1].name!r} outputs "
                f"class probabilities (softmax/sigmoid). For keras.applications, pass "
                f"include_top=False.")
        features = _deepest(backbone(inputs))
    elif backbone == PLAIN_CNN:
        if backbone_weights is not None or set(backbone_options or {}) - {"stages"}:
            raise ValueError(f"Backbone {PLAIN_CNN!r} takes only the option 'stages' and no "
                             f"weights (it trains from scratch); received backbone_options="
                             f"{backbone_options!r}, backbone_weights={backbone_weights!r}.")
        features = plain_cnn_features(inputs, **dict(backbone_options or {}))
    else:
        features = _deepest(backbone_features(backbone, inputs, weights=backbone_weights,
                                              **dict(backbone_options or {})))
    if len(features.shape) == 4 and pooling == "flatten":
        if None in tuple(features.shape)[1:]:
            raise ValueError(f"pooling='flatten' needs a feature map of known size; "
                             f"received shape {tuple(features.shape)} (give input_shape a "
                             f"height and width, or use pooling='avg').")
        features = keras.layers.Flatten(name="flatten")(features)
    elif len(features.shape) == 4:
        features = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features)
    elif len(features.shape) != 2:
        raise ValueError(f"Expected the backbone to return feature maps [B, h, w, C] or "
                         f"features [B, C]; received shape {tuple(features.shape)}.")
    if dropout:
        features = keras.layers.Dropout(float(dropout), name="embedding_dropout")(features)
    if embedding_dim is None:
        projected = features
    else:
        projected = keras.layers.Dense(int(embedding_dim), dtype="float32",
                                       name="embedding_projection")(features)
    outputs = keras.layers.UnitNormalization(axis=-1, dtype="float32",
                                             name="embedding")(projected)
    return keras.Model(inputs, outputs, name=name)


def siamese_pair(embedding_model: keras.Model, name: str = "siamese_pair") -> keras.Model:
    """Two images in, the Euclidean distance of their embeddings out (shared weights).

    Both inputs go through the same `embedding_model` (one set of weights), as in
    Bromley et al. (1993) and Hadsell et al. (2006).

    Args:
        embedding_model: a model from images to embeddings `[B, D]`, e.g. `siamese`.
        name: model name. Defaults to "siamese_pair".

    Shapes:
        Inputs `images_a`, `images_b` `[B, H, W, C]`; output float32 `[B]` distances.

    Returns:
        A `keras.Model` with two inputs.

    Raises:
        ValueError: for a model without a single image input or with non-vector outputs.
    """
    if len(embedding_model.inputs) != 1 or len(embedding_model.output.shape) != 2:
        raise ValueError(f"Expected a model with one image input and [B, D] outputs; "
                         f"received inputs {[tuple(i.shape) for i in embedding_model.inputs]}"
                         f" and output {tuple(embedding_model.output.shape)}.")
    shape = tuple(embedding_model.inputs[0].shape[1:])
    first = raw_image_input(shape, name="images_a")
    second = raw_image_input(shape, name="images_b")
    distance = EuclideanDistance(name="distance")(
        [embedding_model(first), embedding_model(second)])
    return keras.Model([first, second], distance, name=name)
