"""One view of any Keras model for interpretation: its scored output, its head, its layers.

Users bring models of every shape Keras allows, and explainers break on each in its own
way (seen on the trackers of tf-keras-vis, tf-explain and the Keras Grad-CAM example): a
`keras.Sequential` has no graph until built and its inner graph is private; a backbone
nested as a sub-model (a Sequential or a `keras.applications` model inside a functional
model) hides its layers from `keras.Model(model.inputs, layer.output)` ("Graph
disconnected"); a subclassed model has no `inputs` at all; a model with several outputs
hands only the first to a score function, or silently mixes heads; and a single sigmoid
unit (binary) or independent sigmoids (multi-label) are read as a softmax. `ModelAdapter`
resolves all of this once, and every function of `visionkit.interpret` goes through it:

- `scored`: a model from the image input to the one output explained (chosen with
  `output=` by name or index when there are several; refused without it);
- `head`: what that output is (`OutputHead`: "softmax", "logits", "binary" for one
  sigmoid unit where class 1 is p > 0.5, "multilabel" for independent sigmoids,
  "spatial" for per-pixel outputs, "detector"),
  and how to reach its pre-activation (the logits of a softmax or sigmoid head, which
  Grad-CAM differentiates);
- `find_layer`, `spatial_layer_names`, `check_spatial_layer`, `feature_model`: layers
  by name at any nesting depth, read from one connected graph;
- `check_images` and `target`: inputs and targets checked against that output.

Example:

>>> import keras, numpy as np
>>> model = keras.Sequential([keras.Input((16, 16, 3)),
...                           keras.layers.Conv2D(4, 3, name="conv"),
...                           keras.layers.GlobalAveragePooling2D(),
...                           keras.layers.Dense(1, activation="sigmoid", name="head")])
>>> adapter = ModelAdapter(model)
>>> adapter.head.kind, adapter.head.num_classes, adapter.spatial_layer_names()
('binary', 2, ['conv'])
>>> features, output = adapter.feature_model(["conv"])(np.zeros((1, 16, 16, 3)))
>>> tuple(features.shape), tuple(output.shape)
((1, 14, 14, 4), (1, 1))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from visionkit.interpret.checks import ArgumentError, warn_scaled_pixels
from visionkit.interpret.layers import (
    INPUT_SUFFIX,
    Layouts,
    _trace,
    all_layers,
    conv_layer_names,
    find_layer,
    graph_of,
    spatial_layer_names,
)
from visionkit.keras_internals import tensor_history
from visionkit.models.detection import is_detector
from visionkit.vocabulary import is_opaque, probed_activation

__all__ = ["ModelAdapter", "OutputHead", "adapt", "check_images", "output_head"]

_PROBABILITIES = ("softmax", "sigmoid")


@dataclass(frozen=True)
class OutputHead:
    """What a model's explained output is.

    Attributes:
        kind: "softmax", "logits" (any number of linear units, one linear unit
            included: one score), "binary" (one sigmoid unit: class 1 is p > 0.5),
            "multilabel"
            (independent sigmoids, one per class), "spatial" (`[B, H, W, C]` per-pixel
            outputs) or "detector" (a visionkit detector's dict of outputs).
        num_classes: classes a target may name (2 for the binary kinds).
        layer: the layer producing the output (inside nested models), or None.
        pre_activation: how its logits are reached: "input" (the output layer is a
            softmax/sigmoid activation layer: its input is the logits), "dense" (a Dense
            layer with a softmax/sigmoid activation: its kernel and bias applied to its
            input), or None (the output is already logits, or they are out of reach).
    """

    kind: str
    num_classes: int | None
    layer: keras.layers.Layer | None = None
    pre_activation: str | None = None

    @property
    def binary(self) -> bool:
        return self.kind == "binary"

    @property
    def from_logits(self) -> bool:
        return self.kind == "logits"


def _activation_name(layer) -> str:
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", str(activation)) if activation is not None else ""


def _producer(tensor) -> keras.layers.Layer | None:
    """The innermost layer producing `tensor`, descending into nested models."""
    history = tensor_history(tensor)
    if history is None:
        return None
    operation = history.operation
    graph = graph_of(operation) if isinstance(operation, keras.Model) else None
    if graph is not None:
        outputs = tf.nest.flatten(graph.output)
        return _producer(outputs[min(history.tensor_index, len(outputs) - 1)])
    if isinstance(operation, keras.Model):  # a subclassed model: its last layer, a guess
        inner = [layer for layer in operation.layers if not isinstance(layer, keras.Model)]
        return inner[-1] if inner else None
    return operation


def output_head(model: keras.Model, output_tensor=None) -> OutputHead:
    """The `OutputHead` of `model`'s single output (or of `output_tensor` in it).

    Example:

    >>> import keras
    >>> inputs = keras.Input((4,))
    >>> logits = keras.layers.Dense(3, name="logits")(inputs)
    >>> head = output_head(keras.Model(inputs, keras.layers.Softmax()(logits)))
    >>> head.kind, head.num_classes, head.pre_activation
    ('softmax', 3, 'input')
    """
    tensor = output_tensor if output_tensor is not None else model.outputs[0]
    shape = tuple(tensor.shape)
    layer = _producer(tensor)
    activation = _activation_name(layer) if layer is not None else ""
    if len(shape) == 4:
        return OutputHead("spatial", shape[-1], layer)
    if len(shape) != 2:
        return OutputHead("other", None, layer)
    if activation in _PROBABILITIES:
        pre = None
        if isinstance(layer, (keras.layers.Activation, keras.layers.Softmax)):
            pre = "input"
        elif isinstance(layer, keras.layers.Dense):
            pre = "dense"
        if activation == "sigmoid":
            kind = "binary" if shape[-1] == 1 else "multilabel"
        else:
            kind = "softmax"
        return OutputHead(kind, 2 if kind == "binary" else shape[-1], layer, pre)
    if layer is not None and is_opaque(layer):
        # A Lambda applying tf.nn.softmax: probed (and said) once per layer.
        reader = model if tensor is model.outputs[0] else keras.Model(model.inputs, tensor)
        if probed_activation(reader, layer) == "softmax":
            return OutputHead("softmax", shape[-1], layer)
    # One linear unit stays one score (a regression, or a binary logit: then pass
    # ClassScore(class_id, binary=True, from_logits=True) for its two classes); reading
    # it as two classes would silently turn target=0 into -z.
    return OutputHead("logits", shape[-1], layer)


def _wrap_opaque(model: keras.Model) -> keras.Model:
    """A functional model around a subclassed model (or an unbuilt Sequential) that
    knows its input shape from `build` or a first call."""
    shape = (getattr(model, "_build_shapes_dict", None) or {}).get("input_shape")
    if shape is None or len(shape) != 4:
        raise ArgumentError("model", f"Model {model.name!r} ({type(model).__name__}) has no "
                            "known input shape: build it first (model.build((None, height, "
                            "width, channels)) or call it on a batch), or give it a "
                            "keras.Input.")
    inputs = keras.Input(shape=tuple(shape[1:]), name=f"{model.name}_input")
    return keras.Model(inputs, model(inputs), name=f"{model.name}_view")


class ModelAdapter:
    """Interpretation's view of a Keras model of any shape.

    Args:
        model: a Keras model taking one image batch `[B, H, W, C]`: functional,
            Sequential (built), subclassed (built with an input shape or called once),
            with sub-models nested at any depth.
        output: which output is explained when the model has several: an output name
            (`model.output_names`, or the name of the layer producing it) or an index.
            Refused for a single-output model unless it names that output. Defaults to
            None.
        require_output: whether a model with several outputs needs `output=` (the
            methods that score an output); methods that only read layers pass False.
            Defaults to True.

    Attributes:
        model: the model given.
        graph: a functional model traced for layers (the model itself when functional).
        scored: a model from the image input to the explained output.
        head: the `OutputHead` of that output.
        output_name: the explained output's name (None for a single output).

    Raises:
        ArgumentError: naming `model` (several image inputs, unknown input shape) or
            `output` (missing for several outputs, unknown name, index out of range).
    """

    def __init__(self, model: keras.Model, output: str | int | None = None,
                 require_output: bool = True):
        if not isinstance(model, keras.Model):
            raise ArgumentError("model", f"Expected a keras.Model; received "
                                f"{type(model).__name__}.")
        self.model = model
        graph = graph_of(model)
        if graph is None or not getattr(graph, "inputs", None):
            graph = _wrap_opaque(model)
        self.graph = graph
        if len(graph.inputs) != 1:
            raise ArgumentError("model", f"Expected a model with one image input; model "
                                f"{model.name!r} has {len(graph.inputs)} inputs "
                                f"{[tuple(t.shape) for t in graph.inputs]}. Explain a "
                                "sub-model that takes the images alone.")
        self.input_shape = tuple(graph.inputs[0].shape[1:])
        if len(self.input_shape) != 3:
            raise ArgumentError("model", f"Expected a model on images [batch, height, width, "
                                f"channels]; model {model.name!r} takes inputs of shape "
                                f"{(None, *self.input_shape)}.")
        self.output_name = None
        self.detector = is_detector(model)
        outputs = list(graph.outputs)
        names = list(getattr(graph, "output_names", []) or [])
        if self.detector:
            self.scored = model
            self.head = OutputHead("detector", None)
            return
        if len(outputs) > 1 or output is not None:
            index = self._output_index(output, outputs, names, require_output)
            if index is None:  # several outputs, only layers are read
                self.scored = graph
                self.head = OutputHead("other", None)
                return
            self.output_name = names[index] if index < len(names) else str(index)
            tensor = outputs[index]
            self.scored = (graph if len(outputs) == 1 else
                           keras.Model(graph.inputs, tensor, name=f"{model.name}_{index}"))
        else:
            tensor = outputs[0]
            self.scored = model if graph is model or graph_of(model) is graph else graph
        self.head = output_head(self.scored, tensor)

    def _output_index(self, output, outputs, names, require_output) -> int | None:
        producers = [getattr(tensor_history(t), "operation", None)
                     for t in outputs]
        labels = [names[i] if i < len(names) else (getattr(producers[i], "name", str(i)))
                  for i in range(len(outputs))]
        if output is None:
            if not require_output:
                return None
            raise ArgumentError("output", f"Model {self.model.name!r} has {len(outputs)} "
                                f"outputs {labels}; choose the one to explain with output= "
                                f"(a name or an index in [0, {len(outputs) - 1}]).")
        if isinstance(output, (int, np.integer)) and not isinstance(output, bool):
            if 0 <= output < len(outputs):
                return int(output)
        elif isinstance(output, str):
            for index, (label, producer) in enumerate(zip(labels, producers)):
                if output in (label, getattr(producer, "name", None)):
                    return index
        raise ArgumentError("output", f"Expected output= one of {labels} or an index in "
                            f"[0, {len(outputs) - 1}]; received output={output!r}.")

    # ---------------------------------------------------------------- layers
    def find_layer(self, name: str, argument: str = "layer") -> keras.layers.Layer:
        """The layer called `name` (nested models searched at any depth).

        Raises:
            ArgumentError: naming `argument`, listing the convolution layers.
        """
        if not isinstance(name, str):
            raise ArgumentError(argument, f"Expected {argument} to be a layer name (str); "
                                f"received {argument}={name!r}.")
        try:
            return find_layer(self.graph, name)
        except ArgumentError as error:
            raise ArgumentError(argument, str(error).replace("Model " + repr(self.graph.name),
                                                            "Model " + repr(self.model.name))
                                ) from None

    def layers(self) -> list[keras.layers.Layer]:
        """Every layer in graph order, nested ones included."""
        return all_layers(self.graph)

    def conv_layer_names(self) -> list[str]:
        """Names of the 2D convolution layers, nested ones included."""
        return conv_layer_names(self.graph)

    def spatial_layer_names(self) -> list[str]:
        """Names of the layers with a `[B, h, w, C]` output, nested ones included."""
        return spatial_layer_names(self.graph)

    def check_spatial_layer(self, name: str, argument: str = "layer") -> keras.layers.Layer:
        """The layer `name`, checked to output a spatial map `[B, h, w, C]` and to be
        called once in the graph.

        Raises:
            ArgumentError: naming `argument` and listing the layers that qualify.
        """
        layer = self.find_layer(name, argument)
        try:
            shape = tuple(layer.output.shape)
        except (AttributeError, ValueError):
            shape = None
        if shape is None or len(shape) != 4:
            raise ArgumentError(argument, f"Expected {argument} to name a layer with a "
                                f"spatial map [batch, height, width, channels]; layer "
                                f"{name!r} outputs {shape}. Layers with a spatial map: "
                                f"{self.spatial_layer_names() or 'none'}.")
        if self.calls().get(layer.name, 0) > 1:
            raise ArgumentError(argument, f"Layer {name!r} is called at "
                                f"{self.calls()[layer.name]} places in model "
                                f"{self.model.name!r}, so its map is ambiguous; choose a "
                                "layer called once.")
        return layer

    def calls(self) -> dict[str, int]:
        """How many times each layer (nested ones included) is called in the graph."""
        if getattr(self, "_calls", None) is None:
            counts: dict = {}
            layouts = Layouts()
            _trace(self.graph, keras.Input(shape=self.input_shape,
                                           dtype=self.graph.inputs[0].dtype),
                   set(), {}, False, counts, layouts)
            self._calls, self._channels_first = counts, frozenset(layouts.names)
        return self._calls

    def channels_first(self) -> frozenset[str]:
        """Names of the layers whose maps are channels-first `[B, C, h, w]` (a model
        converted from PyTorch); `feature_model` gives them channels-last."""
        self.calls()
        return self._channels_first

    def map_shape(self, layer: keras.layers.Layer) -> tuple:
        """`(batch, h, w, C)` of a spatial layer's map, whatever its layout."""
        shape = tuple(layer.output.shape)
        if layer.name in self.channels_first():
            return (shape[0], shape[2], shape[3], shape[1])
        return shape

    def channels(self, name: str, argument: str = "layer") -> int:
        """Channels of a spatial layer's map."""
        return int(self.map_shape(self.check_spatial_layer(name, argument))[-1])

    def feature_model(self, layers: Sequence[str], include_output: bool = True,
                      input_shape: tuple | None = None, logits: bool = False) -> keras.Model:
        """A model from the images to `layers` (and the explained output last).

        Args:
            layers: layer names, nested ones included; a name ending in ":input" gives
                that layer's input.
            include_output: append the explained output. Defaults to True.
            input_shape: `(h, w, c)` of the new input (e.g. `(None, None, 3)`); then
                `include_output` must be False. Defaults to the model's input shape.
            logits: with `include_output`, append the output's pre-activation (the
                logits of a softmax or sigmoid head) instead, when `head.pre_activation`
                reaches it. Defaults to False.

        Returns:
            A `keras.Model` with outputs `[layer outputs..., output]`.
        """
        names = [self.find_layer(name.removesuffix(INPUT_SUFFIX)).name +
                 (INPUT_SUFFIX if name.endswith(INPUT_SUFFIX) else "") for name in layers]
        if input_shape is not None and include_output:
            raise ValueError("include_output=True needs the model's own input shape.")
        shape = tuple(input_shape) if input_shape is not None else self.input_shape
        head = self.head.layer if (logits and include_output and
                                   self.head.pre_activation) else None
        wanted = list(names) + ([head.name + INPUT_SUFFIX] if head is not None else [])
        inputs = keras.Input(shape=shape, dtype=self.graph.inputs[0].dtype)
        found: dict = {}
        scored_graph = self.scored if include_output else self.graph
        outputs = _trace(graph_of(scored_graph) or scored_graph, inputs, set(wanted), found,
                         stop=not include_output)
        result = [found[name] for name in names]
        if include_output:
            if head is not None:
                outputs = self._pre_activation(found[head.name + INPUT_SUFFIX])
            result.append(outputs)
        return keras.Model(inputs, result, name=f"{self.model.name}_features")

    def require_float_input(self, method: str) -> None:
        """Raises ArgumentError naming `model` when the model's input is integer (uint8
        images cast inside): no gradient reaches its pixels, so `method` cannot work."""
        dtype = str(self.graph.inputs[0].dtype)
        if "float" not in dtype:
            raise ArgumentError("model", f"{method} follows gradients to the pixels, but "
                                f"model {self.model.name!r} takes {dtype} inputs, which have "
                                "none. Give it a float32 input (the model may still cast), or "
                                "use occlusion or grad_cam.")

    def fits(self, layers: Sequence[str], size: tuple[int, int]) -> bool:
        """Whether images of `size` `(h, w)` give every layer of `layers` a non-empty map
        (checked symbolically, nothing is computed)."""
        channels = self.input_shape[-1]
        key = tuple(layers)
        if getattr(self, "_fits_key", None) != key:
            self._fits_key = key
            self._fits_model = self.feature_model(layers, include_output=False,
                                                  input_shape=(None, None, channels))
        try:
            specs = self._fits_model.compute_output_spec(
                keras.KerasTensor((1, int(size[0]), int(size[1]), channels)))
        except Exception:  # noqa: BLE001  (any layer may refuse a too-small input its own way)
            return False
        return all(all(d is None or d > 0 for d in spec.shape[1:-1])
                   for spec in tf.nest.flatten(specs))

    def smallest_side(self, layers: Sequence[str], limit: int = 4096) -> int:
        """The smallest square image side (pixels) that `fits` `layers`."""
        low, high = 1, 1
        while not self.fits(layers, (high, high)):
            low, high = high + 1, high * 2
            if high > limit:
                return limit
        while low < high:
            middle = (low + high) // 2
            low, high = (low, middle) if self.fits(layers, (middle, middle)) else (middle + 1,
                                                                                     high)
        return high

    def check_input_size(self, layers: Sequence[str], size: tuple[int, int],
                         argument: str) -> None:
        """Raises ArgumentError naming `argument` when images of `size` are too small for
        `layers` (say, octaves shrinking the image below what a deep layer needs)."""
        if not self.fits(layers, size):
            side = self.smallest_side(layers)
            raise ArgumentError(argument, f"Images of {size[0]}x{size[1]} pixels are too small "
                                f"for layer(s) {list(layers)} of model {self.model.name!r}: "
                                f"their maps would be empty. Expected {argument} to keep "
                                f"every image at least {side}x{side} pixels.")

    def _pre_activation(self, head_input):
        layer = self.head.layer
        if self.head.pre_activation == "input":
            return head_input
        values = keras.ops.matmul(keras.ops.cast(head_input, "float32"),
                                  keras.ops.cast(layer.kernel, "float32"))
        return values + keras.ops.cast(layer.bias, "float32") if layer.use_bias else values

    # ---------------------------------------------------------------- inputs and targets
    def check_images(self, images: Any, argument: str = "images") -> tf.Tensor:
        """A batch `[B, H, W, C]` (or one `[H, W, C]`) checked against the model's input,
        as float32 (see `check_images`)."""
        return check_images(images, self.input_shape, self.model.name, argument)

    def target(self, target: Any = None, task: Any = None, batch_size: int | None = None):
        """The `Target` explaining `target` on the explained output (asked of the task).

        Raises:
            ArgumentError: naming `target`, for class ids out of range or a count of ids
                differing from the batch.
        """
        from visionkit.interpret.targets import resolve_target

        resolved = resolve_target(self.scored, target, task)
        if batch_size is not None:
            resolved.check_batch(batch_size)
        return resolved


def check_images(images: Any, input_shape: tuple = (None, None, None), model_name: str = "",
                 argument: str = "images") -> tf.Tensor:
    """A batch `[B, H, W, C]` (or one `[H, W, C]`) of real numbers as float32.

    `input_shape` `(h, w, c)` is the model's input (None: any).

    Raises:
        ArgumentError: naming `argument`, for a wrong rank, dtype, channels or size
            (when the model's input size is fixed), an empty batch, or NaN/infinity.

    Warns:
        PixelRangeWarning: for float images within 0..1 (`warn_scaled_pixels`).
    """
    if tf.is_tensor(images):
        array = images.numpy() if hasattr(images, "numpy") else None
    else:
        try:
            array = np.asarray(images)
        except (TypeError, ValueError):
            array = None
    if array is None or array.dtype.kind not in "biuf":
        kind = getattr(array, "dtype", type(images).__name__)
        raise ArgumentError(argument, f"Expected {argument} as real numbers (uint8 or "
                            f"float pixels); received dtype {kind}.")
    if array.ndim == 3:
        array = array[None]
    expected = (None, *input_shape)
    if array.ndim != 4:
        raise ArgumentError(argument, f"Expected {argument} of shape [batch, height, "
                            f"width, channels] (or one [height, width, channels]); "
                            f"received shape {array.shape}.")
    if 0 in array.shape[:3]:
        raise ArgumentError(argument, f"Expected at least one image of at least one pixel in "
                            f"{argument}; "
                            f"received shape {array.shape}.")
    channels = input_shape[-1]
    if channels is not None and array.shape[-1] != channels:
        raise ArgumentError(argument, f"Expected {argument} with {channels} channels for "
                            f"model {model_name!r}; received shape {array.shape}.")
    size = input_shape[:2]
    if any(s is not None and s != a for s, a in zip(size, array.shape[1:3])):
        raise ArgumentError(argument, f"Expected {argument} of {size[0]}x{size[1]} pixels "
                            f"(model {model_name!r} takes inputs {expected}); "
                            f"received shape {array.shape}. Resize them first.")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise ArgumentError(argument, f"Expected finite pixel values in {argument}; "
                            f"received {int(np.size(array) - np.isfinite(array).sum())} "
                            "NaN or infinite values.")
    warn_scaled_pixels(array, argument, model_name)
    return tf.constant(array.astype(np.float32))


_CACHE: dict = {}
# Adapters kept (a report alternates scoring and layer-reading methods on one model; the
# bound keeps a script that builds many models from holding them all).
_CACHED_ADAPTERS = 4


def adapt(model: keras.Model, output: str | int | None = None,
          require_output: bool = True) -> ModelAdapter:
    """The `ModelAdapter` of `model` (one cached per model, output and requirement).

    Passing an adapter returns it unchanged.
    """
    if isinstance(model, ModelAdapter):
        return model
    key = (id(model), output, require_output)
    cached = _CACHE.get(key)
    if cached is None or cached.model is not model:
        if len(_CACHE) >= _CACHED_ADAPTERS:
            _CACHE.clear()
        cached = _CACHE[key] = ModelAdapter(model, output, require_output)
    return cached
