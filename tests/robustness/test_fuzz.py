"""Property-based tests: arbitrary bytes and annotation structures at the loaders.

Whatever the files hold, a loader either builds a data set whose every example decodes,
or raises one of visionkit's own errors; it never fails with another exception or hangs.
Examples are derandomized (the same ones every run) and bounded in number and time.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from robustness_helpers import PNG_SIGNATURE

import visionkit as vk
from visionkit.errors import VisionkitError
from visionkit.testing import noise, save_image, write_bytes

pytestmark = pytest.mark.filterwarnings("ignore::visionkit.errors.DataWarning")

FUZZ = settings(max_examples=50, deadline=datetime.timedelta(seconds=10), derandomize=True,
                database=None, suppress_health_check=[HealthCheck.too_slow])


def _encoded(image_format: str, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(noise(6, 9, seed=len(image_format))).convert(mode).save(buffer, image_format)
    return buffer.getvalue()


VALID = [_encoded("PNG"), _encoded("JPEG"), _encoded("GIF", "P"), _encoded("BMP"),
         _encoded("PNG", "P"), _encoded("JPEG", "L")]
PREFIXES = [b"", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", PNG_SIGNATURE, b"GIF89a", b"BM"]


def _damage(data: bytes, flips: list[tuple[int, int]], keep: float) -> bytes:
    damaged = bytearray(data)
    for position, value in flips:
        damaged[position % len(damaged)] = value
    return bytes(damaged[: max(1, int(len(damaged) * keep))])


image_bytes = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda prefix, tail: prefix + tail, st.sampled_from(PREFIXES),
              st.binary(max_size=200)),
    st.builds(_damage, st.sampled_from(VALID),
              st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
              st.sampled_from([1.0, 1.0, 0.9, 0.5])),
)


@pytest.fixture(scope="module")
def traced_folder_decoder(tmp_path_factory):
    """Traces the folder decoder once before the examples: the first trace (autograph
    converting the decoder, several CPU seconds) would otherwise fall on one example
    and can pass Hypothesis's deadline on a loaded machine."""
    root = tmp_path_factory.mktemp("warm")
    save_image(root / "a" / "good.png", noise(6, 9))
    save_image(root / "b" / "good.png", noise(6, 9, seed=1))
    loaded = vk.data.image_folder(root, image_size=(4, 4), validation_split=0.0)
    for record in loaded.train_records:
        assert _traced_decoder(loaded.decode)(record)["images"].shape == (4, 4, 3)


@FUZZ
@given(data=image_bytes, extension=st.sampled_from([".jpg", ".png", ".gif", ".bmp"]))
def test_image_folder_on_arbitrary_bytes(traced_folder_decoder, data, extension):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_bytes(root / "a" / f"fuzzed{extension}", data)
        save_image(root / "b" / "good.png", noise(6, 9))
        try:
            loaded = vk.data.image_folder(root, image_size=(4, 4), validation_split=0.0)
        except VisionkitError:
            return
        decode = _traced_decoder(loaded.decode)
        for record in loaded.train_records:  # what the check let through decodes
            assert decode(record)["images"].shape == (4, 4, 3)


_DECODERS: dict = {}


def _traced_decoder(decoder):
    """The data set's decoder as one `tf.function` per preprocessing spec.

    `train_examples` maps the same decoder over `train_records`; a new tf.data iterator
    per example would instantiate its graph again (about half a CPU second each), so the
    examples share one traced copy. The spec is checked equal, so it decodes the same.
    """
    spec = decoder.preprocessing
    if spec not in _DECODERS:
        _DECODERS[spec] = tf.function(decoder)
    return _DECODERS[spec]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 3) | st.floats() | st.text(max_size=4),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=6)


def _or_junk(value):
    return st.one_of(st.just(value), json_values)


file_names = st.sampled_from(["a.png", "missing.png", "../a.png", "/etc/hostname",
                              "a\0.png", "", "sub/../a.png", "."])


def _entry(template: dict, special: dict | None = None):
    """`template` with up to two fields replaced by junk (or `special` values) or removed."""
    clean: st.SearchStrategy = st.just({})
    replacements = clean | clean | st.dictionaries(st.sampled_from(sorted(template)),
                                                  json_values, min_size=1, max_size=2)
    removals = st.just(set()) | st.sets(st.sampled_from(sorted(template)), max_size=1)
    specials = st.fixed_dictionaries(special or {})

    def build(replaced, removed, special_values):
        entry = {**template, **special_values, **replaced}
        return {key: value for key, value in entry.items() if key not in removed}

    return st.builds(build, replacements, removals, specials)


coco_image = _entry({"id": 1, "file_name": "a.png", "width": 16, "height": 12},
                    {"file_name": file_names})
coco_annotation = _entry({"id": 1, "image_id": 1, "category_id": 3, "bbox": [2, 2, 6, 5],
                          "iscrowd": 0},
                         {"bbox": st.lists(st.floats(-20, 40) | st.floats(), max_size=5)})
coco_category = _entry({"id": 3, "name": "c"})
coco_lists = {"images": st.lists(coco_image | coco_image | json_values, max_size=3),
              "annotations": st.lists(coco_annotation | coco_annotation | json_values,
                                      max_size=3),
              "categories": st.lists(coco_category | coco_category | json_values,
                                     max_size=2)}
