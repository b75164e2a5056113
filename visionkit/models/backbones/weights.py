"""Weights arguments: local files, or the name of a pretrained set ("imagenet", "coco").

A local file is loaded as given. A pretrained set is fetched only when the user names it
(DESIGN.md, principle 5), through `visionkit.models.pretrained` (Keras's hash-checked
cache and an optional mirror).
"""

from __future__ import annotations

import os

import keras

__all__ = ["KERAS_WEIGHTS_SUFFIX", "LEGACY_WEIGHTS_SUFFIXES", "PRETRAINED_DATASETS",
           "check_weights", "copy_weights_by_name", "describe_weights_mismatch",
           "is_legacy_weights", "is_pretrained", "load_weights"]

KERAS_WEIGHTS_SUFFIX = ".weights.h5"
LEGACY_WEIGHTS_SUFFIXES = (".h5", ".hdf5")
_MAX_DETAIL = 500
# Names of pretrained sets a `weights` argument may give instead of a file.
PRETRAINED_DATASETS = ("imagenet", "coco")


def is_pretrained(weights: object) -> bool:
    """Whether `weights` names a pretrained set ("imagenet", "coco") rather than a file."""
    return isinstance(weights, str) and weights.lower() in PRETRAINED_DATASETS


def check_weights(weights: str | os.PathLike | None, allow_legacy: bool = False,
                  argument: str = "weights", allow_pretrained: bool = False) -> str | None:
    """Validates a `weights` argument and returns it as a string path (or None).

    Args:
        weights: None (random initialisation), the path of a local weights file, or
            (with `allow_pretrained`) "imagenet" / "coco".
        allow_legacy: also accept a legacy Keras `.h5` / `.hdf5` weights file (the no-top
            files Keras publishes for keras.applications). Defaults to False.
        argument: the argument's name, used in error messages. Defaults to "weights".
        allow_pretrained: accept the name of a pretrained set, returned lower-cased.
            Defaults to False.

    Returns:
        None, the path as a string, or the pretrained set's name.

    Raises:
        ValueError: for a pretrained set where none applies, a missing file or a file
            with an unexpected extension.
    """
    if weights is None:
        return None
    if not isinstance(weights, str | os.PathLike):
        raise ValueError(f"Expected {argument} to be None or the path of a local weights "
                         f"file; received {argument}={weights!r}.")
    path = os.fspath(weights)
    accepted = f"a '{KERAS_WEIGHTS_SUFFIX}' file saved with `model.save_weights`"
    if allow_legacy:
        accepted += (" or the no-top '.h5' file Keras publishes for this "
                     "keras.applications family, downloaded by you beforehand")
    if is_pretrained(path):
        if allow_pretrained:
            return path.lower()
        raise ValueError(
            f"{argument}={weights!r} names pretrained weights, which this model does not "
            f"take here: pretrained weights exist for the backbones listed by "
            f"`visionkit weights list` (pass them as backbone_weights={path!r}, or "
            f"weights={path!r} to a classifier built on such a backbone). Otherwise pass "
            f"the path of a local weights file: {accepted}. Received: {argument}={weights!r}.")
    if not os.path.isfile(path):
        raise ValueError(f"Expected {argument} to name an existing local weights file "
                         f"({accepted}); no file exists at {argument}={path!r}.")
    suffixes = (KERAS_WEIGHTS_SUFFIX, *LEGACY_WEIGHTS_SUFFIXES) if allow_legacy else (
        KERAS_WEIGHTS_SUFFIX,)
    if not path.endswith(suffixes):
        raise ValueError(f"Expected {argument} to be {accepted}; received "
                         f"{argument}={path!r}.")
    return path


def is_legacy_weights(path: str) -> bool:
    """True for a legacy `.h5` / `.hdf5` file (not a Keras 3 `.weights.h5` file)."""
    return not path.endswith(KERAS_WEIGHTS_SUFFIX) and path.endswith(LEGACY_WEIGHTS_SUFFIXES)


def load_weights(model: keras.Model, weights: str | os.PathLike | None,
                 argument: str = "weights") -> keras.Model:
    """Loads a local `.weights.h5` file into `model` (no-op for None) and returns it.

    Raises:
        ValueError: see `check_weights`; also when the file does not fit the model.
    """
    path = check_weights(weights, argument=argument)
    if path is None:
        return model
    try:
        model.load_weights(path)
    except (ValueError, KeyError) as error:
        # Keras appends the whole target tensor to the message; keep the part that explains.
        detail = " ".join(str(error).split("Target variable:")[0].split())[:_MAX_DETAIL]
        raise ValueError(f"The weights file does not fit model {model.name!r} (saved from a "
                         f"model built with other arguments?): {detail} Received: "
                         f"{argument}={path!r}.") from error
    return model


def copy_weights_by_name(source: keras.Model, target: keras.Model) -> None:
    """Copies the weights of every layer of `source` into the same-named layer of `target`.

    Used to put a backbone's weights into a classifier whose trunk was wired by the same
    function (and so has the same layer names).

    Raises:
        ValueError: when `target` lacks a layer of `source` or the shapes differ.
    """
    for layer in source.layers:
        if not layer.weights:
            continue
        try:
            target_layer = target.get_layer(layer.name)
        except ValueError as error:
            raise ValueError(f"Model {target.name!r} has no layer {layer.name!r} to receive "
                             f"the weights of {source.name!r}.") from error
        target_layer.set_weights(layer.get_weights())


# Layer names of a classifier top in Keras's published files (include_top=True).
_TOP_LAYER_NAMES = ("predictions", "probs", "Logits", "fc1000")


def _saved_layer_names(path: str) -> list[str]:
    """Layer names a legacy Keras `.h5` weights file holds (empty when unreadable)."""
    try:
        import h5py

        with h5py.File(path, "r") as handle:
            group = handle["model_weights"] if "layer_names" not in handle.attrs and \
                "model_weights" in handle else handle
            return [name.decode() if isinstance(name, bytes) else str(name)
                    for name in group.attrs.get("layer_names", [])]
    except (OSError, KeyError, ImportError):
        return []


def describe_weights_mismatch(path: str, target: str, error: BaseException) -> str:
    """A message for a weights file that does not fit `target`, naming the likely cause.

    Causes users meet (keras-team/keras and keras-cv trackers): the `include_top` file
    where the no-top one is needed, a file for another width (`alpha`), a truncated
    download, or a file of another model.
    """
    detail = " ".join(str(error).split("Target variable:")[0].split())[:_MAX_DETAIL]
    names = _saved_layer_names(path)
    if not names:
        cause = ("it is not a readable Keras HDF5 weights file (truncated download? check "
                 "its size and hash)")
    elif any(name in _TOP_LAYER_NAMES for name in names):
        cause = ("it holds a classifier top (the include_top=True file); visionkit "
                 "backbones take the no-top file (its name ends in '_notop.h5' or "
                 "'_no_top.h5')")
    else:
        cause = ("it was saved from a model with other layers or widths (another "
                 "width_multiplier / alpha, or another family)")
    return (f"The weights file {path!r} does not fit {target}: {cause}. Keras said: "
            f"{detail}")
