"""`Data`: a task's train / validation splits as batched tf.data pipelines.

Sources (`digits`, `shapes`, `image_folder`, `from_arrays`, ...) produce *examples*:
unbatched datasets of dicts in the batch vocabulary of DESIGN.md (`images` float32
`[H,W,3]` in 0..255 at the target size, plus the task's target key). `Data` turns them
into training batches: optional cache, seeded shuffle, batch, augmentation on whole
batches (train split only), conversion to Keras's `(images, targets)` tuples and
prefetch with AUTOTUNE.

File sources may also hand over the train split as cheap records (paths and labels) with
a `decode` function; `Data` then shuffles the records and decodes after shuffling, so the
shuffle buffer holds file names, not decoded images.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from visionkit.data.augment import (
    AugmentationPlan,
    check_augment,
    plan_augmentation,
)
from visionkit.vocabulary import Task, get_task

__all__ = ["Data", "AUTOTUNE", "SPLITS"]

# The splits a `Data` set may hold.
SPLITS = ("train", "val", "test")

AUTOTUNE = tf.data.AUTOTUNE

# Default shuffle buffer: large enough to mix small data sets completely, bounded so that
# big folders do not hold tens of thousands of decoded images in memory.
DEFAULT_SHUFFLE_BUFFER = 4096


# Each seeded stage draws from its own stream of an element's seed (see `_stream`).
_CROP_STREAM, _BATCH_STREAM, _EXAMPLE_STREAM, _PER_EXAMPLE_STREAM = 1, 2, 3, 4


# Epoch `e` of a seeded run shuffles and augments with seed `seed * stride + e`.
_EPOCH_SEED_STRIDE = 1_000_003
# `train_from_epoch` runs "forever"; Keras stops it after the run's epochs.
_LAST_EPOCH = 2**62


def _epoch_seed(seed: int, epoch: tf.Tensor) -> tf.Tensor:
    """The int64 seed of one epoch's shuffle and augmentation streams."""
    return tf.constant(int(seed), tf.int64) * _EPOCH_SEED_STRIDE + tf.cast(epoch, tf.int64)


def _stream(seed: tf.Tensor, stage: int) -> tf.Tensor:
    """The stateless seed `[2]` of one augmentation stage from an element's int64 seed."""
    return tf.stack([seed, tf.constant(stage, tf.int64)])


def _images_as_uint8(example: dict) -> dict:
    images = tf.clip_by_value(tf.round(tf.cast(example["images"], tf.float32)), 0.0, 255.0)
    return {**example, "images": tf.cast(images, tf.uint8)}


def _images_as_float32(example: dict) -> dict:
    return {**example, "images": tf.cast(example["images"], tf.float32)}


