"""A recipe's albumentations section is read by albumentations' own `A.from_dict`."""

import albumentations as A
import numpy as np
import pytest
import yaml

from visionkit.config import RecipeError, parse_recipe
from visionkit.data.albumentations_bridge import compose_from_recipe, recipe_to_dict
from visionkit.run import augment_layers

SHORTHAND = [
    {"transform": "HorizontalFlip", "p": 0.5},
    {"transform": "Resize", "height": 16, "width": 16},  # no p: Resize's own default
    {"transform": "OneOf", "p": 0.8, "transforms": [{"transform": "Blur", "blur_limit": 3},
                                                    {"transform": "GaussNoise", "p": 0.5}]},
]


def _recipe(augment, task="classification"):
    return {"name": "a", "task": task, "data": {"source": "shapes", "n": 8,
                                                "image_size": [16, 16], "augment": augment},
            "model": {"name": "simple_cnn"}}


def test_the_shorthand_and_albumentations_own_form_build_the_same_compose():
    by_hand = A.Compose([A.HorizontalFlip(p=0.5), A.Resize(16, 16),
                         A.OneOf([A.Blur(blur_limit=3), A.GaussNoise(p=0.5)], p=0.8)])
    from_shorthand = compose_from_recipe({"albumentations": SHORTHAND})
    assert A.to_dict(from_shorthand) == A.to_dict(by_hand)
    # albumentations' reader alone would give Resize p=0.5; the entry keeps its default.
    assert from_shorthand.transforms[1].p == A.Resize(16, 16).p == 1.0
    # A.to_dict's output, written into a YAML recipe and read back, is the same Compose.
    written = yaml.safe_dump({"augment": {"albumentations": A.to_dict(by_hand)}})
    recipe = parse_recipe(_recipe(yaml.safe_load(written)["augment"]))
    rebuilt = augment_layers(recipe.data.augment, seed=0, task="classification")
    assert A.to_dict(rebuilt) == A.to_dict(by_hand)
    # The shorthand goes through that same form.
    assert A.to_dict(A.from_dict(recipe_to_dict({"albumentations": SHORTHAND}))) == \
        A.to_dict(by_hand)


def test_detection_recipes_get_pascal_voc_boxes_in_either_form():
    native = A.to_dict(A.Compose([A.HorizontalFlip(p=0.5)]))
    for section in ({"albumentations": native, "bbox_params": {"min_visibility": 0.3}},
                    {"albumentations": [{"transform": "HorizontalFlip"}],
                     "bbox_params": {"min_visibility": 0.3}}):
        compose = compose_from_recipe(section, task="detection")
        params = compose.processors["bboxes"].params
        assert (params.format, list(params.label_fields), params.min_visibility) == \
            ("pascal_voc", ["labels"], 0.3)
    with pytest.raises(ValueError, match="bbox_params apply to detection data only"):
        compose_from_recipe({"albumentations": native, "bbox_params": {"min_area": 4}},
                            task="segmentation")


@pytest.mark.parametrize("serialized, message", [
    ({"__class_fullname__": "Compose", "transforms": [
        {"__class_fullname__": "HorizontalFlip", "p": 0.5},
        {"__class_fullname__": "OneOf", "p": 1.0,
         "transforms": [{"__class_fullname__": "Blurr", "p": 1.0}]}]},
     r"albumentations\[1\]\.transforms\[0\]: 'Blurr' is not an albumentations transform\. "
     r"Did you mean 'Blur'"),
    ({"__class_fullname__": "Compose", "transforms": [
        {"__class_fullname__": "Affine", "p": 0.5, "rotate": "a lot"}]},
     r"albumentations\[0\]: cannot build Affine"),
    ({"transforms": []}, r"expected albumentations' serialization"),
])
def test_a_bad_serialized_section_names_the_transform(serialized, message):
    with pytest.raises(RecipeError, match=message):
        parse_recipe(_recipe({"albumentations": serialized}))


def test_a_hand_written_serialized_transform_without_p_keeps_its_own_default_p():
    # A.to_dict always writes p; a hand-written form may leave it out, and albumentations'
    # reader would then apply Resize / CenterCrop to half the images only.
    serialized = {"__class_fullname__": "Compose", "transforms": [
        {"__class_fullname__": "CenterCrop", "height": 12, "width": 12},
        {"__class_fullname__": "OneOf", "transforms": [
            {"__class_fullname__": "Resize", "height": 16, "width": 16}]},
        {"__class_fullname__": "HorizontalFlip", "p": 0.25}]}
    compose = compose_from_recipe({"albumentations": serialized})
    resize = compose.transforms[1].transforms[0]
    assert [compose.transforms[0].p, compose.transforms[1].p, resize.p,
            compose.transforms[2].p] == [A.CenterCrop(12, 12).p, A.OneOf([]).p,
                                         A.Resize(16, 16).p, 0.25] == [1.0, 0.5, 1.0, 0.25]


