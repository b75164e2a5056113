"""`yolo`: a detection data set from YOLO txt labels (class cx cy w h, normalized)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from visionkit.data.annotation_checks import (
    Problems,
    check_on_bad_annotation,
    check_repeated_names,
    find_ignoring_case,
    parse_class_id,
    parse_number,
    raise_or_note,
)
from visionkit.data.annotations import AnnotatedImage, build_detection_data
from visionkit.data.boxes import cxcywh_to_xyxy
from visionkit.data.files import (
    DEFAULT_MAX_IMAGE_PIXELS,
    IMAGE_EXTENSIONS,
    CaseInsensitiveFiles,
    list_image_files,
    list_other_files,
)
from visionkit.data.given_splits import split_folders
from visionkit.data.pipeline import Data
from visionkit.errors import BadFileError, DataError

__all__ = ["yolo"]

# Names files tried in this order when none is given.
_NAMES_FILES = ("classes.txt", "obj.names", "names.txt")
# Data set files tried in `root` when no data.yaml is given (ultralytics' names).
_DATA_FILES = ("data.yaml", "data.yml", "dataset.yaml", "dataset.yml")
# How far a normalised value may lie outside 0..1 and still be read: converters write
# boxes reaching just past the border (1.0025 in CrowdHuman conversions, ultralytics/yolov5
# issue 3509; 1.0021 polygon vertices, issue 10632). Such boxes are clipped to the image
# and counted in the clipping warning; values further out (pixel coordinates) are refused.
_RANGE_TOLERANCE = 0.01


def yolo(root: str | os.PathLike, image_size: tuple[int, int] = (320, 320),
         names: str | os.PathLike | Sequence[str] | None = None, images_dir: str = "images",
         labels_dir: str = "labels", validation_split: float = 0.2, batch_size: int = 16,
         augment: object = "none", seed: int | None = 0, max_boxes: int | None = None,
         cache: bool | str = False,
         max_image_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS,
         on_bad_annotation: str = "error") -> Data:
    """A detection data set in YOLO's txt format, split as the user split it.

    Three layouts, tried in this order:

    - a data set YAML (ultralytics' `data.yaml`): `root` is the YAML file, or a folder
      holding `data.yaml` / `dataset.yaml`. Its `train`, `val` and `test` entries (a
      folder of images, a .txt list of image paths, or a list of those) are relative to
      its `path` (itself relative to the YAML's folder) and are used as the splits;
      `names` is a list or an `{id: name}` mapping (`nc`, if given, must agree); a
      YAML with only `nc` and no names file names them `class_0`.. as ultralytics
      does (said).
    - `root/images/{train,val,test}/` (also `valid/`) with `root/labels/<split>/`: the
      folders are the splits.
    - `root/images/` and `root/labels/` without split folders: a seeded random
      `validation_split` is held out (printed), and class names come from a names file.

    An image's label file is found as ultralytics finds it: the last `images` folder of
    its path becomes `labels` and the extension `.txt`; when no file has that name, the
    one file of that folder that differs from it only in letter case (`IMG_001.JPG` with `img_001.txt`
    or `IMG_001.TXT`, from a Windows or macOS disk) is its label file, said in a
    warning (a file that is another image's label as written is never taken; one that
    two images reach only by case is an error). A label file of another name beside it
    (`b.png.txt`, written by a script appending `.txt`) is not read: its image is
    background, counted apart in a warning naming that file. One object per line:
    `class_id cx cy width height`, the box centre and size as fractions (0..1) of the
    image's width and height; values further than 1% outside 0..1 are refused (pixel
    coordinates written by mistake), those just past the border clipped. A segment line
    (`class_id x1 y1 x2 y2 ...`, a polygon) becomes the polygon's bounding box, counted
    in a warning. A line repeating an earlier line of its file (class and numbers) is one
    object labelled twice: left out, counted in a warning. Numbers may be written in
    any float notation (`0.5`, `.5`, `5e-1`), class ids also as `2.0`. An image with an
    empty label file has no objects (background); so does one without a label file,
    counted in a warning; when no image has a label file, that is an error.

    Args:
        root: the data folder, or the data set YAML.
        image_size: `(height, width)` images are resized to. Defaults to (320, 320).
        names: a names file (relative to `root` or absolute) or the list of names.
            Defaults to the YAML's `names`, else the first of classes.txt, obj.names,
            names.txt in `root`, then in `root/<labels_dir>` (where LabelImg writes
            classes.txt). Without `names`, every other names file in the YAML's folder
            or `root`, in the label folders and in their parents is compared with the
            names read: one that disagrees (count or entries) is said in one warning
            naming both files and the differing entries, and the names read win (the
            YAML's, as ultralytics reads them); an unknown class id error then names a
            names file that lists more classes.
        images_dir, labels_dir: sub-folders of `root` without a YAML. Defaults to
            "images", "labels".
        validation_split, batch_size, augment, seed, max_boxes, cache,
            max_image_pixels: as for `coco`.
        on_bad_annotation: "error" or "skip": what a line with values outside 0..1
            (e.g. pixel coordinates), an unknown class, a malformed line or a zero-area
            box does. "skip" leaves the line out, counted in one warning per reason.
            Defaults to "error".

    Returns:
        A detection `Data` set (`Data.test` when the user gave a test split).

    Raises:
        BadFileError: for a label, names or YAML file that is not UTF-8 text or valid
            YAML, or for images that do not decode.
        DataError: for a missing names file or split folder, no label file for any
            image (naming where they were looked for), a malformed line, a value
            outside 0..1, a non-finite number or an unknown class id (naming the file
            and line), a degenerate box, or no image.

    Example:

    >>> import os, tempfile, numpy as np
    >>> from PIL import Image
    >>> root = tempfile.mkdtemp()
    >>> for sub in ("images", "labels"): os.makedirs(os.path.join(root, sub))
    >>> Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(
    ...     os.path.join(root, "images", "a.png"))
    >>> with open(os.path.join(root, "labels", "a.txt"), "w") as f:
    ...     _ = f.write("0 0.35 0.35 0.5 0.5\\n")
    >>> data = yolo(root, image_size=(40, 60), names=["cat"], validation_split=0)
    >>> np.round(next(iter(data.train_examples))["bounding_boxes"]["boxes"].numpy(), 3).tolist()
    [[6.0, 4.0, 36.0, 24.0]]
    """
    check_on_bad_annotation(on_bad_annotation)
    root = os.fspath(root)
    problems = Problems(root)
    data_file = _data_file(root)
    if data_file is not None:
        spec = _read_yaml(data_file)
        base = _yaml_base(spec, data_file)
        class_names, names_source = _yaml_names(spec, data_file, names, root, problems)
        split_images = _yaml_splits(spec, data_file, base, problems)
    else:
        class_names, names_source = _names(root, names, labels_dir)
        folder = os.path.join(root, images_dir)
        if not os.path.isdir(folder):
            raise DataError(f"Expected YOLO images in {folder!r}; the folder does not exist.")
        given = split_folders(folder)
        if given is not None:
            split_images = {split: _images_in(path, problems) for split, path in given.items()}
        else:
            split_images = {None: _images_in(folder, problems)}
    labelled = []
    for split, paths in split_images.items():
        for path in paths:
            if data_file is None and split is None:
                stem = os.path.splitext(os.path.relpath(path, folder))[0]
                label_file = os.path.join(root, labels_dir, stem + ".txt")
            else:
                label_file = label_path(path)
            labelled.append((split, path, label_file))
    labelled = _pair_ignoring_case(labelled, problems)
    names_note = ""
    if names is None:  # names the user gave are theirs; found ones are compared
        names_note = _compare_names_files(
            class_names, names_source, _names_files_beside(
                os.path.dirname(data_file) if data_file is not None else root,
                [label_file for _, _, label_file in labelled]), problems)
    images = []
    unlabelled: list[tuple[str, str]] = []
    for split, path, label_file in labelled:
        if not os.path.isfile(label_file):
            unlabelled.append((path, label_file))
        boxes, labels = _read_labels(label_file, len(class_names), on_bad_annotation,
                                     problems, names_note)
        images.append(AnnotatedImage(path=path, boxes=boxes, labels=labels, size=None,
                                     source=label_file, split=split, normalized=True))
    if not images:
        raise DataError(f"No images found for the YOLO data set {root!r}.")
    _check_label_files(images, unlabelled, root, problems)
    check_repeated_names(class_names, np.concatenate(
        [image.labels.reshape(-1) for image in images]), root, problems)
    return build_detection_data(images, class_names, root, image_size, validation_split,
                                batch_size, augment, seed, max_boxes, cache,
                                max_image_pixels=max_image_pixels,
                                on_bad_annotation=on_bad_annotation, problems=problems)


def _pair_ignoring_case(labelled: list[tuple], problems: Problems) -> list[tuple]:
    """`(split, image, label file)` with each missing label file replaced by the one
    file of its folder that differs from it only in letter case (`IMG_001.JPG` labelled by
    `img_001.txt` or `IMG_001.TXT`, written on a case-insensitive disk), said once; a
    label file that pairs with another image as written is never taken, and one that
    two images reach only by case is an error naming both."""
    files = CaseInsensitiveFiles()
    as_written = {os.path.normpath(label) for _, _, label in labelled}
    taken: dict[str, str] = {}
    paired = []
    for split, image, label in labelled:
        # Only the file's name may differ in case: a `Labels/` folder is not where
        # ultralytics looks (the error of `_check_label_files` says where it does).
        if not os.path.isfile(label) and os.path.isdir(os.path.dirname(label)):
            found = find_ignoring_case(files, label, image, "label file", problems,
                                       exclude=as_written)
            if found is not None:
                if found in taken:
                    raise DataError(
                        f"{image!r} and {taken[found]!r} both pair with the label file "
                        f"{found!r} only by ignoring letter case; expected one label "
                        "file per image. Rename the label files to their images' names.")
                taken[found] = image
                label = found
        paired.append((split, image, label))
    return paired


def _check_label_files(images: list[AnnotatedImage], unlabelled: list[tuple[str, str]],
                       root: str, problems: Problems) -> None:
    """Images without a label file are background (as ultralytics reads them), counted
    in a warning; when no image has one, the labels are elsewhere (a `Labels/` or
    `annotations/` folder, labels not next to images): an error naming where they were
    looked for."""
    if not unlabelled:
        return
    if len(unlabelled) == len(images):
        shown = "; ".join(f"{image!r} -> {label!r}" for image, label in unlabelled[:3])
        raise DataError(f"{root}: none of the {len(images)} images has a label file, so "
                        f"there is nothing to learn. Looked for (e.g.) {shown}: each image's "
                        "path with its last 'images' folder replaced by 'labels' and the "
                        "extension by '.txt', as ultralytics pairs them.")
    listings: dict[str, list[str]] = {}
    # A label file pairing with another image (a.txt of a.png, beside A.png) is not near.
    paired = {os.path.normpath(image.source) for image in images}
    for image, label in unlabelled:
        folder, name = os.path.split(label)
        if folder not in listings:
            listings[folder] = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
        stem = os.path.splitext(name)[0].lower()
        image_name = os.path.basename(image).lower()
        near = [other for other in listings[folder] if other.lower().endswith(".txt")
                and other.lower() in (stem + ".txt", image_name + ".txt")
                and os.path.normpath(os.path.join(folder, other)) not in paired]
        if near:
            # b.png.txt beside the b.txt looked for: a label written, not read (b.TXT,
            # differing only in case, was paired by `_pair_ignoring_case`).
            problems.note("images read as background although a label file of another "
                          "name is there (a label file is paired by the name '<stem>.txt', "
                          "in any letter case: rename them)",
                          f"{image!r} (no {name!r}; {near[0]!r} is there)")
            continue
        problems.note("images without a label file read as background (no objects)",
                      f"{image!r} (no {name!r})")


def label_path(image_path: str) -> str:
    """The label file of an image, as ultralytics pairs them: the last `images` folder
    of the path becomes `labels`, the extension `.txt`.

    Example:

    >>> label_path("/d/images/train/a.jpg")
    '/d/labels/train/a.txt'
    """
    images, labels = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    if images in image_path:
        head, tail = image_path.rsplit(images, 1)
        image_path = head + labels + tail
    return os.path.splitext(image_path)[0] + ".txt"


def _data_file(root: str) -> str | None:
    if os.path.isfile(root) and root.lower().endswith((".yaml", ".yml")):
        return root
    for name in _DATA_FILES:
        candidate = os.path.join(root, name)
        if os.path.isfile(candidate):
            return candidate
    return None


def _read_yaml(path: str) -> dict:
    import yaml

    try:
        with open(path, encoding="utf-8-sig") as handle:
            spec = yaml.safe_load(handle)
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise BadFileError(path, f"not valid YAML ({error})",
                           expected="a YOLO data set YAML") from None
    if not isinstance(spec, dict):
        raise BadFileError(path, "the top level is not a mapping",
                           expected="a YOLO data set YAML with train, val and names")
    return spec


def _yaml_base(spec: dict, data_file: str) -> str:
    """The folder the YAML's split entries are relative to (its `path`, itself relative
    to the YAML's folder)."""
    here = os.path.dirname(os.path.abspath(data_file))
    path = spec.get("path")
    if path in (None, ""):
        return here
    base = str(path) if os.path.isabs(str(path)) else os.path.normpath(
        os.path.join(here, str(path)))
    if not os.path.isdir(base):
        raise DataError(f"{data_file}: path: {path!r} is not a folder (looked for {base!r}, "
                        "relative to the YAML's folder). Expected the data set's root.")
    return base


def _yaml_names(spec: dict, data_file: str, names, root: str,
                problems: Problems) -> tuple[list[str], str | None]:
    """The class names and where they came from (the YAML, a names file, or None for a
    list given by the user)."""
    found = spec.get("names")
    if found is None:
        count = spec.get("nc")
        if names is not None or count is None or any(
                os.path.isfile(os.path.join(root, name)) for name in _NAMES_FILES):
            return _names(root, names)
        try:
            count = int(count)
        except (TypeError, ValueError):
            raise DataError(f"{data_file}: nc: expected the number of classes; received "
                            f"{count!r}.") from None
        # ultralytics names the classes of a YAML with only `nc` class_0, class_1, ...
        listed = [f"class_{index}" for index in range(count)]
        problems.note("classes named class_0..class_{nc-1}: the data set YAML gives nc and no "
                      "names (as ultralytics names them)", f"{data_file} nc: {count}")
        return listed, data_file
    if isinstance(found, dict):
        try:
            ids = sorted(int(key) for key in found)
        except (TypeError, ValueError):
            raise DataError(f"{data_file}: names: expected integer class ids as keys; "
                            f"received {sorted(map(str, found))[:10]}.") from None
        if ids != list(range(len(ids))):
            raise DataError(f"{data_file}: names: expected class ids 0..{len(ids) - 1} "
                            f"without gaps; received {ids}.")
        by_id = {int(key): str(value) for key, value in found.items()}
        listed = [by_id[i] for i in ids]
    elif isinstance(found, list):
        listed = [str(name) for name in found]
    else:
        raise DataError(f"{data_file}: names: expected a list or an {{id: name}} mapping; "
                        f"received {found!r}.")
    count = spec.get("nc")
    if count is not None and int(count) != len(listed):
        raise DataError(f"{data_file}: nc: {count} but names lists {len(listed)} classes.")
    if names is not None and not isinstance(names, (str, os.PathLike)) \
            and [str(n) for n in names] != listed:
        raise DataError(f"names={list(names)} differs from {data_file}'s names {listed}.")
    return listed, data_file


def _images_in(folder: str, problems: Problems) -> list[str]:
    """The images under `folder`; other files are counted as left out."""
    for path in list_other_files(folder):
        problems.note(f"files that are not images ({', '.join(IMAGE_EXTENSIONS)}) left out",
                      repr(path))
    return list_image_files(folder)


def _yaml_splits(spec: dict, data_file: str, base: str,
                 problems: Problems) -> dict[str, list[str]]:
    if spec.get("train") in (None, ""):
        raise DataError(f"{data_file}: expected a 'train' entry (a folder of images or a "
                        ".txt list of them); found none.")
    splits: dict[str, list[str]] = {}
    for split in ("train", "val", "test"):
        entry = spec.get(split)
        if entry in (None, ""):
            continue
        entries = entry if isinstance(entry, list) else [entry]
        files: list[str] = []
        for item in entries:
            path = os.path.join(base, str(item))
            if not os.path.exists(path) and str(item).startswith("../") \
                    and os.path.exists(os.path.join(base, str(item)[3:])):
                # Roboflow writes "../train/images" next to train/; ultralytics retries
                # without the "../", and so does visionkit (said in a warning).
                path = os.path.join(base, str(item)[3:])
                problems.note("split paths starting with '../' found inside the data set "
                              "folder instead", f"{split}: {item!r} -> {path!r}")
            if os.path.isdir(path):
                files += _images_in(path, problems)
            elif os.path.isfile(path) and path.lower().endswith(".txt"):
                files += _image_list(path, base, problems)
            else:
                raise DataError(f"{data_file}: {split}: {item!r} is neither a folder nor a "
                                f".txt list of images (looked for {path!r}).")
        if not files:
            raise DataError(f"{data_file}: {split}: {entry!r} holds no images "
                            f"({', '.join(IMAGE_EXTENSIONS)}).")
        splits[split] = files
    return splits


def _image_list(path: str, base: str, problems: Problems) -> list[str]:
    """The images a .txt split list names (relative entries are relative to `base`;
    `./x` entries relative to the list's folder, as ultralytics reads them); an entry not
    on disk as written is the one file differing from it only in letter case (said)."""
    here = os.path.dirname(path)
    files = []
    case_folding = CaseInsensitiveFiles()
    for number, line in enumerate(_text_lines(path, "a list of image paths"), start=1):
        entry = line.strip()
        if not entry:
            continue
        if entry.startswith("./"):
            image = os.path.normpath(os.path.join(here, entry))
        else:
            image = entry if os.path.isabs(entry) else os.path.join(base, entry)
        if not os.path.isfile(image):
            image = find_ignoring_case(case_folding, image, f"{path} line {number}",
                                       "image path", problems) or image
        files.append(image)
    return files


def _names(root: str, names: str | os.PathLike | Sequence[str] | None,
           labels_dir: str | None = None) -> tuple[list[str], str | None]:
    """The class names and the file they came from (None for a list given by the user)."""
    if names is not None and not isinstance(names, (str, os.PathLike)):
        return [str(name) for name in names], None
    candidates = [os.fspath(names)] if names is not None else list(_NAMES_FILES) + (
        # LabelImg writes classes.txt beside the labels it saves.
        [os.path.join(labels_dir, name) for name in _NAMES_FILES] if labels_dir else [])
    for candidate in candidates:
        path = candidate if os.path.isabs(candidate) else os.path.join(root, candidate)
        if os.path.isfile(path):
            return _read_names_file(path), path
    raise DataError(f"No YOLO names file found in {root!r}: expected one of {candidates} "
                    "(one class name per line), or pass names=[...].")


def _read_names_file(path: str) -> list[str]:
    found = [line.strip() for line in _text_lines(path, "a names file") if line.strip()]
    if not found:
        raise DataError(f"The names file {path!r} is empty; expected one class name per line.")
    return found


def _names_files_beside(base: str, label_files: Sequence[str]) -> list[str]:
    """The names files (`_NAMES_FILES`) in `base`, in the label files' folders and in
    those folders' parents (`labels/classes.txt` of a `labels/train/` layout)."""
    folders = {base}
    for label_file in label_files:
        folder = os.path.dirname(label_file)
        folders.update((folder, os.path.dirname(folder)))
    return sorted({os.path.normpath(os.path.join(folder, name)) for folder in folders
                   for name in _NAMES_FILES if os.path.isfile(os.path.join(folder, name))})


# What wins when names files disagree, said with every disagreement.
_NAMES_PRECEDENCE = ("names files that disagree with the class names read, which win (the "
                     "data set YAML's names, as ultralytics reads them; without a YAML, the "
                     "first of classes.txt, obj.names, names.txt in the root, then in the "
                     "labels folder)")


def _compare_names_files(class_names: list[str], source: str | None,
                         files: Sequence[str], problems: Problems) -> str:
    """Counts each names file that disagrees with `class_names` (read from `source`),
    naming the differing entries; returns a note for unknown class id errors when one
    lists more classes than were read."""
    notes = []
    for path in files:
        if source is not None and os.path.normpath(path) == os.path.normpath(source):
            continue
        try:
            listed = _read_names_file(path)
        except DataError:  # empty: names nothing to disagree with
            continue
        if listed == class_names:
            continue
        differing = [f"{index}: {ours!r} vs {theirs!r}" for index, (ours, theirs)
                     in enumerate(zip(class_names, listed)) if ours != theirs]
        if len(listed) != len(class_names):
            longer = listed if len(listed) > len(class_names) else class_names
            differing.append(f"{len(listed)} names against {len(class_names)} (beyond the "
                             f"shorter list: {longer[min(len(listed), len(class_names)):][:3]})")
        problems.note(_NAMES_PRECEDENCE, f"{path!r} vs {source!r}: "
                      f"{'; '.join(differing[:3])}")
        if len(listed) > len(class_names):
            notes.append(f" {path!r} lists {len(listed)} classes, but the class names are "
                         f"{source!r}'s {len(class_names)} (they win, as in ultralytics): "
                         "make the files agree, or pass names=[...].")
    return "".join(notes)


def _text_lines(path: str, what: str) -> list[str]:
    """The lines of a UTF-8 text file; other bytes are a `BadFileError` naming it."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            return handle.read().splitlines()
    except UnicodeDecodeError as error:
        raise BadFileError(path, f"not UTF-8 text ({error.reason} at byte {error.start})",
                           expected=what) from None


def _read_labels(file: str, num_classes: int, on_bad_annotation: str,
                 problems: Problems, names_note: str = "") -> tuple[np.ndarray, np.ndarray]:
    if not os.path.isfile(file):
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.int32)
    boxes, labels = [], []
    seen: dict[tuple, int] = {}
    for number, line in enumerate(_text_lines(file, "a YOLO label file"), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{file} line {number}"
        try:
            class_id = parse_class_id(fields[0])
            values = [parse_number(v) for v in fields[1:]]
        except ValueError:
            raise_or_note(on_bad_annotation, problems, "malformed label lines", where,
                          f"{where}: expected 'class_id cx cy width height' (5 finite "
                          f"numbers) or a segment 'class_id x1 y1 x2 y2 ...'; received "
                          f"{line.strip()!r}.")
            continue
        polygon = len(values) >= 6 and len(values) % 2 == 0
        if len(values) != 4 and not polygon:
            # `yolo predict --save-txt --save-conf` writes a 6th column, the confidence.
            cause = (" Six columns with a last value in 0..1 are a prediction saved with "
                     "its confidence (yolo predict --save-conf), not a label: drop the last "
                     "column, and keep only boxes you checked." if len(values) == 5 and
                     0 <= values[-1] <= 1 else "")
            raise_or_note(on_bad_annotation, problems, "malformed label lines", where,
                          f"{where}: expected 'class_id cx cy width height' (5 numbers) or "
                          f"a segment 'class_id x1 y1 x2 y2 ...'; received "
                          f"{line.strip()!r}.{cause}")
            continue
        outside = [v for v in values if not -_RANGE_TOLERANCE <= v <= 1 + _RANGE_TOLERANCE]
        if outside:
            cause = (" They look like pixel coordinates; YOLO labels are fractions of the "
                     "image's width and height." if max(values) > 1.5 else "")
            raise_or_note(on_bad_annotation, problems,
                          "label lines with normalised values outside 0..1", where,
                          f"{where}: expected normalised values in 0..1; received "
                          f"{line.strip()!r} (outside: {outside[:4]}).{cause}")
            continue
        if not 0 <= class_id < num_classes:
            raise_or_note(on_bad_annotation, problems, "label lines with an unknown class id",
                          where, f"{where}: unknown class id {class_id}; the names list "
                          f"{num_classes} classes (0..{num_classes - 1}).{names_note}")
            continue
        # A line repeating an earlier one (class and every number) is one object labelled
        # twice (ultralytics removes them too, yolov5#10149). Lines are compared as
        # written, not as boxes: two polygons with one bounding box are two objects
        # (ultralytics#14858).
        key = (class_id, tuple(values))
        if key in seen:
            problems.note("duplicate label lines (the same class and numbers as an earlier "
                          "line of the file) left out", f"{where} = line {seen[key]}")
            continue
        seen[key] = number
        if polygon:
            points = np.asarray(values, np.float32).reshape(-1, 2)
            box = np.concatenate([points.min(axis=0), points.max(axis=0)])
            problems.note("segment (polygon) lines read as their bounding boxes", where)
        else:
            box = cxcywh_to_xyxy(np.asarray(values, np.float32))[0]
        boxes.append(box)
        labels.append(class_id)
    return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int32)