coco_spec = st.one_of(st.fixed_dictionaries(coco_lists), st.fixed_dictionaries(coco_lists),
                      _entry({"images": [], "annotations": [], "categories": []}, coco_lists))


def _loads_or_refuses(load) -> None:
    """Runs a loader: a visionkit error, or a data set whose examples all decode."""
    try:
        data = load()
    except VisionkitError:
        return
    for example in data.train_examples:
        assert np.all(np.isfinite(example["images"].numpy()))


@FUZZ
@given(spec=st.one_of(coco_spec, coco_spec, json_values))
def test_coco_on_arbitrary_structures(spec):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        save_image(root / "images" / "a.png", noise(12, 16))
        path = write_bytes(root / "instances.json", json.dumps(spec))
        _loads_or_refuses(lambda: vk.data.coco(path, root / "images", image_size=(8, 8),
                                               validation_split=0))


xml_text = st.one_of(st.sampled_from(["a.png", "3", "12.5", "-1", "nan", "cat", "../a.png",
                                      "/etc/hostname", ""]), st.text(max_size=6))
voc_object = st.fixed_dictionaries(
    {}, optional={"name": xml_text, "difficult": xml_text,
                  "bndbox": st.fixed_dictionaries(
                      {}, optional={tag: xml_text for tag in ("xmin", "ymin", "xmax", "ymax")})})
voc_tree = st.fixed_dictionaries(
    {}, optional={"filename": xml_text, "objects": st.lists(voc_object, max_size=3),
                  "size": st.fixed_dictionaries({}, optional={"width": xml_text,
                                                              "height": xml_text})})


def _voc_xml(tree: dict) -> bytes:
    top = ElementTree.Element("annotation")

    def add(parent, tag, value):
        child = ElementTree.SubElement(parent, tag)
        if isinstance(value, dict):
            for key, inner in value.items():
                add(child, key, inner)
        else:
            child.text = value

    for key, value in tree.items():
        if key == "objects":
            for item in value:
                add(top, "object", item)
        else:
            add(top, key, value)
    return ElementTree.tostring(top)


@FUZZ
@given(content=st.builds(_voc_xml, voc_tree) | st.binary(max_size=100))
def test_voc_on_arbitrary_xml(content):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        save_image(root / "JPEGImages" / "a.png", noise(12, 16))
        write_bytes(root / "Annotations" / "a.xml", content)
        _loads_or_refuses(lambda: vk.data.voc(root, image_size=(8, 8), validation_split=0))


yolo_number = st.floats(-0.5, 1.5).map(str) | st.sampled_from(["nan", "inf", "-0", "1e9"])
yolo_line = st.one_of(
    st.text(alphabet="0123456789 .-+eEinfa\t", max_size=24),
    st.builds(lambda class_id, numbers: " ".join([str(class_id), *numbers]),
              st.integers(-1, 3), st.lists(yolo_number, min_size=3, max_size=5)))


@FUZZ
@given(content=st.lists(yolo_line, max_size=4).map("\n".join).map(str.encode)
       | st.binary(max_size=60))
def test_yolo_on_arbitrary_label_lines(content):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        save_image(root / "images" / "a.png", noise(12, 16))
        write_bytes(root / "labels" / "a.txt", content)
        _loads_or_refuses(lambda: vk.data.yolo(root, names=["a", "b"], image_size=(8, 8),
                                               validation_split=0))


def test_fuzz_inputs_include_loadable_ones(tmp_path):
    """The strategies reach the success path too (else the properties say little)."""
    save_image(tmp_path / "images" / "a.png", noise(12, 16))
    spec = {"images": [{"id": 1, "file_name": "a.png"}], "annotations": [],
            "categories": [{"id": 3}]}
    path = write_bytes(tmp_path / "instances.json", json.dumps(spec))
    assert vk.data.coco(path, tmp_path / "images", validation_split=0).train_size == 1
    assert os.path.getsize(path) > 0


def test_a_gif_tensorflow_cannot_decode_is_named_before_training(tmp_path):
    # A GIF with no colour table around the fuzz test's image block: the scan names it
    # (PIL or TensorFlow's stricter decoder refuses it) instead of the pipeline failing
    # mid-epoch.
    from visionkit.errors import BadFileError

    frame = (b",\x00\x00\x00\x00\t\x00\x06\x00\x00\x08?\x00K\x108\xe1`\x03\n\x10 *`\x10"
             b"\x00\xa0\x81\x01\x04\x11\n\x04P\xc0@\xc5\x85\x0e\x15 P\xb8 a\xc1\x04\x0f\x166d@"
             b"\xc0!A\x08\x14&:\xa4\xf8\x00b\x84\x08\r\x15\x1e\x1c\x18@b\x85\x87\x80\x00;")
    damaged = b"GIF87a\t\x00\x06\x00\x00\x00\x00" + frame
    write_bytes(tmp_path / "a" / "bad.gif", damaged)
    save_image(tmp_path / "b" / "good.png", noise(6, 9))
    with pytest.raises(BadFileError, match=r"bad\.gif"):
        vk.data.image_folder(tmp_path, image_size=(4, 4), validation_split=0.0)
