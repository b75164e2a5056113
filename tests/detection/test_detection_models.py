"""One tiny YOLOv8 detector: fit, evaluate, checkpoint round trip, export with NMS served.

keras-cv's first training step traces for 10-40 s on a CPU, so this module builds and
trains one detector (module-scoped) and every test reuses it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import visionkit as vk
from visionkit.models.detection import YOLO_V8_SIZES, detect, detection_backbone

IMAGE_SIZE = (64, 64)


@pytest.fixture(scope="module")
def data():
    return vk.data.shapes("detection", n=48, image_size=IMAGE_SIZE, seed=0, batch_size=8,
                          classes=3, validation_split=0.25)


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    # A low confidence threshold keeps many detections, so the comparisons below
    # compare real boxes rather than empty outputs.
    return vk.train.fit("yolov8", data, epochs=1, steps_per_epoch=2, verbose=0,
                        run_dir=str(tmp_path_factory.mktemp("run")), seed=0,
                        model_kwargs={"confidence_threshold": 0.01},
                        tensorboard=False)


@pytest.fixture(scope="module")
def exported(run, data, tmp_path_factory):
    return vk.export.saved_model(run.model, str(tmp_path_factory.mktemp("export")), data=data,
                                 metrics={"map50": run.metrics["map50"]})


@pytest.mark.slow
def test_yolo_v8_sizes_have_the_parameter_counts_keras_cv_publishes():
    # keras-cv's yolo_v8_backbone_presets.py lists these parameter counts.
    published = {"yolo_v8_xs": 1_277_680, "yolo_v8_s": 5_089_760, "yolo_v8_m": 11_872_464,
                 "yolo_v8_l": 19_831_744, "yolo_v8_xl": 30_972_080}
    assert set(published) == set(YOLO_V8_SIZES)
    for name, count in published.items():
        assert detection_backbone(name, (64, 64, 3)).count_params() == count


def test_registry_backbones_serve_the_heads():
    model = vk.models.build("yolov8", (64, 96, 3), num_classes=2, backbone="resnet18",
                            backbone_options={"width_multiplier": 0.25})
    outputs = model(np.zeros((1, 64, 96, 3), np.float32))
    # One anchor point per cell of the stride 8, 16 and 32 grids.
    assert tuple(outputs["classes"].shape) == (1, 8 * 12 + 4 * 6 + 2 * 3, 2)
    with pytest.raises(ValueError, match="multiples of 32"):
        vk.models.build("yolov8", (60, 64, 3), num_classes=2)
    with pytest.raises(ValueError, match="Unknown backbone 'resnet19'"):
        vk.models.build("retinanet", (64, 64, 3), num_classes=2, backbone="resnet19")
    assert {"yolov8", "retinanet"} <= set(vk.models.available("detection"))


@pytest.mark.heavy
def test_fit_reports_coco_map_and_writes_the_figures(run):
    for key in ("map", "map50", "ap_per_class", "num_examples"):
        assert key in run.metrics
    assert run.metrics["num_examples"] == 12
    assert 0.0 <= run.metrics["map"] <= run.metrics["map50"] <= 1.0
    assert "box_loss" in run.history and "val_map50" in run.history
    assert any(path.endswith("detections.png") for path in run.plots)
    with open(os.path.join(run.run_dir, "metrics.json")) as handle:
        assert "map50" in json.load(handle)


@pytest.mark.heavy
def test_evaluate_agrees_with_coco_map_on_the_own_prediction_path(run, data):
    images, truths = [], []
    for batch_images, targets in data.val:
        images.append(batch_images.numpy())
        for boxes, labels in zip(targets["boxes"].numpy(), targets["labels"].numpy()):
            truths.append({"boxes": boxes, "labels": labels})
    found = detect(run.model, np.concatenate(images))
    guesses = [{"boxes": b, "scores": s, "classes": c} for b, s, c in
               zip(found["boxes"], found["scores"], found["classes"])]
    expected = vk.train.metrics.coco_map(truths, guesses)
    assert vk.train.evaluate(run.model, data)["map"] == pytest.approx(expected["map"])


@pytest.mark.heavy
def test_checkpoint_round_trips_through_keras_files(run, data):
    images = next(iter(data.val))[0].numpy()
    # The checkpoint holds the best epoch's weights; the run ended on the same (only) one.
    restored = keras.saving.load_model(run.best_checkpoint, compile=False)
    assert type(restored) is type(run.model)
    ours, theirs = run.model(images, training=False), restored(images, training=False)
    for key in ("boxes", "classes"):
        np.testing.assert_allclose(np.asarray(theirs[key]), np.asarray(ours[key]), atol=1e-4)


@pytest.mark.heavy
def test_exported_detector_serves_the_own_boxes_in_a_process_without_visionkit(
        run, data, exported, tmp_path):
    images = np.concatenate([batch.numpy() for batch, _ in data.val]).astype(np.uint8)
    # Twice the size by pixel repetition: the served model resizes it with the training
    # pipeline's resize (the export's preprocessing spec), so its boxes are the own
    # model's boxes on that resized image, times two.
    doubled = images.repeat(2, axis=1).repeat(2, axis=2)
    spec = vk.export.load(exported).preprocessing
    resized_doubled = spec.resize(tf.constant(doubled)).numpy()
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "doubled.npy", doubled)
    script = textwrap.dedent(f"""
        import sys, numpy as np, tensorflow as tf
        loaded = tf.saved_model.load({exported!r})
        serve = loaded.signatures["serving_default"]
        for name in ("images", "doubled"):
            out = serve(images=tf.constant(np.load({str(tmp_path)!r} + f"/{{name}}.npy")))
            np.savez({str(tmp_path)!r} + f"/{{name}}_out.npz",
                     **{{k: v.numpy() for k, v in out.items()}})
        assert not any(m.startswith(("visionkit", "keras_cv")) for m in sys.modules)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    ours = detect(run.model, images.astype(np.float32))
    served = dict(np.load(tmp_path / "images_out.npz"))
    assert set(served) == {"boxes", "scores", "classes", "num_detections"}
    assert ours["num_detections"].sum() > 0
    np.testing.assert_array_equal(served["num_detections"], ours["num_detections"])
    np.testing.assert_array_equal(served["classes"], ours["classes"])
    np.testing.assert_allclose(served["boxes"], ours["boxes"], atol=1e-3)
    np.testing.assert_allclose(served["scores"], ours["scores"], atol=1e-5)
    served_doubled = dict(np.load(tmp_path / "doubled_out.npz"))
    ours_doubled = detect(run.model, resized_doubled)
    valid = ours_doubled["classes"] >= 0
    np.testing.assert_array_equal(served_doubled["num_detections"],
                                  ours_doubled["num_detections"])
    np.testing.assert_allclose(served_doubled["boxes"][valid],
                               ours_doubled["boxes"][valid] * 2, atol=2e-3)
    assert (served_doubled["boxes"][~valid] == -1).all()


@pytest.mark.heavy
def test_predict_lists_and_draws_the_detections(run, exported, data, tmp_path):
    from PIL import Image

    image = next(iter(data.val))[0].numpy()[0].astype(np.uint8)
    file = tmp_path / "scene.png"
    Image.fromarray(image).save(file)
    (result,) = vk.export.predict_files(exported, [str(file)], out_dir=str(tmp_path / "out"))
    ours = detect(run.model, image[None].astype(np.float32))
    count = int(ours["num_detections"][0])
    assert len(result["detections"]) == count
    if count:
        first = result["detections"][0]
        np.testing.assert_allclose(first["box"], ours["boxes"][0, 0], atol=1e-3)
        assert first["class_name"] == data.class_names[int(ours["classes"][0, 0])]
    assert os.path.getsize(result["drawing"]) > 0 and result["drawing"].endswith(".png")
    assert result["drawing"] in result["summary"]
