"""Pretrained weights: a registry of published files, Keras's file cache and a mirror.

Each entry names one published weights file: the visionkit backbone it fits, the data
it was trained on, its file name, its origin URL and its hash as the publisher gives it
(Keras's keras.applications tables: MD5; keras-cv's YOLOv8 presets: SHA-256). Files live
in Keras's own cache, `$KERAS_HOME/models/<file name>` (`~/.keras/models` by default),
the place `keras.applications` itself uses, so a file Keras fetched once serves visionkit
too and the reverse.

Where a file comes from, in order:

1. the cache (no request is made when the file is there and its hash matches);
2. `VISIONKIT_WEIGHTS_MIRROR`, a base URL (`https://mirror.example.com/keras/`) or a
   local folder (`/media/usb/weights`), holding the files under their published names;
3. the publisher's origin.

Every download has a bounded timeout, goes to a `<file name>.<random>.part` file of its
own and is renamed into the cache only after its hash matched (a web page, e.g. a proxy's
login page, is refused as such), so an interrupted or corrupted download never sits in
the cache under the real name. A mismatching file is removed and refused. Offline, the
error names the file, the cache path to put it in and the mirror variable.

Example:

>>> from visionkit.models.pretrained import get_pretrained
>>> entry = get_pretrained("efficientnet_b0_imagenet")
>>> entry.file_name, entry.hash_algorithm
('efficientnetb0_notop.h5', 'md5')
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import socket
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from typing import Any

import keras

from visionkit.errors import VisionkitError
from visionkit.vocabulary import Registry

__all__ = [
    "CacheNotWritableError",
    "DEFAULT_TIMEOUT",
    "MIN_BYTES_PER_SECOND",
    "MIRROR_VARIABLE",
    "PretrainedWeights",
    "WeightsHashError",
    "WeightsUnavailableError",
    "available_pretrained",
    "cache_path",
    "fetch",
    "find_pretrained",
    "get_pretrained",
    "pretrained_status",
    "register_pretrained",
    "unregister_pretrained",
]

MIRROR_VARIABLE = "VISIONKIT_WEIGHTS_MIRROR"
# Set to 1 to never contact an origin (cache and mirror only), e.g. on air-gapped machines.
OFFLINE_VARIABLE = "VISIONKIT_WEIGHTS_OFFLINE"
TIMEOUT_VARIABLE = "VISIONKIT_WEIGHTS_TIMEOUT"
# Seconds a connection or a single read may wait before the download is abandoned.
DEFAULT_TIMEOUT = 30.0
# Slowest transfer accepted, averaged over each `timeout`-second window (a 20 MB file at
# this rate takes 5.5 hours); slower is treated as a stalled connection.
MIN_BYTES_PER_SECOND = 1024
# Keras's cache subfolder for model weights (keras.applications uses "models").
CACHE_SUBDIR = "models"
_CHUNK_BYTES = 1 << 20
_PART_SUFFIX = ".part"
# A file the publisher gives no hash for gets its SHA-256 recorded at first download.
_RECORDED_HASH_SUFFIX = ".sha256"
_MD5_HEX_LENGTH = 32
_SHA256_HEX_LENGTH = 64


class WeightsUnavailableError(VisionkitError, OSError):
    """A pretrained weights file is not in the cache and no source could provide it.

    Attributes:
        file_name: the file's published name.
        cache_file: where the file is expected (`$KERAS_HOME/models/<file name>`).
        attempts: `(source, reason)` for every source tried.
    """

    def __init__(self, entry: PretrainedWeights, cache_file: str,
                 attempts: list[tuple[str, str]]) -> None:
        self.file_name = entry.file_name
        self.cache_file = cache_file
        self.attempts = list(attempts)
        tried = "; ".join(f"{source}: {reason}" for source, reason in attempts)
        super().__init__(
            f"Pretrained weights {entry.name!r} (file {entry.file_name!r}) are not in the "
            f"cache and could not be fetched ({tried}). To work offline, copy the file "
            f"{entry.file_name!r} (from {entry.origin}) to {cache_file!r}, or set "
            f"{MIRROR_VARIABLE} to a folder or URL that holds it, or run "
            f"`visionkit weights fetch {entry.name}` on a machine with network access and "
            f"carry its {os.path.dirname(cache_file)!r} folder over.")


class CacheNotWritableError(VisionkitError, OSError):
    """Keras's cache folder (`$KERAS_HOME/models`) cannot be created or written."""


