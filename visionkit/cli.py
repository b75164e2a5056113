"""The `visionkit` command: a thin shell over the Python API.

    visionkit run RECIPE [--smoke] [--set key=value ...]     train, evaluate, export
    visionkit train RECIPE [--smoke] [--set key=value ...]   train and evaluate only
    visionkit evaluate CHECKPOINT --recipe RECIPE [--split test]  metrics of a saved model
    visionkit export CHECKPOINT --recipe RECIPE              a SavedModel from a .keras model
    visionkit predict SAVED_MODEL IMAGE [IMAGE ...]          top classes (or mask PNGs) per image
    visionkit models [--task TASK]                           the registry's model names
    visionkit data-service dispatcher|worker                  tf.data service for training input
    visionkit data profile RECIPE [--batches N]              input pipeline images/s per stage
    visionkit data check SOURCE [--out PNG]                  a data set's health report
    visionkit weights list | fetch NAME ...                  pretrained weights in Keras's cache
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="visionkit", description="Train, export and explain Keras vision models.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def recipe_command(name: str, help_text: str) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=help_text, description=help_text)
        command.add_argument("recipe", help="recipe YAML file (see pipelines/)")
        command.add_argument("--smoke", action="store_true",
                             help="tiny sizes and one short epoch, to check the chain works")
        command.add_argument("--set", dest="overrides", action="append", default=[],
                             metavar="KEY=VALUE", help="override a recipe field, e.g. "
                             "train.epochs=3 (repeatable)")
        command.add_argument("--run-dir", help="run directory (default: the recipe's)")
        return command

    run = recipe_command("run", "Run a recipe: train, evaluate and export.")
    run.add_argument("--export-root", help="export root (default: the recipe's export.root)")
    recipe_command("train", "Train and evaluate a recipe's model (no export).")

    for name, help_text in (("evaluate", "Evaluate a saved .keras model on a recipe's data."),
                            ("export", "Export a saved .keras model as a SavedModel."),
                            ("explain", "Write an interpretation report (HTML + PNGs) of a "
                             "saved .keras model on a recipe's validation data.")):
        command = commands.add_parser(name, help=help_text, description=help_text)
        command.add_argument("checkpoint", help=".keras model file, or a run directory (its "
                             "checkpoints/best.keras and recipe.yaml)")
        command.add_argument("--recipe", help="recipe giving the data (default, for a run "
                             "directory: its recipe.yaml)")
        command.add_argument("--set", dest="overrides", action="append", default=[],
                             metavar="KEY=VALUE")
        command.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
        command.add_argument("--unsafe", action="store_true",
                             help="load the model without Keras safe mode (runs its lambdas)")
        if name == "evaluate":
            command.add_argument("--split", choices=("val", "test", "train"), default="val",
                                 help="the split to evaluate (default: val)")
        if name == "export":
            command.add_argument("--root", help="export root (default: the recipe's)")
            command.add_argument("--format", dest="formats", action="append",
                                 choices=("saved_model", "litert", "onnx"),
                                 help="export format; repeat for several (default: the "
                                 "recipe's export.formats)")
        if name == "explain":
            command.add_argument("--out", help="report folder (default: the run directory's "
                                 "report/)")
            command.add_argument("--images", type=int, default=8,
                                 help="validation images in the overlays")

    check = commands.add_parser(
        "check-export", help="Parity table of an export against its Keras model.",
        description="Run an export (SavedModel, LiteRT or ONNX) in its own runtime and the "
        "Keras model (or a SavedModel) on the same images; print the parity table.")
    check.add_argument("path", help="export version directory, model root or model file")
    check.add_argument("--model", help=".keras model to compare with")
    check.add_argument("--reference", help="SavedModel export to compare with instead")
    check.add_argument("--recipe", help="recipe whose validation images to use")
    check.add_argument("--json", action="store_true", help="print JSON")

    predict = commands.add_parser(
        "predict", help="Predict with an exported SavedModel.",
        description="Predict with an exported SavedModel. Files that cannot be decoded "
        "(truncated, empty, not images), named or found in a folder, are left out and "
        "counted in one warning on stderr naming the first five, and listed in full after "
        "the predictions (without --json); the others are predicted. Exit status: 0 when "
        "at least one file was predicted (1 with --strict when a file was left out), 2 "
        "when none could be.")
    predict.add_argument("saved_model", help="SavedModel root or version directory")
    predict.add_argument("images", nargs="+", help="image files or folders of them")
    predict.add_argument("--top-k", type=int, default=3, help="classes to show per image")
    predict.add_argument("--json", action="store_true", help="print JSON")
    predict.add_argument("--out", help="folder for per-image files (segmentation: mask and "
                         "overlay PNGs; default: next to each image)")
    predict.add_argument("--strict", action="store_true",
                         help="exit with status 1 when a file was left out as undecodable "
                         "(the others are still predicted and printed)")

    service = commands.add_parser(
        "data-service", help="Start a tf.data service dispatcher or worker.",
        description="Start a tf.data service dispatcher or worker that runs training input "
        "pipelines for `fit(..., data_service=...)`; it serves until interrupted.")
    service.add_argument("role", choices=("dispatcher", "worker"))
    service.add_argument("--port", type=int, default=0,
                         help="port to listen on (default: 5050 for a dispatcher, any free "
                         "port for a worker)")
    service.add_argument("--dispatcher", help="the dispatcher's host:port (worker only)")
    service.add_argument("--work-dir", help="dispatcher journal directory, so a restarted "
                         "dispatcher resumes its jobs (dispatcher only)")

    data_group = commands.add_parser("data", help="Inspect a recipe's input pipeline.",
                                     description="Inspect a recipe's input pipeline.")
    data_commands = data_group.add_subparsers(dest="data_command", required=True,
                                              metavar="DATA_COMMAND")
    profile = data_commands.add_parser(
        "profile", help="Images/s of the train pipeline and of each stage.",
        description="Measure the recipe's train pipeline and each of its stages (read, "
        "decode, resize, augment) in images/s, to see where the time goes.")
    profile.add_argument("recipe", help="recipe YAML file (see pipelines/)")
    profile.add_argument("--batches", type=int, default=50, help="batches timed per stage")
    profile.add_argument("--set", dest="overrides", action="append", default=[],
                         metavar="KEY=VALUE", help="override a recipe field (repeatable)")
    profile.add_argument("--smoke", action="store_true", help="the recipe's smoke sizes")
    profile.add_argument("--json", action="store_true", help="print JSON")
    data_check = data_commands.add_parser(
        "check", help="A data set's health report before training.",
        description="Images and objects per split and class, box histograms, mask class "
        "shares, images found in two splits, and every file or annotation left out; exits "
        "1 when it finds a problem.")
    data_check.add_argument("source", help="data folder, COCO .json or YOLO data.yaml")
    data_check.add_argument("--kind", choices=("image_folder", "mask_folder", "coco", "voc",
                                               "yolo"), help="source kind (default: detected)")
    data_check.add_argument("--out", help="PNG summary to write")
    data_check.add_argument("--images-dir", help="COCO: the images folder (default: the "
                            "JSON's folder)")
    data_check.add_argument("--json", action="store_true", help="print JSON")

    models = commands.add_parser("models", help="List the model registry's names.",
                                 description="List the model registry's names.")
    models.add_argument("--task", help="only this task's models")
    from visionkit.weights_cli import add_weights_parser

    add_weights_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `visionkit` command; returns the exit status."""
    arguments = _parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from visionkit.errors import VisionkitError

    try:
        return _COMMANDS[arguments.command](arguments)
    except (VisionkitError, ValueError, FileNotFoundError, TypeError) as error:
        print(f"visionkit {arguments.command}: error: {error}", file=sys.stderr)
        return 2


