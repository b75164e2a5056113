"""What an explanation explains: a small target object per task.

A target turns a model's outputs into one score per image. Because occluded or perturbed
copies of an image must be scored against the choice made on the original (the predicted
class, the predicted region), a target works in two steps: `prepare(outputs)` fixes that
choice from the outputs on the original images (a tuple of tensors, one row per image),
and `score(outputs, state)` returns the `[B]` scores for any outputs. Both run inside
compiled graphs.

Example:

>>> import numpy as np
>>> target = ClassScore(1)
>>> outputs = np.array([[0.2, 0.7, 0.1], [0.6, 0.3, 0.1]], "float32")
>>> state = target.prepare(outputs)
>>> [round(float(v), 2) for v in target.score(outputs, state)]
[0.7, 0.3]
>>> [round(float(v), 2) for v in ClassScore().score(outputs, ClassScore().prepare(outputs))]
[0.7, 0.6]
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from visionkit.vocabulary import TASKS, get_task

__all__ = ["ClassScore", "DetectionScore", "SegmentationScore", "Target", "resolve_target",
           "target_key"]


def _check_class(index, num_classes: int | None) -> None:
    from visionkit.interpret.checks import ArgumentError

    if index is None:
        return
    try:
        values = np.atleast_1d(np.asarray(index))
    except (TypeError, ValueError):
        values = np.asarray([None])
    integral = values.dtype.kind in "iu" or (values.dtype.kind == "f" and
                                              bool(np.all(np.isfinite(values))) and
                                              bool(np.all(np.mod(values, 1) == 0)))
    if values.ndim != 1 or values.size == 0 or not integral:
        raise ArgumentError("target", f"Expected target as a class id, one class id per "
                            f"image, or None (the predicted class); received target={index!r}.")
    if num_classes is not None and (values.min() < 0 or values.max() >= num_classes):
        raise ArgumentError("target", f"Expected target class ids in [0, {num_classes - 1}] "
                            f"for a model with {num_classes} classes; received "
                            f"target={index!r}.")


def _check_count(index, batch_size: int) -> None:
    from visionkit.interpret.checks import ArgumentError

    if index is None:
        return
    count = np.atleast_1d(np.asarray(index)).size
    if count not in (1, batch_size):
        raise ArgumentError("target", f"Expected one class id, or one per image ({batch_size}"
                            f"); received {count} ids: target={index!r}.")


class Target:
    """Base class: turns a model's outputs into one score per image."""

    def check(self, model: keras.Model) -> None:
        """Raises ValueError if the target does not fit `model`'s outputs."""

    def prepare(self, outputs) -> tuple[tf.Tensor, ...]:
        """Fixes the per-image choice (class, region) from the outputs on the originals."""
        raise NotImplementedError

    def score(self, outputs, state: tuple[tf.Tensor, ...]) -> tf.Tensor:
        """Scores `[B]` of `outputs` under the choice `state` (one row per image)."""
        raise NotImplementedError

    def classes(self, state: tuple[tf.Tensor, ...]) -> tf.Tensor:
        """The class id `[B]` each image is explained for."""
        return state[0]

    def check_batch(self, batch_size: int) -> None:
        """Raises ArgumentError if per-image choices do not match `batch_size` images."""
        _check_count(getattr(self, "class_id", None), batch_size)

    def on_logits(self) -> Target:
        """This target scoring the output's pre-activation (logits) instead of its
        probabilities; the choice made by `prepare` is unchanged."""
        return self


