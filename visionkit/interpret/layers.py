"""Finding layers, also inside nested sub-models, and reading their outputs.

The usual transfer-learning model nests a backbone as a sub-model; its inner layers are
not reachable from the outer model's graph, which is why `keras.Model(model.inputs,
inner_layer.output)` fails with "Graph disconnected". `feature_model` re-runs the outer
graph node by node from a new input, descending into nested functional models, so inner
activations and the final output come from one connected graph.

Example:

>>> import visionkit as vk
>>> model = vk.models.build("simple_cnn", (24, 32, 3), 3, filters=(4, 8))
>>> conv_layer_names(model)
['conv1', 'conv2']
>>> extractor = feature_model(model, ["conv2"])
>>> [tuple(t.shape) for t in extractor.outputs]
[(None, 12, 16, 8), (None, 3)]
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from visionkit.keras_internals import functional_graph, run_through_graph

__all__ = ["Layouts", "all_layers", "cam_layer", "channels_last", "check_images", "conv_layer_names", "feature_model",
           "find_layer", "graph_of", "last_spatial_layer", "pooled_feature_layer",
           "spatial_layer_names"]

_CONV_TYPES = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
_POOL_TYPES = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)


def graph_of(model) -> keras.Model | None:
    """The functional graph behind `model`: itself, a built Sequential's inner graph, or
    None (a subclassed model, or a Sequential never built, whose layers are opaque)."""
    return functional_graph(model)


def _is_functional(layer) -> bool:
    return graph_of(layer) is not None


def all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Every layer of `model` in graph order, descending into nested functional and
    Sequential models at any depth (a nested model itself is not listed)."""
    layers = []
    for layer in model.layers:
        if _is_functional(layer):
            layers.extend(all_layers(layer))
        else:
            layers.append(layer)
    return layers


def spatial_layer_names(model: keras.Model) -> list[str]:
    """Names of the layers (nested ones included) whose output is a `[B,h,w,C]` map."""
    return [layer.name for layer in all_layers(model)
            if not isinstance(layer, keras.layers.InputLayer) and _output_rank(layer) == 4]


def conv_layer_names(model: keras.Model) -> list[str]:
    """Names of the 2D convolution layers of `model` (nested ones included), in order."""
    return [layer.name for layer in all_layers(model) if isinstance(layer, _CONV_TYPES)]


def find_layer(model: keras.Model, name: str) -> keras.layers.Layer:
    """The layer called `name`, searched in `model` and its nested sub-models.

    Raises:
        ValueError: if no layer has that name; the message lists the conv layers there are.
    """
    from visionkit.interpret.checks import ArgumentError

    owners = _owners_of(model, name)
    if len({id(layer) for _, layer in owners}) > 1:
        where = [path or model.name for path, _ in owners]
        raise ArgumentError("layer", f"Model {model.name!r} has {len(owners)} different "
                            f"layers named {name!r} (in sub-models {where}), so {name!r} "
                            "does not say which map to read. Give the sub-models' layers "
                            "distinct names when building them (name= on each layer), or "
                            "explain one sub-model on its own.")
    for layer in [model, *model.layers]:
        if layer.name == name and layer is not model:
            return layer
    for layer in all_layers(model):
        if layer.name == name:
            return layer

    convs = conv_layer_names(model)
    opaque = [layer.name for layer in model.layers
              if isinstance(layer, keras.Model) and not _is_functional(layer)]
    hint = (f" The layers inside {opaque} cannot be reached: a subclassed model (or a "
            "Sequential never built) is one opaque call; rebuild it from keras.Input to "
            "explain its inner layers." if opaque else "")
    raise ArgumentError("layer", f"Model {model.name!r} has no layer named {name!r}. Its "
                        f"convolution layers are: {convs if convs else 'none'}.{hint}")


def _owners_of(model: keras.Model, name: str, path: str = "") -> list:
    """`(sub-model path, layer)` for every layer called `name` in `model` and its nested
    functional and Sequential sub-models (a nested model counts under its own name)."""
    found = []
    for layer in model.layers:
        if layer.name == name:
            found.append((path, layer))
        if _is_functional(layer) and layer is not model:
            inner = f"{path}/{layer.name}" if path else layer.name
            found.extend(_owners_of(graph_of(layer), name, inner))
    return found


def _output_rank(layer) -> int:
    try:
        return len(layer.output.shape)
    except (AttributeError, ValueError):
        return 0


def last_spatial_layer(model: keras.Model) -> str:
    """Name of the last layer with a `[B,h,w,C]` output."""
    for layer in reversed(all_layers(model)):
        if not isinstance(layer, keras.layers.InputLayer) and _output_rank(layer) == 4:
            return layer.name
    raise ValueError(f"Model {model.name!r} has no layer with a 4D (spatial) output.")


