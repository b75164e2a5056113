"""How the values stored in mask files become class ids: the conventions users keep.

A mask file stores 8-bit values. visionkit's pipelines carry class ids with 255 as
"ignore" (DESIGN.md). Between the two sits a 256-entry table (`value_table`), applied in
the graph with one `tf.gather`:

- class-id masks: value k is class k (the default); `ignore_index=k` marks another value
  than 255 as void (Cityscapes writes 0 or 255, ADE20K 0, others their own id).
- `value_map={stored: class id}`: masks whose values are not class ids (grey levels
  spread for viewing, e.g. 0/85/170/255, or ids with gaps).
- binary masks stored as 0/255 (the most common way, and what a 1-bit PNG decodes to)
  are background (0) / foreground (1), said in a warning. Read literally, 255 would be
  "ignore" and every object pixel left out of training.

The table is chosen from every mask's histogram before training, and a class count
inferred from masks that looks wrong (many ids but few of them present, or ids covering
almost no pixels) is an error naming files, values and the likely cause.

Example:

>>> table = value_table({0: 10, 255: 5}, ignore_index=255, value_map=None,
...                     binary=True)
>>> table[[0, 255]].tolist()
[0, 1]
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np

from visionkit.errors import DataError, DataWarning
from visionkit.vocabulary import IGNORE_INDEX

__all__ = ["IGNORE_INDEX", "value_table", "is_binary", "check_inferred_classes"]

# An inferred class count this large or larger is checked for gaps and specks.
SUSPICIOUS_CLASS_COUNT = 10
# A class covering less than this share of all mask pixels is a "speck" class.
SPECK_SHARE = 1e-3
# How many values / files a message lists.
_LISTED = 10


def is_binary(histogram: Mapping[int, int]) -> bool:
    """Masks holding only 0 and 255 (both present): a binary mask written as 0/255."""
    return set(histogram) == {0, 255}


def value_table(histogram: Mapping[int, int], ignore_index: int,
                value_map: Mapping[int, int] | None, binary: bool) -> np.ndarray:
    """int32 `[256]`: the class id (or 255 = ignore) of every stored value."""
    table = np.arange(256, dtype=np.int32)
    if value_map is not None:
        table[:] = IGNORE_INDEX
        for stored, class_id in value_map.items():
            table[int(stored)] = int(class_id)
    elif binary:
        table[255] = 1
    if ignore_index != IGNORE_INDEX or value_map is not None:
        table[int(ignore_index)] = IGNORE_INDEX
    return table


def check_value_map(value_map: Mapping[int, int] | None, ignore_index: int) -> None:
    if not 0 <= int(ignore_index) <= 255:
        raise ValueError(f"Expected ignore_index in 0..255 (a value of 8-bit masks); "
                         f"received ignore_index={ignore_index!r}.")
    if value_map is None:
        return
    for stored, class_id in value_map.items():
        if not 0 <= int(stored) <= 255 or not (0 <= int(class_id) < 255
                                                or int(class_id) == IGNORE_INDEX):
            raise ValueError("Expected value_map as {stored value 0..255: class id 0..254 "
                             f"(or 255 = ignore)}}; received the entry {stored!r}: "
                             f"{class_id!r}.")


def unmapped_values(per_file: Mapping[str, Mapping[int, int]],
                    value_map: Mapping[int, int], ignore_index: int
                    ) -> list[tuple[str, str]]:
    """`(file, reason)` for masks holding values that `value_map` does not list."""
    known = set(int(k) for k in value_map) | {int(ignore_index)}
    bad = []
    for file, histogram in per_file.items():
        unknown = sorted(set(histogram) - known)
        if unknown:
            bad.append((file, f"values {unknown[:_LISTED]} are not in value_map"))
    return bad


def warn_binary(count: int, stacklevel: int = 3) -> None:
    warnings.warn(
        f"All {count} masks hold only the values 0 and 255: read as binary masks, 0 = "
        "background (class 0), 255 = foreground (class 1). Pass ignore_index=255 with "
        "class_names to read 255 as 'ignore' instead, or value_map= to say what each value "
        "means.", DataWarning, stacklevel=stacklevel)


def check_inferred_classes(per_file: Mapping[str, Mapping[int, int]], table: np.ndarray
                           ) -> None:
    """Raises when a class count inferred from the masks looks wrong.

    Two signs: ids with large gaps (e.g. 0, 85, 170: grey levels spread for viewing,
    which would make 171 classes) and many ids that each cover almost no pixels (masks
    resized with interpolation or saved lossy, whose edges blend classes).

    Raises:
        DataError: naming the values, the files holding them and the likely cause.
    """
    totals: dict[int, int] = {}
    where: dict[int, list[str]] = {}
    for file, histogram in per_file.items():
        for value, count in histogram.items():
            class_id = int(table[value])
            if class_id == IGNORE_INDEX:
                continue
            totals[class_id] = totals.get(class_id, 0) + int(count)
            where.setdefault(class_id, []).append(file)
    if not totals:
        return
    inferred = max(totals) + 1
    if inferred < SUSPICIOUS_CLASS_COUNT:
        return
    present = sorted(totals)
    if len(present) * 2 <= inferred:
        files = sorted({f for v in present if v for f in where[v]})[:_LISTED]
        suggestion = {v: i for i, v in enumerate(present)}
        raise DataError(
            f"The masks would give {inferred} classes (largest value {inferred - 1}) but only "
            f"{len(present)} values occur: {present[:_LISTED]}, in files {files}. Likely "
            "cause: class ids scaled to grey levels for viewing. Pass value_map= (e.g. "
            f"value_map={suggestion if len(suggestion) <= _LISTED else '{...}'}) or "
            "class_names= for the classes meant.")
    pixels = sum(totals.values())
    specks = [v for v in present if totals[v] / pixels < SPECK_SHARE]
    if len(specks) * 2 >= len(present):
        files = sorted({f for v in specks for f in where[v]})[:_LISTED]
        raise DataError(
            f"The masks hold {len(present)} values, {len(specks)} of them each covering less "
            f"than {SPECK_SHARE:.1%} of the pixels (e.g. {specks[:_LISTED]}), in files {files}. "
            "Likely cause: masks resized with interpolation or saved lossy, so edges blend "
            "class ids. Re-save the masks with nearest-neighbour resizing as PNG, or pass "
            "class_names= / value_map= for the classes meant.")
