"""Text files read line by line, with a one-line error for bytes that are not UTF-8.

Decoders report a byte offset into the whole file, while a user fixes a file by its lines; so
every reader of a text format (the Drive&Act CSVs, the interim CSVs) names the line and column
of the first byte that is not UTF-8 and what was expected there, with the helpers here.
"""

from __future__ import annotations

from pathlib import Path

from cabinlift.errors import CabinliftError

_BOM = b"\xef\xbb\xbf"


def decode_line(path: Path, raw: bytes, lineno: int, expected: str) -> str:
    """One line of a text file as text (a UTF-8 byte-order mark and the line end removed), or
    a one-line error naming the line and the first byte that is not UTF-8."""
    if lineno == 1 and raw.startswith(_BOM):
        raw = raw[len(_BOM):]
    try:
        return raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise CabinliftError(
            f"{path}: line {lineno}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column "
            f"{exc.start + 1}); expected {expected}"
        ) from None


def read_lines(path: Path, expected: str, expected_first: str | None = None) -> list[str]:
    """The lines of a text file; bytes that are not UTF-8 are an error naming the line and
    what was expected there (``expected_first`` for the first line, e.g. a header)."""
    return [decode_line(path, raw, i + 1, expected_first if i == 0 and expected_first else expected)
            for i, raw in enumerate(path.read_bytes().split(b"\n"))]