# Grad-CAM's default layer is the last one whose map is at most this many times smaller
# than the input: one cell of a coarser map spans several object parts, and its
# upsampled maximum can fall beside a small object.
CAM_MAX_DOWNSAMPLING = 8


def cam_layer(model: keras.Model) -> str:
    """Grad-CAM's default layer: the last spatial layer at no less than 1/8 of the input.

    Layers used at several places in the graph (shared heads) are skipped. When no
    layer is that fine (or the input size is unknown), the last spatial layer.

    Example:

    >>> import visionkit as vk
    >>> cam_layer(vk.models.build("simple_cnn", (32, 32, 3), 3, filters=(4, 8, 8, 8)))
    'relu4'
    """
    from visionkit.interpret.adapter import adapt

    adapter = adapt(model, require_output=False)
    model, calls = adapter.graph, adapter.calls()
    height, width = model.inputs[0].shape[1:3]
    if height is None or width is None:
        return last_spatial_layer(model)
    for layer in reversed(all_layers(model)):
        if (isinstance(layer, (keras.layers.InputLayer, keras.layers.ZeroPadding2D)) or
                calls.get(layer.name, 0) > 1):
            continue
        try:
            shape = adapter.map_shape(layer)
        except (AttributeError, ValueError):
            continue
        if (len(shape) == 4 and shape[1] and shape[2] and
                shape[1] * CAM_MAX_DOWNSAMPLING >= height and
                shape[2] * CAM_MAX_DOWNSAMPLING >= width):
            return layer.name
    return last_spatial_layer(model)


def pooled_feature_layer(model: keras.Model) -> str:
    """Name of the last global pooling layer (the features before a classifier's head).

    Falls back to the input of the final layer's chain: the last rank-2 layer before the
    output layer.
    """
    layers = all_layers(model)
    for layer in reversed(layers):
        if isinstance(layer, _POOL_TYPES):
            return layer.name
    for layer in reversed(layers[:-1]):
        if _output_rank(layer) == 2 and not isinstance(layer, keras.layers.Dropout):
            return layer.name
    raise ValueError(f"Model {model.name!r} has no pooled feature layer; name one with layer=.")


# `feature_model(model, ["relu3" + INPUT_SUFFIX])` reads the input of layer relu3.
INPUT_SUFFIX = ":input"


def _holds_wanted(model: keras.Model, wanted: set[str]) -> bool:
    """Whether a nested model holds a wanted layer (only those are opened up: the others
    run as one call, so their layers, whose names may repeat across sub-models, stay
    out of the traced graph)."""
    names = {name.removesuffix(INPUT_SUFFIX) for name in wanted}
    return any(layer.name in names for layer in all_layers(graph_of(model)))


class Layouts:
    """Which layers output channels-first maps `[B, C, h, w]`, found while tracing.

    A layer with a `data_format` (convolutions, pooling, upsampling) says its own; a
    layer without one (BatchNormalization(axis=1), activations, Add) keeps the layout
    of its 4D inputs; Permute((3, 1, 2)) makes a channels-last map channels-first,
    another Permute and Reshape give channels-last.
    """

    def __init__(self) -> None:
        self.names: set[str] = set()
        self._tensors: dict[int, object] = {}  # id -> tensor (held, so ids stay unique)

    def record(self, operation, args, outputs) -> None:
        data_format = getattr(operation, "data_format", None)
        if isinstance(data_format, str):
            first = data_format == "channels_first"
        elif isinstance(operation, keras.layers.Permute):
            # (3, 1, 2) turns NHWC into NCHW; any other order (NCHW back) is read NHWC.
            was_first = any(id(arg) in self._tensors for arg in tf.nest.flatten(args))
            first = not was_first and tuple(operation.dims) == (3, 1, 2)
        elif isinstance(operation, keras.layers.Reshape):
            first = False
        else:
            first = any(id(arg) in self._tensors for arg in tf.nest.flatten(args))
        if not first:
            return
        for tensor in tf.nest.flatten(outputs):
            if len(getattr(tensor, "shape", ())) == 4:
                self._tensors[id(tensor)] = tensor
                self.names.add(operation.name)


    def mark(self, tensor):
        """`tensor`, recorded as a channels-first map."""
        self._tensors[id(tensor)] = tensor
        return tensor

    def holds(self, outputs) -> bool:
        """Whether `outputs` hold a channels-first map (a nested model's output)."""
        return any(id(tensor) in self._tensors for tensor in tf.nest.flatten(outputs))


def channels_last(tensor):
    """A `[B, C, h, w]` map as `[B, h, w, C]`."""
    return keras.ops.transpose(tensor, (0, 2, 3, 1))


