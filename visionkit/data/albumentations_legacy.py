"""albumentations 1.x serializations read by albumentations 2: renamed arguments.

albumentations 2.0 removed `always_apply` and renamed the arguments of many transforms
(pairs of bounds became one range, `value`/`mask_value` became `fill`/`fill_mask`, ...).
A Compose saved with albumentations 1.x's `A.to_dict`, or a recipe copied from a 1.x
tutorial, then fails in `A.from_dict` or, worse, has its arguments ignored. This module
rewrites those arguments into their 2.x form before the reader sees them, and says once
which it rewrote. Each rule below follows the 1.x signature (its defaults fill a bound
given alone) and the 2.x one installed (albumentations 2.0.8's parameter names):

- `always_apply=True` -> `p=1.0` (`always_apply=False` is dropped).
- `RandomResizedCrop`, `RandomSizedCrop`: `height`, `width` -> `size=(height, width)`.
- `ImageCompression`: `quality_lower` (99), `quality_upper` (100) -> `quality_range`.
- `Downscale`: `scale_min` (0.25), `scale_max` (0.25) -> `scale_range`.
- `CoarseDropout`: `min_holes`/`max_holes` (8) -> `num_holes_range`, `min_height`/
  `max_height` (8) -> `hole_height_range`, `min_width`/`max_width` (8) ->
  `hole_width_range` (a missing minimum is the maximum, as in 1.x), `fill_value` ->
  `fill`, `mask_fill_value` -> `fill_mask`.
- `GaussNoise`: `var_limit` (a variance in the image's own units, default (10, 50); a
  single value v is (0, v)) -> `std_range`, a standard deviation as a fraction of the
  maximum value (albumentations 2's unit). visionkit feeds albumentations uint8 images
  (0..255), so the noise 1.x applied is kept in pixel levels: a `var_limit` whose upper
  bound is above 1 was written for uint8 images (squared 0..255 levels) and becomes
  `sqrt(var_limit) / 255`; one of at most 1 was written for float images in 0..1
  (a variance above 1 would be a standard deviation wider than that whole range) and
  becomes `sqrt(var_limit)` (the rule albumentations 1.4.22 adopted for its own
  deprecated `var_limit`). `mean` (in the same units) -> `mean_range = (m, m)` with
  m = mean / 255 or mean. A 1.x entry with `mean` and no `var_limit` gets 1.x's default
  (10, 50), not albumentations 2's (0.2, 0.44). 1.x drew the variance uniformly in its
  range, albumentations 2 draws the standard deviation: the same bounds, a slightly
  different spread inside them (the warning says so).
- `Solarize`: `threshold` (in the image's own units, default 128; 1.x's `A.to_dict`
  wrote `[t, t]`) -> `threshold_range`, a fraction of the maximum value: `t / 255` when
  above 1 (uint8 images), `t` itself when at most 1 (float images in 0..1).
- `Downscale`: `interpolation` as 1.x wrote it (1.3's `A.to_dict`: `{"upscale": u,
  "downscale": d}`; by hand: one cv2 flag for both) -> `interpolation_pair=
  {"downscale": d, "upscale": u}` (a missing key is 1.x's default, cv2.INTER_NEAREST);
  None (1.x's default) is dropped, albumentations 2's default being the same.
- `RandomFog`: `fog_coef_lower` (0.3), `fog_coef_upper` (1) -> `fog_coef_range`;
  `RandomRain`: `slant_lower` (-10), `slant_upper` (10) -> `slant_range`;
  `RandomShadow`: `num_shadows_lower` (1), `num_shadows_upper` (2) ->
  `num_shadows_limit`; `RandomSunFlare`: `num_flare_circles_lower` (6),
  `num_flare_circles_upper` (10) -> `num_flare_circles_range`, `angle_lower` (0),
  `angle_upper` (1) -> `angle_range`.
- Any transform whose 2.x signature has `fill`/`fill_mask`: `value` -> `fill`,
  `mask_value` -> `fill_mask` (Rotate, Affine, ShiftScaleRotate, PadIfNeeded, ...); the
  `None` 1.x's `A.to_dict` wrote for them (OpenCV pads with 0) -> 0. `Affine`: `cval`,
  `cval_mask`, `mode` -> `fill`, `fill_mask`, `border_mode`; `Perspective`: `pad_val`,
  `mask_pad_val`, `pad_mode` -> the same; `ChannelDropout`, `GridDropout`: `fill_value`,
  `mask_fill_value` -> `fill`, `fill_mask`.
- `RandomGamma`: `eps` (deprecated and unused in 1.x, which `A.to_dict` wrote as None)
  is dropped.
- `ImageCompression`: `compression_type` as 1.x's enum wrote it (0 or
  "ImageCompressionType.JPEG", 1 or "...WEBP") -> "jpeg", "webp".

An argument is rewritten only when the 2.x name is absent and the installed transform
takes the new name and not the old one, so a 2.x serialization passes unchanged.

Example:

>>> import warnings
>>> transform = {"__class_fullname__": "Compose", "transforms": [
...     {"__class_fullname__": "ImageCompression", "quality_lower": 80, "p": 1.0}]}
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     translate_1x_arguments(transform, "data.augment.albumentations")
>>> transform["transforms"][0]
{'__class_fullname__': 'ImageCompression', 'p': 1.0, 'quality_range': (80, 100)}
>>> len(caught)
1
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["removed_argument_hint", "removed_transform_hint", "translate_1x_arguments"]

# (transform, old lower, old upper, 1.x lower default, 1.x upper default, new name);
# None as a default: the other bound.
_BOUND_PAIRS: tuple[tuple[str, str, str, Any, Any, str], ...] = (
    ("ImageCompression", "quality_lower", "quality_upper", 99, 100, "quality_range"),
    ("Downscale", "scale_min", "scale_max", 0.25, 0.25, "scale_range"),
    ("CoarseDropout", "min_holes", "max_holes", None, 8, "num_holes_range"),
    ("CoarseDropout", "min_height", "max_height", None, 8, "hole_height_range"),
    ("CoarseDropout", "min_width", "max_width", None, 8, "hole_width_range"),
    ("RandomFog", "fog_coef_lower", "fog_coef_upper", 0.3, 1.0, "fog_coef_range"),
    ("RandomRain", "slant_lower", "slant_upper", -10, 10, "slant_range"),
    ("RandomShadow", "num_shadows_lower", "num_shadows_upper", 1, 2, "num_shadows_limit"),
    ("RandomSunFlare", "num_flare_circles_lower", "num_flare_circles_upper", 6, 10,
     "num_flare_circles_range"),
    ("RandomSunFlare", "angle_lower", "angle_upper", 0, 1, "angle_range"),
)
_KEEP = object()
# (transform or None for any, old name, new name, what an old None becomes): renamed one
# to one. 1.x's A.to_dict wrote value=None, mask_value=None (OpenCV then pads with 0),
# which albumentations 2's fill/fill_mask reject; CoarseDropout's mask_fill_value=None
# (mask unchanged) means what 2.x's fill_mask=None means.
_RENAMED: tuple[tuple[str | None, str, str, Any], ...] = (
    ("CoarseDropout", "fill_value", "fill", _KEEP),
    ("CoarseDropout", "mask_fill_value", "fill_mask", _KEEP),
    ("Affine", "cval", "fill", _KEEP),
    ("Affine", "cval_mask", "fill_mask", _KEEP),
    ("Affine", "mode", "border_mode", _KEEP),
    ("Perspective", "pad_val", "fill", _KEEP),
    ("Perspective", "mask_pad_val", "fill_mask", _KEEP),
    ("Perspective", "pad_mode", "border_mode", _KEEP),
    ("ChannelDropout", "fill_value", "fill", _KEEP),
    ("GridDropout", "fill_value", "fill", _KEEP),
    ("GridDropout", "mask_fill_value", "fill_mask", _KEEP),
    (None, "value", "fill", 0),
    (None, "mask_value", "fill_mask", 0),
)
# 1.x's ImageCompressionType enum, written by A.to_dict as its value or its name.
_COMPRESSION_TYPES = {0: "jpeg", 1: "webp", "ImageCompressionType.JPEG": "jpeg",
                      "ImageCompressionType.WEBP": "webp", "JPEG": "jpeg", "WEBP": "webp"}
_SIZED_CROPS = ("RandomResizedCrop", "RandomSizedCrop")
# albumentations 1.x transforms albumentations 2 no longer has: what to write instead.
_REMOVED: dict[str, str] = {
    "Cutout": "CoarseDropout (num_holes=n -> num_holes_range=(n, n), max_h_size=h -> "
              "hole_height_range=(h, h), max_w_size=w -> hole_width_range=(w, w), "
              "fill_value -> fill)",
    "JpegCompression": "ImageCompression (quality_lower/quality_upper are read as "
                       "quality_range)",
    "RandomContrast": "RandomBrightnessContrast with brightness_limit=0 and "
                      "contrast_limit=<limit>",
    "RandomBrightness": "RandomBrightnessContrast with brightness_limit=<limit> and "
                        "contrast_limit=0",
    "Flip": "HorizontalFlip and/or VerticalFlip (Flip chose horizontal, vertical or both)",
    "IAAAffine": "Affine (same arguments; cval, mode -> fill, border_mode)",
    "IAAPerspective": "Perspective",
    "IAAAdditiveGaussianNoise": "GaussNoise (std_range, a fraction of 255)",
    "IAASharpen": "Sharpen",
    "IAAEmboss": "Emboss",
    "IAAPiecewiseAffine": "PiecewiseAffine",
    "IAASuperpixels": "Superpixels",
    "IAACropAndPad": "CropAndPad",
    "IAAFliplr": "HorizontalFlip",
    "IAAFlipud": "VerticalFlip",
}
# (transform, 1.x argument albumentations 2 has no counterpart for): what to write instead.
_REMOVED_ARGUMENTS: dict[tuple[str, str], str] = {
    ("ElasticTransform", "alpha_affine"): "remove alpha_affine (albumentations 2's "
        "ElasticTransform adds no random affine) and put an A.Affine before it for that",
    ("GridDropout", "holes_number_x"): "holes_number_xy=(x, y) instead of holes_number_x, "
        "holes_number_y",
    ("GridDropout", "holes_number_y"): "holes_number_xy=(x, y) instead of holes_number_x, "
        "holes_number_y",
    ("GridDropout", "unit_size_min"): "unit_size_range=(min, max) instead of unit_size_min, "
        "unit_size_max",
    ("GridDropout", "unit_size_max"): "unit_size_range=(min, max) instead of unit_size_min, "
        "unit_size_max",
    ("GridDropout", "shift_x"): "shift_xy=(x, y) instead of shift_x, shift_y",
    ("GridDropout", "shift_y"): "shift_xy=(x, y) instead of shift_x, shift_y",
}
# albumentations 1.x's GaussNoise default variance range (squared 0..255 levels).
_GAUSS_VAR_LIMIT_1X = (10.0, 50.0)
# The warning lists at most this many rewrites.
_EXAMPLES = 10


def translate_1x_arguments(transform: Any, where: str) -> None:
    """Rewrites albumentations 1.x arguments of a serialized transform and its children
    into their albumentations 2 form, in place (see the module docstring), and warns
    once, listing the rewrites.

    Args:
        transform: a serialized transform (`A.to_dict(compose)["transform"]`): a dict with
            `__class_fullname__`, its arguments and, for compositions, `transforms`.
        where: how the warning names the section (e.g. "data.augment.albumentations").
    """
    changes: list[str] = []
    _visit(transform, changes, where)
    if changes:
        shown = "; ".join(changes[:_EXAMPLES]) + ("; ..." if len(changes) > _EXAMPLES else "")
        warnings.warn(f"{where}: {len(changes)} albumentations 1.x argument(s) read in their "
                      f"albumentations 2 form: {shown}.", stacklevel=3)


def removed_transform_hint(name: str) -> str:
    """What to write instead of an albumentations 1.x transform albumentations 2 removed
    (`name` as written, dotted or not), as a sentence; "" for any other name."""
    short = str(name).rpartition(".")[2]
    instead = _REMOVED.get(short)
    if instead is None:
        return ""
    return f" {short!r} was removed in albumentations 2; write {instead} instead."


def removed_argument_hint(name: str, arguments: list[str] | tuple[str, ...]) -> str:
    """What to write instead of albumentations 1.x arguments of transform `name` that
    albumentations 2 no longer takes, as sentences; "" when none is known."""
    short = str(name).rpartition(".")[2]
    hints = dict.fromkeys(f"{argument}: {_REMOVED_ARGUMENTS[(short, argument)]}"
                          for argument in arguments if (short, argument) in _REMOVED_ARGUMENTS)
    return "".join(f" albumentations 1.x's {hint}." for hint in hints)


def _visit(node: Any, changes: list[str], where: str) -> None:
    """Applies the rules to `node` and its children; a value no rule can read fails
    naming the entry (`where`, then `[i]` for the Compose's own list and `.transforms[i]`
    below it, as the reader's errors do)."""
    if not isinstance(node, dict):
        return
    name = str(node.get("__class_fullname__", "")).rpartition(".")[2]
    parameters = _parameters(name)
    if node.pop("always_apply", False):
        changes.append(f"{name} always_apply=True -> p=1.0 (was p={node.get('p', 'unset')})")
        node["p"] = 1.0
    if parameters:
        for rule in _RULES:
            try:
                rule(name, node, parameters, changes)
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from None
    children = node.get("transforms")
    for index, child in enumerate(children if isinstance(children, list) else []):
        inner = f"{where}[{index}]" if name == "Compose" else f"{where}.transforms[{index}]"
        _visit(child, changes, inner)


def _parameters(name: str) -> frozenset[str]:
    """The installed albumentations transform's argument names (empty if unknown)."""
    import albumentations as A

    transform_class = getattr(A, name, None)
    if not isinstance(transform_class, type):
        return frozenset()
    return frozenset(inspect.signature(transform_class).parameters)


def _takes(parameters: frozenset[str], old: str, new: str, node: dict) -> bool:
    return new in parameters and old not in parameters and new not in node


def _sized_crop(name: str, node: dict, parameters: frozenset[str], changes: list[str]) -> None:
    if name in _SIZED_CROPS and "height" in node and "width" in node and \
            _takes(parameters, "height", "size", node):
        node["size"] = (node.pop("height"), node.pop("width"))
        changes.append(f"{name} height, width -> size={node['size']}")


def _bound_pairs(name: str, node: dict, parameters: frozenset[str], changes: list[str]) -> None:
    for owner, lower, upper, lower_default, upper_default, new in _BOUND_PAIRS:
        if owner != name or (lower not in node and upper not in node) or \
                not _takes(parameters, upper, new, node):
            continue
        given = ", ".join(key for key in (lower, upper) if key in node)
        high = node.pop(upper, upper_default)
        low = node.pop(lower, lower_default)
        low = high if low is None else low
        node[new] = (low, high)
        changes.append(f"{name} {given} -> {new}={node[new]}")


def _renamed(name: str, node: dict, parameters: frozenset[str], changes: list[str]) -> None:
    for owner, old, new, none_as in _RENAMED:
        if owner in (None, name) and old in node and _takes(parameters, old, new, node):
            value = node.pop(old)
            node[new] = none_as if value is None and none_as is not _KEEP else value
            shown = f"{old}=None" if value is None else old
            changes.append(f"{name} {shown} -> {new}={node[new]!r}")


def _range_1x(transform: str, argument: str, scalar: str, given, low: float | None,
              ) -> tuple[float, float]:
    """A 1.x `(low, high)` range, or one number (`(low, number)`; `low` None: `(number,
    number)`), checked: both numbers, 0 <= low <= high; else ValueError naming it."""
    bounds = [given if low is None else low, given] if isinstance(given, (int, float)) else \
        list(given) if isinstance(given, (list, tuple)) else []
    if len(bounds) != 2 or not all(isinstance(value, (int, float)) and
                                   not isinstance(value, bool) for value in bounds) or \
            not 0 <= bounds[0] <= bounds[1]:
        raise ValueError(f"{transform}: expected {argument} as {scalar} or a range (low, "
                         f"high) with 0 <= low <= high; received {given!r}.")
    return float(bounds[0]), float(bounds[1])


def _gauss_noise(name: str, node: dict, parameters: frozenset[str], changes: list[str]) -> None:
    if name != "GaussNoise" or not _takes(parameters, "var_limit", "std_range", node) or \
            ("var_limit" not in node and "mean" not in node):
        return
    given = node.pop("var_limit", _GAUSS_VAR_LIMIT_1X)
    low, high = _range_1x("GaussNoise", "var_limit", "a variance v >= 0", given, 0.0)
    mean = node.pop("mean", 0)
    if isinstance(mean, bool) or not isinstance(mean, (int, float)):
        raise ValueError(f"GaussNoise: expected mean as a number; received {mean!r}.")
    # A variance above 1 cannot be one in 0..1 units: uint8 levels. See the docstring.
    scale = 255.0 if high > 1 or abs(mean) > 1 else 1.0
    units = "squared 0..255 levels (uint8 images)" if scale == 255.0 else \
        "0..1 units (float images)"
    node["std_range"] = (math.sqrt(low) / scale, math.sqrt(high) / scale)
    node["mean_range"] = (mean / scale, mean / scale)
    levels = (255.0 * node["std_range"][0], 255.0 * node["std_range"][1])
    written = "var_limit" if given is not _GAUSS_VAR_LIMIT_1X else \
        "var_limit unset (1.x's default (10, 50))"
    changes.append(
        f"GaussNoise {written}={given!r}, mean={mean!r} read as a variance in {units} -> "
        f"std_range=({node['std_range'][0]:.4g}, {node['std_range'][1]:.4g}), mean_range="
        f"({node['mean_range'][0]:.4g}, {node['mean_range'][0]:.4g}): noise standard "
        f"deviation {levels[0]:.3g}..{levels[1]:.3g} of 255 levels (albumentations 2 draws "
        "it uniformly in that range, 1.x drew the variance)")


def _solarize(name: str, node: dict, parameters: frozenset[str], changes: list[str]) -> None:
    if name != "Solarize" or "threshold" not in node or \
            not _takes(parameters, "threshold", "threshold_range", node):
        return
    given = node.pop("threshold")
    bounds = _range_1x("Solarize", "threshold", "a number >= 0", given, None)
    scale = 255.0 if bounds[1] > 1 else 1.0
    node["threshold_range"] = (bounds[0] / scale, bounds[1] / scale)
    units = "0..255 levels (uint8 images)" if scale == 255.0 else "0..1 (float images)"
    changes.append(f"Solarize threshold={given!r} read in {units} -> threshold_range="
                   f"({node['threshold_range'][0]:.4g}, {node['threshold_range'][1]:.4g})")


def _downscale_interpolation(name: str, node: dict, parameters: frozenset[str],
                             changes: list[str]) -> None:
    if name != "Downscale" or "interpolation" not in node or \
            not _takes(parameters, "interpolation", "interpolation_pair", node):
        return
    given = node.pop("interpolation")
    if given is None:
        changes.append("Downscale interpolation=None (1.x's default, cv2.INTER_NEAREST for "
                       "both) dropped: albumentations 2's default is the same")
        return
    if isinstance(given, Mapping) and set(given) <= {"downscale", "upscale"}:
        pair = {"downscale": given.get("downscale", 0), "upscale": given.get("upscale", 0)}
    elif isinstance(given, int) and not isinstance(given, bool):
        pair = {"downscale": given, "upscale": given}
    else:
        raise ValueError(f"Downscale: expected interpolation as albumentations 1.x wrote it, a "
                         f"cv2 flag (e.g. 1 = cv2.INTER_LINEAR) or {{'downscale': <flag>, "
                         f"'upscale': <flag>}}; received {given!r}. albumentations 2 takes "
                         "interpolation_pair={'downscale': <flag>, 'upscale': <flag>}.")
    node["interpolation_pair"] = pair
    changes.append(f"Downscale interpolation={given!r} -> interpolation_pair={pair!r}")


def _compression_type(name: str, node: dict, parameters: frozenset[str],
                      changes: list[str]) -> None:
    given = node.get("compression_type")
    if name == "ImageCompression" and "compression_type" in parameters and \
            not isinstance(given, bool) and isinstance(given, (int, str)) and \
            given in _COMPRESSION_TYPES:
        node["compression_type"] = _COMPRESSION_TYPES[given]
        changes.append(f"ImageCompression compression_type={given!r} -> "
                       f"compression_type={node['compression_type']!r}")


# (transform, 1.x argument): arguments 1.x's `A.to_dict` wrote for every instance that
# 1.x itself no longer used, dropped when albumentations 2 does not take them. RandomGamma's
# `eps` ("Deprecated" in 1.x's docstring, written as None) never entered its uint8 lookup
# table, and visionkit feeds albumentations uint8 images.
_UNUSED_1X: tuple[tuple[str, str], ...] = (("RandomGamma", "eps"),)


def _unused_1x(name: str, node: dict, parameters: frozenset[str], changes: list[str]) -> None:
    for transform, argument in _UNUSED_1X:
        if name == transform and argument in node and argument not in parameters:
            changes.append(f"{name} {argument}={node.pop(argument)!r} dropped (1.x did not "
                           "use it on uint8 images)")


_RULES: tuple[Callable[[str, dict, frozenset[str], list[str]], None], ...] = (
    _sized_crop, _bound_pairs, _renamed, _gauss_noise, _solarize, _downscale_interpolation,
    _compression_type, _unused_1x)
