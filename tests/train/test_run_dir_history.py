"""A run's history.csv read back as Keras's CSVLogger writes it."""

import keras

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
