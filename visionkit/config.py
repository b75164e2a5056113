"""Recipes: a validated YAML description of a whole run.

A recipe names a data source, a model, training, export and (later) interpretation
settings. It is read with a safe YAML loader and validated against a strict schema:
an unknown or misspelt key fails with the key's full path and the close valid names, an
ill-typed value fails with the path and what was expected.

Example recipe::

    name: digits_cnn
    task: classification
    seed: 0
    data:
      source: digits
      image_size: [32, 32]
    model:
      name: simple_cnn
    train:
      epochs: 15
    export:
      root: saved_models

Example:

>>> recipe = parse_recipe({"name": "demo", "data": {"source": "digits"},
...                        "model": {"name": "simple_cnn"}})
>>> recipe.train.epochs, recipe.data.image_size  # None: fit takes the task's default
(None, (32, 32))
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from visionkit.data.albumentations_bridge import check_recipe_augment
from visionkit.data.augment import PRESETS
from visionkit.errors import VisionkitError
from visionkit.models import get
from visionkit.train.options import AdversarialConfig, FineTuneConfig, PositiveInt, TrainConfig
from visionkit.vocabulary import IGNORE_INDEX, TASKS, Registry, did_you_mean, get_task

__all__ = ["Recipe", "RecipeError", "load_recipe", "parse_recipe", "apply_overrides",
           "smoke_recipe", "AdversarialConfig", "FineTuneConfig", "TrainConfig"]


class RecipeError(VisionkitError, ValueError):
    """A recipe that cannot be read or does not fit the schema."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


AugmentLayer = dict[str, Any]


class AlbumentationsAugment(_Section):
    """albumentations transforms applied image by image (`augment: {albumentations: ...}`).

    `albumentations` is albumentations' own serialization (as `A.to_dict` writes it) or
    the shorthand list of entries `{transform: Name, **arguments}` (compositions such as
    OneOf take a `transforms` list); either is read by `A.from_dict`. Detection data get
    `bbox_params` in the "pascal_voc" format with `label_fields: [labels]`, updated with
    `bbox_params` here (e.g. `min_visibility`). See
    `visionkit.data.albumentations_bridge.recipe_to_dict`.
    """

    albumentations: list[dict[str, Any]] | dict[str, Any]
    bbox_params: dict[str, Any] | None = None


class _DataBase(_Section):
    image_size: tuple[Annotated[int, Field(ge=8)], Annotated[int, Field(ge=8)]] = (32, 32)
    batch_size: PositiveInt = 32
    validation_split: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.2
    augment: str | list[AugmentLayer] | AlbumentationsAugment = "none"

    @field_validator("augment", mode="before")
    @classmethod
    def _check_albumentations(cls, value: Any) -> Any:
        if value is None:  # `augment:` left empty in YAML, as augment=None in Python
            return "none"
        if isinstance(value, dict):  # names the bad entry, with close transform names

            check_recipe_augment(value)
        return value

    @field_validator("augment")
    @classmethod
    def _check_augment(cls, value: str | list[AugmentLayer]) -> str | list[AugmentLayer]:
        if isinstance(value, str) and value not in PRESETS:
            raise ValueError(f"expected one of {PRESETS} or a list of layers, got {value!r}")
        if isinstance(value, list):
            for item in value:
                if "layer" not in item:
                    raise ValueError("each augmentation entry needs a 'layer' key naming a "
                                     f"Keras augmentation layer, got {item!r}")
        return value


class DigitsData(_DataBase):
    """scikit-learn's bundled handwritten digits."""

    source: Literal["digits"]


class ShapesData(_DataBase):
    """The seeded synthetic shapes."""

    source: Literal["shapes"]
    n: Annotated[int, Field(ge=2)] = 512
    # Detection: inclusive (min, max) shapes per image.
    shapes_per_image: tuple[PositiveInt, PositiveInt] | None = None


class ImageFolderData(_DataBase):
    """One sub-folder of images per class."""

    source: Literal["image_folder"]
    path: str
    val_path: str | None = None
    test_path: str | None = None
    cache: bool | str = False
    on_bad_file: Literal["error", "skip"] = "error"


class MaskFolderData(_DataBase):
    """A folder of images and a folder of masks paired by file stem (segmentation)."""

    source: Literal["mask_folder"]
    images: str
    masks: str
    class_names: list[str] | None = None
    # Colour masks: entries {colour: [r, g, b], class_id: k} (class_id 255 = ignore).
    palette: list[dict[str, Any]] | None = None
    ignore_index: Annotated[int, Field(ge=0, le=255)] = IGNORE_INDEX
    value_map: dict[int, int] | None = None


