"""albumentations 1.x serializations as 1.x's own `A.to_dict` wrote them."""

import warnings

import pytest

from visionkit.data.albumentations_bridge import compose_from_recipe


def _old(*transforms):
    return {"albumentations": {"__version__": "1.3.1", "transform": {
        "__class_fullname__": "Compose", "p": 1.0, "transforms": list(transforms)}}}


def _read_warning_once(section):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compose = compose_from_recipe(section)
    messages = [str(w.message) for w in caught if "albumentations 1.x" in str(w.message)]
    assert len(messages) == 1, messages
    return compose, messages[0]


def test_1x_unset_border_values_as_to_dict_wrote_them_are_read_as_zero():
    # 1.x's A.to_dict wrote value=None, mask_value=None (OpenCV then pads with 0) for
    # every geometric transform; albumentations 2's fill/fill_mask reject None.
    section = _old(
        {"__class_fullname__": "albumentations.augmentations.geometric.transforms."
                               "ShiftScaleRotate", "always_apply": False, "p": 0.5,
         "shift_limit_x": [-0.0625, 0.0625], "shift_limit_y": [-0.0625, 0.0625],
         "scale_limit": [-0.1, 0.1], "rotate_limit": [-45, 45], "interpolation": 1,
         "border_mode": 0, "value": None, "mask_value": None,
         "rotate_method": "largest_box"},
        {"__class_fullname__": "PadIfNeeded", "min_height": 32, "min_width": 32,
         "border_mode": 0, "value": None, "mask_value": None, "p": 1.0},
        # CoarseDropout's mask_fill_value=None keeps the mask (2.x's fill_mask=None too).
        {"__class_fullname__": "CoarseDropout", "max_holes": 2, "max_height": 4,
         "max_width": 4, "fill_value": 0, "mask_fill_value": None, "p": 0.5})
    compose, message = _read_warning_once(section)
    shift, pad, dropout = compose.transforms
    assert (shift.fill, shift.fill_mask, pad.fill, pad.fill_mask) == (0, 0, 0, 0)
    assert dropout.fill_mask is None
    assert "ShiftScaleRotate value=None -> fill=0" in message


def test_1x_enum_and_renamed_border_arguments_are_read_in_their_2x_form():
    # 1.x's A.to_dict wrote ImageCompression's compression_type as its enum's value
    # (ImageCompressionType.JPEG = 0, WEBP = 1); Affine took cval, cval_mask and mode,
    # Perspective pad_val, mask_pad_val and pad_mode, Channel/GridDropout fill_value.
    section = _old(
        {"__class_fullname__": "albumentations.augmentations.transforms.ImageCompression",
         "always_apply": False, "p": 0.5, "quality_lower": 80, "quality_upper": 100,
         "compression_type": 1},
        {"__class_fullname__": "Affine", "scale": [0.9, 1.1], "cval": 114, "cval_mask": 255,
         "mode": 0, "p": 0.5},
        {"__class_fullname__": "Perspective", "scale": [0.05, 0.1], "pad_mode": 0,
         "pad_val": 7, "mask_pad_val": 9, "p": 0.5},
        {"__class_fullname__": "ChannelDropout", "fill_value": 3, "p": 0.5},
        {"__class_fullname__": "GridDropout", "ratio": 0.5, "fill_value": 5,
         "mask_fill_value": None, "p": 0.5})
    compose, message = _read_warning_once(section)
    jpeg, affine, perspective, channel, grid = compose.transforms
    assert jpeg.compression_type == "webp"
    assert (affine.fill, affine.fill_mask, affine.border_mode) == (114, 255, 0)
    assert (perspective.fill, perspective.fill_mask, perspective.border_mode) == (7, 9, 0)
    assert channel.fill == 3
    assert (grid.fill, grid.fill_mask) == (5, None)
    assert "ImageCompression compression_type=1 -> compression_type='webp'" in message
    assert "Affine cval -> fill=114" in message


@pytest.mark.parametrize("compression_type", [2, "ImageCompressionType.PNG"])
def test_an_unknown_1x_compression_type_names_the_entry_and_the_choices(compression_type):
    section = _old({"__class_fullname__": "ImageCompression", "quality_lower": 80,
                    "compression_type": compression_type, "p": 0.5})
    with pytest.raises(ValueError, match=r"(?s)albumentations\[0\].*ImageCompression.*'jpeg' or "
                                         r"'webp'"):
        compose_from_recipe(section)


@pytest.mark.parametrize("name, instead", [
    ("Cutout", "CoarseDropout"), ("JpegCompression", "ImageCompression"),
    ("IAAAffine", "Affine"), ("IAAAdditiveGaussianNoise", "GaussNoise"),
    ("RandomContrast", "RandomBrightnessContrast"), ("Flip", "HorizontalFlip")])
def test_a_transform_removed_in_albumentations_2_says_what_to_write_instead(name, instead):
    import albumentations as A

    assert hasattr(A, instead) and not hasattr(A, name)
    shorthand = {"albumentations": [{"transform": "HorizontalFlip"},
                                    {"transform": name, "p": 0.5}]}
    serialized = _old({"__class_fullname__": "HorizontalFlip", "p": 0.5},
                      {"__class_fullname__": f"albumentations.augmentations.{name}", "p": 0.5})
    for section in (shorthand, serialized):
        with pytest.raises(ValueError, match=rf"albumentations\[1\]: '[\w.]*{name}' was "
                                             rf"removed in albumentations 2.*write {instead}"):
            compose_from_recipe(section)


@pytest.mark.parametrize("entry, instead", [
    ({"__class_fullname__": "ElasticTransform", "alpha": 1, "sigma": 50, "alpha_affine": 50,
      "p": 0.5}, r"alpha_affine.*A\.Affine"),
    ({"__class_fullname__": "RandomGamma", "gamma_limit": [80, 120], "eps": None, "p": 0.5},
     r"eps.*remove it"),
    ({"__class_fullname__": "GridDropout", "ratio": 0.5, "holes_number_x": 4,
      "holes_number_y": 4, "p": 0.5}, r"holes_number_x.*holes_number_xy"),
    ({"__class_fullname__": "Downscale", "scale_min": 0.5, "scale_max": 0.9,
      "interpolation": 0, "p": 0.5}, r"interpolation.*interpolation_pair")])
def test_a_1x_argument_albumentations_2_dropped_says_what_to_write_instead(entry, instead):
    # As 1.3's A.to_dict wrote them: albumentations 2 has no such argument.
    with pytest.raises(ValueError, match=rf"albumentations\[0\]: .*{instead}"):
        compose_from_recipe(_old(entry))


def test_a_shorthand_entry_may_name_its_transform_as_1x_serializations_did():
    # `__class_fullname__` values copied into a recipe's shorthand list.
    compose = compose_from_recipe({"albumentations": [
        {"transform": "albumentations.augmentations.transforms.GaussNoise", "p": 0.3},
        {"transform": "albumentations.OneOf", "transforms": [
            {"transform": "albumentations.augmentations.geometric.transforms.HorizontalFlip"}
        ]}]})
    noise, one_of = compose.transforms
    assert (type(noise).__name__, noise.p) == ("GaussNoise", 0.3)
    assert type(one_of.transforms[0]).__name__ == "HorizontalFlip"
    with pytest.raises(ValueError, match=r"albumentations\[0\]: 'numpy.GaussNoise' is not"):
        compose_from_recipe({"albumentations": [{"transform": "numpy.GaussNoise"}]})
