"""The user's own train / val / test split, recognised in each tool's layout.

Real data sets come split: class folders under `train/`, `val/`, `test/`; YOLO's
`images/train` and `images/val`; VOC's `ImageSets/Main/{train,val,test}.txt`; one COCO
JSON per split. A source that finds such a split uses it exactly; only when the user
gave none does it hold out a seeded random fraction, and it says so once (printed).

Example:

>>> import os, tempfile
>>> root = tempfile.mkdtemp()
>>> for name in ("train", "val", "test"): os.makedirs(os.path.join(root, name))
>>> sorted(split_folders(root))
['test', 'train', 'val']
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from visionkit.data.split import split_indices
from visionkit.errors import DataError

__all__ = ["SPLIT_FOLDER_NAMES", "split_folders", "assign_splits", "announce_random_split",
           "announce_no_validation"]

# Folder (or list) names each split goes by in the layouts users keep (ultralytics and
# Roboflow write "valid", torchvision-style sets "validation").
SPLIT_FOLDER_NAMES: Mapping[str, tuple[str, ...]] = {
    "train": ("train", "training"),
    "val": ("val", "valid", "validation"),
    "test": ("test", "testing"),
}


def split_of_name(name: str) -> str | None:
    """The split ("train", "val", "test") a folder or file name stands for, or None."""
    lowered = name.lower()
    for split, names in SPLIT_FOLDER_NAMES.items():
        if lowered in names:
            return split
    return None


def split_folders(directory: str) -> dict[str, str] | None:
    """`{split: folder}` when `directory` holds split folders (a `train/` among them and
    nothing but split folders), else None.

    Raises:
        DataError: if two folders name one split (e.g. `val/` and `valid/`), or the
            folders are split folders without `train/` (e.g. only `test/`).
    """
    if not os.path.isdir(directory):
        return None
    with os.scandir(directory) as entries:
        folders = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    found: dict[str, str] = {}
    for name in folders:
        split = split_of_name(name)
        if split is None:
            return None
        if split in found:
            raise DataError(f"Expected one folder per split in {directory!r}; received "
                            f"{found[split]!r} and {name!r} for the {split} split.")
        found[split] = name
    if "train" not in found:
        if found:
            raise DataError(f"{directory!r} holds only the split folder(s) "
                            f"{sorted(found.values())}; expected a train/ folder next to "
                            "them (a model is trained on train/; val/ and test/ are held "
                            "out).")
        return None
    return {split: os.path.join(directory, name) for split, name in found.items()}


def announce_no_validation(source: str, splits: Sequence[str]) -> None:
    """Prints that the user's split has no validation part, so none is made up: nothing
    is validated during training (no val_loss for early stopping or best checkpoints)."""
    print(f"visionkit: {source}: the given split has {', '.join(splits)} but no "
          "validation part; training runs without validation (none is taken from train). "
          "Add a val/ split to validate.")


def announce_random_split(source: str, count: int, validation_split: float,
                          seed: int | None, val_count: int) -> None:
    """Prints, once per data set, that a random validation split was made (nothing when
    `validation_split` is 0: the user asked for no validation)."""
    if validation_split <= 0:
        return
    print(f"visionkit: {source}: no validation split given; holding out a seeded random "
          f"{validation_split:.0%} ({val_count} of {count} examples, seed={seed}) for "
          "validation. Give your own split (train/val folders, a list or file per split) "
          "to have it used exactly.")


def assign_splits(count: int, strata: Sequence[int] | np.ndarray, given: Sequence[str] | None,
                  validation_split: float, seed: int | None, source: str
                  ) -> dict[str, np.ndarray]:
    """Indices of the train, val and test examples.

    Args:
        count: number of examples.
        strata: per example, the label a random split stratifies by.
        given: per example, the split the user gave ("train", "val", "test"), or None
            when the user gave no split.
        validation_split: the random fraction held out when `given` is None.
        seed: seed of the random split.
        source: names the data set in the printed message.

    Returns:
        `{"train": int64 [n], "val": int64 [m], "test": int64 [t]}` sorted indices.
    """
    if given is not None:
        given = np.asarray(given, dtype=object)
        if not (given == "val").any():
            announce_no_validation(source, sorted(set(given.tolist())))
        return {split: np.flatnonzero(given == split).astype(np.int64)
                for split in ("train", "val", "test")}
    train, val = split_indices(np.asarray(strata), validation_split, seed)
    announce_random_split(source, count, validation_split, seed, len(val))
    return {"train": train, "val": val, "test": np.zeros(0, np.int64)}