def _resolve_run_directory(arguments: argparse.Namespace) -> str | None:
    """For a run directory given as the checkpoint: its best.keras and recipe.yaml.

    Sets `arguments.checkpoint` (and `arguments.recipe` when not given) and returns the
    directory, or returns None for a model file. A model file needs `--recipe`.
    """
    run_dir = arguments.checkpoint
    if not os.path.isdir(run_dir):
        if not arguments.recipe:
            raise ValueError(f"Expected --recipe with the model file {run_dir!r} (or give a "
                             "run directory, whose recipe.yaml is used).")
        return None
    arguments.checkpoint = os.path.join(run_dir, "checkpoints", "best.keras")
    arguments.recipe = arguments.recipe or os.path.join(run_dir, "recipe.yaml")
    for path, what in ((arguments.checkpoint, "checkpoint"), (arguments.recipe, "recipe")):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Expected a run directory with a {what} at {path!r}; "
                                    f"{run_dir!r} has none (is it a visionkit run directory?).")
    return run_dir


def _load_recipe(arguments: argparse.Namespace):
    from visionkit.config import load_recipe, smoke_recipe

    recipe = load_recipe(arguments.recipe, arguments.overrides)
    return smoke_recipe(recipe) if arguments.smoke else recipe


def _raw_recipe(arguments: argparse.Namespace) -> dict:
    import yaml

    from visionkit.config import apply_overrides

    with open(arguments.recipe, encoding="utf-8") as handle:
        return apply_overrides(yaml.safe_load(handle) or {}, arguments.overrides)


