"""Listing image files and checking them before training: the scan behind `image_folder`.

Listing walks each class folder once with `os.scandir`. The check opens every file with
PIL, fully decodes it (so truncated files are caught), and confirms that TensorFlow's
decoder, which the pipeline uses, will read it the same way. It runs in a thread pool
(PIL releases the GIL while decoding), so it uses every core.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["IMAGE_EXTENSIONS", "list_image_files", "find_bad_files", "check_image_file"]

# File extensions (lower case) that `image_folder` reads; other files are ignored.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
# Content formats (as PIL names them) that `tf.io.decode_image` decodes. MPO is the
# multi-picture JPEG some cameras write; its first picture is a plain JPEG.
DECODABLE_FORMATS = ("JPEG", "MPO", "PNG", "BMP", "GIF", "WEBP")
# Show a progress bar when checking more files than this.
PROGRESS_THRESHOLD = 1000


def is_hidden(name: str) -> bool:
    """Hidden files and folders (".DS_Store", ".ipynb_checkpoints", "._x.jpg") are skipped."""
    return name.startswith(".")


def list_image_files(folder: str) -> list[str]:
    """Image files under `folder` (recursively), sorted, hidden entries left out.

    Only the extension is looked at here (case-insensitive, `IMAGE_EXTENSIONS`);
    `find_bad_files` checks the contents.
    """
    found: list[str] = []
    pending = [folder]
    while pending:
        current = pending.pop()
        with os.scandir(current) as entries:
            for entry in entries:
                if is_hidden(entry.name):
                    continue
                if entry.is_dir():
                    pending.append(entry.path)
                elif entry.is_file() and entry.name.lower().endswith(IMAGE_EXTENSIONS):
                    found.append(entry.path)
    return sorted(found)


def check_image_file(path: str) -> str | None:
    """Why the image at `path` cannot be used, or None if TensorFlow will decode it.

    Checks: PIL identifies it; its content is a format TensorFlow decodes (the extension
    may lie, the content decides); every byte of every frame decodes (truncation shows
    here); BMPs decode to the same pixels in TensorFlow as in PIL (TensorFlow ignores BMP
    palettes and rejects 1-bit BMPs).

    Example:

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "notes.jpg"
    >>> _ = path.write_text("not a picture")
    >>> check_image_file(str(path))
    'not an image file (PIL cannot identify its content)'
    """
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image_format = image.format
            if image_format not in DECODABLE_FORMATS:
                return (f"{image_format} content, which TensorFlow cannot decode "
                        "(expected JPEG, PNG, BMP or GIF)")
            for frame in ImageSequence.Iterator(image):
                frame.load()
            if image_format == "BMP":
                return _check_bmp(path, image)
    except UnidentifiedImageError:
        return "not an image file (PIL cannot identify its content)"
    except Image.DecompressionBombError as error:
        return f"too large to decode safely ({error})"
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        # PIL reports truncation and corruption as OSError / SyntaxError / EOFError.
        detail = str(error) or type(error).__name__
        return f"truncated or corrupt ({detail})"
    return None


def _check_bmp(path: str, image) -> str | None:
    import tensorflow as tf

    try:
        with open(path, "rb") as file:
            decoded = tf.io.decode_bmp(file.read(), channels=3).numpy()
    except tf.errors.InvalidArgumentError as error:
        message = error.message.splitlines()[0] if error.message else "decoding failed"
        return (f"a {image.mode}-mode BMP that TensorFlow cannot decode ({message}); "
                "re-save it as a 24-bit BMP or a PNG")
    reference = np.asarray(image.convert("RGB"))
    if decoded.shape != reference.shape or not np.array_equal(decoded, reference):
        return (f"a {image.mode}-mode BMP (palette or compressed) that TensorFlow would "
                "decode with wrong colours; re-save it as a 24-bit BMP or a PNG")
    return None


def find_bad_files(paths: Sequence[str], workers: int | None = None,
                   progress: bool | None = None) -> list[tuple[str, str]]:
    """Checks every file in a thread pool; returns `(path, reason)` for the bad ones.

    Args:
        paths: files to check.
        workers: threads. Defaults to the number of CPU cores.
        progress: show a progress bar. Defaults to True above 1000 files.

    Returns:
        The bad files in the order of `paths`, each with the reason.
    """
    if not paths:
        return []
    workers = workers or os.cpu_count() or 1
    if progress is None:
        progress = len(paths) > PROGRESS_THRESHOLD
    bad: list[tuple[str, str]] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        reasons: Iterable[str | None] = pool.map(check_image_file, paths)
        bar = _progress_bar(len(paths)) if progress else None
        for done, (path, reason) in enumerate(zip(paths, reasons), start=1):
            if reason is not None:
                bad.append((path, reason))
            if bar is not None and (done % 100 == 0 or done == len(paths)):
                bar.update(done)
    return bad


def _progress_bar(total: int):
    import keras

    # Same stream as Keras's progress bar (stdout).
    print(f"Checking {total} image files before training...")
    return keras.utils.Progbar(total, unit_name="file")
