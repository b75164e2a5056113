"""`check`: a data set's health report before training.

It builds the data set the way training would (broken annotations left out and counted
rather than fatal, so that one report lists them all), then reads every example of every
split once and reports: images and objects per split and class, box size and aspect
histograms, mask class pixel shares, images that occur in two splits (same decoded
pixels), and every warning and error the source raised. A PNG summary shows the counts
and histograms.

Example:

>>> import os, tempfile, numpy as np
>>> from PIL import Image
>>> root = tempfile.mkdtemp()
>>> for split in ("train", "val"):
...     for name in ("cat", "dog"):
...         os.makedirs(os.path.join(root, split, name))
...         for i in range(2):
...             pixels = np.full((8, 8, 3), 10 * i + (100 if split == "val" else 0), np.uint8)
...             pixels[..., 1] = 0 if name == "cat" else 200
...             Image.fromarray(pixels).save(os.path.join(root, split, name, f"{i}.png"))
>>> report = check(root, image_size=(8, 8))
>>> report["kind"], report["splits"]["train"]["images"], report["duplicates"]
('image_folder', 4, [])
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from visionkit.errors import DataError, VisionkitError
from visionkit.plot._figure import new_figure
from visionkit.vocabulary import BOUNDING_BOXES, BOXES

__all__ = ["check", "detect_kind", "format_report"]

KINDS = ("image_folder", "mask_folder", "coco", "voc", "yolo")
# Sources whose broken annotations can be left out and counted instead of stopping.
_ANNOTATED = ("coco", "voc", "yolo")
# Histogram bins of box sides (pixels of the resized image) and aspect ratios (w / h).
_SIDE_BINS = 10
_ASPECT_BINS = np.array([0, 0.25, 0.5, 0.8, 1.25, 2, 4, np.inf])
# Duplicate examples listed in the report.
_LISTED = 20


def detect_kind(source: str) -> str:
    """The source kind of a path: a COCO JSON, a YOLO data.yaml or folder, a VOC folder,
    an images/ + masks/ folder, or a folder of class folders.

    Raises:
        DataError: for a path that does not exist.
    """
    if not os.path.exists(source):
        raise DataError(f"Expected a data set file or folder; {source!r} does not exist.")
    lowered = source.lower()
    if os.path.isfile(source):
        if lowered.endswith(".json"):
            return "coco"
        if lowered.endswith((".yaml", ".yml")):
            return "yolo"
        raise DataError(f"Expected a COCO .json, a YOLO data .yaml or a folder; received "
                        f"{source!r}.")
    entries = set(os.listdir(source))
    if entries & {"data.yaml", "data.yml", "dataset.yaml", "dataset.yml"}:
        return "yolo"
    if "Annotations" in entries:
        return "voc"
    if "images" in entries and "labels" in entries:
        return "yolo"
    if "images" in entries and "masks" in entries:
        return "mask_folder"
    return "image_folder"


def _build(kind: str, source: str, options: dict[str, Any]):
    from visionkit import data as vk_data

    if kind == "image_folder":
        return vk_data.image_folder(source, **options)
    if kind == "mask_folder":
        return vk_data.mask_folder(os.path.join(source, "images"),
                                   os.path.join(source, "masks"), **options)
    if kind == "coco":
        images = options.pop("images_dir", os.path.dirname(os.path.abspath(source)))
        return vk_data.coco(source, images, **options)
    if kind == "voc":
        return vk_data.voc(source, **options)
    return vk_data.yolo(source, **options)


def _image_key(image: np.ndarray) -> str:
    pixels = np.clip(np.round(image), 0, 255).astype(np.uint8)
    return hashlib.sha1(pixels.tobytes()).hexdigest()


def check(source: str | os.PathLike, kind: str | None = None,
          out: str | os.PathLike | None = None, image_size: tuple[int, int] = (64, 64),
          **options: Any) -> dict[str, Any]:
    """A health report of a data set, before training.

    Args:
        source: a folder or file as the sources take it: a folder of class folders (or
            of `train/`, `val/`, `test/` splits), a folder with `images/` and `masks/`,
            a COCO JSON (images next to it, or `images_dir=`), a VOC folder, a YOLO
            folder or data.yaml.
        kind: "image_folder", "mask_folder", "coco", "voc" or "yolo". Defaults to the
            kind `detect_kind` finds.
        out: where to write the PNG summary. Defaults to None (no figure).
        image_size: `(height, width)` the examples are read at; box sizes are in these
            pixels. Defaults to (64, 64).
        **options: further arguments of the source (e.g. `class_names`, `value_map`).
            Annotated sources get `on_bad_annotation="skip"` unless given, so that every
            broken annotation is listed rather than the first one stopping the report.

    Returns:
        A dict: `source`, `kind`, `class_names`, `splits` (`{split: {"images",
        "objects", "per_class"}}`; `per_class` counts images (classification), boxes
        (detection) or pixel shares (segmentation)), `box_sides` and `box_aspects`
        (histograms: `edges`, `counts`), `duplicates` (`{"splits", "examples"}` of
        identical images found in two splits), `warnings` and `errors` (message
        strings), and `figure` (the PNG path or None).

    Raises:
        ValueError: for an unknown `kind`.
    """
    source = os.fspath(source)
    kind = kind or detect_kind(source)
    if kind not in KINDS:
        raise ValueError(f"Expected kind to be one of {KINDS}; received kind={kind!r}.")
    options = dict(options)
    if kind in _ANNOTATED:
        options.setdefault("on_bad_annotation", "skip")
    options["image_size"] = tuple(image_size)
    report: dict[str, Any] = {"source": source, "kind": kind, "class_names": [],
                              "splits": {}, "box_sides": None, "box_aspects": None,
                              "duplicates": [], "warnings": [], "errors": [], "figure": None}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            data = _build(kind, source, options)
        except (VisionkitError, ValueError, FileNotFoundError) as error:
            data = None
            report["errors"].append(str(error))
    report["warnings"] = [str(w.message) for w in caught]
    if data is None:
        return report
    report["class_names"] = list(data.class_names)
    _count(data, report)
    if out is not None:
        report["figure"] = _figure(report, os.fspath(out))
    return report


def _count(data, report: dict[str, Any]) -> None:
    task = data.task
    names = data.class_names
    seen: dict[str, set[str]] = {}
    first_split: dict[str, str] = {}
    duplicates: dict[tuple[str, str], int] = {}
    sides, aspects = [], []
    for split, examples in (("train", data.train_examples), ("val", data.val_examples),
                            ("test", data.test_examples)):
        if examples is None:
            continue
        per_class = np.zeros(len(names), np.int64)
        images = objects = 0
        keys: set[str] = set()
        for example in examples.as_numpy_iterator():
            images += 1
            key = _image_key(example["images"])
            if key in first_split and first_split[key] != split:
                pair = (first_split[key], split)
                duplicates[pair] = duplicates.get(pair, 0) + 1
            first_split.setdefault(key, split)
            keys.add(key)
            target = example[task.target_key]
            counts = task.class_counts(target, len(names))
            per_class += counts
            objects += int(counts.sum())
            if BOUNDING_BOXES in example:
                labels = example[BOUNDING_BOXES]["labels"]
                boxes = example[BOUNDING_BOXES][BOXES][labels >= 0]  # padding: -1
                width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
                sides += np.sqrt(np.maximum(width * height, 0)).tolist()
                aspects += (width / np.maximum(height, 1e-6)).tolist()
        seen[split] = keys
        entry: dict[str, Any] = {"images": images}
        if task.class_count_unit == "objects":
            entry["objects"] = objects
        if task.class_count_unit == "pixels":
            total = max(int(per_class.sum()), 1)
            entry["per_class"] = {n: float(c / total) for n, c in zip(names, per_class)}
        else:
            entry["per_class"] = {n: int(c) for n, c in zip(names, per_class)}
        report["splits"][split] = entry
    report["duplicates"] = [{"splits": list(pair), "examples": count}
                            for pair, count in duplicates.items()][:_LISTED]
    if sides:
        counts, edges = np.histogram(sides, bins=_SIDE_BINS)
        report["box_sides"] = {"edges": edges.tolist(), "counts": counts.tolist()}
        counts, _ = np.histogram(aspects, bins=_ASPECT_BINS)
        report["box_aspects"] = {"edges": _ASPECT_BINS.tolist(), "counts": counts.tolist()}


def _figure(report: Mapping[str, Any], path: str) -> str:
    panels = 1 + (report["box_sides"] is not None) * 2
    figure = new_figure(5 * panels, 4)
    axes = figure.subplots(1, panels, squeeze=False)[0]
    names = report["class_names"]
    splits = report["splits"]
    width = 0.8 / max(len(splits), 1)
    for offset, (split, entry) in enumerate(splits.items()):
        values = [entry["per_class"].get(name, 0) for name in names]
        axes[0].bar(np.arange(len(names)) + offset * width, values, width=width, label=split)
    axes[0].set_xticks(np.arange(len(names)) + width * (len(splits) - 1) / 2)
    axes[0].set_xticklabels(names, rotation=45, ha="right")
    axes[0].set_title("per class" + (" (pixel share)" if report["kind"] == "mask_folder"
                                     else ""))
    axes[0].legend()
    if report["box_sides"] is not None:
        sides = report["box_sides"]
        axes[1].stairs(sides["counts"], sides["edges"], fill=True)
        axes[1].set_title("box side sqrt(w*h), pixels")
        aspects = report["box_aspects"]
        axes[2].bar(range(len(aspects["counts"])), aspects["counts"])
        labels = [f"{a:g}-{b:g}" for a, b in zip(aspects["edges"][:-1], aspects["edges"][1:])]
        axes[2].set_xticks(range(len(labels)))
        axes[2].set_xticklabels(labels, rotation=45, ha="right")
        axes[2].set_title("box aspect w/h")
    problems = len(report["warnings"]) + len(report["errors"]) + len(report["duplicates"])
    figure.suptitle(f"{report['kind']} {os.path.basename(report['source'])}: "
                    f"{problems} problem(s) (see the text report)")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path)
    return path


def format_report(report: Mapping[str, Any]) -> str:
    """The report as text, one finding per line."""
    lines = [f"{report['kind']} {report['source']}"]
    for split, entry in report["splits"].items():
        objects = f", {entry['objects']} objects" if "objects" in entry else ""
        shares = ", ".join(f"{name}: {value:.3g}" for name, value in entry["per_class"].items())
        lines.append(f"  {split}: {entry['images']} images{objects}; per class {shares}")
    for duplicate in report["duplicates"]:
        lines.append(f"  DUPLICATE: {duplicate['examples']} image(s) in both "
                     f"{duplicate['splits'][0]} and {duplicate['splits'][1]}")
    for message in report["warnings"]:
        lines.append(f"  WARNING: {message}")
    for message in report["errors"]:
        lines.append(f"  ERROR: {message}")
    if report.get("figure"):
        lines.append(f"  summary: {report['figure']}")
    return "\n".join(lines)
