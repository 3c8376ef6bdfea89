"""Our Table 1 beside the paper's published one (references/paper_table1.json), cell by cell.

Both tables share ``metrics/table1.json``'s layout: model -> init -> setting -> mean test MPJPE
[mm]. The paper has no *No real data* column and no mean-pose row; a cell either side lacks is
shown without a difference. The difference is ours minus the paper's: positive where our error
is higher.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cabinlift.config import INITS, NO_REAL_DATA


@dataclass(frozen=True)
class CellComparison:
    """One cell of Table 1 on both sides (None: that side has no such cell)."""

    model: str
    init: str
    setting: str
    ours: float | None
    paper: float | None

    @property
    def diff(self) -> float | None:
        """Ours minus the paper's [mm], where both sides have the cell."""
        if self.ours is None or self.paper is None:
            return None
        return self.ours - self.paper


@dataclass(frozen=True)
class Comparison:
    """Every model and init of either table (ours first, in their order), the settings of
    either (in order of appearance) and a cell for each."""

    models: list[str]
    settings: list[str]
    cells: dict[tuple[str, str, str], CellComparison]

    def mean_abs_diff(self) -> tuple[float | None, int]:
        """The mean absolute difference over the cells both sides have, and their number."""
        diffs = [abs(c.diff) for c in self.cells.values() if c.diff is not None]
        return (sum(diffs) / len(diffs) if diffs else None), len(diffs)


def _models(table: dict[str, Any]) -> list[str]:
    return [m for m, inits in table.items() if isinstance(inits, dict)
            and any(i in inits for i in INITS)]


def compare_tables(ours: dict[str, Any], paper: dict[str, Any]) -> Comparison:
    """The :class:`Comparison` of two Table-1 mappings (the mean-pose row is left out: the
    paper has none)."""
    models = list(dict.fromkeys([*_models(ours), *_models(paper)]))
    settings: list[str] = []
    for table in (ours, paper):
        for m in _models(table):
            for init in INITS:
                settings += [s for s in table[m].get(init) or {} if s not in settings]
    settings.sort(key=lambda s: s != NO_REAL_DATA)  # first, as in Table 1
    cells = {}
    for m in models:
        for init in INITS:
            mine = (ours.get(m) or {}).get(init) or {}
            theirs = (paper.get(m) or {}).get(init) or {}
            for s in settings:
                if s in mine or s in theirs:
                    cells[m, init, s] = CellComparison(m, init, s, mine.get(s), theirs.get(s))
    return Comparison(models, settings, cells)
