"""Where a classifier is wrong: a confusion matrix whose cells open the images behind them.

`error_analysis` writes, into the report's folder, an HTML fragment for the report page
and one page per non-empty confusion-matrix cell (`cells/true_<i>_pred_<j>.html`) showing
the validation images of that cell with their Grad-CAM overlays. Every link and picture
is relative, so the folder opens from disk and can be moved or zipped as a whole.

Example:

>>> import tempfile, visionkit as vk
>>> data = vk.data.digits(image_size=(16, 16), batch_size=16, seed=0).take(32, 48)
>>> model = vk.models.build("simple_cnn", (16, 16, 3), 10, filters=(4, 8))
>>> analysis = error_analysis(model, data, tempfile.mkdtemp(), per_cell=2)
>>> int(analysis.matrix.sum())
48
"""

from __future__ import annotations

import dataclasses
import html
import os
import warnings
from typing import Any

import keras
import numpy as np

from visionkit import plot
from visionkit.vocabulary import get_task

__all__ = ["ErrorAnalysis", "cell_page_name", "error_analysis"]

_CELL_DIR = "cells"


@dataclasses.dataclass
class ErrorAnalysis:
    """The result of `error_analysis`.

    Attributes:
        matrix: int64 `[K, K]` confusion matrix, rows the true class, columns the predicted.
        labels: int `[N]` true classes of the analysed validation images.
        predicted: int `[N]` predicted classes.
        html: the fragment for the report page (a table linking each non-empty cell).
        cell_pages: relative path of each cell's page, keyed by `(true, predicted)`.
    """

    matrix: np.ndarray
    labels: np.ndarray
    predicted: np.ndarray
    html: str
    cell_pages: dict[tuple[int, int], str]


def cell_page_name(true: int, predicted: int) -> str:
    """Relative path of the page of cell `(true, predicted)`."""
    return f"{_CELL_DIR}/true_{true}_pred_{predicted}.html"


def _collect(data: Any, limit: int) -> tuple[np.ndarray, np.ndarray]:
    dataset = data.val if data.val is not None else data.train
    images, labels, count = [], [], 0
    for batch_images, batch_labels in dataset:
        images.append(np.asarray(batch_images))
        labels.append(np.asarray(batch_labels))
        count += len(images[-1])
        if count >= limit:
            break
    if not count:
        split = "validation" if data.val is not None else "training"
        raise ValueError(f"The error analysis needs validation images; the {split} split "
                         "of data holds none.")
    return np.concatenate(images)[:limit], _class_ids(np.concatenate(labels)[:limit])


def _class_ids(labels: np.ndarray) -> np.ndarray:
    """Integer labels `[N]`; one-hot rows `[N, K]` (label_mode "categorical") become
    their class ids, anything else is returned as it is (and refused by the caller)."""
    if (labels.ndim == 2 and labels.shape[1] > 1 and np.all((labels == 0) | (labels == 1))
            and np.all(labels.sum(axis=1) == 1)):
        return labels.argmax(axis=1)
    return labels


def predicted_classes(model: keras.Model, images: np.ndarray,
                      batch_size: int = 64) -> tuple[np.ndarray, int]:
    """The classifier's predicted class `[N]` and its number of classes.

    A model with one output unit is binary: class 1 where a sigmoid unit is above 0.5,
    or a linear unit (a logit) above 0; `[B, K]` outputs take the largest column.
    """
    from visionkit.interpret.adapter import output_head

    outputs = np.concatenate([np.asarray(model(images[i:i + batch_size], training=False),
                                         np.float64)
                              for i in range(0, len(images), batch_size)])
    if outputs.ndim != 2:
        raise ValueError(f"The error analysis needs a classifier with outputs [batch, "
                         f"classes]; model {model.name!r} gives {outputs.shape[1:]}.")
    if outputs.shape[1] == 1:
        threshold = 0.5 if output_head(model).binary else 0.0
        return (outputs[:, 0] > threshold).astype(np.int64), 2
    return outputs.argmax(axis=-1), int(outputs.shape[1])


