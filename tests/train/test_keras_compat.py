"""Keras internals are patched only under a multi-worker strategy."""

import keras
import numpy as np
import tensorflow as tf
from keras.src.backend.tensorflow import trainer as tf_trainer

from visionkit.train.keras_compat import distributed_fit_fixes


class _Probe(keras.callbacks.Callback):
    """Records, during training, whether Keras's own functions are in place."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append((tf_trainer.reduce_per_replica is ORIGINAL,
                          "_maybe_symbolic_build" in vars(self.model)))


ORIGINAL = tf_trainer.reduce_per_replica


def _model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    return model


def test_plain_fit_runs_on_keras_untouched():
    model, probe = _model(), _Probe()
    with distributed_fit_fixes(model):
        model.fit(np.ones((4, 3)), np.ones((4, 2)), epochs=1, batch_size=2, verbose=0,
                  callbacks=[probe])
    assert probe.seen == [(True, False), (True, False)]


def test_one_worker_mirrored_strategy_is_left_untouched_too():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = _model()
    probe = _Probe()
    with distributed_fit_fixes(model):
        model.fit(np.ones((4, 3)), np.ones((4, 2)), epochs=1, batch_size=2, verbose=0,
                  callbacks=[probe])
    assert probe.seen and all(seen == (True, False) for seen in probe.seen)
    assert tf_trainer.reduce_per_replica is ORIGINAL