class WeightsHashError(VisionkitError, ValueError):
    """A weights file does not have the published hash (corrupted, partial or replaced).

    The file is removed before this is raised.
    """


@dataclasses.dataclass(frozen=True)
class PretrainedWeights:
    """One published weights file and the backbone it fits.

    Attributes:
        name: registry name, e.g. "mobilenet_v2_imagenet".
        backbone: the visionkit backbone name (`vk.models.available_backbones()`) or a
            YOLOv8 size ("yolo_v8_xs").
        dataset: what the weights were trained on: "imagenet" or "coco".
        file_name: the published file name (also its name in the cache).
        origin: the publisher's URL of the file.
        file_hash: the published hash (32 hex digits: MD5; 64: SHA-256), or None when the
            publisher gives none (Keras's MobileNetV2 files).
        width_multiplier: the width the weights were trained at (MobileNet's `alpha`).
        input_size: the square image side the weights were trained at, or None.
        top: whether the file holds a classifier top (visionkit's files have none).
    """

    name: str
    backbone: str
    dataset: str
    file_name: str
    origin: str
    file_hash: str | None
    width_multiplier: float = 1.0
    input_size: int | None = None
    top: bool = False

    @property
    def hash_algorithm(self) -> str | None:
        """"md5", "sha256" or None, told apart by length as `keras.utils.get_file` does."""
        if self.file_hash is None:
            return None
        return "sha256" if len(self.file_hash) == _SHA256_HEX_LENGTH else "md5"

    def __post_init__(self) -> None:
        if self.file_hash is not None and (
                len(self.file_hash) not in (_MD5_HEX_LENGTH, _SHA256_HEX_LENGTH)
                or any(c not in "0123456789abcdef" for c in self.file_hash.lower())):
            raise ValueError(f"Expected file_hash as 32 (MD5) or 64 (SHA-256) hex digits; "
                             f"received file_hash={self.file_hash!r} for {self.name!r}.")
        if not self.file_name or os.sep in self.file_name or "/" in self.file_name:
            raise ValueError(f"Expected a bare file name; received "
                             f"file_name={self.file_name!r} for {self.name!r}.")


_REGISTRY: Registry[PretrainedWeights] = Registry("pretrained weights",
                                                 plural="pretrained weights")


def register_pretrained(entry: PretrainedWeights, replace: bool = False) -> PretrainedWeights:
    """Adds `entry` to the registry (e.g. a company's own weights on its mirror).

    Raises:
        ValueError: if the name is taken and `replace` is False.
    """
    if entry.name in _REGISTRY and not replace:
        raise ValueError(f"Pretrained weights named {entry.name!r} are already registered; "
                         "pass replace=True to replace them.")
    return _REGISTRY.register(entry.name, entry, replace=True)


def unregister_pretrained(name: str) -> PretrainedWeights:
    """Removes and returns the entry `name`."""
    return _REGISTRY.pop(name)


def available_pretrained(backbone: str | None = None) -> list[str]:
    """Sorted registry names, optionally only those of one backbone."""
    return _REGISTRY.names(lambda entry: backbone is None or entry.backbone == backbone)


def get_pretrained(name: str) -> PretrainedWeights:
    """The registry entry `name`.

    Raises:
        ValueError: for an unknown name, with close matches.
    """
    return _REGISTRY.lookup(name)


def datasets_of(backbone: str) -> list[str]:
    """The datasets some registered file of `backbone` was trained on."""
    return sorted({e.dataset for e in _REGISTRY.values() if e.backbone == backbone})


