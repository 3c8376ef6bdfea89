"""Formatting and writing the evaluation's outputs: JSON and CSV text in fixed formats, all
rendered first, then each written atomically, so a reader (or a failed run) never sees a
half-written file and an error leaves them untouched.

Output is deterministic: fixed key order, fixed float formats, '\\n' line ends.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cabinlift.atomic import write_atomic


def rounded(x: float | None, nd: int = 3) -> float | None:
    """Round for JSON; NaN/None become null (JSON has no NaN)."""
    if x is None:
        return None
    x = float(x)
    return None if not math.isfinite(x) else round(x, nd)


def _clean(obj: Any) -> Any:
    """JSON-safe copy: non-finite floats (which JSON cannot hold) become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def dump_json(obj: Any) -> str:
    return json.dumps(_clean(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def csv_text(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> str:
    """CSV with '\\n' line ends, as every CSV output of the stage is written."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def write_all_atomic(outputs: Mapping[Path, str | bytes]) -> None:
    """Write several rendered outputs; everything is rendered before the first write, so an
    error while computing leaves all previous outputs untouched."""
    for path, data in outputs.items():
        write_atomic(path, data)
