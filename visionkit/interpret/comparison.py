"""Attribution methods side by side on the faithfulness and sanity metrics.

`compare(model, images, methods=[...], metrics=[...])` computes each method's maps for
the same images and the same target (fixed to the trained model's choice on the
originals), scores them with `vk.interpret.metrics`, prints a table, optionally writes a
bar chart, and returns a `Comparison`.

The `Comparison` interface is what other parts of visionkit (the HTML report's
`comparison=` argument) rely on:

- `rows`: a list of dicts, one per (method, metric), with exactly the keys `method`
  (str), `metric` (str), `value` (float, the mean over the images) and `n_images` (int);
- `to_html()`: an HTML fragment (`<table class="comparison">` and a note naming each
  metric's direction and fill), safe to embed in a page;
- `notes`: `{metric: description}` (direction, fill, levels); `maps`: `{method: [B, H, W]}`.

Example:

>>> import numpy as np, visionkit as vk
>>> model = vk.models.build("simple_cnn", (16, 20, 3), 3, filters=(4, 8))
>>> images = np.random.default_rng(0).uniform(0, 255, (2, 16, 20, 3)).astype("float32")
>>> result = vk.interpret.compare(model, images, methods=["grad_cam", "random"],
...                               metrics=["deletion", "sparseness"], steps=4, verbose=0)
>>> sorted(result.rows[0])
['method', 'metric', 'n_images', 'value']
>>> len(result.rows), result.to_html().startswith("<table")
(4, True)
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from visionkit.interpret import metrics as faithfulness
from visionkit.interpret.adapter import adapt
from visionkit.interpret.checks import ArgumentError
from visionkit.plot._figure import new_figure, save

__all__ = ["METHODS", "METRICS", "Comparison", "compare"]


def _attribution(name: str) -> Callable:
    def run(model, images, target=None, task=None, output=None, **arguments):
        import visionkit.interpret as interpret

        function = getattr(interpret, name)
        extra = {} if name == "eigen_cam" else {"target": target, "task": task}
        if name == "occlusion":
            extra["verbose"] = 0
        maps = function(model, images, output=output, **extra, **arguments)
        return np.abs(maps).sum(axis=-1) if maps.ndim == 4 else maps
    run.__name__ = name
    return run


# Methods by name: vk.interpret's attribution functions and the two model-free baselines.
METHODS: dict[str, Callable] = {
    name: _attribution(name) for name in (
        "grad_cam", "grad_cam_plus_plus", "hires_cam", "layer_cam", "score_cam", "eigen_cam",
        "saliency", "integrated_gradients", "occlusion")}
METHODS["random"] = lambda model, images, **_: faithfulness.random_map(images)
METHODS["edges"] = lambda model, images, **_: faithfulness.edge_map(images)

# Metrics by name, with the direction that means "more faithful" (or sparser).
METRICS = {"deletion": "lower", "insertion": "higher", "road_morf": "lower",
           "road_lerf": "higher", "sparseness": "higher", "pointing_game": "higher",
           "randomization": "lower"}


@dataclass
class Comparison:
    """Methods against metrics, one row per pair.

    Attributes:
        rows: list of dicts `{"method", "metric", "value", "n_images"}` (value: the mean
            over the images).
        notes: `{metric: description}`: which direction is better, the fill and levels.
        maps: `{method: float NumPy [B, H, W]}` the maps scored.
        plot_path: the bar chart written, or None.
    """

    rows: list[dict]
    notes: dict[str, str] = field(default_factory=dict)
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    plot_path: str | None = None

    def value(self, method: str, metric: str) -> float:
        """The value of one pair.

        Raises:
            KeyError: naming the pair when it was not computed.
        """
        for row in self.rows:
            if row["method"] == method and row["metric"] == metric:
                return row["value"]
        raise KeyError(f"No row for method {method!r} and metric {metric!r}.")

    def _grid(self) -> tuple[list[str], list[str]]:
        methods = list(dict.fromkeys(row["method"] for row in self.rows))
        metric_names = list(dict.fromkeys(row["metric"] for row in self.rows))
        return methods, metric_names

    def table(self) -> str:
        """A plain-text table: methods as rows, metrics as columns."""
        methods, metric_names = self._grid()
        width = max([len(m) for m in methods] + [6])
        header = "method".ljust(width) + "".join(f"{m:>15}" for m in metric_names)
        lines = [header]
        for method in methods:
            cells = "".join(f"{self.value(method, m):>15.4f}" for m in metric_names)
            lines.append(method.ljust(width) + cells)
        images = self.rows[0]["n_images"] if self.rows else 0
        lines.append(f"({images} images)")
        lines += [f"{name}: {note}" for name, note in self.notes.items()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def to_html(self) -> str:
        """An HTML fragment: the table (`class="comparison"`) and the metrics' notes."""
        methods, metric_names = self._grid()
        head = "".join(f"<th>{html.escape(m)}</th>" for m in metric_names)
        body = "".join(
            f"<tr><th>{html.escape(method)}</th>" +
            "".join(f"<td>{self.value(method, m):.4f}</td>" for m in metric_names) + "</tr>"
            for method in methods)
        images = self.rows[0]["n_images"] if self.rows else 0
        notes = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>"
                        for k, v in self.notes.items())
        return (f'<table class="comparison"><caption>Attribution methods on {images} '
                f"images</caption><thead><tr><th>method</th>{head}</tr></thead><tbody>"
                f'{body}</tbody></table>\n<ul class="comparison-notes">{notes}</ul>')

    def plot(self, path: str | os.PathLike | None = None):
        """A bar chart, one panel per metric; written to `path` (PNG) when given.

        Returns:
            The path written, or the matplotlib Figure when `path` is None.
        """
        methods, metric_names = self._grid()
        figure = new_figure(3.2 * max(1, len(metric_names)), 0.35 * len(methods) + 1.6)
        for index, metric in enumerate(metric_names):
            axes = figure.add_subplot(1, len(metric_names), index + 1)
            values = [self.value(m, metric) for m in methods]
            axes.barh(range(len(methods)), values, color="#4c72b0")
            axes.set_yticks(range(len(methods)), methods if index == 0 else [""] * len(methods))
            axes.invert_yaxis()
            axes.set_title(f"{metric} ({METRICS.get(metric, '')} is better)", fontsize=9)
        return save(figure, path)


