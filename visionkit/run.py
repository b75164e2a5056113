"""Runs a recipe: data -> model -> train -> evaluate -> export.

`run_recipe` calls the same public API a user would call from Python; the CLI's
`visionkit run` is a thin shell over it.

Example:

>>> from visionkit.config import parse_recipe, smoke_recipe
>>> recipe = parse_recipe({"name": "doc", "data": {"source": "digits", "image_size": [16, 16]},
...                        "model": {"name": "simple_cnn", "args": {"filters": [8]}},
...                        "train": {"run_dir": None}, "export": {"enabled": False}})
>>> result = run_recipe(smoke_recipe(recipe), run_dir=None)
>>> sorted(result)
['export_path', 'metrics', 'run', 'run_dir']
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import keras

from visionkit import data as vk_data
from visionkit import export as vk_export
from visionkit import interpret as vk_interpret
from visionkit import models as vk_models
from visionkit import train as vk_train
from visionkit.config import DATA_SOURCE_SCHEMAS, AlbumentationsAugment, DataSection, Recipe
from visionkit.data.albumentations_bridge import compose_from_recipe
from visionkit.data.augment import check_augment
from visionkit.data.pipeline import Data
from visionkit.export.formats import export_formats
from visionkit.train.distill import distill_from_recipe
from visionkit.train.distribute import resolve_strategy
from visionkit.train.metric_losses import ContrastiveLoss, TripletLoss
from visionkit.vocabulary import Registry, did_you_mean, get_task

__all__ = ["run_recipe", "data_from_recipe", "augment_layers", "metric_loss_from_recipe",
           "register_data_source"]

_DEFAULT = object()


def augment_layers(spec: Any, seed: int | None, task: str | None = None) -> Any:
    """Turns a recipe's `augment` (a preset name or a list of layer entries) into layers.

    Each entry is `{"layer": "RandomRotation", **arguments}` naming a Keras layer. An
    `{albumentations: [...]}` section becomes an `albumentations.Compose` for `task`
    read by `A.from_dict` (see `visionkit.data.albumentations_bridge.recipe_to_dict`).

    For a task with boxes, a Keras preprocessing layer built without
    `bounding_box_format` gets the task's ("xyxy"), so it moves the boxes; its
    `fill_mode` is left as written, and one that mirrors or wraps the border (Keras's
    default "reflect") is refused (entries for boxes say `fill_mode: constant`), as is,
    for masks, a constant `fill_value` other than 0 (`visionkit.data.augment.
    build_augmenter`).

    Raises:
        ValueError: for a name that is not a Keras layer (with close matches), bad
            arguments, or a layer that would misplace or mislabel the task's targets
            (naming the layer).
    """
    if isinstance(spec, str):
        return spec
    if isinstance(spec, AlbumentationsAugment):
        return compose_from_recipe(spec.model_dump(exclude_none=True), task=task)
    box_format = None if task is None else get_task(task).bounding_box_format
    layers = []
    for entry in spec:
        arguments = dict(entry)
        name = arguments.pop("layer")
        layer_class = getattr(keras.layers, str(name), None)
        if not (isinstance(layer_class, type) and issubclass(layer_class, keras.layers.Layer)):
            names = [n for n in dir(keras.layers) if n.startswith("Random")]
            hint = did_you_mean(name, names, n=2)
            raise ValueError(f"data.augment: {name!r} is not a Keras layer.{hint}")
        if seed is not None and "seed" not in arguments and "seed" in _parameters(layer_class):
            arguments["seed"] = seed
        try:
            layer = layer_class(**arguments)
            if box_format is not None and "bounding_box_format" in vars(layer) and \
                    layer.bounding_box_format is None:  # moves the task's boxes
                layer = layer_class(**arguments, bounding_box_format=box_format)
            layers.append(layer)
        except (TypeError, ValueError) as error:
            raise ValueError(f"data.augment: cannot build {name} with {arguments}: {error}") from None
    try:
        check_augment(layers, task)
    except ValueError as error:
        raise ValueError(f"data.augment: {error}") from None
    return layers


def _parameters(layer_class: type) -> set[str]:
    import inspect

    return set(inspect.signature(layer_class.__init__).parameters)


# The recipe's data sources: `data.source` names the loader; each takes the source's
# section of the recipe, the task and the options every source shares.
DATA_SOURCES: Registry[Callable[..., Data]] = Registry("data source")


def register_data_source(name: str, schema: type[DataSection],
                         loader: Callable[..., Data], replace: bool = False) -> None:
    """Makes `name` a recipe data source: `data: {source: name, ...}` validates against
    `schema` and loads with `loader`.

    Args:
        name: the `data.source` value.
        schema: the section's pydantic model, a subclass of `visionkit.config.DataSection`
            (which brings `image_size`, `batch_size`, `validation_split`, `augment`) with
            a `source` field and the source's own fields; unknown keys fail naming them.
        loader: `loader(config, task, common) -> Data`, given the validated section, the
            recipe's task and the options every source shares (`image_size`,
            `batch_size`, `validation_split`, `augment`, `seed`) as keyword arguments
            for the `vk.data` function it calls.

        replace: whether to replace a source already registered under `name` (a
            built-in one too). Defaults to False.

    Raises:
        TypeError: when `schema` is not a `DataSection` subclass with a `source` field.
        ValueError: when `name` is taken and `replace` is False (see
            `visionkit.vocabulary.Registry.register`).

    A loader that returns anything but a `Data` set fails when the recipe's data is built
    (TypeError naming the source).

    Example:

    >>> from visionkit.config import DATA_SOURCE_SCHEMAS, DataSection, parse_recipe
    >>> class SmallDigits(DataSection):
    ...     source: str
    >>> register_data_source("small_digits", SmallDigits,
    ...                      lambda config, task, common: vk_data.digits(**common))
    >>> recipe = parse_recipe({"name": "r", "data": {"source": "small_digits"},
    ...                        "model": {"name": "simple_cnn"}})
    >>> type(recipe.data).__name__
    'SmallDigits'
    >>> _ = DATA_SOURCE_SCHEMAS.pop("small_digits"), DATA_SOURCES.pop("small_digits")
    """
    if not (isinstance(schema, type) and issubclass(schema, DataSection)):
        raise TypeError(f"Expected the schema of data source {name!r} as a subclass of "
                        f"visionkit.config.DataSection; received {schema!r}.")
    if "source" not in schema.model_fields:  # every recipe would fail "unknown field"
        raise TypeError(f"The schema of data source {name!r} ({schema.__name__}) needs a "
                        "`source` field (e.g. `source: str`), the recipe's data.source.")
    schemas = dict(DATA_SOURCE_SCHEMAS)  # a built-in schema passed again replaces itself
    DATA_SOURCE_SCHEMAS.register(name, schema, replace=replace)
    try:
        DATA_SOURCES.register(name, loader, replace=replace)
    except ValueError:
        DATA_SOURCE_SCHEMAS.restore(schemas)
        raise


@DATA_SOURCES.register("digits")
def _digits(config: Any, task: str, common: dict[str, Any]) -> Data:
    return vk_data.digits(**common)


@DATA_SOURCES.register("shapes")
def _shapes(config: Any, task: str, common: dict[str, Any]) -> Data:
    extra = {"shapes_per_image": tuple(config.shapes_per_image)} \
        if config.shapes_per_image is not None else {}
    return vk_data.shapes(task, n=config.n, **common, **extra)


@DATA_SOURCES.register("coco")
def _coco(config: Any, task: str, common: dict[str, Any]) -> Data:
    return vk_data.coco(config.annotations, config.images, max_boxes=config.max_boxes,
                        cache=config.cache, val_annotations=config.val_annotations,
                        test_annotations=config.test_annotations,
                        val_images_dir=config.val_images, test_images_dir=config.test_images,
                        on_bad_annotation=config.on_bad_annotation,
                        trust_file_size=config.trust_file_size, **common)


@DATA_SOURCES.register("voc")
def _voc(config: Any, task: str, common: dict[str, Any]) -> Data:
    return vk_data.voc(config.root, class_names=config.class_names,
                       max_boxes=config.max_boxes, cache=config.cache,
                       on_bad_annotation=config.on_bad_annotation,
                       trust_file_size=config.trust_file_size, **common)


@DATA_SOURCES.register("yolo")
def _yolo(config: Any, task: str, common: dict[str, Any]) -> Data:
    return vk_data.yolo(config.root, names=config.names, max_boxes=config.max_boxes,
                        cache=config.cache, on_bad_annotation=config.on_bad_annotation,
                        **common)


@DATA_SOURCES.register("mask_folder")
def _mask_folder(config: Any, task: str, common: dict[str, Any]) -> Data:
    palette = None
    if config.palette is not None:
        palette = {tuple(entry["colour"]): int(entry["class_id"]) for entry in config.palette}
    return vk_data.mask_folder(config.images, config.masks, class_names=config.class_names,
                               palette=palette, ignore_index=config.ignore_index,
                               value_map=config.value_map, **common)


@DATA_SOURCES.register("image_folder")
def _image_folder(config: Any, task: str, common: dict[str, Any]) -> Data:
    return vk_data.image_folder(config.path, val_directory=config.val_path,
                                test_directory=config.test_path, cache=config.cache,
                                on_bad_file=config.on_bad_file, **common)


def data_from_recipe(recipe: Recipe) -> Data:
    """Builds the recipe's `Data` set (limited to `recipe.limit` examples in smoke runs)."""
    config = recipe.data
    common = {
        "image_size": tuple(config.image_size),
        "batch_size": config.batch_size,
        "validation_split": config.validation_split,
        "augment": augment_layers(config.augment, recipe.seed, task=recipe.task),
        "seed": recipe.seed,
    }
    data = DATA_SOURCES.lookup(config.source)(config, recipe.task, common)
    if not isinstance(data, Data):
        raise TypeError(f"The loader of data source {config.source!r} returned "
                        f"{type(data).__name__}; expected a visionkit Data set (what the "
                        "vk.data functions return, e.g. vk.data.from_arrays(...)).")
    if recipe.limit is not None:
        data = data.take(*recipe.limit)
    if recipe.metric_learning is not None:  # P x K batches for the online-mined loss
        data = vk_data.class_balanced(data, recipe.metric_learning.classes_per_batch,
                                      recipe.metric_learning.images_per_class)
    return data


