"""Explanations of a detector: its box-score target, occlusion, Grad-CAM, saliency and
integrated gradients on one tiny YOLOv8 (one detector per module: keras-cv traces slowly).
"""

from __future__ import annotations

import numpy as np
import pytest

import visionkit as vk
from visionkit.interpret.targets import DetectionScore
from visionkit.models.detection import anchor_centres

SIZE = 64
BOX = np.array([8.0, 16.0, 40.0, 48.0], np.float32)  # xyxy pixels


@pytest.fixture(scope="module")
def detector():
    import keras

    keras.utils.set_random_seed(3)
    return vk.models.build("yolov8", (SIZE, SIZE, 3), 2)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")


def reference_score(detector, images, class_id=None, box=None):
    """The target written out in NumPy: the best pre-NMS score of the class (in the box)."""
    scores = np.asarray(detector(images, training=False)["classes"])  # [B, A, K]
    centres = anchor_centres(detector)
    if box is None:
        inside = np.ones(len(centres), bool)
    else:
        inside = ((centres[:, 0] >= box[0]) & (centres[:, 0] <= box[2]) &
                  (centres[:, 1] >= box[1]) & (centres[:, 1] <= box[3]))
    chosen = scores[:, inside]  # [B, anchors in the box, K]
    if class_id is None:
        class_id = scores.max(axis=1).argmax(axis=-1)
    class_id = np.broadcast_to(class_id, (len(images),))
    return np.array([chosen[i, :, k].max() for i, k in enumerate(class_id)]), class_id


def test_anchor_centres_are_the_strided_grid(detector):
    centres = anchor_centres(detector)
    # Strides 8, 16, 32 on 64x64: 64 + 16 + 4 anchors, level by level, row by row.
    assert centres.shape == (84, 2)
    np.testing.assert_array_equal(centres[[0, 1, 8, 63, 64, 79, 80, 83]],
                                  [[4, 4], [12, 4], [4, 12], [60, 60], [8, 8], [56, 56],
                                   [16, 16], [48, 48]])


def test_the_detection_task_resolves_the_target(detector, images):
    target = vk.interpret.resolve_target(detector)
    assert isinstance(target, DetectionScore) and not target.from_logits
    assert not vk.tasks.get_task("classification").explains(detector)
    assert not vk.tasks.get_task("segmentation").explains(detector)
    outputs = detector(images, training=False)
    state = target.prepare(outputs)
    expected, classes = reference_score(detector, images)
    np.testing.assert_allclose(target.score(outputs, state), expected, rtol=1e-6)
    np.testing.assert_array_equal(target.classes(state), classes)

    boxed = vk.interpret.resolve_target(detector, {"class_id": 1, "box": BOX})
    expected, _ = reference_score(detector, images, 1, BOX)
    np.testing.assert_allclose(boxed.score(outputs, boxed.prepare(outputs)), expected,
                               rtol=1e-6)


def test_bad_detection_targets(detector):
    with pytest.raises(ValueError, match="keys 'class_id' and 'box'.*'boxes'"):
        vk.interpret.resolve_target(detector, {"boxes": BOX})
    with pytest.raises(ValueError, match=r"class ids in \[0, 1\]"):
        vk.interpret.resolve_target(detector, 2)
    with pytest.raises(ValueError, match="needs the anchors' centres"):
        DetectionScore(0, box=BOX)
    with pytest.raises(ValueError, match=r"xyxy pixels \[4\]"):
        vk.interpret.resolve_target(detector, {"box": [1, 2, 3]})


@pytest.mark.heavy
def test_occlusion_of_a_detector_equals_a_naive_loop(detector, images):
    target = {"class_id": 0, "box": BOX}
    heat = vk.interpret.occlusion(detector, images, target=target, patch_size=32, stride=32,
                                  batch_size=8)
    reference, _ = reference_score(detector, images, 0, BOX)
    fill = images.mean(axis=(1, 2), keepdims=True)
    expected = np.zeros((2, SIZE, SIZE), np.float32)
    for top in (0, 32):
        for left in (0, 32):
            copies = images.copy()
            copies[:, top:top + 32, left:left + 32] = fill
            score, _ = reference_score(detector, copies, 0, BOX)
            expected[:, top:top + 32, left:left + 32] = (reference - score)[:, None, None]
    np.testing.assert_allclose(heat, expected, atol=1e-5)


@pytest.mark.heavy
def test_gradients_of_the_box_score_match_finite_differences(detector, images):
    """Integrated gradients over a tiny path is the directional derivative, whose
    integral must equal the score's change (completeness)."""
    target = {"class_id": 1, "box": BOX}
    direction = np.random.default_rng(1).choice([-1.0, 1.0], images.shape).astype("float32")
    start = images - 0.5 * direction
    attributions = vk.interpret.integrated_gradients(detector, images, target=target,
                                                     baseline=start, steps=4)
    after, _ = reference_score(detector, images, 1, BOX)
    before, _ = reference_score(detector, start, 1, BOX)
    np.testing.assert_allclose(attributions.sum(axis=(1, 2, 3)), after - before, rtol=0.05,
                               atol=1e-5)
    # Over a half-pixel path the attributions are 0.5 * |gradient| per value: twice their
    # largest magnitude over channels is the saliency map.
    salient = vk.interpret.saliency(detector, images, target=target)
    assert salient.shape == (2, SIZE, SIZE)
    from_path = 2 * np.abs(attributions).max(axis=-1)
    assert np.corrcoef(salient.ravel(), from_path.ravel())[0, 1] > 0.99


@pytest.mark.heavy
def test_grad_cam_of_a_detector(detector, images):
    cam = vk.interpret.grad_cam(detector, images, target={"class_id": 0, "box": BOX})
    assert cam.shape == (2, SIZE, SIZE) and np.isfinite(cam).all()
    assert cam.min() >= 0 and cam.max() <= 1


@pytest.mark.slow
def test_the_report_explains_a_detector(detector, tmp_path):
    data = vk.data.shapes("detection", n=48, image_size=(SIZE, SIZE), seed=0, batch_size=8,
                          classes=2)
    path = vk.interpret.report(detector, data, tmp_path, images=2, filter_steps=2,
                               dream_steps=1, embed_points=16, progress=False)
    page = open(path, encoding="utf-8").read()
    for picture in ("overlays.png", "dream.png", "tsne.png"):
        assert picture in page and (tmp_path / picture).stat().st_size > 0


def test_eigen_cam_of_a_detector_needs_no_target(detector, images):
    cam = vk.interpret.eigen_cam(detector, images)
    assert cam.shape == (2, SIZE, SIZE) and np.isfinite(cam).all() and cam.max() == 1


@pytest.mark.heavy
def test_deletion_curve_of_a_detector_scores_the_box_target(detector, images):
    target = {"class_id": 1, "box": BOX}
    curve = vk.interpret.metrics.deletion(detector, images, np.ones((2, SIZE, SIZE)),
                                          target=target, steps=1, fill="constant")
    expected, _ = reference_score(detector, images, 1, BOX)
    np.testing.assert_allclose(curve.scores[:, 0], expected, atol=1e-5)
    black, _ = reference_score(detector, np.zeros_like(images), 1, BOX)
    np.testing.assert_allclose(curve.scores[:, 1], black, atol=1e-5)
