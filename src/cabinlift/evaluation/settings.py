"""The fine-tuning settings (data amounts) and how reports name them.

Table 1's columns are the paper's eight data amounts; their names in params.yaml are short,
dot-free keys (``pct5``) because DVC reads ``metrics/table1.json`` as nested metrics and would
split a key such as ``0.05`` at the dot. The human labels are derived, not configured, so that a
changed fraction can never be shown under a stale label.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cabinlift.errors import CabinliftError
from cabinlift.lifters import DISPLAY_NAMES
from cabinlift.subsets import NO_REAL_DATA

#: Initialisations, in the order Table 1 lists them (from scratch, then pre-trained = "PT").
INITS: tuple[str, ...] = ("scratch", "pretrained")

#: The paper's eight settings (Section 4), in table order.
DEFAULT_SETTINGS: dict[str, dict[str, Any]] = {
    "pct5": {"subjects": 1, "fraction": 0.05, "repetitions": 8},
    "pct10": {"subjects": 1, "fraction": 0.10, "repetitions": 8},
    "pct25": {"subjects": 1, "fraction": 0.25, "repetitions": 8},
    "pct50": {"subjects": 1, "fraction": 0.5, "repetitions": 8},
    "subj1": {"subjects": 1, "fraction": 1.0, "repetitions": 8},
    "subj2": {"subjects": 2, "fraction": 1.0, "repetitions": 8},
    "subj4": {"subjects": 4, "fraction": 1.0, "repetitions": 8},
    "subj8": {"subjects": 8, "fraction": 1.0, "repetitions": 1},
}

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
    repetitions: int

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


def parse_settings(settings: Mapping[str, Mapping[str, Any]] | None) -> list[Setting]:
    """Validate the ``settings`` mapping (params.yaml order kept) into :class:`Setting` s.

    ``None`` means the paper's eight settings. Errors name the offending key.
    """
    if settings is None:
        settings = DEFAULT_SETTINGS
    if not isinstance(settings, Mapping) or not settings:
        raise CabinliftError("settings: expected a non-empty mapping {name: {subjects, fraction}}")
    out: list[Setting] = []
    for name, spec in settings.items():
        where = f"settings.{name}"
        if not isinstance(name, str) or not name or "." in name:
            raise CabinliftError(
                f"settings: bad setting name {name!r}: expected a non-empty string without dots "
                "(DVC splits metric keys at dots)"
            )
        if name == NO_REAL_DATA:
            raise CabinliftError(
                f"settings: setting name {name!r} is reserved for the pre-trained weights "
                "evaluated before fine-tuning; rename the setting"
            )
        if not isinstance(spec, Mapping):
            raise CabinliftError(f"{where}: expected a mapping with 'subjects' and 'fraction'")
        try:
            subjects = spec["subjects"]
            fraction = spec["fraction"]
        except KeyError as exc:
            raise CabinliftError(f"{where}: missing key {exc.args[0]!r}") from None
        repetitions = spec.get("repetitions", 1)
        if isinstance(subjects, bool) or not isinstance(subjects, int) or subjects < 1:
            raise CabinliftError(f"{where}.subjects: expected an integer >= 1, got {subjects!r}")
        if (
            isinstance(fraction, bool)
            or not isinstance(fraction, int | float)
            or not math.isfinite(fraction)
            or not 0.0 < fraction <= 1.0
        ):
            raise CabinliftError(f"{where}.fraction: expected a number in (0, 1], got {fraction!r}")
        if isinstance(repetitions, bool) or not isinstance(repetitions, int) or repetitions < 1:
            raise CabinliftError(
                f"{where}.repetitions: expected an integer >= 1, got {repetitions!r}"
            )
        out.append(Setting(name, subjects, float(fraction), repetitions))
    return out


def check_models(models: Any) -> list[str]:
    """Validate the model list: non-empty, unique, dot-free names (they become metric keys)."""
    if isinstance(models, str) or not models:
        raise CabinliftError("models: expected a non-empty list of model names")
    models = list(models)
    for m in models:
        if not isinstance(m, str) or not m or "." in m:
            raise CabinliftError(f"models: bad model name {m!r}: expected a dot-free string")
    if len(set(models)) != len(models):
        raise CabinliftError(f"models: duplicate model names in {models}")
    if MEAN_POSE_KEY in models:
        raise CabinliftError(
            f"models: {MEAN_POSE_KEY!r} is reserved for the mean-training-pose reference of "
            "metrics/table1.json"
        )
    return models
