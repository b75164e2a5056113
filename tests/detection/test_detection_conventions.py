"""YOLO, COCO and VOC sets as their tools write them: given splits, sizes, conventions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

import visionkit as vk
from visionkit.errors import DataError, DataWarning

HEIGHT, WIDTH = 20, 30  # every fixture image is non-square


def _image(path: Path, identity: int, size=(HEIGHT, WIDTH), exif_orientation=None) -> Path:
    """A solid image whose red channel is `4 * identity` (its identity in the pipeline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((*size, 3), np.uint8)
    pixels[..., 0] = 4 * identity
    image = Image.fromarray(pixels)
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        image.save(path, exif=exif)
    else:
        image.save(path)
    return path


def _ids(dataset) -> list[int]:
    if dataset is None:
        return []
    found = []
    for images, _ in dataset:
        found += [int(round(v / 4)) for v in images.numpy()[:, 0, 0, 0]]
    return found


def _yolo_tree(root: Path, splits: dict[str, list[int]]) -> None:
    for split, ids in splits.items():
        for identity in ids:
            _image(root / "images" / split / f"{identity}.png", identity)
            label = root / "labels" / split / f"{identity}.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text(f"{identity % 2} 0.5 0.5 0.4 0.6\n")


SPLITS = {"train": [1, 2, 3, 4, 5, 6], "val": [7, 8, 9], "test": [10, 11]}


def test_yolo_data_yaml_splits_are_used_exactly(tmp_path, capsys):
    root = tmp_path / "set"
    _yolo_tree(root, SPLITS)
    # ultralytics' layout: a relative `path:`, names as an {id: name} mapping.
    (tmp_path / "data.yaml").write_text(
        "path: set\ntrain: images/train\nval: images/val\ntest: images/test\n"
        "names:\n  0: even\n  1: odd\n")
    data = vk.data.yolo(tmp_path / "data.yaml", image_size=(HEIGHT, WIDTH), batch_size=4)
    assert "random" not in capsys.readouterr().out
    assert data.class_names == ("even", "odd")
    for split, ids in SPLITS.items():
        seen = _ids(data.split(split))
        assert sorted(seen) == ids, split
    # A label line's box arrives in the resized image's pixels: 0.5 0.5 0.4 0.6.
    _, targets = next(iter(data.test))
    np.testing.assert_allclose(targets["boxes"].numpy()[0, 0],
                               [0.3 * WIDTH, 0.2 * HEIGHT, 0.7 * WIDTH, 0.8 * HEIGHT],
                               atol=1e-4)


def test_yolo_images_split_folders_without_yaml_are_not_pooled(tmp_path):
    _yolo_tree(tmp_path, {"train": SPLITS["train"], "val": SPLITS["val"]})
    (tmp_path / "classes.txt").write_text("even\nodd\n")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "images/train/scan.tif")
    with pytest.warns(DataWarning, match=r"1 files that are not images.*scan\.tif"):
        data = vk.data.yolo(tmp_path, image_size=(HEIGHT, WIDTH), batch_size=4)
    assert sorted(_ids(data.val)) == SPLITS["val"]
    assert sorted(_ids(data.train)) == SPLITS["train"]


def test_yolo_roboflow_layout_with_parent_relative_paths(tmp_path):
    # Roboflow's export: train/images, valid/images and "../" paths in data.yaml.
    for split, ids in (("train", [1, 2, 3]), ("valid", [4, 5])):
        for identity in ids:
            _image(tmp_path / split / "images" / f"{identity}.jpg", identity)
            label = tmp_path / split / "labels" / f"{identity}.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text("0 0.5 0.5 0.2 0.2\n")
    (tmp_path / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\n"
                                        "nc: 1\nnames: ['fruit']\n")
    with pytest.warns(DataWarning, match="starting with '../' found inside"):
        data = vk.data.yolo(tmp_path, image_size=(HEIGHT, WIDTH), batch_size=8)
    assert sorted(_ids(data.val)) == [4, 5]
    _, targets = next(iter(data.val))
    assert (targets["labels"].numpy() == 0).all()


