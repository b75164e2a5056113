"""`image_folder`: a classification `Data` set from one sub-folder of images per class."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from visionkit.data.decoding import FileDecoder
from visionkit.data.files import (
    DEFAULT_MAX_IMAGE_PIXELS,
    IMAGE_EXTENSIONS,
    ImageScan,
    describe_other_files,
    is_hidden,
    list_image_files,
    list_other_files,
    scan_image_files,
)
from visionkit.data.given_splits import (
    announce_no_validation,
    announce_random_split,
    split_folders,
)
from visionkit.data.pipeline import Data
from visionkit.data.preprocessing import Preprocessing, check_image_size
from visionkit.data.split import split_indices
from visionkit.errors import BadFileError, DataError, DataWarning, format_file_list

__all__ = ["image_folder", "INTERPOLATIONS"]

INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5",
                  "gaussian", "mitchellcubic")
_ON_BAD_FILE = ("error", "skip")
_EXPECTED_LAYOUT = "one sub-folder of JPEG/PNG/BMP/GIF/WebP images per class"


def image_folder(
    directory: str | os.PathLike,
    image_size: tuple[int, int] = (224, 224),
    validation_split: float = 0.2,
    val_directory: str | os.PathLike | None = None,
    batch_size: int = 32,
    augment: object = "none",
    seed: int | None = 0,
    cache: bool | str = False,
    on_bad_file: str = "error",
    class_names: Sequence[str] | None = None,
    interpolation: str = "bilinear",
    max_image_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS,
    test_directory: str | os.PathLike | None = None,
    preprocessing: Preprocessing | dict | None = None,
) -> Data:
    """A classification data set from a folder with one sub-folder of images per class.

    ```
    directory/
      cat/  001.jpg  002.png ...
      dog/  a.bmp  b.gif  more/c.jpeg ...
    ```

    A folder already split as `directory/train/<class>/...`, `directory/val/<class>/...`
    (or `valid/`, `validation/`) and optionally `directory/test/<class>/...` is used as
    split: nothing is drawn at random, and the test split becomes `Data.test`. So are
    `val_directory` and `test_directory`. Only without a given validation split is a
    seeded random `validation_split` held out (and that is printed).

    Class ids follow the sorted sub-folder names, unless `class_names` gives the order.
    Files ending in .jpg, .jpeg, .png, .bmp, .gif or .webp (any case) are read, also in
    nested folders; hidden files and folders (names starting with ".", and the
    `__MACOSX` folder of metadata that zips made on macOS hold) are ignored; other files
    (.tif, .heic, .txt, ...) are left out with one `DataWarning` counting them per
    extension, and so are images lying beside the class folders (of no class). Grayscale, palette, 16-bit and RGBA images become 8-bit RGB (alpha is
    dropped); GIFs give their first frame. A JPEG's EXIF orientation is applied, so
    pixels are upright as an image viewer shows them (Keras's
    `image_dataset_from_directory` leaves them as stored).

    Every file is checked before the pipeline is built: it is fully decoded with PIL
    (in a thread pool; a progress bar shows above 1,000 files), images whose header
    announces more than `max_image_pixels` pixels are refused before decoding, and
    formats TensorFlow would misread (e.g. a palette BMP, or TIFF content behind a .jpg name) are flagged.
    Bad files raise `BadFileError` listing them, or with `on_bad_file="skip"` are left
    out with one `DataWarning` that names them.

    An empty class folder is an error rather than a silently missing class: a model
    trained without examples of a class it is told exists would be wrong in a way no
    metric shows.

    The pipeline reads, decodes and resizes files in parallel with `tf.data` (the order
    is deterministic when `seed` is given); `Data` shuffles file names before decoding,
    then batches, augments and prefetches.

    Args:
        directory: the folder of class folders.
        image_size: `(height, width)` the images are resized to (aspect ratio not
            kept). Defaults to (224, 224).
        validation_split: stratified, seeded fraction of each class held out for
            validation; ignored when `val_directory` is given. Defaults to 0.2.
        val_directory: a separate folder of validation images with the same class
            folders. Defaults to None.
        test_directory: a separate folder of test images with the same class folders
            (`Data.test`, never trained on). Defaults to None.
        batch_size: examples per batch. Defaults to 32.
        augment: augmentation of the train split (see `Data`). Defaults to "none".
        seed: seed of the split, shuffling and augmentation. Defaults to 0.
        cache: False, True (decoded images in memory) or a file path prefix. Defaults
            to False.
        on_bad_file: "error" or "skip". Defaults to "error".
        class_names: the class folders to use, in class-id order; must name exactly the
            class folders present. Defaults to the sorted folder names.
        interpolation: resize method: "bilinear", "nearest", "bicubic", "area",
            "lanczos3", "lanczos5", "gaussian" or "mitchellcubic". Defaults to
            "bilinear" (no antialiasing, like Keras's loader).
        max_image_pixels: largest width x height accepted; larger images are bad
            files, refused from their header before any decoding (a guard against
            decompression bombs). None removes the limit. Defaults to 89,478,485
            (PIL's own threshold).
        preprocessing: how files become pixels beyond `image_size` and
            `interpolation`: a `Preprocessing` spec, or a dict of its fields (e.g.
            `{"antialias": False, "dct_scaling": True, "orientation": "stored"}`).
            An export of a model trained on this data serves with the same spec.
            Defaults to None (EXIF orientation applied, no DCT scaling, antialiased
            resize).

    Returns:
        A classification `Data` set. Batches: images float32 `[B, H, W, 3]` in 0..255,
        labels int32 `[B]`.

    Raises:
        DataError: if a directory is missing or not a directory, has no class folders,
            has fewer than two, has a class folder without images, `class_names` do not
            match the folders, or `val_directory`'s class folders differ from
            `directory`'s (naming the differing classes).
        BadFileError: with `on_bad_file="error"`, naming every unreadable file and why.
        ValueError: for a bad `on_bad_file`, `interpolation` or `image_size`.

    Example:

    >>> import os, tempfile, numpy as np, PIL.Image, visionkit as vk
    >>> root = tempfile.mkdtemp()
    >>> for name in ("cat", "dog"):
    ...     os.makedirs(os.path.join(root, name))
    ...     for i in range(4):
    ...         pixels = np.full((20, 30, 3), 60 * i, np.uint8)
    ...         PIL.Image.fromarray(pixels).save(os.path.join(root, name, f"{i}.png"))
    >>> data = vk.data.image_folder(root, image_size=(16, 16), batch_size=4)
    visionkit: image_folder ...: no validation split given; holding out a seeded random 20% ...
    >>> data.class_names, data.train_size, data.val_size
    (('cat', 'dog'), 6, 2)
    >>> images, labels = next(iter(data.train))
    >>> tuple(images.shape)
    (4, 16, 16, 3)
    """
    if on_bad_file not in _ON_BAD_FILE:
        raise ValueError(f"Expected on_bad_file to be one of {_ON_BAD_FILE}; received "
                         f"on_bad_file={on_bad_file!r}.")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"Expected interpolation to be one of {INTERPOLATIONS}; received "
                         f"interpolation={interpolation!r}.")
    size = check_image_size(image_size)
    directory = os.fspath(directory)
    given = split_folders(directory) if val_directory is None and test_directory is None \
        else None
    if given is not None:
        directory = given["train"]
        val_directory = given.get("val")
        test_directory = given.get("test")
        if val_directory is None:
            announce_no_validation(f"image_folder {directory!r}", sorted(given))

    train_folders = _class_folders(directory)
    names = _choose_classes(train_folders, class_names, directory)
    train_files = _files_per_class(directory, names)
    val_files = test_files = None
    if val_directory is not None:
        val_directory = os.fspath(val_directory)
        val_files = _other_split(val_directory, "val_directory", train_folders, directory, names)
    if test_directory is not None:
        test_directory = os.fspath(test_directory)
        test_files = _other_split(test_directory, "test_directory", train_folders, directory,
                                  names)
    others = [path for folder in (directory, val_directory, test_directory) if folder
              for path in list_other_files(folder)]
    if others:
        warnings.warn(f"Left out {len(others)} file{'s' if len(others) > 1 else ''} that "
                      f"are not images visionkit reads ({', '.join(IMAGE_EXTENSIONS)}): "
                      + describe_other_files(others) + ". Convert them (e.g. TIFF or HEIC "
                      "to PNG) to use them.", DataWarning, stacklevel=2)
    loose = [path for folder in (directory, val_directory, test_directory) if folder
             for path in _loose_images(folder)]
    if loose:
        warnings.warn(f"Left out {len(loose)} image(s) lying directly in a split folder, "
                      f"outside every class folder, so of no class (e.g. "
                      f"{', '.join(repr(p) for p in loose[:3])}); move them into their "
                      "class folder to use them.", DataWarning, stacklevel=2)

    all_paths = [path for files in train_files.values() for path in files]
    for extra in (val_files, test_files):
        if extra is not None:
            all_paths += [path for files in extra.values() for path in files]
    scan = scan_image_files(all_paths, max_image_pixels=max_image_pixels)
    bad = scan.bad
    if bad:
        if on_bad_file == "error":
            (first_path, first_reason), *others = bad
            raise BadFileError(
                first_path, first_reason, others=others,
                expected="image files that decode completely as JPEG, PNG, BMP or GIF "
                         "(pass on_bad_file='skip' to leave bad files out)")
        warnings.warn(
            f"Skipped {len(bad)} bad image file{'s' if len(bad) > 1 else ''} of "
            f"{len(all_paths)} (on_bad_file='skip'):\n" + format_file_list(bad),
            DataWarning, stacklevel=2)
        skipped = {path for path, _ in bad}
        train_files = _drop(train_files, skipped, directory)
        if val_files is not None:
            val_files = _drop(val_files, skipped, val_directory)
        if test_files is not None:
            test_files = _drop(test_files, skipped, test_directory)

    train_paths, train_labels = _flatten(train_files, names)
    if val_files is not None:
        val_paths, val_labels = _flatten(val_files, names)
    elif given is not None:  # split folders without val/: the user chose no validation
        val_paths, val_labels = train_paths[:0], train_labels[:0]
    else:
        train_index, val_index = split_indices(train_labels, validation_split, seed)
        announce_random_split(f"image_folder {directory!r}", len(train_labels),
                              validation_split, seed, len(val_index))
        val_paths, val_labels = train_paths[val_index], train_labels[val_index]
        train_paths, train_labels = train_paths[train_index], train_labels[train_index]
    # A seeded mixed order (instead of class by class), so `take` and small shuffle
    # buffers see every class.
    rng = np.random.default_rng(seed)
    train_order = rng.permutation(len(train_paths))
    val_order = rng.permutation(len(val_paths))

    decode = _decoder(size, interpolation, preprocessing)
    train_records = _records(train_paths[train_order], train_labels[train_order], scan)
    val_examples = test_examples = None
    if len(val_paths):
        val_examples = _records(val_paths[val_order], val_labels[val_order], scan).map(
            decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    test_size = 0
    if test_files is not None:
        test_paths, test_labels = _flatten(test_files, names)
        test_size = len(test_paths)
        test_examples = _records(test_paths, test_labels, scan).map(
            decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return Data(
        task="classification",
        class_names=names,
        image_size=size,
        train_examples=train_records.map(decode, num_parallel_calls=tf.data.AUTOTUNE,
                                         deterministic=True),
        val_examples=val_examples,
        train_size=len(train_paths),
        val_size=len(val_paths),
        batch_size=batch_size,
        augment=augment,
        seed=seed,
        cache=cache,
        train_records=train_records,
        decode=decode,
        test_examples=test_examples,
        test_size=test_size,
    )


def _other_split(folder: str, what: str, train_folders: list[str], directory: str,
                 names: Sequence[str]) -> dict[str, list[str]]:
    """The class files of a validation or test folder, which must hold the same classes."""
    folders = _class_folders(folder)
    if set(folders) != set(train_folders):
        raise DataError(f"Expected the same class folders in {what} as in directory; "
                        + _difference(train_folders, folders, directory, folder) + ".")
    return _files_per_class(folder, names)


def _class_folders(directory: str) -> list[str]:
    """Sorted names of the (non-hidden) sub-folders of `directory`."""
    if not os.path.exists(directory):
        raise DataError(f"Expected a folder with {_EXPECTED_LAYOUT}; received "
                        f"directory='{directory}', which does not exist.")
    if not os.path.isdir(directory):
        raise DataError(f"Expected a folder with {_EXPECTED_LAYOUT}; received "
                        f"directory='{directory}', which is a file.")
    with os.scandir(directory) as entries:
        entries = list(entries)
    folders = sorted(e.name for e in entries if e.is_dir() and not is_hidden(e.name))
    if not folders:
        loose = [e.name for e in entries if e.is_file() and not is_hidden(e.name)
                 and e.name.lower().endswith(IMAGE_EXTENSIONS)]
        hint = (f" It holds {len(loose)} image{'s' if len(loose) != 1 else ''} directly; "
                "move them into one folder per class." if loose else "")
        raise DataError(f"Expected a folder with {_EXPECTED_LAYOUT}; '{directory}' has no "
                        f"class folders.{hint}")
    return folders


def _loose_images(directory: str) -> list[str]:
    """Image files directly in `directory` (beside its class folders), sorted."""
    with os.scandir(directory) as entries:
        return sorted(e.path for e in entries if e.is_file() and not is_hidden(e.name)
                      and e.name.lower().endswith(IMAGE_EXTENSIONS))


def _choose_classes(folders: list[str], class_names: Sequence[str] | None,
                    directory: str) -> tuple[str, ...]:
    if class_names is None:
        names = tuple(folders)
    else:
        if isinstance(class_names, str):
            raise TypeError(f"Expected class_names as a list of folder names; received the "
                            f"string {class_names!r}.")
        names = tuple(str(name) for name in class_names)
        if len(set(names)) != len(names):
            raise DataError(f"Expected each class once in class_names; received {names}.")
        if set(names) != set(folders):
            raise DataError("Expected class_names to name exactly the class folders; "
                            + _difference(folders, names, directory, "class_names") + ".")
    if len(names) < 2:
        raise DataError(f"Expected at least 2 class folders in '{directory}' for "
                        f"classification; found {len(names)}: {list(names)}.")
    return names


def _files_per_class(directory: str, names: Sequence[str]) -> dict[str, list[str]]:
    files = {name: list_image_files(os.path.join(directory, name)) for name in names}
    empty = [name for name, paths in files.items() if not paths]
    if len(empty) == len(names):
        raise DataError(f"Expected {_EXPECTED_LAYOUT}; none of the class folders of "
                        f"'{directory}' holds images with extensions {IMAGE_EXTENSIONS}.")
    if empty:
        raise DataError(
            f"Expected at least one image (extensions {IMAGE_EXTENSIONS}) in every class "
            f"folder; these folders of '{directory}' have none: {empty}. Remove them or "
            "add images (empty classes are an error, not skipped, so that no class goes "
            "missing silently).")
    _check_linked_files(files, directory)
    return files


def _check_linked_files(files: dict[str, list[str]], directory: str) -> None:
    """Refuses one file reached from two class folders (a symbolic link to another class
    folder, or to the data set's root): it would be an example of both classes."""
    classes_of: dict[str, list[tuple[str, str]]] = {}
    for name, paths in files.items():
        for path in paths:
            classes_of.setdefault(os.path.realpath(path), []).append((name, path))
    shared = [entries for entries in classes_of.values()
              if len({name for name, _ in entries}) > 1]
    if shared:
        shown = "; ".join(" and ".join(f"{path!r} ({name})" for name, path in entries)
                          for entries in shared[:3])
        raise DataError(f"Expected each image in one class folder of '{directory}'; "
                        f"{len(shared)} file(s) are reached from several (through symbolic "
                        f"links), e.g. {shown}. Remove the links, or keep each image in "
                        "its own class.")


def _drop(files: dict[str, list[str]], skipped: set[str], directory: str
          ) -> dict[str, list[str]]:
    kept = {name: [p for p in paths if p not in skipped] for name, paths in files.items()}
    emptied = [name for name, paths in kept.items() if not paths]
    if emptied:
        raise DataError(f"After skipping bad files, these class folders of '{directory}' "
                        f"have no images left: {emptied}.")
    return kept


def _difference(first: Sequence[str], second: Sequence[str], first_name: str,
                second_name: str) -> str:
    only_first = sorted(set(first) - set(second))
    only_second = sorted(set(second) - set(first))
    parts = []
    if only_first:
        parts.append(f"only in '{first_name}': {only_first}")
    if only_second:
        parts.append(f"only in '{second_name}': {only_second}")
    return "; ".join(parts)


def _flatten(files: dict[str, list[str]], names: Sequence[str]
             ) -> tuple[np.ndarray, np.ndarray]:
    paths = [path for name in names for path in files[name]]
    labels = [class_id for class_id, name in enumerate(names) for _ in files[name]]
    return np.asarray(paths, dtype=object).astype(str), np.asarray(labels, np.int32)


def _records(paths: np.ndarray, labels: np.ndarray, scan: ImageScan) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(
        {"paths": paths, "labels": labels, "orientations": scan.orientation_array(paths)})


def _decoder(size: tuple[int, int], interpolation: str,
             preprocessing: Preprocessing | dict | None = None) -> FileDecoder:
    """Read + decode + EXIF orientation + resize, as `preprocessing` defines them."""
    def finish(record: dict, image: tf.Tensor, window: tf.Tensor, source_size) -> dict:
        return {"images": image, "labels": record["labels"]}

    if isinstance(preprocessing, Preprocessing):
        spec = preprocessing
    else:
        spec = Preprocessing(size, resize_method=interpolation, **(preprocessing or {}))
    return FileDecoder("paths", size, finish, preprocessing=spec)
