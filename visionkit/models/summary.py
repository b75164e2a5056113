"""`summary`: parameters, memory, FLOPs and receptive field of a functional model.

Every number is computed analytically from the model's graph; nothing runs on data.

- **Parameters**: trainable and non-trainable counts (their sum is `count_params()`),
  and their memory by each variable's own dtype.
- **Optimizer memory**: the weights plus the optimizer's per-weight slots, which exist
  for trainable weights only. Rule: copies of each trainable weight = 1 for plain SGD;
  2 for SGD with momentum, RMSprop (without momentum), Adagrad and Lion; 3 for Adam,
  AdamW, Nadam and Adamax (an optimizer instance is read exactly: momentum, `centered`
  and `amsgrad` add a slot). Gradients, which also live during a step, are not counted.
- **Activation memory (an estimate)**: the sum over layers of output elements x dtype
  size x `batch_size` (the inputs included), for one forward pass that keeps every
  layer output for the backward pass. In-place ops and XLA fusion lower the real
  figure; gradients during the backward pass raise it.
- **FLOPs per image**: 2 x the multiply-adds of Conv1D/2D/3D, DepthwiseConv, SeparableConv
  (depthwise + pointwise), Conv*Transpose and Dense layers (bias additions, batch norm,
  activations, pooling and element-wise merges are not counted). Nested models are walked.
  A layer with a `flops_per_image(input_shapes)` method reports its own count (visionkit's
  CoordConv2D, SqueezeExcitation, CBAM, NonLocalBlock, AttentionGate and
  SpatialTransformer: their inner convolutions, dense layers and attention products).
- **Receptive field**: per spatial axis, over the graph: a convolution or pooling with
  kernel k, dilation d and stride s maps (size r, jump j) to (r + (d(k-1)+1-1) j, j s);
  a transposed convolution to (r + (ceil((d(k-1)+1)/s)-1) j, j/s); upsampling to
  (r, j/size); merges take the maximum over their inputs. The reported field is that
  of the last convolution layer(s): those with a path to an output that passes through
  no other convolution (the largest if several). Global pooling, Flatten and dense
  layers on vectors end spatial extent, so squeeze-excite gates count as per-channel
  scales (strictly they make every output depend on the whole image); so do non-local
  blocks and spatial transformers, whose outputs also depend on every position. The
  theoretical
  field can exceed the image; the effective one is smaller.

Example:

>>> import keras
>>> model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(8, 3),
...                           keras.layers.MaxPooling2D(2), keras.layers.Conv2D(8, 3)])
>>> info = summary(model, batch_size=8)
>>> info.receptive_field, info.receptive_field_jump
((8, 8), (2, 2))
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

import keras
import numpy as np

from visionkit.keras_internals import functional_graph, graph_nodes_by_depth
from visionkit.vocabulary import did_you_mean

__all__ = ["LayerSummary", "ModelSummary", "OPTIMIZER_COPIES", "summary"]

# Copies of each trainable weight an optimizer keeps (the weight itself + its slots).
OPTIMIZER_COPIES = {
    "sgd": 1,
    "sgd_momentum": 2,
    "rmsprop": 2,
    "adagrad": 2,
    "lion": 2,
    "adam": 3,
    "adamw": 3,
    "nadam": 3,
    "adamax": 3,
}

_CONVOLUTIONS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
_DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
_SEPARABLE = (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
_TRANSPOSED = (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose,
               keras.layers.Conv3DTranspose)
_ALL_CONVOLUTIONS = _CONVOLUTIONS + _DEPTHWISE + _SEPARABLE + _TRANSPOSED
_POOLING = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
_GLOBAL = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D,
           keras.layers.Flatten)


@dataclass(frozen=True)
class _Field:
    """Receptive field size and jump (input pixels between neighbouring outputs)."""

    size: tuple[float, float]
    jump: tuple[float, float]

    @property
    def area(self) -> float:
        return self.size[0] * self.size[1]


@dataclass(frozen=True)
class _TensorInfo:
    shape: tuple[int, ...]              # without the batch axis
    dtype: str
    field: _Field | None                 # None: no spatial extent (a vector, a global map)
    last_conv: tuple[str, _Field] | None  # the last convolution on a path to this tensor


@dataclass(frozen=True)
class LayerSummary:
    """One layer call: its path (nested models joined by "/"), outputs and costs."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    flops: int
    activation_bytes: int
    receptive_field: tuple[int | float, int | float] | None