def find_pretrained(backbone: str, dataset: str, width_multiplier: float = 1.0,
                    input_shape: tuple | None = None) -> PretrainedWeights:
    """The registered file for `backbone` trained on `dataset` at this width and size.

    Among files of the right width, the one trained at the image's side is chosen when
    the input is square and such a file exists; otherwise the 224-pixel file (or the only
    one); where files for several sizes exist (MobileNetV2), that choice is warned about,
    as keras.applications does.

    Raises:
        ValueError: when no file fits, naming the backbones, datasets and widths that
            have one.
    """
    candidates = [e for e in _REGISTRY.values()
                  if e.backbone == backbone and e.dataset == dataset]
    if not candidates:
        have = sorted({e.backbone for e in _REGISTRY.values() if e.dataset == dataset})
        other = datasets_of(backbone)
        hint = (f" Backbone {backbone!r} has weights for: {', '.join(map(repr, other))}."
                if other else "")
        raise ValueError(f"No {dataset!r} weights are registered for backbone {backbone!r}."
                         f"{hint} Backbones with {dataset!r} weights: "
                         f"{', '.join(have) or 'none'}. Received: {dataset!r}.")
    width = float(width_multiplier)
    fitting = [e for e in candidates if abs(e.width_multiplier - width) < 1e-9]
    if not fitting:
        widths = sorted({e.width_multiplier for e in candidates})
        raise ValueError(f"{dataset!r} weights of backbone {backbone!r} exist for "
                         f"width_multiplier in {widths}; received width_multiplier={width!r}.")
    sizes = {e.input_size: e for e in fitting}
    side = None
    if input_shape is not None and input_shape[0] == input_shape[1]:
        side = input_shape[0]
    if side in sizes:
        return sizes[side]
    chosen = sizes.get(224) or sorted(fitting, key=lambda e: -(e.input_size or 0))[0]
    if len(sizes) > 1:
        trained = sorted(s for s in sizes if s is not None)
        warnings.warn(
            f"{dataset!r} weights of {backbone!r} were trained on square images of "
            f"{trained} pixels; input_shape={tuple(input_shape or ())!r} is not one of "
            f"them, so the {chosen.input_size}-pixel file {chosen.file_name!r} is used "
            "(as keras.applications does).", UserWarning, stacklevel=3)
    return chosen


# --------------------------------------------------------------------------- cache


def cache_dir() -> str:
    """Keras's cache root: `$KERAS_HOME` when set (read now), else `~/.keras`.

    `keras.utils.get_file` falls back to `/tmp/.keras` when the root is not writable;
    so does this.
    """
    base = os.path.expanduser(os.environ.get("KERAS_HOME") or os.path.join("~", ".keras"))
    try:
        os.makedirs(os.path.join(base, CACHE_SUBDIR), exist_ok=True)
    except OSError:
        pass
    if not os.access(base, os.W_OK):
        fallback = os.path.join("/tmp", ".keras")
        if base not in _FALLBACK_WARNED:
            _FALLBACK_WARNED.add(base)
            warnings.warn(f"Keras's cache folder {base!r} cannot be written (set KERAS_HOME "
                          f"to a writable folder); weights go to {fallback!r} instead, as "
                          "keras.utils.get_file does.", UserWarning, stacklevel=3)
        base = fallback
    return base


_FALLBACK_WARNED: set[str] = set()


def _writable_cache_folder(path: str) -> str:
    """Creates the folder of the cache file `path`; raises naming it when that fails."""
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
        probe, probe_path = tempfile.mkstemp(dir=folder, prefix=".visionkit-write-test-")
        os.close(probe)
        os.remove(probe_path)
    except OSError as error:
        raise CacheNotWritableError(
            f"Keras's weights cache folder {folder!r} cannot be created or written "
            f"({error}). Set KERAS_HOME to a writable folder (its 'models' subfolder holds "
            "the weights files).") from error
    return folder


def cache_path(entry: PretrainedWeights | str) -> str:
    """Where the file of `entry` (or of the entry named so) lives in Keras's cache."""
    entry = get_pretrained(entry) if isinstance(entry, str) else entry
    return os.path.join(cache_dir(), CACHE_SUBDIR, entry.file_name)


def _hash_file(path: str, algorithm: str) -> str:
    hasher = hashlib.sha256() if algorithm == "sha256" else hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK_BYTES), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def _expected_hash(entry: PretrainedWeights, path: str) -> tuple[str | None, str]:
    """The hash the cached file must have: the published one, or the one recorded."""
    if entry.file_hash is not None:
        return entry.file_hash.lower(), entry.hash_algorithm or "md5"
    recorded = path + _RECORDED_HASH_SUFFIX
    if os.path.isfile(recorded):
        with open(recorded) as handle:
            return handle.read().strip().lower(), "sha256"
    return None, "sha256"