_CURVE_ARGUMENTS = {"value", "sigma", "noise", "seed", "jit_compile"}


def _methods(methods: Sequence) -> list[tuple[str, Callable]]:
    resolved = []
    for method in methods:
        if isinstance(method, str):
            if method not in METHODS:
                raise ArgumentError("methods", f"Expected method names from {sorted(METHODS)} "
                                    f"or callables; received {method!r}.")
            resolved.append((method, METHODS[method]))
        elif isinstance(method, tuple) and len(method) == 2 and callable(method[1]):
            resolved.append((str(method[0]), method[1]))
        elif callable(method):
            resolved.append((getattr(method, "__name__", repr(method)), method))
        else:
            raise ArgumentError("methods", f"Expected a method name, a callable or a (name, "
                                f"callable) pair; received {method!r}.")
    if not resolved:
        raise ArgumentError("methods", "Expected at least one method; received none.")
    return resolved


def compare(model: keras.Model, images: Any, methods: Sequence = ("grad_cam", "occlusion",
                                                                     "random", "edges"),
            metrics: Sequence[str] = ("deletion", "insertion", "sparseness"),
            target: Any = None, masks: Any = None, fill: str = "blur", steps: int = 20,
            batch_size: int = 256, path: str | os.PathLike | None = None,
            task: Any = None, output: str | int | None = None, verbose: int = 1,
            **metric_arguments: Any) -> Comparison:
    """Scores attribution methods on faithfulness and sanity metrics.

    Args:
        model: a Keras model (classifier, segmenter or detector).
        images: `[B, H, W, C]` raw pixels.
        methods: names from `METHODS` (vk.interpret's attribution functions, "random"
            and "edges", the Sobel baseline), callables
            `method(model, images, target=...) -> [B, H, W]` (also given `task=` and
            `output=` when those are set), or
            `(name, callable)` pairs. Defaults to Grad-CAM, occlusion, random, edges.
        metrics: names from `METRICS`: "deletion", "insertion" (AUC, with `fill`),
            "road_morf", "road_lerf", "sparseness" (Gini), "pointing_game" (needs
            `masks`), "randomization" (mean Spearman correlation with the trained
            model's maps once every layer is randomized). Defaults to deletion,
            insertion, sparseness.
        target: class id(s) or None: the model's choice on the originals, the same for
            every method.
        masks: `[B, H, W]` object masks for the pointing game. Defaults to None.
        fill: the deletion/insertion fill ("blur", "constant", "road"). Defaults to "blur".
        steps: deletion/insertion levels. Defaults to 20.
        batch_size: perturbed copies per forward pass. Defaults to 256.
        path: where to write the bar chart (PNG); None writes none. Defaults to None.
        task: task for the target.
        output: the output explained, by name or index, for a model with several.
        verbose: 1 prints the table; 0 prints nothing. Defaults to 1.
        **metric_arguments: passed to deletion/insertion (`value`, `sigma`, `noise`,
            `seed`, `jit_compile`); any other keyword is refused.

    Returns:
        A `Comparison` (`rows`, `notes`, `maps`, `to_html()`, `table()`, `plot()`).

    Raises:
        ArgumentError (a ValueError): naming `methods` (unknown name, a method's maps not
            `[B, H, W]`), `metrics` (unknown name), `masks` (missing for the pointing
            game), an unknown keyword argument, and the arguments of the metrics.
    """
    adapter = adapt(model, output)
    images = adapter.check_images(images).numpy()
    count = len(images)
    # One name alone is that one method or metric, not a sequence of its letters.
    methods = [methods] if isinstance(methods, str) or callable(methods) else methods
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown_arguments = sorted(set(metric_arguments) - _CURVE_ARGUMENTS)
    if unknown_arguments:
        raise ArgumentError(unknown_arguments[0], f"Expected keyword arguments of compare "
                            f"or of the deletion/insertion curves {sorted(_CURVE_ARGUMENTS)}; "
                            f"received {unknown_arguments}.")
    resolved = _methods(methods)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise ArgumentError("metrics", f"Expected metric names from {sorted(METRICS)}; "
                            f"received {list(metrics)!r}.")
    if "pointing_game" in metrics and masks is None:
        raise ArgumentError("masks", "The pointing game needs the objects' masks [B, H, W]; "
                            "received masks=None.")
    if target is None:
        target_object = adapter.target(None, task, count)
        target = target_object.classes(
            target_object.prepare(adapter.scored(images, training=False))).numpy()
    common = {"target": target}
    common.update({k: v for k, v in (("task", task), ("output", output)) if v is not None})
    curve = dict(common, batch_size=batch_size)
    rows, notes, all_maps = [], {}, {}
    for name, method in resolved:
        maps = np.asarray(method(model, images, **common), np.float32)
        if maps.shape != images.shape[:3]:
            raise ArgumentError("methods", f"Expected method {name!r} to return maps of "
                                f"shape {images.shape[:3]}; received {maps.shape}.")
        all_maps[name] = maps
        for metric in metrics:
            if metric in ("deletion", "insertion"):
                function = getattr(faithfulness, metric)
                result = function(model, images, maps, steps=steps, fill=fill, **curve,
                                  **metric_arguments)
                values = result.auc
                notes[metric] = (f"area under the score curve over {steps} steps, fill "
                                 f"{result.fill}; {METRICS[metric]} is better")
            elif metric.startswith("road"):
                order = metric.split("_")[1]
                result = faithfulness.road(model, images, maps, order=order, **curve)
                values = result.auc
                notes[metric] = (f"mean score with {len(result.fractions)} shares of pixels "
                                 f"removed {'most' if order == 'morf' else 'least'} relevant "
                                 f"first, fill {result.fill}; {METRICS[metric]} is better")
            elif metric == "sparseness":
                values = faithfulness.sparseness(maps)
                notes[metric] = "Gini index of the map; higher is sparser"
            elif metric == "pointing_game":
                values = faithfulness.pointing_game(maps, masks).astype(np.float64)
                notes[metric] = "share of maps whose maximum is on the object"
            else:
                test = faithfulness.randomization_test(model, images, method, **common)
                values = test.correlations[-1]
                notes[metric] = ("Spearman correlation with the trained model's map after "
                                 "cascading randomization of every layer; lower means the "
                                 "map depends on the weights")
            rows.append({"method": name, "metric": metric, "value": float(np.mean(values)),
                         "n_images": count})
    comparison = Comparison(rows, notes, all_maps)
    if path is not None:
        comparison.plot_path = comparison.plot(path)
    if verbose:
        print(comparison.table())
    return comparison