@dataclass(frozen=True)
class ModelSummary:
    """What `summary` measured; `str()` gives a readable report, `to_dict()` plain data."""

    name: str
    input_shape: tuple[int, ...]
    batch_size: int
    optimizer: str
    trainable_params: int
    non_trainable_params: int
    param_bytes: int
    trainable_param_bytes: int
    optimizer_copies: int
    training_param_bytes: int
    activation_bytes: int
    flops: int
    receptive_field: tuple[int | float, int | float] | None
    receptive_field_jump: tuple[int | float, int | float] | None
    receptive_field_layer: str | None
    layers: tuple[LayerSummary, ...]

    @property
    def total_params(self) -> int:
        return self.trainable_params + self.non_trainable_params

    def to_dict(self) -> dict:
        """Plain Python data (lists, not tuples), ready for JSON."""
        data = dataclasses.asdict(self)
        data["total_params"] = self.total_params
        return _lists(data)

    def table(self) -> str:
        """One row per layer call: name, type, output shape, params, FLOPs, field."""
        header = f"{'Layer':<44} {'Type':<22} {'Output':<18} {'Params':>11} {'FLOPs':>9} RF"
        rows = [header, "-" * len(header)]
        for layer in self.layers:
            field = "x".join(_number(v) for v in layer.receptive_field) if (
                layer.receptive_field) else "-"
            rows.append(f"{layer.name[-44:]:<44} {layer.kind[:22]:<22} "
                        f"{str(layer.output_shape)[:18]:<18} {layer.params:>11,} "
                        f"{_si(layer.flops):>9} {field}")
        return "\n".join(rows)

    def __str__(self) -> str:
        field = "none (no convolution)"
        if self.receptive_field is not None:
            size = " x ".join(_number(v) for v in self.receptive_field)
            jump = " x ".join(_number(v) for v in self.receptive_field_jump)
            field = f"{size} px, jump {jump} (at {self.receptive_field_layer})"
        return "\n".join([
            f"Model {self.name!r}: input {self.input_shape}, batch {self.batch_size}",
            f"  Parameters          {self.total_params:,} (trainable "
            f"{self.trainable_params:,}, non-trainable {self.non_trainable_params:,})",
            f"  Parameter memory    {_bytes(self.param_bytes)}",
            f"  With optimizer      {_bytes(self.training_param_bytes)} ({self.optimizer}: "
            f"trainable weights x{self.optimizer_copies})",
            f"  Activations (est.)  {_bytes(self.activation_bytes)} (forward pass, every "
            f"layer output kept, batch {self.batch_size})",
            f"  FLOPs per image     {_si(self.flops)} (2 x multiply-adds)",
            f"  Receptive field     {field}",
        ])


