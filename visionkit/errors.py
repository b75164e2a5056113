"""visionkit's own error and warning types.

Every error visionkit raises about the user's data says what was expected, what was
received and, for files, which file. The types subclass the built-in ones a caller would
already catch (`DataError` is a `ValueError`), so `except ValueError` keeps working.

Example:

>>> from visionkit.errors import BadFileError, DataError
>>> error = BadFileError("cats/01.jpg", "the file is truncated")
>>> isinstance(error, DataError) and isinstance(error, ValueError)
True
>>> error.path, error.reason
('cats/01.jpg', 'the file is truncated')
"""

from __future__ import annotations

import os
from collections.abc import Sequence

__all__ = ["VisionkitError", "DataError", "BadFileError", "DataWarning"]

# How many bad files an error message lists by name before summarising the rest.
MAX_LISTED_FILES = 20


class VisionkitError(Exception):
    """Base class of the errors visionkit raises on purpose."""


class DataError(VisionkitError, ValueError):
    """The user's data does not have the structure or content visionkit expects.

    Raised for missing or empty folders, mismatched class folders and similar problems
    found before training starts.
    """


class BadFileError(DataError):
    """One or more data files cannot be read as the expected kind of file.

    Args:
        path: the (first) bad file.
        reason: why it cannot be used, e.g. "the file is truncated".
        expected: what a good file looks like, for the message. Defaults to
            "an image file that decodes completely".
        others: further `(path, reason)` pairs found in the same scan; all of them are
            listed in the message (up to 20, then counted).

    Attributes:
        path: the first bad file, as a string.
        reason: why it is bad.
        bad_files: every `(path, reason)` pair, the first one included.

    Example:

    >>> error = BadFileError("a.jpg", "not an image", others=[("b.png", "truncated")])
    >>> [path for path, _ in error.bad_files]
    ['a.jpg', 'b.png']
    """

    def __init__(self, path: str | os.PathLike, reason: str,
                 expected: str = "an image file that decodes completely",
                 others: Sequence[tuple[str, str]] = ()) -> None:
        self.path = os.fspath(path)
        self.reason = str(reason)
        self.expected = expected
        self.bad_files: tuple[tuple[str, str], ...] = (
            (self.path, self.reason), *((os.fspath(p), str(r)) for p, r in others))
        super().__init__(self._message())

    def _message(self) -> str:
        if len(self.bad_files) == 1:
            return f"Expected {self.expected}; received '{self.path}': {self.reason}."
        return (f"Expected {self.expected}; received {len(self.bad_files)} bad files:\n"
                + format_file_list(self.bad_files))

    def __reduce__(self):
        # Exceptions pickle through `args`; rebuild from the fields instead so that the
        # error survives multiprocessing and tf.data's Python workers.
        return (type(self), (self.path, self.reason, self.expected, self.bad_files[1:]))


class DataWarning(UserWarning):
    """Something in the user's data was left out or changed (e.g. skipped bad files)."""


def format_file_list(files: Sequence[tuple[str, str]], limit: int = MAX_LISTED_FILES) -> str:
    """One indented `path: reason` line per file, at most `limit` lines then a count."""
    lines = [f"  '{path}': {reason}" for path, reason in files[:limit]]
    if len(files) > limit:
        lines.append(f"  ... and {len(files) - limit} more")
    return "\n".join(lines)
