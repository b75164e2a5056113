"""Embeddings: a layer's features for a dataset, PCA, then t-SNE (openTSNE).

Reference:
    - [Visualizing Data using t-SNE](https://jmlr.org/papers/v9/vandermaaten08a.html)
      (van der Maaten & Hinton, JMLR 2008)
    - [openTSNE: a modular Python library for t-SNE](https://doi.org/10.1101/731877)
      (Poličar et al., 2019)

Example:

>>> import visionkit as vk
>>> data = vk.data.digits(image_size=(16, 16), batch_size=32, seed=0).take(64, 96)
>>> model = vk.models.build("simple_cnn", (16, 16, 3), 10, filters=(4, 8))
>>> result = embed(model, data.val, n_iter=50)
>>> result.points.shape, result.labels.shape
((96, 2), (96,))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from visionkit.interpret.adapter import adapt
from visionkit.interpret.checks import ArgumentError, check_finite_result, check_float, check_int
from visionkit.interpret.layers import pooled_feature_layer
from visionkit.interpret.progress import progress_bar

__all__ = ["Embedding", "embed", "features"]

_TRUSTWORTHINESS_NEIGHBOURS = 10  # k of the trustworthiness score (Venna & Kaski, 2001)


@dataclass
class Embedding:
    """The result of `embed`.

    Attributes:
        points: float32 `[N, 2]` embedded points.
        labels: int `[N]` labels (-1 where none were given).
        images: `[N, H, W, C]` the input images (raw pixels).
        features: float32 `[N, D]` the layer's features.
        trustworthiness: how well the embedding keeps the features' 10 nearest neighbours
            (1 is perfect).
        layer: the layer the features came from.
    """

    points: np.ndarray
    labels: np.ndarray
    images: np.ndarray
    features: np.ndarray
    trustworthiness: float
    layer: str


def _collect(data: Any, labels: Any, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(data, tf.data.Dataset):
        images, targets = [], []
        count = 0
        for batch in data:
            batch_images, batch_targets = batch if isinstance(batch, tuple) else (batch, None)
            images.append(np.asarray(batch_images))
            if batch_targets is not None and not isinstance(batch_targets, dict):
                targets.append(np.asarray(batch_targets))
            count += len(images[-1])
            if limit is not None and count >= limit:
                break
        image_array = np.concatenate(images)
        label_array = np.concatenate(targets) if targets else np.full(len(image_array), -1)
    else:
        image_array = np.asarray(data)
        label_array = np.full(len(image_array), -1) if labels is None else np.asarray(labels)
    if limit is not None:
        image_array, label_array = image_array[:limit], label_array[:limit]
    if label_array.ndim != 1:
        label_array = np.full(len(image_array), -1)
    return image_array, label_array


def features(model: keras.Model, images: Any, layer: str | None = None,
             batch_size: int = 128, verbose: int = 1) -> np.ndarray:
    """Features `[N, D]` of `layer` (spatial maps are global-average-pooled).

    Defaults to the global-pooled features before the model's head (an embedding model's
    own normalised output, see `embed`). With `verbose=1`
    a progress bar counts the batches when there are several.
    """
    adapter = adapt(model, require_output=False)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    name = _feature_layer(adapter, layer)
    extractor = adapter.feature_model([name], include_output=False)
    forward = tf.function(lambda x: extractor(x, training=False))
    array = adapter.check_images(images).numpy()
    bar = progress_bar(-(-len(array) // batch_size), "batch", verbose)
    outputs = []
    for start in range(0, len(array), batch_size):
        outputs.append(np.asarray(forward(array[start:start + batch_size])))
        bar.update()
    result = np.concatenate(outputs)
    if result.ndim == 4:
        result = result.mean(axis=(1, 2))
    return check_finite_result(result.reshape(len(result), -1).astype(np.float32), "features")


def _feature_layer(adapter, layer) -> str:
    if layer is not None:
        return adapter.find_layer(layer).name
    last = adapter.model.layers[-1]
    if isinstance(last, keras.layers.UnitNormalization):
        # An embedding model (e.g. `siamese`): its L2-normalised output is the feature.
        return last.name
    try:
        return pooled_feature_layer(adapter.graph)
    except ValueError:
        raise ArgumentError("layer", f"Model {adapter.model.name!r} has no pooled feature "
                            "layer; name one with layer=.") from None


def embed(model: keras.Model, data: Any, labels: Any = None, layer: str | None = None,
          method: str = "tsne", pca_dims: int = 50, perplexity: float = 30.0,
          n_iter: int = 500, max_points: int | None = 5000, seed: int = 0,
          n_jobs: int = 1, verbose: int = 1) -> Embedding:
    """Embeds a layer's features of a dataset in 2D.

    Args:
        model: a Keras model.
        data: a batched dataset of `(images, labels)`, or images `[N, H, W, C]`.
        labels: labels `[N]` when `data` is an array. Defaults to None.
        layer: the feature layer. Defaults to the global-pooled features before the head,
            or, for an embedding model (one ending in `keras.layers.UnitNormalization`,
            such as `siamese`), its L2-normalised embeddings.
        method: "tsne" (openTSNE) or "pca" (the first two principal components).
            Defaults to "tsne".
        pca_dims: PCA dimensions before t-SNE (capped by the data). Defaults to 50.
        perplexity: t-SNE perplexity (capped below a third of the points). Defaults to 30.
        n_iter: t-SNE optimization iterations. Defaults to 500.
        max_points: at most this many images are embedded. Defaults to 5000.
        seed: random seed. Defaults to 0.
        n_jobs: threads of openTSNE. Defaults to 1.
        verbose: 1 shows a progress bar over the feature batches when there are several.
            Defaults to 1.

    Returns:
        An `Embedding`.

    Raises:
        ArgumentError (a ValueError): naming `method`, `layer`, `data` (fewer than 5
            images), `pca_dims` (>= 2), `perplexity` (> 0), `n_iter`, `max_points`
            (>= 5), `seed` or `n_jobs`.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import trustworthiness

    if method not in ("tsne", "pca"):
        raise ArgumentError("method", f"Expected method 'tsne' or 'pca'; received "
                            f"method={method!r}.")
    pca_dims = check_int(pca_dims, "pca_dims", minimum=2)
    perplexity = check_float(perplexity, "perplexity", minimum=0.0, above=True)
    n_iter = check_int(n_iter, "n_iter", minimum=1)
    if max_points is not None:
        max_points = check_int(max_points, "max_points", minimum=5)
    seed = check_int(seed, "seed", minimum=0)
    n_jobs = check_int(n_jobs, "n_jobs", minimum=1)
    images, label_array = _collect(data, labels, max_points)
    if len(images) < 5:
        raise ArgumentError("data", f"Expected data with at least 5 images to embed; "
                            f"received {len(images)}.")
    if len(label_array) != len(images):
        raise ArgumentError("labels", f"Expected labels with one entry per image "
                            f"({len(images)}); received {len(label_array)}.")
    adapter = adapt(model, require_output=False)
    name = _feature_layer(adapter, layer)
    feature_array = features(model, images, name, verbose=verbose)
    dims = int(min(pca_dims, feature_array.shape[1], len(feature_array)))
    reduced = PCA(n_components=dims, random_state=seed).fit_transform(feature_array)
    if method == "pca":
        points = reduced[:, :2]
    else:
        from openTSNE import TSNE

        points = np.asarray(TSNE(perplexity=min(perplexity, (len(reduced) - 1) / 3),
                                 n_iter=n_iter, random_state=seed, n_jobs=n_jobs,
                                 verbose=False).fit(reduced))
    neighbours = min(_TRUSTWORTHINESS_NEIGHBOURS, len(images) // 2 - 1)
    score = float(trustworthiness(feature_array, points, n_neighbors=neighbours))
    return Embedding(points=points.astype(np.float32), labels=label_array, images=images,
                     features=feature_array, trustworthiness=score, layer=name)
