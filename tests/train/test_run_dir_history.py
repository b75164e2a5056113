"""A run's history.csv read back as Keras's CSVLogger writes it."""

import keras
import pytest

from visionkit.train.run_dir import RunDirectory


def test_history_of_a_run_without_validation_leaves_out_keras_na_columns(tmp_path):
    # Keras's CSVLogger adds a val_ column per metric, filled with "NA", when the epoch
    # logs have no validation metrics (fit without validation data).
    directory = RunDirectory(tmp_path)
    logger = keras.callbacks.CSVLogger(directory.history_csv, append=True)
    logger.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    logger.on_train_begin()
    for epoch, loss in enumerate((2.5, 1.25)):
        logger.on_epoch_end(epoch, {"loss": loss, "accuracy": 0.5 + epoch / 4})
    logger.on_train_end()
    with open(directory.history_csv) as handle:
        assert "NA" in handle.read()  # the case this reader must survive
    history = directory.read_history()
    assert history == {"accuracy": [0.5, 0.75], "loss": [2.5, 1.25]}


def test_a_new_run_moves_an_earlier_runs_history_aside(tmp_path):
    # Keras's CSVLogger appends under the header already in the file: a new run with
    # other metrics would write its values under the earlier run's column names.
    directory = RunDirectory(tmp_path)
    with open(directory.history_csv, "w") as handle:
        handle.write("epoch,accuracy,loss\n0,0.5,2.0\n")
    with pytest.warns(UserWarning, match=r"history.previous-1.csv"):
        kept = directory.start_history()
    assert kept == str(tmp_path / "history.previous-1.csv")
    assert not (tmp_path / "history.csv").exists()
    logger = keras.callbacks.CSVLogger(directory.history_csv, append=True)
    logger.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    logger.on_train_begin()
    logger.on_epoch_end(0, {"loss": 1.5, "mean_iou": 0.25, "val_loss": 1.75,
                            "val_mean_iou": 0.125})
    logger.on_train_end()
    assert directory.read_history() == {"loss": [1.5], "mean_iou": [0.25],
                                        "val_loss": [1.75], "val_mean_iou": [0.125]}
    assert RunDirectory(tmp_path / "empty").start_history() is None
