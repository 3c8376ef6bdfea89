"""The fine-tuning settings (data amounts) and how reports name them.

Table 1's columns are the paper's eight data amounts; their names in params.yaml are short,
dot-free keys (``pct5``) because DVC reads ``metrics/table1.json`` as nested metrics and would
split a key such as ``0.05`` at the dot. The human labels are derived, not configured, so that a
changed fraction can never be shown under a stale label.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cabinlift.config import SettingDef
from cabinlift.lifters import DISPLAY_NAMES

#: Column label of the pre-trained weights evaluated before fine-tuning (setting ``none``).
NO_REAL_DATA_LABEL = "No real data"
#: Top-level key of the mean-training-pose reference in table1.json, and its row label.
MEAN_POSE_KEY = "mean_pose"
MEAN_POSE_LABEL = "Mean training pose"

_COUNT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight")


@dataclass(frozen=True)
class Setting:
    """One amount of real fine-tuning data: ``fraction`` of the frames of ``subjects`` subjects."""

    name: str
    subjects: int
    fraction: float
    runs: int  # repetitions (subsets) x training seeds

    @property
    def label(self) -> str:
        return setting_label(self.subjects, self.fraction)

    @property
    def amount(self) -> float:
        """Subject-equivalents of data; orders settings and picks the "all data" one."""
        return self.subjects * self.fraction


def setting_label(subjects: int, fraction: float) -> str:
    """The paper's column label, e.g. ``5% of a subject``, ``Single subject``, ``Two subjects``.

    Counts up to eight are spelled out as in the paper; larger ones are written as digits.
    """
    if fraction >= 1.0:
        if subjects == 1:
            return "Single subject"
        word = _COUNT_WORDS[subjects] if subjects < len(_COUNT_WORDS) else str(subjects)
        return f"{word.capitalize()} subjects"
    pct = f"{fraction * 100:.6g}%"
    if subjects == 1:
        return f"{pct} of a subject"
    word = _COUNT_WORDS[subjects] if subjects < len(_COUNT_WORDS) else str(subjects)
    return f"{pct} of {word} subjects"


def model_label(model: str, init: str) -> str:
    """Row label of Table 1: the paper's model name, prefixed with ``PT`` when pre-trained."""
    name = DISPLAY_NAMES.get(model, model)
    return f"PT {name}" if init == "pretrained" else name


def parse_settings(settings: Mapping[str, SettingDef]) -> list[Setting]:
    """params.yaml's settings (column order kept) as :class:`Setting` s."""
    return [Setting(name, d.subjects, d.fraction, d.repetitions * d.seeds)
            for name, d in settings.items()]