def test_yolo_names_list_and_txt_split_lists(tmp_path):
    _yolo_tree(tmp_path, {"train": SPLITS["train"], "val": SPLITS["val"]})
    (tmp_path / "val.txt").write_text("".join(f"./images/val/{i}.png\n" for i in (7, 9)))
    (tmp_path / "data.yaml").write_text(
        "train: images/train\nval: val.txt\nnc: 2\nnames: [even, odd]\n")
    data = vk.data.yolo(tmp_path, image_size=(HEIGHT, WIDTH), batch_size=4)
    assert sorted(_ids(data.val)) == [7, 9]
    (tmp_path / "data.yaml").write_text("train: images/train\nnc: 3\nnames: [even, odd]\n")
    with pytest.raises(DataError, match="nc: 3 but names lists 2"):
        vk.data.yolo(tmp_path, image_size=(HEIGHT, WIDTH))


def test_yolo_labels_in_pixels_are_refused_with_file_and_line(tmp_path):
    _yolo_tree(tmp_path, {"train": SPLITS["train"], "val": SPLITS["val"]})
    (tmp_path / "classes.txt").write_text("even\nodd\n")
    bad = tmp_path / "labels/train/3.txt"
    bad.write_text("1 0.5 0.5 0.4 0.6\n1 15 10 12 12\n")  # second line: pixels
    with pytest.raises(DataError, match=r"3\.txt line 2: expected normalised values in "
                                        r"0\.\.1.*look like pixel coordinates"):
        vk.data.yolo(tmp_path, image_size=(HEIGHT, WIDTH))
    with pytest.warns(DataWarning, match=r"1 label lines with normalised values outside "
                                         r"0\.\.1 left out.*3\.txt line 2"):
        data = vk.data.yolo(tmp_path, image_size=(HEIGHT, WIDTH), batch_size=8,
                            on_bad_annotation="skip")
    counts = [int((t["labels"].numpy() >= 0).sum()) for _, t in data.train]
    assert sum(counts) == 6  # one box per image; the pixel line is not a full-image box


def test_yolo_segment_lines_and_number_notations(tmp_path):
    _image(tmp_path / "images/a.png", 1)
    (tmp_path / "labels").mkdir()
    # A polygon (segment format), a class id written as 1.0, numbers in e-notation.
    (tmp_path / "labels/a.txt").write_text("0 0.1 0.2 0.5 0.25 0.3 0.7\n1.0 5e-1 .5 2.0E-1 0.2\n")
    with pytest.warns(DataWarning, match="1 segment .polygon. lines read as their bounding"):
        data = vk.data.yolo(tmp_path, image_size=(HEIGHT, WIDTH), names=["a", "b"],
                            validation_split=0)
    example = next(iter(data.train_examples))
    np.testing.assert_allclose(example["bounding_boxes"]["boxes"].numpy(),
                               [[0.1 * WIDTH, 0.2 * HEIGHT, 0.5 * WIDTH, 0.7 * HEIGHT],
                                [0.4 * WIDTH, 0.4 * HEIGHT, 0.6 * WIDTH, 0.6 * HEIGHT]],
                               atol=1e-4)
    assert example["bounding_boxes"]["labels"].numpy().tolist() == [0, 1]


def _coco(path: Path, entries: list[tuple[int, str, int, int]], boxes=None) -> Path:
    """entries: (id, file_name, width, height); one box [2, 2, 10, 8] per image."""
    spec = {"images": [{"id": i, "file_name": f, "width": w, "height": h}
                       for i, f, w, h in entries],
            "annotations": [{"id": 100 + i, "image_id": i, "category_id": 3,
                             "bbox": (boxes or {}).get(i, [2, 2, 10, 8])}
                            for i, *_ in entries],
            "categories": [{"id": 3, "name": "thing"}]}
    path.write_text(json.dumps(spec))
    return path