@dataclasses.dataclass(frozen=True)
class Data:
    """A data set for one task, with batched train and validation pipelines.

    Args:
        task: the task object (or its name).
        class_names: names of the classes, index = class id.
        image_size: `(height, width)` of the images the pipelines yield.
        train_examples: unbatched dataset of example dicts for training.
        val_examples: unbatched dataset of example dicts for validation, or None.
        train_size: number of training examples.
        val_size: number of validation examples.
        batch_size: examples per batch. Defaults to 32.
        augment: a preset ("none", "light", "standard", "geometric"; see
            `visionkit.data.augment`), a list of Keras augmentation layers, a callable
            on batch dicts, or an `albumentations.Compose` (run per image before
            batching, see `visionkit.data.albumentations_bridge`); applied to the train
            split only. Defaults to "none".
        seed: seed of shuffling and augmentation; with a seed the order is deterministic.
        cache: False, True (in memory) or a file path prefix for `Dataset.cache`. The
            cache holds decoded, resized examples with images rounded to uint8 (a
            quarter of float32's memory; at most half a grey level of difference); the
            first epoch decodes, later epochs read the cache. Augmentation runs after
            it, so each epoch is augmented anew (the "standard" crop then crops the
            cached images in batches).
        shuffle_buffer: size of the shuffle buffer. Defaults to min(train_size, 4096).
        channels: image channels. Defaults to 3.
        train_records: None, or the train split as cheap records (e.g. file paths and
            labels) in the same order as `train_examples`; given with `decode`, the train
            pipeline shuffles these and decodes afterwards, so its shuffle buffer holds
            records rather than decoded images. `train_examples` must equal
            `train_records.map(decode)`. Defaults to None.
        decode: the function from one record to an example dict (e.g. read + decode +
            resize of a file), run in parallel. Defaults to None.
        deterministic: whether the train pipeline yields the same batches on every run.
            Defaults to None, meaning "when a seed is given". Deterministic augmentation
            runs one batch at a time (seeded Keras random layers draw from a shared state,
            so batches augmented in parallel would race for it); `deterministic=False`
            keeps the seeded split and shuffle but augments in parallel. Presets draw
            their random numbers from a seeded stream the pipeline zips to the examples,
            so they run in parallel and repeat exactly either way; `deterministic=False`
            still lets parallel stages hand over elements out of order (no waiting for
            a slow file). The validation split is always in a fixed order.
        threads: size of a private thread pool for this pipeline
            (`tf.data.Options.threading.private_threadpool_size`), e.g. to keep input
            work off the threads of the training step. Defaults to None (TensorFlow's
            shared pool).
        intra_op_threads: threads one op of the pipeline may use
            (`threading.max_intra_op_parallelism`); 1 avoids oversubscription when many
            elements are decoded in parallel. Defaults to None (TensorFlow's default).
        ram_budget_mb: memory the AUTOTUNE prefetch and parallelism buffers may use
            (`autotune.ram_budget`). Defaults to None (half the machine's memory).
        test_examples: unbatched dataset of example dicts of a held-out test split the
            user gave (never made at random), or None. Defaults to None.
        test_size: number of test examples. Defaults to 0.

    Example:

    >>> import visionkit as vk
    >>> data = vk.data.digits(image_size=(16, 16), batch_size=8)
    >>> images, labels = next(iter(data.train))
    >>> tuple(images.shape), labels.dtype.name
    ((8, 16, 16, 3), 'int32')
    """

    task: Task
    class_names: tuple[str, ...]
    image_size: tuple[int, int]
    train_examples: tf.data.Dataset
    val_examples: tf.data.Dataset | None
    train_size: int
    val_size: int
    batch_size: int = 32
    augment: Any = "none"
    seed: int | None = None
    cache: bool | str = False
    shuffle_buffer: int | None = None
    channels: int = 3
    train_records: tf.data.Dataset | None = None
    decode: Callable[[dict], dict] | None = None
    deterministic: bool | None = None
    threads: int | None = None
    intra_op_threads: int | None = None
    ram_budget_mb: int | None = None
    test_examples: tf.data.Dataset | None = None
    test_size: int = 0
    # The box-drop counters of this data set's augmentation: every pipeline built from
    # it adds to them, so a drop is said once (visionkit.data.box_drops.counter_for).
    _box_drop_counters: dict = dataclasses.field(default_factory=dict, init=False,
                                                 repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "task", get_task(self.task))
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        object.__setattr__(self, "image_size", tuple(int(s) for s in self.image_size))
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, (int, np.integer)) \
                or self.batch_size < 1:
            raise ValueError(f"Expected batch_size as a whole number >= 1; received "
                             f"batch_size={self.batch_size!r}.")
        object.__setattr__(self, "batch_size", int(self.batch_size))
        if self.train_size < 1:
            raise ValueError("The training split is empty: no examples to train on.")
        if (self.train_records is None) != (self.decode is None):
            raise ValueError("Expected train_records and decode together (or neither); "
                             f"received train_records={self.train_records!r}, "
                             f"decode={self.decode!r}.")
        object.__setattr__(self, "augment", check_augment(self.augment, task=self.task))

    # -- sizes ---------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (*self.image_size, self.channels)

    def __len__(self) -> int:
        return self.train_size

    @property
    def preprocessing(self):
        """The `Preprocessing` spec turning files into this data's pixels.

        The file sources' decoder spec; for in-memory sources, the default spec at
        `image_size` (the resize they use). An export of a model trained on this data
        bakes it into its serving signatures.
        """
        from visionkit.data.preprocessing import Preprocessing

        spec = getattr(self.decode, "preprocessing", None)
        return spec if spec is not None else Preprocessing(self.image_size)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.train_size / self.batch_size)

    @property
    def validation_steps(self) -> int:
        return math.ceil(self.val_size / self.batch_size) if self.val_size else 0

    # -- pipelines -----------------------------------------------------------------------
    @property
    def train(self) -> tf.data.Dataset:
        """Batched, shuffled, augmented `(images, targets)` for training (one pass)."""
        # Without a cache, shuffle cheap records and decode afterwards; with a cache, the
        # decoded examples are cached and shuffled.
        if self.train_records is not None and not self.cache:
            return self._batches(self.train_records, training=True, decode=self.decode)
        return self._batches(self.train_examples, training=True)

    def train_from_epoch(self, epoch: int = 0) -> tf.data.Dataset:
        """The training batches of every epoch from `epoch` (counted from 0) on, repeated.

        With a seed, epoch `e` shuffles and draws its preset augmentation from the seed
        `(seed, e)` alone, so a run resumed at epoch `e` reads the batches an
        uninterrupted run reads there. Each epoch ends with its own (possibly smaller)
        last batch, as `train.repeat()` does. Without a seed, this is `train.repeat()`.
        A cache is filled once and shared by all epochs.

        Args:
            epoch: the first epoch. Defaults to 0.

        Returns:
            A `tf.data.Dataset` of `(images, targets)` batches that does not end.

        Example:

        >>> import visionkit as vk
        >>> import numpy as np
        >>> data = vk.data.digits(image_size=(8, 8), batch_size=4, seed=0).take(12)
        >>> resumed = next(iter(data.train_from_epoch(3)))[1]
        >>> whole = data.train_from_epoch(0).skip(3 * data.steps_per_epoch)
        >>> bool(np.array_equal(resumed, next(iter(whole))[1]))
        True
        """
        if self.seed is None:
            return self.train.repeat()
        records = self.train_records is not None and not self.cache
        examples = self.train_records if records else self.train_examples
        decode = self.decode if records else None
        if self.cache:
            examples = self._cache_stage(examples, self.is_deterministic)

        @tf.autograph.experimental.do_not_convert
        def one_epoch(index: tf.Tensor) -> tf.data.Dataset:
            # The epoch's order comes from (seed, epoch) alone, not from TensorFlow's
            # global seed (whose value 0 also breaks tensor seeds in TF 2.21's get_seed).
            tf.compat.v1.get_default_graph().seed = None
            return self._batches(examples, training=True, decode=decode, epoch=index,
                                 cached=True)

        dataset = tf.data.Dataset.range(int(epoch), _LAST_EPOCH).flat_map(one_epoch)
        return dataset.with_options(self.options(self.is_deterministic)).prefetch(AUTOTUNE)

    @property
    def val(self) -> tf.data.Dataset | None:
        """Batched `(images, targets)` for validation, in a fixed order, or None."""
        if self.val_examples is None or not self.val_size:
            return None
        return self._batches(self.val_examples, training=False)

    @property
    def test(self) -> tf.data.Dataset | None:
        """Batched `(images, targets)` of the user's test split, in a fixed order, or None."""
        if self.test_examples is None or not self.test_size:
            return None
        return self._batches(self.test_examples, training=False)

    def split(self, name: str) -> tf.data.Dataset | None:
        """The batched split called `name`: "train", "val" or "test".

        Raises:
            ValueError: for another name.
        """
        if name not in SPLITS:
            raise ValueError(f"Expected a split name in {SPLITS}; received {name!r}.")
        return getattr(self, name)

    @property
    def is_deterministic(self) -> bool:
        """Whether the train pipeline repeats exactly (see `deterministic`)."""
        return self.seed is not None if self.deterministic is None else bool(self.deterministic)

    def _cache_stage(self, examples: tf.data.Dataset, deterministic: bool) -> tf.data.Dataset:
        # Decoded images are cached and shuffled as rounded uint8: a quarter of the
        # memory of float32 (2,000 images at 224x224 are 0.3 GB instead of 1.2 GB).
        dataset = examples.map(_images_as_uint8, num_parallel_calls=AUTOTUNE,
                               deterministic=deterministic)
        return dataset.cache(self.cache if isinstance(self.cache, str) else "")

    def _batches(self, examples: tf.data.Dataset, training: bool,
                 decode: Callable[[dict], dict] | None = None,
                 epoch: tf.Tensor | None = None, cached: bool = False) -> tf.data.Dataset:
        """The stages: [cache] -> [shuffle] -> decode -> per-example -> batch -> batch
        augmentation -> `(images, targets)` -> prefetch.

        Preset augmentation draws its random numbers from a seed stream zipped to the
        elements (`Dataset.random`, seeded by `seed`, new numbers every epoch), so it runs
        in parallel and still repeats exactly; Keras layers and callables draw from
        their own state (see `deterministic`). With `epoch` (a tensor, inside
        `train_from_epoch`), one epoch's batches are seeded by `(seed, epoch)`; `cached`
        says the examples already passed the cache stage; the options and prefetch are
        then left to the caller.
        """
        deterministic = self.is_deterministic or not training
        plan = self.augmentation_plan() if training else AugmentationPlan()
        dataset = examples
        seed = self.seed if epoch is None or self.seed is None else _epoch_seed(self.seed, epoch)
        if self.cache and not cached:
            dataset = self._cache_stage(dataset, deterministic)
        if training:
            buffer = self.shuffle_buffer or min(self.train_size, DEFAULT_SHUFFLE_BUFFER)
            dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
        if self.cache:
            dataset = dataset.map(_images_as_float32, num_parallel_calls=AUTOTUNE,
                                  deterministic=deterministic)
        # Seeded augmentation travels as (element, seed) pairs; other pipelines carry
        # the bare elements.
        seeded = plan.seeded and not plan.empty
        if seeded:
            seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
            dataset = tf.data.Dataset.zip(dataset, seeds)
        # Decoding, with the random resized crop fused in when the decoder can do it,
        # then the preset's cheap per-image work (flip, jitter) in the same function.
        fuse_crop = plan.crop is not None and getattr(decode, "crops", False)
        if seeded:
            def prepare(element, seed):
                if fuse_crop:
                    element = decode.cropped(element, plan.crop.window,
                                             _stream(seed, _CROP_STREAM))
                elif decode is not None:
                    element = decode(element)
                if plan.example is not None:
                    element = plan.example(element, _stream(seed, _EXAMPLE_STREAM))
                return element, seed
            dataset = dataset.map(prepare, num_parallel_calls=AUTOTUNE,
                                  deterministic=deterministic)
        elif decode is not None:
            dataset = dataset.map(decode, num_parallel_calls=AUTOTUNE,
                                  deterministic=deterministic)
        # Per-example augmentation (image by image, after decoding, before batching).
        if plan.per_example is not None:
            per_example = plan.per_example
            if seeded:  # seeded per-example functions take the element's seed too
                def stage(element, seed):
                    return per_example(element, _stream(seed, _PER_EXAMPLE_STREAM)), seed
            else:
                stage = per_example
            dataset = dataset.map(stage, num_parallel_calls=AUTOTUNE,
                                  deterministic=deterministic)
        # Plain batching: a parallel `batch` measured 10% fewer images/s on 2 cores (its
        # copies compete with decoding for the same cores).
        dataset = dataset.batch(self.batch_size)
        # Batch augmentation (one op per batch for the presets).
        augment_batch = plan.batch_function(self.task, include_crop=not fuse_crop)
        if seeded and augment_batch is None:
            dataset = dataset.map(lambda batch, seeds: batch)
        elif seeded:
            def augment(batch, seeds):
                return augment_batch(batch, _stream(seeds[0], _BATCH_STREAM))
            dataset = dataset.map(augment, num_parallel_calls=AUTOTUNE,
                                  deterministic=deterministic)
        elif augment_batch is not None:
            # Seeded Keras layers advance one shared random state per call; parallel
            # calls would race for it, so deterministic runs augment one batch at a time.
            dataset = dataset.map(lambda batch: augment_batch(batch, None),
                                  num_parallel_calls=None if deterministic else AUTOTUNE)
        target_key = self.task.target_key
        dataset = dataset.map(lambda batch: (batch["images"], batch[target_key]),
                              num_parallel_calls=AUTOTUNE)
        if epoch is not None:
            return dataset
        dataset = dataset.with_options(self.options(deterministic))
        return dataset.prefetch(AUTOTUNE)

    def options(self, deterministic: bool | None = None) -> tf.data.Options:
        """The `tf.data.Options` of the pipelines (see `threads`, `intra_op_threads`,
        `ram_budget_mb`).

        Example:

        >>> import visionkit as vk
        >>> data = vk.data.digits(image_size=(8, 8)).with_pipeline_options(threads=2)
        >>> data.options().threading.private_threadpool_size
        2
        """
        options = tf.data.Options()
        options.deterministic = self.is_deterministic if deterministic is None \
            else bool(deterministic)
        # Sources are in-memory tensors or file-name lists, not file readers: a strategy
        # that auto-shards this pipeline shards its elements.
        options.experimental_distribute.auto_shard_policy = \
            tf.data.experimental.AutoShardPolicy.DATA
        if self.threads is not None:
            options.threading.private_threadpool_size = int(self.threads)
        if self.intra_op_threads is not None:
            options.threading.max_intra_op_parallelism = int(self.intra_op_threads)
        if self.ram_budget_mb is not None:
            options.autotune.ram_budget = int(self.ram_budget_mb) * 2**20
        return options

    def dropped_box_counts(self) -> dict[str, int]:
        """`{"boxes": ..., "dropped": ...}`: the boxes the augmentation of this data
        set's training pipelines has taken in so far (each counted once, however many
        stages look at it) and how many it dropped (moved out of the image, or under
        one pixel inside). Pipelines augment ahead of what is read (prefetch), so the
        counts may run ahead of the batches consumed. See `visionkit.data.box_drops`.

        Example:

        >>> import visionkit as vk
        >>> vk.data.digits(image_size=(8, 8), batch_size=4).dropped_box_counts()
        {'boxes': 0, 'dropped': 0}
        """
        counters = list(self._box_drop_counters.values())
        return {"boxes": sum(c.boxes for c in counters if not c.follow_up),
                "dropped": sum(c.dropped for c in counters)}

    def augmentation_plan(self) -> AugmentationPlan:
        """The augmentation stages of the train split (see `visionkit.data.augment`)."""
        return plan_augmentation(self.augment, task=self.task, seed=self.seed,
                                 counters=self._box_drop_counters)

    # -- variants ------------------------------------------------------------------------
    def with_augmentation(self, augment: str | Sequence[Any] | Callable | None) -> Data:
        """Returns a copy whose train split uses `augment` (see the class docstring)."""
        return dataclasses.replace(self, augment=augment if augment is not None else "none")

    def with_pipeline_options(self, threads: int | None = None,
                              intra_op_threads: int | None = None,
                              ram_budget_mb: int | None = None) -> Data:
        """Returns a copy with the given tf.data threading and memory settings.

        Arguments left None keep the current value (see the class docstring).

        Raises:
            ValueError: for a value below 1.
        """
        changes = {"threads": threads, "intra_op_threads": intra_op_threads,
                   "ram_budget_mb": ram_budget_mb}
        for name, value in changes.items():
            if value is not None and int(value) < 1:
                raise ValueError(f"Expected {name} >= 1 (or None); received {name}={value!r}.")
        return dataclasses.replace(self, **{name: int(value) for name, value in changes.items()
                                            if value is not None})

    def with_batch_size(self, batch_size: int) -> Data:
        """Returns a copy that batches `batch_size` examples."""
        return dataclasses.replace(self, batch_size=int(batch_size))

    def take(self, train: int, val: int | None = None) -> Data:
        """Returns a copy limited to the first `train` (and `val`) examples.

        Sources store examples in a seeded mixed order, so the first ones cover the
        classes.
        """
        train = min(int(train), self.train_size)
        val = self.val_size if val is None else min(int(val), self.val_size)
        val_examples = self.val_examples.take(val) if self.val_examples is not None else None
        records = self.train_records.take(train) if self.train_records is not None else None
        test = min(val if val is not None else self.test_size, self.test_size)
        test_examples = self.test_examples.take(test) if self.test_examples is not None \
            else None
        return dataclasses.replace(self, train_examples=self.train_examples.take(train),
                                   val_examples=val_examples, train_size=train, val_size=val,
                                   train_records=records, test_examples=test_examples,
                                   test_size=test)

    def shard(self, num_shards: int, index: int) -> Data:
        """Returns a copy whose train split holds every `num_shards`-th example from `index`.

        The split happens on the records, before decoding, so each worker of a
        multi-worker run reads and decodes only its own files. Validation is unchanged.

        Raises:
            ValueError: unless `0 <= index < num_shards` and every shard gets an example.

        Example:

        >>> import visionkit as vk
        >>> data = vk.data.digits(image_size=(8, 8))
        >>> halves = [data.shard(2, i) for i in range(2)]
        >>> [half.train_size for half in halves] == [(len(data) + 1) // 2, len(data) // 2]
        True
        """
        num_shards, index = int(num_shards), int(index)
        if num_shards < 1 or not 0 <= index < num_shards:
            raise ValueError(f"Expected 0 <= index < num_shards; received index={index}, "
                             f"num_shards={num_shards}.")
        size = len(range(index, self.train_size, num_shards))
        if not size:
            raise ValueError(f"Cannot split {self.train_size} training examples into "
                             f"{num_shards} shards: shard {index} would be empty.")
        records = self.train_records.shard(num_shards, index) \
            if self.train_records is not None else None
        return dataclasses.replace(self, train_examples=self.train_examples.shard(num_shards,
                                                                                   index),
                                   train_size=size, train_records=records)

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly summary, written into run directories and export metadata."""
        return {
            "task": self.task.name,
            "class_names": list(self.class_names),
            "image_size": list(self.image_size),
            "train_size": self.train_size,
            "val_size": self.val_size,
            "test_size": self.test_size,
            "batch_size": self.batch_size,
            "augment": self.augment if isinstance(self.augment, str) else repr(self.augment),
            "seed": self.seed,
            "deterministic": self.is_deterministic,
        }

    def __repr__(self) -> str:
        return (f"Data(task={self.task.name!r}, num_classes={self.num_classes}, "
                f"image_size={self.image_size}, train_size={self.train_size}, "
                f"val_size={self.val_size}, test_size={self.test_size}, batch_size={self.batch_size})")