def summary(model: keras.Model, batch_size: int = 32,
            optimizer: str | keras.optimizers.Optimizer = "adam",
            input_shape: tuple[int, ...] | None = None) -> ModelSummary:
    """Parameters, memory, FLOPs and receptive field of a functional or Sequential model.

    See the module docstring for how each number is computed.

    Args:
        model: a built functional or Sequential `keras.Model` (nested functional and
            Sequential sub-models are walked; other sub-models count their parameters
            but no FLOPs).
        batch_size: images per batch for the activation memory. Defaults to 32.
        optimizer: a name from `OPTIMIZER_COPIES` or a Keras optimizer instance.
            Defaults to "adam".
        input_shape: `(height, width, channels)` to use when the model's input size is
            not fixed. Defaults to None (the model's own).

    Returns:
        A `ModelSummary`.

    Raises:
        ValueError: for a model that is not a built functional/Sequential model, an input
            of unknown size without `input_shape`, a bad `batch_size` or an unknown
            optimizer name.

    Example:

    >>> import visionkit as vk
    >>> model = vk.models.build("resnet18", input_shape=(224, 224, 3), num_classes=1000)
    >>> info = vk.models.summary(model, batch_size=32)
    >>> info.total_params == model.count_params(), info.receptive_field
    (True, (435, 435))
    """
    if int(batch_size) < 1:
        raise ValueError(f"Expected batch_size >= 1; received batch_size={batch_size!r}.")
    copies, optimizer_name = _optimizer_copies(optimizer)
    graph = _graph(model)
    if graph is None:
        raise ValueError("summary walks functional and Sequential models with known "
                         f"inputs; received {type(model).__name__} {model.name!r} (build it "
                         "on a keras.Input first).")
    inputs = _input_infos(graph, input_shape)
    layers: list[LayerSummary] = [
        LayerSummary(tensor.name or f"input_{index}", "InputLayer", info.shape, 0, 0,
                     _elements(info.shape) * _itemsize(info.dtype) * int(batch_size),
                     _rounded(info.field.size) if info.field else None)
        for index, (tensor, info) in enumerate(zip(graph.inputs, inputs))]
    outputs = _walk(graph, inputs, "", int(batch_size), layers)
    last = max((o.last_conv for o in outputs if o.last_conv), key=lambda c: c[1].area,
               default=None)
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    non_trainable = sum(int(np.prod(v.shape)) for v in model.non_trainable_weights)
    param_bytes = _variable_bytes(model.weights)
    trainable_bytes = _variable_bytes(model.trainable_weights)
    return ModelSummary(
        name=model.name,
        input_shape=inputs[0].shape,
        batch_size=int(batch_size),
        optimizer=optimizer_name,
        trainable_params=trainable,
        non_trainable_params=non_trainable,
        param_bytes=param_bytes,
        trainable_param_bytes=trainable_bytes,
        optimizer_copies=copies,
        training_param_bytes=param_bytes + (copies - 1) * trainable_bytes,
        activation_bytes=sum(layer.activation_bytes for layer in layers),
        flops=sum(layer.flops for layer in layers),
        receptive_field=_rounded(last[1].size) if last else None,
        receptive_field_jump=_rounded(last[1].jump) if last else None,
        receptive_field_layer=last[0] if last else None,
        layers=tuple(layers),
    )


def _optimizer_copies(optimizer: str | keras.optimizers.Optimizer) -> tuple[int, str]:
    if isinstance(optimizer, keras.optimizers.Optimizer):
        kind = type(optimizer).__name__.lower()
        momentum = float(getattr(optimizer, "momentum", 0.0) or 0.0) > 0
        if kind == "sgd":
            return 1 + momentum, "sgd_momentum" if momentum else "sgd"
        if kind == "rmsprop":
            return 2 + momentum + bool(optimizer.centered), kind
        if kind in ("adam", "adamw"):
            return 3 + bool(optimizer.amsgrad), kind
        if kind in OPTIMIZER_COPIES:
            return OPTIMIZER_COPIES[kind], kind
        raise ValueError(f"summary knows the slots of {sorted(OPTIMIZER_COPIES)}; received "
                         f"an optimizer of type {type(optimizer).__name__}.")
    key = str(optimizer).lower()
    if key not in OPTIMIZER_COPIES:
        hint = did_you_mean(key, OPTIMIZER_COPIES, n=3, cutoff=0.5)
        raise ValueError(f"Unknown optimizer {optimizer!r}.{hint} Expected one of "
                         f"{', '.join(sorted(OPTIMIZER_COPIES))} or an optimizer instance.")
    return OPTIMIZER_COPIES[key], key


def _graph(model: keras.Layer) -> keras.Model | None:
    """The functional graph of a functional or Sequential model (None otherwise)."""
    return functional_graph(model)