def _run(arguments: argparse.Namespace, export: bool | None = None) -> int:
    from visionkit.run import run_recipe

    recipe = _load_recipe(arguments)
    run_dir = arguments.run_dir or recipe.run_dir
    print(f"visionkit: running recipe {recipe.name!r} -> {run_dir}", flush=True)
    result = run_recipe(recipe, run_dir=run_dir, raw=_raw_recipe(arguments), export=export,
                        export_root=getattr(arguments, "export_root", None))
    _print_metrics(result["metrics"])
    print(f"run directory: {run_dir}")
    if result["export_path"]:
        print(f"saved model:   {result['export_path']}")
    return 0


def _train(arguments: argparse.Namespace) -> int:
    return _run(arguments, export=False)


def _load_checkpoint(arguments: argparse.Namespace):
    import keras

    import visionkit.models  # noqa: F401  (registers visionkit's serializable layers)

    if not os.path.exists(arguments.checkpoint):
        raise FileNotFoundError(f"Model file not found: {arguments.checkpoint!r}.")
    try:
        return keras.saving.load_model(arguments.checkpoint, safe_mode=not arguments.unsafe)
    except ValueError as error:
        if arguments.unsafe or "safe_mode" not in str(error):
            raise
        from visionkit.errors import VisionkitError

        raise VisionkitError(
            f"Refused to load {arguments.checkpoint!r} in Keras safe mode: it holds Python "
            "code that would run on loading (e.g. a Lambda layer). If you trust the file, "
            f"add --unsafe to the command. Keras's reason: {error}") from None


def _evaluate(arguments: argparse.Namespace) -> int:
    from visionkit import train
    from visionkit.run import data_from_recipe

    _resolve_run_directory(arguments)
    model = _load_checkpoint(arguments)
    metrics = train.evaluate(model, data_from_recipe(_load_recipe(arguments)),
                             split=arguments.split)
    print(json.dumps(metrics, indent=2))
    return 0


def _export(arguments: argparse.Namespace) -> int:
    from visionkit import export
    from visionkit.run import data_from_recipe

    _resolve_run_directory(arguments)
    recipe = _load_recipe(arguments)
    model = _load_checkpoint(arguments)
    root = os.path.join(arguments.root, recipe.export.name or recipe.name) if arguments.root \
        else recipe.export_dir
    formats = arguments.formats or recipe.export.formats
    if formats == ["saved_model"]:
        print(export.saved_model(model, root, data=data_from_recipe(recipe)))
        return 0
    from visionkit.export.formats import export_formats

    for path in export_formats(model, root, formats, data=data_from_recipe(recipe)).values():
        print(path)
    return 0


def _explain(arguments: argparse.Namespace) -> int:
    from visionkit import interpret
    from visionkit.run import data_from_recipe

    run_dir = _resolve_run_directory(arguments)
    recipe = _load_recipe(arguments)
    model = _load_checkpoint(arguments)
    out = arguments.out or os.path.join(run_dir or recipe.run_dir, "report")
    quick = {"filter_steps": 4, "dream_steps": 2} if arguments.smoke else {}
    print(interpret.report(model, data_from_recipe(recipe), out, images=arguments.images,
                           **quick))
    return 0


