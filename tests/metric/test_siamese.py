"""The siamese embedding model: registry, shared weights, training, export, t-SNE."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import visionkit as vk
from visionkit.models.embedding import siamese_pair
from visionkit.train.metric_losses import ContrastiveLoss
from visionkit.train.retrieval_metrics import recall_at_k, verification_auc

SHAPE = (32, 32, 3)


def _tiny_backbone():
    """A two-convolution feature extractor on raw pixels (fast to trace and train)."""
    inputs = keras.Input(SHAPE)
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="tiny_conv1")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu", name="tiny_conv2")(x)
    return keras.Model(inputs, x, name="tiny_backbone")


def _images(count=6, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, *SHAPE)).astype("float32")


def test_registry_builds_unit_length_embeddings_on_a_named_backbone(tmp_path):
    model = vk.models.build("siamese", input_shape=SHAPE, backbone="resnet18",
                            embedding_dim=12, backbone_options={"width_multiplier": 0.125})
    assert "siamese" in vk.models.available("embedding")
    outputs = np.asarray(model(_images(), training=False))
    assert outputs.shape == (6, 12)
    np.testing.assert_allclose(np.linalg.norm(outputs, axis=1), 1.0, atol=1e-5)
    assert model.get_layer("conv2_block1_out") is not None  # the backbone is wired flat
    path = str(tmp_path / "siamese.keras")
    model.save(path)
    np.testing.assert_allclose(np.asarray(keras.models.load_model(path)(_images())),
                               np.asarray(model(_images())), atol=1e-5)


def test_without_projection_the_embedding_is_the_normalised_backbone_features():
    backbone = _tiny_backbone()
    model = vk.models.build("siamese", input_shape=SHAPE, backbone=backbone,
                            embedding_dim=None)
    images = _images()
    # Reference: the backbone's map, average-pooled in NumPy, divided by its length.
    pooled = np.asarray(backbone(images)).mean(axis=(1, 2))
    expected = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    assert model.output_shape == (None, 16)
    np.testing.assert_allclose(np.asarray(model(images)), expected, atol=1e-5)
    assert not any(layer.name == "embedding_projection" for layer in model.layers)


def test_registry_errors_name_the_argument():
    with pytest.raises(ValueError, match="no num_classes"):
        vk.models.build("siamese", input_shape=SHAPE, num_classes=10)
    with pytest.raises(ValueError, match="embedding_dim"):
        vk.models.build("siamese", input_shape=SHAPE, backbone=_tiny_backbone(),
                        embedding_dim=0)
    with pytest.raises(ValueError, match="embedding_dim"):
        vk.models.build("siamese", input_shape=SHAPE, backbone=_tiny_backbone(),
                        embedding_dim="64")
    with pytest.raises(ValueError, match="needs num_classes"):
        vk.models.build("simple_cnn", input_shape=SHAPE)
    with pytest.raises(ValueError, match="Unknown backbone"):
        vk.models.build("siamese", input_shape=SHAPE, backbone="resnet19")
    # Not a name: the error shows what was given (it said '18' and 'None', as strings).
    for given in (18, None):
        with pytest.raises(ValueError, match=rf"^Unknown backbone {given}\. Known backbones"):
            vk.models.build("siamese", input_shape=SHAPE, backbone=given)


def test_pair_model_shares_one_set_of_weights():
    branch = vk.models.build("siamese", input_shape=SHAPE, backbone=_tiny_backbone(),
                             embedding_dim=8)
    pair = siamese_pair(branch)
    assert {id(w) for w in pair.trainable_weights} == {id(w) for w in branch.trainable_weights}
    first, second = _images(4, seed=1), _images(4, seed=2)
    expected = np.linalg.norm(np.asarray(branch(first)) - np.asarray(branch(second)), axis=1)
    np.testing.assert_allclose(np.asarray(pair([first, second])), expected, atol=1e-5)
    np.testing.assert_allclose(np.asarray(pair([first, first])), 0.0, atol=1e-5)


# A class with a single validation image is left out of recall@k with a warning.
@pytest.mark.filterwarnings("ignore:Embedding evaluation", "ignore:recall@")
def test_fit_evaluate_export_and_embed(tmp_path):
    keras.utils.set_random_seed(0)
    data = vk.data.digits(image_size=SHAPE[:2], seed=0).take(96, 40)
    balanced = vk.data.class_balanced(data, classes_per_batch=4, images_per_class=4)
    model = vk.models.build("siamese", input_shape=SHAPE, backbone=_tiny_backbone(),
                            embedding_dim=8)
    run = vk.train.fit(model, balanced, epochs=1, loss=ContrastiveLoss(margin=1.0),
                       verbose=0)
    assert np.isfinite(run.history["loss"]).all()
    metrics = vk.train.evaluate(run.model, balanced)
    batches = list(balanced.val)
    embeddings = np.asarray(run.model.predict(np.concatenate([x for x, _ in batches]),
                                              verbose=0))
    labels = np.concatenate([y for _, y in batches])
    assert metrics["num_examples"] == 40
    assert metrics["verification_auc"] == pytest.approx(verification_auc(embeddings, labels))
    assert metrics["recall_at_1"] == pytest.approx(recall_at_k(embeddings, labels, 1))

    # The export serves unit-length embeddings of raw uint8 images of any size.
    path = vk.export.saved_model(run.model, str(tmp_path / "saved"), data=balanced)
    predictor = vk.export.load(path)
    assert predictor.task == "embedding"
    served = predictor(np.zeros((3, 40, 24, 3), np.uint8))["embeddings"]
    assert served.shape == (3, 8)
    np.testing.assert_allclose(np.linalg.norm(served, axis=1), 1.0, atol=1e-5)
    pixels = np.concatenate([x for x, _ in batches])[:4].round().astype(np.uint8)
    np.testing.assert_allclose(predictor(pixels)["embeddings"],
                               np.asarray(run.model(pixels.astype("float32"))), atol=1e-4)

    # t-SNE of the embeddings: the default feature layer is the normalised output.
    embedded = vk.interpret.embed(run.model, balanced.val, n_iter=50, verbose=0)
    assert embedded.layer == "embedding" and embedded.points.shape == (40, 2)
    np.testing.assert_allclose(embedded.features, embeddings, atol=1e-5)



def test_an_embedding_model_is_not_evaluated_as_a_classifier():
    model = vk.models.build("siamese", input_shape=SHAPE, backbone=_tiny_backbone(),
                            embedding_dim=10)
    data = vk.data.digits(image_size=SHAPE[:2], seed=0).take(16, 16)
    with pytest.raises(ValueError, match="task='embedding'"):
        vk.train.evaluate(model, data)


def test_embedding_evaluation_says_once_what_it_left_out():
    import tensorflow as tf

    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.UnitNormalization()(inputs))
    points = np.array([[1, 0], [1, 0.1], [0, 1], [0.1, 1], [-1, 0]], "float32")
    labels = np.array([0, 0, 1, 1, 2])
    dataset = tf.data.Dataset.from_tensor_slices((points, labels)).batch(2)
    with pytest.warns(UserWarning) as caught:
        metrics = vk.tasks.get_task("embedding").evaluate(model, dataset, [])
    assert len(caught) == 1 and "1 images from recall@k" in str(caught[0].message)
    assert metrics["recall_at_1"] == 1.0 and metrics["verification_auc"] == 1.0
