"""One HTML page with pictures of what a model learned, PNGs beside it.

Example:

>>> import tempfile, visionkit as vk
>>> data = vk.data.digits(image_size=(16, 16), batch_size=16, seed=0).take(32, 48)
>>> model = vk.models.build("simple_cnn", (16, 16, 3), 10, filters=(4, 8))
>>> out = tempfile.mkdtemp()
>>> path = report(model, data, out, images=2, filter_steps=2, dream_steps=1, progress=False)
>>> path.endswith("index.html")
True
"""

from __future__ import annotations

import html
import os
import time
import urllib.parse
from typing import Any

import keras
import numpy as np

from visionkit import plot
from visionkit.interpret.activations import activations, weights
from visionkit.interpret.attributions import grad_cam
from visionkit.interpret.dream import deep_dream
from visionkit.interpret.embed import embed
from visionkit.interpret.error_analysis import error_analysis
from visionkit.interpret.filters import filters as maximize_filters
from visionkit.interpret.layers import cam_layer, conv_layer_names, pooled_feature_layer
from visionkit.interpret.occlusion import occlusion
from visionkit.interpret.targets import resolve_target
from visionkit.vocabulary import get_task

__all__ = ["report"]

_FILTERS_SHOWN = 16  # filters per grid (one optimized batch)
_FILTER_BLUR_EVERY = 4  # the filter grids are blurred every this many ascent steps


def _validation_images(data: Any, count: int) -> tuple[np.ndarray, np.ndarray | None]:
    dataset = data.val if data.val is not None else data.train
    images, labels = [], []
    for batch_images, batch_targets in dataset:
        images.append(np.asarray(batch_images))
        if not isinstance(batch_targets, dict):
            labels.append(np.asarray(batch_targets))
        if sum(len(b) for b in images) >= count:
            break
    image_array = np.concatenate(images)[:count]
    label_array = np.concatenate(labels)[:count] if labels else None
    if label_array is not None:
        from visionkit.interpret.error_analysis import _class_ids

        label_array = _class_ids(label_array)
    return image_array, label_array


