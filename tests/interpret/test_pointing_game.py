"""The pointing game on the synthetic shapes (slow: trains a classifier for about 80 s).

For a classifier trained on shapes (the one `benchmarks/interpret.py` trains: simple_cnn
with four blocks, seed 0), the maximum of the occlusion map and of the Grad-CAM map
should fall inside the shape's mask on most validation images. The shapes cover about
14% of the image, so a map pointing at random would score about 0.14.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import visionkit as vk

pytestmark = pytest.mark.slow

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "interpret.py"


@pytest.fixture(scope="module")
def shapes_classifier():
    spec = importlib.util.spec_from_file_location("interpret_benchmark", BENCHMARK)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    model, scenes = benchmark.train_shapes_classifier(seed=0)
    images = scenes.images[2000:].astype("float32")
    return model, images, scenes.instance_classes[2000:], scenes.instance_ids[2000:] >= 0


def test_the_occlusion_maximum_points_at_the_shape(shapes_classifier):
    model, images, labels, masks = shapes_classifier
    maps = vk.interpret.occlusion(model, images, target=labels, patch_size=8, stride=4,
                                  verbose=0)
    assert vk.interpret.pointing_game(maps, masks).mean() >= 0.8


def test_the_grad_cam_maximum_points_near_the_shape(shapes_classifier):
    """Far above chance, and on or next to the shape on three images in four.

    Inside the mask itself this classifier scores 80-81% (it varies between processes
    with the order of CPU reductions), the ones from seeds 1 and 2 65% and 69%: on
    circles, squares and triangles the classifier's evidence, where Grad-CAM points, is
    the outline and the vertices (`benchmarks/interpret.py` prints the figures per class).
    """
    model, images, labels, masks = shapes_classifier
    maps = vk.interpret.grad_cam(model, images, target=labels)
    assert vk.interpret.pointing_game(maps, masks).mean() >= 0.6
    assert vk.interpret.pointing_game(maps, masks, tolerance=3).mean() >= 0.75