def metric_loss_from_recipe(recipe: Recipe) -> Any:
    """The `metric_learning` section's loss, or None (the task's own) without one."""
    section = recipe.metric_learning
    if section is None:
        return None
    margin = {} if section.margin is None else {"margin": section.margin}
    if section.loss == "contrastive":
        return ContrastiveLoss(**margin)
    return TripletLoss(mining=section.mining, **margin)


def run_recipe(recipe: Recipe, run_dir: str | None | object = _DEFAULT,
               export_root: str | None = None, raw: dict[str, Any] | None = None,
               train: bool = True, export: bool | None = None) -> dict[str, Any]:
    """Executes a validated recipe.

    Args:
        recipe: the recipe.
        run_dir: the run directory. Defaults to the recipe's (`runs/<name>`); None writes
            no run directory.
        export_root: overrides `export.root`.
        raw: the recipe as written, saved into the run directory.
        train: train the model (False builds it and stops). Defaults to True.
        export: overrides `export.enabled`.

    Returns:
        A dict with `run` (a `vk.train.Run`), `metrics`, `run_dir` and `export_path`.
    """
    directory = recipe.run_dir if run_dir is _DEFAULT else run_dir
    # A multi-worker strategy must exist before TensorFlow runs its first op.
    strategy = resolve_strategy(recipe.train.strategy)
    data = data_from_recipe(recipe)
    if recipe.seed is not None:  # the initial weights are part of what the seed repeats
        keras.utils.set_random_seed(int(recipe.seed))
    classes = data.num_classes if getattr(data.task, "outputs_are_classes", True) else None
    model = vk_models.build(recipe.model.name, input_shape=data.input_shape,
                            num_classes=classes, **recipe.model.args)
    result: dict[str, Any] = {"run": None, "metrics": {}, "run_dir": directory,
                              "export_path": None}
    if not train:
        return result
    options = recipe.train
    fit_function = vk_train.fit
    if recipe.distill is not None:  # the recipe's model is the student of a teacher

        fit_function = distill_from_recipe(recipe, data, directory)
    run = fit_function(
        model, data, **{
            **options.fit_arguments(),  # every train: option under fit's own name
            "run_dir": directory, "strategy": strategy, "seed": recipe.seed,
            # a recipe's own data.augment wins; left out, fit applies the task's preset
            "augment": data.augment if "augment" in recipe.data.model_fields_set else "auto",
            "loss": metric_loss_from_recipe(recipe),
            "recipe": raw if raw is not None else recipe.model_dump(mode="json")})
    result.update(run=run, metrics=run.metrics)
    if run.chief and (export if export is not None else recipe.export.enabled):
        root = os.path.join(export_root, recipe.export.name or recipe.name) if export_root \
            else recipe.export_dir
        if recipe.export.formats == ["saved_model"]:
            result["export_path"] = vk_export.saved_model(run.model, root, data=data,
                                                          metrics=_scalar_metrics(run.metrics))
        else:
            result["export_paths"] = export_formats(run.model, root, recipe.export.formats,
                                                    data=data,
                                                    metrics=_scalar_metrics(run.metrics))
            result["export_path"] = next(iter(result["export_paths"].values()))
    options = recipe.interpret
    out_dir = options.out_dir or (os.path.join(directory, "report") if directory else None)
    if options.enabled and out_dir and getattr(run, "chief", True):
        result["report_path"] = vk_interpret.report(
            run.model, data, out_dir, images=options.images, filter_steps=options.filter_steps,
            dream_steps=options.dream_steps, embed_points=options.embed_points)
    return result


def _scalar_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float, dict))}
