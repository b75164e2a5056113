"""`Data` pipeline settings: the cache, tf.data options, determinism."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
from PIL import Image

import visionkit as vk


def write_folder(root, per_class: int = 6, size=(20, 28)):
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{index}.png")
    return root


def epoch(iterator, steps: int) -> list[np.ndarray]:
    return [next(iterator)[0].numpy() for _ in range(steps)]


def test_cache_serves_later_epochs_without_reading_the_files(tmp_path):
    root = write_folder(tmp_path / "images")
    data = vk.data.image_folder(root, image_size=(16, 16), batch_size=4, validation_split=0.0,
                                cache=True, seed=0)
    iterator = iter(data.train.repeat())
    first = np.concatenate(epoch(iterator, data.steps_per_epoch))
    shutil.rmtree(root)  # every file is gone: only the cache can serve epoch 2
    second = np.concatenate(epoch(iterator, data.steps_per_epoch))
    key = [image.mean() for image in first]
    assert sorted(key) == pytest.approx(sorted(image.mean() for image in second))
    assert not np.array_equal(first, second)  # reshuffled


def test_without_a_cache_later_epochs_read_the_files_again(tmp_path):
    root = write_folder(tmp_path / "images")
    data = vk.data.image_folder(root, image_size=(16, 16), batch_size=4, validation_split=0.0,
                                seed=0)
    iterator = iter(data.train.repeat())
    epoch(iterator, data.steps_per_epoch)
    shutil.rmtree(root)
    with pytest.raises(Exception, match="No such file|NotFound|not found"):
        for _ in range(10):  # past whatever the prefetch buffers read ahead
            epoch(iterator, data.steps_per_epoch)


def test_cached_standard_preset_crops_the_cached_batches(tmp_path):
    root = write_folder(tmp_path / "images")
    data = vk.data.image_folder(root, image_size=(16, 16), batch_size=12, validation_split=0.0,
                                cache=True, seed=0, augment="standard")
    iterator = iter(data.train.repeat())
    first, second = next(iterator)[0].numpy(), next(iterator)[0].numpy()
    assert first.shape == (12, 16, 16, 3) and 0 <= first.min() and first.max() <= 255
    assert not np.array_equal(np.sort(first.mean(axis=(1, 2, 3))),
                              np.sort(second.mean(axis=(1, 2, 3))))


def test_pipeline_options_reach_tf_data():
    data = vk.data.digits(image_size=(8, 8), batch_size=16)
    assert data.threads is None and data.options().threading.private_threadpool_size is None
    tuned = data.with_pipeline_options(threads=3, intra_op_threads=1, ram_budget_mb=64)
    options = tuned.train.options()
    assert options.threading.private_threadpool_size == 3
    assert options.threading.max_intra_op_parallelism == 1
    assert options.autotune.ram_budget == 64 * 2**20
    images, _ = next(iter(tuned.train))
    assert tuple(images.shape) == (16, 8, 8, 3)
    assert tuned.with_pipeline_options(threads=2).ram_budget_mb == 64  # others kept
    with pytest.raises(ValueError, match="threads >= 1"):
        data.with_pipeline_options(threads=0)


def test_order_is_deterministic_only_when_a_seed_asks_for_it():
    seeded = vk.data.digits(image_size=(8, 8), seed=3)
    assert seeded.is_deterministic and seeded.train.options().deterministic
    unseeded = vk.data.digits(image_size=(8, 8), seed=None)
    assert not unseeded.is_deterministic and not unseeded.train.options().deterministic
    forced = dataclasses.replace(seeded, deterministic=False)
    assert not forced.train.options().deterministic
    assert unseeded.val.options().deterministic  # validation always keeps its order