def test_coco_one_json_per_split(tmp_path):
    for identity in range(1, 8):
        _image(tmp_path / "img" / f"{identity}.png", identity)
    train = _coco(tmp_path / "train.json", [(i, f"{i}.png", WIDTH, HEIGHT) for i in (1, 2, 3)])
    val = _coco(tmp_path / "val.json", [(i, f"{i}.png", WIDTH, HEIGHT) for i in (4, 5)])
    test = _coco(tmp_path / "test.json", [(i, f"{i}.png", WIDTH, HEIGHT) for i in (6, 7)])
    data = vk.data.coco(train, tmp_path / "img", image_size=(HEIGHT, WIDTH),
                        val_annotations=val, test_annotations=test, batch_size=2)
    assert (sorted(_ids(data.train)), sorted(_ids(data.val)), sorted(_ids(data.test))) == \
        ([1, 2, 3], [4, 5], [6, 7])


def test_coco_swapped_width_height_is_named_or_trusted_from_the_file(tmp_path):
    _image(tmp_path / "a.png", 1)
    _image(tmp_path / "b.png", 2)
    # b.png is 30 wide, 20 high; the JSON swaps them. Its box lies inside the image.
    spec = _coco(tmp_path / "c.json", [(1, "a.png", WIDTH, HEIGHT), (2, "b.png", HEIGHT, WIDTH)],
                 boxes={2: [20, 4, 8, 10]})
    with pytest.raises(DataError, match=r"'b\.png' as width 20 x height 30 but the file is "
                                        r"width 30 x height 20 \(width and height are swapped"):
        vk.data.coco(spec, tmp_path, image_size=(HEIGHT, WIDTH))
    with pytest.warns(DataWarning, match="declared size differs from the file"):
        data = vk.data.coco(spec, tmp_path, image_size=(HEIGHT, WIDTH), validation_split=0,
                            trust_file_size=True)
    boxes = {int(round(e["images"].numpy()[0, 0, 0] / 4)): e["bounding_boxes"]["boxes"].numpy()
             for e in data.train_examples}
    np.testing.assert_allclose(boxes[2], [[20, 4, 28, 14]], atol=1e-4)  # kept, not rescaled


def test_exif_turned_image_annotated_as_displayed(tmp_path):
    # Stored 30x20 (w x h) with orientation 6: displayed 20 wide, 30 high. The annotation
    # declares the displayed size and a box in displayed pixels.
    path = _image(tmp_path / "a.jpg", 1, size=(HEIGHT, WIDTH), exif_orientation=6)
    pixels = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    pixels[:6, :6] = 255  # a block at the stored top-left shows at the displayed top-right
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(path, exif=exif, quality=95)
    spec = _coco(tmp_path / "c.json", [(1, "a.jpg", HEIGHT, WIDTH)], boxes={1: [2, 3, 10, 20]})
    data = vk.data.coco(spec, tmp_path, image_size=(WIDTH, HEIGHT), validation_split=0)
    example = next(iter(data.train_examples))
    image = example["images"].numpy()[..., 0]
    assert image.shape == (WIDTH, HEIGHT)
    assert image[:4, -4:].min() > 200 and image[:4, :4].max() < 50
    np.testing.assert_allclose(example["bounding_boxes"]["boxes"].numpy(), [[2, 3, 12, 23]],
                               atol=1e-3)


def test_coco_zero_area_boxes_skip_keeps_the_set_usable(tmp_path):
    for identity in (1, 2):
        _image(tmp_path / f"{identity}.png", identity)
    spec = _coco(tmp_path / "c.json", [(1, "1.png", WIDTH, HEIGHT), (2, "2.png", WIDTH, HEIGHT)],
                 boxes={2: [5, 5, 0, 4]})
    with pytest.raises(DataError, match=r"'2\.png'.*box 0 is degenerate"):
        vk.data.coco(spec, tmp_path, image_size=(HEIGHT, WIDTH))
    with pytest.warns(DataWarning, match=r"1 zero-area or inverted boxes left out"):
        data = vk.data.coco(spec, tmp_path, image_size=(HEIGHT, WIDTH), validation_split=0,
                            on_bad_annotation="skip")
    assert data.train_size == 2


def _voc_xml(root: Path, stem: str, file_name: str, size=(WIDTH, HEIGHT)) -> None:
    folder = root / "Annotations"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.xml").write_text(
        f"<annotation><filename>{file_name}</filename><size><width>{size[0]}</width>"
        f"<height>{size[1]}</height><depth>3</depth></size><object><name>cat</name>"
        "<bndbox><xmin>3</xmin><ymin>3</ymin><xmax>1.2e1</xmax><ymax> 10 </ymax></bndbox>"
        "</object></annotation>")