def _input_infos(graph: keras.Model, input_shape: tuple | None) -> list[_TensorInfo]:
    infos = []
    for tensor in graph.inputs:
        shape = tuple(tensor.shape[1:])
        if input_shape is not None:
            if len(graph.inputs) != 1 or len(tuple(input_shape)) != len(shape):
                raise ValueError(f"input_shape {input_shape!r} does not fit the model's "
                                 f"inputs {[tuple(t.shape) for t in graph.inputs]}.")
            shape = tuple(int(v) for v in input_shape)
        if any(v is None for v in shape):
            raise ValueError(f"The model's input has unknown size {shape}; pass "
                             "input_shape=(height, width, channels).")
        field = _Field((1.0, 1.0), (1.0, 1.0)) if len(shape) == 3 else None
        infos.append(_TensorInfo(shape, str(tensor.dtype), field, None))
    return infos


def _walk(graph: keras.Model, inputs: list[_TensorInfo], prefix: str, batch_size: int,
          layers: list[LayerSummary]) -> list[_TensorInfo]:
    """Visits the graph in dependency order, appending one `LayerSummary` per call."""
    infos = {id(tensor): info for tensor, info in zip(graph.inputs, inputs)}
    nodes = graph_nodes_by_depth(graph)
    for depth in sorted(nodes, reverse=True):
        for node in nodes[depth]:
            if node.is_input or any(id(t) not in infos for t in node.input_tensors):
                continue
            arguments = [infos[id(t)] for t in node.input_tensors]
            operation = node.operation
            subgraph = _graph(operation) if isinstance(operation, keras.Model) else None
            if subgraph is not None:
                results = _walk(subgraph, arguments, f"{prefix}{operation.name}/",
                                batch_size, layers)
            else:
                results = _visit(node, arguments, f"{prefix}{operation.name}", batch_size,
                                 layers)
            for tensor, info in zip(node.outputs, results):
                infos[id(tensor)] = info
    return [infos[id(tensor)] for tensor in graph.outputs]


def _visit(node, arguments: list[_TensorInfo], name: str, batch_size: int,
           layers: list[LayerSummary]) -> list[_TensorInfo]:
    layer = node.operation
    shapes = _output_shapes(node, arguments)
    field = _field(layer, arguments, shapes[0])
    previous = max((a.last_conv for a in arguments if a.last_conv), key=lambda c: c[1].area,
                   default=None)
    last_conv = (name, field) if isinstance(layer, _ALL_CONVOLUTIONS) and field else previous
    if hasattr(layer, "flops_per_image"):
        flops = int(layer.flops_per_image([a.shape for a in arguments]))
    else:
        flops = _flops(layer, arguments[0].shape if arguments else (), shapes[0])
    dtypes = [str(t.dtype) for t in node.outputs]
    activation_bytes = sum(_elements(s) * _itemsize(d) for s, d in zip(shapes, dtypes))
    layers.append(LayerSummary(
        name, type(layer).__name__, shapes[0],
        sum(int(np.prod(v.shape)) for v in getattr(layer, "weights", [])), flops,
        activation_bytes * batch_size, _rounded(field.size) if field else None))
    return [_TensorInfo(s, d, field, last_conv) for s, d in zip(shapes, dtypes)]


def _output_shapes(node, arguments: list[_TensorInfo]) -> list[tuple[int, ...]]:
    """Output shapes without the batch axis; recomputed when the graph's are not fixed."""
    shapes = [tuple(t.shape[1:]) for t in node.outputs]
    known = all(v is not None for s in shapes for v in s)
    same_inputs = all(tuple(t.shape[1:]) == a.shape
                      for t, a in zip(node.input_tensors, arguments))
    if known and same_inputs:
        return shapes
    concrete = {id(t): keras.KerasTensor((None, *a.shape), dtype=a.dtype)
                for t, a in zip(node.input_tensors, arguments)}
    args, kwargs = node.arguments.fill_in(concrete)
    specs = keras.tree.flatten(node.operation.compute_output_spec(*args, **kwargs))
    return [tuple(spec.shape[1:]) for spec in specs]


