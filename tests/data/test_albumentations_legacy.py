"""albumentations 1.x serializations as 1.x's own `A.to_dict` wrote them."""

import warnings

import cv2
import numpy as np
import pytest
import tensorflow as tf

from visionkit.data.albumentations_bridge import albumentations_augmenter, compose_from_recipe


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
    ({"__class_fullname__": "GridDropout", "ratio": 0.5, "holes_number_x": 4,
      "holes_number_y": 4, "p": 0.5}, r"holes_number_x.*holes_number_xy")])
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


def _applied_noise(compose, level=128.0, size=48):
    """The noise visionkit's bridge adds to a constant image (float32 0..255 in and out,
    uint8 inside albumentations): per-image, in 0..255 levels."""
    augment = albumentations_augmenter(compose, "classification")
    example = {"images": tf.fill([size, size, 3], level), "labels": tf.constant(0)}
    return augment(example, tf.constant([3, 4], tf.int64))["images"].numpy() - level


@pytest.mark.parametrize("var_limit, mean, units, std_levels, mean_levels", [
    # uint8 1.x recipe: variance 25 squared levels -> 5 levels; mean in levels.
    ([25.0, 25.0], 10, "squared 0..255 levels", 5.0, 10.0),
    # float 1.x recipe (images in 0..1): variance 0.0016 -> std 0.04 of the range,
    # i.e. 10.2 levels of visionkit's 0..255 pixels; mean 0.02 -> 5.1 levels.
    ([0.0016, 0.0016], 0.02, "0..1 units", 0.04 * 255, 0.02 * 255),
    # a single value v is 1.x's (0, v); 0 -> no noise at all.
    (0.0, 0, "0..1 units", 0.0, 0.0)])
def test_1x_gauss_noise_applies_the_noise_its_var_limit_asked_for(var_limit, mean, units,
                                                                 std_levels, mean_levels):
    # 1.x's GaussNoise added normal(mean, sqrt(var)) in the image's own units (measured
    # with albumentations 1.3.1 itself: var 25 on uint8 128 -> std 5.0005; var 0.0016 on
    # float32 0.5 -> std 0.0402). visionkit feeds uint8, so float recipes scale by 255.
    section = _old({"__class_fullname__": "albumentations.augmentations.transforms.GaussNoise",
                    "always_apply": False, "p": 1.0, "var_limit": var_limit,
                    "per_channel": True, "mean": mean})
    compose, message = _read_warning_once(section)
    assert f"GaussNoise var_limit={var_limit!r}, mean={mean!r} read as a variance in {units}" \
        in message
    noise = _applied_noise(compose)
    # albumentations brings the noisy image back to uint8 levels (1.x did too): an error
    # within one level, of variance about 1/12, wherever there is noise.
    expected_std = np.sqrt(std_levels ** 2 + 1 / 12) if std_levels else 0.0
    assert noise.std() == pytest.approx(expected_std, rel=0.04, abs=1e-6)
    assert noise.mean() == pytest.approx(mean_levels, abs=0.6 if std_levels else 1e-6)


def test_1x_gauss_noise_mean_alone_keeps_1x_default_variance_and_bad_values_name_the_entry():
    compose, message = _read_warning_once(_old(
        {"__class_fullname__": "HorizontalFlip", "p": 0.5},
        {"__class_fullname__": "GaussNoise", "mean": 0, "p": 1.0}))
    # 1.x's default (10, 50) squared levels, not albumentations 2's (0.2, 0.44) of 255.
    np.testing.assert_allclose(compose.transforms[1].std_range,
                               (np.sqrt(10) / 255, np.sqrt(50) / 255))
    assert "var_limit unset (1.x's default (10, 50))" in message
    for bad in ([50.0, 10.0], [-1.0, 4.0], "high", [1.0, 2.0, 3.0]):
        with pytest.raises(ValueError, match=r"albumentations\[1\]: GaussNoise: expected "
                                             r"var_limit .*received"):
            compose_from_recipe(_old({"__class_fullname__": "HorizontalFlip", "p": 0.5},
                                     {"__class_fullname__": "GaussNoise", "var_limit": bad,
                                      "p": 1.0}))


