"""Reading JSON: the files the stages exchange (subsets, runs, summaries) and the ones users and
data sets give them (COCO keypoints, calibrations, annotations).

What can go wrong is the same everywhere: the file is missing or cannot be read, its bytes are
not UTF-8, its text is not JSON. :func:`read_json` and :func:`parse_json` turn each into a
one-line :class:`~cabinlift.errors.CabinliftError` naming the file; a caller words the message
for what it expected there (each message is a ``str.format`` template with the fields listed
below). What the parsed value must hold is the caller's to check.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cabinlift.errors import CabinliftError

#: Message of a file that does not exist (or is a folder); fields ``path``, ``error``.
MISSING = "{path}: file not found"
#: Message of a file that exists but cannot be read; fields ``path``, ``error``.
UNREADABLE = "{path}: cannot be read ({error})"
#: Message of text that is not JSON; fields ``path``, ``line``, ``column``, ``msg``, ``error``.
INVALID = "{path}: invalid JSON at line {line}, column {column}: {msg}"
#: Message of bytes that are not UTF-8; fields ``path``, ``reason``, ``error``.
NOT_UTF8 = "{path}: not UTF-8 text ({reason})"


def parse_json(data: bytes | str, path: str | Path, *, invalid: str = INVALID,
               not_utf8: str = NOT_UTF8) -> Any:
    """``data`` as JSON; bytes must be UTF-8 (a byte-order mark is skipped). ``path`` is where
    ``data`` came from (a file, or a command's output), for the messages ``invalid`` and
    ``not_utf8``."""
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise CabinliftError(not_utf8.format(path=path, reason=exc.reason, error=exc)) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CabinliftError(invalid.format(path=path, line=exc.lineno, column=exc.colno,
                                            msg=exc.msg, error=exc)) from None


def read_json(path: str | Path, *, missing: str = MISSING, unreadable: str = UNREADABLE,
              invalid: str = INVALID, not_utf8: str = NOT_UTF8) -> Any:
    """The contents of the JSON file ``path``; see the module for the messages."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        raise CabinliftError(missing.format(path=path, error=exc)) from None
    except OSError as exc:
        raise CabinliftError(unreadable.format(path=path, error=exc)) from None
    return parse_json(data, path, invalid=invalid, not_utf8=not_utf8)