def test_a_detection_compose_with_label_fields_augments_data_without_boxes():
    # A.save of a detection pipeline (bbox_params and keypoint_params with label fields)
    # reused for classification: albumentations alone fails "'label_fields' are not valid".
    import numpy as np

    from visionkit.data.albumentations_bridge import _apply

    compose = A.Compose(
        [A.HorizontalFlip(p=1.0)],
        bbox_params=A.BboxParams(format="pascal_voc", label_fields=["class_labels"]),
        keypoint_params=A.KeypointParams(format="xy", label_fields=["keypoint_labels"]))
    image = np.arange(2 * 3 * 1, dtype=np.uint8).reshape(2, 3, 1)
    flipped, = _apply(compose, np.array([1]), image, (), has_mask=False, has_boxes=False,
                      label_fields=())
    np.testing.assert_array_equal(flipped, image[:, ::-1])
    # ... and boxes still move, with the keypoint label field left empty.
    out = _apply(compose, np.array([1]), np.zeros([4, 4, 3], np.uint8),
                 (np.array([[0, 0, 1, 2]], np.float32), np.array([5], np.int32)),
                 has_mask=False, has_boxes=True, label_fields=("class_labels",))
    np.testing.assert_array_equal(out[1], [[3, 0, 4, 2]])
    assert out[2].tolist() == [5]


def test_albumentations_1x_serialized_always_apply_is_read_as_p():
    # What albumentations 1.x's A.to_dict wrote (always_apply on every transform);
    # albumentations 2 rejects the argument.
    old = {"__version__": "1.3.0", "transform": {
        "__class_fullname__": "Compose", "p": 1.0, "bbox_params": None, "transforms": [
            {"__class_fullname__": "HorizontalFlip", "always_apply": False, "p": 0.5},
            {"__class_fullname__": "OneOf", "p": 0.9, "transforms": [
                {"__class_fullname__": "RandomBrightnessContrast", "always_apply": True,
                 "p": 0.2}]}]}}
    with pytest.warns(UserWarning, match=r"1 albumentations 1\.x argument\(s\) read in their "
                                         r"albumentations 2 form: RandomBrightnessContrast "
                                         r"always_apply=True -> p=1\.0 \(was p=0\.2\)"):
        compose = compose_from_recipe({"albumentations": old})
    assert [compose.transforms[0].p, compose.transforms[1].p,
            compose.transforms[1].transforms[0].p] == [0.5, 0.9, 1.0]
    assert old["transform"]["transforms"][0]["always_apply"] is False  # input untouched


def test_albumentations_1x_renamed_arguments_are_read_in_their_2x_form():
    # Arguments as albumentations 1.4's A.to_dict wrote them; albumentations 2 renamed
    # each (its reader would reject or ignore them).
    old = {"__version__": "1.4.24", "transform": {
        "__class_fullname__": "Compose", "p": 1.0, "transforms": [
            {"__class_fullname__": "RandomResizedCrop", "height": 24, "width": 32,
             "scale": [0.5, 1.0], "p": 1.0},
            {"__class_fullname__": "ImageCompression", "quality_lower": 70, "p": 0.5},
            {"__class_fullname__": "Downscale", "scale_min": 0.5, "scale_max": 0.75,
             "p": 0.5},
            {"__class_fullname__": "CoarseDropout", "max_holes": 6, "max_height": 4,
             "min_height": 2, "max_width": 5, "fill_value": 127, "p": 0.5},
            {"__class_fullname__": "GaussNoise", "var_limit": [16.0, 64.0], "mean": 51,
             "p": 0.5},
            {"__class_fullname__": "RandomFog", "fog_coef_upper": 0.6, "p": 0.5},
            {"__class_fullname__": "Rotate", "limit": 10, "border_mode": 0, "value": 114,
             "mask_value": 255, "p": 0.5}]}}
    with pytest.warns(UserWarning, match=r"11 albumentations 1\.x argument\(s\) read in their "
                                         r"albumentations 2 form: RandomResizedCrop height, "
                                         r"width -> size=\(24, 32\); ImageCompression "
                                         r"quality_lower -> quality_range=\(70, 100\)"):
        compose = compose_from_recipe({"albumentations": old})
    crop, jpeg, down, dropout, noise, fog, rotate = compose.transforms
    assert tuple(crop.size) == (24, 32)
    assert tuple(jpeg.quality_range) == (70, 100)  # 1.x's quality_upper default
    assert tuple(down.scale_range) == (0.5, 0.75)
    assert tuple(dropout.num_holes_range) == (6, 6)  # 1.x: min_holes defaults to max
    assert tuple(dropout.hole_height_range) == (2, 4)
    assert tuple(dropout.hole_width_range) == (5, 5)
    assert dropout.fill == 127
    # variance 16..64 in 0..255 units: standard deviation 4..8 pixels levels.
    np.testing.assert_allclose(noise.std_range, (4 / 255, 8 / 255))
    np.testing.assert_allclose(noise.mean_range, (0.2, 0.2))
    assert tuple(fog.fog_coef_range) == (0.3, 0.6)
    assert (rotate.fill, rotate.fill_mask) == (114, 255)
    assert old["transform"]["transforms"][1]["quality_lower"] == 70  # input untouched


def test_albumentations_2x_arguments_pass_unchanged_and_unwarned():
    import warnings

    new = [{"transform": "ImageCompression", "quality_range": [60, 90], "p": 1.0},
           {"transform": "Rotate", "limit": 5, "fill": 3, "p": 1.0}]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compose = compose_from_recipe({"albumentations": new})
    assert tuple(compose.transforms[0].quality_range) == (60, 90)
    assert compose.transforms[1].fill == 3