def _remove(path: str) -> None:
    for candidate in (path, path + _RECORDED_HASH_SUFFIX):
        if os.path.exists(candidate):
            os.remove(candidate)


def is_cached(entry: PretrainedWeights | str) -> bool:
    """Whether the cache holds the file with the expected hash (hashes the file)."""
    entry = get_pretrained(entry) if isinstance(entry, str) else entry
    path = cache_path(entry)
    if not os.path.isfile(path):
        return False
    expected, algorithm = _expected_hash(entry, path)
    return expected is None or _hash_file(path, algorithm) == expected


def is_published_file(path: str, backbone: str, dataset: str) -> bool:
    """Whether the file at `path` is a registered `dataset` file of `backbone` (by hash)."""
    entries = [e for e in _REGISTRY.values() if e.backbone == backbone and e.dataset == dataset
               and e.file_hash is not None]
    digests: dict[str, str] = {}
    for entry in entries:
        algorithm = entry.hash_algorithm or "md5"
        if algorithm not in digests:
            digests[algorithm] = _hash_file(path, algorithm)
        if digests[algorithm] == entry.file_hash.lower():
            return True
    return False


# --------------------------------------------------------------------------- sources


def _timeout(timeout: float | None) -> float:
    value = timeout if timeout is not None else os.environ.get(TIMEOUT_VARIABLE, DEFAULT_TIMEOUT)
    try:
        seconds = float(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"Expected {TIMEOUT_VARIABLE} / timeout as seconds (a number); "
                         f"received {value!r}.") from error
    if not seconds > 0:
        raise ValueError(f"Expected a timeout > 0 seconds; received {value!r}.")
    return seconds


class _NotOnSource(Exception):
    """The source answered but does not have the file (HTTP 404, missing local file)."""


def offline() -> bool:
    """Whether `VISIONKIT_WEIGHTS_OFFLINE` forbids contacting origins."""
    return os.environ.get(OFFLINE_VARIABLE, "").strip().lower() in ("1", "true", "yes", "on")


def _sources(entry: PretrainedWeights, mirror: str | None) -> list[str]:
    sources = []
    if mirror:
        parsed = urllib.parse.urlsplit(mirror)
        if parsed.scheme in ("http", "https", "ftp"):
            sources.append(mirror.rstrip("/") + "/" + urllib.parse.quote(entry.file_name))
        else:  # a local folder (or a file:// URL to one)
            folder = urllib.request.url2pathname(parsed.path) if parsed.scheme == "file" \
                else mirror
            sources.append(os.path.join(os.path.expanduser(folder), entry.file_name))
    if not offline():
        sources.append(entry.origin)
    return sources


