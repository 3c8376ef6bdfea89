"""One exception type for every user-facing failure, so the CLI can print it without a traceback."""

from __future__ import annotations

import re


class CabinliftError(Exception):
    """A problem with the user's input or configuration.

    The message must name what is wrong and where (file, row, key) and what was expected. It is
    a single line, except a list of several problems (e.g. every problem of params.yaml at
    once), which puts one problem per line under a first line that counts them. The CLI prints
    it after ``cabinlift <stage>: error:`` and exits non-zero without a traceback.
    """


def first_sentence(exc: BaseException) -> str:
    """The first sentence of a library exception's message (some run to paragraphs), for
    quoting inside a one-line error."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    return re.split(r"(?<=\.)\s", text.splitlines()[0], maxsplit=1)[0]