class CocoData(_DataBase):
    """COCO instances JSON and its images folder (detection)."""

    source: Literal["coco"]
    annotations: str
    images: str
    max_boxes: PositiveInt | None = None
    cache: bool | str = False
    val_annotations: str | None = None
    test_annotations: str | None = None
    val_images: str | None = None
    test_images: str | None = None
    on_bad_annotation: Literal["error", "skip"] = "error"
    trust_file_size: bool = False


class VocData(_DataBase):
    """A Pascal VOC folder: Annotations/*.xml and JPEGImages/ (detection)."""

    source: Literal["voc"]
    root: str
    class_names: list[str] | None = None
    max_boxes: PositiveInt | None = None
    cache: bool | str = False
    on_bad_annotation: Literal["error", "skip"] = "error"
    trust_file_size: bool = False


class YoloData(_DataBase):
    """A YOLO txt folder: images/, labels/ and a names file (detection)."""

    source: Literal["yolo"]
    root: str
    names: str | list[str] | None = None
    max_boxes: PositiveInt | None = None
    cache: bool | str = False
    on_bad_annotation: Literal["error", "skip"] = "error"


# A data section validates against the schema its `source` names in `_DATA_SOURCES`
# (read when a recipe is validated, so sources registered later are accepted).
DataConfig = _DataBase
DataSection = _DataBase  # the base of every data source's schema (its shared fields)


class ModelConfig(_Section):
    """The model: a registry name and its builder's keyword arguments."""

    name: str
    args: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        get(value)  # raises with close matches
        return value


class TeacherConfig(_Section):
    """`distill.teacher`: a trained teacher's `.keras` checkpoint, or a registry model
    trained first on the same data (run directory RUN_DIR/teacher)."""

    name: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    checkpoint: str | None = None
    epochs: PositiveInt | None = None  # None: the task's default
    learning_rate: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _name_or_checkpoint(self) -> TeacherConfig:
        if (self.name is None) == (self.checkpoint is None):
            raise ValueError("give the teacher either a model name (trained first) or a "
                             f"checkpoint; received name={self.name!r}, "
                             f"checkpoint={self.checkpoint!r}")
        if self.name is not None:
            get(self.name)  # raises with close matches
        return self


class FeatureMatchConfig(_Section):
    """One `distill.features` entry: top-level layers with equal output shapes."""

    teacher: str
    student: str
    loss: str = "mse"
    weight: Annotated[float, Field(ge=0)] = 1.0


class DistillConfig(_Section):
    """Knowledge distillation of the recipe's model (the student), as `vk.train.distill`."""

    teacher: TeacherConfig
    temperature: Annotated[float, Field(gt=0)] = 4.0
    alpha: Annotated[float, Field(ge=0, le=1)] = 0.1
    features: list[FeatureMatchConfig] = Field(default_factory=list)


class InterpretConfig(_Section):
    """An interpretation report (`vk.interpret.report`) written after training."""

    enabled: bool = False
    out_dir: str | None = Field(default=None, description="default: RUN_DIR/report")
    images: PositiveInt = 8
    filter_steps: PositiveInt = 64
    dream_steps: PositiveInt = 20
    embed_points: Annotated[int, Field(ge=5)] = 2000


class MetricLearningConfig(_Section):
    """`metric_learning`: train an embedding model (e.g. `siamese`) on class-balanced
    P x K batches with an online-mined loss (`visionkit.train.metric_losses`)."""

    loss: Literal["triplet", "contrastive"] = "triplet"
    mining: Literal["batch_hard", "semi_hard"] = "batch_hard"
    margin: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="default: the loss's (triplet 0.2, contrastive 1.0)")
    classes_per_batch: Annotated[int, Field(ge=2)] = 8
    images_per_class: Annotated[int, Field(ge=2)] = 4

    @model_validator(mode="after")
    def _mining_with_triplet(self) -> MetricLearningConfig:
        if self.loss != "triplet" and "mining" in self.model_fields_set:
            raise ValueError(f"mining applies to the triplet loss; received "
                             f"mining={self.mining!r} with loss={self.loss!r}")
        return self


class ExportConfig(_Section):
    """SavedModel export after training."""

    enabled: bool = True
    root: str = "saved_models"
    name: str | None = None
    # Any of "saved_model", "litert", "onnx" (vk.export.formats.export_formats).
    formats: list[Literal["saved_model", "litert", "onnx"]] = Field(
        default_factory=lambda: ["saved_model"], min_length=1)