def _download(source: str, target: str, timeout: float) -> None:
    """Copies `source` (URL or local path) to `target`, every wait bounded by `timeout`."""
    if not urllib.parse.urlsplit(source).scheme:
        if not os.path.isfile(source):
            raise _NotOnSource(f"no file {source!r}")
        shutil.copyfile(source, target)
        return
    request = urllib.request.Request(source, headers={"User-Agent": "visionkit"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, \
                open(target, "wb") as out:
            # A server that trickles a few bytes at a time never trips the per-read
            # timeout; every `timeout` seconds at least MIN_BYTES_PER_SECOND * timeout bytes
            # must have arrived, or the download is abandoned as stalled.
            window_start, window_bytes = time.monotonic(), 0
            while True:
                chunk = response.read1(_CHUNK_BYTES)
                if not chunk:
                    break
                out.write(chunk)
                window_bytes += len(chunk)
                elapsed = time.monotonic() - window_start
                if elapsed >= timeout:
                    if window_bytes < MIN_BYTES_PER_SECOND * elapsed:
                        raise OSError(
                            f"the download stalled: {window_bytes} bytes in {elapsed:.0f} s "
                            f"(less than {MIN_BYTES_PER_SECOND} bytes/s) from {source}")
                    window_start, window_bytes = time.monotonic(), 0
            expected = response.headers.get("Content-Length")
        if expected is not None and os.path.getsize(target) != int(expected):
            raise OSError(f"the download stopped after {os.path.getsize(target)} of "
                          f"{expected} bytes")
    except urllib.error.HTTPError as error:
        if error.code == 404:
            raise _NotOnSource(f"HTTP 404 at {source}") from error
        raise OSError(f"HTTP {error.code} {error.reason} at {source}") from error
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise OSError(f"no answer within {timeout:g} s from {source}") from error
        raise OSError(f"cannot reach {source} ({reason})") from error
    except TimeoutError as error:
        raise OSError(f"no answer within {timeout:g} s from {source}") from error


def fetch(name: str | PretrainedWeights, timeout: float | None = None,
          mirror: str | None = None, force: bool = False) -> str:
    """The local path of a registered weights file, fetched into Keras's cache if needed.

    A cached file whose hash matches is returned without any request. Otherwise the
    mirror (`VISIONKIT_WEIGHTS_MIRROR`, or `mirror`) is tried, then the origin (unless
    `VISIONKIT_WEIGHTS_OFFLINE=1`); the file
    is checked against its hash before it enters the cache, and the final lookup goes
    through `keras.utils.get_file` (a cache hit with Keras's own hash check).

    Args:
        name: a registry name (`available_pretrained()`) or an entry.
        timeout: seconds a connection or a read may wait (and the window over which at
            least `MIN_BYTES_PER_SECOND` must arrive). Defaults to
            `$VISIONKIT_WEIGHTS_TIMEOUT` or 30.
        mirror: a base URL or local folder tried before the origin. Defaults to
            `$VISIONKIT_WEIGHTS_MIRROR`.
        force: fetch again even when the cache holds a good file. Defaults to False.

    Returns:
        The path `$KERAS_HOME/models/<file name>`.

    Raises:
        WeightsHashError: when a source delivers a file with another hash (the file is
            removed; nothing enters the cache).
        WeightsUnavailableError: when no source can deliver the file (offline, no mirror,
            HTTP errors, no answer within the timeout).
        CacheNotWritableError: when `$KERAS_HOME/models` cannot be created or written.
        ValueError: for an unknown name.
    """
    entry = name if isinstance(name, PretrainedWeights) else get_pretrained(name)
    path = cache_path(entry)
    seconds = _timeout(timeout)
    if os.path.isfile(path) and not force:
        expected, algorithm = _expected_hash(entry, path)
        actual = _hash_file(path, algorithm) if expected is not None else None
        if expected is None or actual == expected:
            return _keras_cache_lookup(entry, path)
        _remove(path)
        warnings.warn(f"The cached file {path!r} has {algorithm} {actual}, not the expected "
                      f"{expected} (a partial or corrupted download?); it was removed and "
                      "is fetched again.", UserWarning, stacklevel=2)
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_VARIABLE) or None
    attempts: list[tuple[str, str]] = []
    if offline():
        attempts.append((entry.origin, f"not contacted ({OFFLINE_VARIABLE} is set)"))
    folder = _writable_cache_folder(path)
    for source in _sources(entry, mirror):
        # A part file of its own: two processes fetching the same file at once never
        # write into each other's download; the last complete, checked one is renamed.
        handle, part = tempfile.mkstemp(dir=folder, prefix=entry.file_name + ".",
                                        suffix=_PART_SUFFIX)
        os.close(handle)
        os.chmod(part, 0o666 & ~_umask())  # mkstemp's 0600 would hide it from other users
        try:
            _download(source, part, seconds)
            _check_content(part, source)
        except (_NotOnSource, OSError) as error:
            if os.path.exists(part):
                os.remove(part)
            attempts.append((source, str(error)))
            continue
        _accept(entry, source, part, path)
        return _keras_cache_lookup(entry, path)
    raise WeightsUnavailableError(entry, path, attempts)


# Weights files never start like a web page; a proxy's login page or a mirror's error
# page served with HTTP 200 does.
_HTML_STARTS = (b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body", b"<!--")
# HDF5's format signature (at offset 0, 512, 1024, ... per the HDF5 spec) and a zip's
# (Keras's `.keras` files are zip archives).
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ZIP_SIGNATURE = b"PK\x03\x04"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _check_content(part: str, source: str) -> None:
    """Raises OSError when the downloaded `part` is a web page rather than a file."""
    with open(part, "rb") as handle:
        start = handle.read(512)
    if start.lstrip().lower().startswith(_HTML_STARTS):
        text = start.decode("utf-8", "replace").strip().replace("\n", " ")[:80]
        raise OSError(f"sent a web page ({os.path.getsize(part)} bytes starting {text!r}: a "
                      "proxy's login page or the server's error page?) instead of the "
                      "weights file")


def _has_signature(path: str, file_name: str) -> bool:
    """Whether the file at `path` has the format signature its name's extension implies."""
    lowered = file_name.lower()
    with open(path, "rb") as handle:
        if lowered.endswith((".h5", ".hdf5")):
            for offset in (0, 512, 1024, 2048):
                handle.seek(offset)
                if handle.read(len(_HDF5_SIGNATURE)) == _HDF5_SIGNATURE:
                    return True
            return False
        if lowered.endswith((".keras", ".zip")):
            return handle.read(len(_ZIP_SIGNATURE)) == _ZIP_SIGNATURE
    return True


def _discard(part: str) -> int:
    """Removes a rejected download and returns its size in bytes, for the error."""
    size = os.path.getsize(part)
    os.remove(part)
    return size


def _accept(entry: PretrainedWeights, source: str, part: str, path: str) -> None:
    """Checks the downloaded `part` against the published hash and moves it into place."""
    if entry.file_hash is not None:
        algorithm = entry.hash_algorithm or "md5"
        actual = _hash_file(part, algorithm)
        if actual != entry.file_hash.lower():
            size = _discard(part)
            raise WeightsHashError(
                f"The file {entry.file_name!r} from {source} has {algorithm} {actual} "
                f"({size} bytes), not the published {entry.file_hash}: it is partial, "
                "corrupted or another file, and was removed. Check the mirror's copy "
                f"(or unset {MIRROR_VARIABLE}) and fetch again.")
        os.replace(part, path)
        return
    if not _has_signature(part, entry.file_name):
        size = _discard(part)
        raise WeightsHashError(
            f"The file {entry.file_name!r} from {source} ({size} bytes) is not an "
            f"{'HDF5' if entry.file_name.lower().endswith(('.h5', '.hdf5')) else 'zip'} "
            "file (its format signature is missing): it is partial, corrupted or another "
            "file, and was removed. The publisher gives no hash for it, so nothing else "
            "can be checked; check the source's copy and fetch again.")
    digest = _hash_file(part, "sha256")
    os.replace(part, path)
    with open(path + _RECORDED_HASH_SUFFIX, "w") as handle:
        handle.write(digest + "\n")
    warnings.warn(f"The publisher gives no hash for {entry.file_name!r}; visionkit recorded "
                  f"its SHA-256 {digest} (from {source}) and checks the cached file against "
                  "it from now on. Compare it with a trusted copy.", UserWarning, stacklevel=3)


def _keras_cache_lookup(entry: PretrainedWeights, path: str) -> str:
    """`keras.utils.get_file` on a file already in its cache: Keras checks the hash."""
    found = keras.utils.get_file(entry.file_name, entry.origin, file_hash=entry.file_hash,
                                 cache_subdir=CACHE_SUBDIR, cache_dir=os.path.dirname(
                                     os.path.dirname(path)))
    return os.fspath(found)


def pretrained_status(names: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per registered file: name, backbone, dataset, file, cached, path, bytes.

    `cached` is True only when the file is present and its hash matches.
    """
    rows = []
    for name in names or available_pretrained():
        entry = get_pretrained(name)
        path = cache_path(entry)
        present = os.path.isfile(path)
        rows.append({"name": entry.name, "backbone": entry.backbone, "dataset": entry.dataset,
                     "file": entry.file_name, "cached": present and is_cached(entry),
                     "present": present, "path": path,
                     "bytes": os.path.getsize(path) if present else None})
    return rows


def _register_builtin() -> None:
    from visionkit.models.pretrained_table import builtin_weights

    for row in builtin_weights():
        register_pretrained(PretrainedWeights(**row))


_register_builtin()
