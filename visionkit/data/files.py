"""Listing image files and checking them before training: the scan behind `image_folder`.

Listing walks each class folder once with `os.scandir`. The check opens every file with
PIL, refuses images whose header announces more pixels than `max_image_pixels` (before
anything is decoded), fully decodes the rest (so truncated files are caught), checks PNG
chunk checksums (TensorFlow rejects a bad checksum that PIL's decoder lets through), and
confirms that TensorFlow's decoder, which the pipeline uses, will read it the same way.
It also records each file's EXIF orientation, which TensorFlow's decoders ignore, so the
pipeline can turn the pixels the way an image viewer shows them (`apply_orientation`).
It runs in a thread pool (PIL releases the GIL while decoding), so it uses every core.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["IMAGE_EXTENSIONS", "DEFAULT_MAX_IMAGE_PIXELS", "CaseInsensitiveFiles",
           "ImageScan", "list_image_files", "list_other_files", "describe_other_files",
           "find_bad_files", "check_image_file", "scan_image_files", "apply_orientation"]

# File extensions (lower case) that `image_folder` reads; other files are ignored.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
# Content formats (as PIL names them) that `tf.io.decode_image` decodes. MPO is the
# multi-picture JPEG some cameras write; its first picture is a plain JPEG.
DECODABLE_FORMATS = ("JPEG", "MPO", "PNG", "BMP", "GIF", "WEBP")
# Show a progress bar when checking more files than this.
PROGRESS_THRESHOLD = 1000
# Largest image (width x height) accepted by default: PIL's own decompression-bomb
# threshold (`PIL.Image.MAX_IMAGE_PIXELS`, about 0.25 GB of 24-bit pixels). PIL only
# warns up to twice this and then decodes; visionkit refuses before decoding.
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485
# The EXIF tag holding the orientation (values 1..8; 1 = as stored).
EXIF_ORIENTATION_TAG = 0x0112
# Serializes changes of PIL's process-wide decompression-bomb limit (see `_pil_limit`).
_PIL_LIMIT_LOCK = threading.Lock()


@dataclasses.dataclass(frozen=True)
class ImageScan:
    """What checking a list of image files found.

    Attributes:
        bad: `(path, reason)` of every file that cannot be used, in input order.
        orientations: EXIF orientation (1..8) of every good file; 1 when it has none.
    """

    bad: list[tuple[str, str]]
    orientations: dict[str, int]

    def orientation_array(self, paths: Sequence[str]) -> np.ndarray:
        """int32 orientations of `paths` (1 for a path the scan did not see)."""
        return np.asarray([self.orientations.get(str(p), 1) for p in paths], np.int32)


def is_hidden(name: str) -> bool:
    """Hidden files and folders (".DS_Store", ".ipynb_checkpoints", "._x.jpg") are skipped,
    and so is "__MACOSX", the folder of "._x.jpg" metadata files that zips made on macOS
    hold (unzipped, it would be one more class or split of undecodable files)."""
    return name.startswith(".") or name == "__MACOSX"


def list_image_files(folder: str) -> list[str]:
    """Image files under `folder` (recursively), sorted, hidden entries left out.

    Only the extension is looked at here (case-insensitive, `IMAGE_EXTENSIONS`);
    `find_bad_files` checks the contents.
    """
    return sorted(path for path in _files_under(folder)
                  if path.lower().endswith(IMAGE_EXTENSIONS))


def list_other_files(folder: str) -> list[str]:
    """Files under `folder` (recursively, hidden entries left out) that are not images by
    extension: what `list_image_files` leaves out, so that it can be said."""
    return sorted(path for path in _files_under(folder)
                  if not path.lower().endswith(IMAGE_EXTENSIONS))


def _files_under(folder: str):
    """Every file under `folder`, recursively, hidden files and folders left out; a
    folder reached again through a symbolic link (a link to a parent) is listed once, a
    symbolic link to a missing file is listed as a file."""
    pending, listed = [folder], set()
    while pending:
        current = pending.pop()
        real = os.path.realpath(current)
        if real in listed:
            continue
        listed.add(real)
        with os.scandir(current) as entries:
            for entry in entries:
                if is_hidden(entry.name):
                    continue
                if entry.is_dir():
                    pending.append(entry.path)
                elif entry.is_file() or entry.is_symlink():
                    # A link to a missing file is listed too: the checks name it as a
                    # file that cannot be read instead of it vanishing from the count.
                    yield entry.path


class CaseInsensitiveFiles:
    """Finds the files whose path differs from a given one only in letter case.

    Windows and macOS file systems ignore case, so annotations made there name
    `IMG_001.JPG` for a file that a Linux disk holds as `img_001.jpg`. Each folder is
    listed once (on first use), so looking up every image of a data set stays cheap.

    Example:

    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> open(os.path.join(folder, "img_001.jpg"), "w").close()
    >>> [os.path.basename(p) for p in CaseInsensitiveFiles().matches(
    ...     os.path.join(folder, "IMG_001.JPG"))]
    ['img_001.jpg']
    """

    def __init__(self) -> None:
        self._listings: dict[str, dict[str, list[str]]] = {}

    def _entries(self, folder: str, name: str) -> list[str]:
        listing = self._listings.get(folder)
        if listing is None:
            listing = {}
            try:
                names = sorted(os.listdir(folder))
            except OSError:
                names = []
            for entry in names:
                listing.setdefault(entry.lower(), []).append(entry)
            self._listings[folder] = listing
        return listing.get(name.lower(), [])

    def matches(self, path: str) -> list[str]:
        """The existing files (sorted) whose path equals `path` but for letter case in
        its missing part (the folders that exist as written are kept), `path` excluded."""
        path = os.path.normpath(path)
        head, missing = path, []
        while head and not os.path.isdir(head):
            head, part = os.path.split(head)
            if not part:
                break
            missing.append(part)
        candidates = [head]
        for part in reversed(missing):
            candidates = [os.path.join(folder, entry) for folder in candidates
                          for entry in self._entries(folder, part)]
        return sorted(c for c in candidates if c != path and os.path.isfile(c))


def describe_other_files(paths: Sequence[str], examples: int = 3) -> str:
    """`"3 .tif (e.g. 'a.tif'), 1 .txt ('notes.txt')"`: counts per extension, examples."""
    by_extension: dict[str, list[str]] = {}
    for path in paths:
        extension = os.path.splitext(path)[1].lower() or "(no extension)"
        by_extension.setdefault(extension, []).append(path)
    parts = []
    for extension, files in sorted(by_extension.items(), key=lambda item: -len(item[1])):
        shown = ", ".join(repr(f) for f in files[:examples])
        parts.append(f"{len(files)} {extension} (e.g. {shown})")
    return "; ".join(parts)


def check_image_file(path: str,
                     max_image_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS) -> str | None:
    """Why the image at `path` cannot be used, or None if TensorFlow will decode it.

    Checks: PIL identifies it; its content is a format TensorFlow decodes (the extension
    may lie, the content decides); its header announces at most `max_image_pixels`
    pixels (checked before decoding); every byte of every frame decodes (truncation
    shows here); PNG chunk checksums are right; BMPs decode to the same pixels in
    TensorFlow as in PIL (TensorFlow ignores BMP palettes and rejects 1-bit BMPs).

    Args:
        path: the file.
        max_image_pixels: largest width x height accepted, or None for no limit.
            Defaults to 89,478,485 (PIL's decompression-bomb threshold).

    Returns:
        The reason, or None for a good file.

    Example:

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "notes.jpg"
    >>> _ = path.write_text("not a picture")
    >>> check_image_file(str(path))
    'not an image file (PIL cannot identify its content)'
    """
    with _pil_limit(max_image_pixels):
        return _inspect(os.fspath(path), max_image_pixels)[0]


def _inspect(path: str, max_image_pixels: int | None) -> tuple[str | None, int]:
    """(reason or None, EXIF orientation) of one file."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    orientation = 1
    try:
        with Image.open(path) as image:
            image_format = image.format
            if image_format not in DECODABLE_FORMATS:
                return (f"{image_format} content, which TensorFlow cannot decode "
                        "(expected JPEG, PNG, BMP, GIF or WebP)"), 1
            width, height = image.size
            if max_image_pixels is not None and width * height > max_image_pixels:
                return (f"{width}x{height} pixels ({width * height:,}) is more than "
                        f"max_image_pixels={max_image_pixels:,}; refused before decoding "
                        "(pass a larger max_image_pixels to accept it)"), 1
            orientation = _orientation(image)
            for frame in ImageSequence.Iterator(image):
                frame.load()
            if image_format == "BMP":
                return _check_bmp(path, image), orientation
            if image_format == "GIF":
                return _check_gif(path), orientation
        if image_format == "PNG":
            # PIL's decoder skips chunk checksums; TensorFlow's refuses a bad one.
            with Image.open(path) as again:
                again.verify()
    except UnidentifiedImageError:
        return "not an image file (PIL cannot identify its content)", 1
    except Image.DecompressionBombError as error:
        return f"too large to decode safely ({error})", 1
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        # PIL reports truncation and corruption as OSError / SyntaxError / EOFError.
        detail = str(error) or type(error).__name__
        return f"truncated or corrupt ({detail})", 1
    return None, orientation


def _orientation(image) -> int:
    """The EXIF orientation 1..8 of an open PIL image (1 if absent or unreadable)."""
    try:
        value = image.getexif().get(EXIF_ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001  (a damaged EXIF block must not make a good image bad)
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


class _pil_limit:
    """Hands the size limit from PIL to visionkit's own check while the block runs.

    PIL refuses images above twice `PIL.Image.MAX_IMAGE_PIXELS` as they are opened, with
    a message that does not name `max_image_pixels`, and would refuse an image a user
    allowed with a larger `max_image_pixels`. The scan checks every header itself right
    after opening (before decoding), so PIL's process-wide limit is lifted while a scan
    runs and put back afterwards.
    """

    _depth = 0
    _saved: int | None = None

    def __init__(self, max_image_pixels: int | None) -> None:
        self.max_image_pixels = max_image_pixels

    def __enter__(self) -> None:
        from PIL import Image

        with _PIL_LIMIT_LOCK:
            if type(self)._depth == 0:
                type(self)._saved = Image.MAX_IMAGE_PIXELS
                Image.MAX_IMAGE_PIXELS = None
            type(self)._depth += 1

    def __exit__(self, *exc) -> None:
        from PIL import Image

        with _PIL_LIMIT_LOCK:
            type(self)._depth -= 1
            if type(self)._depth == 0:
                Image.MAX_IMAGE_PIXELS = type(self)._saved


def _check_gif(path: str) -> str | None:
    """GIFs PIL reads but TensorFlow's stricter GIF decoder refuses (e.g. an unknown record
    type after the image data) are named here, not mid-training."""
    import tensorflow as tf

    try:
        with open(path, "rb") as file:
            tf.io.decode_gif(file.read())
    except tf.errors.InvalidArgumentError as error:
        message = error.message.splitlines()[0] if error.message else "decoding failed"
        return f"a GIF that TensorFlow cannot decode ({message}); re-save it as a PNG"
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


def scan_image_files(paths: Sequence[str], workers: int | None = None,
                     progress: bool | None = None,
                     max_image_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS) -> ImageScan:
    """Checks every file in a thread pool and records its EXIF orientation.

    Args:
        paths: files to check.
        workers: threads. Defaults to the number of CPU cores.
        progress: show a progress bar. Defaults to True above 1000 files.
        max_image_pixels: largest width x height accepted (refused before decoding), or
            None for no limit. Defaults to 89,478,485 (PIL's decompression-bomb
            threshold).

    Returns:
        An `ImageScan`: the bad files with reasons, and the good files' orientations.

    Example:

    >>> import pathlib, tempfile, numpy as np
    >>> from PIL import Image
    >>> path = str(pathlib.Path(tempfile.mkdtemp()) / "wide.png")
    >>> Image.fromarray(np.zeros((10, 40, 3), np.uint8)).save(path)
    >>> scan_image_files([path], max_image_pixels=300).bad[0][1].split(";")[0]
    '40x10 pixels (400) is more than max_image_pixels=300'
    >>> scan_image_files([path]).orientations[path]
    1
    """
    if max_image_pixels is not None and int(max_image_pixels) < 1:
        raise ValueError("Expected max_image_pixels to be a positive number of pixels or "
                         f"None; received max_image_pixels={max_image_pixels!r}.")
    if not paths:
        return ImageScan([], {})
    workers = workers or os.cpu_count() or 1
    if progress is None:
        progress = len(paths) > PROGRESS_THRESHOLD
    bad: list[tuple[str, str]] = []
    orientations: dict[str, int] = {}
    with _pil_limit(max_image_pixels), ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(lambda path: _inspect(os.fspath(path), max_image_pixels), paths)
        bar = _progress_bar(len(paths)) if progress else None
        for done, (path, (reason, orientation)) in enumerate(zip(paths, results), start=1):
            if reason is not None:
                bad.append((path, reason))
            else:
                orientations[str(path)] = orientation
            if bar is not None and (done % 100 == 0 or done == len(paths)):
                bar.update(done)
    return ImageScan(bad, orientations)


def find_bad_files(paths: Sequence[str], workers: int | None = None,
                   progress: bool | None = None,
                   max_image_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS
                   ) -> list[tuple[str, str]]:
    """Checks every file in a thread pool; returns `(path, reason)` for the bad ones.

    Args:
        paths: files to check.
        workers: threads. Defaults to the number of CPU cores.
        progress: show a progress bar. Defaults to True above 1000 files.
        max_image_pixels: as for `scan_image_files`.

    Returns:
        The bad files in the order of `paths`, each with the reason.
    """
    return scan_image_files(paths, workers, progress, max_image_pixels).bad


def apply_orientation(image, orientation):
    """Turns decoded pixels the way their EXIF orientation says a viewer shows them.

    TensorFlow's decoders return pixels as stored and ignore the orientation tag that
    cameras write (PIL's `ImageOps.exif_transpose` applies it). Graph code: `orientation`
    may be a scalar tensor inside `tf.data`.

    Args:
        image: `[H, W, C]` pixels as stored.
        orientation: EXIF orientation 1..8 (1 = as stored; 3 = turned 180 degrees; 6 and
            8 = turned 90 degrees clockwise / counter-clockwise for display; 2, 4, 5, 7
            mirrored). Other values leave the image as it is.

    Returns:
        `[H, W, C]` (orientations 1..4) or `[W, H, C]` (5..8) pixels as displayed.

    Example:

    >>> import numpy as np
    >>> image = np.arange(6).reshape(2, 3, 1)
    >>> apply_orientation(image, 6).numpy()[..., 0].tolist()
    [[3, 0], [4, 1], [5, 2]]
    """
    import tensorflow as tf

    image = tf.convert_to_tensor(image)
    orientation = tf.cast(orientation, tf.int32)

    def transpose(pixels):
        return tf.transpose(pixels, [1, 0, 2])

    branches = [
        lambda: image,                                            # 1: as stored
        lambda: tf.reverse(image, [1]),                           # 2: mirrored
        lambda: tf.reverse(image, [0, 1]),                        # 3: turned 180
        lambda: tf.reverse(image, [0]),                           # 4: flipped
        lambda: transpose(image),                                 # 5: transposed
        lambda: tf.reverse(transpose(image), [1]),                # 6: 90 clockwise
        lambda: tf.reverse(transpose(image), [0, 1]),             # 7: transverse
        lambda: tf.reverse(transpose(image), [0]),                # 8: 90 counter-clockwise
    ]
    index = tf.where((orientation >= 1) & (orientation <= 8), orientation - 1, 0)
    turned = tf.switch_case(index, branches)
    return tf.ensure_shape(turned, [None, None, image.shape[-1]])


def _progress_bar(total: int):
    import keras

    # Same stream as Keras's progress bar (stdout).
    print(f"Checking {total} image files before training...")
    return keras.utils.Progbar(total, unit_name="file")
