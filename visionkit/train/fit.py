"""`fit`: training with task defaults, callbacks and a run directory."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import keras
import tensorflow as tf

from visionkit.data.pipeline import Data
from visionkit.models import build
from visionkit.plot import curves
from visionkit.train.auxiliary import (
    MainHeadLogs,
    auxiliary_outputs,
    compile_for_task,
    labels_for_every_output,
    main_head,
)
from visionkit.train.balance import apply_sampling, class_weighted_loss
from visionkit.train.batch_statistics import check_batch_norm_statistics
from visionkit.train.best import BestWeights
from visionkit.train.callbacks import (
    BestCheckpoint,
    EpochTensorBoard,
    StopOnNonFiniteLoss,
    read_best_record,
)
from visionkit.train.checks import check_model_against_data
from visionkit.train.defaults import apply_defaults, suggested_learning_rate
from visionkit.train.distribute import (
    global_batch_size as global_batch_size_for,
)
from visionkit.train.distribute import (
    is_chief,
    num_workers,
    resolve_strategy,
    through_data_service,
)
from visionkit.train.evaluate import evaluate_with_examples
from visionkit.train.explain_callback import ExplainCallback, explain_images
from visionkit.train.fine_tune import fine_tune_fit, parse_fine_tune
from visionkit.train.loss_names import resolve_loss, resolve_metrics
from visionkit.train.multi_worker import is_multi_worker, multi_worker_fit
from visionkit.train.optimizers import DEFAULT_LEARNING_RATES, make_optimizer
from visionkit.train.precise_bn import precise_batch_norm
from visionkit.train.precision import (
    rebuild_model,
    resolve_jit_compile,
    resolve_mixed_precision,
    with_loss_scaling,
)
from visionkit.train.resume import LearningRateLog, ResumableBackup, first_epoch, order_for_resume
from visionkit.train.run_dir import RunDirectory
from visionkit.train.wrapper import trained_model

__all__ = ["fit", "Run"]


@dataclasses.dataclass
class Run:
    """What a training run leaves behind.

    Attributes:
        model: the trained model (a rebuilt copy when a precision policy or a
            distribution strategy required one; otherwise the model passed in).
        history: per-epoch values, `{"loss": [...], "val_accuracy": [...], ...}`.
        metrics: the final evaluation on the validation split (empty when skipped).
        run_dir: the run directory, or None.
        plots: paths of the figures written.
        best_checkpoint: path of the best checkpoint (`.keras`), or None.
        chief: whether this process is the chief worker (the one that writes files).
        weights_epoch: the epoch (counted from 1) whose weights `model` holds: the best
            one by the task's monitored quantity, or the last with `restore_best=False`.
    """

    model: keras.Model
    history: dict[str, list[float]]
    metrics: dict[str, Any]
    run_dir: str | None = None
    plots: list[str] = dataclasses.field(default_factory=list)
    best_checkpoint: str | None = None
    chief: bool = True
    weights_epoch: int | None = None

    def __repr__(self) -> str:
        epochs = len(next(iter(self.history.values()), []))
        shown = {k: round(v, 4) for k, v in self.metrics.items() if isinstance(v, float)}
        return f"Run(run_dir={self.run_dir!r}, epochs={epochs}, metrics={shown})"


ModelSpec = keras.Model | str | Callable[[], keras.Model]


def fit(
    model: ModelSpec,
    data: Data,
    epochs: int | None = None,
    run_dir: str | os.PathLike | None = None,
    *,
    optimizer: str | keras.optimizers.Optimizer = "adam",
    learning_rate: float | str | None = None,
    schedule: str | None = None,
    warmup_epochs: float | None = None,
    momentum: float = 0.9,
    nesterov: bool = False,
    weight_decay: float | None = None,
    loss: Any = None,
    metrics: Sequence[Any] | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    early_stopping: int | None = None,
    checkpoint: bool = True,
    tensorboard: bool = True,
    backup: bool = True,
    mixed_precision: str | bool | None = "auto",
    jit_compile: str | bool = "auto",
    strategy: str | tf.distribute.Strategy | None = None,
    scale_learning_rate: bool = True,
    global_batch_size: int | None = None,
    data_service: str | None = None,
    steps_per_epoch: int | None = None,
    validation_steps: int | None = None,
    seed: int | None = None,
    verbose: str | int = "auto",
    evaluate: bool = True,
    plots: bool = True,
    recipe: dict[str, Any] | None = None,
    model_kwargs: dict[str, Any] | None = None,
    fine_tune: dict[str, Any] | None = None,
    augment: Any = "auto",
    restore_best: bool = True,
    precise_bn: bool | int | None = None,
    class_weight: str | dict | Sequence[float] | None = None,
    sampling: str | None = None,
    explain_every: int | None = None,
    adversarial: dict[str, Any] | None = None,
) -> Run:
    """Trains a model on a `Data` set with the task's defaults.

    The task of `data` chooses the loss (e.g. sparse cross-entropy, from logits when the
    model ends without softmax), the metrics and what checkpoints monitor. Training reads
    one repeated dataset with explicit steps per epoch, so no iterator is rebuilt between
    epochs. With a `run_dir`, the run writes a CSV log, the best checkpoint, TensorBoard
    logs, BackupAndRestore state (rerunning with the same `run_dir` resumes from the last
    finished epoch), `metrics.json`, and PNG plots of the curves and the task's figures.

    Args:
        model: a `keras.Model`, a registry name (built for `data`'s input shape and
            classes, with `model_kwargs`), or a function of no arguments returning a model.
            Names and functions are built inside the precision policy and strategy scope;
            a model instance is rebuilt from its config there when needed.
        data: the `Data` set.
        epochs: number of epochs. Defaults to the task's (10 for classification, 12 for
            segmentation, 20 for detection; see `visionkit.train.defaults`).
        run_dir: directory of the run's files. Defaults to None (write nothing).
        optimizer: "sgd", "adam", "adamw", "rmsprop", "adagrad" or an optimizer.
            Defaults to "adam".
        learning_rate: initial (peak) learning rate, or "find" to run the range test
            (`vk.train.find_learning_rate`) on the built model and use its suggestion.
            Defaults to the task's rate for `optimizer` (`visionkit.train.defaults`).
        schedule: "cosine" (linear warmup, then cosine decay over the run), "constant"
            or "plateau" (ReduceLROnPlateau on the monitored quantity). Defaults to the
            task's ("cosine").
        warmup_epochs: epochs of linear warmup before the cosine decay (Goyal et al.
            2017). Defaults to `min(3, epochs / 10)` with "cosine", else 0.
        momentum, nesterov: SGD momentum settings. Defaults to 0.9 and False.
        weight_decay: decoupled weight decay. Defaults to the task's for `optimizer`
            (5e-4 for SGD, 1e-4 for AdamW, none for Adam).
        loss: a loss overriding the task's. Defaults to None.
        metrics: metrics overriding the task's. Defaults to None.
        callbacks: extra Keras callbacks.
        early_stopping: patience in epochs (restoring the best weights), or None.
        checkpoint, tensorboard, backup: turn the default callbacks off with False.
        mixed_precision: "auto" (mixed_float16 on GPU, float32 on CPU), "float32",
            "mixed_float16" or "mixed_bfloat16". Defaults to "auto".
        jit_compile: "auto" (XLA on GPU/TPU, off on CPU), True or False.
        strategy: None, "mirrored", "multi_worker", "tpu" or a tf.distribute.Strategy.
            Under a strategy, `data.batch_size` is the batch of one replica and the global
            batch is that times the number of replicas (or `global_batch_size`). Only the
            chief worker writes the run directory.
        scale_learning_rate: under a strategy, multiply the learning rate by
            global batch / `data.batch_size` (the linear scaling rule of Goyal et al.
            2017). Defaults to True.
        global_batch_size: the global batch under a strategy; must be a multiple of the
            number of replicas. Defaults to `data.batch_size` times the replicas.
        data_service: "grpc://host:port" of a tf.data service dispatcher that runs the
            training input pipeline (see `visionkit data-service`). Defaults to None.
        steps_per_epoch: training batches per epoch. Defaults to one pass over the data.
        validation_steps: validation batches per epoch. Defaults to one pass.
        seed: seed of Keras's random state (weights of models built here, dropout).
        verbose: Keras's verbosity: "auto" (a progress bar on a terminal, one line per
            epoch otherwise), 0, 1 or 2.
        evaluate: evaluate on the validation split at the end. Defaults to True.
        plots: write the PNG figures into the run directory. Defaults to True.
        recipe: the resolved recipe, written as recipe.yaml into the run directory.
        model_kwargs: keyword arguments for a model given by name.
        fine_tune: two-phase transfer learning (see `visionkit.train.fine_tune`):
            `{"freeze_epochs": N, "unfreeze": "all" | "last_k_blocks", "k": K,
            "learning_rate_factor": 0.1}` trains the head on the frozen backbone
            (BatchNorm in inference mode) for N epochs, then unfreezes the backbone (all,
            or its last K stages) at the rate times the factor. history.csv records
            `fine_tune_phase` and `learning_rate`. Defaults to None (one phase).
        augment: "auto" (the task's preset, e.g. "light", when `data` has no
            augmentation; the data's own otherwise), or a preset name / Keras layers
            used instead of the data's ("none" turns it off). Defaults to "auto".

    Options left unset are filled from the task's row of `visionkit.train.defaults`
    (explicit arguments always win; an optimizer instance keeps its own rate, schedule
    and decay); unless `verbose=0`, fit prints once which defaults it chose.
        restore_best: when training ends, load the weights of the best epoch by the
            task's monitored quantity (from the best checkpoint, or from memory without
            a run directory); the evaluation, `Run.model` and exports then use them and
            `metrics.json` says which epoch (`weights_epoch`). Defaults to True.
        precise_bn: before each validation (and at the end without one), recompute the
            moving mean and variance of the model's trainable batch-norm layers from
            `visionkit.train.precise_bn.PRECISE_BN_IMAGES` (512) shuffled training
            images without augmentation, with the current weights (Wu & Johnson 2021's
            PreciseBN; see `visionkit.train.precise_bn`): Keras's moving averages trail
            fast-changing weights in short runs (ResNet-18 on shapes validated at chance
            for its first epochs with them, validation loss up to 25). An integer gives the number of images; False
            keeps Keras's moving averages. Defaults to the task's (on; off for
            detection, see `visionkit.train.defaults`).
        class_weight: classification and segmentation: "balanced", `{class: weight}` or
            one weight per class; the loss becomes the class-weighted cross-entropy
            (see `visionkit.train.balance`). Defaults to None.
        sampling: "balanced" draws training examples class-balanced (classification
            and segmentation; see `visionkit.train.balance`). Defaults to None.
        explain_every: with a `run_dir`, log Grad-CAM overlays of 4 validation images to
            TensorBoard (`tensorboard/explain`) every this many epochs
            (`visionkit.train.explain_callback`). Defaults to None (never).
        adversarial: adversarial training (Madry et al. 2018; see
            `visionkit.train.adversarial`): every step trains on attacked copies of its
            batch, `{"method": "pgd" | "fgsm", "epsilon": 8, "steps": 7, "step_size":
            None, "norm": "inf" | "2", "random_start": True}` in pixel units (0..255).
            Defaults to None.

    `model` may also be a `visionkit.train.wrapper.TrainingWrapper` (e.g. the
    `Distiller` of `vk.train.distill`): it is trained, while checks, the best checkpoint,
    evaluation and `Run.model` use the model it wraps.

    Returns:
        A `Run`.

    Raises:
        ValueError: for bad options (each error names the option and the value).
        NonFiniteLossError: when the loss becomes NaN or infinite (naming the epoch and
            batch; the best checkpoint so far is kept).

    Example:

    >>> import visionkit as vk
    >>> data = vk.data.digits(image_size=(16, 16)).take(64, 32)
    >>> run = vk.train.fit("simple_cnn", data, epochs=1, verbose=0,
    ...                    model_kwargs={"filters": (8,)})
    >>> sorted(run.history)[:2]
    ['accuracy', 'loss']
    """
    if not isinstance(data, Data):
        raise TypeError(f"Expected data as a visionkit.data.Data; received {type(data).__name__}.")
    if epochs is not None and int(epochs) < 1:
        raise ValueError(f"Expected epochs >= 1; received epochs={epochs!r}.")
    chosen, data = apply_defaults(data, epochs=epochs, optimizer=optimizer,
                                  learning_rate=learning_rate, schedule=schedule,
                                  warmup_epochs=warmup_epochs, weight_decay=weight_decay,
                                  augment=augment, precise_bn=precise_bn, verbose=verbose)
    epochs, learning_rate, schedule = chosen.epochs, chosen.learning_rate, chosen.schedule
    weight_decay = chosen.weight_decay
    fine_tune = parse_fine_tune(fine_tune, int(epochs))
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    task = data.task
    policy = resolve_mixed_precision(mixed_precision)
    use_xla = resolve_jit_compile(jit_compile)
    distribution = resolve_strategy(strategy)
    chief = is_chief(distribution)
    replicas = distribution.num_replicas_in_sync if distribution is not None else 1
    batch = global_batch_size_for(data.batch_size, replicas, global_batch_size) \
        if distribution is not None else data.batch_size
    if batch != data.batch_size:
        if scale_learning_rate and not isinstance(optimizer, keras.optimizers.Optimizer) \
                and learning_rate != "find":  # the range test runs on the global batch
            base = learning_rate if learning_rate is not None else \
                DEFAULT_LEARNING_RATES.get(str(optimizer).lower())
            learning_rate = None if base is None else base * batch / data.batch_size
        data = data.with_batch_size(batch)
    data = apply_sampling(data, sampling, seed)  # class-balanced draws, when asked
    steps = int(steps_per_epoch or data.steps_per_epoch)
    val = data.val
    val_steps = int(validation_steps or data.validation_steps) if val is not None else None

    scope = distribution.scope() if distribution is not None else contextlib.nullcontext()
    with scope:
        model = _materialize(model, data, policy, force_rebuild=distribution is not None,
                             model_kwargs=model_kwargs or {})
        inner = trained_model(model)  # a wrapper (distiller) trains the model it wraps
        trained_head = main_head(inner)  # GoogLeNet's auxiliary heads left out
        check_model_against_data(trained_head, data)  # clear errors before the first step
        check_batch_norm_statistics(  # warns; balanced sampling draws full batches only
            trained_head, data.batch_size, None if sampling else len(data), replicas)
        if class_weight is not None:
            if loss is not None:
                raise ValueError("Pass class_weight or loss, not both: class_weight replaces "
                                 "the task's loss with a class-weighted cross-entropy.")
            loss = class_weighted_loss(trained_head, data, class_weight)
        loss = resolve_loss(loss, task, trained_head)  # visionkit's loss names
        metrics = resolve_metrics(metrics, task, trained_head, data.num_classes)
        if adversarial is not None:
            model = adversarial_training(model, adversarial, data, seed)
        if model is not inner:  # the wrapper is compiled with its inner model's loss
            loss = loss if loss is not None else task.loss(inner)
            if fine_tune is not None:
                raise ValueError("fine_tune is not available with adversarial training or "
                                 "distillation yet; train in one phase.")
        if learning_rate == "find":
            learning_rate = suggested_learning_rate(model, data, optimizer, verbose)
        compile_for_task(
            task, model,
            with_loss_scaling(make_optimizer(
                optimizer, learning_rate, schedule=schedule, total_steps=steps * int(epochs),
                momentum=momentum, nesterov=nesterov, weight_decay=weight_decay,
                warmup_steps=round(chosen.warmup_epochs * steps)), model),
            num_classes=data.num_classes, loss=loss, metrics=metrics, jit_compile=use_xla,
        )
    # Keras compiles a model holding ops XLA has no kernel for (the warps of Keras's
    # augmentation layers, e.g. visionkit's preset_layers) without XLA, and warns: the
    # run's config records what trains.
    use_xla = bool(model.jit_compile)

    directory = RunDirectory(run_dir).create() if run_dir is not None and chief else None
    monitor = task.monitor if val is not None else "loss"
    mode = task.monitor_mode if val is not None else "min"
    if directory is not None:
        _write_config(directory, data, recipe, locals_for_config(
            model=model.name, epochs=epochs, optimizer=optimizer, learning_rate=learning_rate,
            schedule=schedule, warmup_epochs=chosen.warmup_epochs, mixed_precision=policy, jit_compile=use_xla,
            strategy=strategy, steps_per_epoch=steps, seed=seed, adversarial=adversarial))
    # The task's callbacks (e.g. periodic mAP) come first, so the logs they add reach the
    # CSV log, checkpoints and early stopping.
    # The best epoch's weights are kept where the checkpoint is written (before the user's
    # callbacks), and restored when training ends.
    best_weights = BestWeights(monitor, mode, directory.best_checkpoint
                               if directory is not None and checkpoint else None) \
        if restore_best else None
    callback_list = ([MainHeadLogs()] if auxiliary_outputs(model) else []) + \
        task.callbacks(data) + _default_callbacks(
        directory, monitor, mode, early_stopping, schedule, checkpoint, tensorboard,
        backup) + ([best_weights] if best_weights else []) + list(callbacks)
    statistics = precise_batch_norm(inner, data, chosen.precise_bn, distribution)
    if statistics is not None:  # before the checkpoints, which save what validation used
        callback_list.insert(0, statistics)
    if explain_every is not None:
        if run_dir is None:
            raise ValueError(f"explain_every={explain_every!r} logs to the run's TensorBoard "
                             f"folder: give a run_dir.")
        if directory is not None:
            callback_list.append(ExplainCallback(explain_images(data), os.path.join(
                directory.tensorboard, "explain"), explain_every,
                explain=task.explain_heatmaps))
    callback_list = order_for_resume(callback_list)  # the backup restores after the others
    resume_at = first_epoch(directory.backup) if directory is not None and backup else 0
    if directory is not None and resume_at == 0 and chief:
        directory.start_history()  # an earlier run's history is moved aside

    if verbose == "auto":  # a live progress bar on a terminal, one line per epoch in logs
        verbose = 1 if sys.stdout.isatty() else 2
    if fine_tune is not None:  # frozen backbone, then unfrozen at a lower rate
        def compile_phase(phase_optimizer: keras.optimizers.Optimizer) -> None:
            with distribution.scope() if distribution is not None else \
                    contextlib.nullcontext():
                compile_for_task(task, model, with_loss_scaling(phase_optimizer, model),
                             num_classes=data.num_classes, loss=loss, metrics=metrics,
                             jit_compile=use_xla)

        history = fine_tune_fit(
            model, fine_tune, int(epochs), callback_list, compile_phase,
            lambda until, start, phase_callbacks: _keras_fit(
                model, data, until, steps, val, val_steps, phase_callbacks, verbose,
                data_service, distribution, initial_epoch=start,
                first_epoch=max(start, resume_at)), resume_at=resume_at)
    else:
        history = _keras_fit(model, data, epochs, steps, val, val_steps, callback_list,
                             verbose, data_service, distribution, first_epoch=resume_at)
    full_history = directory.read_history() if directory is not None else {}
    history_values = full_history or {k: [float(v) for v in vs] for k, vs in history.history.items()}
    epochs_run = len(next(iter(history_values.values()), []))
    model = trained_model(model)  # the checkpoint and best weights hold the inner model
    restored = best_weights.restore(model) if best_weights is not None else None
    weights_epoch = int(restored["epoch"]) if restored else epochs_run

    results: dict[str, Any] = {}
    examples = None
    if evaluate and val is not None:
        results, examples = evaluate_with_examples(model, data)
    figures: list[str] = []
    if directory is not None:
        results_to_write = {**results, "epochs": epochs_run, "weights_epoch": weights_epoch}
        if checkpoint:  # which epoch best.keras holds, and its monitored value
            results_to_write["best"] = read_best_record(directory.path("checkpoints", "best.json"))
        directory.write_json("metrics.json", results_to_write)
        if plots:
            figures.append(curves(history_values, directory.path("curves.png"),
                                  title=f"{model.name} on {task.name}"))
            if results:
                figures += task.plot_evaluation(results, list(data.class_names), directory.root,
                                                examples=examples)
    best = directory.best_checkpoint if directory is not None and checkpoint else None
    return Run(model=model, history=history_values, metrics=results,
               run_dir=directory.root if directory is not None else None, plots=figures,
               best_checkpoint=best if best and os.path.exists(best) else None, chief=chief,
               weights_epoch=weights_epoch)


def _validation_input(val: tf.data.Dataset | None) -> tf.data.Dataset | None:
    """Validation batches repeated per epoch (one iterator for the whole run)."""
    return None if val is None else val.repeat()


def _keras_fit(model: keras.Model, data: Data, epochs: int, steps: int,
               val: tf.data.Dataset | None, val_steps: int | None,
               callbacks: list[keras.callbacks.Callback], verbose: str | int,
               data_service: str | None, strategy: tf.distribute.Strategy | None = None,
               initial_epoch: int = 0, first_epoch: int = 0) -> keras.callbacks.History:
    """Keras's fit on one repeated training dataset with explicit steps per epoch."""
    _build_optimizer(model, strategy)
    if is_multi_worker(strategy):  # Keras's fit fails there: visionkit's explicit loop
        return multi_worker_fit(
            model, strategy, labels_for_every_output(  # raises for auxiliary heads
                _training_input(data, data_service, strategy, first_epoch), model),
            epochs=int(epochs), steps=steps, validation=_validation_input(val),
            validation_steps=val_steps, callbacks=callbacks, verbose=verbose,
            initial_epoch=max(int(initial_epoch), int(first_epoch)))
    return model.fit(
        labels_for_every_output(_training_input(data, data_service, strategy, first_epoch),
                                model),
        epochs=int(epochs),
        initial_epoch=int(initial_epoch),
        steps_per_epoch=steps,
        validation_data=labels_for_every_output(_validation_input(val), model),
        validation_steps=val_steps,
        callbacks=callbacks,
        shuffle=False,  # the pipeline shuffles
        verbose=verbose,
    )


