"""Each Keras private name visionkit reads still means what visionkit takes it to mean.

A Keras release that renames or changes one fails here, naming it (pyproject.toml allows
only the Keras releases these tests ran on).
"""

import json
import os

import keras
import numpy as np
import pytest

from visionkit import keras_internals as internals


def _why(name: str) -> str:
    return (f"Keras {keras.__version__} changed {name}, which visionkit.keras_internals "
            "reads: adapt that module before allowing this Keras in pyproject.toml.")


@pytest.fixture(scope="module")
def nested():
    """A functional model holding a Sequential block with a seeded Dropout."""
    block = keras.Sequential([keras.layers.Dense(4, name="inner_dense"),
                              keras.layers.Dropout(0.5, seed=1, name="inner_dropout")],
                             name="block")
    inputs = keras.Input((3,), name="x")
    hidden = block(inputs)
    outputs = keras.layers.Dense(2, name="head")(hidden)
    return keras.Model(inputs, outputs, name="outer"), block


def test_producing_layer_is_the_layer_that_made_a_tensor(nested):
    model, block = nested
    try:
        assert internals.producing_layer(model.outputs[0]) is model.get_layer("head")
        assert internals.producing_layer(model.get_layer("head").input) is block
        history = internals.tensor_history(model.outputs[0])
        assert (history.operation, history.node_index, history.tensor_index) == (
            model.get_layer("head"), 0, 0)
        assert internals.tensor_history(np.ones(2)) is None
    except AttributeError as error:
        pytest.fail(f"{_why('KerasTensor._keras_history')} ({error})")


def test_flatten_layers_reaches_nested_layers(nested):
    model, _ = nested
    try:
        names = [layer.name for layer in internals.flatten_layers(model)]
        with_self = internals.flatten_layers(model, include_self=True)
    except AttributeError as error:
        pytest.fail(f"{_why('Layer._flatten_layers')} ({error})")
    assert {"block", "inner_dense", "inner_dropout", "head"} <= set(names), _why(
        "Layer._flatten_layers")
    assert "outer" not in names and with_self[0] is model


def test_seed_generators_are_a_layers_random_streams(nested):
    model, _ = nested
    dropout = model.get_layer("block").get_layer("inner_dropout")
    generators = internals.seed_generators(dropout)
    assert len(generators) == 1 and isinstance(generators[0], keras.random.SeedGenerator), \
        _why("Layer._seed_generators")
    assert internals.seed_generators(model.get_layer("head")) == []


def test_functional_graph_nodes_and_rerun(nested):
    model, block = nested
    assert internals.functional_graph(model) is model
    assert internals.functional_graph(keras.Sequential([keras.layers.Dense(1)])) is None
    graph = internals.functional_graph(block)
    assert isinstance(graph, keras.Model), _why("Sequential._functional")
    try:
        nodes = internals.graph_nodes_by_depth(model)
    except AttributeError as error:
        pytest.fail(f"{_why('Functional._nodes_by_depth')} ({error})")
    operations = {node.operation.name for depth in nodes for node in nodes[depth]
                  if not node.is_input}
    assert operations == {"block", "head"}, _why("Functional._nodes_by_depth")
    assert all(len(node.input_tensors) == 1 for depth in nodes for node in nodes[depth]
               if not node.is_input)

    called = []

    def call(operation, *args, **kwargs):
        called.append(operation.name)
        return operation(*args, **kwargs)

    images = np.arange(6, dtype="float32").reshape(2, 3)
    try:
        out = internals.run_through_graph(model, images, call)
    except (AttributeError, TypeError) as error:
        pytest.fail(f"{_why('Functional._run_through_graph')} ({error})")
    assert called == ["block", "head"], _why("Functional._run_through_graph")
    np.testing.assert_allclose(np.asarray(out), np.asarray(model(images)), rtol=1e-6)


def test_backup_state_is_the_epoch_keras_records(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    backup = keras.callbacks.BackupAndRestore(str(tmp_path))
    seen = []

    class Probe(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((internals.backup_epoch(backup), internals.backup_batch(backup),
                         internals.backup_metadata_path(backup)))

    class Stop(keras.callbacks.Callback):  # keeps the backup folder: training is cut short
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model.fit(np.ones((4, 3)), np.ones((4, 1)), epochs=3, batch_size=2, verbose=0,
                  callbacks=[backup, Probe(), Stop()])
    try:
        assert [(epoch, batch) for epoch, batch, _ in seen] == [(1, 0), (2, 0)]
    except AttributeError as error:
        pytest.fail(f"{_why('BackupAndRestore._current_epoch/_last_batch_seen')} ({error})")
    path = seen[-1][2]
    assert os.path.dirname(path) == str(tmp_path), _why("BackupAndRestore metadata path")
    with open(path) as handle:
        assert json.load(handle)["epoch"] == 2, _why("BackupAndRestore metadata path")
