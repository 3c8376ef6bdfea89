"""Setting labels: derived from the definitions, never configured."""

from __future__ import annotations

import pytest

from cabinlift import config
from cabinlift.evaluation import model_label, parse_settings, setting_label

PAPER_COLUMNS = [
    "5% of a subject", "10% of a subject", "25% of a subject", "50% of a subject",
    "Single subject", "Two subjects", "Four subjects", "Eight subjects",
]


def test_params_settings_carry_the_paper_labels_in_order() -> None:
    settings = parse_settings(config.load_config("params.yaml").setting_defs())
    assert [s.name for s in settings] == ["pct5", "pct10", "pct25", "pct50", "subj1", "subj2",
                                          "subj4", "subj8"]
    assert [s.label for s in settings] == PAPER_COLUMNS
    assert sum(s.runs for s in settings) == 59  # 57 subsets, three seeds of one


@pytest.mark.parametrize(
    ("subjects", "fraction", "label"),
    [
        (1, 0.125, "12.5% of a subject"),
        (3, 1.0, "Three subjects"),
        (12, 1.0, "12 subjects"),
        (2, 0.5, "50% of two subjects"),
    ],
)
def test_setting_label_variants(subjects: int, fraction: float, label: str) -> None:
    assert setting_label(subjects, fraction) == label


def test_model_label_prefixes_pretrained() -> None:
    assert model_label("graformer", "scratch") == "GraFormer"
    assert model_label("graformer", "pretrained") == "PT GraFormer"
    assert model_label("mylifter", "pretrained") == "PT mylifter"