def _build_optimizer(model: keras.Model, strategy: tf.distribute.Strategy | None) -> None:
    """Creates the optimizer's variables before the first step.

    Keras otherwise creates them inside the first trace of its train step, and a
    `tf.function` whose first trace creates variables is traced a second time: every
    fit paid its (often longest) trace twice (measured: a YOLOv8 detector's train step
    takes over a minute to trace on a CPU). Skipped for an unbuilt model, whose
    variables do not exist yet.
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or optimizer.built or not model.built:
        return
    variables = model.trainable_variables
    if not variables:
        return
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        optimizer.build(variables)


def _training_input(data: Data, data_service: str | None,
                    strategy: tf.distribute.Strategy | None = None,
                    first_epoch: int = 0) -> Any:
    """The repeated training input of global batches of `data.batch_size` examples.

    - One worker (with or without a strategy): one pipeline of global batches, which
      Keras splits over the local replicas.
    - Several workers: each worker builds its own pipeline from its share of the
      records (`Data.shard`, split before decoding, so a worker reads and decodes only
      its own files), batched per replica, through
      `strategy.distribute_datasets_from_function`.
    - A tf.data service: the service's workers run the pipeline and hand out batches.
    """
    if data_service:
        return through_data_service(data.train.repeat(), data_service)
    if strategy is None or num_workers(strategy) < 2:
        # Epoch e is shuffled by (seed, e): a resumed run reads what an uninterrupted one does.
        return data.train_from_epoch(first_epoch)

    def worker_input(context: tf.distribute.InputContext) -> tf.data.Dataset:
        per_replica = context.get_per_replica_batch_size(data.batch_size)
        mine = data.shard(context.num_input_pipelines, context.input_pipeline_id)
        return mine.with_batch_size(per_replica).train.repeat()

    return strategy.distribute_datasets_from_function(worker_input)


def _materialize(model: ModelSpec, data: Data, policy: str, force_rebuild: bool,
                 model_kwargs: dict[str, Any]) -> keras.Model:
    """Builds or rebuilds the model inside the current scope under `policy`."""
    if isinstance(model, keras.Model):
        if model_kwargs:
            raise ValueError("model_kwargs applies to a model given by name; received a model.")
        return rebuild_model(model, policy, force=force_rebuild)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        if isinstance(model, str):
            # Embedding models have no class outputs (no num_classes).
            classes = data.num_classes if getattr(data.task, "outputs_are_classes", True) \
                else None
            return build(model, input_shape=data.input_shape, num_classes=classes,
                         **model_kwargs)
        if callable(model):
            built = model()
            if not isinstance(built, keras.Model):
                raise TypeError("Expected the model function to return a keras.Model; it "
                                f"returned {type(built).__name__}.")
            return built
    finally:
        keras.config.set_dtype_policy(previous)
    raise TypeError("Expected model as a keras.Model, a registry name or a function returning "
                    f"a model; received {type(model).__name__}.")


def _default_callbacks(directory: RunDirectory | None, monitor: str, mode: str,
                       early_stopping: int | None, schedule: str | None, checkpoint: bool,
                       tensorboard: bool, backup: bool) -> list[keras.callbacks.Callback]:
    # A NaN or infinite loss raises NonFiniteLossError naming the epoch and batch.
    callbacks: list[keras.callbacks.Callback] = [StopOnNonFiniteLoss(
        directory.best_checkpoint if directory is not None and checkpoint else None)]
    if early_stopping is not None:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=monitor, mode=mode, patience=int(early_stopping), restore_best_weights=True))
    if schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, mode=mode, factor=0.5, patience=2))
    if directory is None:
        return callbacks
    callbacks.append(LearningRateLog())  # the rate of every epoch into history.csv
    callbacks.append(keras.callbacks.CSVLogger(directory.history_csv, append=True))
    if checkpoint:
        callbacks.append(BestCheckpoint(directory.best_checkpoint, monitor=monitor, mode=mode,
                                        resume_dir=directory.backup if backup else None))
    if tensorboard:
        callbacks.append(EpochTensorBoard(directory.tensorboard))
    if backup:  # after the others: it saves what they changed at the epoch's end
        callbacks.append(ResumableBackup(directory.backup))
    return callbacks


def locals_for_config(**values: Any) -> dict[str, Any]:
    """The `fit` arguments worth recording, as JSON-friendly values."""
    return {k: (v if isinstance(v, (str, int, float, bool, type(None))) else repr(v))
            for k, v in values.items()}


def _write_config(directory: RunDirectory, data: Data, recipe: dict[str, Any] | None,
                  arguments: dict[str, Any]) -> None:
    directory.write_json("config.json", {"fit": arguments, "data": data.describe()})
    if recipe is not None:
        import yaml

        with open(directory.path("recipe.yaml"), "w") as handle:
            yaml.safe_dump(recipe, handle, sort_keys=False)


def adversarial_training(model: keras.Model, adversarial: dict[str, Any], data: Data,
                         seed: int | None) -> keras.Model:
    """`model` wrapped to train on attacked batches (`visionkit.train.adversarial`)."""
    from visionkit.train.adversarial import AdversarialTraining, check_attack_task

    if trained_model(model) is not model:
        raise ValueError("adversarial training of a distiller is not available; pass "
                         "adversarial= to fit for a plain model.")
    check_attack_task(data.task, "fit(adversarial=...)")
    return AdversarialTraining(model, adversarial, seed=seed)