class Recipe(_Section):
    """A whole run: data -> model -> train -> evaluate -> export."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    task: Literal["classification", "segmentation", "detection"] = "classification"
    seed: int | None = 0
    data: DataConfig
    model: ModelConfig
    train: TrainConfig = Field(default_factory=TrainConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    interpret: InterpretConfig = Field(default_factory=InterpretConfig)
    metric_learning: MetricLearningConfig | None = None
    distill: DistillConfig | None = None
    limit: tuple[int, int] | None = Field(
        default=None, description="(train, val) example caps, used by smoke runs")

    @field_validator("data", mode="wrap")
    @classmethod
    def _data_of_its_source(cls, value: Any, handler: Any) -> Any:
        # The schema of the named source, looked up in the registry at validation time.
        if not isinstance(value, dict):
            return handler(value)
        try:
            schema = _DATA_SOURCES.lookup(value.get("source"))
        except ValueError as unknown:
            raise PydanticCustomError("unknown_data_source", "{message}",
                                      {"message": str(unknown)}) from None
        return schema.model_validate(value)

    @model_validator(mode="before")
    @classmethod
    def _empty_sections_take_defaults(cls, raw: Any) -> Any:
        # `train:` with every option commented out is YAML null: the section's defaults.
        if isinstance(raw, dict):
            raw = {key: value for key, value in raw.items()
                   if value is not None or key not in ("train", "export", "interpret")}
        return raw

    @model_validator(mode="before")
    @classmethod
    def _task_batch_size_by_default(cls, raw: Any) -> Any:
        # A data section without `batch_size` batches by the task's row, as
        # `vk.data.shapes` does (4 images for segmentation, 32 otherwise).
        data = raw.get("data") if isinstance(raw, dict) else None
        task = raw.get("task", cls.model_fields["task"].default) \
            if isinstance(raw, dict) else None
        if isinstance(data, dict) and "batch_size" not in data and task in TASKS:
            raw = {**raw, "data": {**data, "batch_size": get_task(task).batch_size}}
        return raw

    @model_validator(mode="after")
    def _embedding_models_with_metric_learning(self) -> Recipe:
        embedding = not get_task(get(self.model.name).task).outputs_are_classes
        if embedding != (self.metric_learning is not None):
            raise ValueError(
                f"model {self.model.name!r} and the metric_learning section go together: an "
                "embedding model (e.g. siamese) trains with metric_learning, a classifier "
                f"without; received metric_learning={self.metric_learning!r}")
        return self

    @property
    def run_dir(self) -> str:
        return self.train.run_dir or os.path.join("runs", self.name)

    @property
    def export_dir(self) -> str:
        return os.path.join(self.export.root, self.export.name or self.name)


# The schema of each data source's section (`visionkit.run.DATA_SOURCES` holds their
# loaders under the same names; `visionkit.run.register_data_source` adds to both).
_DATA_SOURCES: Registry[type[BaseModel]] = Registry("data source", entries={
    "digits": DigitsData, "shapes": ShapesData, "image_folder": ImageFolderData,
    "mask_folder": MaskFolderData, "coco": CocoData, "voc": VocData, "yolo": YoloData})
DATA_SOURCE_SCHEMAS = _DATA_SOURCES


def _field_names(model: type[BaseModel], location: tuple[Any, ...], raw: Any) -> list[str]:
    """The valid keys at `location` of the recipe schema (for "did you mean")."""
    current: Any = model
    for depth, part in enumerate(location):
        if isinstance(part, int):
            continue
        if depth == 0 and part == "data":  # the schema of the source the recipe names
            source = raw.get("data", {}).get("source") if isinstance(raw, dict) and \
                isinstance(raw.get("data"), dict) else None
            current = _DATA_SOURCES.get(source, DataSection)
            continue
        fields = getattr(current, "model_fields", {})
        annotation = fields[part].annotation if part in fields else None
        if not isinstance(annotation, type):  # an optional section: its model member
            annotation = next((a for a in getattr(annotation, "__args__", ())
                               if isinstance(a, type) and issubclass(a, BaseModel)), None)
        current = annotation if isinstance(annotation, type) else None
    return list(getattr(current, "model_fields", {}))


def _section_of(location: tuple[Any, ...], raw: Any) -> str:
    """" It belongs in the train section." for a key written in the wrong section."""
    key = location[-1]
    if len(location) > 1 and key in Recipe.model_fields:
        return f" It belongs at the top level of the recipe ({key})."
    homes = [section for section in Recipe.model_fields
             if (section,) != tuple(location[:-1])
             and key in _field_names(Recipe, (section,), raw)]
    if not homes:
        return ""
    return f" It belongs in the {' or '.join(homes)} section ({homes[0]}.{key})."


def _format_errors(error: ValidationError, source: str, raw: Any = None) -> str:
    lines = []
    for item in error.errors():
        location = tuple(item["loc"])
        path = ".".join(str(p) for p in location) or "(top level)"
        if item["type"] == "extra_forbidden":
            valid = _field_names(Recipe, location[:-1], raw)
            hint = _section_of(location, raw) or did_you_mean(location[-1], valid)
            lines.append(f"  {path}: unknown field.{hint} Valid fields here: {', '.join(valid)}.")
        elif item["type"] == "missing":
            lines.append(f"  {path}: required field is missing.")
        elif item["type"] == "unknown_data_source":  # the registry's message
            lines.append(f"  {path}.source: {item['msg']}")
        else:
            received = item.get("input")
            lines.append(f"  {path}: {item['msg']} (received {received!r}).")
    return f"Invalid recipe {source}:\n" + "\n".join(lines)


def parse_recipe(raw: dict[str, Any], source: str = "<dict>") -> Recipe:
    """Validates a recipe given as a dict.

    Raises:
        RecipeError: naming each bad field, with close matches for misspelt keys.
    """
    if not isinstance(raw, dict):
        raise RecipeError(f"Invalid recipe {source}: expected a mapping at the top level; "
                          f"received {type(raw).__name__}.")
    try:
        return Recipe.model_validate(raw)
    except ValidationError as error:
        raise RecipeError(_format_errors(error, source, raw)) from None
    except ValueError as error:  # raised by validators that call into visionkit
        raise RecipeError(f"Invalid recipe {source}: {error}") from None


def load_recipe(path: str | os.PathLike, overrides: Iterable[str] = ()) -> Recipe:
    """Reads a YAML recipe with a safe loader, applies `key=value` overrides, validates.

    Args:
        path: the YAML file.
        overrides: strings like "train.epochs=3" (values parsed as YAML scalars).

    Raises:
        RecipeError: for a missing or unreadable file, invalid YAML or a bad field.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            raw = yaml.safe_load(handle)
    except FileNotFoundError:
        raise RecipeError(f"Recipe file not found: {path!r}.") from None
    except yaml.YAMLError as error:
        raise RecipeError(f"Recipe {path!r} is not valid YAML: {error}") from None
    return parse_recipe(apply_overrides(raw or {}, overrides), source=repr(path))


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Returns a copy of `raw` with dotted `key=value` overrides applied.

    Values are parsed with `yaml.safe_load` ("3" -> 3, "[64, 64]" -> a list, "null"),
    never evaluated as code.

    Raises:
        RecipeError: for an override without "=".

    Example:

    >>> apply_overrides({"train": {"epochs": 10}}, ["train.epochs=2"])
    {'train': {'epochs': 2}}
    """
    result = copy.deepcopy(raw)
    for override in overrides:
        key, separator, text = override.partition("=")
        if not separator or not key.strip():
            raise RecipeError(f"Expected an override as key=value (e.g. train.epochs=3); "
                              f"received {override!r}.")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = value
    return result


# Smoke runs: the smallest run that still goes through every stage.
SMOKE_LIMIT = (64, 32)
SMOKE_STEPS = 2
SMOKE_SHAPES = 200  # 40 validation images at a 0.2 split, so the val cap of 32 applies


def smoke_recipe(recipe: Recipe) -> Recipe:
    """A copy of `recipe` shrunk for a quick end-to-end check.

    One epoch of two steps (two epochs, one per phase, with `fine_tune`), at most 64
    training and 32 validation examples, images no larger than 64x64, and a small
    synthetic set for "shapes". Everything else (model, export, plots) runs as configured.
    """
    height, width = recipe.data.image_size
    data_update: dict[str, Any] = {"image_size": (min(height, 64), min(width, 64)),
                                   "batch_size": min(recipe.data.batch_size, 16)}
    if isinstance(recipe.data, ShapesData):
        data_update["n"] = min(recipe.data.n, SMOKE_SHAPES)
    train_update = {"epochs": 1, "steps_per_epoch": SMOKE_STEPS, "validation_steps": 1,
                    "early_stopping": None, "verbose": 0}
    if recipe.train.fine_tune is not None:  # one epoch per phase
        train_update.update(epochs=2, fine_tune=recipe.train.fine_tune.model_copy(
            update={"freeze_epochs": 1}))
    update: dict[str, Any] = {}
    if recipe.distill is not None and recipe.distill.teacher.name is not None:
        update["distill"] = recipe.distill.model_copy(update={
            "teacher": recipe.distill.teacher.model_copy(update={"epochs": 1})})
    return recipe.model_copy(update={
        **update,
        "data": recipe.data.model_copy(update=data_update),
        "train": recipe.train.model_copy(update=train_update),
        "limit": SMOKE_LIMIT,
    })