class ClassScore(Target):
    """A classifier's output for a class (default: the predicted class of each image).

    For outputs `[B, K]` (softmax, logits, or K independent sigmoids of a multi-label
    model) the score of class k is column k, and the predicted class is the largest
    column. A binary model with one output unit `[B, 1]` has two classes: class 1
    scores p (a sigmoid) or z (a logit) and class 0 scores 1 - p or -z; the predicted
    class is 1 where p > 0.5 (z > 0).

    Args:
        class_id: an int, one int per image, or None for the predicted class. Defaults
            to None.
        binary: whether the output is one unit of a binary model. Defaults to False.
        from_logits: with `binary`, whether that unit is a logit. Defaults to False.
    """

    def __init__(self, class_id: int | Any | None = None, binary: bool = False,
                 from_logits: bool = False):
        self.class_id = class_id
        self.binary = bool(binary)
        self.from_logits = bool(from_logits)

    @classmethod
    def for_model(cls, model: keras.Model, class_id: Any = None) -> ClassScore:
        """The ClassScore of `class_id` on `model`'s output, binary when it has one unit."""
        from visionkit.interpret.adapter import output_head

        head = output_head(model)
        return cls(class_id, binary=head.binary, from_logits=head.from_logits)

    def on_logits(self) -> ClassScore:
        return ClassScore(self.class_id, self.binary, from_logits=True)

    def check(self, model: keras.Model) -> None:
        shape = model.outputs[0].shape
        if len(shape) != 2:
            raise ValueError(f"ClassScore expects a model with outputs [batch, classes]; "
                             f"model {model.name!r} outputs shape {tuple(shape)}.")
        if self.binary and shape[-1] != 1:
            raise ValueError(f"A binary ClassScore expects one output unit; model "
                             f"{model.name!r} outputs shape {tuple(shape)}.")
        _check_class(self.class_id, 2 if self.binary else shape[-1])

    def prepare(self, outputs) -> tuple[tf.Tensor, ...]:
        outputs = tf.cast(tf.convert_to_tensor(outputs), tf.float32)
        batch = tf.shape(outputs)[0]
        if self.class_id is not None:
            ids = tf.broadcast_to(tf.cast(tf.reshape(self.class_id, [-1]), tf.int32), [batch])
        elif self.binary:
            ids = tf.cast(outputs[:, 0] > (0.0 if self.from_logits else 0.5), tf.int32)
        else:
            ids = tf.argmax(outputs, axis=-1, output_type=tf.int32)
        return (ids,)

    def score(self, outputs, state):
        outputs = tf.cast(outputs, tf.float32)
        if self.binary:
            positive = outputs[:, 0]
            negative = -positive if self.from_logits else 1.0 - positive
            return tf.where(tf.equal(state[0], 1), positive, negative)
        return tf.gather(outputs, state[0], axis=-1, batch_dims=1)


class SegmentationScore(Target):
    """A segmenter's mean probability of a class over a region.

    The region is, per image, the pixels predicted as that class on the original image
    (or all pixels when none is), or a given boolean mask `[H, W]` / `[B, H, W]` at the
    output's resolution. For models with outputs `[B, H, W, C]`.

    Args:
        class_id: an int, one per image, or None for each image's most frequent
            predicted class other than 0 (the background). Defaults to None.
        region: optional boolean mask. Defaults to None.
        from_logits: whether the outputs are logits (softmax is applied). Defaults to False.
    """

    def __init__(self, class_id: int | Any | None = None, region: Any | None = None,
                 from_logits: bool = False):
        self.class_id = class_id
        self.region = region
        self.from_logits = from_logits

    def check(self, model: keras.Model) -> None:
        shape = model.outputs[0].shape
        if len(shape) != 4:
            raise ValueError(f"SegmentationScore expects outputs [batch, height, width, "
                             f"classes]; model {model.name!r} outputs shape {tuple(shape)}.")
        _check_class(self.class_id, shape[-1])

    def _probabilities(self, outputs):
        outputs = tf.cast(outputs, tf.float32)
        return tf.nn.softmax(outputs) if self.from_logits else outputs

    def prepare(self, outputs):
        probabilities = self._probabilities(outputs)
        batch = tf.shape(probabilities)[0]
        num_classes = tf.shape(probabilities)[-1]
        predicted = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        if self.class_id is None:
            counts = tf.reduce_sum(tf.one_hot(predicted, num_classes), axis=[1, 2])
            counts = tf.concat([tf.zeros_like(counts[:, :1]) - 1.0, counts[:, 1:]], axis=-1)
            ids = tf.argmax(counts, axis=-1, output_type=tf.int32)
        else:
            ids = tf.broadcast_to(tf.cast(tf.reshape(self.class_id, [-1]), tf.int32), [batch])
        if self.region is not None:
            region = tf.cast(tf.convert_to_tensor(self.region), tf.float32)
            region = tf.broadcast_to(region, tf.shape(probabilities)[:3])
        else:
            region = tf.cast(tf.equal(predicted, ids[:, None, None]), tf.float32)
            empty = tf.reduce_sum(region, axis=[1, 2], keepdims=True) == 0
            region = tf.where(empty, tf.ones_like(region), region)
        return ids, region

    def score(self, outputs, state):
        ids, region = state
        probabilities = self._probabilities(outputs)
        chosen = tf.gather(probabilities, ids, axis=-1, batch_dims=1)
        return tf.reduce_sum(chosen * region, axis=[1, 2]) / tf.maximum(
            tf.reduce_sum(region, axis=[1, 2]), 1.0)