# Downscale as albumentations 1.3.1's A.to_dict wrote it (its output, run for this test):
# A.Downscale(scale_min=0.5, scale_max=0.5, interpolation={"downscale": 3, "upscale": 1}).
_DOWNSCALE_13 = {"__class_fullname__": "Downscale", "always_apply": False, "p": 1.0,
                 "scale_min": 0.5, "scale_max": 0.5,
                 "interpolation": {"upscale": 1, "downscale": 3}}


@pytest.mark.parametrize("entry, down, up", [
    (_DOWNSCALE_13, cv2.INTER_AREA, cv2.INTER_LINEAR),
    # 1.x also took one flag for both (a hand-written recipe).
    ({**_DOWNSCALE_13, "interpolation": 2}, cv2.INTER_CUBIC, cv2.INTER_CUBIC),
    # 1.4.10+ wrote scale_range and interpolation_pair: albumentations 2's own form.
    ({"__class_fullname__": "Downscale", "p": 1.0, "scale_range": [0.5, 0.5],
      "interpolation_pair": {"upscale": 1, "downscale": 3}}, cv2.INTER_AREA, cv2.INTER_LINEAR)])
def test_1x_downscale_interpolation_is_read_as_interpolation_pair(entry, down, up):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compose = compose_from_recipe(_old(entry))
    said = [str(w.message) for w in caught if "albumentations 1.x" in str(w.message)]
    assert len(said) == (0 if "interpolation_pair" in entry else 1), said
    if said:
        assert f"Downscale interpolation={entry['interpolation']!r} -> interpolation_pair=" in \
            said[0]
    (downscale,) = compose.transforms
    assert downscale.interpolation_pair == {"downscale": down, "upscale": up}
    # The image it gives is OpenCV's half-size down and back up with those flags.
    image = np.random.default_rng(0).integers(0, 256, (16, 20, 3), dtype=np.uint8)
    reference = cv2.resize(cv2.resize(image, (10, 8), interpolation=down), (20, 16),
                           interpolation=up)
    np.testing.assert_array_equal(compose(image=image)["image"], reference)


def test_a_1x_downscale_interpolation_albumentations_never_took_names_the_entry():
    with pytest.raises(ValueError, match=r"albumentations\[0\]: Downscale: expected "
                                         r"interpolation .*received 'linear'"):
        compose_from_recipe(_old({**_DOWNSCALE_13, "interpolation": "linear"}))


@pytest.mark.parametrize("threshold", [[100, 100], [100 / 255, 100 / 255]],
                         ids=["uint8 levels", "float 0..1"])
def test_1x_solarize_threshold_inverts_the_pixels_1x_inverted(threshold):
    # 1.x's Solarize inverted pixels at or above `threshold`, in the image's own units
    # (1.3.1's A.to_dict wrote threshold=[t, t]; measured with 1.3.1 on a 0..255 ramp:
    # 156 of 256 levels inverted at t=100).
    section = _old({"__class_fullname__": "Solarize", "always_apply": False, "p": 1,
                    "threshold": threshold})
    compose, message = _read_warning_once(section)
    assert "Solarize threshold=" in message and "-> threshold_range=(0.3922, 0.3922)" in message
    ramp = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    reference = np.where(ramp >= 100, 255 - ramp, ramp)
    np.testing.assert_array_equal(compose(image=ramp)["image"], reference)


@pytest.mark.parametrize("eps", [None, 1e-7])
def test_1x_random_gamma_with_the_eps_to_dict_wrote_reads_and_applies_1xs_gamma(eps):
    # 1.x's A.to_dict wrote eps (deprecated, unused on uint8 images) for every RandomGamma;
    # albumentations 2 refuses it, so no saved 1.x recipe with a RandomGamma loaded.
    section = _old({"__class_fullname__": "RandomGamma", "always_apply": False, "p": 1.0,
                    "gamma_limit": [150, 150], "eps": eps})
    compose, message = _read_warning_once(section)
    assert f"RandomGamma eps={eps!r} dropped" in message
    image = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    # 1.x's uint8 gamma: a lookup table (i / 255) ** gamma * 255, truncated.
    table = ((np.arange(0, 256.0 / 255, 1.0 / 255) ** 1.5) * 255).astype(np.uint8)
    np.testing.assert_allclose(compose(image=image)["image"].astype(int),
                               table[image].astype(int), atol=1)
