"""Segmentation data: masks from arrays and from a folder of mask images.

Masks are int32 class ids `[H, W]`, 255 marking pixels to ignore (DESIGN.md). They are
resized with nearest-neighbour only, never interpolated, so they keep exact class ids.
Every check runs before training starts: a mask whose size differs from its image, a
class id outside `0..num_classes-1` (other than 255) and an image without a mask are
reported with the file (or array index) and the offending values.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf

from visionkit.data.decoding import FileDecoder
from visionkit.data.files import (
    DEFAULT_MAX_IMAGE_PIXELS,
    IMAGE_EXTENSIONS,
    apply_orientation,
    describe_other_files,
    list_image_files,
    list_other_files,
    scan_image_files,
)
from visionkit.data.given_splits import (
    announce_no_validation,
    announce_random_split,
    split_folders,
)
from visionkit.data.mask_conventions import (
    check_inferred_classes,
    check_value_map,
    is_binary,
    unmapped_values,
    value_table,
    warn_binary,
)
from visionkit.data.pipeline import Data
from visionkit.data.preprocessing import Preprocessing, check_pixel_values
from visionkit.data.split import split_indices
from visionkit.errors import BadFileError, DataError, DataWarning, format_file_list
from visionkit.vocabulary import IGNORE_INDEX

__all__ = ["IGNORE_INDEX", "mask_folder", "segmentation_from_arrays", "check_masks"]

# Mask files: lossless formats only (JPEG would blur class ids).
MASK_EXTENSIONS = (".png", ".bmp", ".gif")
# How many offending values / examples an error message lists.
_LISTED = 10


def check_masks(masks: np.ndarray, num_classes: int, name: str = "masks",
                files: Sequence[str] | None = None) -> None:
    """Checks that every mask value is a class id below `num_classes` or 255.

    Raises:
        DataError: naming the offending values and the first masks (indices or files)
            that hold them.
    """
    masks = np.asarray(masks)
    bad = (masks != IGNORE_INDEX) & ((masks < 0) | (masks >= num_classes))
    if not bad.any():
        return
    values = np.unique(masks[bad])
    where = np.flatnonzero(bad.reshape(len(masks), -1).any(axis=1))[:_LISTED]
    named = [files[i] for i in where] if files is not None else [int(i) for i in where]
    raise DataError(
        f"Expected {name} of class ids 0..{num_classes - 1} (or {IGNORE_INDEX} to ignore) for "
        f"{num_classes} classes; received class ids {values[:_LISTED].tolist()} in "
        f"{'files' if files is not None else 'masks at indices'} {named}.")


def _check_mask_arrays(images: np.ndarray, masks, name: str) -> np.ndarray:
    masks = np.asarray(masks)
    if masks.ndim == 4 and masks.shape[-1] == 1:
        masks = masks[..., 0]
    if masks.ndim != 3 or len(masks) != len(images):
        raise DataError(f"Expected {name} of shape [{len(images)}, H, W] (one class-id mask "
                        f"per image); received shape {masks.shape}.")
    if masks.shape[1:3] != images.shape[1:3]:
        raise DataError(f"Expected {name} of the images' size {images.shape[1:3]}; received "
                        f"masks of size {masks.shape[1:3]}.")
    if not np.issubdtype(masks.dtype, np.integer):
        if not np.all(np.equal(np.mod(masks, 1), 0)):
            raise DataError(f"Expected integer class ids in {name}; received dtype "
                            f"{masks.dtype}.")
    return masks.astype(np.int32)


def _check_images(images, name: str) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise DataError(f"Expected {name} of shape [N, H, W], [N, H, W, 1] or [N, H, W, 3]; "
                        f"received shape {images.shape}.")
    check_pixel_values(images, name)
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


def segmentation_from_arrays(images: np.ndarray, masks: np.ndarray,
                             class_names: Sequence[str] | None = None,
                             image_size: tuple[int, int] | None = None,
                             validation_split: float = 0.2,
                             val_images: np.ndarray | None = None,
                             val_masks: np.ndarray | None = None, batch_size: int = 32,
                             augment: object = "none", seed: int | None = 0) -> Data:
    """A segmentation `Data` set from image and mask arrays (see `from_arrays`).

    Args:
        images: `[N, H, W]`, `[N, H, W, 1]` or `[N, H, W, 3]` pixels 0..255.
        masks: int class ids `[N, H, W]` (or `[N, H, W, 1]`), 255 = ignore.
        class_names: names per class id. Defaults to "0".."K-1" with K one more than
            the largest class id.
        image_size: resize to `(height, width)` (images bilinear, masks nearest).
            Defaults to the arrays' own size.
        validation_split: seeded random fraction held out when no `val_images` are
            given. Defaults to 0.2.
        val_images, val_masks: an explicit validation split.
        batch_size, augment, seed: as `Data`.

    Returns:
        A segmentation `Data` set.

    Raises:
        DataError: for masks of another size than their images, bad class ids (naming
            the values and the mask indices) or bad shapes.

    Example:

    >>> import numpy as np
    >>> x = np.zeros((10, 8, 8, 3), np.uint8); y = np.zeros((10, 8, 8), np.int32)
    >>> y[:, 2:5, 2:5] = 1
    >>> data = segmentation_from_arrays(x, y, class_names=["background", "square"])
    >>> data.task.name, data.train_size
    ('segmentation', 8)
    """
    images = _check_images(images, "images")
    masks = _check_mask_arrays(images, masks, "masks")
    if class_names is None:
        valid = masks[masks != IGNORE_INDEX]
        class_names = [str(i) for i in range(int(valid.max()) + 1 if valid.size else 1)]
    class_names = [str(c) for c in class_names]
    check_masks(masks, len(class_names), "masks")
    if val_images is not None:
        if val_masks is None:
            raise DataError("val_images was given without val_masks.")
        val_images = _check_images(val_images, "val_images")
        val_masks = _check_mask_arrays(val_images, val_masks, "val_masks")
        check_masks(val_masks, len(class_names), "val_masks")
        train_x, train_y = images, masks
    else:
        train_index, val_index = split_indices(np.zeros(len(images)), validation_split, seed)
        train_x, train_y = images[train_index], masks[train_index]
        val_images, val_masks = images[val_index], masks[val_index]
    size = tuple(image_size) if image_size is not None else tuple(images.shape[1:3])
    return Data(task="segmentation", class_names=tuple(class_names), image_size=size,
                train_examples=_array_examples(train_x, train_y, size),
                val_examples=_array_examples(val_images, val_masks, size),
                train_size=len(train_y), val_size=len(val_masks), batch_size=batch_size,
                augment=augment, seed=seed)


def resize_example(image: tf.Tensor, mask: tf.Tensor, size: tuple[int, int]) -> dict:
    """An example dict at `size`: the image bilinear (float32), the mask nearest (int32)."""
    image = Preprocessing(size).resize(image)  # the resize an export serves with
    mask = tf.image.resize(tf.cast(mask, tf.int32)[..., tf.newaxis], size, method="nearest")
    return {"images": image, "segmentation_masks": tf.cast(mask[..., 0], tf.int32)}


def _array_examples(images: np.ndarray, masks: np.ndarray,
                    size: tuple[int, int]) -> tf.data.Dataset:
    dataset = tf.data.Dataset.from_tensor_slices({"images": images, "masks": masks})
    return dataset.map(lambda example: resize_example(example["images"], example["masks"], size),
                       num_parallel_calls=tf.data.AUTOTUNE)


def mask_folder(images_dir: str | os.PathLike, masks_dir: str | os.PathLike,
                image_size: tuple[int, int] = (256, 256),
                class_names: Sequence[str] | None = None,
                palette: Mapping[tuple[int, int, int], int] | None = None,
                validation_split: float = 0.2, batch_size: int = 32,
                augment: object = "none", seed: int | None = 0, on_bad_file: str = "error",
                max_image_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS,
                ignore_index: int = IGNORE_INDEX,
                value_map: Mapping[int, int] | None = None) -> Data:
    """A segmentation data set from a folder of images and a folder of masks.

    Images (JPEG, PNG, BMP, GIF, WebP) and masks (PNG, BMP, GIF: lossless) are paired by
    file stem (`images/cat_01.jpg` with `masks/cat_01.png`), searched recursively. When
    both folders hold split folders (`train/`, `val/` or `valid/`, `test/`), those are
    the splits, used exactly (`Data.test` for the test split); otherwise a seeded random
    `validation_split` is held out and that is printed.

    A mask is either a one-channel image of stored values (8-bit, or a 16-bit PNG as
    OpenCV and numpy `uint16` arrays save them, values 0..255) or, with `palette`, an
    RGB image whose colours map to class ids. Stored values become class ids as
    `visionkit.data.mask_conventions` describes: value k is class k, `ignore_index`
    marks void pixels (255 by default), `value_map` maps stored values to class ids,
    and masks holding only 0 and 255 (also 1-bit PNGs) are read as background /
    foreground (a `DataWarning` says so). Before anything trains, every pair is
    checked: the image must have a mask, the mask must have the image's size, and every
    mask value must map to a known class id (or ignore); a class count inferred from the
    masks that looks wrong (large gaps between ids, or many ids covering almost no
    pixels) is an error naming the files, the values and the likely cause. Two mask
    files with one stem (`masks/a.png` and `masks/a.bmp`) are an error, not a silent
    choice; masks without an image are left out and counted in a `DataWarning`. Every
    image and mask is also checked as `image_folder` checks files; images
    and masks are turned upright by their EXIF orientation, and a mask must match its
    image as displayed.

    Args:
        images_dir: folder of images.
        masks_dir: folder of masks.
        image_size: `(height, width)` to resize to (images bilinear, masks nearest).
            Defaults to (256, 256).
        class_names: names per class id. Defaults to "0".."K-1" (K from the largest
            id found, or from the palette).
        palette: `{(r, g, b): class_id}` for colour masks; colours not listed are an
            error, except those mapped to 255 (ignore). Defaults to None (class-id
            masks).
        validation_split: seeded random fraction held out when no split folders are
            given. Defaults to 0.2.
        batch_size, augment, seed: as `Data`.
        on_bad_file: "error" or "skip": what to do with an image or mask that does not
            decode ("skip" leaves its pair out with one `DataWarning` naming them).
            Defaults to "error".
        max_image_pixels: largest width x height accepted, or None for no limit.
            Defaults to 89,478,485 (PIL's own threshold).
        ignore_index: the stored value of void pixels (left out of losses and
            metrics), 0..255. Defaults to 255.
        value_map: `{stored value: class id}` (class id 255 = ignore) for masks whose
            values are not class ids; values not listed are an error. Defaults to None.

    Returns:
        A segmentation `Data` set. Masks: int32 `[B, H, W]` class ids, 255 = ignore.

    Raises:
        BadFileError: with `on_bad_file="error"`, naming every image or mask that does
            not decode.
        DataError: for an empty folder, two masks with one stem, an image without a
            mask (naming the images), a mask of another size than its image, 16-bit
            mask values above 255 (instance ids), unknown
            class ids, values or colours, or a suspicious inferred class count (naming
            the files and the values).
        ValueError: for an `ignore_index` or `value_map` entry outside 0..255.

    Example:

    >>> import os, tempfile, numpy as np
    >>> from PIL import Image
    >>> root = tempfile.mkdtemp()
    >>> for sub in ("images", "masks"): os.makedirs(os.path.join(root, sub))
    >>> for i in range(5):
    ...     Image.fromarray(np.full((8, 12, 3), 40 * i, np.uint8)).save(f"{root}/images/{i}.png")
    ...     Image.fromarray(np.eye(8, 12, dtype=np.uint8)).save(f"{root}/masks/{i}.png")
    >>> data = mask_folder(f"{root}/images", f"{root}/masks", image_size=(8, 12))
    visionkit: mask_folder ...: no validation split given; holding out a seeded random 20% ...
    >>> data.class_names, data.train_size, data.val_size
    (('0', '1'), 4, 1)
    """
    images_dir, masks_dir = os.fspath(images_dir), os.fspath(masks_dir)
    for folder, what in ((images_dir, "images_dir"), (masks_dir, "masks_dir")):
        if not os.path.isdir(folder):
            raise DataError(f"Expected {what} to be a folder; received {what}={folder!r}.")
    if on_bad_file not in ("error", "skip"):
        raise ValueError("Expected on_bad_file to be 'error' or 'skip'; received "
                         f"on_bad_file={on_bad_file!r}.")
    check_value_map(value_map, ignore_index)
    given = split_folders(images_dir)
    if given is not None:
        mask_splits = split_folders(masks_dir)
        if mask_splits is None or set(mask_splits) != set(given):
            raise DataError(f"Expected the same split folders in masks_dir as in images_dir "
                            f"({sorted(given)}); received masks_dir={masks_dir!r} with "
                            f"{sorted(mask_splits or [])}.")
        folders = [(split, given[split], mask_splits[split]) for split in given]
        if "val" not in given:
            announce_no_validation(f"mask_folder {images_dir!r}", sorted(given))
    else:
        folders = [(None, images_dir, masks_dir)]
    others = list_other_files(images_dir) + list_other_files(masks_dir)
    if others:
        warnings.warn(f"Left out {len(others)} file(s) that are not images visionkit reads "
                      f"({', '.join(IMAGE_EXTENSIONS)}): " + describe_other_files(others)
                      + ".", DataWarning, stacklevel=2)
    pairs, pair_splits, orphans = [], [], []
    for split, split_images, split_masks in folders:
        found = _pair_files(split_images, split_masks)
        pairs += found
        pair_splits += [split] * len(found)
        paired = {mask for _, mask in found}
        orphans += [path for path in list_image_files(split_masks) if path not in paired]
    if orphans:
        shown = ", ".join(repr(path) for path in orphans[:3])
        warnings.warn(f"Left out {len(orphans)} mask(s) with no image of their stem in "
                      f"images_dir (e.g. {shown}); an image named otherwise than its mask "
                      "is not trained on.", DataWarning, stacklevel=2)
    checked, orientations = _check_pair_files(pairs, on_bad_file, max_image_pixels)
    kept = set(checked)
    pair_splits = [split for pair, split in zip(pairs, pair_splits) if pair in kept]
    pairs = checked
    colours = None
    if palette is not None:
        colours = {tuple(int(c) for c in colour): int(i) for colour, i in palette.items()}
    elif value_map is None:
        colours = _indexed_palette(pairs, ignore_index)
    per_file = _scan_pairs(pairs, colours, orientations=orientations)
    table = None
    if colours is None:
        histogram: dict[int, int] = {}
        for counts in per_file.values():
            for value, count in counts.items():
                histogram[value] = histogram.get(value, 0) + count
        if value_map is not None:
            unmapped = unmapped_values(per_file, value_map, ignore_index)
            if unmapped:
                raise DataError(f"Expected every mask value in value_map (or ignore_index="
                                f"{ignore_index}); {len(unmapped)} mask(s) hold others:\n"
                                + format_file_list(unmapped))
        binary = (value_map is None and ignore_index == IGNORE_INDEX and is_binary(histogram)
                  and (class_names is None or len(class_names) == 2))
        if binary:
            warn_binary(len(pairs))
        table = value_table(histogram, ignore_index, value_map, binary)
        if class_names is None:
            check_inferred_classes(per_file, table)
        largest = max((int(table[v]) for v in histogram if table[v] != IGNORE_INDEX),
                      default=-1)
    else:
        largest = max([i for i in colours.values() if i != IGNORE_INDEX], default=-1)
    if class_names is None:
        class_names = [str(i) for i in range(max(largest + 1, 1))]
    class_names = [str(c) for c in class_names]
    if table is not None and largest >= len(class_names):
        _raise_unknown_ids(per_file, table, len(class_names), ignore_index)
    size = (int(image_size[0]), int(image_size[1]))
    if given is not None:
        chosen = {split: np.flatnonzero(np.asarray(pair_splits, dtype=object) == split)
                  for split in ("train", "val", "test")}
        if not len(chosen["train"]):
            raise DataError(f"No image/mask pair in the train split of {images_dir!r}.")
    else:
        train_index, val_index = split_indices(np.zeros(len(pairs)), validation_split, seed)
        announce_random_split(f"mask_folder {images_dir!r}", len(pairs), validation_split,
                              seed, len(val_index))
        chosen = {"train": train_index, "val": val_index, "test": np.zeros(0, np.int64)}
    paths = np.asarray(pairs, dtype=object).astype(str).reshape(-1, 2)
    decode = _decoder(size, colours, table)

    def records(index):
        return tf.data.Dataset.from_tensor_slices({
            "image": paths[index, 0], "mask": paths[index, 1],
            "orientations": np.asarray([[orientations.get(image, 1), orientations.get(mask, 1)]
                                        for image, mask in paths[index]], np.int32
                                       ).reshape(-1, 2)})

    def examples(index):
        return records(index).map(decode, num_parallel_calls=tf.data.AUTOTUNE) \
            if len(index) else None

    train_records = records(chosen["train"])
    return Data(task="segmentation", class_names=tuple(class_names), image_size=size,
                train_examples=train_records.map(decode, num_parallel_calls=tf.data.AUTOTUNE),
                val_examples=examples(chosen["val"]), train_size=len(chosen["train"]),
                val_size=len(chosen["val"]), batch_size=batch_size, augment=augment,
                seed=seed, train_records=train_records, decode=decode,
                test_examples=examples(chosen["test"]), test_size=len(chosen["test"]))


def _pair_files(images_dir: str, masks_dir: str) -> list[tuple[str, str]]:
    """`(image, mask)` pairs by stem; an image without a lossless mask is an error."""
    image_files = list_image_files(images_dir)
    if not image_files:
        raise DataError(f"Expected images ({', '.join(IMAGE_EXTENSIONS)}) in "
                        f"images_dir={images_dir!r}; found none.")
    mask_files = _masks_by_stem(masks_dir)
    pairs, missing = [], []
    for path in image_files:
        stem = os.path.splitext(os.path.relpath(path, images_dir))[0]
        if stem in mask_files and mask_files[stem].lower().endswith(MASK_EXTENSIONS):
            pairs.append((path, mask_files[stem]))
        elif stem in mask_files:
            missing.append((path, f"its mask '{mask_files[stem]}' is lossy (JPEG would blur "
                                  "class ids); save masks as PNG, BMP or GIF"))
        else:
            near = sorted(other for other in mask_files
                          if other.startswith(stem) and other[len(stem):len(stem) + 1]
                          in ("_", "-", "."))[:1]
            hint = (f" (masks_dir holds {os.path.basename(mask_files[near[0]])!r}: masks "
                    "are paired by the image's exact stem; rename them, e.g. without the "
                    f"{near[0][len(stem):]!r} suffix)") if near else ""
            missing.append((path, f"no mask {stem}.png in masks_dir{hint}"))
    if missing:
        raise DataError(f"Expected one mask per image (paired by file stem) in "
                        f"masks_dir={masks_dir!r}; {len(missing)} image(s) have none:\n"
                        + format_file_list(missing))
    return pairs


def _indexed_palette(pairs: list[tuple[str, str]], ignore_index: int
                     ) -> dict[tuple[int, int, int], int] | None:
    """For palette ("P" mode) PNG masks, as Pascal VOC's SegmentationClass stores them:
    `{colour: palette index}` of the indices in use (index `ignore_index` -> 255), so the
    indices are the class ids. TensorFlow decodes such files to their colours, so the
    pipeline maps colours back. None when the masks are not palette images.

    Raises:
        DataError: when only some masks are palette images, their palettes differ, or two
            indices in use share a colour.
    """
    from PIL import Image

    indexed, plain, reference, used = [], [], None, set()
    for _, mask_path in pairs:
        with Image.open(mask_path) as mask:
            if mask.mode != "P" or mask.format != "PNG":  # GIFs keep their grey colours
                plain.append(mask_path)
                continue
            indexed.append(mask_path)
            colours = mask.getpalette() or []
            if reference is None:
                reference = (mask_path, colours)
            elif colours[:len(reference[1])] != reference[1][:len(colours)]:
                raise DataError(f"Expected every palette mask to share one palette; "
                                f"{mask_path!r} has another palette than {reference[0]!r}.")
            used.update(int(v) for v in np.unique(np.asarray(mask)))
    if not indexed:
        return None
    if plain:
        raise DataError(f"Expected masks of one kind; {len(indexed)} are palette images "
                        f"(e.g. {indexed[0]!r}) and {len(plain)} are not (e.g. {plain[0]!r}).")
    table = reference[1]
    mapping: dict[tuple[int, int, int], int] = {}
    for index in sorted(used):
        colour = tuple(table[3 * index:3 * index + 3]) if 3 * index + 3 <= len(table) \
            else (0, 0, 0)
        if colour in mapping:
            raise DataError(f"Palette masks use indices {mapping[colour]} and {index} with one "
                            f"colour {colour}; expected distinct colours (e.g. "
                            f"{reference[0]!r}). Pass palette= to say which class each "
                            "colour is.")
        mapping[colour] = IGNORE_INDEX if index == ignore_index else index
    warnings.warn(f"The {len(indexed)} masks are palette PNGs: their palette indices "
                  f"{sorted(used)[:_LISTED]} are read as class ids (index {ignore_index} = "
                  "ignore), as Pascal VOC stores them. Pass palette= to map colours "
                  "yourself.", DataWarning, stacklevel=3)
    return mapping


def _raise_unknown_ids(per_file: Mapping[str, Mapping[int, int]], table: np.ndarray,
                       num_classes: int, ignore_index: int) -> None:
    bad = []
    for file, histogram in per_file.items():
        wrong = sorted({int(v) for v in histogram
                        if table[v] != IGNORE_INDEX and table[v] >= num_classes})
        if wrong:
            bad.append((file, f"class ids {wrong[:_LISTED]} >= {num_classes} classes"))
    raise DataError(f"Expected masks holding class ids 0..{num_classes - 1} (or "
                    f"{ignore_index} to ignore) for {num_classes} classes; {len(bad)} mask(s) "
                    "do not fit:\n" + format_file_list(bad) + "\nIf these values mean "
                    "something else (void, grey levels), pass ignore_index= or value_map=.")


def _masks_by_stem(masks_dir: str) -> dict[str, str]:
    """`{stem: mask file}` of a mask folder; two files with one stem are an error."""
    found: dict[str, list[str]] = {}
    for path in list_image_files(masks_dir):
        found.setdefault(os.path.splitext(os.path.relpath(path, masks_dir))[0], []).append(path)
    twice = [(", ".join(f"'{p}'" for p in paths), f"{len(paths)} masks for stem {stem!r}")
             for stem, paths in found.items() if len(paths) > 1]
    if twice:
        raise DataError("Expected one mask file per image stem in "
                        f"masks_dir={masks_dir!r}; these stems have several (keep one):\n"
                        + format_file_list(twice))
    return {stem: paths[0] for stem, paths in found.items()}


def _check_pair_files(pairs: list[tuple[str, str]], on_bad_file: str,
                      max_image_pixels: int | None
                      ) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """Pairs whose image and mask both decode, and every good file's EXIF orientation."""
    files = [path for pair in pairs for path in pair]
    scan = scan_image_files(files, max_image_pixels=max_image_pixels)
    if not scan.bad:
        return pairs, scan.orientations
    if on_bad_file == "error":
        (first, reason), *others = scan.bad
        raise BadFileError(first, reason, others=others,
                           expected="images and masks that decode completely (pass "
                                    "on_bad_file='skip' to leave their pairs out)")
    bad = {path for path, _ in scan.bad}
    kept = [pair for pair in pairs if not (set(pair) & bad)]
    warnings.warn(f"Skipped {len(pairs) - len(kept)} of {len(pairs)} image/mask pairs with "
                  f"{len(bad)} bad file{'s' if len(bad) > 1 else ''} (on_bad_file='skip'):\n"
                  + format_file_list(scan.bad), DataWarning, stacklevel=3)
    if not kept:
        raise DataError("No image/mask pair left after skipping bad files.")
    return kept, scan.orientations


def _displayed_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """PIL's (width, height) as a viewer shows it (EXIF orientations 5..8 swap sides)."""
    return (size[1], size[0]) if orientation >= 5 else size


def _scan_pairs(pairs: list[tuple[str, str]], colours: dict | None,
                orientations: Mapping[str, int] | None = None) -> dict[str, dict[int, int]]:
    """Checks sizes and colours; returns each grey mask's `{stored value: pixels}`."""
    from PIL import Image

    orientations = orientations or {}
    bad, per_file = [], {}
    for image_path, mask_path in pairs:
        try:
            with Image.open(image_path) as image:
                image_size = _displayed_size(image.size, orientations.get(image_path, 1))
            with Image.open(mask_path) as mask_image:
                mask_size = _displayed_size(mask_image.size, orientations.get(mask_path, 1))
                mode = mask_image.mode
                # As TensorFlow decodes it: 1-bit PNGs become 0/255, palettes colours;
                # 16-bit grey PNGs ("I;16", "I") keep their values (read at 16 bits).
                wide = mode.startswith("I") and colours is None
                mask = np.asarray(mask_image if (mode == "L" or wide) and colours is None
                                  else mask_image.convert("RGB"))
        except OSError as error:
            raise BadFileError(mask_path, f"cannot be read ({error})",
                               expected="an image and its mask that decode") from None
        if image_size != mask_size:
            bad.append((mask_path, f"mask is {mask_size[1]}x{mask_size[0]} (HxW) but its image "
                                   f"'{image_path}' is {image_size[1]}x{image_size[0]}"))
            continue
        if colours is not None:
            found = {tuple(int(c) for c in row) for row in np.unique(mask.reshape(-1, 3), axis=0)}
            unknown = sorted(found - set(colours))
            if unknown:
                bad.append((mask_path, f"colours {unknown[:_LISTED]} are not in the palette"))
            continue
        if mask.ndim == 3:
            if not (np.array_equal(mask[..., 0], mask[..., 1])
                    and np.array_equal(mask[..., 0], mask[..., 2])):
                bad.append((mask_path, f"is a colour mask (mode {mode}); pass palette= to map "
                                       "its colours to class ids, or save class ids as 8-bit "
                                       "grayscale"))
                continue
            mask = mask[..., 0]
        values, counts = np.unique(mask, return_counts=True)
        if values.min() < 0 or values.max() > 255:
            outside = [int(v) for v in values if not 0 <= v <= 255]
            bad.append((mask_path, f"is a {mode} mask holding values {outside[:_LISTED]} "
                                   "outside 0..255 (instance ids?); expected class ids "
                                   "0..255: save class ids, or map them to 0..255 first"))
            continue
        per_file[mask_path] = {int(v): int(c) for v, c in zip(values, counts)}
    if bad:
        raise DataError(f"Expected masks of their images' size holding class ids "
                        f"(0..num_classes-1, or {IGNORE_INDEX} to ignore) or palette colours; "
                        f"{len(bad)} mask(s) do not fit:\n" + format_file_list(bad))
    return per_file


def _is_16bit_grey_png(contents: tf.Tensor) -> tf.Tensor:
    """Whether PNG bytes hold a 16-bit greyscale image (IHDR bit depth 16, colour type 0):
    after the 8-byte signature come length, "IHDR", width, height, then bit depth (byte
    24) and colour type (byte 25, 0 = grey without alpha)."""
    signature = tf.strings.substr(contents, 0, 8) == b"\x89PNG\r\n\x1a\n"
    depth = tf.strings.substr(contents, 24, 1) == b"\x10"
    grey = tf.strings.substr(contents, 25, 1) == b"\x00"  # PIL reads these as "I;16"
    return signature & depth & grey


def _decoder(size: tuple[int, int], colours: dict | None,
             id_table: np.ndarray | None = None) -> FileDecoder:
    """Decoding of image and mask; `id_table` is the int32 `[256]` table from stored mask
    values to class ids (see `visionkit.data.mask_conventions`)."""
    table = None
    if colours is not None:
        keys = tf.constant([r * 65536 + g * 256 + b for r, g, b in colours], tf.int64)
        values = tf.constant(list(colours.values()), tf.int64)
        table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values),
                                          default_value=IGNORE_INDEX)

    value_ids = tf.constant(id_table, tf.int32) if id_table is not None else None

    def finish(record: dict, image: tf.Tensor, window: tf.Tensor, source_size) -> dict:
        contents = tf.io.read_file(record["mask"])
        if table is None:
            # Grey masks decode to three equal channels; the first one holds the ids.
            # A 16-bit grey PNG would decode to its high byte (ids 0..255 -> 0), so it is
            # decoded at 16 bits (the scan refused values above 255).
            mask = tf.cond(
                _is_16bit_grey_png(contents),
                lambda: tf.cast(tf.io.decode_png(contents, channels=1,
                                                 dtype=tf.uint16)[..., 0], tf.int32),
                lambda: tf.cast(tf.io.decode_image(contents, channels=3, dtype=tf.uint8,
                                                   expand_animations=False)[..., 0],
                                tf.int32))
            if id_table is not None:
                mask = tf.gather(value_ids, tf.cast(mask, tf.int32))
        else:
            rgb = tf.cast(tf.io.decode_image(contents, channels=3, dtype=tf.uint8,
                                             expand_animations=False), tf.int64)
            mask = table.lookup(rgb[..., 0] * 65536 + rgb[..., 1] * 256 + rgb[..., 2])
        mask = apply_orientation(mask[..., None], record["orientations"][1])[..., 0]
        mask = tf.image.resize(tf.cast(mask, tf.int32)[..., tf.newaxis], size, method="nearest")
        return {"images": image, "segmentation_masks": tf.cast(mask[..., 0], tf.int32)}

    # Image and mask may be stored in different EXIF orientations, so the "standard"
    # crop runs on decoded batches (crops=False) rather than inside decoding.
    # The image's EXIF orientation is read from its bytes by the decoder (as served).
    return FileDecoder("image", size, finish, crops=False)