def test_voc_image_sets_are_the_splits(tmp_path):
    for identity in range(1, 8):
        _image(tmp_path / "JPEGImages" / f"{identity}.png", identity)
        _voc_xml(tmp_path, str(identity), f"{identity}.png")
    sets = tmp_path / "ImageSets/Main"
    sets.mkdir(parents=True)
    (sets / "train.txt").write_text("1\n2\n3\n")
    (sets / "val.txt").write_text("4\n5\n")
    (sets / "test.txt").write_text("6\n")
    with pytest.warns(DataWarning, match="1 annotations listed in no ImageSets split"):
        data = vk.data.voc(tmp_path, image_size=(HEIGHT, WIDTH), batch_size=2)
    assert (sorted(_ids(data.train)), sorted(_ids(data.val)), sorted(_ids(data.test))) == \
        ([1, 2, 3], [4, 5], [6])


def test_voc_size_zero_and_filename_without_extension(tmp_path):
    _image(tmp_path / "JPEGImages/a.png", 1)
    _voc_xml(tmp_path, "a", "a", size=(0, 0))
    with pytest.warns(DataWarning) as caught:
        data = vk.data.voc(tmp_path, image_size=(HEIGHT, WIDTH), validation_split=0)
    messages = " ".join(str(w.message) for w in caught)
    assert "size of 0 measured from the file" in messages
    assert "without extension resolved by stem" in messages and "'a.png'" in messages
    example = next(iter(data.train_examples))
    np.testing.assert_allclose(example["bounding_boxes"]["boxes"].numpy(), [[2, 2, 12, 10]])


@pytest.mark.parametrize("orientation", range(5, 9))
def test_exif_turned_image_annotated_as_stored_is_read_upright(tmp_path, orientation):
    # Stored 30 wide x 20 high, a bright block at stored pixels x 4..12, y 2..8, annotated
    # in stored pixels (the COCO entry declares the stored size). The example is upright
    # (as a viewer and the exported model show it) and its box follows the block there.
    pixels = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    pixels[2:8, 4:12] = 255
    path = tmp_path / "a.png"
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(path, exif=exif)
    spec = _coco(tmp_path / "c.json", [(1, "a.png", WIDTH, HEIGHT)], boxes={1: [4, 2, 8, 6]})
    with Image.open(path) as opened:
        upright = np.asarray(ImageOps.exif_transpose(opened))[..., 0]
    size = upright.shape[:2]
    with pytest.warns(DataWarning, match="annotated as stored"):
        data = vk.data.coco(spec, tmp_path, image_size=size, validation_split=0)
    example = next(iter(data.train_examples))
    np.testing.assert_allclose(example["images"].numpy()[..., 0], upright, atol=1)
    rows, columns = np.nonzero(upright > 128)
    expected = [columns.min(), rows.min(), columns.max() + 1, rows.max() + 1]
    np.testing.assert_allclose(example["bounding_boxes"]["boxes"].numpy(), [expected],
                               atol=1e-3)


def test_exif_flip_with_an_ambiguous_declared_size_is_read_as_displayed_and_said(tmp_path):
    # Orientation 3 (turned 180 degrees) keeps width and height: the declared size cannot
    # tell stored from displayed, so the boxes are read as displayed, with a warning.
    pixels = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    pixels[2:8, 4:12] = 255
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 3
    image.save(tmp_path / "a.png", exif=exif)
    spec = _coco(tmp_path / "c.json", [(1, "a.png", WIDTH, HEIGHT)], boxes={1: [18, 12, 8, 6]})
    with pytest.warns(DataWarning, match="fits both the stored and the displayed"):
        data = vk.data.coco(spec, tmp_path, image_size=(HEIGHT, WIDTH), validation_split=0)
    example = next(iter(data.train_examples))
    assert example["images"].numpy()[12:18, 18:26, 0].min() > 200  # upright block
    np.testing.assert_allclose(example["bounding_boxes"]["boxes"].numpy(), [[18, 12, 26, 18]],
                               atol=1e-3)