def _pair(value) -> tuple[int, int]:
    values = tuple(value) if isinstance(value, list | tuple) else (value, value)
    return int(values[0]), int(values[-1])


def _field(layer: keras.Layer, arguments: list[_TensorInfo], shape: tuple) -> _Field | None:
    """The receptive field of the layer's output (None when it has no spatial extent)."""
    fields = [a.field for a in arguments if a.field is not None]
    if not fields or len(shape) != 3 or isinstance(layer, _GLOBAL):
        return None
    size = tuple(max(f.size[axis] for f in fields) for axis in (0, 1))
    jump = tuple(max(f.jump[axis] for f in fields) for axis in (0, 1))
    if isinstance(layer, _ALL_CONVOLUTIONS + _POOLING) and len(arguments[0].shape) == 3:
        kernel = _pair(getattr(layer, "kernel_size", None) or layer.pool_size)
        strides = _pair(layer.strides or kernel)
        dilation = _pair(getattr(layer, "dilation_rate", 1))
        extent = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
        if isinstance(layer, _TRANSPOSED):
            size = tuple(r + (math.ceil(e / s) - 1) * j
                         for r, e, s, j in zip(size, extent, strides, jump))
            jump = tuple(j / s for j, s in zip(jump, strides))
        else:
            size = tuple(r + (e - 1) * j for r, e, j in zip(size, extent, jump))
            jump = tuple(j * s for j, s in zip(jump, strides))
    elif isinstance(layer, keras.layers.UpSampling2D):
        jump = tuple(j / s for j, s in zip(jump, _pair(layer.size)))
    return _Field(size, jump)


def _flops(layer: keras.Layer, input_shape: tuple, output_shape: tuple) -> int:
    """2 x multiply-adds of one call, per image (0 for layers not counted)."""
    if not input_shape:
        return 0
    input_channels = input_shape[-1]
    kernel = int(np.prod(getattr(layer, "kernel_size", ()) or (1,)))
    output_positions = int(np.prod(output_shape[:-1]))
    if isinstance(layer, _TRANSPOSED):  # every input pixel scatters a full kernel
        return 2 * int(np.prod(input_shape[:-1])) * input_channels * kernel * layer.filters
    if isinstance(layer, _SEPARABLE):
        depthwise = input_channels * layer.depth_multiplier
        return 2 * output_positions * depthwise * (kernel + layer.filters)
    if isinstance(layer, _DEPTHWISE):
        return 2 * output_positions * input_channels * layer.depth_multiplier * kernel
    if isinstance(layer, _CONVOLUTIONS):
        groups = getattr(layer, "groups", 1) or 1
        return 2 * output_positions * layer.filters * kernel * input_channels // groups
    if isinstance(layer, keras.layers.Dense):
        return 2 * _elements(input_shape) * layer.units
    return 0


def _elements(shape: tuple) -> int:
    return int(np.prod(shape)) if shape else 1


def _itemsize(dtype: str) -> int:
    """Bytes per element of a dtype name ("float32" -> 4, "bfloat16" -> 2)."""
    name = keras.backend.standardize_dtype(dtype)
    if name == "bool":
        return 1
    bits = re.search(r"(\d+)", name)
    return int(bits.group(1)) // 8 if bits else np.dtype(name).itemsize


def _variable_bytes(variables: list) -> int:
    return sum(int(np.prod(v.shape)) * _itemsize(v.dtype) for v in variables)


def _rounded(values: tuple[float, ...]) -> tuple[int | float, ...]:
    return tuple(int(v) if float(v).is_integer() else float(v) for v in values)


def _number(value: float) -> str:
    return f"{value:g}"


def _bytes(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{count} B"
        count /= 1024
    return f"{count} B"  # pragma: no cover


def _si(count: int) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= scale:
            return f"{count / scale:.2f} {unit}"
    return str(count)


def _lists(value):
    if isinstance(value, dict):
        return {key: _lists(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_lists(item) for item in value]
    return value
