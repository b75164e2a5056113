"""albumentations 1.x serializations as 1.x's own `A.to_dict` wrote them."""

import warnings

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
