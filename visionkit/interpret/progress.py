"""Progress of the long interpretation loops, shown between compiled chunks.

The loops themselves are `tf.function`s with no host round trip per step; a bar advances
only when a compiled chunk (a group of images, an octave, a batch of features) returns.

Example:

>>> bar = progress_bar(3, "octave", verbose=0)
>>> bar.update(1)  # prints nothing with verbose=0
"""

from __future__ import annotations

import keras

__all__ = ["Progress", "progress_bar"]


class Progress:
    """A Keras progress bar over `total` chunks, or nothing when it is not wanted."""

    def __init__(self, total: int, unit: str, show: bool):
        self.bar = keras.utils.Progbar(total, unit_name=unit) if show else None
        self.done = 0

    def update(self, count: int = 1) -> None:
        """Marks `count` more chunks as done."""
        self.done += count
        if self.bar is not None:
            self.bar.update(self.done)


def progress_bar(total: int, unit: str, verbose: int | bool = 1) -> Progress:
    """A progress bar over `total` chunks, shown when `verbose` and `total > 1`.

    Args:
        total: number of compiled chunks the loop runs.
        unit: what one chunk is ("image", "octave", "batch").
        verbose: 0/False: never; 1/True: when there is more than one chunk.

    Returns:
        A `Progress`.
    """
    return Progress(int(total), unit, bool(verbose) and int(total) > 1)