def _predict(arguments: argparse.Namespace) -> int:
    from visionkit.export import format_predictions, predict_files

    results, skipped = predict_files(arguments.saved_model, arguments.images,
                                     top_k=arguments.top_k, out_dir=arguments.out,
                                     return_skipped=True)
    if arguments.json:
        print(json.dumps(results, indent=2))
    else:
        print(format_predictions(results))
        if skipped:  # all of them: the warning names only the first few
            from visionkit.errors import format_file_list

            print(f"Left out {len(skipped)} file(s):\n"
                  + format_file_list(skipped, limit=len(skipped)))
    return 1 if skipped and arguments.strict else 0


def _models(arguments: argparse.Namespace) -> int:
    from visionkit import models

    names = models.available(arguments.task)
    if not names:
        raise ValueError(f"No models registered for task {arguments.task!r}.")
    for name in names:
        entry = models.get(name)
        print(f"{name:<24} {entry.task:<16} {entry.description}")
    return 0


def _data_service(arguments: argparse.Namespace) -> int:
    import tensorflow as tf

    service = tf.data.experimental.service
    if arguments.role == "dispatcher":
        if arguments.dispatcher:
            raise ValueError("--dispatcher applies to a worker; a dispatcher takes --port.")
        server = service.DispatchServer(service.DispatcherConfig(
            port=arguments.port or 5050, work_dir=arguments.work_dir,
            fault_tolerant_mode=bool(arguments.work_dir)))
        print(f"tf.data service dispatcher listening at {server.target}", flush=True)
    else:
        if not arguments.dispatcher:
            raise ValueError("A worker needs --dispatcher HOST:PORT (the dispatcher's address).")
        server = service.WorkerServer(service.WorkerConfig(
            dispatcher_address=arguments.dispatcher.removeprefix("grpc://"),
            port=arguments.port))
        print(f"tf.data service worker serving dispatcher {arguments.dispatcher}", flush=True)
    server.join()
    return 0


def _data(arguments: argparse.Namespace) -> int:
    from visionkit.data.profile import profile
    from visionkit.run import data_from_recipe

    if arguments.data_command == "check":
        from visionkit.data.check import check, format_report

        extra = {"images_dir": arguments.images_dir} if arguments.images_dir else {}
        report = check(arguments.source, kind=arguments.kind, out=arguments.out, **extra)
        print(json.dumps(report, indent=2) if arguments.json else format_report(report))
        return 1 if report["errors"] or report["warnings"] or report["duplicates"] else 0

    if arguments.batches < 1:
        raise ValueError(f"Expected --batches >= 1; received {arguments.batches}.")
    data = data_from_recipe(_load_recipe(arguments))
    result = profile(data, batches=arguments.batches, verbose=not arguments.json)
    if arguments.json:
        print(json.dumps(result, indent=2))
    return 0


def _check_export(arguments: argparse.Namespace) -> int:
    import keras

    import visionkit.models  # noqa: F401  (registers visionkit's serializable layers)
    from visionkit.export import check
    from visionkit.export.parity import format_table

    data = None
    if arguments.recipe:
        from visionkit.config import load_recipe
        from visionkit.run import data_from_recipe

        data = data_from_recipe(load_recipe(arguments.recipe))
    model = keras.saving.load_model(arguments.model) if arguments.model else None
    result = check(arguments.path, model=model, data=data, reference=arguments.reference)
    if arguments.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_table([{k: v for k, v in result.items() if k != "failures"}]))
        for failure in result["failures"]:
            print(f"FAILED: {failure}")
    return 0 if result["passed"] else 1


def _weights(arguments: argparse.Namespace) -> int:
    from visionkit.weights_cli import weights_command

    return weights_command(arguments)


def _print_metrics(metrics: dict) -> None:
    for key, value in metrics.items():
        if isinstance(value, float):
            print(f"{key}: {value:.4f}")


_COMMANDS = {"run": _run, "train": _train, "evaluate": _evaluate, "export": _export,
             "check-export": _check_export,
             "explain": _explain,
             "predict": _predict, "models": _models, "data-service": _data_service,
             "data": _data, "weights": _weights}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
