"""Detection data: the three annotation formats agree, shapes boxes, bad input, augmentation."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest

import visionkit as vk
from visionkit.data.boxes import clip_box_batch
from visionkit.errors import BadFileError, DataError, DataWarning
from visionkit.testing import write_images

# Three images of different sizes; boxes in xyxy pixel-edge coordinates of each image.
SCENES = {
    "a.png": ((40, 60), [[6, 4, 36, 24], [30, 10, 58, 38]], [0, 2]),
    "b.png": ((48, 48), [[0, 0, 16, 20]], [1]),
    "c.png": ((30, 50), [[10, 5, 40, 25], [2, 2, 12, 12], [20, 15, 30, 29]], [2, 0, 1]),
}
NAMES = ["cat", "dog", "bird"]


# (height, width) of each scene's image, for visionkit.testing.write_images.
SIZES = {name: size for name, (size, _, _) in SCENES.items()}


def write_coco(root, category_ids=(11, 22, 33)):
    write_images(os.path.join(root, "images"), SIZES)
    images, annotations = [], []
    for image_id, (name, ((height, width), boxes, labels)) in enumerate(SCENES.items(), 1):
        images.append({"id": image_id, "file_name": name, "width": width, "height": height})
        for box, label in zip(boxes, labels):
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": category_ids[label], "iscrowd": 0,
                                "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]})
    # Category names listed out of id order: class ids follow the ids.
    categories = [{"id": category_ids[i], "name": NAMES[i]} for i in (2, 0, 1)]
    path = os.path.join(root, "instances.json")
    with open(path, "w") as handle:
        json.dump({"images": images, "annotations": annotations, "categories": categories},
                  handle)
    return path, os.path.join(root, "images")


def write_voc(root):
    write_images(os.path.join(root, "JPEGImages"), SIZES)
    os.makedirs(os.path.join(root, "Annotations"), exist_ok=True)
    for name, ((height, width), boxes, labels) in SCENES.items():
        objects = "".join(
            f"<object><name>{NAMES[label]}</name><difficult>0</difficult><bndbox>"
            f"<xmin>{box[0] + 1}</xmin><ymin>{box[1] + 1}</ymin><xmax>{box[2]}</xmax>"
            f"<ymax>{box[3]}</ymax></bndbox></object>" for box, label in zip(boxes, labels))
        xml = (f"<annotation><filename>{name}</filename><size><width>{width}</width>"
               f"<height>{height}</height><depth>3</depth></size>{objects}</annotation>")
        with open(os.path.join(root, "Annotations", name.replace(".png", ".xml")), "w") as f:
            f.write(xml)
    return root


def write_yolo(root):
    write_images(os.path.join(root, "images"), SIZES)
    os.makedirs(os.path.join(root, "labels"), exist_ok=True)
    with open(os.path.join(root, "classes.txt"), "w") as handle:
        handle.write("\n".join(NAMES) + "\n")
    for name, ((height, width), boxes, labels) in SCENES.items():
        lines = []
        for box, label in zip(boxes, labels):
            cx, cy = (box[0] + box[2]) / 2 / width, (box[1] + box[3]) / 2 / height
            w, h = (box[2] - box[0]) / width, (box[3] - box[1]) / height
            lines.append(f"{label} {cx:.8f} {cy:.8f} {w:.8f} {h:.8f}")
        with open(os.path.join(root, "labels", name.replace(".png", ".txt")), "w") as f:
            f.write("\n".join(lines) + "\n")
    return root


def _examples(data):
    out = []
    for example in data.train_examples:
        labels = example["bounding_boxes"]["labels"].numpy()
        boxes = example["bounding_boxes"]["boxes"].numpy()
        out.append((boxes[labels >= 0], labels[labels >= 0], example["images"].numpy()))
    return out


def test_coco_voc_and_yolo_load_to_the_same_boxes_and_classes(tmp_path):
    size = (32, 48)
    coco = vk.data.coco(*write_coco(str(tmp_path / "coco")), image_size=size,
                        validation_split=0)
    voc = vk.data.voc(write_voc(str(tmp_path / "voc")), image_size=size, class_names=NAMES,
                      validation_split=0)
    yolo = vk.data.yolo(write_yolo(str(tmp_path / "yolo")), image_size=size,
                        validation_split=0)
    assert coco.class_names == voc.class_names == yolo.class_names == tuple(NAMES)
    loaded = [_examples(d) for d in (coco, voc, yolo)]
    # Independent reference: each box scaled from its own image size to 48 x 32.
    for (_, ((height, width), boxes, labels)), *per_format in zip(SCENES.items(), *loaded):
        expected = np.asarray(boxes, np.float32) * ([48 / width, 32 / height] * 2)
        for found_boxes, found_labels, image in per_format:
            np.testing.assert_allclose(found_boxes, expected, atol=1e-3)
            assert found_labels.tolist() == labels
            assert image.shape == (32, 48, 3)
    # Padded to the most boxes of any image, with -1.
    example = next(iter(coco.train_examples))["bounding_boxes"]
    assert example["boxes"].shape == (3, 4)
    batch = next(iter(coco.with_batch_size(3).train))[1]
    assert batch["labels"].dtype.name == "int32" and (batch["labels"].numpy() == -1).sum() == 3


def test_shapes_detection_boxes_match_the_generator():
    from visionkit.data.synthetic import generate_shapes

    data = vk.data.shapes("detection", n=10, image_size=(32, 32), seed=3,
                          validation_split=0, shapes_per_image=(2, 3))
    scenes = generate_shapes(10, image_size=(32, 32), seed=3, shapes_per_image=(2, 3))
    found = _examples(data)
    assert len(found) == 10
    for index, (boxes, labels, image) in enumerate(found):
        np.testing.assert_array_equal(boxes, scenes.boxes_of(index))
        np.testing.assert_array_equal(labels, scenes.classes_of(index))
        np.testing.assert_array_equal(image, scenes.images[index])


def test_flip_keeps_boxes_on_the_shapes():
    """A horizontal flip moves each box to (W - x2, W - x1): checked against the pixels."""
    import keras

    data = vk.data.shapes("detection", n=16, image_size=(32, 32), seed=0, batch_size=16,
                          validation_split=0, noise=0.0,
                          augment=[keras.layers.RandomFlip("horizontal", seed=1,
                                                           bounding_box_format="xyxy")])
    plain = next(iter(data.with_augmentation("none").train.take(1)))
    flipped = next(iter(data.train.take(1)))
    # Same shuffle order (same seed): pair images by content.
    for image, boxes, labels in zip(flipped[0].numpy(), flipped[1]["boxes"].numpy(),
                                    flipped[1]["labels"].numpy()):
        match = [i for i, original in enumerate(plain[0].numpy())
                 if np.array_equal(original, image) or np.array_equal(original[:, ::-1], image)]
        assert match
        original_boxes = plain[1]["boxes"].numpy()[match[0]]
        if np.array_equal(plain[0].numpy()[match[0]], image):
            expected = original_boxes
        else:
            expected = np.stack([32 - original_boxes[:, 2], original_boxes[:, 1],
                                 32 - original_boxes[:, 0], original_boxes[:, 3]], -1)
        keep = labels >= 0
        np.testing.assert_allclose(boxes[keep], expected[keep], atol=1e-4)


def test_light_preset_keeps_boxes_valid():
    data = vk.data.shapes("detection", n=32, image_size=(32, 32), seed=0, batch_size=16,
                          augment="light", validation_split=0)
    _, targets = next(iter(data.train))
    boxes, labels = targets["boxes"].numpy(), targets["labels"].numpy()
    valid = labels >= 0
    assert valid.any()
    assert (boxes[valid] >= 0).all() and (boxes[valid] <= 32).all()
    assert ((boxes[valid][:, 2] - boxes[valid][:, 0]) >= 1).all()
    assert (boxes[~valid] == -1).all()


def test_clip_box_batch_clips_and_drops_boxes_that_left_the_image():
    boxes = np.array([[[-5, 2, 10, 8], [40, 40, 50, 50], [1, 1, 4, 4]]], np.float32)
    labels = np.array([[1, 2, -1]], np.int32)
    out_boxes, out_labels = clip_box_batch(boxes, labels, (32, 32))
    assert out_boxes.numpy().tolist() == [[[0, 2, 10, 8], [-1, -1, -1, -1], [-1, -1, -1, -1]]]
    assert out_labels.numpy().tolist() == [[1, -1, -1]]


# -- bad input ---------------------------------------------------------------------------
def _edit_coco(root, change):
    path, images = write_coco(str(root))
    with open(path) as handle:
        spec = json.load(handle)
    change(spec)
    with open(path, "w") as handle:
        json.dump(spec, handle)
    return path, images


def test_degenerate_box_is_named(tmp_path):
    def flat(spec):
        spec["annotations"][1]["bbox"] = [30, 10, 0, 5]  # width 0: x2 == x1

    with pytest.raises(DataError, match=r"a\.png.*box 1 is degenerate.*x2 > x1"):
        vk.data.coco(*_edit_coco(tmp_path, flat), image_size=(32, 32))


def test_boxes_beyond_the_image_are_clipped_with_a_counted_warning(tmp_path):
    def beyond(spec):
        spec["annotations"][0]["bbox"] = [-4, -2, 20, 10]   # partly outside: clipped
        spec["annotations"][2]["bbox"] = [100, 100, 10, 10]  # wholly outside: dropped

    with pytest.warns(DataWarning, match="clipped 1 box.*dropped 1 box"):
        data = vk.data.coco(*_edit_coco(tmp_path, beyond), image_size=(40, 60),
                            validation_split=0)
    boxes, labels, _ = _examples(data)[0]  # a.png, 60 x 40, no resize
    assert boxes[0].tolist() == [0, 0, 16, 8]
    assert len(_examples(data)[1][1]) == 0  # b.png lost its only box


def test_unknown_category_id_is_named(tmp_path):
    def unknown(spec):
        spec["annotations"][0]["category_id"] = 99

    with pytest.raises(DataError, match="annotation 1: unknown category_id 99"):
        vk.data.coco(*_edit_coco(tmp_path, unknown))


def test_invalid_json_and_xml_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(BadFileError, match=r"bad\.json.*not valid JSON"):
        vk.data.coco(str(bad), str(tmp_path))
    root = write_voc(str(tmp_path / "voc"))
    with open(os.path.join(root, "Annotations", "b.xml"), "w") as handle:
        handle.write("<annotation><filename>b.png</filename>")
    with pytest.raises(BadFileError, match=r"b\.xml.*not valid XML"):
        vk.data.voc(root)


def test_unknown_voc_class_and_yolo_class_id_are_named(tmp_path):
    root = write_voc(str(tmp_path / "voc"))
    with pytest.raises(DataError, match=r"a\.xml: object 1 has unknown class 'bird'"):
        vk.data.voc(root, class_names=["cat", "dog"])
    root = write_yolo(str(tmp_path / "yolo"))
    with open(os.path.join(root, "labels", "b.txt"), "w") as handle:
        handle.write("7 0.5 0.5 0.2 0.2\n")
    with pytest.raises(DataError, match=r"b\.txt line 1: unknown class id 7"):
        vk.data.yolo(root)
    with open(os.path.join(root, "labels", "b.txt"), "w") as handle:
        handle.write("1 0.5 0.5\n")
    with pytest.raises(DataError, match=r"b\.txt line 1: expected 'class_id cx cy"):
        vk.data.yolo(root)


def test_paths_outside_the_images_root_are_refused(tmp_path):
    def escape(spec):
        spec["images"][0]["file_name"] = "../../etc/passwd"

    with pytest.raises(DataError, match="points outside the images root"):
        vk.data.coco(*_edit_coco(tmp_path, escape))


def test_images_missing_on_disk_are_counted_and_left_out(tmp_path):
    path, images = write_coco(str(tmp_path))
    os.remove(os.path.join(images, "b.png"))
    with pytest.warns(DataWarning, match=r"1 image\(s\) listed.*missing on disk"):
        data = vk.data.coco(path, images, validation_split=0)
    assert data.train_size == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        for name in ("a.png", "c.png"):
            os.remove(os.path.join(images, name))
        with pytest.raises(DataError, match="no annotated image found on disk"):
            vk.data.coco(path, images)


def test_images_that_do_not_decode_are_named_before_training(tmp_path):
    path, images = write_coco(str(tmp_path))
    with open(os.path.join(images, "c.png"), "r+b") as handle:
        handle.truncate(60)  # a truncated PNG
    with pytest.raises(BadFileError, match=r"c\.png"):
        vk.data.coco(path, images)
