"""Every Keras private name visionkit uses, in one place.

Keras has no public way yet to do these few things; each function below names the
private attribute it reads, so that a Keras release that renames one breaks here, and
`tests/test_keras_internals.py` says which (it runs each against the installed Keras).
pyproject.toml allows only the Keras releases those tests ran on.

- `tensor_history`, `producing_layer`: the layer call that made a symbolic tensor
  (`tensor._keras_history`).
- `functional_graph`, `graph_nodes_by_depth`, `run_through_graph`: walking and
  re-running a functional model's graph (`Functional._nodes_by_depth`,
  `Functional._run_through_graph`, `Sequential._functional`).
- `flatten_layers`: every layer at any depth of nested models (`Layer._flatten_layers`).
- `seed_generators`: a layer's own random streams (`Layer._seed_generators`).
- `backup_epoch`, `backup_batch`, `backup_metadata_path`: the state Keras's
  `BackupAndRestore` keeps about the epoch it saves.
"""

from __future__ import annotations

from typing import Any

import keras

__all__ = ["tensor_history", "producing_layer", "functional_graph", "graph_nodes_by_depth",
           "run_through_graph", "flatten_layers", "seed_generators", "backup_epoch",
           "backup_batch", "backup_metadata_path"]


def tensor_history(tensor: Any) -> Any:
    """`(operation, node_index, tensor_index)` of the layer call that produced `tensor`
    (attributes of those names), or None for a tensor no layer produced."""
    return getattr(tensor, "_keras_history", None)


def producing_layer(tensor: Any) -> keras.layers.Layer:
    """The layer (operation) whose call produced the symbolic `tensor`.

    Raises:
        AttributeError: for a tensor that no layer produced (not symbolic).
    """
    return tensor._keras_history.operation


def functional_graph(model: Any) -> keras.Model | None:
    """The functional graph behind `model`: itself, a built Sequential's inner graph, or
    None (a subclassed model, or a Sequential never built, whose layers are opaque)."""
    if isinstance(model, keras.Sequential):
        return getattr(model, "_functional", None)
    if isinstance(model, keras.Model) and hasattr(model, "_nodes_by_depth"):
        return model
    return None


def graph_nodes_by_depth(graph: keras.Model) -> dict[int, list[Any]]:
    """A functional graph's nodes by depth (0 = the outputs' nodes); each node has
    `operation`, `is_input` and `input_tensors`."""
    return graph._nodes_by_depth


def run_through_graph(graph: keras.Model, inputs: Any, call_fn: Any) -> Any:
    """Runs a functional graph on `inputs`, calling `call_fn(operation, *args, **kwargs)`
    in place of each operation's own call."""
    return graph._run_through_graph(inputs, operation_fn=lambda op: op, call_fn=call_fn)


def flatten_layers(model: keras.layers.Layer, include_self: bool = False
                   ) -> list[keras.layers.Layer]:
    """Every layer of `model` at any depth (nested models and layers of layers)."""
    return list(model._flatten_layers(include_self=include_self, recursive=True))


def seed_generators(layer: keras.layers.Layer) -> list[keras.random.SeedGenerator]:
    """The random streams (`keras.random.SeedGenerator`) `layer` itself owns."""
    return list(getattr(layer, "_seed_generators", None) or [])


def backup_epoch(callback: keras.callbacks.BackupAndRestore) -> int:
    """The number of epochs finished when `BackupAndRestore` saves at an epoch's end."""
    return callback._current_epoch


def backup_batch(callback: keras.callbacks.BackupAndRestore) -> int:
    """The last batch `BackupAndRestore` saw, as Keras records it next to the epoch."""
    return callback._last_batch_seen


def backup_metadata_path(callback: keras.callbacks.BackupAndRestore) -> str:
    """The path of Keras's record of the saved epoch (`training_metadata.json`)."""
    return callback._training_metadata_path