def report(model: keras.Model, data: Any, out_dir: str | os.PathLike, images: int = 8,
           patch_size: int | None = None, filter_steps: int = 64, dream_steps: int = 20,
           embed_points: int = 2000, progress: bool = True, comparison: Any = None,
           error_images: int = 1000, per_cell: int = 12) -> str:
    """Writes an interpretation report: `index.html` and its PNGs in `out_dir`.

    For a classifier the page opens with an error analysis: the confusion matrix of the
    validation images, each cell linking to a page of its images with their Grad-CAM
    overlays, and the t-SNE marks the misclassified points. The page shows occlusion and Grad-CAM overlays on validation images, the first
    convolution's kernels, averaged activations of every convolution layer, grids of
    filters of the middle and last convolution layers maximized by gradient ascent, a
    DeepDream of a validation image and the t-SNE of the pooled features.

    Args:
        model: the model to explain (any task the targets support).
        data: a `visionkit.data.Data` (its validation split is used).
        out_dir: output folder (created).
        images: validation images in the overlays. Defaults to 8.
        patch_size: occlusion patch. Defaults to an eighth of the image side (at least 2).
        filter_steps: ascent steps of the filter grids. Defaults to 64.
        dream_steps: DeepDream steps per octave. Defaults to 20.
        embed_points: at most this many validation images in the t-SNE. Defaults to 2000.
        progress: print one line per section, and progress bars inside the long
            ones. Defaults to True.
        comparison: an attribution comparison (any object with a `.to_html()` that
            returns an HTML table fragment, such as `visionkit.interpret.compare`'s
            result), shown as a metrics table. Defaults to None.
        error_images: validation images in the confusion matrix. Defaults to 1000.
        per_cell: images shown on each confusion cell's page. Defaults to 12.

    Returns:
        The path of `index.html`.
    """
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)

    sections: list[tuple[str, str, str]] = []
    fragments: list[tuple[str, str]] = []  # (title, HTML) shown before the pictures
    steps = 8

    def say(index: int, text: str) -> float:
        if progress:
            print(f"report [{index}/{steps}] {text}", flush=True)
        return time.perf_counter()

    def add(title: str, filename: str, caption: str) -> None:
        sections.append((title, filename, caption))

    val_images, val_labels = _validation_images(data, images)
    target = resolve_target(model, None, getattr(data, "task", None))
    names = list(getattr(data, "class_names", []) or [])
    outputs = model(val_images, training=False)
    predicted = np.asarray(target.classes(target.prepare(outputs)))

    def name(i: int) -> str:
        return names[i] if 0 <= i < len(names) else str(i)

    titles = [(f"true {name(int(t))} / " if val_labels is not None and val_labels.ndim == 1
               else "") + f"pred {name(int(p))}" for t, p in
              zip(val_labels if val_labels is not None else predicted, predicted)]
    side = min(val_images.shape[1:3])
    patch = patch_size or max(2, side // 8)

    analysis = None
    say(1, "error analysis")
    if is_classification(data, val_labels):
        analysis = error_analysis(model, data, out_dir, max_images=error_images,
                                  per_cell=per_cell)
        fragments.append(("Where the model is wrong", analysis.html))
    if comparison is not None:
        if not callable(getattr(comparison, "to_html", None)):
            raise TypeError(f"Expected comparison with a to_html() method (the result of "
                            f"visionkit.interpret.compare); received "
                            f"{type(comparison).__name__}.")
        fragments.append(("Attribution methods compared", str(comparison.to_html())))

    say(2, "occlusion and Grad-CAM")
    maps = {"occlusion": occlusion(model, val_images, patch_size=patch,
                                   stride=max(1, patch // 2), task=getattr(data, "task", None),
                                   verbose=progress),
            "Grad-CAM": grad_cam(model, val_images, task=getattr(data, "task", None))}
    plot.heatmap_overlays(val_images, maps, titles, os.path.join(out_dir, "overlays.png"))
    add("Occlusion and Grad-CAM", "overlays.png",
        f"Each row: a validation image, then where hiding a {patch}x{patch} patch lowers the "
        "predicted class's score most (occlusion), and Grad-CAM of the last spatial layer.")

    convs = conv_layer_names(model)
    say(3, "first-layer weights")
    if convs:
        kernels = weights(model)
        plot.image_grid(kernels, path=os.path.join(out_dir, "weights.png"),
                        title=f"{convs[0]} kernels", cmap="gray")
        add("First-layer weights", "weights.png",
            f"The {len(kernels)} kernels of {convs[0]!r}, each scaled to its own range.")

    say(4, "activations")
    chosen = convs[:: max(1, len(convs) // 4)][:4] if convs else []
    if chosen:
        maps_by_layer = activations(model, val_images[:1], chosen)
        # Mean magnitude over channels: conv outputs before their activation are signed,
        # and their plain mean cancels out.
        tiles = [val_images[0]] + [np.abs(maps_by_layer[n][0]).mean(axis=-1) for n in chosen]
        plot.image_grid(tiles, ["image"] + chosen, os.path.join(out_dir, "activations.png"),
                        columns=len(tiles))
        add("Activations", "activations.png",
            "The first validation image and the mean magnitude over channels of the "
            "feature maps of "
            f"{', '.join(chosen)}.")

    say(5, "filters (activation maximization)")
    for layer in dict.fromkeys([convs[len(convs) // 2], convs[-1]] if convs else []):
        count = min(_FILTERS_SHOWN, int(model_layer_channels(model, layer)))
        # Blurring every few steps trades about two thirds of the activation for
        # patterns a person can read; unblurred, they are pixel-level colour noise.
        pictures = maximize_filters(model, layer, range(count), steps=filter_steps,
                                    blur_every=_FILTER_BLUR_EVERY, verbose=progress)
        filename = f"filters_{layer.replace('/', '_')}.png"
        plot.image_grid(pictures, [str(i) for i in range(count)],
                        os.path.join(out_dir, filename), title=f"{layer}: filters 0-{count - 1}")
        add(f"Filters of {layer}", filename,
            f"Images optimized together in one batch, image i maximizing filter i of "
            f"{layer!r} ({filter_steps} normalized gradient-ascent steps with jitter, blurred every "
            f"{_FILTER_BLUR_EVERY} steps).")

    say(6, "DeepDream")
    if convs:
        start = val_images[0]
        upscaled = np.repeat(np.repeat(start, 2, 0), 2, 1)
        octaves = 3
        try:
            dream = deep_dream(model, upscaled, layers=convs[-1:], octaves=octaves,
                               steps=dream_steps, verbose=progress)
        except ValueError:
            # Models whose layers join maps of several strides (a detector's feature
            # pyramid) take only multiples of their input size: one octave, in tiles of
            # exactly that size.
            octaves = 1
            dream = deep_dream(model, upscaled, layers=convs[-1:], octaves=octaves,
                               steps=dream_steps, tile_size=min(start.shape[:2]),
                               verbose=progress)
        plot.image_grid([start, dream], ["image", f"DeepDream of {convs[-1]}"],
                        os.path.join(out_dir, "dream.png"), columns=2, tile_inches=3.0)
        add("DeepDream", "dream.png", f"Gradient ascent on the mean activation of "
            f"{convs[-1]!r} over {octaves} octave(s), from a validation image upscaled 2x.")

    say(7, "t-SNE of the features")
    dataset = data.val if data.val is not None else data.train
    try:
        feature_layer = pooled_feature_layer(model)
    except ValueError:  # no pooled features (a detector): average Grad-CAM's layer
        feature_layer = cam_layer(model)
    embedding = embed(model, dataset, layer=feature_layer, max_points=embed_points,
                      verbose=progress)
    wrong = misclassified_points(model, embedding) if analysis is not None else None
    plot.embedding_scatter(embedding.points, embedding.labels, embedding.images, names or None,
                           path=os.path.join(out_dir, "tsne.png"), misclassified=wrong,
                           title=f"t-SNE of {embedding.layer} features, trustworthiness "
                                 f"{embedding.trustworthiness:.3f} (k=10)")
    add("t-SNE", "tsne.png", f"{len(embedding.points)} validation images; features of "
        f"{embedding.layer!r}, PCA to 50 dimensions, t-SNE (openTSNE). Trustworthiness "
        f"{embedding.trustworthiness:.3f}." + (
            f" Crosses: the {int(wrong.sum())} misclassified images." if wrong is not None
            else ""))

    say(8, "HTML page")
    body = "".join(f"<h2>{html.escape(t)}</h2>\n{fragment}\n" for t, fragment in fragments)
    body += "\n".join(f"<h2>{html.escape(t)}</h2>\n<p>{html.escape(c)}</p>\n"
                     f'<img src="{image_source(f)}" alt="{html.escape(t)}">'
                     for t, f, c in sections)
    page = (f"<!doctype html>\n<html><head><meta charset='utf-8'><title>visionkit report: "
            f"{html.escape(model.name)}</title><style>body{{font-family:sans-serif;"
            f"max-width:1100px;margin:auto}}img{{max-width:100%}}table{{border-collapse:collapse}}"
            f"td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}</style></head><body>\n"
            f"<h1>What {html.escape(model.name)} learned</h1>\n{body}\n</body></html>\n")
    path = os.path.join(out_dir, "index.html")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(page)
    return path


def image_source(filename: str) -> str:
    """`filename` as an HTML attribute value that a browser resolves to that file: a
    layer name may put a space, '#', '?' or '%' in a picture's name, which an unquoted
    link would cut short (a '#' starts a fragment)."""
    return html.escape(urllib.parse.quote(filename))


def is_classification(data: Any, labels: np.ndarray | None) -> bool:
    """True for a classification set with one integer label per image."""
    task = getattr(data, "task", None)
    return bool(task is not None and get_task(task).single_label
                and labels is not None and labels.ndim == 1)


def misclassified_points(model: keras.Model, embedding: Any, batch_size: int = 64) -> np.ndarray:
    """bool `[N]`: the embedded images whose predicted class differs from their label."""
    from visionkit.interpret.error_analysis import predicted_classes

    predicted, _ = predicted_classes(model, np.asarray(embedding.images), batch_size)
    return (predicted != np.asarray(embedding.labels)) & (np.asarray(embedding.labels) >= 0)


def model_layer_channels(model: keras.Model, layer: str) -> int:
    """Channels of a layer's output (nested layers included; a channels-first map's too)."""
    from visionkit.interpret.adapter import adapt

    adapter = adapt(model, require_output=False)
    return int(adapter.map_shape(adapter.find_layer(layer))[-1])
