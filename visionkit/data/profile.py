"""`profile`: where the input pipeline's time goes, stage by stage.

Each stage is timed by building a truncated pipeline over the same training records
and running it alone on one repeated dataset (a warm-up, then `batches` batches; the
iterator is dropped only after the clock stops, see PITFALLS.md): reading the files,
+ decoding, + resizing (the whole pipeline without augmentation), + augmentation (the
train pipeline as training sees it). The drop in images/s from one stage to the next is
the cost of the added work. In-memory sources have no read or decode stage.
"""

from __future__ import annotations

import time
from typing import Any

import tensorflow as tf

from visionkit.data.pipeline import AUTOTUNE, Data

__all__ = ["profile", "format_profile"]

# Batches run (and thrown away) before the clock starts: AUTOTUNE settles and buffers fill.
WARMUP_BATCHES = 3


def _rate(dataset: tf.data.Dataset, batches: int, images_per_batch: int) -> float:
    """Images per second of `batches` batches of a repeated dataset, after a warm-up."""
    iterator = iter(dataset.repeat())
    for _ in range(WARMUP_BATCHES):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    elapsed = time.perf_counter() - start
    del iterator  # after the clock: deleting an AUTOTUNE iterator can stall
    return batches * images_per_batch / max(elapsed, 1e-9)


def profile(data: Data, batches: int = 50, verbose: bool = True) -> dict[str, Any]:
    """Measures the train pipeline's throughput and that of each stage, in images/s.

    Stages (each includes the ones before it):

    - "read": the files' bytes (file sources only).
    - "decode": + decoding, DCT-scaled where it helps (file sources only).
    - "resize": + resizing and batching: the train pipeline without augmentation.
    - "augment": + the data set's augmentation: the train pipeline itself.

    Args:
        data: the `Data` set whose train pipeline is measured.
        batches: batches timed per stage. Defaults to 50.
        verbose: print the table (`format_profile`). Defaults to True.

    Returns:
        `{"pipeline": images/s of data.train, "stages": {stage: images/s}, "batch_size",
        "augment", "ms_per_image": {stage: milliseconds a stage adds per image}}`.

    Example:

    >>> import visionkit as vk
    >>> data = vk.data.digits(image_size=(16, 16), augment="geometric")
    >>> result = profile(data, batches=2, verbose=False)
    >>> sorted(result["stages"]), result["pipeline"] > 0
    (['augment', 'resize'], True)
    """
    batches = int(batches)
    if batches < 1:
        raise ValueError(f"Expected batches >= 1; received batches={batches}.")
    size = data.batch_size
    options = data.options()
    stages: dict[str, float] = {}
    decoder = data.decode
    if data.train_records is not None and hasattr(decoder, "read"):
        records = data.train_records.with_options(options)
        read = records.map(decoder.read, num_parallel_calls=AUTOTUNE, deterministic=False)
        stages["read"] = _rate(read.batch(size).prefetch(AUTOTUNE), batches, size)
        # Only the decoded shape leaves the map, so images of any size batch.
        decoded = records.map(lambda record: tf.shape(decoder.decode(record)[0]),
                              num_parallel_calls=AUTOTUNE, deterministic=False)
        stages["decode"] = _rate(decoded.batch(size).prefetch(AUTOTUNE), batches, size)
    stages["resize"] = _rate(data.with_augmentation("none").train, batches, size)
    stages["augment"] = _rate(data.train, batches, size)
    result: dict[str, Any] = {
        "pipeline": stages["augment"], "stages": stages, "batch_size": size,
        "augment": data.augment if isinstance(data.augment, str) else repr(data.augment),
        "ms_per_image": _added_costs(stages)}
    if verbose:
        print(format_profile(result))
    return result


def _added_costs(stages: dict[str, float]) -> dict[str, float]:
    """Milliseconds per image each stage adds to the ones before it (>= 0)."""
    costs, previous = {}, 0.0
    for name, rate in stages.items():
        total = 1000.0 / rate
        costs[name] = max(total - previous, 0.0)
        previous = max(previous, total)
    return costs


def format_profile(result: dict[str, Any]) -> str:
    """The table `profile` prints.

    Example:

    >>> print(format_profile({"pipeline": 500.0, "batch_size": 32, "augment": "none",
    ...                       "stages": {"resize": 1000.0, "augment": 500.0},
    ...                       "ms_per_image": {"resize": 1.0, "augment": 1.0}}))
    stage        images/s   adds ms/image
    resize         1000.0           1.000
    augment         500.0           1.000
    pipeline        500.0  (batch 32, augment='none')
    """
    lines = [f"{'stage':<10} {'images/s':>10}   adds ms/image"]
    for name, rate in result["stages"].items():
        lines.append(f"{name:<10} {rate:>10.1f}   {result['ms_per_image'][name]:>13.3f}")
    lines.append(f"{'pipeline':<10} {result['pipeline']:>10.1f}  (batch "
                 f"{result['batch_size']}, augment={result['augment']!r})")
    return "\n".join(lines)
