"""The ``evaluate`` stage: aggregates every fine-tuning run into the paper's Table 1.

Outputs: ``metrics/table1.json`` (the only DVC metrics file), ``metrics/table1.md``,
``metrics/runs.csv``, ``metrics/details.json``, ``plots/mpjpe_vs_data.{csv,png}`` and
``plots/qualitative.png``. See :func:`run_evaluation`.
"""

from cabinlift.evaluation.evaluate import run_evaluation
from cabinlift.evaluation.plots import QualitativeConfig
from cabinlift.evaluation.settings import (
    DEFAULT_SETTINGS,
    INITS,
    Setting,
    model_label,
    parse_settings,
    setting_label,
)

__all__ = [
    "DEFAULT_SETTINGS",
    "INITS",
    "QualitativeConfig",
    "Setting",
    "model_label",
    "parse_settings",
    "run_evaluation",
    "setting_label",
]
