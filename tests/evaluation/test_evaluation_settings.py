"""Setting labels and validation of the settings / models parameters."""

from __future__ import annotations

import pytest

from cabinlift.errors import CabinliftError
from cabinlift.evaluation import DEFAULT_SETTINGS, model_label, parse_settings, setting_label
from cabinlift.evaluation.settings import check_models

PAPER_COLUMNS = [
    "5% of a subject", "10% of a subject", "25% of a subject", "50% of a subject",
    "Single subject", "Two subjects", "Four subjects", "Eight subjects",
]


def test_default_settings_carry_the_paper_labels_in_order() -> None:
    settings = parse_settings(None)
    assert [s.name for s in settings] == list(DEFAULT_SETTINGS)
    assert [s.label for s in settings] == PAPER_COLUMNS
    assert sum(s.repetitions for s in settings) == 57  # design §6: 57 runs per (model, init)


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


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ({"pct0.05": {"subjects": 1, "fraction": 0.05}}, "without dots"),
        ({"a": {"subjects": 0, "fraction": 0.5}}, "settings.a.subjects"),
        ({"a": {"subjects": 1, "fraction": 1.5}}, "settings.a.fraction"),
        ({"a": {"fraction": 0.5}}, "settings.a: missing key 'subjects'"),
        ({"a": {"subjects": 1, "fraction": 0.5, "repetitions": 0}}, "settings.a.repetitions"),
        ({}, "non-empty"),
    ],
)
def test_bad_settings_are_named(settings: dict, needle: str) -> None:
    with pytest.raises(CabinliftError, match=needle.replace(".", r"\.")):
        parse_settings(settings)


def test_bad_models() -> None:
    with pytest.raises(CabinliftError, match="duplicate"):
        check_models(["semgcn", "semgcn"])
    with pytest.raises(CabinliftError, match="dot-free"):
        check_models(["a.b"])
    with pytest.raises(CabinliftError, match="non-empty"):
        check_models([])
