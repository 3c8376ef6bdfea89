"""Every subject and virtual human that params.yaml's splits name must be in the data.

A split member the data lacks is not a smaller split: it is a typo (``human_9`` for
``human_09``) or a subject of another data set, and a split built without it silently computes
Table 1 on other frames than params.yaml says. :func:`missing_members` words one problem per such
member, naming its key and the closest member the data has; ``cabinlift check`` asks it before
any stage runs (of the data it can know then: :mod:`cabinlift.preflight`) and the ``normalize``
stage of the data it reads.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator

from cabinlift.config import SPLITS, Section
from cabinlift.validation import suggest

#: How many present members a message lists before it elides the middle.
_SHOWN = 6


def _numbered(name: object) -> tuple[str, int] | None:
    """``("human_", 9)`` of ``human_09``: a name's text and trailing number."""
    m = re.fullmatch(r"(.*?)(\d+)", str(name))
    return (m.group(1), int(m.group(2))) if m else None


def _closest(member: object, present: Collection) -> object | None:
    """The present member ``member`` was most likely meant to be: the nearest number (ties: the
    smaller) among subjects, or among names of the same text and a trailing number
    (``human_9`` -> ``human_09``), else a close spelling."""
    if isinstance(member, int):
        return min(present, key=lambda p: (abs(p - member), p)) if present else None
    numbered = _numbered(member)
    alike = [(n[1], p) for p in present if numbered and (n := _numbered(p)) and n[0] == numbered[0]]
    if alike:
        return min(alike, key=lambda np_: (abs(np_[0] - numbered[1]), np_[0]))[1]
    return suggest(str(member), sorted(map(str, present)))


def describe(present: Collection) -> str:
    """``1-8, 10-15`` for subject numbers, ``human_01, human_02, ... human_16`` for names."""
    values = sorted(present)
    if values and all(isinstance(v, int) for v in values):
        runs: list[list[int]] = []
        for v in values:
            if runs and v == runs[-1][1] + 1:
                runs[-1][1] = v
            else:
                runs.append([v, v])
        return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)
    shown = [str(v) for v in values]
    if len(shown) > _SHOWN:
        shown = [*shown[: _SHOWN // 2], "...", *shown[-(_SHOWN // 2):]]
    return ", ".join(shown)


def missing_members(key: str, splits: Section, present: Collection, what: str, where: str
                    ) -> Iterator[str]:
    """One problem per member of ``splits`` (params key ``key``: ``normalize.real_splits``) that
    ``present`` lacks; ``what`` names a member (``subject``, ``human``), ``where`` the data."""
    for split in SPLITS:
        for member in getattr(splits, split):
            if member in present:
                continue
            guess = _closest(member, present)
            hint = f"closest: {guess!r}; " if guess is not None else ""
            yield (f"key '{key}.{split}' names {what} {member!r}, which is not in the data "
                   f"({hint}{where} has {len(present)} {what}s: {describe(present)})")
