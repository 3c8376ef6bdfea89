"""The ``evaluate`` stage: aggregates every fine-tuning run into the paper's Table 1.

Outputs: ``metrics/table1.json`` (the only DVC metrics file), ``metrics/table1.md``,
``metrics/runs.csv``, ``metrics/summary.json`` and in ``plots/`` the figures
``mpjpe_vs_data``, ``pretraining_gain``, ``frames_worth``, ``weight_movement``,
``per_joint`` (PNG + CSV) and ``qualitative`` (PNG + JSON). See :func:`run_evaluation`.
"""

from cabinlift.evaluation.evaluate import run_evaluate_stage, run_evaluation
from cabinlift.evaluation.settings import Setting, model_label, parse_settings, setting_label

__all__ = ["Setting", "model_label", "parse_settings", "run_evaluate_stage", "run_evaluation",
           "setting_label"]