def _trace(model: keras.Model, inputs, wanted: set[str], found: dict, stop: bool,
           calls: dict | None = None, layouts: Layouts | None = None):
    """Re-runs `model`'s graph on `inputs`, recording the outputs of the `wanted` layers
    (and, in `calls`, how many times each layer is called; in `layouts`, which layers
    output channels-first maps). A wanted channels-first map is recorded channels-last."""
    layouts = layouts if layouts is not None else Layouts()

    def call(operation, *args, **kwargs):
        if stop and wanted <= found.keys():
            return None
        if calls is not None:
            calls[operation.name] = calls.get(operation.name, 0) + 1
        kwargs.pop("training", None)
        if any(arg is None for arg in tf.nest.flatten(args)):
            return None
        if _is_functional(operation) and (calls is not None
                                          or _holds_wanted(operation, wanted)):
            outputs = _trace(graph_of(operation), args[0] if len(args) == 1 else list(args),
                             wanted, found, stop, calls, layouts)
        else:
            outputs = operation(*args, **kwargs)
            if layouts is not None:
                layouts.record(operation, args, outputs)
        if layouts is not None and layouts.holds(outputs):
            layouts.names.add(operation.name)
        if operation.name in wanted and operation.name not in found:
            if operation.name in layouts.names and len(getattr(outputs, "shape", ())) == 4:
                # Read channels-last; the graph goes on through the read map, so that
                # gradients of the output reach it.
                found[operation.name] = channels_last(outputs)
                outputs = layouts.mark(keras.ops.transpose(found[operation.name], (0, 3, 1, 2)))
            else:
                found[operation.name] = outputs
        if operation.name + INPUT_SUFFIX in wanted and args:
            found[operation.name + INPUT_SUFFIX] = args[0]
        return outputs

    try:
        return run_through_graph(graph_of(model), inputs, call)
    except ValueError:
        # Stopping early leaves the model's outputs unset, which Keras rejects for
        # outputs nested in a dict (detectors); the wanted tensors are recorded anyway.
        if stop and wanted <= found.keys():
            return None
        raise


def feature_model(model: keras.Model, layers: Sequence[str], include_output: bool = True,
                  input_shape: tuple | None = None) -> keras.Model:
    """A model from `model`'s input to the outputs of `layers` (and the final output).

    Works on flat graphs and on models whose backbone is a nested sub-model.

    Args:
        model: a functional Keras model.
        layers: layer names (nested ones included); a name ending in ":input" gives
            that layer's input.
        include_output: append the model's own output as the last output. Defaults to True.
        input_shape: `(h, w, c)` of the new input, e.g. `(None, None, 3)` for any size
            (then only the graph up to the deepest requested layer is rebuilt, and
            `include_output` must be False). Defaults to the model's own input shape.

    Returns:
        A `keras.Model` with outputs `[layer outputs..., model output]`; a layer's
        channels-first map (`data_format="channels_first"`, as models converted from
        PyTorch have) comes out channels-last `[B, h, w, C]` like every other.

    Raises:
        ValueError: for an unknown layer name (listing the conv layers).
    """
    names = [find_layer(model, name.removesuffix(INPUT_SUFFIX)).name +
             (INPUT_SUFFIX if name.endswith(INPUT_SUFFIX) else "") for name in layers]
    shape = tuple(input_shape) if input_shape is not None else tuple(model.inputs[0].shape[1:])
    if input_shape is not None and include_output:
        raise ValueError("include_output=True needs the model's own input shape.")
    inputs = keras.Input(shape=shape, dtype=model.inputs[0].dtype)
    found: dict = {}
    outputs = _trace(model, inputs, set(names), found, stop=not include_output)
    result = [found[name] for name in names]
    if include_output:
        result.append(outputs)
    return keras.Model(inputs, result, name=f"{model.name}_features")


def check_images(images, model: keras.Model | None = None, argument: str = "images") -> tf.Tensor:
    """Validates a batch of images `[B,H,W,C]` (or one `[H,W,C]`) as float32.

    Raises:
        ValueError: for a wrong rank, or channels differing from the model's input.
    """
    array = tf.convert_to_tensor(np.asarray(images) if not tf.is_tensor(images) else images)
    if array.shape.rank == 3:
        array = array[None]
    if array.shape.rank != 4:
        raise ValueError(f"Expected {argument} of shape [batch, height, width, channels] (or "
                         f"one [height, width, channels]); received shape {tuple(array.shape)}.")
    if model is not None:
        channels = model.inputs[0].shape[-1]
        if channels is not None and array.shape[-1] != channels:
            raise ValueError(f"Expected {argument} with {channels} channels for model "
                             f"{model.name!r}; received shape {tuple(array.shape)}.")
    return tf.cast(array, tf.float32)