class DetectionScore(Target):
    """A detector's highest pre-NMS score of a class, over all anchors or those of a box.

    A visionkit detector (YOLOv8, RetinaNet) scores every anchor for every class before
    non-maximum suppression: outputs `{..., scores_key: [B, A, K]}`. The target is the
    highest of those scores for class `class_id` (default: per image, the class of the
    single highest score on the original image). With a `box`, only the anchors whose
    centre lies inside it count (the anchors YOLOv8's assigner may match to an object
    there); a box holding no anchor centre uses the anchor nearest its centre. The
    anchors are fixed on the original image, so an occluded copy is scored on the same
    ones.

    `Detection.explain_target` fills `anchor_centres`, `from_logits` and `scores_key`
    from the model; `resolve_target(model, {"class_id": 1, "box": [x1, y1, x2, y2]})` is
    the short way to a box target.

    Args:
        class_id: an int, one per image, or None for the top-scoring class. Defaults to
            None.
        box: optional xyxy box in pixels of the model's input, `[4]` or one per image
            `[B, 4]`. Defaults to None.
        anchor_centres: float32 `[A, 2]` (x, y) pixel centres of the anchors, in the order
            of the outputs; needed with `box`. Defaults to None.
        from_logits: whether the class scores are logits (a sigmoid is applied).
            Defaults to False.
        scores_key: the key of the class scores in the outputs. Defaults to "classes".

    Example:

    >>> import numpy as np
    >>> scores = np.array([[[0.1, 0.2], [0.9, 0.3], [0.4, 0.8]]], "float32")  # [1, 3, 2]
    >>> centres = np.array([[4.0, 4.0], [12.0, 4.0], [4.0, 12.0]], "float32")
    >>> outputs = {"classes": scores}
    >>> target = DetectionScore(anchor_centres=centres)
    >>> state = target.prepare(outputs)
    >>> int(target.classes(state)[0]), round(float(target.score(outputs, state)[0]), 2)
    (0, 0.9)
    >>> boxed = DetectionScore(1, box=[0, 8, 8, 16], anchor_centres=centres)
    >>> round(float(boxed.score(outputs, boxed.prepare(outputs))[0]), 2)
    0.8
    """

    def __init__(self, class_id: int | Any | None = None, box: Any | None = None,
                 anchor_centres: Any | None = None, from_logits: bool = False,
                 scores_key: str = "classes"):
        self.class_id = class_id
        self.box = None if box is None else np.asarray(box, np.float32)
        if self.box is not None and (self.box.shape[-1:] != (4,) or self.box.ndim > 2):
            raise ValueError(f"Expected box as xyxy pixels [4] or one per image [batch, 4]; "
                             f"received shape {self.box.shape}.")
        if self.box is not None and anchor_centres is None:
            raise ValueError("A box target needs the anchors' centres: build it with "
                             "resolve_target(model, {'box': ...}) or pass anchor_centres.")
        self.anchor_centres = (None if anchor_centres is None
                               else np.asarray(anchor_centres, np.float32))
        self.from_logits = from_logits
        self.scores_key = scores_key

    def check(self, model: keras.Model) -> None:
        outputs = model.output if isinstance(model.output, dict) else None
        shape = None
        if outputs is not None and self.scores_key in outputs:
            shape = outputs[self.scores_key].shape
        elif len(model.outputs) == 2 and len(model.outputs[1].shape) == 3:
            shape = model.outputs[1].shape
        if shape is None or len(shape) != 3:
            raise ValueError(f"DetectionScore expects a detector with class scores "
                             f"[batch, anchors, classes] under {self.scores_key!r}; model "
                             f"{model.name!r} outputs {[tuple(o.shape) for o in model.outputs]}.")
        _check_class(self.class_id, shape[-1])

    def _scores(self, outputs):
        scores = tf.cast(outputs[self.scores_key], tf.float32)
        return tf.sigmoid(scores) if self.from_logits else scores

    def prepare(self, outputs):
        scores = self._scores(outputs)
        batch = tf.shape(scores)[0]
        if self.class_id is None:
            ids = tf.argmax(tf.reduce_max(scores, axis=1), axis=-1, output_type=tf.int32)
        else:
            ids = tf.broadcast_to(tf.cast(tf.reshape(self.class_id, [-1]), tf.int32), [batch])
        if self.box is None:
            anchors = tf.ones(tf.shape(scores)[:2], tf.float32)
        else:
            box = tf.broadcast_to(tf.reshape(tf.constant(self.box), [-1, 1, 4]), [batch, 1, 4])
            centres = tf.constant(self.anchor_centres)[None]  # [1, A, 2]
            inside = ((centres[..., 0] >= box[..., 0]) & (centres[..., 0] <= box[..., 2]) &
                      (centres[..., 1] >= box[..., 1]) & (centres[..., 1] <= box[..., 3]))
            middle = (box[..., :2] + box[..., 2:]) / 2.0
            distance = tf.reduce_sum(tf.square(centres - middle), axis=-1)
            nearest = tf.equal(distance, tf.reduce_min(distance, axis=-1, keepdims=True))
            empty = tf.logical_not(tf.reduce_any(inside, axis=-1, keepdims=True))
            anchors = tf.cast(tf.where(empty, nearest, inside), tf.float32)
        return ids, anchors

    def score(self, outputs, state):
        ids, anchors = state
        chosen = tf.gather(self._scores(outputs), ids, axis=-1, batch_dims=1)  # [B, A]
        # Scores are probabilities (>= 0), so zeroing the other anchors keeps the maximum.
        return tf.reduce_max(chosen * anchors, axis=-1)


def resolve_target(model: keras.Model, target: Any = None, task: Any = None) -> Target:
    """The `Target` for `target` on `model`, asking the task object.

    Args:
        model: the model to explain.
        target: a `Target`, a class id (int or one per image), or None (the predicted one).
        task: a task name or object; None asks each known task whether it explains
            models with `model`'s outputs.

    Raises:
        ValueError: for a target out of range or a model no task explains.
    """
    if isinstance(target, Target):
        target.check(model)
        return target
    if task is None:
        for candidate in TASKS.values():
            instance = candidate()
            if instance.explains(model):
                task = instance
                break
        else:
            raise ValueError(f"No task explains model {model.name!r} with outputs "
                             f"{tuple(model.outputs[0].shape)}; pass target= a Target.")
    resolved = get_task(task).explain_target(model, target)
    resolved.check(model)
    return resolved


def target_key(target: Target) -> str:
    """A string naming `target`'s type and settings (a cache key for compiled graphs)."""
    return f"{type(target).__name__}{sorted((k, repr(v)) for k, v in vars(target).items())}"