def error_analysis(model: keras.Model, data: Any, out_dir: str | os.PathLike,
                   max_images: int = 1000, per_cell: int = 12, batch_size: int = 64,
                   ) -> ErrorAnalysis:
    """Confusion matrix of a classifier on validation images, each cell a page of images.

    Args:
        model: a classifier (probabilities or logits `[B, K]`).
        data: a classification `visionkit.data.Data` (its validation split, else train).
        out_dir: the report's folder; cell pages go to `out_dir/cells/`.
        max_images: validation images analysed (the first ones). Defaults to 1000.
        per_cell: images shown (with Grad-CAM) on each cell's page; the page says how
            many the cell holds. Defaults to 12.
        batch_size: images per forward pass. Defaults to 64.

    Returns:
        An `ErrorAnalysis`.

    Raises:
        ValueError: when `data` is not a classification set with integer labels `[N]`.
    """
    from visionkit.interpret.attributions import grad_cam

    task = getattr(data, "task", None)
    if task is not None and not get_task(task).single_label:
        raise ValueError(f"The error analysis needs a classification data set; received "
                         f"one of task {task.name!r}.")
    images, labels = _collect(data, int(max_images))
    if labels.ndim != 1:
        raise ValueError(f"The error analysis needs one integer label per image [N]; "
                         f"received labels of shape {labels.shape}.")
    predicted, outputs = predicted_classes(model, images, batch_size)
    names = list(getattr(data, "class_names", []) or [])
    classes = max(outputs, len(names), int(labels.max()) + 1)
    names = names + [str(i) for i in range(len(names), classes)]
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(labels, predicted, labels=np.arange(classes))
    os.makedirs(os.path.join(out_dir, _CELL_DIR), exist_ok=True)
    cells = [(t, p) for t in range(classes) for p in range(classes) if matrix[t, p]]
    shown = {cell: np.flatnonzero((labels == cell[0]) & (predicted == cell[1]))[:per_cell]
             for cell in cells}
    chosen = np.concatenate([shown[c] for c in cells]) if cells else np.zeros(0, int)
    target = predicted[chosen]
    if int(model.outputs[0].shape[-1]) == 1:  # one unit: class 1 is its score, class 0 minus it
        from visionkit.interpret.adapter import output_head
        from visionkit.interpret.targets import ClassScore

        target = ClassScore(target, binary=True,
                            from_logits=not output_head(model).binary)
    cams = grad_cam(model, images[chosen], target=target) if len(chosen) else None
    position = {int(index): row for row, index in enumerate(chosen)}
    pages = {}
    for true, pred in cells:
        indices = shown[(true, pred)]
        stem = f"true_{true}_pred_{pred}"
        rows = [position[int(i)] for i in indices]
        plot.heatmap_overlays(images[indices], {"Grad-CAM (predicted class)": cams[rows]},
                              [f"#{int(i)}: true {names[true]} / pred {names[pred]}"
                               for i in indices],
                              os.path.join(out_dir, _CELL_DIR, f"{stem}.png"))
        pages[(true, pred)] = cell_page_name(true, pred)
        count = int(matrix[true, pred])
        title = f"True {names[true]}, predicted {names[pred]}"
        page = (f"<!doctype html>\n<html><head><meta charset='utf-8'><title>"
                f"{html.escape(title)}</title></head><body>\n<p><a href=\"../index.html\">"
                f"Back to the report</a></p>\n<h1>{html.escape(title)}</h1>\n<p>{count} "
                f"validation image(s) in this cell; the first {len(indices)} are shown "
                f"(validation index, image, Grad-CAM of the predicted class).</p>\n"
                f'<img src="{stem}.png" alt="{html.escape(title)}" style="max-width:100%">'
                f"\n</body></html>\n")
        with open(os.path.join(out_dir, pages[(true, pred)]), "w", encoding="utf-8") as f:
            f.write(page)
    fragment = _matrix_table(matrix, names, pages)
    if len(images) < 2:
        warnings.warn(f"The error analysis saw only {len(images)} validation image(s).",
                      stacklevel=2)
    return ErrorAnalysis(matrix, labels, predicted, fragment, pages)


def _matrix_table(matrix: np.ndarray, names: list[str], pages: dict) -> str:
    total = max(int(matrix.sum()), 1)
    header = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    rows = []
    for true, name in enumerate(names):
        cells = []
        for pred in range(len(names)):
            count = int(matrix[true, pred])
            share = count / max(int(matrix[true].sum()), 1)
            colour = (f"rgba(40,160,60,{share:.2f})" if true == pred
                      else f"rgba(220,40,40,{share:.2f})")
            text = (f'<a href="{pages[(true, pred)]}" title="true {html.escape(name)}, '
                    f'predicted {html.escape(names[pred])}">{count}</a>'
                    if (true, pred) in pages else "0")
            cells.append(f'<td style="background:{colour}">{text}</td>')
        rows.append(f"<tr><th>{html.escape(name)}</th>{''.join(cells)}</tr>")
    accuracy = np.trace(matrix) / total
    return (f"<p>{total} validation images, accuracy {accuracy:.3f}. Rows: true class; "
            f"columns: predicted class. Each count opens the images of that cell with "
            f"their Grad-CAM overlays.</p>\n<table class=\"confusion\"><tr><th>true \\ "
            f"pred</th>{header}</tr>\n" + "\n".join(rows) + "\n</table>")
