"""Numeric precision and XLA choices: resolving "auto" and applying a dtype policy."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from visionkit.keras_internals import flatten_layers, producing_layer

__all__ = ["resolve_mixed_precision", "resolve_jit_compile", "rebuild_model",
           "PRECISIONS", "has_accelerator", "float16_layers", "with_loss_scaling"]

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
_ALIASES = {"fp32": "float32", "float16": "mixed_float16", "fp16": "mixed_float16",
            "bfloat16": "mixed_bfloat16", "bf16": "mixed_bfloat16", "none": "float32"}


def has_accelerator(kind: str = "GPU") -> bool:
    """Whether TensorFlow sees a device of `kind` ("GPU" or "TPU")."""
    return bool(tf.config.list_logical_devices(kind))


def resolve_mixed_precision(mixed_precision: str | bool | None) -> str:
    """Resolves a precision option to a Keras dtype policy name.

    "auto" gives "mixed_float16" on a GPU and "float32" elsewhere: on a CPU, bfloat16 is
    a choice the user makes ("mixed_bfloat16"), since its gain depends on the processor.

    Raises:
        ValueError: for an unknown option, listing the accepted ones.
    """
    if mixed_precision in (None, False):
        return "float32"
    if mixed_precision is True:
        mixed_precision = "auto"
    name = str(mixed_precision).lower()
    if name == "auto":
        return "mixed_float16" if has_accelerator("GPU") else "float32"
    name = _ALIASES.get(name, name)
    if name not in PRECISIONS:
        raise ValueError(f"Unknown mixed_precision {mixed_precision!r}; expected 'auto' or one "
                         f"of {PRECISIONS}.")
    return name


def resolve_jit_compile(jit_compile: str | bool | None) -> bool:
    """Resolves `jit_compile`: "auto" means XLA on GPU/TPU and plain graph mode on CPU.

    On this project's reference 2-core CPU, XLA ran convolutional training at about 0.6x
    the speed of plain graph mode (see PITFALLS.md), hence off by default there.
    """
    if jit_compile in (None, "auto"):
        return has_accelerator("GPU") or has_accelerator("TPU")
    if isinstance(jit_compile, bool):
        return jit_compile
    raise ValueError(f"Expected jit_compile as 'auto', True or False; received {jit_compile!r}.")


def rebuild_model(model: keras.Model, policy: str = "float32", force: bool = False) -> keras.Model:
    """Rebuilds a functional model from its config under a dtype policy, keeping weights.

    Every layer whose policy is float32 takes `policy`, except the output layers, which
    stay float32 so the softmax and the loss are computed in full precision. Called
    inside a distribution strategy's scope, the rebuilt model's variables belong to that
    strategy.

    Args:
        model: a functional or sequential Keras model.
        policy: a Keras dtype policy name such as "mixed_bfloat16".
        force: rebuild even when nothing changes (to create variables in a new scope).

    Returns:
        The same model when `policy` is float32 and `force` is False, else a new model.
    """
    if not force and policy == "float32":
        return model
    config = model.get_config()
    output_layers = {layer.name for layer in _output_layers(model)}
    _rewrite_policies(config, policy, keep=output_layers, top_level=True)
    rebuilt = model.__class__.from_config(config)
    rebuilt.set_weights(model.get_weights())
    return rebuilt


def _output_layers(model: keras.Model) -> list[keras.layers.Layer]:
    outputs = tf.nest.flatten(model.outputs)
    return [producing_layer(tensor) for tensor in outputs]


def _rewrite_policies(node: Any, policy: str, keep: set[str], top_level: bool) -> None:
    if isinstance(node, dict):
        if node.get("class_name") == "DTypePolicy" and node.get("config", {}).get("name") == "float32":
            node["config"]["name"] = policy
            return
        if top_level and node.get("name") in keep and "config" in node:
            return
        for value in node.values():
            _rewrite_policies(value, policy, keep, top_level)
    elif isinstance(node, list):
        for value in node:
            _rewrite_policies(value, policy, keep, top_level)


def float16_layers(model: keras.Model) -> list[str]:
    """Names of the layers (at any depth of nested models) that compute in float16."""
    names = []
    for layer in flatten_layers(model):
        if getattr(layer, "compute_dtype", None) == "float16" and layer.weights:
            names.append(layer.name)
    return names


def with_loss_scaling(optimizer: keras.optimizers.Optimizer,
                      model: keras.Model) -> keras.optimizers.Optimizer:
    """`optimizer` wrapped in Keras's `LossScaleOptimizer` when `model` computes in float16.

    Keras wraps the optimizer at `compile` only when the *model's own* dtype policy is
    "mixed_float16"; a model rebuilt layer by layer under that policy, a model whose
    nested backbone is float16, or a model built by the user under a global float16
    policy can keep a float32 model-level policy, and then gradients smaller than
    float16's smallest subnormal (about 6e-8) silently become zero. This decides from
    the layers themselves: any layer with weights computing in float16 means the loss is
    scaled (dynamic loss scaling, Micikevicius et al. 2018, "Mixed Precision Training").

    Args:
        optimizer: a Keras optimizer (returned as is when already loss-scaled or when
            no layer computes in float16).
        model: the model about to be compiled.

    Returns:
        The optimizer to compile with.
    """
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    if not float16_layers(model):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(optimizer, name="loss_scale_optimizer")
