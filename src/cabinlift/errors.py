"""One exception type for every user-facing failure, so the CLI can print it on one line."""


class CabinliftError(Exception):
    """A problem with the user's input or configuration.

    The message must name what is wrong and where (file, row, key) and what was expected;
    the CLI prints it as a single line and exits non-zero without a traceback.
    """
